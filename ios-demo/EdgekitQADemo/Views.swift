import CoreML
import EdgekitQA
import SwiftUI

private let assetsResult = Result { try DemoAssets() }

struct AskView: View {
    @State private var question = (try? assetsResult.get().golden.qa.first?.question) ?? ""
    @State private var context = (try? assetsResult.get().golden.qa.first?.context) ?? ""
    @State private var output = ""
    @State private var model: CoreMLQaModel?

    var body: some View {
        NavigationStack {
            Form {
                Section("Model") { Text(cardSummary()).font(.footnote) }
                Section("Question") { TextField("Question", text: $question) }
                Section("Context") { TextEditor(text: $context).frame(minHeight: 160) }
                Button("Answer") { answer() }
                Section("Answers") { Text(output).font(.body.monospaced()) }
            }.navigationTitle("edgekit QA")
        }
    }

    private func cardSummary() -> String {
        guard let a = try? assetsResult.get() else { return "No model bundled: run `edgekit bundle --app ios …` (README)." }
        return "\(a.card["model"] ?? "?") · \(a.card["precision"] ?? "?") · seq \(a.card["seq_len"] ?? "?")\n\(a.card["note"] ?? "")"
    }

    private func answer() {
        output = "…"
        let q = question, c = context
        DispatchQueue.global(qos: .userInitiated).async {
            let text: String
            do {
                let assets = try assetsResult.get()
                let m = try model ?? CoreMLQaModel(computeUnits: .all, outputNames: assets.outputNames)
                let t0 = DispatchTime.now().uptimeNanoseconds
                let answers = try assets.pipeline(m).answer(question: q, context: c)
                let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
                text = answers.map { String(format: "%.4f  “%@”  [%d, %d)", $0.score, $0.text, $0.start, $0.end) }
                    .joined(separator: "\n") + String(format: "\n\n%.1f ms (tokenise + all windows + decode)", ms)
                DispatchQueue.main.async { model = m }
            } catch {
                text = "error: \(error)"
            }
            DispatchQueue.main.async { output = text }
        }
    }
}

struct BenchmarkView: View {
    @State private var units = 0
    @State private var output = ""
    private let choices: [(String, MLComputeUnits)] = [
        ("CPU", .cpuOnly), ("CPU + GPU", .cpuAndGPU), ("CPU + Neural Engine", .cpuAndNeuralEngine), ("All", .all),
    ]

    var body: some View {
        NavigationStack {
            Form {
                Picker("Compute units", selection: $units) {
                    ForEach(0..<choices.count, id: \.self) { Text(choices[$0].0).tag($0) }
                }
                Button("Run benchmark") { bench() }
                Button("Self-check golden.json") { selfCheck() }
                Section("Result") { Text(output).font(.body.monospaced()) }
            }.navigationTitle("Benchmark")
        }
    }

    private func bench() {
        output = "…"
        let (name, u) = choices[units]
        DispatchQueue.global(qos: .userInitiated).async {
            let text: String
            do {
                let r = try Bench.run(try assetsResult.get(), units: u, name: name)
                text = String(format: "model size on disk: %.2f MB\nload time: %.1f ms\ncompute units: %@\np50: %.2f ms\np90: %.2f ms\nruns: %d",
                              Double(r.sizeBytes) / 1e6, r.loadMillis, r.units, r.p50, r.p90, r.runs)
            } catch { text = "error: \(error)" }
            DispatchQueue.main.async { output = text }
        }
    }

    private func selfCheck() {
        output = "…"
        DispatchQueue.global(qos: .userInitiated).async {
            let text: String
            do {
                let (passed, failures) = try GoldenChecks.runAll(try assetsResult.get(), units: choices[units].1)
                text = (failures.prefix(10) + ["\(passed) passed, \(failures.count) failed"]).joined(separator: "\n")
            } catch { text = "error: \(error)" }
            DispatchQueue.main.async { output = text }
        }
    }
}
