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

use std::collections::BTreeMap;

use std::collections::BTreeSet;

use super::engine::{Engine, Milestone, Task};
use super::legacy::{mirror_takeover, on_ip_request, on_ip_request_resp, GrantOutcome};
use crate::cluster::LogLevel;
use crate::wire::messages::{some, AskResources, HbTakeover, Message, Resource as ResourceMsg};

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

/// Where a standby exchange is, on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Standby {
    #[default]
    Not,
    /// We asked to go standby: R, the set we asked to give.
    Me(Hold),
    /// The peer asked to give R (its view); we take.
    Other(Hold),
    /// We gave up what was asked; waiting for the other node's `done`.
    Done,
}

impl Standby {
    /// 3.0.6's number for the state, in its log lines.
    fn number(self) -> u8 {
        match self {
            Standby::Not => 0,
            Standby::Me(_) => 1,
            Standby::Other(_) => 2,
            Standby::Done => 3,
        }
    }
}

/// Work that follows queued group work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    /// Our standby give-up of R (our view) is done.
    StandbyGiven(Hold),
    /// Our acquisition for the peer's standby request R (its view) is done.
    StandbyTaken(Hold),
    /// The dead or stopped peer's groups are ours.
    MachDown,
}

/// The negotiated manager's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A standby exchange gives up waiting for the other node.
    StandbyReply,
    /// The start-up negotiation stops waiting for the peer's `resource` message.
    RscRcvd,
    /// Try the failback again.
    Failback,
    /// Hand a group over after a failed start (or try again).
    Handover,
    /// The other node of a standby exchange stops waiting for the requester to begin its
    /// give-up (its `resource ... info=standby`, sent as soon as it has our `other`).
    RequesterSilent,
    /// The other node of a standby exchange asks a requester of ours again for its `done`:
    /// the give-up began but the `done` may be lost for good (a partition outlasting the
    /// sender's history), and without it the group runs nowhere for the exchange's hour.
    DoneOverdue,
}

/// One table of deadlines (monotonic ms), at most one per timer.
#[derive(Debug, Default)]
struct Timers {
    at: BTreeMap<Timer, u64>,
}

impl Timers {
    fn set(&mut self, t: Timer, at: u64) {
        self.at.insert(t, at);
    }

    fn clear(&mut self, t: Timer) {
        self.at.remove(&t);
    }

    fn get(&self, t: Timer) -> Option<u64> {
        self.at.get(&t).copied()
    }

    fn is_set(&self, t: Timer) -> bool {
        self.at.contains_key(&t)
    }

    /// Clear `t` if it is due at `now`; true if it was.
    fn take_due(&mut self, t: Timer, now: u64) -> bool {
        let due = self.get(t).is_some_and(|at| at <= now);
        if due {
            self.clear(t);
        }
        due
    }

    fn next(&self) -> Option<u64> {
        self.at.values().copied().min()
    }
}

/// The peer as this manager sees it (a pair: whichever other node spoke last).
#[derive(Debug, Default)]
struct PeerView {
    name: Option<String>,
    /// What it says it holds (its view).
    hold: Hold,
    /// It says its resources are settled (`isstable=1`), or it is gone.
    stable: bool,
    /// It can be talked to (heard since its last death or `shutdone`).
    alive: bool,
    /// It runs this implementation (its status says `hbcopies`): it answers a repeated
    /// `other` with its `done` again, where 3.0.6 would log an error or give up twice.
    ours: bool,
}

/// After a healed partition, which 3.0.6 ends by restarting and we heal in place.
#[derive(Debug, Default)]
struct Heal {
    /// When the last partition healed.
    at: Option<u64>,
    /// A 3.0.6 peer restarts itself after a healed partition (`shutdone`, then a new start):
    /// its groups go home once it is back and stable, in any mode, as after its restart two
    /// 3.0.6 nodes would have them.
    failback: bool,
    /// Ask once for our groups if the peer still says it holds them.
    reclaim: bool,
    /// The resource acquisition that follows the heal (groups going home) is under way; its
    /// end is logged as a start-up's is (see `check_heal_settled`).
    settling: bool,
    /// The peer announced its held set since we lost it (what we knew before is stale).
    peer_spoke: bool,
}

/// The negotiated manager's state.
#[derive(Debug, Default)]
pub(super) struct Negotiated {
    /// `auto_failback on` (else `off`).
    failback: bool,
    phase: Phase,
    /// What we say we hold.
    own: Hold,
    peer: PeerView,
    standby: Standby,
    /// A standby exchange we took part in as the other node, dropped because the requester
    /// stayed silent (R, its view): its `done`, should it come after all, is still taken.
    late_done: Option<Hold>,
    /// The start-up wait for the peer's `resource` was armed (once per process).
    rscrcvd_armed: bool,
    /// A takeover of the dead or stopped peer's groups is under way (until our `mach_down`).
    takeover: bool,
    /// Auto failback is due (a death or a takeover since the last one).
    needs_failback: bool,
    heal: Heal,
    /// Groups whose start failed here, to hand to the other node.
    handover_set: Hold,
    /// `Initial resource acquisition complete` was logged.
    initial_logged: bool,
    /// Every deadline of the negotiated manager.
    timers: Timers,
}

fn send_resource(eng: &mut Engine, hold: Hold, isstable: bool, info: Option<&str>) {
    eng.send(resource_msg(hold, isstable, info));
}

fn resource_msg(hold: Hold, isstable: bool, info: Option<&str>) -> ResourceMsg {
    ResourceMsg {
        rsc_hold: some(hold.word()),
        rtype: some("full"),
        isstable: some(if isstable { "1" } else { "0" }),
        info: info.map(str::to_string),
        quick_start: None,
    }
}

fn send_ask(eng: &mut Engine, set: Hold, info: &str) {
    eng.send(AskResources {
        rsc_hold: some(set.word()),
        info: some(info),
    });
}

/// Groups in a held set of ours, in haresources order.
fn groups_in(eng: &Engine, set: Hold) -> Vec<usize> {
    (0..eng.groups.len())
        .filter(|&g| {
            if eng.is_own_group(g) {
                set.local
            } else {
                set.foreign
            }
        })
        .collect()
}

impl Negotiated {
    pub fn new(failback: bool) -> Negotiated {
        Negotiated {
            failback,
            ..Negotiated::default()
        }
    }

    pub fn failback(&self) -> bool {
        self.failback
    }

    /// The start-up negotiation is over: what we hold is decided.
    pub fn negotiated(&self) -> bool {
        matches!(self.phase, Phase::Stable | Phase::Shutdown)
    }

    /// We say we hold group `g` (its take may still be on its way: a self-grant).
    pub fn claims(&self, eng: &Engine, g: usize) -> bool {
        if eng.is_own_group(g) {
            self.own.local
        } else {
            self.own.foreign
        }
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next()
    }

    fn standby_busy(&self) -> bool {
        self.standby != Standby::Not || self.timers.is_set(Timer::StandbyReply)
    }

    fn initial_done(&mut self, eng: &mut Engine, reason: &str) {
        if !self.initial_logged {
            self.initial_logged = true;
            eng.info(format!("Initial resource acquisition complete ({reason})"));
        }
    }

    /// After a healed partition 3.0.6 restarts and logs `Initial resource acquisition
    /// complete` once its new start-up acquisition is done (what CTS's Split_brain waits for
    /// on both nodes). We heal in place, with no restart; the acquisition that follows the heal
    /// ends when every group runs at home (ours here, the peer's there, as two restarted 3.0.6
    /// nodes end), nothing is under way and both sides are stable: that end is logged with
    /// the same words, once per heal.
    pub fn check_heal_settled(&mut self, eng: &mut Engine) {
        if !self.heal.settling || eng.stopping || !eng.is_idle() || !self.peer.alive {
            return;
        }
        if self.rscstatus(eng) == "transition" {
            return;
        }
        let home = (0..eng.groups.len()).all(|g| eng.groups[g].held == eng.is_own_group(g));
        let peer_home = self.heal.peer_spoke && !self.peer.hold.foreign;
        if home && peer_home {
            self.heal.settling = false;
            self.initial_logged = true;
            eng.info("Initial resource acquisition complete (partition healed)".into());
        }
    }

