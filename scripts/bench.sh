#!/usr/bin/env bash
# The three-way benchmark: ours, Heartbeat 3.0.6 and keepalived, each as a pair of network
# namespaces, trials interleaved; prints every figure with median, p90 and max and the ratio
# ours/peer, then the wire micro-benchmark. As root. TESTING.md, "Benchmarks", explains it.
#
#   scripts/bench.sh [--quick] [--trials N]   (TRIALS=N, BENCH_ONLY=ours,3.0.6,keepalived,
#                                             BENCH_KEEP=1 keeps the logs)
#   scripts/bench.sh --idle   only the idle CPU figures (all pairs at once; a minute or two)
#   scripts/bench.sh --fast-timers [--seconds S] [--loss PCT] [--no-load]
#       ours alone at keepalive 2 ms / deadtime 10 ms and 1 ms / 5 ms, realtime on, every core
#       busy (stress-ng --cpu 0) and 1% loss for S seconds (60; 600 for the issue's 10 minutes):
#       false failovers, late heartbeats, CPU, and the takeover after a real kill.
#
# --quick: one trial each and short CPU windows (CI checks that the benchmark runs).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench: must run as root (network namespaces)" >&2; exit 1; }
quick= fast=
for a in "$@"; do
  [ "$a" = --quick ] && quick=--quick
  [ "$a" = --fast-timers ] && fast=1
done
cargo build -q --release --bins
# One benchmark at a time on a machine (another checkout's run would find our namespaces and
# delete them as leftovers): wait for it.
exec 9>"${TMPDIR:-/tmp}/heartbeat-rs-bench.lock"
flock 9
python3 scripts/bench/bench.py "$@"
[ -z "$fast" ] || exit 0
for a in "$@"; do [ "$a" != --idle ] || exit 0; done
echo
if [ -n "$quick" ]; then
  cargo run -q --example wire_throughput -- --quick   # a smoke check: the dev profile will do
else
  cargo run -q --release --example wire_throughput
fi
