import BatonTensor
import CCUDA
import XCTest

@testable import BatonCUDA

final class KernelSourceTests: XCTestCase {
    func testEmbeddedSourcesHoldEveryKernelTheBackendLaunches() throws {
        let attention = try KernelSources.source("attention.cu")
        let ops = try KernelSources.source("ops.cu")
        for name in [
            "attention_naive", "flash_attention", "flash3_attention_d64", "flash3_attention_d128", "attention_combine",
            "mma.sync", "bool attention_allowed("
        ] {
            XCTAssertTrue(attention.contains(name), "attention.cu lacks \(name)")
        }
        XCTAssertFalse(attention.contains("#include \"attention_mask.cuh\""), "the mask header is pasted in")
        XCTAssertTrue(try KernelSources.source("attention_hopper.cu").contains("bool attention_allowed("))
        for name in [
            "cast_values", "add_values", "add_bias_rows", "silu_values", "silu_multiply", "embedding_rows",
            "rms_norm_rows", "layer_norm_rows", "rotary_qkv", "copy_columns", "merge_attention_pair", "argmax_rows",
            "mean_query_per_group", "query_aware_scores", "max_pool_rows", "gather_rows_per_head"
        ] {
            XCTAssertTrue(ops.contains("void \(name)("), "ops.cu lacks kernel \(name)")
        }
    }

    func testEveryFileInTheKernelsFolderIsEmbedded() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/BatonCUDA/Kernels").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".cu") }
        XCTAssertFalse(files.isEmpty, folder.path)
        XCTAssertEqual(Set(files), Set(KernelSources.all.keys))
        let decode = try KernelSources.source("decode.cu")
        for rows in [1, 2, 4, 8] {
            for d in [64, 128] {
                XCTAssertTrue(decode.contains("BATON_DECODE(\(d), \(rows))"), "decode.cu lacks d\(d) r\(rows)")
            }
        }
    }

    /// Only the shipped versions are embedded; the development folder adds the others for A/B runs.
    func testDevelopmentKernelVersionsAreAppendedOnlyOnRequest() throws {
        let devFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../dev/cuda").standardized.path
        let shipped = try KernelSources.source("attention.cu", developmentFolder: nil)
        XCTAssertFalse(shipped.contains("BATON_FLASH(flash4_attention_d128"))
        let withDev = try KernelSources.source("attention.cu", developmentFolder: devFolder)
        for name in ["flash_attention_d64", "flash4_attention_d128", "flash5_attention_d128", "flash6_attention_d64"] {
            XCTAssertTrue(withDev.contains("BATON_FLASH(\(name),"), "dev/cuda/attention.cu lacks \(name)")
        }
        XCTAssertEqual(
            try KernelSources.source("ops.cu", developmentFolder: devFolder), try KernelSources.source("ops.cu"))
    }

    func testMissingKernelSourceIsAClearError() {
        XCTAssertThrowsError(try KernelSources.source("nope.cu")) { error in
            XCTAssertTrue("\(error)".contains("nope.cu"))
        }
    }
}

final class KernelCacheKeyTests: XCTestCase {
    let base = KernelCompiler.cacheKey(source: "a", architecture: "sm_90a", nvrtcVersion: "13.0", options: ["-x"])

    func testCacheKeyIsStableForTheSameInputs() {
        XCTAssertEqual(
            base, KernelCompiler.cacheKey(source: "a", architecture: "sm_90a", nvrtcVersion: "13.0", options: ["-x"]))
        XCTAssertEqual(base.count, 32)
    }

    func testCacheKeyChangesWithSourceArchitectureVersionAndOptions() {
        XCTAssertNotEqual(
            base, KernelCompiler.cacheKey(source: "b", architecture: "sm_90a", nvrtcVersion: "13.0", options: ["-x"]))
        XCTAssertNotEqual(
            base, KernelCompiler.cacheKey(source: "a", architecture: "sm_80", nvrtcVersion: "13.0", options: ["-x"]))
        XCTAssertNotEqual(
            base, KernelCompiler.cacheKey(source: "a", architecture: "sm_90a", nvrtcVersion: "12.8", options: ["-x"]))
        XCTAssertNotEqual(
            base, KernelCompiler.cacheKey(source: "a", architecture: "sm_90a", nvrtcVersion: "13.0", options: ["-y"]))
    }

