#!/bin/sh
# A stand-in for our daemon that runs the real Heartbeat 3.0.6 behind our command line, to check
# the tests' own expectations against the reference (root only):
#
#   HB_LAB_OUR_BIN=$PWD/tests/lab/real-as-ours.sh cargo test --test interop
#
# Takes -f --confdir DIR --statedir DIR --rundir DIR --node NAME [--bind ADDR]. The real daemon
# cannot bind to one address, so --bind is ignored: two such nodes in one namespace share the
# port (SO_REUSEPORT), and whichever socket the kernel picks gets a peer's packets.
# The process keeps its pid through every exec, as the harness expects.
set -e
while [ $# -gt 0 ]; do
  case $1 in
    -f) shift ;;
    --confdir) conf=$2; shift 2 ;;
    --statedir) state=$2; shift 2 ;;
    --rundir) run=$2; shift 2 ;;
    --node) node=$2; shift 2 ;;
    --bind) shift 2 ;;
    *) echo "real-as-ours.sh: unsupported argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$state/cores/root" "$state/ccm"
chown -R hacluster:haclient "$state"
for f in rc.d resource.d shellfuncs harc; do
  [ -e "$conf/$f" ] || cp -r "/etc/ha.d/$f" "$conf/"
done
# shellcheck disable=SC2016  # expanded by the inner shell
exec unshare --mount --uts --propagation private sh -c '
  set -e
  hostname "$0"
  mount --bind "$1" /etc/ha.d
  mount --bind "$2" /var/lib/heartbeat
  mount --bind "$3" /run
  mkdir -p /run/heartbeat/ccm /run/heartbeat/dopd /run/lock/subsys
  chown hacluster:haclient /var/lib/heartbeat /run/heartbeat /run/heartbeat/ccm
  exec /usr/libexec/heartbeat/heartbeat -f' "$node" "$conf" "$state" "$run"
