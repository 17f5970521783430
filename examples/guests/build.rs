//! Builds every example guest for `wasm32-wasip2` (release) with a nested
//! cargo, in `<workspace>/target/guests`, and tells `src/lib.rs` where the
//! components are (`cargo:rustc-env=ASSAY_GUEST_<NAME>=<path>`).
//!
//! The nested cargo gets a clean environment: everything the outer cargo
//! (or `cargo clippy`, `cargo test`, a jobserver, a wrapper) sets for this
//! build script would otherwise change what it builds or for which target.
//! Its own target dir keeps it off the outer build's lock.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// (package, artifact file name, env var suffix). Keep in sync with `Guest` in src/lib.rs.
const GUESTS: &[(&str, &str, &str)] = &[
    ("hello", "hello.wasm", "HELLO"),
    ("matmul", "matmul.wasm", "MATMUL"),
    ("hostile", "hostile.wasm", "HOSTILE"),
    ("microbench", "microbench.wasm", "MICROBENCH"),
    ("wasi-command", "wasi-command.wasm", "WASI_COMMAND"),
    ("minilm-embed", "minilm_embed.wasm", "MINILM_EMBED"),
    ("mlp", "mlp.wasm", "MLP"),
    ("challenge", "challenge.wasm", "CHALLENGE"),
    ("gguf-inspect", "gguf_inspect.wasm", "GGUF_INSPECT"),
    ("llm-generate", "llm_generate.wasm", "LLM_GENERATE"),
    ("wit-fuzz", "wit_fuzz.wasm", "WIT_FUZZ"),
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // examples/guests → the workspace root.
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("examples/guests lives two levels below the workspace root")
        .to_path_buf();
    let target_dir = workspace.join("target").join("guests");

    for path in [
        "wit",
        "guest-sdk",
        "tokenizer",
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    for (package, _, _) in GUESTS {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join("examples").join(package).display()
        );
    }
    println!("cargo:rerun-if-env-changed=ASSAY_GUEST_RUSTFLAGS");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    check_target_installed(&rustc);

    let mut cmd = Command::new(&cargo);
    clean_env(&mut cmd);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (package, _, _) in GUESTS {
        cmd.arg("-p").arg(package);
    }

    // Reproducible bytes wherever the checkout or the cargo home lives
    // (paths end up in panic messages and debug info), plus small, fast
    // guests: one codegen unit, LTO, no DWARF (the name section stays, so
    // traps still name functions).
    let mut rustflags = vec![remap(&workspace, "/assay")];
    if let Some(home) = cargo_home() {
        rustflags.push(remap(&home, "/cargo"));
    }
    if let Ok(extra) = env::var("ASSAY_GUEST_RUSTFLAGS") {
        rustflags.extend(extra.split_whitespace().map(str::to_owned));
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"))
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
        .env("CARGO_TERM_COLOR", "never")
        // The nested cargo's stdout would be read as build-script directives.
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit());

    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run {cargo:?} to build the guests: {e}"));
    if !status.success() {
        panic!(
            "building the example guests for {TARGET} failed ({status}); the nested cargo's errors are above.\n\
             To reproduce: cargo build --release --target {TARGET} --target-dir target/guests -p hello -p matmul ...\n\
             If the target is missing: run `rustup target add {TARGET}`"
        );
    }

    let out = target_dir.join(TARGET).join("release");
    for (package, file, var) in GUESTS {
        let path = out.join(file);
        if !path.is_file() {
            panic!(
                "the nested cargo succeeded but {} is missing (guest `{package}`)",
                path.display()
            );
        }
        println!("cargo:rustc-env=ASSAY_GUEST_{var}={}", path.display());
    }
    println!("cargo:rustc-env=ASSAY_GUESTS_DIR={}", out.display());
}

fn remap(from: &Path, to: &str) -> String {
    format!("--remap-path-prefix={}={to}", from.display())
}

fn cargo_home() -> Option<PathBuf> {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

/// Makes sure the toolchain has a standard library for the target: when it
/// has none, adds it with rustup (the README's two commands are the whole
/// set-up, and rustup does not add `rust-toolchain.toml`'s targets to an
/// installed toolchain when `RUSTUP_AUTO_INSTALL=0`, as on locked-down CI
/// images); without rustup, fails with the one thing to do.
fn check_target_installed(rustc: &OsString) {
    if target_installed(rustc) != Some(false) {
        return; // installed, or rustc can't say: the build reports what is wrong
    }
    println!(
        "cargo:warning=the Rust target {TARGET} is missing: adding it with `rustup target add {TARGET}`"
    );
    // RUSTUP_TOOLCHAIN (set by rustup's proxies) names the toolchain this
    // build runs on, so the target goes to that one.
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status();
    match added {
        Ok(status) if status.success() && target_installed(rustc) == Some(true) => {}
        Ok(status) => panic!(
            "the Rust target {TARGET} is not installed and `rustup target add {TARGET}` failed ({status}); \
             its output is above. Run it yourself once the cause is fixed (it downloads the target's standard library)."
        ),
        Err(e) => panic!(
            "the Rust target {TARGET} is not installed and rustup could not be run ({e}). \
             With rustup: `rustup target add {TARGET}`; with a distribution's Rust: install its \
             {TARGET} standard library package (e.g. Debian's `libstd-rust-dev-wasm32`)."
        ),
    }
}

/// Whether rustc has a standard library for the target (`None`: rustc could
/// not be asked).
fn target_installed(rustc: &OsString) -> Option<bool> {
    let out = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .output()
        .ok()?;
    if !out.status.success() {
        return Some(false);
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let has_core = std::fs::read_dir(&libdir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libcore-"))
        })
        .unwrap_or(false);
    Some(has_core)
}

/// Removes what the outer cargo, clippy, a wrapper or a jobserver set for this
/// build script, so the nested cargo builds as if started from a shell.
fn clean_env(cmd: &mut Command) {
    const EXACT: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_BUILD_DIR",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_RUSTC_CURRENT_DIR",
        "CARGO_SBOM_PATH",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
        "NUM_JOBS",
        "RUSTC_LINKER",
        "CARGO_TARGET_TMPDIR",
        "__CARGO_FIX_PLZ",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_PROFILE_",
        "CARGO_LLVM_COV",
        "DEP_",
    ];
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p)) {
            cmd.env_remove(key);
        }
    }
}
