package ai.edgekit.demo.qa

import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.RejectedExecutionException

/**
 * One background thread that runs jobs one after another and always reports: [submit]'s `done`
 * gets the job's text, or "error: ..." for ANY Throwable it threw. An Error matters as much as an
 * Exception here: a missing LiteRT native library (UnsatisfiedLinkError), a model too large for
 * the heap (OutOfMemoryError) or an ExceptionInInitializerError would otherwise end the job
 * without `done`, leave the screen on "…" forever, and kill the thread for the next job.
 * Plain Kotlin (no Android class), so the JVM tests run it.
 */
class InferenceThread(name: String) {
    private val executor: ExecutorService = Executors.newSingleThreadExecutor { r -> Thread(r, name) }
    @Volatile private var closed = false

    /** Run [work] on the thread; [done] gets its text (or the error's) on the same thread. */
    fun submit(work: () -> String, done: (String) -> Unit) {
        if (closed) return
        try {
            executor.execute { done(textOf(work)) }
        } catch (e: RejectedExecutionException) {
            // closed meanwhile: the activity is going away, nobody waits for this job
        }
    }

    /** Stop taking jobs; [last] runs on the thread once the queued jobs finish. */
    fun close(last: () -> Unit = {}) {
        if (closed) return
        executor.execute { runCatching(last) }
        closed = true
        executor.shutdown()
    }

    companion object {
        /** [work]'s text, or "error: ..." for any Throwable (an Error names its class). */
        fun textOf(work: () -> String): String = try {
            work()
        } catch (e: Exception) {
            "error: ${e.message ?: e.toString()}"
        } catch (t: Throwable) {
            "error: ${t.javaClass.simpleName}: ${t.message ?: "(no message)"}"
        }
    }
}
