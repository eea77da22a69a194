import SwiftUI

@main
struct EdgekitQADemoApp: App {
    var body: some Scene {
        WindowGroup {
            TabView {
                AskView().tabItem { Label("Ask", systemImage: "questionmark.bubble") }
                BenchmarkView().tabItem { Label("Benchmark", systemImage: "speedometer") }
            }
        }
    }
}
