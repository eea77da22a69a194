import Foundation
@testable import EdgekitQA

/// golden.json + vocab.txt from ../../demo-golden (found from this file's path) or $EDGEKIT_GOLDEN_DIR,
/// and every bundles/<name>/golden.json in that folder, replayed with the main vocab.txt.
/// Mirrors android-demo's GoldenFiles.kt.
enum GoldenFiles {
    static var dir: URL {
        if let d = ProcessInfo.processInfo.environment["EDGEKIT_GOLDEN_DIR"] { return URL(fileURLWithPath: d) }
        // Tests/EdgekitQATests/GoldenFiles.swift -> <repo>/demo-golden
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 { u = u.deletingLastPathComponent() }
        return u.appendingPathComponent("demo-golden")
    }

    static func data(_ url: URL) -> Data {
        guard let d = try? Data(contentsOf: url) else { fatalError("cannot read \(url.path): set EDGEKIT_GOLDEN_DIR or regenerate demo-golden") }
        return d
    }

    static let golden: Golden = {
        do { return try Golden(data: data(dir.appendingPathComponent("golden.json"))) } catch { fatalError("\(error)") }
    }()

    static let tokenizer: BertTokenizer = {
        let text = String(decoding: data(dir.appendingPathComponent("vocab.txt")), as: UTF8.self)
        do { return try BertTokenizer.fromVocabText(text, lowercase: golden.doLowerCase, stripAccents: golden.stripAccents) } catch { fatalError("\(error)") }
    }()

    /// (name, path) of golden.json and of every bundles/<name>/golden.json, in name order.
    static let urls: [(String, URL)] = {
        var out = [("golden.json", dir.appendingPathComponent("golden.json"))]
        let bundles = dir.appendingPathComponent("bundles")
        for n in ((try? FileManager.default.contentsOfDirectory(atPath: bundles.path)) ?? []).sorted() {
            let f = bundles.appendingPathComponent(n).appendingPathComponent("golden.json")
            if FileManager.default.fileExists(atPath: f.path) { out.append(("bundles/\(n)", f)) }
        }
        return out
    }()

    /// (name, golden) of golden.json and of every bundles/<name>/golden.json, in name order.
    static let all: [(String, Golden)] = [("golden.json", golden)] + urls.dropFirst().map { name, url in
        do { return (name, try Golden(data: data(url))) } catch { fatalError("\(name): \(error)") }
    }

    /// The vocabulary with a file's own normaliser flags.
    static func tokenizer(of g: Golden) -> BertTokenizer { tokenizer.withNormalizer(lowercase: g.doLowerCase, stripAccents: g.stripAccents) }
}

/// Cases replayed, per kind, printed as "golden cases: ..." after the golden tests and compared with
/// the Kotlin JVM tests' line by ios-demo/check-golden-counts.sh (the same files, the same counts).
enum GoldenCount {
    static var tokenizer = 0, decoder = 0, qa = 0, bundle = 0, buckets = 0
    static var line: String {
        "golden cases: tokenizer \(tokenizer), decoder \(decoder), qa \(qa), bundle \(bundle), buckets \(buckets)"
    }
}

/// A "model" that answers with the golden file's own outputs: model cases by their real tokens, QA
/// windows by theirs (logits zero-padded to the window's length). The app's self-check must pass on it.
struct ReplayModel: QaModelRunner {
    var table: [[Int32]: [String: [Float]]] = [:]
    /// Flip the sign of every other logit (another model's numbers).
    var perturbed = false

    init(_ g: Golden, perturbed: Bool = false) {
        self.perturbed = perturbed
        for c in g.qa {
            for w in c.windows { table[w.inputIds] = ["start_logits": w.startLogits, "end_logits": w.endLogits] }
        }
        for c in g.modelCases {
            let real = zip(c.inputIds, c.attentionMask).filter { $0.1 != 0 }.map { $0.0 }
            table[real] = c.outputs
        }
    }

    func run(inputIds: [Int32], attentionMask: [Int32], tokenTypeIds: [Int32]) throws -> [String: [Float]] {
        let real = zip(inputIds, attentionMask).filter { $0.1 != 0 }.map { $0.0 }
        guard let out = table[real] else { throw QaError.message("no stored outputs for this window (\(real.count) tokens)") }
        return out.mapValues { v in
            var w = perturbed ? v.enumerated().map { $0.offset % 2 == 0 ? $0.element : -$0.element } : v
            if w.count < inputIds.count { w += [Float](repeating: 0, count: inputIds.count - w.count) }
            return w
        }
    }
}
