//! What `heartbeat --simulate` does with a configuration: steps (`kill alice`, `standby bob`,
//! `partition alice bob`, `wait 10`, ...) run one after the other on a [`World`] of every
//! node of ha.cf, each step until the cluster settles; after each, where every group runs,
//! which resource scripts each node ran (in order, with simulated times), how long groups
//! took to move, and the problems found: a group running on two nodes that hear each other,
//! a group running nowhere while a node could run it, a cluster that never settles.

use std::fmt;

use serde::Serialize;

use super::net::{Fault, FaultId};
use super::scripts::{Outcome, ScriptTimes};
use super::world::{Event, HostEvent, World};
use crate::cluster::resources::negotiated::{RSCRCVD_WAIT_MS, STANDBY_REPLY_MS};
use crate::cluster::{Admin, Which};
use crate::config::{AutoFailback, Config};

/// A node dead in its first seconds is declared dead this much later (membership.rs).
const STARTUP_DT_EXTRA_MS: u64 = 2000;
/// How long after its reaction window (and the time its scripts need) a step may take to
/// settle before it is called unsettled.
const SETTLE_LIMIT_MS: u64 = 120_000;

/// One step of a scenario; nodes by index in ha.cf order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start these daemons (together).
    Start(Vec<usize>),
    /// The machine crashes (SIGKILL, and what it ran is gone).
    Kill(usize),
    /// Graceful stop.
    Stop(usize),
    Standby(usize, Option<Which>),
    Takeover(usize, Option<Which>),
    /// These nodes cannot hear each other (one node: it hears nobody and nobody hears it).
    Partition(Vec<usize>),
    /// Nothing from the first reaches the second.
    OneWay(usize, usize),
    /// Every network fault removed.
    Heal,
    Wait(u64),
}

/// A step that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub step: String,
    pub why: String,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step '{}': {}", self.step, self.why)
    }
}

impl std::error::Error for StepError {}

/// A time as ha.cf writes it (`10` seconds, `1.5`, `500ms`), and `10s` too.
pub fn parse_time(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let plain = match lower.strip_suffix('s') {
        Some(rest) if !rest.ends_with('m') && !rest.ends_with('u') => rest,
        _ => lower.as_str(),
    };
    crate::config::duration::parse_ms(plain)
}

/// The words of the steps, for messages and `--help`.
pub const STEP_SYNTAX: &str = "start NODE..., kill NODE, stop NODE, standby NODE [all|foreign|local|failback], takeover NODE [all|foreign|local|failback], partition NODE [NODE...], oneway FROM TO, heal, wait TIME";

