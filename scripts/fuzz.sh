#!/usr/bin/env bash
# Runs every fuzz target for MINUTES minutes each (default 5) with
# cargo-fuzz (nightly Rust, libFuzzer), starting from the kept corpus in
# fuzz-cases/corpus/<target>/. Afterwards the inputs that reached new code
# are merged into that corpus (commit them), and each crash is copied to
# fuzz-cases/regressions/<target>/ (the stable test suite replays both:
# cargo test -p assay-fuzz-cases). Exits non-zero when a target crashed.
#
#   rustup toolchain install nightly && cargo install cargo-fuzz
#   bash scripts/fuzz.sh 5              # every target, 5 minutes each
#   bash scripts/fuzz.sh 1 gguf_header  # one target
set -uo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-5}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(protocol_records gguf_header safetensors_header coordinator_request component_loader wit_host_surface)
fi
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }
# wit_host_surface runs the wit-fuzz guest: built by the guests' crate
# (stable Rust) into target/guests/.
cargo build --release -p assay-guests >/dev/null || { echo "could not build the guests" >&2; exit 2; }
crashed=()
for t in "${targets[@]}"; do
  kept="fuzz-cases/corpus/$t"
  work="fuzz/corpus/$t"
  mkdir -p "$kept" "$work" "fuzz-cases/regressions/$t"
  echo "== $t: $minutes min from $(ls "$kept" | wc -l) kept inputs"
  start=$(date +%s)
  (cd fuzz && cargo +nightly fuzz run -O "$t" "../$work" "../$kept" -- \
      -max_total_time=$((minutes * 60)) -timeout=10 -rss_limit_mb=4096 -print_final_stats=1) \
      > "fuzz/$t.log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/$t.log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "fuzz/$t.log" | tail -1)
  echo "   $((($(date +%s) - start))) s, ${execs:-?} runs, ${cov:-cov ?}, exit $rc"
  for a in fuzz/artifacts/"$t"/crash-* fuzz/artifacts/"$t"/oom-* fuzz/artifacts/"$t"/timeout-*; do
    [ -e "$a" ] || continue
    # Moved, so a later run reports only what it found itself.
    mv "$a" "fuzz-cases/regressions/$t/"
    echo "   CRASH kept as fuzz-cases/regressions/$t/$(basename "$a") (see fuzz/$t.log)"
    crashed+=("$t")
  done
  # Keep only what reaches new code.
  (cd fuzz && cargo +nightly fuzz run -O "$t" "../$kept" "../$work" -- -merge=1) > /dev/null 2>&1
  echo "   corpus now $(ls "$kept" | wc -l) inputs"
done
if [ ${#crashed[@]} -gt 0 ]; then
  echo "crashed: ${crashed[*]}" >&2
  exit 1
fi
