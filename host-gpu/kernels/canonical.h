/*
 * canonical.h — Assay's canonical math in C: exp, log, erf, tanh.
 *
 * This is host-gpu/src/math.rs line by line (DESIGN.md, "Determinism
 * contract", point 5): the same constants (same names with an ASSAY_ prefix,
 * same decimal literals), the same IEEE binary32 operations in the same
 * order, fmaf() exactly where the Rust has mul_add(). Read the two side by
 * side; the algorithms, constants and measured accuracy are documented at the
 * top of math.rs. host-gpu/tests/math_c_crosscheck.rs compiles this header as
 * C99 and as C++17 and checks it bit for bit against the Rust.
 *
 * Compilation requirements (results are only canonical under them):
 *   - binary32 arithmetic, round-to-nearest-even, no flush-to-zero
 *     (nvcc/NVRTC: --ftz=false --prec-div=true --prec-sqrt=true;
 *      host: SSE, not x87 — -fexcess-precision=standard where it matters);
 *   - no contraction of a*b+c into an fma: NVRTC/nvcc --fmad=false,
 *     gcc/clang -ffp-contract=off; never -ffast-math / --use_fast_math.
 * Only + - * /, fmaf, comparisons and bit casts are used: no expf, no
 * __expf, no libm function other than fmaf.
 *
 * Under NVRTC no standard header is included (fmaf and the bit-cast
 * intrinsics are built in). Elsewhere <math.h> (fmaf) and <string.h>
 * (memcpy for the bit casts on the host) are.
 */
#ifndef ASSAY_CANONICAL_H
#define ASSAY_CANONICAL_H

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define ASSAY_MATH_FN static __host__ __device__ inline
#else
#define ASSAY_MATH_FN static inline
#endif

#if !defined(__CUDACC_RTC__)
#include <math.h>
#include <string.h>
#endif

/* unsigned int and int must be 32 bits wide (they are on every target we build for). */
typedef char assay_canonical_u32_is_32_bits[(sizeof(unsigned int) == 4 && sizeof(int) == 4) ? 1 : -1];

/* ---------------------------------------------------------- bit casts -- */

ASSAY_MATH_FN unsigned int assay_to_bits(float x) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(x);
#else
    unsigned int u;
    memcpy(&u, &x, sizeof u);
    return u;
#endif
}

ASSAY_MATH_FN float assay_from_bits(unsigned int u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
#endif
}

/* The canonical NaN, 0x7fc00000. */
#define ASSAY_CANONICAL_NAN 0x7fc00000u
/* Sign bit of a binary32. */
#define ASSAY_SIGN_MASK 0x80000000u
/* +inf and -inf. */
#define ASSAY_INF_BITS 0x7f800000u
#define ASSAY_NEG_INF_BITS 0xff800000u

/* ---------------------------------------------------------------- exp -- */

/* Above this, exp overflows: e^88.8 > f32::MAX (0x42b1999a). */
#define ASSAY_EXP_OVERFLOW_X 88.8f
/* Below this, exp rounds to +0: e^-104 < 2^-150 (0xc2d00000). */
#define ASSAY_EXP_UNDERFLOW_X -104.0f
/* log2(e) rounded to f32 (0x3fb8aa3b). */
#define ASSAY_EXP_LOG2E 1.442695f
/* 1.5*2^23 (0x4b400000): adding it rounds to an integer, kept in the low bits. */
#define ASSAY_EXP_SHIFTER 12582912.0f
/* ln 2, high part: 15 significant bits, so k*LN2_HI is exact (0x3f317200). */
#define ASSAY_EXP_LN2_HI 0.69314575f
/* ln 2 - EXP_LN2_HI rounded to f32 (0x35bfbe8e). */
#define ASSAY_EXP_LN2_LO 1.4286068e-6f
/* exp polynomial: e^r ~ 1 + r + r^2*(C2 + r*(C3 + ... + r*C7)) (0x3f000000). */
#define ASSAY_EXP_C2 0.5f
/* (0x3e2aaa9e) */
#define ASSAY_EXP_C3 0.16666648f
/* (0x3d2aaa79) */
#define ASSAY_EXP_C4 0.04166648f
/* (0x3c089b99) */
#define ASSAY_EXP_C5 0.008337879f
/* (0x3ab6a072) */
#define ASSAY_EXP_C6 0.0013933314f
/* (0x3935b404) */
#define ASSAY_EXP_C7 0.00017328566f

