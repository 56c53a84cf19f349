// Attention kernels: q [Sq, H, d], k/v [Sk, Hkv, d] bf16 (GQA by index: head h reads KV head
// h / (H / Hkv)), out [Sq, H, d] bf16, lse [H, Sq] fp32 natural log-sum-exp of the scaled scores.
// Masks (maskKind): 0 full; 1 bottom-right causal (row i sees key j iff j <= i + Sk - Sq);
// 2 APB anchor: causal, and rows < anchorLength also skip keys < passingLength.
// A row that sees no key gets out = 0 and lse = -inf.
// Versions (figures in bench/RESULTS.md); only v1 and v3 ship, the others are instantiated by
// dev/cuda/attention.cu (BATON_DEV_KERNELS=dev/cuda appends it to this file):
//   v1 attention_naive: one warp per (row, head), scalar fp32 online softmax. Correct, slow;
//      the on-device cross-check for the tiled kernels.
//   v2 flash_attention_d{64,128}: FlashAttention-2 structure. 128 query rows per block (8 warps x
//      16 rows), 64-key tiles in swizzled shared memory, cp.async double buffering of K and V,
//      mma.sync m16n8k16 bf16 tensor cores fed by ldmatrix, online softmax in registers (exp2),
//      whole masked tiles skipped, element masks only on edge tiles. Split-KV mode (splitTiles > 0)
//      writes fp32 partials that attention_combine merges: the decode path for few query rows.
//   v3 flash3_attention_d{64,128}: the same code with 4 warps x 32 rows (two m16 tiles per warp), so
//      each ldmatrix of K or V feeds twice the MMAs; two blocks per SM. Since v3 all versions fold
//      the softmax scale into the exp2 FFMA and skip the rescale of O when no row's max moved.
//   v4 flash4_attention_d{64,128}: 8 warps x 32 rows, 256-row blocks.
// On sm_90a the default prefill kernel is attention_hopper.cu (wgmma + TMA), about twice v3.
#include <cuda_bf16.h>

typedef __nv_bfloat16 bf16;

#define BATON_NEG_INF (-__int_as_float(0x7f800000))

#include "attention_mask.cuh"
#include "mma.cuh"

// MARK: - v1 naive

extern "C" __global__ void attention_naive(const bf16 *__restrict__ q, const bf16 *__restrict__ k,
                                           const bf16 *__restrict__ v, bf16 *__restrict__ out,
                                           float *__restrict__ lse, int Sq, int Sk, int H, int Hkv, int d,
                                           int maskKind, int anchorLength, int passingLength, float scale) {
    const int row = blockIdx.x, h = blockIdx.y, lane = threadIdx.x;
    const int hk = h / (H / Hkv);
    const int perLane = (d + 31) / 32;  // d <= 256
    float qv[8], acc[8];
    for (int i = 0; i < 8; i++) {
        int c = lane + 32 * i;
        qv[i] = (i < perLane && c < d) ? __bfloat162float(q[((long)row * H + h) * d + c]) : 0.f;
        acc[i] = 0.f;
    }
    float m = BATON_NEG_INF, l = 0.f;
    for (int key = 0; key < Sk; key++) {
        if (!attention_allowed(row, key, Sq, Sk, maskKind, anchorLength, passingLength)) continue;
        const bf16 *kr = k + ((long)key * Hkv + hk) * d;
        float dot = 0.f;
        for (int i = 0; i < perLane; i++) {
            int c = lane + 32 * i;
            if (c < d) dot += qv[i] * __bfloat162float(kr[c]);
        }
        for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffff, dot, o);
        float s = dot * scale;
        float mNew = fmaxf(m, s);
        float correction = __expf(m - mNew), p = __expf(s - mNew);
        l = l * correction + p;
        const bf16 *vr = v + ((long)key * Hkv + hk) * d;
        for (int i = 0; i < perLane; i++) {
            int c = lane + 32 * i;
            acc[i] = acc[i] * correction + (c < d ? p * __bfloat162float(vr[c]) : 0.f);
        }
        m = mNew;
    }
    for (int i = 0; i < perLane; i++) {
        int c = lane + 32 * i;
        if (c < d) out[((long)row * H + h) * d + c] = __float2bfloat16(l > 0.f ? acc[i] / l : 0.f);
    }
    if (lane == 0) lse[(long)h * Sq + row] = l > 0.f ? m + logf(l) : BATON_NEG_INF;
}

