#!/usr/bin/env python3
"""Three-way benchmark: ours, Heartbeat 3.0.6 and keepalived, each as a pair of test hosts
(network namespaces joined by a veth pair), trials interleaved. Run through scripts/bench.sh,
as root. See TESTING.md, "Benchmarks", for the figures and the method.

Every address used lives inside the namespaces this script creates (10.250.201-203.0/24);
everything started is stopped by pid (or by `ip netns pids` of those namespaces) at the end.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stats  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OURS = os.environ.get("BENCH_OURS_BIN") or os.path.join(ROOT, "target/release/heartbeat")
OURS_STANDBY = os.path.join(ROOT, "target/release/hb_standby")
REAL = "/usr/libexec/heartbeat/heartbeat"
REAL_STANDBY = "/usr/share/heartbeat/hb_standby"
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
UDPPORT = 694
GROUP = "web"
# The startup allowance: 3.0.6 (and ours) advertise deadtime + 2 s in their first 5 s.
SETTLE = 6.0

IMPLS = {
    "ours": dict(prefix="bnours", net="10.250.201"),
    "3.0.6": dict(prefix="bnreal", net="10.250.202"),
    "keepalived": dict(prefix="bnkad", net="10.250.203"),
}

STAMP = r"""#!/bin/bash
# Stamp NAME DIR start|stop|status: a resource that stamps its own start (first thing) and the
# end of its stop, `date +%s.%N`, one line each in DIR/stamps.
name=$1 dir=$2 op=$3
case $op in
start)
	t=$(date +%s.%N)
	echo "$t $HOSTNAME start $name" >>"$dir/stamps"
	: >"$dir/$HOSTNAME-$name"
	;;
stop)
	rm -f "$dir/$HOSTNAME-$name"
	echo "$(date +%s.%N) $HOSTNAME stop $name" >>"$dir/stamps"
	;;
status)
	if [ -e "$dir/$HOSTNAME-$name" ]; then echo running; else echo stopped; exit 3; fi
	;;
esac
exit 0
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(*argv, check=True, **kw):
    return subprocess.run(argv, check=check, stdin=subprocess.DEVNULL, **kw)


def netns_pids(ns):
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class Timing:
    def __init__(self, keepalive, deadtime):
        self.keepalive, self.deadtime = keepalive, deadtime


