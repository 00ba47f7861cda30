//! Runs a [`Scenario`] on one pair (alice and bob each the real 3.0.6 or ours) and records what
//! happened: after each action, once the pair is stable, where each group runs, what each
//! node's `cl_status rscstatus` says and the effective resource-script calls each node made.
//!
//! **Observation.** Every resource is our `Marker` (resource.d/Marker) with a per-pair marker
//! directory holding `calls/`, so Marker appends every call to `calls/<node>` with a nanosecond
//! time stamp and its outcome. A group runs on a node when Marker's state files of all its
//! resources exist there.
//!
//! **Normalisation of the calls.** Kept: a `start` that started its resource (`+svcA`) and a
//! `stop` that stopped it (`-svcA`), per node, in the order that node made them; a failed start
//! or stop is kept as `!+svcA` / `!-svcA`. Dropped: every `status` call (our daemon checks
//! every resource of a group before starting it, 3.0.6 only the key), a `start` of a resource
//! that already ran and a `stop` of one that did not run (3.0.6 releases every group of
//! haresources when it stops or goes standby `all`, held or not; the peer "acquires" groups
//! it already runs). What is left is exactly the calls that changed the state of a resource.
//! The order *between* the two nodes is not compared call by call (their clocks are one, but
//! two independent starts may come in either order); instead the merged time line of both
//! nodes is replayed and a resource started on one node while it still runs on the other is
//! reported as a double run (only a partition excuses it).
//!
//! **Stable** after an action: at least a minimum time has passed (so a node that reacts late
//! has reacted), nothing changed (placement, call logs) for [`QUIET`], the placement is the
//! expected one, and `cl_status rscstatus` answers on every running node with something else
//! than `transition` (it cannot answer before comm-up or while 3.0.6 restarts itself). A pair
//! that does not get there within the action's limit is recorded as it is and the scenario
//! stops there.

use std::fs;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::common::*;
use crate::model::*;

const CL_STATUS: &str = env!("CARGO_BIN_EXE_cl_status");
const HB_STANDBY: &str = env!("CARGO_BIN_EXE_hb_standby");
const HB_TAKEOVER: &str = env!("CARGO_BIN_EXE_hb_takeover");
const REAL_HB_STANDBY: &str = "/usr/share/heartbeat/hb_standby";
const REAL_HB_TAKEOVER: &str = "/usr/share/heartbeat/hb_takeover";

/// Nothing may change for this long before a state counts as stable.
pub const QUIET: Duration = Duration::from_millis(1500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Real,
    Ours,
}

/// Which daemon plays alice and which bob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairKind {
    pub alice: Kind,
    pub bob: Kind,
}

impl PairKind {
    pub const RR: PairKind = PairKind {
        alice: Kind::Real,
        bob: Kind::Real,
    };
    pub const RO: PairKind = PairKind {
        alice: Kind::Real,
        bob: Kind::Ours,
    };
    pub const OR: PairKind = PairKind {
        alice: Kind::Ours,
        bob: Kind::Real,
    };
    pub const OO: PairKind = PairKind {
        alice: Kind::Ours,
        bob: Kind::Ours,
    };

    pub fn label(self) -> &'static str {
        match (self.alice, self.bob) {
            (Kind::Real, Kind::Real) => "rr",
            (Kind::Real, Kind::Ours) => "ro",
            (Kind::Ours, Kind::Real) => "or",
            (Kind::Ours, Kind::Ours) => "oo",
        }
    }

    pub fn describe(self) -> String {
        let k = |k: Kind| match k {
            Kind::Real => "real 3.0.6",
            Kind::Ours => "ours",
        };
        format!("alice {}, bob {}", k(self.alice), k(self.bob))
    }

    pub fn has_ours(self) -> bool {
        self.alice == Kind::Ours || self.bob == Kind::Ours
    }

    fn kind(self, w: Who) -> Kind {
        match w {
            Who::Alice => self.alice,
            Who::Bob => self.bob,
        }
    }
}

/// Where the pair runs.
pub enum LabKind {
    /// Two network namespaces (root): `prefix` (at most 12 characters) and `net` (`10.x.y`).
    Netns { prefix: String, net: String },
    /// Two of ours on 127.0.0.1/.2, each sending to the other through a relay in the test (so
    /// a partition needs no root).
    Loopback,
}

// ---------------------------------------------------------------------------------------------
// Records