// MARK: - v2 flash (mma.sync)

// Element (row, col) of a [rows][D] bf16 tile whose 16-byte chunks are XOR-swizzled by row, so
// the 8 rows one ldmatrix phase reads fall in 8 different bank groups.
template <int D> __device__ __forceinline__ int swizzled(int row, int col) {
    return row * D + ((((col >> 3) ^ (row & 7))) << 3) + (col & 7);
}

// Queues the copy of ROWS rows starting at global row `first` (zero-filled at or past `limit`) into
// the swizzled tile at shared address `tile`. Fully unrolled: each thread copies one 16-byte chunk
// column of every ROW_STEP-th row, so its swizzle is fixed and addresses advance by constants.
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(unsigned tile, const bf16 *base, long rowStride, int first, int limit) {
    constexpr int CHUNKS = D / 8, ROW_STEP = THREADS / CHUNKS, PER_THREAD = ROWS / ROW_STEP;
    static_assert(THREADS % CHUNKS == 0 && ROWS % ROW_STEP == 0, "tile shape");
    const int c = threadIdx.x % CHUNKS, r0 = threadIdx.x / CHUNKS;
    const bf16 *source = base + (long)(first + r0) * rowStride + c * 8;
#pragma unroll
    for (int i = 0; i < PER_THREAD; i++) {
        const int r = r0 + i * ROW_STEP;
        const bool valid = first + r < limit;
        cp_async16(tile + 2 * swizzled<D>(r, c * 8), valid ? source : base, valid ? 16 : 0);
        source += ROW_STEP * rowStride;
    }
}

