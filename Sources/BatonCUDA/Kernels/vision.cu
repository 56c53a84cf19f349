// Vision-language kernels (Qwen2.5-VL): exact GELU, sectioned rotary (M-RoPE and the vision 2-D
// rotary), and attention within variable-length segments (the vision tower's windows and frames).
// Inputs of "any float" type carry a dtype code: 0 f32, 1 bf16, 2 f16 (Swift: KernelDType).
// All arithmetic is fp32; stores round to nearest even. Compiled without fast math (erff, sincosf
// and expf keep their full accuracy). CPU references: CPUBackend+Vision.swift.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

typedef __nv_bfloat16 bf16;

#include "values.cuh"

// x / 2 * (1 + erf(x / sqrt 2)): torch's GELU (approximate="none").
extern "C" __global__ void gelu_values(const void *x, int xType, void *out, int outType, long n) {
    GRID_STRIDE(i, n) {
        const float value = load_as_float(x, xType, i);
        store_float(out, outType, i, value * 0.5f * (1.f + erff(value * 0.70710678118654752f)));
    }
}

// x [T, H, d] -> out [T, H, d], rotate-half rotary in which frequency c (of d/2) turns by
// positions[r, t] * inverseFrequencies[c], r = the section holding c: sections end (exclusive,
// cumulative) at end0 <= end1 <= end2 <= end3 = d/2 (unused sections repeat the last end).
// One thread per (token, frequency): one sincosf for all H heads.
extern "C" __global__ void sectioned_rotary(const void *x, int xType, const int *positions,
                                           const float *inverseFrequencies, void *out, int outType, long T, int H,
                                           int d, int end0, int end1, int end2) {
    const long half = d / 2;
    GRID_STRIDE(i, T * half) {
        const long c = i % half, t = i / half;
        const int row = (c >= end0) + (c >= end1) + (c >= end2);
        float sine, cosine;
        sincosf((float)positions[row * T + t] * inverseFrequencies[c], &sine, &cosine);
        for (int h = 0; h < H; h++) {
            const long base = (t * H + h) * d;
            const float a = load_as_float(x, xType, base + c), b = load_as_float(x, xType, base + c + half);
            store_float(out, outType, base + c, a * cosine - b * sine);
            store_float(out, outType, base + c + half, b * cosine + a * sine);
        }
    }
}

// MARK: - attention within segments

#define SEGMENT_ROWS 64
#define SEGMENT_KEYS 32

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

// q, k, v [N, H, D] bf16, segments [S + 1] i32 cumulative offsets -> out [N, H, D] bf16: each row
// attends (non-causal) to the keys of its own segment. One launch for any number of segments:
// block (x: 64 consecutive rows, y: head), one thread per query row with q and the output
// accumulator in registers; the block walks the keys of every segment its rows touch in 32-key
// tiles staged in shared memory as fp32 (every thread reads the same key element: a broadcast),
// and each row skips the keys outside its segment. Online softmax per tile, fp32 throughout.
// A window block wastes at most the keys of the neighbouring segments it straddles.
// Scalar CUDA-core arithmetic: correct for any head dim in the list below, not yet tensor cores.
template <int D>
__device__ __forceinline__ void attention_segments(const bf16 *__restrict__ q, const bf16 *__restrict__ k,
                                                   const bf16 *__restrict__ v, bf16 *__restrict__ out,
                                                   const int *__restrict__ segments, int S, int N, int H,
                                                   float scale) {
    __shared__ float keys[SEGMENT_KEYS][D];
    __shared__ float values[SEGMENT_KEYS][D];
    const int h = blockIdx.y;
    const int firstRow = blockIdx.x * SEGMENT_ROWS;
    const int lastRow = min(firstRow + SEGMENT_ROWS, N) - 1;
    const int row = firstRow + threadIdx.x;
    const bool active = row < N;
    const int keyBegin = segments[segment_of(segments, S, firstRow)];
    const int keyEnd = segments[segment_of(segments, S, lastRow) + 1];
    int lo = 0, hi = 0;
    if (active) {
        const int s = segment_of(segments, S, row);
        lo = segments[s];
        hi = segments[s + 1];
    }
    float qv[D], acc[D];
#pragma unroll
    for (int c = 0; c < D; c++) {
        qv[c] = active ? __bfloat162float(q[((long)row * H + h) * D + c]) * scale : 0.f;
        acc[c] = 0.f;
    }
    float m = BATON_NEG_INF, l = 0.f;
    for (int key0 = keyBegin; key0 < keyEnd; key0 += SEGMENT_KEYS) {  // the same trip count in every thread
        __syncthreads();
        for (int i = threadIdx.x; i < SEGMENT_KEYS * D; i += blockDim.x) {
            const int j = i / D, c = i % D, key = key0 + j;
            const long at = ((long)key * H + h) * D + c;
            keys[j][c] = key < keyEnd ? __bfloat162float(k[at]) : 0.f;
            values[j][c] = key < keyEnd ? __bfloat162float(v[at]) : 0.f;
        }
        __syncthreads();
        const int jBegin = max(lo - key0, 0), jEnd = min(hi - key0, SEGMENT_KEYS);
        if (!active || jBegin >= jEnd) continue;
        float s[SEGMENT_KEYS];
        float tileMax = BATON_NEG_INF;
#pragma unroll
        for (int j = 0; j < SEGMENT_KEYS; j++) {
            float dot = 0.f;
#pragma unroll
            for (int c = 0; c < D; c++) dot = fmaf(qv[c], keys[j][c], dot);
            s[j] = (j >= jBegin && j < jEnd) ? dot : BATON_NEG_INF;
            tileMax = fmaxf(tileMax, s[j]);
        }
        const float mNew = fmaxf(m, tileMax);  // finite: the tile holds at least one key of this row
        const float correction = expf(m - mNew);  // 0 while m is still -inf
        l *= correction;
#pragma unroll
        for (int c = 0; c < D; c++) acc[c] *= correction;
#pragma unroll
        for (int j = 0; j < SEGMENT_KEYS; j++) {
            const float p = expf(s[j] - mNew);  // 0 for keys outside the segment
            l += p;
#pragma unroll
            for (int c = 0; c < D; c++) acc[c] = fmaf(p, values[j][c], acc[c]);
        }
        m = mNew;
    }
    if (!active) return;
    const float inverse = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
    for (int c = 0; c < D; c++) out[((long)row * H + h) * D + c] = __float2bfloat16(acc[c] * inverse);
}

#define BATON_SEGMENTS(D)                                                                                         \
    extern "C" __global__ void __launch_bounds__(SEGMENT_ROWS) attention_segments_d##D(                          \
        const bf16 *__restrict__ q, const bf16 *__restrict__ k, const bf16 *__restrict__ v, bf16 *__restrict__ out, \
        const int *__restrict__ segments, int S, int N, int H, float scale) {                                    \
        attention_segments<D>(q, k, v, out, segments, S, N, H, scale);                                            \
    }
// 80: Qwen2.5-VL's vision heads (1280 / 16); 16 and 32: small test models; 64, 128: common heads.
BATON_SEGMENTS(16)
BATON_SEGMENTS(32)
BATON_SEGMENTS(64)
BATON_SEGMENTS(80)
BATON_SEGMENTS(128)
