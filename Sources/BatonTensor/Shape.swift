/// A tensor's dimensions, outermost first. `[tokens, heads, headDim]` reads as rows of
/// `heads * headDim` elements.
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public var dimensions: [Int]

    public init(_ dimensions: [Int]) { self.dimensions = dimensions }
    public init(arrayLiteral elements: Int...) { self.dimensions = elements }

    public var rank: Int { dimensions.count }
    public var elementCount: Int { dimensions.reduce(1, *) }
    public subscript(_ axis: Int) -> Int { dimensions[axis] }

    /// Number of rows (first dimension); 1 for a scalar.
    public var rows: Int { dimensions.first ?? 1 }
    /// Elements per row (product of all dimensions but the first).
    public var rowSize: Int { dimensions.dropFirst().reduce(1, *) }

    /// The same shape with a new first dimension.
    public func withRows(_ rows: Int) -> Shape {
        var d = dimensions
        if d.isEmpty { d = [rows] } else { d[0] = rows }
        return Shape(d)
    }

    public var description: String { "[" + dimensions.map(String.init).joined(separator: ", ") + "]" }
}
