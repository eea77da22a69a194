import CoreML
import EdgekitQA
import SwiftUI

// Parsed once, off the main thread's critical path only for the sample text; the model itself
// lives in QaService (an actor).
private let assetsResult = Result { try DemoAssets() }

struct AskView: View {
    @State private var question = (try? assetsResult.get().golden.qa.first?.question) ?? ""
    @State private var context = (try? assetsResult.get().golden.qa.first?.context) ?? ""
    @State private var output = ""

    var body: some View {
        NavigationStack {
            Form {
                Section("Model") { Text(cardSummary()).font(.footnote) }
                Section("Question") { TextField("Question", text: $question) }
                Section("Context") { TextEditor(text: $context).frame(minHeight: 160) }
                Button("Answer") { answer() }
                Section("Answers") { Text(output).font(.body.monospaced()) }
            }.navigationTitle("edgekit QA")
        }
    }

    private func cardSummary() -> String {
        guard let a = try? assetsResult.get() else { return "No model bundled: run `edgekit bundle --app ios …` (README)." }
        return a.card.summary(seqLens: a.golden.seqLens)
    }

    private func answer() {
        output = "…"
        let q = question, c = context
        Task {
            let text: String
            do { text = try await QaService.shared.answer(question: q, context: c) } catch { text = "error: \(error)" }
            await MainActor.run { output = text }
        }
    }
}

struct BenchmarkView: View {
    @State private var units = 0
    @State private var output = ""
    private let choices: [(String, MLComputeUnits)] = [
        ("CPU", .cpuOnly), ("CPU + GPU", .cpuAndGPU), ("CPU + Neural Engine", .cpuAndNeuralEngine), ("All", .all),
    ]

    var body: some View {
        NavigationStack {
            Form {
                Picker("Compute units", selection: $units) {
                    ForEach(0..<choices.count, id: \.self) { Text(choices[$0].0).tag($0) }
                }
                Button("Run benchmark") { bench() }
                Button("Self-check golden.json") { selfCheck() }
                Section("Result") { Text(output).font(.body.monospaced()) }
            }.navigationTitle("Benchmark")
        }
    }

    private func bench() {
        output = "…"
        let (name, u) = choices[units]
        Task {
            let text: String
            do {
                let r = try await QaService.shared.bench(units: u, name: name)
                text = String(format: "model size on disk: %.2f MB\nload time: %.1f ms\ncompute units: %@\np50: %.2f ms\np90: %.2f ms\nruns: %d",
                              Double(r.sizeBytes) / 1e6, r.loadMillis, r.units, r.p50, r.p90, r.runs)
            } catch { text = "error: \(error)" }
            await MainActor.run { output = text }
        }
    }

    private func selfCheck() {
        output = "…"
        let u = choices[units].1
        Task {
            let text: String
            do {
                let (passed, failures) = try await QaService.shared.selfCheck(units: u)
                text = (failures.prefix(10) + ["\(passed) passed, \(failures.count) failed"]).joined(separator: "\n")
            } catch { text = "error: \(error)" }
            await MainActor.run { output = text }
        }
    }
}
