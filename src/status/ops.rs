//! The operator's view of a running node: the status overview (`hb_status`, text and JSON)
//! and the metrics (Prometheus text format).
//!
//! Pure: [`OpsStats`] is fed by the runtime with what it already sees (datagrams sent and
//! received per medium, the actions the `Cluster` emits, resource script starts and ends),
//! each call with the monotonic time in ms; [`Overview::build`] and [`metrics_text`] read the
//! `Cluster` through its read-only accessors. No clock, socket or file here.
//!
//! Takeovers and releases are measured here, from what the runtime sees:
//!
//! * a **takeover** is a burst of `start` scripts on this node. It begins at the earlier of
//!   the peer's death (`NodeDead`, when a start follows within [`TAKEOVER_LINK_MS`]) and the
//!   first start script, and ends when the last start script of the burst has finished;
//!   its duration is therefore "peer declared dead -> every group started here" (add the
//!   dead time for "last heartbeat heard -> started");
//! * a **release** is the same for `stop` scripts (standby, failback, shutdown).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::cluster::resources::Op;
use crate::cluster::{Cluster, ClusterAction, NodeStatus};
use crate::config::{AutoFailback, Config, ResourceGroup};

/// A start that follows a peer's death within this many ms belongs to its takeover.
pub const TAKEOVER_LINK_MS: u64 = 60_000;

/// A start (stop) within this many ms of the end of the last one continues the same move:
/// a group's resources start one after the other, each after its own status check.
pub const MOVE_GRACE_MS: u64 = 2_000;

/// Version of the JSON overview (`format` field); bumped on incompatible changes.
pub const OVERVIEW_FORMAT: u32 = 1;

/// One finished (or running) takeover or release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// `takeover` (groups started here) or `release` (groups stopped here).
    pub kind: String,
    /// Why, as far as this node knows: `node bob dead`, or `request` (standby, takeover,
    /// failback, start-up, shutdown).
    pub cause: String,
    /// Groups whose scripts ran, in the order they started.
    pub groups: Vec<String>,
    /// Unix seconds when it began.
    pub began_unix: u64,
    /// ms from its beginning until the last script ended; None while still running.
    pub duration_ms: Option<u64>,
    /// Scripts of the move that failed.
    pub failures: u64,
}

#[derive(Debug, Clone, Default)]
struct LinkCounters {
    heartbeats_sent: u64,
    packets_sent: u64,
    packets_received: u64,
}

#[derive(Debug, Clone)]
struct Job {
    group: String,
    op: Op,
    started_ms: u64,
}

#[derive(Debug, Clone)]
struct OpenMove {
    mv: Move,
    began_ms: u64,
    jobs: usize,
    /// When its last script ended (no script of it runs now); it may still continue.
    ended_ms: Option<u64>,
}

#[derive(Debug, Clone, Default)]
struct ScriptStats {
    runs: u64,
    failures: u64,
    duration_ms_sum: u64,
}

/// Counters and the takeover tracker, kept by the runtime.
#[derive(Debug, Clone, Default)]
pub struct OpsStats {
    started_ms: u64,
    links: Vec<LinkCounters>,
    late_heartbeats: BTreeMap<String, u64>,
    jobs: BTreeMap<u64, Job>,
    /// Per op: runs, failures, time.
    scripts: BTreeMap<&'static str, ScriptStats>,
    /// The last peer declared dead: (name, ms, unix).
    last_death: Option<(String, u64, u64)>,
    open: [Option<OpenMove>; 2],
    last: [Option<Move>; 2],
    /// Finished moves: count and total duration, per kind.
    done: [(u64, u64); 2],
    last_unix: u64,
}

fn slot(op: Op) -> Option<usize> {
    match op {
        Op::Start => Some(0),
        Op::Stop => Some(1),
        Op::Status => None,
    }
}

const KINDS: [&str; 2] = ["takeover", "release"];

impl OpsStats {
    pub fn new(now_ms: u64, media: usize) -> OpsStats {
        OpsStats {
            started_ms: now_ms,
            links: vec![LinkCounters::default(); media],
            ..OpsStats::default()
        }
    }

    /// The media changed (reload): counters of the old ones are kept by position.
    pub fn set_media(&mut self, media: usize) {
        self.links.resize(media, LinkCounters::default());
    }

    fn link(&mut self, i: usize) -> &mut LinkCounters {
        if self.links.len() <= i {
            self.links.resize(i + 1, LinkCounters::default());
        }
        &mut self.links[i]
    }

