import BatonTensor

/// A synthetic task whose prompt grows with a haystack of whole units (filler repeats, essay
/// sentences, noise lines, list words). `make` must be a pure function of `(units, seed)`, so a
/// sample can be rebuilt at another size with the same needles, and token counts grow with units.
public protocol HaystackTask: Sendable {
    /// The task's name as RULER spells it (`niah_single_1`, `vt`, ...) or `niah` for the pass key.
    var name: String { get }
    /// Greedy tokens the model may generate (RULER: niah 128, vt 30, cwe 120, fwe 50).
    var maxNewTokens: Int { get }
    /// The fewest units a valid prompt needs (enough room for every needle).
    var minimumUnits: Int { get }
    /// The most units the task can make (word pools are finite), if bounded.
    var maximumUnits: Int? { get }
    func make(units: Int, seed: UInt64) -> (prompt: EvalPrompt, references: [String])
}

extension HaystackTask {
    public var minimumUnits: Int { 1 }
    public var maximumUnits: Int? { nil }
}

/// Sizing a prompt to a token budget with the model's tokenizer, as RULER does (RULER grows the
/// haystack in fixed increments; Baton brackets and bisects, which needs O(log n) tokenizations).
public enum ContextFitting {
    /// The largest unit count whose prompt fits `budget` tokens, and that prompt's token count.
    /// Throws when even `task.minimumUnits` does not fit.
    public static func largestFitting(
        _ task: some HaystackTask, budget: Int, seed: UInt64,
        count: (String) -> Int
    ) throws -> (units: Int, tokens: Int) {
        func tokens(_ units: Int) -> Int { count(task.make(units: units, seed: seed).prompt.countedText) }
        let low = task.minimumUnits
        let lowTokens = tokens(low)
        guard lowTokens <= budget else {
            throw BatonError.invalidArgument(
                "eval task \(task.name): target leaves \(budget) tokens for the prompt, but the smallest prompt "
                    + "(\(low) haystack units) already has \(lowTokens); use a longer --lengths value")
        }
        let ceiling = task.maximumUnits ?? Int.max / 4
        // Estimate from the growth between two sizes, then bracket around the estimate.
        let probe = min(low + 32, ceiling)
        let probeTokens = probe > low ? tokens(probe) : lowTokens
        let perUnit = max(Double(probeTokens - lowTokens) / Double(max(probe - low, 1)), 1e-3)
        var estimate = low + Int(Double(budget - lowTokens) / perUnit)
        estimate = max(low, min(estimate, ceiling))

        var fits = (units: low, tokens: lowTokens)  // the largest size known to fit
        var bad: Int  // the smallest size known not to
        var step = max(estimate / 50, 1)
        let estimateTokens = tokens(estimate)
        if estimateTokens <= budget {
            fits = (estimate, estimateTokens)
            while true {  // gallop up
                if fits.units >= ceiling { return fits }
                let up = min(fits.units + step, ceiling)
                let t = tokens(up)
                if t > budget { bad = up; break }
                fits = (up, t)
                step *= 2
            }
        } else {
            bad = estimate
            while bad - step > fits.units {  // gallop down
                let t = tokens(bad - step)
                if t <= budget { fits = (bad - step, t); break }
                bad -= step
                step *= 2
            }
        }
        // Bisect between the largest size known to fit and the smallest known not to.
        while bad - fits.units > 1 {
            let mid = fits.units + (bad - fits.units) / 2
            let t = tokens(mid)
            if t <= budget { fits = (mid, t) } else { bad = mid }
        }
        return fits
    }

    /// `samples` samples of `task` at `length` tokens (prompt plus `maxNewTokens`). The size is
    /// fitted once on the first sample; each sample is then checked and shrunk if its own needles
    /// made it longer.
    public static func samples(
        _ task: some HaystackTask, length: Int, depth: Double? = nil,
        samples: Int, seed: UInt64,
        count: (String) -> Int
    ) throws -> [EvalSample] {
        let budget = length - task.maxNewTokens
        let seeds = (0..<samples).map { sampleSeed(seed, task: task.name, length: length, depth: depth, index: $0) }
        guard let first = seeds.first else { return [] }
        let fitted = try largestFitting(task, budget: budget, seed: first, count: count)
        var result: [EvalSample] = []
        for (index, sampleSeed) in seeds.enumerated() {
            var units = fitted.units
            var made = task.make(units: units, seed: sampleSeed)
            var tokens = index == 0 ? fitted.tokens : count(made.prompt.countedText)
            while tokens > budget && units > task.minimumUnits {
                units = max(task.minimumUnits, units - max(units / 200, 1))
                made = task.make(units: units, seed: sampleSeed)
                tokens = count(made.prompt.countedText)
            }
            guard tokens <= budget else {
                throw BatonError.invalidArgument(
                    "eval task \(task.name): sample \(index) does not fit \(length) tokens")
            }
            result.append(
                EvalSample(
                    task: task.name, length: length, depth: depth, index: index,
                    prompt: made.prompt, references: made.references, promptTokens: tokens))
        }
        return result
    }

    /// The seed of one sample: a pure function of the run's seed and the sample's place in the grid.
    static func sampleSeed(_ seed: UInt64, task: String, length: Int, depth: Double?, index: Int) -> UInt64 {
        let depthLabel = depth.map { String(Int(($0 * 10_000).rounded())) } ?? "-"
        var random = EvalRandom(seed: seed, task, String(length), depthLabel, String(index))
        return random.next()
    }
}
