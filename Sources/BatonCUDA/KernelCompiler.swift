import BatonTensor
import CCUDA
import Foundation

/// The CUDA C sources embedded in the binary (Kernels/*.cu), by file name. A source includes a
/// shared header of Kernels/ with `#include "NAME.cuh"`, which `source` pastes in (NVRTC sees one
/// text). Development versions of a kernel (dev/cuda/NAME.cu in the repository) are not embedded:
/// `BATON_DEV_KERNELS=FOLDER` appends FOLDER/NAME.cu to NAME.cu for A/B runs.
public enum KernelSources {
    public static let all: [String: String] = [
        "attention.cu": String(decoding: PackageResources.attention_cu, as: UTF8.self),
        "decode.cu": String(decoding: PackageResources.decode_cu, as: UTF8.self),
        "attention_hopper.cu": String(decoding: PackageResources.attention_hopper_cu, as: UTF8.self),
        "attention_segments.cu": String(decoding: PackageResources.attention_segments_cu, as: UTF8.self),
        "ops.cu": String(decoding: PackageResources.ops_cu, as: UTF8.self),
        "selection.cu": String(decoding: PackageResources.selection_cu, as: UTF8.self),
        "vision.cu": String(decoding: PackageResources.vision_cu, as: UTF8.self)
    ]

    /// Headers the sources include.
    public static let headers: [String: String] = [
        "attention_mask.cuh": String(decoding: PackageResources.attention_mask_cuh, as: UTF8.self),
        "mma.cuh": String(decoding: PackageResources.mma_cuh, as: UTF8.self),
        "values.cuh": String(decoding: PackageResources.values_cuh, as: UTF8.self)
    ]

    /// The folder of development kernel versions (`BATON_DEV_KERNELS`), if set.
    public static var developmentFolder: String? { ProcessInfo.processInfo.environment["BATON_DEV_KERNELS"] }

    /// The source of kernel file `name`, headers pasted in, with `developmentFolder/name` appended
    /// when that file exists.
    public static func source(_ name: String, developmentFolder: String? = developmentFolder) throws -> String {
        guard let source = all[name] else { throw BatonError(.notAvailable, "no embedded kernel source \(name)") }
        var text = try source.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.hasPrefix("#include \""), line.hasSuffix(".cuh\"") else { return String(line) }
            let header = String(line.dropFirst("#include \"".count).dropLast())
            guard let contents = headers[header] else {
                throw BatonError(.notAvailable, "kernel source \(name) includes \(header), which is not embedded")
            }
            return contents
        }.joined(separator: "\n")
        if let folder = developmentFolder {
            let path = URL(fileURLWithPath: folder).appendingPathComponent(name).path
            if let extra = FileManager.default.contents(atPath: path) {
                text += "\n// " + path + "\n" + String(decoding: extra, as: UTF8.self)
            }
        }
        return text
    }
}

/// `$XDG_CACHE_HOME/baton` (default `~/.cache/baton`) by a key of source, architecture, NVRTC
/// version and options, so a second run loads the cubin without compiling.
public struct KernelCompiler: Sendable {
    /// e.g. "sm_90a".
    public let architecture: String

    public init(architecture: String) { self.architecture = architecture }

    /// The cache key: 128 bits (two FNV-1a 64 hashes with different seeds) of everything that
    /// changes the cubin, in hex.
    public static func cacheKey(source: String, architecture: String, nvrtcVersion: String, options: [String]) -> String
    {
        let text = ([source, architecture, nvrtcVersion] + options).joined(separator: "\u{0}")
        func fnv(_ seed: UInt64) -> UInt64 {
            var hash = seed
            for byte in text.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
            return hash
        }
        return String(format: "%016llx%016llx", fnv(0xcbf2_9ce4_8422_2325), fnv(0x84222325_cbf29ce4))
    }

    /// `$XDG_CACHE_HOME/baton` or `~/.cache/baton`.
    public static var cacheDirectory: URL {
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("baton")
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/baton")
    }

