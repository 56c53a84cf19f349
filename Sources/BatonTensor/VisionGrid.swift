/// The size of one image or video in patches: `t` temporal units (frame pairs; an image is one),
/// `h` x `w` patches of 14 x 14 pixels (`grid_thw` in transformers). Here, below both, because the
/// processor (BatonVision) makes it and the vision tower (BatonModels) reads it.
public struct VisionGrid: Sendable, Equatable, Codable, CustomStringConvertible {
    public var t: Int
    public var h: Int
    public var w: Int

    public init(t: Int, h: Int, w: Int) {
        self.t = t
        self.h = h
        self.w = w
    }

    /// Patch rows the vision tower takes: t·h·w.
    public var patchCount: Int { t * h * w }
    /// Tokens the language model sees after the 2x2 merge: t·h·w/4.
    public var tokenCount: Int { t * h * w / 4 }
    public var description: String { "(\(t), \(h), \(w))" }
}
