import Foundation
import XCTest
@testable import EdgekitQA

/// Everything the Kotlin JVM tests replay (TokenizerGoldenTest, QaDecoderGoldenTest,
/// ModelCheckGoldenTest), on golden.json and every bundles/<name>/golden.json: tokenizer, windows and
/// stride, decoder, the apps' model checks, QA cases on the files' logits, bucket choice, and the
/// app's self-check and QA geometry. Runs on Linux (ios-demo/run-swift-tests.sh) and macOS.
final class GoldenTests: XCTestCase {
    override class func tearDown() {
        print(GoldenCount.line)
        super.tearDown()
    }

    private var withModel: [(String, Golden)] { GoldenFiles.all.filter { $0.1.model != nil } }

    func testTokenizerMatchesHuggingFace() {
        XCTAssertGreaterThan(GoldenFiles.golden.tokenization.count, 10)
        for (_, g) in GoldenFiles.all {
            for c in g.tokenization {
                let t = GoldenFiles.tokenizer.withNormalizer(lowercase: c.lowercase, stripAccents: c.stripAccents).tokenize(c.text)
                XCTAssertEqual(t.map { $0.id }, c.ids, "ids of \(c.name)")
                XCTAssertEqual(t.map { [$0.start, $0.end] }, c.offsets, "offsets of \(c.name)")
                XCTAssertEqual(t.map { [$0.wordStart, $0.wordEnd] }, c.words, "word spans of \(c.name)")
                GoldenCount.tokenizer += 1
            }
        }
    }

    func testDecoderWindowsAndAnswersMatchPython() throws {
        XCTAssertGreaterThan(GoldenFiles.golden.decoder.count, 5)
        for (name, g) in GoldenFiles.all {
            let tok = GoldenFiles.tokenizer(of: g)
            for c in g.decoder {
                var k = 0
                let answers = try QaPipeline(tokenizer: tok, config: c.config) { w in
                    guard k < c.windows.count else { throw QaError.message("more windows than Python's in \(c.name)") }
                    let e = c.windows[k]
                    XCTAssertEqual(w.inputIds, e.inputIds, "input_ids of window \(k) of \(c.name)")
                    XCTAssertEqual(w.attentionMask, e.attentionMask, "attention_mask of window \(k) of \(c.name)")
                    XCTAssertEqual(w.tokenTypeIds, e.tokenTypeIds, "token_type_ids of window \(k) of \(c.name)")
                    k += 1
                    return (e.startLogits, e.endLogits)
                }.answer(question: c.question, context: c.context)
                XCTAssertEqual(k, c.windows.count, "number of windows of \(c.name)")
                XCTAssertEqual(Golden.compareAnswers(c.answers, answers, relTol: 1e-9), "", "\(name) \(c.name)")
                XCTAssertEqual(try SelfCheck.decoder(tok, c), "", "the app's self-check on \(c.name)")
                GoldenCount.decoder += 1
            }
        }
    }

    /// Python's own windows, independently of makeWindows: each full window holds
    /// max_seq_len - question - 3 context tokens, consecutive windows share doc_stride of them, and
    /// together they are the context, with the stride and length read from each case's config.
    func testWindowsOverlapByTheFilesStride() {
        var multi = 0
        for (name, g) in GoldenFiles.all {
            let tok = GoldenFiles.tokenizer(of: g)
            var sequences: [(String, String, String, QaConfig, [[Int32]])] = g.decoder.map { c in
                (c.name, c.question, c.context, c.config, c.windows.map { w in zip(w.inputIds, w.attentionMask).filter { $0.1 != 0 }.map { $0.0 } })
            }
            sequences += g.qa.map { c in (c.name, c.question, c.context, c.config, c.windows.map { $0.inputIds }) }
            for (case_, question, context, cfg, windows) in sequences {
                let q = tok.tokenize(question).count
                let ctx = tok.tokenize(context).map { Int32($0.id) }
                let room = cfg.maxSeqLen - q - 3
                let parts = windows.map { Array($0[(q + 2)..<($0.count - 1)]) }
                var covered: [Int32] = []
                for (k, p) in parts.enumerated() {
                    if k < parts.count - 1 { XCTAssertEqual(p.count, room, "\(name) \(case_): window \(k) is not full") }
                    if k > 0 {
                        XCTAssertEqual(Array(parts[k - 1].suffix(cfg.docStride)), Array(p.prefix(cfg.docStride)), "\(name) \(case_): stride")
                        covered += p.dropFirst(cfg.docStride)
                    } else {
                        covered += p
                    }
                }
                XCTAssertEqual(covered, ctx, "\(name) \(case_): the windows are not the context")
                if parts.count > 1 { multi += 1 }
            }
        }
        XCTAssertGreaterThan(multi, 0, "no case with several windows")
    }

