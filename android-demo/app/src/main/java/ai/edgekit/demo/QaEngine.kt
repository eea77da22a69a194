package ai.edgekit.demo

import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * The one inference thread. It owns the LiteRT interpreter (which is not thread-safe): every job
 * ("Answer", "Self-check", "Benchmark", loading golden.json) runs here, one after another, so two
 * clicks can never run the interpreter concurrently or load two copies. The model is loaded once,
 * under [lock], on first use; [close] closes it on this same thread after the queued jobs finish.
 */
class QaEngine(val assets: DemoAssets, private val defaultThreads: Int = 4) {
    private val executor: ExecutorService = Executors.newSingleThreadExecutor { r -> Thread(r, "edgekit-inference") }
    private val lock = Any()
    private var model: LiteRtQaModel? = null
    @Volatile private var closed = false
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

    /** Run [work] on the inference thread; [done] gets its text (or the error's) on the same thread. */
    fun submit(work: (QaEngine) -> String, done: (String) -> Unit) {
        if (closed) return
        try {
            executor.execute {
                val text = try { work(this) } catch (e: Exception) { "error: ${e.message ?: e.toString()}" }
                done(text)
            }
        } catch (e: java.util.concurrent.RejectedExecutionException) {
            // closed meanwhile: the activity is going away, nobody waits for this job
        }
    }

    /** Stop taking jobs; the interpreter is closed on the inference thread once the running job ends. */
    fun close() {
        if (closed) return
        executor.execute { synchronized(lock) { model?.close(); model = null; shut = true } }
        closed = true
        executor.shutdown()
    }
}
