package ai.edgekit.demo.qa

/**
 * golden.json as written by `edgekit bundle` / `python -m edgekit.golden`, shared by the JVM
 * unit tests, the instrumented tests and the app's self-check.
 */
class Golden(val root: Map<String, Any?>) {
    class TokenCase(
        val name: String, val text: String, val ids: IntArray, val offsets: List<IntArray>, val words: List<IntArray>,
        val lowercase: Boolean, val stripAccents: Boolean
    )
    class WindowCase(val inputIds: IntArray, val attentionMask: IntArray, val tokenTypeIds: IntArray, val startLogits: FloatArray, val endLogits: FloatArray)
    class DecoderCase(val name: String, val question: String, val context: String, val config: QaConfig, val windows: List<WindowCase>, val answers: List<Answer>)
    /** ids/mask -> the shipped file's outputs; [bestSpan] and [decisive] as Python computed them. */
    class ModelCase(
        val inputIds: IntArray, val attentionMask: IntArray, val tokenTypeIds: IntArray, val outputs: Map<String, FloatArray>,
        val bestSpan: IntArray, val decisive: Boolean
    )
    /** A window of a QA case: ids and the file's logits on its real (unpadded) tokens. */
    class QaWindow(val inputIds: IntArray, val startLogits: FloatArray, val endLogits: FloatArray)
    class QaCase(
        val name: String, val question: String, val context: String, val config: QaConfig, val answers: List<Answer>,
        val decisive: Boolean, val windows: List<QaWindow>, val references: List<String>
    )
    class BucketCase(val questionTokens: Int, val contextTokens: Int, val seqLen: Int)

    init {
        val format = root["format"] as? String
        require(format == FORMAT) { "unsupported golden.json format $format (this app reads $FORMAT): regenerate it with this edgekit version" }
    }

    /** The tokenizer flags of the bundle (`do_lower_case`, `strip_accents`). */
    val doLowerCase: Boolean get() = J.obj(root["tokenizer"])["do_lower_case"] as? Boolean ?: true
    val stripAccents: Boolean get() = J.obj(root["tokenizer"])["strip_accents"] as? Boolean ?: doLowerCase

    val tokenization: List<TokenCase> by lazy {
        J.list(root["tokenization"]).map {
            val c = J.obj(it)
            val lower = c["lowercase"] as? Boolean ?: doLowerCase
            TokenCase(J.str(c["name"]), J.str(c["text"]), J.ints(c["ids"]),
                J.list(c["offsets"]).map { o -> J.ints(o) }, J.list(c["words"]).map { w -> J.ints(w) },
                lower, c["strip_accents"] as? Boolean ?: lower)
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
    @Suppress("UNCHECKED_CAST")
    val model: Map<String, Any?>? get() = root["model"] as? Map<String, Any?>

    /** The bounds the device's outputs must meet (every bound the export record validated with). */
    val bounds: Map<String, Double> by lazy {
        val m = model ?: return@lazy emptyMap<String, Double>()
        J.obj(m["bounds"] ?: emptyMap<String, Any?>()).mapValues { J.dbl(it.value) }
    }

    /** Sequence lengths of the shipped file, ascending (several for a length-bucket export). */
    val seqLens: List<Int> by lazy {
        val m = model
        val v = m?.get("seq_lens") ?: J.obj(root["buckets"] ?: mapOf("seq_lens" to emptyList<Any?>()))["seq_lens"]
        J.ints(v).toList()
    }

    val modelCases: List<ModelCase> by lazy {
        val m = model ?: return@lazy emptyList<ModelCase>()
        J.list(m["cases"]).map {
            val c = J.obj(it)
            val outs = LinkedHashMap<String, FloatArray>()
            for ((k, v) in J.obj(c["outputs"])) outs[k] = J.floats(v)
            ModelCase(J.ints(c["input_ids"]), J.ints(c["attention_mask"]), J.ints(c["token_type_ids"]), outs,
                J.ints(c["best_span"]), J.bool(c["decisive"]))
        }
    }

    val qa: List<QaCase> by lazy {
        J.list(root["qa"] ?: emptyList<Any?>()).map {
            val c = J.obj(it)
            QaCase(J.str(c["name"]), J.str(c["question"]), J.str(c["context"]), config(c["config"]), answers(c["answers"]),
                c["decisive"] as? Boolean ?: false,
                J.list(c["windows"] ?: emptyList<Any?>()).map { w ->
                    val m = J.obj(w)
                    QaWindow(J.ints(m["input_ids"]), J.floats(m["start_logits"]), J.floats(m["end_logits"]))
                },
                J.list(c["reference_answers"] ?: emptyList<Any?>()).map { r -> J.str(r) })
        }
    }

    val buckets: List<BucketCase> by lazy {
        val b = root["buckets"] ?: return@lazy emptyList<BucketCase>()
        J.list(J.obj(b)["cases"]).map {
            val c = J.obj(it)
            BucketCase(J.int(c["question_tokens"]), J.int(c["context_tokens"]), J.int(c["seq_len"]))
        }
    }

    companion object {
        const val FORMAT = "edgekit-golden/2"

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
