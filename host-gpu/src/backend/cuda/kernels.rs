//! The CUDA C kernels as one NVRTC program, and the flags they are compiled with.

/// The source files, in the order they are concatenated (each may use what
/// the ones before it define; NVRTC gets no include path).
const PARTS: [(&str, &str); 7] = [
    ("canonical.h", include_str!("../../../kernels/canonical.h")),
    ("common.cuh", include_str!("kernels/common.cuh")),
    ("elementwise.cu", include_str!("kernels/elementwise.cu")),
    ("reduce.cu", include_str!("kernels/reduce.cu")),
    ("layout.cu", include_str!("kernels/layout.cu")),
    ("matmul.cu", include_str!("kernels/matmul.cu")),
    ("conv.cu", include_str!("kernels/conv.cu")),
];

/// Every `extern "C" __global__` entry point the backend launches.
pub(crate) const KERNEL_NAMES: &[&str] = &[
    "assay_fill_u32",
    "assay_canon_f32",
    "assay_decode",
    "assay_decode_rows",
    "assay_unary_f32",
    "assay_swiglu_f32",
    "assay_rope_f32",
    "assay_scale_f32",
    "assay_binary_f32",
    "assay_f32_to_i32",
    "assay_i32_to_f32",
    "assay_reduce_rows",
    "assay_softmax_rows",
    "assay_attention_rows",
    "assay_causal_attention_rows",
    "assay_layer_norm_rows",
    "assay_rms_norm_rows",
    "assay_l2_normalize_rows",
    "assay_argmax_rows",
    "assay_masked_mean_pool",
    "assay_strided_copy",
    "assay_copy_runs",
    "assay_gather_rows",
    "assay_first_bad_index",
    "assay_sgemm128_nn",
    "assay_sgemm128_nt",
    "assay_sgemm128_tn",
    "assay_sgemm128_tt",
    "assay_sgemm64_nn",
    "assay_sgemm64_nt",
    "assay_sgemm64_tn",
    "assay_sgemm64_tt",
    "assay_conv2d",
    "assay_max_pool2d",
];

/// The whole program: every part, each introduced by a `#line` so compiler
/// messages name the real file and line.
pub(crate) fn source() -> String {
    let mut src = String::new();
    for (name, text) in PARTS {
        src.push_str(&format!("#line 1 \"{name}\"\n"));
        src.push_str(text);
        if !text.ends_with('\n') {
            src.push('\n');
        }
    }
    src
}

/// The NVRTC flags of the determinism contract (SEMANTICS.md section 6), for
/// the virtual architecture `arch` (e.g. `compute_90`).
pub(crate) fn nvrtc_options(arch: &str) -> Vec<String> {
    vec![
        format!("--gpu-architecture={arch}"),
        // never contract a*b + c into an fma: fmaf only where the spec says fma
        "--fmad=false".into(),
        // keep subnormals (no flush-to-zero)
        "--ftz=false".into(),
        // IEEE division and square root (not the approximate ones)
        "--prec-div=true".into(),
        "--prec-sqrt=true".into(),
        "--std=c++17".into(),
    ]
}
