import Foundation

/// golden.json written by `edgekit bundle` / `python -m edgekit.golden` (format edgekit-golden/2),
/// decoded with Foundation's JSONDecoder into typed models. Mirrors android-demo Golden.kt.
/// Every JSON field name is in a `CodingKeys` enum (the QA geometry's in QaGeometry.swift, which also
/// decides where the geometry is read from).
public struct Golden: Decodable {
    public static let format = "edgekit-golden/2"

    public struct TokenCase {
        public let name: String; public let text: String; public let ids: [Int]; public let offsets: [[Int]]; public let words: [[Int]]
        public let lowercase: Bool; public let stripAccents: Bool
    }
    public struct WindowCase: Decodable {
        public let inputIds: [Int32]; public let attentionMask: [Int32]; public let tokenTypeIds: [Int32]
        public let startLogits: [Float]; public let endLogits: [Float]
        enum CodingKeys: String, CodingKey {
            case inputIds = "input_ids", attentionMask = "attention_mask", tokenTypeIds = "token_type_ids"
            case startLogits = "start_logits", endLogits = "end_logits"
        }
    }
    public struct DecoderCase: Decodable {
        public let name: String; public let question: String; public let context: String; public let config: QaConfig
        public let windows: [WindowCase]; public let answers: [Answer]
        enum CodingKeys: String, CodingKey { case name, question, context, config, windows, answers }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name); question = try c.decode(String.self, forKey: .question)
            context = try c.decode(String.self, forKey: .context); config = try c.decode(QaConfig.self, forKey: .config)
            windows = try c.decode([WindowCase].self, forKey: .windows)
            answers = try c.decode([AnswerJSON].self, forKey: .answers).map { $0.answer }
        }
    }
    /// ids/mask -> the shipped file's outputs, with the best span and decisive flag Python computed.
    public struct ModelCase: Decodable {
        public let inputIds: [Int32]; public let attentionMask: [Int32]; public let tokenTypeIds: [Int32]; public let outputs: [String: [Float]]
        public let bestSpan: [Int]; public let decisive: Bool
        enum CodingKeys: String, CodingKey {
            case inputIds = "input_ids", attentionMask = "attention_mask", tokenTypeIds = "token_type_ids", outputs
            case bestSpan = "best_span", decisive
        }
        public init(inputIds: [Int32], attentionMask: [Int32], tokenTypeIds: [Int32], outputs: [String: [Float]], bestSpan: [Int], decisive: Bool) {
            self.inputIds = inputIds; self.attentionMask = attentionMask; self.tokenTypeIds = tokenTypeIds
            self.outputs = outputs; self.bestSpan = bestSpan; self.decisive = decisive
        }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(inputIds: try c.decode([Int32].self, forKey: .inputIds), attentionMask: try c.decode([Int32].self, forKey: .attentionMask),
                      tokenTypeIds: try c.decode([Int32].self, forKey: .tokenTypeIds), outputs: try c.decode([String: [Float]].self, forKey: .outputs),
                      bestSpan: try c.decode([Int].self, forKey: .bestSpan), decisive: try c.decodeIfPresent(Bool.self, forKey: .decisive) ?? false)
        }
    }
    /// A window of a QA case: its ids and the file's logits on the real (unpadded) tokens.
    public struct QaWindow: Decodable {
        public let inputIds: [Int32]; public let startLogits: [Float]; public let endLogits: [Float]
        enum CodingKeys: String, CodingKey { case inputIds = "input_ids", startLogits = "start_logits", endLogits = "end_logits" }
    }
    public struct QaCase: Decodable {
        public let name: String; public let question: String; public let context: String; public let config: QaConfig; public let answers: [Answer]
        public let decisive: Bool; public let windows: [QaWindow]; public let referenceAnswers: [String]
        enum CodingKeys: String, CodingKey {
            case name, question, context, config, answers, decisive, windows, referenceAnswers = "reference_answers"
        }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name); question = try c.decode(String.self, forKey: .question)
            context = try c.decode(String.self, forKey: .context); config = try c.decode(QaConfig.self, forKey: .config)
            answers = try c.decode([AnswerJSON].self, forKey: .answers).map { $0.answer }
            decisive = try c.decodeIfPresent(Bool.self, forKey: .decisive) ?? false
            windows = try c.decodeIfPresent([QaWindow].self, forKey: .windows) ?? []
            referenceAnswers = try c.decodeIfPresent([String].self, forKey: .referenceAnswers) ?? []
        }
    }
    public struct BucketCase: Decodable {
        public let questionTokens: Int; public let contextTokens: Int; public let seqLen: Int
        enum CodingKeys: String, CodingKey { case questionTokens = "question_tokens", contextTokens = "context_tokens", seqLen = "seq_len" }
    }
    /// The `model` section: the shipped file's lengths, its outputs on the golden inputs and the bounds a device must meet.
    public struct Model: Decodable {
        public let seqLen: Int?
        public let seqLens: [Int]?
        public let outputs: [String]?
        public let bounds: [String: Double]?
        public let cases: [ModelCase]?
        enum CodingKeys: String, CodingKey { case seqLen = "seq_len", seqLens = "seq_lens", outputs, bounds, cases }
    }

    struct TokenizerJSON: Decodable {
        let doLowerCase: Bool?; let stripAccents: Bool?
        enum CodingKeys: String, CodingKey { case doLowerCase = "do_lower_case", stripAccents = "strip_accents" }
    }
    struct TokenCaseJSON: Decodable {
        let name: String; let text: String; let ids: [Int]; let offsets: [[Int]]; let words: [[Int]]
        let lowercase: Bool?; let stripAccents: Bool?
        enum CodingKeys: String, CodingKey { case name, text, ids, offsets, words, lowercase, stripAccents = "strip_accents" }
    }
    struct BucketsJSON: Decodable {
        let seqLens: [Int]?; let cases: [BucketCase]?
        enum CodingKeys: String, CodingKey { case seqLens = "seq_lens", cases }
    }
    struct AnswerJSON: Decodable {
        let text: String; let start: Int; let end: Int; let score: Double
        var answer: Answer { Answer(text: text, start: start, end: end, score: score) }
    }
    enum CodingKeys: String, CodingKey { case format, tokenizer, tokenization, decoder, buckets, model, qa, qaGeometry = "qa_geometry" }

    public let doLowerCase: Bool
    public let stripAccents: Bool
    public let tokenization: [TokenCase]
    public let decoder: [DecoderCase]
    /// The model section, or nil when golden.json was written without an artifact.
    public let model: Model?
    public let qa: [QaCase]
    public let buckets: [BucketCase]
    /// The lengths the bucket cases pick from, ascending.
    public let bucketSeqLens: [Int]
    /// The stored QA geometry (`qa_geometry`), nil in older files: read it through `QaGeometry(golden:)`.
    public let qaGeometry: QaGeometry?

    public var modelCases: [ModelCase] { model?.cases ?? [] }
    /// Every bound the export record validated with, as the apps apply them (see ModelCheck).
    public var bounds: [String: Double] { model?.bounds ?? [:] }
    /// Sequence lengths of the shipped file, ascending (several for a length-bucket export).
    public var seqLens: [Int] { (model?.seqLens ?? model?.seqLen.map { [$0] } ?? bucketSeqLens).sorted() }

    public init(from decoder: Decoder) throws {
        let root = try decoder.container(keyedBy: CodingKeys.self)
        let format = try root.decodeIfPresent(String.self, forKey: .format) ?? "no format"
        guard format == Golden.format else {
            throw QaError.message("golden.json is \(format), this app reads \(Golden.format): regenerate it with this edgekit version")
        }
        let tok = try root.decodeIfPresent(TokenizerJSON.self, forKey: .tokenizer)
        let lower = tok?.doLowerCase ?? true
        doLowerCase = lower
        stripAccents = tok?.stripAccents ?? lower
        tokenization = try (root.decodeIfPresent([TokenCaseJSON].self, forKey: .tokenization) ?? []).map { c in
            let lo = c.lowercase ?? lower
            return TokenCase(name: c.name, text: c.text, ids: c.ids, offsets: c.offsets, words: c.words,
                             lowercase: lo, stripAccents: c.stripAccents ?? lo)
        }
        self.decoder = try root.decodeIfPresent([DecoderCase].self, forKey: .decoder) ?? []
        model = try root.decodeIfPresent(Model.self, forKey: .model)
        qa = try root.decodeIfPresent([QaCase].self, forKey: .qa) ?? []
        let b = try root.decodeIfPresent(BucketsJSON.self, forKey: .buckets)
        buckets = b?.cases ?? []
        bucketSeqLens = (b?.seqLens ?? []).sorted()
        qaGeometry = try root.decodeIfPresent(QaGeometry.self, forKey: .qaGeometry)
    }

    /// Parse golden.json; a malformed or foreign file throws a QaError that names the field.
    public init(data: Data) throws {
        do {
            self = try JSONDecoder().decode(Golden.self, from: data)
        } catch let e as QaError {
            throw e
        } catch {
            throw QaError.message("golden.json: \(Golden.describe(error))")
        }
    }

    public init(text: String) throws { try self.init(data: Data(text.utf8)) }

    /// A DecodingError as one line with the path of the field (`qa[3].config.doc_stride: missing`).
    public static func describe(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case DecodingError.keyNotFound(let key, let ctx): return "\(path(ctx.codingPath + [key])): missing"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx), DecodingError.dataCorrupted(let ctx):
            return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        default: return "\(error)"
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
