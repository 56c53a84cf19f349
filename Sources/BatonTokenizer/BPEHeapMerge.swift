/// BPE merging for long words (SentencePiece-style tokenizers hand whole paragraphs to the
/// model as one word): symbols in a linked list, candidate merges in a min-heap ordered by
/// (rank, position). Popping the least valid candidate each time is the order Hugging Face
/// tokenizers merges in; entries made stale by an earlier merge are skipped when popped.
enum BPEHeapMerge {
    private struct Candidate {
        /// rank << 32 | position: the heap order.
        var order: UInt64
        var mergedId: Int32
        var position: Int { Int(order & 0xFFFF_FFFF) }
    }

    static func mergeAll(_ ids: [Int32], _ merges: [UInt64: UInt64]) -> [Int32] {
        var id = ids
        var previous = Array(-1..<(ids.count - 1))
        var next = Array(1...ids.count)
        var alive = [Bool](repeating: true, count: ids.count)
        var heap = [Candidate]()

        func lookup(_ position: Int) -> Candidate? {
            let right = next[position]
            guard right < id.count else { return nil }
            let key = UInt64(UInt32(id[position])) << 32 | UInt64(UInt32(id[right]))
            guard let merge = merges[key] else { return nil }
            return Candidate(
                order: (merge >> 32) << 32 | UInt64(position),
                mergedId: Int32(truncatingIfNeeded: merge & 0xFFFF_FFFF))
        }
        func push(_ c: Candidate) {
            heap.append(c)
            var k = heap.count - 1
            while k > 0 {
                let parent = (k - 1) / 2
                if heap[parent].order <= heap[k].order { break }
                heap.swapAt(parent, k)
                k = parent
            }
        }
        func pop() -> Candidate {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var k = 0
                while true {
                    let l = 2 * k + 1, r = l + 1
                    var least = k
                    if l < heap.count && heap[l].order < heap[least].order { least = l }
                    if r < heap.count && heap[r].order < heap[least].order { least = r }
                    if least == k { break }
                    heap.swapAt(least, k)
                    k = least
                }
            }
            return top
        }

        for p in 0..<id.count { if let c = lookup(p) { push(c) } }
        while !heap.isEmpty {
            let top = pop()
            let p = top.position
            // Stale: the left symbol was merged away, or its pair no longer makes this token.
            guard alive[p], let current = lookup(p), current.mergedId == top.mergedId else { continue }
            let right = next[p]
            id[p] = top.mergedId
            alive[right] = false
            next[p] = next[right]
            if next[p] < id.count { previous[next[p]] = p }
            if previous[p] >= 0, let c = lookup(previous[p]) { push(c) }
            if let c = lookup(p) { push(c) }
        }
        return id.indices.filter { alive[$0] }.map { id[$0] }
    }
}