    /// Folders holding cuda_bf16.h and friends: $CUDA_HOME/include, /usr/local/cuda/include, and the
    /// include folder beside a pip-installed NVRTC (site-packages/nvidia/cu13/include).
    static func includeFolders() -> [String] {
        var folders: [String] = []
        let environment = ProcessInfo.processInfo.environment
        for root in [environment["CUDA_HOME"], environment["CUDA_PATH"], "/usr/local/cuda"].compactMap({ $0 }) {
            folders.append(root + "/include")
            folders.append(root + "/targets/x86_64-linux/include")
        }
        let library = String(cString: baton_nvrtc_path())
        if library.hasPrefix("/") {
            folders.append(
                URL(fileURLWithPath: library).deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent("include").path)
        }
        var seen = Set<String>()
        return folders.filter {
            FileManager.default.fileExists(atPath: $0 + "/cuda_bf16.h") && seen.insert($0).inserted
        }
    }

    func options(fastMath: Bool) -> [String] {
        var options = ["--gpu-architecture=\(architecture)", "--std=c++17"]
        if fastMath { options.append("--use_fast_math") }
        let settings = BatonSettings.current
        if settings.kernelVerbose { options.append("--ptxas-options=-v") }
        // Kernel variants for A/B runs (e.g. `BATON_KERNEL_DEFINES="NAME=1 OTHER"`); part of the cache key.
        for define in settings.kernelDefines {
            options.append("--define-macro=\(define)")
        }
        return options + Self.includeFolders().map { "--include-path=\($0)" }
    }

    /// The cubin of `name`'s embedded source, from the disk cache or freshly compiled.
    public func cubin(for name: String, fastMath: Bool) throws -> [UInt8] {
        let source = try KernelSources.source(name)
        let nvrtc = try CUDALibraries.nvrtc()
        let options = options(fastMath: fastMath)
        let key = Self.cacheKey(
            source: source, architecture: architecture, nvrtcVersion: nvrtc.versionString,
            options: options)
        let file = Self.cacheDirectory.appendingPathComponent("\(name)-\(key).cubin")
        if let cached = try? Data(contentsOf: file), !cached.isEmpty { return [UInt8](cached) }
        let (cubin, log) = try compile(source: source, name: name, options: options, nvrtc: nvrtc)
        if !log.isEmpty, BatonSettings.current.kernelVerbose {
            FileHandle.standardError.write(Data("NVRTC log for \(name):\n\(log)\n".utf8))
        }
        try? FileManager.default.createDirectory(at: Self.cacheDirectory, withIntermediateDirectories: true)
        let temporary = file.appendingPathExtension("tmp\(getpid())")
        if (try? Data(cubin).write(to: temporary)) != nil {
            _ = try? FileManager.default.replaceItemAt(file, withItemAt: temporary)
        }
        return cubin
    }

    /// NVRTC compile; a failure throws with the full compile log.
    func compile(source: String, name: String, options: [String], nvrtc: BatonNVRTC) throws -> (
        cubin: [UInt8], log: String
    ) {
        var program: nvrtcProgram?
        try nvrtc.check(nvrtc.nvrtcCreateProgram(&program, source, name, 0, nil, nil), "nvrtcCreateProgram(\(name))")
        defer { _ = nvrtc.nvrtcDestroyProgram(&program) }
        let cOptions = options.map { strdup($0) }
        defer { cOptions.forEach { free($0) } }
        let status = cOptions.map { UnsafePointer($0) }.withUnsafeBufferPointer {
            nvrtc.nvrtcCompileProgram(program, Int32(options.count), $0.baseAddress)
        }
        var logSize = 0
        _ = nvrtc.nvrtcGetProgramLogSize(program, &logSize)
        var logBytes = [CChar](repeating: 0, count: max(logSize, 1))
        _ = nvrtc.nvrtcGetProgramLog(program, &logBytes)
        let log = String(decoding: logBytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if status != 0 {
            throw BatonError(
                .cuda,
                "NVRTC could not compile \(name) for \(architecture) "
                    + "(\(nvrtc.errorText(status)); options \(options.joined(separator: " "))):\n\(log)")
        }
        var size = 0
        try nvrtc.check(nvrtc.nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize(\(name))")
        var cubin = [CChar](repeating: 0, count: size)
        try nvrtc.check(nvrtc.nvrtcGetCUBIN(program, &cubin), "nvrtcGetCUBIN(\(name))")
        return (cubin.map { UInt8(bitPattern: $0) }, log)
    }
}