    func testThereAreBundlesToReplay() {
        XCTAssertFalse(withModel.isEmpty, "no golden.json with a model section under \(GoldenFiles.dir.path)")
    }

    func testTheFilesOwnOutputsPass() {
        for (name, g) in withModel {
            XCTAssertEqual(ModelCheck.checkCases(g.bounds, g.modelCases, g.modelCases.map { $0.outputs }), [], "\(name): \(g.bounds)")
            XCTAssertFalse(g.bounds.isEmpty, "\(name) has no bounds")
            for c in g.modelCases {
                XCTAssertEqual(ModelCheck.bestSpan(c.outputs["start_logits"]!, c.outputs["end_logits"]!, c.attentionMask), c.bestSpan, name)
            }
            GoldenCount.bundle += g.modelCases.count
        }
    }

    func testDifferentNumbersFail() {
        for (name, g) in withModel {
            // One real logit off by far more than any bound allows.
            let shifted = g.modelCases.map { c in c.outputs.mapValues { v -> [Float] in var w = v; w[c.bestSpan[0]] -= 1000; return w } }
            XCTAssertFalse(ModelCheck.checkCases(g.bounds, g.modelCases, shifted).isEmpty, "\(name): a shifted logit passed")
            // Noise that keeps the norm: cosine / PSNR / max_abs must notice (fixed seed).
            var rng = SplitMix(seed: 7)
            let noisy = g.modelCases.map { c in c.outputs.mapValues { v in v.map { $0 + Float(rng.gaussian() * 3) } } }
            XCTAssertFalse(ModelCheck.checkCases(g.bounds, g.modelCases, noisy).isEmpty, "\(name): noisy outputs passed")
        }
    }

    func testEachValueBoundIsApplied() {
        for (name, g) in withModel {
            guard let maxAbs = g.bounds["max_abs"] else { continue }
            // One real logit off by 3 x max_abs: cosine and PSNR hardly move, max_abs must catch it.
            let nudged = g.modelCases.map { c in c.outputs.mapValues { v -> [Float] in var w = v; w[c.bestSpan[0]] += Float(3 * maxAbs); return w } }
            XCTAssertFalse(ModelCheck.checkCases(["max_abs": maxAbs], g.modelCases, nudged).isEmpty, "\(name): max_abs not applied")
            let scaled = g.modelCases.map { c in c.outputs.mapValues { v in v.map { $0 * 1.5 } } }
            XCTAssertEqual(ModelCheck.checkCases(["min_cosine": 0.9999], g.modelCases, scaled), [], "cosine ignores scale")
            XCTAssertFalse(ModelCheck.checkCases(["min_psnr": 30], g.modelCases, scaled).isEmpty, "\(name): PSNR not applied")
            let flipped = g.modelCases.map { c in c.outputs.mapValues { v in v.enumerated().map { $0.offset % 2 == 0 ? $0.element : -$0.element } } }
            XCTAssertFalse(ModelCheck.checkCases(["min_cosine": 0.9], g.modelCases, flipped).isEmpty, "\(name): cosine not applied")
        }
    }

    func testNearTiesDoNotCount() {
        for (name, g) in withModel {
            // Non-decisive cases answer differently (negated logits), decisive ones keep the file's outputs.
            let mixed = g.modelCases.map { c in
                c.decisive ? c.outputs : c.outputs.mapValues { v in v.enumerated().map { c.attentionMask[$0.offset] == 1 ? -$0.element : $0.element } }
            }
            let moved = zip(g.modelCases, mixed).filter { c, m in
                !c.decisive && ModelCheck.bestSpan(m["start_logits"]!, m["end_logits"]!, c.attentionMask) != c.bestSpan
            }.count
            XCTAssertTrue(g.modelCases.contains { !$0.decisive }, "\(name): no near-tie case to test with")
            XCTAssertGreaterThan(moved, 0, name)
            XCTAssertEqual(ModelCheck.checkCases(["min_agreement": 1.0], g.modelCases, mixed), [], name)
        }
    }

