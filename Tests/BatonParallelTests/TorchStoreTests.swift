import BatonComm
import BatonTensor
import Foundation
import XCTest

/// The Swift TCPStore client against a real `torch.distributed.TCPStore` server in a python
/// subprocess, with the libuv backend (torch's default since 2.4) and the legacy one. Skipped with
/// a message when no python with torch is found ($BATON_TORCH_PYTHON, else python3).
final class TorchStoreTests: XCTestCase {
    /// Serves a store on a free port, prints it, then plays the other side: sets "from-python"
    /// once Swift set "ready", and once Swift set "done" prints what it reads of Swift's keys.
    static let serverScript = """
        import datetime, sys
        from torch.distributed import TCPStore
        store = TCPStore("127.0.0.1", 0, None, True, timeout=datetime.timedelta(seconds=60),
                         wait_for_workers=False, use_libuv=(sys.argv[1] == "libuv"))
        print(store.port, "libuv" if store.libuvBackend else "legacy", flush=True)
        if sys.argv[2] == "play":
            store.wait(["ready"])
            store.set("from-python", b"hello from torch")
            store.wait(["done"])
            print("python read from-swift=%r counter=%r" % (store.get("from-swift"), store.get("counter")), flush=True)
        else:
            sys.stdin.read()  # serve until the test closes our stdin
        """

    /// A running server: its port, and its process (stdout piped).
    struct Server {
        let process: Process
        let port: Int
        let output: FileHandle
        let input: Pipe

        func finish() -> String {
            try? input.fileHandleForWriting.close()
            let rest = String(decoding: output.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return rest
        }
    }

    func startServer(backend: String, play: Bool) throws -> Server {
        let python = ProcessInfo.processInfo.environment["BATON_TORCH_PYTHON"] ?? "python3"
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = [python, "-c", "import torch.distributed as d; assert d.is_available()"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        try probe.run()
        probe.waitUntilExit()
        if probe.terminationStatus != 0 {
            throw XCTSkip(
                "no torch.distributed in '\(python)' (set BATON_TORCH_PYTHON to a python with torch to run the TCPStore tests)"
            )
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-c", Self.serverScript, backend, play ? "play" : "serve"]
        let output = Pipe(), input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        // First line: "<port> <backend>".
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line += byte
        }
        let fields = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard fields.count == 2, let port = Int(fields[0]) else {
            process.terminate()
            XCTFail("the python store did not print its port, got '\(String(decoding: line, as: UTF8.self))'")
            throw BatonError(.io, "no port")
        }
        XCTAssertEqual(String(fields[1]), backend, "torch served another backend than asked for")
        return Server(process: process, port: port, output: output.fileHandleForReading, input: input)
    }

    func checkSetGetWaitAddAgainstTorch(backend: String) throws {
        let server = try startServer(backend: backend, play: true)
        let store = try TorchStoreClient(address: "127.0.0.1", port: server.port, timeout: 30)
        XCTAssertFalse(try store.check(["from-python"]))
        try store.set("ready", Array("1".utf8))
        XCTAssertEqual(String(decoding: try store.get("from-python", timeout: 30), as: UTF8.self), "hello from torch")
        XCTAssertTrue(try store.check(["from-python", "ready"]))
        XCTAssertEqual(try store.add("counter", 5), 5)
        XCTAssertEqual(try store.add("counter", -2), 3)
        // A wait that times out is cancelled on the server; the connection stays usable.
        XCTAssertThrowsError(try store.wait(["never-set"], timeout: 0.5)) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .timeout, "\(error)")
            XCTAssertTrue("\(error)".contains("'never-set' not set within 0.5 s"), "\(error)")
        }
        XCTAssertEqual(String(decoding: try store.get("counter", timeout: 5), as: UTF8.self), "3")
        try store.set("from-swift", [0, 1, 2, 255])
        try store.set("done", [])
        let said = server.finish()
        XCTAssertEqual(server.process.terminationStatus, 0, said)
        XCTAssertTrue(said.contains("from-swift=b'\\x00\\x01\\x02\\xff' counter=b'3'"), said)
    }

