import BatonTensor
import Foundation

extension CPUBackend {
    /// table `[V, D]` any float, ids `[T]` i32 -> `[T, D]` f32. An id outside `0..<V` throws.
    public func embedding(table: Tensor, ids: Tensor) throws -> Tensor {
        let op = "embedding"
        try requireFloat(table, op, "table")
        try requireInt32(ids, op, "ids")
        try requireRank(table, 2, op, "table", "[V, D]")
        try requireRank(ids, 1, op, "ids", "[T]")
        let (vocabulary, width, count) = (table.shape[0], table.shape[1], ids.shape[0])
        let idPointer = ids.int32Pointer
        for t in 0..<count where idPointer[t] < 0 || Int(idPointer[t]) >= vocabulary {
            throw BatonError.invalidArgument(
                "embedding: token id \(idPointer[t]) at position \(t) is outside the vocabulary of \(vocabulary) rows")
        }
        let out = try uninitializedHostTensor(Shape([count, width]), dtype: .f32)
        let destination = out.floatPointer
        let rowBytes = width * table.dtype.byteSize
        parallelChunks(count, threads: threads, workPerItem: width) { rows in
            for t in rows {
                let source = table.hostPointer + Int(idPointer[t]) * rowBytes
                convertToFloat(source, dtype: table.dtype, count: width, into: destination + t * width, threads: 1)
            }
        }
        return out
    }

