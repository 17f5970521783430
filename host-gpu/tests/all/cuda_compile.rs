//! The CUDA kernels compile with NVRTC and the production flags for every
//! GPU generation we target, and the PTX keeps the determinism contract:
//! no approximate or flush-to-zero instruction, no f32 add/sub/mul that
//! ptxas could still contract, no `max.f32`/`min.f32` (they drop NaNs), and
//! every `fma` comes from an `fmaf()` the source wrote (the program is
//! compiled a second time with `fmaf` renamed to a non-fma function: the PTX
//! must then hold no fma at all).
//!
//! Needs no GPU, only libnvrtc: CI installs the PyPI wheel
//! `nvidia-cuda-nvrtc-cu12` and puts its `nvidia/cuda_nvrtc/lib` on
//! `LD_LIBRARY_PATH`. Without NVRTC (or without the `cuda` feature) the test
//! prints SKIPPED and passes, unless `ASSAY_REQUIRE_NVRTC=1`, which makes it fail.
//!
//! ```text
//! cargo test --release -p assay-host-gpu --features cuda --test all cuda_compile:: -- --nocapture
//! ```

use assay_host_gpu::cuda_build;

/// The virtual architectures we compile for: A100 (sm_80), A10/RTX 30
/// (sm_86), L4/L40/RTX 40 (sm_89), H100/H200 (sm_90).
const ARCHS: [&str; 4] = ["compute_80", "compute_86", "compute_89", "compute_90"];

/// Returns false (after saying why) when the check cannot run here.
fn nvrtc_ready() -> bool {
    let required = std::env::var("ASSAY_REQUIRE_NVRTC").as_deref() == Ok("1");
    let why = if !cuda_build::enabled() {
        "this test binary was built without the `cuda` feature (add `--features cuda`)".to_string()
    } else {
        match cuda_build::nvrtc_version() {
            Ok((major, minor)) => {
                eprintln!("cuda_compile: NVRTC {major}.{minor}");
                return true;
            }
            Err(e) => e,
        }
    };
    assert!(
        !required,
        "ASSAY_REQUIRE_NVRTC=1 but the NVRTC compile check cannot run: {why}"
    );
    eprintln!("SKIPPED cuda_compile: {why} (set ASSAY_REQUIRE_NVRTC=1 to make this a failure)");
    false
}

/// The PTX instructions (opcode first, comments and directives dropped).
fn instructions(ptx: &str) -> Vec<&str> {
    ptx.lines()
        .map(|l| l.split("//").next().unwrap_or("").trim())
        .filter(|l| {
            !l.is_empty() && !l.starts_with('.') && !l.starts_with('{') && !l.starts_with('}')
        })
        .map(|l| {
            l.strip_prefix('@')
                .map_or(l, |rest| rest.split_once(' ').map_or(rest, |x| x.1).trim())
        })
        .filter(|l| !l.ends_with(':') && !l.starts_with('$'))
        .collect()
}

fn opcode(instr: &str) -> &str {
    instr.split_whitespace().next().unwrap_or("")
}

/// Every way `ptx` breaks the determinism contract, one line each.
fn violations(ptx: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for ins in instructions(ptx) {
        let op = opcode(ins);
        let parts: Vec<&str> = op.split('.').collect();
        let base = parts[0];
        let f32_op = parts.last() == Some(&"f32");
        if parts.contains(&"approx") || parts.contains(&"full") {
            bad.push(format!("approximate instruction: {ins}"));
        }
        if parts.contains(&"ftz") {
            bad.push(format!("flush-to-zero instruction: {ins}"));
        }
        if matches!(base, "ex2" | "lg2" | "sin" | "cos" | "rsqrt" | "tanh") {
            bad.push(format!("hardware transcendental: {ins}"));
        }
        if f32_op && matches!(base, "max" | "min") {
            bad.push(format!("max/min instruction (drops NaN): {ins}"));
        }
        if f32_op
            && matches!(base, "add" | "sub" | "mul" | "div" | "sqrt" | "rcp")
            && !parts.contains(&"rn")
        {
            bad.push(format!("f32 arithmetic without an explicit rounding mode (ptxas may contract or approximate it): {ins}"));
        }
        if f32_op && base == "fma" && !parts.contains(&"rn") {
            bad.push(format!("fma without .rn: {ins}"));
        }
    }
    bad
}

