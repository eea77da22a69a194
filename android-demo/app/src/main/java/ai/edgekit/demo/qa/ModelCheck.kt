package ai.edgekit.demo.qa

/**
 * What a device's outputs must satisfy, the same rules as `edgekit/golden.py`
 * (`check_model_case`, `check_model_cases`, `pick_seq_len`): every bound of golden.json's
 * `model.bounds` is applied (max_abs, min_cosine, min_psnr on real tokens; min_agreement of the
 * best span on decisive cases only). Plain Kotlin, so the JVM tests replay it.
 */
object ModelCheck {
    /** The bounds this code applies; a golden.json bound outside this list is a failure, never ignored. */
    val KNOWN = setOf("max_abs", "min_cosine", "min_psnr", "min_agreement")
    const val BEST_SPAN_MAX_LEN = 30

    /** Empty when [actual] meets the value bounds against [case]'s expected outputs, else what failed. */
    fun checkCase(bounds: Map<String, Double>, case: Golden.ModelCase, actual: Map<String, FloatArray>): List<String> {
        val fails = ArrayList<String>()
        for (k in bounds.keys) if (k !in KNOWN) fails.add("unknown bound $k in golden.json: update the app")
        val maxAbs = bounds["max_abs"]
        val minCosine = bounds["min_cosine"]
        val minPsnr = bounds["min_psnr"]
        for ((name, expected) in case.outputs) {
            val got = actual[name]
            if (got == null) { fails.add("no output $name"); continue }
            if (got.size < expected.size) { fails.add("$name has ${got.size} values, expected ${expected.size}"); continue }
            var worst = 0.0
            var dot = 0.0
            var na = 0.0
            var ne = 0.0
            var se = 0.0
            var peak = 0.0
            var n = 0
            for (i in expected.indices) {
                if (case.attentionMask[i] == 0) continue
                val a = got[i].toDouble()
                val e = expected[i].toDouble()
                val d = Math.abs(a - e)
                if (!(d <= worst)) worst = d  // NaN propagates as a failure
                dot += a * e; na += a * a; ne += e * e; se += (a - e) * (a - e)
                peak = Math.max(peak, Math.abs(e)); n++
            }
            if (maxAbs != null && !(worst <= maxAbs)) fails.add("$name max_abs $worst > $maxAbs")
            if (minCosine != null) {
                val cos = if (na == 0.0 || ne == 0.0) (if (na == ne) 1.0 else 0.0) else dot / Math.sqrt(na * ne)
                if (!(cos >= minCosine)) fails.add("$name cosine $cos < $minCosine")
            }
            if (minPsnr != null) {
                val rms = Math.sqrt(se / Math.max(n, 1))
                val psnr = 20 * Math.log10((peak + 1e-5) / (rms + 1e-10))
                if (!(psnr >= minPsnr)) fails.add("$name PSNR $psnr dB < $minPsnr dB")
            }
        }
        return fails
    }

    /** parity.best_span: max start + end logit over real tokens, start <= end < start + maxLen; ties to the first. */
    fun bestSpan(start: FloatArray, end: FloatArray, mask: IntArray, maxLen: Int = BEST_SPAN_MAX_LEN): IntArray {
        var best = Double.NEGATIVE_INFINITY
        var bs = -1
        var be = -1
        for (i in mask.indices) {
            if (mask[i] == 0) continue
            for (j in i until Math.min(mask.size, i + maxLen)) {
                if (mask[j] == 0) continue
                val s = start[i].toDouble() + end[j].toDouble()
                if (s > best) { best = s; bs = i; be = j }
            }
        }
        return intArrayOf(bs, be)
    }

    /** All model cases: value bounds per case, and best-span agreement >= min_agreement on the decisive ones. */
    fun checkCases(bounds: Map<String, Double>, cases: List<Golden.ModelCase>, actuals: List<Map<String, FloatArray>>): List<String> {
        val fails = ArrayList<String>()
        var hits = 0
        var decisive = 0
        for (k in cases.indices) {
            val c = cases[k]
            val a = actuals[k]
            for (f in checkCase(bounds, c, a)) fails.add("case $k: $f")
            if (c.decisive) {
                decisive++
                val s = a["start_logits"]
                val e = a["end_logits"]
                if (s != null && e != null && bestSpan(s, e, c.attentionMask).contentEquals(c.bestSpan)) hits++
            }
        }
        val minAgreement = bounds["min_agreement"]
        if (minAgreement != null && decisive > 0 && hits.toDouble() / decisive < minAgreement) {
            fails.add("best span agrees on $hits/$decisive decisive cases < $minAgreement")
        }
        return fails
    }

    /**
     * The device's answers against the file's: on a decisive case the best span must be the file's
     * best; on a near-tie it must be one of the file's top-k spans.
     */
    fun checkQa(case: Golden.QaCase, actual: List<Answer>): String {
        if (case.answers.isEmpty()) return if (actual.isEmpty()) "" else "'${case.name}': expected no answer, got '${actual[0].text}'"
        if (actual.isEmpty()) return "'${case.name}': no answer"
        val e = case.answers[0]
        val a = actual[0]
        if (case.decisive) {
            if (e.start != a.start || e.end != a.end) {
                return "'${case.name}': expected '${e.text}' [${e.start}, ${e.end}), got '${a.text}' [${a.start}, ${a.end})"
            }
        } else if (case.answers.none { it.start == a.start && it.end == a.end }) {
            return "'${case.name}': '${a.text}' [${a.start}, ${a.end}) is not among the file's top ${case.answers.size}"
        }
        return ""
    }

    /** The length to run: the smallest bucket that holds [CLS] q [SEP] c [SEP], else the longest (windows). */
    fun pickSeqLen(seqLens: List<Int>, questionTokens: Int, contextTokens: Int): Int {
        require(seqLens.isNotEmpty()) { "no sequence lengths" }
        val sorted = seqLens.sorted()
        val need = questionTokens + contextTokens + 3
        for (n in sorted) if (n >= need) return n
        return sorted[sorted.size - 1]
    }
}
