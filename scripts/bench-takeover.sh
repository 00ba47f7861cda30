#!/usr/bin/env bash
# Takeover latency on loopback, no root, legacy mode: the time from (last heartbeat the
# survivor heard from its peer + deadtime) to the start of the first resource start script on
# the survivor. Prints median, p90 and max over TRIALS (default 20) trials.
#
# Method. bob (127.0.0.2) stays up; each trial starts alice (127.0.0.1), who owns the group
# `Stamp::web` and gets it (bob gives it back), lets her advertised dead time settle, and
# SIGKILLs her. bob declares her dead and takes `web` over.
#  * "Last heartbeat heard": both ha.cf files have a third line `ucast lo 127.0.0.3`, so every
#    packet alice sends also goes to a small UDP listener on 127.0.0.3 (python3), which writes
#    the wall-clock time (ns) of each status message from alice. alice sends the copy for bob
#    just before the listener's (ucast lines in order), so the listener's last time before the
#    kill is when bob heard her last heartbeat, within microseconds.
#  * deadtime: the dead time bob applied, from his log line
#    `node alice: is dead (last heartbeat X ms ago, dead time Y ms)`.
#  * First resource start: the Stamp resource script is bash and takes $EPOCHREALTIME (us) as
#    its first statement, so the figure includes bob's event loop, the status check of the
#    group (a script run of its own, as 3.0.6 does) and the fork/exec of the start script.
#    The status check stamps its start too, which splits the figure.
# Per trial: total = start - (last heartbeat + Y); after-declaration = start - (last + X);
# status check = its start - (last heartbeat + Y).
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-20}
command -v python3 >/dev/null || { echo "bench: needs python3 (the heartbeat listener)" >&2; exit 1; }
cargo build -q --release --bin heartbeat
HB="$PWD/target/release/heartbeat"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/hb-bench-takeover.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
PORT=$(( 20000 + RANDOM % 20000 ))
SHARED="$DIR/shared"
mkdir -p "$SHARED"
cat > "$DIR/Stamp" <<'SH'
#!/bin/bash
t=$EPOCHREALTIME
name=$1 dir=$2 op=$3
state=$dir/$HA_CURHOST-$name
case $op in
start) echo "$HA_CURHOST start $name ${t/[.,]/}" >>"$dir/stamps"; : >"$state" ;;
stop) rm -f "$state" ;;
status)
	echo "$HA_CURHOST status $name ${t/[.,]/}" >>"$dir/stamps"
	if [ -e "$state" ]; then echo running; else echo stopped; exit 3; fi ;;
esac
exit 0
SH
chmod 755 "$DIR/Stamp"
for n in alice bob; do
  mkdir -p "$DIR/$n/conf/resource.d" "$DIR/$n/state" "$DIR/$n/run"
  cat > "$DIR/$n/conf/ha.cf" <<CF
logfile $DIR/$n/ha-log
keepalive 200ms
deadtime 1
warntime 500ms
initdead 10
udpport $PORT
ucast lo 127.0.0.1
ucast lo 127.0.0.2
ucast lo 127.0.0.3
node alice bob
crm off
CF
  printf 'auth 1\n1 sha1 bench\n' > "$DIR/$n/conf/authkeys"
  chmod 600 "$DIR/$n/conf/authkeys"
  echo "alice Stamp::web::$SHARED" > "$DIR/$n/conf/haresources"
  ln -s "$DIR/Stamp" "$DIR/$n/conf/resource.d/Stamp"
done
# The listener: one line (ns) per status message from alice.
python3 -u - "$PORT" "$DIR/heard" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.3", int(sys.argv[1])))
with open(sys.argv[2], "a") as out:
    while True:
        data, _ = s.recvfrom(65536)
        t = time.time_ns()
        # netstring (`11:(0)t=status,`) or classic (`t=status` lines) form
        if any(x in data for x in (b")t=status,", b"\nt=status\n")) and \
           any(x in data for x in (b")src=alice,", b"\nsrc=alice\n")):
            out.write("%d\n" % t)
            out.flush()
PY
PIDS+=($!)
disown "$!"
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
    [ "$(date +%s)" -lt "$end" ] || { echo "bench: timed out waiting for '$2' in $1" >&2; exit 1; }
    sleep 0.02
  done
}
wait_file() { # path
  local end=$(( $(date +%s) + 30 ))
  until [ -e "$1" ]; do
    [ "$(date +%s)" -lt "$end" ] || { echo "bench: timed out waiting for $1" >&2; exit 1; }
    sleep 0.02
  done
}
: > "$DIR/results"
start bob 127.0.0.2
for i in $(seq 1 "$TRIALS"); do
  start alice 127.0.0.1
  wait_file "$SHARED/alice-web"
  sleep 5.5   # past the start-up allowance alice advertises in dt
  kill -KILL "$LAST"
  wait_count "$DIR/bob/ha-log" "node alice: is dead" "$i"
  wait_count "$SHARED/stamps" "^bob start web" "$i"
  rm -f "$SHARED/alice-web"   # her machine died with her resources
  heard=$(tail -n 1 "$DIR/heard" 2>/dev/null)
  [ -n "$heard" ] || { echo "bench: the listener heard no status message from alice" >&2; exit 1; }
  read -r x y < <(sed -n 's/.*node alice: is dead (last heartbeat \([0-9]*\) ms ago, dead time \([0-9]*\) ms).*/\1 \2/p' \
    "$DIR/bob/ha-log" | tail -n 1)
  started=$(grep '^bob start web' "$SHARED/stamps" | tail -n 1 | awk '{ print $4 }')
  # the group's status check that came just before that start
  checked=$(awk '$1 == "bob" && $2 == "status" { s = $4 } $1 == "bob" && $2 == "start" { c = s } END { print c }' "$SHARED/stamps")
  # microseconds: total past (heard + deadtime), past the declaration (heard + X), and the
  # status check's start past (heard + deadtime)
  base=$(( heard / 1000 + y * 1000 ))
  echo "$(( started - base )) $(( started - heard / 1000 - x * 1000 )) $(( checked - base ))" >> "$DIR/results"
done
summary() { # column label
  awk -v c="$1" '{ print $c }' "$DIR/results" | python3 scripts/bench/stats.py --scale 1000 "$2"
}
summary 1 "first resource start past (last heartbeat heard + deadtime)"
summary 2 "  of which after the death was declared (X in ms, so +-1 ms)"
summary 3 "  the group's status check (first script) past (last heartbeat heard + deadtime)"
