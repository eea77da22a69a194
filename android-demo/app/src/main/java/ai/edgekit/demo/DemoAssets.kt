package ai.edgekit.demo

import ai.edgekit.demo.qa.BertTokenizer
import ai.edgekit.demo.qa.Golden
import ai.edgekit.demo.qa.J
import ai.edgekit.demo.qa.MiniJson
import ai.edgekit.demo.qa.QaConfig
import ai.edgekit.demo.qa.QaPipeline
import android.content.Context
import java.io.File

/** What `edgekit bundle --app android` put into assets/: model.tflite, vocab.txt, golden.json, model_card.json. */
class DemoAssets(private val context: Context) {
    private fun text(name: String): String = context.assets.open(name).use { it.readBytes().toString(Charsets.UTF_8) }

    val golden: Golden by lazy { Golden.parse(text("golden.json")) }
    val card: Map<String, Any?> by lazy { J.obj(MiniJson.parse(text("model_card.json"))) }
    val tokenizer: BertTokenizer by lazy { 
        val lower = J.obj(golden.root["tokenizer"])["do_lower_case"] as? Boolean ?: true
        BertTokenizer.fromVocabLines(text("vocab.txt").split("\n").map { it.trimEnd('\r') }, lowercase = lower)
    }

    /** The model copied out of the APK once, so its size on disk can be reported and it can be memory-mapped. */
    val modelFile: File by lazy {
        val name = J.str(card["artifact"])
        val f = File(context.filesDir, name)
        val assetSize = context.assets.openFd(name).use { it.length }
        if (!f.exists() || f.length() != assetSize) {
            val tmp = File(context.filesDir, "$name.tmp")
            context.assets.open(name).use { input -> tmp.outputStream().use { input.copyTo(it) } }
            if (!tmp.renameTo(f)) throw IllegalStateException("could not write $f")
        }
        f
    }

    val outputNames: List<String> by lazy { J.list(card["outputs"]).map { J.str(it) } }

    fun loadModel(threads: Int): LiteRtQaModel = LiteRtQaModel(modelFile, threads, outputNames)

    fun pipeline(model: LiteRtQaModel, topK: Int = 3): QaPipeline {
        val qa = J.obj(card["qa"])
        val config = QaConfig(
            maxSeqLen = model.seqLen, docStride = J.int(qa["doc_stride"]), maxAnswerLen = J.int(qa["max_answer_len"]),
            topK = topK, padTo = model.seqLen
        )
        return QaPipeline(tokenizer, config) { model.runWindow(it) }
    }
}
