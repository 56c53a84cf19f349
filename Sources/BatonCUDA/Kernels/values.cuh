// What the element-wise kernel files share (KernelSources pastes this file where they include it):
// loads and stores of "any float" values by dtype code (0 f32, 1 bf16, 2 f16; Swift: KernelDType),
// -inf, and the grid-stride loop.
#define BATON_NEG_INF (-__int_as_float(0x7f800000))
#define GRID_STRIDE(i, n) \
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long)gridDim.x * blockDim.x)

__device__ __forceinline__ float load_as_float(const void *p, int dtype, long i) {
    if (dtype == 1) return __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(p)[i]);
    if (dtype == 2) return __half2float(reinterpret_cast<const __half *>(p)[i]);
    return reinterpret_cast<const float *>(p)[i];
}

__device__ __forceinline__ void store_float(void *p, int dtype, long i, float value) {
    if (dtype == 1) reinterpret_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16(value);
    else if (dtype == 2) reinterpret_cast<__half *>(p)[i] = __float2half(value);
    else reinterpret_cast<float *>(p)[i] = value;
}
