/// BERT WordPiece tokenizer reproducing Hugging Face `BertTokenizerFast` with character offsets.
/// Positions are Unicode scalar (code point) indices, as in golden.json and the Kotlin version.
/// Mirrors android-demo/app/src/main/java/ai/edgekit/demo/qa/BertTokenizer.kt line for line.
/// Every character class comes from `UnicodeTables` (generated from the Hugging Face tokenizer),
/// never from the OS's Unicode tables, which change with the iOS version.
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
    var lowercase: Bool
    var stripAccents: Bool
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

    /// The same vocabulary with other normaliser flags (a cased model, accents kept...): from the bundle's
    /// `do_lower_case` / `strip_accents`.
    public func withNormalizer(lowercase: Bool, stripAccents: Bool) -> BertTokenizer {
        var t = self
        t.lowercase = lowercase
        t.stripAccents = stripAccents
        return t
    }

    /// Build from the contents of vocab.txt (line number = id).
    public static func fromVocabText(_ text: String, lowercase: Bool = true, stripAccents: Bool? = nil) throws -> BertTokenizer {
        // Split on the scalar "\n" ("\r\n" is one Character in Swift, so do not split Characters).
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var s = String(String.UnicodeScalarView(line))
            if s.unicodeScalars.last == "\r" { s.unicodeScalars.removeLast() }
            return s
        }
        return try BertTokenizer(tokens: lines, lowercase: lowercase, stripAccents: stripAccents)
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
        let parts = stripAccents ? CharTables.stripAccents(c.value) : [c.value]
        for p in parts {
            // Per scalar, like Rust's char::to_lowercase (no context-dependent final sigma).
            for l in lowercase ? CharTables.lowercase(p) : [p] {
                if let u = Unicode.Scalar(l) { norm.append(u); orig.append(i) }
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

    /// Whitespace as tokenizers sees it (tab, newline, CR and Rust char::is_whitespace of its Unicode version).
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool { CharTables.whitespace.contains(c.value) }

    /// Deleted by clean_text: tokenizers' "control" class (Cc, Cf, Co of its tables: private use
    /// deleted, unassigned kept), NUL and U+FFFD.
    static func isControl(_ c: Unicode.Scalar) -> Bool { CharTables.removed.contains(c.value) }

    /// Split off as its own word by BertPreTokenizer (ASCII punctuation or P* of tokenizers' tables).
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool { CharTables.punctuation.contains(c.value) }

    /// Padded with spaces by handle_chinese_chars (tokenizers' fixed CJK ranges).
    static func isChinese(_ c: Unicode.Scalar) -> Bool { CharTables.cjk.contains(c.value) }
}

/// The parsed `UnicodeTables` strings (see edgekit/unicode_tables.py for the format).
enum CharTables {
    struct Ranges {
        let starts: [UInt32]
        let ends: [UInt32]
        init(_ spec: String) {
            var s: [UInt32] = [], e: [UInt32] = []
            for item in spec.split(separator: ",") {
                let parts = item.split(separator: "-")
                let lo = UInt32(parts[0], radix: 16) ?? 0
                s.append(lo)
                e.append(parts.count > 1 ? (UInt32(parts[1], radix: 16) ?? lo) : lo)
            }
            starts = s
            ends = e
        }
        func contains(_ c: UInt32) -> Bool {
            var lo = 0, hi = starts.count - 1
            while lo <= hi {
                let mid = (lo + hi) / 2
                if c < starts[mid] { hi = mid - 1 } else if c > ends[mid] { lo = mid + 1 } else { return true }
            }
            return false
        }
    }

    static func parseMap(_ spec: String) -> [UInt32: [UInt32]] {
        var out: [UInt32: [UInt32]] = [:]
        for item in spec.split(separator: ",") {
            let kv = item.split(separator: ":")
            guard kv.count == 2, let k = UInt32(kv[0], radix: 16) else { continue }
            out[k] = kv[1].split(separator: ".").compactMap { UInt32($0, radix: 16) }
        }
        return out
    }

    static let removed = Ranges(UnicodeTables.removed)
    static let whitespace = Ranges(UnicodeTables.whitespace)
    static let cjk = Ranges(UnicodeTables.cjk)
    static let punctuation = Ranges(UnicodeTables.punctuation)
    static let stripRemoved = Ranges(UnicodeTables.strip_removed)
    static let stripMap = parseMap(UnicodeTables.strip_map)
    static let lowerMap = parseMap(UnicodeTables.lower_map)

    /// strip_accents of one code point: NFD, non-spacing marks dropped (may be empty).
    static func stripAccents(_ c: UInt32) -> [UInt32] {
        if stripRemoved.contains(c) { return [] }
        if c >= 0xAC00 && c < 0xAC00 + 11172 {  // Hangul syllables decompose by Unicode's rule
            let s = c - 0xAC00, t = s % 28
            let lv: [UInt32] = [0x1100 + s / 588, 0x1161 + (s % 588) / 28]
            return t == 0 ? lv : lv + [0x11A7 + t]
        }
        return stripMap[c] ?? [c]
    }

    /// lowercase of one code point (Rust char::to_lowercase of tokenizers' version).
    static func lowercase(_ c: UInt32) -> [UInt32] { lowerMap[c] ?? [c] }
}
