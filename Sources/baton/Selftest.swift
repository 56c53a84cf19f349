import ArgumentParser
import BatonCUDA
import BatonEngine
import BatonTensor
import Foundation

/// `baton selftest`: every CUDA op against a float64 reference on random inputs of several shapes
/// (odd sizes, GQA, every mask, decode rows). Outputs are poisoned (NaN bytes) before each op, so
/// an unwritten element fails; NaN never passes. Prints a pass/fail table; exits non-zero on any
/// failure, or when no CUDA device is available. `--bench-attention` also times causal attention.
struct Selftest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every CUDA op against a float64 reference; optionally time attention.")

    @Option(help: "Backend to check (cuda).") var device = "cuda"
    @Option(parsing: .unconditional, help: "CUDA device ordinal.") var ordinal = 0
    @Option(parsing: .unconditional, help: "Seed of the random inputs.") var seed: UInt64 = 1
    @Option(parsing: .unconditional, help: "Also time causal attention at these token counts, e.g. 8192,32768,131072.")
    var benchAttention: String?
    @Option(parsing: .unconditional, help: "Heads of the attention benchmark.") var benchHeads = 32
    @Option(parsing: .unconditional, help: "Head dim of the attention benchmark.") var benchHeadDim = 128
    @Option(
        parsing: .unconditional,
        help: "Also time bf16 GEMMs of the Llama-3.1-8B projection and MLP shapes at these row counts, e.g. 4096,8192.")
    var benchGemm: String?
    @Flag(help: "Skip the checks (benchmark only).") var skipChecks = false
    @Option(help: "Also run this fixture model (with expected.json) on the GPU against transformers' logits.")
    var model: String?
    @Option(
        parsing: .unconditional,
        help: "With --model: also run every sequence-parallel method on this many GPU ranks against CPU ranks.")
    var ranks: Int?
    @Flag(
        help:
            "Check the NCCL communicator instead (every collective on a world-size-1 group, the torchrun path, the watchdog)."
    )
    var nccl = false
    @Flag(
        help:
            "Under torchrun: check the rendezvous (rank 0's value to every rank through torchrun's store, then a barrier; no GPU); with --nccl also an NCCL all-reduce on cuda:LOCAL_RANK."
    )
    var rendezvous = false
    @Option(help: .hidden) var rendezvousTimeout: Double = 60
    @Option(help: .hidden) var absentRank: Int?

    func run() async throws {
        if rendezvous {
            try runReportingErrors {
                try RendezvousSelfTest(timeout: rendezvousTimeout, absentRank: absentRank, nccl: nccl).run()
            }
            return
        }
        var attentionSizes: [Int] = [], gemmRows: [Int] = []
        try runReportingErrors {
            guard try Device.named(device) == .cuda(ordinal: 0) else {
                throw BatonError.invalidArgument(
                    "--device must be cuda (the CPU backend is the reference; --ordinal picks the GPU), got '\(device)'"
                )
            }
            try checkOption("--ordinal", ordinal, atLeast: 0)
            try checkOption("--bench-heads", benchHeads, atLeast: 1)
            try checkOption("--bench-head-dim", benchHeadDim, atLeast: 1)
            if let ranks { try checkOption("--ranks", ranks, atLeast: 1) }
            attentionSizes = try benchAttention.map { try parseIntegers($0, option: "--bench-attention") } ?? []
            gemmRows = try benchGemm.map { try parseIntegers($0, option: "--bench-gemm") } ?? []
        }
        if nccl {
            let test = NCCLSelfTest(ordinal: ordinal)
            if test.run() > 0 { throw ExitCode.failure }
            return
        }
        let backend: CUDABackend
        do {
            backend = try CUDABackend(ordinal: ordinal)
            try backend.loadAllKernels()
        } catch {
            // A BatonError's text starts with its kind ("not available: ..."); say it once.
            let reason = (error as? BatonError).map { $0.kind == .notAvailable ? $0.message : "\($0)" } ?? "\(error)"
            standardError("selftest: CUDA is not available: \(reason)\n")
            throw ExitCode(2)
        }
        print(
            "selftest: \(backend.deviceName) (cuda:\(ordinal), \(backend.architecture), \(backend.multiprocessorCount) SMs)"
        )
        var failures = 0
        if !skipChecks {
            let checks = OpChecks(backend: backend, seed: seed)
            checks.runAll()
            checks.printTable()
            failures = checks.failures
            print(
                "selftest: \(checks.rows.count - failures) passed, \(failures) failed; allocator: \(backend.allocator.statistics)"
            )
        }
        if let model { failures += try checkModel(model) }
        if let model, let ranks {
            try checkMethods(model, ranks: ranks)
            failures += try checkApproximationReport(model, ranks: ranks)
        }
        if !attentionSizes.isEmpty {
            try AttentionBenchmark(backend: backend, heads: benchHeads, headDim: benchHeadDim).run(
                sizes: attentionSizes)
        }
        if !gemmRows.isEmpty { try GEMMBenchmark(backend: backend).run(rows: gemmRows) }
        if failures > 0 { throw ExitCode.failure }
    }
}

