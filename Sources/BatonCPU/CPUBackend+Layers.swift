import BatonTensor
import Foundation

extension CPUBackend {
    /// table `[V, D]` any float, ids `[T]` i32 -> `[T, D]` f32. An id outside `0..<V` throws.
    public func embedding(table: Tensor, ids: Tensor) throws -> Tensor {
        try requireHost(["table": table, "ids": ids], "embedding")
        let (vocabulary, width, count) = try OpShapes.embedding(table: table, ids: ids)
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
        try requireHost(["x": x, "weight": weight], "rmsNorm")
        let (rowCount, width) = try OpShapes.rmsNorm(x, weight: weight)
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
                        for i in 0..<width {
                            output[i] = CPUBackend.round(input[i] * inverseRMS, to: roundTo) * scale[i]
                        }
                    }
                }
            }
        }
        return out
    }

    /// x `[N, C]` any float, weight and bias `[C]` any float -> `[N, C]` in x's dtype (f32 for the CPU's
    /// activations). torch's LayerNorm: each row's mean, then its biased variance as the mean squared
    /// deviation from that mean (two passes, so a row far from zero mean loses nothing to the
    /// cancellation of E[x^2] - mean^2), all fp32; the affine result is rounded once to x's dtype.
    public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, epsilon: Float) throws -> Tensor {
        try requireHost(["x": x, "weight": weight, "bias": bias], "layerNorm")
        let (rowCount, width) = try OpShapes.layerNorm(x, weight: weight, bias: bias)
        let out = try uninitializedHostTensor(x.shape, dtype: .f32)
        let xFloat = try floatTensor(x, threads: threads)
        let weightFloat = try floatTensor(weight, threads: threads)
        let biasFloat = try floatTensor(bias, threads: threads)
        withExtendedLifetime((xFloat, weightFloat, biasFloat)) {
            let source = xFloat.floatPointer, destination = out.floatPointer
            let scale = weightFloat.floatPointer, shift = biasFloat.floatPointer
            parallelChunks(rowCount, threads: threads, workPerItem: width * 4) { rows in
                for row in rows {
                    let input = source + row * width, output = destination + row * width
                    let mean = sumOfElements(input, count: width) / Float(width)
                    let variance = sumOfSquaredDeviations(input, from: mean, count: width) / Float(width)
                    let inverseDeviation = 1 / (variance + epsilon).squareRoot()
                    for i in 0..<width { output[i] = (input[i] - mean) * inverseDeviation * scale[i] + shift[i] }
                }
            }
        }
        return x.dtype == .f32 ? out : try cast(out, to: x.dtype)
    }

    /// x `[T, heads, d]` any float, positions `[T]` i32, inverseFrequencies `[d/2]` any float -> f32.
    /// Hugging Face rotate-half: with angle = position * invFreq[i] (fp32 product, as HF computes it),
    /// out[i] = x[i] cos - x[i + d/2] sin and out[i + d/2] = x[i + d/2] cos + x[i] sin.
    public func rotary(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws -> Tensor {
        try requireHost(["x": x, "positions": positions, "inverseFrequencies": inverseFrequencies], "rotary")
        let (_, _, dim) = try OpShapes.rotary(x, positions: positions, inverseFrequencies: inverseFrequencies)
        return try rotateHalf(
            x, positions: positions, rowOfFrequency: [Int](repeating: 0, count: dim / 2),
            inverseFrequencies: inverseFrequencies)
    }

    /// The reference of the fused q/k/v split: the column blocks copied out, then `rotary` on q and k.
    public func rotaryQKV(
        _ qkv: Tensor, heads: Int, kvHeads: Int, positions: Tensor,
        inverseFrequencies: Tensor
    ) throws -> (query: Tensor, key: Tensor, value: Tensor) {
        try requireHost(["qkv": qkv, "positions": positions, "inverseFrequencies": inverseFrequencies], "rotaryQKV")
        let (tokens, d) = try OpShapes.rotaryQKV(
            qkv, heads: heads, kvHeads: kvHeads, positions: positions,
            inverseFrequencies: inverseFrequencies)
        let source = try floatTensor(qkv, threads: threads)
        func columns(_ first: Int, _ count: Int) throws -> Tensor {
            let out = try uninitializedHostTensor(Shape([tokens, count / d, d]), dtype: .f32)
            withExtendedLifetime(source) {
                for t in 0..<tokens {
                    (out.floatPointer + t * count).update(
                        from: source.floatPointer + t * qkv.shape[1] + first, count: count)
                }
            }
            return out
        }
        let (qWidth, kvWidth) = (heads * d, kvHeads * d)
        return (
            try rotary(columns(0, qWidth), positions: positions, inverseFrequencies: inverseFrequencies),
            try rotary(columns(qWidth, kvWidth), positions: positions, inverseFrequencies: inverseFrequencies),
            try columns(qWidth + kvWidth, kvWidth)
        )
    }

    /// silu(gate) * up, element-wise; same shapes, any float -> f32.
    public func siluMultiply(gate: Tensor, up: Tensor) throws -> Tensor {
        try elementwise(.siluMultiply, gate, up)
    }

    /// x `[M, 2F]` any float -> silu(x[:, ..<F]) * x[:, F...] `[M, F]` f32, the same arithmetic as
    /// `siluMultiply` on the two halves.
    public func siluMultiplyHalves(_ x: Tensor) throws -> Tensor {
        try requireHost(["x": x], "siluMultiplyHalves")
        let (rowCount, half) = try OpShapes.siluMultiplyHalves(x)
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
        for (i, part) in parts.enumerated() { try requireHost(part, "concatRows", "part \(i)") }
        let shape = try OpShapes.concatRows(parts)
        let first = parts[0]
        let out = try uninitializedHostTensor(shape, dtype: first.dtype)
        var offset = 0
        for part in parts {
            out.hostPointer.advanced(by: offset).copyMemory(from: part.hostPointer, byteCount: part.byteCount)
            offset += part.byteCount
        }
        return out
    }

    /// 2-D parts `[T, n_i]` of one dtype -> `[T, sum n_i]`, keeping the dtype.
    public func concatColumns(_ parts: [Tensor]) throws -> Tensor {
        for (i, part) in parts.enumerated() { try requireHost(part, "concatColumns", "part \(i)") }
        let shape = try OpShapes.concatColumns(parts)
        let (rowCount, totalColumns) = (shape[0], shape[1])
        let elementBytes = parts[0].dtype.byteSize
        let out = try uninitializedHostTensor(Shape([rowCount, totalColumns]), dtype: parts[0].dtype)
        let outRowBytes = totalColumns * elementBytes
        var columnByte = 0
        for part in parts {
            let partRowBytes = part.shape[1] * elementBytes
            let source = part.hostPointer, destination = out.hostPointer + columnByte
            parallelChunks(rowCount, threads: threads, workPerItem: partRowBytes / 8 + 1) { rows in
                for row in rows {
                    (destination + row * outRowBytes).copyMemory(
                        from: source + row * partRowBytes, byteCount: partRowBytes)
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
        try requireHost(a, op.rawValue, names.0)
        if let b { try requireHost(b, op.rawValue, names.1) }
        try OpShapes.elementwise(op.rawValue, a, b, names: names)
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

/// Sum of `count` floats, in fp32 over 16 interleaved lanes (as `sumOfSquares`).
@inline(__always)
func sumOfElements(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD16<Float>(repeating: 0)
    var i = 0
    while i + 16 <= count {
        lanes += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        i += 16
    }
    var total = lanes.sum()
    while i < count {
        total += x[i]
        i += 1
    }
    return total
}

/// Sum of `(x[i] - center)^2` over `count` floats, in fp32 over 16 interleaved lanes.
@inline(__always)
func sumOfSquaredDeviations(_ x: UnsafePointer<Float>, from center: Float, count: Int) -> Float {
    var lanes = SIMD16<Float>(repeating: 0)
    let centers = SIMD16<Float>(repeating: center)
    var i = 0
    while i + 16 <= count {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - centers
        lanes += v * v
        i += 16
    }
    var total = lanes.sum()
    while i < count {
        total += (x[i] - center) * (x[i] - center)
        i += 1
    }
    return total
}

/// Sum of squares of `count` floats, in fp32 over 16 interleaved lanes (vectorised; the lanes
/// also make the sum more accurate than one running total).
@inline(__always)
func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
    // x - 0 is x exactly, so this is the same sum in the same lanes.
    sumOfSquaredDeviations(x, from: 0, count: count)
}
