//! The simulated world: hosts running real `Cluster`s built from a real `Config`, the network
//! of `net`, the scripts of `scripts`, a clock, an agenda of scheduled events, and the
//! invariants. One seed decides every random draw, so a run replays exactly.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt;

use super::net::{Fault, FaultId, MediumForm, Network};
use super::rng::Rng;
use super::scripts::{Outcome, ScriptCall, ScriptModel, ScriptTimes};
use crate::cluster::resources::{Op, ResourceManager, ScriptResult};
use crate::cluster::{
    Admin, AdminError, AdminOutcome, Cluster, ClusterAction, Identity, LogLevel, Membership,
    NodeStatus, Now, Params, Transmit,
};
use crate::config::{Config, MediumKind};
use crate::wire::messages::{some, Message, PingEcho};
use crate::wire::Authenticator;

/// The wall clock at simulated time 0 (only the `ts` fields see it).
pub const EPOCH_SECS: u64 = 1_795_000_000;

/// Something scheduled to happen to the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start the node's daemon (nothing if it runs; after its graceful stop if it is stopping).
    Start(usize),
    /// The machine crashes: the daemon, its script runs and everything running on it vanish.
    Crash(usize),
    /// Graceful stop (SIGTERM): release everything, then exit.
    Stop(usize),
    /// `hb_standby` / `hb_takeover` on that node.
    Admin(usize, Admin),
    /// Put a network fault in force under this id.
    Fault(FaultId, Fault),
    /// Remove it.
    Heal(FaultId),
    /// Remove every fault.
    HealAll,
}

/// Something a host did or saw, with the simulated time, for timelines and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    Started {
        generation: u64,
    },
    Crashed,
    StopRequested,
    StopComplete,
    CommUp,
    NodeStatus(String, NodeStatus),
    NodeDead(String),
    NodeReturned(String),
    NodeRestarted(String),
    LinkStatus {
        node: String,
        link: usize,
        up: bool,
    },
    /// An rc.d hook run queued (`Notify`): its kind.
    Notify(String),
    /// A hook the group work waits for (`RunHook`); no site hooks exist in the simulation.
    Hook {
        name: String,
        arg: String,
    },
    /// A STONITH run; it succeeds.
    Stonith(Vec<String>),
    Admin(Admin, Result<AdminOutcome, AdminError>),
}

/// One log line of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub at_ms: u64,
    pub level: LogLevel,
    pub text: String,
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// A group runs on two nodes that hear each other.
    Safety,
    /// A group runs nowhere although the cluster has been quiet long enough.
    Liveness,
    /// A node's resource manager says something other than what runs on it.
    Consistency,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ViolationKind::Safety => "safety",
            ViolationKind::Liveness => "liveness",
            ViolationKind::Consistency => "consistency",
        };
        write!(f, "{kind}: {}", self.text)
    }
}

/// One simulated machine and the daemon on it.
#[derive(Debug)]
pub struct Host {
    pub name: String,
    cluster: Option<Cluster>,
    generation: u64,
    /// Resources running on this machine (by spec), whatever the daemon believes.
    pub running: BTreeSet<String>,
    stopping: bool,
    started_at: u64,
    comm_up_at: Option<u64>,
    pub logs: Vec<LogLine>,
    pub events: Vec<(u64, HostEvent)>,
    /// Every transmitted message with its UDP encoding (when `record_transmits`).
    pub transmits: Vec<(u64, Transmit, Vec<u8>)>,
    /// Messages sent by every incarnation of the daemon here, always counted: two nodes
    /// answering each other for ever show as a rate no quiet cluster reaches.
    pub messages_sent: u64,
}

impl Host {
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    pub fn cluster_mut(&mut self) -> Option<&mut Cluster> {
        self.cluster.as_mut()
    }

