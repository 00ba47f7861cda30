//! Membership: our own status, every node's status and links, the receive rule with
//! retransmission and acknowledgements, deadtime/warntime/initdead, and comm-up.
//! Behaviour and log wording follow Heartbeat 3.0.6 (resources.md 1, wire-protocol.md 7-11).

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use super::history::{Lookup, SendHistory};
use super::sequence::{SeqVerdict, SeqWindow};
use super::testopts::TestOpts;
use super::{LogLevel, Now};
use crate::config::{HaCf, MsgFmt};
use crate::wire::messages::{
    hex, parse_hex, some, AckMsg, Message, NakRexmit, RepNodes, ReqNodes, Rexmit, Shutdone, Status,
    StatusRef,
};
use crate::wire::{Authenticator, Msg, MsgView, NetstringKeyRule, ReadFields, Reject};

/// For the first few seconds 3.0.6 advertises deadtime plus this allowance in `dt`.
const STARTUP_DT_EXTRA_MS: u64 = 2000;
const STARTUP_DT_WINDOW_MS: u64 = 5000;
/// How often `reqnodes` is repeated while waiting for `repnodes`.
const REQNODES_INTERVAL_MS: u64 = 1000;
/// At most this many messages are re-sent for one request.
const MAX_RESEND_PER_REQUEST: u64 = 50;
/// An `NS_*` message stamped this many seconds before the sender's last status is a replay.
const NS_TS_SLACK_S: u64 = 5;

/// A peer silent for this many keepalives is late: it has surely sent something since, and
/// we ask for it again (the first keepalive is its timer's, the second a margin for its
/// scheduling, so a 3.0.6 peer is never asked for a number it has not sent yet, which it
/// would log).
const LATE_AFTER_KEEPALIVES: u64 = 2;
/// At most this many messages are asked for in one request to a late peer: enough for
/// several chances before deadtime, little for a peer alive behind a one-way partition.
const LATE_REQUEST_MAX: u64 = 3;

/// One log line per rejection kind per this many ms; the rest are counted.
const REJECT_LOG_INTERVAL_MS: u64 = 10_000;
/// How long heartbeats keep their copies after a datagram was seen lost: long enough that
/// on a lossy link (where a loss with both copies gone is rarer still) they stay on.
const COPIES_AFTER_LOSS_MS: u64 = 10 * 60 * 1000;

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

/// What a transmitted message is (media and the watchdog go by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmitKind {
    /// Our `status` message: the heartbeat (ping media send an echo request for it, the
    /// watchdog is tickled).
    Heartbeat,
    /// Any other sequenced message (kept for retransmission).
    Message,
    /// A link-control message (`NS_ackmsg`, `NS_rexmit`, `NS_nak_rexmit`): unsequenced.
    Control,
    /// A sequenced message sent again on a peer's request.
    Retransmission,
    /// Our status sent again at once, byte for byte, when every live peer is one of ours
    /// (`hbcopies`): one lost datagram no longer costs a heartbeat. Not a heartbeat of its
    /// own for ping media and the watchdog.
    HeartbeatCopy,
}

/// A message to send on every medium, complete (envelope, and the inner `auth` field with
/// `msgfmt classic`); each medium encodes it in its own form (`Membership::encode_udp`,
/// `encode_classic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub msg: Msg,
    pub kind: TransmitKind,
}

impl Transmit {
    /// A status message, first sent or sent again: ping media send an echo request for it,
    /// and it tickles the watchdog.
    pub fn is_status(&self) -> bool {
        self.kind == TransmitKind::Heartbeat
            || (self.kind == TransmitKind::Retransmission
                && matches!(Message::parse(&self.msg), Some(Message::Status(_))))
    }
}

/// Something the runtime (or a simulation) must carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this message on every medium.
    Transmit(Transmit),
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
    /// Medium `link` (named `ifname`) to `node` came up or went dead (our own node's links
    /// too: up while the medium works).
    LinkStatus {
        node: String,
        link: usize,
        ifname: String,
        up: bool,
    },
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
    /// Monotonic ms of its last proof of life: any sequenced message that passed the
    /// generation and sequence checks (a status, a retransmission, a copy, a resource
    /// message). `NS_*` messages do not count: they carry no sequence number, so a replayed
    /// capture would keep a dead node alive.
    alive_at: Option<u64>,
    /// When we last asked this late peer for what it sent since.
    late_request_at: Option<u64>,
    /// Its status says `hbcopies`: one of ours, which takes heartbeat copies.
    takes_copies: bool,
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
    /// The highest `ackseq` we sent it for its current generation. The window forgets it at
    /// a death, the sender does not: it ignores requests at or below it, so we never ask
    /// for those numbers.
    acked_this_generation: u64,
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
            alive_at: None,
            late_request_at: None,
            takes_copies: false,
            last_status_seq: 0,
            last_status_ts: 0,
            dead_ms: None,
            generation: None,
            window: SeqWindow::default(),
            window_generation: None,
            acked_ours: 0,
            acked_this_generation: 0,
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

