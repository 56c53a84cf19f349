/// Cuts generated text at the first stop string, holding back any tail that may be the start of
/// one, so that the text handed out (streamed or whole) never contains a stop string or any part
/// of the one that matched.
///
/// Works on UTF-8 bytes: a valid UTF-8 stop string matches valid UTF-8 text only at character
/// boundaries, and a held tail starts with a stop string's first byte, a character's first
/// byte, so every piece handed out is whole characters.
public struct StopStringFilter: Sendable {
    private let stops: [[UInt8]]
    /// Text received but not yet handed out: a possible start of a stop string.
    private var held: [UInt8] = []
    public private(set) var matched = false

    public init(_ stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }.map { Array($0.utf8) }
    }

    /// Takes newly decoded text; returns what may be handed out now. After a match this returns
    /// the text before the stop string and then only "".
    public mutating func push(_ text: String) -> String {
        guard !matched else { return "" }
        held += text.utf8
        if let cut = firstMatch() {
            matched = true
            defer { held = [] }
            return String(decoding: held[..<cut], as: UTF8.self)
        }
        let keep = longestTailStartingAStop()
        let out = String(decoding: held[..<(held.count - keep)], as: UTF8.self)
        held.removeFirst(held.count - keep)
        return out
    }

    /// At the end of generation: the held tail (it did not become a stop string).
    public mutating func finish() -> String {
        defer { held = [] }
        return matched ? "" : String(decoding: held, as: UTF8.self)
    }

    /// Where the earliest stop string starts in `held`.
    private func firstMatch() -> Int? {
        guard !stops.isEmpty, !held.isEmpty else { return nil }
        for start in held.indices {
            for stop in stops where held.count - start >= stop.count {
                if held[start..<start + stop.count].elementsEqual(stop) { return start }
            }
        }
        return nil
    }

    /// The length of the longest tail of `held` that is a proper prefix of some stop string.
    private func longestTailStartingAStop() -> Int {
        var best = 0
        for stop in stops {
            for length in stride(from: min(stop.count - 1, held.count), to: best, by: -1)
            where held[(held.count - length)...].elementsEqual(stop[..<length]) {
                best = length
                break
            }
        }
        return best
    }
}
