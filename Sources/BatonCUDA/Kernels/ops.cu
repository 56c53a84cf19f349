// Element-wise, normalisation, rotary, selection and merge kernels of the Backend op set.
// Inputs of "any float" type carry a dtype code: 0 f32, 1 bf16, 2 f16 (Swift: KernelDType).
// All arithmetic is fp32; stores round to nearest even.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "values.cuh"

// Rounds through the 16-bit type, as a store and reload would.
__device__ __forceinline__ float round_to(int dtype, float value) {
    if (dtype == 1) return __bfloat162float(__float2bfloat16(value));
    if (dtype == 2) return __half2float(__float2half(value));
    return value;
}

extern "C" __global__ void cast_values(const void *x, int xType, void *out, int outType, long n) {
    GRID_STRIDE(i, n) store_float(out, outType, i, load_as_float(x, xType, i));
}

extern "C" __global__ void add_values(const void *a, int aType, const void *b, int bType, void *out, int outType,
                                      long n) {
    GRID_STRIDE(i, n) store_float(out, outType, i, load_as_float(a, aType, i) + load_as_float(b, bType, i));
}

// y [M, N] += bias [N], in place (y is the fresh GEMM output).
extern "C" __global__ void add_bias_rows(void *y, int yType, const void *bias, int biasType, long M, long N) {
    GRID_STRIDE(i, M * N) store_float(y, yType, i, load_as_float(y, yType, i) + load_as_float(bias, biasType, i % N));
}

__device__ __forceinline__ float silu_of(float x) { return x / (1.f + expf(-x)); }

extern "C" __global__ void silu_values(const void *x, int xType, void *out, int outType, long n) {
    GRID_STRIDE(i, n) store_float(out, outType, i, silu_of(load_as_float(x, xType, i)));
}

extern "C" __global__ void silu_multiply(const void *gate, int gateType, const void *up, int upType, void *out,
                                         int outType, long n) {
    GRID_STRIDE(i, n) {
        float g = load_as_float(gate, gateType, i);
        store_float(out, outType, i, silu_of(g) * load_as_float(up, upType, i));
    }
}

// x [M, 2F] = [gate | up] (one GEMM of the concatenated weights) -> out [M, F] = silu(gate) * up.
extern "C" __global__ void silu_multiply_halves(const void *x, int xType, void *out, int outType, long M, long F) {
    GRID_STRIDE(i, M * F) {
        long row = i / F, c = i % F;
        float g = load_as_float(x, xType, row * 2 * F + c);
        store_float(out, outType, i, silu_of(g) * load_as_float(x, xType, row * 2 * F + F + c));
    }
}

// The same for bf16 in and out with F % 8 == 0 and 16-byte aligned rows: 8 elements per thread,
// one 16-byte load of gate, one of up, one 16-byte store.
extern "C" __global__ void silu_multiply_halves_bf16x8(const uint4 *x, uint4 *out, long M, long F8) {
    GRID_STRIDE(i, M * F8) {
        long row = i / F8, c = i % F8;
        uint4 g = x[row * 2 * F8 + c], u = x[row * 2 * F8 + F8 + c], y;
        const __nv_bfloat162 *g2 = reinterpret_cast<const __nv_bfloat162 *>(&g);
        const __nv_bfloat162 *u2 = reinterpret_cast<const __nv_bfloat162 *>(&u);
        __nv_bfloat162 *y2 = reinterpret_cast<__nv_bfloat162 *>(&y);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 gf = __bfloat1622float2(g2[k]), uf = __bfloat1622float2(u2[k]);
            y2[k] = __floats2bfloat162_rn(silu_of(gf.x) * uf.x, silu_of(gf.y) * uf.y);
        }
        out[i] = y;
    }
}

// out [T, D] = table [V, D] rows ids[t]; an id outside [0, V) gives a NaN row (visible, never silent).
extern "C" __global__ void embedding_rows(const void *table, int tableType, const int *ids, void *out, int outType,
                                          long T, long D, long V) {
    GRID_STRIDE(i, T * D) {
        long t = i / D, c = i % D;
        int id = ids[t];
        float value = (id >= 0 && id < V) ? load_as_float(table, tableType, (long)id * D + c) : __int_as_float(0x7fc00000);
        store_float(out, outType, i, value);
    }
}

// The sum of `value` over the block (blockDim.x a multiple of 32, at most 1024), returned to every
// thread. `partial` is 32 floats of shared memory, free for the next call once this returns.
__device__ float block_sum(float value, float *partial) {
    for (int o = 16; o > 0; o >>= 1) value += __shfl_xor_sync(0xffffffff, value, o);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = value;
    __syncthreads();
    if (threadIdx.x < 32) {
        value = threadIdx.x < (blockDim.x + 31) / 32 ? partial[threadIdx.x] : 0.f;
        for (int o = 16; o > 0; o >>= 1) value += __shfl_xor_sync(0xffffffff, value, o);
        if (threadIdx.x == 0) partial[0] = value;
    }
    __syncthreads();
    const float total = partial[0];
    __syncthreads();  // every thread has read the total before a next call overwrites it
    return total;
}

