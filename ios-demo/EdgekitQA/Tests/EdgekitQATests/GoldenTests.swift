import Foundation
import XCTest
@testable import EdgekitQA

/// Replays golden.json like the Kotlin JVM tests do: tokenizer, decoder, the apps' model checks on
/// bundles' golden files (int8 TFLite, palettized Core ML, the real SQuAD model) and length picking.
/// Runs on macOS and on Linux (`swift test` in ios-demo/EdgekitQA with a Swift toolchain).
final class GoldenTests: XCTestCase {
    static var goldenDir: URL {
        if let dir = ProcessInfo.processInfo.environment["EDGEKIT_GOLDEN_DIR"] { return URL(fileURLWithPath: dir) }
        // Tests/EdgekitQATests/GoldenTests.swift -> repo root /demo-golden
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("demo-golden")
    }

    static func read(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }

    static let golden: Golden = try! Golden(text: read(goldenDir.appendingPathComponent("golden.json")))
    static let tokenizer: BertTokenizer = try! BertTokenizer.fromVocabText(
        read(goldenDir.appendingPathComponent("vocab.txt")), lowercase: golden.doLowerCase, stripAccents: golden.stripAccents)

    /// golden.json and every bundles/<name>/golden.json.
    static var all: [(String, Golden)] {
        var out = [("golden.json", golden)]
        let dir = goldenDir.appendingPathComponent("bundles")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
        for n in names {
            let f = dir.appendingPathComponent(n).appendingPathComponent("golden.json")
            if FileManager.default.fileExists(atPath: f.path) { out.append(("bundles/\(n)", try! Golden(text: read(f)))) }
        }
        return out
    }

    func testTokenizerMatchesHuggingFace() {
        XCTAssertGreaterThan(Self.golden.tokenization.count, 10)
        for c in Self.golden.tokenization {
            let t = Self.tokenizer.withNormalizer(lowercase: c.lowercase, stripAccents: c.stripAccents).tokenize(c.text)
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
                guard k < c.windows.count else { throw QaError.message("more windows than Python's in \(c.name)") }
                XCTAssertEqual(w.inputIds, c.windows[k].inputIds, "window \(k) of \(c.name)")
                XCTAssertEqual(w.attentionMask, c.windows[k].attentionMask, "window \(k) of \(c.name)")
                XCTAssertEqual(w.tokenTypeIds, c.windows[k].tokenTypeIds, "window \(k) of \(c.name)")
                defer { k += 1 }
                return (c.windows[k].startLogits, c.windows[k].endLogits)
            }
            let answers = try pipeline.answer(question: c.question, context: c.context)
            XCTAssertEqual(k, c.windows.count, "number of windows of \(c.name)")
            XCTAssertEqual(Golden.compareAnswers(c.answers, answers, relTol: 1e-9), "", c.name)
        }
    }

    func testModelChecksPassTheFileAndFailOtherNumbers() {
        let goldens = Self.all.filter { !$0.1.modelCases.isEmpty }
        XCTAssertFalse(goldens.isEmpty)
        for (name, g) in goldens {
            XCTAssertEqual(ModelCheck.checkCases(g.bounds, g.modelCases, g.modelCases.map { $0.outputs }), [], name)
            let shifted = g.modelCases.map { c in
                c.outputs.mapValues { v -> [Float] in var w = v; w[c.bestSpan[0]] -= 1000; return w }
            }
            XCTAssertFalse(ModelCheck.checkCases(g.bounds, g.modelCases, shifted).isEmpty, name)
            for c in g.modelCases {
                XCTAssertEqual(ModelCheck.bestSpan(c.outputs["start_logits"]!, c.outputs["end_logits"]!, c.attentionMask), c.bestSpan)
            }
        }
    }

    func testQaCasesReplayOnTheFilesLogits() throws {
        for (name, g) in Self.all where !g.qa.isEmpty {
            let tok = Self.tokenizer.withNormalizer(lowercase: g.doLowerCase, stripAccents: g.stripAccents)
            for c in g.qa {
                var k = 0
                let answers = try QaPipeline(tokenizer: tok, config: c.config) { w in
                    guard k < c.windows.count else { throw QaError.message("more windows than Python's in \(c.name)") }
                    let e = c.windows[k]
                    k += 1
                    XCTAssertEqual(Array(w.inputIds.prefix(e.inputIds.count)), e.inputIds, "\(name) \(c.name)")
                    let pad = [Float](repeating: 0, count: max(0, w.inputIds.count - e.inputIds.count))
                    return (e.startLogits + pad, e.endLogits + pad)
                }.answer(question: c.question, context: c.context)
                XCTAssertEqual(Golden.compareAnswers(c.answers, answers, relTol: 1e-9), "", "\(name) \(c.name)")
                XCTAssertEqual(ModelCheck.checkQa(c, answers), "")
            }
        }
    }

    func testBucketsPickTheSmallestLengthThatFits() {
        for (_, g) in Self.all {
            for b in g.buckets {
                XCTAssertEqual(ModelCheck.pickSeqLen(g.bucketSeqLens, questionTokens: b.questionTokens, contextTokens: b.contextTokens), b.seqLen)
            }
        }
        XCTAssertEqual(ModelCheck.pickSeqLen([384, 128, 256], questionTokens: 10, contextTokens: 115), 128)
        XCTAssertEqual(ModelCheck.pickSeqLen([128, 256, 384], questionTokens: 10, contextTokens: 5000), 384)
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
