//! A rolling migration, as a user does it (docs/migration.md is this test, step by step): a
//! running Heartbeat 3.0.6 pair with a resource group each (`alice Marker::svcA`, `bob
//! Marker::svcB`) has its nodes replaced by ours one at a time, then one node is rolled back to
//! 3.0.6.
//!
//! Each node is a test host (a network namespace) with its own `/etc/ha.d` and
//! `/var/lib/heartbeat` (bind mounts of the node's directory, as `realhb-node.sh` sets them up)
//! and its hostname as node name. The daemon of either kind runs there with *no* path options:
//! ours reads the same `/etc/ha.d` and `/var/lib/heartbeat` (`hb_uuid`, `hb_generation`) that
//! 3.0.6 wrote. "Package swap and `service heartbeat restart`" is: SIGTERM the running daemon,
//! wait for it to exit (a graceful stop, which hands its groups to the peer), put the package's
//! resource scripts in `/etc/ha.d/resource.d` (what dpkg does), start the other daemon.
//!
//! A watcher thread samples every 10 ms, for the whole test, where each group runs (the files
//! the Marker resource keeps while it runs). After every step the test checks, from what the
//! watcher saw: the group never ran on both nodes at once, no group was without a node for longer
//! than the step allows (one handover for a graceful step, deadtime plus one handover for a
//! crash), and every group runs where it should; and that both nodes report each other `active`
//! in `cl_status`. In the mixed state each node crashes and returns once, and (auto_failback on)
//! `hb_standby`, `hb_takeover` and `hb_standby foreign` typed on our node move the groups.
//! Root and the heartbeat package (SKIP otherwise; HB_REQUIRE_INTEROP=1 fails).

#[macro_use]
mod common;

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const OUR_CL_STATUS: &str = env!("CARGO_BIN_EXE_cl_status");
const OUR_HB_STANDBY: &str = env!("CARGO_BIN_EXE_hb_standby");
const OUR_HB_TAKEOVER: &str = env!("CARGO_BIN_EXE_hb_takeover");

/// The longest a group may be on no node in a graceful step (a stop handing over, a failback):
/// 3.0.6 needs about 0.3 s on an idle machine; the margin is for a loaded two-core machine.
const HANDOVER_GAP: Duration = Duration::from_millis(2500);

const NODES: [&str; 2] = ["alice", "bob"];
const GROUPS: [&str; 2] = ["svcA", "svcB"];

// ---------------------------------------------------------------------------------------------
// A node as installed: one daemon or the other, from the node's /etc/ha.d.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Real,
    Ours,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Real => "3.0.6",
            Kind::Ours => "ours",
        }
    }
}

/// A running daemon of either kind, started like `realhb-node.sh` does (private mount and UTS
/// namespaces in the test host's network namespace; `/etc/ha.d`, `/var/lib/heartbeat` bound from
/// the node's directory, a fresh `/run`), with `-f` so the spawned pid is the daemon.
struct Daemon {
    kind: Kind,
    child: Option<Child>,
    /// The daemon's mount namespace: its helpers (3.0.6's) and children live there too.
    mntns: String,
}

struct Host {
    dir: NodeDir,
    netns: String,
    daemon: Option<Daemon>,
}

impl Host {
    fn new(dir: NodeDir, netns: String) -> Host {
        for sub in ["cores/root", "cores/hacluster", "ccm"] {
            fs::create_dir_all(dir.state().join(sub)).expect("state dirs");
        }
        // What Debian's heartbeat package puts in /etc/ha.d besides the user's three files.
        for item in ["rc.d", "shellfuncs", "harc"] {
            let src = Path::new("/etc/ha.d").join(item);
            if src.exists() {
                cp_r(&src, &dir.conf());
            }
        }
        install_resource_scripts(&dir, true);
        Host {
            dir,
            netns,
            daemon: None,
        }
    }

