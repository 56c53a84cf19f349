import BatonTensor
import CCUDA
import Foundation

/// Which attention kernel of Kernels/attention.cu runs (versions kept side by side, llm.c style;
/// what each one changed is commented there and measured in bench/RESULTS.md).
public enum AttentionKernel: Sendable, Equatable, CustomStringConvertible {
    /// v1: one warp per (row, head), scalar fp32. Any head dim up to 256.
    case naive
    /// Flash version 2...6 (mma.sync tensor cores); head dim 64 or 128.
    case flash(Int)
    /// The default flash version with the keys split over `splits` blocks and an fp32 combine.
    case flashSplit(Int)
    /// Kernels/decode.cu: the query rows of each KV group packed into one block per key slice, for
    /// at most `decodeMaxRows` rows (query tokens x query heads per KV head); head dim 64 or 128.
    case decode
    /// Kernels/attention_hopper.cu: wgmma + TMA, sm_90a only, head dim 64 or 128.
    case hopper

    /// The fastest version measured on H100 (bench/RESULTS.md); `attention` uses it.
    public static let defaultFlashVersion = 3
    /// Flash versions compiled in: the shipped v3, and v2, v4-v6 when the development kernels are
    /// appended (`KernelSources.developmentFolder`).
    public static var flashVersions: [Int] {
        KernelSources.developmentFolder == nil ? [defaultFlashVersion] : [2, 3, 4, 5, 6]
    }
    /// The most query rows per KV head the decode kernel takes (its register budget).
    public static let decodeMaxRows = 8

    public var description: String {
        switch self {
        case .naive: "naive"
        case .flash(let v): "flash-v\(v)"
        case .flashSplit(let n): "flash-split\(n)"
        case .decode: "decode"
        case .hopper: "hopper"
        }
    }

    /// (kernel name, threads, query rows per block, keys per tile) of a flash version.
    func flashLayout(headDim d: Int) -> (name: String, threads: Int, blockRows: Int, tileKeys: Int) {
        let version: Int
        switch self {
        case .flash(let v): version = v
        default: version = Self.defaultFlashVersion
        }
        switch version {
        case 2: return ("flash_attention_d\(d)", 256, 128, 64)
        case 4: return ("flash4_attention_d\(d)", 256, 256, 64)
        case 5: return ("flash5_attention_d\(d)", 128, 128, 64)
        case 6: return ("flash6_attention_d\(d)", 128, 128, 32)
        default: return ("flash3_attention_d\(d)", 128, 128, 64)
        }
    }
}

extension AttentionMask {
    /// (maskKind, anchorLength, passingLength) as attention.cu reads them.
    var kernelArguments: (Int, Int, Int) {
        switch self {
        case .full: (0, 0, 0)
        case .causal: (1, 0, 0)
        case .anchor(let a, let p): (2, a, p)
        }
    }
}

extension CUDABackend {
    static let flashQueryRows = 128, flashKeyRows = 64

    public func attention(query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask, scale: Float) throws
        -> AttentionOutput
    {
        try attention(
            query: query, key: key, value: value, mask: mask, scale: scale,
            kernel: defaultKernel(query: query, key: key))
    }

    /// The kernel `attention` picks for head dim 64/128: the decode kernel when each KV head has at
    /// most `decodeMaxRows` query rows; else flash, split-KV when too few (query tile, head) blocks
    /// would fill the GPU and the keys are long, and on sm_90a the Hopper kernel (1.5x v3's speed at
    /// d 64, 1.7-2x at d 128, bench/RESULTS.md). `BATON_ATTENTION=naive` forces v1,
    /// `BATON_ATTENTION=flash` keeps the mma.sync versions on Hopper.
    public func defaultKernel(query: Tensor, key: Tensor) -> AttentionKernel {
        guard query.shape.rank == 3, key.shape.rank == 3 else { return .naive }
        let d = query.shape[2]
        let choice = BatonSettings.current.attention
        if choice == .naive || (d != 64 && d != 128) { return .naive }
        if key.shape[1] > 0, query.shape[1] % key.shape[1] == 0,
            query.shape[0] * (query.shape[1] / key.shape[1]) <= AttentionKernel.decodeMaxRows
        {
            return .decode
        }
        let blocks = (query.shape[0] + Self.flashQueryRows - 1) / Self.flashQueryRows * query.shape[1]
        let keyTiles = (key.shape[0] + Self.flashKeyRows - 1) / Self.flashKeyRows
        if blocks < multiprocessorCount && keyTiles >= 16 {
            // About eight waves of two blocks per SM, at least four key tiles per split.
            return .flashSplit(min(keyTiles / 4, (16 * multiprocessorCount + blocks - 1) / blocks))
        }
        if choice != .flash && key.shape[0] > 0 && supportsHopperAttention { return .hopper }
        return .flash(AttentionKernel.defaultFlashVersion)
    }

