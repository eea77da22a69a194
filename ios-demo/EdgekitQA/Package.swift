// swift-tools-version:5.7
// The tokenizer and QA decoder of the iOS demo, mirroring android-demo's plain-Kotlin sources.
// `swift test` replays ../../demo-golden/golden.json (or $EDGEKIT_GOLDEN_DIR/golden.json).
import PackageDescription

let package = Package(
    name: "EdgekitQA",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [.library(name: "EdgekitQA", targets: ["EdgekitQA"])],
    targets: [
        .target(name: "EdgekitQA"),
        .testTarget(name: "EdgekitQATests", dependencies: ["EdgekitQA"]),
    ]
)
