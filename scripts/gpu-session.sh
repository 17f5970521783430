#!/usr/bin/env bash
# One call on a GPU machine without cargo or network (e.g. a lent H200):
# scripts/gpu-check.sh's `run` mode (PTX compile check, conformance with
# ASSAY_REQUIRE_GPU=1, emulated kernels, matmul vs cuBLAS SGEMM), then real
# guest jobs through `assay run` on the CPU and the CUDA backend, whose
# outputs roots must be equal (and equal to the roots computed where the
# binaries were built). Logs go to $OUT (or ./gpu-out).
#
# Here (with cargo), into a folder .git/info/exclude ignores:
#   ASSAY_CUDA_FEATURE=cuda-13 scripts/gpu-check.sh build .gpu-bin
#   cp target/release/assay .gpu-bin/assay && strip .gpu-bin/assay   # optional: the job check
#   cp target/guests/wasm32-wasip2/release/{matmul,mlp}.wasm .gpu-bin/
#   scripts/gpu-session.sh .gpu-bin roots > .gpu-bin/roots             # CPU roots made here
# There:
#   scripts/gpu-session.sh .gpu-bin [all|check|jobs]
#
# NVRTC: a CUDA 13 image may have it only in the pip wheel nvidia-cuda-nvrtc
# (site-packages/nvidia/cu13/lib), which gpu-check.sh's own lookup (the cu12
# wheel's module) misses; the folders are found here and put on
# LD_LIBRARY_PATH. The CLI binary of a default build binds CUDA 12.6 and asks
# for libnvrtc.so or libnvrtc.so.12, so a shim folder gives it an unversioned
# libnvrtc.so pointing at the NVRTC that is there.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BIN=$(cd "${1:-.gpu-bin}" && pwd)
PART=${2:-all}
OUT=${OUT:-$REPO/gpu-out}
mkdir -p "$OUT"

