#!/usr/bin/env bash
# Proves the CUDA backend on a GPU machine: conformance (bit for bit against
# the golden hashes, ASSAY_REQUIRE_GPU=1), the PTX compile check, the matmul
# benchmark against cuBLAS SGEMM (TF32 off, via PyTorch when importable),
# then one table.
#
#   scripts/gpu-check.sh                 build here with cargo, then run
#   scripts/gpu-check.sh build DIR       build the test/bench binaries into DIR
#                                        (for a GPU machine without network)
#   scripts/gpu-check.sh run DIR         run binaries from DIR (no cargo needed)
#
# Environment: ASSAY_CUDA_FEATURE=cuda (CUDA 12.6 API, default) or cuda-13;
# CARGO_TARGET_DIR as usual. NVRTC is looked for under /usr/local/cuda and in
# the pip wheel nvidia-cuda-nvrtc-cu12; libcuda comes with the driver.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
FEATURE=${ASSAY_CUDA_FEATURE:-cuda}
MODE=${1:-local}
DIR=${2:-}
# host-gpu's integration tests are one binary (tests/all); a filter picks a suite.
TARGETS=(all)

ensure_cargo() {
    if command -v cargo >/dev/null; then return; fi
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH" && return
    echo "cargo not found: installing rustup (needs network)" >&2
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >&2 || {
        echo "cannot install Rust here; build elsewhere with '$0 build DIR' and run '$0 run DIR'" >&2
        exit 2
    }
    export PATH="$HOME/.cargo/bin:$PATH"
}

nvrtc_path() {
    local p=""
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
        [ -d "$d" ] && p="$p:$d"
    done
    local wheel
    wheel=$(python3 -c "import nvidia.cuda_nvrtc as m, os; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null || true)
    [ -n "$wheel" ] && [ -d "$wheel" ] && p="$p:$wheel"
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}$p"
}

# build DIR: compile the tests and the bench, copy the executables to DIR.
build() {
    local out=$1
    ensure_cargo
    mkdir -p "$out"
    local args=(--release -p assay-host-gpu --features "$FEATURE")
    for t in "${TARGETS[@]}"; do args+=(--test "$t"); done
    cargo test "${args[@]}" --no-run --message-format=json 2>/dev/null \
        | python3 -c '
import json, sys, shutil, os
out = sys.argv[1]
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        name = m["target"]["name"]
        shutil.copy(m["executable"], os.path.join(out, name))
        print("built", name, file=sys.stderr)
' "$out" || return 1
    cargo bench -p assay-host-gpu --features "$FEATURE" --bench cuda_matmul --no-run --message-format=json 2>/dev/null \
        | python3 -c '
import json, sys, shutil, os
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda_matmul":
        shutil.copy(m["executable"], os.path.join(sys.argv[1], "cuda_matmul"))
        print("built cuda_matmul", file=sys.stderr)
' "$out"
    # Small enough to carry to a machine without network (debug info dropped).
    command -v strip >/dev/null && strip --strip-debug "$out"/all "$out"/cuda_* 2>/dev/null
    # The tests find their goldens under the crate directory they were built in.
    echo "$REPO/host-gpu" > "$out/manifest_dir"
    echo "$FEATURE" > "$out/feature"
    ls -la "$out" >&2
}

run_bin() { # name (a suite of tests/all, or cuda_matmul), args...
    local name=$1
    shift
    if [ "$name" = cuda_matmul ]; then
        if [ -n "$BIN" ]; then
            (cd "$REPO/host-gpu" && "$BIN/cuda_matmul" "$@")
        else
            cargo bench -p assay-host-gpu --features "$FEATURE" --bench cuda_matmul 2>&1
        fi
    elif [ -n "$BIN" ]; then
        (cd "$REPO/host-gpu" && "$BIN/all" "$name::" "$@")
    else
        cargo test --release -p assay-host-gpu --features "$FEATURE" --test all -- "$name::" "$@" 2>&1
    fi
}

case "$MODE" in
build)
    [ -n "$DIR" ] || { echo "usage: $0 build DIR" >&2; exit 2; }
    build "$DIR"
    exit $?
    ;;