    /// x `[..., D]` any float (each row normalised; rank 2 `[M, D]` in the op set), weight `[D]`
    /// any float -> f32. Hugging Face Llama order: mean of squares and normalisation in fp32, the
    /// normalised row rounded to x's dtype (a no-op for f32 activations), then scaled by the weight.
    public func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float) throws -> Tensor {
        let op = "rmsNorm"
        try requireFloat(x, op, "x")
        try requireFloat(weight, op, "weight")
        try require(x.shape.rank >= 1, "rmsNorm: x must be [M, D], found a scalar")
        let width = x.shape.dimensions.last!
        try require(weight.shape == Shape([width]), "rmsNorm: weight must be [\(width)] to match x \(x.shape), found \(weight.shape)")
        let rowCount = width == 0 ? 0 : x.elementCount / width
        let out = try uninitializedHostTensor(x.shape, dtype: .f32)
        let xFloat = try floatTensor(x, threads: threads)
        let weightFloat = try floatTensor(weight, threads: threads)
        let roundTo = x.dtype
        withExtendedLifetime((xFloat, weightFloat)) {
            let source = xFloat.floatPointer, scale = weightFloat.floatPointer, destination = out.floatPointer
            parallelChunks(rowCount, threads: threads, workPerItem: width * 3) { rows in
                for row in rows {
                    let input = source + row * width, output = destination + row * width
                    let inverseRMS = 1 / (sumOfSquares(input, count: width) / Float(width) + epsilon).squareRoot()
                    if roundTo == .f32 {
                        for i in 0..<width { output[i] = input[i] * inverseRMS * scale[i] }
                    } else {
                        for i in 0..<width { output[i] = CPUBackend.round(input[i] * inverseRMS, to: roundTo) * scale[i] }
                    }
                }
            }
        }
        return out
    }

    /// x `[T, heads, d]` any float, positions `[T]` i32, inverseFrequencies `[d/2]` any float -> f32.
    /// Hugging Face rotate-half: with angle = position * invFreq[i] (fp32 product, as HF computes it),
    /// out[i] = x[i] cos - x[i + d/2] sin and out[i + d/2] = x[i + d/2] cos + x[i] sin.
    public func rotary(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws -> Tensor {
        let op = "rotary"
        try requireFloat(x, op, "x")
        try requireInt32(positions, op, "positions")
        try requireFloat(inverseFrequencies, op, "inverseFrequencies")
        try requireRank(x, 3, op, "x", "[T, heads, d]")
        let (count, heads, dim) = (x.shape[0], x.shape[1], x.shape[2])
        try require(dim % 2 == 0, "rotary: head dim must be even, found \(dim)")
        try require(positions.shape == Shape([count]), "rotary: positions must be [\(count)], found \(positions.shape)")
        try require(inverseFrequencies.shape == Shape([dim / 2]),
                    "rotary: inverseFrequencies must be [\(dim / 2)] for head dim \(dim), found \(inverseFrequencies.shape)")
        let half = dim / 2
        let out = try uninitializedHostTensor(x.shape, dtype: .f32)
        let xFloat = try floatTensor(x, threads: threads)
        let frequencies = try floatTensor(inverseFrequencies, threads: threads)
        withExtendedLifetime((xFloat, frequencies)) {
            let source = xFloat.floatPointer, destination = out.floatPointer
            let inverseFrequency = frequencies.floatPointer, position = positions.int32Pointer
            parallelChunks(count, threads: threads, workPerItem: heads * dim * 2 + half * 40) { tokens in
                // cos and sin of one token's angles, shared by all its heads.
                let table = UnsafeMutablePointer<Float>.allocate(capacity: max(dim, 1))
                defer { table.deallocate() }
                for t in tokens {
                    let p = Float(position[t])
                    for i in 0..<half {
                        let angle = p * inverseFrequency[i]
                        table[i] = cos(angle)
                        table[half + i] = sin(angle)
                    }
                    for h in 0..<heads {
                        let input = source + (t * heads + h) * dim, output = destination + (t * heads + h) * dim
                        for i in 0..<half {
                            let (first, second, c, s) = (input[i], input[half + i], table[i], table[half + i])
                            output[i] = first * c - second * s
                            output[half + i] = second * c + first * s
                        }
                    }
                }
            }
        }
        return out
    }

    /// The reference of the fused q/k/v split: the column blocks copied out, then `rotary` on q and k.
    public func rotaryQKV(_ qkv: Tensor, heads: Int, kvHeads: Int, positions: Tensor,
                          inverseFrequencies: Tensor) throws -> (query: Tensor, key: Tensor, value: Tensor) {
        let op = "rotaryQKV"
        try requireFloat(qkv, op, "qkv")
        try requireRank(qkv, 2, op, "qkv", "[T, (heads + 2 kvHeads) d]")
        try require(heads > 0 && kvHeads > 0 && qkv.shape[1] % (heads + 2 * kvHeads) == 0,
                    "rotaryQKV: qkv \(qkv.shape) does not split into \(heads) query and 2 x \(kvHeads) key/value heads")
        let (tokens, d) = (qkv.shape[0], qkv.shape[1] / (heads + 2 * kvHeads))
        let source = try floatTensor(qkv, threads: threads)
        func columns(_ first: Int, _ count: Int) throws -> Tensor {
            let out = try uninitializedHostTensor(Shape([tokens, count / d, d]), dtype: .f32)
            withExtendedLifetime(source) {
                for t in 0..<tokens {
                    (out.floatPointer + t * count).update(from: source.floatPointer + t * qkv.shape[1] + first, count: count)
                }
            }
            return out
        }
        let (qWidth, kvWidth) = (heads * d, kvHeads * d)
        return (try rotary(columns(0, qWidth), positions: positions, inverseFrequencies: inverseFrequencies),
                try rotary(columns(qWidth, kvWidth), positions: positions, inverseFrequencies: inverseFrequencies),
                try columns(qWidth + kvWidth, kvWidth))
    }

    /// silu(gate) * up, element-wise; same shapes, any float -> f32.
    public func siluMultiply(gate: Tensor, up: Tensor) throws -> Tensor {
        try elementwise(.siluMultiply, gate, up)
    }

    /// x `[M, 2F]` any float -> silu(x[:, ..<F]) * x[:, F...] `[M, F]` f32, the same arithmetic as
    /// `siluMultiply` on the two halves.
    public func siluMultiplyHalves(_ x: Tensor) throws -> Tensor {
        let op = "siluMultiplyHalves"
        try requireFloat(x, op, "x")
        try requireRank(x, 2, op, "x", "[M, 2F]")
        try require(x.shape[1] % 2 == 0, "siluMultiplyHalves: x must have an even number of columns, found \(x.shape)")
        let (rowCount, half) = (x.shape[0], x.shape[1] / 2)
        let out = try uninitializedHostTensor(Shape([rowCount, half]), dtype: .f32)
        let xFloat = try floatTensor(x, threads: threads)
        withExtendedLifetime(xFloat) {
            let source = xFloat.floatPointer, z = out.floatPointer
            parallelChunks(rowCount, threads: threads, workPerItem: half * 16) { rows in
                for row in rows {
                    let g = source + row * 2 * half, u = g + half, o = z + row * half
                    for i in 0..<half { o[i] = g[i] / (1 + exp(-g[i])) * u[i] }
                }
            }
        }
        return out
    }

    /// residual + x W^T (+ bias): `add(residual, matmul(x, weight, bias))`, exactly.
    public func matmulAdd(_ x: Tensor, weight: Tensor, bias: Tensor?, residual: Tensor) throws -> Tensor {
        try add(residual, matmul(x, weight: weight, bias: bias))
    }

    /// accumulator += x W^T (+ bias), in place, rounded to the accumulator's dtype.
    public func matmulAccumulate(_ x: Tensor, weight: Tensor, bias: Tensor?, into accumulator: Tensor) throws {
        let sum = try matmulAdd(x, weight: weight, bias: bias, residual: accumulator)  // `add` checks the shapes
        try copy(sum.dtype == accumulator.dtype ? sum : cast(sum, to: accumulator.dtype), into: accumulator)
    }

    /// silu(x) = x * sigmoid(x), element-wise; any float -> f32.
    public func silu(_ x: Tensor) throws -> Tensor {
        try elementwise(.silu, x, nil)
    }

    /// a + b, element-wise; same shapes, any float -> f32.
    public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try elementwise(.add, a, b)
    }

    /// Concatenation along the first dimension; all parts share dtype and trailing dimensions.
    /// Keeps the parts' dtype (data movement only).
    public func concatRows(_ parts: [Tensor]) throws -> Tensor {
        try require(!parts.isEmpty, "concatRows: needs at least one part, found none")
        let first = parts[0]
        try require(first.shape.rank >= 1, "concatRows: parts must have at least one dimension, found a scalar")
        for (i, part) in parts.enumerated() {
            try requireHost(part, "concatRows", "part \(i)")
            try require(part.dtype == first.dtype, "concatRows: part \(i) is \(part.dtype), part 0 is \(first.dtype)")
            try require(part.shape.rank == first.shape.rank && part.shape.withRows(0) == first.shape.withRows(0),
                        "concatRows: part \(i) has shape \(part.shape), expected [n, \(first.shape.dimensions.dropFirst().map(String.init).joined(separator: ", "))] like part 0")
        }
        let out = try uninitializedHostTensor(first.shape.withRows(parts.reduce(0) { $0 + $1.shape[0] }), dtype: first.dtype)
        var offset = 0
        for part in parts {
            out.hostPointer.advanced(by: offset).copyMemory(from: part.hostPointer, byteCount: part.byteCount)
            offset += part.byteCount
        }
        return out
    }

    /// 2-D parts `[T, n_i]` of one dtype -> `[T, sum n_i]`, keeping the dtype.
    public func concatColumns(_ parts: [Tensor]) throws -> Tensor {
        try require(!parts.isEmpty, "concatColumns: needs at least one part, found none")
        let rowCount = parts[0].shape.rank == 2 ? parts[0].shape[0] : -1
        for (i, part) in parts.enumerated() {
            try requireHost(part, "concatColumns", "part \(i)")
            try requireRank(part, 2, "concatColumns", "part \(i)", "[T, n]")
            try require(part.shape[0] == rowCount, "concatColumns: part \(i) has \(part.shape[0]) rows, part 0 has \(rowCount)")
            try require(part.dtype == parts[0].dtype, "concatColumns: part \(i) is \(part.dtype), part 0 is \(parts[0].dtype)")
        }
        let elementBytes = parts[0].dtype.byteSize
        let totalColumns = parts.reduce(0) { $0 + $1.shape[1] }
        let out = try uninitializedHostTensor(Shape([rowCount, totalColumns]), dtype: parts[0].dtype)
        let outRowBytes = totalColumns * elementBytes
        var columnByte = 0
        for part in parts {
            let partRowBytes = part.shape[1] * elementBytes
            let source = part.hostPointer, destination = out.hostPointer + columnByte
            parallelChunks(rowCount, threads: threads, workPerItem: partRowBytes / 8 + 1) { rows in
                for row in rows {
                    (destination + row * outRowBytes).copyMemory(from: source + row * partRowBytes, byteCount: partRowBytes)
                }
            }
            columnByte += partRowBytes
        }
        return out
    }

    // MARK: helpers

    /// `value` rounded to `dtype`'s precision (round to nearest even) and widened back to fp32.
    @inline(__always)
    static func round(_ value: Float, to dtype: DType) -> Float {
        switch dtype {
        case .bf16: FloatBits.float(fromBF16: FloatBits.bf16(fromFloat: value))
        case .f16: FloatBits.float(fromF16: FloatBits.f16(fromFloat: value))
        default: value
        }
    }

    private enum ElementwiseOp: String {
        case silu, siluMultiply, add

        var operandNames: (String, String) {
            switch self {
            case .silu: ("x", "")
            case .siluMultiply: ("gate", "up")
            case .add: ("a", "b")
            }
        }
    }

    /// An element-wise fp32 op over one or two same-shaped float tensors -> f32 of a's shape.
    /// One loop per op (not a closure per element) so the compiler vectorises `add`.
    private func elementwise(_ op: ElementwiseOp, _ a: Tensor, _ b: Tensor?) throws -> Tensor {
        let names = op.operandNames
        try requireFloat(a, op.rawValue, names.0)
        if let b {
            try requireFloat(b, op.rawValue, names.1)
            try require(a.shape == b.shape,
                        "\(op.rawValue): \(names.0) \(a.shape) and \(names.1) \(b.shape) must have the same shape")
        }
        let out = try uninitializedHostTensor(a.shape, dtype: .f32)
        let aFloat = try floatTensor(a, threads: threads)
        let bFloat = try b.map { try floatTensor($0, threads: threads) }
        withExtendedLifetime((aFloat, bFloat)) {
            let x = aFloat.floatPointer, y = bFloat?.floatPointer ?? aFloat.floatPointer, z = out.floatPointer
            parallelChunks(a.elementCount, threads: threads, workPerItem: op == .add ? 2 : 16) { range in
                switch op {
                case .silu:
                    for i in range { z[i] = x[i] / (1 + exp(-x[i])) }
                case .siluMultiply:
                    for i in range { z[i] = x[i] / (1 + exp(-x[i])) * y[i] }
                case .add:
                    for i in range { z[i] = x[i] + y[i] }
                }
            }
        }
        return out
    }
}

/// Sum of squares of `count` floats, in fp32 over 16 interleaved lanes (vectorised; the lanes
/// also make the sum more accurate than one running total).
@inline(__always)
func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD16<Float>(repeating: 0)
    var i = 0
    while i + 16 <= count {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        lanes += v * v
        i += 16
    }
    var total = lanes.sum()
    while i < count {
        total += x[i] * x[i]
        i += 1
    }
    return total
}