class Pair:
    """Two hosts, PREFIX-a (NET.1, alice) and PREFIX-b (NET.2, bob), and their nodes' files."""

    def __init__(self, impl, workdir):
        self.impl = impl
        c = IMPLS[impl]
        self.prefix, self.net = c["prefix"], c["net"]
        self.dir = os.path.join(workdir, impl.replace(".", ""))
        self.stampdir = os.path.join(self.dir, "stamps.d")
        self.procs = {}
        self.destroy()
        p = self.prefix
        run("ip", "link", "add", p + "-va", "type", "veth", "peer", "name", p + "-vb")
        for side, host in (("a", 1), ("b", 2)):
            ns = self.ns(side)
            run("ip", "netns", "add", ns)
            run("ip", "link", "set", "%s-v%s" % (p, side), "netns", ns)
            run("ip", "-n", ns, "link", "set", "%s-v%s" % (p, side), "name", "hb0")
            run("ip", "-n", ns, "addr", "add", "%s.%d/24" % (self.net, host), "dev", "hb0")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "link", "set", "hb0", "up")
        os.makedirs(self.stampdir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(self.stampdir, 0o777)
        self.stamp = os.path.join(self.dir, "Stamp")
        with open(self.stamp, "w") as f:
            f.write(STAMP)
        os.chmod(self.stamp, 0o755)

    def ns(self, side):
        return "%s-%s" % (self.prefix, side)

    def side(self, node):
        return "a" if node == "alice" else "b"

    def addr(self, node):
        return "%s.%d" % (self.net, 1 if node == "alice" else 2)

    def destroy(self):
        if os.path.exists("/sys/class/net/%s-va" % self.prefix):
            run("ip", "link", "del", self.prefix + "-va", check=False)
        for side in "ab":
            ns = self.ns(side)
            if os.path.exists("/run/netns/" + ns):
                self.kill_ns(ns)
                run("ip", "netns", "del", ns, check=False)

    def kill_ns(self, ns):
        """SIGKILL every process in the namespace (only this script starts any there)."""
        for _ in range(50):
            pids = netns_pids(ns)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        for node, p in list(self.procs.items()):
            if self.ns(self.side(node)) == ns:
                p.wait()
                del self.procs[node]

    # ----- configuration -------------------------------------------------------------------

    def configure(self, t):
        for node in ("alice", "bob"):
            d = os.path.join(self.dir, node)
            for sub in ("ha.d/resource.d", "var/ccm", "var/cores/root", "var/cores/hacluster"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            os.chmod(d, 0o755)
            if self.impl == "keepalived":
                self.keepalived_conf(node, t)
            else:
                self.heartbeat_conf(node, t)

    def heartbeat_conf(self, node, t):
        d = os.path.join(self.dir, node)
        conf = os.path.join(d, "ha.d")
        with open(os.path.join(conf, "ha.cf"), "w") as f:
            f.write("logfile %s/ha-log\n" % d)
            f.write("keepalive %dms\ndeadtime %dms\nwarntime %dms\ninitdead %dms\n" % (
                t.keepalive * 1000, t.deadtime * 1000, t.deadtime * 500, t.deadtime * 2000))
            f.write("udpport %d\nucast hb0 %s\nucast hb0 %s\n" % (
                UDPPORT, self.addr("alice"), self.addr("bob")))
            f.write("node alice\nnode bob\nauto_failback on\ncrm off\nrealtime on\n")
        ak = os.path.join(conf, "authkeys")
        with open(ak, "w") as f:
            f.write("auth 1\n1 sha1 bench-secret\n")
        os.chmod(ak, 0o600)
        with open(os.path.join(conf, "haresources"), "w") as f:
            f.write("alice Stamp::%s::%s\n" % (GROUP, self.stampdir))
        dst = os.path.join(conf, "resource.d", "Stamp")
        shutil.copy(self.stamp, dst)
        for item in ("rc.d", "shellfuncs", "harc"):
            src = os.path.join("/etc/ha.d", item)
            if os.path.exists(src) and not os.path.exists(os.path.join(conf, item)):
                run("cp", "-r", src, conf)
        run("chown", "-R", "hacluster:haclient", os.path.join(d, "var"))

    def keepalived_conf(self, node, t):
        d = os.path.join(self.dir, node)
        prio = 150 if node == "alice" else 100
        peer = self.addr("bob" if node == "alice" else "alice")
        script = lambda op: '"%s %s %s %s"' % (self.stamp, GROUP, self.stampdir, op)  # noqa: E731
        with open(os.path.join(d, "keepalived.conf"), "w") as f:
            f.write("""global_defs {
    router_id %(node)s
    script_user root
    vrrp_version 3
}
vrrp_instance VI_1 {
    state BACKUP
    interface hb0
    virtual_router_id 51
    priority %(prio)d
    advert_int %(adv)s
    unicast_src_ip %(me)s
    unicast_peer {
        %(peer)s
    }
    virtual_ipaddress {
        %(vip)s/24 dev hb0
    }
    notify_master %(start)s
    notify_backup %(stop)s
    notify_fault %(stop)s
    notify_stop %(stop)s
}
""" % dict(node=node, prio=prio, adv=("%g" % t.keepalive), me=self.addr(node), peer=peer,
           vip="%s.100" % self.net, start=script("start"), stop=script("stop")))

    def keepalived_deadtime(self, t):
        """bob's master-down interval (VRRPv3): 3 x advert + (256 - priority) x advert / 256."""
        return 3 * t.keepalive + (256 - 100) * t.keepalive / 256

    # ----- nodes ---------------------------------------------------------------------------

    def start(self, node):
        d = os.path.join(self.dir, node)
        ns = self.ns(self.side(node))
        out = open(os.path.join(d, "output"), "ab")
        if self.impl == "keepalived":
            script = ("set -e\nhostname %s\nmount -t tmpfs tmpfs /run\n"
                      "exec %s -n -l -P -f %s/keepalived.conf -p /run/k.pid -r /run/v.pid\n"
                      % (node, KEEPALIVED, d))
        else:
            exe = OURS if self.impl == "ours" else REAL
            script = ("set -e\nhostname %s\nmount --bind %s/ha.d /etc/ha.d\n"
                      "mount --bind %s/var /var/lib/heartbeat\nmount -t tmpfs tmpfs /run\n"
                      "mkdir -p /var/lib/heartbeat/ccm /run/heartbeat/ccm /run/heartbeat/dopd "
                      "/run/lock/subsys\n"
                      "chown hacluster:haclient /var/lib/heartbeat /run/heartbeat "
                      "/run/heartbeat/ccm\nexec %s -f\n" % (node, d, d, exe))
        p = subprocess.Popen(
            ["ip", "netns", "exec", ns, "unshare", "--mount", "--uts", "--propagation",
             "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        self.procs[node] = p
        return p

    def stop(self, node, limit=60):
        """SIGTERM the daemon (the spawned pid: every step of the chain execs) and wait."""
        p = self.procs.get(node)
        if p is None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(limit)
        except subprocess.TimeoutExpired:
            raise RuntimeError("%s %s did not stop within %d s" % (self.impl, node, limit))
        # 3.0.6's helpers leave with the master; anything left is killed.
        self.kill_ns(self.ns(self.side(node)))
        self.procs.pop(node, None)

    def crash(self, node):
        self.kill_ns(self.ns(self.side(node)))
        self.procs.pop(node, None)
        # The machine died with its resources.
        try:
            os.unlink(os.path.join(self.stampdir, "%s-%s" % (node, GROUP)))
        except FileNotFoundError:
            pass

    def standby(self, node):
        """hb_standby on `node`, inside its namespaces: 3.0.6's script or our command."""
        pid = self.procs[node].pid
        tool = OURS_STANDBY if self.impl == "ours" else REAL_STANDBY
        r = subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "-u", tool],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("hb_standby on %s %s: exit %d: %s" % (
                self.impl, node, r.returncode, (r.stdout + r.stderr).strip()))

    def stop_all(self):
        for side in "ab":
            self.kill_ns(self.ns(side))
        self.procs.clear()
        for f in os.listdir(self.stampdir):
            os.unlink(os.path.join(self.stampdir, f))

    # ----- observation ---------------------------------------------------------------------

    def stamps(self):
        try:
            with open(os.path.join(self.stampdir, "stamps")) as f:
                lines = f.read().split("\n")
        except FileNotFoundError:
            return []
        out = []
        for ln in lines:
            w = ln.split()
            if len(w) == 4:
                out.append((float(w[0]), w[1], w[2]))
        return out

    def wait_stamp(self, node, op, after, limit):
        deadline = time.time() + limit
        while True:
            for t, n, o in self.stamps():
                if n == node and o == op and t >= after:
                    return t
            for n, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError("%s %s exited (%s) while waiting for '%s %s'\n%s" % (
                        self.impl, n, p.returncode, node, op, self.tail()))
            if time.time() > deadline:
                raise RuntimeError("%s: no '%s %s' stamp within %d s\n%s" % (
                    self.impl, node, op, limit, self.tail()))
            time.sleep(0.01)

    def last_stamp(self, node, op, before):
        ts = [t for t, n, o in self.stamps() if n == node and o == op and t <= before]
        return ts[-1] if ts else None

    def tail(self):
        out = []
        for node in ("alice", "bob"):
            for name in ("ha-log", "output"):
                p = os.path.join(self.dir, node, name)
                if os.path.exists(p):
                    with open(p, errors="replace") as f:
                        out.append("-- %s %s:\n%s" % (node, name, "".join(f.readlines()[-12:])))
        return "\n".join(out)

    def node_pids(self, node):
        return netns_pids(self.ns(self.side(node)))

    def cpu_ns(self, node):
        """CPU time (ns) of every thread of the node's processes (schedstat's first field)."""
        total = 0
        for pid in self.node_pids(node):
            try:
                for tid in os.listdir("/proc/%d/task" % pid):
                    with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                        total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total

    def memory_kb(self, node):
        """(processes, RSS kB, PSS kB) summed over the node's processes."""
        n = rss = pss = 0
        for pid in self.node_pids(node):
            try:
                with open("/proc/%d/smaps_rollup" % pid) as f:
                    text = f.read()
            except (FileNotFoundError, ProcessLookupError):
                continue
            n += 1
            rss += int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))
            pss += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))
        return n, rss, pss


