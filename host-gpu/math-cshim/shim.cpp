// Test-only shim: exports the canonical math from canonical.h, compiled as
// C++17 (the language NVRTC compiles the CUDA kernels in).
#include "canonical.h"

extern "C" {
float assay_cxx_exp(float x) { return assay_exp(x); }
float assay_cxx_log(float x) { return assay_log(x); }
float assay_cxx_erf(float x) { return assay_erf(x); }
float assay_cxx_tanh(float x) { return assay_tanh(x); }
}
