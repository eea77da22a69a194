package ai.edgekit.demo.qa

import java.text.Normalizer
import java.util.Locale

/**
 * BERT WordPiece tokenizer that reproduces Hugging Face `BertTokenizerFast` (tokenizers'
 * BertNormalizer + BertPreTokenizer + WordPiece) and returns character offsets.
 *
 * Positions are Unicode code point indices into the input (what Python `str` indexes), not
 * UTF-16 indices, so answers from golden.json and from this class agree. Plain Kotlin: it
 * compiles with Kotlin 1.3 (Debian) and current Android Kotlin.
 */
class BertTokenizer(
    private val vocab: Map<String, Int>,
    private val lowercase: Boolean = true,
    stripAccents: Boolean? = null,
    private val handleChineseChars: Boolean = true,
    unkToken: String = "[UNK]",
    private val maxInputCharsPerWord: Int = 100,
    specialTokens: List<String> = listOf("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
) {
    /** One WordPiece token: id, its [start, end) and the [wordStart, wordEnd) of its word, in code points. */
    data class Token(val id: Int, val start: Int, val end: Int, val wordStart: Int, val wordEnd: Int)

    // Like tokenizers: strip_accents follows lowercase unless set explicitly.
    private val stripAccents: Boolean = stripAccents ?: lowercase
    val unkId: Int = vocab[unkToken] ?: throw IllegalArgumentException("vocabulary has no $unkToken")
    // Longest first, so "[MASK]" would win over any special token that is its prefix.
    private val specials: List<IntArray> = specialTokens.filter { vocab.containsKey(it) }
        .sortedByDescending { it.length }.map { codePoints(it) }

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
        var parts = intArrayOf(c)
        if (stripAccents) {
            parts = codePoints(Normalizer.normalize(String(parts, 0, 1), Normalizer.Form.NFD))
                .filter { Character.getType(it) != Character.NON_SPACING_MARK.toInt() }.toIntArray()
        }
        for (p in parts) {
            if (lowercase) {
                // Per code point, like Rust's char::to_lowercase (no context-dependent final sigma).
                for (l in codePoints(String(intArrayOf(p), 0, 1).toLowerCase(Locale.ROOT))) {
                    norm.add(l); orig.add(i)
                }
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
        fun fromVocabLines(lines: List<String>, lowercase: Boolean = true): BertTokenizer {
            val vocab = HashMap<String, Int>()
            lines.forEachIndexed { i, line -> if (line.isNotEmpty() && !vocab.containsKey(line)) vocab[line] = i }
            return BertTokenizer(vocab, lowercase = lowercase)
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

        // Rust char::is_whitespace (Unicode White_Space); tab, newline and carriage return included.
        fun isWhitespace(c: Int): Boolean = when (c) {
            0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 -> true
            else -> c in 0x2000..0x200A
        }

        // Unicode category C* (Cc, Cf, Cn, Co, Cs) except tab, newline and carriage return.
        fun isControl(c: Int): Boolean {
            if (c == 0x09 || c == 0x0A || c == 0x0D) return false
            return when (Character.getType(c)) {
                Character.CONTROL.toInt(), Character.FORMAT.toInt(), Character.UNASSIGNED.toInt(),
                Character.PRIVATE_USE.toInt(), Character.SURROGATE.toInt() -> true
                else -> false
            }
        }

        // ASCII punctuation (including $+<=>^`|~) or Unicode P*.
        fun isPunctuation(c: Int): Boolean {
            if (c in 33..47 || c in 58..64 || c in 91..96 || c in 123..126) return true
            return when (Character.getType(c)) {
                Character.CONNECTOR_PUNCTUATION.toInt(), Character.DASH_PUNCTUATION.toInt(),
                Character.START_PUNCTUATION.toInt(), Character.END_PUNCTUATION.toInt(),
                Character.INITIAL_QUOTE_PUNCTUATION.toInt(), Character.FINAL_QUOTE_PUNCTUATION.toInt(),
                Character.OTHER_PUNCTUATION.toInt() -> true
                else -> false
            }
        }

        // The CJK Unified Ideograph blocks BERT pads with spaces (tokenizers' is_chinese_char).
        fun isChinese(c: Int): Boolean =
            c in 0x4E00..0x9FFF || c in 0x3400..0x4DBF || c in 0x20000..0x2A6DF || c in 0x2A700..0x2B73F ||
                c in 0x2B740..0x2B81F || c in 0x2B920..0x2CEAF || c in 0xF900..0xFAFF || c in 0x2F800..0x2FA1F
    }
}