    func testAgreementCountsDecisiveCasesOnly() {
        for (name, g) in withModel {
            // Negate every real logit: the best span moves on decisive cases.
            let reversed = g.modelCases.map { c in
                c.outputs.mapValues { v in v.enumerated().map { c.attentionMask[$0.offset] == 1 ? -$0.element : $0.element } }
            }
            let fails = ModelCheck.checkCases(["min_agreement": 1.0], g.modelCases, reversed)
            if g.modelCases.contains(where: { $0.decisive }) { XCTAssertFalse(fails.isEmpty, "\(name): reversed logits agreed") } else { XCTAssertEqual(fails, []) }
        }
    }

    func testUnknownBoundsFail() {
        guard let g = withModel.first?.1 else { return XCTFail("no model section") }
        var bounds = g.bounds
        bounds["min_recall_at_10"] = 0.9
        XCTAssertFalse(ModelCheck.checkCases(bounds, g.modelCases, g.modelCases.map { $0.outputs }).isEmpty)
    }

    /// Tokenizer, windows (padding included) and decoder reproduce each QA case's answers from the
    /// file's logits: the real SQuAD model's 44 questions (no-answer ones too) and the bundles'.
    func testQaCasesReplayTokenizerWindowsAndDecoderOnTheFilesLogits() throws {
        XCTAssertFalse(GoldenFiles.all.allSatisfy { $0.1.qa.isEmpty }, "no QA case")
        for (name, g) in GoldenFiles.all {
            let tok = GoldenFiles.tokenizer(of: g)
            for c in g.qa {
                var k = 0
                let answers = try QaPipeline(tokenizer: tok, config: c.config) { w in
                    guard k < c.windows.count else { throw QaError.message("more windows than Python's in \(c.name)") }
                    let e = c.windows[k]
                    k += 1
                    let n = e.inputIds.count
                    XCTAssertEqual(Array(w.inputIds.prefix(n)), e.inputIds, "\(name) \(c.name): window ids")
                    XCTAssertEqual(w.inputIds.count, c.config.paddedLength(questionTokens: tok.tokenize(c.question).count,
                                                                           contextTokens: tok.tokenize(c.context).count) ?? n)
                    XCTAssertEqual(Array(w.attentionMask.dropFirst(n)), [Int32](repeating: 0, count: w.inputIds.count - n))
                    let pad = [Float](repeating: 0, count: w.inputIds.count - n)
                    return (e.startLogits + pad, e.endLogits + pad)
                }.answer(question: c.question, context: c.context)
                XCTAssertEqual(k, c.windows.count, "\(name) \(c.name): windows")
                XCTAssertEqual(Golden.compareAnswers(c.answers, answers, relTol: 1e-9), "", "\(name) \(c.name)")
                XCTAssertEqual(ModelCheck.checkQa(c, answers), "")
                // A device answering something else fails a decisive case.
                if c.decisive, let a = c.answers.first, a.end > 0 {
                    XCTAssertNotEqual(ModelCheck.checkQa(c, [Answer(text: "x", start: a.end + 1000, end: a.end + 1001, score: 1)]), "")
                }
                GoldenCount.qa += 1
            }
        }
        let noAnswer = GoldenFiles.golden.qa.filter { $0.config.handleImpossibleAnswer }
        XCTAssertTrue(noAnswer.contains { $0.answers.first?.text == "" }, "no no-answer case in golden.json")
    }

    func testBucketsPickTheSmallestLengthThatFits() {
        for (name, g) in GoldenFiles.all {
            for b in g.buckets {
                XCTAssertEqual(ModelCheck.pickSeqLen(g.bucketSeqLens, questionTokens: b.questionTokens, contextTokens: b.contextTokens),
                               b.seqLen, "\(name): q \(b.questionTokens) c \(b.contextTokens)")
                GoldenCount.buckets += 1
            }
        }
    }

    /// The same choice through the pipeline: a config with the file's lengths as buckets pads the
    /// windows of a question of that size to the bucket case's length.
    func testBucketChoiceThroughTheWindows() throws {
        for (name, g) in GoldenFiles.all where g.buckets.count > 0 {
            let geometry = try QaGeometry(golden: g)
            var cfg = geometry.config(topK: 1)
            cfg.buckets = g.bucketSeqLens
            cfg.maxSeqLen = g.bucketSeqLens.last!
            cfg.padTo = nil
            for b in g.buckets {
                let ws = try QaDecoder.makeWindows(question: Array(repeating: 2000, count: b.questionTokens),
                                                   context: Array(repeating: 3000, count: b.contextTokens), cls: 101, sep: 102, pad: 0, config: cfg)
                XCTAssertTrue(ws.allSatisfy { $0.inputIds.count == b.seqLen }, "\(name): q \(b.questionTokens) c \(b.contextTokens)")
            }
        }
    }

