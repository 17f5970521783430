/* reduce.cu — row reductions (one warp per row, the 32-lane order), the
 * row-wise normalisations, argmax, masked mean-pool. */

/* The warp's row, or a value >= rows when the warp has none. Rows are walked
 * with a grid stride, so any grid size covers any number of rows. */
static __device__ __forceinline__ u64 assay_first_row() {
    return (u64)blockIdx.x * ASSAY_ROWS_PER_BLOCK + threadIdx.x / 32;
}
static __device__ __forceinline__ u64 assay_row_stride() {
    return (u64)gridDim.x * ASSAY_ROWS_PER_BLOCK;
}

/* Σ x over a row in the 32-lane order. */
static __device__ __forceinline__ float assay_row_sum(const float *x, u64 n, u32 lane) {
    float s = 0.0f;
    for (u64 j = lane; j < n; j += 32) {
        s = s + x[j];
    }
    return assay_lanes_combine(s);
}

/* Σ x² with s = fma(x, x, s) (32-lane order). */
static __device__ __forceinline__ float assay_row_sumsq(const float *x, u64 n, u32 lane) {
    float s = 0.0f;
    for (u64 j = lane; j < n; j += 32) {
        float v = x[j];
        s = fmaf(v, v, s);
    }
    return assay_lanes_combine(s);
}

/* Σ (x − c)² with d = x − c; s = fma(d, d, s) (32-lane order). */
static __device__ __forceinline__ float assay_row_sumsqdev(const float *x, u64 n, float c, u32 lane) {
    float s = 0.0f;
    for (u64 j = lane; j < n; j += 32) {
        float d = x[j] - c;
        s = fmaf(d, d, s);
    }
    return assay_lanes_combine(s);
}

static __device__ __forceinline__ float assay_row_max(const float *x, u64 n, u32 lane) {
    float m = __uint_as_float(ASSAY_NEG_INF_BITS);
    for (u64 j = lane; j < n; j += 32) {
        m = assay_maximum(m, x[j]);
    }
    return assay_warp_max(m);
}

static __device__ __forceinline__ float assay_row_min(const float *x, u64 n, u32 lane) {
    float m = __uint_as_float(ASSAY_INF_BITS);
    for (u64 j = lane; j < n; j += 32) {
        m = assay_minimum(m, x[j]);
    }
    return assay_warp_min(m);
}

/* op: 0 sum, 1 mean, 2 max, 3 min (the order of `ReduceOp`). x [rows, n] -> out [rows].
 * n = 0 gives each op's identity (+0, NaN, -inf, +inf) with no special case. */
extern "C" __global__ void assay_reduce_rows(const float *x, float *out, u64 rows, u64 n, int op) {
    u32 lane = threadIdx.x & 31;
    for (u64 r = assay_first_row(); r < rows; r += assay_row_stride()) {
        const float *row = x + r * n;
        float v;
        if (op == 0) {
            v = assay_row_sum(row, n, lane);
        } else if (op == 1) {
            v = assay_row_sum(row, n, lane) / (float)n;
        } else if (op == 2) {
            v = assay_row_max(row, n, lane);
        } else {
            v = assay_row_min(row, n, lane);
        }
        if (lane == 0) {
            out[r] = assay_canon(v);
        }
    }
}

/* One warp's softmax of a row of n: e = exp(x − max) (stored), s = Σe (32
 * lanes), y = e · (1/s). Each lane reads and writes only its own elements
 * (j ≡ lane mod 32), so `o` may be `x`. */
static __device__ __forceinline__ void assay_softmax_row(const float *x, float *o, u64 n, u32 lane) {
    float m = assay_row_max(x, n, lane);
    float s = 0.0f;
    for (u64 j = lane; j < n; j += 32) {
        float e = assay_exp(x[j] - m);
        o[j] = e;
        s = s + e;
    }
    float inv = 1.0f / assay_lanes_combine(s);
    for (u64 j = lane; j < n; j += 32) {
        o[j] = assay_canon(o[j] * inv);
    }
}

extern "C" __global__ void assay_softmax_rows(const float *x, float *out, u64 rows, u64 n) {
    u32 lane = threadIdx.x & 31;
    for (u64 r = assay_first_row(); r < rows; r += assay_row_stride()) {
        assay_softmax_row(x + r * n, out + r * n, n, lane);
    }
}