    /// Attention with a chosen kernel (the self-check and benchmark run each one).
    public func attention(
        query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask, scale: Float,
        kernel: AttentionKernel
    ) throws -> AttentionOutput {
        for t in [query, key, value] { try checkOnDevice(t, "attention") }
        let (Sq, Sk, H, Hkv, d) = try OpShapes.attention(query: query, key: key, value: value, mask: mask)
        let q = try asActivation(query, "attention q"), k = try asActivation(key, "attention k")
        let v = try asActivation(value, "attention v")
        let out = try empty(query.shape, dtype: .bf16)
        let lse = try empty(Shape([H, Sq]), dtype: .f32)
        if Sq == 0 || H == 0 { return AttentionOutput(out: out, logSumExp: lse) }
        let (maskKind, anchorLength, passingLength) = mask.kernelArguments
        switch kernel {
        case .hopper where Sk > 0 && hopperAttentionApplies(query: q, key: k, value: v):
            try launchHopperAttention(q: q, k: k, v: v, out: out, lse: lse, mask: mask, scale: scale)
        case .hopper:
            // No keys (a tensor map needs a non-empty tensor) or unaligned views: the default flash version.
            return try attention(
                query: q, key: k, value: v, mask: mask, scale: scale,
                kernel: .flash(AttentionKernel.defaultFlashVersion))
        case .naive:
            try require(d <= 256, "attention: the naive kernel takes head dim <= 256, got \(d)")
            try launch(
                "attention.cu", "attention_naive", grid: (Sq, H, 1), block: 32,
                [
                    .tensor(q), .tensor(k), .tensor(v), .tensor(out), .tensor(lse), .int(Sq), .int(Sk), .int(H),
                    .int(Hkv), .int(d), .int(maskKind), .int(anchorLength), .int(passingLength), .float(scale)
                ])
        case .decode:
            try decodeAttention(
                q: q, k: k, v: v, out: out, lse: lse, Sq: Sq, Sk: Sk, H: H, Hkv: Hkv, d: d,
                mask: mask, scale: scale)
        case .flash, .flashSplit:
            guard d == 64 || d == 128 else {
                throw BatonError.unsupported("attention: the flash kernel takes head dim 64 or 128, got \(d)")
            }
            try require(scale > 0, "attention: the flash kernels need a positive scale, got \(scale)")
            let (name, threads, blockRows, tileKeys) = kernel.flashLayout(headDim: d)
            let queryTiles = (Sq + blockRows - 1) / blockRows
            let keyTiles = max(1, (Sk + tileKeys - 1) / tileKeys)
            var splits = 1, splitTiles = 0
            if case .flashSplit(let n) = kernel, n > 1 {
                splitTiles = (keyTiles + n - 1) / n
                splits = (keyTiles + splitTiles - 1) / splitTiles
            }
            let sharedBytes = (blockRows + 4 * tileKeys) * d * 2
            let partialOut = splitTiles > 0 ? try empty(Shape([splits, Sq, H, d]), dtype: .f32) : out
            let partialLse = splitTiles > 0 ? try empty(Shape([splits, H, Sq]), dtype: .f32) : lse
            try launch(
                "attention.cu", name, grid: (queryTiles, H, splits), block: threads,
                sharedBytes: sharedBytes,
                [
                    .tensor(q), .tensor(k), .tensor(v), .tensor(out), .tensor(lse), .int(Sq), .int(Sk), .int(H),
                    .int(Hkv), .int(maskKind), .int(anchorLength), .int(passingLength),
                    .float(Self.log2Scale(scale)), .int(splitTiles), .tensor(partialOut), .tensor(partialLse)
                ])
            if splitTiles > 0 {
                try combineSplits(partialOut: partialOut, partialLse: partialLse, out: out, lse: lse, splits: splits)
            }
        }
        return AttentionOutput(out: out, logSumExp: lse)
    }

