/* elementwise.cu — creation, decoding, unary, scale, binary, cast. */

/* Every element = bits (the host passes canon(value) for f32). */
extern "C" __global__ void assay_fill_u32(u32 *out, u64 n, u32 bits) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        out[i] = bits;
    }
}

/* In place: any NaN becomes canonical (uploads). */
extern "C" __global__ void assay_canon_f32(float *x, u64 n) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        x[i] = assay_canon(x[i]);
    }
}

static __device__ __forceinline__ u32 assay_le32(const u8 *p) {
    return (u32)p[0] | ((u32)p[1] << 8) | ((u32)p[2] << 16) | ((u32)p[3] << 24);
}

/* IEEE binary16 -> binary32, exact; NaN -> canonical. Same program as the CPU's. */
static __device__ __forceinline__ float assay_f16_to_f32(u32 h) {
    u32 sign = (h >> 15) << 31;
    u32 e = (h >> 10) & 0x1fu;
    u32 man = h & 0x3ffu;
    if (e == 0) {
        if (man == 0) {
            return __uint_as_float(sign);
        }
        /* man * 2^-24: exact in f32 */
        float v = (float)man * __uint_as_float(0x33800000u);
        return sign ? -v : v;
    }
    if (e == 0x1f) {
        return man == 0 ? __uint_as_float(sign | 0x7f800000u) : __uint_as_float(ASSAY_CANONICAL_NAN);
    }
    return __uint_as_float(sign | ((e + 127 - 15) << 23) | (man << 13));
}

/* Value i of GGML blocks `enc` (5 Q4_0, 6 Q4_1, 7 Q8_0) at `src`, decoded
 * (SEMANTICS.md, "Input decoding"); byte j of a 4-bit block holds value j
 * (low nibble) and j + 16 (high). */
static __device__ __forceinline__ float assay_block_value(const u8 *src, u64 i, int enc) {
    u64 j = i % 32;
    u64 bytes = enc == 5 ? 18 : (enc == 6 ? 20 : 34);
    const u8 *b = src + (i / 32) * bytes;
    float d = assay_f16_to_f32((u32)b[0] | ((u32)b[1] << 8));
    if (enc == 7) {
        return d * (float)(signed char)b[2 + j];
    }
    const u8 *qs = b + (enc == 5 ? 2 : 4);
    int q = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
    if (enc == 5) {
        return d * (float)(q - 8);
    }
    float m = assay_f16_to_f32((u32)b[2] | ((u32)b[3] << 8));
    return d * (float)q + m; /* --fmad=false: a product, then a sum */
}

/* Little-endian bytes -> elements. `enc`: 0 f32, 1 f16, 2 bf16, 3 i32, 4 i64
 * (the host checked that every i64 fits in i32), 5-7 GGML blocks. */
extern "C" __global__ void assay_decode(const u8 *src, u32 *out, u64 n, int enc) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        u32 bits;
        if (enc == 0) {
            bits = __float_as_uint(assay_canon(__uint_as_float(assay_le32(src + 4 * i))));
        } else if (enc == 1) {
            u32 h = (u32)src[2 * i] | ((u32)src[2 * i + 1] << 8);
            bits = __float_as_uint(assay_canon(assay_f16_to_f32(h)));
        } else if (enc == 2) {
            u32 h = (u32)src[2 * i] | ((u32)src[2 * i + 1] << 8);
            bits = __float_as_uint(assay_canon(__uint_as_float(h << 16)));
        } else if (enc == 3) {
            bits = assay_le32(src + 4 * i);
        } else if (enc == 4) {
            bits = assay_le32(src + 8 * i); /* the low half of an in-range i64 */
        } else {
            bits = __float_as_uint(assay_canon(assay_block_value(src, i, enc)));
        }
        out[i] = bits;
    }
}

/* gather from a table of GGML blocks: output row r is table row idx[r]
 * (`cols` values, whole blocks; the host checked every index), decoded. */
extern "C" __global__ void assay_decode_rows(const u8 *src, const int *idx, float *out,
                                             u64 rows, u64 cols, int enc) {
    u64 n = rows * cols;
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        u64 row = (u64)idx[i / cols];
        out[i] = assay_canon(assay_block_value(src, row * cols + i % cols, enc));
    }
}

/* SEMANTICS.md: gelu(x) = (0.5*x) * (1 + erf(x * f32(1/sqrt 2))), no fma. */
static __device__ __forceinline__ float assay_gelu(float x) {
    float e = assay_erf(x * __uint_as_float(0x3f3504f3u));
    float h = 0.5f * x;
    return h * (1.0f + e);
}

static __device__ __forceinline__ float assay_sigmoid(float x) {
    return 1.0f / (1.0f + assay_exp(-x));
}

