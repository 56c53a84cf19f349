import Dispatch

/// Lets a closure over raw pointers cross into Dispatch's `@Sendable` worker closure. Sound here
/// because every parallel loop in this module writes disjoint ranges and returns only after
/// all workers finish.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}

/// Splits `0..<count` into contiguous chunks and runs `body` on each, across cores when the
/// work justifies it. `workPerItem` is a rough cost of one item in elementary operations; below
/// `inlineWork` in total, thread hand-off costs more than it saves, so the loop runs inline.
func parallelChunks(
    _ count: Int, threads: Int, workPerItem: Int = 1,
    body: (Range<Int>) -> Void
) {
    let inlineWork = 1 << 15
    if count <= 0 { return }
    let total = count &* max(workPerItem, 1)
    if threads <= 1 || count == 1 || total < inlineWork {
        body(0..<count)
        return
    }
    // A few chunks per thread so uneven items (causal rows, ragged heads) still balance.
    let chunks = min(count, threads * 4, max(1, total / inlineWork))
    withoutActuallyEscaping(body) { escapable in
        let box = UncheckedSendable(value: escapable)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let lo = count * chunk / chunks
            let hi = count * (chunk + 1) / chunks
            if lo < hi { box.value(lo..<hi) }
        }
    }
}

/// Runs `body(i)` for every `i` in `0..<count`, one task each, across cores (no chunking:
/// for a handful of large, independent items such as attention tiles).
func parallelItems(_ count: Int, threads: Int, body: (Int) -> Void) {
    if count <= 0 { return }
    if threads <= 1 || count == 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { escapable in
        let box = UncheckedSendable(value: escapable)
        DispatchQueue.concurrentPerform(iterations: count) { box.value($0) }
    }
}