// Fragment loads of one k16 slice: Q rows of this warp's m-tiles (A operands) and the keys of a
// K tile (B operands, two n8 tiles per ldmatrix). The rows a lane addresses are = lane (mod 8) and
// its column chunk is 2 kk + bit, so the swizzled chunk (2 kk + bit) ^ (row & 7) is
// (2 kk) ^ (bit ^ lane & 7): one per-lane value XOR a constant, no per-slice index arithmetic.
template <int D, int MT>
__device__ __forceinline__ void load_query_fragments(unsigned (&a)[MT][4], unsigned sQ, int firstRow, int lane, int kk) {
    const unsigned lanePart = (((lane >> 4) ^ (lane & 7))) << 4;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
        ldmatrix_x4(a[mt], sQ + 2 * (firstRow + mt * 16 + (lane & 15)) * D + (lanePart ^ (kk << 5)));
}
template <int D, int BC>
__device__ __forceinline__ void load_key_fragments(unsigned (&b)[BC / 16][4], unsigned tK, int lane, int kk) {
    const unsigned lanePart = ((((lane >> 3) & 1) ^ (lane & 7))) << 4;
#pragma unroll
    for (int nn = 0; nn < BC / 16; nn++)
        ldmatrix_x4(b[nn], tK + 2 * (nn * 16 + (lane & 7) + (lane >> 4) * 8) * D + (lanePart ^ (kk << 5)));
}
// B operands of P V for keys [16 kk, 16 kk + 16) and head-dim columns [16 dd, 16 dd + 16).
template <int D>
__device__ __forceinline__ void load_value_fragments(unsigned (&b)[4], unsigned tV, int lane, int kk, int dd) {
    const unsigned lanePart = (((lane >> 4) ^ (lane & 7))) << 4;
    ldmatrix_x4_trans(b, tV + 2 * (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * D + (lanePart ^ (dd << 5)));
}

// PREFETCH: load the fragments of the next slice before the MMAs of this one (two register sets),
// so ldmatrix latency hides behind tensor-core work.
template <int D, int WARPS, int MT, int BC, bool PREFETCH>
__device__ __forceinline__ void flash_attention(const bf16 *__restrict__ q, const bf16 *__restrict__ k,
                                                const bf16 *__restrict__ v, bf16 *__restrict__ out,
                                                float *__restrict__ lse, int Sq, int Sk, int H, int Hkv,
                                                int maskKind, int anchorLength, int passingLength,
                                                float scaleLog2, int splitTiles, float *__restrict__ partialOut,
                                                float *__restrict__ partialLse) {
    constexpr int ROWS = 16 * MT, BR = WARPS * ROWS, THREADS = WARPS * 32, FS = PREFETCH ? 2 : 1;
    extern __shared__ __align__(128) unsigned char shared[];
    // 32-bit shared-memory addresses: Q (BR x D), then two K and two V buffers (BC x D each).
    const unsigned sQ = shared_address(shared), sK = sQ + 2 * BR * D, sV = sK + 4 * BC * D;

    const int qTile = gridDim.x - 1 - blockIdx.x;  // longest causal rows first
    const int h = blockIdx.y, split = blockIdx.z;
    const int hk = h / (H / Hkv);
    const int row0 = qTile * BR;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int offset = Sk - Sq;
    const long qStride = (long)H * D, kvStride = (long)Hkv * D;
    const bf16 *qBase = q + (long)h * D, *kBase = k + (long)hk * D, *vBase = v + (long)hk * D;

    // Key tiles this block visits: causal rows stop at their diagonal; an anchor-only block skips
    // the passing keys by whole tiles (the partial first tile is element-masked).
    const int rowLast = min(row0 + BR, Sq) - 1;
    int keyEnd = maskKind == 0 ? Sk : max(0, min(Sk, rowLast + offset + 1));
    int keyBegin = (maskKind == 2 && rowLast < anchorLength) ? min(passingLength, keyEnd) : 0;
    int tileBegin = keyBegin / BC, tileEnd = (keyEnd + BC - 1) / BC;
    if (splitTiles > 0) {
        tileBegin += split * splitTiles;
        tileEnd = min(tileEnd, tileBegin + splitTiles);
    }
    if (tileEnd < tileBegin) tileEnd = tileBegin;

    // This warp's rows; a warp with no valid row or no visible key in a tile skips its math.
    const int warpRow0 = row0 + warp * ROWS;
    const bool warpActive = warpRow0 < Sq;
    const int warpKeyEnd = maskKind == 0 ? Sk : min(Sk, min(warpRow0 + ROWS - 1, Sq - 1) + offset + 1);

    float o[MT][D / 8][4];
    zero_fragments(o);
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) m[mt][0] = m[mt][1] = BATON_NEG_INF, l[mt][0] = l[mt][1] = 0.f;
    const int g = lane >> 2, t4 = lane & 3;

    load_tile<D, BR, THREADS>(sQ, qBase, qStride, row0, Sq);
    if (tileBegin < tileEnd) load_tile<D, BC, THREADS>(sK, kBase, kvStride, tileBegin * BC, Sk);
    cp_async_commit();
    if (tileBegin < tileEnd) load_tile<D, BC, THREADS>(sV, vBase, kvStride, tileBegin * BC, Sk);
    cp_async_commit();

    for (int tile = tileBegin; tile < tileEnd; tile++) {
        const int buffer = (tile - tileBegin) & 1;
        const unsigned tK = sK + buffer * 2 * BC * D, tV = sV + buffer * 2 * BC * D;
        const int key0 = tile * BC;
        const bool warpWorks = warpActive && key0 < warpKeyEnd;
        float s[MT][BC / 8][4];

        cp_async_wait<1>();
        __syncthreads();
        if (warpWorks) {
            zero_fragments(s);
            unsigned a[FS][MT][4], b[FS][BC / 16][4];
            load_query_fragments<D, MT>(a[0], sQ, warp * ROWS, lane, 0);
            load_key_fragments<D, BC>(b[0], tK, lane, 0);
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                const int current = kk % FS, next = (kk + 1) % FS;
                if (PREFETCH && kk + 1 < D / 16) {
                    load_query_fragments<D, MT>(a[next], sQ, warp * ROWS, lane, kk + 1);
                    load_key_fragments<D, BC>(b[next], tK, lane, kk + 1);
                }
#pragma unroll
                for (int nn = 0; nn < BC / 16; nn++) {
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        mma_bf16(s[mt][2 * nn], a[current][mt], b[current][nn][0], b[current][nn][1]);
                        mma_bf16(s[mt][2 * nn + 1], a[current][mt], b[current][nn][2], b[current][nn][3]);
                    }
                }
                if (!PREFETCH && kk + 1 < D / 16) {
                    load_query_fragments<D, MT>(a[0], sQ, warp * ROWS, lane, kk + 1);
                    load_key_fragments<D, BC>(b[0], tK, lane, kk + 1);
                }
            }
        }
        if (tile + 1 < tileEnd) load_tile<D, BC, THREADS>(sK + (buffer ^ 1) * 2 * BC * D, kBase, kvStride, key0 + BC, Sk);
        cp_async_commit();

        if (warpWorks) {
            // Edge tiles: past Sk, crossing this block's diagonal, or inside the passing keys.
            const bool edge = key0 + BC > Sk || (maskKind != 0 && key0 + BC - 1 > row0 + offset) ||
                              (maskKind == 2 && key0 < passingLength && row0 < anchorLength);
            if (edge) {
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
#pragma unroll
                    for (int half = 0; half < 2; half++)
#pragma unroll
                        for (int j = 0; j < BC / 8; j++)
#pragma unroll
                            for (int e = 0; e < 2; e++)
                                if (!attention_allowed(warpRow0 + mt * 16 + g + half * 8, key0 + j * 8 + t4 * 2 + e, Sq, Sk,
                                                       maskKind, anchorLength, passingLength))
                                    s[mt][j][half * 2 + e] = BATON_NEG_INF;
            }
            online_softmax<MT, BC / 8, D / 8>(s, m, l, o, scaleLog2);
        }

        cp_async_wait<1>();
        __syncthreads();
        if (warpWorks) {
            constexpr int STEPS = (BC / 16) * (D / 16);  // (key slice kk, column slice dd) pairs
            unsigned b[FS][4];
            load_value_fragments<D>(b[0], tV, lane, 0, 0);
#pragma unroll
            for (int step = 0; step < STEPS; step++) {
                const int kk = step / (D / 16), dd = step % (D / 16);
                unsigned p[MT][4];  // P as bf16 A operands, packed where they are used
                pack_probabilities(p, s, kk);
                const int nextKk = (step + 1) / (D / 16), nextDd = (step + 1) % (D / 16);
                if (PREFETCH && step + 1 < STEPS) load_value_fragments<D>(b[(step + 1) % FS], tV, lane, nextKk, nextDd);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma_bf16(o[mt][2 * dd], p[mt], b[step % FS][0], b[step % FS][1]);
                    mma_bf16(o[mt][2 * dd + 1], p[mt], b[step % FS][2], b[step % FS][3]);
                }
                if (!PREFETCH && step + 1 < STEPS) load_value_fragments<D>(b[0], tV, lane, nextKk, nextDd);
            }
        }
        if (tile + 1 < tileEnd) load_tile<D, BC, THREADS>(sV + (buffer ^ 1) * 2 * BC * D, vBase, kvStride, key0 + BC, Sk);
        cp_async_commit();
    }
    cp_async_wait<0>();

    if (!warpActive) return;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const float total = quad_sum(l[mt][half]);
            const int row = warpRow0 + mt * 16 + g + half * 8;
            if (row >= Sq) continue;
            const float inverse = total > 0.f ? 1.f / total : 0.f;
            const float rowLse = total > 0.f ? (m[mt][half] + log2f(total)) * 0.69314718055994531f : BATON_NEG_INF;
            if (splitTiles > 0) {
                float *destination = partialOut + (((long)split * Sq + row) * H + h) * D;
#pragma unroll
                for (int i = 0; i < D / 8; i++) {
                    float2 value = make_float2(o[mt][i][half * 2] * inverse, o[mt][i][half * 2 + 1] * inverse);
                    *reinterpret_cast<float2 *>(destination + i * 8 + t4 * 2) = value;
                }
                if (t4 == 0) partialLse[((long)split * H + h) * Sq + row] = rowLse;
            } else {
                store_row_bf16(out + ((long)row * H + h) * D, o[mt], half, inverse, t4);
                if (t4 == 0) lse[(long)h * Sq + row] = rowLse;
            }
        }
    }
}

