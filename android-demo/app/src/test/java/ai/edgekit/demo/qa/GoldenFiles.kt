package ai.edgekit.demo.qa

import java.io.File

/**
 * golden.json and vocab.txt for JVM tests: from the classpath (Gradle) or EDGEKIT_GOLDEN_DIR
 * (run-jvm-tests.sh). Bundles' golden files under `bundles/<name>/golden.json` in that folder
 * (int8 TFLite, palettized Core ML...) are replayed too, with the main vocab.txt.
 */
object GoldenFiles {
    private val dir: String? = System.getenv("EDGEKIT_GOLDEN_DIR")

    private fun read(name: String): String {
        if (dir != null) return File(dir, name).readText(Charsets.UTF_8)
        val stream = GoldenFiles::class.java.classLoader.getResourceAsStream(name)
            ?: throw IllegalStateException("$name not on the test classpath: run ./run-jvm-tests.sh or set EDGEKIT_GOLDEN_DIR")
        return stream.use { it.readBytes().toString(Charsets.UTF_8) }
    }

    val golden: Golden by lazy { Golden.parse(read("golden.json")) }
    private val vocabLines: List<String> by lazy { read("vocab.txt").split("\n").map { it.trimEnd('\r') } }
    val tokenizer: BertTokenizer by lazy {
        BertTokenizer.fromVocabLines(vocabLines, lowercase = golden.doLowerCase, stripAccents = golden.stripAccents)
    }

    /** The tokenizer with the normaliser flags a case was generated with. */
    fun tokenizerFor(lowercase: Boolean, stripAccents: Boolean): BertTokenizer = tokenizer.withNormalizer(lowercase, stripAccents)

    val dirs: String get() = dir ?: "the test classpath"

    /** (name, golden) of golden.json and of every bundles/<name>/golden.json. */
    val all: List<Pair<String, Golden>> by lazy {
        val out = arrayListOf(Pair("golden.json", golden))
        val bundles = if (dir != null) File(dir, "bundles").listFiles()?.sortedBy { it.name } ?: emptyList() else emptyList()
        for (b in bundles) {
            val f = File(b, "golden.json")
            if (f.isFile) out.add(Pair("bundles/${b.name}", Golden.parse(f.readText(Charsets.UTF_8))))
        }
        out
    }

    fun tokenizerOf(name: String): BertTokenizer {
        val g = all.first { it.first == name }.second
        return tokenizerFor(g.doLowerCase, g.stripAccents)
    }
}

/**
 * Cases replayed, per kind: RunJvmTests prints [line] after the tests, and ios-demo's Swift tests
 * print the same line, compared by ios-demo/check-golden-counts.sh (same files, same counts).
 */
object GoldenCount {
    @JvmField var tokenizer = 0
    @JvmField var decoder = 0
    @JvmField var qa = 0
    @JvmField var bundle = 0
    @JvmField var buckets = 0
    @JvmStatic fun line(): String = "golden cases: tokenizer $tokenizer, decoder $decoder, qa $qa, bundle $bundle, buckets $buckets"
}