    func testSetGetWaitAddAgainstTorchLibuvStore() throws { try checkSetGetWaitAddAgainstTorch(backend: "libuv") }

    func testSetGetWaitAddAgainstTorchLegacyStore() throws { try checkSetGetWaitAddAgainstTorch(backend: "legacy") }

    /// Ranks as threads, each with its own connection, as torchrun's workers would be.
    func rendezvous(worldSize: Int, ranks: [Int], port: Int, timeout: Double, payload: [UInt8]) -> [Result<
        [UInt8], any Error
    >] {
        let results = RendezvousTests.Shared(
            [Result<[UInt8], any Error>](
                repeating: .failure(BatonError.invalidArgument("not run")),
                count: ranks.count))
        let group = DispatchGroup()
        for (index, rank) in ranks.enumerated() {
            DispatchQueue.global().async(group: group) {
                let config = ProcessGroupConfig(
                    rank: rank, worldSize: worldSize, localRank: rank, masterAddress: "127.0.0.1",
                    masterPort: port, agentStore: true, jobID: "test-\(worldSize)-\(ranks.count)")
                let result = Result {
                    try Rendezvous.exchange(config, payload: rank == 0 ? payload : nil, timeout: timeout)
                }
                results.update { $0[index] = result }
            }
        }
        group.wait()
        return results.current
    }

    func testRanksGetRankZerosPayloadThroughTorchsStore() throws {
        let server = try startServer(backend: "libuv", play: false)
        defer { _ = server.finish() }
        let payload: [UInt8] = (0..<128).map { UInt8($0 * 5 % 256) }
        for result in rendezvous(worldSize: 4, ranks: [0, 1, 2, 3], port: server.port, timeout: 30, payload: payload) {
            XCTAssertEqual(try result.get(), payload)
        }
    }

    func testMissingRankEndsEveryRankWithAnErrorNamingIt() throws {
        let server = try startServer(backend: "libuv", play: false)
        defer { _ = server.finish() }
        let results = rendezvous(worldSize: 3, ranks: [0, 1], port: server.port, timeout: 1, payload: [1, 2, 3])
        for (rank, result) in results.enumerated() {
            XCTAssertThrowsError(try result.get()) { error in
                XCTAssertEqual((error as? BatonError)?.kind, .timeout, "\(error)")
                XCTAssertTrue("\(error)".contains("rank \(rank): rank 2 of 3 did not reach"), "\(error)")
            }
        }
    }

    func testNoStoreListeningIsATimeoutNamingTheAddress() throws {
        // Port 1 on loopback: nothing listens there.
        let config = ProcessGroupConfig(
            rank: 1, worldSize: 2, localRank: 1, masterAddress: "127.0.0.1", masterPort: 1,
            agentStore: true, jobID: "none")
        XCTAssertThrowsError(try StoreRendezvous(config, name: "unreachable", timeout: 0.3)) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .timeout, "\(error)")
            XCTAssertTrue("\(error)".contains("rank 1 could not connect to torchrun's store"), "\(error)")
            XCTAssertTrue("\(error)".contains("127.0.0.1:1"), "\(error)")
        }
    }

    func testTorchrunsAgentStoreVariableSelectsTheStoreRendezvous() throws {
        let base = ["RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"]
        XCTAssertFalse(try ProcessGroupConfig.fromEnvironment(base).agentStore)
        let torchrun = try ProcessGroupConfig.fromEnvironment(
            base.merging(
                [
                    "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RUN_ID": "abc",
                    "TORCHELASTIC_RESTART_COUNT": "2"
                ]) { $1 })
        XCTAssertTrue(torchrun.agentStore)
        XCTAssertEqual(torchrun.jobID, "abc.2")
        XCTAssertFalse(
            try ProcessGroupConfig.fromEnvironment(base.merging(["TORCHELASTIC_USE_AGENT_STORE": "False"]) { $1 })
                .agentStore)
    }
}
