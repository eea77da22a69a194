package ai.edgekit.demo.qa

/**
 * golden.json as written by `edgekit bundle` / `python -m edgekit.golden`, shared by the JVM
 * unit tests, the instrumented tests and the app's self-check.
 */
class Golden(val root: Map<String, Any?>) {
    class TokenCase(val name: String, val text: String, val ids: IntArray, val offsets: List<IntArray>, val words: List<IntArray>)
    class WindowCase(val inputIds: IntArray, val attentionMask: IntArray, val tokenTypeIds: IntArray, val startLogits: FloatArray, val endLogits: FloatArray)
    class DecoderCase(val name: String, val question: String, val context: String, val config: QaConfig, val windows: List<WindowCase>, val answers: List<Answer>)
    class ModelCase(val inputIds: IntArray, val attentionMask: IntArray, val tokenTypeIds: IntArray, val outputs: Map<String, FloatArray>)
    class QaCase(val name: String, val question: String, val context: String, val config: QaConfig, val answers: List<Answer>)

    init {
        val format = root["format"] as? String
        require(format == "edgekit-golden/1") { "unsupported golden.json format $format: regenerate it with this edgekit version" }
    }

    val tokenization: List<TokenCase> by lazy {
        J.list(root["tokenization"]).map {
            val c = J.obj(it)
            TokenCase(J.str(c["name"]), J.str(c["text"]), J.ints(c["ids"]),
                J.list(c["offsets"]).map { o -> J.ints(o) }, J.list(c["words"]).map { w -> J.ints(w) })
        }
    }

    val decoder: List<DecoderCase> by lazy {
        J.list(root["decoder"]).map {
            val c = J.obj(it)
            DecoderCase(J.str(c["name"]), J.str(c["question"]), J.str(c["context"]), config(c["config"]),
                J.list(c["windows"]).map { w ->
                    val m = J.obj(w)
                    WindowCase(J.ints(m["input_ids"]), J.ints(m["attention_mask"]), J.ints(m["token_type_ids"]),
                        J.floats(m["start_logits"]), J.floats(m["end_logits"]))
                },
                answers(c["answers"]))
        }
    }

    /** The model section, or null when golden.json was written without an artifact. */
    val model: Map<String, Any?>? get() = root["model"] as? Map<String, Any?>

    val modelCases: List<ModelCase> by lazy {
        val m = model ?: return@lazy emptyList<ModelCase>()
        J.list(m["cases"]).map {
            val c = J.obj(it)
            val outs = LinkedHashMap<String, FloatArray>()
            for ((k, v) in J.obj(c["outputs"])) outs[k] = J.floats(v)
            ModelCase(J.ints(c["input_ids"]), J.ints(c["attention_mask"]), J.ints(c["token_type_ids"]), outs)
        }
    }

    val qa: List<QaCase> by lazy {
        J.list(root["qa"] ?: emptyList<Any?>()).map {
            val c = J.obj(it)
            QaCase(J.str(c["name"]), J.str(c["question"]), J.str(c["context"]), config(c["config"]), answers(c["answers"]))
        }
    }

    companion object {
        fun parse(text: String): Golden = Golden(J.obj(MiniJson.parse(text)))

        fun config(v: Any?): QaConfig {
            val c = J.obj(v)
            return QaConfig(
                maxSeqLen = J.int(c["max_seq_len"]),
                docStride = J.int(c["doc_stride"]),
                maxAnswerLen = J.int(c["max_answer_len"]),
                topK = J.int(c["top_k"]),
                handleImpossibleAnswer = J.bool(c["handle_impossible_answer"]),
                alignToWords = J.bool(c["align_to_words"]),
                padTo = c["pad_to"]?.let { J.int(it) }
            )
        }

        fun answers(v: Any?): List<Answer> = J.list(v).map {
            val a = J.obj(it)
            Answer(J.str(a["text"]), J.int(a["start"]), J.int(a["end"]), J.dbl(a["score"]))
        }

        /** Empty string when equal, else a description of the first difference (for test messages). */
        fun compareAnswers(expected: List<Answer>, actual: List<Answer>, relTol: Double): String {
            if (expected.size != actual.size) return "expected ${expected.size} answers, got ${actual.size}: $actual"
            for (i in expected.indices) {
                val e = expected[i]
                val a = actual[i]
                if (e.start != a.start || e.end != a.end || e.text != a.text) {
                    return "answer $i: expected '${e.text}' [${e.start}, ${e.end}), got '${a.text}' [${a.start}, ${a.end})"
                }
                if (Math.abs(e.score - a.score) > relTol * Math.max(Math.abs(e.score), 1e-300)) {
                    return "answer $i: expected score ${e.score}, got ${a.score}"
                }
            }
            return ""
        }
    }
}
