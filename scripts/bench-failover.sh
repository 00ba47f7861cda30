#!/usr/bin/env bash
# Failure-detection latency on loopback, no root: how long after (last heartbeat heard +
# deadtime) the survivor declares its peer dead. alice stays up; each trial starts bob, lets
# his advertised dead time settle, SIGKILLs him, and reads alice's
# `node bob: is dead (last heartbeat X ms ago, dead time Y ms)` line. Prints median, p90 and
# max of X - Y over TRIALS (default 20) trials.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-20}
cargo build -q --release --bin heartbeat
HB="$PWD/target/release/heartbeat"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/hb-bench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
PORT=$(( 20000 + RANDOM % 20000 ))
for n in alice bob; do
  mkdir -p "$DIR/$n/conf" "$DIR/$n/state" "$DIR/$n/run"
  cat > "$DIR/$n/conf/ha.cf" <<CF
logfile $DIR/$n/ha-log
keepalive 200ms
deadtime 1
warntime 500ms
initdead 10
udpport $PORT
ucast lo 127.0.0.1
ucast lo 127.0.0.2
node alice bob
crm off
CF
  printf 'auth 1\n1 sha1 bench\n' > "$DIR/$n/conf/authkeys"
  chmod 600 "$DIR/$n/conf/authkeys"
  : > "$DIR/$n/conf/haresources"
done
start() { # name address
  "$HB" -f --confdir "$DIR/$1/conf" --statedir "$DIR/$1/state" --rundir "$DIR/$1/run" \
        --node "$1" --bind "$2" 2>/dev/null &
  PIDS+=($!)
  disown "$!"
  LAST=$!
}
count() { grep -c "$2" "$1" 2>/dev/null || true; }
wait_count() { # file needle n
  local end=$(( $(date +%s) + 30 ))
  until [ "$(count "$1" "$2")" -ge "$3" ]; do
    [ "$(date +%s)" -lt "$end" ] || { echo "bench: timed out waiting for '$2'" >&2; exit 1; }
    sleep 0.02
  done
}
start alice 127.0.0.1
for i in $(seq 1 "$TRIALS"); do
  start bob 127.0.0.2
  wait_count "$DIR/alice/ha-log" "Status update for node bob: status active" "$i"
  sleep 5.5   # past the start-up allowance bob advertises in dt
  kill -KILL "$LAST"
  wait_count "$DIR/alice/ha-log" "node bob: is dead" "$i"
done
sed -n 's/.*node bob: is dead (last heartbeat \([0-9]*\) ms ago, dead time \([0-9]*\) ms).*/\1 \2/p' \
  "$DIR/alice/ha-log" | awk '{ print $1 - $2 }' |
  python3 scripts/bench/stats.py "failure detection past deadtime"
