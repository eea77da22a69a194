package ai.edgekit.demo.qa

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The apps' checks of a shipped model ([ModelCheck]) replayed on golden.json files written by
 * `edgekit bundle`: the file's own outputs must pass (an app never fails a bundle its record
 * validated), different numbers must fail, and the QA cases' tokenizer, windows and decoder
 * must reproduce the file's answers from its logits.
 */
class ModelCheckGoldenTest {
    private val goldens: List<Pair<String, Golden>> = GoldenFiles.all.filter { it.second.model != null }

    @Test
    fun thereAreBundlesToReplay() {
        assertTrue("no golden.json with a model section under ${GoldenFiles.dirs}", goldens.isNotEmpty())
    }

    @Test
    fun theFilesOwnOutputsPass() {
        for ((name, g) in goldens) {
            val fails = ModelCheck.checkCases(g.bounds, g.modelCases, g.modelCases.map { it.outputs })
            assertEquals("$name: ${g.bounds}", emptyList<String>(), fails)
            assertTrue("$name has no bounds", g.bounds.isNotEmpty())
            GoldenCount.bundle += g.modelCases.size
        }
    }

    @Test
    fun differentNumbersFail() {
        for ((name, g) in goldens) {
            // One real logit off by far more than any bound allows.
            val shifted = g.modelCases.map { c ->
                c.outputs.mapValues { (_, v) ->
                    val w = v.copyOf(); val i = c.bestSpan[0]; w[i] = w[i] - 1000f; w
                }
            }
            assertFalse("$name: a shifted logit passed", ModelCheck.checkCases(g.bounds, g.modelCases, shifted).isEmpty())
            // Noise that keeps the norm: cosine / PSNR / max_abs must notice.
            val rng = java.util.Random(7)
            val noisy = g.modelCases.map { c ->
                c.outputs.mapValues { (_, v) -> FloatArray(v.size) { (v[it] + rng.nextGaussian() * 3.0).toFloat() } }
            }
            assertFalse("$name: noisy outputs passed", ModelCheck.checkCases(g.bounds, g.modelCases, noisy).isEmpty())
        }
    }

    @Test
    fun eachValueBoundIsApplied() {
        for ((name, g) in goldens) {
            val maxAbs = g.bounds["max_abs"] ?: continue
            // One real logit off by 3 x max_abs: cosine and PSNR hardly move, max_abs must catch it.
            val nudged = g.modelCases.map { c ->
                c.outputs.mapValues { (_, v) -> val w = v.copyOf(); w[c.bestSpan[0]] += (3 * maxAbs).toFloat(); w }
            }
            val onlyMax = mapOf("max_abs" to maxAbs)
            assertFalse("$name: max_abs not applied", ModelCheck.checkCases(onlyMax, g.modelCases, nudged).isEmpty())
            val scaled = g.modelCases.map { c -> c.outputs.mapValues { (_, v) -> FloatArray(v.size) { v[it] * 1.5f } } }
            assertTrue("cosine ignores scale", ModelCheck.checkCases(mapOf("min_cosine" to 0.9999), g.modelCases, scaled).isEmpty())
            assertFalse("$name: PSNR not applied", ModelCheck.checkCases(mapOf("min_psnr" to 30.0), g.modelCases, scaled).isEmpty())
            val noisy = g.modelCases.map { c ->
                c.outputs.mapValues { (_, v) -> FloatArray(v.size) { k -> if (k % 2 == 0) v[k] else -v[k] } }
            }
            assertFalse("$name: cosine not applied", ModelCheck.checkCases(mapOf("min_cosine" to 0.9), g.modelCases, noisy).isEmpty())
        }
    }

    @Test
    fun nearTiesDoNotCount() {
        for ((name, g) in goldens) {
            // Non-decisive cases answer differently (negated logits), decisive ones keep the file's outputs.
            val mixed = g.modelCases.map { c ->
                if (c.decisive) c.outputs else c.outputs.mapValues { (_, v) -> FloatArray(v.size) { k -> if (c.attentionMask[k] == 1) -v[k] else v[k] } }
            }
            val moved = g.modelCases.indices.count { k ->
                val c = g.modelCases[k]
                !c.decisive && !ModelCheck.bestSpan(mixed[k].getValue("start_logits"), mixed[k].getValue("end_logits"), c.attentionMask).contentEquals(c.bestSpan)
            }
            assertTrue("$name: no near-tie case to test with", g.modelCases.any { !it.decisive })
            assertTrue(moved > 0)
            assertEquals("$name", emptyList<String>(), ModelCheck.checkCases(mapOf("min_agreement" to 1.0), g.modelCases, mixed))
        }
    }

