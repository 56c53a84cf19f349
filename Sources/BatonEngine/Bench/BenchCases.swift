import BatonCUDA
import BatonParallel
import BatonTensor

// What `bench prefill` and `bench video` share about their cases: which method runs on which rank
// counts, whether the GPUs a case asks for are there, how its device is labelled, and how a case
// that could not run says why.

/// Dense runs on one rank only; every other method on each requested rank count above 1.
func methodRankPairs(methods: [Method], ranks: [Int]) -> [(method: Method, ranks: Int)] {
    methods.flatMap { method in
        (method == .dense ? [1] : ranks.filter { $0 > 1 }).map { (method, $0) }
    }
}

/// Where a benchmark's multi-rank cases run, and the GPUs visible for one rank per GPU.
struct BenchPlacement {
    /// Ranks run one per GPU over NCCL (`--gpus`); false for CPU ranks and ranks sharing a GPU.
    let onePerGPU: Bool
    private let visibleGPUs: Int

    init(_ placement: RankPlacement, device: Device) throws {
        onePerGPU = placement == .onePerGPU && device != .cpu
        visibleGPUs = onePerGPU ? try CUDABackend.visibleDeviceCount() : 0
    }

    var placement: RankPlacement { onePerGPU ? .onePerGPU : .sharedDevice }

    /// Throws, saying how many GPUs are visible, when a case needs more.
    func check(ranks: Int) throws {
        if onePerGPU && ranks > visibleGPUs {
            throw BatonError.invalidArgument("needs \(ranks) GPUs, \(visibleGPUs) visible")
        }
    }

    /// A case's device column. GPU ranks sharing the engine's one device (`--ranks`) show that a
    /// method runs on GPU backends, not how fast it would be on several GPUs; the label says so.
    func deviceLabel(ranks: Int, device: Device, backend: (any Backend)?) -> String {
        if onePerGPU && ranks > 1 { return gpusLabel(ranks) }
        let named = (backend as? CUDABackend).map { "\(device) (\($0.deviceName))" } ?? device.description
        return device != .cpu && ranks > 1 ? "\(named) shared by \(ranks) ranks" : named
    }
}

/// The device column of a row whose ranks run one per GPU over NCCL.
func gpusLabel(_ gpus: Int) -> String { "cuda:0-\(gpus - 1) (\(gpus) GPUs, NCCL)" }

/// A case's failure as one table-safe line: a `BatonError`'s message, after its kind unless that
/// is "invalid argument" ("out of memory: ...", "prompt of 131122 tokens ... exceeds ...").
func caseFailureReason(_ error: any Error) -> String {
    let text = (error as? BatonError).map { $0.kind == .invalidArgument ? $0.message : $0.description } ?? "\(error)"
    return text.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "|", with: "/")
}

/// The median of timed runs by `seconds` (the lower middle one of an even count), so that its
/// parts are those of one real run.
func medianRun<Run>(_ runs: [Run], by seconds: (Run) -> Double) -> Run {
    let sorted = runs.sorted { seconds($0) < seconds($1) }
    return sorted[(sorted.count - 1) / 2]
}
