package ai.edgekit.demo

import ai.edgekit.demo.qa.Window
import org.tensorflow.lite.Interpreter
import java.io.Closeable
import java.io.File
import java.io.FileInputStream
import java.nio.channels.FileChannel

/**
 * The exported question-answering .tflite file on the LiteRT interpreter.
 *
 * Each signature has a fixed sequence length: one (`serving_default`), or one per length bucket
 * (`s128`, `s256`, `s384` + `serving_default` = the longest). A window of n tokens runs on
 * signature `s<n>` when there is one. Not thread-safe: [QaEngine] owns it on one thread.
 */
class LiteRtQaModel(val file: File, val threads: Int, private val outputNames: List<String>) : Closeable {
    val sizeBytes: Long = file.length()
    val loadMillis: Double
    private val interpreter: Interpreter
    private val signature: String?

    init {
        val t0 = System.nanoTime()
        val buffer = FileInputStream(file).use { it.channel.map(FileChannel.MapMode.READ_ONLY, 0, it.channel.size()) }
        interpreter = Interpreter(buffer, Interpreter.Options().setNumThreads(threads))
        interpreter.allocateTensors()
        loadMillis = (System.nanoTime() - t0) / 1e6
        signature = interpreter.signatureKeys.firstOrNull { it == "serving_default" } ?: interpreter.signatureKeys.firstOrNull()
    }

    /** The lengths of the file's bucket signatures (`s128`...), ascending; empty for a single-length file. */
    val bucketLens: List<Int> = interpreter.signatureKeys.mapNotNull { k ->
        if (k.length > 1 && k[0] == 's') k.substring(1).toIntOrNull() else null
    }.sorted()

    /** The longest length the file takes. */
    val seqLen: Int get() = if (bucketLens.isNotEmpty()) bucketLens[bucketLens.size - 1] else interpreter.getInputTensor(0).shape()[1]

    private fun signatureFor(n: Int): String? = if (bucketLens.contains(n)) "s$n" else signature

    /** Outputs by name (start_logits, end_logits) for one [1, seqLen] input. */
    fun run(inputIds: IntArray, attentionMask: IntArray, tokenTypeIds: IntArray): Map<String, FloatArray> {
        val n = inputIds.size
        require(n == seqLen || bucketLens.contains(n)) { "the model takes ${if (bucketLens.isEmpty()) "$seqLen" else "$bucketLens"} tokens, got $n" }
        val signature = signatureFor(n)
        val byRole = mapOf(
            "input_ids" to arrayOf(inputIds), "attention_mask" to arrayOf(attentionMask),
            // edgekit's TFLite files name token types segment_ids (the Task Library's name)
            "token_type_ids" to arrayOf(tokenTypeIds), "segment_ids" to arrayOf(tokenTypeIds)
        )
        val result = LinkedHashMap<String, FloatArray>()
        if (signature != null) {
            val inputs = HashMap<String, Any>()
            for (name in interpreter.getSignatureInputs(signature)) {
                val role = byRole.keys.firstOrNull { name.contains(it) }
                    ?: throw IllegalStateException("unexpected model input '$name'")
                inputs[name] = byRole.getValue(role)
            }
            // Signature outputs are named after edgekit's outputs, or output_0, output_1... in that order.
            val names = interpreter.getSignatureOutputs(signature).sorted()
            val outputs = HashMap<String, Any>()
            for (o in names) outputs[o] = arrayOf(FloatArray(n))
            interpreter.runSignature(inputs, outputs, signature)
            names.forEachIndexed { i, o ->
                val key = outputNames.firstOrNull { o.contains(it) } ?: outputNames.getOrNull(i)
                    ?: throw IllegalStateException("the model has more outputs ($names) than the card lists ($outputNames)")
                @Suppress("UNCHECKED_CAST")
                result[key] = (outputs.getValue(o) as Array<FloatArray>)[0]
            }
        } else {
            val count = interpreter.inputTensorCount
            val inputs = arrayOf<Any>(arrayOf(inputIds), arrayOf(attentionMask), arrayOf(tokenTypeIds)).copyOf(count)
            val outputs = HashMap<Int, Any>()
            for (i in outputNames.indices) outputs[i] = arrayOf(FloatArray(n))
            interpreter.runForMultipleInputsOutputs(inputs.requireNoNulls(), outputs)
            @Suppress("UNCHECKED_CAST")
            outputNames.forEachIndexed { i, n -> result[n] = (outputs.getValue(i) as Array<FloatArray>)[0] }
        }
        return result
    }

    fun runWindow(w: Window): Pair<FloatArray, FloatArray> {
        val out = run(w.inputIds, w.attentionMask, w.tokenTypeIds)
        return Pair(out.getValue("start_logits"), out.getValue("end_logits"))
    }

    override fun close() = interpreter.close()
}