    @Test
    fun agreementCountsDecisiveCasesOnly() {
        for ((name, g) in goldens) {
            val onlyAgreement = mapOf("min_agreement" to 1.0)
            // Swap start and end logits of every case: the best span moves on decisive cases.
            val swapped = g.modelCases.map { c ->
                val s = c.outputs.getValue("start_logits"); val e = c.outputs.getValue("end_logits")
                val rev = { a: FloatArray -> FloatArray(a.size) { k -> if (c.attentionMask[k] == 1) -a[k] else a[k] } }
                mapOf("start_logits" to rev(s), "end_logits" to rev(e))
            }
            val decisive = g.modelCases.count { it.decisive }
            val fails = ModelCheck.checkCases(onlyAgreement, g.modelCases, swapped)
            if (decisive > 0) assertFalse("$name: reversed logits agreed", fails.isEmpty()) else assertTrue(fails.isEmpty())
            for (c in g.modelCases) {
                assertTrue(ModelCheck.bestSpan(c.outputs.getValue("start_logits"), c.outputs.getValue("end_logits"), c.attentionMask)
                    .contentEquals(c.bestSpan))
            }
        }
    }

    @Test
    fun qaCasesReplayTokenizerWindowsAndDecoderOnTheFilesLogits() {
        for ((name, g) in goldens) {
            val tok = GoldenFiles.tokenizerOf(name)
            assertTrue("$name has no QA cases", g.qa.isNotEmpty())
            for (c in g.qa) {
                var k = 0
                val answers = QaPipeline(tok, c.config) { w ->
                    val exp = c.windows[k++]
                    val n = exp.inputIds.size
                    assertEquals("${c.name}: window ids", exp.inputIds.toList(), w.inputIds.toList().subList(0, n))
                    for (j in n until w.inputIds.size) assertEquals(0, w.attentionMask[j])
                    Pair(exp.startLogits.copyOf(w.inputIds.size), exp.endLogits.copyOf(w.inputIds.size))
                }.answer(c.question, c.context)
                assertEquals("${c.name}: windows", c.windows.size, k)
                assertEquals("$name ${c.name}", "", Golden.compareAnswers(c.answers, answers, 1e-9))
                assertEquals("", ModelCheck.checkQa(c, answers))
                // A device answering something else fails a decisive case.
                if (c.decisive && c.answers[0].end > 0) {
                    val wrong = listOf(Answer("x", c.answers[0].end + 1000, c.answers[0].end + 1001, 1.0))
                    assertFalse(ModelCheck.checkQa(c, wrong).isEmpty())
                }
                GoldenCount.qa++
            }
        }
    }

    @Test
    fun bucketsPickTheSmallestLengthThatFits() {
        for ((_, g) in GoldenFiles.all) {
            val lens = if (g.buckets.isEmpty()) emptyList() else J.ints(J.obj(g.root["buckets"])["seq_lens"]).toList()
            for (b in g.buckets) {
                assertEquals("q ${b.questionTokens} c ${b.contextTokens}", b.seqLen, ModelCheck.pickSeqLen(lens, b.questionTokens, b.contextTokens))
                GoldenCount.buckets++
            }
        }
        assertEquals(128, ModelCheck.pickSeqLen(listOf(384, 128, 256), 10, 115))
        assertEquals(256, ModelCheck.pickSeqLen(listOf(384, 128, 256), 10, 116))
        assertEquals(384, ModelCheck.pickSeqLen(listOf(128, 256, 384), 10, 5000))
    }

    @Test
    fun unknownBoundsFail() {
        val g = goldens.first().second
        val fails = ModelCheck.checkCases(g.bounds + ("min_recall_at_10" to 0.9), g.modelCases, g.modelCases.map { it.outputs })
        assertFalse(fails.isEmpty())
    }
}
