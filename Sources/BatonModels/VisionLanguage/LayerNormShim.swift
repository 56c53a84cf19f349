import BatonTensor

// TEMPORARY until the backend's layerNorm lands (branch lowlevel): a host computation.
extension Backend {
    func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, epsilon: Float) throws -> Tensor {
        let values = try floats(x), w = try floats(weight), b = try floats(bias)
        let (rows, columns) = (x.shape.rows, x.shape[1])
        var out = [Float](repeating: 0, count: values.count)
        for r in 0..<rows {
            var mean = 0.0, square = 0.0
            for c in 0..<columns { mean += Double(values[r * columns + c]) }
            mean /= Double(columns)
            for c in 0..<columns { let d = Double(values[r * columns + c]) - mean; square += d * d }
            let inv = 1 / (square / Double(columns) + Double(epsilon)).squareRoot()
            for c in 0..<columns {
                out[r * columns + c] = Float((Double(values[r * columns + c]) - mean) * inv) * w[c] + b[c]
            }
        }
        return try tensor(out, shape: x.shape, dtype: x.dtype)
    }
}
