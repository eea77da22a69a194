import Foundation

/// BERT WordPiece tokenizer reproducing Hugging Face `BertTokenizerFast` with character offsets.
/// Positions are Unicode scalar (code point) indices, as in golden.json and the Kotlin version.
/// Mirrors android-demo/app/src/main/java/ai/edgekit/demo/qa/BertTokenizer.kt line for line.
public struct BertTokenizer {
    public struct Token: Equatable {
        public let id: Int
        public let start: Int
        public let end: Int
        public let wordStart: Int
        public let wordEnd: Int
    }

    // Keyed by exact scalar sequence: Swift String equality is canonical equivalence, so
    // "한" would equal its NFD jamo; Hugging Face compares exactly.
    let vocab: [[UInt32]: Int]
    let lowercase: Bool
    let stripAccents: Bool
    let handleChineseChars: Bool
    let maxInputCharsPerWord: Int
    public let unkId: Int
    let specials: [[Unicode.Scalar]]

    static func key(_ s: String) -> [UInt32] { s.unicodeScalars.map { $0.value } }

    /// `tokens[i]` has id i (the lines of vocab.txt); empty and repeated lines are skipped.
    public init(tokens: [String], lowercase: Bool = true, stripAccents: Bool? = nil, handleChineseChars: Bool = true,
                unkToken: String = "[UNK]", maxInputCharsPerWord: Int = 100,
                specialTokens: [String] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) throws {
        var vocab: [[UInt32]: Int] = [:]
        for (i, t) in tokens.enumerated() where !t.isEmpty && vocab[BertTokenizer.key(t)] == nil {
            vocab[BertTokenizer.key(t)] = i
        }
        guard let unk = vocab[BertTokenizer.key(unkToken)] else { throw QaError.message("vocabulary has no \(unkToken)") }
        self.vocab = vocab
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase  // like tokenizers: follows lowercase unless set
        self.handleChineseChars = handleChineseChars
        self.maxInputCharsPerWord = maxInputCharsPerWord
        self.unkId = unk
        self.specials = specialTokens.filter { vocab[BertTokenizer.key($0)] != nil }
            .map { Array($0.unicodeScalars) }.sorted { $0.count > $1.count }
    }