# ----- the last heartbeat heard ------------------------------------------------------------

def listen(proto, src, out):
    """In the survivor's namespace: a raw socket sees every packet of `proto` (udp: heartbeat's
    status messages; 112: VRRP adverts) that arrives from `src`; one line (ns) per packet, the
    kernel's receive time (SO_TIMESTAMPNS), so a listener scheduled late under load still
    writes when the packet arrived."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_UDP if proto == "udp" else 112)
    so_timestampns = getattr(socket, "SO_TIMESTAMPNS", 35)
    s.setsockopt(socket.SOL_SOCKET, so_timestampns, 1)
    # A copy or retransmission of a status already heard (same generation and seq) is not a
    # new heartbeat: our daemon does not count it as proof of life either (a replayed copy
    # must not keep a dead node alive), so "last heard" is the last new one.
    seen = set()
    seq_re = re.compile(rb"[,\n](?:\d+:\(0\))?(hg|seq)=([0-9a-fA-F]+)")
    with open(out, "a") as f:
        while True:
            data, anc, _, _ = s.recvmsg(65536, 64)
            t = time.time_ns()
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == so_timestampns and len(blob) >= 16:
                    sec, nsec = struct.unpack("qq", blob[:16])
                    t = sec * 1000000000 + nsec
            if socket.inet_ntoa(data[12:16]) != src:
                continue
            if proto == "udp":
                ihl = (data[0] & 0x0F) * 4
                port = int.from_bytes(data[ihl + 2:ihl + 4], "big")
                body = data[ihl + 8:]
                if port != UDPPORT or not (b")t=status," in body or b"\nt=status\n" in body):
                    continue
                fields = dict(seq_re.findall(body))
                key = (fields.get(b"hg"), fields.get(b"seq"))
                if key[1] is not None:
                    if key in seen:
                        continue
                    seen.add(key)
            f.write("%d\n" % t)
            f.flush()


class Listener:
    def __init__(self, pair, survivor, dying):
        self.out = os.path.join(pair.dir, "heard")
        if os.path.exists(self.out):
            os.unlink(self.out)
        proto = "112" if pair.impl == "keepalived" else "udp"
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", pair.ns(pair.side(survivor)), sys.executable,
             os.path.abspath(__file__), "--listen", proto, pair.addr(dying), self.out],
            stdin=subprocess.DEVNULL)

    def last(self):
        try:
            with open(self.out) as f:
                lines = f.read().split()
        except FileNotFoundError:
            return None
        return int(lines[-1]) / 1e9 if lines else None

    def close(self):
        self.p.kill()
        self.p.wait()


# ----- one trial ---------------------------------------------------------------------------

def trial(pair, t, results):
    """Start both, graceful stop of the owner, failback, hb_standby (heartbeat), crash of the
    owner. Appends to results[figure]."""
    r = results.setdefault(pair.impl, {})
    add = lambda k, v: r.setdefault(k, []).append(v)  # noqa: E731
    pair.stop_all()
    pair.configure(t)
    t0 = time.time()
    pair.start("alice")
    pair.start("bob")
    s = pair.wait_stamp("alice", "start", t0, 60)
    add("start", (s - t0) * 1e3)
    time.sleep(max(0, t0 + SETTLE - time.time()))
    for node in ("alice", "bob"):
        n, rss, pss = pair.memory_kb(node)
        add("procs", n)
        add("rss", rss / 1024)
        add("pss", pss / 1024)

    # Graceful stop of the owner: the peer runs the group.
    t1 = time.time()
    pair.stop("alice")
    s = pair.wait_stamp("bob", "start", t1, 30)
    stopped = pair.last_stamp("alice", "stop", time.time())
    add("stop", (s - t1) * 1e3)
    if stopped is not None:
        add("stop_gap", (s - stopped) * 1e3)

    # Failback: the owner returns.
    t2 = time.time()
    pair.start("alice")
    s = pair.wait_stamp("alice", "start", t2, 60)
    add("failback", (s - t2) * 1e3)
    time.sleep(0.3)
    released = pair.last_stamp("bob", "stop", time.time())
    if released is not None and released >= t2:
        # Negative: both ran the group for that long.
        add("failback_gap", (s - released) * 1e3)
    time.sleep(max(0, t2 + SETTLE - time.time()))

    # Takeover: the owner crashes (past the start-up allowance it advertised); bob, up since
    # the start, takes the group over.
    if pair.impl == "keepalived":
        deadtime = pair.keepalived_deadtime(t)
    else:
        deadtime = t.deadtime
    lst = Listener(pair, "bob", "alice")
    time.sleep(1.5)
    tk = time.time()
    pair.crash("alice")
    try:
        s = pair.wait_stamp("bob", "start", tk, 30)
    finally:
        time.sleep(0.05)
        lst.close()
    heard = lst.last()
    if heard is None:
        raise RuntimeError("%s: the listener heard nothing from alice" % pair.impl)
    add("overshoot", (s - (heard + deadtime)) * 1e3)

    if pair.impl != "keepalived":
        # hb_standby on the owner, back from its crash with its group. Last: with the crash of
        # the peer after a standby, 3.0.6 once left the group down (TESTING.md).
        t4 = time.time()
        pair.start("alice")
        pair.wait_stamp("alice", "start", t4, 60)
        time.sleep(1.0)
        # A node still settling its groups drops a standby request ("in flux"): ask again.
        for attempt in range(3):
            t3 = time.time()
            pair.standby("alice")
            try:
                s = pair.wait_stamp("bob", "start", t3, 10)
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                log("bench: %s: hb_standby had no effect in 10 s, asking again" % pair.impl)
        add("standby", (s - t3) * 1e3)
    pair.stop_all()


def idle_cpu(pairs, t, windows, window, results, key):
    """Both nodes of every pair idle at once; CPU per node per window, in ms per minute."""
    started = {}
    for p in pairs:
        p.stop_all()
        p.configure(t)
        # Each pair's own start: two of ours run the group before the next pair even starts.
        started[p.impl] = time.time()
        p.start("alice")
        p.start("bob")
    for p in pairs:
        p.wait_stamp("alice", "start", started[p.impl], 60)
    time.sleep(SETTLE)
    for _ in range(windows):
        before = {(p.impl, n): p.cpu_ns(n) for p in pairs for n in ("alice", "bob")}
        w0 = time.time()
        time.sleep(window)
        el = time.time() - w0
        for p in pairs:
            for n in ("alice", "bob"):
                used = p.cpu_ns(n) - before[(p.impl, n)]
                results.setdefault(p.impl, {}).setdefault(key, []).append(used / 1e6 * 60 / el)
    for p in pairs:
        p.stop_all()


# ----- fast timers under load -------------------------------------------------------------

FAST_SETTINGS = [tuple(float(x) / 1e3 for x in v.split("/"))
                 for v in os.environ.get("FAST_SETTINGS", "2/10,1/5").split(",")]


def set_loss(pair, pct):
    """Drop `pct`% of the heartbeat packets entering each host (nftables; no netem here)."""
    for side in "ab":
        ns = pair.ns(side)
        run("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "benchloss",
            check=False, stderr=subprocess.DEVNULL)
        if pct > 0:
            rule = "udp dport %d numgen random mod 100 < %d drop" % (UDPPORT, pct)
            subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], check=True,
                           input=("table inet benchloss {\n  chain in {\n    type filter hook "
                                  "input priority 0; policy accept;\n    %s\n  }\n}\n"
                                  % rule).encode())


def log_count(pair, node, needle):
    try:
        with open(os.path.join(pair.dir, node, "ha-log"), errors="replace") as f:
            return sum(1 for ln in f if needle in ln)
    except FileNotFoundError:
        return 0


def late_intervals(pair, node):
    """The intervals (ms) of every `Late heartbeat` line in the node's log."""
    out = []
    try:
        with open(os.path.join(pair.dir, node, "ha-log"), errors="replace") as f:
            for ln in f:
                m = re.search(r"Late heartbeat: Node \S+: interval (\d+) ms", ln)
                if m:
                    out.append(int(m.group(1)))
    except FileNotFoundError:
        pass
    return out


