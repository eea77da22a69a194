package ai.edgekit.demo

import ai.edgekit.demo.qa.J
import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.text.InputType
import android.view.View
import android.view.WindowInsets
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView

/**
 * Ask screen (question + context -> answers with latency) and benchmark screen, built in code.
 * All model work and asset parsing runs on [QaEngine]'s single inference thread.
 */
class MainActivity : Activity() {
    private lateinit var engine: QaEngine

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        engine = QaEngine(DemoAssets(this))
        val root = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(32, 32, 32, 32) }
        val tabs = LinearLayout(this).apply { orientation = LinearLayout.HORIZONTAL }
        val ask = askScreen()
        val bench = benchScreen()
        bench.visibility = View.GONE
        tabs.addView(Button(this).apply { text = "Ask"; setOnClickListener { ask.visibility = View.VISIBLE; bench.visibility = View.GONE } })
        tabs.addView(Button(this).apply { text = "Benchmark"; setOnClickListener { ask.visibility = View.GONE; bench.visibility = View.VISIBLE } })
        root.addView(tabs)
        root.addView(ask)
        root.addView(bench)
        val scroll = ScrollView(this).apply { addView(root) }
        // targetSdk 35 draws edge to edge: keep the tabs out from under the status and navigation bars.
        scroll.setOnApplyWindowInsetsListener { v, insets ->
            if (Build.VERSION.SDK_INT >= 30) {
                val bars = insets.getInsets(WindowInsets.Type.systemBars() or WindowInsets.Type.displayCutout() or WindowInsets.Type.ime())
                v.setPadding(bars.left, bars.top, bars.right, bars.bottom)
            } else {
                @Suppress("DEPRECATION")
                v.setPadding(insets.systemWindowInsetLeft, insets.systemWindowInsetTop, insets.systemWindowInsetRight, insets.systemWindowInsetBottom)
            }
            insets
        }
        setContentView(scroll)
    }

    /** Run [work] on the inference thread and show its text in [out]. */
    private fun background(out: TextView, work: (QaEngine) -> String) {
        out.text = "…"
        engine.submit(work) { text -> runOnUiThread { out.text = text } }
    }

    private fun askScreen(): LinearLayout {
        val v = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        val info = TextView(this)
        val question = EditText(this).apply { hint = "Question" }
        val context = EditText(this).apply {
            hint = "Context"; minLines = 6
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE
        }
        val out = TextView(this)
        v.addView(info)
        v.addView(question)
        v.addView(context)
        // golden.json and the card are parsed on the inference thread; the first QA case fills the form.
        engine.submit({ e ->
            val card = e.assets.card
            val sample = e.assets.golden.qa.firstOrNull()
            runOnUiThread {
                if (question.text.isEmpty() && sample != null) { question.setText(sample.question); context.setText(sample.context) }
            }
            "${J.str(card["model"])} · ${J.str(card["precision"])} · seq ${e.assets.seqLens.joinToString("/")}\n${J.str(card["note"])}"
        }) { text ->
            runOnUiThread {
                info.text = if (text.startsWith("error:")) "No model: run `edgekit bundle --app android …` (see README).\n$text" else text
            }
        }
        v.addView(Button(this).apply {
            text = "Answer"
            setOnClickListener {
                val q = question.text.toString()
                val c = context.text.toString()
                background(out) { e ->
                    val m = e.model()
                    val t0 = System.nanoTime()
                    val answers = e.assets.pipeline(m, q, c).answer(q, c)
                    val ms = (System.nanoTime() - t0) / 1e6
                    answers.joinToString("\n") { String.format("%.4f  “%s”  [%d, %d)", it.score, it.text, it.start, it.end) } +
                        String.format("\n\n%.1f ms (tokenise + all windows + decode)", ms)
                }
            }
        })
        v.addView(out)
        return v
    }

    private fun benchScreen(): LinearLayout {
        val v = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        val threads = EditText(this).apply { hint = "threads"; setText("4"); inputType = InputType.TYPE_CLASS_NUMBER }
        val out = TextView(this)
        v.addView(TextView(this).apply { text = "Threads" })
        v.addView(threads)
        v.addView(Button(this).apply {
            text = "Run benchmark"
            setOnClickListener {
                val n = threads.text.toString().toIntOrNull() ?: 4
                background(out) { e -> Bench.run(e, n).toString() }
            }
        })
        v.addView(Button(this).apply {
            text = "Self-check golden.json"
            setOnClickListener {
                background(out) { e ->
                    val (passed, failures) = GoldenChecks.runAll(e.assets, e.model())
                    (failures.take(10) + "$passed passed, ${failures.size} failed").joinToString("\n")
                }
            }
        })
        v.addView(out)
        return v
    }

    override fun onDestroy() {
        // Closes the interpreter on the inference thread, after the job in flight.
        engine.close()
        super.onDestroy()
    }
}
