//! Deterministic simulation of resource management: two or three nodes (`Cluster`s, membership
//! and resource manager together) on a simulated network and clock, with simulated resource
//! scripts. Everything comes from one `u64` seed: start times, faults, packet fates, script
//! durations.
//!
//! ```sh
//! cargo test --test resource_sim                       # the default number of seeds
//! SIM_SEEDS=20000 cargo test --test resource_sim       # more
//! SIM_SEED=123 cargo test --test resource_sim legacy_two_nodes   # one seed, with a trace
//! ```
//!
//! # The world
//!
//! Timing: keepalive 100 ms, deadtime 1 s, warntime 0.5 s, initdead 2 s, retransmission
//! delay up to 250 ms; one link; crc authentication. haresources: `alice Sim::a1 Sim::a2`,
//! `bob Sim::b1` (and `carol Sim::c1` with three nodes).
//!
//! Network: every datagram goes to every other node, each copy with its own fate. A
//! **network fault** is one of: a lossy spell (per-packet loss 5-40 %, duplication up to 10 %,
//! delay 1-60 ms, so packets reorder), a symmetric partition (the nodes split in two sides
//! that cannot hear each other), a one-way partition (one side cannot hear the other). Faults
//! overlap, last 0.2-4 s and always heal. Outside faults a packet is delayed 1-5 ms.
//!
//! Nodes: each starts at a random time in the first 1.5 s. A **crash** drops the node's whole
//! state, its in-flight script runs and everything running on its host (a machine crash); a
//! **graceful stop** calls `Cluster::shutdown` and the node is gone at `ShutdownComplete`.
//! Either is followed by a **restart**: a fresh `Cluster` with the next generation (as
//! `hb_generation` grows on every start). Faults and lifecycle events stop 1 s before the
//! *tail*, a quiet period long enough for the liveness bound, at the end of every run.
//!
//! Scripts: each host has its own set of running resources. `start` adds the resource when it
//! begins (the thing may be up before the script returns) and succeeds; `stop` removes it when
//! it ends; `status` answers `running`/`stopped` from the set when it ends. Status takes
//! 1-10 ms, start and stop 5-40 ms (`SCRIPT_MAX_MS`). In some seeds one resource is **broken
//! on one host**: its start there fails, and adds nothing.
//!
//! # Invariants, checked after every step (every instant at which something happened)
//!
//! A group **runs on** a node when at least one of its resources is in that node's running set.
//! A node is **up** from its start until it crashes or its graceful stop completes.
//!
//! **Safety.** No group runs on two nodes that *hear each other*. Nodes X and Y hear each
//! other at time t when both have been up (the same incarnation) and both directions X→Y and
//! Y→X have been **clean** (no partition cutting them, no lossy spell) throughout
//! [t − `HEAR_MS`, t]. `HEAR_MS` covers
//! noticing the other node and handing a group over: 3 keepalives (the next status message
//! gets through), the retransmission delay (a lost request is asked again), and 4 script runs
//! per resource of the configuration (a take under way finishes, then the give-up). So a
//! double run is allowed only while the two could not know of each other, plus that settling
//! time.
//!
//! **Liveness.** Every group runs on some up node once things have been quiet: at time t, if
//! no network fault was active and no node started, crashed or was asked to stop during
//! [s, t], and some up node not stopping reached comm-up at or before s' = max(s, its comm-up),
//! then t − s' ≤ `LIVE_MS` or the group runs somewhere. `LIVE_MS` = deadtime + 2 s (what a
//! peer advertises in `dt` during its first 5 s, the longest a dead peer can take to be
//! declared dead) + `HEAR_MS`. A group holding a resource broken on some host is exempt (the
//! legacy manager, like 3.0.6's, gives such a group up after a failed start and does not try
//! elsewhere).
//!
//! **Consistency.** A node whose resource manager is idle runs exactly the groups it says it
//! holds (`held_keys`), and every resource of each of them. A node whose graceful stop is
//! complete runs nothing.
//!
//! A failing seed is printed with a replay command; the replay writes the whole trace (every
//! node's log lines and the simulation's events) to a file and prints its tail.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::path::Path;

