/* conv.cu — NCHW conv2d (direct: one thread per output, the dot product in
 * the spec's (ci, ki, kj) order with fmaf, padding read as +0.0) and max-pool. */

struct AssayWindow {
    i64 n, c, h, w;     /* input */
    i64 o, kh, kw;      /* output channels (conv) and kernel */
    i64 sh, sw, ph, pw; /* stride and padding */
    i64 ho, wo;         /* output plane */
};

extern "C" __global__ void assay_conv2d(const float *x, const float *weight, const float *bias, float *out,
                                        AssayWindow g, int has_bias) {
    u64 total = (u64)(g.n * g.o * g.ho * g.wo);
    for (u64 i = assay_tid(); i < total; i += assay_stride()) {
        i64 ox = (i64)(i % (u64)g.wo);
        u64 t = i / (u64)g.wo;
        i64 oy = (i64)(t % (u64)g.ho);
        t /= (u64)g.ho;
        i64 oc = (i64)(t % (u64)g.o);
        i64 ni = (i64)(t / (u64)g.o);
        const float *wrow = weight + oc * g.c * g.kh * g.kw;
        const float *ximg = x + ni * g.c * g.h * g.w;
        float acc = 0.0f;
        for (i64 ci = 0; ci < g.c; ++ci) {
            const float *plane = ximg + ci * g.h * g.w;
            for (i64 ki = 0; ki < g.kh; ++ki) {
                i64 iy = oy * g.sh + ki - g.ph;
                bool row_in = iy >= 0 && iy < g.h;
                for (i64 kj = 0; kj < g.kw; ++kj) {
                    i64 ix = ox * g.sw + kj - g.pw;
                    float v = (row_in && ix >= 0 && ix < g.w) ? plane[iy * g.w + ix] : 0.0f;
                    acc = fmaf(v, wrow[(ci * g.kh + ki) * g.kw + kj], acc);
                }
            }
        }
        out[i] = has_bias ? assay_canon(acc + bias[oc]) : assay_canon(acc);
    }
}

/* Maximum over each window's positions inside the image (padding never takes part). */
extern "C" __global__ void assay_max_pool2d(const float *x, float *out, AssayWindow g) {
    u64 total = (u64)(g.n * g.c * g.ho * g.wo);
    for (u64 i = assay_tid(); i < total; i += assay_stride()) {
        i64 ox = (i64)(i % (u64)g.wo);
        u64 t = i / (u64)g.wo;
        i64 oy = (i64)(t % (u64)g.ho);
        u64 plane_index = t / (u64)g.ho;
        const float *plane = x + (i64)plane_index * g.h * g.w;
        float m = __uint_as_float(ASSAY_NEG_INF_BITS);
        for (i64 ki = 0; ki < g.kh; ++ki) {
            i64 iy = oy * g.sh + ki - g.ph;
            if (iy < 0 || iy >= g.h) {
                continue;
            }
            for (i64 kj = 0; kj < g.kw; ++kj) {
                i64 ix = ox * g.sw + kj - g.pw;
                if (ix >= 0 && ix < g.w) {
                    m = assay_maximum(m, plane[iy * g.w + ix]);
                }
            }
        }
        out[i] = assay_canon(m);
    }
}
