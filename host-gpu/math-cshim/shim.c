/* Test-only shim: exports the canonical math from canonical.h, compiled as C99. */
#include "canonical.h"

float assay_c_exp(float x) { return assay_exp(x); }
float assay_c_log(float x) { return assay_log(x); }
float assay_c_erf(float x) { return assay_erf(x); }
float assay_c_tanh(float x) { return assay_tanh(x); }