impl Step {
    /// Read one step; `nodes` are ha.cf's, lower case.
    pub fn parse(text: &str, nodes: &[String]) -> Result<Step, StepError> {
        let err = |why: String| StepError {
            step: text.to_string(),
            why,
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let node = |w: &str| {
            let lower = w.to_ascii_lowercase();
            nodes.iter().position(|n| *n == lower).ok_or_else(|| {
                err(format!(
                    "there is no node '{w}' in ha.cf (nodes: {})",
                    nodes.join(", ")
                ))
            })
        };
        let which = |w: Option<&&str>| match w {
            None => Ok(None),
            Some(w) => Which::parse(&w.to_ascii_lowercase())
                .map(Some)
                .ok_or_else(|| err(format!("'{w}' is not one of all, foreign, local, failback"))),
        };
        let Some((verb, args)) = words.split_first() else {
            return Err(err(format!("empty; a step is one of: {STEP_SYNTAX}")));
        };
        let arity = |lo: usize, hi: usize| {
            if (lo..=hi).contains(&args.len()) {
                Ok(())
            } else {
                Err(err(format!(
                    "'{verb}' takes {} (see: {STEP_SYNTAX})",
                    match (lo, hi) {
                        (0, 0) => "nothing more".to_string(),
                        (l, h) if l == h => format!("{l} word(s)"),
                        (l, usize::MAX) => format!("at least {l} node(s)"),
                        (l, h) => format!("{l} to {h} words"),
                    }
                )))
            }
        };
        match verb.to_ascii_lowercase().as_str() {
            "start" => {
                arity(1, usize::MAX)?;
                let list = args.iter().map(|w| node(w)).collect::<Result<_, _>>()?;
                Ok(Step::Start(list))
            }
            "kill" => {
                arity(1, 1)?;
                Ok(Step::Kill(node(args[0])?))
            }
            "stop" => {
                arity(1, 1)?;
                Ok(Step::Stop(node(args[0])?))
            }
            "standby" => {
                arity(1, 2)?;
                Ok(Step::Standby(node(args[0])?, which(args.get(1))?))
            }
            "takeover" => {
                arity(1, 2)?;
                Ok(Step::Takeover(node(args[0])?, which(args.get(1))?))
            }
            "partition" => {
                arity(1, usize::MAX)?;
                let mut list: Vec<usize> = Vec::new();
                for w in args {
                    let i = node(w)?;
                    if !list.contains(&i) {
                        list.push(i);
                    }
                }
                Ok(Step::Partition(list))
            }
            "oneway" => {
                arity(2, 2)?;
                Ok(Step::OneWay(node(args[0])?, node(args[1])?))
            }
            "heal" => {
                arity(0, 0)?;
                Ok(Step::Heal)
            }
            "wait" => {
                arity(1, 1)?;
                parse_time(args[0]).map(Step::Wait).ok_or_else(|| {
                    err(format!(
                        "'{}' is not a time (as in ha.cf: 10, 1.5, 500ms; or 10s)",
                        args[0]
                    ))
                })
            }
            other => Err(err(format!(
                "unknown step '{other}'; a step is one of: {STEP_SYNTAX}"
            ))),
        }
    }

    /// The step as written, with node names.
    pub fn render(&self, names: &[String]) -> String {
        let n = |i: &usize| names[*i].clone();
        let w = |x: &Option<Which>| x.map(|x| format!(" {}", x.as_str())).unwrap_or_default();
        match self {
            Step::Start(l) => format!("start {}", l.iter().map(n).collect::<Vec<_>>().join(" ")),
            Step::Kill(i) => format!("kill {}", n(i)),
            Step::Stop(i) => format!("stop {}", n(i)),
            Step::Standby(i, x) => format!("standby {}{}", n(i), w(x)),
            Step::Takeover(i, x) => format!("takeover {}{}", n(i), w(x)),
            Step::Partition(l) => format!(
                "partition {}",
                l.iter().map(n).collect::<Vec<_>>().join(" ")
            ),
            Step::OneWay(a, b) => format!("oneway {} {}", n(a), n(b)),
            Step::Heal => "heal".into(),
            Step::Wait(ms) => format!("wait {}", show_ms(*ms)),
        }
    }
}

/// `1.5s`, `500ms`, `12s`.
pub fn show_ms(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// The default scenario: all start; each node in turn is killed and returns; each stops
/// gracefully and returns; `hb_standby` and `hb_takeover` on each; a partition and its heal.
pub fn default_steps(nodes: usize) -> Vec<Step> {
    let all: Vec<usize> = (0..nodes).collect();
    let mut s = vec![Step::Start(all)];
    for i in 0..nodes {
        s.push(Step::Kill(i));
        s.push(Step::Start(vec![i]));
    }
    for i in 0..nodes {
        s.push(Step::Stop(i));
        s.push(Step::Start(vec![i]));
    }
    for i in 0..nodes {
        s.push(Step::Standby(i, None));
        s.push(Step::Takeover(i, None));
    }
    if nodes > 1 {
        s.push(Step::Partition(vec![0]));
        s.push(Step::Heal);
    }
    s
}

/// Where one group runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupPlacement {
    pub group: String,
    /// Nodes running all of it.
    pub nodes: Vec<String>,
    /// Nodes running only part of it.
    pub partial: Vec<String>,
}

/// One resource-script run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallReport {
    pub node: String,
    pub resource: String,
    pub op: String,
    pub began_ms: u64,
    pub ended_ms: Option<u64>,
    pub outcome: Option<String>,
}

