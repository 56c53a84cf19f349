// Hopper (sm_90a) flash attention forward, head dim 64 or 128: the contract of attention.cu (q [Sq, H, d],
// k/v [Sk, Hkv, d] bf16, GQA by index, out [Sq, H, d] bf16, lse [H, Sq] fp32 natural log; masks 0 full,
// 1 bottom-right causal, 2 APB anchor; a row that sees no key gets out 0 and lse -inf).
//
// Why it is faster than the mma.sync versions:
// - wgmma: one warpgroup (128 threads) issues a 64x128x16 product that reads both operands straight
//   from shared memory (S = Q K^T) or P from registers and V from shared memory (O += P V), so no
//   ldmatrix traffic through registers, and the tensor cores run asynchronously to the softmax math.
// - TMA: one producer thread copies whole 128-key K and V tiles (as D/64 64-column halves, 128-byte
//   swizzled, exactly the layout the wgmma descriptors describe) into a ring of STAGES buffers;
//   rows past Sq or Sk arrive as zeros (out-of-bounds fill), and keys past Sk are masked;
//   mbarrier transaction counts tell the consumers when a tile has landed, and consumer arrivals
//   tell the producer when a buffer is free. K and V buffers are freed separately: K_i as soon as
//   S_i is computed, so the next K load overlaps the softmax (one shared "empty" barrier per stage
//   instead cost 20% at 32K: the loads then had only one step of lead). The producer warpgroup
//   gives its registers to the two consumer warpgroups (setmaxnreg 24 / 240: ptxas allocates each
//   region to its own limit; the producer spills above 24), which hold S, P and O (64 + 32 + D/2
//   fp32 or bf16x2 registers a thread).
// - Ping-pong: the two consumer warpgroups (64 query rows each) take turns on the tensor cores
//   (named barriers), so one warpgroup's softmax runs while the other's GEMMs do.
//
// Shared memory, from a 1024-byte aligned base (the 128-byte swizzle repeats every 8 rows = 1 KB),
// with D/64 column halves of 16 KB each per tile:
//   Q  [D/64][128 rows][64 cols]
//   K  [STAGES][D/64][128 keys][64 cols]
//   V  [STAGES][D/64][128 keys][64 cols]
//   mbarriers: qFull, kFull[STAGES], vFull[STAGES], kEmpty[STAGES], vEmpty[STAGES]

typedef unsigned long long u64;

// The driver's CUtensorMap: 128 opaque bytes, passed by value as a __grid_constant__ parameter.
struct __align__(64) TensorMap {
    u64 opaque[16];
};

#define HOPPER_NEG_INF (-__int_as_float(0x7f800000))

