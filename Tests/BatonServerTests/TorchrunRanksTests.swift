import BatonComm
import BatonParallel
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import BatonEngine
@testable import BatonServer

/// `baton serve` under torchrun below the process level: rank 0's server hands each parallel
/// request to a follower through a real torch TCPStore (python's `torch.distributed.TCPStore`,
/// as torchrun's agent serves it), both ranks computing as threads over a `LocalCommunicator`
/// in place of NCCL (a multi-process job needs CUDA). Skipped when no python with torch is found
/// ($BATON_TORCH_PYTHON, else python3).
final class TorchrunRanksTests: XCTestCase {
    /// A TCPStore on a free port: prints it, serves until stdin closes.
    static let storeScript = """
        import datetime, sys
        from torch.distributed import TCPStore
        store = TCPStore("127.0.0.1", 0, None, True, timeout=datetime.timedelta(seconds=60), wait_for_workers=False)
        print(store.port, flush=True)
        sys.stdin.read()
        """

    struct Store {
        let process: Process
        let input: Pipe
        let port: Int

        func config(rank: Int, job: String) -> ProcessGroupConfig {
            ProcessGroupConfig(
                rank: rank, worldSize: 2, localRank: rank, masterAddress: "127.0.0.1", masterPort: port,
                agentStore: true, jobID: job)
        }

        func stop() {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    func startStore() throws -> Store {
        let python = ProcessInfo.processInfo.environment["BATON_TORCH_PYTHON"] ?? "python3"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-c", Self.storeScript]
        let output = Pipe(), input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
            throw XCTSkip(
                "no torch.distributed TCPStore from '\(python)' (set BATON_TORCH_PYTHON to a python with torch)")
        }
        return Store(process: process, input: input, port: port)
    }

    /// Rank `rank` of a request over `communicators` (what `Engine.runRank` does over NCCL).
    static func runRank(
        _ request: ParallelRequest, rank: Int, communicators: [any Communicator],
        onToken: (@Sendable (Int32) -> Void)? = nil
    ) throws -> GenerationResult {
        let engine = ServerFixture.engine
        return try generateParallelRank(
            engine.prepared(request), rank: rank, communicator: communicators[rank], model: engine.model,
            streamingRank: 0, onToken: onToken)
    }

    /// Rank 0's side: the torchrun ranks the server hands parallel requests to.
    func startRankZero(_ store: Store, job: String, communicators: [any Communicator]) throws -> TorchrunRanks {
        TorchrunRanks(worldSize: 2, channel: try RequestChannel(store.config(rank: 0, job: job), timeout: 30)) {
            request, onToken in
            try Self.runRank(request, rank: 0, communicators: communicators, onToken: onToken)
        }
    }

    /// Starts rank 1 following rank 0 on a thread; `wait()` returns how it ended.
    func startFollower(_ store: Store, job: String, communicators: [any Communicator]) throws -> Follower {
        let channel = try RequestChannel(store.config(rank: 1, job: job), timeout: 30)
        let follower = Follower()
        Thread {
            do {
                try followRankZero(channel: channel, worldSize: 2, rank: 1) { request in
                    try Self.runRank(request, rank: 1, communicators: communicators)
                }
                follower.end(nil)
            } catch {
                follower.end(error)
            }
        }.start()
        return follower
    }

    final class Follower: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var error: (any Error)?
        func end(_ error: (any Error)?) {
            self.error = error
            done.signal()
        }
        /// nil when the follower returned (rank 0 said stop), else its error.
        func wait() -> String? {
            done.wait()
            return error.map { "\($0)" }
        }
    }

    static let longPrompt = "A long enough prompt to split over two ranks, with a question at its end: what comes next?"