/// A group that came to run on a node during a step, and when its last start ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    pub group: String,
    pub to: String,
    /// From the step to the end of the group's last start there.
    pub took_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A group ran on two nodes that could hear each other.
    RunsTwice,
    /// A group ran nowhere although a node could run it.
    RunsNowhere,
    /// The cluster kept changing (groups moving back and forth).
    NeverSettles,
    /// A node ran something other than what it said it held (a stop that did not stop).
    Inconsistent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub group: String,
    pub text: String,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    pub step: String,
    pub at_ms: u64,
    /// When the cluster was settled again (None: it did not within the limit).
    pub settled_at_ms: Option<u64>,
    pub placement: Vec<GroupPlacement>,
    pub calls: Vec<CallReport>,
    pub moves: Vec<Move>,
    /// What a reader may wonder about that is no problem (split brain during a partition,
    /// standby requests that legacy mode ignores).
    pub notes: Vec<String>,
    pub problems: Vec<Problem>,
}

/// The timings the report is derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timings {
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    pub warntime_ms: u64,
    pub initdead_ms: u64,
    pub auto_failback: String,
    pub script_time_ms: u64,
}

/// The expected takeover time of one group after its node dies: deadtime (a crash lands
/// anywhere within a keepalive), then a start for each of its resources, in order, each after
/// a status query unless the status checks run while the node was only late had already seen
/// it stopped. The shortest: every check done early; the longest: none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedTakeover {
    pub group: String,
    pub resources: usize,
    pub min_ms: u64,
    pub max_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub seed: u64,
    pub nodes: Vec<String>,
    pub timings: Timings,
    pub expected_takeover: Vec<ExpectedTakeover>,
    pub steps: Vec<StepReport>,
    /// Every step's problems together.
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn mode_name(m: AutoFailback) -> &'static str {
    match m {
        AutoFailback::On => "on",
        AutoFailback::Off => "off",
        AutoFailback::Legacy => "legacy",
    }
}

/// The expected takeover time per group (see [`ExpectedTakeover`]).
pub fn expected_takeover(config: &Config, script_time_ms: u64) -> Vec<ExpectedTakeover> {
    let h = &config.hacf;
    config
        .groups
        .iter()
        .map(|g| {
            let starts = script_time_ms * g.resources.len() as u64;
            ExpectedTakeover {
                group: g.key().to_string(),
                resources: g.resources.len(),
                min_ms: h.deadtime_ms.saturating_sub(h.keepalive_ms) + starts,
                max_ms: h.deadtime_ms + 2 * starts,
            }
        })
        .collect()
}

/// Runs steps on a world and reports.
pub struct Simulation {
    pub world: World,
    script_time_ms: u64,
    seed: u64,
    faults: u64,
}

impl Simulation {
    /// Every node of `config`, scripts taking `script_time_ms` each run.
    pub fn new(config: Config, script_time_ms: u64, seed: u64) -> Simulation {
        let world = World::new(config, ScriptTimes::fixed(script_time_ms), seed);
        Simulation {
            world,
            script_time_ms,
            seed,
            faults: 0,
        }
    }

