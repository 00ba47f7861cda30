//! Membership: our own status, every node's status and links, the receive rule with
//! retransmission and acknowledgements, deadtime/warntime/initdead, and comm-up.
//! Behaviour and log wording follow Heartbeat 3.0.6 (resources.md 1, wire-protocol.md 7-11).

use std::collections::{BTreeMap, VecDeque};

use super::history::{Lookup, SendHistory};
use super::sequence::{SeqVerdict, SeqWindow};
use super::{LogLevel, Now};
use crate::config::{HaCf, MsgFmt};
use crate::wire::{Authenticator, Msg};

/// For the first few seconds 3.0.6 advertises deadtime plus this allowance in `dt`.
const STARTUP_DT_EXTRA_MS: u64 = 2000;
const STARTUP_DT_WINDOW_MS: u64 = 5000;
/// How often `reqnodes` is repeated while waiting for `repnodes`.
const REQNODES_INTERVAL_MS: u64 = 1000;
/// At most this many messages are re-sent for one request.
const MAX_RESEND_PER_REQUEST: u64 = 50;
/// One log line per rejection kind per this many ms; the rest are counted.
const REJECT_LOG_INTERVAL_MS: u64 = 10_000;

/// What the membership layer needs from ha.cf, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub my_name: String,
    /// Every configured node, ours included, lowercased, in declaration order.
    pub nodes: Vec<String>,
    /// Link names, indexed like the media the runtime opened.
    pub links: Vec<String>,
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    pub warntime_ms: u64,
    pub initdead_ms: u64,
    pub max_rexmit_delay_ms: u64,
    pub hopfudge: u32,
    /// `msgfmt classic`: add the inner `auth` field to what we send.
    pub inner_auth: bool,
    /// Ping nodes (`ping`, `ping6`, `ping_group`), lowercased: alive while their echoes of
    /// our `NS_st` messages come back.
    pub ping_nodes: Vec<String>,
    pub deadping_ms: u64,
}

impl Params {
    pub fn from_config(cfg: &HaCf, my_name: &str) -> Params {
        Params {
            my_name: my_name.to_ascii_lowercase(),
            nodes: cfg.nodes.clone(),
            links: cfg.media.iter().map(|m| m.kind.link_name()).collect(),
            keepalive_ms: cfg.keepalive_ms,
            deadtime_ms: cfg.deadtime_ms,
            warntime_ms: cfg.warntime_ms,
            initdead_ms: cfg.initdead_ms,
            max_rexmit_delay_ms: cfg.max_rexmit_delay_ms,
            hopfudge: cfg.hopfudge,
            inner_auth: cfg.msgfmt == MsgFmt::Classic,
            ping_nodes: cfg.ping_node_names(),
            deadping_ms: cfg.deadping_ms,
        }
    }
}

/// Who we are on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uuid: [u8; 16],
    pub generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Init,
    Up,
    Active,
    Dead,
    /// A ping node that answers.
    Ping,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Init => "init",
            NodeStatus::Up => "up",
            NodeStatus::Active => "active",
            NodeStatus::Dead => "dead",
            NodeStatus::Ping => "ping",
        }
    }

    fn parse(s: &str) -> Option<NodeStatus> {
        match s {
            "init" => Some(NodeStatus::Init),
            "up" => Some(NodeStatus::Up),
            "active" => Some(NodeStatus::Active),
            "dead" => Some(NodeStatus::Dead),
            _ => None,
        }
    }
}

/// Something the runtime (or a simulation) must carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this datagram on every medium.
    Send(Vec<u8>),
    Log(LogLevel, String),
    /// Comm-up reached: the API may open, resource management may start.
    CommUp,
    /// A peer was declared dead.
    NodeDead(String),
    /// A peer we had declared dead is talking again with the same generation (a healed
    /// partition, or one side was frozen longer than the dead time).
    NodeReturned(String),
    /// A peer's recorded status changed (`init`, `up`, `active`).
    NodeStatus(String, NodeStatus),
    /// A peer started again (a higher generation than we knew): the new process holds no
    /// resources and knows nothing of what was asked of its predecessor.
    NodeRestarted(String),
    /// A verified, in-sequence message for an upper layer (resource protocol).
    Deliver(String, Msg),
    /// The graceful stop is complete: the process may exit.
    ShutdownComplete,
}

#[derive(Debug, Clone, Default)]
struct LinkState {
    up: bool,
    last_heard: Option<u64>,
}

#[derive(Debug, Clone)]
struct Node {
    name: String,
    uuid: Option<[u8; 16]>,
    status: NodeStatus,
    /// Heard from (any accepted packet) since our start or since it was last declared dead.
    heard: bool,
    /// Monotonic ms of the last accepted status message.
    last_status_at: Option<u64>,
    last_status_seq: u64,
    last_status_ts: u64,
    /// The sender's advertised dead time (`dt`), if any.
    dead_ms: Option<u64>,
    /// Highest generation ever seen from it (kept for our whole lifetime).
    generation: Option<u64>,
    window: SeqWindow,
    /// The generation whose sequence numbers `window` follows.
    window_generation: Option<u64>,
    /// Its `ackseq` of our messages.
    acked_ours: u64,
    /// Residue mod 10 of the sequence numbers we acknowledge.
    ack_trigger: u64,
    /// It sends `protocol=1` (ACK flow control).
    flow_control: bool,
    /// A ping node: a router or host that only echoes our `NS_st` messages.
    ping: bool,
    links: Vec<LinkState>,
}

