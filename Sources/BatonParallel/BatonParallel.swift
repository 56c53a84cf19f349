// BatonParallel: the sequence-parallel attention methods.
//
// - `Plan.make` splits a request (context + query token ids) over W ranks for a `Method`:
//   every rank's local token ids and global positions, anchor / block / query rows, the rows its
//   KV cache keeps, and the owner of decoding (`Layout.swift`, `Planner.swift`).
// - `makeStrategy` gives each rank its `ParallelStrategy` (an `AttentionStrategy` with a `phase`):
//   `Methods/Ring`, `ZigZagRing`, `Star`, `APB`, `Spava` (and `Dense`, the single-rank strategy).
// - Shared parts: `KVRotation` (ring send/receive with overlap), `TopKSelection`, `PassingBlock`
//   (messages and the passing block), `QueryAwareScorer` / `PassingScorer`, `LSEMerge`,
//   `DistributedDecode` (exact query/decode attention over KV spread across ranks).
//
// A rank runs the model over `plan.ranks[rank].tokenIDs` at `.positions` with `phase = .prefill`,
// then, if `plan.needsQueryPass`, over `plan.queryTokenIDs` at `plan.queryPositions` with
// `.query`, then one token at a time with `.decode`; only `plan.owner` samples.
