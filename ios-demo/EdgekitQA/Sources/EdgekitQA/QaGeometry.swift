/// The QA geometry of a bundle: window length, stride, longest answer and the lengths a window is
/// padded to. The app builds its pipeline from it (`config`), so Swift never hard-codes one.
///
/// This is the ONE place that reads it from golden.json. golden.json (edgekit-golden/2) has no
/// geometry field of its own yet: it is read from the `config` of the QA cases, which the bundle's
/// Python pipeline answered with (all must agree on it), plus `model.seq_lens` for a file exported
/// at several lengths. When edgekit writes one geometry field, read it here.
public struct QaGeometry: Equatable {
    public let maxSeqLen: Int
    public let docStride: Int
    public let maxAnswerLen: Int
    /// One fixed length every window is padded to, or nil.
    public let padTo: Int?
    /// Lengths to choose from per question (`ModelCheck.pickSeqLen`), ascending, or nil.
    public let buckets: [Int]?

    public init(maxSeqLen: Int, docStride: Int, maxAnswerLen: Int, padTo: Int?, buckets: [Int]?) {
        self.maxSeqLen = maxSeqLen; self.docStride = docStride; self.maxAnswerLen = maxAnswerLen
        self.padTo = padTo; self.buckets = buckets?.sorted()
    }

    /// The geometry of `golden`, or an error when it has no QA case to read it from or its cases disagree.
    public init(golden g: Golden) throws {
        guard let first = g.qa.first?.config else {
            throw QaError.message("golden.json has no QA case to read the QA geometry (window, stride, answer length) from: re-run `edgekit bundle`")
        }
        func of(_ c: QaConfig) -> QaGeometry {
            QaGeometry(maxSeqLen: c.maxSeqLen, docStride: c.docStride, maxAnswerLen: c.maxAnswerLen, padTo: c.padTo, buckets: c.buckets)
        }
        if let odd = g.qa.first(where: { of($0.config) != of(first) }) {
            throw QaError.message("golden.json's QA cases disagree on the QA geometry ('\(odd.name)'): re-run `edgekit bundle`")
        }
        // A file exported at several lengths but whose cases name one pad length: pick per question.
        let lens = g.seqLens
        if first.buckets == nil, lens.count > 1, lens.last == first.maxSeqLen {
            self.init(maxSeqLen: first.maxSeqLen, docStride: first.docStride, maxAnswerLen: first.maxAnswerLen, padTo: nil, buckets: lens)
        } else {
            self.init(maxSeqLen: first.maxSeqLen, docStride: first.docStride, maxAnswerLen: first.maxAnswerLen,
                      padTo: first.padTo, buckets: first.buckets)
        }
    }

    /// The pipeline settings for one question (the knobs that are not geometry come from the caller).
    public func config(topK: Int, handleImpossibleAnswer: Bool = false, alignToWords: Bool = true) -> QaConfig {
        QaConfig(maxSeqLen: maxSeqLen, docStride: docStride, maxAnswerLen: maxAnswerLen, topK: topK,
                 handleImpossibleAnswer: handleImpossibleAnswer, alignToWords: alignToWords, padTo: padTo, buckets: buckets)
    }
}
