// Decode attention: a few query rows over a long KV cache, memory-bound.
//
// The flash kernels give each (query tile, head) its own block, so with GQA every query head of a
// KV group reads the group's K and V again, and a 128-row tile does MMA work for one row. Here one
// block serves one KV head and one slice of the keys ("split"), with all R = Sq x H/Hkv query rows
// of that KV head packed together: K and V are read once per group, and at R <= 8 the dot products
// are cheap enough for CUDA cores (about 4 FLOP per byte read).
//
// Layout: q [Sq, H, d], k/v [Sk, Hkv, d] bf16; row r of a block is query token r / G of head
// kvHead * G + r % G (G = H / Hkv). Masks as in attention.cu (0 full, 1 bottom-right causal,
// 2 APB anchor). Each block writes a normalised fp32 partial and its natural lse, in the layout
// attention_combine (attention.cu) merges: partialOut [splits, Sq, H, d], partialLse [splits, H, Sq].
//
// Inside a block, each of the 4 warps takes every 4th tile of 32 keys: lane j loads key j's whole
// row (16-byte loads) and computes its R scores; the tile's probabilities go through shared memory,
// and for P x V each lane owns d/32 columns of every row (coalesced V rows). The warps' online
// softmax states are merged in shared memory at the end.
#include <cuda_bf16.h>

typedef __nv_bfloat16 bf16;

#define DECODE_NEG_INF (-__int_as_float(0x7f800000))
#define DECODE_WARPS 4

__device__ __forceinline__ float decode_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ float warp_max(float x) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffff, x, o));
    return x;
}

__device__ __forceinline__ float warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffff, x, o);
    return x;
}

// Unpacks 8 bf16 (one 16-byte load) to floats.
__device__ __forceinline__ void unpack8(uint4 raw, float *f) {
    const __nv_bfloat162 *pairs = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 two = __bfloat1622float2(pairs[i]);
        f[2 * i] = two.x;
        f[2 * i + 1] = two.y;
    }
}

template <int D, int R>
__device__ __forceinline__ void decode_attention(const bf16 *__restrict__ q, const bf16 *__restrict__ k,
                                                 const bf16 *__restrict__ v, float *__restrict__ partialOut,
                                                 float *__restrict__ partialLse, int Sq, int Sk, int H, int Hkv,
                                                 int maskKind, int anchorLength, int passingLength, float scaleLog2,
                                                 int keysPerSplit) {
    constexpr int COLS = D / 32;  // columns of every row each lane accumulates
    __shared__ __align__(16) float qs[R][D];
    __shared__ __align__(16) float ps[DECODE_WARPS][R][32];
    __shared__ float warpMax[DECODE_WARPS][R], warpSum[DECODE_WARPS][R];
    __shared__ __align__(16) float warpAcc[DECODE_WARPS][R][D];

    const int split = blockIdx.x, kvHead = blockIdx.y, G = H / Hkv, rows = Sq * G;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int keyBegin = split * keysPerSplit, keyEnd = min(Sk, keyBegin + keysPerSplit);
    const long kvStride = (long)Hkv * D;

    // Scaled queries (log2 units) in shared memory; rows past `rows` are zero and never written out.
    for (int i = threadIdx.x; i < R * D; i += blockDim.x) {
        const int r = i / D, c = i % D;
        float value = 0.f;
        if (r < rows) value = __bfloat162float(q[((long)(r / G) * H + kvHead * G + r % G) * D + c]) * scaleLog2;
        qs[r][c] = value;
    }
    __syncthreads();

    float m[R], l[R], acc[R][COLS];
#pragma unroll
    for (int r = 0; r < R; r++) {
        m[r] = DECODE_NEG_INF;
        l[r] = 0.f;
#pragma unroll
        for (int c = 0; c < COLS; c++) acc[r][c] = 0.f;
    }

    for (int tile = keyBegin + warp * 32; tile < keyEnd; tile += DECODE_WARPS * 32) {
        // Scores of key `tile + lane` for every row.
        const int key = tile + lane;
        float s[R];
#pragma unroll
        for (int r = 0; r < R; r++) s[r] = 0.f;
        if (key < keyEnd) {
            const uint4 *row = reinterpret_cast<const uint4 *>(k + key * kvStride + (long)kvHead * D);
            uint4 raw[D / 8];
#pragma unroll
            for (int i = 0; i < D / 8; i++) raw[i] = __ldg(row + i);
#pragma unroll
            for (int i = 0; i < D / 8; i++) {
                float kf[8];
                unpack8(raw[i], kf);
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const float4 a = *reinterpret_cast<const float4 *>(&qs[r][8 * i]);
                    const float4 b = *reinterpret_cast<const float4 *>(&qs[r][8 * i + 4]);
                    s[r] += a.x * kf[0] + a.y * kf[1] + a.z * kf[2] + a.w * kf[3] + b.x * kf[4] + b.y * kf[5] +
                            b.z * kf[6] + b.w * kf[7];
                }
            }
        }
#pragma unroll
        for (int r = 0; r < R; r++) {
            const int t = r / G;  // query token of row r
            bool allowed = key < keyEnd && r < rows;
            if (maskKind != 0) allowed = allowed && key <= t + (Sk - Sq);
            if (maskKind == 2 && t < anchorLength && key < passingLength) allowed = false;
            if (!allowed) s[r] = DECODE_NEG_INF;
            const float mNew = fmaxf(m[r], warp_max(s[r]));
            // A row with no visible key so far keeps m = -inf, l = 0, acc = 0 (no inf - inf).
            const float correction = mNew == DECODE_NEG_INF ? 1.f : decode_exp2(m[r] - mNew);
            const float p = mNew == DECODE_NEG_INF ? 0.f : decode_exp2(s[r] - mNew);
            m[r] = mNew;
            l[r] = l[r] * correction + p;  // this lane's share; summed over the warp at the end
#pragma unroll
            for (int c = 0; c < COLS; c++) acc[r][c] *= correction;
            ps[warp][r][lane] = p;
        }
        __syncwarp();
        // acc[r][:] += sum over the tile's keys of p[r][key] * V[key][lane's columns].
        const int count = min(32, keyEnd - tile);
        for (int j0 = 0; j0 < count; j0 += 8) {
            float vf[8][COLS];
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const bf16 *vr = v + (tile + j0 + j) * kvStride + (long)kvHead * D + lane * COLS;
                if (j0 + j < count) {
                    if constexpr (COLS == 4) {
                        uint2 raw = __ldg(reinterpret_cast<const uint2 *>(vr));
                        const __nv_bfloat162 *pairs = reinterpret_cast<const __nv_bfloat162 *>(&raw);
                        float2 lo = __bfloat1622float2(pairs[0]), hi = __bfloat1622float2(pairs[1]);
                        vf[j][0] = lo.x; vf[j][1] = lo.y; vf[j][2] = hi.x; vf[j][3] = hi.y;
                    } else {
                        unsigned raw = __ldg(reinterpret_cast<const unsigned *>(vr));
                        float2 two = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw));
                        vf[j][0] = two.x; vf[j][1] = two.y;
                    }
                } else {
#pragma unroll
                    for (int c = 0; c < COLS; c++) vf[j][c] = 0.f;
                }
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
                const float4 p0 = *reinterpret_cast<const float4 *>(&ps[warp][r][j0]);
                const float4 p1 = *reinterpret_cast<const float4 *>(&ps[warp][r][j0 + 4]);
                const float p[8] = {p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w};
