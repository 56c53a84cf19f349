import Foundation

/// Row-major single-precision matrix products for the CPU backend: through a CBLAS library found
/// at run time (as the CUDA libraries are, with dlopen), or Baton's built-in GEMM when none is
/// installed. Nothing is linked at build time, so `baton` builds and runs with no BLAS package.
///
/// Every call is single-threaded: Baton splits each product across cores itself (and CPU ranks
/// run concurrently), so a library's own thread pool is set to one thread when it has one.
///
/// `BATON_BLAS` (read once, here) chooses: unset = the first library of `searchOrder` that loads,
/// else the built-in GEMM; `builtin` = the built-in GEMM; any other value = the path (or soname)
/// of a CBLAS library to load. One line on stderr, once per process, says which is used.
struct BLAS: @unchecked Sendable {  // function pointers into a library that is never unloaded
    typealias GEMM =
        @convention(c) (
            Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
            UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
        ) -> Void
    typealias GEMV =
        @convention(c) (
            Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
            UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
        ) -> Void

    /// What runs the products, in words (the library's path, or "built-in Swift GEMM").
    let name: String
    private let library: (gemm: GEMM, gemv: GEMV)?

    var isBuiltin: Bool { library == nil }

    /// CBLAS libraries tried in order, by Debian runtime soname (no -dev package needed):
    /// OpenBLAS (libopenblas0-pthread/-openmp/-serial), BLIS (libblis4), MKL (libmkl-rt), then
    /// whatever the `libblas.so.3` / `libcblas.so.3` alternatives point to (Netlib's reference
    /// BLAS is skipped there: the built-in GEMM is faster than it).
    static let searchOrder = [
        "libopenblas.so.0", "libblis.so.4", "libblis.so.3", "libmkl_rt.so.2", "libmkl_rt.so",
        "libblas.so.3", "libcblas.so.3"
    ]

    /// The process-wide choice (BATON_BLAS, then `searchOrder`), announced once on stderr when
    /// the first product runs (so a command that fails before computing anything prints only
    /// its error line).
    static let shared: BLAS = {
        let chosen = choose(override: ProcessInfo.processInfo.environment["BATON_BLAS"])
        FileHandle.standardError.write(Data("baton: \(chosen.announcement)\n".utf8))
        return chosen.blas
    }()

    /// The built-in GEMM, whatever is installed (tests compare the two paths).
    static let builtin = BLAS(name: "built-in Swift GEMM", library: nil)

    /// Loads the CBLAS at `path` (a path or soname); nil when it does not load or lacks
    /// cblas_sgemm/cblas_sgemv, with the reason.
    static func load(_ path: String) -> Result<BLAS, LoadFailure> {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            return .failure(LoadFailure(reason: dlerror().map { String(cString: $0) } ?? "dlopen failed"))
        }
        guard let gemm = dlsym(handle, "cblas_sgemm"), let gemv = dlsym(handle, "cblas_sgemv") else {
            dlclose(handle)
            return .failure(LoadFailure(reason: "\(path) has no cblas_sgemm/cblas_sgemv"))
        }
        let file = mappedFile(containing: gemm) ?? path
        if isReferenceBLAS(file) {
            dlclose(handle)
            return .failure(LoadFailure(reason: "\(file) is the reference BLAS, slower than the built-in GEMM"))
        }
        // Debian packs each library's own thread setter; one BLAS thread per caller (see above).
        for setter in ["openblas_set_num_threads", "bli_thread_set_num_threads", "MKL_Set_Num_Threads"] {
            if let symbol = dlsym(handle, setter) {
                typealias SetThreads = @convention(c) (Int32) -> Void
                unsafeBitCast(symbol, to: SetThreads.self)(1)
            }
        }
        let entryPoints = (gemm: unsafeBitCast(gemm, to: GEMM.self), gemv: unsafeBitCast(gemv, to: GEMV.self))
        return .success(BLAS(name: file, library: entryPoints))
    }

    struct LoadFailure: Error { let reason: String }

    /// The file mapped at `address`, from /proc/self/maps (glibc's dladdr is not visible to
    /// Swift without _GNU_SOURCE); nil where there is no such file.
    private static func mappedFile(containing address: UnsafeMutableRawPointer) -> String? {
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return nil }
        let target = UInt(bitPattern: address)
        for line in maps.split(separator: "\n") {
            // "start-end perms offset dev inode path"
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, let dash = fields[0].firstIndex(of: "-"),
                let start = UInt(fields[0][..<dash], radix: 16),
                let end = UInt(fields[0][fields[0].index(after: dash)...], radix: 16)
            else { continue }
            if start <= target && target < end { return String(fields[5].trimmingCharacters(in: .whitespaces)) }
        }
        return nil
    }

    /// Netlib's reference BLAS lives in Debian's `.../blas/` alternatives folder.
    private static func isReferenceBLAS(_ file: String) -> Bool {
        URL(fileURLWithPath: file).resolvingSymlinksInPath().deletingLastPathComponent().lastPathComponent == "blas"
    }

    /// The BLAS for a `BATON_BLAS` value, and the line announcing it.
    static func choose(override: String?) -> (blas: BLAS, announcement: String) {
        let fasterHint = "for faster CPU matrix products: apt-get install libopenblas0"
        switch override {
        case "builtin":
            return (builtin, "BLAS: built-in Swift GEMM (BATON_BLAS=builtin)")
        case let path? where !path.isEmpty:
            switch load(path) {
            case .success(let blas): return (blas, "BLAS: \(blas.name) (BATON_BLAS)")
            case .failure(let failure):
                let reason = "BATON_BLAS=\(path) did not load (\(failure.reason))"
                return (builtin, "BLAS: \(reason); using the built-in Swift GEMM")
            }
        default:
            for soname in searchOrder {
                if case .success(let blas) = load(soname) { return (blas, "BLAS: \(blas.name)") }
            }
            return (builtin, "BLAS: built-in Swift GEMM, no CBLAS library found (\(fasterHint))")
        }
    }

    // MARK: products (CBLAS row-major conventions)

    private static let rowMajor: Int32 = 101, noTrans: Int32 = 111, trans: Int32 = 112

    /// C[m, n] = alpha A[m, k] op(B) + beta C, row-major with leading dimensions. op(B) is B[n, k]^T
    /// when `transposeB` (a Hugging Face weight), else B[k, n]. beta == 0 never reads C.
    func gemm(
        transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if let library {
            library.gemm(
                BLAS.rowMajor, BLAS.noTrans, transposeB ? BLAS.trans : BLAS.noTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        } else {
            BuiltinGEMM.gemm(
                transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// y[m] (stride incY) = alpha A[m, n] x[n] + beta y, A row-major with leading dimension lda.
    /// beta == 0 never reads y.
    func gemv(
        m: Int, n: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>, incY: Int
    ) {
        if m == 0 { return }
        if let library {
            library.gemv(
                BLAS.rowMajor, BLAS.noTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1,
                beta, y, Int32(incY))
        } else {
            BuiltinGEMM.gemv(m: m, n: n, alpha: alpha, a: a, lda: lda, x: x, beta: beta, y: y, incY: incY)
        }
    }
}
