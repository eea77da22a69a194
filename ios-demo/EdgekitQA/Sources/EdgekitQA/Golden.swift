import Foundation

/// golden.json written by `edgekit bundle` / `python -m edgekit.golden` (format edgekit-golden/1).
public struct Golden {
    public struct TokenCase { public let name: String; public let text: String; public let ids: [Int]; public let offsets: [[Int]]; public let words: [[Int]] }
    public struct WindowCase { public let inputIds: [Int32]; public let attentionMask: [Int32]; public let tokenTypeIds: [Int32]; public let startLogits: [Float]; public let endLogits: [Float] }
    public struct DecoderCase { public let name: String; public let question: String; public let context: String; public let config: QaConfig; public let windows: [WindowCase]; public let answers: [Answer] }
    public struct ModelCase { public let inputIds: [Int32]; public let attentionMask: [Int32]; public let tokenTypeIds: [Int32]; public let outputs: [String: [Float]] }
    public struct QaCase { public let name: String; public let question: String; public let context: String; public let config: QaConfig; public let answers: [Answer] }

    public let tokenization: [TokenCase]
    public let decoder: [DecoderCase]
    public let modelCases: [ModelCase]
    /// Parity bounds from the export record (nil when the record does not set them).
    public let atol: Double?
    public let rtol: Double
    public let minCosine: Double?
    public let qa: [QaCase]

    public init(data: Data) throws {
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              root["format"] as? String == "edgekit-golden/1" else {
            throw QaError.message("not an edgekit-golden/1 file: regenerate it with this edgekit version")
        }
        func ints(_ v: Any?) -> [Int] { (v as? [NSNumber] ?? []).map { $0.intValue } }
        func i32(_ v: Any?) -> [Int32] { (v as? [NSNumber] ?? []).map { $0.int32Value } }
        func floats(_ v: Any?) -> [Float] { (v as? [NSNumber] ?? []).map { Float($0.doubleValue) } }
        func objs(_ v: Any?) -> [[String: Any]] { v as? [[String: Any]] ?? [] }
        func str(_ v: Any?) -> String { v as? String ?? "" }
        tokenization = objs(root["tokenization"]).map {
            TokenCase(name: str($0["name"]), text: str($0["text"]), ids: ints($0["ids"]),
                      offsets: ($0["offsets"] as? [Any] ?? []).map { ints($0) }, words: ($0["words"] as? [Any] ?? []).map { ints($0) })
        }
        decoder = objs(root["decoder"]).map { c in
            DecoderCase(name: str(c["name"]), question: str(c["question"]), context: str(c["context"]),
                        config: Golden.config(c["config"]),
                        windows: objs(c["windows"]).map {
                            WindowCase(inputIds: i32($0["input_ids"]), attentionMask: i32($0["attention_mask"]), tokenTypeIds: i32($0["token_type_ids"]),
                                       startLogits: floats($0["start_logits"]), endLogits: floats($0["end_logits"]))
                        },
                        answers: Golden.answers(c["answers"]))
        }
        let model = root["model"] as? [String: Any]
        atol = (model?["atol"] as? NSNumber)?.doubleValue
        rtol = (model?["rtol"] as? NSNumber)?.doubleValue ?? 0
        minCosine = (model?["min_cosine"] as? NSNumber)?.doubleValue
        modelCases = objs(model?["cases"]).map { c in
            var outs: [String: [Float]] = [:]
            for (k, v) in c["outputs"] as? [String: Any] ?? [:] { outs[k] = floats(v) }
            return ModelCase(inputIds: i32(c["input_ids"]), attentionMask: i32(c["attention_mask"]), tokenTypeIds: i32(c["token_type_ids"]), outputs: outs)
        }
        qa = objs(root["qa"]).map {
            QaCase(name: str($0["name"]), question: str($0["question"]), context: str($0["context"]),
                   config: Golden.config($0["config"]), answers: Golden.answers($0["answers"]))
        }
    }

    static func config(_ v: Any?) -> QaConfig {
        let c = v as? [String: Any] ?? [:]
        var q = QaConfig()
        q.maxSeqLen = (c["max_seq_len"] as? NSNumber)?.intValue ?? q.maxSeqLen
        q.docStride = (c["doc_stride"] as? NSNumber)?.intValue ?? q.docStride
        q.maxAnswerLen = (c["max_answer_len"] as? NSNumber)?.intValue ?? q.maxAnswerLen
        q.topK = (c["top_k"] as? NSNumber)?.intValue ?? q.topK
        q.handleImpossibleAnswer = (c["handle_impossible_answer"] as? Bool) ?? false
        q.alignToWords = (c["align_to_words"] as? Bool) ?? true
        q.padTo = (c["pad_to"] as? NSNumber)?.intValue
        return q
    }

    static func answers(_ v: Any?) -> [Answer] {
        (v as? [[String: Any]] ?? []).map {
            Answer(text: $0["text"] as? String ?? "", start: ($0["start"] as? NSNumber)?.intValue ?? -1,
                   end: ($0["end"] as? NSNumber)?.intValue ?? -1, score: ($0["score"] as? NSNumber)?.doubleValue ?? -1)
        }
    }

    /// Empty when equal, else the first difference.
    public static func compareAnswers(_ expected: [Answer], _ actual: [Answer], relTol: Double) -> String {
        if expected.count != actual.count { return "expected \(expected.count) answers, got \(actual.count)" }
        for (i, (e, a)) in zip(expected, actual).enumerated() {
            if e.start != a.start || e.end != a.end || e.text != a.text {
                return "answer \(i): expected '\(e.text)' [\(e.start), \(e.end)), got '\(a.text)' [\(a.start), \(a.end))"
            }
            if abs(e.score - a.score) > relTol * max(abs(e.score), 1e-300) { return "answer \(i): expected score \(e.score), got \(a.score)" }
        }
        return ""
    }
}