use heartbeat::cluster::resources::negotiated::{RSCRCVD_WAIT_MS, STANDBY_REPLY_MS};
use heartbeat::cluster::resources::{Op, ResourceManager, ScriptResult};
use heartbeat::cluster::{Cluster, ClusterAction, Identity, Membership, Now, Params};
use heartbeat::config::{haresources, AutoFailback, ResourceGroup};
use heartbeat::wire::Authenticator;

const KEEPALIVE_MS: u64 = 100;
const DEADTIME_MS: u64 = 1000;
const WARNTIME_MS: u64 = 500;
const INITDEAD_MS: u64 = 2000;
const MAX_REXMIT_MS: u64 = 250;
/// A node advertises deadtime plus this in `dt` during its first seconds (membership.rs).
const STARTUP_DT_EXTRA_MS: u64 = 2000;
const SCRIPT_MAX_MS: u64 = 40;
const EPOCH: u64 = 1_795_000_000;
const NAMES: [&str; 3] = ["alice", "bob", "carol"];

/// Simulated length of one run (the tail included).
fn duration_ms(setup: Setup) -> u64 {
    if negotiated(setup) {
        44_000
    } else {
        24_000
    }
}

fn negotiated(setup: Setup) -> bool {
    setup.mode != AutoFailback::Legacy
}

fn haresources_text(nodes: usize) -> &'static str {
    if nodes == 2 {
        "alice Sim::a1 Sim::a2\nbob Sim::b1\n"
    } else {
        "alice Sim::a1 Sim::a2\nbob Sim::b1\ncarol Sim::c1\n"
    }
}

fn resources_total(nodes: usize) -> u64 {
    nodes as u64 + 1
}

/// How long two nodes must have heard each other before a double run is a violation.
fn hear_ms(nodes: usize) -> u64 {
    3 * KEEPALIVE_MS + MAX_REXMIT_MS + 4 * resources_total(nodes) * SCRIPT_MAX_MS
}

/// How long after things quieted down every group must run somewhere. The negotiated
/// manager adds its own waits by design (resources.md 4.1, 4.6): the 10 s for a peer that
/// starts with us, and the 10 s a standby request waits for an answer from a peer that went.
fn live_ms(setup: Setup) -> u64 {
    let base = DEADTIME_MS + STARTUP_DT_EXTRA_MS + hear_ms(setup.nodes);
    if negotiated(setup) {
        base + RSCRCVD_WAIT_MS + STANDBY_REPLY_MS
    } else {
        base
    }
}

fn tail_ms(setup: Setup) -> u64 {
    live_ms(setup) + 2000
}

// ----- randomness ------------------------------------------------------------------------

/// splitmix64: tiny, good enough, and the same everywhere.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next() % (hi - lo + 1)
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

// ----- scenario ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Fault {
    Lossy {
        loss: u64,
        dup: u64,
        delay: u64,
    },
    /// Directed pairs (from, to) that carry nothing.
    Cut(Vec<(usize, usize)>),
}

#[derive(Debug, Clone)]
enum Ev {
    Start(usize),
    Crash(usize),
    Stop(usize),
    Fault(usize, Fault),
    Heal(usize),
}

#[derive(Debug, Clone, Copy)]
struct Setup {
    mode: AutoFailback,
    nodes: usize,
}

struct Scenario {
    events: Vec<(u64, Ev)>,
    /// (host, resource spec) whose start always fails there.
    broken: Option<(usize, String)>,
}

