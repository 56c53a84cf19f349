// Tensor-core building blocks shared by the mma.sync attention kernels (attention.cu's flash
// versions and attention_segments.cu): cp.async copies, ldmatrix fragment loads, the m16n8k16 bf16
// MMA, and the online-softmax step of one key tile. Needs cuda_bf16.h, bf16 and BATON_NEG_INF.

__device__ __forceinline__ unsigned shared_address(const void *p) {
    return (unsigned)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void cp_async16(unsigned destination, const void *source, int sourceBytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(destination), "l"(source),
                 "r"(sourceBytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(unsigned *r, unsigned address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned *r, unsigned address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}

// c += a (16x16 row) * b (16x8 col), bf16 in, fp32 accumulate.
__device__ __forceinline__ void mma_bf16(float *c, const unsigned *a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned *>(&v);
}

// Zeroes a warp's accumulator fragments (MT m16 tiles of N n8 tiles).
template <int MT, int N> __device__ __forceinline__ void zero_fragments(float (&x)[MT][N][4]) {
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int i = 0; i < N; i++) x[mt][i][0] = x[mt][i][1] = x[mt][i][2] = x[mt][i][3] = 0.f;
}

// P of keys [16 kk, 16 kk + 16) as bf16 A operands of the P V MMA, from the score fragments s.
template <int MT, int NT>
__device__ __forceinline__ void pack_probabilities(unsigned (&p)[MT][4], const float (&s)[MT][NT][4], int kk) {
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        p[mt][0] = pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        p[mt][1] = pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        p[mt][2] = pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        p[mt][3] = pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
    }
}

// A row's sum from the parts its quad of lanes holds (lanes 4g..4g+3 share rows g and g + 8).
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffff, x, 1);
    return x + __shfl_xor_sync(0xffffffff, x, 2);
}

// This lane's columns of row `half` (0: g, 1: g + 8) of an m16 tile of O, times `scale`, as bf16.
template <int DT>
__device__ __forceinline__ void store_row_bf16(bf16 *destination, const float (&o)[DT][4], int half, float scale,
                                               int t4) {
#pragma unroll
    for (int i = 0; i < DT; i++)
        *reinterpret_cast<__nv_bfloat162 *>(destination + i * 8 + t4 * 2) =
            __floats2bfloat162_rn(o[i][half * 2] * scale, o[i][half * 2 + 1] * scale);
}

// One key tile's online-softmax step for a warp's MT m16 tiles: raw scores s (NT n8 tiles, masked
// entries -inf) become P = exp2(s * scaleLog2 - m), the running max m (log2 units) and sum l move
// on, and O (DT n8 tiles) is rescaled when a row's max moved. A row that has seen no key keeps
// m = -inf and P = 0.
template <int MT, int NT, int DT>
__device__ __forceinline__ void online_softmax(float (&s)[MT][NT][4], float (&m)[MT][2], float (&l)[MT][2],
                                               float (&o)[MT][DT][4], float scaleLog2) {
    // Every row of the warp at once (one basic block, independent chains, two partial
    // results per row) so the reductions' latencies overlap. Raw scores: the scale is
    // folded into one FFMA per element.
    float base[MT][2], correction[MT][2];
    bool rescale = false;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            float max0 = s[mt][0][half * 2], max1 = s[mt][0][half * 2 + 1];
#pragma unroll
            for (int j = 1; j < NT; j++) {
                max0 = fmaxf(max0, s[mt][j][half * 2]);
                max1 = fmaxf(max1, s[mt][j][half * 2 + 1]);
            }
            base[mt][half] = fmaxf(max0, max1);
        }
    }
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int half = 0; half < 2; half++)
            base[mt][half] = fmaxf(base[mt][half], __shfl_xor_sync(0xffffffff, base[mt][half], 1));
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const float rowMax = fmaxf(base[mt][half], __shfl_xor_sync(0xffffffff, base[mt][half], 2));
            const float scaledMax = fmaxf(m[mt][half], rowMax * scaleLog2);  // log2 units
            base[mt][half] = scaledMax == BATON_NEG_INF ? 0.f : scaledMax;
            correction[mt][half] = exp2f(m[mt][half] - base[mt][half]);
            m[mt][half] = scaledMax;
            rescale |= correction[mt][half] != 1.f;
        }
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
            for (int j = 0; j < NT; j++) {
                s[mt][j][half * 2] = exp2f(fmaf(s[mt][j][half * 2], scaleLog2, -base[mt][half]));
                s[mt][j][half * 2 + 1] = exp2f(fmaf(s[mt][j][half * 2 + 1], scaleLog2, -base[mt][half]));
                sum0 += s[mt][j][half * 2];
                sum1 += s[mt][j][half * 2 + 1];
            }
            l[mt][half] = l[mt][half] * correction[mt][half] + (sum0 + sum1);
        }
    }
    // Once the running maxima settle (most tiles of a long row) no lane rescales O.
    if (__any_sync(0xffffffff, rescale)) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int i = 0; i < DT; i++) {
                o[mt][i][0] *= correction[mt][0];
                o[mt][i][1] *= correction[mt][0];
                o[mt][i][2] *= correction[mt][1];
                o[mt][i][3] *= correction[mt][1];
            }
    }
}
