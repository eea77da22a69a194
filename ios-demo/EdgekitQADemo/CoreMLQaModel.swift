import CoreML
import EdgekitQA
import Foundation

/// The exported question-answering model (model.mlpackage, compiled by Xcode to model.mlmodelc) on Core ML.
/// The model has a fixed sequence length, so windows are padded to `seqLen`.
final class CoreMLQaModel {
    let model: MLModel
    let computeUnits: MLComputeUnits
    let loadMillis: Double
    let sizeBytes: Int64
    let seqLen: Int
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
        seqLen = inputs["input_ids"]?.multiArrayConstraint?.shape.last?.intValue ?? 128
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

    /// Outputs by edgekit name (start_logits, end_logits) for one [1, seqLen] input.
    func run(inputIds: [Int32], attentionMask: [Int32], tokenTypeIds: [Int32]) throws -> [String: [Float]] {
        var feed: [String: Any] = ["input_ids": try array(inputIds), "attention_mask": try array(attentionMask)]
        for name in ["token_type_ids", "segment_ids"] where inputNames.contains(name) { feed[name] = try array(tokenTypeIds) }
        let out = try model.prediction(from: MLDictionaryFeatureProvider(dictionary: feed))
        // Outputs carry edgekit's names, or are matched in order when the converter renamed them.
        let available = out.featureNames.sorted()
        var result: [String: [Float]] = [:]
        for (i, name) in outputNames.enumerated() {
            let key = available.contains(name) ? name : available[i]
            guard let m = out.featureValue(for: key)?.multiArrayValue else { throw QaError.message("no output \(key)") }
            result[name] = (0..<m.count).map { m[$0].floatValue }
        }
        return result
    }

    func runWindow(_ w: Window) throws -> ([Float], [Float]) {
        let out = try run(inputIds: w.inputIds, attentionMask: w.attentionMask, tokenTypeIds: w.tokenTypeIds)
        return (out["start_logits"] ?? [], out["end_logits"] ?? [])
    }
}

/// What `edgekit bundle --app ios` put into the app bundle.
struct DemoAssets {
    let tokenizer: BertTokenizer
    let golden: Golden
    let card: [String: Any]

    init() throws {
        func data(_ name: String, _ ext: String) throws -> Data {
            guard let url = Bundle.main.url(forResource: name, withExtension: ext) else {
                throw QaError.message("\(name).\(ext) missing from the app: run `edgekit bundle --app ios …`")
            }
            return try Data(contentsOf: url)
        }
        tokenizer = try BertTokenizer.fromVocabText(String(decoding: try data("vocab", "txt"), as: UTF8.self))
        golden = try Golden(data: try data("golden", "json"))
        card = (try JSONSerialization.jsonObject(with: try data("model_card", "json")) as? [String: Any]) ?? [:]
    }

    var outputNames: [String] { card["outputs"] as? [String] ?? ["start_logits", "end_logits"] }

    func pipeline(_ model: CoreMLQaModel, topK: Int = 3) -> QaPipeline {
        let qa = card["qa"] as? [String: Any] ?? [:]
        var cfg = QaConfig()
        cfg.maxSeqLen = model.seqLen
        cfg.padTo = model.seqLen
        cfg.docStride = (qa["doc_stride"] as? Int) ?? min(model.seqLen / 4, 128)
        cfg.maxAnswerLen = (qa["max_answer_len"] as? Int) ?? 15
        cfg.topK = topK
        return QaPipeline(tokenizer: tokenizer, config: cfg) { try model.runWindow($0) }
    }
}

enum Bench {
    struct Result { let units: String; let sizeBytes: Int64; let loadMillis: Double; let p50: Double; let p90: Double; let runs: Int }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        let rank = min(max(Int((p / 100 * Double(sorted.count)).rounded(.up)), 1), sorted.count)
        return sorted[rank - 1]
    }

    static func run(_ assets: DemoAssets, units: MLComputeUnits, name: String, runs: Int = 50, warmup: Int = 5) throws -> Result {
        let model = try CoreMLQaModel(computeUnits: units, outputNames: assets.outputNames)
        let w = try assets.pipeline(model).encode(question: "What is this?", context: "A sentence long enough to look like a real context for the benchmark.").windows[0]
        for _ in 0..<warmup { _ = try model.runWindow(w) }
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try model.runWindow(w)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        times.sort()
        return Result(units: name, sizeBytes: model.sizeBytes, loadMillis: model.loadMillis,
                      p50: percentile(times, 50), p90: percentile(times, 90), runs: runs)
    }
}
