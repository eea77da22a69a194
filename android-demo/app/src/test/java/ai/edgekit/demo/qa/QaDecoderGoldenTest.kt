package ai.edgekit.demo.qa

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized

/** Every decoder case of golden.json: same windows as Python, and the same answers from the same logits. */
@RunWith(Parameterized::class)
class QaDecoderGoldenTest(private val name: String, private val case: Golden.DecoderCase) {
    companion object {
        @JvmStatic
        @Parameterized.Parameters(name = "{0}")
        fun cases(): List<Array<Any>> = GoldenFiles.golden.decoder.map { arrayOf<Any>(it.name, it) }
    }

    @Test
    fun windowsAndAnswersMatchPython() {
        var calls = 0
        val pipeline = QaPipeline(GoldenFiles.tokenizer, case.config) { w ->
            val expected = case.windows[calls]
            assertArrayEquals("input_ids of window $calls", expected.inputIds, w.inputIds)
            assertArrayEquals("attention_mask of window $calls", expected.attentionMask, w.attentionMask)
            assertArrayEquals("token_type_ids of window $calls", expected.tokenTypeIds, w.tokenTypeIds)
            calls++
            Pair(expected.startLogits, expected.endLogits)
        }
        val answers = pipeline.answer(case.question, case.context)
        assertEquals("number of windows", case.windows.size, calls)
        assertEquals("", Golden.compareAnswers(case.answers, answers, 1e-9))
        GoldenCount.decoder++
    }
}
