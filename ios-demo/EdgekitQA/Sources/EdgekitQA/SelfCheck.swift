import Dispatch
import Foundation

/// A model that maps one window to its outputs by edgekit name (start_logits, end_logits). The app's
/// Core ML wrapper conforms; the Linux tests replay the golden files' own logits through it.
public protocol QaModelRunner {
    func run(inputIds: [Int32], attentionMask: [Int32], tokenTypeIds: [Int32]) throws -> [String: [Float]]
}

extension QaModelRunner {
    public func runWindow(_ w: Window) throws -> ([Float], [Float]) {
        let out = try run(inputIds: w.inputIds, attentionMask: w.attentionMask, tokenTypeIds: w.tokenTypeIds)
        guard let s = out["start_logits"], let e = out["end_logits"] else {
            throw QaError.message("the model returned \(out.keys.sorted()), not start_logits and end_logits")
        }
        return (s, e)
    }
}

/// The app's on-device replay of golden.json ("Self-check golden.json", and the Xcode tests): every
/// case, each an empty string when it passes. Lives in the package so Linux compiles and tests it.
/// Mirrors android-demo GoldenChecks.kt.
public enum SelfCheck {
    public static func tokenizer(_ tok: BertTokenizer, _ c: Golden.TokenCase) -> String {
        let t = tok.withNormalizer(lowercase: c.lowercase, stripAccents: c.stripAccents).tokenize(c.text)
        if t.map({ $0.id }) != c.ids { return "ids differ for '\(c.name)'" }
        if t.map({ [$0.start, $0.end] }) != c.offsets { return "offsets differ for '\(c.name)'" }
        if t.map({ [$0.wordStart, $0.wordEnd] }) != c.words { return "word spans differ for '\(c.name)'" }
        return ""
    }

    /// Windows (ids, mask, token types) and answers against Python's, from the stored logits.
    public static func decoder(_ tok: BertTokenizer, _ c: Golden.DecoderCase) throws -> String {
        var k = 0
        var mismatch = ""
        let answers = try QaPipeline(tokenizer: tok, config: c.config) { w in
            guard k < c.windows.count else { throw QaError.message("'\(c.name)': more windows than Python's \(c.windows.count)") }
            let e = c.windows[k]
            if mismatch.isEmpty && (w.inputIds != e.inputIds || w.attentionMask != e.attentionMask || w.tokenTypeIds != e.tokenTypeIds) {
                mismatch = "window \(k) differs from Python's in '\(c.name)'"
            }
            k += 1
            return (e.startLogits, e.endLogits)
        }.answer(question: c.question, context: c.context)
        if !mismatch.isEmpty { return mismatch }
        if k != c.windows.count { return "'\(c.name)': \(k) windows instead of \(c.windows.count)" }
        return Golden.compareAnswers(c.answers, answers, relTol: 1e-9)
    }

    /// The model against the file's own outputs, with every bound of its record (ModelCheck).
    public static func modelCases(_ g: Golden, _ m: QaModelRunner) throws -> [String] {
        let actuals = try g.modelCases.map { try m.run(inputIds: $0.inputIds, attentionMask: $0.attentionMask, tokenTypeIds: $0.tokenTypeIds) }
        return ModelCheck.checkCases(g.bounds, g.modelCases, actuals)
    }

    /// One QA case end to end on the model: the file's best answer (decisive) or one of its top k.
    public static func qa(_ tok: BertTokenizer, _ c: Golden.QaCase, _ m: QaModelRunner) throws -> String {
        let answers = try QaPipeline(tokenizer: tok, config: c.config) { try m.runWindow($0) }.answer(question: c.question, context: c.context)
        return ModelCheck.checkQa(c, answers)
    }

    /// A check that throws is a failure with its message, never the end of the self-check.
    static func safe(_ name: String, _ check: () throws -> String) -> String {
        do { return try check() } catch { return "\(name): \(error)" }
    }

    /// Every case of `golden`: (passed, failure messages).
    public static func runAll(golden g: Golden, tokenizer: BertTokenizer, model m: QaModelRunner) -> (Int, [String]) {
        var results: [String] = []
        results += g.tokenization.map { c in safe(c.name) { SelfCheck.tokenizer(tokenizer, c) } }
        results += g.decoder.map { c in safe(c.name) { try SelfCheck.decoder(tokenizer, c) } }
        if !g.modelCases.isEmpty {
            do {
                let fails = try SelfCheck.modelCases(g, m)
                results += fails.isEmpty ? [""] : fails
            } catch {
                results.append("model cases: \(error)")
            }
        }
        results += g.qa.map { c in safe(c.name) { try SelfCheck.qa(tokenizer, c, m) } }
        let failures = results.filter { !$0.isEmpty }
        return (results.count - failures.count, failures)
    }
}

/// Latency of a repeated call: warm-up runs, then p50 / p90 of the timed ones (nearest rank).
public enum Latency {
    public struct Result: Equatable { public let p50: Double; public let p90: Double; public let runs: Int }

    public static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        let rank = min(max(Int((p / 100 * Double(sorted.count)).rounded(.up)), 1), sorted.count)
        return sorted[rank - 1]
    }

    /// Milliseconds of `body` over `runs` timed calls after `warmup` untimed ones.
    public static func measure(runs: Int, warmup: Int, _ body: () throws -> Void) throws -> Result {
        guard runs > 0 else { throw QaError.message("runs must be at least 1") }
        for _ in 0..<warmup { try body() }
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        times.sort()
        return Result(p50: percentile(times, 50), p90: percentile(times, 90), runs: runs)
    }
}
