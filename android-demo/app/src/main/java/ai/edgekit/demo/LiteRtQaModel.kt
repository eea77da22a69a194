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
 * The file has a fixed sequence length (edgekit exports static shapes), so every window is
 * padded to [seqLen]; the attention mask keeps padding out of the answer.
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
        signature = interpreter.signatureKeys.firstOrNull()
    }

    val seqLen: Int get() = interpreter.getInputTensor(0).shape()[1]

    /** Outputs by name (start_logits, end_logits) for one [1, seqLen] input. */
    fun run(inputIds: IntArray, attentionMask: IntArray, tokenTypeIds: IntArray): Map<String, FloatArray> {
        require(inputIds.size == seqLen) { "the model takes $seqLen tokens, got ${inputIds.size}" }
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
            for (n in names) outputs[n] = arrayOf(FloatArray(seqLen))
            interpreter.runSignature(inputs, outputs, signature)
            names.forEachIndexed { i, n ->
                val key = outputNames.firstOrNull { n.contains(it) } ?: outputNames[i]
                @Suppress("UNCHECKED_CAST")
                result[key] = (outputs.getValue(n) as Array<FloatArray>)[0]
            }
        } else {
            val count = interpreter.inputTensorCount
            val inputs = arrayOf<Any>(arrayOf(inputIds), arrayOf(attentionMask), arrayOf(tokenTypeIds)).copyOf(count)
            val outputs = HashMap<Int, Any>()
            for (i in outputNames.indices) outputs[i] = arrayOf(FloatArray(seqLen))
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
