/// Every failure Baton reports: what went wrong, where (file, field or call), what was
/// expected and what was found. The CLI prints `description` on one line and exits non-zero.
public struct BatonError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case invalidArgument = "invalid argument"
        case invalidModel = "invalid model"
        case unsupported = "unsupported"
        case io = "I/O error"
        case shapeMismatch = "shape mismatch"
        case outOfMemory = "out of memory"
        case cuda = "CUDA error"
        case nccl = "NCCL error"
        case communication = "communication error"
        case timeout = "timeout"
        case notAvailable = "not available"
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }

    public static func invalidArgument(_ m: String) -> BatonError { .init(.invalidArgument, m) }
    public static func invalidModel(_ m: String) -> BatonError { .init(.invalidModel, m) }
    public static func unsupported(_ m: String) -> BatonError { .init(.unsupported, m) }
    public static func shapeMismatch(_ m: String) -> BatonError { .init(.shapeMismatch, m) }
}

/// Throws `BatonError.shapeMismatch` with `message` unless `condition` holds.
@inlinable
public func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw BatonError.shapeMismatch(message()) }
}
