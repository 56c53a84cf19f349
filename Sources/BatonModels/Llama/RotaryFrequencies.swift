import BatonTensor
import Foundation

/// The rotary inverse frequencies a model's passes use, `[headDim / 2]` f32 on its backend.
/// Without dynamic NTK scaling they are one tensor for every pass. With it they depend on the
/// request's length (`ForwardPass.ropeLength`) once that passes max_position_embeddings: they are
/// computed on the host (d/2 values) and uploaded for each length asked for, and the last few
/// lengths are kept, because every layer of a pass, every pass of one prefill and every CPU rank
/// sharing this model ask for the same length, while decoding moves on by one each step.
final class RotaryFrequencies: @unchecked Sendable {
    let config: ModelConfig
    let backend: any Backend
    /// The frequencies of a length within max_position_embeddings (of any length without dynamic
    /// scaling).
    let base: Tensor
    /// Lengths kept besides `base`: a prefill's and the few decoding steps around it.
    static let capacity = 4
    private let lock = NSLock()
    /// Most recently uploaded last.
    private var recent: [(length: Int, frequencies: Tensor)] = []

    init(config: ModelConfig, backend: any Backend) throws {
        self.config = config
        self.backend = backend
        base = try Self.upload(config.inverseFrequencies(), backend)
    }

    /// The frequencies of a pass over a request `ropeLength` positions long (the whole request's
    /// largest position + 1, whatever rows this rank holds). Throws when dynamic scaling needs the
    /// length and the pass has none.
    func inverseFrequencies(ropeLength: Int?) throws -> Tensor {
        guard config.hasLengthDependentRope else { return base }
        guard let ropeLength else {
            throw BatonError.invalidArgument(
                "dynamic rope scaling: the forward pass carries no ropeLength (the whole request's largest "
                    + "position + 1), so its rotary frequencies are unknown")
        }
        guard config.dynamicRopeTheta(ropeLength: ropeLength) != nil else { return base }
        lock.lock()
        defer { lock.unlock() }
        if let kept = recent.first(where: { $0.length == ropeLength }) { return kept.frequencies }
        let frequencies = try Self.upload(config.inverseFrequencies(ropeLength: ropeLength), backend)
        recent.append((ropeLength, frequencies))
        if recent.count > Self.capacity { recent.removeFirst() }
        return frequencies
    }

    /// Lengths whose frequencies are kept now, oldest first (tests).
    var keptLengths: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return recent.map(\.length)
    }

    private static func upload(_ frequencies: [Double], _ backend: any Backend) throws -> Tensor {
        try backend.upload(Tensor(frequencies.map(Float.init), shape: Shape([frequencies.count]), dtype: .f32))
    }
}