/// The pair after one action.
#[derive(Clone, Debug)]
pub struct Record {
    pub action: Action,
    pub placement: Placement,
    pub calls: Calls,
    /// `cl_status rscstatus` on alice and bob (`down` when not running).
    pub rscstatus: [String; 2],
    /// Set when the pair did not become stable (the scenario stopped there).
    pub problem: Option<String>,
    pub took: Duration,
}

pub struct Transcript {
    pub pair: PairKind,
    pub records: Vec<Record>,
    /// Resources started on one node while running on the other (outside a partition).
    pub double_runs: Vec<String>,
    /// The run could not go on (a node would not start, a stop hung, a panic in the harness).
    pub aborted: Option<String>,
    pub elapsed: Duration,
    /// Kept until the comparison is done: a failing test keeps the files for inspection.
    pub dir: Option<TestDir>,
}

impl Transcript {
    pub fn render(&self) -> String {
        let mut s = format!(
            "== {} ({}), {:.1} s{}\n",
            self.pair.label(),
            self.pair.describe(),
            self.elapsed.as_secs_f64(),
            self.dir
                .as_ref()
                .map(|d| format!(", files in {}", d.path.display()))
                .unwrap_or_default()
        );
        for (i, r) in self.records.iter().enumerate() {
            s.push_str(&format!(
                "{:>3}. {:<26} {:<22} alice={:<10} bob={:<10} {:>5.1}s  {}\n",
                i + 1,
                r.action.to_string(),
                r.placement.to_string(),
                r.rscstatus[0],
                r.rscstatus[1],
                r.took.as_secs_f64(),
                render_calls(&r.calls)
            ));
            if let Some(p) = &r.problem {
                s.push_str(&format!("     PROBLEM: {p}\n"));
            }
        }
        for d in &self.double_runs {
            s.push_str(&format!("     DOUBLE RUN: {d}\n"));
        }
        if let Some(a) = &self.aborted {
            s.push_str(&format!("     ABORTED: {a}\n"));
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Limiting concurrency across the whole test binary

/// At most this many pairs run at once in this test binary (`HB_SCEN_JOBS`, default 9): each
/// real node is six processes, and timers of 500 ms keepalive / 3 s deadtime leave little room
/// on a loaded two-core machine. Admission is first come, first served in ticket order, so the
/// longest scenarios (handed out first) start first.
pub struct Jobs {
    state: Mutex<(u64, u64, usize)>, // (next ticket to hand out, next to admit, running)
    cv: Condvar,
}

pub static JOBS: Jobs = Jobs {
    state: Mutex::new((0, 0, 0)),
    cv: Condvar::new(),
};

impl Jobs {
    fn limit() -> usize {
        std::env::var("HB_SCEN_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(9)
    }

    pub fn ticket(&self) -> u64 {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 += 1;
        st.0 - 1
    }

    pub fn run<T>(&self, ticket: u64, f: impl FnOnce() -> T) -> T {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            while !(st.1 == ticket && st.2 < Self::limit()) {
                st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.1 += 1;
            st.2 += 1;
            self.cv.notify_all();
        }
        struct Release<'a>(&'a Jobs);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                st.2 -= 1;
                self.0.cv.notify_all();
            }
        }
        let _release = Release(self);
        f()
    }
}

// ---------------------------------------------------------------------------------------------
// A UDP relay (loopback partitions without root)

struct Relay {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Relay {
    /// Forward every datagram arriving at `listen` to `to`, unless `blocked`.
    fn start(
        listen: (Ipv4Addr, u16),
        to: (Ipv4Addr, u16),
        blocked: Arc<AtomicBool>,
    ) -> std::io::Result<Relay> {
        let sock = UdpSocket::bind(listen)?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("relay timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let handle = thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !st.load(Ordering::SeqCst) {
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    if !blocked.load(Ordering::SeqCst) {
                        let _ = sock.send_to(&buf[..n], to);
                    }
                }
            }
        });
        Ok(Relay {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes

enum Proc {
    Down,
    Real(RealNode),
    Ours(OurNode),
}

struct Member {
    who: Who,
    kind: Kind,
    dir: NodeDir,
    netns: Option<String>,
    bind: Option<String>,
    proc: Proc,
}

impl Member {
    fn start(&mut self) {
        self.proc = match self.kind {
            Kind::Real => Proc::Real(RealNode::start(
                &self.dir,
                self.netns
                    .as_deref()
                    .expect("a real node needs a namespace"),
            )),
            Kind::Ours => Proc::Ours(OurNode::start(
                &self.dir,
                self.netns.as_deref(),
                self.bind.as_deref(),
            )),
        };
    }

    fn kill(&mut self) {
        match &mut self.proc {
            Proc::Real(n) => n.kill(),
            Proc::Ours(n) => n.kill(),
            Proc::Down => {}
        }
        self.proc = Proc::Down;
    }

    /// SIGTERM and wait for the exit.
    fn stop(&mut self, limit: Duration) -> Result<(), String> {
        let st = match &mut self.proc {
            Proc::Real(n) => {
                n.signal(Signal::SIGTERM);
                n.wait_exit(limit)
            }
            Proc::Ours(n) => {
                n.signal(Signal::SIGTERM);
                n.wait_exit(limit)
            }
            Proc::Down => return Err(format!("{} is not running", self.who.name())),
        };
        match st {
            Some(st) if st.success() => {
                self.proc = Proc::Down;
                Ok(())
            }
            Some(st) => {
                self.proc = Proc::Down;
                Err(format!(
                    "{} exited with {st} after SIGTERM",
                    self.who.name()
                ))
            }
            None => Err(format!(
                "{} still running {:.0} s after SIGTERM",
                self.who.name(),
                limit.as_secs_f64()
            )),
        }
    }

    /// `cl_status rscstatus`: Ok(word) or Err(what went wrong); `down` when not running.
    fn rscstatus(&self) -> Result<String, String> {
        let (out, code) = match &self.proc {
            Proc::Down => return Ok("down".into()),
            Proc::Real(n) => real_cl_status(n, &["rscstatus"]),
            Proc::Ours(_) => {
                let (o, e, c) = run_with_timeout(
                    Command::new(CL_STATUS)
                        .arg("--rundir")
                        .arg(self.dir.run())
                        .arg("rscstatus"),
                    Duration::from_secs(10),
                );
                (if c == 0 { o } else { format!("{o}{e}") }, c)
            }
        };
        let word = out.trim().to_string();
        if code == 0 && ["none", "local", "foreign", "all", "transition"].contains(&word.as_str()) {
            Ok(word)
        } else {
            Err(format!(
                "exit {code}: {}",
                word.lines().last().unwrap_or("")
            ))
        }
    }

    /// `hb_standby [arg]` or `hb_takeover [arg]` on this node.
    fn admin(&self, takeover: bool, arg: Option<&str>) -> Result<(), String> {
        let mut cmd = match &self.proc {
            Proc::Down => return Err(format!("{} is not running", self.who.name())),
            Proc::Real(n) => {
                let pid = n.ns_pid().ok_or("no live process")?;
                let mut c = Command::new("nsenter");
                c.args(["-t", &pid.to_string(), "-n", "-m", "-u"]);
                c.arg(if takeover {
                    REAL_HB_TAKEOVER
                } else {
                    REAL_HB_STANDBY
                });
                c
            }
            Proc::Ours(_) => {
                let mut c = Command::new(if takeover { HB_TAKEOVER } else { HB_STANDBY });
                c.arg("--rundir").arg(self.dir.run());
                c
            }
        };
        if let Some(a) = arg {
            cmd.arg(a);
        }
        let (out, err, code) = run_with_timeout(&mut cmd, Duration::from_secs(15));
        if code == 0 {
            Ok(())
        } else {
            Err(format!(
                "{} on {}: exit {code}: {}{}",
                if takeover {
                    "hb_takeover"
                } else {
                    "hb_standby"
                },
                self.who.name(),
                out.trim(),
                err.trim()
            ))
        }
    }

    fn tail(&self) -> String {
        format!(
            "-- {} ({:?}) {}:\n{}",
            self.who.name(),
            self.kind,
            self.dir.log().display(),
            log_tail(&self.dir.log(), 12)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The pair

/// A harness event on the shared time line (for the double-run replay).
#[derive(Clone, Copy, Debug)]
enum Mark {
    /// The node's resources vanished (SIGKILL of a "machine").
    Wiped(Who),
    Partitioned(bool),
}

struct Pair {
    mode: Mode,
    marker: PathBuf,
    members: [Member; 2],
    netns: Option<NetnsPair>,
    blocked: Arc<AtomicBool>,
    _relays: Vec<Relay>,
    marks: Vec<(f64, Mark)>,
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One line of a Marker call log: (time, op, resource, outcome).
type Call = (f64, String, String, String);

fn read_calls(path: &Path) -> Vec<Call> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [t, op, name, outcome] => Some((
                    t.parse().ok()?,
                    op.to_string(),
                    name.to_string(),
                    outcome.to_string(),
                )),
                _ => None,
            }
        })
        .collect()
}

/// The normalised form of one call (see the module documentation), if it is kept.
fn effective(c: &Call) -> Option<String> {
    match (c.1.as_str(), c.3.as_str()) {
        ("start", "started") => Some(format!("+{}", c.2)),
        ("stop", "stopped") => Some(format!("-{}", c.2)),
        ("start", "failed") => Some(format!("!+{}", c.2)),
        ("stop", "failed") => Some(format!("!-{}", c.2)),
        _ => None,
    }
}

impl Pair {
    fn new(kind: PairKind, mode: Mode, lab: &LabKind, tmp: &TestDir) -> Pair {
        let marker = tmp.path.join("marker");
        fs::create_dir_all(marker.join("calls")).expect("marker dir");
        let m = marker.display().to_string();
        let haresources =
            format!("alice Marker::svcA::{m} Marker::svcA2::{m}\nbob Marker::svcB::{m}\n");
        let auth = Auth::lab(AuthMethod::Sha1);
        let extra = vec![mode.hacf_line(), "crm off".to_string()];
        let (da, db) = (tmp.node("alice"), tmp.node("bob"));
        let blocked = Arc::new(AtomicBool::new(false));
        let (netns, relays, places) = match lab {
            LabKind::Netns { prefix, net } => {
                let ns = NetnsPair::new(prefix, net);
                let mut hacf = HaCf::new(
                    &["alice", "bob"],
                    &ucast_lines("hb0", &[&ns.addr_a(), &ns.addr_b()]),
                );
                hacf.extra = extra;
                for d in [&da, &db] {
                    d.write_config(&hacf, &auth, &haresources);
                }
                let places = [(Some(ns.ns_a()), None), (Some(ns.ns_b()), None)];
                (Some(ns), Vec::new(), places)
            }
            LabKind::Loopback => {
                assert_eq!(kind, PairKind::OO, "only two of ours run on loopback");
                let ip = |h: u8| Ipv4Addr::new(127, 0, 0, h);
                // alice -> 127.0.0.3 -> bob, bob -> 127.0.0.4 -> alice. A port found free can be
                // taken by another process before the relay binds it: then try the next one.
                let (port, relays) = (0..20)
                    .find_map(|_| {
                        let port = free_udp_port(&[ip(1), ip(2), ip(3), ip(4)]);
                        let there = Relay::start((ip(3), port), (ip(2), port), blocked.clone());
                        let back = Relay::start((ip(4), port), (ip(1), port), blocked.clone());
                        Some((port, vec![there.ok()?, back.ok()?]))
                    })
                    .expect("no UDP port where both relays could bind in 20 tries");
                for (d, me, via) in [
                    (&da, "127.0.0.1", "127.0.0.3"),
                    (&db, "127.0.0.2", "127.0.0.4"),
                ] {
                    let mut hacf =
                        HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[me, via])).udpport(port);
                    hacf.extra = extra.clone();
                    d.write_config(&hacf, &auth, &haresources);
                }
                let places = [
                    (None, Some("127.0.0.1".to_string())),
                    (None, Some("127.0.0.2".to_string())),
                ];
                (None, relays, places)
            }
        };
        install_resource_scripts(&da, kind.alice == Kind::Real);
        install_resource_scripts(&db, kind.bob == Kind::Real);
        let [(na, ba), (nb, bb)] = places;
        let member = |who: Who, dir: NodeDir, netns: Option<String>, bind: Option<String>| Member {
            who,
            kind: kind.kind(who),
            dir,
            netns,
            bind,
            proc: Proc::Down,
        };
        Pair {
            mode,
            marker,
            members: [member(Who::Alice, da, na, ba), member(Who::Bob, db, nb, bb)],
            netns,
            blocked,
            _relays: relays,
            marks: Vec::new(),
        }
    }

    fn calls_path(&self, w: Who) -> PathBuf {
        self.marker.join("calls").join(w.name())
    }

    fn call_counts(&self) -> [usize; 2] {
        Who::BOTH.map(|w| read_calls(&self.calls_path(w)).len())
    }

    fn placement(&self) -> Placement {
        let mut p = Placement::parse("");
        for (gi, (_, _, rscs)) in GROUPS.iter().enumerate() {
            for w in Who::BOTH {
                let n = rscs
                    .iter()
                    .filter(|r| marker_runs(&self.marker, w.name(), r))
                    .count();
                if n == rscs.len() {
                    p.full[gi].push(w);
                } else if n > 0 {
                    p.partial[gi].push(w);
                }
            }
        }
        p
    }

    fn rscstatus(&self) -> [Result<String, String>; 2] {
        [self.members[0].rscstatus(), self.members[1].rscstatus()]
    }

    fn partition(&mut self, on: bool) -> Result<(), String> {
        self.marks.push((now_epoch(), Mark::Partitioned(on)));
        match &self.netns {
            None => {
                self.blocked.store(on, Ordering::SeqCst);
                Ok(())
            }
            Some(ns) => {
                // In alice's namespace: nothing from bob's address in, nothing to it out (her
                // own looped-back heartbeats keep flowing, so she does not declare herself
                // dead). A plain drop: loss.sh's 100 % rule is refused by this nftables.
                let ns_a = ns.ns_a();
                let _ = Command::new("ip")
                    .args([
                        "netns", "exec", &ns_a, "nft", "delete", "table", "inet", "hbscen",
                    ])
                    .stderr(std::process::Stdio::null())
                    .status();
                if !on {
                    return Ok(());
                }
                let b = ns.addr_b();
                let rules = format!(
                    "table inet hbscen {{\n\
                     chain in {{ type filter hook input priority 0; policy accept; ip saddr {b} drop; }}\n\
                     chain out {{ type filter hook output priority 0; policy accept; ip daddr {b} drop; }}\n\
                     }}\n"
                );
                let path = self.marker.with_file_name("partition.nft");
                fs::write(&path, rules).map_err(|e| e.to_string())?;
                run_ok(
                    "ip",
                    &[
                        "netns".into(),
                        "exec".into(),
                        ns_a,
                        "nft".into(),
                        "-f".into(),
                        path.display().to_string(),
                    ],
                )
            }
        }
    }

    fn do_action(&mut self, a: Action) -> Result<(), String> {
        match a {
            Action::StartBoth => {
                for m in &mut self.members {
                    m.start();
                }
            }
            Action::Start(w) => self.members[w.index()].start(),
            Action::Kill(w) => {
                self.members[w.index()].kill();
                // The machine is gone with its resources.
                let dir = self.marker.join(w.name());
                if let Ok(rd) = fs::read_dir(&dir) {
                    for e in rd.flatten() {
                        let _ = fs::remove_file(e.path());
                    }
                }
                self.marks.push((now_epoch(), Mark::Wiped(w)));
            }
            Action::Stop(w) => self.members[w.index()].stop(Duration::from_secs(20))?,
            Action::Standby(w, arg) => self.members[w.index()].admin(false, arg)?,
            Action::Takeover(w, arg) => self.members[w.index()].admin(true, arg)?,
            Action::Partition => self.partition(true)?,
            Action::Heal => self.partition(false)?,
        }
        Ok(())
    }

    /// How long after an action the pair may count as stable at the earliest, and at the latest.
    /// When `moving` (the expected placement differs from the one before the action) waiting
    /// for it is guard enough: the minimum only matters when nothing is to move.
    fn window(&self, a: Action, moving: bool) -> (Duration, Duration) {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let neg = self.mode.negotiated();
        match a {
            // Comm-up comes 1 to 1.5 s after a start (and cl_status cannot sign on before);
            // a lone node waits initdead (6 s); negotiated mode adds its 10 s start-up wait.
            Action::StartBoth | Action::Start(_) => (s(3), if neg { s(35) } else { s(25) }),
            // The FIFO is read up to 0.45 s late; hb_takeover goes through the peer's harc
            // and its own hb_standby: about 1.5 s before the last node has had its say.
            Action::Standby(..) | Action::Takeover(..) if !moving => (ms(2500), s(20)),
            Action::Standby(..) | Action::Takeover(..) => (s(1), s(20)),
            // deadtime 3 s, then the takeover.
            Action::Kill(_) | Action::Partition => (s(2), s(20)),
            Action::Stop(_) => (s(1), s(20)),
            // 3.0.6: 2 s, release, shutdown, deadtime + 1 s, a fresh start (+10 s negotiated).
            Action::Heal => (s(3), if neg { s(50) } else { s(40) }),
        }
    }

    /// Wait until stable with `expected` (module documentation); Ok(rscstatus) or Err(why,
    /// rscstatus seen last).
    fn wait_stable(
        &self,
        a: Action,
        before: &Placement,
        expected: &Placement,
    ) -> Result<[String; 2], (String, [String; 2])> {
        let (min, limit) = self.window(a, before != expected);
        let t0 = Instant::now();
        let mut last = (self.placement(), self.call_counts());
        let mut changed = t0;
        loop {
            let now = (self.placement(), self.call_counts());
            if now != last {
                last = now;
                changed = Instant::now();
            }
            if changed.elapsed() >= QUIET && t0.elapsed() >= min && &last.0 == expected {
                let rs = self.rscstatus();
                let seen = rs.clone().map(|r| r.unwrap_or_else(|e| format!("?({e})")));
                let ok = rs.iter().all(|r| matches!(r, Ok(w) if w != "transition"));
                // Still nothing changed while cl_status ran?
                if ok && (self.placement(), self.call_counts()) == last {
                    return Ok(seen);
                }
            }
            if t0.elapsed() > limit {
                let why = format!(
                    "not stable within {:.0} s: placement {}, expected {expected}; last change {:.1} s ago",
                    limit.as_secs_f64(),
                    last.0,
                    changed.elapsed().as_secs_f64()
                );
                let seen = self
                    .rscstatus()
                    .map(|r| r.unwrap_or_else(|e| format!("?({e})")));
                return Err((why, seen));
            }
            thread::sleep(Duration::from_millis(if last.0 == *expected {
                250
            } else {
                100
            }));
        }
    }

    /// Effective calls of each node from line `from[i]` of its call log on.
    fn calls_since(&self, from: [usize; 2]) -> Calls {
        Who::BOTH.map(|w| {
            read_calls(&self.calls_path(w))
                .iter()
                .skip(from[w.index()])
                .filter_map(effective)
                .collect()
        })
    }

    /// Replay both call logs and the harness's marks in time order; report every start of a
    /// resource that still runs on the other node, outside a partition.
    fn double_runs(&self) -> Vec<String> {
        enum Ev {
            Call(Who, Call),
            Mark(Mark),
        }
        let mut evs: Vec<(f64, Ev)> = Vec::new();
        for w in Who::BOTH {
            for c in read_calls(&self.calls_path(w)) {
                evs.push((c.0, Ev::Call(w, c)));
            }
        }
        for (t, m) in &self.marks {
            evs.push((*t, Ev::Mark(*m)));
        }
        evs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut running: std::collections::BTreeMap<(String, Who), bool> = Default::default();
        let mut partitioned = false;
        let mut found = Vec::new();
        for (_, ev) in evs {
            match ev {
                Ev::Mark(Mark::Wiped(w)) => running.retain(|(_, n), _| *n != w),
                Ev::Mark(Mark::Partitioned(p)) => partitioned = p,
                Ev::Call(w, c) => match effective(&c).as_deref().map(|s| &s[..1]) {
                    Some("+") => {
                        let other = if w == Who::Alice {
                            Who::Bob
                        } else {
                            Who::Alice
                        };
                        if !partitioned && running.contains_key(&(c.2.clone(), other)) {
                            found.push(format!(
                                "{} started on {} while running on {}",
                                c.2,
                                w.name(),
                                other.name()
                            ));
                        }
                        running.insert((c.2.clone(), w), true);
                    }
                    Some("-") => {
                        running.remove(&(c.2.clone(), w));
                    }
                    _ => {}
                },
            }
        }
        found
    }
}

/// Run `scenario` on a pair of `kind` in `lab`.
pub fn run(scenario: &Scenario, kind: PairKind, lab: LabKind) -> Transcript {
    let t0 = Instant::now();
    let tmp = TestDir::new(&format!("scen-{}-{}", scenario.name, kind.label()));
    let mut pair = Pair::new(kind, scenario.mode, &lab, &tmp);
    let mut records = Vec::new();
    let mut aborted = None;
    for st in &scenario.steps {
        let from = pair.call_counts();
        let before = pair.placement();
        let ts = Instant::now();
        if let Err(e) = pair.do_action(st.action) {
            aborted = Some(format!("{}: {e}", st.action));
            break;
        }
        let (rscstatus, problem) = match pair.wait_stable(st.action, &before, &st.placement) {
            Ok(rs) => (rs, None),
            Err((why, rs)) => (
                rs,
                Some(format!(
                    "{why}\n{}\n{}",
                    pair.members[0].tail(),
                    pair.members[1].tail()
                )),
            ),
        };
        let stop = problem.is_some();
        records.push(Record {
            action: st.action,
            placement: pair.placement(),
            calls: pair.calls_since(from),
            rscstatus,
            problem,
            took: ts.elapsed(),
        });
        if stop {
            break;
        }
    }
    let double_runs = pair.double_runs();
    for m in &mut pair.members {
        m.kill();
    }
    drop(pair);
    Transcript {
        pair: kind,
        records,
        double_runs,
        aborted,
        elapsed: t0.elapsed(),
        dir: Some(tmp),
    }
}

// ---------------------------------------------------------------------------------------------
// Comparisons

/// Differences between `t` and the scenario's expectations (for the reference, and for two of
/// ours, which follow the allowance's `ours` calls where one applies).
pub fn against_expectation(s: &Scenario, t: &Transcript) -> Vec<String> {
    let mut d = Vec::new();
    if let Some(a) = &t.aborted {
        d.push(format!("aborted: {a}"));
    }
    for (i, st) in s.steps.iter().enumerate() {
        let Some(r) = t.records.get(i) else {
            d.push(format!("step {} ({}) not reached", i + 1, st.action));
            continue;
        };
        let n = format!("step {} ({})", i + 1, st.action);
        if let Some(p) = &r.problem {
            d.push(format!("{n}: {}", p.lines().next().unwrap_or("")));
        }
        if r.placement != st.placement {
            d.push(format!(
                "{n}: placement {}, expected {}",
                r.placement, st.placement
            ));
        }
        let want = match (&st.allowance, t.pair.has_ours()) {
            (Some(Allowance::HealWithoutRestart { ours }), true) => ours,
            _ => &st.calls,
        };
        if r.calls != *want {
            d.push(format!(
                "{n}: calls {}, expected {}",
                render_calls(&r.calls),
                render_calls(want)
            ));
        }
        for w in Who::BOTH {
            let up = r.rscstatus[w.index()] != "down";
            let exp = st.placement.rscstatus(s.mode, w);
            if up && r.rscstatus[w.index()] != exp {
                d.push(format!(
                    "{n}: rscstatus on {} {}, expected {exp}",
                    w.name(),
                    r.rscstatus[w.index()]
                ));
            }
        }
    }
    for x in &t.double_runs {
        d.push(format!("double run: {x}"));
    }
    d
}

/// Differences between a mixed pair and the reference (two real nodes).
pub fn against_reference(s: &Scenario, reference: &Transcript, t: &Transcript) -> Vec<String> {
    let mut d = Vec::new();
    if let Some(a) = &t.aborted {
        d.push(format!("aborted: {a}"));
    }
    if t.records.len() != reference.records.len() {
        d.push(format!(
            "{} steps recorded, the reference has {}",
            t.records.len(),
            reference.records.len()
        ));
    }
    for (i, (r, rr)) in t.records.iter().zip(&reference.records).enumerate() {
        let n = format!("step {} ({})", i + 1, r.action);
        if let Some(p) = &r.problem {
            d.push(format!("{n}: {}", p.lines().next().unwrap_or("")));
        }
        if r.placement != rr.placement {
            d.push(format!(
                "{n}: placement {}, the reference {}",
                r.placement, rr.placement
            ));
        }
        if r.rscstatus != rr.rscstatus {
            d.push(format!(
                "{n}: rscstatus alice={} bob={}, the reference alice={} bob={}",
                r.rscstatus[0], r.rscstatus[1], rr.rscstatus[0], rr.rscstatus[1]
            ));
        }
        // A healed partition: ours converges without 3.0.6's restart (README), so the calls
        // that get there differ by design; where the groups end is compared above.
        let allowed = matches!(
            s.steps.get(i).and_then(|st| st.allowance.as_ref()),
            Some(Allowance::HealWithoutRestart { .. })
        );
        if !allowed && r.calls != rr.calls {
            d.push(format!(
                "{n}: calls {}, the reference {}",
                render_calls(&r.calls),
                render_calls(&rr.calls)
            ));
        }
    }
    for x in &t.double_runs {
        d.push(format!("double run: {x}"));
    }
    d
}
