import BatonTensor
import Dispatch
import Foundation

/// Where a model's weights come from.
public enum WeightSource: Sendable {
    /// A Hugging Face checkpoint, used as it is (names and shapes checked against the config).
    case checkpoint(SafetensorsCheckpoint)
    /// Random weights for speed runs: matrices ~N(0, 0.02²) (Irwin–Hall approximation), norms 1,
    /// biases ~N(0, 0.02²); the same seed gives the same weights on every backend.
    case random(seed: UInt64)

    /// The safetensors of a model directory.
    public static func directory(_ url: URL) throws -> WeightSource {
        .checkpoint(try SafetensorsCheckpoint(directory: url))
    }
}

/// One tensor a model expects: its checkpoint name, shape, and how random weights fill it.
struct WeightSpec {
    enum Initialization { case normal, ones }
    let name: String
    let shape: Shape
    var initialization: Initialization = .normal
}

/// Hands a model its tensors on the backend one at a time (never the whole model on the host),
/// checking names and shapes, and reporting progress in bytes.
final class WeightLoader {
    let source: WeightSource
    let backend: any Backend
    let progress: ((_ done: Int, _ total: Int) -> Void)?
    private let total: Int
    private var done = 0

    /// Checks every spec against a checkpoint before anything is uploaded, so a bad checkpoint
    /// fails in milliseconds rather than after minutes of copying.
    init(
        source: WeightSource, backend: any Backend, specs: [WeightSpec],
        progress: ((_ done: Int, _ total: Int) -> Void)?
    ) throws {
        self.source = source
        self.backend = backend
        self.progress = progress
        switch source {
        case .checkpoint(let checkpoint):
            for spec in specs { _ = try Self.checked(spec, in: checkpoint) }
            total = specs.reduce(0) { $0 + (checkpoint.tensor(named: $1.name)?.byteCount ?? 0) }
        case .random:
            total = specs.reduce(0) { $0 + $1.shape.elementCount * backend.activationDType.byteSize }
        }
        progress?(0, total)
    }

    /// The host tensor `spec.name` of `checkpoint`, present, of the expected shape and a float dtype.
    private static func checked(_ spec: WeightSpec, in checkpoint: SafetensorsCheckpoint) throws -> Tensor {
        let host = try checkpoint.require(spec.name)
        let file =
            checkpoint.fileForTensor[spec.name].map { checkpoint.directory.appendingPathComponent($0).path }
            ?? checkpoint.describedLocation
        guard host.shape == spec.shape else {
            throw BatonError.shapeMismatch(
                "tensor \(spec.name) in \(file): expected shape \(spec.shape), found \(host.shape)")
        }
        guard host.dtype.isFloatingPoint else {
            throw BatonError.invalidModel("tensor \(spec.name) in \(file): expected a float dtype, found \(host.dtype)")
        }
        return host
    }

    /// The tensor `spec.name` on the backend (see `uploadWeight`).
    func load(_ spec: WeightSpec) throws -> Tensor {
        let tensor: Tensor
        switch source {
        case .checkpoint(let checkpoint):
            let host = try Self.checked(spec, in: checkpoint)
            // The CPU backend computes on the mapped bytes in place: fault them in now.
            if backend.device == .cpu { MappedFile.prefetchPages(of: host) }
            tensor = try uploadWeight(host, to: backend)
        case .random(let seed):
            tensor = try RandomWeights.tensor(spec, seed: seed, dtype: backend.activationDType, backend: backend)
        }
        done += tensor.byteCount
        progress?(min(done, total), total)
        return tensor
    }
}

/// A checkpoint tensor on `backend`: kept in its dtype on the host (the mapped bytes are used in
/// place), cast to the activation dtype on a device.
func uploadWeight(_ host: Tensor, to backend: any Backend) throws -> Tensor {
    let uploaded = try backend.upload(host)
    return backend.device == .cpu || uploaded.dtype == backend.activationDType
        ? uploaded : try backend.cast(uploaded, to: backend.activationDType)
}

