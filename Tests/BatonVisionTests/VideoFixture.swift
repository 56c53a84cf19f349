import BatonVision
import Foundation
import XCTest

/// `Tests/Fixtures/video/expected.json`, written by `scripts/make_video_fixtures.py` from qwen-vl-utils
/// 0.0.14 and transformers 5.24's Qwen2-VL processors.
struct VideoFixture: Decodable {
    struct VideoCase: Decodable {
        var name: String
        var clip: String
        var options: Options
        var total_frames: Int
        var video_fps: Double
        var frame_indices: [Int]
        var sample_fps: Double
        var resized: [Int]
        var grid: [Int]?
        var second_per_grid_t: Double?
        var rows: Int?
        var row_stride: Int?
        var rows_file: String?
        var row_sums: [Double]?
    }

    struct ImageCase: Decodable {
        var name: String
        var image: String
        var resized: [Int]
        var grid: [Int]
        var rows: Int
        var row_stride: Int
        var rows_file: String
        var row_sums: [Double]
    }

    /// qwen-vl-utils' per-element keys.
    struct Options: Decodable {
        var fps: Double?
        var max_frames: Int?
        var min_pixels: Int?
        var max_pixels: Int?

        var videoOptions: VideoOptions {
            VideoOptions(fps: fps ?? 2, maxFrames: max_frames, minPixels: min_pixels, maxPixels: max_pixels)
        }
    }

    struct ResamplerCase: Decodable {
        var input: [Int]
        var output: [Int]
        var float32: String
        var torchvision: String
        var pillow: String
    }

    struct LinspaceCase: Decodable {
        var total: Int
        var count: Int
        var indices: [Int]
    }

    var videos: [VideoCase]
    var images: [ImageCase]
    var resampler: [ResamplerCase]
    var linspace: [LinspaceCase]

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/video")

    static func load() throws -> VideoFixture {
        try JSONDecoder().decode(
            VideoFixture.self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))
    }

    /// The stored reference rows: every `stride`-th row, [ceil(rows / stride), 1176] f32.
    static func storedRows(_ file: String) throws -> [Float] {
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Where a clip lives: committed ones under clips/, Megamind.avi where `.ci/run` unpacks
    /// Debian's opencv-doc (`BATON_OPENCV_DATA`, default /tmp/ocv/usr/share/doc/opencv-doc/examples/data).
    static func clipURL(_ name: String) -> URL {
        if name == "Megamind.avi" {
            let dataDirectory =
                ProcessInfo.processInfo.environment["BATON_OPENCV_DATA"]
                ?? "/tmp/ocv/usr/share/doc/opencv-doc/examples/data"
            return URL(fileURLWithPath: dataDirectory).appendingPathComponent(name)
        }
        return directory.appendingPathComponent("clips").appendingPathComponent(name)
    }
}

/// ffmpeg, or a skip that says what to install.
func requireFFmpeg() throws -> FFmpegTools {
    do { return try FFmpegTools.locate() } catch {
        throw XCTSkip("needs ffmpeg: \(error)")
    }
}

/// A fresh temporary directory for generated clips.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("baton-vision-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs ffmpeg with `arguments`, failing the test with its message when it fails.
func runFFmpeg(_ tools: FFmpegTools, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = tools.ffmpeg
    process.arguments = ["-nostdin", "-v", "error", "-y"] + arguments
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw NSError(
            domain: "ffmpeg", code: Int(process.terminationStatus), userInfo: [NSLocalizedDescriptionKey: message])
    }
}
