/// One rank's KV cache: per layer, post-RoPE keys and values `[rows, Hkv, d]` in the
/// activation dtype, stored in buffers that grow by doubling so decode appends are cheap.
/// Which rows a rank keeps is the attention strategy's decision, never the model's.
public final class KVCache: @unchecked Sendable {
    public let backend: any Backend
    public let kvHeads: Int
    public let headDim: Int
    private var keyBuffers: [Tensor?]
    private var valueBuffers: [Tensor?]
    private var lengths: [Int]

    public init(backend: any Backend, layers: Int, kvHeads: Int, headDim: Int) {
        self.backend = backend
        self.kvHeads = kvHeads
        self.headDim = headDim
        keyBuffers = Array(repeating: nil, count: layers)
        valueBuffers = Array(repeating: nil, count: layers)
        lengths = Array(repeating: 0, count: layers)
    }

    public var layerCount: Int { lengths.count }

    /// Rows cached for `layer`.
    public func length(layer: Int) -> Int { lengths[layer] }

    /// Keys and values cached for `layer`, `[length, Hkv, d]` views (empty tensors if none).
    public func keysAndValues(layer: Int) throws -> (key: Tensor, value: Tensor) {
        let n = lengths[layer]
        guard let k = keyBuffers[layer], let v = valueBuffers[layer] else {
            let empty = try backend.empty(Shape([0, kvHeads, headDim]), dtype: backend.activationDType)
            return (empty, empty)
        }
        return (k.rows(0..<n), v.rows(0..<n))
    }

    /// Appends rows `[n, Hkv, d]` of keys and values to `layer`.
    public func append(layer: Int, key: Tensor, value: Tensor) throws {
        try require(
            key.shape == value.shape && key.shape.rank == 3 && key.shape[1] == kvHeads && key.shape[2] == headDim,
            "KV cache append: expected [n, \(kvHeads), \(headDim)] keys and values, got \(key.shape) and \(value.shape)"
        )
        let n = key.shape[0]
        if n == 0 { return }
        try reserve(layer: layer, rows: lengths[layer] + n)
        let start = lengths[layer]
        try backend.copy(key, into: keyBuffers[layer]!.rows(start..<start + n))
        try backend.copy(value, into: valueBuffers[layer]!.rows(start..<start + n))
        lengths[layer] += n
    }

    /// Makes room for `rows` rows in `layer` without changing its contents.
    public func reserve(layer: Int, rows: Int) throws {
        let capacity = keyBuffers[layer]?.shape[0] ?? 0
        if rows <= capacity { return }
        let newCapacity = max(rows, capacity * 2, 16)
        let dtype = backend.activationDType
        let newKeys = try backend.empty(Shape([newCapacity, kvHeads, headDim]), dtype: dtype)
        let newValues = try backend.empty(Shape([newCapacity, kvHeads, headDim]), dtype: dtype)
        let n = lengths[layer]
        if n > 0, let k = keyBuffers[layer], let v = valueBuffers[layer] {
            try backend.copy(k.rows(0..<n), into: newKeys.rows(0..<n))
            try backend.copy(v.rows(0..<n), into: newValues.rows(0..<n))
        }
        keyBuffers[layer] = newKeys
        valueBuffers[layer] = newValues
    }

    /// Total rows over all layers (for memory reports).
    public var totalRows: Int { lengths.reduce(0, +) }
}
