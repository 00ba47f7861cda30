#!/bin/sh
# A CTS lab node (tests/cts.rs): owns the node's network (NS), mount, UTS and PID namespaces
# for as long as the lab lives, so that CTS can stop and start the daemon in it through the
# ssh stand-in. Usage:
#   node-holder.sh NAME NS DIR KIND [OUR_BIN_DIR]
# DIR/ha.d becomes /etc/ha.d and DIR/var /var/lib/heartbeat; /run is a tmpfs; the hostname
# is NAME. KIND is `real` (Debian's 3.0.6) or `ours`: then our heartbeat, cl_status,
# hb_standby and hb_takeover from OUR_BIN_DIR are bind-mounted over Debian's, in this node's
# mount namespace only. PID 1 of the node is a reaper, so that a daemon that exits does not
# stay a zombie (which `heartbeat -s` would take for a running daemon).
set -e
NAME=$1 NS=$2 DIR=$3 KIND=$4 BIN=$5
# Should the test die without cleaning up, the node goes with it: the holder gets SIGKILL when
# its parent (the test) dies, and unshare takes the node's PID 1, so the whole node, along.
exec setpriv --pdeathsig KILL ip netns exec "$NS" \
	unshare --mount --uts --pid --fork --mount-proc --propagation private --kill-child=SIGKILL \
	sh -c '
set -e
NAME=$1 DIR=$2 KIND=$3 BIN=$4
hostname "$NAME"
mount --bind "$DIR/ha.d" /etc/ha.d
mount --bind "$DIR/var" /var/lib/heartbeat
mount -t tmpfs tmpfs /run
mkdir -p /var/lib/heartbeat/ccm /run/heartbeat/ccm /run/heartbeat/dopd /run/lock/subsys
chown hacluster:haclient /var/lib/heartbeat /run/heartbeat /run/heartbeat/ccm
if [ "$KIND" = ours ]; then
	mount --bind "$BIN/heartbeat" /usr/libexec/heartbeat/heartbeat
	mount --bind "$BIN/cl_status" /usr/bin/cl_status
	mount --bind "$BIN/hb_standby" /usr/share/heartbeat/hb_standby
	mount --bind "$BIN/hb_takeover" /usr/share/heartbeat/hb_takeover
fi
echo ready
exec perl -e "while (1) { sleep 1 if wait() < 0 }"
' holder "$NAME" "$DIR" "$KIND" "$BIN"
