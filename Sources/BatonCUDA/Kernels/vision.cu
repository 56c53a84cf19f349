// Vision-language kernels (Qwen2.5-VL): exact GELU, sectioned rotary (M-RoPE and the vision 2-D
// rotary); attention within the vision tower's windows and frames is segment_attention.cu.
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