/* 2^k for k in [-126, 127], built from the bits. */
ASSAY_MATH_FN float assay_pow2i(int k) {
    return assay_from_bits((unsigned int)(k + 127) << 23);
}

/* Reduction and polynomial shared by exp and tanh: e^x = 2^k*(1 + s), with
 * |s| <= ~0.42, for x in [EXP_UNDERFLOW_X, EXP_OVERFLOW_X]. Returns s, stores k. */
ASSAY_MATH_FN float assay_exp_core(float x, int *k_out) {
    /* k = round(x*log2e), |k| <= 150 */
    float t = fmaf(x, ASSAY_EXP_LOG2E, ASSAY_EXP_SHIFTER);
    float kf = t - ASSAY_EXP_SHIFTER;
    int k = (int)assay_to_bits(t) - 0x4b400000;
    /* r = x - k*ln2 */
    float r = fmaf(-kf, ASSAY_EXP_LN2_HI, x);
    r = fmaf(-kf, ASSAY_EXP_LN2_LO, r);
    /* e^r - 1 */
    float p = fmaf(ASSAY_EXP_C7, r, ASSAY_EXP_C6);
    p = fmaf(p, r, ASSAY_EXP_C5);
    p = fmaf(p, r, ASSAY_EXP_C4);
    p = fmaf(p, r, ASSAY_EXP_C3);
    p = fmaf(p, r, ASSAY_EXP_C2);
    *k_out = k;
    return fmaf(r * r, p, r);
}

/* Canonical e^x. */
ASSAY_MATH_FN float assay_exp(float x) {
    if (x != x) {
        return assay_from_bits(ASSAY_CANONICAL_NAN);
    }
    if (x > ASSAY_EXP_OVERFLOW_X) {
        return assay_from_bits(ASSAY_INF_BITS);
    }
    if (x < ASSAY_EXP_UNDERFLOW_X) {
        return 0.0f;
    }
    int k;
    float s = assay_exp_core(x, &k);
    float y = 1.0f + s;
    /* y*2^k in two steps: the first is exact, the second rounds once */
    int k1 = k / 2;
    int k2 = k - k1;
    return (y * assay_pow2i(k1)) * assay_pow2i(k2);
}

/* ---------------------------------------------------------------- log -- */

/* 2^23 (0x4b000000): scales a subnormal input into the normal range. */
#define ASSAY_LOG_SUBNORMAL_SCALE 8388608.0f
/* Bits of sqrt(1/2) rounded down (0x3f3504f3): the split point of the mantissa. */
#define ASSAY_LOG_SQRT_HALF_BITS 0x3f3504f3u
/* ln 2, high part (0x3f317180). */
#define ASSAY_LOG_LN2_HI 0.6931381f
/* ln 2 - LOG_LN2_HI rounded to f32 (0x3717f7d2). */
#define ASSAY_LOG_LN2_LO 9.0580015e-6f
/* log polynomial: R(z) = z*(L1 + z*(L2 + z*(L3 + z*L4))) (0x3f2aaaaa). */
#define ASSAY_LOG_L1 0.6666666f
/* (0x3eccce14) */
#define ASSAY_LOG_L2 0.40000975f
/* (0x3e91e98a) */
#define ASSAY_LOG_L3 0.2849849f
/* (0x3e78b092) */
#define ASSAY_LOG_L4 0.24286106f