// Block per row: x / sqrt(mean(x^2) + eps), rounded to the activation type, then times weight.
extern "C" __global__ void rms_norm_rows(const void *x, int xType, const void *weight, int weightType, void *out,
                                         int outType, long D, float epsilon) {
    const long row = blockIdx.x;
    __shared__ float partial[32];
    float sum = 0.f;
    for (long c = threadIdx.x; c < D; c += blockDim.x) {
        float value = load_as_float(x, xType, row * D + c);
        sum += value * value;
    }
    const float inverse = rsqrtf(block_sum(sum, partial) / (float)D + epsilon);
    for (long c = threadIdx.x; c < D; c += blockDim.x) {
        float normalised = round_to(outType, load_as_float(x, xType, row * D + c) * inverse);
        store_float(out, outType, row * D + c, normalised * load_as_float(weight, weightType, c));
    }
}

// Block per row of x [N, C]: torch's LayerNorm, (x - mean) / sqrt(var + eps) * weight + bias, one
// rounding to outType. The biased variance is a second reduction over (x - mean)^2, not
// E[x^2] - mean^2, which cancels for rows far from zero mean. Any C: threads stride the row, which
// is read three times (from L1/L2 after the first: a 4096-wide bf16 row is 8 KB).
extern "C" __global__ void layer_norm_rows(const void *x, int xType, const void *weight, int weightType,
                                           const void *bias, int biasType, void *out, int outType, long C,
                                           float epsilon) {
    const long base = (long)blockIdx.x * C;
    __shared__ float partial[32];
    float sum = 0.f;
    for (long c = threadIdx.x; c < C; c += blockDim.x) sum += load_as_float(x, xType, base + c);
    const float mean = block_sum(sum, partial) / (float)C;
    float squares = 0.f;
    for (long c = threadIdx.x; c < C; c += blockDim.x) {
        const float deviation = load_as_float(x, xType, base + c) - mean;
        squares += deviation * deviation;
    }
    const float inverse = rsqrtf(block_sum(squares, partial) / (float)C + epsilon);
    for (long c = threadIdx.x; c < C; c += blockDim.x) {
        const float normalised = (load_as_float(x, xType, base + c) - mean) * inverse;
        store_float(out, outType, base + c,
                    normalised * load_as_float(weight, weightType, c) + load_as_float(bias, biasType, c));
    }
}

// qkv [T, (H + 2 Hkv) d] (the fused q/k/v projection) -> q [T, H, d] and k [T, Hkv, d] with the
// rotate-half rotary embedding (angle positions[t] * inverseFrequencies[c]), v [T, Hkv, d] copied:
// one pass over the GEMM output. With Hkv 0 it is the plain rotary of x [T, H, d] into q. One thread
// per (token, rotation pair c): the angle's sine and cosine, which cost far more than the rotation
// (large arguments take sincosf's slow path), are computed once for all H + Hkv heads.
extern "C" __global__ void rotary_qkv(const void *qkv, int xType, const int *positions, const float *inverseFrequencies,
                                      void *q, void *k, void *v, int outType, long T, int H, int Hkv, int d) {
    const long half = d / 2, width = (long)(H + 2 * Hkv) * d;
    GRID_STRIDE(i, T * half) {
        const long c = i % half, t = i / half, row = t * width;
        float sine, cosine;
        sincosf((float)positions[t] * inverseFrequencies[c], &sine, &cosine);
        for (int h = 0; h < H + Hkv; h++) {
            const long in = row + (long)h * d;
            void *out = h < H ? q : k;
            const long base = h < H ? (t * H + h) * d : (t * Hkv + h - H) * d;
            const float a = load_as_float(qkv, xType, in + c), b = load_as_float(qkv, xType, in + c + half);
            store_float(out, outType, base + c, a * cosine - b * sine);
            store_float(out, outType, base + c + half, b * cosine + a * sine);
        }
        for (int h = 0; h < Hkv; h++) {
            const long in = row + (long)(H + Hkv + h) * d, base = (t * Hkv + h) * d;
            store_float(v, outType, base + c, load_as_float(qkv, xType, in + c));
            store_float(v, outType, base + c + half, load_as_float(qkv, xType, in + c + half));
        }
    }
}

// Copies a [T, n] block into columns [column, column + n) of a [T, total] tensor.
extern "C" __global__ void copy_columns(const unsigned char *part, unsigned char *out, long T, long partBytes,
                                        long totalBytes, long columnByte) {
    GRID_STRIDE(i, T * partBytes) {
        long t = i / partBytes, b = i % partBytes;
        out[t * totalBytes + columnByte + b] = part[i];
    }
}

