package ai.edgekit.demo

import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import org.junit.AfterClass
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.BeforeClass
import org.junit.Test
import org.junit.runner.RunWith

/**
 * Replays the bundled golden.json on an emulator or device against the shipped model.tflite:
 * tokenizer cases, decoder cases, model parity within the export record's tolerance, QA answers.
 */
@RunWith(AndroidJUnit4::class)
class GoldenInstrumentedTest {
    companion object {
        private lateinit var assets: DemoAssets
        private lateinit var engine: QaEngine
        private lateinit var model: LiteRtQaModel

        @BeforeClass @JvmStatic
        fun load() {
            assets = DemoAssets(InstrumentationRegistry.getInstrumentation().targetContext)
            engine = QaEngine(assets, 2)
            model = engine.model(2)
        }

        @AfterClass @JvmStatic
        fun close() = engine.close()
    }

    private fun all(results: List<String>) {
        val failures = results.filter { it.isNotEmpty() }
        assertEquals(failures.joinToString("\n"), 0, failures.size)
    }

    @Test fun tokenizerMatchesHuggingFace() {
        assertTrue(assets.golden.tokenization.isNotEmpty())
        all(assets.golden.tokenization.map { GoldenChecks.tokenizer(assets.tokenizer.withNormalizer(it.lowercase, it.stripAccents), it) })
    }

    @Test fun decoderMatchesPython() {
        assertTrue(assets.golden.decoder.isNotEmpty())
        all(assets.golden.decoder.map { GoldenChecks.decoder(assets.tokenizer, it) })
    }

    @Test fun modelOutputsWithinTolerance() {
        assertTrue("golden.json has no model cases: bundle with a model", assets.golden.modelCases.isNotEmpty())
        all(GoldenChecks.modelCases(assets.golden, model))
    }

    @Test fun answersMatchPythonPipeline() {
        assertTrue(assets.golden.qa.isNotEmpty())
        all(assets.golden.qa.map { c ->
            GoldenChecks.qa(ai.edgekit.demo.qa.QaPipeline(assets.tokenizer, c.config) { model.runWindow(it) }, c)
        })
    }

    @Test fun benchmarkReportsLatency() {
        val r = Bench.run(engine, threads = 2, runs = 10, warmup = 2)
        assertTrue(r.p50 > 0 && r.p90 >= r.p50 && r.sizeBytes > 0)
    }
}