impl Node {
    fn new(name: &str, links: usize, ack_trigger: u64) -> Node {
        Node {
            name: name.to_string(),
            uuid: None,
            status: NodeStatus::Init,
            heard: false,
            last_status_at: None,
            last_status_seq: 0,
            last_status_ts: 0,
            dead_ms: None,
            generation: None,
            window: SeqWindow::default(),
            window_generation: None,
            acked_ours: 0,
            ack_trigger,
            flow_control: true,
            ping: false,
            links: vec![LinkState::default(); links],
        }
    }
}

#[derive(Debug, Default)]
struct RejectLog {
    /// kind -> (ms of the last line written, count suppressed since)
    kinds: BTreeMap<String, (u64, u64)>,
    /// kind -> total count (for status queries)
    totals: BTreeMap<String, u64>,
}

/// A tiny deterministic PRNG (xorshift64*): the state machine must not touch OS randomness.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next() % (hi - lo + 1)
        }
    }
}

/// The membership state machine of one node.
#[derive(Debug)]
pub struct Membership {
    params: Params,
    id: Identity,
    auth: Authenticator,
    started_at: u64,
    me: usize,
    nodes: Vec<Node>,
    own_status: NodeStatus,
    comm_up: bool,
    /// Waiting for `repnodes` from this node index; next `reqnodes` due at.
    reqnodes: Option<(usize, u64)>,
    next_status_at: u64,
    seq: u64,
    history: SendHistory,
    load_average: String,
    rng: Rng,
    rejects: RejectLog,
    shutting_down: bool,
    actions: VecDeque<Action>,
}

fn hex(v: u64) -> String {
    format!("{v:x}")
}

