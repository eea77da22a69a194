package ai.edgekit.demo.runner

import org.junit.runner.JUnitCore
import org.junit.runner.Request
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener
import kotlin.system.exitProcess

/** Runs the JVM unit tests without Gradle and prints a closing `N passed, N failed` line for CI. */
fun main(args: Array<String>) {
    val core = JUnitCore()
    val failures = ArrayList<Failure>()
    core.addListener(object : RunListener() {
        override fun testFailure(failure: Failure) {
            failures.add(failure)
            println("FAIL ${failure.description.displayName}: ${failure.message}")
        }
    })
    var run = 0
    for (name in args) {
        val result = core.run(Request.aClass(Class.forName(name)))
        run += result.runCount
        println("$name: ${result.runCount} run, ${result.failureCount} failed")
    }
    // Checks the shell script ran before the JUnit classes (the stub compile check).
    val extraPassed = System.getenv("EDGEKIT_EXTRA_PASSED")?.toIntOrNull() ?: 0
    val extraFailed = System.getenv("EDGEKIT_EXTRA_FAILED")?.toIntOrNull() ?: 0
    val failed = failures.map { it.description }.toSet().size
    // Golden cases replayed per kind, compared with the Swift tests' line (ios-demo/check-golden-counts.sh).
    val counts = ai.edgekit.demo.qa.GoldenCount.line()
    println(counts)
    val countsDir = System.getenv("EDGEKIT_GOLDEN_COUNTS_DIR")
    if (countsDir != null && failed + extraFailed == 0 && run > 0) {
        java.io.File(countsDir).mkdirs()
        java.io.File(countsDir, "kotlin.txt").writeText(counts + "\n")
    }
    println("${run - failed + extraPassed} passed, ${failed + extraFailed} failed")
    exitProcess(if (failed + extraFailed == 0 && run > 0) 0 else 1)
}
