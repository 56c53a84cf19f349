import BatonVision
import Foundation
import XCTest

/// Short H.264 clips of ffmpeg's test pattern, made per test in a temporary folder (removed after
/// the test); tests that need ffmpeg skip, saying so, where it is missing.
extension XCTestCase {
    /// A `seconds` s, 4 fps clip of `size` ("WIDTHxHEIGHT"): 4·seconds frames, 2·seconds sampled at
    /// 2 fps (seconds temporal units). The default, 2 s at 64x48: 8 frames, 4 sampled.
    func makeClip(size: String = "64x48", seconds: Int = 2) throws -> URL {
        let tools = try requireTools()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("baton-vl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let clip = directory.appendingPathComponent("testsrc.mp4")
        try ffmpeg(
            tools,
            [
                "-f", "lavfi", "-i", "testsrc=size=\(size):rate=4", "-t", "\(seconds)",
                "-pix_fmt", "yuv420p", "-c:v", "libx264", clip.path
            ])
        return clip
    }

    func requireTools() throws -> FFmpegTools {
        do { return try FFmpegTools.locate() } catch { throw XCTSkip("needs ffmpeg: \(error)") }
    }

    func ffmpeg(_ tools: FFmpegTools, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = tools.ffmpeg
        process.arguments = ["-v", "error", "-y"] + arguments
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "ffmpeg \(arguments)")
    }
}
