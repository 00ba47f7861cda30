//! The negotiated resource manager (`auto_failback on|off`, resources.md 3, 4.1, 4.4-4.7):
//! start-up through `starting` / `resource`, the standby exchange of `ask_resources`
//! (`me` / `other` / `done`) behind hb_standby, hb_takeover and auto failback, takeover of a
//! dead or stopped peer with the `mach_down` announcement. Written for a pair, as 3.0.6's is:
//! "the peer" is whichever other node spoke last.
//!
//! Where 3.0.6 is plainly wrong we do better and stay understood by a 3.0.6 peer: the held
//! set we report to `cl_status` is what really runs; a group whose start failed is handed to
//! the other node (the very group, once), not always `foreign`; after a healed partition the
//! groups go home without restarting the daemon.

use super::{ResourceManager, RmAction, Task};
use crate::cluster::LogLevel;
use crate::config::AutoFailback;
use crate::wire::Msg;

/// Both nodes starting: how long to wait for the peer to settle before taking our groups.
pub const RSCRCVD_WAIT_MS: u64 = 10_000;
/// How long a standby requester waits for the other node's `other`.
pub const STANDBY_REPLY_MS: u64 = 10_000;
/// How long a standby exchange may take once under way.
pub const STANDBY_EXCHANGE_MS: u64 = 3_600_000;
/// Auto failback that cannot go now is tried again this often.
pub const FAILBACK_RETRY_MS: u64 = 1_000;
/// A peer's stop this soon after a healed partition is its 3.0.6 restart.
pub const HEAL_RESTART_WINDOW_MS: u64 = 60_000;
/// After a failed start, the group is handed to the other node this much later (3.0.6's delay).
pub const HANDOVER_AFTER_FAILURE_MS: u64 = 30_000;

/// A held set: what a node says it runs, from its own point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hold {
    pub local: bool,
    pub foreign: bool,
}

impl Hold {
    pub const NONE: Hold = Hold {
        local: false,
        foreign: false,
    };
    pub const LOCAL: Hold = Hold {
        local: true,
        foreign: false,
    };
    pub const FOREIGN: Hold = Hold {
        local: false,
        foreign: true,
    };
    pub const ALL: Hold = Hold {
        local: true,
        foreign: true,
    };

    /// `none`, `local`, `foreign`, `all`; `failback` is hb_standby's word for `foreign`.
    pub fn parse(word: &str) -> Option<Hold> {
        match word.to_ascii_lowercase().as_str() {
            "none" => Some(Hold::NONE),
            "local" => Some(Hold::LOCAL),
            "foreign" | "failback" => Some(Hold::FOREIGN),
            "all" => Some(Hold::ALL),
            _ => None,
        }
    }

    pub fn word(self) -> &'static str {
        match (self.local, self.foreign) {
            (false, false) => "none",
            (true, false) => "local",
            (false, true) => "foreign",
            (true, true) => "all",
        }
    }

    /// The same groups seen from the other node.
    pub fn mirrored(self) -> Hold {
        Hold {
            local: self.foreign,
            foreign: self.local,
        }
    }

    pub fn union(self, o: Hold) -> Hold {
        Hold {
            local: self.local || o.local,
            foreign: self.foreign || o.foreign,
        }
    }

    pub fn minus(self, o: Hold) -> Hold {
        Hold {
            local: self.local && !o.local,
            foreign: self.foreign && !o.foreign,
        }
    }

    pub fn is_none(self) -> bool {
        self == Hold::NONE
    }
}

/// Start-up negotiation (3.0.6's numbering, used in its log lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Init,
    Starting,
    BothStarting,
    RscRcvd,
    Stable,
    Shutdown,
}

impl Phase {
    fn number(self) -> u8 {
        self as u8
    }
}

/// Where a standby exchange is, on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Standby {
    #[default]
    Not,
    /// We asked to go standby.
    Me,
    /// The peer asked; we take.
    Other,
    /// We gave up what was asked; waiting for the other node's `done`.
    Done,
}

/// Work that follows queued group work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::cluster) enum Mark {
    /// Our standby give-up of R (our view) is done.
    StandbyGiven(Hold),
    /// Our acquisition for the peer's standby request R (its view) is done.
    StandbyTaken(Hold),
    /// The dead or stopped peer's groups are ours.
    MachDown,
}

#[derive(Debug, Default)]
pub(in crate::cluster) struct Negotiation {
    phase: Phase,
    /// What we say we hold.
    own: Hold,
    /// What the peer says it holds (its view).
    peer: Hold,
    peer_stable: bool,
    /// The peer can be talked to (heard since its last death or `shutdone`).
    peer_alive: bool,
    peer_name: Option<String>,
    standby: Standby,
    /// The set of the exchange under way, from the requester's view.
    standby_set: Hold,
    standby_deadline: Option<u64>,
    rscrcvd_at: Option<u64>,
    rscrcvd_armed: bool,
    takeover: bool,
    needs_failback: bool,
    failback_at: Option<u64>,
    /// A 3.0.6 peer restarts itself after a healed partition (`shutdone`, then a new start):
    /// its groups go home once it is back and stable, in any mode, as after its restart two
    /// 3.0.6 nodes would have them.
    heal_failback: bool,
    /// When the last partition healed.
    healed_at: Option<u64>,
    /// After a healed partition: ask once for our groups if the peer still says it holds them.
    heal_reclaim: bool,
    handover_at: Option<u64>,
    handover_set: Hold,
    initial_logged: bool,
}

