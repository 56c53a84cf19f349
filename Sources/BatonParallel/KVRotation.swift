import BatonComm
import BatonTensor

/// The ring pass shared by Ring and ZigZagRing: every rank's KV block visits every rank once.
/// At each step the block in hand is forwarded to rank `r+1` and the next one received from
/// `r-1` asynchronously while `visit` attends to the block in hand.
enum KVRotation {
    /// Calls `visit(source, key, value)` for the blocks of ranks `r, r-1, ..., r+1` (mod W),
    /// key/value `[L_source, Hkv, d]`. Block lengths come from the plan. In a measured pass,
    /// `visit` counts as attention compute; packing, starting and waiting for each transfer count
    /// as communication.
    static func forEachBlock(
        _ input: AttentionInput, context: RankContext, backend: any Backend,
        visit: (_ source: Int, _ key: Tensor, _ value: Tensor) throws -> Void
    ) throws {
        let w = context.worldSize, r = context.rank, comm = context.communicator
        let length = { (rank: Int) in context.plan.ranks[rank].rowCount }
        // The travelling message is [K ; V] of one block: [2 L, Hkv, d].
        var travelling =
            w > 1 ? try input.timed(.communication) { try backend.concatRows([input.key, input.value]) } : input.key
        for step in 0..<w {
            let source = (r - step + w) % w
            var transfer: (sent: CommHandle<Void>, received: CommHandle<Tensor>)?
            if step < w - 1 {
                let incoming = (r - step - 1 + w) % w
                // One exchange (an NCCL group): every rank sends and receives at once, a cycle.
                transfer = try input.timed(.communication) {
                    try comm.exchangeAsync(
                        sending: travelling, to: (r + 1) % w, receivingFrom: (r - 1 + w) % w,
                        shape: input.key.shape.withRows(2 * length(incoming)), dtype: input.key.dtype)
                }
            }
            try input.timed(.attentionCompute) {
                if source == r {
                    try visit(r, input.key, input.value)
                } else {
                    let n = length(source)
                    try visit(source, travelling.rows(0..<n), travelling.rows(n..<2 * n))
                }
            }
            if let transfer {
                travelling = try input.timed(.communication) {
                    let received = try transfer.received.wait()
                    try transfer.sent.wait()
                    return received
                }
            }
        }
    }
}
