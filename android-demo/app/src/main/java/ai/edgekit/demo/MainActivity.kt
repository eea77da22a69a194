package ai.edgekit.demo

import ai.edgekit.demo.qa.J
import android.app.Activity
import android.os.Bundle
import android.text.InputType
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView

/** Ask screen (question + context -> answers with latency) and benchmark screen, built in code. */
class MainActivity : Activity() {
    private lateinit var assets: DemoAssets
    private var model: LiteRtQaModel? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        assets = DemoAssets(this)
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
        setContentView(ScrollView(this).apply { addView(root) })
    }

    private fun model(): LiteRtQaModel = model ?: assets.loadModel(threads = 4).also { model = it }

    private fun background(out: TextView, work: () -> String) {
        out.text = "…"
        Thread {
            val text = try { work() } catch (e: Exception) { "error: ${e.message}" }
            runOnUiThread { out.text = text }
        }.start()
    }

    private fun askScreen(): LinearLayout {
        val v = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        val sample = try { assets.golden.qa.firstOrNull() } catch (e: Exception) { null }
        val card = try { assets.card } catch (e: Exception) { null }
        v.addView(TextView(this).apply {
            text = if (card == null) "No model: run `edgekit bundle --app android …` (see README)."
            else "${J.str(card["model"])} · ${J.str(card["precision"])} · seq ${J.int(card["seq_len"])}\n${J.str(card["note"])}"
        })
        val question = EditText(this).apply { hint = "Question"; setText(sample?.question ?: "") }
        val context = EditText(this).apply {
            hint = "Context"; minLines = 6
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE
            setText(sample?.context ?: "")
        }
        val out = TextView(this)
        v.addView(question)
        v.addView(context)
        v.addView(Button(this).apply {
            text = "Answer"
            setOnClickListener {
                background(out) {
                    val m = model()
                    val t0 = System.nanoTime()
                    val answers = assets.pipeline(m).answer(question.text.toString(), context.text.toString())
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
                background(out) { Bench.run(assets, n).toString() }
            }
        })
        v.addView(Button(this).apply {
            text = "Self-check golden.json"
            setOnClickListener {
                background(out) {
                    val (passed, failures) = GoldenChecks.runAll(assets, model())
                    (failures.take(10) + "${passed} passed, ${failures.size} failed").joinToString("\n")
                }
            }
        })
        v.addView(out)
        return v
    }

    override fun onDestroy() {
        model?.close()
        super.onDestroy()
    }
}