fn scenario(rng: &mut Rng, setup: Setup, groups: &[ResourceGroup]) -> Scenario {
    let n = setup.nodes;
    let mut events = Vec::new();
    for i in 0..n {
        events.push((rng.range(0, 1500), Ev::Start(i)));
    }
    let last = duration_ms(setup) - tail_ms(setup) - 1000;
    let mut t = 2000 + rng.range(0, 2000);
    let mut fault = 0;
    while t < last {
        let len = rng.range(200, 4000);
        let end = (t + len).min(last);
        match rng.below(7) {
            0 | 1 => {
                let f = Fault::Lossy {
                    loss: rng.range(5, 40),
                    dup: rng.range(0, 10),
                    delay: rng.range(1, 60),
                };
                events.push((t, Ev::Fault(fault, f)));
                events.push((end, Ev::Heal(fault)));
                fault += 1;
            }
            2 | 3 => {
                // Two sides: a random non-empty proper subset against the rest.
                let mask = rng.range(1, (1 << n) - 2);
                let side = |i: usize| mask & (1 << i) != 0;
                let one_way = rng.chance(50);
                let mut cut = Vec::new();
                for a in 0..n {
                    for b in 0..n {
                        if side(a) && !side(b) {
                            cut.push((a, b));
                            if !one_way {
                                cut.push((b, a));
                            }
                        }
                    }
                }
                events.push((t, Ev::Fault(fault, Fault::Cut(cut))));
                events.push((end, Ev::Heal(fault)));
                fault += 1;
            }
            4 => {
                let i = rng.below(n as u64) as usize;
                events.push((t, Ev::Crash(i)));
                events.push(((t + rng.range(0, 4000)).min(last), Ev::Start(i)));
            }
            5 => {
                let i = rng.below(n as u64) as usize;
                events.push((t, Ev::Stop(i)));
                events.push(((t + rng.range(300, 4000)).min(last), Ev::Start(i)));
            }
            _ => {}
        }
        t += rng.range(300, 3500);
    }
    // Everybody runs during the tail (a start of a running node does nothing).
    for i in 0..n {
        events.push((last, Ev::Start(i)));
    }
    events.sort_by_key(|(t, _)| *t);
    let broken = rng.chance(15).then(|| {
        let host = rng.below(n as u64) as usize;
        let all: Vec<&str> = groups
            .iter()
            .flat_map(|g| g.resources.iter().map(|r| r.spec.as_str()))
            .collect();
        (host, all[rng.below(all.len() as u64) as usize].to_string())
    });
    Scenario { events, broken }
}

// ----- the simulation ------------------------------------------------------------------------

struct Host {
    cluster: Option<Cluster>,
    generation: u64,
    /// Resources running on this host (by spec).
    running: BTreeSet<String>,
    stopping: bool,
    /// When the current incarnation started.
    started_at: u64,
    comm_up_at: Option<u64>,
}

/// A datagram under way: (arrives at, order, to, bytes).
type Packet = (u64, u64, usize, Vec<u8>);

/// A script run under way: (ends at, order, host, host generation, job, spec, op).
type ScriptRun = (u64, u64, usize, u64, u64, String, u8);

struct Sim {
    setup: Setup,
    now: u64,
    rng: Rng,
    groups: Vec<ResourceGroup>,
    hosts: Vec<Host>,
    packets: BinaryHeap<Reverse<Packet>>,
    scripts: BinaryHeap<Reverse<ScriptRun>>,
    order: u64,
    events: Vec<(u64, Ev)>,
    next_event: usize,
    broken: Option<(usize, String)>,
    faults: Vec<(usize, Fault)>,
    /// clean_since[from][to]: since when the direction has been clean (None: it is not).
    clean_since: Vec<Vec<Option<u64>>>,
    /// Last network change or node start, crash or stop request.
    quiet_since: u64,
    trace: Option<Vec<String>>,
    /// A violation found while handling an action (checked with the others after the step).
    violation: Option<String>,
    /// Test of the checks themselves: `stop` succeeds but leaves the resource running.
    sabotage_stop: bool,
}

fn op_code(op: Op) -> u8 {
    match op {
        Op::Start => 0,
        Op::Stop => 1,
        Op::Status => 2,
    }
}

impl Sim {
    fn new(seed: u64, setup: Setup, trace: bool) -> Sim {
        let n = setup.nodes;
        let names: Vec<String> = NAMES[..n].iter().map(|s| s.to_string()).collect();
        let groups = haresources::parse(haresources_text(n), Path::new("haresources"), &names)
            .expect("haresources");
        let mut rng = Rng(seed);
        let sc = scenario(&mut rng, setup, &groups);
        Sim {
            setup,
            now: 0,
            rng,
            groups,
            hosts: (0..n)
                .map(|_| Host {
                    cluster: None,
                    generation: 100,
                    running: BTreeSet::new(),
                    stopping: false,
                    started_at: 0,
                    comm_up_at: None,
                })
                .collect(),
            packets: BinaryHeap::new(),
            scripts: BinaryHeap::new(),
            order: 0,
            events: sc.events,
            next_event: 0,
            broken: sc.broken,
            faults: Vec::new(),
            clean_since: vec![vec![Some(0); n]; n],
            quiet_since: 0,
            trace: trace.then(Vec::new),
            violation: None,
            sabotage_stop: false,
        }
    }

