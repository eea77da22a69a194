import CoreML
import EdgekitQA
import Foundation

/// On-device replay of golden.json (mirrors android-demo GoldenChecks.kt). Empty string = pass.
enum GoldenChecks {
    static func tokenizer(_ tok: BertTokenizer, _ c: Golden.TokenCase) -> String {
        let t = tok.tokenize(c.text)
        if t.map({ $0.id }) != c.ids { return "ids differ for '\(c.name)'" }
        if t.map({ [$0.start, $0.end] }) != c.offsets { return "offsets differ for '\(c.name)'" }
        if t.map({ [$0.wordStart, $0.wordEnd] }) != c.words { return "word spans differ for '\(c.name)'" }
        return ""
    }

    static func decoder(_ tok: BertTokenizer, _ c: Golden.DecoderCase) throws -> String {
        var k = 0
        let answers = try QaPipeline(tokenizer: tok, config: c.config) { _ in
            defer { k += 1 }
            return (c.windows[k].startLogits, c.windows[k].endLogits)
        }.answer(question: c.question, context: c.context)
        if k != c.windows.count { return "'\(c.name)': \(k) windows instead of \(c.windows.count)" }
        return Golden.compareAnswers(c.answers, answers, relTol: 1e-9)
    }

    /// Parity against PyTorch on real tokens: |a - e| <= atol + rtol * |e| and cosine >= minCosine (export record bounds).
    static func model(_ g: Golden, _ m: CoreMLQaModel, _ c: Golden.ModelCase) throws -> String {
        if g.atol == nil && g.minCosine == nil { return "golden.json model section has no tolerance" }
        let out = try m.run(inputIds: c.inputIds, attentionMask: c.attentionMask, tokenTypeIds: c.tokenTypeIds)
        for (name, expected) in c.outputs {
            guard let actual = out[name] else { return "no output \(name)" }
            var dot = 0.0, na = 0.0, ne = 0.0
            for i in expected.indices where c.attentionMask[i] != 0 {
                let a = Double(actual[i]), e = Double(expected[i])
                if let atol = g.atol, abs(a - e) > atol + g.rtol * abs(e) {
                    return "\(name)[\(i)] = \(a), expected \(e) (atol \(atol), rtol \(g.rtol))"
                }
                dot += a * e; na += a * a; ne += e * e
            }
            let cosine = dot / (na * ne).squareRoot()
            if let minCos = g.minCosine, !(cosine >= minCos) { return "\(name) cosine \(cosine) < \(minCos)" }
        }
        return ""
    }

    static func qa(_ p: QaPipeline, _ c: Golden.QaCase) throws -> String {
        guard let a = try p.answer(question: c.question, context: c.context).first, let e = c.answers.first else { return "'\(c.name)': no answer" }
        return (a.start == e.start && a.end == e.end) ? "" : "'\(c.name)': expected '\(e.text)', got '\(a.text)'"
    }

    static func runAll(_ assets: DemoAssets, units: MLComputeUnits) throws -> (Int, [String]) {
        let m = try CoreMLQaModel(computeUnits: units, outputNames: assets.outputNames)
        let g = assets.golden
        var results: [String] = []
        results += g.tokenization.map { tokenizer(assets.tokenizer, $0) }
        results += try g.decoder.map { try decoder(assets.tokenizer, $0) }
        results += try g.modelCases.map { try model(g, m, $0) }
        results += try g.qa.map { c in
            var cfg = c.config
            cfg.padTo = m.seqLen
            return try qa(QaPipeline(tokenizer: assets.tokenizer, config: cfg) { try m.runWindow($0) }, c)
        }
        let failures = results.filter { !$0.isEmpty }
        return (results.count - failures.count, failures)
    }
}
