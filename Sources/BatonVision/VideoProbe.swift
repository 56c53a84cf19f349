import BatonTensor
import Foundation

/// What the sampler needs to know about a file's video stream, read by demuxing only (no decoding).
public struct VideoStreamInfo: Sendable, Equatable {
    /// Frame size in pixels, as decoded.
    public var width: Int
    public var height: Int
    /// Frames in the stream: its packets, one per frame for every codec Baton targets (H.264, VP9,
    /// MPEG-4, MJPEG), counted by demuxing rather than taken from the header, which webm and mkv lack.
    public var frameCount: Int
    /// The stream's average frame rate (ffprobe's `avg_frame_rate`; decord's `get_avg_fps()`,
    /// PyAV's `average_rate`), the rate qwen-vl-utils samples against.
    public var averageFPS: Double
    /// Presentation time of every frame in seconds from the first, in presentation order
    /// (`[frameCount]`): the packets' pts sorted, or `i / averageFPS` where the container has none.
    public var frameTimestamps: [Double]
    /// The codec's short name (`h264`, `vp9`, `mpeg4`, `mjpeg`), for messages.
    public var codec: String
}

/// Reads a video stream's size, frame count, rate and timestamps with ffprobe (or ffmpeg alone).
public enum VideoProbe {
    /// Probes the first video stream that is not a cover picture (`V:0`) of `file`.
    /// Throws one line naming the file: missing, unreadable or corrupt, or without a video stream.
    public static func probe(_ file: URL, tools: FFmpegTools) throws -> VideoStreamInfo {
        try requireReadableFile(file)
        if let ffprobe = tools.ffprobe { return try probeWithFFprobe(file, ffprobe: ffprobe) }
        return try probeWithFFmpeg(file, tools: tools)
    }

    private static func probeWithFFprobe(_ file: URL, ffprobe: URL) throws -> VideoStreamInfo {
        let entries =
            "stream=codec_name,width,height,avg_frame_rate,r_frame_rate,time_base,nb_frames,duration"
            + ":packet=pts,dts"
        let run = try ProgramRun.run(
            ffprobe,
            [
                "-v", "error", "-select_streams", "V:0", "-show_entries", entries,
                "-of", "json", file.path
            ])
        guard run.status == 0 else { throw corrupt(file, run.lastErrorLine) }
        guard let root = try? JSONSerialization.jsonObject(with: run.standardOutput) as? [String: Any] else {
            throw corrupt(file, "ffprobe printed no readable JSON")
        }
        guard let stream = (root["streams"] as? [[String: Any]])?.first else {
            throw BatonError(.invalidArgument, "\(file.path): no video stream")
        }
        let width = (stream["width"] as? Int) ?? 0, height = (stream["height"] as? Int) ?? 0
        guard width > 0, height > 0 else { throw corrupt(file, "video stream has no frame size") }
        let packets = (root["packets"] as? [[String: Any]]) ?? []
        guard !packets.isEmpty else { throw BatonError(.invalidArgument, "\(file.path): video stream has no frames") }
        let timeBase = rational(stream["time_base"] as? String) ?? 0
        let stamps = packets.map { packet in (packet["pts"] as? Int) ?? (packet["dts"] as? Int) }
        var fps = rational(stream["avg_frame_rate"] as? String) ?? 0
        if !(fps > 0) { fps = rational(stream["r_frame_rate"] as? String) ?? 0 }
        if !(fps > 0), let duration = Double(stream["duration"] as? String ?? ""), duration > 0 {
            fps = Double(packets.count) / duration
        }
        guard fps > 0 else { throw corrupt(file, "video stream has no frame rate") }
        return VideoStreamInfo(
            width: width, height: height, frameCount: packets.count, averageFPS: fps,
            frameTimestamps: timestamps(stamps, timeBase: timeBase, fps: fps),
            codec: stream["codec_name"] as? String ?? "unknown")
    }

