/// golden.json written by `edgekit bundle` / `python -m edgekit.golden` (format edgekit-golden/2).
/// Mirrors android-demo Golden.kt.
public struct Golden {
    public static let format = "edgekit-golden/2"

    public struct TokenCase {
        public let name: String; public let text: String; public let ids: [Int]; public let offsets: [[Int]]; public let words: [[Int]]
        public let lowercase: Bool; public let stripAccents: Bool
    }
    public struct WindowCase { public let inputIds: [Int32]; public let attentionMask: [Int32]; public let tokenTypeIds: [Int32]; public let startLogits: [Float]; public let endLogits: [Float] }
    public struct DecoderCase { public let name: String; public let question: String; public let context: String; public let config: QaConfig; public let windows: [WindowCase]; public let answers: [Answer] }
    /// ids/mask -> the shipped file's outputs, with the best span and decisive flag Python computed.
    public struct ModelCase {
        public let inputIds: [Int32]; public let attentionMask: [Int32]; public let tokenTypeIds: [Int32]; public let outputs: [String: [Float]]
        public let bestSpan: [Int]; public let decisive: Bool
    }
    public struct QaWindow { public let inputIds: [Int32]; public let startLogits: [Float]; public let endLogits: [Float] }
    public struct QaCase {
        public let name: String; public let question: String; public let context: String; public let config: QaConfig; public let answers: [Answer]
        public let decisive: Bool; public let windows: [QaWindow]; public let referenceAnswers: [String]
    }
    public struct BucketCase { public let questionTokens: Int; public let contextTokens: Int; public let seqLen: Int }

    public let doLowerCase: Bool
    public let stripAccents: Bool
    public let tokenization: [TokenCase]
    public let decoder: [DecoderCase]
    public let modelCases: [ModelCase]
    /// Every bound the export record validated with, as the apps apply them (see ModelCheck).
    public let bounds: [String: Double]
    /// Sequence lengths of the shipped file, ascending (several for a length-bucket export).
    public let seqLens: [Int]
    public let qa: [QaCase]
    public let buckets: [BucketCase]
    /// The lengths the bucket cases pick from.
    public let bucketSeqLens: [Int]

    public init(text: String) throws {
        let root = J.obj(try MiniJson.parse(text))
        guard J.str(root["format"]) == Golden.format else {
            throw QaError.message("golden.json is \(J.str(root["format"])), this app reads \(Golden.format): regenerate it with this edgekit version")
        }
        let tok = J.obj(root["tokenizer"])
        let lower = J.bool(tok["do_lower_case"]) ?? true
        doLowerCase = lower
        stripAccents = J.bool(tok["strip_accents"]) ?? lower
        tokenization = J.list(root["tokenization"]).map { v -> TokenCase in
            let c = J.obj(v)
            let lo = J.bool(c["lowercase"]) ?? lower
            return TokenCase(name: J.str(c["name"]), text: J.str(c["text"]), ids: J.ints(c["ids"]),
                             offsets: J.list(c["offsets"]).map { J.ints($0) }, words: J.list(c["words"]).map { J.ints($0) },
                             lowercase: lo, stripAccents: J.bool(c["strip_accents"]) ?? lo)
        }
        decoder = J.list(root["decoder"]).map { v -> DecoderCase in
            let c = J.obj(v)
            return DecoderCase(name: J.str(c["name"]), question: J.str(c["question"]), context: J.str(c["context"]),
                               config: Golden.config(c["config"]),
                               windows: J.list(c["windows"]).map { w -> WindowCase in
                                   let m = J.obj(w)
                                   return WindowCase(inputIds: J.i32s(m["input_ids"]), attentionMask: J.i32s(m["attention_mask"]),
                                                     tokenTypeIds: J.i32s(m["token_type_ids"]), startLogits: J.floats(m["start_logits"]),
                                                     endLogits: J.floats(m["end_logits"]))
                               },
                               answers: Golden.answers(c["answers"]))
        }
        let model = root["model"] as? [String: Any]
        var b: [String: Double] = [:]
        for (k, v) in J.obj(model?["bounds"]) { if let d = J.dbl(v) { b[k] = d } }
        bounds = b
        let lens = model.map { J.ints($0["seq_lens"]) } ?? J.ints(J.obj(root["buckets"])["seq_lens"])
        seqLens = lens.sorted()
        modelCases = J.list(model?["cases"]).map { v -> ModelCase in
            let c = J.obj(v)
            var outs: [String: [Float]] = [:]
            for (k, o) in J.obj(c["outputs"]) { outs[k] = J.floats(o) }
            return ModelCase(inputIds: J.i32s(c["input_ids"]), attentionMask: J.i32s(c["attention_mask"]),
                             tokenTypeIds: J.i32s(c["token_type_ids"]), outputs: outs,
                             bestSpan: J.ints(c["best_span"]), decisive: J.bool(c["decisive"]) ?? false)
        }
        qa = J.list(root["qa"]).map { v -> QaCase in
            let c = J.obj(v)
            return QaCase(name: J.str(c["name"]), question: J.str(c["question"]), context: J.str(c["context"]),
                          config: Golden.config(c["config"]), answers: Golden.answers(c["answers"]),
                          decisive: J.bool(c["decisive"]) ?? false,
                          windows: J.list(c["windows"]).map { w -> QaWindow in
                              let m = J.obj(w)
                              return QaWindow(inputIds: J.i32s(m["input_ids"]), startLogits: J.floats(m["start_logits"]),
                                              endLogits: J.floats(m["end_logits"]))
                          },
                          referenceAnswers: J.list(c["reference_answers"]).map { J.str($0) })
        }
        bucketSeqLens = J.ints(J.obj(root["buckets"])["seq_lens"]).sorted()
        buckets = J.list(J.obj(root["buckets"])["cases"]).map { v -> BucketCase in
            let c = J.obj(v)
            return BucketCase(questionTokens: J.int(c["question_tokens"]) ?? 0, contextTokens: J.int(c["context_tokens"]) ?? 0,
                              seqLen: J.int(c["seq_len"]) ?? 0)
        }
    }

    static func config(_ v: Any?) -> QaConfig {
        let c = J.obj(v)
        var q = QaConfig()
        q.maxSeqLen = J.int(c["max_seq_len"]) ?? q.maxSeqLen
        q.docStride = J.int(c["doc_stride"]) ?? q.docStride
        q.maxAnswerLen = J.int(c["max_answer_len"]) ?? q.maxAnswerLen
        q.topK = J.int(c["top_k"]) ?? q.topK
        q.handleImpossibleAnswer = J.bool(c["handle_impossible_answer"]) ?? false
        q.alignToWords = J.bool(c["align_to_words"]) ?? true
        q.padTo = J.int(c["pad_to"])
        return q
    }

    static func answers(_ v: Any?) -> [Answer] {
        J.list(v).map { x -> Answer in
            let a = J.obj(x)
            return Answer(text: J.str(a["text"]), start: J.int(a["start"]) ?? -1, end: J.int(a["end"]) ?? -1, score: J.dbl(a["score"]) ?? -1)
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