# matmul and mlp inputs (deterministic; pure Python, no numpy needed)
gen_inputs() {
    python3 - "$1" <<'PY'
import json, os, random, struct, sys
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(20261204)
def vals(n): return [rng.uniform(-1.0, 1.0) for _ in range(n)]
def f32(xs): return struct.pack(f"<{len(xs)}f", *xs)
def matrix(path, r, c):
    with open(path, "wb") as f:
        f.write(struct.pack("<II", r, c) + f32(vals(r * c)))
matrix(f"{out}/a.bin", 300, 517)
matrix(f"{out}/b.bin", 517, 259)
matrix(f"{out}/a2.bin", 1024, 1024)
matrix(f"{out}/b2.bin", 1024, 1024)
d, h, c, rows = 96, 200, 10, 333
tensors = {"fc1.weight": [h, d], "fc1.bias": [h], "fc2.weight": [c, h], "fc2.bias": [c]}
hdr, blob = {}, b""
for name, shape in tensors.items():
    n = 1
    for s in shape:
        n *= s
    data = f32([v * 0.2 for v in vals(n)])
    hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
    blob += data
hj = json.dumps(hdr).encode()
hj += b" " * (-len(hj) % 8)
with open(f"{out}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hj)) + hj + blob)
with open(f"{out}/x.bin", "wb") as f:
    f.write(f32(vals(rows * d)))
PY
}

# name, then the `assay run` input arguments
JOBS=(
    "matmul_300x517x259|matmul.wasm|-i a=IN/a.bin -i b=IN/b.bin"
    "matmul_1024|matmul.wasm|-i a=IN/a2.bin -i b=IN/b2.bin"
    "mlp_333x96x200x10|mlp.wasm|-i model=IN/model.safetensors -i x=IN/x.bin"
)

# run_job NAME BACKEND: prints "root device" (or "ERROR why")
run_job() {
    local name=$1 backend=$2 spec wasm args
    for spec in "${JOBS[@]}"; do
        IFS='|' read -r n wasm args <<<"$spec"
        [ "$n" = "$name" ] || continue
        # shellcheck disable=SC2086
        timeout 120 "$BIN/assay" run "$BIN/$wasm" ${args//IN/$IN} --backend "$backend" --json \
            2>"$IN/$name.$backend.err" >"$IN/$name.$backend.json"
        python3 - "$IN/$name.$backend.json" "$IN/$name.$backend.err" <<'PY'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception:
    print("ERROR", open(sys.argv[2]).read().strip().replace("\n", " ")[-300:] or "no output")
    sys.exit()
if j.get("outcome") != "success":
    print("ERROR", j.get("outcome"), j.get("error"))
else:
    print(j["outputs_root"], j["backend"]["device"])
PY
    done
}

if [ "$PART" = roots ]; then
    IN=$(mktemp -d)
    gen_inputs "$IN"
    for spec in "${JOBS[@]}"; do
        n=${spec%%|*}
        echo "$n $(run_job "$n" cpu | cut -d' ' -f1)"
    done
    exit 0
fi

main() {
echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
nvidia-smi 2>&1 | grep -m1 "CUDA Version"
command -v nvcc >/dev/null && nvcc --version | tail -2
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))" 2>&1
command -v c++ >/dev/null && c++ --version | head -1 || echo "no c++ (the emulated-kernel suite will fail)"

echo "== NVRTC"
NVRTC_DIRS=$(
    {
        for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
            ls "$d"/libnvrtc.so* >/dev/null 2>&1 && echo "$d"
        done
        python3 - <<'PY'
import os
try:
    import nvidia
except ImportError:
    raise SystemExit
for root in list(nvidia.__path__):
    for dp, _, fn in os.walk(root):
        if any(f.startswith("libnvrtc.so") for f in fn):
            print(dp)
PY
    } | awk '!seen[$0]++'
)
for d in $NVRTC_DIRS; do
    echo "$d: $(cd "$d" && ls libnvrtc* | tr '\n' ' ')"
    LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
export LD_LIBRARY_PATH
REAL_NVRTC=$(for d in $NVRTC_DIRS; do ls "$d"/libnvrtc.so.[0-9]* 2>/dev/null; done | grep -v builtins | sort -V | tail -1)
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
echo "newest libnvrtc: ${REAL_NVRTC:-none}"

RC=0
if [ "$PART" = all ] || [ "$PART" = check ]; then
    echo "== scripts/gpu-check.sh run $BIN"
    export TMPDIR=/tmp/gpu-session-tmp
    mkdir -p "$TMPDIR"
    timeout 330 "$REPO/scripts/gpu-check.sh" run "$BIN"
    RC=$?
    echo "gpu-check.sh exit $RC"
    logs=$(dirname "$(find "$TMPDIR" -maxdepth 2 -name conformance | head -1)")
    [ -d "$logs" ] && tar -C "$logs" -czf "$OUT/gpu-check-logs.tgz" .
    unset TMPDIR
fi

if { [ "$PART" = all ] || [ "$PART" = jobs ]; } && [ -x "$BIN/assay" ]; then
    echo "== guest jobs: assay run --backend cpu vs --backend cuda"
    IN=/tmp/gpu-session-in
    gen_inputs "$IN"
    SHIM=/tmp/gpu-session-nvrtc-shim
    mkdir -p "$SHIM"
    [ -n "$REAL_NVRTC" ] && ln -sf "$REAL_NVRTC" "$SHIM/libnvrtc.so"
    printf '| job | CPU root (GPU machine) | CUDA root | CPU root (build machine) | equal |\n|---|---|---|---|---|\n' >"$OUT/jobs.md"
    for spec in "${JOBS[@]}"; do
        n=${spec%%|*}
        cpu=$(run_job "$n" cpu)
        gpu=$(LD_LIBRARY_PATH="$SHIM:$LD_LIBRARY_PATH" run_job "$n" cuda)
        want=$(awk -v n="$n" '$1 == n { print $2 }' "$BIN/roots" 2>/dev/null)
        c=${cpu%% *} g=${gpu%% *}
        eq=no
        [ "$c" != ERROR ] && [ "$c" = "$g" ] && { [ -z "$want" ] || [ "$want" = "$c" ]; } && eq=yes
        [ $eq = yes ] || RC=1
        echo "$n: cpu [$cpu] cuda [$gpu] built-here [${want:-n/a}] equal: $eq"
        echo "| $n | \`${c:0:16}\` | \`${g:0:16}\` | \`${want:0:16}\` | $eq |" >>"$OUT/jobs.md"
    done
    tar -C "$IN" -czf "$OUT/jobs-logs.tgz" --exclude='*.bin' --exclude='*.safetensors' .
    cat "$OUT/jobs.md"
fi
echo "gpu-session exit $RC"
return $RC
}

main 2>&1 | tee "$OUT/session.log"
exit "${PIPESTATUS[0]}"
