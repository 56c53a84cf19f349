import Foundation
import XCTest

/// The `baton serve` binary: it prints where it listens, and SIGTERM lets the request in flight
/// finish before the process exits 0.
final class ServeCommandTests: XCTestCase {
    /// Reads `pipe` until the text read so far contains `needle` or the pipe closes; returns the text.
    static func read(_ pipe: Pipe, until needle: String) async -> String {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var text = ""
                while !text.contains(needle) {
                    let data = pipe.fileHandleForReading.availableData
                    if data.isEmpty { break }
                    text += String(decoding: data, as: UTF8.self)
                }
                continuation.resume(returning: text)
            }
        }
    }

    func testMaxBatchIsInTheHelpAndBelowOneIsAOneLineError() throws {
        for (arguments, expected) in [
            (["serve", "--help"], "--max-batch"),
            (
                ["serve", "--model", ServerFixture.modelDirectory.path, "--max-batch", "0"],
                "--max-batch must be at least 1"
            )
        ] {
            let process = Process()
            process.executableURL = try binary
            process.arguments = arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertTrue(text.contains(expected), text)
            XCTAssertEqual(process.terminationStatus, arguments.contains("--help") ? 0 : 1, text)
        }
    }

    func testSIGTERMFinishesTheStreamInFlightThenExitsZero() async throws {
        let server = Process()
        server.executableURL = try binary
        server.arguments = ["serve", "--model", ServerFixture.modelDirectory.path, "--port", "0"]
        let serverErrors = Pipe()
        server.standardError = serverErrors
        server.standardOutput = Pipe()
        try server.run()
        addTeardownBlock { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        let banner = await Self.read(serverErrors, until: "/v1 (")
        let port = try XCTUnwrap(banner.firstMatch(of: /127\.0\.0\.1:(\d+)\/v1/).map { Int($0.1)! }, banner)

        let (client, clientOutput) = try LiveServerTests.startClient(["drain"], port: port)
        let started = await Self.read(clientOutput, until: "streaming")
        XCTAssertTrue(started.contains("streaming"), started)
        kill(server.processIdentifier, SIGTERM)
        let rest = await Self.read(clientOutput, until: "checks passed")
        client.waitUntilExit()
        XCTAssertEqual(client.terminationStatus, 0, started + rest)
        XCTAssertTrue(rest.contains("checks passed"), rest)
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                server.waitUntilExit()
                continuation.resume()
            }
        }
        XCTAssertEqual(server.terminationStatus, 0, "exit status after SIGTERM")
    }
}
