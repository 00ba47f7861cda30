#!/usr/bin/env bash
# A two-node Heartbeat cluster on loopback, no root and no configuration of yours: alice on
# 127.0.0.1 and bob on 127.0.0.2 (ucast over lo, a free high UDP port), everything in a temp
# dir that is removed at the end. alice's resource group is the harmless Marker resource `web`.
# Shows both nodes active and where `web` runs, kills alice, shows bob taking `web` over and how
# long it took, restarts alice, shows the failback, and stops both cleanly. The nodes' log lines
# that matter are shown as they happen, with the time since the demo started (colour on a
# terminal; NO_COLOR=1 turns it off), and hb_status shows a node's view at the key points.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  B=$'\e[1m' R=$'\e[31m' G=$'\e[32m' Y=$'\e[33m' C=$'\e[36m' N=$'\e[0m'
  COLOR=always
else
  B= R= G= Y= C= N=
  COLOR=never
fi
echo "${B}== building (cargo build)${N}"
cargo build --bin heartbeat --bin hb_status
HB="$PWD/target/debug/heartbeat"
HB_STATUS="$PWD/target/debug/hb_status"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/hb-demo.XXXXXX")
PIDS=()
FOLLOW_PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  # The followers; their tail processes end with this script (tail --pid).
  for p in "${FOLLOW_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
START_MS=$(date +%s%3N)

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
stamp() { local ms=$(( $(now_ms) - START_MS )); printf '[%3d.%01ds]' $(( ms / 1000 )) $(( ms % 1000 / 100 )); }
say() { echo "$(stamp) ${B}$*${N}"; }
status() { # node: its hb_status, indented
  "$HB_STATUS" --rundir "$DIR/$1/run" --color "$COLOR" 2>&1 | sed 's/^/      /' || true
}
# The log lines worth watching in NODE's log, as they are written, prefixed by time and node.
follow() {
  tail -n0 -F --pid=$$ -s 0.1 "$DIR/$1/ha-log" 2>/dev/null | while IFS= read -r line; do
    case $line in
      *"Status update for node"*|*"is dead"*|*"Link "*|*"acquired"*|*"Running "*" start"|*"Running "*" stop"|*"Heartbeat restart on node"*|*"shutdown complete"*|*"Giving up"*|*"relinquished"*|*"Late heartbeat"*) ;;
      *) continue ;;
    esac
    text=${line#*heartbeat: \[*\]: }
    case $text in
      *dead*|*ERROR*|*CRIT*) col=$R ;;
      *acquired*|*active*|*" start"|*" up."*) col=$G ;;
      *) col=$Y ;;
    esac
    echo "$(stamp)   ${C}$1${N}: ${col}${text}${N}"
  done
}

for n in alice bob; do touch "$DIR/$n/ha-log"; done
for n in alice bob; do
  follow "$n" &
  FOLLOW_PIDS+=($!)
done
say "== starting alice (127.0.0.1) and bob (127.0.0.2) on UDP port $PORT, keepalive $KEEPALIVE, deadtime ${DEADTIME}s"
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
say "   (auto_failback on, both started together: each waits 10 s for the other to settle)"
wait_file "$DIR/marker/alice/web" 25
sleep 0.3
say "== both active; bob's view:"
status bob
sleep 4   # past the start-up allowance in the advertised dead time

say "== killing alice (SIGKILL), the node running web"
T0=$(now_ms)
kill -KILL "$PID_alice"
rm -f "$DIR/marker/alice/web"   # a crashed machine's services are gone with it
wait_file "$DIR/marker/bob/web" 20
T1=$(now_ms)
say "== ${G}bob runs web $(( T1 - T0 )) ms after the kill${N}${B} (deadtime ${DEADTIME}000 ms; alice's last heartbeat left up to one keepalive before the kill)"
sleep 0.5
status bob

say "== restarting alice: web fails back to her (auto_failback on: bob hands it over)"
T2=$(now_ms)
start alice 127.0.0.1
wait_file "$DIR/marker/alice/web" 15
T3=$(now_ms)
say "== ${G}web back on alice $(( T3 - T2 )) ms after her restart${N}"
sleep 0.5
status alice

say "== stopping both (SIGTERM)"
kill -TERM "$PID_alice" "$PID_bob"
wait_log "$DIR/alice/ha-log" "alice Heartbeat shutdown complete." 10
wait_log "$DIR/bob/ha-log" "bob Heartbeat shutdown complete." 10
sleep 0.2
say "== done"
