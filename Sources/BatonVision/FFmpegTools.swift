import BatonTensor
import Foundation

/// The `ffmpeg` and `ffprobe` programs Baton decodes video and images with.
///
/// Why the programs and not the libraries: Baton could `dlopen` libavformat/libavcodec/libswscale as
/// it does CUDA, but their ABI is not stable: public structs (`AVFrame`, `AVCodecParameters`,
/// `AVStream`) change layout between sonames 59, 60 and 61, so Swift declarations written against
/// one Debian release read garbage on another. The command line (`-map 0:V:0`, a `select` filter,
/// `-f rawvideo -pix_fmt rgb24 pipe:1`, ffprobe's JSON) has been stable for a decade, needs no
/// headers to build, and the same program comes from Debian's `ffmpeg` package or, static, from
/// PyPI's `imageio-ffmpeg`. Frames cross a pipe as raw RGB, which costs a copy per frame: small
/// next to decoding and to the vision tower.
///
/// Where they are found, first match wins: `BATON_FFMPEG` (and `BATON_FFPROBE`), then `PATH`, then an
/// `imageio-ffmpeg` install (its `binaries/ffmpeg-*`, in any `site-packages` Python can see).
/// imageio-ffmpeg ships no ffprobe; without one, `VideoProbe` probes with ffmpeg alone.
public struct FFmpegTools: Sendable, Equatable {
    /// The ffmpeg executable.
    public let ffmpeg: URL
    /// The ffprobe executable, when one was found.
    public let ffprobe: URL?

    public init(ffmpeg: URL, ffprobe: URL?) {
        self.ffmpeg = ffmpeg
        self.ffprobe = ffprobe
    }

    /// The one-line error when no ffmpeg is found, naming what to install.
    public static let missingMessage =
        "ffmpeg not found: install Debian's ffmpeg (apt-get install ffmpeg) or "
        + "PyPI's imageio-ffmpeg (pip install imageio-ffmpeg), or set BATON_FFMPEG to an ffmpeg executable"

    /// Finds ffmpeg (and ffprobe) as described above; throws `notAvailable` with `missingMessage`.
    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> FFmpegTools
    {
        let fileManager = FileManager.default
        func executable(_ path: String) -> URL? {
            fileManager.isExecutableFile(atPath: path) ? URL(fileURLWithPath: path) : nil
        }
        let searchPath = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        func onPath(_ name: String) -> URL? {
            searchPath.lazy.compactMap { executable($0 + "/" + name) }.first
        }
        if let explicit = environment["BATON_FFMPEG"], !explicit.isEmpty {
            guard let ffmpeg = executable(explicit) else {
                throw BatonError(.notAvailable, "BATON_FFMPEG=\(explicit) is not an executable file")
            }
            return FFmpegTools(ffmpeg: ffmpeg, ffprobe: probe(beside: ffmpeg, environment: environment, onPath: onPath))
        }
        if let ffmpeg = onPath("ffmpeg") {
            return FFmpegTools(ffmpeg: ffmpeg, ffprobe: probe(beside: ffmpeg, environment: environment, onPath: onPath))
        }
        if let ffmpeg = imageioFFmpeg(environment: environment) {
            return FFmpegTools(ffmpeg: ffmpeg, ffprobe: probe(beside: ffmpeg, environment: environment, onPath: onPath))
        }
        throw BatonError(.notAvailable, missingMessage)
    }

    /// ffprobe from `BATON_FFPROBE`, beside ffmpeg, or on PATH.
    private static func probe(beside ffmpeg: URL, environment: [String: String], onPath: (String) -> URL?) -> URL? {
        let fileManager = FileManager.default
        if let explicit = environment["BATON_FFPROBE"], fileManager.isExecutableFile(atPath: explicit) {
            return URL(fileURLWithPath: explicit)
        }
        let sibling = ffmpeg.deletingLastPathComponent().appendingPathComponent("ffprobe")
        if fileManager.isExecutableFile(atPath: sibling.path) { return sibling }
        return onPath("ffprobe")
    }