    /// A datagram went out on medium `i`; `heartbeat` when it is a status message.
    pub fn sent(&mut self, i: usize, heartbeat: bool) {
        let l = self.link(i);
        l.packets_sent += 1;
        l.heartbeats_sent += u64::from(heartbeat);
    }

    /// A datagram came in on medium `i` (before authentication).
    pub fn received(&mut self, i: usize) {
        self.link(i).packets_received += 1;
    }

    /// Every action the `Cluster` emitted, before the runtime carries it out.
    pub fn on_action(&mut self, now_ms: u64, unix: u64, a: &ClusterAction) {
        self.last_unix = unix;
        match a {
            ClusterAction::NodeDead(node) => {
                // The resource manager may queue the takeover's first start before the
                // death itself reaches us: a takeover begun in the same instant is this one.
                match self.open[0].as_mut() {
                    Some(open) if open.mv.cause == "request" && open.began_ms + 1000 >= now_ms => {
                        open.mv.cause = format!("node {node} dead");
                        open.began_ms = open.began_ms.min(now_ms);
                    }
                    _ => self.last_death = Some((node.clone(), now_ms, unix)),
                }
            }
            ClusterAction::Log(_, text) => {
                // 3.0.6's wording: "Late heartbeat: Node bob: interval 2500 ms".
                if let Some(rest) = text.strip_prefix("Late heartbeat: Node ") {
                    if let Some((node, _)) = rest.split_once(':') {
                        *self.late_heartbeats.entry(node.to_string()).or_default() += 1;
                    }
                }
            }
            _ => {}
        }
    }

    /// A resource script for `resource` (of `group`) started as job `job`.
    pub fn script_started(&mut self, now_ms: u64, unix: u64, job: u64, group: &str, op: Op) {
        self.last_unix = unix;
        self.jobs.insert(
            job,
            Job {
                group: group.to_string(),
                op,
                started_ms: now_ms,
            },
        );
        let Some(k) = slot(op) else {
            return;
        };
        if self.open[k]
            .as_ref()
            .and_then(|o| o.ended_ms)
            .is_some_and(|e| now_ms.saturating_sub(e) > MOVE_GRACE_MS)
        {
            self.close(k);
        }
        let death = self
            .last_death
            .as_ref()
            .filter(|(_, at, _)| now_ms.saturating_sub(*at) <= TAKEOVER_LINK_MS)
            .cloned();
        let open = self.open[k].get_or_insert_with(|| {
            let (cause, began_ms, began_unix) = match (&death, op) {
                (Some((node, at, u)), Op::Start) => (format!("node {node} dead"), *at, *u),
                _ => ("request".to_string(), now_ms, unix),
            };
            OpenMove {
                mv: Move {
                    kind: KINDS[k].to_string(),
                    cause,
                    groups: Vec::new(),
                    began_unix,
                    duration_ms: None,
                    failures: 0,
                },
                began_ms,
                jobs: 0,
                ended_ms: None,
            }
        });
        open.ended_ms = None;
        if op == Op::Start && death.is_some() {
            // The death is used once.
            self.last_death = None;
        }
        open.jobs += 1;
        if !open.mv.groups.iter().any(|g| g == group) {
            open.mv.groups.push(group.to_string());
        }
    }

    /// Job `job` ended (`ok`: exit 0).
    pub fn script_done(&mut self, now_ms: u64, job: u64, ok: bool) {
        let Some(j) = self.jobs.remove(&job) else {
            return;
        };
        let s = self.scripts.entry(j.op.as_str()).or_default();
        s.runs += 1;
        s.failures += u64::from(!ok);
        s.duration_ms_sum += now_ms.saturating_sub(j.started_ms);
        let Some(k) = slot(j.op) else {
            return;
        };
        if let Some(open) = self.open[k].as_mut() {
            open.jobs = open.jobs.saturating_sub(1);
            open.mv.failures += u64::from(!ok);
            if open.jobs == 0 {
                open.ended_ms = Some(now_ms);
            }
        }
    }

    /// The open move of kind `k` as it stands: its duration is set once no script of it runs.
    fn snapshot(o: &OpenMove) -> Move {
        let mut mv = o.mv.clone();
        mv.duration_ms = o.ended_ms.map(|e| e.saturating_sub(o.began_ms));
        mv
    }