    /// Build from the contents of vocab.txt (line number = id).
    public static func fromVocabText(_ text: String, lowercase: Bool = true) throws -> BertTokenizer {
        // Split on the scalar "\n" ("\r\n" is one Character in Swift, so do not split Characters).
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var s = String(String.UnicodeScalarView(line))
            if s.unicodeScalars.last == "\r" { s.unicodeScalars.removeLast() }
            return s
        }
        return try BertTokenizer(tokens: lines, lowercase: lowercase)
    }

    public func idOf(_ token: String) throws -> Int {
        guard let id = vocab[BertTokenizer.key(token)] else { throw QaError.message("vocabulary has no \(token)") }
        return id
    }

    public func tokenize(_ text: String) -> [Token] {
        let cps = Array(text.unicodeScalars)
        var out: [Token] = []
        var segStart = 0
        var i = 0
        while i < cps.count {
            guard let special = specials.first(where: { matches(cps, i, $0) }) else { i += 1; continue }
            tokenizeSegment(cps, segStart, i, &out)
            let id = vocab[special.map { $0.value }]!
            out.append(Token(id: id, start: i, end: i + special.count, wordStart: i, wordEnd: i + special.count))
            i += special.count
            segStart = i
        }
        tokenizeSegment(cps, segStart, cps.count, &out)
        return out
    }

    private func matches(_ cps: [Unicode.Scalar], _ i: Int, _ pat: [Unicode.Scalar]) -> Bool {
        if i + pat.count > cps.count { return false }
        for k in 0..<pat.count where cps[i + k] != pat[k] { return false }
        return true
    }

    private func tokenizeSegment(_ cps: [Unicode.Scalar], _ from: Int, _ to: Int, _ out: inout [Token]) {
        var norm: [Unicode.Scalar] = []
        var orig: [Int] = []
        let space: Unicode.Scalar = " "
        if from < to {
            for i in from..<to {
                let c = cps[i]
                if c.value == 0 || c.value == 0xFFFD || BertTokenizer.isControl(c) { continue }
                if BertTokenizer.isWhitespace(c) { norm.append(space); orig.append(i); continue }
                if handleChineseChars && BertTokenizer.isChinese(c) {
                    norm.append(space); orig.append(i)
                    addNormalized(c, i, &norm, &orig)
                    norm.append(space); orig.append(i)
                    continue
                }
                addNormalized(c, i, &norm, &orig)
            }
        }
        var wordStart = -1
        for k in 0...norm.count {
            let c = k < norm.count ? norm[k] : space
            let boundary = BertTokenizer.isWhitespace(c) || BertTokenizer.isPunctuation(c)
            if boundary && wordStart >= 0 {
                wordPiece(norm, orig, wordStart, k, &out)
                wordStart = -1
            }
            if k < norm.count && BertTokenizer.isPunctuation(c) {
                wordPiece(norm, orig, k, k + 1, &out)
            } else if !boundary && wordStart < 0 {
                wordStart = k
            }
        }
    }

    private func addNormalized(_ c: Unicode.Scalar, _ i: Int, _ norm: inout [Unicode.Scalar], _ orig: inout [Int]) {
        var parts = [c]
        if stripAccents {
            parts = Array(String(Character(c)).decomposedStringWithCanonicalMapping.unicodeScalars
                .filter { $0.properties.generalCategory != .nonspacingMark })
        }
        for p in parts {
            if lowercase {
                // Per scalar, like Rust's char::to_lowercase (no context-dependent final sigma).
                for l in p.properties.lowercaseMapping.unicodeScalars { norm.append(l); orig.append(i) }
            } else {
                norm.append(p); orig.append(i)
            }
        }
    }

    private func wordPiece(_ norm: [Unicode.Scalar], _ orig: [Int], _ from: Int, _ to: Int, _ out: inout [Token]) {
        let wordStart = orig[from]
        let wordEnd = orig[to - 1] + 1
        if to - from > maxInputCharsPerWord {
            out.append(Token(id: unkId, start: wordStart, end: wordEnd, wordStart: wordStart, wordEnd: wordEnd)); return
        }
        var pieces: [Token] = []
        var start = from
        while start < to {
            var end = to
            var found = -1
            while start < end {
                var key: [UInt32] = start > from ? [0x23, 0x23] : []  // "##"
                key.append(contentsOf: norm[start..<end].map { $0.value })
                if let id = vocab[key] { found = id; break }
                end -= 1
            }
            if found < 0 {
                out.append(Token(id: unkId, start: wordStart, end: wordEnd, wordStart: wordStart, wordEnd: wordEnd)); return
            }
            pieces.append(Token(id: found, start: orig[start], end: orig[end - 1] + 1, wordStart: wordStart, wordEnd: wordEnd))
            start = end
        }
        out.append(contentsOf: pieces)
    }

    /// Substring by code point indices.
    public static func substring(_ cps: [Unicode.Scalar], _ start: Int, _ end: Int) -> String {
        var s = ""
        if start < end { s.unicodeScalars.append(contentsOf: cps[start..<end]) }
        return s
    }

    // Rust char::is_whitespace (Unicode White_Space).
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return (0x2000...0x200A).contains(c.value)
        }
    }

    // Unicode category C* (Cc, Cf, Cn, Co, Cs) except tab, newline and carriage return.
    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c.value == 0x09 || c.value == 0x0A || c.value == 0x0D { return false }
        switch c.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    // ASCII punctuation (including $+<=>^`|~) or Unicode P*.
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    // The CJK Unified Ideograph blocks BERT pads with spaces.
    static func isChinese(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
