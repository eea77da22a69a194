import Foundation

/// The fields of model_card.json (written by `edgekit bundle`) that the app shows or needs.
/// The QA geometry is not read from here but from golden.json (`QaGeometry`).
public struct ModelCard: Decodable {
    public let model: String?
    public let precision: String?
    public let note: String?
    public let outputs: [String]?

    public init(data: Data) throws {
        do { self = try JSONDecoder().decode(ModelCard.self, from: data) } catch {
            throw QaError.message("model_card.json: \(Golden.describe(error))")
        }
    }

    /// Output names in the model's order (edgekit's names when the card has none).
    public var outputNames: [String] { (outputs ?? []).isEmpty ? ["start_logits", "end_logits"] : outputs! }

    /// One line for the app: model · precision · lengths, then the card's note.
    public func summary(seqLens: [Int]) -> String {
        "\(model ?? "?") · \(precision ?? "?") · seq \(seqLens.map(String.init).joined(separator: "/"))\n\(note ?? "")"
    }
}
