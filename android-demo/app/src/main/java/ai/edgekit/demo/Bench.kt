package ai.edgekit.demo

/** Latency of one window: warm-up runs, then timed runs; nearest-rank percentiles. */
object Bench {
    class Result(val threads: Int, val sizeBytes: Long, val loadMillis: Double, val p50: Double, val p90: Double, val runs: Int) {
        override fun toString(): String = String.format(
            "model size on disk: %.2f MB\nload time: %.1f ms\nthreads: %d\np50: %.2f ms\np90: %.2f ms\nruns: %d",
            sizeBytes / 1e6, loadMillis, threads, p50, p90, runs
        )
    }

    fun percentile(sortedMillis: List<Double>, p: Double): Double {
        val rank = Math.ceil(p / 100.0 * sortedMillis.size).toInt().coerceIn(1, sortedMillis.size)
        return sortedMillis[rank - 1]
    }

    /** On the inference thread: the engine's model with [threads] threads (reloaded only if the count differs). */
    fun run(engine: QaEngine, threads: Int, runs: Int = 50, warmup: Int = 5): Result {
        val model = engine.model(threads)
        val q = "What is this?"
        val c = "A sentence long enough to look like a real context for the benchmark."
        val w = engine.assets.pipeline(model, q, c).encode(q, c).windows[0]
        repeat(warmup) { model.runWindow(w) }
        val times = ArrayList<Double>()
        repeat(runs) {
            val t0 = System.nanoTime()
            model.runWindow(w)
            times.add((System.nanoTime() - t0) / 1e6)
        }
        times.sort()
        return Result(threads, model.sizeBytes, model.loadMillis, percentile(times, 50.0), percentile(times, 90.0), runs)
    }
}