    func testRankZeroServesParallelRequestsWithAFollowerAsTwoRanksOfOneProcessDoAndStopEndsTheFollower()
        async throws
    {
        let store = try startStore()
        defer { store.stop() }
        let job = "serve-\(UUID().uuidString)"
        let communicators = try LocalCommunicator.group(worldSize: 2, timeout: 60)
        let follower = try startFollower(store, job: job, communicators: communicators)
        let torchrun = try startRankZero(store, job: job, communicators: communicators)
        let served = OpenAIServer(
            engine: ServerFixture.engine,
            options: ServerOptions(port: 0, modelName: ServerFixture.modelName, torchrun: torchrun))
        let requests = [
            #"{"model": "tiny-llama", "prompt": "\#(Self.longPrompt)", "max_tokens": 8, "temperature": 0, "baton": {"method": "ring"}}"#,
            #"{"model": "tiny-llama", "prompt": "\#(Self.longPrompt)", "max_tokens": 8, "temperature": 0.8, "seed": 5, "baton": {"method": "apb"}}"#,
            #"{"model": "tiny-llama", "prompt": "\#(Self.longPrompt)", "max_tokens": 6, "stream": true, "temperature": 0, "baton": {"method": "spava"}}"#,
            #"{"model": "tiny-llama", "prompt": "Hi", "max_tokens": 4, "temperature": 0}"#
        ]
        var answers: [[String]] = []
        for server in [served, ServerFixture.server(ranks: 2)] {
            let answered = try await Application(router: server.router()).test(.router) { client in
                var answered: [String] = []
                for body in requests {
                    let response = try await client.post("/v1/completions", body)
                    XCTAssertEqual(response.status, .ok, String(buffer: response.body))
                    let text = String(buffer: response.body)
                    // Streams and whole answers alike: the text fields, without ids and timestamps.
                    let pieces = text.matches(of: /"text"\s*:\s*"((?:[^"\\]|\\.)*)"/).map { String($0.1) }
                    answered.append(response.headers[.batonMethod]! + ": " + pieces.joined())
                }
                return answered
            }
            answers.append(answered)
        }
        XCTAssertEqual(answers[0], answers[1], "rank 0 with a follower answers as two ranks of one process")
        XCTAssertEqual(answers[0].map { $0.split(separator: ":")[0] }, ["ring", "apb", "spava", "dense"])
        try torchrun.stop()
        XCTAssertNil(follower.wait(), "the follower returns once rank 0 says stop")
    }

    func testCancellingOnRankZeroStopsTheOwnerOnTheOtherRankWithinAStep() throws {
        let store = try startStore()
        defer { store.stop() }
        let job = "cancel-\(UUID().uuidString)"
        let communicators = try LocalCommunicator.group(worldSize: 2, timeout: 60)
        let follower = try startFollower(store, job: job, communicators: communicators)
        let torchrun = try startRankZero(store, job: job, communicators: communicators)
        let ids = try XCTUnwrap(ServerFixture.engine.tokenizer).encode(
            String(repeating: "Once upon a time there was a ring. ", count: 6), addSpecialTokens: true)
        let (context, query) = try splitContextAndQuery(ids)
        let flag = CancellationFlag()
        var request = ParallelRequest(
            context: context, query: query, method: .ring, ranks: 2,
            generation: GenerationOptions(maxTokens: 40, isCancelled: { flag.isSet }))
        request.placement = .onePerGPU
        let plan = try Plan.make(method: .ring, context: context, query: query, worldSize: 2)
        XCTAssertEqual(plan.owner, 1, "the owner, who checks for cancellation, is the follower")
        let counter = Counter()
        let result = try torchrun.run(request, cancelled: flag) { _ in
            if counter.increment() == 2 { flag.cancel() }
        }
        XCTAssertEqual(result.stopReason, .cancelled)
        // Rank 0 writes the cancel key while streaming token 2, before it joins step 3's
        // collectives, so the owner sees it at step 3's check or at step 4's at the latest.
        XCTAssertTrue((2...3).contains(result.tokens.count), "\(result.tokens.count) tokens")
        try torchrun.stop()
        XCTAssertNil(follower.wait())
    }

    func testAFollowerThatNeverAnswersFailsTheRequestNamingTheRankThenParallelRequestsGet503() async throws {
        let store = try startStore()
        defer { store.stop() }
        let job = "dead-\(UUID().uuidString)"
        // Rank 1 never runs: rank 0's first collective times out.
        let communicators = try LocalCommunicator.group(worldSize: 2, timeout: 2)
        let torchrun = try startRankZero(store, job: job, communicators: communicators)
        let server = OpenAIServer(
            engine: ServerFixture.engine,
            options: ServerOptions(port: 0, modelName: ServerFixture.modelName, torchrun: torchrun))
        try await Application(router: server.router()).test(.router) { client in
            let ring =
                #"{"model": "tiny-llama", "prompt": "\#(Self.longPrompt)", "max_tokens": 4, "baton": {"method": "ring"}}"#
            let first = try await client.post("/v1/completions", ring)
            XCTAssertEqual(first.status, .internalServerError)
            XCTAssertTrue(String(buffer: first.body).contains("rank 1"), String(buffer: first.body))
            let second = try await client.post("/v1/completions", ring)
            XCTAssertEqual(second.status, .serviceUnavailable)
            XCTAssertEqual(try errorObject(second)["code"] as? String, "ranks_unavailable")
            let dense = try await client.post(
                "/v1/completions", #"{"model": "tiny-llama", "prompt": "Hi", "max_tokens": 2}"#)
            XCTAssertEqual(dense.status, .ok, "dense requests still run on rank 0")
        }
    }
}