// One thread per (row, head): acc/accLse (fp32) merged with part b in the stable form
// out -= sigmoid(lse_b - lse) * (out - out_b); lse -= logsigmoid(lse - lse_b). -inf rows drop out.
extern "C" __global__ void merge_attention_pair(float *accOut, float *accLse, const void *partOut, int partType,
                                                const float *partLse, long Sq, long H, long d) {
    GRID_STRIDE(i, Sq * H) {
        long row = i / H, h = i % H;
        float lseA = accLse[h * Sq + row], lseB = partLse[h * Sq + row];
        if (lseB == BATON_NEG_INF) continue;
        float *o = accOut + i * d;
        if (lseA == BATON_NEG_INF) {
            for (long c = 0; c < d; c++) o[c] = load_as_float(partOut, partType, i * d + c);
            accLse[h * Sq + row] = lseB;
            continue;
        }
        float weight = 1.f / (1.f + expf(lseA - lseB));  // sigmoid(lseB - lseA)
        for (long c = 0; c < d; c++) o[c] -= weight * (o[c] - load_as_float(partOut, partType, i * d + c));
        float x = lseA - lseB;
        float logSigmoid = x > 0.f ? -log1pf(expf(-x)) : x - log1pf(expf(x));
        accLse[h * Sq + row] = lseA - logSigmoid;
    }
}

// Block per row of logits [R, V]: index of the largest value, ties to the lower index.
extern "C" __global__ void argmax_rows(const void *logits, int type, long V, int *out) {
    const long row = blockIdx.x;
    float best = BATON_NEG_INF;
    long bestIndex = V;
    for (long c = threadIdx.x; c < V; c += blockDim.x) {
        float value = load_as_float(logits, type, row * V + c);
        if (value > best || (bestIndex == V && !(value != value))) { best = value; bestIndex = c; }
    }
    __shared__ float values[1024];
    __shared__ long indices[1024];
    values[threadIdx.x] = best;
    indices[threadIdx.x] = bestIndex;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) {
            float other = values[threadIdx.x + stride];
            long otherIndex = indices[threadIdx.x + stride];
            if (otherIndex < V && (indices[threadIdx.x] == V || other > values[threadIdx.x] ||
                                   (other == values[threadIdx.x] && otherIndex < indices[threadIdx.x]))) {
                values[threadIdx.x] = other;
                indices[threadIdx.x] = otherIndex;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[row] = indices[0] < V ? (int)indices[0] : 0;
}

// meanQuery [Hkv, d] = mean over rows t and the G heads of group h of q [Q, H, d].
extern "C" __global__ void mean_query_per_group(const void *q, int qType, float *meanQuery, long Q, long H, long Hkv,
                                                long d) {
    const long G = H / Hkv;
    GRID_STRIDE(i, Hkv * d) {
        long h = i / d, c = i % d;
        float sum = 0.f;
        for (long t = 0; t < Q; t++)
            for (long g = 0; g < G; g++) sum += load_as_float(q, qType, (t * H + h * G + g) * d + c);
        meanQuery[i] = sum / (float)(Q * G);
    }
}

// scores [S, Hkv] = <meanQuery[h], k[j, h]>.
extern "C" __global__ void query_aware_scores(const float *meanQuery, const void *k, int kType, float *scores, long S,
                                              long Hkv, long d) {
    GRID_STRIDE(i, S * Hkv) {
        long h = i % Hkv;
        float sum = 0.f;
        for (long c = 0; c < d; c++) sum += meanQuery[h * d + c] * load_as_float(k, kType, i * d + c);
        scores[i] = sum;
    }
}

// [S, C] f32 max pool along S, odd window, stride 1, -inf padding.
extern "C" __global__ void max_pool_rows(const float *scores, float *out, long S, long C, int window) {
    GRID_STRIDE(i, S * C) {
        long s = i / C, c = i % C;
        float best = BATON_NEG_INF;
        for (long j = s - window / 2; j <= s + window / 2; j++)
            if (j >= 0 && j < S) best = fmaxf(best, scores[j * C + c]);
        out[i] = best;
    }
}

// x [S, C, d], indices [C, k] -> out [k, C, d] with out[i, c] = x[indices[c, i], c].
extern "C" __global__ void gather_rows_per_head(const unsigned char *x, const int *indices, unsigned char *out,
                                                long S, long C, long k, long rowBytes) {
    GRID_STRIDE(i, k * C * rowBytes) {
        long b = i % rowBytes, c = (i / rowBytes) % C, j = i / (rowBytes * C);
        long source = indices[c * k + j];
        out[i] = (source >= 0 && source < S) ? x[(source * C + c) * rowBytes + b] : 0xFF;
    }
}

// Uniform values in [-1, 1) from a counter hash (splitmix64 of seed + index): benchmark inputs
// made on the device, the same for a given seed whatever the launch shape.
extern "C" __global__ void fill_uniform(void *out, int outType, long n, unsigned long long seed) {
    GRID_STRIDE(i, n) {
        unsigned long long z = seed + (unsigned long long)i * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        store_float(out, outType, i, (float)(z >> 40) * (2.f / 16777216.f) - 1.f);
    }
}
