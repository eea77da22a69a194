package ai.edgekit.demo.qa

/**
 * BERT WordPiece tokenizer that reproduces Hugging Face `BertTokenizerFast` (tokenizers'
 * BertNormalizer + BertPreTokenizer + WordPiece) and returns character offsets.
 *
 * Every character class (whitespace, control, punctuation, CJK, accents, lowercase) comes from
 * [UnicodeTables], generated from the Hugging Face tokenizer itself, never from the platform's
 * Unicode tables, which change with the Android version: the same text gives the same ids on
 * every phone. Positions are Unicode code point indices into the input (what Python `str`
 * indexes), not UTF-16 indices. Plain Kotlin: compiles with Kotlin 1.3 (Debian) and 2.x.
 */
class BertTokenizer(
    private val vocab: Map<String, Int>,
    private val lowercase: Boolean = true,
    stripAccents: Boolean? = null,
    private val handleChineseChars: Boolean = true,
    unkToken: String = "[UNK]",
    private val maxInputCharsPerWord: Int = 100,
    private val specialNames: List<String> = listOf("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
) {
    /** One WordPiece token: id, its [start, end) and the [wordStart, wordEnd) of its word, in code points. */
    data class Token(val id: Int, val start: Int, val end: Int, val wordStart: Int, val wordEnd: Int)

    // Like tokenizers: strip_accents follows lowercase unless set explicitly.
    private val stripAccents: Boolean = stripAccents ?: lowercase
    val unkId: Int = vocab[unkToken] ?: throw IllegalArgumentException("vocabulary has no $unkToken")
    // Longest first, so "[MASK]" would win over any special token that is its prefix.
    private val specials: List<IntArray> = specialNames.filter { vocab.containsKey(it) }
        .sortedByDescending { it.length }.map { codePoints(it) }

    /** The same vocabulary with other normaliser flags (a cased model, accents kept...). */
    fun withNormalizer(lowercase: Boolean, stripAccents: Boolean): BertTokenizer =
        BertTokenizer(vocab, lowercase, stripAccents, handleChineseChars, vocabToken(unkId), maxInputCharsPerWord, specialNames)

    private fun vocabToken(id: Int): String = vocab.entries.first { it.value == id }.key

    fun idOf(token: String): Int = vocab[token] ?: throw IllegalArgumentException("vocabulary has no $token")

    fun tokenize(text: String): List<Token> {
        val cps = codePoints(text)
        val out = ArrayList<Token>()
        var segStart = 0
        var i = 0
        while (i < cps.size) {
            val special = specials.firstOrNull { matchesAt(cps, i, it) }
            if (special == null) {
                i++
                continue
            }
            tokenizeSegment(cps, segStart, i, out)
            val id = vocab.getValue(String(special, 0, special.size))
            out.add(Token(id, i, i + special.size, i, i + special.size))
            i += special.size
            segStart = i
        }
        tokenizeSegment(cps, segStart, cps.size, out)
        return out
    }

    private fun tokenizeSegment(cps: IntArray, from: Int, to: Int, out: MutableList<Token>) {
        // Normalised code points, each remembering the original code point it came from.
        val norm = ArrayList<Int>()
        val orig = ArrayList<Int>()
        for (i in from until to) {
            val c = cps[i]
            if (c == 0 || c == 0xFFFD || isControl(c)) continue
            if (isWhitespace(c)) {
                norm.add(SPACE); orig.add(i); continue
            }
            if (handleChineseChars && isChinese(c)) {
                norm.add(SPACE); orig.add(i)
                addNormalized(c, i, norm, orig)
                norm.add(SPACE); orig.add(i)
                continue
            }
            addNormalized(c, i, norm, orig)
        }
        // Pre-tokenise: split on whitespace, isolate punctuation; then WordPiece each word.
        var wordStart = -1
        for (k in 0..norm.size) {
            val c = if (k < norm.size) norm[k] else SPACE
            val boundary = isWhitespace(c) || isPunctuation(c)
            if (boundary && wordStart >= 0) {
                wordPiece(norm, orig, wordStart, k, out)
                wordStart = -1
            }
            if (k < norm.size && isPunctuation(c)) wordPiece(norm, orig, k, k + 1, out)
            else if (!boundary && wordStart < 0) wordStart = k
        }
    }

    private fun addNormalized(c: Int, i: Int, norm: MutableList<Int>, orig: MutableList<Int>) {
        val parts = if (stripAccents) stripAccents(c) else intArrayOf(c)
        for (p in parts) {
            if (lowercase) {
                // Per code point, like Rust's char::to_lowercase (no context-dependent final sigma).
                for (l in lowercase(p)) { norm.add(l); orig.add(i) }
            } else {
                norm.add(p); orig.add(i)
            }
        }
    }

    private fun wordPiece(norm: List<Int>, orig: List<Int>, from: Int, to: Int, out: MutableList<Token>) {
        val wordStart = orig[from]
        val wordEnd = orig[to - 1] + 1
        if (to - from > maxInputCharsPerWord) {
            out.add(Token(unkId, wordStart, wordEnd, wordStart, wordEnd)); return
        }
        val pieces = ArrayList<Token>()
        var start = from
        while (start < to) {
            var end = to
            var found = -1
            while (start < end) {
                val sb = StringBuilder()
                if (start > from) sb.append("##")
                for (k in start until end) sb.appendCodePoint(norm[k])
                val id = vocab[sb.toString()]
                if (id != null) {
                    found = id; break
                }
                end--
            }
            if (found < 0) {
                out.add(Token(unkId, wordStart, wordEnd, wordStart, wordEnd)); return
            }
            pieces.add(Token(found, orig[start], orig[end - 1] + 1, wordStart, wordEnd))
            start = end
        }
        out.addAll(pieces)
    }

    companion object {
        private const val SPACE = 0x20

        /** Build from the lines of vocab.txt (line number = id). */
        fun fromVocabLines(lines: List<String>, lowercase: Boolean = true, stripAccents: Boolean? = null): BertTokenizer {
            val vocab = HashMap<String, Int>()
            lines.forEachIndexed { i, line -> if (line.isNotEmpty() && !vocab.containsKey(line)) vocab[line] = i }
            return BertTokenizer(vocab, lowercase = lowercase, stripAccents = stripAccents)
        }

        fun codePoints(s: String): IntArray {
            val out = IntArray(s.codePointCount(0, s.length))
            var i = 0
            var k = 0
            while (i < s.length) {
                val c = s.codePointAt(i)
                out[k++] = c
                i += Character.charCount(c)
            }
            return out
        }

        /** Substring by code point indices. */
        fun substring(cps: IntArray, start: Int, end: Int): String {
            val sb = StringBuilder()
            for (k in start until end) sb.appendCodePoint(cps[k])
            return sb.toString()
        }

        private fun matchesAt(cps: IntArray, i: Int, pat: IntArray): Boolean {
            if (i + pat.size > cps.size) return false
            for (k in pat.indices) if (cps[i + k] != pat[k]) return false
            return true
        }

        private class Ranges(spec: String) {
            private val starts: IntArray
            private val ends: IntArray
            init {
                val items = if (spec.isEmpty()) emptyList() else spec.split(",")
                starts = IntArray(items.size)
                ends = IntArray(items.size)
                items.forEachIndexed { k, item ->
                    val dash = item.indexOf('-')
                    starts[k] = Integer.parseInt(if (dash < 0) item else item.substring(0, dash), 16)
                    ends[k] = if (dash < 0) starts[k] else Integer.parseInt(item.substring(dash + 1), 16)
                }
            }
            fun contains(c: Int): Boolean {
                var lo = 0
                var hi = starts.size - 1
                while (lo <= hi) {
                    val mid = (lo + hi) ushr 1
                    if (c < starts[mid]) hi = mid - 1 else if (c > ends[mid]) lo = mid + 1 else return true
                }
                return false
            }
        }

        private fun parseMap(spec: String): Map<Int, IntArray> {
            val out = HashMap<Int, IntArray>()
            if (spec.isEmpty()) return out
            for (item in spec.split(",")) {
                val colon = item.indexOf(':')
                val value = item.substring(colon + 1).split(".").map { Integer.parseInt(it, 16) }.toIntArray()
                out[Integer.parseInt(item.substring(0, colon), 16)] = value
            }
            return out
        }

        private val REMOVED = Ranges(UnicodeTables.REMOVED)
        private val WHITESPACE = Ranges(UnicodeTables.WHITESPACE)
        private val CJK = Ranges(UnicodeTables.CJK)
        private val PUNCTUATION = Ranges(UnicodeTables.PUNCTUATION)
        private val STRIP_REMOVED = Ranges(UnicodeTables.STRIP_REMOVED)
        private val STRIP_MAP: Map<Int, IntArray> by lazy { parseMap(UnicodeTables.STRIP_MAP) }
        private val LOWER_MAP: Map<Int, IntArray> by lazy { parseMap(UnicodeTables.LOWER_MAP) }

        /** Whitespace as tokenizers sees it (Rust char::is_whitespace of its Unicode version, tab/newline/CR). */
        fun isWhitespace(c: Int): Boolean = WHITESPACE.contains(c)

        /**
         * Deleted by clean_text: NUL, U+FFFD and tokenizers' "control" class (Cc, Cf, Co of its Unicode
         * tables: private use is deleted, unassigned code points are kept). A lone UTF-16 surrogate
         * (impossible in Python's UTF-8 input) is deleted too.
         */
        fun isControl(c: Int): Boolean = REMOVED.contains(c) || c in 0xD800..0xDFFF

        /** Split off as a word of its own by BertPreTokenizer (ASCII punctuation or P* of tokenizers' tables). */
        fun isPunctuation(c: Int): Boolean = PUNCTUATION.contains(c)

        /** Padded with spaces by handle_chinese_chars (tokenizers' fixed CJK ranges). */
        fun isChinese(c: Int): Boolean = CJK.contains(c)

        /** strip_accents of one code point: NFD, then non-spacing marks dropped (may be empty). */
        fun stripAccents(c: Int): IntArray {
            if (STRIP_REMOVED.contains(c)) return IntArray(0)
            val s = c - 0xAC00  // Hangul syllables decompose by Unicode's rule
            if (s in 0 until 11172) {
                val t = s % 28
                val lv = intArrayOf(0x1100 + s / 588, 0x1161 + (s % 588) / 28)
                return if (t == 0) lv else intArrayOf(lv[0], lv[1], 0x11A7 + t)
            }
            return STRIP_MAP[c] ?: intArrayOf(c)
        }

        /** lowercase of one code point (Rust char::to_lowercase of tokenizers' version). */
        fun lowercase(c: Int): IntArray = LOWER_MAP[c] ?: intArrayOf(c)
    }
}
