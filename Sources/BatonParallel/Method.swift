import BatonTensor

/// The sequence-parallel methods Baton runs, by their command-line names.
///
/// Each method lives in one file of `Methods/` as a type conforming to `ParallelMethod` (its
/// layout over ranks, its defaults and its rank strategy); `definition` is the registry. Adding a
/// method is one file, one case here and one line in `definition`.
public enum Method: String, Sendable, CaseIterable {
    case dense, ring, zigzag, star, apb, spava

    /// The registry: the type that defines each method.
    public var definition: any ParallelMethod.Type {
        switch self {
        case .dense: Dense.self
        case .ring: Ring.self
        case .zigzag: ZigZagRing.self
        case .star: Star.self
        case .apb: APB.self
        case .spava: Spava.self
        }
    }

    /// Whether the method reproduces single-GPU attention exactly (up to rounding).
    public var isExact: Bool { definition.isExact }

    /// The method called `name` (`dense`, `ring`, `zigzag`, `star`, `apb`, `spava`, any case), or
    /// an error naming `option` and listing them. The one parser of method names.
    public static func named(_ name: String, option: String = "--method") throws -> Method {
        guard let method = Method(rawValue: name.lowercased()) else {
            throw BatonError.invalidArgument(
                "\(option) must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'")
        }
        return method
    }
}
