import Foundation
import XCTest
@testable import EdgekitQA

/// Small hand-written checks that need no golden file (mirrors android-demo UnitTests.kt). The
/// lengths here are made-up inputs of the functions, not a QA geometry (that comes from golden.json).
final class UnitTests: XCTestCase {
    let tok = try! BertTokenizer(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "a", ",", "cafe", "東"])

    func testWordPieceGreedyLongestMatchAndOffsets() {
        let t = tok.tokenize("UnAffable, café 東x")
        XCTAssertEqual(t.map { $0.id }, [5, 6, 7, 9, 10, 11, 1])
        XCTAssertEqual(t.map { $0.start }, [0, 2, 5, 9, 11, 16, 17])
        XCTAssertEqual(t.map { $0.wordStart }, [0, 0, 0, 9, 11, 16, 17])
        XCTAssertEqual(t.map { $0.wordEnd }, [9, 9, 9, 10, 15, 17, 18])
    }

    func testOffsetsCountCodePointsNotUtf16Units() {
        let t = tok.tokenize("\u{1F642} a")  // emoji outside the BMP, then "a"
        XCTAssertEqual(t.map { $0.id }, [1, 8])
        XCTAssertEqual(t.map { $0.start }, [0, 2])
    }

    func testWindowsOverlapByStrideAndCoverTheContext() throws {
        let ctx = Array(1000..<1050)
        let ws = try QaDecoder.makeWindows(question: [7, 8], context: ctx, cls: 2, sep: 3, pad: 0,
                                           config: QaConfig(maxSeqLen: 20, docStride: 5, maxAnswerLen: 3, padTo: 24))
        var seen = Set<Int32>()
        for w in ws {
            XCTAssertEqual(w.inputIds.count, 24)
            for k in 0..<w.contextLen { seen.insert(w.inputIds[w.contextStart + k]) }
        }
        XCTAssertEqual(seen.count, 50)
        for (a, b) in zip(ws, ws.dropFirst()) { XCTAssertEqual(b.contextFirst - a.contextFirst, 10) }
        XCTAssertThrowsError(try QaDecoder.makeWindows(question: Array(0..<15), context: ctx, cls: 2, sep: 3, pad: 0,
                                                       config: QaConfig(maxSeqLen: 20, docStride: 5, maxAnswerLen: 3))) { e in
            XCTAssertTrue("\(e)".contains("too long"))
        }
    }

    func testBucketsPadToTheSmallestLengthThatHoldsTheQuestion() throws {
        let cfg = QaConfig(maxSeqLen: 30, docStride: 4, maxAnswerLen: 3, buckets: [30, 10, 20])
        XCTAssertEqual(cfg.paddedLength(questionTokens: 2, contextTokens: 5), 10)
        XCTAssertEqual(cfg.paddedLength(questionTokens: 2, contextTokens: 6), 20)
        XCTAssertEqual(cfg.paddedLength(questionTokens: 2, contextTokens: 100), 30)
        XCTAssertEqual(ModelCheck.pickSeqLen([30, 10, 20], questionTokens: 2, contextTokens: 5), 10)
        let ws = try QaDecoder.makeWindows(question: [7, 8], context: Array(1000..<1006), cls: 2, sep: 3, pad: 0, config: cfg)
        XCTAssertEqual(ws.map { $0.inputIds.count }, [20])
        XCTAssertEqual(ws[0].attentionMask.filter { $0 == 1 }.count, 11)
    }

    func testDecoderRespectsMaxAnswerLenAndNeverAnswersCls() throws {
        let w = try QaDecoder.makeWindows(question: [7], context: [10, 11, 12, 13], cls: 2, sep: 3, pad: 0,
                                          config: QaConfig(maxSeqLen: 16, docStride: 4, maxAnswerLen: 3))[0]
        // [CLS] 7 [SEP] 10 11 12 13 [SEP]: the best start is [CLS], the best end lies 3 tokens after the best start.
        let start: [Float] = [9, 0, 0, 5, 0, 0, 0, 0]
        let end: [Float] = [9, 0, 0, 0, 0, 0, 5, 0]
        let (cand, nullScore) = try QaDecoder.decodeWindow(start: start, end: end, window: w,
                                                           config: QaConfig(maxSeqLen: 16, docStride: 4, maxAnswerLen: 2, topK: 50))
        XCTAssertGreaterThan(nullScore, 0.9)
        XCTAssertFalse(cand.isEmpty)
        for c in cand { XCTAssertTrue(c.start >= 3 && c.end <= 6 && c.end - c.start < 2) }
        for (a, b) in zip(cand, cand.dropFirst()) { XCTAssertGreaterThanOrEqual(a.score, b.score) }
    }

    /// Foundation's JSONDecoder (which replaced the package's own parser) on Linux and Apple:
    /// escapes, surrogate pairs, exponents, null.
    func testJsonDecoderReadsEscapesAndNumbers() throws {
        struct T: Decodable { let a: [Double?]; let s: String; let f: [Float] }
        let json = #"{"a": [1, -2.5e3, null], "s": "x\"\\\u00e9\ud83d\ude42\n", "f": [0.1, -3.4028234663852886e38, 1e-45]}"#
        let v = try JSONDecoder().decode(T.self, from: Data(json.utf8))
        XCTAssertEqual(v.a, [1, -2500, nil])
        XCTAssertEqual(v.s, "x\"\\é\u{1F642}\n")
        XCTAssertEqual(v.f, [Float(0.1), -Float.greatestFiniteMagnitude, Float.leastNonzeroMagnitude])
    }

    func testAForeignOrBrokenGoldenFileSaysWhy() {
        XCTAssertThrowsError(try Golden(text: #"{"format": "edgekit-golden/1"}"#)) { XCTAssertTrue("\($0)".contains("edgekit-golden/1")) }
        let broken = #"{"format": "edgekit-golden/2", "qa": [{"name": "x", "question": "q", "context": "c", "answers": [], "config": {"max_seq_len": 64}}]}"#
        XCTAssertThrowsError(try Golden(text: broken)) { XCTAssertTrue("\($0)".contains("qa[0].config.doc_stride: missing"), "\($0)") }
    }

    /// golden.json's own `qa_geometry` wins; several lengths become buckets, one a fixed pad length.
    func testTheStoredQaGeometryIsRead() throws {
        let several = try Golden(text: #"{"format": "edgekit-golden/2", "qa_geometry": {"lengths": [384, 128, 256], "doc_stride": 96, "max_answer_len": 20}}"#)
        let g = try QaGeometry(golden: several)
        XCTAssertEqual(g, QaGeometry(lengths: [128, 256, 384], docStride: 96, maxAnswerLen: 20))
        XCTAssertEqual(g.config(topK: 3), QaConfig(maxSeqLen: 384, docStride: 96, maxAnswerLen: 20, topK: 3, buckets: [128, 256, 384]))
        let one = try QaGeometry(golden: try Golden(text: #"{"format": "edgekit-golden/2", "qa_geometry": {"lengths": [64], "doc_stride": 16, "max_answer_len": 15}}"#))
        XCTAssertEqual(one.config(topK: 1), QaConfig(maxSeqLen: 64, docStride: 16, maxAnswerLen: 15, padTo: 64))
        XCTAssertThrowsError(try Golden(text: #"{"format": "edgekit-golden/2", "qa_geometry": {"lengths": [64], "doc_stride": 16}}"#))
        XCTAssertNil(try Golden(text: #"{"format": "edgekit-golden/2", "qa_geometry": null}"#).qaGeometry)
    }

    func testModelCardFields() throws {
        let card = try ModelCard(data: Data(#"{"model": "m", "precision": "int8", "outputs": ["a", "b"], "note": "", "qa": {"doc_stride": 1}}"#.utf8))
        XCTAssertEqual(card.outputNames, ["a", "b"])
        XCTAssertEqual(card.summary(seqLens: [128, 256]), "m · int8 · seq 128/256\n")
        XCTAssertEqual(try ModelCard(data: Data("{}".utf8)).outputNames, ["start_logits", "end_logits"])
    }

    func testLatencyPercentiles() throws {
        XCTAssertEqual(Latency.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5)
        XCTAssertEqual(Latency.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90), 9)
        XCTAssertEqual(Latency.percentile([4], 90), 4)
        var calls = 0
        let r = try Latency.measure(runs: 5, warmup: 2) { calls += 1 }
        XCTAssertEqual(calls, 7)
        XCTAssertEqual(r.runs, 5)
        XCTAssertLessThanOrEqual(r.p50, r.p90)
    }
}
