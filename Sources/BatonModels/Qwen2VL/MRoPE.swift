import BatonTensor

/// One image or video of a prompt, as M-RoPE sees it: its patch grid and, for a video, the seconds
/// one temporal unit spans (`second_per_grid_ts` = temporal_patch_size / sampled fps).
public struct VisualItem: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case image, video }
    public var kind: Kind
    public var grid: VisionGrid
    /// Seconds per temporal unit; ignored for images (their temporal step is 0).
    public var secondsPerGrid: Double

    public init(kind: Kind, grid: VisionGrid, secondsPerGrid: Double = 1) {
        self.kind = kind
        self.grid = grid
        self.secondsPerGrid = secondsPerGrid
    }
}

/// Qwen2.5-VL's 3-D rotary positions (temporal, height, width), with transformers 4.51's
/// `get_rope_index` semantics (the original contribution; later versions drifted, see VIDEO.md 9).
public enum MRoPE {
    /// Positions `[3, T]` (rows t, h, w, each `T` long) of a prompt, and the delta decoding adds:
    /// the token at absolute index `c >= T` takes position `c + ropeDelta` on all three rows.
    ///
    /// Walking left to right: a text run starting after position p gets p+1, p+2, ... on all rows
    /// (p = the largest position so far; 0 first). The pad-token run of the next item (tokens
    /// `imageTokenId`/`videoTokenId` in the order of `items`), starting at s = p + 1, gets
    /// t = s + trunc(k * secondsPerGrid * tokensPerSecond) (fp32, image: 0), h = s + row,
    /// w = s + column of merge unit (k, row, column). Vision start/end markers are text.
    /// - Throws: when the prompt's pad runs do not match `items` (count or length).
    public static func positions(
        tokens: [Int32], items: [VisualItem], imageTokenId: Int, videoTokenId: Int,
        mergeSize: Int, tokensPerSecond: Double
    ) throws -> (rows: [[Int32]], ropeDelta: Int) {
        var t: [Int32] = [], h: [Int32] = [], w: [Int32] = []
        t.reserveCapacity(tokens.count)
        h.reserveCapacity(tokens.count)
        w.reserveCapacity(tokens.count)
        var next: Int32 = 0  // largest position so far + 1
        var index = 0, itemIndex = 0
        while index < tokens.count {
            let token = Int(tokens[index])
            guard token == imageTokenId || token == videoTokenId else {
                t.append(next); h.append(next); w.append(next)
                next += 1
                index += 1
                continue
            }
            guard itemIndex < items.count else {
                throw BatonError.invalidArgument(
                    "M-RoPE: the prompt has more image/video pad runs than the "
                        + "\(items.count) items given (another starts at token \(index))")
            }
            let item = items[itemIndex]
            let expectedKind: VisualItem.Kind = token == imageTokenId ? .image : .video
            guard item.kind == expectedKind else {
                let padName = expectedKind == .image ? "<|image_pad|>" : "<|video_pad|>"
                throw BatonError.invalidArgument(
                    "M-RoPE: item \(itemIndex) is an \(item.kind) but the pad run at "
                        + "token \(index) is \(padName)")
            }
            let (units, rows, columns) = (item.grid.t, item.grid.h / mergeSize, item.grid.w / mergeSize)
            let count = units * rows * columns
            let runEnd = tokens[index...].firstIndex { Int($0) != token } ?? tokens.count
            // Two adjacent items of one kind would form one run: take this item's tokens only.
            guard runEnd - index >= count else {
                throw BatonError.invalidArgument(
                    "M-RoPE: item \(itemIndex) with grid \(item.grid) needs \(count) pad "
                        + "tokens, the prompt has \(runEnd - index) at token \(index)")
            }
            let start = next
            let step = item.kind == .image ? Float(0) : Float(item.secondsPerGrid)
            var largest = start
            for k in 0..<units {
                // 4.51: (arange(T) * second_per_grid_t) * tokens_per_second in fp32, then .long().
                let temporal = start + Int32((Float(k) * step * Float(tokensPerSecond)).rounded(.towardZero))
                for r in 0..<rows {
                    for c in 0..<columns {
                        t.append(temporal); h.append(start + Int32(r)); w.append(start + Int32(c))
                    }
                }
                largest = max(largest, temporal)
            }
            largest = max(largest, start + Int32(max(rows, columns) - 1))
            next = largest + 1
            index += count
            itemIndex += 1
        }
        guard itemIndex == items.count else {
            throw BatonError.invalidArgument(
                "M-RoPE: \(items.count) images/videos given but the prompt has pad tokens "
                    + "for \(itemIndex)")
        }
        return ([t, h, w], Int(next) - tokens.count)
    }

    /// Positions `[3, count]` of `count` decoded tokens starting at absolute index `first`.
    public static func decodingPositions(first: Int, count: Int, ropeDelta: Int) -> [[Int32]] {
        let row = (0..<count).map { Int32(first + $0 + ropeDelta) }
        return [row, row, row]
    }
}

extension Qwen2VLConfig {
    /// M-RoPE positions of a prompt with this model's token ids, merge size and tokens per second.
    public func ropePositions(tokens: [Int32], items: [VisualItem]) throws -> (rows: [[Int32]], ropeDelta: Int) {
        try MRoPE.positions(
            tokens: tokens, items: items, imageTokenId: imageTokenId, videoTokenId: videoTokenId,
            mergeSize: vision.spatialMergeSize, tokensPerSecond: vision.tokensPerSecond)
    }
}
