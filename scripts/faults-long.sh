#!/bin/bash
# The long loss run of issue 13 (root; the Debian package heartbeat for the mixed pairs):
# random loss of 10, 20 and 30% of one node's heartbeat datagrams for a window per level
# (10 minutes by default), 10% and 20% at keepalive 200 ms / deadtime 1 s (5 keepalives), 30% at
# 200 ms / 2 s (10 keepalives), each on a pair of ours and on a mixed pair (real 3.0.6 alice, our
# bob). For comparison, at the same time and on the same machine: two real 3.0.6 nodes
# (tests/lab/real-as-ours.sh behind our command line), and, if BASELINE_BIN names one, another
# build of ours (e.g. one from before the fix). Prints figures with the date and the machine's
# size; a false failover is a figure here (the test's assertion message follows it).
#
#   sudo scripts/faults-long.sh                   # 600 s per level, ~12 min
#   SECS=60 sudo -E scripts/faults-long.sh        # a shorter window
#   BASELINE_BIN=/path/to/old/heartbeat sudo -E scripts/faults-long.sh
#   ONLY_OURS=1 sudo -E scripts/faults-long.sh    # without the 3.0.6 pair
set -u
cd "$(dirname "$0")/.." || exit 1
SECS=${SECS:-600}
[ "$(id -u)" = 0 ] || { echo "faults-long.sh: needs root (network namespaces)" >&2; exit 1; }
echo "faults-long: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, \
$(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "window ${SECS} s per level; 10% and 20% at 200 ms / 1 s, 30% at 200 ms / 2 s"
cargo test --test faults --no-run -q 2>&1 | grep -v '^$' || true
out=$(mktemp -d)
run() { # LABEL ID_BASE [VAR=VALUE...]
  local label=$1 base=$2
  shift 2
  env "$@" HB_FAULTS_LOSS_SECS="$SECS" HB_FAULTS_LONG=1 HB_FAULTS_ID_BASE="$base" \
    HB_REQUIRE_INTEROP=1 cargo test -q --test faults random_loss -- --nocapture \
    >"$out/$label" 2>&1
}
run heartbeat-rs 10 &
if [ "${ONLY_OURS:-0}" != 1 ]; then
  run heartbeat-3.0.6 70 HB_LAB_OUR_BIN="$PWD/tests/lab/real-as-ours.sh" &
fi
if [ -n "${BASELINE_BIN:-}" ]; then run baseline 80 HB_LAB_OUR_BIN="$BASELINE_BIN" & fi
wait
for f in heartbeat-rs heartbeat-3.0.6 baseline; do
  [ -f "$out/$f" ] || continue
  case $f in
    heartbeat-3.0.6) echo "== Heartbeat 3.0.6 on both nodes (the lines say 'ours' and 'mixed': both are 3.0.6)" ;;
    baseline) echo "== baseline: $BASELINE_BIN" ;;
    *) echo "== heartbeat-rs (this tree)" ;;
  esac
  grep -E '^loss |^==== case|false failover|logged .* lines|test result' "$out/$f" | sed 's/^/  /'
  grep -A2 '^==== case' "$out/$f" | grep -v '^==== case\|false failover' | sed 's/^/    /'
done
echo "full output: $out"
