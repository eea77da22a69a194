package ai.edgekit.demo.qa

/**
 * Extractive QA, step for step the same as edgekit's Python reference (`edgekit/qa.py`):
 * windows with stride over long contexts, softmax over context tokens and [CLS], best spans
 * with `start <= end < start + maxAnswerLen`, top-k across windows, character spans widened
 * to whole words. Scores are computed in double precision, like the Python reference.
 */
data class QaConfig(
    val maxSeqLen: Int = 384,
    val docStride: Int = 128,
    val maxAnswerLen: Int = 15,
    val topK: Int = 1,
    val handleImpossibleAnswer: Boolean = false,
    val alignToWords: Boolean = true,
    /** Pad every window to this length (fixed-shape models), or null for no padding. */
    val padTo: Int? = null
)

/** One model input: `[CLS] question [SEP] context[contextFirst until contextFirst+contextLen] [SEP]`. */
class Window(
    val inputIds: IntArray,
    val attentionMask: IntArray,
    val tokenTypeIds: IntArray,
    val contextStart: Int,
    val contextFirst: Int,
    val contextLen: Int
)

/** An answer: text and [start, end) in code points of the context; window/token fields locate it. */
data class Answer(
    val text: String,
    val start: Int,
    val end: Int,
    val score: Double,
    val window: Int = -1,
    val tokenStart: Int = -1,
    val tokenEnd: Int = -1
)

class QaException(message: String) : Exception(message)

object QaDecoder {
    private const val MASKED_LOGIT = -10000.0

    fun makeWindows(question: IntArray, context: IntArray, cls: Int, sep: Int, pad: Int, config: QaConfig): List<Window> {
        val room = config.maxSeqLen - question.size - 3
        if (room <= config.docStride || room < 1) {
            throw QaException(
                "the question is too long (${question.size} tokens) for maxSeqLen=${config.maxSeqLen} " +
                    "and docStride=${config.docStride}: shorten it or lower docStride"
            )
        }
        val step = room - config.docStride
        val n = context.size
        val windows = ArrayList<Window>()
        var first = 0
        while (true) {
            val stop = Math.min(first + room, n)
            val len = stop - first
            val used = question.size + len + 3
            val total = if (config.padTo != null) Math.max(config.padTo, used) else used
            val ids = IntArray(total) { pad }
            val mask = IntArray(total)
            val types = IntArray(total)
            var k = 0
            ids[k++] = cls
            for (q in question) ids[k++] = q
            ids[k++] = sep
            for (j in first until stop) { types[k] = 1; ids[k++] = context[j] }
            types[k] = 1
            ids[k++] = sep
            for (j in 0 until used) mask[j] = 1
            windows.add(Window(ids, mask, types, question.size + 2, first, len))
            if (stop >= n) break
            first += step
        }
        return windows
    }

    private fun softmaxMasked(logits: FloatArray, allowed: BooleanArray): DoubleArray {
        val x = DoubleArray(allowed.size) { if (allowed[it]) logits[it].toDouble() else MASKED_LOGIT }
        var max = Double.NEGATIVE_INFINITY
        for (v in x) if (v > max) max = v
        var sum = 0.0
        for (i in x.indices) { x[i] = Math.exp(x[i] - max); sum += x[i] }
        for (i in x.indices) x[i] = x[i] / sum
        return x
    }

    /** A scored span of one window, token indices inside the window. */
    data class Candidate(val score: Double, val start: Int, val end: Int)

    /** Best spans of one window (at most topK, score > 0) and the window's null score. */
    fun decodeWindow(startLogits: FloatArray, endLogits: FloatArray, window: Window, config: QaConfig): Pair<List<Candidate>, Double> {
        val seq = window.inputIds.size
        if (startLogits.size < seq || endLogits.size < seq) {
            throw QaException("logits have ${startLogits.size} positions but the window has $seq tokens")
        }
        val allowed = BooleanArray(seq)
        allowed[0] = true // [CLS] shares the softmax (the "no answer" slot) but is never an answer
        val c0 = window.contextStart
        val c1 = window.contextStart + window.contextLen
        for (i in c0 until c1) allowed[i] = true
        val pStart = softmaxMasked(startLogits, allowed)
        val pEnd = softmaxMasked(endLogits, allowed)
        val nullScore = pStart[0] * pEnd[0]
        val cand = ArrayList<Candidate>()
        for (s in c0 until c1) {
            for (e in s until Math.min(c1, s + config.maxAnswerLen)) {
                val score = pStart[s] * pEnd[e]
                if (score > 0.0) cand.add(Candidate(score, s, e))
            }
        }
        val sorted = cand.sortedWith(compareBy<Candidate>({ -it.score }, { it.start }, { it.end }))
        return Pair(sorted.take(config.topK), nullScore)
    }

    /** Merge every window's candidates into the final topK answers with character spans. */
    fun answersFromLogits(
        context: String,
        contextTokens: List<BertTokenizer.Token>,
        windows: List<Window>,
        logits: List<Pair<FloatArray, FloatArray>>,
        config: QaConfig
    ): List<Answer> {
        val cps = BertTokenizer.codePoints(context)
        val answers = ArrayList<Answer>()
        var minNull = 1000000.0
        for (w in windows.indices) {
            val window = windows[w]
            val (cand, nullScore) = decodeWindow(logits[w].first, logits[w].second, window, config)
            minNull = Math.min(minNull, nullScore)
            for (c in cand) {
                val ts = contextTokens[window.contextFirst + c.start - window.contextStart]
                val te = contextTokens[window.contextFirst + c.end - window.contextStart]
                val start = if (config.alignToWords) ts.wordStart else ts.start
                val end = if (config.alignToWords) te.wordEnd else te.end
                answers.add(Answer(BertTokenizer.substring(cps, start, end), start, end, c.score, w, c.start, c.end))
            }
        }
        if (config.handleImpossibleAnswer) answers.add(Answer("", 0, 0, minNull))
        // Stable sort on score alone: equal scores keep window order, like the Python reference.
        return answers.sortedWith(compareBy<Answer> { -it.score }).take(config.topK)
    }
}

/** The whole pipeline around any model: [runLogits] maps a window to (startLogits, endLogits). */
class QaPipeline(
    val tokenizer: BertTokenizer,
    val config: QaConfig,
    private val runLogits: (Window) -> Pair<FloatArray, FloatArray>
) {
    class Encoded(val question: List<BertTokenizer.Token>, val context: List<BertTokenizer.Token>, val windows: List<Window>)

    fun encode(question: String, context: String): Encoded {
        if (question.isBlank() || context.isBlank()) throw QaException("both the question and the context must contain text")
        val q = tokenizer.tokenize(question)
        val c = tokenizer.tokenize(context)
        if (c.isEmpty()) throw QaException("the context has no tokens after normalisation")
        val windows = QaDecoder.makeWindows(
            q.map { it.id }.toIntArray(), c.map { it.id }.toIntArray(),
            tokenizer.idOf("[CLS]"), tokenizer.idOf("[SEP]"), tokenizer.idOf("[PAD]"), config
        )
        return Encoded(q, c, windows)
    }

    fun answer(question: String, context: String): List<Answer> {
        val enc = encode(question, context)
        val logits = enc.windows.map { runLogits(it) }
        return QaDecoder.answersFromLogits(context, enc.context, enc.windows, logits, config)
    }
}