run)
    [ -n "$DIR" ] || { echo "usage: $0 run DIR" >&2; exit 2; }
    BIN=$(cd "$DIR" && pwd)
    FEATURE=$(cat "$BIN/feature" 2>/dev/null || echo "$FEATURE")
    want=$(cat "$BIN/manifest_dir" 2>/dev/null || true)
    if [ -n "$want" ] && [ ! -e "$want" ]; then
        mkdir -p "$(dirname "$want")" && ln -s "$REPO/host-gpu" "$want"
    fi
    ;;
local)
    BIN=""
    ensure_cargo
    ;;
*)
    echo "usage: $0 [build DIR | run DIR]" >&2
    exit 2
    ;;
esac

nvrtc_path
LOG=$(mktemp -d)
echo "== nvidia-smi"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
nvidia-smi 2>&1 | head -15

echo "== PTX compile check (NVRTC)"
ASSAY_REQUIRE_NVRTC=1 run_bin cuda_compile --nocapture > "$LOG/compile" 2>&1
COMPILE_RC=$?
tail -12 "$LOG/compile"

echo "== conformance (ASSAY_REQUIRE_GPU=1)"
ASSAY_REQUIRE_GPU=1 run_bin conformance --nocapture > "$LOG/conformance" 2>&1
CONF_RC=$?
grep -E "^conformance:|conformance failures|test result" "$LOG/conformance" | head -5
[ $CONF_RC -eq 0 ] || head -60 "$LOG/conformance"

echo "== emulated kernels (host)"
ASSAY_REQUIRE_EMULATOR=1 run_bin cuda_emulated > "$LOG/emulated" 2>&1
EMU_RC=$?
grep -E "test result" "$LOG/emulated" | head -2

echo "== matmul benchmark"
run_bin cuda_matmul > "$LOG/bench" 2>&1
BENCH_RC=$?
grep -v '^RESULT' "$LOG/bench" | tail -12
if python3 -c "import torch" 2>/dev/null; then
    python3 "$REPO/scripts/cublas_sgemm.py" > "$LOG/cublas" 2>&1
    grep -v '^RESULT' "$LOG/cublas"
else
    echo "SKIPPED cublas: torch is not importable" > "$LOG/cublas"
fi

status() { [ "$1" -eq 0 ] && echo pass || echo "FAIL (exit $1)"; }
python3 - "$LOG" "$GPU" "$DRIVER" "$(status $CONF_RC)" "$(status $COMPILE_RC)" "$(status $EMU_RC)" "$FEATURE" <<'PY'
import sys, os
log, gpu, driver, conf, compile_, emu, feature = sys.argv[1:8]
def results(name):
    out = {}
    p = os.path.join(log, name)
    if os.path.exists(p):
        for line in open(p):
            parts = line.split()
            if len(parts) == 3 and parts[0] == "RESULT":
                out[parts[1]] = parts[2]
    return out
ours, cublas = results("bench"), results("cublas")
print()
print("| item | value |")
print("|---|---|")
print(f"| GPU | {gpu or 'none found'} |")
print(f"| driver | {driver or 'n/a'} |")
print(f"| build feature | {feature} |")
print(f"| conformance (ASSAY_REQUIRE_GPU=1) | {conf} |")
print(f"| PTX compile check | {compile_} |")
print(f"| emulated kernels | {emu} |")
print(f"| matmul bit-exact vs CPU | {ours.get('bit_exact_vs_cpu', 'n/a')} |")
print()
print("| matmul shape | Assay TFLOP/s | cuBLAS SGEMM TFLOP/s (TF32 off) | ratio |")
print("|---|---|---|---|")
for k, v in ours.items():
    if k == "bit_exact_vs_cpu":
        continue
    c = cublas.get(k)
    ratio = f"{float(v) / float(c):.2f}x" if c and float(c) > 0 else "n/a"
    print(f"| {k} | {v} | {c or 'n/a'} | {ratio} |")
PY
[ $CONF_RC -eq 0 ] && [ $COMPILE_RC -eq 0 ] && [ $BENCH_RC -eq 0 ]