    /// The app's pipeline settings come from the file (QaGeometry) and reproduce every QA case.
    func testTheAppsGeometryIsTheFilesAndReplaysItsAnswers() throws {
        for (name, g) in GoldenFiles.all where !g.qa.isEmpty {
            let geometry = try QaGeometry(golden: g)
            let model = ReplayModel(g)
            let tok = GoldenFiles.tokenizer(of: g)
            for c in g.qa {
                let cfg = geometry.config(topK: c.config.topK, handleImpossibleAnswer: c.config.handleImpossibleAnswer,
                                          alignToWords: c.config.alignToWords)
                XCTAssertEqual(cfg.maxSeqLen, c.config.maxSeqLen, name)
                XCTAssertEqual(cfg.docStride, c.config.docStride, name)
                XCTAssertEqual(cfg.maxAnswerLen, c.config.maxAnswerLen, name)
                if geometry.buckets == nil { XCTAssertEqual(cfg, c.config, name) }
                let answers = try QaPipeline(tokenizer: tok, config: cfg) { try model.runWindow($0) }.answer(question: c.question, context: c.context)
                XCTAssertEqual(Golden.compareAnswers(c.answers, answers, relTol: 1e-9), "", "\(name) \(c.name)")
            }
        }
        XCTAssertThrowsError(try QaGeometry(golden: try Golden(text: #"{"format": "edgekit-golden/2"}"#)))
    }

    /// Each file's stored `qa_geometry` is the geometry its QA cases were answered with (the reader's
    /// fallback for files without one), so the app windows text as Python did.
    func testTheStoredGeometryIsTheCases() throws {
        var checked = 0
        for (name, url) in GoldenFiles.urls {
            let text = String(decoding: GoldenFiles.data(url), as: UTF8.self)
            let g = try Golden(text: text)
            guard let stored = g.qaGeometry, !g.qa.isEmpty else { continue }
            let without = try Golden(text: text.replacingOccurrences(of: "\"qa_geometry\":", with: "\"qa_geometry_hidden\":"))
            XCTAssertNil(without.qaGeometry, name)
            XCTAssertEqual(try QaGeometry(golden: without), stored, name)
            XCTAssertEqual(try QaGeometry(golden: g), stored, name)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0, "no golden file with a qa_geometry and QA cases")
    }

    /// The app's "Self-check golden.json" passes on the files' own numbers and fails on others.
    func testTheAppsSelfCheck() {
        for (name, g) in GoldenFiles.all {
            let tok = GoldenFiles.tokenizer(of: g)
            let (passed, failures) = SelfCheck.runAll(golden: g, tokenizer: tok, model: ReplayModel(g))
            XCTAssertEqual(failures, [], name)
            XCTAssertEqual(passed, g.tokenization.count + g.decoder.count + (g.modelCases.isEmpty ? 0 : 1) + g.qa.count, name)
            if !g.modelCases.isEmpty {
                let (_, bad) = SelfCheck.runAll(golden: g, tokenizer: tok, model: ReplayModel(g, perturbed: true))
                XCTAssertFalse(bad.isEmpty, "\(name): another model's numbers passed the self-check")
            }
        }
    }

    /// One token of golden.json changed: the replay notices.
    func testAChangedTokenInGoldenJsonFails() throws {
        let text = String(decoding: GoldenFiles.data(GoldenFiles.dir.appendingPathComponent("golden.json")), as: UTF8.self)
        // The first number after the first "ids": is the first id of the first tokenizer case.
        guard let key = text.range(of: "\"ids\":"), let from = text[key.upperBound...].firstIndex(where: { $0.isNumber }),
              let to = text[from...].firstIndex(where: { !$0.isNumber }), let id = Int(text[from..<to]) else {
            return XCTFail("no \"ids\" in golden.json")
        }
        XCTAssertEqual(id, GoldenFiles.golden.tokenization.first?.ids.first)
        let changed = try Golden(text: text.replacingCharacters(in: from..<to, with: String(id + 1)))
        XCTAssertEqual(SelfCheck.tokenizer(GoldenFiles.tokenizer, GoldenFiles.golden.tokenization[0]), "")
        XCTAssertNotEqual(SelfCheck.tokenizer(GoldenFiles.tokenizer, changed.tokenization[0]), "")
    }
}

/// Deterministic normal noise for the bound tests (SplitMix64 + Box-Muller).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func gaussian() -> Double {
        let u = max(uniform(), 1e-300), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}
