import Foundation

/// Extractive QA exactly as edgekit/qa.py and QaPipeline.kt: stride windows, softmax over
/// context tokens and [CLS], spans with start <= end < start + maxAnswerLen, top-k across
/// windows, character spans widened to whole words. Double precision throughout.

public enum QaError: Error, CustomStringConvertible {
    case message(String)
    public var description: String { if case .message(let m) = self { return m }; return "" }
}

/// Every knob of the pipeline, as edgekit/quality/qa.py's QAConfig and golden.json's `config`
/// objects. The geometry (window length, stride, longest answer, padding) has no default here:
/// it comes from golden.json (a case's `config`, or `QaGeometry` for the app's own questions).
public struct QaConfig: Equatable, Decodable {
    public var maxSeqLen: Int
    public var docStride: Int
    public var maxAnswerLen: Int
    public var topK: Int
    public var handleImpossibleAnswer: Bool
    public var alignToWords: Bool
    /// Pad every window to this length (fixed-shape models), or nil.
    public var padTo: Int?
    /// Several-length models: pad to the smallest of these that holds the whole question + context
    /// (`ModelCheck.pickSeqLen`); maxSeqLen is the longest. nil for one length.
    public var buckets: [Int]?

    public init(maxSeqLen: Int, docStride: Int, maxAnswerLen: Int, topK: Int = 1, handleImpossibleAnswer: Bool = false,
                alignToWords: Bool = true, padTo: Int? = nil, buckets: [Int]? = nil) {
        self.maxSeqLen = maxSeqLen; self.docStride = docStride; self.maxAnswerLen = maxAnswerLen; self.topK = topK
        self.handleImpossibleAnswer = handleImpossibleAnswer; self.alignToWords = alignToWords; self.padTo = padTo
        self.buckets = buckets?.sorted()
    }

    enum CodingKeys: String, CodingKey {
        case maxSeqLen = "max_seq_len", docStride = "doc_stride", maxAnswerLen = "max_answer_len", topK = "top_k"
        case handleImpossibleAnswer = "handle_impossible_answer", alignToWords = "align_to_words", padTo = "pad_to", buckets
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(maxSeqLen: try c.decode(Int.self, forKey: .maxSeqLen), docStride: try c.decode(Int.self, forKey: .docStride),
                  maxAnswerLen: try c.decode(Int.self, forKey: .maxAnswerLen), topK: try c.decode(Int.self, forKey: .topK),
                  handleImpossibleAnswer: try c.decode(Bool.self, forKey: .handleImpossibleAnswer),
                  alignToWords: try c.decode(Bool.self, forKey: .alignToWords), padTo: try c.decodeIfPresent(Int.self, forKey: .padTo),
                  buckets: try c.decodeIfPresent([Int].self, forKey: .buckets))
    }

    /// The length every window of a question is padded to (QAConfig.padded_length): with buckets the
    /// smallest that holds it, else padTo, else nil (no padding).
    public func paddedLength(questionTokens: Int, contextTokens: Int) -> Int? {
        if let b = buckets, !b.isEmpty { return ModelCheck.pickSeqLen(b, questionTokens: questionTokens, contextTokens: contextTokens) }
        return padTo
    }
}

public struct Window {
    public let inputIds: [Int32]
    public let attentionMask: [Int32]
    public let tokenTypeIds: [Int32]
    public let contextStart: Int
    public let contextFirst: Int
    public let contextLen: Int
}

public struct Answer: Equatable {
    public let text: String
    public let start: Int
    public let end: Int
    public let score: Double
    public var window = -1
    public var tokenStart = -1
    public var tokenEnd = -1
}

public enum QaDecoder {
    static let maskedLogit = -10000.0

    public static func makeWindows(question: [Int], context: [Int], cls: Int, sep: Int, pad: Int, config: QaConfig) throws -> [Window] {
        let room = config.maxSeqLen - question.count - 3
        if room <= config.docStride || room < 1 {
            throw QaError.message("the question is too long (\(question.count) tokens) for maxSeqLen=\(config.maxSeqLen) and docStride=\(config.docStride): shorten it or lower docStride")
        }
        let step = room - config.docStride
        let n = context.count
        var windows: [Window] = []
        let target = config.paddedLength(questionTokens: question.count, contextTokens: n)
        var first = 0
        while true {
            let stop = min(first + room, n)
            let len = stop - first
            let used = question.count + len + 3
            let total = target.map { max($0, used) } ?? used
            var ids = [Int32](repeating: Int32(pad), count: total)
            var mask = [Int32](repeating: 0, count: total)
            var types = [Int32](repeating: 0, count: total)
            var k = 0
            ids[k] = Int32(cls); k += 1
            for q in question { ids[k] = Int32(q); k += 1 }
            ids[k] = Int32(sep); k += 1
            for j in first..<stop { types[k] = 1; ids[k] = Int32(context[j]); k += 1 }
            types[k] = 1
            ids[k] = Int32(sep); k += 1
            for j in 0..<used { mask[j] = 1 }
            windows.append(Window(inputIds: ids, attentionMask: mask, tokenTypeIds: types,
                                  contextStart: question.count + 2, contextFirst: first, contextLen: len))
            if stop >= n { break }
            first += step
        }
        return windows
    }

