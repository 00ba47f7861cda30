#!/usr/bin/env bash
# Coverage-guided fuzzing of every target in fuzz/ with libFuzzer (cargo-fuzz), on the stable
# toolchain (RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags cargo-fuzz passes).
#
#   scripts/fuzz.sh                 # CI: every target for 30 s, two at a time (2 cores)
#   FUZZ_SECS=300 scripts/fuzz.sh   # longer
#   scripts/fuzz.sh cluster decode_packet   # only these targets
#   scripts/fuzz-long.sh            # the long run: 10 M executions per target (TESTING.md)
#
# Targets are built once, optimised, with debug assertions and overflow checks, without a
# sanitizer (the code under test is safe Rust; ASan would only slow it down). Each run starts
# from the committed seeds in fuzz/corpus/<target> and writes what it finds new to
# fuzz/target/corpus/<target> (not committed), so the checkout stays clean. A crash stops
# the script with exit 1 and leaves the input in fuzz/artifacts/<target>/: turn it into a test
# in tests/fuzz_regressions.rs, then fix the code.
#
# Installs cargo-fuzz (`cargo install cargo-fuzz --locked`, about a minute) if it is missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

export RUSTC_BOOTSTRAP=1
secs=${FUZZ_SECS:-30}
jobs=${FUZZ_PARALLEL:-2}
build_flags=(-O -a -s none)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${targets[*]}"
cargo fuzz build "${build_flags[@]}"

# One target: its own output corpus first (libFuzzer adds new inputs to the first directory),
# then the committed seeds. Output goes to a log; the summary line is printed.
run_one() {
  local t=$1 out=target/corpus/$1 log=target/fuzz-$1.log
  mkdir -p "$out" "artifacts/$t"
  if cargo fuzz run "${build_flags[@]}" "$t" "$out" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    >"$log" 2>&1; then
    local runs rate
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "fuzz: $t: ${runs:-?} runs in ${secs} s (${rate:-?}/s), no crash"
  else
    echo "fuzz: $t: FAILED; the end of $log:" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
}

pids=()
failed=0
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do
  wait "$p" || failed=1
done
exit "$failed"
