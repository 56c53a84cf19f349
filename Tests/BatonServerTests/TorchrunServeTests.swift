import Foundation
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `torchrun --nproc-per-node 2 --no-python baton serve --gpus 2`: rank 0 serves, rank 1 follows,
/// each process on its own GPU over NCCL. Runs where torchrun (next to $BATON_TORCH_PYTHON, else
/// on PATH) and two CUDA GPUs (`nvidia-smi -L`) are found, and is skipped otherwise: a job of
/// several processes needs CUDA ranks (there is no CPU communicator between processes; the
/// request handoff itself is tested on the CPU in `TorchrunRanksTests`).
final class TorchrunServeTests: XCTestCase {
    static let requests = [
        #"{"model": "tiny-llama", "prompt": "\#(TorchrunRanksTests.longPrompt)", "max_tokens": 8, "temperature": 0, "baton": {"method": "ring"}}"#,
        #"{"model": "tiny-llama", "prompt": "\#(TorchrunRanksTests.longPrompt)", "max_tokens": 6, "stream": true, "temperature": 0, "baton": {"method": "spava"}}"#,
        #"{"model": "tiny-llama", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0}"#
    ]

    func testTorchrunServerAnswersAsTheThreadServerAndSIGTERMOnRankZeroEndsEveryProcessWithStatusZero()
        async throws
    {
        let torchrun = try Self.torchrun()
        try Self.requireGPUs(2)
        let baton = try binary
        let model = ServerFixture.modelDirectory.path

        let threads = Process()
        threads.executableURL = baton
        threads.arguments = ["serve", "--model", model, "--gpus", "2", "--port", "0"]
        let threadAnswers = try await answers(from: threads)
        kill(threads.processIdentifier, SIGTERM)
        await exit(threads)

        let job = Process()
        job.executableURL = torchrun
        job.arguments = [
            "--standalone", "--nproc-per-node", "2", "--no-python", baton.path, "serve", "--model", model, "--gpus",
            "2",
            "--port", "0"
        ]
        let jobAnswers = try await answers(from: job)
        XCTAssertEqual(jobAnswers, threadAnswers, "rank 0 with a follower process answers as two GPU threads")
        XCTAssertEqual(jobAnswers.count, Self.requests.count)
        // SIGTERM to rank 0 alone: it drains, tells rank 1 to stop, and both exit 0, so torchrun does.
        let rankZero = try XCTUnwrap(Self.child(of: job.processIdentifier, rank: 0), "rank 0's process")
        kill(rankZero, SIGTERM)
        await exit(job)
        XCTAssertEqual(job.terminationStatus, 0, "torchrun's status: every rank exited 0")
    }

    /// Starts `process`, waits for its banner, sends `requests`, returns each answer's text pieces.
    func answers(from process: Process) async throws -> [String] {
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        addTeardownBlock { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let banner = await ServeCommandTests.read(errors, until: "/v1 (")
        let port = try XCTUnwrap(banner.firstMatch(of: /127\.0\.0\.1:(\d+)\/v1/).map { Int($0.1)! }, banner)
        var answers: [String] = []
        for body in Self.requests {
            let chat = body.contains("messages")
            var request = URLRequest(
                url: URL(string: "http://127.0.0.1:\(port)/v1/\(chat ? "chat/completions" : "completions")")!)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(body.utf8)
            let (data, response) = try await URLSession.shared.data(for: request)
            let text = String(decoding: data, as: UTF8.self)
            XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 200, text)
            let field = chat ? "content" : "text"
            let pieces = text.matches(of: try Regex(#""\#(field)"\s*:\s*"((?:[^"\\]|\\.)*)""#))
            answers.append(pieces.map { String($0.output[1].substring ?? "") }.joined())
        }
        return answers
    }

    func exit(_ process: Process) async {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume()
            }
        }
    }

    static func torchrun() throws -> URL {
        let environment = ProcessInfo.processInfo.environment
        var candidates = (environment["PATH"] ?? "").split(separator: ":").map { "\($0)/torchrun" }
        if let python = environment["BATON_TORCH_PYTHON"] {
            candidates.insert(
                URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("torchrun").path, at: 0)
        }
        guard let found = candidates.first(where: FileManager.default.isExecutableFile) else {
            throw XCTSkip("no torchrun (next to $BATON_TORCH_PYTHON or on PATH)")
        }
        return URL(fileURLWithPath: found)
    }

    static func requireGPUs(_ count: Int) throws {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["nvidia-smi", "-L"]
        let output = Pipe()
        probe.standardOutput = output
        probe.standardError = FileHandle.nullDevice
        try probe.run()
        let listed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        probe.waitUntilExit()
        let gpus = listed.split(separator: "\n").filter { $0.hasPrefix("GPU ") }.count
        if probe.terminationStatus != 0 || gpus < count {
            throw XCTSkip("torchrun serving needs \(count) CUDA GPUs; nvidia-smi lists \(gpus)")
        }
    }

    /// The process torchrun started as rank `rank` (its environment says RANK=rank), from /proc.
    static func child(of parent: Int32, rank: Int) -> Int32? {
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for name in processes {
            guard let pid = Int32(name),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let afterName = stat.range(of: ") ")
            else { continue }
            // Fields after the command name: state, then the parent's pid.
            let fields = stat[afterName.upperBound...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == parent,
                let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { continue }
            if environ.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == "RANK=\(rank)" }) {
                return pid
            }
        }
        return nil
    }
}
