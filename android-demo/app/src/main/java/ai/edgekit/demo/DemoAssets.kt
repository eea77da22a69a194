package ai.edgekit.demo

import ai.edgekit.demo.qa.BertTokenizer
import ai.edgekit.demo.qa.Golden
import ai.edgekit.demo.qa.J
import ai.edgekit.demo.qa.MiniJson
import ai.edgekit.demo.qa.ModelCheck
import ai.edgekit.demo.qa.QaConfig
import ai.edgekit.demo.qa.QaPipeline
import android.content.Context
import java.io.File
import java.security.MessageDigest

/**
 * What `edgekit bundle --app android` put into assets/: model.tflite, vocab.txt, golden.json,
 * model_card.json. Everything here is parsed lazily (thread-safe `lazy`): call it from the
 * inference thread ([QaEngine]), never from the main thread.
 */
class DemoAssets(private val context: Context) {
    private fun text(name: String): String = context.assets.open(name).use { it.readBytes().toString(Charsets.UTF_8) }

    val golden: Golden by lazy { Golden.parse(text("golden.json")) }
    val card: Map<String, Any?> by lazy { J.obj(MiniJson.parse(text("model_card.json"))) }
    /** The bundle's normaliser flags: a cased model must not be lowercased, accents kept when it says so. */
    val tokenizer: BertTokenizer by lazy {
        BertTokenizer.fromVocabLines(text("vocab.txt").split("\n").map { it.trimEnd('\r') },
            lowercase = golden.doLowerCase, stripAccents = golden.stripAccents)
    }

    /**
     * The model copied out of the APK (so it can be memory-mapped), and copied again whenever its
     * sha256 differs from the bundle card's: a re-bundled checkpoint of the same size is not the
     * same model. A stamp file remembers the verified hash so a launch does not re-hash 20+ MB.
     */
    val modelFile: File by lazy {
        val name = J.str(card["artifact"])
        val want = J.str(card["sha256"])
        val f = File(context.filesDir, name)
        val stamp = File(context.filesDir, "$name.sha256")
        val current = if (f.exists() && stamp.exists()) stamp.readText().trim() else ""
        if (current != want || f.length() != (card["size_bytes"] as? Double)?.toLong()) {
            val tmp = File(context.filesDir, "$name.tmp")
            context.assets.open(name).use { input -> tmp.outputStream().use { input.copyTo(it) } }
            val got = sha256(tmp)
            if (got != want) {
                tmp.delete()
                throw IllegalStateException("assets/$name has sha256 $got but model_card.json says $want: re-run `edgekit bundle`")
            }
            stamp.delete()
            if (!tmp.renameTo(f)) throw IllegalStateException("could not write $f")
            stamp.writeText(want)
        }
        f
    }

    val outputNames: List<String> by lazy { J.list(card["outputs"]).map { J.str(it) } }

    /** The file's lengths, ascending (several when exported with length buckets). */
    val seqLens: List<Int> by lazy { golden.seqLens.ifEmpty { listOf(J.int(card["seq_len"])) } }

    fun loadModel(threads: Int): LiteRtQaModel = LiteRtQaModel(modelFile, threads, outputNames)

    /**
     * The pipeline for one question: the smallest length that holds question + context, else the
     * longest with windows (the rule golden.json's bucket cases pin, [ModelCheck.pickSeqLen]).
     */
    fun pipeline(model: LiteRtQaModel, question: String, context: String, topK: Int = 3): QaPipeline {
        val qa = J.obj(card["qa"])
        val lens = if (model.bucketLens.isNotEmpty()) model.bucketLens else listOf(model.seqLen)
        val n = ModelCheck.pickSeqLen(lens, tokenizer.tokenize(question).size, tokenizer.tokenize(context).size)
        val config = QaConfig(
            maxSeqLen = n, docStride = Math.min(J.int(qa["doc_stride"]), n / 2 - 1), maxAnswerLen = J.int(qa["max_answer_len"]),
            topK = topK, padTo = n
        )
        return QaPipeline(tokenizer, config) { model.runWindow(it) }
    }

    companion object {
        fun sha256(f: File): String {
            val md = MessageDigest.getInstance("SHA-256")
            f.inputStream().use { input ->
                val buf = ByteArray(1 shl 16)
                while (true) {
                    val n = input.read(buf)
                    if (n < 0) break
                    md.update(buf, 0, n)
                }
            }
            return md.digest().joinToString("") { String.format("%02x", it) }
        }
    }
}