    pub fn cancel_standby(&mut self, eng: &mut Engine) {
        if self.standby_busy() {
            eng.info("Cancelling pending standby operation".into());
        }
        self.standby = Standby::Not;
        self.timers.clear(Timer::StandbyReply);
        self.timers.clear(Timer::RequesterSilent);
        self.timers.clear(Timer::DoneOverdue);
        self.late_done = None;
    }

    pub fn rscstatus(&self, eng: &Engine) -> &'static str {
        let n = self;
        let stable = n.peer.stable
            && !n.takeover
            && !n.standby_busy()
            && matches!(n.phase, Phase::Stable | Phase::Shutdown | Phase::Init);
        if !stable {
            return "transition";
        }
        if eng.stopping {
            return "none";
        }
        let all_held = |own: bool| {
            (0..eng.groups.len())
                .filter(|&g| eng.is_own_group(g) == own)
                .all(|g| eng.groups[g].held)
        };
        Hold {
            local: n.own.local && all_held(true),
            foreign: n.own.foreign && all_held(false),
        }
        .word()
    }

    /// Comm-up: announce the start; a node that took a dead peer's groups already (it started
    /// alone) waits like one that heard a `resource` message.
    pub fn comm_up(&mut self, eng: &mut Engine) {
        eng.send(Message::Starting);
        self.phase = Phase::Starting;
        if !self.own.is_none() {
            self.phase = Phase::RscRcvd;
            self.arm_rscrcvd(eng);
            self.announce(eng);
        }
    }

    /// What we hold, stable once the start-up negotiation is over; while it lasts, with
    /// nothing held, the offer of a quick start (see `resource_message`).
    fn announce(&self, eng: &mut Engine) {
        eng.send(ResourceMsg {
            quick_start: self.offers_quick_start(eng).then(|| "1".to_string()),
            ..resource_msg(self.own, self.phase == Phase::Stable, None)
        });
    }

    fn offers_quick_start(&self, eng: &Engine) -> bool {
        matches!(
            self.phase,
            Phase::Starting | Phase::BothStarting | Phase::RscRcvd
        ) && self.own.is_none()
            && !self.takeover
            && !eng.stopping
    }

    /// The end of the start-up negotiation: the 10 s timer, or a quick start.
    fn start_up_done(&mut self, eng: &mut Engine, detail: &str) {
        self.timers.clear(Timer::RscRcvd);
        self.phase = Phase::Stable;
        let acquire = self.own_acquire_wanted(eng, false);
        eng.info(format!("local resource transition completed.{detail}"));
        self.announce(eng);
        if acquire {
            self.self_grant_own(eng);
        }
        self.initial_done(eng, "T_RESOURCES(us)");
        self.audit(eng, false);
    }

    fn arm_rscrcvd(&mut self, eng: &mut Engine) {
        if !self.rscrcvd_armed {
            self.rscrcvd_armed = true;
            self.timers
                .set(Timer::RscRcvd, eng.now_ms + RSCRCVD_WAIT_MS);
        }
    }

    /// A message from the cluster (ourselves included); the grant exchange and `hb_takeover`
    /// are handled as the legacy manager does.
    pub fn message(
        &mut self,
        eng: &mut Engine,
        gave_up: &mut BTreeSet<String>,
        from: &str,
        msg: &Message,
    ) {
        let mine = from == eng.me;
        if !mine {
            self.peer.name = Some(from.to_string());
            if !matches!(msg, Message::Shutdone(_)) {
                self.peer.alive = true;
            }
        }
        match msg {
            Message::Starting if !mine => self.peer_starting(eng),
            Message::Resource(r) => self.resource_message(eng, from, r),
            // During shutdown standby requests are dropped without a word, as 3.0.6 does.
            Message::AskResources(ask) if !eng.stopping => self.standby_message(eng, from, ask),
            Message::Shutdone(_) if !mine => {
                gave_up.insert(from.to_string());
                self.peer.alive = false;
                self.peer.stable = true;
                self.peer.hold = Hold::NONE;
                self.cancel_standby(eng);
                // A stop right after a heal is 3.0.6's restart (2 s after it sees the heal,
                // plus the release).
                let after_heal = self
                    .heal
                    .at
                    .is_some_and(|t| eng.now_ms.saturating_sub(t) < HEAL_RESTART_WINDOW_MS);
                if !eng.stopping {
                    self.take_over(eng, from, true);
                    self.heal.failback = after_heal;
                }
            }
            Message::IpRequest(req) => on_ip_request(eng, from, req),
            Message::IpRequestResp(resp) => {
                let outcome = on_ip_request_resp(eng, None, from, resp);
                if outcome == GrantOutcome::OwnerTookIt {
                    self.group_left(eng);
                }
            }
            Message::HbTakeover(req) if !mine => mirror_takeover(eng, req),
            _ => {}
        }
    }

    /// The peer's `starting`, lost and resent, came after a later `resource` message of its
    /// (restarted) self: whatever we were exchanging with its old self is void; where it
    /// stands now, that later message has told (it is not in flux again).
    pub fn late_starting(&mut self, eng: &mut Engine) {
        self.cancel_standby(eng);
        if self.phase != Phase::Init {
            self.announce(eng);
        }
        self.audit(eng, false);
        // Its stable `resource` message came first, so no in-flux-to-stable step started the
        // failback it may be owed (a heal's): start it now.
        self.try_failback(eng);
    }

    fn peer_starting(&mut self, eng: &mut Engine) {
        match self.phase {
            // Before our own comm-up: 3.0.6 registers its handler for `starting` only at
            // comm-up, so an early one is dropped unseen (no ERROR line); the peer learns our
            // state from the `starting` we send at comm-up, as between two 3.0.6 nodes.
            Phase::Init => {
                eng.log(
                    LogLevel::Debug,
                    "'starting' received before our comm-up: ignored".into(),
                );
                return;
            }
            Phase::Starting => self.phase = Phase::BothStarting,
            _ => {}
        }
        // Any exchange with the peer's old self is void. (Its held set stays as announced:
        // a peer that took groups over before its comm-up says so before its `starting`.)
        self.peer.stable = false;
        self.late_done = None;
        if self.standby_busy() {
            self.cancel_standby(eng);
        }
        if self.takeover {
            eng.log(
                LogLevel::Warn,
                "T_STARTING received during takeover.".into(),
            );
        }
        self.announce(eng);
    }

    fn resource_message(&mut self, eng: &mut Engine, from: &str, msg: &ResourceMsg) {
        let Some(word) = msg.rsc_hold.as_deref() else {
            eng.log(
                LogLevel::Error,
                format!("resource message from {from} without rsc_hold: ignored"),
            );
            return;
        };
        let hold = Hold::parse(word).unwrap_or_else(|| {
            eng.log(
                LogLevel::Error,
                format!("encode_resources: bad resource type [{word}]"),
            );
            Hold::NONE
        });
        let full = msg.is_full();
        let isstable = msg.stable();
        let mach_down = msg.info.as_deref() == Some("mach_down");
        if matches!(self.phase, Phase::Starting | Phase::BothStarting) {
            self.phase = Phase::RscRcvd;
            self.arm_rscrcvd(eng);
        }
        if from != eng.me && msg.info.as_deref() == Some("shutdown") && !eng.stopping {
            // The peer is stopping: its groups come to us at its `shutdone`. Check now what we
            // would start, so that the take runs only starts.
            eng.probe_idle_groups();
        }
        if from == eng.me {
            if mach_down && self.takeover {
                self.takeover = false;
                self.needs_failback = true;
                eng.info("mach_down takeover complete.".into());
                self.initial_done(eng, "mach_down");
            }
            self.audit(eng, false);
            return;
        }
        self.peer.hold = if full || hold.is_none() {
            hold
        } else {
            self.peer.hold.union(hold)
        };
        self.heal.peer_spoke = true;
        if msg.info.as_deref() == Some("standby") && matches!(self.standby, Standby::Other(_)) {
            // The requester has our `other` and gives up: its `done` follows.
            self.timers.clear(Timer::RequesterSilent);
            if self.peer.ours {
                self.timers
                    .set(Timer::DoneOverdue, eng.now_ms + STANDBY_REPLY_MS);
            }
        }
        // A request of ours to give the owner's groups away (`me` for `foreign`, not yet
        // answered) does not hold them here: the owner running them is what we asked for, and
        // the exchange may be void (the owner declared us dead meanwhile and dropped its side
        // of it, a partition we never noticed), so waiting for a reply that may never come
        // would keep the double run until the reply deadline.
        let asked_to_give_them = matches!(self.standby, Standby::Me(r) if r.foreign);
        if !mach_down
            && hold.local
            && self.own.foreign
            && (!self.standby_busy() || asked_to_give_them)
            && !eng.stopping
        {
            // The owner says it runs its groups while we hold them too: the aftermath of a
            // split brain one side never noticed. The owner keeps them.
            eng.info(format!(
                "{from} runs its own resource groups while we hold them too: giving them back"
            ));
            self.give_back_groups_of(eng, from);
            self.announce(eng);
        }
        let was_stable = self.peer.stable;
        if let Some(s) = isstable {
            self.peer.stable = s;
        }
        if isstable == Some(true) && !was_stable {
            eng.info("remote resource transition completed.".into());
            self.announce(eng);
            self.try_failback(eng);
        }
        let starting = matches!(
            self.phase,
            Phase::Starting | Phase::BothStarting | Phase::RscRcvd
        );
        if starting && self.peer.stable {
            eng.info("remote resource transition completed.".into());
            self.phase = Phase::Stable;
            self.timers.clear(Timer::RscRcvd);
            let acquire = self.own_acquire_wanted(eng, false);
            self.announce(eng);
            if acquire {
                self.self_grant_own(eng);
            }
            self.try_failback(eng);
            // A returning owner whose groups the peer runs settles with the failback.
            if acquire || !self.failback {
                self.initial_done(eng, "T_RESOURCES(them)");
            }
        } else if starting
            && msg.offers_quick_start()
            && self.peer.hold.is_none()
            && self.offers_quick_start(eng)
        {
            // Both are ours, both starting, neither holds anything: the 10 s wait would end
            // the same way (each takes its own groups), so it ends now. A 3.0.6 peer never
            // offers this, and keeps its timing exactly.
            self.start_up_done(
                eng,
                " (quick start: the peer starts too and holds nothing: no 10 s wait)",
            );
        }
        self.audit(eng, true);
    }

    /// 3.0.6's consistency check of the two held sets (log only), and after a healed
    /// partition the one request that brings our groups home if the peer kept them.
    fn audit(&mut self, eng: &mut Engine, peer_spoke: bool) {
        let n = &*self;
        let both_ours = n.own.local && n.peer.hold.foreign;
        let both_foreign = n.own.foreign && n.peer.hold.local;
        if both_ours {
            eng.log(LogLevel::Error, "Both machines own our resources!".into());
        }
        if both_foreign {
            eng.log(
                LogLevel::Error,
                "Both machines own foreign resources!".into(),
            );
        }
        let n = &*self;
        let nobody_runs_ours = n.phase == Phase::Stable
            && n.peer.stable
            && n.peer.alive
            && !n.standby_busy()
            && !n.takeover
            && !n.own.local
            && !n.peer.hold.foreign
            && !eng.stopping;
        if nobody_runs_ours {
            // 3.0.6 only logs this; a group left nowhere (a handover lost in a split brain)
            // is ours to run.
            eng.log(LogLevel::Error, "No one owns our local resources!".into());
            eng.info("Acquiring our own resource groups: nobody else holds them".into());
            self.own.local = true;
            self.self_grant_own(eng);
        }
        // The peer says it runs our groups while we do: answer each such claim with what we
        // hold, so that (if it is one of ours) it gives them back. A claim lost on the way is
        // made again by the peer's next announcement, so this cannot go on for ever.
        if both_ours && peer_spoke && self.peer.alive && !eng.stopping {
            self.announce(eng);
        }
        if both_ours && self.heal.reclaim && self.peer.alive && !eng.stopping {
            self.heal.reclaim = false;
            let peer = self.peer.name.clone().unwrap_or_default();
            eng.info(format!(
                "{peer} still holds our resource groups after the partition: asking for them (hb_takeover local)"
            ));
            eng.send(HbTakeover {
                rsc_hold: some("local"),
            });
        }
    }

    /// Should we acquire our own groups (4.3 step 0)? Marks `local` held when so.
    fn own_acquire_wanted(&mut self, eng: &mut Engine, forced: bool) -> bool {
        let n = &*self;
        if !forced && n.standby == Standby::Not && (n.peer.hold.foreign || n.own.local) {
            eng.info("Local Resource acquisition completed. (none)".into());
            return false;
        }
        self.own.local = true;
        true
    }

    /// Grant ourselves each own group (the start follows when the grant comes back to us),
    /// then announce the held set.
    fn self_grant_own(&mut self, eng: &mut Engine) {
        let own: Vec<usize> = (0..eng.groups.len())
            .filter(|&g| eng.is_own_group(g))
            .collect();
        if own.is_empty() {
            eng.info("No local resources [ResourceManager listkeys] to acquire.".into());
        }
        for g in own {
            eng.grant_to_self(g);
        }
        eng.info("Local Resource acquisition completed.".into());
        send_resource(eng, self.own, true, Some("req_our_resources()"));
    }

    /// A dead or stopped peer: its groups are ours (4.4), and ours are checked, forced.
    /// On a `shutdone` (`stopped`), what we lack is started in haresources order, as 3.0.6's
    /// standby-style acquisition does before its `mach_down`; after a death the peer's groups
    /// come first.
    pub fn take_over(&mut self, eng: &mut Engine, node: &str, stopped: bool) {
        self.own.foreign = true;
        self.peer.hold = Hold::NONE;
        self.peer.stable = true;
        self.peer.alive = false;
        self.takeover = true;
        self.needs_failback = true;
        self.heal.reclaim = false;
        self.heal.failback = false;
        // What the peer said before it was lost is stale; a partition's far side may speak
        // again (and settle things) before our membership calls it back.
        self.heal.peer_spoke = false;
        self.peer.name = Some(node.to_string());
        eng.info(format!("Resources being acquired from {node}."));
        for g in 0..eng.groups.len() {
            let theirs = eng.groups[g].owner() == node;
            if (theirs || (stopped && eng.is_own_group(g))) && !eng.groups[g].held {
                if theirs {
                    let key = eng.groups[g].key().to_string();
                    eng.info(format!("Taking over resource group {key}"));
                }
                eng.enqueue(Task::Take(g));
            }
        }
        eng.push(Task::Milestone(Milestone::Negotiated(Mark::MachDown)));
        self.own_acquire_wanted(eng, true);
        self.self_grant_own(eng);
    }

    /// A peer that we took over is back from a partition (or a freeze): its groups go home
    /// now, and ours come back to us (see `audit`), without 3.0.6's restart of both daemons.
    pub fn node_returned(&mut self, eng: &mut Engine, node: &str) {
        self.give_back_groups_of(eng, node);
        self.peer.alive = true;
        self.needs_failback = false;
        self.heal.at = Some(eng.now_ms);
        self.heal.reclaim = true;
        self.heal.settling = true;
        self.peer.name = Some(node.to_string());
        self.announce(eng);
    }

    /// Give `node`'s groups that we hold or are taking back to it.
    fn give_back_groups_of(&mut self, eng: &mut Engine, node: &str) {
        for g in 0..eng.groups.len() {
            if eng.groups[g].owner() == node && eng.taking_or_held(g) {
                let key = eng.groups[g].key().to_string();
                eng.info(format!("Giving back resource group {key} to {node}"));
                eng.cancel_take(g);
                eng.enqueue(Task::Give(g));
            }
        }
        // Even with nothing to give (a peer that owns no group), we no longer hold its set:
        // still claiming `foreign` would draw the same answer from the peer for ever.
        self.own.foreign = false;
        self.needs_failback = false;
    }

    /// A peer reached `active` after we were up: it may have been away unnoticed (it
    /// restarted, or we declared it dead before ever hearing it) and hold groups we took.
    /// Tell it what we hold, so that the owner-keeps rule in `resource_message` settles any
    /// overlap at once; for a peer starting normally this repeats the answer to its
    /// `starting`.
    pub fn peer_active(&mut self, eng: &mut Engine) {
        if eng.stopping || self.phase == Phase::Init {
            return;
        }
        self.announce(eng);
    }

    /// A group we held or were taking was given up for its owner (see `message`).
    fn group_left(&mut self, eng: &mut Engine) {
        let any_foreign = (0..eng.groups.len())
            .any(|g| !eng.is_own_group(g) && eng.taking_or_held(g) && !eng.giving(g));
        self.own.foreign = any_foreign;
    }

    pub fn shutdown(&mut self, eng: &mut Engine) {
        self.phase = Phase::Shutdown;
        self.own = Hold::NONE;
        self.takeover = false;
        self.timers.clear(Timer::RscRcvd);
        self.timers.clear(Timer::Failback);
        self.timers.clear(Timer::Handover);
        self.standby = Standby::Not;
        self.timers.clear(Timer::StandbyReply);
        self.timers.clear(Timer::RequesterSilent);
        self.timers.clear(Timer::DoneOverdue);
        self.late_done = None;
        send_resource(eng, Hold::NONE, false, Some("shutdown"));
    }

    /// Auto failback (4.5), and the return of a healed partition's groups.
    fn try_failback(&mut self, eng: &mut Engine) {
        let n = &*self;
        let wanted = (self.failback && n.needs_failback) || n.heal.failback;
        if eng.stopping || !n.own.foreign || !wanted || !n.peer.alive {
            return;
        }
        if n.standby_busy() || !n.peer.stable || n.phase != Phase::Stable {
            self.timers
                .set(Timer::Failback, eng.now_ms + FAILBACK_RETRY_MS);
            eng.log(
                LogLevel::Debug,
                "auto_failback: not now (standby or transition under way); trying again in 1 s"
                    .into(),
            );
            return;
        }
        self.needs_failback = false;
        if self.heal.failback {
            // The partition is undone: one restart per heal.
            self.heal.failback = false;
            self.heal.at = None;
        }
        self.timers.clear(Timer::Failback);
        send_ask(eng, Hold::FOREIGN, "me");
    }

    /// A start failed for group `g`: hand it to the other node later (once per failure run).
    pub fn start_failed(&mut self, eng: &mut Engine, g: usize) {
        if eng.stopping {
            return;
        }
        let key = eng.groups[g].key().to_string();
        if eng.groups[g].start_failures > 1 {
            eng.log(
                LogLevel::Crit,
                format!("Resource group {key} failed to start here again: it stays stopped until an administrator acts"),
            );
            return;
        }
        let class = if eng.is_own_group(g) {
            Hold::LOCAL
        } else {
            Hold::FOREIGN
        };
        self.handover_set = self.handover_set.union(class);
        if !self.timers.is_set(Timer::Handover) {
            self.timers
                .set(Timer::Handover, eng.now_ms + HANDOVER_AFTER_FAILURE_MS);
        }
        eng.info(format!(
            "Resource group {key} failed to start: handing it to the other node in {} s (hb_standby {})",
            HANDOVER_AFTER_FAILURE_MS / 1000,
            class.word()
        ));
    }

    fn try_handover(&mut self, eng: &mut Engine) {
        let set = self.handover_set;
        if set.is_none() || eng.stopping {
            return;
        }
        if !self.peer.alive {
            eng.info(format!(
                "No other node to hand the failed {} resource groups to",
                set.word()
            ));
            self.handover_set = Hold::NONE;
            return;
        }
        let n = &*self;
        if n.standby_busy() || !n.peer.stable || n.phase != Phase::Stable || !eng.is_idle() {
            self.timers
                .set(Timer::Handover, eng.now_ms + FAILBACK_RETRY_MS);
            return;
        }
        self.handover_set = Hold::NONE;
        send_ask(eng, set, "me");
    }

    pub fn handle_timeout(&mut self, eng: &mut Engine) {
        let now = eng.now_ms;
        // The timer is cleared whatever the phase (`&&` evaluates it first).
        if self.timers.take_due(Timer::RscRcvd, now) && self.phase == Phase::RscRcvd {
            self.start_up_done(eng, "");
        }
        if self.timers.take_due(Timer::StandbyReply, now) {
            self.standby = Standby::Not;
            self.peer.stable = true;
            eng.log(
                LogLevel::Warn,
                "No reply to standby request.  Standby request cancelled.".into(),
            );
        }
        if self.timers.take_due(Timer::RequesterSilent, now) {
            if let Standby::Other(r) = self.standby {
                self.requester_silent(eng, r);
            }
        }
        if self.timers.take_due(Timer::DoneOverdue, now) {
            if let Standby::Other(r) = self.standby {
                self.ask_done_again(eng, r);
            }
        }
        if self.timers.take_due(Timer::Failback, now) {
            self.try_failback(eng);
        }
        if self.timers.take_due(Timer::Handover, now) {
            self.try_handover(eng);
        }
    }

    /// The standby exchange (4.6); R is always the requester's view.
    fn standby_message(&mut self, eng: &mut Engine, from: &str, msg: &AskResources) {
        let info = msg.info.as_deref().unwrap_or("");
        let Some(r) = msg.rsc_hold.as_deref().and_then(Hold::parse) else {
            eng.log(
                LogLevel::Error,
                format!(
                    "Ignored standby message '{info}' from {from}: bad rsc_hold [{}]",
                    msg.rsc_hold.as_deref().unwrap_or("")
                ),
            );
            return;
        };
        let mine = from == eng.me;
        let ignored = |s: &Self| {
            format!(
                "Ignored standby message '{info}' from {from} in state {}",
                s.standby.number()
            )
        };
        match info {
            "me" => {
                if let Some(d) = self.timers.get(Timer::StandbyReply) {
                    let left = d.saturating_sub(eng.now_ms).div_ceil(1000);
                    eng.log(
                        LogLevel::Warn,
                        format!(
                            "Standby in progress- new request from {from} ignored [{left} seconds left]"
                        ),
                    );
                    return;
                }
                if self.standby != Standby::Not {
                    let text = ignored(self);
                    eng.log(LogLevel::Error, text);
                    return;
                }
                if !self.peer.stable {
                    eng.log(
                        LogLevel::Warn,
                        format!(
                            "standby message [me] from {from} ignored.  Other side is in flux."
                        ),
                    );
                    return;
                }
                if self.phase != Phase::Stable {
                    eng.log(
                        LogLevel::Warn,
                        format!(
                            "standby message [me] from {from} ignored.  local resources in flux."
                        ),
                    );
                    return;
                }
                eng.info(format!("{from} wants to go standby [{}]", r.word()));
                self.peer.stable = false;
                if mine {
                    self.standby = Standby::Me(r);
                    self.timers
                        .set(Timer::StandbyReply, eng.now_ms + STANDBY_REPLY_MS);
                } else {
                    self.standby = Standby::Other(r);
                    self.late_done = None;
                    self.timers
                        .set(Timer::StandbyReply, eng.now_ms + STANDBY_EXCHANGE_MS);
                    self.timers
                        .set(Timer::RequesterSilent, eng.now_ms + STANDBY_REPLY_MS);
                    send_ask(eng, r, "other");
                    // We take R once the requester has given it up: check now what we would
                    // start, so that the take after its `done` runs only starts.
                    let ours = groups_in(eng, r.mirrored());
                    eng.probe_groups(ours);
                }
            }
            "other" if mine => {}
            "other" if self.standby == Standby::Done => {
                // A repeat (see `Timer::DoneOverdue`): our `done` did not arrive.
                eng.info(format!(
                    "standby: {from} asks again: our give-up [{}] is done",
                    r.word()
                ));
                send_ask(eng, r, "done");
            }
            "other"
                if self.peer.ours && self.standby == Standby::Not && self.runs_none_of(eng, r) =>
            {
                // A repeat after our side ended another way (a partition, a takeover and the
                // give-back after it): what was asked runs nowhere here, so it is given up.
                // Only a peer of ours repeats `other`; a late one from 3.0.6 is ignored as
                // 3.0.6 ignores it.
                eng.info(format!(
                    "standby: {from} asks again: we run none of [{}]",
                    r.word()
                ));
                send_ask(eng, r, "done");
            }
            "other"
                if eng.is_queued(&Task::Milestone(Milestone::Negotiated(Mark::StandbyGiven(
                    r,
                )))) =>
            {
                // A repeat while our give-up still runs: its `done` follows.
            }
            "other" => {
                if !matches!(self.standby, Standby::Me(_)) {
                    let text = ignored(self);
                    eng.log(LogLevel::Error, text);
                    return;
                }
                eng.info(format!(
                    "standby: {from} can take our {} resources",
                    r.word()
                ));
                self.own = self.own.minus(r);
                send_resource(eng, self.own, false, Some("standby"));
                eng.info(format!("give up {} HA resources (standby).", r.word()));
                self.timers
                    .set(Timer::StandbyReply, eng.now_ms + STANDBY_EXCHANGE_MS);
                for g in groups_in(eng, r) {
                    eng.cancel_take(g);
                    eng.enqueue(Task::Give(g));
                }
                eng.push(Task::Milestone(Milestone::Negotiated(Mark::StandbyGiven(
                    r,
                ))));
            }
            "done" => match (mine, self.standby) {
                (true, Standby::Me(_)) => {
                    eng.info(format!("Local standby process completed [{}].", r.word()));
                    self.standby = Standby::Done;
                }
                (false, Standby::Other(_)) => self.standby_acquire(eng, from, r),
                (false, Standby::Not) if self.late_done == Some(r) => {
                    // The requester was slow, not gone: finish the exchange after all.
                    eng.info(format!(
                        "standby: late 'done' from {from} [{}]: taking its resources after all",
                        r.word()
                    ));
                    self.late_done = None;
                    self.standby = Standby::Other(r);
                    self.timers
                        .set(Timer::StandbyReply, eng.now_ms + STANDBY_EXCHANGE_MS);
                    self.standby_acquire(eng, from, r);
                }
                (true, Standby::Other(_)) => {
                    eng.info(format!("Standby resource acquisition done [{}].", r.word()));
                    self.own = self.own.union(r.mirrored());
                    self.standby = Standby::Not;
                    self.timers.clear(Timer::StandbyReply);
                    send_resource(eng, self.own, true, None);
                    self.initial_done(eng, "auto_failback");
                }
                (false, Standby::Done) => {
                    eng.info(format!(
                        "Other node completed standby takeover of {} resources.",
                        r.word()
                    ));
                    self.standby = Standby::Not;
                    self.timers.clear(Timer::StandbyReply);
                    send_resource(eng, self.own, true, None);
                }
                _ => {
                    let text = ignored(self);
                    eng.log(LogLevel::Error, text);
                }
            },
            _ => {
                let text = ignored(self);
                eng.log(LogLevel::Error, text);
            }
        }
    }

    /// The other node's side of the exchange, step 5: the requester gave up R (its view);
    /// we acquire the mirrored set, then say `done`.
    fn standby_acquire(&mut self, eng: &mut Engine, from: &str, r: Hold) {
        self.timers.clear(Timer::RequesterSilent);
        self.timers.clear(Timer::DoneOverdue);
        let taken = Task::Milestone(Milestone::Negotiated(Mark::StandbyTaken(r)));
        if eng.is_queued(&taken) {
            // Already under way (a repeated `done`).
            return;
        }
        let m = r.mirrored();
        eng.info(format!(
            "standby: acquire [{}] resources from {from}",
            r.word()
        ));
        eng.info(format!("acquire {} HA resources (standby).", m.word()));
        for g in groups_in(eng, m) {
            eng.enqueue(Task::Take(g));
        }
        eng.push(Task::Milestone(Milestone::Negotiated(Mark::StandbyTaken(
            r,
        ))));
    }

    /// We answered a standby request with `other`, and in `STANDBY_REPLY_MS` the requester
    /// has not begun its give-up: our `other` was lost, or it dropped its side (its own wait
    /// for `other` is over by now, or it declared us dead in a partition we never noticed).
    /// 3.0.6 waits for its `done` for an hour, leaving the groups it would hand over where
    /// they are even when nobody runs them; we drop our side and check who runs what.
    fn requester_silent(&mut self, eng: &mut Engine, r: Hold) {
        let peer = self.peer.name.clone().unwrap_or_default();
        eng.log(
            LogLevel::Warn,
            format!(
                "{peer} has not begun its standby [{}] in {} s",
                r.word(),
                STANDBY_REPLY_MS / 1000
            ),
        );
        self.cancel_standby(eng);
        self.late_done = Some(r);
        self.peer.stable = true;
        self.audit(eng, false);
    }

    /// A requester of ours began its give-up of R (its view) but its `done` has not come:
    /// ask again, as often as this timer runs, until the `done` or the exchange's deadline.
    fn ask_done_again(&mut self, eng: &mut Engine, r: Hold) {
        let peer = self.peer.name.clone().unwrap_or_default();
        eng.log(
            LogLevel::Warn,
            format!(
                "standby: no 'done' from {peer} [{}] in {} s: asking again",
                r.word(),
                STANDBY_REPLY_MS / 1000
            ),
        );
        send_ask(eng, r, "other");
        self.timers
            .set(Timer::DoneOverdue, eng.now_ms + STANDBY_REPLY_MS);
    }

    /// No group of R (our view) runs here or is being taken or given up.
    fn runs_none_of(&self, eng: &Engine, r: Hold) -> bool {
        groups_in(eng, r)
            .into_iter()
            .all(|g| !eng.taking_or_held(g) && !eng.giving(g))
    }

    /// Whether the peer runs this implementation (see `PeerView::ours`).
    pub fn peer_is_ours(&mut self, ours: bool) {
        self.peer.ours = ours;
    }

    pub fn milestone(&mut self, eng: &mut Engine, mark: Mark) {
        match mark {
            Mark::StandbyGiven(r) => {
                eng.info(format!(
                    "{} HA resource release completed (standby).",
                    r.word()
                ));
                send_ask(eng, r, "done");
            }
            Mark::StandbyTaken(r) => {
                eng.info(format!(
                    "{} HA resource acquisition completed (standby).",
                    r.mirrored().word()
                ));
                send_ask(eng, r, "done");
            }
            Mark::MachDown => {
                let node = self.peer.name.clone().unwrap_or_default();
                eng.info(format!("mach_down takeover complete for node {node}."));
                eng.send(ResourceMsg {
                    rsc_hold: some("foreign"),
                    info: some("mach_down"),
                    ..ResourceMsg::default()
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Op, ResourceManager, RmAction, ScriptResult};
    use super::*;
    use crate::cluster::Now;
    use crate::config::haresources;
    use crate::config::AutoFailback;
    use crate::wire::Msg;
    use std::collections::{BTreeSet, VecDeque};
    use std::path::Path;

    #[test]
    fn the_timer_table_keeps_one_deadline_per_timer() {
        let mut t = Timers::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Failback, 500);
        t.set(Timer::StandbyReply, 300);
        t.set(Timer::Failback, 700);
        assert_eq!((t.get(Timer::Failback), t.next()), (Some(700), Some(300)));
        assert!(!t.take_due(Timer::StandbyReply, 299), "not yet due");
        assert!(t.take_due(Timer::StandbyReply, 300));
        assert!(!t.is_set(Timer::StandbyReply), "taken");
        assert!(!t.take_due(Timer::Handover, 10_000), "never set");
        t.clear(Timer::Failback);
        assert_eq!(t.next(), None);
    }

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

    /// Which messages a test link loses: (receiving node, message) -> lost.
    type LinkLoss = Box<dyn Fn(usize, &Msg) -> bool>;

    /// Two negotiated managers joined by a perfect link (unless cut), instant scripts.
    struct Pair {
        n: Vec<Node>,
        now: u64,
        linked: bool,
        wire: VecDeque<(usize, Msg)>,
        /// Messages the link loses: (receiving node, message) -> lost.
        lose: Option<LinkLoss>,
        /// Off, each node sees its peer as a 3.0.6 node, whose timing most tests here check:
        /// the link drops `quick_start`, and no node is told its peer is one of ours.
        ours: bool,
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
        /// From now on the link loses every standby message (`ask_resources`) with this
        /// `info` on its way to node `to`.
        fn lose_standby(&mut self, to: usize, info: &'static str) {
            self.lose = Some(Box::new(move |dest, m| {
                dest == to
                    && m.get_str("t") == Some("ask_resources")
                    && m.get_str("info") == Some(info)
            }));
        }

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
                lose: None,
                ours: false,
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
            // Two nodes answering each other for ever is a defect (a message storm), not a
            // test that hangs.
            for _round in 0..10_000 {
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
                                let mut m = m.emit();
                                node.sent.push(m.clone());
                                if !self.ours {
                                    m.remove("quick_start");
                                }
                                node.rm.message(at, NAMES[i], &m);
                                let lost = self.lose.as_ref().is_some_and(|f| f(1 - i, &m));
                                if self.linked && self.n[1 - i].up && !lost {
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
                        self.n[to].rm.peer_is_ours(NAMES[1 - to], self.ours);
                        self.n[to].rm.message(at, NAMES[1 - to], &m);
                    }
                }
                if !moved {
                    return;
                }
            }
            panic!(
                "message storm: the nodes still answer each other after 10 000 rounds; last sent by alice {:?}",
                self.sent_resources(0).last()
            );
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

    /// alice's daemon is killed while svcA runs; bob takes svcA; alice's new daemon finds svcA
    /// still running (left by the old one): it says so as 3.0.6's verifyallidle does, and
    /// stops it, since bob keeps it (auto_failback off): one node runs it, started nowhere twice.
    #[test]
    fn a_restarted_node_stops_what_its_killed_predecessor_left_running() {
        for mode in [AutoFailback::Off, AutoFailback::On] {
            let mut p = both_started(mode);
            p.run_for(10_500);
            p.n[0].up = false;
            p.dead(0);
            assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
            p.restart(0, mode, HARES);
            p.n[0].running.insert("Marker::svcA".into());
            p.comm_up(0, 2);
            p.run_for(1_000);
            assert!(
                p.logged(0, "Resource Marker::svcA is active, and should not be!"),
                "{mode:?} {:?}",
                p.n[0].logs
            );
            // Never on both: bob runs it, alice has stopped hers (with failback on, the
            // failback then brings it home: stopped first, started again).
            let calls = &p.n[0].calls;
            let stop = calls.iter().position(|c| c == "Marker::svcA stop");
            let start = calls.iter().position(|c| c == "Marker::svcA start");
            assert!(
                stop.is_some() && (start.is_none() || start > stop),
                "{mode:?} {calls:?}"
            );
            if mode == AutoFailback::Off {
                assert!(p.running(0).is_empty(), "{calls:?}");
            } else {
                p.run_for(5_000);
                assert_eq!(p.running(0), ["Marker::svcA"], "{:?}", p.n[0].calls);
                assert_eq!(p.running(1), ["Marker::svcB"]);
            }
        }
    }

    /// Both start; alice finds her own svcA running already: she keeps it (her take finds it
    /// running and starts nothing).
    #[test]
    fn a_group_found_running_that_we_take_is_not_started_again() {
        let mut p = Pair::new(AutoFailback::Off, HARES);
        p.n[0].running.insert("Marker::svcA".into());
        p.n[0].up = true;
        p.n[1].up = true;
        p.comm_up(0, 2);
        p.comm_up(1, 2);
        p.run_for(10_500);
        assert!(p.logged(0, "Resource Marker::svcA is active, and should not be!"));
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert_eq!(p.running(1), ["Marker::svcB"]);
        assert!(
            !p.n[0]
                .calls
                .iter()
                .any(|c| c.ends_with(" start") || c.ends_with(" stop")),
            "{:?}",
            p.n[0].calls
        );
        assert_eq!(p.n[0].rm.rscstatus(), "local");
    }

    /// A peer's `resource ... isstable=0` lost and resent after its `isstable=1` (the pair a
    /// joiner sends) arrives last: it is older (generation, seq) and ignored, so the peer is
    /// not taken to be in flux and its standby request is honoured.
    #[test]
    fn a_late_resent_unstable_resource_message_does_not_leave_the_peer_in_flux() {
        let mut p = both_started(AutoFailback::Off);
        p.run_for(10_500);
        let resource = |hold: &str, stable: &str, seq: &str| {
            let mut m = Msg::new();
            m.add_str("t", "resource")
                .add_str("rsc_hold", hold)
                .add_str("rtype", "full")
                .add_str("isstable", stable)
                .add_str("hg", "5")
                .add_str("seq", seq);
            m
        };
        let at = p.at();
        p.n[1].rm.message(at, "alice", &resource("local", "1", "9"));
        p.n[1].rm.message(at, "alice", &resource("local", "0", "8"));
        p.settle();
        p.standby(0, "local");
        p.run_for(1_000);
        assert!(!p.logged(1, "in flux"), "{:?}", p.n[1].logs);
        assert!(p.logged(1, "alice wants to go standby [local]"));
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
    }

    /// resource_sim seed 2602 (failback on), reduced: bob holds alice's group and asks to give
    /// it back; alice answers `other`; bob's host crashes before the give-up, so the group
    /// runs nowhere. bob restarts: his `starting` is lost and resent, and arrives after his
    /// later `resource local isstable=1`. Taken as news, it marked bob in flux for good (his
    /// later messages then counted as older than one handled), and alice never took her own
    /// group back. Now it only ends the exchange with bob's old self, and alice takes it.
    #[test]
    fn a_restarted_peers_starting_resent_after_its_stable_resource_message_is_not_news() {
        let mut p = both_started(AutoFailback::On);
        p.run_for(10_500);
        p.n[0].up = false;
        p.dead(0);
        p.run_for(10_500);
        p.lose_standby(1, "other");
        p.restart(0, AutoFailback::On, HARES);
        p.comm_up(0, 2);
        p.run_for(2_000);
        assert!(p.logged(0, "bob wants to go standby [foreign]"));
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
        // bob's host crashes with everything on it; a new bob (generation 7) comes up.
        p.lose = None;
        p.n[1].running.clear();
        let msg = |t: &str, seq: &str| {
            let mut m = Msg::new();
            m.add_str("t", t);
            if t == "resource" {
                m.add_str("rsc_hold", "local")
                    .add_str("rtype", "full")
                    .add_str("isstable", "1");
            }
            m.add_str("hg", "7").add_str("seq", seq);
            m
        };
        p.n[1].up = false;
        let at = p.at();
        p.n[0].rm.message(at, "bob", &msg("resource", "9"));
        p.n[0].rm.message(at, "bob", &msg("starting", "2"));
        p.settle();
        p.run_for(1_000);
        assert!(
            p.logged(0, "Cancelling pending standby operation"),
            "{:?}",
            p.n[0].logs
        );
        assert_eq!(p.running(0), ["Marker::svcA"], "{:?}", p.n[0].logs);
        assert_eq!(p.n[0].rm.rscstatus(), "local");
    }

    /// Two of ours starting together offer each other a quick start and take their own groups
    /// at once; with a peer that does not offer it (3.0.6, the test below) both wait 10 s.
    #[test]
    fn two_of_ours_starting_together_take_their_own_at_once() {
        for mode in [AutoFailback::On, AutoFailback::Off] {
            let mut p = Pair::new(mode, HARES);
            p.ours = true;
            p.n[0].up = true;
            p.n[1].up = true;
            p.comm_up(0, 2);
            p.comm_up(1, 2);
            p.run_for(100);
            assert_eq!(p.running(0), ["Marker::svcA"], "{mode:?}");
            assert_eq!(p.running(1), ["Marker::svcB"], "{mode:?}");
            assert_eq!(p.n[0].rm.rscstatus(), "local");
            assert_eq!(p.n[1].rm.rscstatus(), "local");
            // The first to hear the other's offer ends its wait; its `isstable=1` ends the
            // other's, as 3.0.6's first timer does.
            let quick = "local resource transition completed. (quick start";
            assert!(p.logged(0, quick) || p.logged(1, quick), "{mode:?}");
            assert!(p.logged(0, "Initial resource acquisition complete"));
            assert!(p.logged(1, "Initial resource acquisition complete"));
            assert_eq!(p.sent_resources(0)[0], "none 0");
        }
    }

    /// A node that holds something when the peer starts (it took the peer's groups at
    /// initdead) offers no quick start: the peer waits as with 3.0.6, and gets its groups
    /// back by the failback.
    #[test]
    fn no_quick_start_beside_a_node_that_holds_groups() {
        let mut p = Pair::new(AutoFailback::On, HARES);
        p.ours = true;
        p.n[0].up = true;
        p.comm_up(0, 1);
        p.dead(1);
        p.run_for(10_500);
        assert_eq!(p.running(0), ["Marker::svcA", "Marker::svcB"]);
        p.n[1].up = true;
        p.comm_up(1, 2);
        p.run_for(100);
        assert!(!p.logged(1, "quick start"), "{:?}", p.n[1].logs);
        assert!(p.n[0]
            .sent
            .iter()
            .all(|m| m.get_str("quick_start").is_none()));
        p.run_for(3_000);
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert_eq!(p.running(1), ["Marker::svcB"]);
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
        // (after the restart's verify of both groups).
        assert_eq!(
            p.n[1].calls,
            [
                "Marker::svcA status",
                "Marker::svcB status",
                "Marker::svcB status",
                "Marker::svcB start"
            ]
        );
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
        // What bob's start-up verify saw is forgotten (as when a late peer is heard again),
        // so only the check made when he answers `other` can spare the status run.
        p.n[1].rm.peer_heard_again();
        p.standby(0, "all"); // alice none, bob all
        p.run_for(1_000);
        // bob checked svcA when he answered `other`: his take after alice's `done` only
        // starts it.
        assert!(
            p.logged(1, "Marker::svcA seen stopped"),
            "{:?}",
            p.n[1].logs
        );
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
        // alice checked svcB when bob announced his stop, so the take after his `shutdone`
        // only starts it: status, then (after the shutdone) start.
        assert!(
            p.logged(0, "Marker::svcB seen stopped"),
            "{:?}",
            p.n[0].logs
        );
        let calls = &p.n[0].calls;
        assert_eq!(
            calls[calls.len() - 2..],
            ["Marker::svcB status", "Marker::svcB start"]
        );
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
            // The acquisition that follows the heal ends as a start-up's does (CTS's
            // Split_brain waits for this line on both nodes), once.
            for i in 0..2 {
                let done = "Initial resource acquisition complete (partition healed)";
                let n = p.n[i].logs.iter().filter(|l| l.contains(done)).count();
                assert_eq!(n, 1, "{mode:?} node {i}: {:?}", p.n[i].logs);
            }
            p.run_for(3_000);
            let again = p.n[0]
                .logs
                .iter()
                .filter(|l| l.contains("(partition healed)"));
            assert_eq!(again.count(), 1);
        }
    }

    /// CTS's Split_brain, isolated node's side: the peer's messages settle everything before
    /// our membership calls the peer back; the heal is complete as soon as it does.
    #[test]
    fn a_heal_settled_before_we_see_it_is_complete_when_we_do() {
        for mode in [AutoFailback::On, AutoFailback::Off] {
            let mut p = both_started(mode);
            p.run_for(10_500);
            p.linked = false;
            p.dead(0);
            p.dead(1);
            p.linked = true;
            let at = p.at();
            p.n[1].rm.node_returned(at, "alice");
            p.settle();
            p.run_for(1_000);
            let done = "Initial resource acquisition complete (partition healed)";
            assert!(p.logged(1, done), "{mode:?}: {:?}", p.n[1].logs);
            assert_eq!(p.running(0), ["Marker::svcA"], "{mode:?}");
            assert_eq!(p.running(1), ["Marker::svcB"], "{mode:?}");
            let at = p.at();
            p.n[0].rm.node_returned(at, "bob");
            p.settle();
            assert!(p.logged(0, done), "{mode:?}: {:?}", p.n[0].logs);
        }
    }

    #[test]
    fn the_heal_is_not_called_complete_while_the_peer_still_holds_our_groups() {
        let mut p = both_started(AutoFailback::On);
        p.run_for(10_500);
        p.linked = false;
        p.dead(0);
        p.dead(1);
        // Bob sees the heal; alice hears nothing more of bob (deaf, as in a one-way
        // partition) and still says she runs every group.
        p.n[0].up = false;
        let at = p.at();
        p.n[1].rm.node_returned(at, "alice");
        p.settle();
        let done = "Initial resource acquisition complete (partition healed)";
        assert!(
            !p.logged(1, done),
            "nothing heard from alice since the heal"
        );
        let mut m = Msg::new();
        m.add_str("t", "resource")
            .add_str("rsc_hold", "all")
            .add_str("rtype", "full")
            .add_str("isstable", "1");
        p.n[1].rm.message(at, "alice", &m);
        p.settle();
        p.run_for(2_000);
        assert_eq!(p.running(1), ["Marker::svcB"]);
        assert!(
            !p.logged(1, done),
            "alice still claims svcB: {:?}",
            p.n[1].logs
        );
        // She gives it up: now it is done.
        let mut m = Msg::new();
        m.add_str("t", "resource")
            .add_str("rsc_hold", "local")
            .add_str("rtype", "full")
            .add_str("isstable", "1");
        let at = p.at();
        p.n[1].rm.message(at, "alice", &m);
        p.settle();
        assert!(p.logged(1, done), "{:?}", p.n[1].logs);
    }

    /// CI run of stop 16 (tests/faults.rs, duplication and reordering under load): bob, who
    /// owns no group, was declared dead by alice for a moment; alice took his (empty) set and
    /// held `foreign`, bob answered `local`. Each side's answer set the other off again, for
    /// ever: "Both machines own foreign resources!" a thousand times a second. Giving back an
    /// empty set still means we hold nothing of the peer's.
    #[test]
    fn a_peer_without_groups_returning_after_a_false_death_causes_no_message_storm() {
        let mut p = Pair::new(AutoFailback::On, "alice Marker::svcA\n");
        p.n[0].up = true;
        p.n[1].up = true;
        p.comm_up(0, 2);
        p.comm_up(1, 2);
        p.run_for(10_500);
        assert_eq!(p.running(0), ["Marker::svcA"]);
        // bob still hears alice (an asymmetric moment): he answers her takeover at once.
        p.dead(1);
        let at = p.at();
        p.n[0].rm.node_returned(at, "bob");
        p.settle();
        p.run_for(2_000);
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert!(p.running(1).is_empty());
        assert_eq!(p.n[0].rm.rscstatus(), "local");
        assert!(!p.logged(0, "Both machines own foreign resources!"));
    }

    /// resource_sim seeds 3004 (failback on) and 3544 (off), reduced: bob holds alice's group
    /// and asks to give it back (`me`); alice's `other` is lost; a partition follows, alice
    /// (whose longer start-up dead time bob applies) declares bob dead first, cancels her side
    /// of the exchange and takes everything; bob never declares her dead. After the heal alice
    /// gives bob's group back and says she runs her own: bob, still waiting for the `other`
    /// that will never come, must give her group back now, not when his 10 s reply deadline
    /// ends.
    #[test]
    fn a_standby_request_left_unanswered_across_a_partition_does_not_keep_the_owners_group() {
        let mut p = both_started(AutoFailback::On);
        p.run_for(10_500);
        p.n[0].up = false;
        p.dead(0);
        p.run_for(10_500);
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
        p.lose_standby(1, "other");
        p.restart(0, AutoFailback::On, HARES);
        p.comm_up(0, 2);
        p.run_for(2_000);
        assert!(p.logged(0, "bob wants to go standby [foreign]"));
        assert!(!p.logged(1, "standby: alice can take our foreign resources"));
        assert_eq!(
            p.running(1),
            ["Marker::svcA", "Marker::svcB"],
            "no `other`, no give-up"
        );
        assert!(p.running(0).is_empty());
        p.lose = None;
        p.linked = false;
        p.run_for(1_000);
        p.dead(1);
        assert!(p.logged(0, "Cancelling pending standby operation"));
        assert_eq!(p.running(0), ["Marker::svcA", "Marker::svcB"]);
        p.linked = true;
        let at = p.at();
        p.n[0].rm.node_returned(at, "bob");
        p.settle();
        assert!(p.logged(
            1,
            "alice runs its own resource groups while we hold them too"
        ));
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert_eq!(p.running(1), ["Marker::svcB"]);
        // bob's request ends at its deadline; nothing moves after that.
        p.run_for(10_500);
        assert!(p.logged(1, "No reply to standby request"));
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert_eq!(p.running(1), ["Marker::svcB"]);
        assert_eq!(p.n[0].rm.rscstatus(), "local");
        assert_eq!(p.n[1].rm.rscstatus(), "local");
    }

    /// resource_sim seed 14756 (failback on), reduced: the mirror case. alice holds bob's group
    /// and asks to give it back; bob's `other` is lost; alice then declares bob dead (a
    /// partition that has just healed; bob never noticed it), cancels her request and
    /// announces the takeover (`mach_down`), and gives bob's group back at once. bob, who took
    /// the request, must not wait (1 h) for a `done` that will never come while nobody runs his
    /// group: the requester that has not begun its give-up within 10 s of our `other` has
    /// dropped it, and bob drops his side too, then takes his own group. (Cancelling on the peer's `mach_down` instead broke seed 388: a
    /// retransmitted `mach_down` for bob's previous incarnation arrived after a new exchange
    /// had begun.)
    #[test]
    fn the_other_side_of_a_standby_request_the_requester_dropped_does_not_wait_an_hour() {
        let mut p = both_started(AutoFailback::On);
        p.run_for(10_500);
        p.n[1].up = false;
        p.dead(1);
        p.run_for(10_500);
        assert_eq!(p.running(0), ["Marker::svcA", "Marker::svcB"]);
        p.lose_standby(0, "other");
        p.restart(1, AutoFailback::On, HARES);
        p.comm_up(1, 2);
        p.run_for(2_000);
        assert!(p.logged(1, "alice wants to go standby [foreign]"));
        assert!(!p.logged(0, "standby: bob can take our foreign resources"));
        assert!(p.running(1).is_empty());
        p.lose = None;
        p.dead(1);
        assert!(p.logged(0, "Cancelling pending standby operation"));
        let at = p.at();
        p.n[0].rm.node_returned(at, "bob");
        p.settle();
        p.run_for(1_000);
        assert!(p.running(1).is_empty(), "bob still waits for alice");
        p.run_for(8_000);
        assert!(p.logged(1, "alice has not begun its standby [foreign] in 10 s"));
        assert!(p.logged(1, "Cancelling pending standby operation"));
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert_eq!(p.running(1), ["Marker::svcB"]);
        assert_eq!(p.n[0].rm.rscstatus(), "local");
        assert_eq!(p.n[1].rm.rscstatus(), "local");
    }

    /// The other node's wait for the requester is bounded, but a requester that was only slow
    /// (it had our `other` just before its own wait ended, and its answer came late) still
    /// completes the exchange: its late `done` is taken.
    #[test]
    fn a_late_done_after_the_other_side_stopped_waiting_is_still_taken() {
        let mut p = both_started(AutoFailback::Off);
        p.run_for(10_500);
        p.lose_standby(0, "other");
        p.standby(0, "local");
        let is = |m: &Msg, t: &str, info: &str| {
            m.get_str("t") == Some(t) && m.get_str("info") == Some(info)
        };
        let other = p.n[1]
            .sent
            .iter()
            .rfind(|m| is(m, "ask_resources", "other"))
            .cloned()
            .expect("bob answers");
        p.lose = None;
        p.run_for(9_900);
        // alice has bob's `other` at last; what she sends is late (lost for now).
        p.linked = false;
        let at = p.at();
        p.n[0].rm.message(at, "bob", &other);
        p.settle();
        assert!(p.running(0).is_empty());
        p.run_for(500);
        assert!(p.logged(1, "alice has not begun its standby [local] in 10 s"));
        assert_eq!(p.running(1), ["Marker::svcB"]);
        p.linked = true;
        let late: Vec<Msg> = p.n[0]
            .sent
            .iter()
            .filter(|m| is(m, "resource", "standby") || is(m, "ask_resources", "done"))
            .cloned()
            .collect();
        assert_eq!(late.len(), 2);
        let at = p.at();
        for m in &late {
            p.n[1].rm.message(at, "alice", m);
        }
        p.settle();
        p.run_for(1_000);
        assert!(p.logged(1, "late 'done' from alice [local]"));
        assert!(p.running(0).is_empty());
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
        assert_eq!(p.n[0].rm.rscstatus(), "none");
        assert_eq!(p.n[1].rm.rscstatus(), "all");
    }

    /// The requester's `done` is lost for good (in a partition that outlasts its send
    /// history): between two of ours the other node asks again and takes the group; beside
    /// a 3.0.6 requester it waits, as 3.0.6 does, with the group running nowhere.
    #[test]
    fn a_requesters_done_lost_for_good_is_asked_for_again_between_two_of_ours() {
        for ours in [true, false] {
            let mut p = both_started(AutoFailback::Off);
            p.ours = ours;
            p.run_for(10_500);
            p.lose_standby(1, "done");
            p.standby(0, "local");
            p.run_for(2_000);
            p.lose = None;
            assert!(p.running(0).is_empty());
            assert_eq!(p.running(1), ["Marker::svcB"]);
            p.run_for(10_000);
            assert_eq!(p.logged(1, "standby: no 'done' from alice [local]"), ours);
            if ours {
                assert!(p.logged(0, "standby: bob asks again: our give-up [local] is done"));
                assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
                assert_eq!(p.n[0].rm.rscstatus(), "none");
                assert_eq!(p.n[1].rm.rscstatus(), "all");
            } else {
                assert_eq!(p.running(1), ["Marker::svcB"]);
            }
            assert!(p.running(0).is_empty());
        }
    }

    /// The requester's `done` is lost for good and its side of the exchange then ends
    /// another way (it declares the other node dead, takes its group, gives it back when the
    /// node is heard again): asked again, it says `done`, since it runs nothing it was asked for.
    #[test]
    fn a_requester_whose_exchange_ended_otherwise_answers_the_repeat_with_done() {
        // bob runs alice's svcA (she died and came back idle: auto_failback off).
        let mut p = both_started(AutoFailback::Off);
        p.ours = true;
        p.run_for(10_500);
        p.n[0].up = false;
        p.dead(0);
        p.restart(0, AutoFailback::Off, HARES);
        p.comm_up(0, 2);
        p.run_for(5_000);
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
        // bob hands svcA back; his `done` is lost.
        p.lose_standby(0, "done");
        p.standby(1, "foreign");
        p.run_for(2_000);
        p.lose = None;
        assert!(p.running(0).is_empty());
        assert_eq!(p.running(1), ["Marker::svcB"]);
        // bob declares alice dead in a partition she never notices, takes svcA, and gives it
        // back to its owner when he hears her again: his side of the exchange is over.
        p.linked = false;
        p.dead(0);
        assert!(p.logged(1, "Cancelling pending standby operation"));
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
        p.linked = true;
        let at = p.at();
        p.n[1].rm.node_returned(at, "alice");
        p.settle();
        assert_eq!(p.running(1), ["Marker::svcB"]);
        p.run_for(10_000);
        assert!(p.logged(0, "standby: no 'done' from bob [foreign]"));
        assert!(p.logged(1, "standby: alice asks again: we run none of [foreign]"));
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert_eq!(p.running(1), ["Marker::svcB"]);
    }

    /// An ordinary exchange: the other node's bounded wait changes nothing, and the `done` is
    /// taken once.
    #[test]
    fn an_exchange_under_way_ends_once() {
        let mut p = both_started(AutoFailback::Off);
        p.run_for(10_500);
        p.standby(0, "local");
        p.run_for(2_000);
        assert_eq!(p.running(0), Vec::<&str>::new());
        assert_eq!(p.running(1), ["Marker::svcA", "Marker::svcB"]);
        assert!(!p.logged(1, "resources it asked to give"));
        let acquired = |i: usize| {
            p.n[i]
                .logs
                .iter()
                .filter(|l| l.starts_with("standby: acquire"))
                .count()
        };
        assert_eq!(acquired(1), 1);
        for i in 0..2 {
            assert!(
                !p.n[i].logs.iter().any(|l| l.contains("Ignored standby")),
                "{:?}",
                p.n[i].logs
            );
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
        // Ours, which did not restart, says its acquisition after the heal is done, once the
        // restarted peer has its group back.
        let done = "Initial resource acquisition complete (partition healed)";
        assert_eq!(p.n[1].logs.iter().filter(|l| l.contains(done)).count(), 1);
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
    fn starting_before_comm_up_is_ignored_silently_and_the_pair_converges() {
        let mut p = Pair::new(AutoFailback::On, HARES);
        p.n[0].up = true;
        p.n[1].up = true;
        // Bob reaches comm-up first: his `starting` reaches alice before her own comm-up
        // (SimulStart with two of ours). 3.0.6 has no handler for it yet: no ERROR line.
        p.comm_up(1, 2);
        assert!(p.n[1]
            .sent
            .iter()
            .any(|m| m.get_str("t") == Some("starting")));
        assert!(
            !p.logged(0, "Received 'starting' message"),
            "{:?}",
            p.n[0].logs
        );
        assert!(p.logged(0, "'starting' received before our comm-up: ignored"));
        assert!(p.n[0].sent.is_empty());
        p.run_for(300);
        p.comm_up(0, 2);
        p.run_for(25_000);
        assert_eq!(p.running(0), ["Marker::svcA"]);
        assert_eq!(p.running(1), ["Marker::svcB"]);
        for i in 0..2 {
            assert!(p.logged(i, "Initial resource acquisition complete"));
            assert_eq!(p.n[i].rm.rscstatus(), "local");
            assert!(!p.n[i].logs.iter().any(|l| l.contains("in state")));
        }
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
