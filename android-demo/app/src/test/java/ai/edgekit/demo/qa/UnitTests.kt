package ai.edgekit.demo.qa

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** Small hand-written checks that do not need golden.json. */
class UnitTests {
    private val vocab = listOf("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "a", ",", "cafe", "東")
    private val tok = BertTokenizer.fromVocabLines(vocab)

    @Test
    fun wordPieceGreedyLongestMatchAndOffsets() {
        val t = tok.tokenize("UnAffable, café 東x")
        assertEquals(listOf(5, 6, 7, 9, 10, 11, 1), t.map { it.id })
        assertEquals(listOf(0, 2, 5, 9, 11, 16, 17), t.map { it.start })
        assertEquals(listOf(0, 0, 0, 9, 11, 16, 17), t.map { it.wordStart })
        assertEquals(listOf(9, 9, 9, 10, 15, 17, 18), t.map { it.wordEnd })
    }

    @Test
    fun offsetsCountCodePointsNotUtf16Units() {
        val t = tok.tokenize("\uD83D\uDE42 a")  // emoji outside the BMP, then "a"
        assertEquals(listOf(1, 8), t.map { it.id })
        assertEquals(listOf(0, 2), t.map { it.start })
    }

    @Test
    fun windowsOverlapByStrideAndCoverTheContext() {
        val ctx = IntArray(50) { 1000 + it }
        val ws = QaDecoder.makeWindows(intArrayOf(7, 8), ctx, 2, 3, 0, QaConfig(maxSeqLen = 20, docStride = 5, padTo = 24))
        val seen = HashSet<Int>()
        for (w in ws) {
            assertEquals(24, w.inputIds.size)
            for (k in 0 until w.contextLen) seen.add(w.inputIds[w.contextStart + k])
        }
        assertEquals(50, seen.size)
        for (k in 1 until ws.size) assertEquals(10, ws[k].contextFirst - ws[k - 1].contextFirst)
        try {
            QaDecoder.makeWindows(IntArray(15), ctx, 2, 3, 0, QaConfig(maxSeqLen = 20, docStride = 5))
            fail("a question that leaves no room must be rejected")
        } catch (e: QaException) {
            assertTrue(e.message!!.contains("too long"))
        }
    }

    @Test
    fun decoderRespectsMaxAnswerLenAndNeverAnswersCls() {
        val w = QaDecoder.makeWindows(intArrayOf(7), intArrayOf(10, 11, 12, 13), 2, 3, 0, QaConfig(maxSeqLen = 16, docStride = 4))[0]
        // [CLS] 7 [SEP] 10 11 12 13 [SEP]: the best start is [CLS], the best end lies 3 tokens after the best start.
        val start = floatArrayOf(9f, 0f, 0f, 5f, 0f, 0f, 0f, 0f)
        val end = floatArrayOf(9f, 0f, 0f, 0f, 0f, 0f, 5f, 0f)
        val (cand, nullScore) = QaDecoder.decodeWindow(start, end, w, QaConfig(maxAnswerLen = 2, topK = 50))
        assertTrue(nullScore > 0.9)
        assertTrue(cand.isNotEmpty())
        for (c in cand) assertTrue(c.start >= 3 && c.end <= 6 && c.end - c.start < 2)
        for (k in 1 until cand.size) assertTrue(cand[k - 1].score >= cand[k].score)
    }

    @Test
    fun miniJsonReadsEscapesAndNumbers() {
        @Suppress("UNCHECKED_CAST")
        val v = MiniJson.parse("""{"a": [1, -2.5e3, true, null], "s": "x\"\\\u00e9\ud83d\ude42\n"}""") as Map<String, Any?>
        assertEquals(listOf(1.0, -2500.0, true, null), v["a"])
        assertEquals("x\"\\é\uD83D\uDE42\n", v["s"])
    }
}
