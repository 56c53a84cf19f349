import BatonComm
import BatonTensor
import Foundation

/// How `baton generate` (and the bench) run their ranks, from `--ranks`, `--gpus` and the
/// torchrun environment. Pure logic, checked before any model loads.
public enum LaunchMode: Sendable, Equatable {
    /// `--ranks N`: threads of this process on one device (CPU ranks, or ranks sharing one GPU
    /// through host memory, the correctness mode).
    case sharedDevice(ranks: Int)
    /// `--gpus N` in one process: one thread per GPU (cuda:0..<N), each with its own weights, over NCCL.
    case gpuThreads(gpus: Int)
    /// Under torchrun (`RANK`, `WORLD_SIZE`, ... set) with `--gpus N` = `WORLD_SIZE`: this process
    /// runs one rank on cuda:`LOCAL_RANK`.
    case process(ProcessGroupConfig)

    /// Whether torchrun (or a launcher like it) started this process: `WORLD_SIZE` is set.
    public static func launchedByTorchrun(_ environment: [String: String]) -> Bool {
        environment["WORLD_SIZE"] != nil
    }

    /// The mode for `--gpus` (nil when not given) and `--ranks`. With torchrun's variables present,
    /// `--gpus` must equal `WORLD_SIZE` (a job of W > 1 processes without `--gpus` is an error, since
    /// every process would otherwise run the whole request alone); `WORLD_SIZE=1` without `--gpus`
    /// runs as usual.
    public static func resolve(
        gpus: Int?, ranks: Int,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> LaunchMode {
        guard ranks >= 1 else { throw BatonError.invalidArgument("--ranks must be at least 1, got \(ranks)") }
        if let gpus {
            guard gpus >= 1 else { throw BatonError.invalidArgument("--gpus must be at least 1, got \(gpus)") }
            guard ranks == 1 else {
                throw BatonError.invalidArgument(
                    "--gpus \(gpus) and --ranks \(ranks) exclude each other: --gpus N runs one rank per GPU, --ranks N runs ranks sharing one device"
                )
            }
        }
        guard launchedByTorchrun(environment) else {
            return gpus.map { .gpuThreads(gpus: $0) } ?? .sharedDevice(ranks: ranks)
        }
        let config = try ProcessGroupConfig.fromEnvironment(environment)
        guard let gpus else {
            if config.worldSize == 1 { return .sharedDevice(ranks: ranks) }
            throw BatonError.invalidArgument(
                "started by torchrun with WORLD_SIZE=\(config.worldSize): pass --gpus \(config.worldSize) so each process runs one rank"
            )
        }
        guard gpus == config.worldSize else {
            throw BatonError.invalidArgument(
                "--gpus \(gpus) does not match WORLD_SIZE=\(config.worldSize) set by torchrun (nodes x --nproc-per-node); they must agree"
            )
        }
        return .process(config)
    }

    /// Ranks of the whole job.
    public var worldSize: Int {
        switch self {
        case .sharedDevice(let ranks): ranks
        case .gpuThreads(let gpus): gpus
        case .process(let config): config.worldSize
        }
    }

    /// Whether ranks run on GPUs of their own over NCCL (`--gpus`).
    public var usesSeparateGPUs: Bool {
        if case .sharedDevice = self { return false }
        return true
    }

    /// Whether this process prints the generated text (rank 0 of a multi-process job; always otherwise).
    public var printsOutput: Bool {
        if case .process(let config) = self { return config.rank == 0 }
        return true
    }

    /// The engine's device for this mode: cuda:`LOCAL_RANK` for a process rank, cuda:0 for GPU
    /// threads, else `requested`.
    public func device(requested: Device) -> Device {
        switch self {
        case .sharedDevice: requested
        case .gpuThreads: .cuda(ordinal: 0)
        case .process(let config): .cuda(ordinal: config.localRank)
        }
    }

    /// Throws a clear error when the mode needs more GPUs than `visible` (the CUDA device count).
    public func requireVisibleGPUs(visible: Int, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws
    {
        switch self {
        case .sharedDevice: return
        case .gpuThreads(let gpus):
            try Self.requireVisibleGPUs(first: 0, count: gpus, visible: visible, environment: environment)
        case .process(let config):
            guard config.localRank < visible else {
                throw BatonError(
                    .notAvailable,
                    "LOCAL_RANK \(config.localRank) runs on cuda:\(config.localRank), but \(Self.visibleText(visible, environment)); "
                        + "start at most \(visible) process(es) per node (torchrun --nproc-per-node)")
            }
        }
    }

    /// Throws unless cuda:first..<first+count are all visible, naming how many are.
    public static func requireVisibleGPUs(
        first: Int, count: Int, visible: Int,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        guard first + count <= visible else {
            let wanted =
                first == 0
                ? "--gpus \(count) needs \(count) GPUs"
                : "\(count) GPUs from cuda:\(first) need cuda:\(first)...cuda:\(first + count - 1)"
            throw BatonError(.notAvailable, "\(wanted), but \(visibleText(visible, environment))")
        }
    }

    static func visibleText(_ visible: Int, _ environment: [String: String]) -> String {
        let devices = visible == 1 ? "1 CUDA device is visible" : "\(visible) CUDA devices are visible"
        if let mask = environment["CUDA_VISIBLE_DEVICES"] { return "\(devices) (CUDA_VISIBLE_DEVICES=\(mask))" }
        return devices
    }
}