    /// imageio-ffmpeg's bundled binary: `site-packages/imageio_ffmpeg/binaries/ffmpeg-*` under the
    /// Python prefixes this process can see (a virtual environment, pyenv, the system's), and as a
    /// last resort what `python3 -c 'import imageio_ffmpeg; ...'` prints.
    private static func imageioFFmpeg(environment: [String: String]) -> URL? {
        let fileManager = FileManager.default
        var prefixes: [String] = []
        if let venv = environment["VIRTUAL_ENV"] { prefixes.append(venv) }
        if let home = environment["HOME"] { prefixes += [home + "/.local", home + "/.pyenv/versions"] }
        prefixes += ["/usr/local", "/usr"]
        var libDirectories: [String] = []
        for prefix in prefixes {
            for lib in ["lib", "lib64"] {
                let dir = prefix + "/" + lib
                libDirectories += ((try? fileManager.contentsOfDirectory(atPath: dir)) ?? [])
                    .filter { $0.hasPrefix("python3") }.map { dir + "/" + $0 }
            }
            // pyenv: versions/<v>/lib/python3.x
            for version in (try? fileManager.contentsOfDirectory(atPath: prefix)) ?? [] {
                let dir = prefix + "/" + version + "/lib"
                libDirectories += ((try? fileManager.contentsOfDirectory(atPath: dir)) ?? [])
                    .filter { $0.hasPrefix("python3") }.map { dir + "/" + $0 }
            }
        }
        for lib in libDirectories {
            for packages in ["site-packages", "dist-packages"] {
                let binaries = lib + "/" + packages + "/imageio_ffmpeg/binaries"
                let names = ((try? fileManager.contentsOfDirectory(atPath: binaries)) ?? []).sorted()
                if let name = names.first(where: { $0.hasPrefix("ffmpeg-") }),
                    fileManager.isExecutableFile(atPath: binaries + "/" + name)
                {
                    return URL(fileURLWithPath: binaries + "/" + name)
                }
            }
        }
        let script = "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"
        guard let result = try? ProgramRun.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script]),
            result.status == 0
        else { return nil }
        let path = String(decoding: result.standardOutput, as: UTF8.self).trimmingCharacters(
            in: .whitespacesAndNewlines)
        return fileManager.isExecutableFile(atPath: path) ? URL(fileURLWithPath: path) : nil
    }
}

/// One run of a child program with both output streams captured.
struct ProgramRun {
    var status: Int32
    var standardOutput: Data
    var standardError: String

    /// The last non-empty line of standard error: what ffmpeg says went wrong.
    var lastErrorLine: String {
        standardError.split(whereSeparator: \.isNewline).last.map(String.init) ?? "no message"
    }

    /// Runs `program` to completion. Standard error drains on another thread so that neither pipe
    /// fills and blocks the child.
    static func run(_ program: URL, _ arguments: [String]) throws -> ProgramRun {
        var collected = Data()
        let (status, standardError) = try stream(program, arguments) { chunk in collected.append(chunk) }
        return ProgramRun(status: status, standardOutput: collected, standardError: standardError)
    }

    /// Runs `program`, handing standard output to `consume` as it arrives; returns the exit status
    /// and standard error. A throw from `consume` stops the child and is rethrown.
    static func stream(
        _ program: URL, _ arguments: [String],
        consume: (Data) throws -> Void
    ) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch {
            throw BatonError(.notAvailable, "cannot start \(program.path): \(error.localizedDescription)")
        }
        let errorText = ErrorCollector()
        let drained = DispatchSemaphore(value: 0)
        let errorHandle = errors.fileHandleForReading
        DispatchQueue.global().async {
            errorText.set(errorHandle.readDataToEndOfFile())
            drained.signal()
        }
        let handle = output.fileHandleForReading
        do {
            while case let chunk = handle.availableData, !chunk.isEmpty { try consume(chunk) }
        } catch {
            process.terminate()
            process.waitUntilExit()
            drained.wait()
            throw error
        }
        process.waitUntilExit()
        drained.wait()
        return (process.terminationStatus, errorText.text)
    }
}

/// Standard error bytes handed from the draining thread to the caller.
private final class ErrorCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.withLock { data = value } }
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