impl Negotiation {
    pub(in crate::cluster) fn next_timer(&self) -> Option<u64> {
        [
            self.standby_deadline,
            self.rscrcvd_at,
            self.failback_at,
            self.handover_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn standby_busy(&self) -> bool {
        self.standby != Standby::Not || self.standby_deadline.is_some()
    }
}

impl ResourceManager {
    fn info(&mut self, text: String) {
        self.actions.push_back(RmAction::Log(LogLevel::Info, text));
    }

    fn send(&mut self, m: Msg) {
        self.actions.push_back(RmAction::Send(m));
    }

    fn send_resource(&mut self, hold: Hold, isstable: bool, info: Option<&str>) {
        let mut m = Msg::new();
        m.add_str("t", "resource")
            .add_str("rsc_hold", hold.word())
            .add_str("rtype", "full")
            .add_str("isstable", if isstable { "1" } else { "0" });
        if let Some(i) = info {
            m.add_str("info", i);
        }
        self.send(m);
    }

    fn send_ask(&mut self, set: Hold, info: &str) {
        let mut m = Msg::new();
        m.add_str("t", "ask_resources")
            .add_str("rsc_hold", set.word())
            .add_str("info", info);
        self.send(m);
    }

    fn is_own_group(&self, g: usize) -> bool {
        self.groups[g].node == self.me
    }

    /// Groups in a held set of ours, in haresources order.
    fn groups_in(&self, set: Hold) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| {
                if self.is_own_group(g) {
                    set.local
                } else {
                    set.foreign
                }
            })
            .collect()
    }

    fn initial_done(&mut self, reason: &str) {
        if !self.neg.initial_logged {
            self.neg.initial_logged = true;
            self.info(format!("Initial resource acquisition complete ({reason})"));
        }
    }

    pub(super) fn cancel_standby(&mut self) {
        if self.neg.standby_busy() {
            self.info("Cancelling pending standby operation".into());
        }
        self.neg.standby = Standby::Not;
        self.neg.standby_deadline = None;
    }

