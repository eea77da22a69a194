package ai.edgekit.demo

import ai.edgekit.demo.qa.BertTokenizer
import ai.edgekit.demo.qa.Golden
import ai.edgekit.demo.qa.J
import ai.edgekit.demo.qa.QaPipeline

/**
 * On-device replay of golden.json. Each check returns an empty string on success, else what
 * differed. Used by the app's "Self-check" button and by the instrumented tests.
 */
object GoldenChecks {
    fun tokenizer(tok: BertTokenizer, c: Golden.TokenCase): String {
        val t = tok.tokenize(c.text)
        if (t.map { it.id } != c.ids.toList()) return "ids differ for '${c.name}': ${t.map { it.id }} vs ${c.ids.toList()}"
        if (t.map { listOf(it.start, it.end) } != c.offsets.map { it.toList() }) return "offsets differ for '${c.name}'"
        if (t.map { listOf(it.wordStart, it.wordEnd) } != c.words.map { it.toList() }) return "word spans differ for '${c.name}'"
        return ""
    }

    fun decoder(tok: BertTokenizer, c: Golden.DecoderCase): String {
        var k = 0
        var mismatch = ""
        val answers = QaPipeline(tok, c.config) { w ->
            if (!w.inputIds.contentEquals(c.windows[k].inputIds)) mismatch = "window $k input_ids differ in '${c.name}'"
            val w0 = c.windows[k++]
            Pair(w0.startLogits, w0.endLogits)
        }.answer(c.question, c.context)
        if (mismatch.isNotEmpty()) return mismatch
        if (k != c.windows.size) return "'${c.name}': $k windows instead of ${c.windows.size}"
        return Golden.compareAnswers(c.answers, answers, 1e-9)
    }

    /**
     * Parity of the shipped model against PyTorch, on real (unpadded) tokens only, with the export
     * record's bounds: |a - e| <= atol + rtol * |e| element-wise, and cosine similarity >= minCosine.
     */
    fun model(golden: Golden, model: LiteRtQaModel, c: Golden.ModelCase): String {
        val m = golden.model ?: return "golden.json has no model section"
        val atol = (m["atol"] as? Double)
        val rtol = (m["rtol"] as? Double) ?: 0.0
        val minCosine = (m["min_cosine"] as? Double)
        if (atol == null && minCosine == null) return "golden.json model section has no tolerance"
        val out = model.run(c.inputIds, c.attentionMask, c.tokenTypeIds)
        for ((name, expected) in c.outputs) {
            val actual = out[name] ?: return "model has no output $name"
            var dot = 0.0
            var na = 0.0
            var ne = 0.0
            for (i in expected.indices) {
                if (c.attentionMask[i] == 0) continue
                val a = actual[i].toDouble()
                val e = expected[i].toDouble()
                if (atol != null && Math.abs(a - e) > atol + rtol * Math.abs(e)) {
                    return "$name[$i] = $a, expected $e (atol $atol, rtol $rtol)"
                }
                dot += a * e; na += a * a; ne += e * e
            }
            val cosine = dot / Math.sqrt(na * ne)
            if (minCosine != null && !(cosine >= minCosine)) return "$name cosine $cosine < $minCosine"
        }
        return ""
    }

    /** End to end: the Python pipeline's answers, compared loosely on score (the model is not bit-exact). */
    fun qa(pipeline: QaPipeline, c: Golden.QaCase): String {
        val answers = pipeline.answer(c.question, c.context)
        if (answers.isEmpty()) return "'${c.name}': no answer"
        val e = c.answers[0]
        val a = answers[0]
        if (e.start != a.start || e.end != a.end) return "'${c.name}': expected '${e.text}' [${e.start}, ${e.end}), got '${a.text}' [${a.start}, ${a.end})"
        return ""
    }

    /** Every check; returns (passed, failures). */
    fun runAll(assets: DemoAssets, model: LiteRtQaModel): Pair<Int, List<String>> {
        val g = assets.golden
        val tok = assets.tokenizer
        val results = ArrayList<String>()
        g.tokenization.forEach { results.add(tokenizer(tok, it)) }
        g.decoder.forEach { results.add(decoder(tok, it)) }
        g.modelCases.forEach { results.add(model(g, model, it)) }
        g.qa.forEach { c ->
            val p = QaPipeline(tok, c.config.copy(padTo = model.seqLen)) { model.runWindow(it) }
            results.add(qa(p, c))
        }
        val failures = results.filter { it.isNotEmpty() }
        return Pair(results.size - failures.size, failures)
    }
}
