import Foundation

/// Set once, read from the engine's thread at every step: the client went away, or a stop
/// string matched. The engine checks it through `GenerationOptions.isCancelled`.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false

    var isSet: Bool { lock.withLock { set } }

    func cancel() { lock.withLock { set = true } }
}