def fast_timers(work, seconds, loss, load):
    """Ours only: each (keepalive, deadtime) of FAST_SETTINGS with `realtime on`, every core
    busy (stress-ng --cpu 0) and `loss`% of packets dropped for `seconds`; then alice is
    killed under the same load and the takeover measured. Prints one line per setting."""
    rows = []
    for ka, dt in FAST_SETTINGS:
        t = Timing(ka, dt)
        pair = Pair("ours", work)
        stress = None
        try:
            pair.configure(t)
            t0 = time.time()
            pair.start("alice")
            pair.start("bob")
            pair.wait_stamp("alice", "start", t0, 60)
            time.sleep(SETTLE)
            dead0 = sum(log_count(pair, n, ": is dead") for n in ("alice", "bob"))
            late0 = {n: len(late_intervals(pair, n)) for n in ("alice", "bob")}
            set_loss(pair, loss)
            if load:
                stress = subprocess.Popen(["stress-ng", "--cpu", "0", "--quiet"],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
            cpu0 = {n: pair.cpu_ns(n) for n in ("alice", "bob")}
            w0 = time.time()
            time.sleep(seconds)
            el = time.time() - w0
            cpu = [(pair.cpu_ns(n) - cpu0[n]) / 1e6 * 60 / el for n in ("alice", "bob")]
            false_failovers = sum(log_count(pair, n, ": is dead")
                                  for n in ("alice", "bob")) - dead0
            late = [iv for n in ("alice", "bob") for iv in late_intervals(pair, n)[late0[n]:]]
            # A real failure, under the same load and loss.
            lst = Listener(pair, "bob", "alice")
            # Python starts slowly on a busy machine: kill once it has heard alice.
            until = time.time() + 30
            while lst.last() is None and time.time() < until:
                time.sleep(0.05)
            time.sleep(0.2)
            tk = time.time()
            pair.crash("alice")
            try:
                s = pair.wait_stamp("bob", "start", tk, 30)
            finally:
                time.sleep(0.05)
                lst.close()
            heard = lst.last()
            took = (s - heard) * 1e3 if heard else float("nan")
            rows.append((ka, dt, seconds, false_failovers, late, cpu, took))
        finally:
            if stress is not None:
                stress.terminate()
                stress.wait()
            set_loss(pair, 0)
            pair.stop_all()
            pair.destroy()
    print("\nfast timers, ours, realtime on, %s, %d%% loss, %d s each:" % (
        "every core busy (stress-ng --cpu 0)" if load else "no load", loss, seconds))
    print("  %-19s %-15s %-28s %-22s %s" % (
        "keepalive/deadtime", "false failovers", "late heartbeats (max ms)",
        "CPU/node ms/min", "kill -> peer's first start"))
    held = []
    for ka, dt, secs, ff, late, cpu, took in rows:
        print("  %-19s %-15d %-28s %-22s %.1f ms (deadtime %g ms + %.1f)" % (
            "%g ms / %g ms" % (ka * 1e3, dt * 1e3), ff,
            "%d (%s)" % (len(late), max(late) if late else "-"),
            "%.0f / %.0f" % tuple(cpu), took, dt * 1e3, took - dt * 1e3))
        if ff == 0:
            held.append((ka, dt))
    if held:
        ka, dt = min(held)
        print("tightest that held: keepalive %gms, deadtime %gms" % (ka * 1e3, dt * 1e3))
    else:
        print("tightest that held: none of %s" % FAST_SETTINGS)
    sys.stdout.flush()
    return 0


FIGURES = [
    ("overshoot", "takeover overshoot: first start - (last heard + deadtime)", "ms"),
    ("cpu_1s", "idle CPU per node, keepalive 1 s", "ms/min"),
    ("cpu_100ms", "idle CPU per node, keepalive 100 ms", "ms/min"),
    ("procs", "processes per node", ""),
    ("rss", "memory per node, RSS", "MB"),
    ("pss", "memory per node, PSS", "MB"),
    ("stop", "graceful stop -> peer runs the group", "ms"),
    ("stop_gap", "  no-owner gap (peer start - owner's stop end)", "ms"),
    ("failback", "failback: owner started -> group back on it", "ms"),
    ("failback_gap", "  no-owner gap (negative: on both)", "ms"),
    ("start", "both nodes start -> group running", "ms"),
    ("standby", "hb_standby -> peer runs the group", "ms"),
]


def report(results, order, only=None):
    print("\nfigure: median / p90 / max over n samples, per implementation; ratio of medians")
    for key, label, unit in FIGURES:
        if only and key not in only:
            continue
        print("%s%s" % (label, " [%s]" % unit if unit else ""))
        meds = {}
        for impl in order:
            v = results.get(impl, {}).get(key, [])
            if v:
                med, p90, mx = stats.summary(v)
                meds[impl] = med
                print("  %-11s %9.2f / %9.2f / %9.2f  (n=%d)" % (impl, med, p90, mx, len(v)))
            else:
                print("  %-11s %9s" % (impl, "-"))
        ratios = ["ours/%s %.2f" % (peer, meds["ours"] / meds[peer])
                  for peer in ("3.0.6", "keepalived")
                  if meds.get("ours", 0) > 0 and meds.get(peer, 0) > 0]
        if ratios:
            print("  " + ", ".join(ratios))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", nargs=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trials", type=int, default=int(os.environ.get("TRIALS", "20")))
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", "ours,3.0.6,keepalived"))
    ap.add_argument("--fast-timers", action="store_true")
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("FAST_SECONDS", "60")))
    ap.add_argument("--loss", type=int, default=int(os.environ.get("FAST_LOSS", "1")))
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--idle", action="store_true")
    a = ap.parse_args()
    if a.listen:
        listen(*a.listen)
        return 0
    if os.geteuid() != 0:
        log("bench: must run as root (network namespaces)")
        return 1
    for f in (OURS, OURS_STANDBY, REAL, REAL_STANDBY, KEEPALIVED):
        if not os.path.exists(f):
            log("bench: %s is missing (heartbeat and keepalived packages, cargo build --release)"
                % f)
            return 1
    if a.fast_timers:
        if not a.no_load and shutil.which("stress-ng") is None:
            log("bench: --fast-timers needs stress-ng (or --no-load)")
            return 1
        work = tempfile.mkdtemp(prefix="hb-bench-")
        os.chmod(work, 0o755)
        try:
            return fast_timers(work, 5 if a.quick else a.seconds, a.loss, not a.no_load)
        finally:
            if os.environ.get("BENCH_KEEP") != "1":
                shutil.rmtree(work, ignore_errors=True)
    trials = 1 if a.quick else a.trials
    windows, window = (1, 2.0) if a.quick else (6, 10.0)
    order = [i for i in ("ours", "3.0.6", "keepalived") if i in a.only.split(",")]
    work = tempfile.mkdtemp(prefix="hb-bench-")
    os.chmod(work, 0o755)
    pairs = []
    results = {}
    failed = []
    try:
        pairs = [Pair(impl, work) for impl in order]
        fast = Timing(0.2, 1.0)
        if not a.idle:
            log("bench: %d trials (keepalive 200 ms, deadtime 1 s; keepalived advert 0.2 s, "
                "VRRPv3), interleaved, in %s" % (trials, work))
        for i in range(0 if a.idle else trials):
            # Rotate who goes first, so no implementation always runs at the same moment.
            for j in range(len(pairs)):
                p = pairs[(i + j) % len(pairs)]
                t0 = time.time()
                try:
                    trial(p, fast, results)
                except RuntimeError as e:
                    # --quick (CI) stops at the first failure; a long run notes it and goes on.
                    if a.quick:
                        raise
                    failed.append("%s trial %d: %s" % (p.impl, i + 1, e))
                    log("bench: FAILED: " + failed[-1])
                    p.stop_all()
                    continue
                log("bench: trial %d/%d %s done in %.1f s" % (i + 1, trials, p.impl,
                                                               time.time() - t0))
        for key, tm in (("cpu_1s", Timing(1.0, 3.0)), ("cpu_100ms", Timing(0.1, 1.0))):
            log("bench: idle CPU, %s: %d windows of %.0f s, all pairs at once" % (
                key, windows, window))
            idle_cpu(pairs, tm, windows, window, results, key)
        report(results, order, ("cpu_1s", "cpu_100ms") if a.idle else None)
        if failed:
            print("\n%d trial(s) failed (their figures are missing above):" % len(failed))
            for f in failed:
                print("  " + f.split("\n")[0])
            return 1
        return 0
    finally:
        for p in pairs:
            p.destroy()
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("bench: kept " + work)


if __name__ == "__main__":
    sys.exit(main())
