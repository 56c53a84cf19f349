import BatonTensor
import CCUDA
import Foundation

/// bf16 GEMMs through cuBLASLt: y [M, N] = x [M, K] W^T (+ r [M, N]) with W [N, K] row-major
/// (Hugging Face layout), fp32 compute, bf16 out. Row-major y is column-major y^T [N, M] = W (as
/// col-major [K, N], transposed) times x^T (col-major [K, M]), so A = W with TRANSA = T, B = x, no
/// copies. The residual r, when given, is cuBLASLt's C with beta = 1, and a bf16 bias b [N] is the
/// BIAS epilogue (one value per row of the column-major y^T): both added in fp32 before the one
/// rounding to bf16, with no pass over y of their own.
///
/// Algorithm choice, per (M, N, K, residual): with `autotune` (opt-in, `BATON_GEMM_AUTOTUNE=1`:
/// on an H100 its short timings often picked algorithms slower in sustained runs than the
/// heuristic's first, see bench/RESULTS.md) the first call asks the heuristic for up to `candidates` algorithms, times each
/// with device events (one untimed warm-up launch, which also pays any lazy kernel loading, then
/// `timedLaunches`), and keeps the fastest if it beats the heuristic's first answer by more than
/// `margin`; without it, the heuristic's first answer. The choice lives for the process.
final class LtMatmul {
    static let workspaceBytes = 32 << 20
    static let candidates = 16
    static let timedLaunches = 3
    static let margin = 0.02
    private let lt: BatonCuBLASLt
    private let handle: cublasLtHandle_t
    private let workspace: Tensor
    private var algorithms: [[Int]: cublasLtMatmulAlgo_t] = [:]
    private unowned let backend: CUDABackend
    var autotune = BatonSettings.current.gemmAutotune
    /// Per tuned shape: key, chosen index among the candidates, its ms, the heuristic's first ms.
    private(set) var tuningLog: [(key: [Int], chosen: Int, count: Int, bestMs: Double, firstMs: Double)] = []

    init(backend: CUDABackend) throws {
        lt = try CUDALibraries.cublasLt()
        var handle: cublasLtHandle_t?
        try lt.check(lt.cublasLtCreate(&handle), "cublasLtCreate")
        self.handle = handle!
        self.backend = backend
        workspace = try backend.empty(Shape([Self.workspaceBytes]), dtype: .bf16)
    }

    deinit { _ = lt.cublasLtDestroy(handle) }

    /// Forgets every chosen algorithm (benchmarks compare tuned and untuned choices).
    func resetAlgorithms() { algorithms = [:] }

