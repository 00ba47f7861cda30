//! The resource managers of 3.0.6, pure: it asks for script runs and gets their results; all
//! group work is serialized (3.0.6 runs some of it in parallel).
//!
//! * legacy (`auto_failback legacy`, or no `auto_failback` line): groups are acquired with
//!   `ip-request` / `ip-request-resp`, taken over when their node dies or stops, and released
//!   on a graceful stop (resources.md 4.2-4.4, 4.7);
//! * negotiated (`auto_failback on|off`): the `starting` / `resource` exchange at start-up, the
//!   standby exchange (`ask_resources`) for hb_standby, hb_takeover and auto failback, in
//!   [`negotiated`] (resources.md 3, 4.1, 4.5, 4.6).

use std::collections::{BTreeSet, VecDeque};

use super::{LogLevel, Now};
use crate::config::AutoFailback;
use crate::config::{Resource, ResourceGroup};
use crate::wire::Msg;

pub mod negotiated;
pub use negotiated::Hold;
use negotiated::{Mark, Negotiation};

/// How often a failed stop is retried, one second apart (`HA_STOPRETRYMAX`).
pub const STOP_RETRIES: u32 = 10;
pub const STOP_RETRY_MS: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Stop,
    Status,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Status => "status",
        }
    }
}

/// How a script run ended, as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptResult {
    /// Exit code and standard output.
    Done { code: i32, stdout: String },
    /// No such script in resource.d or /etc/init.d.
    NotFound,
    /// Killed (time limit) or could not be started.
    Failed(String),
}