#define BATON_FLASH(NAME, D, WARPS, MT, BC, PREFETCH, MIN_BLOCKS)                                                               \
    extern "C" __global__ void __launch_bounds__(WARPS * 32, MIN_BLOCKS) NAME(                                    \
        const bf16 *__restrict__ q, const bf16 *__restrict__ k, const bf16 *__restrict__ v, bf16 *__restrict__ out, \
        float *__restrict__ lse, int Sq, int Sk, int H, int Hkv, int maskKind, int anchorLength,                  \
        int passingLength, float scaleLog2, int splitTiles, float *__restrict__ partialOut,                       \
        float *__restrict__ partialLse) {                                                                         \
        flash_attention<D, WARPS, MT, BC, PREFETCH>(q, k, v, out, lse, Sq, Sk, H, Hkv, maskKind, anchorLength, passingLength,  \
                                      scaleLog2, splitTiles, partialOut, partialLse);                             \
    }
// v3, the shipped version: 4 warps x 32 rows: each K/V fragment feeds two MMAs per warp (half the
// shared-memory reads per MMA of v2), two blocks per SM. v2, v4, v5 and v6 are in dev/cuda/attention.cu.
BATON_FLASH(flash3_attention_d64, 64, 4, 2, 64, false, 2)
BATON_FLASH(flash3_attention_d128, 128, 4, 2, 64, false, 2)

