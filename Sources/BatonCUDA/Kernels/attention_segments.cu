// Attention within variable-length segments: the Qwen2.5-VL vision tower's windows (about 64
// patches each) and whole frames (h x w patches, 18,564 at 1440p). q, k, v [N, H, D] bf16 and
// segments [S + 1] i32 cumulative offsets -> out [N, H, D] bf16: each row attends, non-causally, to
// the keys of its own segment. One launch for any number of segments.
//
// The flash structure of attention.cu (mma.sync m16n8k16 bf16 tensor cores fed by ldmatrix, K/V
// tiles double-buffered with cp.async, online softmax in registers, mma.cuh), with two changes:
//  - Tiles are row-padded, not swizzled: a row of D + 8 elements puts the 8 rows an ldmatrix phase
//    reads in 8 different bank groups for every D that is a multiple of 16. The XOR swizzle needs
//    a power-of-two number of 16-byte chunks, and D = 80 (1280 / 16 heads) has ten.
//  - A block of BR consecutive rows walks the keys of every segment its rows touch, from the first
//    one's start (not tile-aligned) to the last one's end. A warp skips a tile none of its rows'
//    segments reach; scores outside a row's segment are -inf. A block that straddles segments
//    pays at most a tile per boundary, a warp that straddles them pays the neighbouring segment.
// MT = 1 (64-row blocks) suits the windows, MT = 2 (128-row blocks, each K/V fragment feeding two
// MMAs) the frames; CUDABackend+Vision picks by the mean segment length.
#include <cuda_bf16.h>

typedef __nv_bfloat16 bf16;

#define BATON_NEG_INF (-__int_as_float(0x7f800000))

#include "mma.cuh"

#define SEGMENT_WARPS 4
#define SEGMENT_KEYS 64

