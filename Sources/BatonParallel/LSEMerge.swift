import BatonComm
import BatonTensor

/// Exact combination of partial attention results over disjoint key sets through their
/// log-sum-exps (`backend.mergeAttention`, the stable sigmoid form), always in rank order so
/// every rank computes bit-identical outputs.
enum LSEMerge {
    /// Merges the parts in array order; a single part is returned as is.
    static func merge(_ parts: [AttentionOutput], backend: any Backend) throws -> AttentionOutput {
        parts.count == 1 ? parts[0] : try backend.mergeAttention(parts)
    }

    /// Starts the AllGather of a partial result: out `[Sq, H, d]` and lse `[H, Sq]`.
    static func gatherAsync(_ part: AttentionOutput, communicator: any Communicator) throws -> GatheredAttention {
        GatheredAttention(
            out: try communicator.allGatherAsync(part.out),
            logSumExp: try communicator.allGatherAsync(part.logSumExp))
    }
}

/// Every rank's partial attention, in flight.
struct GatheredAttention {
    let out: CommHandle<[Tensor]>
    let logSumExp: CommHandle<[Tensor]>

    /// Waits and merges the `W` parts in rank order; in a measured pass of `input`'s layer the
    /// wait counts as communication and the merge as attention compute.
    func merged(timing input: AttentionInput, backend: any Backend) throws -> AttentionOutput {
        let (outs, lses) = try input.timed(.communication) { (try out.wait(), try logSumExp.wait()) }
        let parts = zip(outs, lses).map { AttentionOutput(out: $0, logSumExp: $1) }
        return try input.timed(.attentionCompute) { try LSEMerge.merge(parts, backend: backend) }
    }
}
