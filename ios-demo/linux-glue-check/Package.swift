// swift-tools-version:5.7
// Linux only, never shipped: type-checks the app target's Core ML glue (EdgekitQADemo/CoreMLQaModel.swift)
// and its Xcode test (EdgekitQADemoTests/CoreMLGoldenTests.swift) against the EdgekitQA package and
// signature stubs of the few Core ML APIs they call (Sources/CoreML). run-swift-tests.sh copies those two
// files into Sources/EdgekitQADemo and Tests/EdgekitQADemoTests and runs `swift build --build-tests`.
// SwiftUI (Views.swift, EdgekitQADemoApp.swift) is not stubbed: those files are not compiled on Linux.
import PackageDescription

let package = Package(
    name: "AppGlueCheck",
    dependencies: [.package(name: "EdgekitQA", path: "../EdgekitQA")],
    targets: [
        .target(name: "CoreML"),
        .target(name: "EdgekitQADemo", dependencies: ["CoreML", .product(name: "EdgekitQA", package: "EdgekitQA")]),
        .testTarget(name: "EdgekitQADemoTests", dependencies: ["EdgekitQADemo", "CoreML", .product(name: "EdgekitQA", package: "EdgekitQA")]),
    ]
)