/// Deterministic random tensors, generated on the host in blocks of rows and uploaded block by
/// block, so even a 1 GB embedding never sits whole on the host.
enum RandomWeights {
    static let standardDeviation: Float = 0.02
    /// Elements generated per upload.
    static let blockElements = 1 << 24
    /// Elements per parallel task.
    static let parallelElements = 1 << 18

    /// `blockElements`: elements generated and uploaded at a time (at least one row).
    static func tensor(
        _ spec: WeightSpec, seed: UInt64, dtype: DType, backend: any Backend,
        blockElements: Int = blockElements
    ) throws -> Tensor {
        let shape = spec.shape
        if spec.initialization == .ones {
            return try backend.upload(
                Tensor([Float](repeating: 1, count: shape.elementCount), shape: shape, dtype: dtype))
        }
        let tensorSeed = seed ^ fnv1a(spec.name)
        let rowSize = max(shape.rowSize, 1)
        let blockRows = max(1, blockElements / rowSize)
        if shape.rows <= blockRows {
            return try backend.upload(hostBlock(shape, firstElement: 0, seed: tensorSeed, dtype: dtype))
        }
        let result = try backend.empty(shape, dtype: dtype)
        for start in stride(from: 0, to: shape.rows, by: blockRows) {
            let rows = start..<min(start + blockRows, shape.rows)
            let block = hostBlock(
                shape.withRows(rows.count), firstElement: start * rowSize, seed: tensorSeed, dtype: dtype)
            try backend.copy(try backend.upload(block), into: result.rows(rows))
        }
        return result
    }

    /// Elements `firstElement ..< firstElement + shape.elementCount` of the tensor. Element `i`
    /// depends only on the seed and `i` (SplitMix64's state is a counter), so values do not depend on
    /// the block size or the number of threads.
    private static func hostBlock(_ shape: Shape, firstElement: Int, seed: UInt64, dtype: DType) -> Tensor {
        let host = Tensor.zeros(shape, dtype: dtype)
        let count = shape.elementCount
        let address = UInt(bitPattern: host.hostPointer)  // an integer crosses threads; the pointer is rebuilt per task
        let parts = (count + parallelElements - 1) / parallelElements
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let begin = part * parallelElements
            let end = min(begin + parallelElements, count)
            let base = UnsafeMutableRawPointer(bitPattern: address)!
            var generator = WeightNoiseGenerator(seed: seed, position: UInt64(firstElement + begin) * 2)
            for i in begin..<end {
                let value = generator.nextStandardNormal() * standardDeviation
                switch dtype {
                case .f32: base.storeBytes(of: value, toByteOffset: i * 4, as: Float.self)
                case .bf16: base.storeBytes(of: FloatBits.bf16(fromFloat: value), toByteOffset: i * 2, as: UInt16.self)
                case .f16: base.storeBytes(of: FloatBits.f16(fromFloat: value), toByteOffset: i * 2, as: UInt16.self)
                case .i32, .i64: break
                }
            }
        }
        return host
    }

    /// FNV-1a of a tensor name: a stable per-tensor seed (Swift's `Hasher` varies per process).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }
}

/// Vigna's SplitMix64 generator: tiny, fast, and good enough for initial weights.
struct WeightNoiseGenerator {
    private static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15
    private var state: UInt64
    /// The generator `position` draws after `seed` (its state is a counter, so skipping is free).
    init(seed: UInt64, position: UInt64 = 0) { state = seed &+ position &* Self.gamma }

    mutating func next() -> UInt64 {
        state &+= Self.gamma
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Approximately N(0, 1): the sum of four uniforms (Irwin–Hall), centred and scaled to unit
    /// variance. Bounded by ±2√3, which is what weight initialisation wants anyway.
    mutating func nextStandardNormal() -> Float {
        let a = next(), b = next()
        let scale = Float(1) / Float(UInt32.max)
        let sum =
            Float(UInt32(truncatingIfNeeded: a)) * scale + Float(UInt32(truncatingIfNeeded: a >> 32)) * scale
            + Float(UInt32(truncatingIfNeeded: b)) * scale + Float(UInt32(truncatingIfNeeded: b >> 32)) * scale
        return (sum - 2) * Float(3).squareRoot()
    }
}