fn count_fma(ptx: &str) -> usize {
    instructions(ptx)
        .iter()
        .filter(|i| opcode(i).starts_with("fma."))
        .count()
}

/// The check itself must be able to fail: known-bad PTX is caught.
#[test]
fn the_ptx_check_catches_what_it_should() {
    let bad = "\
        ex2.approx.f32 %f1, %f2;\n\
        add.f32 %f3, %f1, %f2;\n\
        mul.ftz.rn.f32 %f4, %f3, %f3;\n\
        max.f32 %f5, %f4, %f3;\n\
        div.full.f32 %f6, %f5, %f4;\n\
        @%p1 fma.rn.f32 %f7, %f1, %f2, %f3;\n";
    let v = violations(bad);
    assert_eq!(v.len(), 7, "{v:#?}");
    assert_eq!(count_fma(bad), 1);
    assert!(violations("add.rn.f32 %f1, %f2, %f3;\nfma.rn.f32 %f1, %f2, %f3, %f4;\n").is_empty());
}

#[test]
fn kernels_compile_for_every_target_and_keep_the_contract() {
    if !nvrtc_ready() {
        return;
    }
    let src = cuda_build::kernel_source().expect("the cuda feature is on");
    // Every fma in the PTX must come from an fmaf() call: compile once more
    // with fmaf renamed to a non-inlined function that is not an fma.
    let probe = format!(
        "#define fmaf(a, b, c) assay_fma_probe(a, b, c)\n\
         static __device__ __noinline__ float assay_fma_probe(float a, float b, float c) {{\n\
             return __fadd_rn(__fmul_rn(a, b), c);\n\
         }}\n{src}"
    );
    let mut report = Vec::new();
    for arch in ARCHS {
        let ptx = cuda_build::compile_ptx(&src, arch)
            .unwrap_or_else(|e| panic!("the kernels do not compile for {arch}:\n{e}"));
        for k in cuda_build::kernel_names() {
            assert!(
                ptx.contains(&format!(".entry {k}(")),
                "{arch}: kernel {k} is missing from the PTX"
            );
        }
        let v = violations(&ptx);
        assert!(
            v.is_empty(),
            "{arch}: the PTX breaks the determinism contract ({} places):\n{}",
            v.len(),
            v.join("\n")
        );
        let fma = count_fma(&ptx);
        assert!(
            fma > 0,
            "{arch}: no fma at all: fmaf() did not become fma.rn.f32"
        );

        let probed = cuda_build::compile_ptx(&probe, arch)
            .unwrap_or_else(|e| panic!("the fma-provenance build fails for {arch}:\n{e}"));
        let stray = count_fma(&probed);
        assert_eq!(
            stray, 0,
            "{arch}: with fmaf() renamed the PTX still holds {stray} fma: the compiler contracted a*b+c somewhere"
        );
        assert!(
            violations(&probed).is_empty(),
            "{arch}: probe build violations"
        );
        report.push(format!(
            "{arch}: {} kernels, {} instructions, {fma} fma (all from fmaf), 0 violations",
            cuda_build::kernel_names().len(),
            instructions(&ptx).len()
        ));
    }
    eprintln!(
        "cuda_compile: flags {:?}\n{}",
        cuda_build::nvrtc_options("<arch>"),
        report.join("\n")
    );
}

/// A contractible expression stays two roundings under the production flags.
#[test]
fn mul_then_add_is_not_contracted() {
    if !nvrtc_ready() {
        return;
    }
    let src = "extern \"C\" __global__ void k(const float *a, const float *b, const float *c, float *o) {\n\
                   o[threadIdx.x] = a[threadIdx.x] * b[threadIdx.x] + c[threadIdx.x];\n\
               }\n";
    let ptx = cuda_build::compile_ptx(src, "compute_90").expect("compiles");
    assert_eq!(count_fma(&ptx), 0, "a*b + c became an fma:\n{ptx}");
    assert!(
        ptx.contains("mul.rn.f32") && ptx.contains("add.rn.f32"),
        "{ptx}"
    );
}
