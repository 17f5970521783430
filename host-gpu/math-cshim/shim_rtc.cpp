// Test-only shim: compiles canonical.h down its NVRTC path on the host.
//
// NVRTC defines __CUDACC_RTC__ and __CUDA_ARCH__, includes no standard
// header, and provides fmaf and the bit-cast intrinsics as built-ins. This
// file recreates exactly that environment (the four declarations below are
// the only things the header may rely on there), so the host build proves the
// header needs nothing else under NVRTC and checks the intrinsic bit-cast path
// bit for bit against the Rust.
#define __CUDACC_RTC__ 1
#define __CUDA_ARCH__ 900
#define __host__
#define __device__

extern "C" float fmaf(float, float, float);
static inline unsigned int __float_as_uint(float x) {
    unsigned int u;
    __builtin_memcpy(&u, &x, sizeof u);
    return u;
}
static inline float __uint_as_float(unsigned int u) {
    float x;
    __builtin_memcpy(&x, &u, sizeof x);
    return x;
}

#include "canonical.h"

extern "C" {
float assay_rtc_exp(float x) { return assay_exp(x); }
float assay_rtc_log(float x) { return assay_log(x); }
float assay_rtc_erf(float x) { return assay_erf(x); }
float assay_rtc_tanh(float x) { return assay_tanh(x); }
}
