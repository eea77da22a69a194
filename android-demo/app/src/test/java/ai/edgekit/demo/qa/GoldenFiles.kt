package ai.edgekit.demo.qa

import java.io.File

/** golden.json and vocab.txt for JVM tests: from the classpath (Gradle / run-jvm-tests.sh) or EDGEKIT_GOLDEN_DIR. */
object GoldenFiles {
    private fun read(name: String): String {
        val dir = System.getenv("EDGEKIT_GOLDEN_DIR")
        if (dir != null) return File(dir, name).readText(Charsets.UTF_8)
        val stream = GoldenFiles::class.java.classLoader.getResourceAsStream(name)
            ?: throw IllegalStateException("$name not on the test classpath: run ./run-jvm-tests.sh or set EDGEKIT_GOLDEN_DIR")
        return stream.use { it.readBytes().toString(Charsets.UTF_8) }
    }

    val golden: Golden by lazy { Golden.parse(read("golden.json")) }
    val tokenizer: BertTokenizer by lazy { BertTokenizer.fromVocabLines(read("vocab.txt").split("\n").map { it.trimEnd('\r') }) }
}
