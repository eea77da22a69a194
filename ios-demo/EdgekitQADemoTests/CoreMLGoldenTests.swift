import CoreML
import EdgekitQA
import XCTest
@testable import EdgekitQADemo

/// Runs the bundled golden.json against the bundled Core ML model on a simulator or device.
final class CoreMLGoldenTests: XCTestCase {
    func testGoldenOnCPU() throws { try check(.cpuOnly, requireModelCases: true) }
    func testGoldenOnAllComputeUnits() throws { try check(.all, requireModelCases: true) }

    private func check(_ units: MLComputeUnits, requireModelCases: Bool) throws {
        let assets = try DemoAssets()
        if requireModelCases { XCTAssertFalse(assets.golden.modelCases.isEmpty, "golden.json has no model cases") }
        XCTAssertFalse(assets.golden.qa.isEmpty)
        let m = try CoreMLQaModel(computeUnits: units, outputNames: assets.outputNames)
        let (passed, failures) = SelfCheck.runAll(golden: assets.golden, tokenizer: assets.tokenizer, model: m)
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
        XCTAssertGreaterThan(passed, 0)
    }

    func testBenchmarkReportsLatency() throws {
        let assets = try DemoAssets()
        let r = try Bench.run(assets, try CoreMLQaModel(computeUnits: .cpuOnly, outputNames: assets.outputNames), name: "CPU", runs: 10, warmup: 2)
        XCTAssertGreaterThan(r.p50, 0)
        XCTAssertGreaterThanOrEqual(r.p90, r.p50)
    }
}
