import Foundation

/// What a device's outputs must satisfy: the rules of edgekit/golden.py (`check_model_case`,
/// `check_model_cases`, `pick_seq_len`) and android-demo ModelCheck.kt. Every bound of
/// golden.json's `model.bounds` is applied; agreement counts decisive cases only.
public enum ModelCheck {
    public static let known: Set<String> = ["max_abs", "min_cosine", "min_psnr", "min_agreement"]
    public static let bestSpanMaxLen = 30

    /// Empty when `actual` meets the value bounds against the case's expected outputs, else what failed.
    public static func checkCase(_ bounds: [String: Double], _ c: Golden.ModelCase, _ actual: [String: [Float]]) -> [String] {
        var fails: [String] = []
        for k in bounds.keys.sorted() where !known.contains(k) { fails.append("unknown bound \(k) in golden.json: update the app") }
        for (name, expected) in c.outputs.sorted(by: { $0.key < $1.key }) {
            guard let got = actual[name] else { fails.append("no output \(name)"); continue }
            if got.count < expected.count || c.attentionMask.count < expected.count {
                fails.append("\(name) has \(got.count) values, expected \(expected.count)"); continue
            }
            var worst = 0.0, dot = 0.0, na = 0.0, ne = 0.0, se = 0.0, peak = 0.0
            var n = 0
            for i in expected.indices where c.attentionMask[i] != 0 {
                let a = Double(got[i]), e = Double(expected[i])
                let d = abs(a - e)
                if !(d <= worst) { worst = d }  // NaN propagates as a failure
                dot += a * e; na += a * a; ne += e * e; se += (a - e) * (a - e)
                peak = max(peak, abs(e)); n += 1
            }
            if let m = bounds["max_abs"], !(worst <= m) { fails.append("\(name) max_abs \(worst) > \(m)") }
            if let m = bounds["min_cosine"] {
                let cos = (na == 0 || ne == 0) ? (na == ne ? 1.0 : 0.0) : dot / (na * ne).squareRoot()
                if !(cos >= m) { fails.append("\(name) cosine \(cos) < \(m)") }
            }
            if let m = bounds["min_psnr"] {
                let rms = (se / Double(max(n, 1))).squareRoot()
                let psnr = 20 * log10((peak + 1e-5) / (rms + 1e-10))
                if !(psnr >= m) { fails.append("\(name) PSNR \(psnr) dB < \(m) dB") }
            }
        }
        return fails
    }

    /// parity.best_span: max start + end logit over real tokens, start <= end < start + maxLen; ties to the first.
    public static func bestSpan(_ start: [Float], _ end: [Float], _ mask: [Int32], maxLen: Int = bestSpanMaxLen) -> [Int] {
        var best = -Double.infinity, bs = -1, be = -1
        let n = min(mask.count, start.count, end.count)
        for i in 0..<n where mask[i] != 0 {
            for j in i..<min(n, i + maxLen) where mask[j] != 0 {
                let s = Double(start[i]) + Double(end[j])
                if s > best { best = s; bs = i; be = j }
            }
        }
        return [bs, be]
    }

    /// All model cases: value bounds per case, and best-span agreement >= min_agreement on the decisive ones.
    public static func checkCases(_ bounds: [String: Double], _ cases: [Golden.ModelCase], _ actuals: [[String: [Float]]]) -> [String] {
        var fails: [String] = []
        var hits = 0, decisive = 0
        for (k, (c, a)) in zip(cases, actuals).enumerated() {
            fails += checkCase(bounds, c, a).map { "case \(k): \($0)" }
            if c.decisive {
                decisive += 1
                if let s = a["start_logits"], let e = a["end_logits"], bestSpan(s, e, c.attentionMask) == c.bestSpan { hits += 1 }
            }
        }
        if cases.count != actuals.count { fails.append("\(actuals.count) outputs for \(cases.count) cases") }
        if let m = bounds["min_agreement"], decisive > 0, Double(hits) / Double(decisive) < m {
            fails.append("best span agrees on \(hits)/\(decisive) decisive cases < \(m)")
        }
        return fails
    }

    /// The device's answers against the file's: exact best span on a decisive case, one of the file's top-k otherwise.
    public static func checkQa(_ c: Golden.QaCase, _ actual: [Answer]) -> String {
        guard let e = c.answers.first else { return actual.isEmpty ? "" : "'\(c.name)': expected no answer" }
        guard let a = actual.first else { return "'\(c.name)': no answer" }
        if c.decisive {
            if e.start != a.start || e.end != a.end {
                return "'\(c.name)': expected '\(e.text)' [\(e.start), \(e.end)), got '\(a.text)' [\(a.start), \(a.end))"
            }
        } else if !c.answers.contains(where: { $0.start == a.start && $0.end == a.end }) {
            return "'\(c.name)': '\(a.text)' [\(a.start), \(a.end)) is not among the file's top \(c.answers.count)"
        }
        return ""
    }

    /// The length to run: the smallest bucket that holds [CLS] q [SEP] c [SEP], else the longest (windows).
    public static func pickSeqLen(_ seqLens: [Int], questionTokens: Int, contextTokens: Int) -> Int? {
        let sorted = seqLens.sorted()
        let need = questionTokens + contextTokens + 3
        return sorted.first(where: { $0 >= need }) ?? sorted.last
    }
}
