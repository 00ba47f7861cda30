#!/usr/bin/env bash
# A two-node Heartbeat cluster on loopback, no root and no configuration of yours: alice on
# 127.0.0.1 and bob on 127.0.0.2 (ucast over lo, a free high UDP port), everything in a temp
# dir that is removed at the end. alice's resource group is the harmless Marker resource `web`.
# Shows both nodes active and where `web` runs, kills alice, shows bob taking `web` over and how
# long it took, restarts alice, shows the failback, and stops both cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q --bin heartbeat
HB="$PWD/target/debug/heartbeat"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/hb-demo.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

PORT=$(( 20000 + RANDOM % 20000 ))
# The sample configuration in etc-ha.d/ as it stands, with its paths moved into $DIR, each
# node's log of its own, and a free port.
for n in alice bob; do
  mkdir -p "$DIR/$n/conf" "$DIR/$n/state" "$DIR/$n/run"
  sed -e "s#/tmp/hb-demo/ha-log#$DIR/$n/ha-log#; s#/tmp/hb-demo/ha-debug#$DIR/$n/ha-debug#" \
      -e "s#/tmp/hb-demo/#$DIR/#g; s#^udpport.*#udpport $PORT#" etc-ha.d/ha.cf > "$DIR/$n/conf/ha.cf"
  sed -e "s#/tmp/hb-demo/#$DIR/#g" etc-ha.d/haresources > "$DIR/$n/conf/haresources"
  cp etc-ha.d/authkeys "$DIR/$n/conf/authkeys"
  chmod 600 "$DIR/$n/conf/authkeys"
  ln -s "$PWD/resource.d" "$DIR/$n/conf/resource.d"
done
DEADTIME=$(awk '$1 == "deadtime" { print $2 }' etc-ha.d/ha.cf)
KEEPALIVE=$(awk '$1 == "keepalive" { print $2 }' etc-ha.d/ha.cf)
mkdir -p "$DIR/marker"
where() { # where the web group runs
  local on=""
  for n in alice bob; do [ -e "$DIR/marker/$n/web" ] && on="$on $n"; done
  echo "   web runs on:${on:- nobody}"
}

start() { # name address
  "$HB" -f --confdir "$DIR/$1/conf" --statedir "$DIR/$1/state" --rundir "$DIR/$1/run" \
        --node "$1" --bind "$2" 2>/dev/null &
  PIDS+=($!)
  disown "$!"
  eval "PID_$1=$!"
}
wait_log() { # file needle seconds
  local end=$(( $(date +%s) + $3 ))
  until grep -qF "$2" "$1" 2>/dev/null; do
    [ "$(date +%s)" -lt "$end" ] || { echo "demo: timed out waiting for '$2' in $1" >&2; exit 1; }
    sleep 0.05
  done
}
now_ms() { date +%s%3N; }
show() { sed -n "s/^.*heartbeat: \[[0-9]*\]: /  $1: /p" "$DIR/$1/ha-log" | tail -n "$2"; }

echo "== starting alice (127.0.0.1) and bob (127.0.0.2) on UDP port $PORT, keepalive $KEEPALIVE, deadtime ${DEADTIME}s"
start alice 127.0.0.1
start bob 127.0.0.2
wait_log "$DIR/alice/ha-log" "Status update for node bob: status active" 15
wait_log "$DIR/bob/ha-log" "Status update for node alice: status active" 15
wait_file() { # path seconds
  local end=$(( $(date +%s) + $2 ))
  until [ -e "$1" ]; do
    [ "$(date +%s)" -lt "$end" ] || { echo "demo: timed out waiting for $1" >&2; exit 1; }
    sleep 0.01
  done
}
echo "   (auto_failback on: both nodes started together, so each waits 10 s for the other to settle)"
wait_file "$DIR/marker/alice/web" 25
show alice 3; show bob 3
where
sleep 6   # past the start-up allowance in the advertised dead time

echo "== killing alice (SIGKILL), the node running web"
T0=$(now_ms)
kill -KILL "$PID_alice"
rm -f "$DIR/marker/alice/web"   # a crashed machine's services are gone with it
wait_file "$DIR/marker/bob/web" 20
T1=$(now_ms)
show bob 6
where
echo "   bob took web over $(( T1 - T0 )) ms after the kill (deadtime ${DEADTIME}000 ms; alice's last heartbeat left up to one keepalive before the kill)"

echo "== restarting alice: web fails back to her (auto_failback on: bob hands it over)"
start alice 127.0.0.1
wait_log "$DIR/bob/ha-log" "Heartbeat restart on node alice" 15
wait_file "$DIR/marker/alice/web" 15
show bob 3
where

echo "== stopping both (SIGTERM)"
kill -TERM "$PID_alice" "$PID_bob"
wait_log "$DIR/alice/ha-log" "alice Heartbeat shutdown complete." 10
wait_log "$DIR/bob/ha-log" "bob Heartbeat shutdown complete." 10
show bob 3
where
echo "== done"