    fn clock(&self) -> Now {
        Now {
            mono_ms: self.now,
            unix_secs: EPOCH + self.now / 1000,
        }
    }

    fn note(&mut self, who: &str, text: &str) {
        if let Some(t) = self.trace.as_mut() {
            t.push(format!("{:>7} {who:<6} {text}", self.now));
        }
    }

    fn up(&self, i: usize) -> bool {
        self.hosts[i].cluster.is_some()
    }

    fn params(&self, i: usize) -> Params {
        Params {
            my_name: NAMES[i].into(),
            nodes: NAMES[..self.setup.nodes]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            links: vec!["hb0".into()],
            keepalive_ms: KEEPALIVE_MS,
            deadtime_ms: DEADTIME_MS,
            warntime_ms: WARNTIME_MS,
            initdead_ms: INITDEAD_MS,
            max_rexmit_delay_ms: MAX_REXMIT_MS,
            hopfudge: 1,
            inner_auth: false,
            ping_nodes: Vec::new(),
            deadping_ms: DEADTIME_MS,
        }
    }

    fn auth() -> Authenticator {
        let keys = heartbeat::config::authkeys::parse("auth 1\n1 crc\n", Path::new("authkeys"))
            .expect("authkeys");
        Authenticator::new(keys)
    }

    // ----- lifecycle -----

    fn start(&mut self, i: usize) {
        if self.up(i) {
            if self.hosts[i].stopping {
                // Still releasing: start once it is gone.
                let at = self.now + 100;
                let pos = self.events[self.next_event..]
                    .iter()
                    .position(|(t, _)| *t > at)
                    .map_or(self.events.len(), |p| p + self.next_event);
                self.events.insert(pos, (at, Ev::Start(i)));
            }
            return;
        }
        self.quiet_since = self.now;
        let now = self.clock();
        let h = &mut self.hosts[i];
        h.generation += 1;
        h.stopping = false;
        h.started_at = self.now;
        h.comm_up_at = None;
        let id = Identity {
            name: NAMES[i].into(),
            uuid: [i as u8 + 1; 16],
            generation: h.generation,
        };
        let seed = self.rng.next();
        let m = Membership::new(self.params(i), id, Sim::auth(), now, seed);
        let rm = ResourceManager::new(NAMES[i], self.groups.clone(), self.setup.mode);
        let mut c = Cluster::new(now, m, Some(rm));
        c.set_own_link(now, 0, true);
        self.hosts[i].cluster = Some(c);
        let g = self.hosts[i].generation;
        self.note(NAMES[i], &format!("=== start (generation {g})"));
        self.drain(i);
    }

    fn crash(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        self.quiet_since = self.now;
        let h = &mut self.hosts[i];
        h.cluster = None;
        h.stopping = false;
        h.running.clear();
        self.note(NAMES[i], "=== crash (host down, everything on it gone)");
    }

    fn stop(&mut self, i: usize) {
        if !self.up(i) || self.hosts[i].stopping {
            return;
        }
        self.quiet_since = self.now;
        self.hosts[i].stopping = true;
        self.note(NAMES[i], "=== graceful stop requested");
        let now = self.clock();
        if let Some(c) = self.hosts[i].cluster.as_mut() {
            c.shutdown(now);
        }
        self.drain(i);
    }

    // ----- network -----

    fn network_changed(&mut self) {
        self.quiet_since = self.now;
        let n = self.setup.nodes;
        let lossy = self
            .faults
            .iter()
            .any(|(_, f)| matches!(f, Fault::Lossy { .. }));
        for a in 0..n {
            for b in 0..n {
                let cut = self
                    .faults
                    .iter()
                    .any(|(_, f)| matches!(f, Fault::Cut(c) if c.contains(&(a, b))));
                let clean = !lossy && !cut;
                match (clean, self.clean_since[a][b]) {
                    (true, None) => self.clean_since[a][b] = Some(self.now),
                    (false, _) => self.clean_since[a][b] = None,
                    _ => {}
                }
            }
        }
    }