    fn kind(&self) -> Option<Kind> {
        self.daemon.as_ref().map(|d| d.kind)
    }

    fn pid(&self) -> Option<i32> {
        self.daemon
            .as_ref()
            .and_then(|d| d.child.as_ref())
            .map(|c| c.id() as i32)
    }

    /// The package swap: the resource scripts the package of `kind` ships land in
    /// /etc/ha.d/resource.d (dpkg overwrites the other package's files); the site's own script
    /// (Marker, with its helper) stays.
    fn install_package(&self, kind: Kind) {
        let rd = self.dir.conf().join("resource.d");
        let from = match kind {
            Kind::Real => PathBuf::from("/etc/ha.d/resource.d"),
            Kind::Ours => Path::new(env!("CARGO_MANIFEST_DIR")).join("resource.d"),
        };
        for e in fs::read_dir(&from).expect("resource.d") {
            let p = e.expect("entry").path();
            if p.is_file() {
                fs::copy(&p, rd.join(p.file_name().expect("name"))).expect("copy script");
            }
        }
        let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("resource.d");
        for f in ["Marker", "rscfuncs.sh"] {
            fs::copy(ours.join(f), rd.join(f)).expect("copy Marker");
        }
    }

    /// `service heartbeat start` of the installed kind.
    fn start(&mut self, kind: Kind) {
        assert!(self.daemon.is_none(), "{} already runs", self.dir.name);
        run_ok(
            "chown",
            &[
                "-R".into(),
                "hacluster:haclient".into(),
                path_str(&self.dir.state()),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let exe = match kind {
            Kind::Real => REAL_HB.to_string(),
            Kind::Ours => OUR_HB.to_string(),
        };
        let q = |p: PathBuf| shell_quote(&path_str(&p));
        let script = format!(
            "set -e\n\
             hostname {name}\n\
             mount --bind {conf} /etc/ha.d\n\
             mount --bind {var} /var/lib/heartbeat\n\
             mount -t tmpfs tmpfs /run\n\
             mkdir -p /var/lib/heartbeat/ccm /run/heartbeat/ccm /run/heartbeat/dopd /run/lock/subsys\n\
             chown hacluster:haclient /var/lib/heartbeat /run/heartbeat /run/heartbeat/ccm\n\
             exec {exe} -f\n",
            name = shell_quote(&self.dir.name),
            conf = q(self.dir.conf()),
            var = q(self.dir.state()),
            exe = shell_quote(&exe),
        );
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.output())
            .expect("output file");
        let err = out.try_clone().expect("dup");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.netns, "unshare", "--mount", "--uts"])
            .args(["--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {exe}: {e}"));
        let pid = child.id();
        let want = fs::canonicalize(&exe).unwrap_or_else(|_| PathBuf::from(&exe));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "{} ({}) exited at once ({st}):\n{}",
                    self.dir.name,
                    kind.label(),
                    log_tail(&self.dir.output(), 30)
                );
            }
            if fs::read_link(format!("/proc/{pid}/exe")).ok().as_deref() == Some(want.as_path()) {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} ({}) did not start in time", self.dir.name, kind.label());
            }
            thread::sleep(Duration::from_millis(10));
        }
        let mntns = fs::read_link(format!("/proc/{pid}/ns/mnt"))
            .map(|p| path_str(&p))
            .unwrap_or_default();
        self.daemon = Some(Daemon {
            kind,
            child: Some(child),
            mntns,
        });
    }

    /// `service heartbeat stop`: SIGTERM, and wait (up to `limit`) for the daemon to exit.
    fn stop(&mut self, limit: Duration) -> ExitStatus {
        let d = self.daemon.as_mut().expect("a daemon to stop");
        let c = d.child.as_mut().expect("child");
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                d.child = None;
                // Anything left in its mount namespace (3.0.6's helpers stop before the master).
                self.kill();
                return st;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} ({}) did not stop within {limit:?} of SIGTERM\n{}",
                    self.dir.name,
                    d.kind.label(),
                    log_tail(&self.dir.log(), 25)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the daemon and everything in its mount namespace (a crash of the machine, as far
    /// as the cluster can tell).
    fn kill(&mut self) {
        let Some(mut d) = self.daemon.take() else {
            return;
        };
        // Found while the master still lives (see RealNode::kill in tests/common).
        let others = pids_in_mntns(&d.mntns);
        if let Some(mut c) = d.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
            let _ = c.wait();
        }
        for &p in &others {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while others.iter().any(|&p| in_mntns(p, &d.mntns)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `cl_status ARGS` on this node: 3.0.6's own while 3.0.6 runs, ours while ours runs (the
    /// package swap replaces /usr/bin/cl_status), inside the node's namespaces.
    fn cl_status(&self, args: &[&str]) -> (String, i32) {
        let (Some(pid), Some(kind)) = (self.pid(), self.kind()) else {
            return (format!("{} is not running", self.dir.name), -1);
        };
        let tool = match kind {
            Kind::Real => "cl_status",
            Kind::Ours => OUR_CL_STATUS,
        };
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &pid.to_string(), "-n", "-m", "-u", tool])
            .args(args);
        let (out, err, code) = run_with_timeout(&mut cmd, Duration::from_secs(15));
        if code == 0 {
            (out, code)
        } else {
            (format!("{out}{err}"), code)
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

impl NodeInfo for Host {
    fn describe(&mut self) -> String {
        let state = match self.daemon.as_mut() {
            None => "no daemon running".to_string(),
            Some(d) => match d.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(None)) => format!("{} running", d.kind.label()),
                Some(Ok(Some(st))) => format!("{} EXITED: {st}", d.kind.label()),
                _ => format!("{} state unknown", d.kind.label()),
            },
        };
        format!(
            "---- node {} ({state}); files in {}\n-- last lines of {}:\n{}\n-- last lines of {}:\n{}",
            self.dir.name,
            self.dir.root.display(),
            self.dir.log().display(),
            log_tail(&self.dir.log(), 30),
            self.dir.output().display(),
            log_tail(&self.dir.output(), 10),
        )
    }
    fn name_and_log(&self) -> (String, PathBuf) {
        (self.dir.name.clone(), self.dir.log())
    }
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn cp_r(src: &Path, dst_dir: &Path) {
    run_ok("cp", &["-r".into(), path_str(src), path_str(dst_dir)])
        .unwrap_or_else(|e| panic!("{e}"));
}

fn in_mntns(pid: i32, mntns: &str) -> bool {
    fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|ns| path_str(&ns) == mntns)
}

fn pids_in_mntns(mntns: &str) -> Vec<i32> {
    if mntns.is_empty() {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|&pid| in_mntns(pid, mntns))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The watcher: where each group runs, every 10 ms, for the whole test.

/// Bit i set: the group runs on NODES[i].
type Owners = u8;

#[derive(Clone, Copy, Debug)]
struct Change {
    at: Instant,
    group: usize,
    owners: Owners,
}

struct Watcher {
    stop: Arc<AtomicBool>,
    changes: Arc<Mutex<Vec<Change>>>,
    thread: Option<JoinHandle<()>>,
    t0: Instant,
    /// A line per change, with the time since the start, for the failure messages.
    trace: PathBuf,
}

fn owners_now(marker: &Path, group: &str) -> Owners {
    NODES
        .iter()
        .enumerate()
        .filter(|(_, n)| marker_runs(marker, n, group))
        .fold(0, |acc, (i, _)| acc | (1 << i))
}

fn owners_text(o: Owners) -> String {
    let names: Vec<&str> = NODES
        .iter()
        .enumerate()
        .filter(|(i, _)| o & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        "nowhere".into()
    } else {
        names.join("+")
    }
}

impl Watcher {
    fn start(marker: &Path, trace: PathBuf) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let thread = {
            let (stop, changes, marker) = (stop.clone(), changes.clone(), marker.to_path_buf());
            let trace = trace.clone();
            thread::spawn(move || {
                let mut out = File::create(&trace).ok();
                let mut last: Vec<Option<Owners>> = vec![None; GROUPS.len()];
                while !stop.load(Ordering::SeqCst) {
                    for (g, name) in GROUPS.iter().enumerate() {
                        let o = owners_now(&marker, name);
                        if last[g] != Some(o) {
                            let at = Instant::now();
                            last[g] = Some(o);
                            changes
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(Change {
                                    at,
                                    group: g,
                                    owners: o,
                                });
                            if let Some(f) = out.as_mut() {
                                let _ = writeln!(
                                    f,
                                    "{:9.3} s {name} on {}",
                                    (at - t0).as_secs_f64(),
                                    owners_text(o)
                                );
                            }
                        }
                    }
                    thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Watcher {
            stop,
            changes,
            thread: Some(thread),
            t0,
            trace,
        }
    }

    fn changes(&self) -> Vec<Change> {
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn trace_text(&self) -> String {
        fs::read_to_string(&self.trace).unwrap_or_default()
    }

    /// What the watcher saw of `group` between `from` and `to`: each time it was on no node
    /// (a gap still open at `to` counts up to `to`; one that began before `from` counts whole),
    /// and the longest time it was on both.
    fn seen(&self, group: usize, from: Instant, to: Instant) -> (Vec<Duration>, Duration) {
        let ch: Vec<Change> = self
            .changes()
            .into_iter()
            .filter(|c| c.group == group)
            .collect();
        let (mut gaps, mut both) = (Vec::new(), Duration::ZERO);
        for (i, c) in ch.iter().enumerate() {
            let end = ch.get(i + 1).map(|n| n.at).unwrap_or(to).min(to);
            if end <= c.at.max(from) {
                continue;
            }
            let len = end - c.at;
            match c.owners {
                0 => gaps.push(len),
                3 => both = both.max(len),
                _ => {}
            }
        }
        (gaps, both)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The steps

struct Lab {
    hosts: [Host; 2],
    marker: PathBuf,
    watcher: Option<Watcher>,
    /// When the current step began.
    step_start: Instant,
    mode: &'static str,
    /// One line per step, printed at the end (gaps seen).
    report: Vec<String>,
    /// `cl_status rscstatus` on alice and bob in the 3.0.6 pair with each group home: what
    /// every later state with each group home must say too, whichever daemons run.
    rscstatus_home: Option<[String; 2]>,
}

impl Lab {
    fn dump(&mut self) -> String {
        let [a, b] = &mut self.hosts;
        let mut s = dump(&mut [a, b]);
        if let Some(w) = &self.watcher {
            s.push_str("\n-- where the groups ran (watcher):\n");
            s.push_str(&w.trace_text());
        }
        s
    }

    fn fail(&mut self, what: &str) -> ! {
        let d = self.dump();
        panic!("[auto_failback {}] {what}\n{d}", self.mode);
    }

    fn begin(&mut self, what: &str) {
        self.step_start = Instant::now();
        let _ = writeln!(
            std::io::stderr(),
            "[auto_failback {}] step: {what}",
            self.mode
        );
    }

    /// Wait until every group runs on exactly its node in `want` (NODES index), for at most
    /// `limit`, then hold it for `hold` (nothing moves once settled).
    fn wait_placement(&mut self, what: &str, want: [usize; 2], limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let ok = GROUPS
                .iter()
                .zip(want)
                .all(|(g, n)| owners_now(&self.marker, g) == 1 << n);
            if ok {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("timed out waiting for: {what}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Both nodes see each other active in cl_status (3.0.6's tool on a 3.0.6 node, ours on
    /// ours), and `rscstatus` says what the 3.0.6 pair said with each group home, within
    /// `limit`.
    fn wait_cl_status_active(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for (me, peer) in [(0, 1), (1, 0)] {
            loop {
                let (out, code) = self.hosts[me].cl_status(&["nodestatus", NODES[peer]]);
                if out.trim() == "active" && code == 0 {
                    break;
                }
                if Instant::now() > deadline {
                    self.fail(&format!(
                        "cl_status nodestatus {} on {}: {:?} (exit {code}), want active",
                        NODES[peer],
                        NODES[me],
                        out.trim()
                    ));
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
        // rscstatus with each group home: as the 3.0.6 pair said it (learnt the first time).
        let learn = self.rscstatus_home.is_none();
        for n in 0..2 {
            loop {
                let (out, code) = self.hosts[n].cl_status(&["rscstatus"]);
                let got = out.trim().to_string();
                let settled = code == 0 && got != "transition";
                match &mut self.rscstatus_home {
                    Some(home) if learn && settled && n == 1 => {
                        home[1] = got;
                        break;
                    }
                    None if settled => {
                        self.rscstatus_home = Some([got, String::new()]);
                        break;
                    }
                    Some(home) if !learn && home[n] == got => break,
                    _ => {}
                }
                if Instant::now() > deadline {
                    let want = self
                        .rscstatus_home
                        .as_ref()
                        .map(|h| h[n].clone())
                        .unwrap_or_default();
                    self.fail(&format!(
                        "cl_status rscstatus on {} ({}): {got:?} (exit {code}), the 3.0.6 pair said {want:?}",
                        NODES[n],
                        self.hosts[n].kind().map(Kind::label).unwrap_or("none"),
                    ));
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// The step's checks: never on both nodes (for the whole test so far), no gap longer than
    /// `max_gap` in this step, and the placement `want`, held for a second.
    fn end_step(&mut self, what: &str, want: [usize; 2], max_gap: Duration) {
        thread::sleep(Duration::from_secs(1));
        let now = Instant::now();
        let mut line = format!("{what}:");
        for (g, name) in GROUPS.iter().enumerate() {
            let w = self.watcher.as_ref().expect("watcher");
            let (_, both) = w.seen(g, w.t0, now);
            let (gaps, _) = w.seen(g, self.step_start, now);
            if both > Duration::ZERO {
                self.fail(&format!("{what}: {name} ran on both nodes for {both:?}"));
            }
            if let Some(gap) = gaps.iter().find(|&&d| d > max_gap) {
                self.fail(&format!(
                    "{what}: {name} ran nowhere for {gap:?}, more than {max_gap:?}"
                ));
            }
            let on = owners_now(&self.marker, name);
            if on != 1 << want[g] {
                self.fail(&format!(
                    "{what}: {name} runs on {}, expected {} (and nothing moved for 1 s)",
                    owners_text(on),
                    NODES[want[g]]
                ));
            }
            let ms: Vec<String> = gaps
                .iter()
                .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
                .collect();
            line.push_str(&format!(
                " {name} gaps [{}] ms;",
                if ms.is_empty() {
                    "none".to_string()
                } else {
                    ms.join(", ")
                }
            ));
        }
        let _ = writeln!(std::io::stderr(), "[auto_failback {}]   {line}", self.mode);
        self.report.push(line);
    }

    /// `apt install` of the other package and `service heartbeat restart` on node `n`: a
    /// graceful stop (the peer takes our groups), the new daemon from the same files (the groups
    /// come back: auto_failback on, or legacy).
    fn swap(&mut self, n: usize, to: Kind) {
        let peer = 1 - n;
        let what = format!(
            "{}: {} -> {} (package swap, service heartbeat restart)",
            NODES[n],
            self.hosts[n].kind().map(Kind::label).unwrap_or("none"),
            to.label()
        );
        self.begin(&what);
        let mark = log_mark(&self.hosts[peer].dir.log());
        let st = self.hosts[n].stop(Duration::from_secs(60));
        if !st.success() {
            self.fail(&format!(
                "{}: the stopped daemon exited with {st}",
                NODES[n]
            ));
        }
        // The peer holds everything while the node is down.
        self.wait_placement(
            &format!(
                "{} runs both groups while {} is down",
                NODES[peer], NODES[n]
            ),
            [peer, peer],
            Duration::from_secs(10),
        );
        self.hosts[n].install_package(to);
        let log_mark_n = log_mark(&self.hosts[n].dir.log());
        self.hosts[n].start(to);
        // What an operator checks in the logs (docs/migration.md): each sees the other active.
        let limit = Timing::FAST.initdead + Duration::from_secs(10);
        for (log, from, peer_name) in [
            (self.hosts[peer].dir.log(), mark, NODES[n]),
            (self.hosts[n].dir.log(), log_mark_n, NODES[peer]),
        ] {
            let needle = format!("Status update for node {peer_name}: status active");
            if let Err(e) = wait_for_log_from(&log, from, &needle, limit) {
                self.fail(&e);
            }
        }
        self.wait_placement(
            &format!(
                "each group home after {} restarted as {}",
                NODES[n],
                to.label()
            ),
            [0, 1],
            Duration::from_secs(20),
        );
        self.wait_cl_status_active(Duration::from_secs(15));
        self.end_step(&what, [0, 1], HANDOVER_GAP);
    }

    /// An operator's command on node `n` (`hb_standby`, `hb_takeover`, with arguments), run
    /// inside its namespaces: 3.0.6's script on a 3.0.6 node, ours on ours.
    fn admin(&mut self, n: usize, tool: &str, args: &[&str]) {
        let (Some(pid), Some(kind)) = (self.hosts[n].pid(), self.hosts[n].kind()) else {
            self.fail(&format!("{tool} on {}: no daemon runs there", NODES[n]));
        };
        let exe = match (kind, tool) {
            (Kind::Ours, "hb_standby") => OUR_HB_STANDBY.to_string(),
            (Kind::Ours, _) => OUR_HB_TAKEOVER.to_string(),
            (Kind::Real, t) => format!("/usr/share/heartbeat/{t}"),
        };
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &pid.to_string(), "-n", "-m", "-u", &exe])
            .args(args);
        let (out, err, code) = run_with_timeout(&mut cmd, Duration::from_secs(30));
        if code != 0 {
            self.fail(&format!(
                "{tool} {args:?} on {} ({}): exit {code}: {out}{err}",
                NODES[n],
                kind.label()
            ));
        }
    }

    /// In the mixed state, auto_failback on: the operator's commands on our node move the
    /// groups as between two 3.0.6 nodes. `hb_standby` on bob: alice (3.0.6) runs both;
    /// `hb_takeover` on bob: bob runs both; `hb_standby foreign` on bob: each group home.
    fn standby_and_takeover(&mut self, n: usize) {
        let peer = 1 - n;
        for (tool, args, want) in [
            ("hb_standby", &[][..], [peer, peer]),
            ("hb_takeover", &[][..], [n, n]),
            ("hb_standby", &["foreign"][..], [0, 1]),
        ] {
            let what = format!(
                "{} on {} ({}), {} runs {}",
                [&[tool][..], args].concat().join(" "),
                NODES[n],
                self.hosts[n].kind().map(Kind::label).unwrap_or("none"),
                NODES[peer],
                self.hosts[peer].kind().map(Kind::label).unwrap_or("none"),
            );
            self.begin(&what);
            // Both sides settled (a node in flux drops a standby request, as 3.0.6 does).
            self.wait_rscstatus_settled(Duration::from_secs(15));
            self.admin(n, tool, args);
            self.wait_placement(&what, want, Duration::from_secs(15));
            self.end_step(&what, want, HANDOVER_GAP);
        }
        self.wait_cl_status_active(Duration::from_secs(15));
    }

    /// Until neither node says `transition` in `cl_status rscstatus`.
    fn wait_rscstatus_settled(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for (n, name) in NODES.iter().enumerate() {
            loop {
                let (out, code) = self.hosts[n].cl_status(&["rscstatus"]);
                if code == 0 && out.trim() != "transition" {
                    break;
                }
                if Instant::now() > deadline {
                    self.fail(&format!(
                        "cl_status rscstatus on {name}: {:?} (exit {code}) for {limit:?}",
                        out.trim()
                    ));
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// In the mixed state: node `n` crashes (SIGKILL, its group's marker gone with its machine);
    /// the peer takes its group over; `n` restarts (same kind) and gets its group back.
    fn crash_and_return(&mut self, n: usize) {
        let peer = 1 - n;
        let kind = self.hosts[n].kind().expect("running");
        let what = format!(
            "{} ({}) crashes: {} ({}) takes over",
            NODES[n],
            kind.label(),
            NODES[peer],
            self.hosts[peer].kind().expect("running").label()
        );
        self.begin(&what);
        // Past the start-up allowance a node advertises in its first seconds.
        thread::sleep(Timing::SETTLE);
        self.hosts[n].kill();
        let _ = fs::remove_file(self.marker.join(NODES[n]).join(GROUPS[n]));
        let (_, late) = Timing::FAST.death_window();
        self.wait_placement(
            &format!("{} takes {} over", NODES[peer], GROUPS[n]),
            [peer, peer],
            late + Duration::from_secs(5),
        );
        // A crash: the gap is the dead time plus one handover.
        self.end_step(&what, [peer, peer], late + HANDOVER_GAP);

        let what = format!("{} ({}) returns: failback", NODES[n], kind.label());
        self.begin(&what);
        self.hosts[n].start(kind);
        self.wait_placement(
            &format!("{} back on {}", GROUPS[n], NODES[n]),
            [0, 1],
            Timing::FAST.initdead + Duration::from_secs(20),
        );
        self.wait_cl_status_active(Duration::from_secs(15));
        self.end_step(&what, [0, 1], HANDOVER_GAP);
    }
}

fn rolling_migration(mode: &'static str, prefix: &str, net: &str) {
    let ns = NetnsPair::new(prefix, net);
    let tmp = TestDir::new(&format!("migration-{mode}"));
    let marker = tmp.path.join("marker");
    fs::create_dir_all(&marker).expect("marker");
    let mut hacf = HaCf::new(&NODES, &ucast_lines("hb0", &[&ns.addr_a(), &ns.addr_b()]));
    hacf.extra = vec![format!("auto_failback {mode}"), "crm off".into()];
    let haresources = format!(
        "alice Marker::svcA::{m}\nbob Marker::svcB::{m}\n",
        m = marker.display()
    );
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    for d in [&da, &db] {
        d.write_config(&hacf, &Auth::lab(AuthMethod::Sha1), &haresources);
    }
    let mut lab = Lab {
        hosts: [Host::new(da, ns.ns_a()), Host::new(db, ns.ns_b())],
        marker: marker.clone(),
        watcher: None,
        step_start: Instant::now(),
        mode,
        report: Vec::new(),
        rscstatus_home: None,
    };

    // A running 3.0.6 pair, each node with its group.
    lab.begin("a 3.0.6 pair starts");
    lab.hosts[0].start(Kind::Real);
    lab.hosts[1].start(Kind::Real);
    lab.wait_placement(
        "svcA on alice, svcB on bob (3.0.6 pair)",
        [0, 1],
        Timing::FAST.initdead + Duration::from_secs(25),
    );
    lab.wait_cl_status_active(Duration::from_secs(15));
    let home = lab.rscstatus_home.clone().unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "[auto_failback {mode}] rscstatus of the 3.0.6 pair, each group home: alice {:?}, bob {:?}",
        home[0],
        home[1]
    );
    lab.watcher = Some(Watcher::start(&marker, tmp.path.join("watcher.log")));
    thread::sleep(Duration::from_secs(1));

    // Step 1: bob becomes ours. Mixed pair.
    lab.swap(1, Kind::Ours);
    // In the mixed state: a takeover and a failback each way.
    lab.crash_and_return(1);
    lab.crash_and_return(0);
    // hb_standby and hb_takeover typed on our node (3.0.6 ignores them in legacy mode).
    if mode == "on" {
        lab.standby_and_takeover(1);
    }
    // Step 2: alice becomes ours. Two of ours.
    lab.swap(0, Kind::Ours);
    // Roll back: bob returns to 3.0.6.
    lab.swap(1, Kind::Real);

    // Both generations grew at every start: ours kept 3.0.6's hb_generation going.
    for h in &lab.hosts {
        let g = h.dir.generation().unwrap_or(0);
        assert!(g >= 3, "{}: hb_generation {g}, expected >= 3", h.dir.name);
    }
    let w = lab.watcher.take().expect("watcher");
    let changes = w.changes().len();
    drop(w);
    assert!(
        changes >= 8,
        "the watcher saw only {changes} changes: it did not watch the handovers"
    );
    let _ = writeln!(
        std::io::stderr(),
        "[auto_failback {mode}] done:\n  {}",
        lab.report.join("\n  ")
    );
    for h in &mut lab.hosts {
        h.stop(Duration::from_secs(60));
    }
}

#[test]
fn rolling_migration_auto_failback_on() {
    if !require_root_or_skip("rolling_migration_auto_failback_on") {
        return;
    }
    rolling_migration("on", "hbmig-on", "10.250.91");
}

#[test]
fn rolling_migration_auto_failback_legacy() {
    if !require_root_or_skip("rolling_migration_auto_failback_legacy") {
        return;
    }
    rolling_migration("legacy", "hbmig-lg", "10.250.92");
}

/// The watcher's own check: it sees a group on both nodes and a gap when there are some (no
/// daemon, no root: the Marker files are made by hand).
#[test]
fn watcher_sees_overlaps_and_gaps() {
    let tmp = TestDir::new("migration-watcher");
    let marker = tmp.path.join("marker");
    for n in NODES {
        fs::create_dir_all(marker.join(n)).expect("mkdir");
    }
    let on = |n: &str| fs::write(marker.join(n).join("svcA"), "x").expect("write");
    let off = |n: &str| fs::remove_file(marker.join(n).join("svcA")).expect("rm");
    let w = Watcher::start(&marker, tmp.path.join("watcher.log"));
    thread::sleep(Duration::from_millis(100));
    on("alice");
    thread::sleep(Duration::from_millis(150));
    let t_both = Instant::now();
    on("bob");
    thread::sleep(Duration::from_millis(200));
    off("alice");
    off("bob");
    let t_gap = Instant::now();
    thread::sleep(Duration::from_millis(300));
    on("alice");
    thread::sleep(Duration::from_millis(100));
    let end = Instant::now();
    let (gaps, both) = w.seen(0, t_both, end);
    assert!(
        both >= Duration::from_millis(150) && both < Duration::from_millis(400),
        "on both for {both:?}, made 200 ms\n{}",
        w.trace_text()
    );
    // The start-up gap (before alice) began before t_both and ended before it: not counted.
    assert_eq!(gaps.len(), 1, "gaps {gaps:?}\n{}", w.trace_text());
    assert!(
        gaps[0] >= Duration::from_millis(250) && gaps[0] < Duration::from_millis(500),
        "gap {gaps:?}, made 300 ms"
    );
    let (gaps, both) = w.seen(0, t_gap + Duration::from_millis(500), end);
    assert!(
        gaps.is_empty() && both == Duration::ZERO,
        "{gaps:?} {both:?}"
    );
    // svcB never ran: one gap, open to the end.
    let (gaps, _) = w.seen(1, w.t0, end);
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0] >= Duration::from_millis(800), "{gaps:?}");
}
