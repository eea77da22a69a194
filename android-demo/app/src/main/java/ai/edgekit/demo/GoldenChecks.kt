package ai.edgekit.demo

import ai.edgekit.demo.qa.BertTokenizer
import ai.edgekit.demo.qa.Golden
import ai.edgekit.demo.qa.ModelCheck
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
            if (k >= c.windows.size) throw IllegalStateException("'${c.name}': more windows than Python's ${c.windows.size}")
            val w0 = c.windows[k++]
            // Every window is compared: ids, mask and token types.
            if (!w.inputIds.contentEquals(w0.inputIds) || !w.attentionMask.contentEquals(w0.attentionMask) ||
                !w.tokenTypeIds.contentEquals(w0.tokenTypeIds)) {
                if (mismatch.isEmpty()) mismatch = "window ${k - 1} differs from Python's in '${c.name}'"
            }
            Pair(w0.startLogits, w0.endLogits)
        }.answer(c.question, c.context)
        if (mismatch.isNotEmpty()) return mismatch
        if (k != c.windows.size) return "'${c.name}': $k windows instead of ${c.windows.size}"
        return Golden.compareAnswers(c.answers, answers, 1e-9)
    }

    /**
     * The shipped model on this device against the file's own outputs (computed in Python when the
     * bundle was made), with every bound the export record validated with: see [ModelCheck].
     */
    fun modelCases(golden: Golden, model: LiteRtQaModel): List<String> {
        val actuals = golden.modelCases.map { model.run(it.inputIds, it.attentionMask, it.tokenTypeIds) }
        return ModelCheck.checkCases(golden.bounds, golden.modelCases, actuals)
    }

    /** End to end on the device: the file's answers (exact top-1 on decisive cases, top-k membership otherwise). */
    fun qa(pipeline: QaPipeline, c: Golden.QaCase): String = ModelCheck.checkQa(c, pipeline.answer(c.question, c.context))

    /** Every check; returns (passed, failures). */
    fun runAll(assets: DemoAssets, model: LiteRtQaModel): Pair<Int, List<String>> {
        val g = assets.golden
        val tok = assets.tokenizer
        val results = ArrayList<String>()
        // A check that throws is a failure with its message, never the end of the self-check.
        fun safe(name: String, check: () -> String): String = try { check() } catch (e: Exception) { "$name: ${e.message ?: e}" }
        g.tokenization.forEach { results.add(safe(it.name) { tokenizer(tok.withNormalizer(it.lowercase, it.stripAccents), it) }) }
        g.decoder.forEach { results.add(safe(it.name) { decoder(tok, it) }) }
        if (g.modelCases.isNotEmpty()) {
            try {
                results.addAll(modelCases(g, model).ifEmpty { listOf("") })
            } catch (e: Exception) {
                results.add("model cases: ${e.message ?: e}")
            }
        }
        g.qa.forEach { c ->
            // The case's own config: its length (pad_to) is the one Python ran the file at.
            results.add(safe(c.name) { qa(QaPipeline(tok, c.config) { model.runWindow(it) }, c) })
        }
        val failures = results.filter { it.isNotEmpty() }
        return Pair(results.size - failures.size, failures)
    }
}