    func testCacheDirectoryFollowsXDGCacheHome() {
        // Restore the caller's value: later tests in this process (the default model's) read it.
        let previous = getenv("XDG_CACHE_HOME").map { String(cString: $0) }
        setenv("XDG_CACHE_HOME", "/tmp/baton-xdg-test", 1)
        defer { if let previous { setenv("XDG_CACHE_HOME", previous, 1) } else { unsetenv("XDG_CACHE_HOME") } }
        XCTAssertEqual(KernelCompiler.cacheDirectory.path, "/tmp/baton-xdg-test/baton")
    }

    func testAllocatorRoundsSmallSizesTo512AndLargeTo2MiB() {
        XCTAssertEqual(DeviceAllocator.roundedSize(0), 512)
        XCTAssertEqual(DeviceAllocator.roundedSize(513), 1024)
        XCTAssertEqual(DeviceAllocator.roundedSize((1 << 20) + 1), 2 << 20)
        XCTAssertEqual(DeviceAllocator.roundedSize(5 << 20), 6 << 20)
    }
}

/// On machines without a GPU (CI) these prove the failure is one clear error, not a crash.
final class LoaderWithoutGPUTests: XCTestCase {
    func testBackendCreationFailsCleanlyOrSucceedsOnAGPU() {
        do {
            let backend = try CUDABackend(ordinal: 0)
            XCTAssertEqual(backend.device, .cuda(ordinal: 0))
        } catch let error as BatonError {
            XCTAssertTrue([.notAvailable, .cuda, .unsupported].contains(error.kind), "\(error)")
            XCTAssertFalse(error.message.isEmpty)
        } catch {
            XCTFail("expected a BatonError, got \(error)")
        }
    }

    func testMissingDriverMessageNamesTheLibraryAndWhereItLooked() throws {
        if baton_cuda_driver() != nil { throw XCTSkip("a CUDA driver is present here") }
        let message = String(cString: baton_cuda_driver_error())
        XCTAssertTrue(message.contains("libcuda"), message)
        XCTAssertTrue(message.contains("/usr/local/cuda"), message)
        XCTAssertThrowsError(try CUDABackend(ordinal: 0)) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .notAvailable)
        }
    }

    func testMissingNCCLAndCuBLASLtMessagesNameTheLibrary() {
        if baton_nccl() == nil {
            XCTAssertTrue(String(cString: baton_nccl_error()).contains("NCCL"), String(cString: baton_nccl_error()))
        }
        if baton_cublaslt() == nil {
            XCTAssertTrue(
                String(cString: baton_cublaslt_error()).contains("cuBLASLt"), String(cString: baton_cublaslt_error()))
        }
        if baton_nvrtc() == nil {
            XCTAssertTrue(String(cString: baton_nvrtc_error()).contains("NVRTC"), String(cString: baton_nvrtc_error()))
        }
    }

    func testNonexistentOrdinalIsRejected() throws {
        if baton_cuda_driver() == nil { throw XCTSkip("no CUDA driver here") }
        XCTAssertThrowsError(try CUDABackend(ordinal: 1000))
    }
}

/// Runs wherever NVRTC can be loaded (no GPU needed): every embedded kernel compiles for sm_90a.
final class KernelCompileTests: XCTestCase {
    func testEveryKernelCompilesForHopperWithNVRTC() throws {
        guard let nvrtc = baton_nvrtc()?.pointee else {
            throw XCTSkip("NVRTC not found: \(String(cString: baton_nvrtc_error()))")
        }
        let compiler = KernelCompiler(architecture: "sm_90a")
        for name in KernelSources.all.keys.sorted() {
            let (cubin, log) = try compiler.compile(
                source: try KernelSources.source(name), name: name,
                options: compiler.options(fastMath: name.hasPrefix("attention")) + ["--ptxas-options=-v"],
                nvrtc: nvrtc)
            XCTAssertGreaterThan(cubin.count, 1000, name)
            print("NVRTC \(name): \(cubin.count) bytes\n\(log)")
        }
        // The development versions (dev/cuda) must keep compiling beside the shipped ones.
        let devFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../dev/cuda").standardized.path
        let (cubin, _) = try compiler.compile(
            source: try KernelSources.source("attention.cu", developmentFolder: devFolder),
            name: "attention.cu", options: compiler.options(fastMath: true), nvrtc: nvrtc)
        XCTAssertGreaterThan(cubin.count, 1000, "attention.cu with dev/cuda")
    }
}