namespace hopper {

constexpr int BR = 128, BC = 128, STAGES = 2;
constexpr int HALF_TILE = 128 * 64 * 2;  // bytes of one 128-row, 64-column half tile

// Byte offsets of a head dim's shared-memory layout (the host adds the same sizes up).
template <int D> struct Layout {
    static constexpr int TILE = D / 64 * HALF_TILE;
    static constexpr int Q_OFFSET = 0, K_OFFSET = TILE, V_OFFSET = K_OFFSET + STAGES * TILE;
    static constexpr int BARRIER_OFFSET = V_OFFSET + STAGES * TILE;
};

__device__ __forceinline__ unsigned smem(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

// MARK: mbarrier and TMA

__device__ __forceinline__ void barrier_init(unsigned bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void barrier_expect(unsigned bar, int bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void barrier_arrive(unsigned bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void barrier_wait(unsigned bar, int parity) {
    asm volatile(
        "{\n"
        ".reg .pred done;\n"
        "wait_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra wait_%=;\n"
        "}\n" ::"r"(bar),
        "r"(parity)
        : "memory");
}

// Copies box {64 columns, 1 head, 128 rows} at (column, head, row) into 16 KB of swizzled shared memory.
__device__ __forceinline__ void tma_load(unsigned destination, const TensorMap *map, int column, int head, int row,
                                         unsigned bar) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(
            destination),
        "l"((u64)map), "r"(column), "r"(head), "r"(row), "r"(bar)
        : "memory");
}

// MARK: wgmma

// Shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte offsets (>> 4).
__device__ __forceinline__ u64 descriptor(unsigned address, unsigned leading, unsigned stride) {
    return (u64)((address & 0x3FFFF) >> 4) | ((u64)(leading >> 4) << 16) | ((u64)(stride >> 4) << 32) | (1ull << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving reads or writes of accumulators across an asynchronous wgmma.
template <int N> __device__ __forceinline__ void fence_registers(float (&r)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}

#define HOPPER_ACC64                                                                                              \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, "  \
    "%46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define HOPPER_F4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define HOPPER_F16(i) HOPPER_F4(i), HOPPER_F4(i + 4), HOPPER_F4(i + 8), HOPPER_F4(i + 12)

// d[64x128] (+)= A[64x16] (shared, K-major) * B[16x128] (shared, K-major: B^T rows are keys).
__device__ __forceinline__ void wgmma_ss(float (&d)[64], u64 a, u64 b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " HOPPER_ACC64 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
        : HOPPER_F16(0), HOPPER_F16(16), HOPPER_F16(32), HOPPER_F16(48)
        : "l"(a), "l"(b), "r"(accumulate));
}

// d[64x128] += A[64x16] (registers, bf16x2) * B[16x128] (shared, MN-major: V rows are keys).
__device__ __forceinline__ void wgmma_rs(float (&d)[64], const unsigned (&a)[4], u64 b) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " HOPPER_ACC64
                 ", {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
                 : HOPPER_F16(0), HOPPER_F16(16), HOPPER_F16(32), HOPPER_F16(48)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

// The same with N = 64 (head dim 64).
__device__ __forceinline__ void wgmma_rs(float (&d)[32], const unsigned (&a)[4], u64 b) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
                 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, "
                 "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
                 : HOPPER_F16(0), HOPPER_F16(16)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

#include "attention_mask.cuh"

// Named barriers 1 and 2 order the two consumer warpgroups' GEMMs (0 is __syncthreads).
__device__ __forceinline__ void named_sync(int id) { asm volatile("bar.sync %0, 256;\n" ::"r"(id) : "memory"); }
__device__ __forceinline__ void named_arrive(int id) { asm volatile("bar.arrive %0, 256;\n" ::"r"(id) : "memory"); }

// The per-consumer-warpgroup state and steps of the main loop.
template <int D> struct Consumer {
    static constexpr int TILE = Layout<D>::TILE;
    int consumer, warp, lane, g, t4, wgRow0;
    int Sq, Sk, maskKind, anchorLength, passingLength, offset;
    float scaleLog2;
    unsigned sQ, sK, sV;
    float m[2], l[2];

    // sc = Q_wg K_stage^T (8 k-steps over the two 64-column halves).
    __device__ __forceinline__ void issue_s(float (&sc)[64], int stage) const {
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const unsigned half = (kk / 4) * HALF_TILE, column = (kk % 4) * 32;
            wgmma_ss(sc, descriptor(sQ + half + consumer * (64 * 128) + column, 16, 1024),
                     descriptor(sK + stage * TILE + half + column, 16, 1024), kk);
        }
        wgmma_commit();
    }
    // o += P V_stage: V is MN-major (transposed B), so the descriptor's stride byte offset steps 8 keys
    // (1 KB) and its leading byte offset steps 64 columns (HALF_TILE; checked on the H100, the
    // swapped fields give wrong results); 16 keys = 2 KB of rows.
    __device__ __forceinline__ void issue_pv(float (&o)[D / 2], const unsigned (&p)[8][4], int stage) const {
#pragma unroll
        for (int kk = 0; kk < 8; kk++) wgmma_rs(o, p[kk], descriptor(sV + stage * TILE + kk * 2048, HALF_TILE, 1024));
        wgmma_commit();
    }
    // Masks, updates the running max and sum, turns sc into exp2 weights; returns O's correction.
    __device__ __forceinline__ void softmax(float (&sc)[64], int key0, float (&correction)[2]) {
        const bool edge = key0 + BC > Sk || (maskKind != 0 && key0 + BC - 1 > wgRow0 + offset) ||
                          (maskKind == 2 && key0 < passingLength && wgRow0 < anchorLength);
        if (edge) {
#pragma unroll
            for (int j = 0; j < 16; j++)
#pragma unroll
                for (int half = 0; half < 2; half++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
                        if (!attention_allowed(wgRow0 + warp * 16 + g + half * 8, key0 + j * 8 + t4 * 2 + e, Sq, Sk, maskKind,
                                     anchorLength, passingLength))
                            sc[j * 4 + half * 2 + e] = HOPPER_NEG_INF;
        }
        float base2[2];
#pragma unroll
        for (int half = 0; half < 2; half++) {
            float max0 = sc[half * 2], max1 = sc[half * 2 + 1];
#pragma unroll
            for (int j = 1; j < 16; j++) {
                max0 = fmaxf(max0, sc[j * 4 + half * 2]);
                max1 = fmaxf(max1, sc[j * 4 + half * 2 + 1]);
            }
            base2[half] = fmaxf(max0, max1);
        }
#pragma unroll
        for (int half = 0; half < 2; half++) {
            float rowMax = fmaxf(base2[half], __shfl_xor_sync(0xffffffff, base2[half], 1));
            rowMax = fmaxf(rowMax, __shfl_xor_sync(0xffffffff, rowMax, 2));
            const float scaledMax = fmaxf(m[half], rowMax * scaleLog2);  // log2 units
            base2[half] = scaledMax == HOPPER_NEG_INF ? 0.f : scaledMax;
            correction[half] = exp2f(m[half] - base2[half]);
            m[half] = scaledMax;
        }
#pragma unroll
        for (int half = 0; half < 2; half++) {
            float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
            for (int j = 0; j < 16; j++) {
                sc[j * 4 + half * 2] = exp2f(fmaf(sc[j * 4 + half * 2], scaleLog2, -base2[half]));
                sc[j * 4 + half * 2 + 1] = exp2f(fmaf(sc[j * 4 + half * 2 + 1], scaleLog2, -base2[half]));
                sum0 += sc[j * 4 + half * 2];
                sum1 += sc[j * 4 + half * 2 + 1];
            }
            l[half] = l[half] * correction[half] + (sum0 + sum1);
        }
    }
};

template <int D>
__device__ __forceinline__ void rescale_and_pack(float (&o)[D / 2], const float (&sc)[64], const float (&correction)[2],
                                                 unsigned (&p)[8][4]) {
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
        o[j * 4 + 0] *= correction[0];
        o[j * 4 + 1] *= correction[0];
        o[j * 4 + 2] *= correction[1];
        o[j * 4 + 3] *= correction[1];
    }
#pragma unroll
    for (int kk = 0; kk < 8; kk++) {
        p[kk][0] = pack_bf16(sc[(2 * kk) * 4 + 0], sc[(2 * kk) * 4 + 1]);
        p[kk][1] = pack_bf16(sc[(2 * kk) * 4 + 2], sc[(2 * kk) * 4 + 3]);
        p[kk][2] = pack_bf16(sc[(2 * kk + 1) * 4 + 0], sc[(2 * kk + 1) * 4 + 1]);
        p[kk][3] = pack_bf16(sc[(2 * kk + 1) * 4 + 2], sc[(2 * kk + 1) * 4 + 3]);
    }
}

}  // namespace hopper

using namespace hopper;

template <int D>
__device__ __forceinline__ void attention(const TensorMap *qMap, const TensorMap *kMap, const TensorMap *vMap,
                                          unsigned short *__restrict__ out, float *__restrict__ lse, int Sq, int Sk,
                                          int H, int Hkv, int maskKind, int anchorLength, int passingLength,
                                          float scaleLog2) {
    using L = Layout<D>;
    constexpr int TILE = L::TILE, Q_OFFSET = L::Q_OFFSET, K_OFFSET = L::K_OFFSET, V_OFFSET = L::V_OFFSET,
                  BARRIER_OFFSET = L::BARRIER_OFFSET;
    extern __shared__ unsigned char sharedRaw[];
    const unsigned base = (smem(sharedRaw) + 1023) & ~1023u;
    const unsigned sQ = base + Q_OFFSET, sK = base + K_OFFSET, sV = base + V_OFFSET;
    const unsigned qFull = base + BARRIER_OFFSET, kFull = qFull + 8, vFull = kFull + 8 * STAGES,
                   kEmpty = vFull + 8 * STAGES, vEmpty = kEmpty + 8 * STAGES;

    const int qTile = gridDim.x - 1 - blockIdx.x;  // longest causal rows first
    const int h = blockIdx.y, hk = h / (H / Hkv);
    const int row0 = qTile * BR, offset = Sk - Sq;

    // Key tiles this block visits (as in attention.cu): causal rows stop at their diagonal; an
    // anchor-only block skips the passing keys by whole tiles.
    const int rowLast = min(row0 + BR, Sq) - 1;
    const int keyEnd = maskKind == 0 ? Sk : max(0, min(Sk, rowLast + offset + 1));
    const int keyBegin = (maskKind == 2 && rowLast < anchorLength) ? min(passingLength, keyEnd) : 0;
    const int tileBegin = keyBegin / BC, tileEnd = (keyEnd + BC - 1) / BC;
    const int tiles = max(0, tileEnd - tileBegin);

    const int warpgroup = threadIdx.x / 128, thread = threadIdx.x % 128;
    if (threadIdx.x == 0) {
        barrier_init(qFull, 1);
        for (int s = 0; s < STAGES; s++) {
            barrier_init(kFull + 8 * s, 1);
            barrier_init(vFull + 8 * s, 1);
            barrier_init(kEmpty + 8 * s, 8);  // one arrival per consumer warp
            barrier_init(vEmpty + 8 * s, 8);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (warpgroup == 0) {
        // Producer: one thread issues every copy; the warpgroup keeps few registers.
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
        if (thread == 0 && tiles > 0) {
            barrier_expect(qFull, TILE);
#pragma unroll
            for (int half = 0; half < D / 64; half++) tma_load(sQ + half * HALF_TILE, qMap, half * 64, h, row0, qFull);
            for (int i = 0; i < tiles; i++) {
                const int s = i % STAGES, key0 = (tileBegin + i) * BC;
                barrier_wait(kEmpty + 8 * s, ((i / STAGES) & 1) ^ 1);
                barrier_expect(kFull + 8 * s, TILE);
#pragma unroll
                for (int half = 0; half < D / 64; half++)
                    tma_load(sK + s * TILE + half * HALF_TILE, kMap, half * 64, hk, key0, kFull + 8 * s);
                barrier_wait(vEmpty + 8 * s, ((i / STAGES) & 1) ^ 1);
                barrier_expect(vFull + 8 * s, TILE);
#pragma unroll
                for (int half = 0; half < D / 64; half++)
                    tma_load(sV + s * TILE + half * HALF_TILE, vMap, half * 64, hk, key0, vFull + 8 * s);
            }
        }
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
    const int consumer = warpgroup - 1;  // rows consumer*64 .. +63 of the block
    Consumer<D> c;
    c.consumer = consumer;
    c.warp = thread / 32, c.lane = thread % 32, c.g = c.lane / 4, c.t4 = c.lane % 4;
    c.wgRow0 = row0 + consumer * 64;
    c.Sq = Sq, c.Sk = Sk, c.maskKind = maskKind, c.anchorLength = anchorLength, c.passingLength = passingLength;
    c.offset = offset, c.scaleLog2 = scaleLog2, c.sQ = sQ, c.sK = sK, c.sV = sV;
    c.m[0] = c.m[1] = HOPPER_NEG_INF, c.l[0] = c.l[1] = 0.f;
    const int warp = c.warp, lane = c.lane, g = c.g, t4 = c.t4, wgRow0 = c.wgRow0;

    float o[D / 2], sc[64], correction[2];
    unsigned p[8][4];
#pragma unroll
    for (int i = 0; i < D / 2; i++) o[i] = 0.f;

    // Step i issues S_i = Q K_i^T and O += P_{i-1} V_{i-1} together, then runs the softmax of S_i
    // while P_{i-1} V_{i-1} is still on the tensor cores. The two warpgroups take turns issuing
    // (named barriers 1 and 2: one's turn starts when the other has issued), so one's softmax
    // overlaps the other's GEMMs. Turn order: 0.S0, 1.S0, 0.step1, 1.step1, ..., 0.last PV, 1.last PV;
    // every turn of one warpgroup after its first waits for the other's preceding turn. No wgmma
    // sits under a branch the compiler cannot prove uniform (ptxas would serialize them), so a tile
    // past this warpgroup's diagonal is computed and masked.
    if (tiles > 0) {
        barrier_wait(qFull, 0);
        barrier_wait(kFull, 0);
        if (consumer == 1) named_sync(2);
        wgmma_fence();
        c.issue_s(sc, 0);
        if (consumer == 0) named_arrive(2);
        if (consumer == 1) named_arrive(1);
        wgmma_wait<0>();
        fence_registers(sc);
        if (c.lane == 0) barrier_arrive(kEmpty);
        c.softmax(sc, tileBegin * BC, correction);
        rescale_and_pack<D>(o, sc, correction, p);
    }
    for (int i = 1; i < tiles; i++) {
        const int s = i % STAGES, previous = (i - 1) % STAGES;
        barrier_wait(kFull + 8 * s, (i / STAGES) & 1);
        barrier_wait(vFull + 8 * previous, ((i - 1) / STAGES) & 1);
        named_sync(1 + consumer);
        fence_registers(o);
        wgmma_fence();
        c.issue_s(sc, s);
        c.issue_pv(o, p, previous);
        if (consumer == 0) named_arrive(2);
        if (consumer == 1) named_arrive(1);
        wgmma_wait<1>();
        fence_registers(sc);
        // K_i is no longer read: the producer may refill its buffer while this softmax runs.
        if (lane == 0) barrier_arrive(kEmpty + 8 * s);
        c.softmax(sc, (tileBegin + i) * BC, correction);
        // O and P may be touched only once P_{i-1} V_{i-1} has finished.
        wgmma_wait<0>();
        fence_registers(o);
        rescale_and_pack<D>(o, sc, correction, p);
        // Nor is V_{i-1}.
        if (lane == 0) barrier_arrive(vEmpty + 8 * previous);
    }
    if (tiles > 0) {
        const int previous = (tiles - 1) % STAGES;
        barrier_wait(vFull + 8 * previous, ((tiles - 1) / STAGES) & 1);
        named_sync(1 + consumer);
        fence_registers(o);
        wgmma_fence();
        c.issue_pv(o, p, previous);
        if (consumer == 0) named_arrive(2);
        wgmma_wait<0>();
        fence_registers(o);
    }
    const float m[2] = {c.m[0], c.m[1]}, l[2] = {c.l[0], c.l[1]};

    if (wgRow0 >= Sq) return;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        float total = l[half];
        total += __shfl_xor_sync(0xffffffff, total, 1);
        total += __shfl_xor_sync(0xffffffff, total, 2);
        const int row = wgRow0 + warp * 16 + g + half * 8;
        if (row >= Sq) continue;
        const float inverse = total > 0.f ? 1.f / total : 0.f;
        unsigned *destination = reinterpret_cast<unsigned *>(out + ((long)row * H + h) * D);
#pragma unroll
        for (int j = 0; j < D / 8; j++)
            destination[j * 4 + t4] = pack_bf16(o[j * 4 + half * 2] * inverse, o[j * 4 + half * 2 + 1] * inverse);
        if (t4 == 0)
            lse[(long)h * Sq + row] = total > 0.f ? (m[half] + log2f(total)) * 0.69314718055994531f : HOPPER_NEG_INF;
    }
}

#define HOPPER_ATTENTION(D)                                                                                          \
    extern "C" __global__ void __launch_bounds__(384, 1) hopper_attention_d##D(                                    \
        const __grid_constant__ TensorMap qMap, const __grid_constant__ TensorMap kMap,                            \
        const __grid_constant__ TensorMap vMap, unsigned short *__restrict__ out, float *__restrict__ lse, int Sq, \
        int Sk, int H, int Hkv, int maskKind, int anchorLength, int passingLength, float scaleLog2) {             \
        attention<D>(&qMap, &kMap, &vMap, out, lse, Sq, Sk, H, Hkv, maskKind, anchorLength, passingLength,       \
                     scaleLog2);                                                                                   \
    }
// wgmma and setmaxnreg exist on sm_90a only: elsewhere the file compiles to nothing.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
HOPPER_ATTENTION(64)
HOPPER_ATTENTION(128)
#endif