    /// Finish the open move of kind `k` for good.
    fn close(&mut self, k: usize) {
        if let Some(open) = self.open[k].take() {
            let mv = Self::snapshot(&open);
            let d = mv.duration_ms.unwrap_or(0);
            self.done[k].0 += 1;
            self.done[k].1 += d;
            self.last[k] = Some(mv);
        }
    }

    /// Finished moves of kind `k` (count, total ms, the last one), counting an open move
    /// whose scripts have all ended.
    fn finished(&self, k: usize) -> (u64, u64, Option<Move>) {
        let (mut n, mut total) = self.done[k];
        let mut last = self.last[k].clone();
        if let Some(o) = self.open[k].as_ref().filter(|o| o.ended_ms.is_some()) {
            let mv = Self::snapshot(o);
            n += 1;
            total += mv.duration_ms.unwrap_or(0);
            last = Some(mv);
        }
        (n, total, last)
    }

    /// The group job `job` works on, and its op, while it runs.
    fn running_ops(&self) -> BTreeMap<&str, Op> {
        let mut m = BTreeMap::new();
        for j in self.jobs.values() {
            if j.op != Op::Status {
                m.insert(j.group.as_str(), j.op);
            }
        }
        m
    }

    /// The move in progress or the last finished one of `kind` (0 takeover, 1 release).
    fn latest(&self, k: usize) -> Option<Move> {
        self.open[k]
            .as_ref()
            .map(Self::snapshot)
            .or_else(|| self.last[k].clone())
    }
}

/// The group a resource belongs to (its key), if any.
pub fn group_of<'a>(groups: &'a [ResourceGroup], spec: &str) -> Option<&'a str> {
    groups
        .iter()
        .find(|g| g.resources.iter().any(|r| r.spec == spec))
        .map(ResourceGroup::key)
}

// ---------------------------------------------------------------------------------------------
// The overview

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkOverview {
    pub name: String,
    pub up: bool,
    /// ms since a packet of this node was last heard on this link; None: never.
    pub last_heard_ms_ago: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeOverview {
    pub name: String,
    /// `normal` or `ping`.
    pub kind: String,
    /// `init`, `up`, `active`, `dead`, `ping`.
    pub status: String,
    pub this_node: bool,
    pub generation: Option<u64>,
    /// ms since its last heartbeat (status message); None: never, or this node.
    pub last_heartbeat_ms_ago: Option<u64>,
    pub links: Vec<LinkOverview>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOverview {
    /// The group's key (its first resource, as written in haresources).
    pub group: String,
    /// Its preferred node (first field of its haresources line).
    pub home: String,
    /// `running`, `starting`, `stopping` (on this node), `elsewhere` (a live peer; on a
    /// pair, `node` names it), `stopped` (no live node holds it, as far as we know), or
    /// `unmanaged` (-M).
    pub state: String,
    /// Where it runs or is moving: this node, the live peer of a pair, or None.
    pub node: Option<String>,
}

/// Everything `hb_status` shows, taken at one instant on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub format: u32,
    pub version: String,
    pub node: String,
    /// `auto_failback`: `on`, `off` or `legacy`.
    pub mode: String,
    pub manages_resources: bool,
    pub comm_up: bool,
    /// This node's own status.
    pub status: String,
    pub uptime_ms: u64,
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    pub nodes: Vec<NodeOverview>,
    pub groups: Vec<GroupOverview>,
    /// The last takeover (groups started here), running or finished.
    pub last_takeover: Option<Move>,
    /// The last release (groups stopped here), running or finished.
    pub last_release: Option<Move>,
}

pub fn mode_word(m: AutoFailback) -> &'static str {
    match m {
        AutoFailback::On => "on",
        AutoFailback::Off => "off",
        AutoFailback::Legacy => "legacy",
    }
}

fn ago(now_ms: u64, at: Option<u64>) -> Option<u64> {
    at.map(|t| now_ms.saturating_sub(t))
}

