//! Compiles `../kernels/canonical.h` through three tiny shims: as C99
//! (`shim.c`), as C++17 (`shim.cpp`), and as C++17 down the header's NVRTC
//! path (`shim_rtc.cpp`). All with the flags the determinism contract needs
//! on the host: no contraction of `a*b+c` into fma (`-ffp-contract=off`), no
//! fast-math, no x87 excess precision, warnings as errors.

/// Whether this (x86-64) build machine, which also runs the tests, has FMA.
fn host_has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "x86_64")
            && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn main() {
    println!("cargo:rerun-if-changed=../kernels/canonical.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-changed=shim.cpp");
    println!("cargo:rerun-if-changed=shim_rtc.cpp");
    println!("cargo:rerun-if-changed=build.rs");

    fn strict(b: &mut cc::Build) {
        b.include("../kernels")
            .opt_level(2)
            .warnings(true)
            .extra_warnings(true)
            .warnings_into_errors(true)
            .flag("-ffp-contract=off")
            .flag("-fno-fast-math")
            .flag_if_supported("-fexcess-precision=standard");
        // Where the machine has FMA instructions, let the compiler use them:
        // then `-ffp-contract=off` is what stands between `a*b + c` and a
        // fused multiply-add, as on a GPU, and the bit-for-bit test checks it.
        if host_has_fma() {
            b.flag("-mfma");
        }
    }

    let mut c = cc::Build::new();
    strict(&mut c);
    c.file("shim.c").std("c99").compile("assay_canonical_c");

    let mut cxx = cc::Build::new();
    strict(&mut cxx);
    cxx.cpp(true)
        .cpp_link_stdlib(None)
        .file("shim.cpp")
        .std("c++17")
        .compile("assay_canonical_cxx");

    // the NVRTC path of the header (no standard headers, intrinsic bit casts)
    let mut rtc = cc::Build::new();
    strict(&mut rtc);
    rtc.cpp(true)
        .cpp_link_stdlib(None)
        .file("shim_rtc.cpp")
        .std("c++17")
        .compile("assay_canonical_rtc");
}
