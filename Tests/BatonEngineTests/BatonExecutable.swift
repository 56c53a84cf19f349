import Foundation
import XCTest

/// The `baton` executable built next to this test bundle, run as a user would, for the command-line
/// tests of this module (CommandLineErrorTests and its extensions, VideoGenerationTests).
enum BatonExecutable {
    /// The executable, found within three folders above the test bundle.
    static var url: URL {
        get throws {
            var directory = Bundle(for: BundleMarker.self).bundleURL
            for _ in 0..<3 {
                let candidate = directory.appendingPathComponent("baton")
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
                directory.deleteLastPathComponent()
            }
            throw XCTSkip("the baton executable is not built next to the tests (run `swift build` first)")
        }
    }

    /// Runs `baton arguments` (with `environment` added to this process's); standard output goes
    /// through a file, so neither stream can fill its pipe while the other is read.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let process = Process()
        process.executableURL = try url
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let outputFile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-cli-stdout-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outputFile) }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = try Data(contentsOf: outputFile)
        return (
            process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: data, as: UTF8.self)
        )
    }

    private final class BundleMarker {}
}