/// Times y = x W^T for the Llama-3.1-8B shapes (W [N, K]) with the heuristic's first algorithm
/// and with autotuning, with device events around 10 launches (median of 10 after warm-up).
struct GEMMBenchmark {
    let backend: CUDABackend
    static let shapes: [(name: String, N: Int, K: Int)] = [
        ("q/o", 4096, 4096), ("k/v", 1024, 4096), ("qkv", 6144, 4096), ("gate/up", 14336, 4096),
        ("gate_up", 28672, 4096), ("down", 4096, 14336)
    ]
    static let launchesPerTiming = 10

    func run(rows: [Int]) throws {
        backend.poisonAllocations = false
        backend.synchronizeAfterLaunch = false
        var lines: [String] = []
        for M in rows {
            for shape in Self.shapes {
                let x = try backend.randomUniform(Shape([M, shape.K]), dtype: .bf16, seed: 21)
                let w = try backend.randomUniform(Shape([shape.N, shape.K]), dtype: .bf16, seed: 22)
                let r = try backend.randomUniform(Shape([M, shape.N]), dtype: .bf16, seed: 23)
                let flops = 2 * Double(M) * Double(shape.N) * Double(shape.K)
                var cells: [String] = []
                for tuned in [false, true] {
                    try backend.setGEMMAutotune(tuned)
                    for residual in [false, true] {
                        let body = {
                            _ =
                                try
                                (residual
                                ? backend.matmulAdd(x, weight: w, bias: nil, residual: r)
                                : backend.matmul(x, weight: w, bias: nil))
                        }
                        for _ in 0..<3 { try body() }
                        // 10 launches back to back per timing, so the host's time to queue one (which
                        // the device waits for when a single launch sits between the events) is hidden
                        // as it is in a model's forward pass.
                        let times = try (0..<10).map { _ in
                            try backend.measureMilliseconds { for _ in 0..<Self.launchesPerTiming { try body() } }
                        }.sorted()
                        cells.append(String(format: "%6.1f", flops * Double(Self.launchesPerTiming) / times[5] / 1e9))
                    }
                }
                lines.append(
                    String(
                        format:
                            "gemm M %6d %-8@ N %6d K %6d: TFLOP/s heuristic %@ (+residual %@), tuned %@ (+residual %@)",
                        M, shape.name, shape.N, shape.K, cells[0], cells[1], cells[2], cells[3]))
            }
        }
        print(lines.joined(separator: "\n"))
    }
}

/// Times the flash kernels and, on sm_90a, the Hopper kernel (causal prefill, 1 x heads x d)
/// and the decode path, with device events.
struct AttentionBenchmark {
    let backend: CUDABackend
    let heads: Int
    let headDim: Int
    var kernels: [AttentionKernel] = AttentionKernel.flashVersions.map { .flash($0) }

    func median(_ repeats: Int, _ body: () throws -> Void) throws -> Double {
        for _ in 0..<2 { try body() }  // warm-up
        let times = try (0..<repeats).map { _ in try backend.measureMilliseconds(body) }.sorted()
        return times[times.count / 2]
    }

    func run(sizes: [Int]) throws {
        backend.poisonAllocations = false
        backend.synchronizeAfterLaunch = false
        let scale = 1 / Float(headDim).squareRoot()
        var lines: [String] = []
        for S in sizes {
            let q = try backend.randomUniform(Shape([S, heads, headDim]), dtype: .bf16, seed: 11)
            let k = try backend.randomUniform(Shape([S, heads, headDim]), dtype: .bf16, seed: 12)
            let v = try backend.randomUniform(Shape([S, heads, headDim]), dtype: .bf16, seed: 13)
            let repeats = S <= 8192 ? 20 : S <= 32768 ? 10 : 5
            let flops = 4 * Double(S) * Double(S) * Double(heads) * Double(headDim) / 2
            let hopper: [AttentionKernel] =
                (headDim == 64 || headDim == 128) && backend.supportsHopperAttention ? [.hopper] : []
            for kernel in kernels + hopper {
                let ms = try median(repeats) {
                    _ = try backend.attention(query: q, key: k, value: v, mask: .causal, scale: scale, kernel: kernel)
                }
                lines.append(
                    String(
                        format: "baton %@ causal S=%6d H=%d d=%d: %9.3f ms %7.1f TFLOP/s",
                        kernel.description.padding(toLength: 9, withPad: " ", startingAt: 0), S, heads, headDim,
                        ms, flops / ms / 1e9))
            }
            // Decode: one query row over S keys, GQA 4:1 (Llama-3-8B shape), split-KV path.
            let kvHeads = max(1, heads / 4)
            let kd = k.reshaped(S * heads / kvHeads, kvHeads, headDim).rows(0..<S)
            let vd = v.reshaped(S * heads / kvHeads, kvHeads, headDim).rows(0..<S)
            let qd = q.rows(0..<1)
            let decodeKernel = backend.defaultKernel(query: qd, key: kd)
            let decodeMs = try median(20) {
                _ = try backend.attention(
                    query: qd, key: kd, value: vd, mask: .causal, scale: scale, kernel: decodeKernel)
            }
            let bytes = 2 * Double(S) * Double(kvHeads) * Double(headDim) * 2
            lines.append(
                String(
                    format: "baton decode %@ Sk=%6d H=%d Hkv=%d: %9.3f ms %7.1f GB/s", decodeKernel.description,
                    S, heads, kvHeads, decodeMs, bytes / decodeMs / 1e6))
        }
        print(lines.joined(separator: "\n"))
    }
}