    fn transmit(&mut self, from: usize, bytes: &[u8]) {
        let (mut loss, mut dup, mut delay) = (0, 0, 5);
        for (_, f) in &self.faults {
            if let Fault::Lossy {
                loss: l,
                dup: d,
                delay: y,
            } = f
            {
                loss = loss.max(*l);
                dup = dup.max(*d);
                delay = delay.max(*y);
            }
        }
        for to in 0..self.setup.nodes {
            if to == from {
                continue;
            }
            let cut = self
                .faults
                .iter()
                .any(|(_, f)| matches!(f, Fault::Cut(c) if c.contains(&(from, to))));
            if cut || self.rng.chance(loss) {
                continue;
            }
            let copies = if self.rng.chance(dup) { 2 } else { 1 };
            for _ in 0..copies {
                let at = self.now + self.rng.range(1, delay);
                self.order += 1;
                self.packets
                    .push(Reverse((at, self.order, to, bytes.to_vec())));
            }
        }
    }

    // ----- node outputs -----

    fn drain(&mut self, i: usize) {
        loop {
            let Some(a) = self.hosts[i].cluster.as_mut().and_then(|c| c.poll_action()) else {
                return;
            };
            match a {
                ClusterAction::Send(bytes) => self.transmit(i, &bytes),
                ClusterAction::Log(level, text) => {
                    if self.trace.is_some() {
                        self.note(NAMES[i], &format!("{level}: {text}"));
                    }
                }
                ClusterAction::RunScript { job, resource, op } => {
                    let spec = resource.spec.clone();
                    if op == Op::Start && !self.is_broken(i, &spec) {
                        self.hosts[i].running.insert(spec.clone());
                    }
                    let took = if op == Op::Status {
                        self.rng.range(1, 10)
                    } else {
                        self.rng.range(5, SCRIPT_MAX_MS)
                    };
                    self.note(NAMES[i], &format!("script {spec} {} ...", op.as_str()));
                    self.order += 1;
                    let g = self.hosts[i].generation;
                    self.scripts.push(Reverse((
                        self.now + took,
                        self.order,
                        i,
                        g,
                        job,
                        spec,
                        op_code(op),
                    )));
                }
                // No site hooks in the simulation.
                ClusterAction::RunHook { job, .. } => {
                    let now = self.clock();
                    if let Some(c) = self.hosts[i].cluster.as_mut() {
                        c.script_done(now, job, ScriptResult::NotFound);
                    }
                }
                ClusterAction::CommUp => {
                    self.hosts[i].comm_up_at = Some(self.now);
                    self.note(NAMES[i], "=== comm-up");
                }
                ClusterAction::ShutdownComplete => {
                    self.note(NAMES[i], "=== graceful stop complete");
                    self.hosts[i].cluster = None;
                    self.hosts[i].stopping = false;
                    self.quiet_since = self.now;
                    if !self.hosts[i].running.is_empty() {
                        let left = format!("{:?}", self.hosts[i].running);
                        self.fail(format!(
                            "consistency: {} finished its graceful stop with {left} running",
                            NAMES[i]
                        ));
                    }
                    return;
                }
                ClusterAction::NodeStatus(..)
                | ClusterAction::NodeDead(_)
                | ClusterAction::NodeReturned(_)
                | ClusterAction::NodeRestarted(_)
                | ClusterAction::Delivered(..)
                | ClusterAction::Sent(_) => {}
            }
        }
    }

    fn is_broken(&self, i: usize, spec: &str) -> bool {
        self.broken
            .as_ref()
            .is_some_and(|(h, s)| *h == i && s == spec)
    }

