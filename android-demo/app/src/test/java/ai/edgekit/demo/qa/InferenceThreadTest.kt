package ai.edgekit.demo.qa

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/** The app's inference thread (QaEngine.submit): every job ends with a text for the screen. */
class InferenceThreadTest {
    private fun runJob(thread: InferenceThread, work: () -> String): String {
        val texts = LinkedBlockingQueue<String>()
        thread.submit(work) { texts.put(it) }
        return texts.poll(5, TimeUnit.SECONDS)
            ?: throw AssertionError("the job never called done: the screen would stay on \"…\"")
    }

    /** What LiteRT's Interpreter throws on a device (or JVM) without its native library. */
    private fun loadModelWithoutNativeLibrary(): Nothing =
        throw UnsatisfiedLinkError("dlopen failed: library \"libtensorflowlite_jni.so\" not found")

    @Test fun errorFromTheModelEndsTheJobWithAMessage() {
        val thread = InferenceThread("test-inference")
        try {
            assertEquals("error: UnsatisfiedLinkError: dlopen failed: library \"libtensorflowlite_jni.so\" not found",
                runJob(thread) { loadModelWithoutNativeLibrary() })
            assertTrue(runJob(thread) { throw OutOfMemoryError("Failed to allocate 90000000 bytes") }
                .startsWith("error: OutOfMemoryError: Failed to allocate"))
            assertEquals("error: no answer", runJob(thread) { throw IllegalStateException("no answer") })
            // the thread survived them all: the next job runs
            assertEquals("answer", runJob(thread) { "answer" })
        } finally {
            thread.close()
        }
    }

    @Test fun closeRunsItsLastJobAfterTheQueuedOnesAndTakesNoMore() {
        val thread = InferenceThread("test-inference")
        val order = LinkedBlockingQueue<String>()
        thread.submit({ Thread.sleep(50); "first" }) { order.put(it) }
        thread.close { order.put("closed") }
        thread.submit({ "late" }) { order.put(it) }
        assertEquals("first", order.poll(5, TimeUnit.SECONDS))
        assertEquals("closed", order.poll(5, TimeUnit.SECONDS))
        assertEquals(null, order.poll(200, TimeUnit.MILLISECONDS))
    }
}