/* Unary op codes: the order of `UnaryOp` in ../ops.rs. */
#define ASSAY_U_NEG 0
#define ASSAY_U_ABS 1
#define ASSAY_U_RELU 2
#define ASSAY_U_GELU 3
#define ASSAY_U_TANH 4
#define ASSAY_U_SIGMOID 5
#define ASSAY_U_EXP 6
#define ASSAY_U_LOG 7
#define ASSAY_U_SQRT 8

static __device__ __forceinline__ float assay_unary(int op, float v) {
    switch (op) {
    case ASSAY_U_NEG: return __uint_as_float(__float_as_uint(v) ^ 0x80000000u);
    case ASSAY_U_ABS: return __uint_as_float(__float_as_uint(v) & 0x7fffffffu);
    case ASSAY_U_RELU: return assay_maximum(v, 0.0f);
    case ASSAY_U_GELU: return assay_gelu(v);
    case ASSAY_U_TANH: return assay_tanh(v);
    case ASSAY_U_SIGMOID: return assay_sigmoid(v);
    case ASSAY_U_EXP: return assay_exp(v);
    case ASSAY_U_LOG: return assay_log(v);
    default: return sqrtf(v); /* correctly rounded: --prec-sqrt=true */
    }
}

extern "C" __global__ void assay_unary_f32(const float *x, float *out, u64 n, int op) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        out[i] = assay_canon(assay_unary(op, x[i]));
    }
}

/* SEMANTICS.md swiglu: (g * sigmoid(g)) * u, each product rounded (--fmad=false). */
extern "C" __global__ void assay_swiglu_f32(const float *gate, const float *up, float *out, u64 n) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        float g = gate[i];
        out[i] = assay_canon((g * assay_sigmoid(g)) * up[i]);
    }
}

/* SEMANTICS.md rope: each head's pair (a, b) of row r becomes
 * (a*c - b*s, a*s + b*c) with c, s = cos[r, i], sin[r, i]; the products
 * are rounded before the sums (--fmad=false). The pair is columns 2i, 2i+1
 * of the head, or i, i + half when `halves`. One thread per pair. */
extern "C" __global__ void assay_rope_f32(const float *x, const float *cos_t, const float *sin_t,
                                          float *out, u64 rows, u64 heads, u64 half, int halves) {
    u64 per_row = heads * half, width = 2 * per_row;
    for (u64 p = assay_tid(); p < rows * per_row; p += assay_stride()) {
        u64 r = p / per_row, rest = p - r * per_row;
        u64 h = rest / half, i = rest - h * half;
        u64 head = r * width + h * 2 * half;
        u64 ia = halves ? head + i : head + 2 * i;
        u64 ib = halves ? head + i + half : head + 2 * i + 1;
        float a = x[ia], b = x[ib], c = cos_t[r * half + i], s = sin_t[r * half + i];
        out[ia] = assay_canon(a * c - b * s);
        out[ib] = assay_canon(a * s + b * c);
    }
}

extern "C" __global__ void assay_scale_f32(const float *x, float *out, u64 n, float factor) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        out[i] = assay_canon(x[i] * factor);
    }
}

/* Binary op codes: the order of `BinaryOp`. */
static __device__ __forceinline__ float assay_binary(int op, float a, float b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b; /* IEEE division: --prec-div=true */
    case 4: return assay_maximum(a, b);
    default: return assay_minimum(a, b);
    }
}

/* out[base_out + i] = a[base_a + off_a(i)] op b[base_b + off_b(i)] over d (broadcast strides). */
extern "C" __global__ void assay_binary_f32(const float *a, const float *b, float *out, StridedDims d,
                                            u64 n, i64 base_a, i64 base_b, i64 base_out, int op) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        i64 oa, ob;
        assay_offsets(d, i, &oa, &ob);
        out[base_out + (i64)i] = assay_canon(assay_binary(op, a[base_a + oa], b[base_b + ob]));
    }
}

/* f32 -> i32 as Rust's `as`: truncate toward zero, saturate, NaN -> 0. */
extern "C" __global__ void assay_f32_to_i32(const float *x, int *out, u64 n) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        float v = x[i];
        int r;
        if (assay_is_nan(v)) {
            r = 0;
        } else if (v >= 2147483648.0f) {
            r = 2147483647;
        } else if (v <= -2147483648.0f) {
            r = (-2147483647 - 1);
        } else {
            r = __float2int_rz(v);
        }
        out[i] = r;
    }
}

/* i32 -> f32, round to nearest even. */
extern "C" __global__ void assay_i32_to_f32(const int *x, float *out, u64 n) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        out[i] = __int2float_rn(x[i]);
    }
}
