/// The QA geometry of a bundle, as edgekit.core.geometry.QAGeometry: window lengths (ascending; a
/// question runs at the smallest that holds it, or in windows of the longest), the stride of those
/// windows and the longest answer. The app builds its pipeline from it (`config`), so Swift never
/// hard-codes a length, a stride or an answer length.
///
/// This is the ONE place that reads it from golden.json: its `qa_geometry` object (`lengths`,
/// `doc_stride`, `max_answer_len`), written by edgekit since the one-geometry redesign; for files
/// written before (no or null `qa_geometry`), the `config` of the QA cases, which must all agree,
/// with `model.seq_lens` as the lengths.
public struct QaGeometry: Equatable, Decodable {
    public let lengths: [Int]
    public let docStride: Int
    public let maxAnswerLen: Int

    enum CodingKeys: String, CodingKey { case lengths, docStride = "doc_stride", maxAnswerLen = "max_answer_len" }

    public init(lengths: [Int], docStride: Int, maxAnswerLen: Int) {
        self.lengths = Array(Set(lengths)).sorted(); self.docStride = docStride; self.maxAnswerLen = maxAnswerLen
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(lengths: try c.decode([Int].self, forKey: .lengths), docStride: try c.decode(Int.self, forKey: .docStride),
                  maxAnswerLen: try c.decode(Int.self, forKey: .maxAnswerLen))
        if lengths.isEmpty { throw QaError.message("qa_geometry has no lengths") }
    }

    /// The geometry of `golden`, or an error when it has none to read (no `qa_geometry`, no QA case)
    /// or its QA cases disagree.
    public init(golden g: Golden) throws {
        if let stored = g.qaGeometry { self = stored; return }
        guard let first = g.qa.first?.config else {
            throw QaError.message("golden.json has no qa_geometry and no QA case to read the QA geometry from: re-run `edgekit bundle`")
        }
        if let odd = g.qa.first(where: { ($0.config.maxSeqLen, $0.config.docStride, $0.config.maxAnswerLen, $0.config.buckets ?? [])
                                         != (first.maxSeqLen, first.docStride, first.maxAnswerLen, first.buckets ?? []) }) {
            throw QaError.message("golden.json's QA cases disagree on the QA geometry ('\(odd.name)'): re-run `edgekit bundle`")
        }
        let lens = g.seqLens
        let lengths = first.buckets ?? (lens.last == first.maxSeqLen ? lens : [first.maxSeqLen])
        self.init(lengths: lengths, docStride: first.docStride, maxAnswerLen: first.maxAnswerLen)
    }

    public var maxLen: Int { lengths.last ?? 0 }
    /// Several lengths: the buckets a question picks from; one length: nil.
    public var buckets: [Int]? { lengths.count > 1 ? lengths : nil }

    /// The pipeline settings for the app's questions (QAConfig.from_geometry): windows of the longest
    /// length and its stride; several lengths are buckets, one is a fixed pad length. The knobs that are
    /// not geometry come from the caller.
    public func config(topK: Int, handleImpossibleAnswer: Bool = false, alignToWords: Bool = true) -> QaConfig {
        QaConfig(maxSeqLen: maxLen, docStride: docStride, maxAnswerLen: maxAnswerLen, topK: topK,
                 handleImpossibleAnswer: handleImpossibleAnswer, alignToWords: alignToWords,
                 padTo: buckets == nil ? maxLen : nil, buckets: buckets)
    }
}