    static func softmaxMasked(_ logits: [Float], _ allowed: [Bool]) -> [Double] {
        var x = (0..<allowed.count).map { allowed[$0] ? Double(logits[$0]) : maskedLogit }
        let m = x.max() ?? 0
        var sum = 0.0
        for i in x.indices { x[i] = exp(x[i] - m); sum += x[i] }
        for i in x.indices { x[i] /= sum }
        return x
    }

    public struct Candidate { public let score: Double; public let start: Int; public let end: Int }

    /// Best spans of one window (at most topK, score > 0) and the window's null score.
    public static func decodeWindow(start: [Float], end: [Float], window: Window, config: QaConfig) throws -> ([Candidate], Double) {
        let seq = window.inputIds.count
        if start.count < seq || end.count < seq {
            throw QaError.message("logits have \(start.count) positions but the window has \(seq) tokens")
        }
        var allowed = [Bool](repeating: false, count: seq)
        allowed[0] = true  // [CLS] shares the softmax (the "no answer" slot) but is never an answer
        let c0 = window.contextStart, c1 = window.contextStart + window.contextLen
        for i in c0..<c1 { allowed[i] = true }
        let pStart = softmaxMasked(start, allowed)
        let pEnd = softmaxMasked(end, allowed)
        let nullScore = pStart[0] * pEnd[0]
        var cand: [Candidate] = []
        for s in c0..<c1 {
            for e in s..<min(c1, s + config.maxAnswerLen) {
                let score = pStart[s] * pEnd[e]
                if score > 0 { cand.append(Candidate(score: score, start: s, end: e)) }
            }
        }
        cand.sort { a, b in a.score != b.score ? a.score > b.score : (a.start != b.start ? a.start < b.start : a.end < b.end) }
        return (Array(cand.prefix(config.topK)), nullScore)
    }

    /// Merge every window's candidates into the final topK answers with character spans.
    public static func answersFromLogits(context: String, contextTokens: [BertTokenizer.Token], windows: [Window],
                                         logits: [([Float], [Float])], config: QaConfig) throws -> [Answer] {
        let cps = Array(context.unicodeScalars)
        var answers: [Answer] = []
        var minNull = 1000000.0
        for (w, window) in windows.enumerated() {
            let (cand, nullScore) = try decodeWindow(start: logits[w].0, end: logits[w].1, window: window, config: config)
            minNull = min(minNull, nullScore)
            for c in cand {
                let ts = contextTokens[window.contextFirst + c.start - window.contextStart]
                let te = contextTokens[window.contextFirst + c.end - window.contextStart]
                let start = config.alignToWords ? ts.wordStart : ts.start
                let end = config.alignToWords ? te.wordEnd : te.end
                answers.append(Answer(text: BertTokenizer.substring(cps, start, end), start: start, end: end,
                                      score: c.score, window: w, tokenStart: c.start, tokenEnd: c.end))
            }
        }
        if config.handleImpossibleAnswer { answers.append(Answer(text: "", start: 0, end: 0, score: minNull)) }
        // Stable sort on score alone: equal scores keep window order (Swift's sort is not stable, so sort by index too).
        let ordered = answers.enumerated().sorted { a, b in a.element.score != b.element.score ? a.element.score > b.element.score : a.offset < b.offset }
        return Array(ordered.map { $0.element }.prefix(config.topK))
    }
}

/// The whole pipeline around any model: `runLogits` maps a window to (startLogits, endLogits).
public struct QaPipeline {
    public let tokenizer: BertTokenizer
    public let config: QaConfig
    let runLogits: (Window) throws -> ([Float], [Float])

    public init(tokenizer: BertTokenizer, config: QaConfig, runLogits: @escaping (Window) throws -> ([Float], [Float])) {
        self.tokenizer = tokenizer
        self.config = config
        self.runLogits = runLogits
    }

    public func encode(question: String, context: String) throws -> (question: [BertTokenizer.Token], context: [BertTokenizer.Token], windows: [Window]) {
        if question.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || context.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw QaError.message("both the question and the context must contain text")
        }
        let q = tokenizer.tokenize(question)
        let c = tokenizer.tokenize(context)
        if c.isEmpty { throw QaError.message("the context has no tokens after normalisation") }
        let windows = try QaDecoder.makeWindows(question: q.map { $0.id }, context: c.map { $0.id },
                                                cls: tokenizer.idOf("[CLS]"), sep: tokenizer.idOf("[SEP]"),
                                                pad: tokenizer.idOf("[PAD]"), config: config)
        return (q, c, windows)
    }

    public func answer(question: String, context: String) throws -> [Answer] {
        let enc = try encode(question: question, context: context)
        let logits = try enc.windows.map { try runLogits($0) }
        return try QaDecoder.answersFromLogits(context: context, contextTokens: enc.context, windows: enc.windows,
                                               logits: logits, config: config)
    }
}
