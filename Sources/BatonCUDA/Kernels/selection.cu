// Per-head top-k for APB/Spava's passing-block selection, on the device so the selected indices
// feed the gather without a round trip through the host.
//
// scores [S, C] f32; for each column c, the k rows of [rowBegin, rowEnd) with the largest scores,
// ties to the lower row and NaN below every number (the CPU backend's rule), written ascending as
// out [C, k] i32. One block per column:
//   1. a 4-pass 8-bit radix select over order-preserving uint32 keys finds T, the k-th largest key,
//      and `need`, how many of the k have key == T (the rest have key > T);
//   2. one pass over the rows in order with a block-wide scan writes every row with key > T and the
//      first `need` rows with key == T, each at position (# greater before it) + min(# equal before
//      it, need), which is ascending by construction.
// Selection runs once per layer per request, over at most one rank's block of rows.

#define SELECT_THREADS 1024

// Order-preserving key: larger float -> larger key; -0 ties with +0; NaN (key 0) below -inf.
__device__ __forceinline__ unsigned order_key(float x) {
    unsigned u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0u;  // NaN
    if ((u & 0x7fffffffu) == 0u) u = 0u;            // -0 -> +0
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Exclusive block-wide prefix sums of two counts (0 or 1 each); totals returned through the pointers.
__device__ __forceinline__ void block_exclusive_scan2(int a, int b, int *beforeA, int *beforeB, int *totalA,
                                                      int *totalB) {
    __shared__ int warpA[SELECT_THREADS / 32], warpB[SELECT_THREADS / 32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    int inclusiveA = a, inclusiveB = b;
    for (int o = 1; o < 32; o <<= 1) {
        const int upA = __shfl_up_sync(0xffffffff, inclusiveA, o), upB = __shfl_up_sync(0xffffffff, inclusiveB, o);
        if (lane >= o) { inclusiveA += upA; inclusiveB += upB; }
    }
    if (lane == 31) { warpA[warp] = inclusiveA; warpB[warp] = inclusiveB; }
    __syncthreads();
    if (warp == 0) {
        int wa = lane < warps ? warpA[lane] : 0, wb = lane < warps ? warpB[lane] : 0;
        for (int o = 1; o < 32; o <<= 1) {
            const int upA = __shfl_up_sync(0xffffffff, wa, o), upB = __shfl_up_sync(0xffffffff, wb, o);
            if (lane >= o) { wa += upA; wb += upB; }
        }
        if (lane < warps) { warpA[lane] = wa; warpB[lane] = wb; }  // inclusive over warps
    }
    __syncthreads();
    *beforeA = inclusiveA - a + (warp > 0 ? warpA[warp - 1] : 0);
    *beforeB = inclusiveB - b + (warp > 0 ? warpB[warp - 1] : 0);
    *totalA = warpA[warps - 1];
    *totalB = warpB[warps - 1];
    __syncthreads();  // the warp totals are reused by the next call
}

extern "C" __global__ void __launch_bounds__(SELECT_THREADS) top_k_per_head(const float *__restrict__ scores,
                                                                           int *__restrict__ out, long S, int C,
                                                                           long rowBegin, long rowEnd, int k) {
    __shared__ unsigned histogram[256];
    __shared__ unsigned chosenPrefix;
    __shared__ int chosenLeft;
    const int c = blockIdx.x, tid = threadIdx.x;
    if (k <= 0) return;

    // 1. Radix select: after each pass, `prefix` holds the top bits of T and `left` how many of the
    //    k are still to be found among keys with that prefix.
    unsigned prefix = 0, mask = 0;
    int left = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = tid; i < 256; i += blockDim.x) histogram[i] = 0;
        __syncthreads();
        for (long r = rowBegin + tid; r < rowEnd; r += blockDim.x) {
            const unsigned key = order_key(scores[r * C + c]);
            if ((key & mask) == prefix) atomicAdd(&histogram[(key >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (tid == 0) {
            unsigned above = 0;
            int bin = 255;
            for (; bin > 0; bin--) {
                if (above + histogram[bin] >= (unsigned)left) break;
                above += histogram[bin];
            }
            chosenPrefix = prefix | ((unsigned)bin << shift);
            chosenLeft = left - (int)above;
        }
        __syncthreads();
        prefix = chosenPrefix;
        left = chosenLeft;
        mask |= 255u << shift;
    }
    const unsigned threshold = prefix;
    const int need = left;  // rows with key == threshold to take, lowest rows first

    // 2. Ordered compaction.
    int greaterSoFar = 0, equalSoFar = 0;
    for (long base = rowBegin; base < rowEnd; base += blockDim.x) {
        const long r = base + tid;
        const unsigned key = r < rowEnd ? order_key(scores[r * C + c]) : 0u;
        const int greater = r < rowEnd && key > threshold, equal = r < rowEnd && key == threshold;
        int greaterBefore, equalBefore, greaterTotal, equalTotal;
        block_exclusive_scan2(greater, equal, &greaterBefore, &equalBefore, &greaterTotal, &equalTotal);
        const int equalRank = equalSoFar + equalBefore;
        if (greater || (equal && equalRank < need)) {
            out[(long)c * k + greaterSoFar + greaterBefore + min(equalRank, need)] = (int)r;
        }
        greaterSoFar += greaterTotal;
        equalSoFar += equalTotal;
        if (greaterSoFar + min(equalSoFar, need) >= k) break;  // uniform across the block
    }
}
