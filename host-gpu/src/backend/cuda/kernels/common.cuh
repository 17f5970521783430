/*
 * common.cuh — shared by every Assay CUDA kernel.
 *
 * The kernels are compiled as ONE translation unit: `kernels::source()` in
 * ../kernels.rs concatenates host-gpu/kernels/canonical.h, this file and the
 * .cu files in a fixed order (no #include: NVRTC gets no include path). They
 * must be compiled with --fmad=false --ftz=false --prec-div=true
 * --prec-sqrt=true and never --use_fast_math (SEMANTICS.md, section 6).
 *
 * Rules every kernel follows:
 *   - fmaf() exactly where SEMANTICS.md writes fma, nowhere else;
 *   - no expf/__expf/erff/tanhf/logf/fmaxf/fminf: the canonical functions of
 *     canonical.h and the maximum/minimum below;
 *   - every f32 store goes through assay_canon (NaN -> 0x7fc00000 by a bit test);
 *   - a thread (or a warp, for row reductions) owns whole outputs; sums run
 *     in exactly the order SEMANTICS.md gives.
 */

typedef unsigned int u32;
typedef unsigned char u8;
typedef long long i64;
typedef unsigned long long u64;

#define ASSAY_FULL_WARP 0xffffffffu
#define ASSAY_MAX_DIMS 8

/* x, with any NaN replaced by the canonical NaN (a test on the bits). */
static __device__ __forceinline__ float assay_canon(float x) {
    u32 b = __float_as_uint(x);
    return (b & 0x7fffffffu) > 0x7f800000u ? __uint_as_float(ASSAY_CANONICAL_NAN) : x;
}

static __device__ __forceinline__ bool assay_is_nan(float x) {
    return (__float_as_uint(x) & 0x7fffffffu) > 0x7f800000u;
}

/* IEEE 754-2019 maximum: NaN if either is NaN; maximum(-0, +0) = +0. */
static __device__ __forceinline__ float assay_maximum(float a, float b) {
    if (assay_is_nan(a) || assay_is_nan(b)) {
        return __uint_as_float(ASSAY_CANONICAL_NAN);
    }
    if (a > b) {
        return a;
    }
    if (b > a) {
        return b;
    }
    return __uint_as_float(__float_as_uint(a) & __float_as_uint(b));
}

/* IEEE 754-2019 minimum: NaN if either is NaN; minimum(-0, +0) = -0. */
static __device__ __forceinline__ float assay_minimum(float a, float b) {
    if (assay_is_nan(a) || assay_is_nan(b)) {
        return __uint_as_float(ASSAY_CANONICAL_NAN);
    }
    if (a < b) {
        return a;
    }
    if (b < a) {
        return b;
    }
    return __uint_as_float(__float_as_uint(a) | __float_as_uint(b));
}

/* The first global thread index and the grid stride of a 1-D grid-stride loop. */
static __device__ __forceinline__ u64 assay_tid() {
    return (u64)blockIdx.x * (u64)blockDim.x + (u64)threadIdx.x;
}
static __device__ __forceinline__ u64 assay_stride() {
    return (u64)gridDim.x * (u64)blockDim.x;
}

/*
 * Up to ASSAY_MAX_DIMS coalesced output dimensions (row-major, last fastest)
 * and the element strides of two operands over them (0 = broadcast). The host
 * splits anything of higher rank into several launches (base offsets).
 * Layout matches `StridedDims` in ../ops.rs: #[repr(C)].
 */
struct StridedDims {
    int rank;
    int pad;
    i64 dims[ASSAY_MAX_DIMS];
    i64 s0[ASSAY_MAX_DIMS];
    i64 s1[ASSAY_MAX_DIMS];
};

/* Offsets in operand 0 and 1 of row-major position `i` over d.dims. */
static __device__ __forceinline__ void assay_offsets(const StridedDims &d, u64 i, i64 *o0, i64 *o1) {
    i64 a = 0, b = 0;
    for (int k = d.rank - 1; k >= 0; --k) {
        u64 dim = (u64)d.dims[k];
        u64 q = i / dim;
        i64 r = (i64)(i - q * dim);
        a += r * d.s0[k];
        b += r * d.s1[k];
        i = q;
    }
    *o0 = a;
    *o1 = b;
}

/* ---- the 32-lane row reduction (SEMANTICS.md section 2) ----
 * Lane l has folded x[l], x[l+32], ... ascending from +0.0 into s; the lanes
 * then combine pairwise s[l] += s[l+16] (l < 16), +8, +4, +2, +1. With
 * __shfl_down_sync lane l reads lane l+w, which for l < w is a lane that the
 * previous step updated; lanes >= w compute values nobody reads. The result
 * (lane 0's) is broadcast to every lane. */
static __device__ __forceinline__ float assay_lanes_combine(float s) {
    s = s + __shfl_down_sync(ASSAY_FULL_WARP, s, 16);
    s = s + __shfl_down_sync(ASSAY_FULL_WARP, s, 8);
    s = s + __shfl_down_sync(ASSAY_FULL_WARP, s, 4);
    s = s + __shfl_down_sync(ASSAY_FULL_WARP, s, 2);
    s = s + __shfl_down_sync(ASSAY_FULL_WARP, s, 1);
    return __shfl_sync(ASSAY_FULL_WARP, s, 0);
}

/* Order-free warp maximum / minimum (every lane gets the result). */
static __device__ __forceinline__ float assay_warp_max(float m) {
    for (int w = 16; w > 0; w >>= 1) {
        m = assay_maximum(m, __shfl_xor_sync(ASSAY_FULL_WARP, m, w));
    }
    return m;
}
static __device__ __forceinline__ float assay_warp_min(float m) {
    for (int w = 16; w > 0; w >>= 1) {
        m = assay_minimum(m, __shfl_xor_sync(ASSAY_FULL_WARP, m, w));
    }
    return m;
}

/* Row reductions run one warp per row, ASSAY_ROWS_PER_BLOCK warps per block. */
#define ASSAY_ROWS_PER_BLOCK 8