/// What [`Membership::node_timing`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTiming {
    pub generation: Option<u64>,
    pub last_status_at: Option<u64>,
    pub link_last_heard: Vec<Option<u64>>,
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
    history: SendHistory<Msg>,
    /// When our last status went out (a follower sends its next one early, on its leader's).
    status_sent_at: u64,
    /// When we last saw a datagram lost, either way: a gap in a peer's numbers, a peer late
    /// enough to be asked, or a peer asking us. Heartbeats get copies for a while after.
    loss_seen_at: Option<u64>,
    /// No peer is declared dead before this: we woke up more than a dead time late (frozen,
    /// or starved), and what the peers sent meanwhile waits unread in the sockets.
    death_grace_until: Option<u64>,
    load_average: String,
    rng: Rng,
    rejects: RejectLog,
    /// Status messages from peers taken in (authenticated, in sequence, for us), per medium.
    heartbeats_heard: Vec<u64>,
    shutting_down: bool,
    /// `OnlyForTesting` switches (CTS's break-communication), if the file exists.
    test_opts: Option<TestOpts>,
    actions: VecDeque<Action>,
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
            status_sent_at: now.mono_ms,
            loss_seen_at: None,
            death_grace_until: None,
            load_average: String::from("0.00 0.00 0.00 1/1 1"),
            rng,
            rejects: RejectLog::default(),
            heartbeats_heard: Vec::new(),
            shutting_down: false,
            test_opts: None,
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

    /// For the operator's overview: the highest generation heard from `name` (ours for this
    /// node), the monotonic ms of its last accepted status message, and per medium the ms
    /// it was last heard on. Read-only.
    pub fn node_timing(&self, name: &str) -> Option<NodeTiming> {
        let i = self.node_index(name)?;
        let n = &self.nodes[i];
        Some(NodeTiming {
            generation: if i == self.me {
                Some(self.id.generation)
            } else {
                n.generation
            },
            last_status_at: n.last_status_at,
            link_last_heard: n.links.iter().map(|l| l.last_heard).collect(),
        })
    }

    /// Heartbeats (status messages) of peers taken in on medium `link` since start: those that
    /// passed authentication and the sequence checks, as `hb_status --metrics` counts them.
    pub fn heartbeats_heard(&self, link: usize) -> u64 {
        self.heartbeats_heard.get(link).copied().unwrap_or(0)
    }

    /// The last proof of life of live peer `name` (monotonic ms; the instant its dead time
    /// counts from), without allocating: the resource side asks it on every wake-up. None for
    /// this node, ping nodes, the dead and the never heard.
    /// Whether the node's last status said `hbcopies`: it runs this implementation, and so
    /// takes what 3.0.6 would not (heartbeat copies, a repeated standby answer).
    pub fn is_one_of_ours(&self, name: &str) -> bool {
        self.node_index(name)
            .is_some_and(|i| i != self.me && self.nodes[i].takes_copies)
    }

    pub fn peer_alive_at(&self, name: &str) -> Option<u64> {
        let i = self.node_index(name)?;
        let n = &self.nodes[i];
        if i == self.me || n.ping || n.status == NodeStatus::Dead {
            return None;
        }
        let s = n.last_status_at?;
        Some(n.alive_at.map_or(s, |a| a.max(s)))
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
                let grace = self.death_grace_until.unwrap_or(0);
                consider(self.dead_deadline(n).max(grace));
                if let Some(at) = self.late_request_due(n) {
                    consider(at);
                }
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

    /// When a live peer is to be declared dead, absent news: dead time after its last proof
    /// of life.
    fn dead_deadline(&self, n: &Node) -> u64 {
        // A node we were told is alive only by non-status traffic still counts from our start.
        let since = match n.last_status_at {
            None => self.started_at,
            Some(s) => n.alive_at.map_or(s, |a| a.max(s)),
        };
        since + self.dead_time_of(n) + 1
    }

    /// When to ask a late peer for what it sent since its last proof of life (None: it is
    /// not one to ask: dead, starting, a ping node, or nothing heard yet).
    fn late_request_due(&self, n: &Node) -> Option<u64> {
        if n.ping || !matches!(n.status, NodeStatus::Up | NodeStatus::Active) {
            return None;
        }
        n.window.last_seq?;
        let ka = self.params.keepalive_ms.max(1);
        let late = n.alive_at? + LATE_AFTER_KEEPALIVES * ka;
        // 3.0.6 ignores a request for one number repeated sooner than max_rexmit_delay.
        let again = n
            .late_request_at
            .map_or(0, |r| r + self.params.max_rexmit_delay_ms.max(ka));
        Some(late.max(again))
    }

    /// Whether our heartbeats get a copy: a datagram was lost, either way, in the last
    /// `COPIES_AFTER_LOSS_MS` (on a clean network a copy only doubles the cost of a
    /// heartbeat), and every live peer is one of ours (a 3.0.6 peer would drop the copy, but
    /// it must see exactly what a 3.0.6 node sends it).
    fn copies_wanted(&self, now: Now) -> bool {
        let recent_loss = self
            .loss_seen_at
            .is_some_and(|at| now.mono_ms < at + COPIES_AFTER_LOSS_MS);
        if !recent_loss {
            return false;
        }
        let mut peers = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != self.me && !n.ping && n.status != NodeStatus::Dead)
            .peekable();
        peers.peek().is_some() && peers.all(|(_, n)| n.takes_copies)
    }

    // ----- inputs --------------------------------------------------------------------------

    pub fn set_load_average(&mut self, ld: &str) {
        let line = ld.trim();
        if !line.is_empty() {
            self.load_average = line.to_string();
        }
    }

    /// New configuration (SIGHUP). Node state of nodes still configured is kept.
    /// The text of `OnlyForTesting` (`path` names it in log lines), or None when the file is
    /// absent: read by the runtime at start and on every SIGHUP, as 3.0.6 does.
    pub fn set_test_opts(&mut self, text: Option<&str>, path: &str) {
        match text {
            Some(text) => {
                let (opts, lines) = TestOpts::parse(text, path);
                for (level, line) in lines {
                    self.log(level, line);
                }
                self.test_opts = Some(opts);
            }
            None => {
                if self.test_opts.take().is_some() {
                    self.log(LogLevel::Info, "Test Code Now disabled.".into());
                }
            }
        }
    }

    /// Would the test switches drop a packet we send now? (One draw per packet.)
    pub fn test_drops_outgoing(&mut self) -> bool {
        if self.test_opts.is_none() {
            return false;
        }
        let draw = self.test_draw();
        self.test_opts
            .as_ref()
            .is_some_and(|o| o.drop_outgoing(draw))
    }

    /// A uniform draw in [0, 1) for the test switches.
    fn test_draw(&mut self) -> f64 {
        (self.rng.next() >> 11) as f64 / (1u64 << 53) as f64
    }

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
            self.link_dead(me, link);
        }
    }

    /// Graceful stop: tell the peers (`shutdone`) and finish. Resource release, when there
    /// is any, happens before this is called.
    pub fn shutdown(&mut self, now: Now) {
        if self.shutting_down {
            return;
        }
        let m = Message::from(Shutdone { st: some("dead") });
        self.send(now, m.emit(), true);
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
        let late = t.saturating_sub(self.next_status_at);
        if late > self.params.deadtime_ms {
            // Judging the peers now would declare them dead for our own silence (a standby
            // resumed after SIGSTOP took the group over for a second): read first.
            let grace = self.params.keepalive_ms.max(1);
            self.death_grace_until = Some(t + grace);
            self.log(
                LogLevel::Warn,
                format!("we ran {late} ms late (frozen or starved): no peer is judged dead for {grace} ms"),
            );
        }
        if t >= self.next_status_at {
            self.send_status(now);
        }
        // Deaths.
        let in_grace = self.death_grace_until.is_some_and(|g| t < g);
        for i in 0..self.nodes.len() {
            if i != self.me
                && !in_grace
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
                    self.link_dead(i, l);
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
                if s <= self.nodes[i].acked_this_generation {
                    // Acknowledged before a death reset the window: the sender will not
                    // send it again.
                    self.nodes[i].window.give_up(s);
                    continue;
                }
                self.nodes[i].window.missing.insert(s, t + max_delay);
                let m = Message::from(Rexmit {
                    dest: Some(self.nodes[i].name.clone()),
                    first: Some(s),
                    last: Some(s),
                });
                self.send(now, m.emit(), false);
            }
        }
        self.ask_late_peers(now);
        if let Some((i, at)) = self.reqnodes {
            if t >= at {
                self.send_reqnodes(now, i);
            }
        }
        self.check_comm_up(now);
    }

    /// A peer silent past `LATE_AFTER_KEEPALIVES` may only have lost its datagrams: ask for
    /// the numbers after the last one we have (3.0.6's `NS_rexmit`, which a 3.0.6 peer
    /// answers too). What comes back proves it alive, so loss alone rarely reaches deadtime;
    /// a dead or frozen peer answers nothing and is declared dead on time.
    fn ask_late_peers(&mut self, now: Now) {
        let t = now.mono_ms;
        let ka = self.params.keepalive_ms.max(1);
        for i in 0..self.nodes.len() {
            if i == self.me {
                continue;
            }
            let n = &self.nodes[i];
            let (Some(due), Some(last), Some(alive)) =
                (self.late_request_due(n), n.window.last_seq, n.alive_at)
            else {
                continue;
            };
            if t < due {
                continue;
            }
            // Sent since: one status per keepalive, less the margin (at least one).
            let surely_sent = (t.saturating_sub(alive) / ka)
                .saturating_sub(1)
                .clamp(1, LATE_REQUEST_MAX);
            self.nodes[i].late_request_at = Some(t);
            self.loss_seen_at = Some(t);
            let m = Message::from(Rexmit {
                dest: Some(self.nodes[i].name.clone()),
                first: Some(last + 1),
                last: Some(last + surely_sent),
            });
            self.send(now, m.emit(), false);
        }
    }

    /// One datagram from medium `link`.
    pub fn handle_datagram(&mut self, now: Now, link: usize, packet: &[u8]) {
        if self.shutting_down {
            return;
        }
        // Netstring (every UDP packet) is read in place, borrowing the packet: a heartbeat
        // allocates no field. Classic (serial) packets are decoded into a `Msg`. Both refuse
        // what `Authenticator::verify` refuses, with the same reason.
        let verified = if packet.starts_with(crate::wire::netstring::HEAD) {
            let mut view = MsgView::default();
            self.auth
                .verify_view_into(packet, NetstringKeyRule::default(), &mut view)
                .map(|_| self.handle_message(now, link, &view))
        } else {
            self.auth
                .verify(packet)
                .map(|msg| self.handle_message(now, link, &msg))
        };
        if let Err(reason) = verified {
            self.packet_refused(now, reason);
        }
    }

    fn packet_refused(&mut self, now: Now, reason: Reject) {
        self.reject(now, reason.kind(), LogLevel::Error, || reason.to_string());
    }

    /// One authenticated message, read from a packet's view or from a `Msg` (`to_msg` only
    /// for what is handed on: a heartbeat is taken in without copying a field).
    fn handle_message<M: ReadFields>(&mut self, now: Now, link: usize, msg: &M) {
        // A status's own fields are read in place by `handle_status`.
        let (Some(kind), Some(src)) = (Message::parse_shallow(msg), msg.get_text("src")) else {
            self.reject(now, "missing", LogLevel::Error, || {
                "process_clustermsg: missing from/ts/type".into()
            });
            return;
        };
        // Names compare in lower case; a name already in lower case (the usual) is not copied.
        let src = if src.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(src.to_ascii_lowercase())
        } else {
            src
        };
        if msg.get_str("ts").and_then(parse_hex).unwrap_or(0) == 0 {
            self.reject(now, "bad ts", LogLevel::Debug, || {
                format!("message from {src} without a valid ts dropped")
            });
            return;
        }
        let Some(i) = self.find_node(now, &src, msg.get_bin("srcuuid")) else {
            self.reject(
                now,
                // One kind for every unknown name: the names come from the packet, and with
                // crc anyone can send authentic ones (a kind per name grew without bound).
                "bad node",
                LogLevel::Error,
                || format!("process_status_message: bad node [{src}] in message"),
            );
            return;
        };
        if i != self.me && self.test_opts.is_some() {
            let draw = self.test_draw();
            let from = self.nodes[i].name.clone();
            if self
                .test_opts
                .as_ref()
                .is_some_and(|o| o.drop_incoming(&from, draw))
            {
                return;
            }
        }
        // A sequenced message proves its link only once it passed the generation and sequence
        // checks (or is the newest one again, a duplicate): an old capture replayed by anyone
        // must not keep a link up. 3.0.6 does the same (wire-protocol 9.3, links 7).
        let link = (link < self.params.links.len()).then_some(link);
        if i != self.me && kind.is_link_control() && self.stale_ns(now, i, kind.type_name(), msg) {
            return;
        }
        if i == self.me || kind.is_link_control() {
            if let Some(l) = link {
                self.refresh_link(now, i, l);
            }
        }
        if i == self.me {
            // Our own message looped back (ucast to ourselves, bcast): it only proves the link.
            return;
        }
        if kind.is_link_control() {
            if self.addressed_to_us(msg) {
                self.nodes[i].heard = true;
                self.handle_ns(now, i, &kind);
                self.check_comm_up(now);
            }
            return;
        }
        let Some(s) = msg.get_str("seq").and_then(parse_hex).filter(|&s| s > 0) else {
            self.reject(now, "bad seq", LogLevel::Error, || {
                format!("should_drop_message: bad or missing sequence number from {src}")
            });
            return;
        };
        let g = match msg.get_str("hg") {
            None => 0,
            Some(h) => match parse_hex(h) {
                Some(g) => g,
                None => {
                    self.reject(now, "bad hg", LogLevel::Error, || {
                        format!("bad generation [{h}] from {src}")
                    });
                    return;
                }
            },
        };
        let is_status = matches!(kind, Message::Status(_));
        if !self.generation_ok(now, i, is_status, g, s) {
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
                    n.acked_this_generation = 0;
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
        if verdict != SeqVerdict::Old {
            if let Some(l) = link {
                self.refresh_link(now, i, l);
            }
        }
        // Every message that passed the checks proves the sender alive now (a copy or
        // retransmission of a lost heartbeat included); the status handler still sees the
        // previous proof.
        let prev_alive = match verdict {
            SeqVerdict::Duplicate | SeqVerdict::Old => None,
            _ => self.nodes[i].alive_at.replace(now.mono_ms),
        };
        match verdict {
            SeqVerdict::Duplicate | SeqVerdict::Old => return,
            SeqVerdict::Gap {
                first_missing,
                last_missing,
            } => {
                let n = last_missing - first_missing + 1;
                let text = format!("{n} lost packet(s) for [{src}] [{}:{s}]", first_missing - 1);
                self.log(LogLevel::Warn, text);
                self.loss_seen_at = Some(now.mono_ms);
            }
            SeqVerdict::Filled { none_left: true } => {
                self.log(LogLevel::Info, format!("No pkts missing from {src}!"))
            }
            SeqVerdict::Reset => {
                self.log(LogLevel::Warn, format!("lost a lot of packets! from {src}"));
                self.loss_seen_at = Some(now.mono_ms);
            }
            SeqVerdict::InOrder | SeqVerdict::Filled { none_left: false } => {}
        }
        self.nodes[i].heard = true;
        self.maybe_ack(now, i);
        if !self.addressed_to_us(msg) {
            // Every node looks at a grant, whoever it is for (3.0.6 runs its harc hook on all).
            if matches!(kind, Message::IpRequestResp(_)) {
                let name = self.nodes[i].name.clone();
                self.actions.push_back(Action::Deliver(name, msg.to_msg()));
            }
            self.check_comm_up(now);
            return;
        }
        match kind {
            Message::Status(_) => {
                if let Some(l) = link {
                    if self.heartbeats_heard.len() <= l {
                        self.heartbeats_heard.resize(l + 1, 0);
                    }
                    self.heartbeats_heard[l] += 1;
                }
                self.handle_status(now, i, s, msg, prev_alive)
            }
            Message::ReqNodes(_) => self.send_repnodes(now, i),
            Message::RepNodes(_) => {
                if matches!(self.reqnodes, Some((w, _)) if w == i) {
                    self.reqnodes = None;
                    self.comm_now_up(now);
                }
            }
            Message::Shutdone(_) => {
                let name = self.nodes[i].name.clone();
                self.log(
                    LogLevel::Info,
                    format!("Received shutdown notice from '{name}'."),
                );
                self.actions.push_back(Action::Deliver(name, msg.to_msg()));
            }
            _ => {
                let name = self.nodes[i].name.clone();
                self.actions.push_back(Action::Deliver(name, msg.to_msg()));
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
                self.reject(now, "own name", LogLevel::Error, || {
                    format!(
                        "message claiming to be from this node [{src}] with another uuid ignored"
                    )
                });
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

    /// `NS_*` messages carry no sequence number, so 3.0.6 takes a captured one replayed at any
    /// time (wire-protocol 9.3): a replayed `NS_rexmit` makes the node resend its history, a
    /// replayed `NS_ackmsg` rewinds flow control, any of them keeps a link up. We drop one from
    /// an older generation than the sender's, or stamped more than `NS_TS_SLACK_S` before the
    /// last status we accepted from it (both stamps are the sender's clock, so clocks need not
    /// agree; a sender whose clock stepped back is believed again from its next status).
    fn stale_ns(&mut self, now: Now, i: usize, t: &str, msg: &impl ReadFields) -> bool {
        let n = &self.nodes[i];
        let g = msg.get_str("hg").and_then(parse_hex);
        let ts = msg.get_str("ts").and_then(parse_hex).unwrap_or(0);
        let old_gen = matches!((g, n.generation), (Some(g), Some(cur)) if g < cur);
        let old_ts = ts.saturating_add(NS_TS_SLACK_S) < n.last_status_ts;
        if !old_gen && !old_ts {
            return false;
        }
        let (name, last, cur) = (n.name.clone(), n.last_status_ts, n.generation.unwrap_or(0));
        let kind = format!("stale NS {name}");
        self.reject(now, &kind, LogLevel::Warn, move || {
            format!(
                "dropped a stale {t} from {name} (a replay?): [gen = {}, ts = {ts}; curgen = {cur}, last status ts = {last}]",
                g.unwrap_or(0),
            )
        });
        true
    }

    fn addressed_to_us(&self, msg: &impl ReadFields) -> bool {
        if let Some(u) = msg.get_bin("destuuid") {
            if u.len() == 16 && u.iter().any(|&b| b != 0) {
                return u == self.id.uuid;
            }
        }
        match msg.get_text("dest") {
            None => true,
            Some(d) => d.eq_ignore_ascii_case(&self.id.name),
        }
    }

    /// Steps 1 and 2 of the receive rule: generations, restarts, healed partitions.
    fn generation_ok(&mut self, now: Now, i: usize, is_status: bool, g: u64, s: u64) -> bool {
        let known = self.nodes[i].generation;
        // Same generation, not coming back from the dead: the every-heartbeat case, decided
        // below by the last arm, without copying the name for messages never written.
        if known == Some(g) && !(g > 0 && is_status && self.nodes[i].status == NodeStatus::Dead) {
            return true;
        }
        let name = self.nodes[i].name.clone();
        if let Some(cur) = known {
            if g < cur {
                let kind = format!("replay {name}");
                self.reject(now, &kind, LogLevel::Error, || {
                    format!("should_drop_message: attempted replay attack [{name}]? [gen = {g}, curgen = {cur}]")
                });
                return false;
            }
        }
        if !is_status {
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
                // Older than its last status, or than what it sent after the death and we
                // already took (the window, reset at the death, holds only that): stale.
                let n = &self.nodes[i];
                if s <= n.last_status_seq || n.window.last_seq.is_some_and(|l| s < l) {
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

    fn handle_status(
        &mut self,
        now: Now,
        i: usize,
        s: u64,
        msg: &impl ReadFields,
        prev_alive: Option<u64>,
    ) {
        let status = StatusRef::read(msg);
        // The name is copied only for a line or an action, not for every heartbeat.
        let Some(st) = status.st.as_deref().and_then(NodeStatus::parse) else {
            let name = self.nodes[i].name.clone();
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
            // Silent for longer than the interval says if nothing else came in between.
            let silence = t.saturating_sub(prev_alive.map_or(prev, |a| a.max(prev)));
            if self.nodes[i].status != NodeStatus::Dead {
                // The dead time the timer uses too: the peer's advertised `dt` (deadtime plus
                // its start-up allowance in its first seconds).
                // Not while we catch up after our own freeze: its silence was ours.
                let in_grace = self.death_grace_until.is_some_and(|g| t < g);
                if silence > self.dead_time_of(&self.nodes[i]) && !in_grace {
                    let name = self.nodes[i].name.clone();
                    self.log(
                        LogLevel::Crit,
                        format!("Late heartbeat: Node {name}: interval {silence} ms (> deadtime)"),
                    );
                    // It is talking: its sequence state (gaps to ask for again) goes on.
                    let window = self.nodes[i].window.clone();
                    self.declare_dead(now, i);
                    self.nodes[i].window = window;
                    self.nodes[i].heard = true;
                    // Dead and alive in one message (we, or it, were frozen): it is back.
                    self.actions.push_back(Action::NodeReturned(name.clone()));
                } else if interval > self.params.warntime_ms {
                    let name = self.nodes[i].name.clone();
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
        if let Some(dt) = status.dt {
            n.dead_ms = Some(dt);
        }
        // Each status says it again: a node replaced by 3.0.6 (a rollback) stops getting copies.
        n.takes_copies = status.copies;
        if !status.protocol && n.flow_control {
            n.flow_control = false;
            let name = n.name.clone();
            self.log(
                LogLevel::Info,
                format!("flow control disabled due to different version heartbeat on node {name}"),
            );
        }
        if self.nodes[i].status != st {
            self.nodes[i].status = st;
            let name = self.nodes[i].name.clone();
            self.log(
                LogLevel::Info,
                format!("Status update for node {name}: status {}", st.as_str()),
            );
            self.actions.push_back(Action::NodeStatus(name, st));
        }
        self.follow(now);
    }

    fn handle_ns(&mut self, now: Now, i: usize, kind: &Message) {
        let name = self.nodes[i].name.clone();
        match kind {
            Message::AckMsg(ack) => {
                if let Some(a) = ack.ackseq {
                    let n = &mut self.nodes[i];
                    n.acked_ours = n.acked_ours.max(a.min(self.seq));
                    self.trim_history();
                }
            }
            Message::Rexmit(r) => {
                let (Some(first), Some(last)) = (r.first, r.last) else {
                    self.log(
                        LogLevel::Error,
                        format!("bad retransmission request from {name}"),
                    );
                    return;
                };
                let last = last.min(first.saturating_add(MAX_RESEND_PER_REQUEST - 1));
                self.loss_seen_at = Some(now.mono_ms);
                for s in first..=last {
                    self.answer_rexmit(now, i, s);
                }
            }
            Message::PingEcho(echo) if self.nodes[i].ping && echo.st.as_deref() == Some("ping") => {
                self.ping_heard(now, i);
            }
            Message::NakRexmit(nak) => {
                if let Some(s) = nak.first {
                    if self.nodes[i].window.give_up(s) {
                        self.log(
                            LogLevel::Error,
                            format!("Irretrievably lost packet: node {name}, seq {s}"),
                        );
                        self.maybe_ack(now, i);
                    }
                }
            }
            _ => self.log(
                LogLevel::Debug,
                format!("ignoring {} from {name}", kind.type_name()),
            ),
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
            Lookup::Resend(msg) => {
                let t = Transmit {
                    msg: msg.clone(),
                    kind: TransmitKind::Retransmission,
                };
                self.push_transmit(t);
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
        let m = Message::from(NakRexmit {
            first: Some(s),
            dest: Some(name),
            info: some(reason),
        });
        self.send(now, m.emit(), false);
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
        let n = &mut self.nodes[i];
        n.window.acked = c;
        n.acked_this_generation = n.acked_this_generation.max(c);
        let dest = self.nodes[i].name.clone();
        let m = Message::from(AckMsg {
            dest: Some(dest),
            ackseq: Some(c),
        });
        self.send(now, m.emit(), false);
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
            self.link_changed(i, link, true);
        }
    }

    fn link_dead(&mut self, i: usize, link: usize) {
        self.nodes[i].links[link].up = false;
        self.link_changed(i, link, false);
    }

    /// Log a link's new state (3.0.6's wording) and report it.
    fn link_changed(&mut self, i: usize, link: usize, up: bool) {
        let node = self.nodes[i].name.clone();
        let ifname = self.params.links[link].clone();
        let word = if up { "up" } else { "dead" };
        self.log(LogLevel::Info, format!("Link {node}:{ifname} {word}."));
        self.actions.push_back(Action::LinkStatus {
            node,
            link,
            ifname,
            up,
        });
    }

    fn declare_dead(&mut self, now: Now, i: usize) {
        let name = self.nodes[i].name.clone();
        // 3.0.6's wording first (operators grep it), then how long the node was silent.
        let dead_ms = self.dead_time_of(&self.nodes[i]);
        let n = &self.nodes[i];
        let last_heard = n.last_status_at.map(|s| n.alive_at.map_or(s, |a| a.max(s)));
        let detail = match last_heard {
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
        // Links of the dead node that are silent too. A copy of its last heartbeat (half a
        // keepalive after it) proved a link but not the node: such a link dies with it.
        let t = now.mono_ms;
        let dead_ms = self.dead_time_of(&self.nodes[i]);
        let copy_slack = if self.nodes[i].takes_copies {
            self.params.keepalive_ms / 2
        } else {
            0
        };
        for l in 0..self.nodes[i].links.len() {
            let link = &self.nodes[i].links[l];
            if link.up
                && link
                    .last_heard
                    .is_none_or(|h| t + 1 + copy_slack >= h + dead_ms)
            {
                self.link_dead(i, l);
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
        let m = Message::from(ReqNodes {
            dest: Some(self.nodes[i].name.clone()),
        });
        self.send(now, m.emit(), true);
        self.reqnodes = Some((i, now.mono_ms + REQNODES_INTERVAL_MS));
    }

    fn send_repnodes(&mut self, now: Now, i: usize) {
        let list: String = self.nodes.iter().map(|n| format!("{} ", n.name)).collect();
        let m = Message::from(RepNodes {
            dest: Some(self.nodes[i].name.clone()),
            nodelist: Some(list),
            delnodelist: some(" "),
        });
        self.send(now, m.emit(), true);
    }

    fn send_status(&mut self, now: Now) {
        let mut dt = self.params.deadtime_ms;
        if now.mono_ms < self.started_at + STARTUP_DT_WINDOW_MS {
            dt += STARTUP_DT_EXTRA_MS;
        }
        let m = Message::from(Status {
            st: some(self.own_status.as_str()),
            dt: Some(dt),
            protocol: some("1"),
            copies: some("1"),
        });
        let sent = self.send(now, m.emit(), true);
        if let Some(msg) = sent.filter(|_| self.copies_wanted(now)) {
            // Sent with the original, not later: the peer takes both in one wake-up, and a
            // second timer per keepalive would double ours. Spacing them would only save a
            // heartbeat from a burst shorter than the spacing, and one lost heartbeat is far
            // from a dead time.
            self.push_transmit(Transmit {
                msg,
                kind: TransmitKind::HeartbeatCopy,
            });
        }
        let ka = self.params.keepalive_ms.max(1);
        // A follower's timer only stands in for its leader's heartbeat: it waits a little
        // past the keepalive, so that the leader's heartbeat, a little late, comes first.
        let grace = if self.follows_a_leader() { ka / 8 } else { 0 };
        self.status_sent_at = now.mono_ms;
        self.next_status_at = now.mono_ms + ka + grace;
    }

    /// Between two of ours, the one whose name sorts last sends its heartbeat as the other's
    /// arrives, in the same wake-up, instead of on a timer of its own: an idle pair then
    /// wakes up three times per keepalive instead of four (leader: its timer and the reply;
    /// follower: the leader's heartbeat). Only with exactly one live peer, and only one of
    /// ours: a 3.0.6 peer sees the timing of a 3.0.6 node.
    fn follows_a_leader(&self) -> bool {
        let mut peers = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != self.me && !n.ping && n.status != NodeStatus::Dead);
        match (peers.next(), peers.next()) {
            (Some((_, leader)), None) => {
                // Names compare as 3.0.6 matches them: without case (and with no allocation:
                // this runs for every heartbeat).
                let lower = |b: u8| b.to_ascii_lowercase();
                let me = self.nodes[self.me].name.bytes().map(lower);
                leader.takes_copies && leader.name.bytes().map(lower).lt(me)
            }
            _ => false,
        }
    }

    /// A peer's status came in: a follower answers with its own heartbeat (at most one per
    /// half keepalive; the peer is its leader, the only live one).
    fn follow(&mut self, now: Now) {
        let half = self.params.keepalive_ms / 2;
        if !self.shutting_down
            && now.mono_ms >= self.status_sent_at + half
            && self.follows_a_leader()
        {
            self.send_status(now);
        }
    }

    /// Add the common fields, sign, keep sequenced messages in the history, and send. Returns
    /// a sequenced message as sent (None if the test switches dropped it).
    fn send(&mut self, now: Now, mut m: Msg, sequenced: bool) -> Option<Msg> {
        use crate::wire::Value;
        // The envelope's fields at most (and `auth`): one allocation for the field list.
        m.fields.reserve(9);
        let dest_uuid = m
            .get_text("dest")
            .and_then(|dest| self.node_index(&dest))
            .and_then(|i| self.nodes[i].uuid);
        if let Some(u) = dest_uuid {
            m.set("destuuid", Value::Binary(u.to_vec()));
        }
        m.set_str("src", &self.id.name);
        m.set("srcuuid", Value::Binary(self.id.uuid.to_vec()));
        // Numbers are ASCII: their text is their bytes (no second copy through `set_str`).
        let text = |s: String| Value::Str(s.into_bytes());
        if sequenced {
            self.seq += 1;
            m.set("seq", text(hex(self.seq)));
        }
        m.set("hg", text(hex(self.id.generation)));
        m.set("ts", text(hex(now.unix_secs)));
        if sequenced {
            m.set_str("ld", &self.load_average);
        }
        let ttl = self.params.hopfudge as usize + self.nodes.len();
        m.set("ttl", text(ttl.to_string()));
        if self.params.inner_auth {
            self.auth.add_inner_auth(&mut m);
        }
        // Only the type decides the kind (no need to parse the whole message).
        let kind = match m.get_str("t") {
            Some("status") if sequenced => TransmitKind::Heartbeat,
            _ if sequenced => TransmitKind::Message,
            _ => TransmitKind::Control,
        };
        if sequenced {
            self.history.push(self.seq, m.clone(), now.mono_ms);
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
        let kept = (sequenced && !self.test_drops_outgoing()).then(|| m.clone());
        if sequenced {
            if kept.is_some() {
                self.actions
                    .push_back(Action::Transmit(Transmit { msg: m, kind }));
            }
        } else {
            self.push_transmit(Transmit { msg: m, kind });
        }
        kept
    }

    /// Hand a message to the media, unless the test switches drop it.
    fn push_transmit(&mut self, t: Transmit) {
        if !self.test_drops_outgoing() {
            self.actions.push_back(Action::Transmit(t));
        }
    }

    /// A transmitted message as a UDP datagram: netstring body and signed trailer.
    pub fn encode_udp(&self, t: &Transmit) -> Vec<u8> {
        self.auth.encode_udp(&t.msg)
    }

    /// A transmitted message in the classic form serial links carry (its `auth` field
    /// signed again).
    pub fn encode_classic(&self, t: &Transmit) -> Vec<u8> {
        self.auth.encode_classic(&t.msg)
    }

    /// The keys messages are signed and checked with (the ping medium signs its echo
    /// requests with them).
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    fn log(&mut self, level: LogLevel, text: String) {
        self.actions.push_back(Action::Log(level, text));
    }

    /// Count a rejected packet and log it, at most one line per kind per interval.
    /// Count a dropped packet of `kind`, and log `text` for at most one per kind every
    /// `REJECT_LOG_INTERVAL_MS`: under a flood the text is built only for the lines written.
    fn reject(&mut self, now: Now, kind: &str, level: LogLevel, text: impl FnOnce() -> String) {
        match self.rejects.totals.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.rejects.totals.insert(kind.to_string(), 1);
            }
        }
        let t = now.mono_ms;
        if !self.rejects.kinds.contains_key(kind) {
            self.rejects.kinds.insert(kind.to_string(), (0, 0));
        }
        let Some(entry) = self.rejects.kinds.get_mut(kind) else {
            return;
        };
        if entry.0 != 0 && t < entry.0 + REJECT_LOG_INTERVAL_MS {
            entry.1 += 1;
            return;
        }
        let suppressed = entry.1;
        *entry = (t.max(1), 0);
        let text = text();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const KEEPALIVE: u64 = 200;
    const DEADTIME: u64 = 1000;

    fn at(ms: u64) -> Now {
        Now {
            mono_ms: ms,
            unix_secs: 1_700_000_000 + ms / 1000,
        }
    }

    fn node(name: &str, uuid: u8) -> Membership {
        let params = Params {
            my_name: name.into(),
            nodes: vec!["alice".into(), "bob".into()],
            links: vec!["eth0".into()],
            keepalive_ms: KEEPALIVE,
            deadtime_ms: DEADTIME,
            warntime_ms: 500,
            initdead_ms: 2000,
            max_rexmit_delay_ms: 250,
            hopfudge: 1,
            inner_auth: false,
            ping_nodes: vec![],
            deadping_ms: 1000,
        };
        let keys = crate::config::authkeys::parse("auth 1\n1 sha1 secret\n", Path::new("authkeys"))
            .expect("authkeys");
        let id = Identity {
            name: name.into(),
            uuid: [uuid; 16],
            generation: 1000 + uuid as u64,
        };
        Membership::new(params, id, Authenticator::new(keys), at(0), uuid as u64)
    }

    /// What one node sent at one instant.
    struct Sent {
        at: u64,
        from: usize,
        kind: TransmitKind,
        msg: Msg,
    }

    /// alice (0) and bob (1) on a network with no delay, stepped one ms at a time.
    struct Pair {
        nodes: [Membership; 2],
        /// bob plays a 3.0.6 node: the `hbcopies` field is taken out of what it sends.
        bob_is_3_0_6: bool,
        /// alice does.
        alice_is_3_0_6: bool,
        /// alice is frozen: her timers do not run, what is sent to her is lost.
        alice_frozen: bool,
        /// bob stopped (killed): it neither sends nor receives.
        bob_stopped: bool,
        sent: Vec<Sent>,
        deaths: Vec<(u64, usize, String)>,
        logs: Vec<(u64, usize, String)>,
    }

    impl Pair {
        fn new() -> Pair {
            Pair {
                nodes: [node("alice", 1), node("bob", 2)],
                bob_is_3_0_6: false,
                alice_is_3_0_6: false,
                alice_frozen: false,
                bob_stopped: false,
                sent: Vec::new(),
                deaths: Vec::new(),
                logs: Vec::new(),
            }
        }

        /// Run until `until`; `deliver` says whether a datagram reaches the other node.
        fn run(&mut self, from: u64, until: u64, deliver: &mut dyn FnMut(&Sent) -> bool) {
            for t in from..until {
                for i in 0..2 {
                    if (i == 1 && self.bob_stopped) || (i == 0 && self.alice_frozen) {
                        continue;
                    }
                    if self.nodes[i].poll_timeout().is_some_and(|d| d <= t) {
                        self.nodes[i].handle_timeout(at(t));
                    }
                    self.drain(t, i, deliver);
                }
            }
        }

        fn drain(&mut self, t: u64, i: usize, deliver: &mut dyn FnMut(&Sent) -> bool) {
            while let Some(a) = self.nodes[i].poll_action() {
                match a {
                    Action::Transmit(tx) => {
                        let mut msg = tx.msg;
                        if [self.alice_is_3_0_6, self.bob_is_3_0_6][i] {
                            msg.remove("hbcopies");
                        }
                        let s = Sent {
                            at: t,
                            from: i,
                            kind: tx.kind,
                            msg,
                        };
                        let to = 1 - i;
                        let away = [self.alice_frozen, self.bob_stopped][to];
                        if !away && deliver(&s) {
                            let bytes = self.nodes[i].authenticator().encode_udp(&s.msg);
                            self.nodes[to].handle_datagram(at(t), 0, &bytes);
                            self.drain(t, to, deliver);
                        }
                        self.sent.push(s);
                    }
                    Action::NodeDead(n) => self.deaths.push((t, i, n)),
                    Action::Log(_, text) => self.logs.push((t, i, text)),
                    _ => {}
                }
            }
        }

        fn alice_sees_bob(&self) -> NodeStatus {
            self.nodes[0].node_status("bob").unwrap()
        }
    }

    fn is_status(s: &Sent) -> bool {
        matches!(Message::parse(&s.msg), Some(Message::Status(_)))
    }

    /// A deterministic loss pattern: `percent` of the datagrams it is asked about.
    fn lossy(percent: u64, seed: u64) -> impl FnMut(&Sent) -> bool {
        let mut rng = Rng(seed | 1);
        move |_| rng.next() % 100 >= percent
    }

    #[test]
    fn a_peer_whose_heartbeats_are_lost_but_whose_retransmissions_arrive_is_not_dead() {
        let mut p = Pair::new();
        p.bob_is_3_0_6 = true; // no copies: retransmission alone must carry it
        p.run(0, 6000, &mut |_| true);
        assert_eq!(p.alice_sees_bob(), NodeStatus::Active);
        // From now on every first transmission of bob's is lost; only what alice asks for
        // again gets through.
        p.run(6000, 16_000, &mut |s| {
            s.from == 0 || s.kind == TransmitKind::Retransmission
        });
        assert!(p.deaths.is_empty(), "{:?}", p.deaths);
        assert_eq!(p.alice_sees_bob(), NodeStatus::Active);
        let requests = p
            .sent
            .iter()
            .filter(|s| s.from == 0 && s.at >= 6000)
            .filter(|s| matches!(Message::parse(&s.msg), Some(Message::Rexmit(_))))
            .count();
        assert!(requests >= 10, "alice asked {requests} times");
        // Never asked for a number bob had not sent yet (a 3.0.6 peer logs that).
        assert!(
            !p.logs
                .iter()
                .any(|(_, i, l)| *i == 1 && l.contains("not yet sent")),
            "{:?}",
            p.logs
        );
    }

    #[test]
    fn only_authenticated_heartbeats_are_counted_per_medium() {
        let mut p = Pair::new();
        p.run(0, 3000, &mut |_| true);
        let heard = p.nodes[0].heartbeats_heard(0);
        assert!(heard >= 2, "alice counted {heard}");
        assert_eq!(p.nodes[0].heartbeats_heard(1), 0);
        // A status-looking datagram that fails authentication counts for nothing.
        let forged = b"###\n11:(0)t=status,9:src=bob,13:st=active,###\n";
        p.nodes[0].handle_datagram(at(3000), 1, forged);
        assert_eq!(p.nodes[0].heartbeats_heard(1), 0);
        assert_eq!(p.nodes[0].heartbeats_heard(0), heard);
    }

    #[test]
    fn a_truly_dead_peer_is_declared_at_deadtime_exactly() {
        for bob_is_3_0_6 in [false, true] {
            let mut p = Pair::new();
            p.bob_is_3_0_6 = bob_is_3_0_6;
            p.run(0, 8000, &mut |_| true);
            p.bob_stopped = true;
            p.run(8000, 12_000, &mut |_| true);
            // The copy of a heartbeat that arrived is a duplicate: no news, no proof.
            let last_from_bob = p
                .sent
                .iter()
                .filter(|s| s.from == 1 && s.kind != TransmitKind::HeartbeatCopy)
                .map(|s| s.at)
                .max();
            let last_from_bob = last_from_bob.expect("bob sent");
            assert_eq!(
                p.deaths,
                vec![(last_from_bob + DEADTIME + 1, 0, "bob".to_string())],
                "bob 3.0.6: {bob_is_3_0_6}"
            );
            let line = format!("last heartbeat {} ms ago", DEADTIME + 1);
            assert!(p.logs.iter().any(|(_, _, l)| l.contains(&line)));
        }
    }

    #[test]
    fn a_node_frozen_past_deadtime_reads_before_it_judges_its_peers() {
        let mut p = Pair::new();
        p.run(0, 6000, &mut |_| true);
        // bob frozen (SIGSTOP) for 3 s: what alice sends waits in its socket.
        p.bob_stopped = true;
        let mut queued = Vec::new();
        for t in 6000..9000 {
            if p.nodes[0].poll_timeout().is_some_and(|d| d <= t) {
                p.nodes[0].handle_timeout(at(t));
            }
            while let Some(a) = p.nodes[0].poll_action() {
                if let Action::Transmit(tx) = a {
                    queued.push(p.nodes[0].authenticator().encode_udp(&tx.msg));
                }
            }
        }
        p.bob_stopped = false;
        // SIGCONT: the event loop's timers fire first, then the sockets are read.
        p.nodes[1].handle_timeout(at(9000));
        for bytes in &queued {
            p.nodes[1].handle_datagram(at(9001), 0, bytes);
        }
        p.run(9001, 12_000, &mut |_| true);
        assert!(p.deaths.is_empty(), "{:?}", p.deaths);
        assert!(p.logs.iter().any(|(t, i, l)| (*t, *i) == (9000, 1)
            && l.contains("ran 3000 ms late")
            || *i == 1 && l.contains("ms late (frozen")));
    }

    /// resource_sim legacy_three_nodes seed 737, reduced: bob declared alice dead; after the
    /// partition alice's first message to arrive is a newer one than her status, which comes
    /// second (reordered). The newer one started bob's window and bob acknowledged it; the
    /// older status must not start the window again below that acknowledgement, or bob asks
    /// for numbers alice ignores (she has his ack for them), four times a second for ever.
    #[test]
    fn a_status_older_than_what_came_after_a_death_starts_nothing_again() {
        let mut p = Pair::new();
        p.run(0, 6000, &mut |_| true);
        // A partition: nothing gets through until bob has declared alice dead.
        let mut held: Vec<Vec<u8>> = Vec::new();
        for t in 6000..7500 {
            for i in 0..2 {
                if p.nodes[i].poll_timeout().is_some_and(|d| d <= t) {
                    p.nodes[i].handle_timeout(at(t));
                }
                while let Some(a) = p.nodes[i].poll_action() {
                    match a {
                        Action::Transmit(tx) if i == 0 && is_status_msg(&tx.msg) => {
                            held.push(p.nodes[0].authenticator().encode_udp(&tx.msg));
                        }
                        Action::NodeDead(n) => p.deaths.push((t, i, n)),
                        _ => {}
                    }
                }
            }
        }
        assert!(p.deaths.iter().any(|(_, i, n)| *i == 1 && n == "alice"));
        // alice sends something after her last status; it arrives first, the status second.
        let mut m = Msg::new();
        m.add_str("t", "hb_test");
        p.nodes[0].send_message(at(7500), m);
        let mut newer = None;
        while let Some(a) = p.nodes[0].poll_action() {
            if let Action::Transmit(tx) = a {
                newer = Some(p.nodes[0].authenticator().encode_udp(&tx.msg));
            }
        }
        let status = held
            .pop()
            .expect("a status of alice's during the partition");
        p.nodes[1].handle_datagram(at(7500), 0, &newer.expect("alice's message"));
        p.nodes[1].handle_datagram(at(7501), 0, &status);
        p.sent.clear();
        p.run(7502, 12_000, &mut |_| true);
        let requests = p
            .sent
            .iter()
            .filter(|s| s.from == 1 && s.msg.get_str("t") == Some("NS_rexmit"))
            .count();
        assert!(requests <= 2, "bob asked alice {requests} times");
    }

    fn is_status_msg(m: &Msg) -> bool {
        matches!(Message::parse(m), Some(Message::Status(_)))
    }

    #[test]
    fn a_3_0_6_peer_gets_no_redundant_copies() {
        let mut p = Pair::new();
        p.bob_is_3_0_6 = true;
        p.run(0, 5000, &mut |_| true);
        assert_eq!(p.alice_sees_bob(), NodeStatus::Active);
        let from_alice: Vec<&Sent> = p.sent.iter().filter(|s| s.from == 0).collect();
        assert!(from_alice
            .iter()
            .all(|s| s.kind != TransmitKind::HeartbeatCopy));
        let mut seqs: Vec<&str> = from_alice
            .iter()
            .filter(|s| is_status(s))
            .filter_map(|s| s.msg.get_str("seq"))
            .collect();
        let n = seqs.len();
        assert!(n >= 20);
        seqs.dedup();
        assert_eq!(seqs.len(), n, "a status went out twice");
    }

    /// Run a pair of ours for 3 s with nothing lost, then lose one status of bob's and one
    /// of alice's.
    fn pair_after_a_loss() -> Pair {
        let mut p = Pair::new();
        p.run(0, 3000, &mut |_| true);
        let mut lost = [false; 2];
        p.run(3000, 4000, &mut |s| {
            let lose = s.kind == TransmitKind::Heartbeat && !lost[s.from];
            lost[s.from] |= lose;
            !lose
        });
        p
    }

    #[test]
    fn two_of_ours_send_each_heartbeat_twice_at_once_after_a_loss() {
        let mut p = pair_after_a_loss();
        // Nothing lost, nothing copied.
        assert!(p
            .sent
            .iter()
            .all(|s| s.at >= 3000 || s.kind != TransmitKind::HeartbeatCopy));
        p.run(4000, 6000, &mut |_| true);
        let from_alice: Vec<&Sent> = p.sent.iter().filter(|s| s.from == 0).collect();
        let copies = from_alice
            .iter()
            .filter(|s| s.kind == TransmitKind::HeartbeatCopy)
            .count();
        assert!(copies >= 10, "{copies} copies");
        for c in from_alice
            .iter()
            .filter(|s| s.kind == TransmitKind::HeartbeatCopy)
        {
            assert!(
                from_alice
                    .iter()
                    .any(|s| s.kind == TransmitKind::Heartbeat && (s.at, &s.msg) == (c.at, &c.msg)),
                "a copy without its original in the same instant"
            );
        }
    }

    /// The instants at which node `from` sent a heartbeat (copies aside), from `after` on.
    fn heartbeats_of(p: &Pair, from: usize, after: u64) -> Vec<u64> {
        p.sent
            .iter()
            .filter(|s| s.from == from && s.at >= after && s.kind == TransmitKind::Heartbeat)
            .map(|s| s.at)
            .collect()
    }

    fn one_keepalive_apart(instants: &[u64]) -> bool {
        instants.windows(2).all(|w| w[1] - w[0] == KEEPALIVE)
    }

    /// A pair whose alice freezes for 120 ms after 1500 ms: her timer no longer beats in step
    /// with bob's.
    fn pair_out_of_step(alice_is_3_0_6: bool) -> Pair {
        let mut p = Pair::new();
        p.alice_is_3_0_6 = alice_is_3_0_6;
        p.run(0, 1500, &mut |_| true);
        p.alice_frozen = true;
        p.run(1500, 1620, &mut |_| true);
        p.alice_frozen = false;
        p.run(1620, 6000, &mut |_| true);
        p
    }

    #[test]
    fn between_two_of_ours_the_follower_beats_as_the_leaders_heartbeat_arrives() {
        let p = pair_out_of_step(false);
        // alice sorts first: she leads, on her timer; bob sends his as hers arrives (this
        // model delivers at once, so in the same millisecond), and on no timer of his own.
        let alice = heartbeats_of(&p, 0, 3000);
        let bob = heartbeats_of(&p, 1, 3000);
        assert!(
            alice.len() >= 15 && one_keepalive_apart(&alice),
            "{alice:?}"
        );
        assert_eq!(bob, alice);
    }

    #[test]
    fn a_follower_whose_leader_goes_silent_beats_on_its_own_timer() {
        let mut p = Pair::new();
        p.run(0, 6000, &mut |_| true);
        // Nothing of alice's arrives for a while (short of her dead time).
        p.run(6000, 6000 + 4 * KEEPALIVE, &mut |s| s.from == 1);
        p.run(6000 + 4 * KEEPALIVE, 10_000, &mut |_| true);
        assert!(p.deaths.is_empty(), "{:?}", p.deaths);
        let bob = heartbeats_of(&p, 1, 5000);
        let longest = bob.windows(2).map(|w| w[1] - w[0]).max();
        assert_eq!(longest, Some(KEEPALIVE + KEEPALIVE / 8), "{bob:?}");
        // Back in step once hers arrive again.
        assert_eq!(heartbeats_of(&p, 1, 8000), heartbeats_of(&p, 0, 8000));
    }

    #[test]
    fn no_node_of_ours_follows_a_3_0_6_peer() {
        let p = pair_out_of_step(true);
        // bob keeps his own step, not alice's.
        let alice = heartbeats_of(&p, 0, 3000);
        let bob = heartbeats_of(&p, 1, 3000);
        assert!(bob.len() >= 15 && one_keepalive_apart(&bob), "{bob:?}");
        assert!(bob.iter().all(|t| !alice.contains(t)), "{bob:?} {alice:?}");
    }

    #[test]
    fn between_two_of_ours_a_lost_heartbeat_whose_copy_arrives_costs_nothing() {
        let mut p = pair_after_a_loss();
        p.run(4000, 6000, &mut |_| true);
        // Every original status of bob's is lost (and no retransmission): the copies alone.
        p.run(6000, 16_000, &mut |s| {
            s.from == 0 || s.kind == TransmitKind::HeartbeatCopy
        });
        assert!(p.deaths.is_empty(), "{:?}", p.deaths);
        assert!(!p
            .logs
            .iter()
            .any(|(_, i, l)| *i == 0 && l.contains("Late heartbeat")));
    }

    #[test]
    fn twenty_percent_loss_for_ten_minutes_declares_nobody_dead() {
        for bob_is_3_0_6 in [false, true] {
            let mut p = Pair::new();
            p.bob_is_3_0_6 = bob_is_3_0_6;
            p.run(0, 6000, &mut |_| true);
            // 20% of everything either node sends, at 200 ms / 1 s.
            p.run(6000, 606_000, &mut lossy(20, 42));
            assert!(
                p.deaths.is_empty(),
                "bob 3.0.6 {bob_is_3_0_6}: {:?}",
                p.deaths
            );
        }
    }
}