    /// Kernels/decode.cu over slices of about `keysPerSplit` keys (enough blocks for four per SM),
    /// then attention_combine.
    func decodeAttention(
        q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, Sq: Int, Sk: Int, H: Int, Hkv: Int,
        d: Int, mask: AttentionMask, scale: Float
    ) throws {
        let rows = Sq * (H / Hkv)
        guard d == 64 || d == 128, rows <= AttentionKernel.decodeMaxRows else {
            throw BatonError.unsupported(
                "attention: the decode kernel takes head dim 64 or 128 and at most "
                    + "\(AttentionKernel.decodeMaxRows) query rows per KV head, got d \(d), \(rows) rows")
        }
        let rowTemplate = [1, 2, 4, 8].first { $0 >= rows }!
        let wantedSplits = max(1, (4 * multiprocessorCount + Hkv - 1) / Hkv)
        let keysPerSplit = max(128, ((Sk + wantedSplits - 1) / wantedSplits + 127) / 128 * 128)
        let splits = max(1, (Sk + keysPerSplit - 1) / keysPerSplit)
        let partialOut = try empty(Shape([splits, Sq, H, d]), dtype: .f32)
        let partialLse = try empty(Shape([splits, H, Sq]), dtype: .f32)
        let (maskKind, anchorLength, passingLength) = mask.kernelArguments
        try launch(
            "decode.cu", "decode_attention_d\(d)_r\(rowTemplate)", grid: (splits, Hkv, 1), block: 128,
            [
                .tensor(q), .tensor(k), .tensor(v), .tensor(partialOut), .tensor(partialLse), .int(Sq), .int(Sk),
                .int(H), .int(Hkv), .int(maskKind), .int(anchorLength), .int(passingLength),
                .float(Self.log2Scale(scale)), .int(keysPerSplit)
            ])
        try combineSplits(partialOut: partialOut, partialLse: partialLse, out: out, lse: lse, splits: splits)
    }

    /// attention_combine: merges `splits` normalised fp32 partials ([splits, Sq, H, d] with their
    /// natural lse [splits, H, Sq]) into out [Sq, H, d] and lse [H, Sq].
    func combineSplits(partialOut: Tensor, partialLse: Tensor, out: Tensor, lse: Tensor, splits: Int) throws {
        let (Sq, H, d) = (out.shape[0], out.shape[1], out.shape[2])
        try launchElementwise(
            "attention.cu", "attention_combine", count: Sq * H * d,
            [
                .tensor(partialOut), .tensor(partialLse), .tensor(out), .tensor(lse), .int(splits),
                .int(Sq), .int(H), .int(d)
            ])
    }

    /// The kernels take the softmax scale in log2 units: exp(s * scale) = exp2(s * scale * log2(e)).
    static func log2Scale(_ scale: Float) -> Float { scale * 1.4426950408889634 }

    public func mergeAttention(_ parts: [AttentionOutput]) throws -> AttentionOutput {
        for part in parts {
            try checkOnDevice(part.out, "mergeAttention"); try checkOnDevice(part.logSumExp, "mergeAttention")
            try require(
                part.logSumExp.dtype == .f32,
                "mergeAttention: the CUDA kernel takes f32 lse, got \(part.logSumExp.dtype)")
        }
        let (Sq, H, d) = try OpShapes.mergeAttention(parts)
        let first = parts[0]
        let accumulated = try cast(first.out, to: .f32)
        let logSumExp = try empty(first.logSumExp.shape, dtype: .f32)
        try copy(first.logSumExp, into: logSumExp)
        for part in parts.dropFirst() {
            try launchElementwise(
                "ops.cu", "merge_attention_pair", count: Sq * H,
                [
                    .tensor(accumulated), .tensor(logSumExp), .tensor(part.out), .int(part.out.dtype.kernelCode),
                    .tensor(part.logSumExp), .int64(Sq), .int64(H), .int64(d)
                ])
        }
        return AttentionOutput(out: try cast(accumulated, to: activationDType), logSumExp: logSumExp)
    }
}
