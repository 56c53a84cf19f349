import BatonTensor
import CCUDA
import Foundation

/// bf16 GEMMs through cuBLASLt: y [M, N] = x [M, K] W^T with W [N, K] row-major (Hugging Face
/// layout), fp32 compute, bf16 out. Row-major y is column-major y^T [N, M] = W (as col-major
/// [K, N], transposed) times x^T (col-major [K, M]), so A = W with TRANSA = T, B = x, no copies.
/// The algorithm cuBLASLt's heuristic picks is cached per (M, N, K).
final class LtMatmul {
    static let workspaceBytes = 32 << 20
    private let lt: BatonCuBLASLt
    private let handle: cublasLtHandle_t
    private let workspace: Tensor
    private var algorithms: [[Int]: cublasLtMatmulAlgo_t] = [:]
    private unowned let backend: CUDABackend

    init(backend: CUDABackend) throws {
        lt = try CUDALibraries.cublasLt()
        var handle: cublasLtHandle_t?
        try lt.check(lt.cublasLtCreate(&handle), "cublasLtCreate")
        self.handle = handle!
        self.backend = backend
        workspace = try backend.empty(Shape([Self.workspaceBytes]), dtype: .bf16)
    }

    deinit { _ = lt.cublasLtDestroy(handle) }

    /// y = x W^T; x [M, K], W [N, K], y [M, N], all bf16 on the backend's device.
    func run(x: Tensor, weight: Tensor, into y: Tensor, M: Int, N: Int, K: Int) throws {
        var desc: cublasLtMatmulDesc_t?
        try lt.check(lt.cublasLtMatmulDescCreate(&desc, Int32(BATON_CUBLAS_COMPUTE_32F), Int32(BATON_CUDA_R_32F)),
                     "cublasLtMatmulDescCreate")
        defer { _ = lt.cublasLtMatmulDescDestroy(desc) }
        var transposed = Int32(BATON_CUBLAS_OP_T), plain = Int32(BATON_CUBLAS_OP_N)
        try lt.check(lt.cublasLtMatmulDescSetAttribute(desc, Int32(BATON_CUBLASLT_MATMUL_DESC_TRANSA), &transposed, 4),
                     "cublasLtMatmulDescSetAttribute(TRANSA)")
        try lt.check(lt.cublasLtMatmulDescSetAttribute(desc, Int32(BATON_CUBLASLT_MATMUL_DESC_TRANSB), &plain, 4),
                     "cublasLtMatmulDescSetAttribute(TRANSB)")
        let bf16 = Int32(BATON_CUDA_R_16BF)
        var a: cublasLtMatrixLayout_t?, b: cublasLtMatrixLayout_t?, c: cublasLtMatrixLayout_t?
        try lt.check(lt.cublasLtMatrixLayoutCreate(&a, bf16, UInt64(K), UInt64(N), Int64(K)), "cublasLtMatrixLayoutCreate(W)")
        defer { _ = lt.cublasLtMatrixLayoutDestroy(a) }
        try lt.check(lt.cublasLtMatrixLayoutCreate(&b, bf16, UInt64(K), UInt64(M), Int64(K)), "cublasLtMatrixLayoutCreate(x)")
        defer { _ = lt.cublasLtMatrixLayoutDestroy(b) }
        try lt.check(lt.cublasLtMatrixLayoutCreate(&c, bf16, UInt64(N), UInt64(M), Int64(N)), "cublasLtMatrixLayoutCreate(y)")
        defer { _ = lt.cublasLtMatrixLayoutDestroy(c) }

        let shapeKey = [M, N, K]
        var algorithm: cublasLtMatmulAlgo_t
        if let known = algorithms[shapeKey] {
            algorithm = known
        } else {
            var preference: cublasLtMatmulPreference_t?
            try lt.check(lt.cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate")
            defer { _ = lt.cublasLtMatmulPreferenceDestroy(preference) }
            var limit = UInt64(Self.workspaceBytes)
            try lt.check(lt.cublasLtMatmulPreferenceSetAttribute(preference, Int32(BATON_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES),
                                                                 &limit, 8), "cublasLtMatmulPreferenceSetAttribute")
            var result = cublasLtMatmulHeuristicResult_t()
            var returned: Int32 = 0
            try lt.check(lt.cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, c, c, preference, 1, &result, &returned),
                         "cublasLtMatmulAlgoGetHeuristic(M \(M), N \(N), K \(K))")
            guard returned > 0 else {
                throw BatonError(.cuda, "cuBLASLt found no bf16 algorithm for M \(M), N \(N), K \(K)")
            }
            algorithm = result.algo
            algorithms[shapeKey] = algorithm
        }
        var alpha: Float = 1, beta: Float = 0
        try lt.check(lt.cublasLtMatmul(handle, desc, &alpha,
                                       UnsafeRawPointer(bitPattern: weight.address), a,
                                       UnsafeRawPointer(bitPattern: x.address), b, &beta,
                                       UnsafeRawPointer(bitPattern: y.address), c,
                                       UnsafeMutableRawPointer(bitPattern: y.address), c, &algorithm,
                                       UnsafeMutableRawPointer(bitPattern: workspace.address), Self.workspaceBytes,
                                       backend.stream),
                     "cublasLtMatmul(M \(M), N \(N), K \(K))")
    }
}