fn parse_hex(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

impl Membership {
    /// Start as node `id`: status `init`, then `up` at once (two status messages, seq 1 and 2).
    pub fn new(
        params: Params,
        id: Identity,
        auth: Authenticator,
        now: Now,
        seed: u64,
    ) -> Membership {
        let mut rng = Rng(seed | 1);
        let mut nodes: Vec<Node> = params
            .nodes
            .iter()
            .map(|n| Node::new(n, params.links.len(), rng.next() % 10))
            .collect();
        add_ping_nodes(&mut nodes, &params);
        let me = nodes
            .iter()
            .position(|n| n.name == params.my_name)
            .unwrap_or(usize::MAX);
        let mut m = Membership {
            started_at: now.mono_ms,
            me,
            nodes,
            own_status: NodeStatus::Init,
            comm_up: false,
            reqnodes: None,
            next_status_at: now.mono_ms,
            seq: 0,
            history: SendHistory::default(),
            load_average: String::from("0.00 0.00 0.00 1/1 1"),
            rng,
            rejects: RejectLog::default(),
            shutting_down: false,
            actions: VecDeque::new(),
            params,
            id,
            auth,
        };
        if m.me == usize::MAX {
            // The config check guarantees we are a node; stay harmless if not.
            m.log(
                LogLevel::Error,
                format!("Current node [{}] not in configuration!", m.id.name),
            );
            m.nodes
                .push(Node::new(&m.id.name.clone(), m.params.links.len(), 0));
            m.me = m.nodes.len() - 1;
        }
        m.nodes[m.me].uuid = Some(m.id.uuid);
        m.nodes[m.me].generation = Some(m.id.generation);
        m.send_status(now);
        m.set_own_status(now, NodeStatus::Up);
        m.check_comm_up(now);
        m
    }

    // ----- queries -------------------------------------------------------------------------

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn own_status(&self) -> NodeStatus {
        self.own_status
    }

    pub fn is_comm_up(&self) -> bool {
        self.comm_up
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn identity(&self) -> &Identity {
        &self.id
    }

    /// Node names in declaration order.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    pub fn node_status(&self, name: &str) -> Option<NodeStatus> {
        let i = self.node_index(name)?;
        Some(if i == self.me {
            self.own_status
        } else {
            self.nodes[i].status
        })
    }

    /// (link name, up) for each medium, as seen from `name`.
    pub fn link_status(&self, name: &str) -> Option<Vec<(String, bool)>> {
        let n = &self.nodes[self.node_index(name)?];
        Some(
            self.params
                .links
                .iter()
                .cloned()
                .zip(n.links.iter().map(|l| l.up))
                .collect(),
        )
    }

    /// Rejected packets by kind since start.
    pub fn reject_counts(&self) -> &BTreeMap<String, u64> {
        &self.rejects.totals
    }

    /// Number of sequenced messages kept for retransmission.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name.eq_ignore_ascii_case(name))
    }

    /// The earliest monotonic ms at which `handle_timeout` has something to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.shutting_down {
            return None;
        }
        let mut t = self.next_status_at;
        let mut consider = |x: u64| t = t.min(x);
        if let Some((_, at)) = self.reqnodes {
            consider(at);
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if i != self.me && n.status != NodeStatus::Dead {
                consider(self.dead_deadline(n));
                for &at in n.window.missing.values() {
                    consider(at);
                }
            }
            let dead_ms = self.dead_time_of(n);
            for l in n.links.iter().filter(|_| i != self.me) {
                if let (true, Some(h)) = (l.up, l.last_heard) {
                    consider(h + dead_ms + 1);
                }
            }
        }
        Some(t)
    }

    fn dead_time_of(&self, n: &Node) -> u64 {
        if !self.comm_up {
            self.params.initdead_ms
        } else if n.ping {
            self.params.deadping_ms
        } else {
            n.dead_ms.unwrap_or(self.params.deadtime_ms)
        }
    }

    /// When a live peer is to be declared dead, absent news.
    fn dead_deadline(&self, n: &Node) -> u64 {
        let since = n.last_status_at.unwrap_or(self.started_at);
        // A node we were told is alive only by non-status traffic still counts from our start.
        since + self.dead_time_of(n) + 1
    }

    // ----- inputs --------------------------------------------------------------------------

    pub fn set_load_average(&mut self, ld: &str) {
        let line = ld.trim();
        if !line.is_empty() {
            self.load_average = line.to_string();
        }
    }

    /// New configuration (SIGHUP). Node state of nodes still configured is kept.
    pub fn reconfigure(&mut self, now: Now, params: Params, auth: Authenticator) {
        let links = params.links.len();
        let mut nodes = Vec::new();
        for name in &params.nodes {
            let mut n = match self.node_index(name) {
                Some(i) => self.nodes[i].clone(),
                None => Node::new(name, links, self.rng.next() % 10),
            };
            n.links.resize(links, LinkState::default());
            nodes.push(n);
        }
        for name in &params.ping_nodes {
            if let Some(i) = self.node_index(name).filter(|&i| self.nodes[i].ping) {
                let mut n = self.nodes[i].clone();
                n.links.resize(links, LinkState::default());
                nodes.push(n);
            }
        }
        add_ping_nodes(&mut nodes, &params);
        self.nodes = nodes;
        self.me = self
            .nodes
            .iter()
            .position(|n| n.name == params.my_name)
            .unwrap_or(0);
        self.params = params;
        self.auth = auth;
        self.next_status_at = self
            .next_status_at
            .min(now.mono_ms + self.params.keepalive_ms);
        self.check_comm_up(now);
    }

    /// Our own side of a medium works (or stopped working). 3.0.6 learns this by hearing its
    /// own packets; we do not send to ourselves, so the runtime says it when a medium opens.
    pub fn set_own_link(&mut self, now: Now, link: usize, up: bool) {
        let me = self.me;
        if link >= self.nodes[me].links.len() || self.nodes[me].links[link].up == up {
            return;
        }
        if up {
            self.refresh_link(now, me, link);
        } else {
            self.nodes[me].links[link].up = false;
            let text = format!(
                "Link {}:{} dead.",
                self.nodes[me].name, self.params.links[link]
            );
            self.log(LogLevel::Info, text);
        }
    }

    /// Graceful stop: tell the peers (`shutdone`) and finish. Resource release, when there
    /// is any, happens before this is called.
    pub fn shutdown(&mut self, now: Now) {
        if self.shutting_down {
            return;
        }
        let mut m = Msg::new();
        m.add_str("t", "shutdone").add_str("st", "dead");
        self.send(now, m, true);
        self.shutting_down = true;
        self.actions.push_back(Action::ShutdownComplete);
    }

    /// Send a message for an upper layer (sequenced, signed, kept for retransmission).
    pub fn send_message(&mut self, now: Now, msg: Msg) {
        self.send(now, msg, true);
    }

    pub fn handle_timeout(&mut self, now: Now) {
        if self.shutting_down {
            return;
        }
        let t = now.mono_ms;
        if t >= self.next_status_at {
            self.send_status(now);
        }
        // Deaths.
        for i in 0..self.nodes.len() {
            if i != self.me
                && self.nodes[i].status != NodeStatus::Dead
                && t >= self.dead_deadline(&self.nodes[i])
            {
                self.declare_dead(now, i);
            }
        }
        // Links. Our own are up while their medium works (`set_own_link`).
        let me = self.me;
        for i in (0..self.nodes.len()).filter(|&i| i != me) {
            let dead_ms = self.dead_time_of(&self.nodes[i]);
            for l in 0..self.nodes[i].links.len() {
                let link = &self.nodes[i].links[l];
                if link.up && link.last_heard.is_some_and(|h| t > h + dead_ms) {
                    self.nodes[i].links[l].up = false;
                    let text =
                        format!("Link {}:{} dead.", self.nodes[i].name, self.params.links[l]);
                    self.log(LogLevel::Info, text);
                }
            }
        }
        // Retransmission requests.
        let max_delay = self.params.max_rexmit_delay_ms;
        for i in 0..self.nodes.len() {
            if i == self.me || self.nodes[i].status == NodeStatus::Dead {
                continue;
            }
            let due: Vec<u64> = self.nodes[i]
                .window
                .missing
                .iter()
                .filter(|(_, &at)| at <= t)
                .map(|(&s, _)| s)
                .collect();
            for s in due {
                self.nodes[i].window.missing.insert(s, t + max_delay);
                let mut m = Msg::new();
                m.add_str("t", "NS_rexmit")
                    .add_str("dest", &self.nodes[i].name.clone())
                    .add_str("firstseq", &s.to_string())
                    .add_str("lastseq", &s.to_string());
                self.send(now, m, false);
            }
        }
        if let Some((i, at)) = self.reqnodes {
            if t >= at {
                self.send_reqnodes(now, i);
            }
        }
        self.check_comm_up(now);
    }

    /// One datagram from medium `link`.
    pub fn handle_datagram(&mut self, now: Now, link: usize, packet: &[u8]) {
        if self.shutting_down {
            return;
        }
        let msg = match self.auth.verify(packet) {
            Ok(m) => m,
            Err(reason) => {
                let kind = format!("{reason:?}")
                    .split(['(', ' ', '{'])
                    .next()
                    .unwrap_or("")
                    .to_string();
                self.reject(now, &kind, LogLevel::Error, reason.to_string());
                return;
            }
        };
        self.handle_message(now, link, msg);
    }

    fn handle_message(&mut self, now: Now, link: usize, msg: Msg) {
        let (Some(t), Some(src)) = (msg.get_str("t"), msg.get_str("src")) else {
            self.reject(
                now,
                "missing",
                LogLevel::Error,
                "process_clustermsg: missing from/ts/type".into(),
            );
            return;
        };
        let t = t.to_string();
        let src = src.to_ascii_lowercase();
        if msg.get_str("ts").and_then(parse_hex).unwrap_or(0) == 0 {
            self.reject(
                now,
                "bad ts",
                LogLevel::Debug,
                format!("message from {src} without a valid ts dropped"),
            );
            return;
        }
        let Some(i) = self.find_node(now, &src, msg.get_bin("srcuuid")) else {
            self.reject(
                now,
                &format!("bad node {src}"),
                LogLevel::Error,
                format!("process_status_message: bad node [{src}] in message"),
            );
            return;
        };
        if link < self.params.links.len() {
            self.refresh_link(now, i, link);
        }
        if i == self.me {
            // Our own message looped back (ucast to ourselves, bcast): it only proves the link.
            return;
        }
        if t.starts_with("NS_") {
            if self.addressed_to_us(&msg) {
                self.nodes[i].heard = true;
                self.handle_ns(now, i, &t, &msg);
                self.check_comm_up(now);
            }
            return;
        }
        let Some(s) = msg.get_str("seq").and_then(parse_hex).filter(|&s| s > 0) else {
            self.reject(
                now,
                "bad seq",
                LogLevel::Error,
                format!("should_drop_message: bad or missing sequence number from {src}"),
            );
            return;
        };
        let g = match msg.get_str("hg") {
            None => 0,
            Some(h) => match parse_hex(h) {
                Some(g) => g,
                None => {
                    self.reject(
                        now,
                        "bad hg",
                        LogLevel::Error,
                        format!("bad generation [{h}] from {src}"),
                    );
                    return;
                }
            },
        };
        if !self.generation_ok(now, i, &t, g, s) {
            return;
        }
        // Sequence numbers start again with each generation. A restarted node's first messages
        // may come before the status that makes the restart known; they start the new window,
        // so a request among them that was lost is still asked for again.
        {
            let n = &mut self.nodes[i];
            match n.window_generation {
                Some(w) if g < w => return,
                Some(w) if g == w => {}
                _ => {
                    n.window.reset();
                    n.window_generation = Some(g);
                }
            }
        }
        let max_delay = self.params.max_rexmit_delay_ms;
        let lo = if max_delay < 100 { 0 } else { 50 };
        let t_ms = now.mono_ms;
        let rng = &mut self.rng;
        let verdict = self.nodes[i]
            .window
            .accept(s, || t_ms + rng.range(lo, max_delay));
        match verdict {
            SeqVerdict::Duplicate | SeqVerdict::Old => return,
            SeqVerdict::Gap {
                first_missing,
                last_missing,
            } => {
                let n = last_missing - first_missing + 1;
                let text = format!("{n} lost packet(s) for [{src}] [{}:{s}]", first_missing - 1);
                self.log(LogLevel::Warn, text);
            }
            SeqVerdict::Filled { none_left: true } => {
                self.log(LogLevel::Info, format!("No pkts missing from {src}!"))
            }
            SeqVerdict::Reset => {
                self.log(LogLevel::Warn, format!("lost a lot of packets! from {src}"))
            }
            SeqVerdict::InOrder | SeqVerdict::Filled { none_left: false } => {}
        }
        self.nodes[i].heard = true;
        self.maybe_ack(now, i);
        if !self.addressed_to_us(&msg) {
            // Every node looks at a grant, whoever it is for (3.0.6 runs its harc hook on all).
            if t == "ip-request-resp" {
                let name = self.nodes[i].name.clone();
                self.actions.push_back(Action::Deliver(name, msg));
            }
            self.check_comm_up(now);
            return;
        }
        match t.as_str() {
            "status" => self.handle_status(now, i, s, &msg),
            "reqnodes" => self.send_repnodes(now, i),
            "repnodes" => {
                if matches!(self.reqnodes, Some((w, _)) if w == i) {
                    self.reqnodes = None;
                    self.comm_now_up(now);
                }
            }
            "shutdone" => {
                let name = self.nodes[i].name.clone();
                self.log(
                    LogLevel::Info,
                    format!("Received shutdown notice from '{name}'."),
                );
                self.actions.push_back(Action::Deliver(name, msg));
            }
            _ => {
                let name = self.nodes[i].name.clone();
                self.actions.push_back(Action::Deliver(name, msg));
            }
        }
        self.check_comm_up(now);
    }

    /// Node lookup: by UUID first, then by name (case-insensitive).
    fn find_node(&mut self, now: Now, src: &str, uuid: Option<&[u8]>) -> Option<usize> {
        let uuid: Option<[u8; 16]> = uuid
            .and_then(|u| u.try_into().ok())
            .filter(|u| u != &[0u8; 16]);
        if let Some(u) = uuid {
            if let Some(i) = self.nodes.iter().position(|n| n.uuid == Some(u)) {
                if self.nodes[i].name == src {
                    return Some(i);
                }
            }
        }
        let i = self.node_index(src)?;
        if let Some(u) = uuid {
            if i == self.me && u != self.id.uuid {
                self.reject(
                    now,
                    "own name",
                    LogLevel::Error,
                    format!(
                        "message claiming to be from this node [{src}] with another uuid ignored"
                    ),
                );
                return None;
            }
            if self.nodes[i].uuid != Some(u) {
                if self.nodes[i].uuid.is_some() {
                    let text = format!("node {src} changed its uuid to {}", format_uuid(&u));
                    self.log(LogLevel::Info, text);
                }
                self.nodes[i].uuid = Some(u);
            }
        }
        Some(i)
    }

    fn addressed_to_us(&self, msg: &Msg) -> bool {
        if let Some(u) = msg.get_bin("destuuid") {
            if u.len() == 16 && u.iter().any(|&b| b != 0) {
                return u == self.id.uuid;
            }
        }
        match msg.get_str("dest") {
            None => true,
            Some(d) => d.eq_ignore_ascii_case(&self.id.name),
        }
    }

    /// Steps 1 and 2 of the receive rule: generations, restarts, healed partitions.
    fn generation_ok(&mut self, now: Now, i: usize, t: &str, g: u64, s: u64) -> bool {
        let name = self.nodes[i].name.clone();
        let known = self.nodes[i].generation;
        if let Some(cur) = known {
            if g < cur {
                let text = format!("should_drop_message: attempted replay attack [{name}]? [gen = {g}, curgen = {cur}]");
                self.reject(now, &format!("replay {name}"), LogLevel::Error, text);
                return false;
            }
        }
        if t != "status" {
            return true;
        }
        match known {
            Some(cur) if g > cur => {
                self.log(LogLevel::Info, format!("Heartbeat restart on node {name}"));
                self.restarted(i, g);
                self.actions.push_back(Action::NodeRestarted(name));
            }
            None => self.restarted(i, g),
            Some(cur) if g == cur && g > 0 && self.nodes[i].status == NodeStatus::Dead => {
                if s <= self.nodes[i].last_status_seq {
                    return false;
                }
                self.log(
                    LogLevel::Crit,
                    format!("Cluster node {name} returning after partition."),
                );
                self.log(LogLevel::Info, "For information on cluster partitions, See URL: http://linux-ha.org/wiki/Split_Brain".into());
                self.log(LogLevel::Warn, "Deadtime value may be too small.".into());
                self.log(
                    LogLevel::Info,
                    "See FAQ for information on tuning deadtime.".into(),
                );
                self.log(
                    LogLevel::Info,
                    "URL: http://linux-ha.org/wiki/FAQ#Heavy_Load".into(),
                );
                self.nodes[i].window.reset();
                self.actions.push_back(Action::NodeReturned(name.clone()));
            }
            _ => {}
        }
        true
    }

    fn restarted(&mut self, i: usize, g: u64) {
        let n = &mut self.nodes[i];
        n.generation = Some(g);
        // The window is reset when the first message of the new generation arrives (see
        // `handle_message`), which may have come before this status: what it holds is kept.
        n.last_status_seq = 0;
        n.last_status_ts = 0;
        n.acked_ours = 0;
        n.flow_control = true;
    }

    fn handle_status(&mut self, now: Now, i: usize, s: u64, msg: &Msg) {
        let name = self.nodes[i].name.clone();
        let Some(st) = msg.get_str("st").and_then(NodeStatus::parse) else {
            self.log(
                LogLevel::Error,
                format!("status update without st field from {name}"),
            );
            return;
        };
        let ts = msg.get_str("ts").and_then(parse_hex).unwrap_or(0);
        {
            // Older than the last status taken (3.0.6 compares the second-resolution `ts` too;
            // a late, reordered status within the same second would roll the status back).
            let n = &self.nodes[i];
            if n.last_status_at.is_some() && s < n.last_status_seq {
                return;
            }
        }
        let t = now.mono_ms;
        if let Some(prev) = self.nodes[i].last_status_at {
            let interval = t.saturating_sub(prev);
            if self.nodes[i].status != NodeStatus::Dead {
                // The dead time the timer uses too: the peer's advertised `dt` (deadtime plus
                // its start-up allowance in its first seconds).
                if interval > self.dead_time_of(&self.nodes[i]) {
                    self.log(
                        LogLevel::Crit,
                        format!("Late heartbeat: Node {name}: interval {interval} ms (> deadtime)"),
                    );
                    // It is talking: its sequence state (gaps to ask for again) goes on.
                    let window = self.nodes[i].window.clone();
                    self.declare_dead(now, i);
                    self.nodes[i].window = window;
                    self.nodes[i].heard = true;
                    // Dead and alive in one message (we, or it, were frozen): it is back.
                    self.actions.push_back(Action::NodeReturned(name.clone()));
                } else if interval > self.params.warntime_ms {
                    self.log(
                        LogLevel::Warn,
                        format!("Late heartbeat: Node {name}: interval {interval} ms"),
                    );
                }
            }
        }
        let n = &mut self.nodes[i];
        n.last_status_at = Some(t);
        n.last_status_seq = s;
        n.last_status_ts = ts;
        n.heard = true;
        if let Some(dt) = msg.get_str("dt").and_then(parse_hex) {
            n.dead_ms = Some(dt);
        }
        if msg.get_str("protocol").is_none() && n.flow_control {
            n.flow_control = false;
            self.log(
                LogLevel::Info,
                format!("flow control disabled due to different version heartbeat on node {name}"),
            );
        }
        if self.nodes[i].status != st {
            self.nodes[i].status = st;
            self.log(
                LogLevel::Info,
                format!("Status update for node {name}: status {}", st.as_str()),
            );
            self.actions.push_back(Action::NodeStatus(name, st));
        }
    }

    fn handle_ns(&mut self, now: Now, i: usize, t: &str, msg: &Msg) {
        let name = self.nodes[i].name.clone();
        match t {
            "NS_ackmsg" => {
                if let Some(a) = msg.get_str("ackseq").and_then(parse_hex) {
                    let n = &mut self.nodes[i];
                    n.acked_ours = n.acked_ours.max(a.min(self.seq));
                    self.trim_history();
                }
            }
            "NS_rexmit" => {
                let first = msg.get_str("firstseq").and_then(|v| v.parse::<u64>().ok());
                let last = msg.get_str("lastseq").and_then(|v| v.parse::<u64>().ok());
                let (Some(first), Some(last)) = (first, last) else {
                    self.log(
                        LogLevel::Error,
                        format!("bad retransmission request from {name}"),
                    );
                    return;
                };
                let last = last.min(first.saturating_add(MAX_RESEND_PER_REQUEST - 1));
                for s in first..=last {
                    self.answer_rexmit(now, i, s);
                }
            }
            "NS_st" if self.nodes[i].ping && msg.get_str("st") == Some("ping") => {
                self.ping_heard(now, i);
            }
            "NS_nak_rexmit" => {
                if let Some(s) = msg.get_str("firstseq").and_then(parse_hex) {
                    if self.nodes[i].window.give_up(s) {
                        self.log(
                            LogLevel::Error,
                            format!("Irretrievably lost packet: node {name}, seq {s}"),
                        );
                        self.maybe_ack(now, i);
                    }
                }
            }
            _ => self.log(LogLevel::Debug, format!("ignoring {t} from {name}")),
        }
    }

    /// A ping node echoed one of our `NS_st` messages: it is alive.
    fn ping_heard(&mut self, now: Now, i: usize) {
        let n = &mut self.nodes[i];
        n.last_status_at = Some(now.mono_ms);
        if n.status != NodeStatus::Ping {
            n.status = NodeStatus::Ping;
            let name = n.name.clone();
            self.log(
                LogLevel::Info,
                format!("Status update for node {name}: status ping"),
            );
            self.actions
                .push_back(Action::NodeStatus(name, NodeStatus::Ping));
        }
    }

    fn answer_rexmit(&mut self, now: Now, i: usize, s: u64) {
        if s <= self.nodes[i].acked_ours {
            return;
        }
        let min_interval = self.params.max_rexmit_delay_ms.saturating_sub(10);
        let name = self.nodes[i].name.clone();
        let reason = match self.history.lookup(s, self.seq, now.mono_ms, min_interval) {
            Lookup::Resend(bytes) => {
                self.actions.push_back(Action::Send(bytes.to_vec()));
                return;
            }
            Lookup::RecentlySent => return,
            Lookup::TooHigh => {
                self.log(
                    LogLevel::Warn,
                    format!("Retransmission request from {name} for seq {s} not yet sent"),
                );
                return;
            }
            Lookup::TooLow => "seqno too low",
            Lookup::NotFound => "seqno not found",
        };
        self.log(
            LogLevel::Error,
            format!("Cannot rexmit pkt {s} for {name}: {reason}"),
        );
        let mut m = Msg::new();
        m.add_str("t", "NS_nak_rexmit")
            .add_str("firstseq", &hex(s))
            .add_str("dest", &name)
            .add_str("info", reason);
        self.send(now, m, false);
    }

    /// Acknowledge in-order progress every tenth message (by the peer's trigger digit).
    fn maybe_ack(&mut self, now: Now, i: usize) {
        let n = &self.nodes[i];
        let Some(c) = n.window.contiguous() else {
            return;
        };
        if c <= n.window.acked || !n.flow_control {
            return;
        }
        let passes_trigger =
            (n.window.acked + 1..=c).any(|x| x % 10 == n.ack_trigger) || c - n.window.acked >= 10;
        if !passes_trigger {
            return;
        }
        self.nodes[i].window.acked = c;
        let dest = self.nodes[i].name.clone();
        let mut m = Msg::new();
        m.add_str("t", "NS_ackmsg")
            .add_str("dest", &dest)
            .add_str("ackseq", &hex(c));
        self.send(now, m, false);
    }

    fn trim_history(&mut self) {
        let live = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != self.me && n.status != NodeStatus::Dead && n.flow_control);
        if let Some(low) = live.map(|(_, n)| n.acked_ours).min() {
            self.history.trim_through(low);
        }
    }

    fn refresh_link(&mut self, now: Now, i: usize, link: usize) {
        let l = &mut self.nodes[i].links[link];
        l.last_heard = Some(now.mono_ms);
        if !l.up {
            l.up = true;
            let text = format!(
                "Link {}:{} up.",
                self.nodes[i].name, self.params.links[link]
            );
            self.log(LogLevel::Info, text);
        }
    }

    fn declare_dead(&mut self, now: Now, i: usize) {
        let name = self.nodes[i].name.clone();
        // 3.0.6's wording first (operators grep it), then how long the node was silent.
        let dead_ms = self.dead_time_of(&self.nodes[i]);
        let detail = match self.nodes[i].last_status_at {
            Some(t) => format!(
                "last heartbeat {} ms ago, dead time {dead_ms} ms",
                now.mono_ms.saturating_sub(t)
            ),
            None => format!("never heard, dead time {dead_ms} ms"),
        };
        self.log(LogLevel::Warn, format!("node {name}: is dead ({detail})"));
        let n = &mut self.nodes[i];
        n.status = NodeStatus::Dead;
        n.heard = false;
        n.window.reset();
        self.actions.push_back(Action::NodeDead(name.clone()));
        if matches!(self.reqnodes, Some((w, _)) if w == i) {
            self.reqnodes = None;
        }
        self.trim_history();
        // Links of the dead node that are silent too.
        let t = now.mono_ms;
        let dead_ms = self.dead_time_of(&self.nodes[i]);
        for l in 0..self.nodes[i].links.len() {
            let link = &self.nodes[i].links[l];
            if link.up && link.last_heard.is_none_or(|h| t + 1 >= h + dead_ms) {
                self.nodes[i].links[l].up = false;
                let text = format!("Link {}:{} dead.", name, self.params.links[l]);
                self.log(LogLevel::Info, text);
            }
        }
        self.check_comm_up(now);
    }

    fn check_comm_up(&mut self, now: Now) {
        if self.comm_up || self.reqnodes.is_some() || self.shutting_down {
            return;
        }
        let all_known = self
            .nodes
            .iter()
            .enumerate()
            .all(|(i, n)| i == self.me || n.heard || n.status == NodeStatus::Dead);
        if !all_known {
            return;
        }
        let first_live = (0..self.nodes.len()).find(|&i| {
            i != self.me && !self.nodes[i].ping && self.nodes[i].status != NodeStatus::Dead
        });
        match first_live {
            Some(i) if self.nodes[i].flow_control => self.send_reqnodes(now, i),
            _ => self.comm_now_up(now),
        }
    }

    fn comm_now_up(&mut self, now: Now) {
        if self.comm_up {
            return;
        }
        self.comm_up = true;
        self.log(
            LogLevel::Info,
            "Comm_now_up(): updating status to active".into(),
        );
        self.set_own_status(now, NodeStatus::Active);
        self.actions.push_back(Action::CommUp);
    }

    fn set_own_status(&mut self, now: Now, st: NodeStatus) {
        if self.own_status == st {
            return;
        }
        self.own_status = st;
        self.nodes[self.me].status = st;
        self.log(
            LogLevel::Info,
            format!("Local status now set to: '{}'", st.as_str()),
        );
        self.send_status(now);
    }

    fn send_reqnodes(&mut self, now: Now, i: usize) {
        let mut m = Msg::new();
        m.add_str("t", "reqnodes")
            .add_str("dest", &self.nodes[i].name.clone());
        self.send(now, m, true);
        self.reqnodes = Some((i, now.mono_ms + REQNODES_INTERVAL_MS));
    }

    fn send_repnodes(&mut self, now: Now, i: usize) {
        let list: String = self.nodes.iter().map(|n| format!("{} ", n.name)).collect();
        let mut m = Msg::new();
        m.add_str("dest", &self.nodes[i].name.clone())
            .add_str("t", "repnodes")
            .add_str("nodelist", &list)
            .add_str("delnodelist", " ");
        self.send(now, m, true);
    }

    fn send_status(&mut self, now: Now) {
        let mut dt = self.params.deadtime_ms;
        if now.mono_ms < self.started_at + STARTUP_DT_WINDOW_MS {
            dt += STARTUP_DT_EXTRA_MS;
        }
        let mut m = Msg::new();
        m.add_str("t", "status")
            .add_str("st", self.own_status.as_str())
            .add_str("dt", &hex(dt))
            .add_str("protocol", "1");
        self.send(now, m, true);
        self.next_status_at = now.mono_ms + self.params.keepalive_ms.max(1);
    }

    /// Add the common fields, sign, keep sequenced messages in the history, and send.
    fn send(&mut self, now: Now, mut m: Msg, sequenced: bool) {
        if let Some(dest) = m.get_str("dest").map(str::to_string) {
            if let Some(u) = self.node_index(&dest).and_then(|i| self.nodes[i].uuid) {
                m.set("destuuid", crate::wire::Value::Binary(u.to_vec()));
            }
        }
        m.set_str("src", &self.id.name.clone());
        m.set("srcuuid", crate::wire::Value::Binary(self.id.uuid.to_vec()));
        if sequenced {
            self.seq += 1;
            m.set_str("seq", &hex(self.seq));
        }
        m.set_str("hg", &hex(self.id.generation));
        m.set_str("ts", &hex(now.unix_secs));
        if sequenced {
            m.set_str("ld", &self.load_average.clone());
        }
        let ttl = self.params.hopfudge as usize + self.nodes.len();
        m.set_str("ttl", &ttl.to_string());
        if self.params.inner_auth {
            self.auth.add_inner_auth(&mut m);
        }
        let bytes = self.auth.encode_udp(&m);
        if sequenced {
            self.history.push(self.seq, bytes.clone(), now.mono_ms);
            self.nodes[self.me].window.last_seq = Some(self.seq);
            // A peer we declared dead that talks to us again (a restart whose first status has
            // not arrived yet) may ask for what we send now.
            if !self.nodes.iter().enumerate().any(|(i, n)| {
                i != self.me && (n.status != NodeStatus::Dead || n.heard) && n.flow_control
            }) {
                // Nobody to wait for: keep nothing beyond what retransmission could still need.
                self.history.trim_through(self.seq.saturating_sub(1));
            }
        }
        self.actions.push_back(Action::Send(bytes));
    }

    fn log(&mut self, level: LogLevel, text: String) {
        self.actions.push_back(Action::Log(level, text));
    }

    /// Count a rejected packet and log it, at most one line per kind per interval.
    fn reject(&mut self, now: Now, kind: &str, level: LogLevel, text: String) {
        *self.rejects.totals.entry(kind.to_string()).or_default() += 1;
        let t = now.mono_ms;
        let entry = self.rejects.kinds.entry(kind.to_string()).or_insert((0, 0));
        if entry.0 != 0 && t < entry.0 + REJECT_LOG_INTERVAL_MS {
            entry.1 += 1;
            return;
        }
        let suppressed = entry.1;
        *entry = (t.max(1), 0);
        let line = if suppressed > 0 {
            format!(
                "{text} ({suppressed} similar packets dropped without a log line before this one)"
            )
        } else {
            text
        };
        self.log(level, line);
    }
}

/// Ping nodes join the node table after the cluster nodes (a name that is also a `node` is not
/// added twice).
fn add_ping_nodes(nodes: &mut Vec<Node>, params: &Params) {
    for name in &params.ping_nodes {
        if nodes.iter().any(|n| &n.name == name) {
            continue;
        }
        let mut n = Node::new(name, params.links.len(), 0);
        n.ping = true;
        n.flow_control = false;
        nodes.push(n);
    }
}

pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