    fn finish_script(&mut self, run: ScriptRun) {
        let (_, _, i, generation, job, spec, op) = run;
        if !self.up(i) || self.hosts[i].generation != generation {
            return; // the host crashed meanwhile
        }
        let result = match op {
            0 if self.is_broken(i, &spec) => ScriptResult::Done {
                code: 1,
                stdout: String::new(),
            },
            0 => ScriptResult::Done {
                code: 0,
                stdout: String::new(),
            },
            1 => {
                if !self.sabotage_stop {
                    self.hosts[i].running.remove(&spec);
                }
                ScriptResult::Done {
                    code: 0,
                    stdout: String::new(),
                }
            }
            _ => {
                let st = if self.hosts[i].running.contains(&spec) {
                    "running"
                } else {
                    "stopped"
                };
                ScriptResult::Done {
                    code: 0,
                    stdout: st.into(),
                }
            }
        };
        let word = ["start", "stop", "status"][op as usize];
        self.note(NAMES[i], &format!("script {spec} {word} done: {result:?}"));
        let now = self.clock();
        if let Some(c) = self.hosts[i].cluster.as_mut() {
            c.script_done(now, job, result);
        }
        self.drain(i);
    }

    // ----- the loop -----

    /// Run the whole scenario; the first violation.
    fn run(&mut self) -> Result<(), String> {
        loop {
            let next_ev = self.events.get(self.next_event).map(|(t, _)| *t);
            let next_pkt = self.packets.peek().map(|Reverse(p)| p.0);
            let next_script = self.scripts.peek().map(|Reverse(s)| s.0);
            let next_timer = self
                .hosts
                .iter()
                .filter_map(|h| h.cluster.as_ref().and_then(Cluster::poll_timeout))
                .min();
            let Some(next) = [next_ev, next_pkt, next_script, next_timer]
                .into_iter()
                .flatten()
                .min()
                .filter(|&t| t <= duration_ms(self.setup))
            else {
                return Ok(());
            };
            self.now = self.now.max(next);
            while self
                .events
                .get(self.next_event)
                .is_some_and(|(t, _)| *t <= self.now)
            {
                let (_, ev) = self.events[self.next_event].clone();
                self.next_event += 1;
                self.apply(ev);
            }
            while self
                .packets
                .peek()
                .is_some_and(|Reverse(p)| p.0 <= self.now)
            {
                let Reverse((_, _, to, bytes)) = self.packets.pop().unwrap();
                let now = self.clock();
                if let Some(c) = self.hosts[to].cluster.as_mut() {
                    c.handle_datagram(now, 0, &bytes);
                    self.drain(to);
                }
            }
            while self
                .scripts
                .peek()
                .is_some_and(|Reverse(s)| s.0 <= self.now)
            {
                let Reverse(run) = self.scripts.pop().unwrap();
                self.finish_script(run);
            }
            for i in 0..self.setup.nodes {
                let now = self.clock();
                let due = self.hosts[i]
                    .cluster
                    .as_ref()
                    .and_then(Cluster::poll_timeout)
                    .is_some_and(|t| t <= now.mono_ms);
                if due {
                    if let Some(c) = self.hosts[i].cluster.as_mut() {
                        c.handle_timeout(now);
                    }
                    self.drain(i);
                }
            }
            if let Some(v) = self.violation.take() {
                return Err(v);
            }
            self.check()?;
        }
    }

    fn apply(&mut self, ev: Ev) {
        match ev {
            Ev::Start(i) => self.start(i),
            Ev::Crash(i) => self.crash(i),
            Ev::Stop(i) => self.stop(i),
            Ev::Fault(id, f) => {
                self.note("net", &format!("=== fault {id}: {f:?}"));
                self.faults.push((id, f));
                self.network_changed();
            }
            Ev::Heal(id) => {
                self.note("net", &format!("=== fault {id} healed"));
                self.faults.retain(|(f, _)| *f != id);
                self.network_changed();
            }
        }
    }

    fn runs(&self, i: usize, g: usize) -> bool {
        self.up(i)
            && self.groups[g]
                .resources
                .iter()
                .any(|r| self.hosts[i].running.contains(&r.spec))
    }

    fn hear_each_other(&self, a: usize, b: usize) -> bool {
        let bound = hear_ms(self.setup.nodes);
        let long_enough = |s: Option<u64>| s.is_some_and(|s| s + bound <= self.now);
        self.up(a)
            && self.up(b)
            && long_enough(Some(self.hosts[a].started_at))
            && long_enough(Some(self.hosts[b].started_at))
            && long_enough(self.clean_since[a][b])
            && long_enough(self.clean_since[b][a])
    }

