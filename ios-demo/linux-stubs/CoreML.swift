// Linux only, never shipped: signature stubs of the Apple Core ML API that the app target's glue
// (ios-demo/EdgekitQADemo/CoreMLQaModel.swift) calls, as Apple's SDK declares them, so that
// run-swift-tests.sh can type-check that file and EdgekitQADemoTests/CoreMLGoldenTests.swift against
// the built EdgekitQA module. Nothing here runs: every body traps. SwiftUI is not stubbed, so
// Views.swift and EdgekitQADemoApp.swift are not compiled on Linux.
import Foundation

public enum MLComputeUnits: Int { case cpuOnly = 0, cpuAndGPU = 1, all = 2, cpuAndNeuralEngine = 3 }

public enum MLMultiArrayDataType: Int { case double = 65600, float32 = 65568, float16 = 65552, int32 = 131104 }

open class MLModelConfiguration {
    public init() {}
    open var computeUnits: MLComputeUnits = .all
}

open class MLMultiArrayConstraint {
    open var shape: [NSNumber] { fatalError("stub") }
}

open class MLFeatureDescription {
    open var multiArrayConstraint: MLMultiArrayConstraint? { fatalError("stub") }
}

open class MLModelDescription {
    open var inputDescriptionsByName: [String: MLFeatureDescription] { fatalError("stub") }
    open var outputDescriptionsByName: [String: MLFeatureDescription] { fatalError("stub") }
}

open class MLMultiArray {
    public init(shape: [NSNumber], dataType: MLMultiArrayDataType) throws { fatalError("stub") }
    open var count: Int { fatalError("stub") }
    open var shape: [NSNumber] { fatalError("stub") }
    open subscript(idx: Int) -> NSNumber {
        get { fatalError("stub") }
        set { fatalError("stub") }
    }
}

open class MLFeatureValue {
    open var multiArrayValue: MLMultiArray? { fatalError("stub") }
}

public protocol MLFeatureProvider {
    var featureNames: Set<String> { get }
    func featureValue(for featureName: String) -> MLFeatureValue?
}

open class MLDictionaryFeatureProvider: MLFeatureProvider {
    public init(dictionary: [String: Any]) throws { fatalError("stub") }
    open var featureNames: Set<String> { fatalError("stub") }
    open func featureValue(for featureName: String) -> MLFeatureValue? { fatalError("stub") }
}

open class MLModel {
    public init(contentsOf url: URL, configuration: MLModelConfiguration) throws { fatalError("stub") }
    open var modelDescription: MLModelDescription { fatalError("stub") }
    open func prediction(from input: MLFeatureProvider) throws -> MLFeatureProvider { fatalError("stub") }
}
