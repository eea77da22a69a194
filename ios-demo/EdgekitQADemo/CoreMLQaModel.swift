import CoreML
import EdgekitQA
import Foundation

/// The exported question-answering model (model.mlpackage, compiled by Xcode to model.mlmodelc) on Core ML:
/// Core ML glue only. Windows, padding (one length or buckets), decoding and checks are the EdgekitQA
/// package's (compiled and tested on Linux too); this class only turns a window into MLMultiArrays and back.
final class CoreMLQaModel: QaModelRunner {
    let model: MLModel
    let computeUnits: MLComputeUnits
    let loadMillis: Double
    let sizeBytes: Int64
    private let outputNames: [String]
    private let inputNames: Set<String>

    init(computeUnits: MLComputeUnits, outputNames: [String]) throws {
        guard let url = Bundle.main.url(forResource: "model", withExtension: "mlmodelc") else {
            throw QaError.message("model.mlmodelc missing: run `edgekit bundle --app ios …` and rebuild")
        }
        let config = MLModelConfiguration()
        config.computeUnits = computeUnits
        let t0 = DispatchTime.now().uptimeNanoseconds
        let loaded = try MLModel(contentsOf: url, configuration: config)
        loadMillis = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        // Locals first: a class may not read its own properties before all are initialised.
        let inputs = loaded.modelDescription.inputDescriptionsByName
        model = loaded
        self.computeUnits = computeUnits
        self.outputNames = outputNames
        sizeBytes = CoreMLQaModel.directorySize(url)
        inputNames = Set(inputs.keys)
    }

    static func directorySize(_ url: URL) -> Int64 {
        var total: Int64 = 0
        if let e = FileManager.default.enumerator(at: url, includingPropertiesForKeys: [.fileSizeKey]) {
            for case let f as URL in e { total += Int64((try? f.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
        }
        return total
    }

    private func array(_ values: [Int32]) throws -> MLMultiArray {
        let a = try MLMultiArray(shape: [1, NSNumber(value: values.count)], dataType: .int32)
        for (i, v) in values.enumerated() { a[i] = NSNumber(value: v) }
        return a
    }

    /// Outputs by edgekit name (start_logits, end_logits) for one [1, n] input (n = one of the file's lengths).
    func run(inputIds: [Int32], attentionMask: [Int32], tokenTypeIds: [Int32]) throws -> [String: [Float]] {
        var feed: [String: Any] = ["input_ids": try array(inputIds), "attention_mask": try array(attentionMask)]
        for name in ["token_type_ids", "segment_ids"] where inputNames.contains(name) { feed[name] = try array(tokenTypeIds) }
        let out = try model.prediction(from: MLDictionaryFeatureProvider(dictionary: feed))
        // Outputs carry edgekit's names, or are matched in order when the converter renamed them.
        let available = out.featureNames.sorted()
        var result: [String: [Float]] = [:]
        for (i, name) in outputNames.enumerated() {
            let key: String
            if available.contains(name) { key = name } else if i < available.count { key = available[i] } else {
                throw QaError.message("the model has \(available.count) outputs (\(available)); expected \(outputNames)")
            }
            guard let m = out.featureValue(for: key)?.multiArrayValue else { throw QaError.message("no output \(key)") }
            guard m.count >= inputIds.count else {
                throw QaError.message("output \(key) has \(m.count) values for \(inputIds.count) tokens")
            }
            result[name] = (0..<m.count).map { m[$0].floatValue }
        }
        return result
    }
}

/// What `edgekit bundle --app ios` put into the app bundle, parsed by the package (typed JSON models).
struct DemoAssets {
    let tokenizer: BertTokenizer
    let golden: Golden
    let card: ModelCard
    /// Window length, stride, longest answer and padding: golden.json's, never the app's own numbers.
    let geometry: QaGeometry

    init() throws {
        func data(_ name: String, _ ext: String) throws -> Data {
            guard let url = Bundle.main.url(forResource: name, withExtension: ext) else {
                throw QaError.message("\(name).\(ext) missing from the app: run `edgekit bundle --app ios …`")
            }
            return try Data(contentsOf: url)
        }
        golden = try Golden(data: try data("golden", "json"))
        // The bundle's normaliser flags: a cased model must not be lowercased.
        tokenizer = try BertTokenizer.fromVocabText(String(decoding: try data("vocab", "txt"), as: UTF8.self),
                                                    lowercase: golden.doLowerCase, stripAccents: golden.stripAccents)
        card = try ModelCard(data: try data("model_card", "json"))
        geometry = try QaGeometry(golden: golden)
    }

    var outputNames: [String] { card.outputNames }

    /// The pipeline: the bundle's geometry (with several lengths, each question is padded to the
    /// smallest that holds it, `QaConfig.paddedLength`), the model's logits.
    func pipeline(_ model: CoreMLQaModel, topK: Int = 3) -> QaPipeline {
        QaPipeline(tokenizer: tokenizer, config: geometry.config(topK: topK)) { try model.runWindow($0) }
    }
}

/// The one place that owns the Core ML model: one instance per compute-unit setting, created on
/// first use and reused; an actor, so two taps never load two copies or run it concurrently.
actor QaService {
    static let shared = QaService()
    private var models: [String: CoreMLQaModel] = [:]
    private var assets: DemoAssets?

    func demoAssets() throws -> DemoAssets {
        if let a = assets { return a }
        let a = try DemoAssets()
        assets = a
        return a
    }

    private func model(_ units: MLComputeUnits) throws -> CoreMLQaModel {
        let key = "\(units.rawValue)"
        if let m = models[key] { return m }
        let m = try CoreMLQaModel(computeUnits: units, outputNames: try demoAssets().outputNames)
        models[key] = m
        return m
    }

    func answer(question: String, context: String) throws -> String {
        let a = try demoAssets()
        let m = try model(.all)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let answers = try a.pipeline(m).answer(question: question, context: context)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        return answers.map { String(format: "%.4f  “%@”  [%d, %d)", $0.score, $0.text, $0.start, $0.end) }
            .joined(separator: "\n") + String(format: "\n\n%.1f ms (tokenise + all windows + decode)", ms)
    }

    func selfCheck(units: MLComputeUnits) throws -> (Int, [String]) {
        let a = try demoAssets()
        return SelfCheck.runAll(golden: a.golden, tokenizer: a.tokenizer, model: try model(units))
    }

    func bench(units: MLComputeUnits, name: String, runs: Int = 50, warmup: Int = 5) throws -> Bench.Result {
        try Bench.run(try demoAssets(), model(units), name: name, runs: runs, warmup: warmup)
    }
}

enum Bench {
    struct Result { let units: String; let sizeBytes: Int64; let loadMillis: Double; let p50: Double; let p90: Double; let runs: Int }

    /// One window of a short question, timed by the package's `Latency` (warm-up, then p50/p90).
    static func run(_ assets: DemoAssets, _ model: CoreMLQaModel, name: String, runs: Int = 50, warmup: Int = 5) throws -> Result {
        let q = "What is this?", c = "A sentence long enough to look like a real context for the benchmark."
        let w = try assets.pipeline(model).encode(question: q, context: c).windows[0]
        let t = try Latency.measure(runs: runs, warmup: warmup) { _ = try model.runWindow(w) }
        return Result(units: name, sizeBytes: model.sizeBytes, loadMillis: model.loadMillis, p50: t.p50, p90: t.p90, runs: runs)
    }
}
