import Foundation

/// Resized frames written by concurrent workers (video decoding here, the video benchmark's
/// random frames in BatonEngine), one slot each, read back in order once all are done.
public final class ResizedFrames: @unchecked Sendable {
    private var slots: [RGBFrame?]
    private let lock = NSLock()
    public init(count: Int) { slots = Array(repeating: nil, count: count) }
    public func set(_ i: Int, _ frame: RGBFrame) { lock.withLock { slots[i] = frame } }
    public var frames: [RGBFrame] { lock.withLock { slots.map { $0! } } }
}

extension FrameDecoder {
    /// Frames `indices` of `file` (presentation order), each passed through `resize`: `[indices.count]`
    /// frames in the order asked. Each frame is resized on a worker as soon as ffmpeg hands it over, so
    /// decoding overlaps resizing and at most one full-size frame per core waits in memory (a video
    /// plan of any model family decodes its temporal units this way).
    public static func decodeResized(
        _ file: URL, frameIndices indices: [Int], tools: FFmpegTools,
        resize: @escaping @Sendable (RGBFrame) -> RGBFrame
    ) throws -> [RGBFrame] {
        let resized = ResizedFrames(count: indices.count)
        let group = DispatchGroup()
        let workers = max(ProcessInfo.processInfo.activeProcessorCount, 1)
        let free = DispatchSemaphore(value: workers)
        defer { group.wait() }
        try decode(file, frameIndices: indices, tools: tools) { position, frame in
            free.wait()
            DispatchQueue.global().async(group: group) {
                resized.set(position, resize(frame))
                free.signal()
            }
        }
        group.wait()
        return resized.frames
    }
}
