#!/bin/sh
# The CTS exerciser of a lab (tests/cts.rs): runs CTSlab.py (through driver.py) in network
# namespace NS (only `lo`), with a hostname that is no node's, a private /etc/hosts naming the
# nodes (CTS resolves and pings them; the addresses are loopback ones of NS) and the ssh
# stand-in over /usr/bin/ssh, all in a private mount namespace. Usage:
#   exerciser.sh NS LAB PYTHON2 STABLE_SECONDS CTSlab.py-arguments...
# LAB holds hosts, holders/NODE (each node's holder pid) and the merged log (CTS_LOG).
set -e
NS=$1 LAB=$2 PY=$3 STABLE=$4
shift 4
HERE=$(cd "$(dirname "$0")" && pwd)
export CTS_LAB="$LAB"
# CTS goes when the test does (SIGKILL when its parent dies).
exec setpriv --pdeathsig KILL ip netns exec "$NS" unshare --mount --uts --propagation private sh -c '
set -e
HERE=$1 LAB=$2 PY=$3 STABLE=$4
shift 4
hostname cts-exerciser
ip link set lo up
mount --bind "$LAB/hosts" /etc/hosts
mount --bind "$HERE/ssh" /usr/bin/ssh
cd "$LAB"
exec "$PY" "$HERE/driver.py" "$STABLE" "$@"
' exerciser "$HERE" "$LAB" "$PY" "$STABLE" "$@"
