#!/usr/bin/env bash
# The long run of the resource simulation (tests/resource_sim.rs): SIM_LONG_SEEDS seeds
# (default 1 000 000) in all, shared evenly by the seven suites (legacy with two nodes and with
# three, auto_failback on, auto_failback off; and the three modes on an active/standby pair),
# each suite's seeds cut into ranges of
# SIM_LONG_CHUNK (default 5 000) that run SIM_LONG_JOBS at a time (default: the number of
# cores), at the lowest priority, from a release build. Prints one line per range as it ends,
# then the totals:
#
#   sim-long: <suite> seeds <first>-<last>: ok in <s> s
#   sim-long: <suite> seeds <first>-<last>: FAILED: <violation>; replay: SIM_SEED=<n> cargo test ...
#   sim-long: <seeds> seeds (<per suite> per suite) in <s> s, <seeds/s> seeds/s, <n> failing range(s), <date>
#
# A range stops at its first failing seed (the seeds after it in that range are not run);
# the other ranges go on. Exit 1 if any seed failed. The traces of failing seeds are written
# under target/tmp/, the output of every range under target/sim-long/.
#
#   scripts/sim-long.sh                              # 1 M seeds; hours (see TESTING.md)
#   SIM_LONG_SEEDS=40000 scripts/sim-long.sh         # a shorter run
#   SIM_LONG_FIRST=1000001 scripts/sim-long.sh       # other seeds than 1..142 858 per suite
set -euo pipefail
cd "$(dirname "$0")/.."

total=${SIM_LONG_SEEDS:-1000000}
chunk=${SIM_LONG_CHUNK:-5000}
jobs=${SIM_LONG_JOBS:-$(nproc)}
first=${SIM_LONG_FIRST:-1}
suites=(legacy_two_nodes legacy_three_nodes auto_failback_on_two_nodes auto_failback_off_two_nodes
  legacy_active_standby auto_failback_on_active_standby auto_failback_off_active_standby)
per_suite=$(((total + ${#suites[@]} - 1) / ${#suites[@]}))
out=target/sim-long
rm -rf "$out"
mkdir -p "$out"

if ! cargo test --release --test resource_sim --no-run >"$out/build.log" 2>&1; then
  echo "sim-long: the release build failed; the end of $out/build.log:" >&2
  tail -n 30 "$out/build.log" >&2
  exit 2
fi
bin=$(cargo test --release --test resource_sim --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*resource_sim[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bin" ] || {
  echo "sim-long: cannot find the resource_sim test binary" >&2
  exit 2
}

# One line per range: suite, first seed, count; the suites take turns, so that a run cut
# short has covered every mode alike.
ranges=$out/ranges
: >"$ranges"
for ((from = first; from < first + per_suite; from += chunk)); do
  n=$((first + per_suite - from))
  [ "$n" -gt "$chunk" ] && n=$chunk
  for s in "${suites[@]}"; do
    echo "$s $from $n" >>"$ranges"
  done
done

run_range() {
  local suite=$1 from=$2 n=$3
  local log="$OUT/$suite-$from.log" last=$((from + n - 1)) t0 t1
  t0=$(date +%s)
  if SIM_SEED_FROM=$from SIM_SEEDS=$n RUST_BACKTRACE=0 nice -n 19 "$BIN" --exact "$suite" \
    --test-threads=1 >"$log" 2>&1; then
    t1=$(date +%s)
    echo "sim-long: $suite seeds $from-$last: ok in $((t1 - t0)) s"
  else
    local v replay
    v=$(grep -m1 -o "seed [0-9]* at [0-9]* ms: .*" "$log" || echo "see $log")
    replay=$(grep -m1 -o "replay: .*" "$log" || true)
    echo "sim-long: $suite seeds $from-$last: FAILED: $v; $replay"
  fi
}
export -f run_range
export BIN=$bin OUT=$out

start=$(date +%s)
xargs -P "$jobs" -L 1 bash -c 'run_range "$0" "$1" "$2"' <"$ranges" | tee "$out/summary"
secs=$(($(date +%s) - start))
[ "$secs" -gt 0 ] || secs=1
failed=$(grep -c ": FAILED" "$out/summary" || true)
ran=$(grep -c ": ok in" "$out/summary" || true)
seeds=$((per_suite * ${#suites[@]}))
echo "sim-long: $seeds seeds ($per_suite per suite, from seed $first) in $secs s, $((seeds / secs)) seeds/s, $failed failing range(s) of $((failed + ran)), $(date -u +%Y-%m-%d)"
[ "$failed" -eq 0 ] && [ $((failed + ran)) -eq "$(wc -l <"$ranges")" ]