/* Attention over sequences packed back to back: one warp per (token,
 * head) query row. `starts[t]`/`lens[t]`: the first row and the length of
 * token t's sequence. The row's scores go to `scratch` (row r at r·longest):
 * each the dot product over d from +0 (matmul), canonicalised, then scaled
 * (scale); then the softmax op's own row program; then each output
 * column the dot product of the probabilities with the values over the
 * sequence, ascending from +0 (matmul). */
extern "C" __global__ void assay_attention_rows(const float *q, const float *k, const float *v,
                                                const u32 *starts, const u32 *lens, float *scratch,
                                                float *out, u64 tokens, u64 heads, u64 d, u64 dv,
                                                u64 longest, float scale) {
    u32 lane = threadIdx.x & 31;
    u64 width = heads * d, v_width = heads * dv;
    for (u64 r = assay_first_row(); r < tokens * heads; r += assay_row_stride()) {
        u64 t = r / heads, h = r - t * heads;
        u64 first = starts[t], n = lens[t];
        const float *qi = q + t * width + h * d;
        float *s = scratch + r * longest;
        for (u64 j = lane; j < n; j += 32) {
            const float *kj = k + (first + j) * width + h * d;
            float acc = 0.0f;
            for (u64 c = 0; c < d; c++) {
                acc = fmaf(qi[c], kj[c], acc);
            }
            s[j] = assay_canon(assay_canon(acc) * scale);
        }
        assay_softmax_row(s, s, n, lane);
        __syncwarp();
        float *o = out + t * v_width + h * dv;
        for (u64 c = lane; c < dv; c += 32) {
            float acc = 0.0f;
            for (u64 j = 0; j < n; j++) {
                acc = fmaf(s[j], v[(first + j) * v_width + h * dv + c], acc);
            }
            o[c] = assay_canon(acc);
        }
        __syncwarp();
    }
}

/* Causal attention over a key/value cache held as blocks (SEMANTICS.md,
 * causal_attention): one warp per (query row i, head h). `key_rows[j]` and
 * `value_rows[j]` are the device addresses of position j's rows (kv_heads*d
 * and kv_heads*dv floats), wherever its block lies. Row i is position
 * n - t + i and sees positions 0..=n - t + i; head h reads key/value head
 * h / group. Then attention_rows' program over those positions: scores
 * into `scratch` (row r at r*n), softmax's row program, the context. */
extern "C" __global__ void assay_causal_attention_rows(const float *q, const u64 *key_rows,
                                                       const u64 *value_rows, float *scratch,
                                                       float *out, u64 t, u64 heads, u64 group,
                                                       u64 d, u64 dv, u64 n, float scale) {
    u32 lane = threadIdx.x & 31;
    u64 width = heads * d, out_width = heads * dv;
    for (u64 r = assay_first_row(); r < t * heads; r += assay_row_stride()) {
        u64 i = r / heads, h = r - i * heads, g = h / group;
        u64 seen = n - t + i + 1;
        const float *qi = q + i * width + h * d;
        float *s = scratch + r * n;
        for (u64 j = lane; j < seen; j += 32) {
            const float *kj = (const float *)key_rows[j] + g * d;
            float acc = 0.0f;
            for (u64 c = 0; c < d; c++) {
                acc = fmaf(qi[c], kj[c], acc);
            }
            s[j] = assay_canon(assay_canon(acc) * scale);
        }
        assay_softmax_row(s, s, seen, lane);
        __syncwarp();
        float *o = out + i * out_width + h * dv;
        for (u64 c = lane; c < dv; c += 32) {
            float acc = 0.0f;
            for (u64 j = 0; j < seen; j++) {
                acc = fmaf(s[j], ((const float *)value_rows[j])[g * dv + c], acc);
            }
            o[c] = assay_canon(acc);
        }
        __syncwarp();
    }
}

extern "C" __global__ void assay_layer_norm_rows(const float *x, const float *gamma, const float *beta,
                                                 float *out, u64 rows, u64 n, float eps) {
    u32 lane = threadIdx.x & 31;
    float nf = (float)n;
    for (u64 r = assay_first_row(); r < rows; r += assay_row_stride()) {
        const float *row = x + r * n;
        float *o = out + r * n;
        float mean = assay_row_sum(row, n, lane) / nf;
        float var = assay_row_sumsqdev(row, n, mean, lane) / nf;
        float rstd = 1.0f / sqrtf(var + eps);
        for (u64 j = lane; j < n; j += 32) {
            o[j] = assay_canon(fmaf((row[j] - mean) * rstd, gamma[j], beta[j]));
        }
    }
}