    pub(super) fn negotiated_rscstatus(&self) -> &'static str {
        let n = &self.neg;
        let stable = n.peer_stable
            && !n.takeover
            && !n.standby_busy()
            && matches!(n.phase, Phase::Stable | Phase::Shutdown | Phase::Init);
        if !stable {
            return "transition";
        }
        if self.shutting_down {
            return "none";
        }
        let all_held = |own: bool| {
            (0..self.groups.len())
                .filter(|&g| self.is_own_group(g) == own)
                .all(|g| self.held[g])
        };
        Hold {
            local: n.own.local && all_held(true),
            foreign: n.own.foreign && all_held(false),
        }
        .word()
    }

    /// Comm-up: announce the start; a node that took a dead peer's groups already (it started
    /// alone) waits like one that heard a `resource` message.
    pub(super) fn neg_comm_up(&mut self) {
        let mut m = Msg::new();
        m.add_str("t", "starting");
        self.send(m);
        self.neg.phase = Phase::Starting;
        if !self.neg.own.is_none() {
            self.neg.phase = Phase::RscRcvd;
            self.arm_rscrcvd();
            self.send_resource(self.neg.own, false, None);
        }
    }

    fn arm_rscrcvd(&mut self) {
        if !self.neg.rscrcvd_armed {
            self.neg.rscrcvd_armed = true;
            self.neg.rscrcvd_at = Some(self.now_ms + RSCRCVD_WAIT_MS);
        }
    }

    /// Messages the negotiated manager handles itself; false for the shared ones
    /// (`ip-request`, `ip-request-resp`, `hb_takeover`).
    pub(super) fn neg_message(&mut self, from: &str, msg: &Msg) -> bool {
        let mine = from == self.me;
        let t = msg.get_str("t").unwrap_or("");
        if !mine {
            self.neg.peer_name = Some(from.to_string());
            if t != "shutdone" {
                self.neg.peer_alive = true;
            }
        }
        match t {
            "starting" => {
                if !mine {
                    self.neg_starting();
                }
                true
            }
            "resource" => {
                self.neg_resource(from, msg);
                true
            }
            "ask_resources" => {
                // During shutdown standby requests are dropped without a word, as 3.0.6 does.
                if !self.shutting_down {
                    self.neg_standby(from, msg);
                }
                true
            }
            "shutdone" if !mine => {
                self.gave_up.insert(from.to_string());
                self.neg.peer_alive = false;
                self.neg.peer_stable = true;
                self.neg.peer = Hold::NONE;
                self.cancel_standby();
                // A stop right after a heal is 3.0.6's restart (2 s after it sees the heal,
                // plus the release).
                let after_heal = self
                    .neg
                    .healed_at
                    .is_some_and(|t| self.now_ms.saturating_sub(t) < HEAL_RESTART_WINDOW_MS);
                if !self.shutting_down {
                    self.neg_takeover(from, true);
                    self.neg.heal_failback = after_heal;
                }
                true
            }
            _ => false,
        }
    }

    fn neg_starting(&mut self) {
        match self.neg.phase {
            Phase::Init => {
                self.log(
                    LogLevel::Error,
                    format!(
                        "Received 'starting' message in state {}",
                        self.neg.phase.number()
                    ),
                );
                return;
            }
            Phase::Starting => self.neg.phase = Phase::BothStarting,
            _ => {}
        }
        // Any exchange with the peer's old self is void. (Its held set stays as announced:
        // a peer that took groups over before its comm-up says so before its `starting`.)
        self.neg.peer_stable = false;
        if self.neg.standby_busy() {
            self.cancel_standby();
        }
        if self.neg.takeover {
            self.log(
                LogLevel::Warn,
                "T_STARTING received during takeover.".into(),
            );
        }
        let stable = self.neg.phase == Phase::Stable;
        self.send_resource(self.neg.own, stable, None);
    }

    fn neg_resource(&mut self, from: &str, msg: &Msg) {
        let Some(word) = msg.get_str("rsc_hold") else {
            self.log(
                LogLevel::Error,
                format!("resource message from {from} without rsc_hold: ignored"),
            );
            return;
        };
        let hold = Hold::parse(word).unwrap_or_else(|| {
            self.log(
                LogLevel::Error,
                format!("encode_resources: bad resource type [{word}]"),
            );
            Hold::NONE
        });
        let full = msg.get_str("rtype") == Some("full");
        let isstable = msg.get_str("isstable").map(|v| v.trim() == "1");
        let mach_down = msg.get_str("info") == Some("mach_down");
        if matches!(self.neg.phase, Phase::Starting | Phase::BothStarting) {
            self.neg.phase = Phase::RscRcvd;
            self.arm_rscrcvd();
        }
        if from == self.me {
            if mach_down && self.neg.takeover {
                self.neg.takeover = false;
                self.neg.needs_failback = true;
                self.info("mach_down takeover complete.".into());
                self.initial_done("mach_down");
            }
            self.audit(false);
            return;
        }
        self.neg.peer = if full || hold.is_none() {
            hold
        } else {
            self.neg.peer.union(hold)
        };
        if !mach_down
            && hold.local
            && self.neg.own.foreign
            && !self.neg.standby_busy()
            && !self.shutting_down
        {
            // The owner says it runs its groups while we hold them too: the aftermath of a
            // split brain one side never noticed. The owner keeps them.
            self.info(format!(
                "{from} runs its own resource groups while we hold them too: giving them back"
            ));
            self.give_back_groups_of(from);
            let stable = self.neg.phase == Phase::Stable;
            self.send_resource(self.neg.own, stable, None);
        }
        let was_stable = self.neg.peer_stable;
        if let Some(s) = isstable {
            self.neg.peer_stable = s;
        }
        if isstable == Some(true) && !was_stable {
            self.info("remote resource transition completed.".into());
            let stable = self.neg.phase == Phase::Stable;
            self.send_resource(self.neg.own, stable, None);
            self.try_failback();
        }
        let starting = matches!(
            self.neg.phase,
            Phase::Starting | Phase::BothStarting | Phase::RscRcvd
        );
        if starting && self.neg.peer_stable {
            self.info("remote resource transition completed.".into());
            self.neg.phase = Phase::Stable;
            self.neg.rscrcvd_at = None;
            let acquire = self.own_acquire_wanted(false);
            self.send_resource(self.neg.own, true, None);
            if acquire {
                self.self_grant_own();
            }
            self.try_failback();
            // A returning owner whose groups the peer runs settles with the failback.
            if acquire || self.mode == AutoFailback::Off {
                self.initial_done("T_RESOURCES(them)");
            }
        }
        self.audit(true);
    }

    /// 3.0.6's consistency check of the two held sets (log only), and after a healed
    /// partition the one request that brings our groups home if the peer kept them.
    fn audit(&mut self, peer_spoke: bool) {
        let n = &self.neg;
        let both_ours = n.own.local && n.peer.foreign;
        let both_foreign = n.own.foreign && n.peer.local;
        if both_ours {
            self.log(LogLevel::Error, "Both machines own our resources!".into());
        }
        if both_foreign {
            self.log(
                LogLevel::Error,
                "Both machines own foreign resources!".into(),
            );
        }
        let n = &self.neg;
        let nobody_runs_ours = n.phase == Phase::Stable
            && n.peer_stable
            && n.peer_alive
            && !n.standby_busy()
            && !n.takeover
            && !n.own.local
            && !n.peer.foreign
            && !self.shutting_down;
        if nobody_runs_ours {
            // 3.0.6 only logs this; a group left nowhere (a handover lost in a split brain)
            // is ours to run.
            self.log(LogLevel::Error, "No one owns our local resources!".into());
            self.info("Acquiring our own resource groups: nobody else holds them".into());
            self.neg.own.local = true;
            self.self_grant_own();
        }
        // The peer says it runs our groups while we do: answer each such claim with what we
        // hold, so that (if it is one of ours) it gives them back. A claim lost on the way is
        // made again by the peer's next announcement, so this cannot go on for ever.
        if both_ours && peer_spoke && self.neg.peer_alive && !self.shutting_down {
            let stable = self.neg.phase == Phase::Stable;
            self.send_resource(self.neg.own, stable, None);
        }
        if both_ours && self.neg.heal_reclaim && self.neg.peer_alive && !self.shutting_down {
            self.neg.heal_reclaim = false;
            let peer = self.neg.peer_name.clone().unwrap_or_default();
            self.info(format!(
                "{peer} still holds our resource groups after the partition: asking for them (hb_takeover local)"
            ));
            let mut m = Msg::new();
            m.add_str("t", "hb_takeover").add_str("rsc_hold", "local");
            self.send(m);
        }
    }

    /// Should we acquire our own groups (4.3 step 0)? Marks `local` held when so.
    fn own_acquire_wanted(&mut self, forced: bool) -> bool {
        let n = &self.neg;
        if !forced && n.standby == Standby::Not && (n.peer.foreign || n.own.local) {
            self.info("Local Resource acquisition completed. (none)".into());
            return false;
        }
        self.neg.own.local = true;
        true
    }

    /// Grant ourselves each own group (the start follows when the grant comes back to us),
    /// then announce the held set.
    fn self_grant_own(&mut self) {
        let own: Vec<usize> = (0..self.groups.len())
            .filter(|&g| self.is_own_group(g))
            .collect();
        if own.is_empty() {
            self.info("No local resources [ResourceManager listkeys] to acquire.".into());
        }
        for g in own {
            let mut m = Msg::new();
            m.add_str("t", "ip-request-resp")
                .add_str("dest", &self.me.clone())
                .add_str("ipaddr", self.groups[g].key())
                .add_str("weown", "yes")
                .add_str("ok", "OK");
            self.send(m);
        }
        self.info("Local Resource acquisition completed.".into());
        self.send_resource(self.neg.own, true, Some("req_our_resources()"));
    }

    /// A dead or stopped peer: its groups are ours (4.4), and ours are checked, forced.
    /// On a `shutdone` (`stopped`), what we lack is started in haresources order, as 3.0.6's
    /// standby-style acquisition does before its `mach_down`; after a death the peer's groups
    /// come first.
    pub(super) fn neg_takeover(&mut self, node: &str, stopped: bool) {
        let n = &mut self.neg;
        n.own.foreign = true;
        n.peer = Hold::NONE;
        n.peer_stable = true;
        n.peer_alive = false;
        n.takeover = true;
        n.needs_failback = true;
        n.heal_reclaim = false;
        n.heal_failback = false;
        n.peer_name = Some(node.to_string());
        self.info(format!("Resources being acquired from {node}."));
        for g in 0..self.groups.len() {
            let theirs = self.groups[g].node == node;
            if (theirs || (stopped && self.is_own_group(g))) && !self.held[g] {
                if theirs {
                    let key = self.groups[g].key().to_string();
                    self.info(format!("Taking over resource group {key}"));
                }
                self.enqueue(Task::Take(g));
            }
        }
        self.queue.push_back(Task::Mark(Mark::MachDown));
        self.own_acquire_wanted(true);
        self.self_grant_own();
    }

    /// A peer that we took over is back from a partition (or a freeze): its groups go home
    /// now, and ours come back to us (see `audit`), without 3.0.6's restart of both daemons.
    pub(super) fn neg_node_returned(&mut self, node: &str) {
        self.give_back_groups_of(node);
        let n = &mut self.neg;
        n.peer_alive = true;
        n.needs_failback = false;
        n.healed_at = Some(self.now_ms);
        n.heal_reclaim = true;
        n.peer_name = Some(node.to_string());
        let stable = n.phase == Phase::Stable;
        self.send_resource(self.neg.own, stable, None);
    }

    /// Give `node`'s groups that we hold or are taking back to it.
    fn give_back_groups_of(&mut self, node: &str) {
        let mut gave = false;
        for g in 0..self.groups.len() {
            if self.groups[g].node == node && self.taking_or_held(g) {
                let key = self.groups[g].key().to_string();
                self.info(format!("Giving back resource group {key} to {node}"));
                self.queue.retain(|t| *t != Task::Take(g));
                self.enqueue(Task::Give(g));
                gave = true;
            }
        }
        if gave {
            self.neg.own.foreign = false;
            self.neg.needs_failback = false;
        }
    }

    /// A peer reached `active` after we were up: it may have been away unnoticed (it
    /// restarted, or we declared it dead before ever hearing it) and hold groups we took.
    /// Tell it what we hold, so that the owner-keeps rule in `neg_resource` settles any
    /// overlap at once; for a peer starting normally this repeats the answer to its
    /// `starting`.
    pub fn peer_active(&mut self, now: crate::cluster::Now) {
        self.now_ms = now.mono_ms;
        if !self.negotiated() || self.shutting_down || self.neg.phase == Phase::Init {
            return;
        }
        let stable = self.neg.phase == Phase::Stable;
        self.send_resource(self.neg.own, stable, None);
    }

    /// A group we held or were taking was given up for its owner (see `message`).
    pub(super) fn neg_group_left(&mut self) {
        if !self.negotiated() {
            return;
        }
        let any_foreign = (0..self.groups.len())
            .any(|g| !self.is_own_group(g) && self.taking_or_held(g) && !self.giving(g));
        self.neg.own.foreign = any_foreign;
    }

    pub(super) fn neg_shutdown(&mut self) {
        let n = &mut self.neg;
        n.phase = Phase::Shutdown;
        n.own = Hold::NONE;
        n.takeover = false;
        n.rscrcvd_at = None;
        n.failback_at = None;
        n.handover_at = None;
        n.standby = Standby::Not;
        n.standby_deadline = None;
        self.send_resource(Hold::NONE, false, Some("shutdown"));
    }

    /// Auto failback (4.5), and the return of a healed partition's groups.
    fn try_failback(&mut self) {
        let n = &self.neg;
        let wanted = (self.mode == AutoFailback::On && n.needs_failback) || n.heal_failback;
        if self.shutting_down || !n.own.foreign || !wanted || !n.peer_alive {
            return;
        }
        if n.standby_busy() || !n.peer_stable || n.phase != Phase::Stable {
            self.neg.failback_at = Some(self.now_ms + FAILBACK_RETRY_MS);
            self.log(
                LogLevel::Debug,
                "auto_failback: not now (standby or transition under way); trying again in 1 s"
                    .into(),
            );
            return;
        }
        self.neg.needs_failback = false;
        if self.neg.heal_failback {
            // The partition is undone: one restart per heal.
            self.neg.heal_failback = false;
            self.neg.healed_at = None;
        }
        self.neg.failback_at = None;
        self.send_ask(Hold::FOREIGN, "me");
    }

    /// A start failed for group `g`: hand it to the other node later (once per failure run).
    pub(super) fn start_failed(&mut self, g: usize) {
        self.start_failures[g] += 1;
        if !self.negotiated() || self.shutting_down {
            return;
        }
        let key = self.groups[g].key().to_string();
        if self.start_failures[g] > 1 {
            self.log(
                LogLevel::Crit,
                format!("Resource group {key} failed to start here again: it stays stopped until an administrator acts"),
            );
            return;
        }
        let class = if self.is_own_group(g) {
            Hold::LOCAL
        } else {
            Hold::FOREIGN
        };
        self.neg.handover_set = self.neg.handover_set.union(class);
        if self.neg.handover_at.is_none() {
            self.neg.handover_at = Some(self.now_ms + HANDOVER_AFTER_FAILURE_MS);
        }
        self.info(format!(
            "Resource group {key} failed to start: handing it to the other node in {} s (hb_standby {})",
            HANDOVER_AFTER_FAILURE_MS / 1000,
            class.word()
        ));
    }

    fn try_handover(&mut self) {
        let set = self.neg.handover_set;
        if set.is_none() || self.shutting_down {
            return;
        }
        if !self.neg.peer_alive {
            self.info(format!(
                "No other node to hand the failed {} resource groups to",
                set.word()
            ));
            self.neg.handover_set = Hold::NONE;
            return;
        }
        let n = &self.neg;
        if n.standby_busy() || !n.peer_stable || n.phase != Phase::Stable || !self.is_idle() {
            self.neg.handover_at = Some(self.now_ms + FAILBACK_RETRY_MS);
            return;
        }
        self.neg.handover_set = Hold::NONE;
        self.send_ask(set, "me");
    }

    pub(super) fn neg_timeout(&mut self) {
        let now = self.now_ms;
        let due = |t: Option<u64>| t.is_some_and(|t| t <= now);
        if due(self.neg.rscrcvd_at) {
            self.neg.rscrcvd_at = None;
            if self.neg.phase == Phase::RscRcvd {
                self.neg.phase = Phase::Stable;
                let acquire = self.own_acquire_wanted(false);
                self.info("local resource transition completed.".into());
                self.send_resource(self.neg.own, true, None);
                if acquire {
                    self.self_grant_own();
                }
                self.initial_done("T_RESOURCES(us)");
                self.audit(false);
            }
        }
        if due(self.neg.standby_deadline) {
            self.neg.standby_deadline = None;
            self.neg.standby = Standby::Not;
            self.neg.peer_stable = true;
            self.log(
                LogLevel::Warn,
                "No reply to standby request.  Standby request cancelled.".into(),
            );
        }
        if due(self.neg.failback_at) {
            self.neg.failback_at = None;
            self.try_failback();
        }
        if due(self.neg.handover_at) {
            self.neg.handover_at = None;
            self.try_handover();
        }
    }

    /// The standby exchange (4.6); R is always the requester's view.
    fn neg_standby(&mut self, from: &str, msg: &Msg) {
        let info = msg.get_str("info").unwrap_or("");
        let Some(r) = msg.get_str("rsc_hold").and_then(Hold::parse) else {
            self.log(
                LogLevel::Error,
                format!(
                    "Ignored standby message '{info}' from {from}: bad rsc_hold [{}]",
                    msg.get_str("rsc_hold").unwrap_or("")
                ),
            );
            return;
        };
        let mine = from == self.me;
        let ignored = |s: &Self| {
            format!(
                "Ignored standby message '{info}' from {from} in state {}",
                s.neg.standby as u8
            )
        };
        match info {
            "me" => {
                if let Some(d) = self.neg.standby_deadline {
                    let left = d.saturating_sub(self.now_ms).div_ceil(1000);
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "Standby in progress- new request from {from} ignored [{left} seconds left]"
                        ),
                    );
                    return;
                }
                if self.neg.standby != Standby::Not {
                    let text = ignored(self);
                    self.log(LogLevel::Error, text);
                    return;
                }
                if !self.neg.peer_stable {
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "standby message [me] from {from} ignored.  Other side is in flux."
                        ),
                    );
                    return;
                }
                if self.neg.phase != Phase::Stable {
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "standby message [me] from {from} ignored.  local resources in flux."
                        ),
                    );
                    return;
                }
                self.info(format!("{from} wants to go standby [{}]", r.word()));
                self.neg.peer_stable = false;
                self.neg.standby_set = r;
                if mine {
                    self.neg.standby = Standby::Me;
                    self.neg.standby_deadline = Some(self.now_ms + STANDBY_REPLY_MS);
                } else {
                    self.neg.standby = Standby::Other;
                    self.neg.standby_deadline = Some(self.now_ms + STANDBY_EXCHANGE_MS);
                    self.send_ask(r, "other");
                }
            }
            "other" if mine => {}
            "other" => {
                if self.neg.standby != Standby::Me {
                    let text = ignored(self);
                    self.log(LogLevel::Error, text);
                    return;
                }
                self.info(format!(
                    "standby: {from} can take our {} resources",
                    r.word()
                ));
                self.neg.own = self.neg.own.minus(r);
                self.send_resource(self.neg.own, false, Some("standby"));
                self.info(format!("give up {} HA resources (standby).", r.word()));
                self.neg.standby_deadline = Some(self.now_ms + STANDBY_EXCHANGE_MS);
                for g in self.groups_in(r) {
                    self.queue.retain(|t| *t != Task::Take(g));
                    self.enqueue(Task::Give(g));
                }
                self.queue.push_back(Task::Mark(Mark::StandbyGiven(r)));
            }
            "done" => match (mine, self.neg.standby) {
                (true, Standby::Me) => {
                    self.info(format!("Local standby process completed [{}].", r.word()));
                    self.neg.standby = Standby::Done;
                }
                (false, Standby::Other) => {
                    let m = r.mirrored();
                    self.info(format!(
                        "standby: acquire [{}] resources from {from}",
                        r.word()
                    ));
                    self.info(format!("acquire {} HA resources (standby).", m.word()));
                    for g in self.groups_in(m) {
                        self.enqueue(Task::Take(g));
                    }
                    self.queue.push_back(Task::Mark(Mark::StandbyTaken(r)));
                }
                (true, Standby::Other) => {
                    self.info(format!("Standby resource acquisition done [{}].", r.word()));
                    self.neg.own = self.neg.own.union(r.mirrored());
                    self.neg.standby = Standby::Not;
                    self.neg.standby_deadline = None;
                    self.send_resource(self.neg.own, true, None);
                    self.initial_done("auto_failback");
                }
                (false, Standby::Done) => {
                    self.info(format!(
                        "Other node completed standby takeover of {} resources.",
                        r.word()
                    ));
                    self.neg.standby = Standby::Not;
                    self.neg.standby_deadline = None;
                    self.send_resource(self.neg.own, true, None);
                }
                _ => {
                    let text = ignored(self);
                    self.log(LogLevel::Error, text);
                }
            },
            _ => {
                let text = ignored(self);
                self.log(LogLevel::Error, text);
            }
        }
    }

    pub(super) fn neg_mark(&mut self, mark: Mark) {
        match mark {
            Mark::StandbyGiven(r) => {
                self.info(format!(
                    "{} HA resource release completed (standby).",
                    r.word()
                ));
                self.send_ask(r, "done");
            }
            Mark::StandbyTaken(r) => {
                self.info(format!(
                    "{} HA resource acquisition completed (standby).",
                    r.mirrored().word()
                ));
                self.send_ask(r, "done");
            }
            Mark::MachDown => {
                let node = self.neg.peer_name.clone().unwrap_or_default();
                self.info(format!("mach_down takeover complete for node {node}."));
                let mut m = Msg::new();
                m.add_str("t", "resource")
                    .add_str("rsc_hold", "foreign")
                    .add_str("info", "mach_down");
                self.send(m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Op, ScriptResult};
    use super::*;
    use crate::cluster::Now;
    use crate::config::haresources;
    use std::collections::{BTreeSet, VecDeque};
    use std::path::Path;

    const NAMES: [&str; 2] = ["alice", "bob"];

    struct Node {
        rm: ResourceManager,
        running: BTreeSet<String>,
        calls: Vec<String>,
        logs: Vec<String>,
        sent: Vec<Msg>,
        fail_start: Option<String>,
        up: bool,
    }

    /// Two negotiated managers joined by a perfect link (unless cut), instant scripts.
    struct Pair {
        n: Vec<Node>,
        now: u64,
        linked: bool,
        wire: VecDeque<(usize, Msg)>,
    }

    fn groups(text: &str) -> Vec<crate::config::ResourceGroup> {
        haresources::parse(
            text,
            Path::new("haresources"),
            &["alice".into(), "bob".into()],
        )
        .unwrap()
    }

    impl Pair {
        fn new(mode: AutoFailback, text: &str) -> Pair {
            let n = NAMES
                .iter()
                .map(|name| Node {
                    rm: ResourceManager::new(name, groups(text), mode),
                    running: BTreeSet::new(),
                    calls: Vec::new(),
                    logs: Vec::new(),
                    sent: Vec::new(),
                    fail_start: None,
                    up: false,
                })
                .collect();
            Pair {
                n,
                now: 0,
                linked: true,
                wire: VecDeque::new(),
            }
        }

        fn at(&self) -> Now {
            Now {
                mono_ms: self.now,
                unix_secs: 0,
            }
        }

        fn restart(&mut self, i: usize, mode: AutoFailback, text: &str) {
            self.n[i].rm = ResourceManager::new(NAMES[i], groups(text), mode);
            self.n[i].running.clear();
            self.n[i].sent.clear();
            self.n[i].logs.clear();
            self.n[i].calls.clear();
            self.n[i].up = true;
        }

        /// Run every node's actions and deliver messages until nothing moves.
        #[allow(clippy::needless_range_loop)] // i names the node and its peer (1 - i)
        fn settle(&mut self) {
            loop {
                let mut moved = false;
                for i in 0..2 {
                    while let Some(a) = self.n[i].rm.poll_action() {
                        moved = true;
                        let at = self.at();
                        let node = &mut self.n[i];
                        match a {
                            RmAction::Run { job, resource, op } => {
                                let name = resource.spec.clone();
                                node.calls.push(format!("{name} {}", op.as_str()));
                                let ok = |stdout: &str| ScriptResult::Done {
                                    code: 0,
                                    stdout: stdout.into(),
                                };
                                let r = match op {
                                    Op::Status if node.running.contains(&name) => ok("running"),
                                    Op::Status => ok("stopped"),
                                    Op::Start if node.fail_start.as_deref() == Some(&name) => {
                                        ScriptResult::Done {
                                            code: 1,
                                            stdout: String::new(),
                                        }
                                    }
                                    Op::Start => {
                                        node.running.insert(name);
                                        ok("")
                                    }
                                    Op::Stop => {
                                        node.running.remove(&name);
                                        ok("")
                                    }
                                };
                                node.rm.script_done(at, job, r);
                            }
                            RmAction::Send(m) => {
                                node.sent.push(m.clone());
                                node.rm.message(at, NAMES[i], &m);
                                if self.linked && self.n[1 - i].up {
                                    self.wire.push_back((1 - i, m));
                                }
                            }
                            RmAction::Log(_, t) => node.logs.push(t),
                            RmAction::Released => {}
                            RmAction::RunHook { job, .. } => {
                                node.rm.script_done(at, job, ScriptResult::NotFound)
                            }
                        }
                    }
                }
                while let Some((to, m)) = self.wire.pop_front() {
                    moved = true;
                    let at = self.at();
                    if self.n[to].up {
                        self.n[to].rm.message(at, NAMES[1 - to], &m);
                    }
                }
                if !moved {
                    return;
                }
            }
        }

        fn run_for(&mut self, ms: u64) {
            let end = self.now + ms;
            while self.now < end {
                self.now += 50;
                let at = self.at();
                for i in 0..2 {
                    if self.n[i].up && self.n[i].rm.poll_timeout().is_some_and(|t| t <= self.now) {
                        self.n[i].rm.handle_timeout(at);
                    }
                }
                self.settle();
            }
        }

        fn comm_up(&mut self, i: usize, active: usize) {
            self.n[i].up = true;
            let at = self.at();
            self.n[i].rm.comm_up(at, active);
            self.settle();
        }

        fn dead(&mut self, i: usize) {
            let at = self.at();
            self.n[1 - i].rm.node_dead(at, NAMES[i]);
            self.settle();
        }

        fn standby(&mut self, i: usize, set: &str) {
            let mut m = Msg::new();
            m.add_str("t", "ask_resources")
                .add_str("rsc_hold", set)
                .add_str("info", "me");
            self.inject(i, m);
        }

        fn takeover(&mut self, i: usize, set: &str) {
            let mut m = Msg::new();
            m.add_str("t", "hb_takeover").add_str("rsc_hold", set);
            self.inject(i, m);
        }

        /// A message written into node i's FIFO: sent and handled by itself too.
        fn inject(&mut self, i: usize, m: Msg) {
            let at = self.at();
            self.n[i].rm.message(at, NAMES[i], &m);
            if self.linked {
                self.wire.push_back((1 - i, m));
            }
            self.settle();
        }

        fn running(&self, i: usize) -> Vec<&str> {
            self.n[i].running.iter().map(String::as_str).collect()
        }

        fn logged(&self, i: usize, text: &str) -> bool {
            self.n[i].logs.iter().any(|l| l.contains(text))
        }

        fn sent_resources(&self, i: usize) -> Vec<String> {
            self.n[i]
                .sent
                .iter()
                .filter(|m| m.get_str("t") == Some("resource"))
                .map(|m| {
                    format!(
                        "{} {}{}",
                        m.get_str("rsc_hold").unwrap_or(""),
                        m.get_str("isstable").unwrap_or("-"),
                        m.get_str("info")
                            .map(|i| format!(" {i}"))
                            .unwrap_or_default()
                    )
                })
                .collect()
        }
    }

    const HARES: &str = "alice Marker::svcA\nbob Marker::svcB\n";

    fn both_started(mode: AutoFailback) -> Pair {
        let mut p = Pair::new(mode, HARES);
        p.n[0].up = true;
        p.n[1].up = true;
        p.comm_up(0, 2);
        p.comm_up(1, 2);
        p
    }

    #[test]
    fn both_starting_wait_ten_seconds_then_take_their_own() {
        let mut p = both_started(AutoFailback::On);
        assert_eq!(p.n[0].rm.rscstatus(), "transition");
        p.run_for(9_900);
        assert!(p.running(0).is_empty() && p.running(1).is_empty());
        assert_eq!(p.sent_resources(0), ["none 0"]);
        p.run_for(300);
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert_eq!(p.running(1), ["Marker::svcB"]);
        assert_eq!(p.n[0].rm.rscstatus(), "local");
        assert_eq!(p.n[1].rm.rscstatus(), "local");
        assert!(p.logged(0, "Initial resource acquisition complete"));
    }

    #[test]
    fn a_lone_node_takes_everything_and_the_owner_gets_its_group_back_with_failback_on() {
        let mut p = Pair::new(AutoFailback::On, HARES);
        p.n[0].up = true;
        let at = p.at();
        p.n[0].rm.node_dead(at, "bob");
        p.comm_up(0, 1);
        assert_eq!(p.running(0), ["Marker::svcA", "Marker::svcB"]);
        assert!(p.logged(0, "mach_down takeover complete."));
        assert_eq!(p.n[0].rm.rscstatus(), "transition", "the 10 s tail");
        p.run_for(10_100);
        assert_eq!(p.n[0].rm.rscstatus(), "all");
        // bob joins the stable alice.
        p.restart(1, AutoFailback::On, HARES);
        p.comm_up(1, 2);
        p.run_for(2_000);
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert_eq!(p.running(1), ["Marker::svcB"]);
        assert!(p.logged(1, "Local Resource acquisition completed. (none)"));
        assert!(p.logged(0, "alice wants to go standby [foreign]"));
        assert!(p.logged(1, "Initial resource acquisition complete (auto_failback)"));
        assert_eq!(p.n[0].rm.rscstatus(), "local");
        assert_eq!(p.n[1].rm.rscstatus(), "local");
        // Every start was preceded by a status check, and svcB moved stop-then-start.
        assert_eq!(p.n[1].calls, ["Marker::svcB status", "Marker::svcB start"]);
    }

    #[test]
    fn with_failback_off_the_returning_owner_stays_idle() {
        let mut p = both_started(AutoFailback::Off);
        p.run_for(10_500);
        p.n[0].up = false;
        p.dead(0);
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
        assert!(p.n[1]
            .sent
            .iter()
            .any(|m| m.get_str("t") == Some("stonith")));
        p.restart(0, AutoFailback::Off, HARES);
        p.comm_up(0, 2);
        p.run_for(5_000);
        assert!(p.running(0).is_empty());
        assert_eq!(p.n[0].rm.rscstatus(), "none");
        assert_eq!(p.n[1].rm.rscstatus(), "all");
        assert_eq!(p.sent_resources(0), ["none 0", "none 1"]);
        // hb_standby on bob hands everything over.
        p.standby(1, "all");
        p.run_for(1_000);
        assert_eq!(p.running(0), ["Marker::svcA", "Marker::svcB"]);
        assert!(p.running(1).is_empty());
        assert_eq!(p.n[0].rm.rscstatus(), "all");
        assert_eq!(p.n[1].rm.rscstatus(), "none");
    }

    /// The nine commands of resources.md 12.11, state after each.
    #[test]
    fn hb_standby_and_hb_takeover_from_both_sides() {
        let mut p = both_started(AutoFailback::Off);
        p.run_for(10_500);
        p.standby(0, "all"); // alice none, bob all
        p.run_for(1_000);
        let steps: [(usize, bool, &str, [&str; 2]); 9] = [
            (1, false, "all", ["all", "none"]),
            (0, false, "foreign", ["local", "local"]),
            (0, false, "local", ["none", "all"]),
            (1, false, "failback", ["local", "local"]),
            (0, true, "all", ["all", "none"]),
            (1, true, "local", ["local", "local"]),
            (1, true, "all", ["none", "all"]),
            (0, true, "failback", ["all", "none"]),
            (1, false, "all", ["all", "none"]),
        ];
        for (k, (who, take, set, want)) in steps.into_iter().enumerate() {
            if take {
                p.takeover(who, set);
            } else {
                p.standby(who, set);
            }
            p.run_for(2_000);
            let got = [p.n[0].rm.rscstatus(), p.n[1].rm.rscstatus()];
            assert_eq!(got, want, "after step {}", k + 1);
            for (i, w) in want.iter().enumerate() {
                let expect: Vec<&str> = match *w {
                    "all" => vec!["Marker::svcA", "Marker::svcB"],
                    "local" => vec![["Marker::svcA", "Marker::svcB"][i]],
                    "foreign" => vec![["Marker::svcB", "Marker::svcA"][i]],
                    _ => vec![],
                };
                assert_eq!(p.running(i), expect, "node {i} after step {}", k + 1);
            }
        }
    }

    #[test]
    fn standby_requests_during_start_up_or_twice_are_dropped() {
        let mut p = both_started(AutoFailback::On);
        p.standby(0, "all");
        assert!(p.logged(0, "Other side is in flux."));
        assert!(p.logged(1, "Other side is in flux."));
        p.run_for(10_500);
        assert_eq!(p.running(0), ["Marker::svcA"]);
        // Two in a row: the second is dropped on both sides with the time left.
        let mut m = Msg::new();
        m.add_str("t", "ask_resources")
            .add_str("rsc_hold", "all")
            .add_str("info", "me");
        let at = p.at();
        p.n[0].rm.message(at, "alice", &m);
        p.n[0].rm.message(at, "alice", &m);
        p.wire.push_back((1, m.clone()));
        p.wire.push_back((1, m));
        p.settle();
        p.run_for(1_000);
        assert!(p.logged(0, "new request from alice ignored [10 seconds left]"));
        assert!(p.logged(1, "new request from alice ignored [3600 seconds left]"));
        assert!(p.running(0).is_empty());
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
    }

    #[test]
    fn an_unanswered_standby_is_cancelled_after_ten_seconds() {
        let mut p = both_started(AutoFailback::On);
        p.run_for(10_500);
        p.linked = false;
        p.standby(0, "all");
        assert_eq!(p.n[0].rm.rscstatus(), "transition");
        p.run_for(10_100);
        assert!(p.logged(
            0,
            "No reply to standby request.  Standby request cancelled."
        ));
        assert_eq!(p.n[0].rm.rscstatus(), "local");
        assert_eq!(p.running(0), ["Marker::svcA"]);
    }

    #[test]
    fn a_graceful_stop_hands_over_at_once() {
        let mut p = both_started(AutoFailback::On);
        p.run_for(10_500);
        let at = p.at();
        p.n[1].rm.shutdown(at);
        p.settle();
        // What bob's membership does once it has released everything.
        let mut m = Msg::new();
        m.add_str("t", "shutdone").add_str("st", "dead");
        p.n[1].up = false;
        p.n[0].rm.message(at, "bob", &m);
        p.settle();
        assert!(p.running(1).is_empty());
        assert_eq!(p.running(0), ["Marker::svcA", "Marker::svcB"]);
        assert!(p.sent_resources(1).contains(&"none 0 shutdown".to_string()));
        assert_eq!(p.n[0].rm.rscstatus(), "all");
        // Its later death needs no fencing.
        p.dead(1);
        let stonith = p.n[0]
            .sent
            .iter()
            .rfind(|m| m.get_str("t") == Some("stonith"));
        assert_eq!(stonith.and_then(|m| m.get_str("result")), Some("unneeded"));
        assert!(p.logged(0, "Dead node bob gave up resources."));
    }

    #[test]
    fn a_healed_partition_sends_every_group_home() {
        for mode in [AutoFailback::On, AutoFailback::Off] {
            let mut p = both_started(mode);
            p.run_for(10_500);
            p.linked = false;
            p.dead(0);
            p.dead(1);
            assert_eq!(p.running(0), ["Marker::svcA", "Marker::svcB"]);
            assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
            p.linked = true;
            let at = p.at();
            p.n[0].rm.node_returned(at, "bob");
            p.n[1].rm.node_returned(at, "alice");
            p.settle();
            p.run_for(3_000);
            assert_eq!(p.running(0), ["Marker::svcA"], "{mode:?}");
            assert_eq!(p.running(1), ["Marker::svcB"], "{mode:?}");
            assert_eq!(p.n[0].rm.rscstatus(), "local");
            assert_eq!(p.n[1].rm.rscstatus(), "local");
        }
    }

    /// A 3.0.6 peer restarts after a healed partition; with failback off its group still
    /// goes home, as after two 3.0.6 nodes' restart.
    #[test]
    fn a_peer_restarting_after_a_heal_gets_its_groups_back_even_with_failback_off() {
        let mut p = both_started(AutoFailback::Off);
        p.run_for(10_500);
        p.linked = false;
        p.dead(0);
        p.dead(1);
        p.linked = true;
        let at = p.at();
        p.n[1].rm.node_returned(at, "alice");
        p.settle();
        // alice behaves as 3.0.6: releases everything, says shutdone, restarts.
        p.run_for(2_000);
        let at = p.at();
        p.n[0].rm.shutdown(at);
        p.settle();
        let mut m = Msg::new();
        m.add_str("t", "shutdone").add_str("st", "dead");
        p.n[0].up = false;
        p.n[1].rm.message(at, "alice", &m);
        p.settle();
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
        p.run_for(5_000);
        p.restart(0, AutoFailback::Off, HARES);
        p.comm_up(0, 2);
        p.run_for(3_000);
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert_eq!(p.running(1), ["Marker::svcB"]);
        // A later ordinary stop and return of alice leaves her idle again (failback off).
        let at = p.at();
        p.n[0].rm.shutdown(at);
        p.settle();
        p.n[0].up = false;
        p.n[1].rm.message(at, "alice", &m);
        p.settle();
        p.run_for(90_000);
        p.restart(0, AutoFailback::Off, HARES);
        p.comm_up(0, 2);
        p.run_for(3_000);
        assert!(p.running(0).is_empty());
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
    }

    #[test]
    fn a_failed_start_is_handed_to_the_other_node_once() {
        let text = "alice Marker::svcA Marker::svcA2\nbob Marker::svcB\n";
        let mut p = Pair::new(AutoFailback::On, text);
        p.n[0].fail_start = Some("Marker::svcA2".into());
        p.n[0].up = true;
        p.n[1].up = true;
        p.comm_up(0, 2);
        p.comm_up(1, 2);
        p.run_for(10_500);
        assert!(p.running(0).is_empty(), "the failed group is released");
        assert_eq!(p.n[0].rm.rscstatus(), "none", "and not reported held");
        p.run_for(30_500);
        assert_eq!(
            p.running(1),
            ["Marker::svcA", "Marker::svcA2", "Marker::svcB"]
        );
        // If it fails there too, it is not bounced back and forth.
        let mut p = Pair::new(AutoFailback::On, text);
        p.n[0].fail_start = Some("Marker::svcA2".into());
        p.n[1].fail_start = Some("Marker::svcA2".into());
        p.n[0].up = true;
        p.n[1].up = true;
        p.comm_up(0, 2);
        p.comm_up(1, 2);
        p.run_for(120_000);
        let a_starts = p.n[0]
            .calls
            .iter()
            .filter(|c| *c == "Marker::svcA2 start")
            .count();
        let b_starts = p.n[1]
            .calls
            .iter()
            .filter(|c| *c == "Marker::svcA2 start")
            .count();
        assert!(a_starts <= 2 && b_starts <= 1, "{a_starts} {b_starts}");
        assert!(p.running(0).is_empty());
        assert_eq!(p.running(1), ["Marker::svcB"]);
    }

    #[test]
    fn starting_before_comm_up_is_refused_and_answers_carry_the_held_set() {
        let mut p = Pair::new(AutoFailback::On, HARES);
        p.n[0].up = true;
        p.n[1].up = true;
        let mut m = Msg::new();
        m.add_str("t", "starting");
        let at = p.at();
        p.n[0].rm.message(at, "bob", &m);
        p.settle();
        assert!(p.logged(0, "Received 'starting' message in state 0"));
        assert!(p.n[0].sent.is_empty());
    }

    #[test]
    fn hold_words() {
        for w in ["none", "local", "foreign", "all"] {
            assert_eq!(Hold::parse(w).unwrap().word(), w);
        }
        assert_eq!(Hold::parse("failback"), Some(Hold::FOREIGN));
        assert_eq!(Hold::parse("bogus"), None);
        assert_eq!(Hold::LOCAL.mirrored(), Hold::FOREIGN);
        assert_eq!(Hold::ALL.minus(Hold::LOCAL), Hold::FOREIGN);
    }
}
