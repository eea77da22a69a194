package ai.edgekit.demo.qa

/**
 * A small JSON reader for golden.json and the model card, so the same code runs on the JVM
 * (no org.json there) and on Android. Objects become LinkedHashMap, arrays ArrayList,
 * numbers Double, plus String, Boolean and null.
 */
class MiniJson private constructor(private val s: String) {
    private var i = 0

    companion object {
        fun parse(text: String): Any? {
            val p = MiniJson(text)
            p.ws()
            val v = p.value()
            p.ws()
            if (p.i != p.s.length) p.fail("trailing characters")
            return v
        }
    }

    private fun fail(msg: String): Nothing = throw IllegalArgumentException("bad JSON at offset $i: $msg")

    private fun ws() {
        while (i < s.length && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++
    }

    private fun value(): Any? {
        if (i >= s.length) fail("unexpected end")
        return when (s[i]) {
            '{' -> obj()
            '[' -> arr()
            '"' -> str()
            't' -> lit("true", true)
            'f' -> lit("false", false)
            'n' -> lit("null", null)
            else -> num()
        }
    }

    private fun lit(word: String, v: Any?): Any? {
        if (!s.startsWith(word, i)) fail("expected $word")
        i += word.length
        return v
    }

    private fun obj(): Map<String, Any?> {
        val m = LinkedHashMap<String, Any?>()
        i++
        ws()
        if (s[i] == '}') { i++; return m }
        while (true) {
            ws()
            if (s[i] != '"') fail("expected a key")
            val k = str()
            ws()
            if (s[i] != ':') fail("expected ':'")
            i++
            ws()
            m[k] = value()
            ws()
            when (s[i]) {
                ',' -> i++
                '}' -> { i++; return m }
                else -> fail("expected ',' or '}'")
            }
        }
    }

    private fun arr(): List<Any?> {
        val a = ArrayList<Any?>()
        i++
        ws()
        if (s[i] == ']') { i++; return a }
        while (true) {
            ws()
            a.add(value())
            ws()
            when (s[i]) {
                ',' -> i++
                ']' -> { i++; return a }
                else -> fail("expected ',' or ']'")
            }
        }
    }

    private fun str(): String {
        val sb = StringBuilder()
        i++
        while (true) {
            if (i >= s.length) fail("unterminated string")
            val c = s[i++]
            when (c) {
                '"' -> return sb.toString()
                '\\' -> {
                    val e = s[i++]
                    when (e) {
                        '"' -> sb.append('"'); '\\' -> sb.append('\\'); '/' -> sb.append('/')
                        'b' -> sb.append('\b'); 'f' -> sb.append('\u000C'); 'n' -> sb.append('\n')
                        'r' -> sb.append('\r'); 't' -> sb.append('\t')
                        // \uXXXX: surrogate pairs arrive as two escapes and join up in the UTF-16 string.
                        'u' -> { sb.appendCodePoint(s.substring(i, i + 4).toInt(16)); i += 4 }
                        else -> fail("bad escape \\$e")
                    }
                }
                else -> sb.append(c)
            }
        }
    }

    private fun num(): Double {
        val start = i
        while (i < s.length && (s[i].isDigit() || s[i] == '-' || s[i] == '+' || s[i] == '.' || s[i] == 'e' || s[i] == 'E')) i++
        if (start == i) fail("unexpected character '${s[i]}'")
        return s.substring(start, i).toDouble()
    }
}

/** Typed access to parsed JSON. */
@Suppress("UNCHECKED_CAST")
object J {
    fun obj(v: Any?): Map<String, Any?> = v as Map<String, Any?>
    fun list(v: Any?): List<Any?> = v as List<Any?>
    fun str(v: Any?): String = v as String
    fun int(v: Any?): Int = (v as Double).toInt()
    fun dbl(v: Any?): Double = v as Double
    fun bool(v: Any?): Boolean = v as Boolean
    fun ints(v: Any?): IntArray = list(v).map { int(it) }.toIntArray()
    fun floats(v: Any?): FloatArray = list(v).map { (it as Double).toFloat() }.toFloatArray()
}