/* Canonical natural logarithm. */
ASSAY_MATH_FN float assay_log(float x) {
    if (x != x || x < 0.0f) {
        return assay_from_bits(ASSAY_CANONICAL_NAN);
    }
    if (x == 0.0f) {
        return assay_from_bits(ASSAY_NEG_INF_BITS);
    }
    if (x == assay_from_bits(ASSAY_INF_BITS)) {
        return assay_from_bits(ASSAY_INF_BITS);
    }
    unsigned int ix = assay_to_bits(x);
    int k = 0;
    if (ix < 0x00800000u) {
        /* subnormal: scale into the normal range (exact) */
        k = -23;
        ix = assay_to_bits(x * ASSAY_LOG_SUBNORMAL_SCALE);
    }
    /* x = 2^k * m, m in [sqrt(1/2), sqrt(2)) */
    ix += 0x3f800000u - ASSAY_LOG_SQRT_HALF_BITS;
    k += (int)(ix >> 23) - 127;
    ix = (ix & 0x007fffffu) + ASSAY_LOG_SQRT_HALF_BITS;
    float f = assay_from_bits(ix) - 1.0f;
    /* log(1+f) = f - hfsq + s*(hfsq + R) */
    float s = f / (2.0f + f);
    float z = s * s;
    float w = z * z;
    float t1 = w * fmaf(w, ASSAY_LOG_L4, ASSAY_LOG_L2);
    float t2 = z * fmaf(w, ASSAY_LOG_L3, ASSAY_LOG_L1);
    float r = t2 + t1;
    float hfsq = 0.5f * f * f;
    float dk = (float)k;
    float lo = fmaf(dk, ASSAY_LOG_LN2_LO, s * (hfsq + r));
    return fmaf(dk, ASSAY_LOG_LN2_HI, (lo - hfsq) + f);
}

/* --------------------------------------------------------------- tanh -- */

/* Below this |x|, tanh uses the odd polynomial (0x3f200000). */
#define ASSAY_TANH_POLY_MAX 0.625f
/* From this |x| on, tanh rounds to 1 (0x41140000). */
#define ASSAY_TANH_ONE_MIN 9.25f
/* tanh polynomial: tanh a ~ a + a*z*(T1 + z*(T2 + ... + z*T6)) (0xbeaaaaaa). */
#define ASSAY_TANH_T1 -0.3333333f
/* (0x3e08883d) */
#define ASSAY_TANH_T2 0.13333221f
/* (0xbd5cf8c4) */
#define ASSAY_TANH_T3 -0.05394818f
/* (0x3cb1d2a8) */
#define ASSAY_TANH_T4 0.021706894f
/* (0xbc062f68) */
#define ASSAY_TANH_T5 -0.0081900135f
/* (0x3b0d140b) */
#define ASSAY_TANH_T6 0.002152684f

/* Canonical hyperbolic tangent. */
ASSAY_MATH_FN float assay_tanh(float x) {
    if (x != x) {
        return assay_from_bits(ASSAY_CANONICAL_NAN);
    }
    unsigned int sign = assay_to_bits(x) & ASSAY_SIGN_MASK;
    float a = assay_from_bits(assay_to_bits(x) & ~ASSAY_SIGN_MASK);
    float y;
    if (a < ASSAY_TANH_POLY_MAX) {
        float z = a * a;
        float p = fmaf(ASSAY_TANH_T6, z, ASSAY_TANH_T5);
        p = fmaf(p, z, ASSAY_TANH_T4);
        p = fmaf(p, z, ASSAY_TANH_T3);
        p = fmaf(p, z, ASSAY_TANH_T2);
        p = fmaf(p, z, ASSAY_TANH_T1);
        y = fmaf(a * z, p, a);
    } else if (a < ASSAY_TANH_ONE_MIN) {
        /* e^(2a) + 1 = 2^k*(1 + s) + 1, rounded once; k in [2, 27] */
        int k;
        float s = assay_exp_core(a + a, &k);
        float p2k = assay_pow2i(k);
        float d = fmaf(p2k, s, p2k + 1.0f);
        /* 1 - 2/d with the rounding errors of 2/d and of 1 - q put back:
         * 2/d = q + rem/d and 1 - q = h + h_err, both exactly */
        float q = 2.0f / d;
        float rem = fmaf(-q, d, 2.0f);
        float h = 1.0f - q;
        float h_err = (1.0f - h) - q;
        y = h + (h_err - rem / d);
    } else {
        y = 1.0f;
    }
    return assay_from_bits(assay_to_bits(y) | sign);
}