// Merges split-KV partials (each normalised, with its natural lse) into out and lse.
// One thread per (row, head, column), grid-stride: launchElementwise caps the grid at 16 blocks per
// SM, so larger outputs (e.g. 1111 rows x 4 heads x 128) were left unwritten. splits is small.
extern "C" __global__ void attention_combine(const float *__restrict__ partialOut, const float *__restrict__ partialLse,
                                             bf16 *__restrict__ out, float *__restrict__ lse, int splits, int Sq,
                                             int H, int d) {
    for (long index = (long)blockIdx.x * blockDim.x + threadIdx.x; index < (long)Sq * H * d;
         index += (long)gridDim.x * blockDim.x) {
        const int c = index % d, h = (index / d) % H, row = index / ((long)d * H);
        float maxLse = BATON_NEG_INF;
        for (int s = 0; s < splits; s++) maxLse = fmaxf(maxLse, partialLse[((long)s * H + h) * Sq + row]);
        float weightSum = 0.f, value = 0.f;
        if (maxLse != BATON_NEG_INF) {
            for (int s = 0; s < splits; s++) {
                float w = __expf(partialLse[((long)s * H + h) * Sq + row] - maxLse);
                weightSum += w;
                value += w * partialOut[(((long)s * Sq + row) * H + h) * d + c];
            }
        }
        out[index] = __float2bfloat16(weightSum > 0.f ? value / weightSum : 0.f);
        if (c == 0) lse[(long)h * Sq + row] = weightSum > 0.f ? maxLse + logf(weightSum) : BATON_NEG_INF;
    }
}
