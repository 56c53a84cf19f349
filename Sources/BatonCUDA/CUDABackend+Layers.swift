import BatonTensor
import CCUDA

/// Layer ops: one kernel each from Kernels/ops.cu (the CPU twins are in CPUBackend+Layers).
extension CUDABackend {
    public func embedding(table: Tensor, ids: Tensor) throws -> Tensor {
        try checkOnDevice(table, "embedding"); try checkOnDevice(ids, "embedding")
        let (V, D, T) = try OpShapes.embedding(table: table, ids: ids)
        let out = try empty(Shape([T, D]), dtype: activationDType)
        try launchElementwise(
            "ops.cu", "embedding_rows", count: T * D,
            [
                .tensor(table), .int(table.dtype.kernelCode), .tensor(ids), .tensor(out),
                .int(activationDType.kernelCode), .int64(T), .int64(D), .int64(V)
            ])
        return out
    }

    public func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float) throws -> Tensor {
        try checkOnDevice(x, "rmsNorm"); try checkOnDevice(weight, "rmsNorm weight")
        let (rows, width) = try OpShapes.rmsNorm(x, weight: weight)
        try require(x.shape.rank == 2, "rmsNorm: the CUDA kernel takes x [M, D], got \(x.shape)")
        let out = try empty(x.shape, dtype: activationDType)
        if x.elementCount == 0 { return out }
        try launch(
            "ops.cu", "rms_norm_rows", grid: (rows, 1, 1), block: 256,
            [
                .tensor(x), .int(x.dtype.kernelCode), .tensor(weight), .int(weight.dtype.kernelCode), .tensor(out),
                .int(activationDType.kernelCode), .int64(width), .float(epsilon)
            ])
        return out
    }

    /// One 256-thread block per row (`layer_norm_rows`), any width; the output keeps x's dtype.
    public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, epsilon: Float) throws -> Tensor {
        try checkOnDevice(x, "layerNorm"); try checkOnDevice(weight, "layerNorm weight")
        try checkOnDevice(bias, "layerNorm bias")
        let (rows, width) = try OpShapes.layerNorm(x, weight: weight, bias: bias)
        let out = try empty(x.shape, dtype: x.dtype)
        if x.elementCount == 0 { return out }
        try launch(
            "ops.cu", "layer_norm_rows", grid: (rows, 1, 1), block: 256,
            [
                .tensor(x), .int(x.dtype.kernelCode), .tensor(weight), .int(weight.dtype.kernelCode), .tensor(bias),
                .int(bias.dtype.kernelCode), .tensor(out), .int(x.dtype.kernelCode), .int64(width), .float(epsilon)
            ])
        return out
    }

    public func rotary(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws -> Tensor {
        try checkOnDevice(x, "rotary"); try checkOnDevice(positions, "rotary positions")
        try checkOnDevice(inverseFrequencies, "rotary inverseFrequencies")
        let (T, heads, d) = try OpShapes.rotary(x, positions: positions, inverseFrequencies: inverseFrequencies)
        try require(
            inverseFrequencies.dtype == .f32,
            "rotary: the CUDA kernel takes f32 inverseFrequencies, got \(inverseFrequencies.dtype)")
        let out = try empty(x.shape, dtype: activationDType)
        // rotary_qkv with no key or value heads: sine and cosine once per (token, pair) for all heads.
        try launchElementwise(
            "ops.cu", "rotary_qkv", count: T * d / 2,
            [
                .tensor(x), .int(x.dtype.kernelCode), .tensor(positions), .tensor(inverseFrequencies),
                .tensor(out), .tensor(out), .tensor(out), .int(activationDType.kernelCode),
                .int64(T), .int(heads), .int(0), .int(d)
            ])
        return out
    }

    public func rotaryQKV(
        _ qkv: Tensor, heads: Int, kvHeads: Int, positions: Tensor,
        inverseFrequencies: Tensor
    ) throws -> (query: Tensor, key: Tensor, value: Tensor) {
        try checkOnDevice(qkv, "rotaryQKV"); try checkOnDevice(positions, "rotaryQKV positions")
        try checkOnDevice(inverseFrequencies, "rotaryQKV inverseFrequencies")
        let (T, d) = try OpShapes.rotaryQKV(
            qkv, heads: heads, kvHeads: kvHeads, positions: positions,
            inverseFrequencies: inverseFrequencies)
        try require(
            inverseFrequencies.dtype == .f32,
            "rotaryQKV: the CUDA kernel takes f32 inverseFrequencies, got \(inverseFrequencies.dtype)")
        let query = try empty(Shape([T, heads, d]), dtype: activationDType)
        let key = try empty(Shape([T, kvHeads, d]), dtype: activationDType)
        let value = try empty(Shape([T, kvHeads, d]), dtype: activationDType)
        try launchElementwise(
            "ops.cu", "rotary_qkv", count: T * d / 2,
            [
                .tensor(qkv), .int(qkv.dtype.kernelCode), .tensor(positions), .tensor(inverseFrequencies),
                .tensor(query), .tensor(key), .tensor(value), .int(activationDType.kernelCode),
                .int64(T), .int(heads), .int(kvHeads), .int(d)
            ])
        return (query, key, value)
    }

    public func siluMultiply(gate: Tensor, up: Tensor) throws -> Tensor {
        try checkOnDevice(gate, "siluMultiply"); try checkOnDevice(up, "siluMultiply")
        try OpShapes.elementwise("siluMultiply", gate, up, names: ("gate", "up"))
        let out = try empty(gate.shape, dtype: activationDType)
        try launchElementwise(
            "ops.cu", "silu_multiply", count: gate.elementCount,
            [
                .tensor(gate), .int(gate.dtype.kernelCode), .tensor(up), .int(up.dtype.kernelCode),
                .tensor(out), .int(activationDType.kernelCode), .int64(gate.elementCount)
            ])
        return out
    }

    public func siluMultiplyHalves(_ x: Tensor) throws -> Tensor {
        try checkOnDevice(x, "siluMultiplyHalves")
        let (M, F) = try OpShapes.siluMultiplyHalves(x)
        let out = try empty(Shape([M, F]), dtype: activationDType)
        if x.dtype == .bf16 && activationDType == .bf16 && F % 8 == 0 && x.address % 16 == 0 && out.address % 16 == 0 {
            try launchElementwise(
                "ops.cu", "silu_multiply_halves_bf16x8", count: M * F / 8,
                [.tensor(x), .tensor(out), .int64(M), .int64(F / 8)])
        } else {
            try launchElementwise(
                "ops.cu", "silu_multiply_halves", count: M * F,
                [
                    .tensor(x), .int(x.dtype.kernelCode), .tensor(out), .int(activationDType.kernelCode),
                    .int64(M), .int64(F)
                ])
        }
        return out
    }

    public func silu(_ x: Tensor) throws -> Tensor {
        try checkOnDevice(x, "silu")
        try OpShapes.elementwise("silu", x, nil, names: ("x", ""))
        let out = try empty(x.shape, dtype: activationDType)
        try launchElementwise(
            "ops.cu", "silu_values", count: x.elementCount,
            [
                .tensor(x), .int(x.dtype.kernelCode), .tensor(out), .int(activationDType.kernelCode),
                .int64(x.elementCount)
            ])
        return out
    }

    public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try checkOnDevice(a, "add"); try checkOnDevice(b, "add")
        try OpShapes.elementwise("add", a, b, names: ("a", "b"))
        let out = try empty(a.shape, dtype: activationDType)
        try launchElementwise(
            "ops.cu", "add_values", count: a.elementCount,
            [
                .tensor(a), .int(a.dtype.kernelCode), .tensor(b), .int(b.dtype.kernelCode), .tensor(out),
                .int(activationDType.kernelCode), .int64(a.elementCount)
            ])
        return out
    }

    public func concatRows(_ parts: [Tensor]) throws -> Tensor {
        for part in parts { try checkOnDevice(part, "concatRows") }
        let out = try empty(try OpShapes.concatRows(parts), dtype: parts[0].dtype)
        var row = 0
        for part in parts {
            try copy(part, into: out.rows(row..<row + part.shape.rows))
            row += part.shape.rows
        }
        return out
    }

    public func concatColumns(_ parts: [Tensor]) throws -> Tensor {
        for part in parts { try checkOnDevice(part, "concatColumns") }
        let shape = try OpShapes.concatColumns(parts)
        let (T, total) = (shape[0], shape[1])
        let out = try empty(shape, dtype: parts[0].dtype)
        let size = parts[0].dtype.byteSize
        var column = 0
        for part in parts {
            try launchElementwise(
                "ops.cu", "copy_columns", count: part.byteCount,
                [
                    .tensor(part), .tensor(out), .int64(T), .int64(part.shape[1] * size),
                    .int64(total * size), .int64(column * size)
                ])
            column += part.shape[1]
        }
        return out
    }
}