    pub fn is_up(&self) -> bool {
        self.cluster.is_some()
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn started_at(&self) -> u64 {
        self.started_at
    }

    pub fn comm_up_at(&self) -> Option<u64> {
        self.comm_up_at
    }
}

/// A datagram under way: (arrives at, order, to, medium, bytes).
type Packet = (u64, u64, usize, usize, Vec<u8>);

/// A script run under way: (ends at, order, host, host generation, job, index in `calls`).
type Run = (u64, u64, usize, u64, u64, usize);

/// The whole simulated cluster.
pub struct World {
    now: u64,
    rng: Rng,
    config: Config,
    manage_resources: bool,
    pub hosts: Vec<Host>,
    pub net: Network,
    pub scripts: ScriptModel,
    /// The ping node's name for each ping medium (None for other media).
    ping_names: Vec<Option<String>>,
    packets: BinaryHeap<Reverse<Packet>>,
    runs: BinaryHeap<Reverse<Run>>,
    order: u64,
    agenda: Vec<(u64, u64, Event)>,
    /// Every script run, in the order they began.
    pub calls: Vec<ScriptCall>,
    /// Keep every node's log lines.
    pub record_logs: bool,
    /// Keep every transmitted message.
    pub record_transmits: bool,
    /// clean_since[from][to]: since when that direction has been clean (None: it is not).
    clean_since: Vec<Vec<Option<u64>>>,
    /// The last network change or node start, crash, stop request or admin request.
    quiet_since: u64,
    violation: Option<Violation>,
}

impl World {
    /// Every node of `config`'s ha.cf, none started yet, on a network of its media with no
    /// fault; scripts take `times`. Everything random comes from `seed`.
    pub fn new(config: Config, times: ScriptTimes, seed: u64) -> World {
        let n = config.hacf.nodes.len();
        let media = config
            .hacf
            .media
            .iter()
            .map(|m| MediumForm::of(&m.kind))
            .collect();
        let ping_names = config
            .hacf
            .media
            .iter()
            .map(|m| match &m.kind {
                MediumKind::Ping { addr } | MediumKind::Ping6 { addr } => {
                    Some(addr.to_ascii_lowercase())
                }
                MediumKind::PingGroup { name, .. } => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        let hosts = config
            .hacf
            .nodes
            .iter()
            .map(|name| Host {
                name: name.clone(),
                cluster: None,
                generation: 0,
                running: BTreeSet::new(),
                stopping: false,
                started_at: 0,
                comm_up_at: None,
                logs: Vec::new(),
                events: Vec::new(),
                transmits: Vec::new(),
                messages_sent: 0,
            })
            .collect();
        World {
            now: 0,
            rng: Rng::new(seed),
            config,
            manage_resources: true,
            hosts,
            net: Network::new(media),
            scripts: ScriptModel::new(times),
            ping_names,
            packets: BinaryHeap::new(),
            runs: BinaryHeap::new(),
            order: 0,
            agenda: Vec::new(),
            calls: Vec::new(),
            record_logs: false,
            record_transmits: false,
            clean_since: vec![vec![Some(0); n]; n],
            quiet_since: 0,
            violation: None,
        }
    }

    /// Run the daemons without resource management (`-M`): membership only.
    pub fn without_resources(mut self) -> World {
        self.manage_resources = false;
        self
    }

    /// Generations start above this (a daemon's generation grows at every start).
    pub fn with_first_generation(mut self, generation: u64) -> World {
        for h in &mut self.hosts {
            h.generation = generation;
        }
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn now_ms(&self) -> u64 {
        self.now
    }

    pub fn clock(&self) -> Now {
        Now {
            mono_ms: self.now,
            unix_secs: EPOCH_SECS + self.now / 1000,
        }
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        let name = name.to_ascii_lowercase();
        self.hosts.iter().position(|h| h.name == name)
    }

    /// The last network change or node start, crash, stop or admin request.
    pub fn quiet_since(&self) -> u64 {
        self.quiet_since
    }

    // ----- scheduling -----------------------------------------------------------------------

    /// Do `ev` at simulated time `at` (after what is already scheduled for that time).
    pub fn schedule(&mut self, at: u64, ev: Event) {
        self.order += 1;
        let key = (at, self.order);
        let pos = self.agenda.partition_point(|(t, o, _)| (*t, *o) <= key);
        self.agenda.insert(pos, (at, self.order, ev));
    }

    /// Do `ev` now.
    pub fn apply(&mut self, ev: Event) {
        match ev {
            Event::Start(i) => self.start(i),
            Event::Crash(i) => self.crash(i),
            Event::Stop(i) => self.stop(i),
            Event::Admin(i, a) => {
                self.admin(i, a);
            }
            Event::Fault(id, f) => {
                self.net.insert(id, f);
                self.network_changed();
            }
            Event::Heal(id) => {
                self.net.heal(id);
                self.network_changed();
            }
            Event::HealAll => {
                self.net.heal_all();
                self.network_changed();
            }
        }
    }

    // ----- lifecycle ------------------------------------------------------------------------

    fn params(&self, i: usize) -> Params {
        Params::from_config(&self.config.hacf, &self.hosts[i].name)
    }

    /// Start node `i`'s daemon: a fresh `Cluster` with the next generation.
    pub fn start(&mut self, i: usize) {
        if self.hosts[i].is_up() {
            if self.hosts[i].stopping {
                // Still releasing: start once it is gone.
                self.schedule(self.now + 100, Event::Start(i));
            }
            return;
        }
        self.quiet_since = self.now;
        let now = self.clock();
        let params = self.params(i);
        let seed = self.rng.next_u64();
        let h = &mut self.hosts[i];
        h.generation += 1;
        h.stopping = false;
        h.started_at = self.now;
        h.comm_up_at = None;
        let id = Identity {
            name: h.name.clone(),
            uuid: [i as u8 + 1; 16],
            generation: h.generation,
        };
        let auth = Authenticator::new(self.config.authkeys.clone());
        let m = Membership::new(params, id, auth, now, seed);
        let rm = self.manage_resources.then(|| {
            ResourceManager::new(
                &h.name,
                self.config.groups.clone(),
                self.config.hacf.auto_failback,
            )
        });
        let mut c = Cluster::new(now, m, rm);
        // A STONITH device of ha.cf is there; its runs succeed (`drain`).
        let device = self
            .config
            .hacf
            .stonith
            .as_ref()
            .map(|s| crate::cluster::stonith::Device::from_config(s, None));
        if device.is_some() {
            c.set_stonith(now, device);
        }
        // Every medium opens on our side (the network's faults decide what it carries).
        for link in 0..self.net.media.len() {
            c.set_own_link(now, link, true);
        }
        h.cluster = Some(c);
        let generation = h.generation;
        self.event(i, HostEvent::Started { generation });
        self.drain(i);
    }

    /// The machine crashes: daemon state, script runs and running resources are gone.
    pub fn crash(&mut self, i: usize) {
        if !self.hosts[i].is_up() {
            return;
        }
        self.quiet_since = self.now;
        let h = &mut self.hosts[i];
        h.cluster = None;
        h.stopping = false;
        h.running.clear();
        self.lose_runs(i);
        // What was under way to it dies with its socket buffers.
        self.packets.retain(|Reverse(p)| p.2 != i);
        self.event(i, HostEvent::Crashed);
    }

    /// Graceful stop: `Cluster::shutdown`; the daemon is gone at `ShutdownComplete`.
    pub fn stop(&mut self, i: usize) {
        if !self.hosts[i].is_up() || self.hosts[i].stopping {
            return;
        }
        self.quiet_since = self.now;
        self.hosts[i].stopping = true;
        self.event(i, HostEvent::StopRequested);
        let now = self.clock();
        if let Some(c) = self.hosts[i].cluster.as_mut() {
            c.shutdown(now);
        }
        self.drain(i);
    }

    /// `hb_standby` / `hb_takeover` on node `i` (None: its daemon does not run).
    pub fn admin(&mut self, i: usize, req: Admin) -> Option<Result<AdminOutcome, AdminError>> {
        self.quiet_since = self.now;
        let now = self.clock();
        let result = self.hosts[i].cluster.as_mut()?.handle_admin(now, req);
        self.event(i, HostEvent::Admin(req, result.clone()));
        self.drain(i);
        Some(result)
    }

    /// A datagram arrives at node `to` on medium `link` one ms from now (forged or replayed
    /// packets in tests).
    pub fn inject(&mut self, to: usize, link: usize, bytes: Vec<u8>) {
        self.order += 1;
        self.packets
            .push(Reverse((self.now + 1, self.order, to, link, bytes)));
    }

    /// Let node `i`'s `Cluster` be changed directly, its actions carried out after.
    pub fn with_cluster(&mut self, i: usize, f: impl FnOnce(&mut Cluster, Now)) {
        let now = self.clock();
        if let Some(c) = self.hosts[i].cluster.as_mut() {
            f(c, now);
        }
        self.drain(i);
    }

    fn lose_runs(&mut self, i: usize) {
        for c in self.calls.iter_mut() {
            if c.host == i && c.ended_ms.is_none() {
                c.ended_ms = Some(self.now);
                c.outcome = Some(Outcome::Lost);
            }
        }
    }

    fn event(&mut self, i: usize, e: HostEvent) {
        self.hosts[i].events.push((self.now, e));
    }

    // ----- network --------------------------------------------------------------------------

    fn network_changed(&mut self) {
        self.quiet_since = self.now;
        let n = self.hosts.len();
        for a in 0..n {
            for b in 0..n {
                let clean = self.net.clean(a, b);
                match (clean, self.clean_since[a][b]) {
                    (true, None) => self.clean_since[a][b] = Some(self.now),
                    (false, _) => self.clean_since[a][b] = None,
                    _ => {}
                }
            }
        }
    }

    fn send_copies(&mut self, medium: usize, from: usize, to: usize, bytes: &[u8]) {
        let c = self.net.conditions(medium, from, to);
        if c.cut || self.rng.chance(c.loss_pct) {
            return;
        }
        let copies = if self.rng.chance(c.dup_pct) { 2 } else { 1 };
        for _ in 0..copies {
            let at = self.now + self.rng.range(c.delay_min_ms, c.delay_max_ms);
            self.order += 1;
            self.packets
                .push(Reverse((at, self.order, to, medium, bytes.to_vec())));
        }
    }

    fn transmit(&mut self, i: usize, t: &Transmit) {
        let Some(c) = self.hosts[i].cluster.as_ref() else {
            return;
        };
        let udp = c.encode_udp(t);
        let needs_classic = self.net.media.contains(&MediumForm::Serial);
        let classic = needs_classic.then(|| c.encode_classic(t));
        // The ping media echo each status message's `ts`.
        let echo = t
            .is_status()
            .then(|| t.msg.get_str("ts").map(str::to_string))
            .flatten();
        self.hosts[i].messages_sent += 1;
        if self.record_transmits {
            let at = self.now;
            self.hosts[i].transmits.push((at, t.clone(), udp.clone()));
        }
        for m in 0..self.net.media.len() {
            match self.net.media[m] {
                MediumForm::Udp | MediumForm::Serial => {
                    let bytes = if self.net.media[m] == MediumForm::Udp {
                        &udp
                    } else {
                        classic.as_ref().unwrap_or(&udp)
                    }
                    .clone();
                    for to in 0..self.hosts.len() {
                        let own = to == i;
                        if own && !(self.net.hear_own && self.net.media[m] == MediumForm::Udp) {
                            continue;
                        }
                        self.send_copies(m, i, to, &bytes);
                    }
                }
                MediumForm::Ping => {
                    // The ping node answers each status message with the echo of it.
                    let (Some(name), Some(body)) = (self.ping_names[m].clone(), echo.as_ref())
                    else {
                        continue;
                    };
                    let bytes = self.sign_echo(i, body, &name);
                    if let Some(bytes) = bytes {
                        self.send_copies(m, i, i, &bytes);
                    }
                }
            }
        }
    }

    /// What a ping node echoes back to node `i`: the signed `NS_st` naming it.
    fn sign_echo(&self, i: usize, ts: &str, ping_node: &str) -> Option<Vec<u8>> {
        let c = self.hosts[i].cluster.as_ref()?;
        let group = self
            .config
            .hacf
            .media
            .iter()
            .any(|m| matches!(&m.kind, MediumKind::PingGroup { name, .. } if name.eq_ignore_ascii_case(ping_node)));
        let mut m = Message::from(PingEcho {
            st: some("ping"),
            info: some(if group { "ping_group" } else { "ping" }),
        })
        .emit();
        m.add_str("src", ping_node).add_str("ts", ts);
        let auth = c.authenticator();
        if self.params(i).inner_auth {
            auth.add_inner_auth(&mut m);
        }
        Some(auth.encode_udp(&m))
    }

    // ----- node outputs ---------------------------------------------------------------------

    fn drain(&mut self, i: usize) {
        loop {
            let Some(a) = self.hosts[i]
                .cluster
                .as_mut()
                .and_then(Cluster::poll_action)
            else {
                return;
            };
            match a {
                ClusterAction::Transmit(t) => self.transmit(i, &t),
                ClusterAction::Log(level, text) => {
                    if self.record_logs {
                        let at_ms = self.now;
                        self.hosts[i].logs.push(LogLine { at_ms, level, text });
                    }
                }
                ClusterAction::ClientLog {
                    client,
                    level,
                    text,
                } => {
                    if self.record_logs {
                        let at_ms = self.now;
                        let text = format!("{client}: {text}");
                        self.hosts[i].logs.push(LogLine { at_ms, level, text });
                    }
                }
                ClusterAction::RunScript {
                    job,
                    resource,
                    op,
                    time_limit_ms,
                } => self.begin_run(i, job, resource.spec, op, time_limit_ms),
                ClusterAction::RunHook { job, name, arg, .. } => {
                    self.event(i, HostEvent::Hook { name, arg });
                    self.answer(i, job, ScriptResult::NotFound);
                }
                ClusterAction::RunStonith { job, args, .. } => {
                    self.event(i, HostEvent::Stonith(args));
                    let ok = ScriptResult::Done {
                        code: 0,
                        stdout: String::new(),
                    };
                    self.answer(i, job, ok);
                }
                ClusterAction::Notify(n) => self.event(i, HostEvent::Notify(n.kind)),
                ClusterAction::CommUp => {
                    self.hosts[i].comm_up_at = Some(self.now);
                    self.event(i, HostEvent::CommUp);
                }
                ClusterAction::NodeStatus(n, st) => self.event(i, HostEvent::NodeStatus(n, st)),
                ClusterAction::NodeDead(n) => self.event(i, HostEvent::NodeDead(n)),
                ClusterAction::NodeReturned(n) => self.event(i, HostEvent::NodeReturned(n)),
                ClusterAction::NodeRestarted(n) => self.event(i, HostEvent::NodeRestarted(n)),
                ClusterAction::LinkStatus { node, link, up } => {
                    self.event(i, HostEvent::LinkStatus { node, link, up })
                }
                ClusterAction::ShutdownComplete => {
                    self.event(i, HostEvent::StopComplete);
                    self.hosts[i].cluster = None;
                    self.hosts[i].stopping = false;
                    self.quiet_since = self.now;
                    self.lose_runs(i);
                    if !self.hosts[i].running.is_empty() {
                        let left = format!("{:?}", self.hosts[i].running);
                        self.fail(
                            ViolationKind::Consistency,
                            format!(
                                "{} finished its graceful stop with {left} running",
                                self.hosts[i].name
                            ),
                        );
                    }
                    return;
                }
            }
        }
    }

    fn answer(&mut self, i: usize, job: u64, result: ScriptResult) {
        let now = self.clock();
        if let Some(c) = self.hosts[i].cluster.as_mut() {
            c.script_done(now, job, result);
        }
    }

    fn begin_run(&mut self, i: usize, job: u64, spec: String, op: Op, time_limit_ms: u64) {
        let was_running = self.hosts[i].running.contains(&spec);
        if op == Op::Start && !self.scripts.start_fails(i, &spec) {
            self.hosts[i].running.insert(spec.clone());
        }
        let (lo, hi) = self.scripts.times.range(op);
        // A run past its time limit is killed there, as the runtime does.
        let took = self.rng.range(lo, hi).min(time_limit_ms);
        let killed = took >= time_limit_ms;
        let idx = self.calls.len();
        self.calls.push(ScriptCall {
            host: i,
            spec,
            op,
            began_ms: self.now,
            ended_ms: None,
            outcome: None,
            killed,
            was_running,
        });
        self.order += 1;
        let generation = self.hosts[i].generation;
        self.runs.push(Reverse((
            self.now + took,
            self.order,
            i,
            generation,
            job,
            idx,
        )));
    }

    fn finish_run(&mut self, run: Run) {
        let (_, _, i, generation, job, idx) = run;
        if !self.hosts[i].is_up() || self.hosts[i].generation != generation {
            return; // the host crashed or stopped meanwhile
        }
        let spec = self.calls[idx].spec.clone();
        let done = |code: i32, stdout: &str| ScriptResult::Done {
            code,
            stdout: stdout.into(),
        };
        let (outcome, result) = match self.calls[idx].op {
            _ if self.calls[idx].killed => {
                // Killed half-way: a start is taken to have started nothing.
                if self.calls[idx].op == Op::Start {
                    self.hosts[i].running.remove(&spec);
                }
                (
                    Outcome::Failed,
                    ScriptResult::Failed("killed: time limit reached".into()),
                )
            }
            Op::Start if self.scripts.start_fails(i, &spec) => (Outcome::Failed, done(1, "")),
            Op::Start if self.calls[idx].was_running => (Outcome::Already, done(0, "")),
            Op::Start => (Outcome::Started, done(0, "")),
            Op::Stop if self.scripts.stop_fails(i, &spec) => (Outcome::Failed, done(1, "")),
            Op::Stop => {
                let ran = self.hosts[i].running.contains(&spec);
                if !self.scripts.stop_leaves_running {
                    self.hosts[i].running.remove(&spec);
                }
                let outcome = if ran || self.calls[idx].was_running {
                    Outcome::Stopped
                } else {
                    Outcome::Idle
                };
                (outcome, done(0, ""))
            }
            Op::Status if self.hosts[i].running.contains(&spec) => {
                (Outcome::Running, done(0, "running"))
            }
            Op::Status => (Outcome::NotRunning, done(0, "stopped")),
        };
        self.calls[idx].ended_ms = Some(self.now);
        self.calls[idx].outcome = Some(outcome);
        self.answer(i, job, result);
        self.drain(i);
    }

    // ----- the loop -------------------------------------------------------------------------

    /// The next instant at which something happens, if any.
    pub fn next_instant(&self) -> Option<u64> {
        let ev = self.agenda.first().map(|(t, _, _)| *t);
        let pkt = self.packets.peek().map(|Reverse(p)| p.0);
        let run = self.runs.peek().map(|Reverse(r)| r.0);
        let timer = self
            .hosts
            .iter()
            .filter_map(|h| h.cluster.as_ref().and_then(Cluster::poll_timeout))
            .min();
        [ev, pkt, run, timer].into_iter().flatten().min()
    }

    /// Advance to the next instant at or before `limit` and carry out everything due then
    /// (events, deliveries, script ends, timers, in that order). None when nothing is due by
    /// `limit` (the clock stays). A broken invariant found on the way is in `take_violation`.
    pub fn step(&mut self, limit: u64) -> Option<u64> {
        let next = self.next_instant().filter(|&t| t <= limit)?;
        self.now = self.now.max(next);
        while self.agenda.first().is_some_and(|(t, _, _)| *t <= self.now) {
            let (_, _, ev) = self.agenda.remove(0);
            self.apply(ev);
        }
        while self
            .packets
            .peek()
            .is_some_and(|Reverse(p)| p.0 <= self.now)
        {
            let Some(Reverse((_, _, to, link, bytes))) = self.packets.pop() else {
                break;
            };
            let now = self.clock();
            if let Some(c) = self.hosts[to].cluster.as_mut() {
                c.handle_datagram(now, link, &bytes);
                self.drain(to);
            }
        }
        while self.runs.peek().is_some_and(|Reverse(r)| r.0 <= self.now) {
            let Some(Reverse(run)) = self.runs.pop() else {
                break;
            };
            self.finish_run(run);
        }
        for i in 0..self.hosts.len() {
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
        Some(self.now)
    }

    /// Run everything up to `until`; the clock ends there.
    pub fn run_until(&mut self, until: u64) {
        while self.step(until).is_some() {}
        self.now = self.now.max(until);
    }

    /// A broken invariant found while carrying out actions (a graceful stop that left
    /// something running), once.
    pub fn take_violation(&mut self) -> Option<Violation> {
        self.violation.take()
    }

    fn fail(&mut self, kind: ViolationKind, text: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation { kind, text });
        }
    }

    // ----- what runs where ------------------------------------------------------------------

    /// Some resource of group `g` (haresources order) runs on node `i`.
    pub fn runs(&self, i: usize, g: usize) -> bool {
        let h = &self.hosts[i];
        h.is_up()
            && self.config.groups[g]
                .resources
                .iter()
                .any(|r| h.running.contains(&r.spec))
    }

    /// Every resource of group `g` runs on node `i`.
    pub fn runs_fully(&self, i: usize, g: usize) -> bool {
        let h = &self.hosts[i];
        h.is_up()
            && self.config.groups[g]
                .resources
                .iter()
                .all(|r| h.running.contains(&r.spec))
    }

    /// For each group, the nodes running any of it.
    pub fn placement(&self) -> Vec<Vec<usize>> {
        (0..self.config.groups.len())
            .map(|g| (0..self.hosts.len()).filter(|&i| self.runs(i, g)).collect())
            .collect()
    }

    /// No script runs and every live node's resource manager is idle.
    pub fn settled(&self) -> bool {
        self.runs.is_empty()
            && self.hosts.iter().all(|h| {
                h.cluster.as_ref().is_none_or(|c| {
                    !c.is_stopping() && c.resource_manager().is_none_or(ResourceManager::is_idle)
                })
            })
    }

    /// Nodes `a` and `b` both run (and have since `bound_ms` ago), and both directions between
    /// them have been clean for `bound_ms`.
    pub fn hear_each_other(&self, a: usize, b: usize, bound_ms: u64) -> bool {
        let long_enough = |s: Option<u64>| s.is_some_and(|s| s + bound_ms <= self.now);
        self.hosts[a].is_up()
            && self.hosts[b].is_up()
            && long_enough(Some(self.hosts[a].started_at))
            && long_enough(Some(self.hosts[b].started_at))
            && long_enough(self.clean_since[a][b])
            && long_enough(self.clean_since[b][a])
    }

    /// Safety: no group runs on two nodes that have heard each other for `hear_ms`.
    pub fn check_safety(&self, hear_ms: u64) -> Result<(), Violation> {
        let n = self.hosts.len();
        for g in 0..self.config.groups.len() {
            for a in 0..n {
                for b in a + 1..n {
                    if self.runs(a, g) && self.runs(b, g) && self.hear_each_other(a, b, hear_ms) {
                        return Err(Violation {
                            kind: ViolationKind::Safety,
                            text: format!(
                                "group {} runs on {} and on {}, which have heard each other for at least {hear_ms} ms",
                                self.config.groups[g].key(),
                                self.hosts[a].name,
                                self.hosts[b].name,
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Liveness: with no network fault, once the cluster has been quiet (no fault, start,
    /// crash, stop or admin request) and some live node past comm-up for `live_ms`, every
    /// group runs somewhere, `exempt` ones aside.
    pub fn check_liveness(&self, live_ms: u64, exempt: &[usize]) -> Result<(), Violation> {
        if self.net.faults().next().is_some() {
            return Ok(());
        }
        let ready = self
            .hosts
            .iter()
            .filter(|h| h.is_up() && !h.stopping)
            .filter_map(|h| h.comm_up_at)
            .min()
            .map(|c| c.max(self.quiet_since));
        let Some(ready) = ready.filter(|r| self.now > r + live_ms) else {
            return Ok(());
        };
        for g in 0..self.config.groups.len() {
            if !exempt.contains(&g) && !(0..self.hosts.len()).any(|i| self.runs(i, g)) {
                return Err(Violation {
                    kind: ViolationKind::Liveness,
                    text: format!(
                        "group {} runs nowhere, {} ms after the cluster became quiet and ready (bound {live_ms} ms)",
                        self.config.groups[g].key(),
                        self.now - ready,
                    ),
                });
            }
        }
        Ok(())
    }

    /// Consistency: a node whose resource manager is idle runs exactly the groups it says it
    /// holds, all of each.
    pub fn check_consistency(&self) -> Result<(), Violation> {
        for h in &self.hosts {
            let Some(rm) = h.cluster.as_ref().and_then(Cluster::resource_manager) else {
                continue;
            };
            if !rm.is_idle() {
                continue;
            }
            let held = rm.held_keys();
            for g in &self.config.groups {
                let running: Vec<bool> = g
                    .resources
                    .iter()
                    .map(|r| h.running.contains(&r.spec))
                    .collect();
                let says = held.contains(&g.key());
                let ok = running.iter().all(|&r| r == says);
                if !ok {
                    return Err(Violation {
                        kind: ViolationKind::Consistency,
                        text: format!(
                            "{} is idle, says it {} {}, but runs {:?} of it",
                            h.name,
                            if says { "holds" } else { "does not hold" },
                            g.key(),
                            g.resources
                                .iter()
                                .zip(&running)
                                .filter(|(_, r)| **r)
                                .map(|(r, _)| r.spec.as_str())
                                .collect::<Vec<_>>()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Node `i`'s log lines containing `needle`: the first one's time.
    pub fn log_time(&self, i: usize, needle: &str) -> Option<u64> {
        self.hosts[i]
            .logs
            .iter()
            .find(|l| l.text.contains(needle))
            .map(|l| l.at_ms)
    }

    pub fn count_logs(&self, i: usize, needle: &str) -> usize {
        self.hosts[i]
            .logs
            .iter()
            .filter(|l| l.text.contains(needle))
            .count()
    }

    /// Node `i`'s log, one line each, for failure messages.
    pub fn dump(&self, i: usize) -> String {
        self.hosts[i]
            .logs
            .iter()
            .map(|l| format!("{:>8} {}: {}\n", l.at_ms, l.level, l.text))
            .collect()
    }
}