// The segment holding `row`: the largest s in [0, S) with segments[s] <= row (empty segments, which
// repeat an offset, are never chosen because a later one starts at the same offset).
__device__ __forceinline__ int segment_of(const int *segments, int S, int row) {
    int lo = 0, hi = S - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (segments[mid] <= row) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// Queues the copy of ROWS rows from global row `first` (zero-filled at or past `limit`) into the
// padded tile at shared address `tile`, one 16-byte chunk per thread and step.
template <int D, int ROWS>
__device__ __forceinline__ void load_padded_rows(unsigned tile, const bf16 *base, long rowStride, int first,
                                                 int limit) {
    constexpr int CHUNKS = D / 8, DS = D + 8;
#pragma unroll 4
    for (int i = threadIdx.x; i < ROWS * CHUNKS; i += SEGMENT_WARPS * 32) {
        const int r = i / CHUNKS, c = i % CHUNKS;
        const bool valid = first + r < limit;
        const bf16 *source = valid ? base + (long)(first + r) * rowStride + c * 8 : base;
        cp_async16(tile + 2 * (r * DS + c * 8), source, valid ? 16 : 0);
    }
}

template <int D, int MT>
__device__ __forceinline__ void attention_segments(const bf16 *__restrict__ q, const bf16 *__restrict__ k,
                                                   const bf16 *__restrict__ v, bf16 *__restrict__ out,
                                                   const int *__restrict__ segments, int S, int N, int H,
                                                   float scaleLog2) {
    constexpr int ROWS = 16 * MT, BR = SEGMENT_WARPS * ROWS, BC = SEGMENT_KEYS, DS = D + 8;
    extern __shared__ __align__(128) unsigned char shared[];
    // 32-bit shared addresses: Q (BR x DS), then two K and two V buffers (BC x DS each).
    const unsigned sQ = shared_address(shared), sK = sQ + 2 * BR * DS, sV = sK + 4 * BC * DS;

    const int h = blockIdx.y, row0 = blockIdx.x * BR;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const long stride = (long)H * D;
    const bf16 *qBase = q + (long)h * D, *kBase = k + (long)h * D, *vBase = v + (long)h * D;
    const int keyBegin = segments[segment_of(segments, S, row0)];
    const int keyEnd = segments[segment_of(segments, S, min(row0 + BR, N) - 1) + 1];

    // The keys of this warp's rows, and of each of this lane's rows (none for rows past N).
    const int warpRow0 = row0 + warp * ROWS;
    int warpLo = 0, warpHi = 0;
    if (warpRow0 < N) {
        warpLo = segments[segment_of(segments, S, warpRow0)];
        warpHi = segments[segment_of(segments, S, min(warpRow0 + ROWS, N) - 1) + 1];
    }
    int lo[MT][2], hi[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int row = warpRow0 + mt * 16 + g + half * 8;
            const int s = row < N ? segment_of(segments, S, row) : -1;
            lo[mt][half] = s < 0 ? 0 : segments[s];
            hi[mt][half] = s < 0 ? 0 : segments[s + 1];
        }

    float o[MT][D / 8][4], m[MT][2], l[MT][2];
    zero_fragments(o);
#pragma unroll
    for (int mt = 0; mt < MT; mt++) m[mt][0] = m[mt][1] = BATON_NEG_INF, l[mt][0] = l[mt][1] = 0.f;

    const int tiles = (keyEnd - keyBegin + BC - 1) / BC;
    load_padded_rows<D, BR>(sQ, qBase, stride, row0, N);
    if (tiles > 0) load_padded_rows<D, BC>(sK, kBase, stride, keyBegin, keyEnd);
    cp_async_commit();
    if (tiles > 0) load_padded_rows<D, BC>(sV, vBase, stride, keyBegin, keyEnd);
    cp_async_commit();

    for (int tile = 0; tile < tiles; tile++) {
        const int buffer = tile & 1;
        const unsigned tK = sK + buffer * 2 * BC * DS, tV = sV + buffer * 2 * BC * DS;
        const int key0 = keyBegin + tile * BC;
        const bool warpWorks = key0 < warpHi && key0 + BC > warpLo;
        float s[MT][BC / 8][4];

        cp_async_wait<1>();
        __syncthreads();
        if (warpWorks) {
            zero_fragments(s);
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                unsigned a[MT][4], b[BC / 16][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
                    ldmatrix_x4(a[mt], sQ + 2 * ((warp * ROWS + mt * 16 + (lane & 15)) * DS + kk * 16 + (lane >> 4) * 8));
#pragma unroll
                for (int nn = 0; nn < BC / 16; nn++)
                    ldmatrix_x4(b[nn], tK + 2 * ((nn * 16 + (lane & 7) + (lane >> 4) * 8) * DS + kk * 16 +
                                                 ((lane >> 3) & 1) * 8));
#pragma unroll
                for (int nn = 0; nn < BC / 16; nn++)
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        mma_bf16(s[mt][2 * nn], a[mt], b[nn][0], b[nn][1]);
                        mma_bf16(s[mt][2 * nn + 1], a[mt], b[nn][2], b[nn][3]);
                    }
            }
        }
        if (tile + 1 < tiles)
            load_padded_rows<D, BC>(sK + (buffer ^ 1) * 2 * BC * DS, kBase, stride, key0 + BC, keyEnd);
        cp_async_commit();

        if (warpWorks) {
            // Keys outside a row's segment (and the zero-filled ones past keyEnd) score -inf.
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int half = 0; half < 2; half++) {
                    const int rowLo = lo[mt][half], rowHi = hi[mt][half];
                    if (key0 >= rowLo && key0 + BC <= rowHi) continue;
#pragma unroll
                    for (int j = 0; j < BC / 8; j++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const int key = key0 + j * 8 + t4 * 2 + e;
                            if (key < rowLo || key >= rowHi) s[mt][j][half * 2 + e] = BATON_NEG_INF;
                        }
                }
            online_softmax<MT, BC / 8, D / 8>(s, m, l, o, scaleLog2);
        }

        cp_async_wait<1>();
        __syncthreads();
        if (warpWorks) {
#pragma unroll
            for (int kk = 0; kk < BC / 16; kk++) {
                unsigned p[MT][4];  // P as bf16 A operands
                pack_probabilities(p, s, kk);
#pragma unroll
                for (int dd = 0; dd < D / 16; dd++) {
                    unsigned b[4];
                    ldmatrix_x4_trans(b, tV + 2 * ((kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * DS + dd * 16 +
                                                   (lane >> 4) * 8));
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        mma_bf16(o[mt][2 * dd], p[mt], b[0], b[1]);
                        mma_bf16(o[mt][2 * dd + 1], p[mt], b[2], b[3]);
                    }
                }
            }
        }
        if (tile + 1 < tiles)
            load_padded_rows<D, BC>(sV + (buffer ^ 1) * 2 * BC * DS, vBase, stride, key0 + BC, keyEnd);
        cp_async_commit();
    }
    cp_async_wait<0>();

#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const float total = quad_sum(l[mt][half]);
            const int row = warpRow0 + mt * 16 + g + half * 8;
            if (row >= N) continue;
            store_row_bf16(out + ((long)row * H + h) * D, o[mt], half, total > 0.f ? 1.f / total : 0.f, t4);
        }
}

#define BATON_SEGMENTS(D, MT)                                                                                     \
    extern "C" __global__ void __launch_bounds__(SEGMENT_WARPS * 32) attention_segments_d##D##_m##MT(            \
        const bf16 *__restrict__ q, const bf16 *__restrict__ k, const bf16 *__restrict__ v, bf16 *__restrict__ out, \
        const int *__restrict__ segments, int S, int N, int H, float scaleLog2) {                                \
        attention_segments<D, MT>(q, k, v, out, segments, S, N, H, scaleLog2);                                    \
    }
// 80: Qwen2.5-VL's vision heads (1280 / 16); 16 and 32: small test models; 64, 128: common heads.
#define BATON_SEGMENTS_BOTH(D) BATON_SEGMENTS(D, 1) BATON_SEGMENTS(D, 2)
BATON_SEGMENTS_BOTH(16)
BATON_SEGMENTS_BOTH(32)
BATON_SEGMENTS_BOTH(64)
BATON_SEGMENTS_BOTH(80)
BATON_SEGMENTS_BOTH(128)