/// `status` answers from stdout, not the exit code (resources.md 7.2).
pub fn status_says_running(stdout: &str) -> bool {
    let lower = stdout.to_ascii_lowercase();
    if let Some(pos) = lower.find("not") {
        if lower[pos..].contains("running") {
            return false;
        }
    }
    lower.contains("running") || stdout.contains("OK")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RmAction {
    /// Send this message (type-specific fields only) to the cluster.
    Send(Msg),
    /// Run `script args... op` for a resource; answer with `script_done(job, ...)`.
    Run {
        job: u64,
        resource: Resource,
        op: Op,
    },
    Log(LogLevel, String),
    /// Every group is released (graceful stop): the node may say `shutdone`.
    Released,
    /// Run the site's `rc.d/<name> <arg>` if it exists, with `env` added (`HA_<field>`);
    /// answer with `script_done(job, ...)` (`NotFound` when there is none).
    RunHook {
        job: u64,
        name: String,
        arg: String,
        env: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Take(usize),
    Give(usize),
    /// Answer an `ip-request` for group `g` from `node` once the queue reaches it.
    Answer(usize),
    /// All groups released: report it.
    Released,
    /// Negotiated mode: the group work queued before it is done; say so.
    Mark(Mark),
    /// Before giving group `g` to a node that asked for it: the site's `rc.d/local_giveip`.
    LocalGiveIp(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Status,
    Start,
    Stop {
        attempt: u32,
    },
    /// The last stop failed: is it still running?
    StatusAfterStop,
}

#[derive(Debug, Clone)]
struct Work {
    task: Task,
    /// Resource index within the group.
    index: usize,
    step: Step,
    job: u64,
    /// A stop retry waits until then (monotonic ms).
    retry_at: Option<u64>,
}

#[derive(Debug)]
pub struct ResourceManager {
    me: String,
    /// Which of 3.0.6's two managers this is: negotiated (`on`/`off`) or `legacy`.
    mode: AutoFailback,
    groups: Vec<ResourceGroup>,
    /// Groups this node runs (as far as it knows: set when a start completes).
    held: Vec<bool>,
    /// Who asked for each pending `Answer` task, and whether we ran the group then.
    answers: VecDeque<(usize, String, bool)>,
    queue: VecDeque<Task>,
    work: Option<Work>,
    next_job: u64,
    shutting_down: bool,
    actions: VecDeque<RmAction>,
    /// Nodes that said `shutdone`: their later death needs no takeover or STONITH.
    gave_up: BTreeSet<String>,
    /// Failed starts per group since its last good start (bounds the hand-over after one).
    start_failures: Vec<u32>,
    /// The state of the negotiated manager (unused in legacy mode).
    neg: Negotiation,
    /// The clock of the last input, for timers armed while handling it.
    now_ms: u64,
    /// The cluster's nodes in ha.cf order, and those we consider dead (legacy takeover).
    nodes: Vec<String>,
    dead: BTreeSet<String>,
    /// Legacy, three or more nodes: own groups asked for with `ip-request`, the peers whose
    /// answer is still due, and when the first answer stops waiting for the rest.
    awaiting: Vec<(usize, BTreeSet<String>, Option<u64>)>,
    /// Who asked for the group of each queued `LocalGiveIp`.
    giveip_from: Vec<(usize, String)>,
}

/// How long a first answer waits for the other peers' (legacy, three or more nodes).
pub const ANSWER_WAIT_MS: u64 = 2_000;

impl ResourceManager {
    pub fn new(me: &str, groups: Vec<ResourceGroup>, mode: AutoFailback) -> ResourceManager {
        let n = groups.len();
        ResourceManager {
            me: me.to_ascii_lowercase(),
            mode,
            groups,
            held: vec![false; n],
            answers: VecDeque::new(),
            queue: VecDeque::new(),
            work: None,
            next_job: 1,
            shutting_down: false,
            actions: VecDeque::new(),
            gave_up: BTreeSet::new(),
            start_failures: vec![0; n],
            neg: Negotiation::default(),
            now_ms: 0,
            nodes: Vec::new(),
            dead: BTreeSet::new(),
            awaiting: Vec::new(),
            giveip_from: Vec::new(),
        }
    }

    /// The cluster's nodes, in ha.cf order. With more than two, a dead node's groups are
    /// taken by the first live node of that list only (3.0.6 lets every survivor take them,
    /// so two survivors run them both).
    pub fn set_nodes(&mut self, nodes: &[String]) {
        self.nodes = nodes.iter().map(|n| n.to_ascii_lowercase()).collect();
    }

    /// Who takes over a dead node's groups: the first live node in ha.cf order (with two
    /// nodes, the survivor).
    fn taker_of(&self, dead: &str) -> String {
        self.nodes
            .iter()
            .find(|n| n.as_str() != dead && !self.dead.contains(n.as_str()))
            .cloned()
            .unwrap_or_else(|| self.me.clone())
    }

    /// With three or more nodes: give up a dead node's groups that another live node (first
    /// in ha.cf order) is now responsible for; views converge as nodes hear each other again.
    fn hand_over_to_takers(&mut self) {
        if self.nodes.len() < 3 || self.shutting_down {
            return;
        }
        let dead: Vec<String> = self.dead.iter().cloned().collect();
        for d in dead {
            let taker = self.taker_of(&d);
            if taker == self.me {
                continue;
            }
            for g in 0..self.groups.len() {
                if self.groups[g].node == d && self.taking_or_held(g) {
                    let key = self.groups[g].key().to_string();
                    self.log(
                        LogLevel::Info,
                        format!("Giving up resource group {key}: {taker} takes over {d}'s groups"),
                    );
                    self.queue.retain(|t| *t != Task::Take(g));
                    self.enqueue(Task::Give(g));
                }
            }
        }
    }

    /// The other nodes we do not consider dead.
    fn live_peers(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| **n != self.me && !self.dead.contains(n.as_str()))
            .cloned()
            .collect()
    }

    /// Three or more nodes: a dead node's groups that we are to take are asked for first
    /// (`ip-request`), since another live node may still run them (it took them while our
    /// view was different); its answer comes once it has stopped them.
    fn request_groups_of(&mut self, node: &str) {
        let peers = self.live_peers();
        for g in 0..self.groups.len() {
            if self.groups[g].node != node || self.taking_or_held(g) {
                continue;
            }
            if self.awaiting.iter().any(|(ag, _, _)| *ag == g) {
                continue;
            }
            let key = self.groups[g].key().to_string();
            self.log(LogLevel::Info, format!("Taking over resource group {key}"));
            if peers.is_empty() {
                self.enqueue(Task::Take(g));
                continue;
            }
            let mut m = Msg::new();
            m.add_str("t", "ip-request").add_str("ipaddr", &key);
            self.actions.push_back(RmAction::Send(m));
            self.awaiting.push((g, peers.clone(), None));
        }
    }

    /// Own groups whose awaited answers are all in (a peer died) or whose wait ran out.
    fn awaited_answers(&mut self) {
        let now = self.now_ms;
        let dead = self.dead.clone();
        let mut ready = Vec::new();
        self.awaiting.retain_mut(|(g, peers, deadline)| {
            peers.retain(|p| !dead.contains(p));
            let go = peers.is_empty() || deadline.is_some_and(|d| d <= now);
            if go {
                ready.push(*g);
            }
            !go
        });
        for g in ready {
            // Still ours to take: our own group, or a dead node's whose taker we still are.
            let owner = self.groups[g].node.clone();
            if owner == self.me || (self.dead.contains(&owner) && self.taker_of(&owner) == self.me)
            {
                self.enqueue(Task::Take(g));
            }
        }
        self.advance();
    }

    /// `node` is heard from again (any status but dead): it no longer counts as dead when
    /// choosing who takes over a dead node's groups.
    pub fn node_alive(&mut self, now: Now, node: &str) {
        self.now_ms = now.mono_ms;
        let node = node.to_ascii_lowercase();
        // A request for its groups made while it was dead is void.
        let groups = &self.groups;
        self.awaiting.retain(|(g, _, _)| groups[*g].node != node);
        if self.dead.remove(&node) && !self.negotiated() {
            self.hand_over_to_takers();
            self.claim_taken_groups();
            self.advance();
        }
    }

    /// Three or more nodes, a node heard again: it may have taken the same dead node's groups
    /// as we did while we could not hear each other. Ask for each such group we hold: a holder
    /// other than us gives it up (and says so), which leaves it on one node.
    fn claim_taken_groups(&mut self) {
        if self.nodes.len() < 3 || self.shutting_down {
            return;
        }
        for g in 0..self.groups.len() {
            let owner = &self.groups[g].node;
            if *owner != self.me && self.dead.contains(owner) && self.held[g] {
                let mut m = Msg::new();
                m.add_str("t", "ip-request")
                    .add_str("ipaddr", self.groups[g].key());
                self.actions.push_back(RmAction::Send(m));
            }
        }
    }

    /// Legacy takeover after `node` died or stopped: the groups of every dead node that we
    /// are now the taker of (a taker that died passes its charge on).
    fn take_over_dead(&mut self, node: &str) {
        self.dead.insert(node.to_string());
        self.awaited_answers();
        let dead: Vec<String> = self.dead.iter().cloned().collect();
        for d in dead {
            let taker = self.taker_of(&d);
            if taker == self.me && self.nodes.len() > 2 {
                self.request_groups_of(&d);
            } else if taker == self.me {
                self.take_groups_of(&d);
            } else if d == node {
                self.log(
                    LogLevel::Info,
                    format!("Resources of {d} are taken over by {taker}."),
                );
            }
        }
    }

    fn negotiated(&self) -> bool {
        self.mode != AutoFailback::Legacy
    }

    pub fn mode(&self) -> AutoFailback {
        self.mode
    }

    pub fn poll_action(&mut self) -> Option<RmAction> {
        self.actions.pop_front()
    }

    /// The groups this node runs, by key.
    pub fn held_keys(&self) -> Vec<&str> {
        self.groups
            .iter()
            .zip(&self.held)
            .filter(|(_, h)| **h)
            .map(|(g, _)| g.key())
            .collect()
    }

    /// `cl_status rscstatus`: `transition` while anything is under way; otherwise legacy
    /// says `none` and negotiated the held set (from what really runs: a failed start is not
    /// reported held, unlike 3.0.6).
    pub fn rscstatus(&self) -> &'static str {
        if self.work.is_some() || !self.queue.is_empty() {
            return "transition";
        }
        if !self.negotiated() {
            return "none";
        }
        self.negotiated_rscstatus()
    }

    pub fn is_idle(&self) -> bool {
        self.work.is_none() && self.queue.is_empty()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        let retry = self.work.as_ref().and_then(|w| w.retry_at);
        let answers = self.awaiting.iter().filter_map(|(_, _, d)| *d).min();
        [retry, self.neg.next_timer(), answers]
            .into_iter()
            .flatten()
            .min()
    }

    fn log(&mut self, level: LogLevel, text: String) {
        self.actions.push_back(RmAction::Log(level, text));
    }

    fn group_by_key(&self, key: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.key() == key)
    }

    fn enqueue(&mut self, t: Task) {
        if !self.queue.contains(&t) && self.work.as_ref().is_none_or(|w| w.task != t) {
            self.queue.push_back(t);
        }
    }

    /// Comm-up: ask for our own groups (`active` counts the nodes that are `active`, us
    /// included). Alone, we grant them to ourselves, as 3.0.6 does.
    pub fn comm_up(&mut self, now: Now, active: usize) {
        self.now_ms = now.mono_ms;
        if self.negotiated() {
            self.neg_comm_up();
            self.advance();
            return;
        }
        let own: Vec<usize> = (0..self.groups.len())
            .filter(|&g| self.groups[g].node == self.me)
            .collect();
        if own.is_empty() {
            self.log(
                LogLevel::Info,
                "No local resources [ResourceManager listkeys] to acquire.".into(),
            );
        }
        for g in own {
            let key = self.groups[g].key().to_string();
            let mut m = Msg::new();
            if active < 2 {
                m.add_str("t", "ip-request-resp")
                    .add_str("dest", &self.me.clone())
                    .add_str("ipaddr", &key)
                    .add_str("weown", "yes")
                    .add_str("ok", "OK");
            } else {
                m.add_str("t", "ip-request").add_str("ipaddr", &key);
                if self.nodes.len() > 2 {
                    // Wait for every live peer: one that does not run the group must not
                    // send us starting it while another is still stopping it.
                    let peers = self.live_peers();
                    self.awaiting.retain(|(ag, _, _)| *ag != g);
                    self.awaiting.push((g, peers, None));
                }
            }
            self.actions.push_back(RmAction::Send(m));
        }
        self.log(
            LogLevel::Info,
            "Local Resource acquisition completed.".into(),
        );
    }

    /// A message from the cluster; `from` is its sender (ourselves for our own messages).
    pub fn message(&mut self, now: Now, from: &str, msg: &Msg) {
        self.now_ms = now.mono_ms;
        let from = from.to_ascii_lowercase();
        if from != self.me && msg.get_str("t") != Some("shutdone") {
            self.gave_up.remove(&from);
            if self.dead.remove(&from) && !self.negotiated() {
                self.hand_over_to_takers();
            }
        }
        if self.negotiated() && self.neg_message(&from, msg) {
            self.advance();
            return;
        }
        match msg.get_str("t") {
            Some("ip-request") if from != self.me && !self.shutting_down => {
                let Some(g) = msg.get_str("ipaddr").and_then(|k| self.group_by_key(k)) else {
                    return;
                };
                if self.nodes.len() > 2 && self.groups[g].node == self.me && self.held[g] {
                    // A third node asks for our own group, thinking us dead: we keep it and
                    // say so (`ok=no`: a 3.0.6 node ignores such an answer, ours drop the
                    // request).
                    let mut m = Msg::new();
                    m.add_str("t", "ip-request-resp")
                        .add_str("dest", &from)
                        .add_str("ipaddr", self.groups[g].key())
                        .add_str("weown", "yes")
                        .add_str("ok", "no");
                    self.actions.push_back(RmAction::Send(m));
                    return;
                }
                let weown = self.held[g];
                if weown {
                    if !self.giving(g) {
                        self.giveip_from.push((g, from.clone()));
                        self.queue.push_back(Task::LocalGiveIp(g));
                    }
                    self.enqueue(Task::Give(g));
                }
                self.answers.push_back((g, from, weown));
                self.queue.push_back(Task::Answer(g));
            }
            Some("ip-request-resp") if !self.shutting_down => {
                let dest = msg.get_str("dest").unwrap_or("").to_ascii_lowercase();
                // A peer takes its own group (it granted it to itself, not seeing us yet):
                // it is its home, we give it up. Two 3.0.6 nodes would both run it.
                if dest != self.me {
                    let g = msg.get_str("ipaddr").and_then(|k| self.group_by_key(k));
                    if let Some(g) =
                        g.filter(|&g| self.taking_or_held(g) && self.groups[g].node == dest)
                    {
                        let key = self.groups[g].key().to_string();
                        self.log(
                            LogLevel::Info,
                            format!("{dest} takes its resource group {key}: giving it up"),
                        );
                        self.queue.retain(|t| *t != Task::Take(g));
                        self.enqueue(Task::Give(g));
                        self.neg_group_left();
                        self.advance();
                    }
                    return;
                }
                if msg.get_str("ok") != Some("OK") {
                    // The owner keeps its group: our request for it is over.
                    let g = msg.get_str("ipaddr").and_then(|k| self.group_by_key(k));
                    if let Some(g) = g.filter(|&g| self.groups[g].node == from) {
                        self.awaiting.retain(|(ag, _, _)| *ag != g);
                    }
                    return;
                }
                let Some(g) = msg.get_str("ipaddr").and_then(|k| self.group_by_key(k)) else {
                    return;
                };
                let key = self.groups[g].key().to_string();
                let weown = msg.get_str("weown").unwrap_or("");
                self.log(
                    LogLevel::Info,
                    format!("ip-request-resp: received ip-request-resp {key} OK {weown}"),
                );
                let owner = self.groups[g].node.clone();
                if owner != self.me
                    && !(self.dead.contains(&owner) && self.taker_of(&owner) == self.me)
                {
                    // An answer to a request for a dead node's group, come after it returned.
                    return;
                }
                if let Some(pos) = self.awaiting.iter().position(|(ag, _, _)| *ag == g) {
                    let (_, peers, deadline) = &mut self.awaiting[pos];
                    // Even a `weown=yes`: another peer may still be stopping the group too.
                    peers.remove(&from);
                    if !peers.is_empty() {
                        deadline.get_or_insert(self.now_ms + ANSWER_WAIT_MS);
                        return;
                    }
                    self.awaiting.remove(pos);
                }
                self.enqueue(Task::Take(g));
            }
            // Standby is a negotiated-mode exchange; every legacy node says so, as 3.0.6 does.
            Some("ask_resources") => {
                self.log(
                    LogLevel::Info,
                    "Standby mode only implemented when nice_failback on".into(),
                );
            }
            // rc.d/hb_takeover of 3.0.6: the other node runs hb_standby with the mirrored set.
            Some("hb_takeover") if from != self.me => {
                let mirrored = match msg.get_str("rsc_hold") {
                    Some("local") => "foreign",
                    Some("foreign") => "local",
                    _ => "all",
                };
                let mut m = Msg::new();
                m.add_str("t", "ask_resources")
                    .add_str("rsc_hold", mirrored)
                    .add_str("info", "me");
                self.actions.push_back(RmAction::Send(m));
            }
            // The full takeover of a dead peer (4.7 -> 4.4), own groups included.
            Some("shutdone") if from != self.me && !self.shutting_down => {
                self.gave_up.insert(from.clone());
                self.take_over_dead(&from);
                self.take_own_missing();
            }
            _ => {}
        }
        self.advance();
    }

    /// A peer was declared dead: its groups are ours now.
    pub fn node_dead(&mut self, now: Now, node: &str) {
        self.now_ms = now.mono_ms;
        let node = node.to_ascii_lowercase();
        if self.shutting_down {
            self.log(
                LogLevel::Info,
                "Resource takeover cancelled - shutdown in progress.".into(),
            );
            return;
        }
        let gave_up = self.gave_up.remove(&node);
        let mut m = Msg::new();
        m.add_str("t", "stonith").add_str("node", &node);
        if gave_up {
            // It released everything before it went: nothing to fence.
            self.log(
                LogLevel::Info,
                format!("Dead node {node} gave up resources."),
            );
            m.add_str("result", "unneeded");
            self.actions.push_back(RmAction::Send(m));
        } else {
            m.add_str("result", "n_stnth");
            self.actions.push_back(RmAction::Send(m));
            self.log(LogLevel::Warn, "No STONITH device configured.".into());
            self.log(LogLevel::Warn, "Shared disks are not protected.".into());
        }
        if self.negotiated() {
            self.cancel_standby();
            // Its groups were taken on its `shutdone` already.
            if !gave_up {
                self.neg_takeover(&node, false);
            }
            self.advance();
            return;
        }
        self.take_over_dead(&node);
        self.take_own_missing();
        self.advance();
    }

    /// Our own groups too, should any be missing (forced acquire, 4.4 step 4).
    fn take_own_missing(&mut self) {
        // With three or more nodes a live peer may run them (ours were away): we ask for
        // them at comm-up instead; only the last node standing takes them by force.
        if self.nodes.len() > 2 && !self.live_peers().is_empty() {
            return;
        }
        for g in 0..self.groups.len() {
            if self.groups[g].node == self.me && !self.held[g] {
                self.enqueue(Task::Take(g));
            }
        }
    }

    /// A peer we took over is back from a partition: it kept (or took back) its own groups, so
    /// we give them up. Done on both sides, every group ends on exactly one node at once;
    /// 3.0.6 instead restarts both daemons, stopping everything for deadtime and more.
    pub fn node_returned(&mut self, now: Now, node: &str) {
        self.now_ms = now.mono_ms;
        let node = node.to_ascii_lowercase();
        self.dead.remove(&node);
        let groups = &self.groups;
        self.awaiting.retain(|(g, _, _)| groups[*g].node != node);
        if self.shutting_down {
            return;
        }
        if !self.negotiated() {
            self.hand_over_to_takers();
            self.claim_taken_groups();
        }
        if self.negotiated() {
            self.neg_node_returned(&node);
            self.advance();
            return;
        }
        for g in 0..self.groups.len() {
            if self.groups[g].node == node && self.taking_or_held(g) {
                let key = self.groups[g].key().to_string();
                self.log(
                    LogLevel::Info,
                    format!("Giving back resource group {key}: {node} is back"),
                );
                self.queue.retain(|t| *t != Task::Take(g));
                // What 3.0.6 does when the owner's `ip-request` comes: the site's hook first.
                if !self.giving(g) {
                    self.giveip_from.push((g, node.clone()));
                    self.queue.push_back(Task::LocalGiveIp(g));
                }
                self.enqueue(Task::Give(g));
                // Once released, tell it so, as if it had asked: its own `ip-request` may
                // have been lost, and it would wait for an answer for ever.
                self.answers.push_back((g, node.clone(), true));
                self.queue.push_back(Task::Answer(g));
            }
        }
        self.advance();
    }

    /// We run group `g`, or are about to (a take queued or under way).
    fn taking_or_held(&self, g: usize) -> bool {
        self.held[g]
            || self.queue.contains(&Task::Take(g))
            || self.work.as_ref().is_some_and(|w| w.task == Task::Take(g))
    }

    /// We are giving group `g` up (queued or under way, its `local_giveip` hook included).
    fn giving(&self, g: usize) -> bool {
        let ours = |t: &Task| *t == Task::Give(g) || *t == Task::LocalGiveIp(g);
        self.queue.iter().any(ours) || self.work.as_ref().is_some_and(|w| ours(&w.task))
    }

    fn take_groups_of(&mut self, node: &str) {
        let theirs: Vec<usize> = (0..self.groups.len())
            .filter(|&g| self.groups[g].node == node)
            .collect();
        if theirs.is_empty() {
            return;
        }
        self.log(
            LogLevel::Info,
            format!("Resources being acquired from {node}."),
        );
        for g in theirs {
            if !self.held[g] {
                let key = self.groups[g].key().to_string();
                self.log(LogLevel::Info, format!("Taking over resource group {key}"));
                self.enqueue(Task::Take(g));
            }
        }
    }

    /// Graceful stop: release every group, in haresources order, whatever we hold (stops are
    /// idempotent), then `Released`.
    pub fn shutdown(&mut self, now: Now) {
        self.now_ms = now.mono_ms;
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        if self.negotiated() {
            self.neg_shutdown();
        }
        self.log(LogLevel::Info, "Giving up all HA resources.".into());
        self.queue.retain(|t| matches!(t, Task::Give(_)));
        for g in 0..self.groups.len() {
            self.enqueue(Task::Give(g));
        }
        self.queue.push_back(Task::Released);
        self.advance();
    }

    pub fn handle_timeout(&mut self, now: Now) {
        self.now_ms = now.mono_ms;
        self.awaited_answers();
        if self.negotiated() {
            self.neg_timeout();
            self.advance();
        }
        let due = self
            .work
            .as_ref()
            .and_then(|w| w.retry_at)
            .is_some_and(|t| t <= now.mono_ms);
        if due {
            if let Some(w) = self.work.as_mut() {
                w.retry_at = None;
            }
            self.run_step();
        }
    }

    /// A script run ended.
    pub fn script_done(&mut self, now: Now, job: u64, result: ScriptResult) {
        self.now_ms = now.mono_ms;
        let Some(w) = self.work.clone().filter(|w| w.job == job) else {
            return;
        };
        let (g, forward) = match w.task {
            Task::Take(g) => (g, true),
            Task::Give(g) => (g, false),
            Task::LocalGiveIp(_) => {
                // Whatever the hook did, the group is given up next (as 3.0.6 does).
                if let ScriptResult::Done { code, .. } = result {
                    if code != 0 {
                        self.log(
                            LogLevel::Warn,
                            format!("rc.d/local_giveip exited with {code}"),
                        );
                    }
                }
                self.work = None;
                self.advance();
                return;
            }
            _ => return,
        };
        let r = self.groups[g].resources[w.index].clone();
        let path = format!(
            "{}{}",
            r.script,
            r.args.iter().map(|a| format!(" {a}")).collect::<String>()
        );
        let ok = match &result {
            ScriptResult::Done { code, .. } => *code == 0,
            ScriptResult::NotFound => {
                self.log(
                    LogLevel::Error,
                    format!("Cannot locate resource script {}", r.script),
                );
                false
            }
            ScriptResult::Failed(why) => {
                self.log(LogLevel::Error, format!("{path} {}: {why}", w.step_name()));
                false
            }
        };
        match w.step {
            Step::Status => {
                let running = matches!(&result, ScriptResult::Done { stdout, .. } if status_says_running(stdout));
                if running {
                    self.next_resource(forward);
                } else {
                    self.set_step(Step::Start);
                }
            }
            Step::Start => {
                if ok {
                    self.next_resource(forward);
                } else {
                    if let ScriptResult::Done { code, .. } = result {
                        self.log(
                            LogLevel::Error,
                            format!("Return code {code} from {path} start"),
                        );
                    }
                    self.log(
                        LogLevel::Crit,
                        format!("Giving up resources due to failure of {}", r.spec),
                    );
                    // Release what was started of it; never report the group as held.
                    self.work = None;
                    self.held[g] = false;
                    self.queue.push_front(Task::Give(g));
                    self.start_failed(g);
                }
            }
            Step::Stop { attempt } => {
                if ok {
                    self.next_resource(forward);
                } else if attempt < STOP_RETRIES {
                    self.log(
                        LogLevel::Info,
                        format!("Retrying failed stop operation [{}]", r.spec),
                    );
                    if let Some(w) = self.work.as_mut() {
                        w.step = Step::Stop {
                            attempt: attempt + 1,
                        };
                        w.retry_at = Some(now.mono_ms + STOP_RETRY_MS);
                    }
                    return;
                } else {
                    self.set_step(Step::StatusAfterStop);
                }
            }
            Step::StatusAfterStop => {
                let running = matches!(&result, ScriptResult::Done { stdout, .. } if status_says_running(stdout));
                if running {
                    // 3.0.6 reboots the machine here; we say it loudly and keep going.
                    self.log(
                        LogLevel::Crit,
                        format!("Resource STOP failure. Reboot required! ({})", r.spec),
                    );
                } else {
                    self.log(
                        LogLevel::Error,
                        format!("Resource script for {} probably not LSB-compliant.", r.spec),
                    );
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "it ({}) MUST succeed on a stop when already stopped",
                            r.spec
                        ),
                    );
                    self.log(LogLevel::Warn, "Machine reboot narrowly avoided!".into());
                }
                self.next_resource(forward);
            }
        }
        self.advance();
    }

    fn set_step(&mut self, step: Step) {
        if let Some(w) = self.work.as_mut() {
            w.step = step;
        }
        self.run_step();
    }

    /// Move to the next resource of the group (left to right to take, right to left to give),
    /// or finish the group.
    fn next_resource(&mut self, forward: bool) {
        let Some(w) = self.work.as_mut() else { return };
        let g = match w.task {
            Task::Take(g) | Task::Give(g) => g,
            _ => return,
        };
        let n = self.groups[g].resources.len();
        let next = if forward {
            w.index + 1
        } else {
            w.index.wrapping_sub(1)
        };
        if next < n {
            w.index = next;
            w.step = if forward {
                Step::Status
            } else {
                Step::Stop { attempt: 0 }
            };
            self.run_step();
            return;
        }
        self.work = None;
        if forward {
            self.held[g] = true;
            self.start_failures[g] = 0;
            let key = self.groups[g].key().to_string();
            self.log(LogLevel::Info, format!("Resource group {key} acquired."));
        } else {
            let key = self.groups[g].key().to_string();
            self.log(LogLevel::Info, format!("Resource group {key} released."));
        }
    }

    /// Start the next queued task when nothing runs.
    fn advance(&mut self) {
        while self.work.is_none() {
            let Some(task) = self.queue.pop_front() else {
                return;
            };
            match task {
                Task::Take(g) => {
                    if self.held[g] {
                        continue;
                    }
                    let g_ = &self.groups[g];
                    let text = format!(
                        "Acquiring resource group: {} {}",
                        g_.node,
                        g_.resources
                            .iter()
                            .map(|r| r.spec.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    self.log(LogLevel::Info, text);
                    self.work = Some(Work {
                        task,
                        index: 0,
                        step: Step::Status,
                        job: 0,
                        retry_at: None,
                    });
                    self.run_step();
                }
                Task::Give(g) => {
                    self.held[g] = false;
                    let g_ = &self.groups[g];
                    let text = format!(
                        "Releasing resource group: {} {}",
                        g_.node,
                        g_.resources
                            .iter()
                            .map(|r| r.spec.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    let last = g_.resources.len().saturating_sub(1);
                    self.log(LogLevel::Info, text);
                    self.work = Some(Work {
                        task,
                        index: last,
                        step: Step::Stop { attempt: 0 },
                        job: 0,
                        retry_at: None,
                    });
                    self.run_step();
                }
                Task::Answer(g) => {
                    let Some(pos) = self.answers.iter().position(|(ag, _, _)| *ag == g) else {
                        continue;
                    };
                    let Some((_, node, weown)) = self.answers.remove(pos) else {
                        continue;
                    };
                    // The group was released before this answer (queue order): go ahead.
                    let mut m = Msg::new();
                    m.add_str("t", "ip-request-resp")
                        .add_str("dest", &node)
                        .add_str("ipaddr", self.groups[g].key())
                        .add_str("weown", if weown { "yes" } else { "no" })
                        .add_str("ok", "OK");
                    self.actions.push_back(RmAction::Send(m));
                }
                Task::Released => {
                    self.log(LogLevel::Info, "All HA resources relinquished.".into());
                    self.actions.push_back(RmAction::Released);
                }
                Task::Mark(mark) => self.neg_mark(mark),
                Task::LocalGiveIp(g) => {
                    let from = match self.giveip_from.iter().position(|(fg, _)| *fg == g) {
                        Some(i) => self.giveip_from.remove(i).1,
                        None => String::new(),
                    };
                    if self.shutting_down {
                        continue;
                    }
                    let job = self.next_job;
                    self.next_job += 1;
                    self.work = Some(Work {
                        task,
                        index: 0,
                        step: Step::Status,
                        job,
                        retry_at: None,
                    });
                    let env = vec![
                        ("HA_t".to_string(), "ip-request".to_string()),
                        ("HA_src".to_string(), from),
                        ("HA_ipaddr".to_string(), self.groups[g].key().to_string()),
                    ];
                    self.actions.push_back(RmAction::RunHook {
                        job,
                        name: "local_giveip".into(),
                        arg: "ip-request".into(),
                        env,
                    });
                }
            }
        }
    }

    /// Ask the runtime to run the current step.
    fn run_step(&mut self) {
        let job = self.next_job;
        let Some(w) = self.work.as_mut() else { return };
        let g = match w.task {
            Task::Take(g) | Task::Give(g) => g,
            _ => return,
        };
        self.next_job += 1;
        w.job = job;
        let op = match w.step {
            Step::Status | Step::StatusAfterStop => Op::Status,
            Step::Start => Op::Start,
            Step::Stop { .. } => Op::Stop,
        };
        let resource = self.groups[g].resources[w.index].clone();
        self.actions.push_back(RmAction::Run { job, resource, op });
    }
}

impl Work {
    fn step_name(&self) -> &'static str {
        match self.step {
            Step::Status | Step::StatusAfterStop => "status",
            Step::Start => "start",
            Step::Stop { .. } => "stop",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::haresources;
    use std::collections::BTreeSet;
    use std::path::Path;

    const T0: Now = Now {
        mono_ms: 0,
        unix_secs: 0,
    };

    fn groups() -> Vec<ResourceGroup> {
        let text = "alice Marker::a1 Marker::a2\nbob Marker::b1\n";
        haresources::parse(
            text,
            Path::new("haresources"),
            &["alice".into(), "bob".into()],
        )
        .unwrap()
    }

    /// Scripts that work: `running` holds what is started; `fail_start` fails its start once
    /// asked; `fail_stop` fails every stop.
    #[derive(Default)]
    struct World {
        running: BTreeSet<String>,
        calls: Vec<String>,
        sent: Vec<Msg>,
        logs: Vec<String>,
        released: bool,
        fail_start: Option<String>,
        fail_stop: Option<String>,
    }

    fn pump(rm: &mut ResourceManager, w: &mut World, now: u64) {
        let at = Now {
            mono_ms: now,
            unix_secs: 0,
        };
        while let Some(a) = rm.poll_action() {
            match a {
                RmAction::Run { job, resource, op } => {
                    let name = resource.spec.clone();
                    w.calls.push(format!("{name} {}", op.as_str()));
                    let result = match op {
                        Op::Status => {
                            let st = if w.running.contains(&name) {
                                "running"
                            } else {
                                "stopped"
                            };
                            ScriptResult::Done {
                                code: 0,
                                stdout: st.into(),
                            }
                        }
                        Op::Start if w.fail_start.as_deref() == Some(name.as_str()) => {
                            ScriptResult::Done {
                                code: 1,
                                stdout: String::new(),
                            }
                        }
                        Op::Start => {
                            w.running.insert(name);
                            ScriptResult::Done {
                                code: 0,
                                stdout: String::new(),
                            }
                        }
                        Op::Stop if w.fail_stop.as_deref() == Some(name.as_str()) => {
                            ScriptResult::Done {
                                code: 1,
                                stdout: String::new(),
                            }
                        }
                        Op::Stop => {
                            w.running.remove(&name);
                            ScriptResult::Done {
                                code: 0,
                                stdout: String::new(),
                            }
                        }
                    };
                    rm.script_done(at, job, result);
                }
                RmAction::Send(m) => w.sent.push(m),
                RmAction::Log(_, t) => w.logs.push(t),
                RmAction::Released => w.released = true,
                RmAction::RunHook { job, name, env, .. } => {
                    let src = env
                        .iter()
                        .find(|(k, _)| k == "HA_src")
                        .map(|(_, v)| v.clone());
                    w.calls
                        .push(format!("hook {name} from {}", src.unwrap_or_default()));
                    rm.script_done(at, job, ScriptResult::NotFound);
                }
            }
        }
    }

    fn own(rm: &mut ResourceManager, w: &mut World) {
        // Our own messages come back to us, as they do in the cluster.
        let mine: Vec<Msg> = std::mem::take(&mut w.sent);
        for m in &mine {
            rm.message(T0, "alice", m);
        }
        w.sent = mine;
    }

    #[test]
    fn alone_at_comm_up_grants_itself_and_starts_left_to_right() {
        let (mut rm, mut w) = (
            ResourceManager::new("alice", groups(), AutoFailback::Legacy),
            World::default(),
        );
        w.running.insert("Marker::a1".into());
        rm.comm_up(T0, 1);
        pump(&mut rm, &mut w, 0);
        assert_eq!(w.sent[0].get_str("t"), Some("ip-request-resp"));
        own(&mut rm, &mut w);
        pump(&mut rm, &mut w, 0);
        // Every resource is checked, the running one is not started again.
        assert_eq!(
            w.calls,
            ["Marker::a1 status", "Marker::a2 status", "Marker::a2 start"]
        );
        assert_eq!(rm.held_keys(), ["Marker::a1"]);
        assert_eq!(rm.rscstatus(), "none");
    }

    #[test]
    fn with_a_peer_it_asks_and_the_holder_gives_back() {
        let (mut alice, mut wa) = (
            ResourceManager::new("alice", groups(), AutoFailback::Legacy),
            World::default(),
        );
        let (mut bob, mut wb) = (
            ResourceManager::new("bob", groups(), AutoFailback::Legacy),
            World::default(),
        );
        // bob holds alice's group (she was away).
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut wb, 0);
        assert_eq!(bob.held_keys(), ["Marker::a1", "Marker::b1"]);
        assert!(wb.sent.iter().any(|m| m.get_str("t") == Some("stonith")));
        alice.comm_up(T0, 2);
        pump(&mut alice, &mut wa, 0);
        let req = wa.sent.pop().unwrap();
        assert_eq!(req.get_str("t"), Some("ip-request"));
        wb.calls.clear();
        bob.message(T0, "alice", &req);
        pump(&mut bob, &mut wb, 0);
        assert_eq!(
            wb.calls,
            [
                "hook local_giveip from alice",
                "Marker::a2 stop",
                "Marker::a1 stop"
            ],
            "the site's hook, then right to left"
        );
        let resp = wb.sent.pop().unwrap();
        assert_eq!(
            (resp.get_str("dest"), resp.get_str("weown")),
            (Some("alice"), Some("yes"))
        );
        alice.message(T0, "bob", &resp);
        pump(&mut alice, &mut wa, 0);
        assert_eq!(alice.held_keys(), ["Marker::a1"]);
        assert_eq!(bob.held_keys(), ["Marker::b1"]);
    }

    #[test]
    fn graceful_stop_releases_every_group_then_reports() {
        let (mut rm, mut w) = (
            ResourceManager::new("alice", groups(), AutoFailback::Legacy),
            World::default(),
        );
        rm.node_dead(T0, "bob");
        pump(&mut rm, &mut w, 0);
        w.calls.clear();
        rm.shutdown(T0);
        pump(&mut rm, &mut w, 0);
        assert_eq!(
            w.calls,
            ["Marker::a2 stop", "Marker::a1 stop", "Marker::b1 stop"]
        );
        assert!(w.released && rm.held_keys().is_empty());
        // A peer's death during the stop takes nothing over.
        rm.node_dead(T0, "bob");
        pump(&mut rm, &mut w, 0);
        assert!(w.logs.iter().any(|l| l.contains("takeover cancelled")));
    }

    #[test]
    fn a_failed_start_releases_the_group_and_never_reports_it_held() {
        let (mut rm, mut w) = (
            ResourceManager::new("alice", groups(), AutoFailback::Legacy),
            World::default(),
        );
        w.fail_start = Some("Marker::a2".into());
        rm.comm_up(T0, 1);
        pump(&mut rm, &mut w, 0);
        own(&mut rm, &mut w);
        pump(&mut rm, &mut w, 0);
        assert!(w
            .logs
            .iter()
            .any(|l| l == "Giving up resources due to failure of Marker::a2"));
        assert!(rm.held_keys().is_empty());
        assert!(
            !w.running.contains("Marker::a1"),
            "what was started is stopped again"
        );
    }

    #[test]
    fn a_failing_stop_is_retried_ten_times_a_second_apart() {
        let (mut rm, mut w) = (
            ResourceManager::new("alice", groups(), AutoFailback::Legacy),
            World::default(),
        );
        w.fail_stop = Some("Marker::b1".into());
        rm.shutdown(T0);
        pump(&mut rm, &mut w, 0);
        let mut t = 0;
        while !w.released && t < 20_000 {
            t += 100;
            rm.handle_timeout(Now {
                mono_ms: t,
                unix_secs: 0,
            });
            pump(&mut rm, &mut w, t);
        }
        assert!(w.released);
        assert_eq!(
            w.calls.iter().filter(|c| *c == "Marker::b1 stop").count(),
            11
        );
        assert!((10_000..11_000).contains(&t), "released at {t}");
        assert!(w
            .logs
            .iter()
            .any(|l| l == "Machine reboot narrowly avoided!"));
    }

    #[test]
    fn a_returning_owner_that_grants_itself_its_group_gets_it_alone() {
        let (mut bob, mut w) = (
            ResourceManager::new("bob", groups(), AutoFailback::Legacy),
            World::default(),
        );
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut w, 0);
        assert_eq!(bob.held_keys(), ["Marker::a1", "Marker::b1"]);
        let mut m = Msg::new();
        m.add_str("t", "ip-request-resp")
            .add_str("dest", "alice")
            .add_str("ipaddr", "Marker::a1")
            .add_str("weown", "yes")
            .add_str("ok", "OK");
        bob.message(T0, "alice", &m);
        pump(&mut bob, &mut w, 0);
        assert_eq!(bob.held_keys(), ["Marker::b1"]);
        // Someone else's group granted to a third party is none of our business.
        m.set_str("dest", "carol");
        m.set_str("ipaddr", "Marker::b1");
        bob.message(T0, "carol", &m);
        pump(&mut bob, &mut w, 0);
        assert_eq!(bob.held_keys(), ["Marker::b1"]);
    }

    #[test]
    fn a_peers_shutdone_takes_its_groups_and_our_missing_ones() {
        let (mut bob, mut w) = (
            ResourceManager::new("bob", groups(), AutoFailback::Legacy),
            World::default(),
        );
        // bob's own request went unanswered (alice was stopping); then her shutdone.
        let mut m = Msg::new();
        m.add_str("t", "shutdone").add_str("st", "dead");
        bob.message(T0, "alice", &m);
        pump(&mut bob, &mut w, 0);
        assert_eq!(bob.held_keys(), ["Marker::a1", "Marker::b1"]);
    }

    #[test]
    fn a_returning_owner_is_told_once_its_group_is_released() {
        let (mut bob, mut w) = (
            ResourceManager::new("bob", groups(), AutoFailback::Legacy),
            World::default(),
        );
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut w, 0);
        w.sent.clear();
        w.calls.clear();
        bob.node_returned(T0, "alice");
        pump(&mut bob, &mut w, 0);
        assert_eq!(
            w.calls,
            [
                "hook local_giveip from alice",
                "Marker::a2 stop",
                "Marker::a1 stop"
            ]
        );
        let grant = w.sent.last().expect("a grant");
        assert_eq!(
            (
                grant.get_str("t"),
                grant.get_str("dest"),
                grant.get_str("ipaddr"),
                grant.get_str("ok")
            ),
            (
                Some("ip-request-resp"),
                Some("alice"),
                Some("Marker::a1"),
                Some("OK")
            )
        );
        assert_eq!(bob.held_keys(), ["Marker::b1"]);
    }

    #[test]
    fn local_giveip_runs_before_a_group_is_given_to_the_node_that_asked() {
        let (mut bob, mut w) = (
            ResourceManager::new("bob", groups(), AutoFailback::Legacy),
            World::default(),
        );
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut w, 0);
        w.calls.clear();
        let mut req = Msg::new();
        req.add_str("t", "ip-request")
            .add_str("ipaddr", "Marker::a1");
        bob.message(T0, "alice", &req);
        pump(&mut bob, &mut w, 0);
        assert_eq!(
            w.calls,
            [
                "hook local_giveip from alice",
                "Marker::a2 stop",
                "Marker::a1 stop"
            ]
        );
        // A group we do not run: no hook, just the answer.
        w.calls.clear();
        bob.message(T0, "alice", &req);
        pump(&mut bob, &mut w, 0);
        assert!(w.calls.is_empty());
    }

    #[test]
    fn status_output_rules() {
        assert!(status_says_running("running"));
        assert!(status_says_running("apache2 is running (pid 42)"));
        assert!(status_says_running("OK"));
        assert!(!status_says_running("stopped"));
        assert!(!status_says_running("apache2 is not running"));
        assert!(!status_says_running("NOT RUNNING"));
        assert!(!status_says_running(""));
    }
}
