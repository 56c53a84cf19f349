import BatonTensor
import Foundation

/// One decoded picture. pixels: [height, width, 3] uint8 RGB, row-major.
public struct RGBFrame: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "\(pixels.count) bytes for a \(width)x\(height) RGB frame")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Decodes chosen frames of a file through the ffmpeg program.
///
/// Only the wanted frames leave ffmpeg: a `select` filter keeps frame numbers `n` (presentation
/// order, counted from 0, the numbering qwen-vl-utils' readers index by), `-frames:v` stops decoding
/// after the last one, and each frame comes back as a binary PPM (`P6 w h 255` + RGB bytes), so the
/// size travels with every frame and no second probe is needed.
public enum FrameDecoder {
    /// Decodes frames `indices` (presentation order) of `file`'s first video stream, calling `each`
    /// with the position in `indices` and the frame, in that order. Repeated indices are decoded once
    /// and handed out at every position that asks for them.
    public static func decode(
        _ file: URL, frameIndices indices: [Int], tools: FFmpegTools,
        each: (Int, RGBFrame) throws -> Void
    ) throws {
        try requireReadableFile(file)
        guard !indices.isEmpty else { return }
        let unique = Array(Set(indices)).sorted()
        guard unique[0] >= 0 else {
            throw BatonError.invalidArgument("\(file.path): negative frame index \(unique[0])")
        }
        let positions = Dictionary(grouping: indices.indices, by: { indices[$0] })
        let expression = unique.map { "eq(n,\($0))" }.joined(separator: "+")
        var decoded = 0
        let run = try runDecoder(file, tools: tools, filter: "select='\(expression)'", frameLimit: unique.count) {
            frame in
            guard decoded < unique.count else { return }
            for position in positions[unique[decoded]] ?? [] { try each(position, frame) }
            decoded += 1
        }
        guard run.status == 0 else { throw VideoProbe.corrupt(file, run.error) }
        guard decoded == unique.count else {
            throw BatonError(
                .invalidArgument,
                "\(file.path): decoded \(decoded) of \(unique.count) sampled frames "
                    + "(last wanted frame \(unique.last!)); the stream is truncated or corrupt")
        }
    }

    /// Decodes all sampled frames into memory: `[indices.count]` frames.
    public static func decode(_ file: URL, frameIndices indices: [Int], tools: FFmpegTools) throws -> [RGBFrame] {
        var frames = [RGBFrame?](repeating: nil, count: indices.count)
        try decode(file, frameIndices: indices, tools: tools) { position, frame in frames[position] = frame }
        return frames.map { $0! }
    }

    /// The first frame of a still image or a video. Chroma is upsampled with swscale's accurate
    /// full-chroma path, which brings JPEG pixels within ~2.4 levels (mean) of libjpeg's, as Pillow
    /// decodes them, instead of ~6.6 with the default (measured on the fixture's testsrc.jpg).
    /// Video frames keep the default flags: with them ffmpeg's frames equal PyAV's bit for bit.
    public static func decodeFirstFrame(_ file: URL, tools: FFmpegTools) throws -> RGBFrame {
        try requireReadableFile(file)
        var first: RGBFrame?
        let run = try runDecoder(
            file, tools: tools, filter: nil, frameLimit: 1,
            scalerFlags: "bicubic+accurate_rnd+full_chroma_int"
        ) { frame in
            if first == nil { first = frame }
        }
        if run.status != 0, run.error.contains("matches no streams") {
            throw BatonError(.invalidArgument, "\(file.path): no image or video stream")
        }
        guard run.status == 0, let first else { throw VideoProbe.corrupt(file, run.error) }
        return first
    }

    /// Runs ffmpeg writing PPM frames to a pipe and parses them as they arrive. `-fps_mode
    /// passthrough` (FFmpeg >= 5.1; `-vsync 0` before) keeps ffmpeg from duplicating or dropping
    /// frames to fill a constant rate.
    private static func runDecoder(
        _ file: URL, tools: FFmpegTools, filter: String?, frameLimit: Int,
        scalerFlags: String? = nil,
        each: (RGBFrame) throws -> Void
    ) throws -> (status: Int32, error: String) {
        func arguments(syncOption: [String]) -> [String] {
            var arguments = ["-nostdin", "-v", "error", "-i", file.path, "-map", "0:V:0", "-an", "-sn", "-dn"]
            if let filter { arguments += ["-vf", filter] }
            if let scalerFlags { arguments += ["-sws_flags", scalerFlags] }
            return arguments + syncOption + [
                "-frames:v", String(frameLimit), "-f", "image2pipe", "-c:v", "ppm",
                "-pix_fmt", "rgb24", "pipe:1"
            ]
        }
        for syncOption in [["-fps_mode", "passthrough"], ["-vsync", "0"]] {
            var parser = PPMStreamParser()
            let (status, error) = try ProgramRun.stream(tools.ffmpeg, arguments(syncOption: syncOption)) { chunk in
                try parser.append(chunk, each: each)
            }
            if status != 0, error.contains("fps_mode"), parser.framesParsed == 0 { continue }
            let lastLine =
                error.split(whereSeparator: \.isNewline).last.map(String.init) ?? "ffmpeg exit status \(status)"
            return (status, lastLine)
        }
        return (1, "ffmpeg accepts neither -fps_mode nor -vsync")
    }
}

/// Splits a byte stream of binary PPM images (`P6\n<w> <h>\n255\n` + w*h*3 bytes, as ffmpeg's ppm
/// encoder writes them) into frames.
struct PPMStreamParser {
    private var buffer: [UInt8] = []
    private(set) var framesParsed = 0

    mutating func append(_ chunk: Data, each: (RGBFrame) throws -> Void) throws {
        buffer.append(contentsOf: chunk)
        var start = 0
        while let (header, width, height) = try parseHeader(from: start) {
            let count = width * height * 3
            guard buffer.count - header >= count else { break }
            try each(RGBFrame(width: width, height: height, pixels: Array(buffer[header..<(header + count)])))
            framesParsed += 1
            start = header + count
        }
        if start > 0 { buffer.removeFirst(start) }
    }

    /// The offset of the pixel data and the size, or nil when the header is not complete yet.
    private func parseHeader(from start: Int) throws -> (Int, Int, Int)? {
        var fields: [Int] = []
        var index = start
        guard buffer.count - start >= 2 else { return nil }
        guard buffer[start] == UInt8(ascii: "P"), buffer[start + 1] == UInt8(ascii: "6") else {
            throw BatonError(.io, "ffmpeg wrote something other than PPM frames")
        }
        index += 2
        while fields.count < 3 {
            while index < buffer.count, isSpace(buffer[index]) { index += 1 }
            var value = 0, digits = 0
            while index < buffer.count, buffer[index] >= 48, buffer[index] <= 57 {
                value = value * 10 + Int(buffer[index] - 48)
                digits += 1
                index += 1
            }
            guard index < buffer.count else { return nil }
            guard digits > 0 else { throw BatonError(.io, "ffmpeg wrote a malformed PPM header") }
            fields.append(value)
        }
        guard fields[2] == 255, fields[0] > 0, fields[1] > 0 else {
            throw BatonError(.io, "ffmpeg wrote a PPM frame of \(fields[0])x\(fields[1]) with maximum \(fields[2])")
        }
        return (index + 1, fields[0], fields[1])  // one whitespace byte ends the header
    }

    private func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }
}