    fn names(&self) -> Vec<String> {
        self.world.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// How long two nodes must have heard each other before a double run is a problem: a few
    /// keepalives to notice, a retransmission, and the scripts of a hand-over.
    fn hear_ms(&self) -> u64 {
        let h = &self.world.config().hacf;
        let resources: u64 = self
            .world
            .config()
            .groups
            .iter()
            .map(|g| g.resources.len() as u64)
            .sum();
        3 * h.keepalive_ms + h.max_rexmit_delay_ms + 4 * resources * self.script_time_ms
    }

    /// How long a step may need before anything it causes has begun.
    fn reaction_ms(&self, step: &Step) -> u64 {
        let h = &self.world.config().hacf;
        let negotiated = h.auto_failback != AutoFailback::Legacy;
        let neg_wait = if negotiated {
            RSCRCVD_WAIT_MS + STANDBY_REPLY_MS
        } else {
            0
        };
        match step {
            Step::Start(_) => h.initdead_ms + 2 * h.keepalive_ms + neg_wait,
            Step::Kill(_) | Step::Partition(_) | Step::OneWay(..) => {
                h.deadtime_ms + STARTUP_DT_EXTRA_MS + 2 * h.keepalive_ms
            }
            Step::Stop(_) | Step::Standby(..) | Step::Takeover(..) | Step::Heal => {
                3 * h.keepalive_ms + h.max_rexmit_delay_ms + neg_wait.min(STANDBY_REPLY_MS)
            }
            Step::Wait(ms) => *ms,
        }
    }

    fn begin(&mut self, step: &Step) {
        let n = self.world.hosts.len();
        let now = self.world.now_ms();
        let ev: Vec<Event> = match step {
            Step::Start(l) => l.iter().map(|&i| Event::Start(i)).collect(),
            Step::Kill(i) => vec![Event::Crash(*i)],
            Step::Stop(i) => vec![Event::Stop(*i)],
            Step::Standby(i, w) => vec![Event::Admin(*i, Admin::Standby(w.unwrap_or(Which::All)))],
            Step::Takeover(i, w) => {
                vec![Event::Admin(*i, Admin::Takeover(w.unwrap_or(Which::All)))]
            }
            Step::Partition(l) => {
                let f = if l.len() == 1 {
                    let rest: Vec<usize> = (0..n).filter(|i| !l.contains(i)).collect();
                    Fault::partition(l, &rest)
                } else {
                    let mut f = Fault::partition(&[], &[]);
                    for (k, &a) in l.iter().enumerate() {
                        for &b in &l[k + 1..] {
                            f.pairs.extend([(a, b), (b, a)]);
                        }
                    }
                    f
                };
                // A fault with no pairs would cut everything (one node alone: nothing to cut).
                if f.pairs.is_empty() {
                    Vec::new()
                } else {
                    self.faults += 1;
                    vec![Event::Fault(FaultId(self.faults), f)]
                }
            }
            Step::OneWay(a, b) if a == b => Vec::new(),
            Step::OneWay(a, b) => {
                self.faults += 1;
                vec![Event::Fault(
                    FaultId(self.faults),
                    Fault::one_way(&[*a], &[*b]),
                )]
            }
            Step::Heal => vec![Event::HealAll],
            Step::Wait(_) => Vec::new(),
        };
        for e in ev {
            self.world.schedule(now, e);
        }
    }

    /// Every node up has reached comm-up and the scripts and managers are idle with no
    /// timer of theirs pending.
    fn quiescent(&self) -> bool {
        self.world.settled()
            && self.world.hosts.iter().all(|h| {
                h.cluster().is_none_or(|c| {
                    c.is_comm_up()
                        && c.resource_manager()
                            .is_none_or(|rm| rm.poll_timeout().is_none())
                })
            })
    }

    /// Run one step until the cluster settles; its report.
    pub fn run_step(&mut self, step: &Step) -> StepReport {
        let names = self.names();
        let t0 = self.world.now_ms();
        let first_call = self.world.calls.len();
        let first_event: Vec<usize> = self.world.hosts.iter().map(|h| h.events.len()).collect();
        let before = self.world.placement();
        self.begin(step);
        let react_until = t0 + self.reaction_ms(step);
        // Every resource stopped and started (with its status query) on every node, twice.
        let resources: u64 = self
            .world
            .config()
            .groups
            .iter()
            .map(|g| g.resources.len() as u64)
            .sum();
        let scripts = 6 * resources * self.script_time_ms * self.world.hosts.len() as u64;
        let limit = react_until + SETTLE_LIMIT_MS + scripts;
        let quiet_ms = 2 * self.world.config().hacf.keepalive_ms + self.script_time_ms;
        let hear = self.hear_ms();
        let mut problems: Vec<Problem> = Vec::new();
        let mut last_change = t0;
        let mut moved = 0u32;
        let mut last_sig = (before.clone(), self.call_signature(first_call));
        let mut settled_at = None;
        loop {
            let now = self.world.now_ms();
            let done_at = last_change.max(react_until) + quiet_ms;
            let quiet = self.quiescent();
            if quiet && now >= done_at {
                settled_at = Some(last_change);
                break;
            }
            let next = self.world.next_instant();
            if quiet && next.is_none_or(|t| t > done_at) {
                // Nothing happens before it counts as settled.
                self.world.run_until(done_at);
                continue;
            }
            if next.is_none_or(|t| t > limit) {
                self.world.run_until(limit);
                break;
            }
            self.world.step(limit);
            if let Some(v) = self.world.take_violation() {
                problems.push(Problem {
                    kind: ProblemKind::Inconsistent,
                    group: String::new(),
                    text: v.to_string(),
                });
            }
            let sig = (self.world.placement(), self.call_signature(first_call));
            if sig.0 != last_sig.0 {
                moved += 1;
            }
            if sig != last_sig {
                last_change = self.world.now_ms();
                last_sig = sig;
            }
            if let Err(v) = self.world.check_safety(hear) {
                let group = self.group_of(&v.text);
                if !problems
                    .iter()
                    .any(|p| p.kind == ProblemKind::RunsTwice && p.group == group)
                {
                    problems.push(Problem {
                        kind: ProblemKind::RunsTwice,
                        group: group.clone(),
                        text: format!(
                            "at {}: group {group} runs on two nodes that have heard each other for {}",
                            show_ms(self.world.now_ms()),
                            show_ms(hear)
                        ),
                    });
                }
            }
        }
        let placement = self.placement_report(&names);
        if settled_at.is_none() {
            problems.push(Problem {
                kind: ProblemKind::NeverSettles,
                group: String::new(),
                text: format!(
                    "the cluster did not settle within {} of the step: {}",
                    show_ms(limit - t0),
                    self.unsettled_why(moved)
                ),
            });
        }
        // Nowhere: a group nobody runs while some node could.
        let anyone_up = self
            .world
            .hosts
            .iter()
            .any(|h| h.cluster().is_some_and(|c| !c.is_stopping()));
        if anyone_up {
            for gp in &placement {
                if gp.nodes.is_empty() {
                    problems.push(Problem {
                        kind: ProblemKind::RunsNowhere,
                        group: gp.group.clone(),
                        text: format!(
                            "group {} runs nowhere after the step although {} could run it",
                            gp.group,
                            self.world
                                .hosts
                                .iter()
                                .filter(|h| h.is_up())
                                .map(|h| h.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
            }
        }
        let calls: Vec<CallReport> = self.world.calls[first_call..]
            .iter()
            .map(|c| CallReport {
                node: names[c.host].clone(),
                resource: c.spec.clone(),
                op: c.op.as_str().to_string(),
                began_ms: c.began_ms,
                ended_ms: c.ended_ms,
                outcome: c.outcome.map(|o| o.as_str().to_string()),
            })
            .collect();
        let after = self.world.placement();
        let mut moves = Vec::new();
        for (g, group) in self.world.config().groups.iter().enumerate() {
            for &i in &after[g] {
                if before[g].contains(&i) {
                    continue;
                }
                let last_start = self.world.calls[first_call..]
                    .iter()
                    .filter(|c| {
                        c.host == i
                            && c.outcome == Some(Outcome::Started)
                            && group.resources.iter().any(|r| r.spec == c.spec)
                    })
                    .filter_map(|c| c.ended_ms)
                    .max();
                if let Some(end) = last_start {
                    moves.push(Move {
                        group: group.key().to_string(),
                        to: names[i].clone(),
                        took_ms: end - t0,
                    });
                }
            }
        }
        let mut notes = Vec::new();
        if self.world.net.faults().next().is_some() {
            for gp in placement.iter().filter(|p| p.nodes.len() > 1) {
                notes.push(format!(
                    "{} runs on {}: nodes that cannot hear each other each take it over (split brain), as Heartbeat does; a heal settles it",
                    gp.group,
                    gp.nodes.join(" and ")
                ));
            }
        }
        for (h, first) in self.world.hosts.iter().zip(&first_event) {
            for (at, e) in &h.events[*first..] {
                let HostEvent::Stonith(args) = e else {
                    continue;
                };
                // Resets only; the periodic device checks are noise here.
                if args.iter().any(|a| a == "-T") {
                    notes.push(format!(
                        "{}: {} runs stonith {} (taken to succeed)",
                        show_ms(*at),
                        h.name,
                        args.join(" ")
                    ));
                }
            }
        }
        let legacy = self.world.config().hacf.auto_failback == AutoFailback::Legacy;
        if legacy && matches!(step, Step::Standby(..) | Step::Takeover(..)) {
            notes.push(
                "auto_failback legacy: hb_standby and hb_takeover move nothing (Heartbeat 3.0.6 accepts and ignores them)".into(),
            );
        }
        StepReport {
            step: step.render(&names),
            notes,
            at_ms: t0,
            settled_at_ms: settled_at,
            placement,
            calls,
            moves,
            problems,
        }
    }

    /// Why a step did not settle, in words.
    fn unsettled_why(&self, moved: u32) -> String {
        if moved >= 4 {
            return format!("groups moved {moved} times (auto_failback choices that ping-pong?)");
        }
        let now = self.world.now_ms();
        let mut why = Vec::new();
        for h in &self.world.hosts {
            let Some(c) = h.cluster() else {
                continue;
            };
            if !c.is_comm_up() {
                why.push(format!("{} has not reached comm-up", h.name));
            }
            if c.is_stopping() {
                why.push(format!("{} is still stopping", h.name));
            }
            if let Some(rm) = c.resource_manager() {
                if !rm.is_idle() {
                    why.push(format!("{}'s resource manager is still at work", h.name));
                } else if let Some(t) = rm.poll_timeout() {
                    why.push(format!(
                        "{}'s resource manager waits for a timer due in {}",
                        h.name,
                        show_ms(t.saturating_sub(now))
                    ));
                }
            }
        }
        if why.is_empty() {
            "scripts are still running".into()
        } else {
            why.join("; ")
        }
    }

    /// Calls begun and ended since `first`: a change of either is activity.
    fn call_signature(&self, first: usize) -> (usize, usize) {
        let calls = &self.world.calls[first..];
        (
            calls.len(),
            calls.iter().filter(|c| c.ended_ms.is_some()).count(),
        )
    }

    fn group_of(&self, text: &str) -> String {
        self.world
            .config()
            .groups
            .iter()
            .map(|g| g.key())
            .find(|k| text.contains(&format!("group {k} ")))
            .unwrap_or("?")
            .to_string()
    }

    fn placement_report(&self, names: &[String]) -> Vec<GroupPlacement> {
        self.world
            .config()
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let (mut full, mut partial) = (Vec::new(), Vec::new());
                for (i, name) in names.iter().enumerate() {
                    if self.world.runs_fully(i, g) {
                        full.push(name.clone());
                    } else if self.world.runs(i, g) {
                        partial.push(name.clone());
                    }
                }
                GroupPlacement {
                    group: group.key().to_string(),
                    nodes: full,
                    partial,
                }
            })
            .collect()
    }

    /// Run every step; the whole report.
    pub fn run(mut self, steps: &[Step]) -> Report {
        let reports: Vec<StepReport> = steps.iter().map(|s| self.run_step(s)).collect();
        let cfg = self.world.config();
        let h = &cfg.hacf;
        Report {
            seed: self.seed,
            nodes: self.names(),
            timings: Timings {
                keepalive_ms: h.keepalive_ms,
                deadtime_ms: h.deadtime_ms,
                warntime_ms: h.warntime_ms,
                initdead_ms: h.initdead_ms,
                auto_failback: mode_name(h.auto_failback).into(),
                script_time_ms: self.script_time_ms,
            },
            expected_takeover: expected_takeover(cfg, self.script_time_ms),
            problems: reports.iter().flat_map(|r| r.problems.clone()).collect(),
            steps: reports,
        }
    }
}
