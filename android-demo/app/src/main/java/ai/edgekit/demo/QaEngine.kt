package ai.edgekit.demo

import ai.edgekit.demo.qa.InferenceThread

/**
 * The one inference thread. It owns the LiteRT interpreter (which is not thread-safe): every job
 * ("Answer", "Self-check", "Benchmark", loading golden.json) runs here, one after another, so two
 * clicks can never run the interpreter concurrently or load two copies. The model is loaded once,
 * under [lock], on first use; [close] closes it on this same thread after the queued jobs finish.
 */
class QaEngine(val assets: DemoAssets, private val defaultThreads: Int = 4) {
    private val thread = InferenceThread("edgekit-inference")
    private val lock = Any()
    private var model: LiteRtQaModel? = null
    private var shut = false

    /** The model with [threads] interpreter threads, loaded once (reloaded only for another thread count). */
    fun model(threads: Int = defaultThreads): LiteRtQaModel = synchronized(lock) {
        check(!shut) { "the engine is closed" }
        val m = model
        if (m != null && m.threads == threads) return m
        m?.close()
        val loaded = assets.loadModel(threads)
        model = loaded
        loaded
    }

    /**
     * Run [work] on the inference thread; [done] gets its text, or "error: ..." for any Throwable
     * (an UnsatisfiedLinkError from a missing LiteRT library too), on the same thread.
     */
    fun submit(work: (QaEngine) -> String, done: (String) -> Unit) = thread.submit({ work(this) }, done)

    /** Stop taking jobs; the interpreter is closed on the inference thread once the running job ends. */
    fun close() = thread.close { synchronized(lock) { model?.close(); model = null; shut = true } }
}
