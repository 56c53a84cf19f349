import BatonTensor
import Foundation

// TEMPORARY: the contract of branch ivproc, replaced at merge.
public struct InternVLProcessorConfig: Sendable, Equatable {
    public var tileSize = 448
    public var patchSize = 14
    public var mergeSize = 2
    public var imageMean: [Double] = [0.485, 0.456, 0.406]
    public var imageStd: [Double] = [0.229, 0.224, 0.225]
    public var minTiles = 1
    public var maxTiles = 12
    public var useThumbnail = true
    public init() {}
    public static func load(directory: URL, imageSize: Int?) throws -> InternVLProcessorConfig { .init() }
}

public struct InternVLVideoPlan: VideoPlanning {
    public let file: URL
    public var grid: VisionGrid { fatalError() }
    public var frameIndices: [Int] { fatalError() }
    public var timestamps: [Double] { fatalError() }
    public var secondsPerTemporalUnit: Double? { nil }
    public func preprocess(temporalUnits units: Range<Int>) throws -> Tensor { fatalError() }
    public func preprocess() throws -> VisualInput { fatalError() }
    public func decodeFrames(temporalUnits units: Range<Int>) throws -> [RGBFrame] { fatalError() }
    public func resize(_ frame: RGBFrame) -> RGBFrame { fatalError() }
    public static func make(
        file: URL, frames: Int, config: InternVLProcessorConfig, tools: FFmpegTools
    ) throws -> InternVLVideoPlan { fatalError() }
}

public enum InternVLImage {
    public static func preprocess(_ file: URL, config: InternVLProcessorConfig, tools: FFmpegTools) throws -> VisualInput {
        fatalError()
    }
}