#pragma unroll
                for (int j = 0; j < 8; j++) {
#pragma unroll
                    for (int c = 0; c < COLS; c++) acc[r][c] += p[j] * vf[j][c];
                }
            }
        }
        __syncwarp();
    }

    // Merge the warps' states: out = sum_w 2^(m_w - M) acc_w / sum_w 2^(m_w - M) l_w.
#pragma unroll
    for (int r = 0; r < R; r++) {
        const float total = warp_sum(l[r]);
        if (lane == 0) {
            warpMax[warp][r] = m[r];
            warpSum[warp][r] = total;
        }
#pragma unroll
        for (int c = 0; c < COLS; c++) warpAcc[warp][r][lane * COLS + c] = acc[r][c];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < rows * D; i += blockDim.x) {
        const int r = i / D, c = i % D;
        float M = DECODE_NEG_INF;
        for (int w = 0; w < DECODE_WARPS; w++) M = fmaxf(M, warpMax[w][r]);
        float L = 0.f, O = 0.f;
        if (M != DECODE_NEG_INF) {
            for (int w = 0; w < DECODE_WARPS; w++) {
                const float weight = decode_exp2(warpMax[w][r] - M);
                L += weight * warpSum[w][r];
                O += weight * warpAcc[w][r][c];
            }
        }
        const int t = r / G, h = kvHead * G + r % G;
        partialOut[(((long)split * Sq + t) * H + h) * D + c] = L > 0.f ? O / L : 0.f;
        if (c == 0) {
            partialLse[((long)split * H + h) * Sq + t] = L > 0.f ? (M + log2f(L)) * 0.6931471805599453f : DECODE_NEG_INF;
        }
    }
}

#define BATON_DECODE(D, R)                                                                                          \
    extern "C" __global__ void __launch_bounds__(DECODE_WARPS * 32) decode_attention_d##D##_r##R(                   \
        const bf16 *__restrict__ q, const bf16 *__restrict__ k, const bf16 *__restrict__ v,                         \
        float *__restrict__ partialOut, float *__restrict__ partialLse, int Sq, int Sk, int H, int Hkv,              \
        int maskKind, int anchorLength, int passingLength, float scaleLog2, int keysPerSplit) {                     \
        decode_attention<D, R>(q, k, v, partialOut, partialLse, Sq, Sk, H, Hkv, maskKind, anchorLength,            \
                               passingLength, scaleLog2, keysPerSplit);                                             \
    }
BATON_DECODE(64, 1)
BATON_DECODE(64, 2)
BATON_DECODE(64, 4)
BATON_DECODE(64, 8)
BATON_DECODE(128, 1)
BATON_DECODE(128, 2)
BATON_DECODE(128, 4)
BATON_DECODE(128, 8)