    /// y = x W^T (+ residual) (+ bias); x [M, K], W [N, K], y and residual [M, N], bias [N], all bf16
    /// on the backend's device. `residual` may be `y` itself.
    func run(
        x: Tensor, weight: Tensor, into y: Tensor, residual: Tensor? = nil, bias: Tensor? = nil,
        M: Int, N: Int, K: Int
    ) throws {
        var desc: cublasLtMatmulDesc_t?
        try lt.check(
            lt.cublasLtMatmulDescCreate(&desc, Int32(BATON_CUBLAS_COMPUTE_32F), Int32(BATON_CUDA_R_32F)),
            "cublasLtMatmulDescCreate")
        defer { _ = lt.cublasLtMatmulDescDestroy(desc) }
        var transposed = Int32(BATON_CUBLAS_OP_T), plain = Int32(BATON_CUBLAS_OP_N)
        try lt.check(
            lt.cublasLtMatmulDescSetAttribute(desc, Int32(BATON_CUBLASLT_MATMUL_DESC_TRANSA), &transposed, 4),
            "cublasLtMatmulDescSetAttribute(TRANSA)")
        try lt.check(
            lt.cublasLtMatmulDescSetAttribute(desc, Int32(BATON_CUBLASLT_MATMUL_DESC_TRANSB), &plain, 4),
            "cublasLtMatmulDescSetAttribute(TRANSB)")
        if let bias {
            var epilogue = Int32(BATON_CUBLASLT_EPILOGUE_BIAS)
            var pointer = UnsafeRawPointer(bitPattern: bias.address)
            try lt.check(
                lt.cublasLtMatmulDescSetAttribute(desc, Int32(BATON_CUBLASLT_MATMUL_DESC_EPILOGUE), &epilogue, 4),
                "cublasLtMatmulDescSetAttribute(EPILOGUE)")
            try lt.check(
                lt.cublasLtMatmulDescSetAttribute(
                    desc, Int32(BATON_CUBLASLT_MATMUL_DESC_BIAS_POINTER), &pointer,
                    MemoryLayout<UnsafeRawPointer?>.size),
                "cublasLtMatmulDescSetAttribute(BIAS_POINTER)")
        }
        let bf16 = Int32(BATON_CUDA_R_16BF)
        var a: cublasLtMatrixLayout_t?, b: cublasLtMatrixLayout_t?, c: cublasLtMatrixLayout_t?
        try lt.check(
            lt.cublasLtMatrixLayoutCreate(&a, bf16, UInt64(K), UInt64(N), Int64(K)), "cublasLtMatrixLayoutCreate(W)")
        defer { _ = lt.cublasLtMatrixLayoutDestroy(a) }
        try lt.check(
            lt.cublasLtMatrixLayoutCreate(&b, bf16, UInt64(K), UInt64(M), Int64(K)), "cublasLtMatrixLayoutCreate(x)")
        defer { _ = lt.cublasLtMatrixLayoutDestroy(b) }
        try lt.check(
            lt.cublasLtMatrixLayoutCreate(&c, bf16, UInt64(N), UInt64(M), Int64(N)), "cublasLtMatrixLayoutCreate(y)")
        defer { _ = lt.cublasLtMatrixLayoutDestroy(c) }

        var alpha: Float = 1, beta: Float = residual == nil ? 0 : 1
        let cAddress = UnsafeRawPointer(bitPattern: (residual ?? y).address)
        func launch(_ algorithm: cublasLtMatmulAlgo_t) -> cublasStatus_t {
            var algorithm = algorithm
            return lt.cublasLtMatmul(
                handle, desc, &alpha,
                UnsafeRawPointer(bitPattern: weight.address), a,
                UnsafeRawPointer(bitPattern: x.address), b, &beta,
                cAddress, c,
                UnsafeMutableRawPointer(bitPattern: y.address), c, &algorithm,
                UnsafeMutableRawPointer(bitPattern: workspace.address), Self.workspaceBytes,
                backend.stream)
        }

        let shapeKey = [M, N, K, residual == nil ? 0 : 1, bias == nil ? 0 : 1]
        let algorithm: cublasLtMatmulAlgo_t
        if let known = algorithms[shapeKey] {
            algorithm = known
        } else {
            var preference: cublasLtMatmulPreference_t?
            try lt.check(lt.cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate")
            defer { _ = lt.cublasLtMatmulPreferenceDestroy(preference) }
            var limit = UInt64(Self.workspaceBytes)
            try lt.check(
                lt.cublasLtMatmulPreferenceSetAttribute(
                    preference, Int32(BATON_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES),
                    &limit, 8), "cublasLtMatmulPreferenceSetAttribute")
            let requested = autotune ? Self.candidates : 1
            var results = [cublasLtMatmulHeuristicResult_t](
                repeating: cublasLtMatmulHeuristicResult_t(), count: requested)
            var returned: Int32 = 0
            try lt.check(
                lt.cublasLtMatmulAlgoGetHeuristic(
                    handle, desc, a, b, c, c, preference, Int32(requested),
                    &results, &returned),
                "cublasLtMatmulAlgoGetHeuristic(M \(M), N \(N), K \(K))")
            let usable = results.prefix(Int(returned)).filter {
                $0.state == 0 && $0.workspaceSize <= Self.workspaceBytes
            }
            guard let first = usable.first else {
                throw BatonError(.cuda, "cuBLASLt found no bf16 algorithm for M \(M), N \(N), K \(K)")
            }
            // Timing writes y: with the residual in y itself (in place) it would add up, so no tuning then.
            if usable.count > 1 && residual?.address != y.address {
                algorithm = try fastest(usable.map(\.algo), key: shapeKey, launch)
            } else {
                algorithm = first.algo
            }
            algorithms[shapeKey] = algorithm
        }
        try lt.check(launch(algorithm), "cublasLtMatmul(M \(M), N \(N), K \(K))")
    }

    /// The fastest of `candidates` (see the type's comment); a candidate whose launch fails is
    /// skipped (the first one must work).
    private func fastest(
        _ candidates: [cublasLtMatmulAlgo_t], key: [Int],
        _ launch: (cublasLtMatmulAlgo_t) -> cublasStatus_t
    ) throws -> cublasLtMatmulAlgo_t {
        var best = 0, bestMs = Double.infinity, firstMs = Double.infinity
        for (index, candidate) in candidates.enumerated() {
            var status = launch(candidate)
            if status == 0 { try backend.synchronize() }
            let ms = try backend.measureMilliseconds {
                for _ in 0..<Self.timedLaunches where status == 0 { status = launch(candidate) }
            }
            if status != 0 {
                if index == 0 { try lt.check(status, "cublasLtMatmul(M \(key[0]), N \(key[1]), K \(key[2]))") }
                continue
            }
            let each = ms / Double(Self.timedLaunches)
            if index == 0 { firstMs = each }
            if each < bestMs { best = index; bestMs = each }
        }
        if bestMs > firstMs * (1 - Self.margin) { best = 0; bestMs = firstMs }
        tuningLog.append((key: key, chosen: best, count: candidates.count, bestMs: bestMs, firstMs: firstMs))
        return candidates[best]
    }
}