extern "C" __global__ void assay_rms_norm_rows(const float *x, const float *gamma, float *out, u64 rows,
                                               u64 n, float eps) {
    u32 lane = threadIdx.x & 31;
    float nf = (float)n;
    for (u64 r = assay_first_row(); r < rows; r += assay_row_stride()) {
        const float *row = x + r * n;
        float *o = out + r * n;
        float rstd = 1.0f / sqrtf(assay_row_sumsq(row, n, lane) / nf + eps);
        for (u64 j = lane; j < n; j += 32) {
            o[j] = assay_canon((row[j] * rstd) * gamma[j]);
        }
    }
}

extern "C" __global__ void assay_l2_normalize_rows(const float *x, float *out, u64 rows, u64 n, float eps) {
    u32 lane = threadIdx.x & 31;
    for (u64 r = assay_first_row(); r < rows; r += assay_row_stride()) {
        const float *row = x + r * n;
        float *o = out + r * n;
        float inv = 1.0f / assay_maximum(sqrtf(assay_row_sumsq(row, n, lane)), eps);
        for (u64 j = lane; j < n; j += 32) {
            o[j] = assay_canon(row[j] * inv);
        }
    }
}

/* A candidate of argmax: nan_at is the first NaN seen (or -1), else (value, at). */
struct AssayArg {
    i64 nan_at;
    i64 at;
    float value;
};

/* Which of two candidates the row's first-maximum scan would keep: a NaN
 * (the earlier one) beats everything; then the larger value; equal values
 * (+0 == −0) keep the earlier index. Commutative and associative. */
static __device__ __forceinline__ AssayArg assay_arg_pick(AssayArg a, AssayArg b) {
    if (a.nan_at >= 0 || b.nan_at >= 0) {
        if (a.nan_at < 0) return b;
        if (b.nan_at < 0) return a;
        return a.nan_at < b.nan_at ? a : b;
    }
    if (a.at < 0) return b;
    if (b.at < 0) return a;
    if (a.value > b.value) return a;
    if (b.value > a.value) return b;
    return a.at < b.at ? a : b;
}

/* Index of the first maximum (first NaN if any) of each row of n >= 1, as i32. */
extern "C" __global__ void assay_argmax_rows(const float *x, int *out, u64 rows, u64 n) {
    u32 lane = threadIdx.x & 31;
    for (u64 r = assay_first_row(); r < rows; r += assay_row_stride()) {
        const float *row = x + r * n;
        AssayArg best;
        best.nan_at = -1;
        best.at = -1;
        best.value = 0.0f;
        for (u64 j = lane; j < n; j += 32) {
            float v = row[j];
            if (assay_is_nan(v)) {
                best.nan_at = (i64)j;
                break;
            }
            if (best.at < 0 || v > best.value) {
                best.at = (i64)j;
                best.value = v;
            }
        }
        for (int w = 16; w > 0; w >>= 1) {
            AssayArg other;
            other.nan_at = __shfl_xor_sync(ASSAY_FULL_WARP, best.nan_at, w);
            other.at = __shfl_xor_sync(ASSAY_FULL_WARP, best.at, w);
            other.value = __shfl_xor_sync(ASSAY_FULL_WARP, best.value, w);
            best = assay_arg_pick(best, other);
        }
        if (lane == 0) {
            out[r] = (int)(best.nan_at >= 0 ? best.nan_at : best.at);
        }
    }
}

/* x [b, s, d], mask [b, s] -> out [b, d]; one thread per (batch row, column):
 * acc = fma(w, x, acc) over s ascending, skipping w == ±0; y = acc / Σw. */
extern "C" __global__ void assay_masked_mean_pool(const float *x, const float *mask, float *out, u64 b,
                                                  u64 s, u64 d) {
    u64 total = b * d;
    for (u64 i = assay_tid(); i < total; i += assay_stride()) {
        u64 bi = i / d;
        u64 j = i - bi * d;
        const float *m = mask + bi * s;
        const float *xb = x + bi * s * d + j;
        float acc = 0.0f;
        float count = 0.0f;
        for (u64 t = 0; t < s; ++t) {
            float w = m[t];
            if (w == 0.0f) {
                continue;
            }
            count = count + w;
            acc = fmaf(w, xb[t * d], acc);
        }
        out[i] = count == 0.0f ? 0.0f : assay_canon(acc / count);
    }
}
