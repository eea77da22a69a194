package ai.edgekit.demo.qa

import org.junit.Assert.assertEquals
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized

/** Every tokenisation case of golden.json: ids, offsets and word spans equal Hugging Face's. */
@RunWith(Parameterized::class)
class TokenizerGoldenTest(private val name: String, private val case: Golden.TokenCase) {
    companion object {
        @JvmStatic
        @Parameterized.Parameters(name = "{0}")
        fun cases(): List<Array<Any>> = GoldenFiles.golden.tokenization.map { arrayOf<Any>(it.name, it) }
    }

    @Test
    fun matchesHuggingFace() {
        val tokens = GoldenFiles.tokenizerFor(case.lowercase, case.stripAccents).tokenize(case.text)
        assertEquals("ids of '${case.text}'", case.ids.toList(), tokens.map { it.id })
        assertEquals("offsets of '${case.text}'", case.offsets.map { it.toList() }, tokens.map { listOf(it.start, it.end) })
        assertEquals("word spans of '${case.text}'", case.words.map { it.toList() }, tokens.map { listOf(it.wordStart, it.wordEnd) })
        GoldenCount.tokenizer++
    }
}
