import Foundation
import XCTest
@testable import EdgekitQA

/// Replays golden.json (tokenizer + decoder cases) like the Kotlin JVM tests do.
final class GoldenTests: XCTestCase {
    static var goldenDir: URL {
        if let dir = ProcessInfo.processInfo.environment["EDGEKIT_GOLDEN_DIR"] { return URL(fileURLWithPath: dir) }
        // Tests/EdgekitQATests/GoldenTests.swift -> repo root /demo-golden
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("demo-golden")
    }

    static let golden: Golden = try! Golden(data: Data(contentsOf: goldenDir.appendingPathComponent("golden.json")))
    static let tokenizer: BertTokenizer = try! BertTokenizer.fromVocabText(
        String(contentsOf: goldenDir.appendingPathComponent("vocab.txt"), encoding: .utf8))

    func testTokenizerMatchesHuggingFace() {
        XCTAssertGreaterThan(Self.golden.tokenization.count, 10)
        for c in Self.golden.tokenization {
            let t = Self.tokenizer.tokenize(c.text)
            XCTAssertEqual(t.map { $0.id }, c.ids, "ids of \(c.name)")
            XCTAssertEqual(t.map { [$0.start, $0.end] }, c.offsets, "offsets of \(c.name)")
            XCTAssertEqual(t.map { [$0.wordStart, $0.wordEnd] }, c.words, "word spans of \(c.name)")
        }
    }

    func testDecoderMatchesPython() throws {
        XCTAssertGreaterThan(Self.golden.decoder.count, 5)
        for c in Self.golden.decoder {
            var k = 0
            let pipeline = QaPipeline(tokenizer: Self.tokenizer, config: c.config) { w in
                XCTAssertEqual(w.inputIds, c.windows[k].inputIds, "window \(k) of \(c.name)")
                XCTAssertEqual(w.tokenTypeIds, c.windows[k].tokenTypeIds, "window \(k) of \(c.name)")
                defer { k += 1 }
                return (c.windows[k].startLogits, c.windows[k].endLogits)
            }
            let answers = try pipeline.answer(question: c.question, context: c.context)
            XCTAssertEqual(k, c.windows.count, "number of windows of \(c.name)")
            XCTAssertEqual(Golden.compareAnswers(c.answers, answers, relTol: 1e-9), "", c.name)
        }
    }

    func testWindowsOverlapByStride() throws {
        var cfg = QaConfig()
        cfg.maxSeqLen = 20
        cfg.docStride = 5
        let ws = try QaDecoder.makeWindows(question: [7, 8], context: Array(1000..<1050), cls: 2, sep: 3, pad: 0, config: cfg)
        for (a, b) in zip(ws, ws.dropFirst()) { XCTAssertEqual(b.contextFirst - a.contextFirst, 10) }
        XCTAssertEqual(ws.last.map { $0.contextFirst + $0.contextLen }, 50)
        XCTAssertThrowsError(try QaDecoder.makeWindows(question: Array(0..<15), context: [1], cls: 2, sep: 3, pad: 0, config: cfg))
    }
}
