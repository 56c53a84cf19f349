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
