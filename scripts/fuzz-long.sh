#!/usr/bin/env bash
# The long fuzzing run: every target (or those named) until it has executed FUZZ_RUNS inputs
# (default 10 000 000), one after the other, at the lowest priority. Prints one line per target:
#
#   fuzz-long: <target>: <runs> runs in <seconds> s (<runs/s>), <new units> new inputs, no crash, <date>
#
# which is what TESTING.md ("Fuzzing") records. A crash stops the script with exit 1 and leaves
# the input in fuzz/artifacts/<target>/. Same build and corpora as scripts/fuzz.sh.
#
#   scripts/fuzz-long.sh                          # every target, 10 M runs each
#   scripts/fuzz-long.sh decode_packet parse_hacf # only these
#   FUZZ_RUNS=1000000 scripts/fuzz-long.sh        # fewer
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

export RUSTC_BOOTSTRAP=1
runs=${FUZZ_RUNS:-10000000}
build_flags=(-O -a -s none)

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build "${build_flags[@]}"

for t in "${targets[@]}"; do
  out=target/corpus/$t
  log=target/fuzz-long-$t.log
  mkdir -p "$out" "artifacts/$t"
  start=$(date +%s)
  if ! nice -n 19 cargo fuzz run "${build_flags[@]}" "$t" "$out" "corpus/$t" -- \
    -runs="$runs" -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
    echo "fuzz-long: $t: FAILED; the end of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  secs=$(($(date +%s) - start))
  done_runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  new=$(sed -n 's/^stat::new_units_added: *//p' "$log")
  echo "fuzz-long: $t: ${done_runs:-?} runs in $secs s (${rate:-?}/s), ${new:-?} new inputs, no crash, $(date -u '+%Y-%m-%d %H:%M UTC')"
done