    /// Without ffprobe (imageio-ffmpeg ships none): packets from ffmpeg's `framecrc` muxer (stable,
    /// documented text: `#tb 0: num/den`, then `stream, dts, pts, duration, size, crc` per packet) and
    /// the size from one decoded frame. The rate is frames over the pts span, which equals
    /// `avg_frame_rate` for constant-rate streams.
    private static func probeWithFFmpeg(_ file: URL, tools: FFmpegTools) throws -> VideoStreamInfo {
        let run = try ProgramRun.run(
            tools.ffmpeg,
            [
                "-nostdin", "-v", "error", "-i", file.path, "-map", "0:V:0",
                "-c", "copy", "-f", "framecrc", "pipe:1"
            ])
        guard run.status == 0 else {
            if run.standardError.contains("matches no streams") {
                throw BatonError(.invalidArgument, "\(file.path): no video stream")
            }
            throw corrupt(file, run.lastErrorLine)
        }
        var timeBase = 0.0
        var stamps: [Int?] = []
        var lastDuration = 0
        for line in String(decoding: run.standardOutput, as: UTF8.self).split(whereSeparator: \.isNewline) {
            if line.hasPrefix("#tb 0:") {
                timeBase = rational(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) ?? 0
            } else if !line.hasPrefix("#") {
                let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard fields.count >= 4 else { continue }
                stamps.append(Int(fields[2]) ?? Int(fields[1]))
                lastDuration = Int(fields[3]) ?? lastDuration
            }
        }
        guard !stamps.isEmpty else { throw BatonError(.invalidArgument, "\(file.path): video stream has no frames") }
        let known = stamps.compactMap { $0 }
        var fps = 0.0
        if known.count == stamps.count, timeBase > 0, let first = known.min(), let last = known.max() {
            let span = Double(last - first + lastDuration) * timeBase
            if span > 0 { fps = Double(stamps.count) / span }
        }
        guard fps > 0 else { throw corrupt(file, "video stream has no timestamps to take a frame rate from") }
        let first = try FrameDecoder.decodeFirstFrame(file, tools: tools)
        return VideoStreamInfo(
            width: first.width, height: first.height, frameCount: stamps.count, averageFPS: fps,
            frameTimestamps: timestamps(stamps, timeBase: timeBase, fps: fps), codec: "unknown")
    }

    /// Seconds from the first frame, in presentation order; `i / fps` when any packet lacks a time.
    static func timestamps(_ stamps: [Int?], timeBase: Double, fps: Double) -> [Double] {
        let known = stamps.compactMap { $0 }
        guard known.count == stamps.count, timeBase > 0 else {
            return stamps.indices.map { Double($0) / fps }
        }
        let sorted = known.sorted()
        return sorted.map { Double($0 - sorted[0]) * timeBase }
    }

    /// `"30000/1001"` -> 29.97; nil for `0/0` or text that is not a ratio.
    static func rational<S: StringProtocol>(_ text: S?) -> Double? {
        guard let text else { return nil }
        let parts = text.split(separator: "/")
        guard let numerator = Double(parts[0]) else { return nil }
        if parts.count == 1 { return numerator }
        guard parts.count == 2, let denominator = Double(parts[1]), denominator != 0 else { return nil }
        return numerator / denominator
    }

    static func corrupt(_ file: URL, _ detail: String) -> BatonError {
        BatonError(.invalidArgument, "\(file.path): cannot read as video or image (\(detail))")
    }
}

/// Throws one line naming `file` when it is missing, a directory or unreadable.
func requireReadableFile(_ file: URL) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory) else {
        throw BatonError(.io, "\(file.path): no such file")
    }
    guard !isDirectory.boolValue else { throw BatonError(.io, "\(file.path): is a directory, not a file") }
    guard FileManager.default.isReadableFile(atPath: file.path) else {
        throw BatonError(.io, "\(file.path): not readable")
    }
}