/* ---------------------------------------------------------------- erf -- */

/* Below this |x|, erf uses the odd polynomial (0x3f800000). */
#define ASSAY_ERF_POLY_MAX 1.0f
/* From this |x| on, erf rounds to 1 (0x407ae148). */
#define ASSAY_ERF_ONE_MIN 3.92f
/* erf polynomial: erf a ~ a + a*(E0 + z*(E1 + ... + z*E6)) (0x3e0375d4). */
#define ASSAY_ERF_E0 0.12837917f
/* (0xbec0939f) */
#define ASSAY_ERF_E1 -0.37612626f
/* (0x3de71673) */
#define ASSAY_ERF_E2 0.11283579f
/* (0xbcdbfb8d) */
#define ASSAY_ERF_E3 -0.026853347f
/* (0x3ba9f912) */
#define ASSAY_ERF_E4 0.005187162f
/* (0xba51a8af) */
#define ASSAY_ERF_E5 -0.0007997853f
/* (0x38a3b8ff) */
#define ASSAY_ERF_E6 7.806904e-5f
/* Centre of the tail interval: t = a - ERF_TAIL_MID (0x40200000). */
#define ASSAY_ERF_TAIL_MID 2.5f
/* erf tail: erfc a ~ e^(-a^2)*(R0 + t*(R1 + ... + t*R8)) (0x3e57ddf3). */
#define ASSAY_ERF_R0 0.2108076f
/* (0xbd9840b8) */
#define ASSAY_ERF_R1 -0.07434219f
/* (0x3ccc19a2) */
#define ASSAY_ERF_R2 0.024914566f
/* (0xbc053dae) */
#define ASSAY_ERF_R3 -0.008132381f
/* (0x3b16e59c) */
#define ASSAY_ERF_R4 0.0023025041f
/* (0xba2d3a11) */
#define ASSAY_ERF_R5 -0.0006608079f
/* (0x3a0e88eb) */
#define ASSAY_ERF_R6 0.00054372725f
/* (0x396c37c4) */
#define ASSAY_ERF_R7 0.00022527488f
/* (0x38e026d9) */
#define ASSAY_ERF_R8 0.00010688388f

/* Canonical error function. */
ASSAY_MATH_FN float assay_erf(float x) {
    if (x != x) {
        return assay_from_bits(ASSAY_CANONICAL_NAN);
    }
    unsigned int sign = assay_to_bits(x) & ASSAY_SIGN_MASK;
    float a = assay_from_bits(assay_to_bits(x) & ~ASSAY_SIGN_MASK);
    float y;
    if (a < ASSAY_ERF_POLY_MAX) {
        float z = a * a;
        float p = fmaf(ASSAY_ERF_E6, z, ASSAY_ERF_E5);
        p = fmaf(p, z, ASSAY_ERF_E4);
        p = fmaf(p, z, ASSAY_ERF_E3);
        p = fmaf(p, z, ASSAY_ERF_E2);
        p = fmaf(p, z, ASSAY_ERF_E1);
        p = fmaf(p, z, ASSAY_ERF_E0);
        y = fmaf(a, p, a);
    } else if (a < ASSAY_ERF_ONE_MIN) {
        float t = a - ASSAY_ERF_TAIL_MID;
        float p = fmaf(ASSAY_ERF_R8, t, ASSAY_ERF_R7);
        p = fmaf(p, t, ASSAY_ERF_R6);
        p = fmaf(p, t, ASSAY_ERF_R5);
        p = fmaf(p, t, ASSAY_ERF_R4);
        p = fmaf(p, t, ASSAY_ERF_R3);
        p = fmaf(p, t, ASSAY_ERF_R2);
        p = fmaf(p, t, ASSAY_ERF_R1);
        p = fmaf(p, t, ASSAY_ERF_R0);
        float e = assay_exp(-(a * a));
        y = fmaf(-e, p, 1.0f);
    } else {
        y = 1.0f;
    }
    return assay_from_bits(assay_to_bits(y) | sign);
}

#endif /* ASSAY_CANONICAL_H */