impl Overview {
    /// The overview of the running node at `now_ms` (the same clock as the cluster's).
    pub fn build(
        cluster: &Cluster,
        cfg: &Config,
        stats: &OpsStats,
        version: &str,
        manages_resources: bool,
        now_ms: u64,
    ) -> Overview {
        let m = cluster.membership();
        let me = m.identity().name.to_ascii_lowercase();
        let links = &m.params().links;
        let ping = &m.params().ping_nodes;
        let mut nodes = Vec::new();
        for name in m.node_names() {
            let is_ping = ping.iter().any(|p| p.eq_ignore_ascii_case(&name));
            let status = m.node_status(&name).map_or("init", NodeStatus::as_str);
            let timing = m.node_timing(&name);
            let this = name.eq_ignore_ascii_case(&me);
            let up = m.link_status(&name).unwrap_or_default();
            let heard = timing
                .as_ref()
                .map(|t| t.link_last_heard.clone())
                .unwrap_or_default();
            // One link per distinct name, as 3.0.6 and cl_status count them (two `ucast lo`
            // lines are one link `lo`): up when any medium of that name is, last heard on any.
            let mut node_links: Vec<LinkOverview> = Vec::new();
            if !this {
                for (i, l) in links.iter().enumerate() {
                    let is_up = up.get(i).is_some_and(|(_, u)| *u);
                    let age = ago(now_ms, heard.get(i).copied().flatten());
                    match node_links.iter_mut().find(|x| &x.name == l) {
                        Some(x) => {
                            x.up |= is_up;
                            x.last_heard_ms_ago = match (x.last_heard_ms_ago, age) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                (a, b) => a.or(b),
                            };
                        }
                        None => node_links.push(LinkOverview {
                            name: l.clone(),
                            up: is_up,
                            last_heard_ms_ago: age,
                        }),
                    }
                }
            }
            nodes.push(NodeOverview {
                name: name.to_ascii_lowercase(),
                kind: if is_ping { "ping" } else { "normal" }.to_string(),
                status: status.to_string(),
                this_node: this,
                generation: if is_ping {
                    None
                } else {
                    timing.as_ref().and_then(|t| t.generation)
                },
                last_heartbeat_ms_ago: if this {
                    None
                } else {
                    ago(now_ms, timing.as_ref().and_then(|t| t.last_status_at))
                },
                links: node_links,
            });
        }
        let live_peers: Vec<&NodeOverview> = nodes
            .iter()
            .filter(|n| !n.this_node && n.kind == "normal" && n.status == "active")
            .collect();
        let held = cluster.held_keys();
        let running = stats.running_ops();
        let groups = cfg
            .groups
            .iter()
            .map(|g| {
                let key = g.key();
                let (state, node) = if !manages_resources {
                    ("unmanaged", None)
                } else if let Some(op) = running.get(key) {
                    match op {
                        Op::Stop => ("stopping", Some(me.clone())),
                        _ => ("starting", Some(me.clone())),
                    }
                } else if held.contains(&key) {
                    ("running", Some(me.clone()))
                } else if live_peers.len() == 1 {
                    ("elsewhere", Some(live_peers[0].name.clone()))
                } else if !live_peers.is_empty() {
                    ("elsewhere", None)
                } else {
                    ("stopped", None)
                };
                GroupOverview {
                    group: key.to_string(),
                    home: g.node.clone(),
                    state: state.to_string(),
                    node,
                }
            })
            .collect();
        Overview {
            format: OVERVIEW_FORMAT,
            version: version.to_string(),
            node: me.clone(),
            mode: mode_word(cfg.hacf.auto_failback).to_string(),
            manages_resources,
            comm_up: cluster.is_comm_up(),
            status: m.own_status().as_str().to_string(),
            uptime_ms: now_ms.saturating_sub(stats.started_ms),
            keepalive_ms: cfg.hacf.keepalive_ms,
            deadtime_ms: cfg.hacf.deadtime_ms,
            nodes,
            groups,
            last_takeover: stats.latest(0),
            last_release: stats.latest(1),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn from_json(text: &str) -> Result<Overview, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The text form. `tm` formats Unix seconds as local time (the caller's clock).
    pub fn to_text(&self, color: bool, tm: &dyn Fn(u64) -> String) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let state_color = |s: &str| match s {
            "active" | "up" | "running" | "ping" => "32",
            "dead" | "stopped" => "31",
            "starting" | "stopping" | "init" => "33",
            _ => "0",
        };
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Node {} ({}): {}, communication {}, auto_failback {}, up {}",
            self.node,
            self.version,
            paint(state_color(&self.status), &self.status),
            if self.comm_up { "up" } else { "not up yet" },
            self.mode,
            secs(self.uptime_ms)
        );
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{:<16} {:<7} {:<8} {:>10}  LAST HEARTBEAT",
            "NODE", "TYPE", "STATUS", "GENERATION"
        );
        for n in &self.nodes {
            let gen = n.generation.map_or("-".to_string(), |g| g.to_string());
            let heard = if n.this_node {
                "(this node)".to_string()
            } else {
                age(n.last_heartbeat_ms_ago)
            };
            let st = format!("{:<8}", n.status);
            let _ = writeln!(
                o,
                "{:<16} {:<7} {} {:>10}  {}",
                n.name,
                n.kind,
                paint(state_color(&n.status), &st),
                gen,
                heard
            );
        }
        let links: Vec<(&NodeOverview, &LinkOverview)> = self
            .nodes
            .iter()
            .filter(|n| n.kind == "normal")
            .flat_map(|n| n.links.iter().map(move |l| (n, l)))
            .collect();
        if !links.is_empty() {
            let _ = writeln!(o);
            let _ = writeln!(o, "{:<16} {:<24} {:<6} LAST HEARD", "NODE", "LINK", "STATE");
            for (n, l) in links {
                let st = if l.up { "up" } else { "dead" };
                let _ = writeln!(
                    o,
                    "{:<16} {:<24} {} {}",
                    n.name,
                    l.name,
                    paint(state_color(st), &format!("{st:<6}")),
                    age(l.last_heard_ms_ago)
                );
            }
        }
        let _ = writeln!(o);
        if self.groups.is_empty() {
            let _ = writeln!(o, "No resource groups.");
        } else {
            let _ = writeln!(o, "{:<24} {:<16} WHERE", "GROUP", "HOME");
            for g in &self.groups {
                let where_ = match (&g.state[..], &g.node) {
                    ("running", Some(n)) => format!("running on {n} (here)"),
                    ("starting", Some(n)) => format!("starting on {n} (here)"),
                    ("stopping", Some(n)) => format!("stopping on {n} (here)"),
                    ("elsewhere", Some(n)) => format!("on {n}"),
                    ("elsewhere", None) => "on another node".to_string(),
                    ("stopped", _) => "not running (no live node holds it)".to_string(),
                    ("unmanaged", _) => "not managed here (-M)".to_string(),
                    (s, _) => s.to_string(),
                };
                let _ = writeln!(
                    o,
                    "{:<24} {:<16} {}",
                    g.group,
                    g.home,
                    paint(state_color(&g.state), &where_)
                );
            }
        }
        let _ = writeln!(o);
        for (label, mv) in [
            ("Last takeover", &self.last_takeover),
            ("Last release", &self.last_release),
        ] {
            match mv {
                None => {
                    let _ = writeln!(o, "{label}: none since start.");
                }
                Some(m) => {
                    let took = match m.duration_ms {
                        Some(d) => format!("took {} (until the last script ended)", secs(d)),
                        None => "in progress".to_string(),
                    };
                    let failed = if m.failures > 0 {
                        format!(", {} script(s) failed", m.failures)
                    } else {
                        String::new()
                    };
                    let cause = if m.cause == "request" {
                        "start-up or request"
                    } else {
                        m.cause.as_str()
                    };
                    let _ = writeln!(
                        o,
                        "{label}: {cause} at {}, {took}{failed}: {}",
                        tm(m.began_unix),
                        m.groups.join(" ")
                    );
                }
            }
        }
        o
    }
}

