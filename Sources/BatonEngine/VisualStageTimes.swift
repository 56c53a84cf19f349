import BatonTensor
import Foundation

/// The stages of a visual request's time to first token on every rank whose thread runs in this
/// process (`baton bench video`): decoding and preprocessing the rank's share of the frames, the
/// vision tower over it, the exchange of visual embeddings, and the language model's prefill up to
/// the first token. Unlike `RankTimers`, nothing inside the language model is measured: a stage
/// ends with one synchronisation of the rank's device, so the timed runs themselves can record it.
public final class VisualStageTimes: @unchecked Sendable {
    public enum Stage: String, CaseIterable, Sendable {
        /// Decoding the clip's frames (random frames are made untimed), resizing and patchifying
        /// them, and uploading the patch rows: what of it the tower did not hide (a share is encoded
        /// in chunks while a worker makes the next chunk's rows, `BATON_VISION_CHUNKS`).
        case preprocess = "decode_preprocess"
        /// The vision tower over the rank's share of the temporal units.
        case vision = "vision_tower"
        /// Sending and receiving visual embeddings (`RowExchange`), waiting for the other ranks'
        /// towers included; nothing on one rank.
        case exchange
        /// What the rank's time to first token leaves after the stages above: its share of the
        /// language model's prefill, the query pass, the first token's logits and their broadcast.
        case prefill = "lm_prefill"
    }

    private let lock = NSLock()
    private var seconds: [Int: [Stage: Double]] = [:]
    private var firstToken: [Int: Double] = [:]

    public init() {}

    /// Runs `body` as `stage` of rank `rank` and synchronises `backend` after it, so that the
    /// device work it queued counts in that stage (each stage starts where the last one synchronised).
    func measure<T>(_ stage: Stage, rank: Int, backend: any Backend, _ body: () throws -> T) throws -> T {
        let start = MonotonicClock.now()
        let result = try body()
        try backend.synchronize()
        let elapsed = MonotonicClock.now() - start
        lock.withLock { seconds[rank, default: [:]][stage, default: 0] += elapsed }
        return result
    }

    /// Rank `rank` learnt the first token `seconds` after its request started.
    func recordFirstToken(rank: Int, seconds elapsed: Double) {
        lock.withLock { firstToken[rank] = elapsed }
    }

    /// Each stage's seconds on ranks `0..<count` by the stage's name (every rank has every name; a
    /// stage a rank did not run is 0), nil for a rank that did not run in this process. Read after
    /// the run.
    public func byRank(count: Int) -> [[String: Double]?] {
        lock.withLock {
            (0..<count).map { rank in
                guard let total = firstToken[rank] else { return nil }
                let measured = seconds[rank] ?? [:]
                let before = measured.values.reduce(0, +)
                var named = Dictionary(uniqueKeysWithValues: Stage.allCases.map { ($0.rawValue, measured[$0] ?? 0) })
                named[Stage.prefill.rawValue] = max(0, total - before)
                return named
            }
        }
    }
}

/// `body` measured as `stage` of `rank` when `times` is given, else just run (no synchronisation).
func timedStage<T>(
    _ times: VisualStageTimes?, _ stage: VisualStageTimes.Stage, rank: Int, backend: any Backend,
    _ body: () throws -> T
) throws -> T {
    guard let times else { return try body() }
    return try times.measure(stage, rank: rank, backend: backend, body)
}
