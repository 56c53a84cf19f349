#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Baton's tuning switches, one field per `BATON_*` environment variable, read once per process
/// (README, "Tuning variables", lists them). Every module reads `BatonSettings.current` instead
/// of the environment, so a variable means the same everywhere and a bad value is one error
/// line naming the variable: the `baton` command calls `checkedCurrent()` before it does
/// anything else.
public struct BatonSettings: Sendable, Equatable {
    /// Which attention kernels the CUDA backend may pick (`BATON_ATTENTION`).
    public enum AttentionKernels: String, Sendable, CaseIterable {
        /// Decode, flash, split-KV flash, and the Hopper kernel on sm_90a, by shape (the default).
        case auto
        /// As `auto` without the Hopper kernel: the mma.sync flash versions everywhere.
        case flash
        /// The naive kernel (v1) for every call.
        case naive
    }

    /// `BATON_ATTENTION`: `auto`, `flash` or `naive`.
    public var attention = AttentionKernels.auto
    /// `BATON_FUSE_QKV`: on a GPU, load q/k/v as one weight and project with one GEMM (default on).
    public var fuseQKV = true
    /// `BATON_FUSE_GATE_UP`: on a GPU, load gate/up as one weight (default on).
    public var fuseGateUp = true
    /// `BATON_GEMM_AUTOTUNE`: time cuBLASLt's candidate algorithms per GEMM shape (default off).
    public var gemmAutotune = false
    /// `BATON_KERNEL_DEFINES`: space-separated `NAME` or `NAME=VALUE` macros for every NVRTC
    /// compile (kernel variants for A/B runs; part of the kernel cache key).
    public var kernelDefines: [String] = []
    /// `BATON_KERNEL_VERBOSE`: ptxas register/spill report and NVRTC logs on stderr (default off).
    public var kernelVerbose = false
    /// `BATON_PROFILE`: on a GPU, time every kernel launch and GEMM with events; benchmarks print
    /// the device time per launch name after each case (default off).
    public var profile = false
    /// `BATON_MLP_ROW_BLOCK`: rows per MLP call in a layer (bounds the MLP's temporaries).
    public var mlpRowBlock = 4096
    /// `BATON_PYTHON`: the Python interpreter of `bench prefill --baseline torch`.
    public var python = "python3"
    /// `BATON_DEFAULT_MODEL`: the default model's directory instead of the cache's.
    public var defaultModelDirectory: String?
    /// `BATON_BLAS`: `builtin` or a CBLAS library path for the CPU backend; nil: the first of
    /// Debian's BLAS packages found (read by the CPU backend's BLAS loader).
    public var blas: String?
    /// `BATON_TIMING_LAYERS`: `bench prefill` also prints each case's attention parts per layer and
    /// rank on standard error (default off).
    public var timingLayers = false
    /// `BATON_VISION_CHUNKS`: a rank encodes its share of a video in up to this many chunks,
    /// decoding and preprocessing the next chunk's frames while the tower encodes the current one
    /// (1: no overlap; default 4).
    public var visionChunks = 4

    /// The defaults.
    public init() {}

    /// Settings from `environment`; unset or empty variables keep their defaults. Throws one
    /// `BatonError` naming the variable, its value and what it accepts.
    public init(environment: [String: String]) throws {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: " \t\n"), !text.isEmpty else { return nil }
            return text
        }
        func flag(_ name: String, default fallback: Bool) throws -> Bool {
            guard let text = value(name) else { return fallback }
            switch text.lowercased() {
            case "1", "true", "yes", "on": return true
            case "0", "false", "no", "off": return false
            default: throw BatonError.invalidArgument("\(name)=\(text): expected 1 or 0")
            }
        }
        if let text = value("BATON_ATTENTION") {
            guard let choice = AttentionKernels(rawValue: text.lowercased()) else {
                let known = AttentionKernels.allCases.map(\.rawValue).joined(separator: ", ")
                throw BatonError.invalidArgument("BATON_ATTENTION=\(text): expected one of \(known)")
            }
            attention = choice
        }
        fuseQKV = try flag("BATON_FUSE_QKV", default: fuseQKV)
        fuseGateUp = try flag("BATON_FUSE_GATE_UP", default: fuseGateUp)
        gemmAutotune = try flag("BATON_GEMM_AUTOTUNE", default: gemmAutotune)
        kernelVerbose = try flag("BATON_KERNEL_VERBOSE", default: kernelVerbose)
        profile = try flag("BATON_PROFILE", default: profile)
        kernelDefines = value("BATON_KERNEL_DEFINES")?.split(separator: " ").map(String.init) ?? []
        if let text = value("BATON_MLP_ROW_BLOCK") {
            guard let rows = Int(text), rows >= 1 else {
                throw BatonError.invalidArgument("BATON_MLP_ROW_BLOCK=\(text): expected a positive number of rows")
            }
            mlpRowBlock = rows
        }
        python = value("BATON_PYTHON") ?? python
        defaultModelDirectory = value("BATON_DEFAULT_MODEL")
        blas = value("BATON_BLAS")
        timingLayers = try flag("BATON_TIMING_LAYERS", default: timingLayers)
        if let text = value("BATON_VISION_CHUNKS") {
            guard let chunks = Int(text), chunks >= 1 else {
                throw BatonError.invalidArgument("BATON_VISION_CHUNKS=\(text): expected a positive number of chunks")
            }
            visionChunks = chunks
        }
    }

    /// This process's settings, parsed once on first use.
    private static let parsed = Result { try BatonSettings(environment: processEnvironment()) }

    /// This process's settings. A bad value leaves every default in place here; the `baton`
    /// command refuses it first (`checkedCurrent()`), so a run never uses half-read settings.
    public static var current: BatonSettings { (try? parsed.get()) ?? BatonSettings() }

    /// This process's settings, or the error of the first bad variable.
    public static func checkedCurrent() throws -> BatonSettings { try parsed.get() }

    /// The variables above, as set in this process (read with getenv: this module has no Foundation).
    static func processEnvironment() -> [String: String] {
        var environment: [String: String] = [:]
        for name in variableNames {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        return environment
    }

    /// Every variable these settings read.
    public static let variableNames = [
        "BATON_ATTENTION", "BATON_FUSE_QKV", "BATON_FUSE_GATE_UP", "BATON_GEMM_AUTOTUNE", "BATON_KERNEL_DEFINES",
        "BATON_KERNEL_VERBOSE", "BATON_PROFILE", "BATON_MLP_ROW_BLOCK", "BATON_PYTHON", "BATON_DEFAULT_MODEL",
        "BATON_BLAS", "BATON_TIMING_LAYERS", "BATON_VISION_CHUNKS"
    ]
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var scalars = Substring(self)
        while let first = scalars.first, set.contains(first) { scalars.removeFirst() }
        while let last = scalars.last, set.contains(last) { scalars.removeLast() }
        return String(scalars)
    }
}
