import CoreML
import EdgekitQA
import Foundation

/// On-device replay of golden.json (mirrors android-demo GoldenChecks.kt). Empty string = pass.
enum GoldenChecks {
    static func tokenizer(_ tok: BertTokenizer, _ c: Golden.TokenCase) -> String {
        let t = tok.withNormalizer(lowercase: c.lowercase, stripAccents: c.stripAccents).tokenize(c.text)
        if t.map({ $0.id }) != c.ids { return "ids differ for '\(c.name)'" }
        if t.map({ [$0.start, $0.end] }) != c.offsets { return "offsets differ for '\(c.name)'" }
        if t.map({ [$0.wordStart, $0.wordEnd] }) != c.words { return "word spans differ for '\(c.name)'" }
        return ""
    }

    /// Windows (ids, mask, token types) and answers against Python's, from the stored logits.
    static func decoder(_ tok: BertTokenizer, _ c: Golden.DecoderCase) throws -> String {
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

    /// The model on this device against the file's own outputs, with every bound of its record (ModelCheck).
    static func modelCases(_ g: Golden, _ m: CoreMLQaModel) throws -> [String] {
        let actuals = try g.modelCases.map { try m.run(inputIds: $0.inputIds, attentionMask: $0.attentionMask, tokenTypeIds: $0.tokenTypeIds) }
        return ModelCheck.checkCases(g.bounds, g.modelCases, actuals)
    }

    /// A check that throws is a failure with its message, never the end of the self-check.
    static func safe(_ name: String, _ check: () throws -> String) -> String {
        do { return try check() } catch { return "\(name): \(error)" }
    }

    static func runAll(_ assets: DemoAssets, _ m: CoreMLQaModel) throws -> (Int, [String]) {
        let g = assets.golden
        var results: [String] = []
        results += g.tokenization.map { c in safe(c.name) { tokenizer(assets.tokenizer, c) } }
        results += g.decoder.map { c in safe(c.name) { try decoder(assets.tokenizer, c) } }
        if !g.modelCases.isEmpty {
            do {
                let fails = try modelCases(g, m)
                results += fails.isEmpty ? [""] : fails
            } catch {
                results.append("model cases: \(error)")
            }
        }
        results += g.qa.map { c in
            safe(c.name) {
                let answers = try QaPipeline(tokenizer: assets.tokenizer, config: c.config) { try m.runWindow($0) }
                    .answer(question: c.question, context: c.context)
                return ModelCheck.checkQa(c, answers)
            }
        }
        let failures = results.filter { !$0.isEmpty }
        return (results.count - failures.count, failures)
    }
}