fn secs(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} s", ms / 1000)
    }
}

fn age(ms: Option<u64>) -> String {
    match ms {
        None => "never".to_string(),
        Some(ms) => format!("{} ago", secs(ms)),
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    // A node name in Latin-1 shows as `\xe9`, its backslash escaped like any other.
    for c in crate::config::bytes::escape(v).chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The Prometheus text exposition (format 0.0.4) of this node's counters and gauges.
pub fn metrics_text(
    cluster: &Cluster,
    cfg: &Config,
    stats: &OpsStats,
    overview: &Overview,
) -> String {
    fn family(o: &mut String, name: &'static str, kind: &str, help: &str) -> &'static str {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        name
    }
    fn emit(o: &mut String, lines: &mut Vec<String>) {
        for l in lines.drain(..) {
            o.push_str(&l);
            o.push('\n');
        }
    }
    let mut o = String::new();
    let mut lines: Vec<String> = Vec::new();
    let media = &cluster.membership().params().links;
    let link_label = |i: usize| {
        format!(
            "medium=\"{i}\",link=\"{}\"",
            label(media.get(i).map_or("", String::as_str))
        )
    };
    let n = family(
        &mut o,
        "heartbeat_heartbeats_sent_total",
        "counter",
        "Heartbeats (status messages) sent, per medium.",
    );
    for (i, l) in stats.links.iter().enumerate() {
        lines.push(format!("{n}{{{}}} {}", link_label(i), l.heartbeats_sent));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_packets_sent_total",
        "counter",
        "Datagrams sent, per medium.",
    );
    for (i, l) in stats.links.iter().enumerate() {
        lines.push(format!("{n}{{{}}} {}", link_label(i), l.packets_sent));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_heartbeats_received_total",
        "counter",
        "Heartbeats (status messages) of peers taken in, per medium: authenticated and in sequence.",
    );
    for i in 0..stats.links.len() {
        let heard = cluster.membership().heartbeats_heard(i);
        lines.push(format!("{n}{{{}}} {heard}", link_label(i)));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_packets_received_total",
        "counter",
        "Datagrams received, per medium, before authentication.",
    );
    for (i, l) in stats.links.iter().enumerate() {
        lines.push(format!("{n}{{{}}} {}", link_label(i), l.packets_received));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_late_heartbeats_total",
        "counter",
        "Heartbeats that came later than warntime (logged as Late heartbeat), per node.",
    );
    for (node, c) in &stats.late_heartbeats {
        lines.push(format!("{n}{{node=\"{}\"}} {c}", label(node)));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_rejected_packets_total",
        "counter",
        "Packets dropped before delivery, by reason.",
    );
    for (reason, c) in cluster.membership().reject_counts() {
        lines.push(format!("{n}{{reason=\"{}\"}} {c}", label(reason)));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_link_up",
        "gauge",
        "1 when the node has been heard on the link within deadtime.",
    );
    for node in overview.nodes.iter().filter(|n| !n.this_node) {
        for l in &node.links {
            lines.push(format!(
                "{n}{{node=\"{}\",link=\"{}\"}} {}",
                label(&node.name),
                label(&l.name),
                u8::from(l.up)
            ));
        }
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_node_status",
        "gauge",
        "1 for the node's current status (init, up, active, dead, ping).",
    );
    for node in &overview.nodes {
        lines.push(format!(
            "{n}{{node=\"{}\",status=\"{}\"}} 1",
            label(&node.name),
            label(&node.status)
        ));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_node_generation",
        "gauge",
        "The node's heartbeat generation (increases at every start).",
    );
    for node in &overview.nodes {
        if let Some(g) = node.generation {
            lines.push(format!("{n}{{node=\"{}\"}} {g}", label(&node.name)));
        }
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_resource_group_running",
        "gauge",
        "1 when the resource group runs (or is starting) on this node.",
    );
    for g in &overview.groups {
        let here = matches!(&g.state[..], "running" | "starting");
        lines.push(format!(
            "{n}{{group=\"{}\",home=\"{}\"}} {}",
            label(&g.group),
            label(&g.home),
            u8::from(here)
        ));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_moves_total",
        "counter",
        "Finished takeovers (groups started here) and releases (groups stopped here).",
    );
    for (k, kind) in KINDS.iter().enumerate() {
        lines.push(format!("{n}{{kind=\"{kind}\"}} {}", stats.finished(k).0));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_move_duration_seconds_total",
        "counter",
        "Time spent in finished takeovers and releases (peer declared dead or request -> last script ended).",
    );
    for (k, kind) in KINDS.iter().enumerate() {
        lines.push(format!(
            "{n}{{kind=\"{kind}\"}} {:.3}",
            stats.finished(k).1 as f64 / 1000.0
        ));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_last_move_duration_seconds",
        "gauge",
        "Duration of the last finished takeover and release.",
    );
    for (k, kind) in KINDS.iter().enumerate() {
        if let Some(d) = stats.finished(k).2.and_then(|m| m.duration_ms) {
            lines.push(format!("{n}{{kind=\"{kind}\"}} {:.3}", d as f64 / 1000.0));
        }
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_resource_script_runs_total",
        "counter",
        "Resource script runs that ended, by operation.",
    );
    for (op, s) in &stats.scripts {
        lines.push(format!("{n}{{op=\"{op}\"}} {}", s.runs));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_resource_script_failures_total",
        "counter",
        "Resource script runs that did not exit 0 (for status: not running), by operation.",
    );
    for (op, s) in &stats.scripts {
        lines.push(format!("{n}{{op=\"{op}\"}} {}", s.failures));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_resource_script_duration_seconds_total",
        "counter",
        "Time spent in resource scripts that ended, by operation.",
    );
    for (op, s) in &stats.scripts {
        lines.push(format!(
            "{n}{{op=\"{op}\"}} {:.3}",
            s.duration_ms_sum as f64 / 1000.0
        ));
    }
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_up_seconds",
        "gauge",
        "Seconds since this daemon started.",
    );
    lines.push(format!("{n} {:.3}", overview.uptime_ms as f64 / 1000.0));
    emit(&mut o, &mut lines);
    let n = family(
        &mut o,
        "heartbeat_info",
        "gauge",
        "Constant 1, with the version, node and auto_failback mode.",
    );
    lines.push(format!(
        "{n}{{version=\"{}\",node=\"{}\",mode=\"{}\"}} 1",
        label(&overview.version),
        label(&overview.node),
        mode_word(cfg.hacf.auto_failback)
    ));
    emit(&mut o, &mut lines);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_takeover_runs_from_the_death_to_the_last_start() {
        let mut s = OpsStats::new(0, 1);
        s.on_action(1000, 100, &ClusterAction::NodeDead("bob".into()));
        s.script_started(1200, 100, 1, "web", Op::Start);
        s.script_started(1300, 100, 2, "db", Op::Start);
        s.script_done(1500, 1, true);
        let open = s.latest(0).expect("in progress");
        assert_eq!(open.duration_ms, None);
        assert_eq!(open.cause, "node bob dead");
        s.script_done(3000, 2, false);
        let m = s.latest(0).expect("done");
        assert_eq!(m.duration_ms, Some(2000));
        assert_eq!(m.groups, vec!["web", "db"]);
        assert_eq!(m.failures, 1);
        assert_eq!(s.finished(0).0, 1);
        assert_eq!(s.finished(0).1, 2000);
        // The group's next resource, started just after: the same takeover, now longer.
        s.script_started(3100, 100, 7, "db", Op::Start);
        assert_eq!(s.latest(0).expect("open").duration_ms, None);
        s.script_done(3500, 7, true);
        let m = s.latest(0).expect("done");
        assert_eq!(
            (m.duration_ms, m.cause.as_str()),
            (Some(2500), "node bob dead")
        );
        assert_eq!(s.finished(0), (1, 2500, Some(m)));
        assert_eq!(s.scripts["start"].runs, 3);
        assert_eq!(s.scripts["start"].failures, 1);
        assert_eq!(s.scripts["start"].duration_ms_sum, 300 + 1700 + 400);
        // A later start without a death is a request, timed from its first script.
        s.script_started(90_000, 200, 3, "web", Op::Start);
        s.script_done(90_400, 3, true);
        let m = s.latest(0).expect("done");
        assert_eq!((m.cause.as_str(), m.duration_ms), ("request", Some(400)));
        assert_eq!(s.finished(0).0, 2);
    }

    #[test]
    fn a_death_reported_after_the_first_start_is_still_its_cause() {
        let mut s = OpsStats::new(0, 1);
        s.script_started(5000, 100, 1, "web", Op::Start);
        s.on_action(5000, 100, &ClusterAction::NodeDead("alice".into()));
        s.script_done(5100, 1, true);
        let m = s.latest(0).expect("done");
        assert_eq!(m.cause, "node alice dead");
        assert_eq!(m.duration_ms, Some(100));
        // A death long after a start is not that start's cause.
        s.script_started(9000, 100, 2, "db", Op::Start);
        s.on_action(20_000, 100, &ClusterAction::NodeDead("bob".into()));
        s.script_done(20_100, 2, true);
        assert_eq!(s.latest(0).expect("done").cause, "request");
    }

    #[test]
    fn late_heartbeats_are_counted_from_the_log_line() {
        let mut s = OpsStats::new(0, 1);
        let line = |t: &str| ClusterAction::Log(crate::cluster::LogLevel::Warn, t.into());
        s.on_action(1, 1, &line("Late heartbeat: Node bob: interval 2500 ms"));
        s.on_action(
            2,
            1,
            &line("Late heartbeat: Node bob: interval 9000 ms (> deadtime)"),
        );
        s.on_action(3, 1, &line("Link bob:lo up."));
        assert_eq!(s.late_heartbeats.get("bob"), Some(&2));
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let latin1 = crate::config::bytes::decode(b"caf\xe9");
        assert_eq!(label(&latin1), "caf\\\\xe9");
    }
}
