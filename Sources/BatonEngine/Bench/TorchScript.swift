import BatonTensor
import Foundation

/// What the two PyTorch baselines (`TorchBaseline`, `TorchVideoBaseline`) share: the embedded
/// script is written to a temporary folder, run with the `--python` interpreter (its output copied
/// to standard error, where the user sees PyTorch's progress and errors), and the JSON it leaves
/// there is decoded.
struct TorchScript {
    /// The script's file name (torch_prefill.py, torch_video.py), as paths and messages name it.
    var name: String
    var source: [UInt8]

    /// The JSON a script writes: the versions and device it ran with, and one row per case.
    struct Report<Row: Decodable>: Decodable {
        var torch: String
        var transformers: String?
        var device: String
        var rows: [Row]

        /// The device column of the baseline's rows.
        var label: String { "\(device) (PyTorch \(torch), transformers \(transformers ?? "?") sdpa)" }
    }

    /// Runs the script with `python` in a fresh folder named `folderName`-pid (removed afterwards).
    /// `arguments` is given that folder, where it may write the script's input files, and the file
    /// the script is to write its JSON to; it returns the arguments that follow the script's path.
    func run<Row: Decodable>(
        python: String, folderName: String,
        arguments: (_ folder: URL, _ output: URL) throws -> [String]
    ) throws -> Report<Row> {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(folderName)-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let script = folder.appendingPathComponent(name)
        try Data(source).write(to: script)
        let output = folder.appendingPathComponent("torch.json")
        let lastLine = try Self.runStreamingToStandardError(python, [script.path] + arguments(folder, output))
        guard let data = try? Data(contentsOf: output) else {
            throw BatonError(.notAvailable, "\(python) \(name) wrote no results (\(lastLine))")
        }
        return try JSONDecoder().decode(Report<Row>.self, from: data)
    }

    /// Runs `program` with its stdout and stderr copied to this process's stderr; returns the last
    /// non-empty line, or throws naming the program when it cannot start or exits non-zero.
    static func runStreamingToStandardError(_ program: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch {
            throw BatonError(.notAvailable, "cannot start \(program): \(error.localizedDescription)")
        }
        var lastLine = ""
        let handle = pipe.fileHandleForReading
        while case let chunk = handle.availableData, !chunk.isEmpty {
            FileHandle.standardError.write(chunk)
            let text = String(decoding: chunk, as: UTF8.self)
            if let line = text.split(whereSeparator: \.isNewline).last(where: {
                !$0.trimmingCharacters(in: .whitespaces).isEmpty
            }) {
                lastLine = String(line)
            }
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BatonError(.notAvailable, "\(program) exited with status \(process.terminationStatus): \(lastLine)")
        }
        return lastLine
    }
}