    #[allow(clippy::needless_range_loop)] // node indices name nodes
    fn check(&self) -> Result<(), String> {
        let n = self.setup.nodes;
        // Safety.
        for g in 0..self.groups.len() {
            for a in 0..n {
                for b in a + 1..n {
                    if self.runs(a, g) && self.runs(b, g) && self.hear_each_other(a, b) {
                        return Err(format!(
                            "safety: group {} runs on {} and on {}, which have heard each other for at least {} ms",
                            self.groups[g].key(),
                            NAMES[a],
                            NAMES[b],
                            hear_ms(n)
                        ));
                    }
                }
            }
        }
        // Liveness.
        if self.faults.is_empty() {
            let ready = (0..n)
                .filter(|&i| self.up(i) && !self.hosts[i].stopping)
                .filter_map(|i| self.hosts[i].comm_up_at)
                .min()
                .map(|c| c.max(self.quiet_since));
            if let Some(ready) = ready.filter(|r| self.now > r + live_ms(self.setup)) {
                for g in 0..self.groups.len() {
                    let exempt = self.broken.as_ref().is_some_and(|(_, s)| {
                        self.groups[g].resources.iter().any(|r| &r.spec == s)
                    });
                    if !exempt && !(0..n).any(|i| self.runs(i, g)) {
                        return Err(format!(
                            "liveness: group {} runs nowhere, {} ms after the cluster became quiet and ready (bound {} ms)",
                            self.groups[g].key(),
                            self.now - ready,
                            live_ms(self.setup)
                        ));
                    }
                }
            }
        }
        // Consistency.
        for i in 0..n {
            let Some(rm) = self.hosts[i]
                .cluster
                .as_ref()
                .and_then(Cluster::resource_manager)
            else {
                continue;
            };
            if !rm.is_idle() {
                continue;
            }
            let held = rm.held_keys();
            for g in &self.groups {
                let running: Vec<bool> = g
                    .resources
                    .iter()
                    .map(|r| self.hosts[i].running.contains(&r.spec))
                    .collect();
                let says = held.contains(&g.key());
                let ok = if says {
                    running.iter().all(|&r| r)
                } else {
                    running.iter().all(|&r| !r)
                };
                if !ok {
                    return Err(format!(
                        "consistency: {} is idle, says it {} {}, but runs {:?} of it",
                        NAMES[i],
                        if says { "holds" } else { "does not hold" },
                        g.key(),
                        g.resources
                            .iter()
                            .zip(&running)
                            .filter(|(_, r)| **r)
                            .map(|(r, _)| r.spec.as_str())
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
        Ok(())
    }

    fn fail(&mut self, v: String) {
        if self.violation.is_none() {
            self.violation = Some(v);
        }
    }
}

// ----- the suites ----------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Run `default_seeds` seeds (or `SIM_SEEDS`, or the one `SIM_SEED`); panic on the first
/// failing seed with its replay command and the tail of its trace.
fn suite(name: &str, setup: Setup, default_seeds: u64) {
    let single = env_u64("SIM_SEED");
    let seeds: Vec<u64> = match single {
        Some(s) => vec![s],
        None => (1..=env_u64("SIM_SEEDS").unwrap_or(default_seeds)).collect(),
    };
    let started = std::time::Instant::now();
    for &seed in &seeds {
        let mut sim = Sim::new(seed, setup, single.is_some());
        let result = sim.run();
        if single.is_some() || result.is_err() {
            report(name, setup, seed, result);
        }
    }
    eprintln!(
        "{name}: {} seed(s) of {} simulated seconds passed in {:.1?}",
        seeds.len(),
        duration_ms(setup) / 1000,
        started.elapsed()
    );
}

/// Replay `seed` with the trace on, write the trace, and panic if `result` is a violation.
fn report(name: &str, setup: Setup, seed: u64, result: Result<(), String>) {
    let mut sim = Sim::new(seed, setup, true);
    let replay = sim.run();
    assert_eq!(
        replay, result,
        "seed {seed}: the replay differs (nondeterminism)"
    );
    let trace = sim.trace.take().unwrap_or_default();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("resource_sim-{name}-{seed}.log"));
    let text: String = trace.iter().map(|l| format!("{l}\n")).collect();
    let written = std::fs::write(&file, &text).is_ok();
    let Err(v) = result else {
        eprintln!("seed {seed}: ok; trace in {}", file.display());
        return;
    };
    let tail: String = trace
        .iter()
        .skip(trace.len().saturating_sub(150))
        .map(|l| format!("{l}\n"))
        .collect();
    panic!(
        "{name}: seed {seed} at {} ms: {v}\n--- last lines of the trace ---\n{tail}---\nreplay: SIM_SEED={seed} cargo test --test resource_sim {name}\nwhole trace: {}",
        sim.now,
        if written {
            file.display().to_string()
        } else {
            "(not written)".into()
        }
    );
}

#[test]
fn legacy_two_nodes() {
    let setup = Setup {
        mode: AutoFailback::Legacy,
        nodes: 2,
    };
    suite("legacy_two_nodes", setup, 2000);
}

/// Three nodes, legacy (3.0.6's managers are written for pairs; ours adds rules for more). A
/// dead node's groups go to one taker, the first live node in ha.cf order, which asks for them
/// (`ip-request`) before starting them, since a node with another view may run them; a node
/// asking for its own groups waits for every live peer's answer; an owner keeps its group when
/// a third node asks for it; only the last node standing takes its own groups by force; and a
/// node heard again is asked for the dead nodes' groups we hold. Seeds 1 to 3672 pass.
#[test]
fn legacy_three_nodes() {
    let setup = Setup {
        mode: AutoFailback::Legacy,
        nodes: 3,
    };
    suite("legacy_three_nodes", setup, 1000);
}

/// The first known failure with three nodes: bob and carol see alice's death at different
/// times (a crash right after a restart, detected by one after deadtime and by the other only
/// after the larger start-up dead time), and meanwhile both run her group. Closing it needs
/// the nodes to agree on a death before a takeover, which the v1 protocol has no message for.
#[test]
#[ignore = "known failure with three nodes (seed 3673): failure detection differs between survivors"]
fn legacy_three_nodes_seed_3673() {
    let setup = Setup {
        mode: AutoFailback::Legacy,
        nodes: 3,
    };
    let result = Sim::new(3673, setup, true).run();
    report("legacy_three_nodes", setup, 3673, result);
}

#[test]
fn auto_failback_on_two_nodes() {
    let setup = Setup {
        mode: AutoFailback::On,
        nodes: 2,
    };
    suite("auto_failback_on_two_nodes", setup, 1500);
}

#[test]
fn auto_failback_off_two_nodes() {
    let setup = Setup {
        mode: AutoFailback::Off,
        nodes: 2,
    };
    suite("auto_failback_off_two_nodes", setup, 1500);
}

/// The checks can fail: a stop script that leaves its resource running is caught, and so are
/// a double run and a group running nowhere at the end of a quiet run.
#[test]
fn the_checks_catch_what_they_should() {
    let setup = Setup {
        mode: AutoFailback::Legacy,
        nodes: 2,
    };
    for seed in 1..=5u64 {
        let mut sim = Sim::new(seed, setup, false);
        sim.sabotage_stop = true;
        let v = sim.run().expect_err("a stop that does not stop");
        assert!(v.starts_with("consistency:"), "seed {seed}: {v}");
    }
    let mut sim = Sim::new(1, setup, false);
    sim.run().expect("seed 1 passes");
    let b1 = "Sim::b1".to_string();
    assert!(sim.hosts[1].running.contains(&b1));
    sim.hosts[0].running.insert(b1);
    let v = sim.check().expect_err("a double run");
    assert!(
        v.starts_with("safety: group Sim::b1 runs on alice and on bob"),
        "{v}"
    );
    for h in &mut sim.hosts {
        h.running.clear();
    }
    let v = sim.check().expect_err("nothing runs");
    assert!(v.starts_with("liveness: group Sim::a1 runs nowhere"), "{v}");
}
