import BatonCPU
import BatonComm
import BatonTensor
import Foundation
import XCTest
@testable import BatonParallel

/// Deterministic q/k/v vectors per token id (context ids `0..<N`, query ids `N..<N+Q`, decode
/// ids after), so a token has the same vectors on every rank and wherever it appears (anchor
/// copies, APB's inserted query). No RoPE at the single-layer level.
struct TokenVectors: Sendable {
    let heads: Int, kvHeads: Int, headDim: Int
    /// Keys replaced for some tokens (planted needles).
    var keyOverrides: [Int32: [Float]] = [:]

    var group: Int { heads / kvHeads }
    var scale: Double { 1 / Double(headDim).squareRoot() }

    private func values(_ token: Int32, kind: UInt64, count: Int) -> [Float] {
        var state = UInt64(bitPattern: Int64(token)) &* 0x9E37_79B9_7F4A_7C15 &+ kind &* 0xD1B5_4A32_D192_ED03
        return (0..<count).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(Double(z >> 11) / Double(1 << 53) * 2 - 1)
        }
    }

    func query(_ token: Int32) -> [Float] { values(token, kind: 1, count: heads * headDim) }
    func key(_ token: Int32) -> [Float] { keyOverrides[token] ?? values(token, kind: 2, count: kvHeads * headDim) }
    func value(_ token: Int32) -> [Float] { values(token, kind: 3, count: kvHeads * headDim) }

    /// The single-layer attention input of `tokens`.
    func input(_ tokens: [Int32], layer: Int = 0) -> AttentionInput {
        let n = tokens.count
        return AttentionInput(
            layer: layer,
            query: Tensor(tokens.flatMap(query), shape: [n, heads, headDim]),
            key: Tensor(tokens.flatMap(key), shape: [n, kvHeads, headDim]),
            value: Tensor(tokens.flatMap(value), shape: [n, kvHeads, headDim]))
    }

    /// fp64 softmax attention of query head `head` of `token` over the keys of `keys`
    /// (tokens, in any order) of KV head `head / G` -> `[d]`.
    func naiveAttention(_ token: Int32, head: Int, keys: [Int32]) -> [Double] {
        let q = query(token), kvHead = head / group, d = headDim
        let scores = keys.map { key -> Double in
            let k = self.key(key)
            return (0..<d).reduce(0.0) { $0 + Double(q[head * d + $1]) * Double(k[kvHead * d + $1]) } * scale
        }
        let top = scores.max() ?? 0
        let weights = scores.map { exp($0 - top) }, total = weights.reduce(0, +)
        var out = [Double](repeating: 0, count: d)
        for (j, key) in keys.enumerated() {
            let v = value(key)
            for i in 0..<d { out[i] += weights[j] / total * Double(v[kvHead * d + i]) }
        }
        return out
    }

    /// Spava's query-aware score of `key` for KV head `kvHead` given the query `probe` tokens (fp64).
    func queryAwareScore(key: Int32, kvHead: Int, probe: [Int32]) -> Double {
        let k = self.key(key), d = headDim
        var total = 0.0
        for t in probe {
            let q = query(t)
            for g in 0..<group {
                let h = kvHead * group + g
                for i in 0..<d { total += Double(q[h * d + i]) * Double(k[kvHead * d + i]) }
            }
        }
        return total / Double(probe.count * group)
    }
}

/// What one rank produced in a single-layer run.
struct RankRun: Sendable {
    var prefill: [Float]
    var query: [Float] = []
    var decode: [[Float]] = []
    /// Token ids of the passing block each KV head saw in the last prefill (APB/Spava), per virtual host.
    var passing: [[[Int32]]] = []
}

/// Runs every rank of `plan` on its own thread: prefill, the query pass if the plan has one,
/// then `decodeTokens` one at a time.
func runSingleLayer(
    _ plan: Plan, _ vectors: TokenVectors, decodeTokens: [Int32] = [],
    scorer: (@Sendable () -> any PassingScorer)? = nil
) throws -> [RankRun] {
    try runRanks(plan.worldSize, timeout: 30) { rank, comm in
        let backend = CPUBackend(threads: 1)
        let strategy = try makeStrategy(plan: plan, communicator: comm, headDim: vectors.headDim, scorer: scorer?())
        let cache = KVCache(backend: backend, layers: 1, kvHeads: vectors.kvHeads, headDim: vectors.headDim)
        let layout = plan.ranks[rank]
        (strategy as? PassingRecorder)?.recordsPassing = true
        var run = RankRun(
            prefill: try strategy.attend(vectors.input(layout.tokenIDs), cache: cache, backend: backend).floats())
        if let recorder = strategy as? PassingRecorder {
            run.passing = recorder.lastPassing.map { block in passingTokens(block, vectors: vectors, plan: plan) }
        }
        if plan.needsQueryPass {
            strategy.phase = .query
            run.query = try strategy.attend(vectors.input(plan.queryTokenIDs), cache: cache, backend: backend).floats()
        }
        strategy.phase = .decode
        for token in decodeTokens {
            run.decode.append(try strategy.attend(vectors.input([token]), cache: cache, backend: backend).floats())
        }
        return run
    }
}

/// Maps the keys of a passing block `[n, Hkv, d]` back to token ids, per KV head.
func passingTokens(_ keys: Tensor, vectors: TokenVectors, plan: Plan) -> [[Int32]] {
    let all = (0..<Int32(plan.contextLength + plan.queryLength))
    let d = vectors.headDim, values = keys.floats()
    return (0..<vectors.kvHeads).map { h in
        (0..<keys.shape[0]).map { row in
            let found = values[(row * vectors.kvHeads + h) * d..<(row * vectors.kvHeads + h + 1) * d]
            return all.first { Array(vectors.key($0)[h * d..<(h + 1) * d]) == Array(found) } ?? -1
        }
    }
}

/// Dense causal attention over `tokens` (CPU backend) -> one `[H*d]` row per token.
func denseRows(_ tokens: [Int32], _ vectors: TokenVectors) throws -> [[Float]] {
    let input = vectors.input(tokens)
    let out = try CPUBackend(threads: 1).attention(
        query: input.query, key: input.key, value: input.value,
        mask: .causal, scale: Float(vectors.scale)
    ).out.floats()
    let width = vectors.heads * vectors.headDim
    return (0..<tokens.count).map { Array(out[$0 * width..<($0 + 1) * width]) }
}

func row(_ flat: [Float], _ index: Int, width: Int) -> [Float] { Array(flat[index * width..<(index + 1) * width]) }

func assertClose(
    _ a: [Float], _ b: [Double], tolerance: Double = 1e-5, _ message: @autoclosure () -> String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(a.count, b.count, message(), file: file, line: line)
    let worst = zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst, tolerance, "\(message()): max |diff| \(worst)", file: file, line: line)
}

func assertClose(
    _ a: [Float], _ b: [Float], tolerance: Double = 1e-5, _ message: @autoclosure () -> String,
    file: StaticString = #filePath, line: UInt = #line
) {
    assertClose(a, b.map(Double.init), tolerance: tolerance, message(), file: file, line: line)
}

/// Context ids `0..<n` and query ids `n..<n+q`.
func tokens(context n: Int, query q: Int) -> (context: [Int32], query: [Int32]) {
    ((0..<n).map { Int32($0) }, (n..<(n + q)).map { Int32($0) })
}
