//! The resource managers of 3.0.6, pure: they ask for script runs and get their results.
//!
//! One [`engine`] runs the group work (status, start and stop steps, one task at a time,
//! retries, time limits; 3.0.6 runs some of it in parallel) for one of two policies that
//! decide what to take and give, each with its own state:
//!
//! * [`legacy`] (`auto_failback legacy`, or no `auto_failback` line): groups are acquired with
//!   `ip-request` / `ip-request-resp`, taken over when their node dies or stops, and released
//!   on a graceful stop (resources.md 4.2-4.4, 4.7);
//! * [`negotiated`] (`auto_failback on|off`): the `starting` / `resource` exchange at start-up,
//!   the standby exchange (`ask_resources`) for hb_standby, hb_takeover and auto failback
//!   (resources.md 3, 4.1, 4.5, 4.6).
//!
//! The takeover path, for who reads it first: membership declares a peer dead
//! ([`ResourceManager::node_dead`]); the policy queues a take of each of its groups
//! (`Legacy::node_dead`, `Negotiated::take_over`); the engine starts the first one at once
//! (`Engine::advance`): a status run of its first resource, then its start if not running
//! (`Engine::script_done`), resource by resource. The status run is skipped for a resource
//! that an early check (`peer_late`, asked by `Cluster` when the peer went quiet) saw stopped
//! since the peer was last heard, with no run of ours on it since: then the start script is
//! the first thing forked after the death.

use std::collections::BTreeSet;

use super::{LogLevel, Now};
use crate::config::AutoFailback;
use crate::config::{Resource, ResourceGroup};
use crate::wire::messages::{some, Message, Stonith};
use crate::wire::Msg;

mod engine;
pub mod legacy;
pub mod negotiated;
use engine::{Engine, Milestone, WorkEvent};
use legacy::Legacy;
pub use legacy::{ANSWER_WAIT_MS, ASK_AGAIN_MS};
pub use negotiated::Hold;
use negotiated::Negotiated;

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

    /// How long a run of a resource script may take before it is killed, in ms: a status
    /// query a minute, a start or stop ten.
    pub fn time_limit_ms(self) -> u64 {
        match self {
            Op::Status => 60_000,
            Op::Start | Op::Stop => 600_000,
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
    /// Send this message to the cluster (and handle it here too).
    Send(Message),
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

/// Which manager runs, with its own state.
#[derive(Debug)]
enum Policy {
    Legacy(Legacy),
    Negotiated(Box<Negotiated>),
}

#[derive(Debug)]
pub struct ResourceManager {
    engine: Engine,
    policy: Policy,
    /// Nodes that said `shutdone`: their later death needs no takeover or STONITH.
    gave_up: BTreeSet<String>,
    /// The start-up verify was queued (once per process, at the first comm-up).
    verify_queued: bool,
    /// Each peer's newest `resource` message so far, as (generation, seq).
    last_resource: std::collections::BTreeMap<String, (u64, u64)>,
}

impl ResourceManager {
    pub fn new(me: &str, groups: Vec<ResourceGroup>, mode: AutoFailback) -> ResourceManager {
        let policy = match mode {
            AutoFailback::Legacy => Policy::Legacy(Legacy::default()),
            AutoFailback::On => Policy::Negotiated(Box::new(Negotiated::new(true))),
            AutoFailback::Off => Policy::Negotiated(Box::new(Negotiated::new(false))),
        };
        ResourceManager {
            engine: Engine::new(me, groups),
            policy,
            gave_up: BTreeSet::new(),
            verify_queued: false,
            last_resource: std::collections::BTreeMap::new(),
        }
    }

    /// The cluster's nodes, in ha.cf order. With more than two, a dead node's groups are
    /// taken by the first live node of that list only (3.0.6 lets every survivor take them,
    /// so two survivors run them both).
    pub fn set_nodes(&mut self, nodes: &[String]) {
        self.engine.nodes = nodes.iter().map(|n| n.to_ascii_lowercase()).collect();
    }

    pub fn mode(&self) -> AutoFailback {
        match &self.policy {
            Policy::Legacy(_) => AutoFailback::Legacy,
            Policy::Negotiated(n) if n.failback() => AutoFailback::On,
            Policy::Negotiated(_) => AutoFailback::Off,
        }
    }

    pub fn poll_action(&mut self) -> Option<RmAction> {
        self.engine.poll_action()
    }

    /// The groups this node runs, by key.
    pub fn held_keys(&self) -> Vec<&str> {
        self.engine
            .groups
            .iter()
            .filter(|g| g.held)
            .map(|g| g.key())
            .collect()
    }

    /// `cl_status rscstatus`: `transition` while anything is under way; otherwise legacy
    /// says `none` and negotiated the held set (from what really runs: a failed start is not
    /// reported held, unlike 3.0.6).
    pub fn rscstatus(&self) -> &'static str {
        if !self.engine.is_idle() {
            return "transition";
        }
        match &self.policy {
            Policy::Legacy(_) => "none",
            Policy::Negotiated(n) => n.rscstatus(&self.engine),
        }
    }

    pub fn is_idle(&self) -> bool {
        self.engine.is_idle()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        let policy = match &self.policy {
            Policy::Legacy(l) => l.poll_timeout(),
            Policy::Negotiated(n) => n.poll_timeout(),
        };
        [self.engine.poll_timeout(), policy]
            .into_iter()
            .flatten()
            .min()
    }

    /// Comm-up: legacy asks for our own groups (`active` counts the nodes that are `active`,
    /// us included; alone, we grant them to ourselves, as 3.0.6 does); negotiated announces
    /// its start.
    pub fn comm_up(&mut self, now: Now, active: usize) {
        self.engine.now_ms = now.mono_ms;
        if !self.verify_queued {
            // Before any group work or announcement: what does a killed predecessor leave
            // running here? (`settle_found_running` decides what stays.)
            self.verify_queued = true;
            self.engine.verify_all();
        }
        match &mut self.policy {
            Policy::Legacy(l) => l.comm_up(&mut self.engine, active),
            Policy::Negotiated(n) => n.comm_up(&mut self.engine),
        }
        self.run();
    }

    /// A message from the cluster; `from` is its sender (ourselves for our own messages).
    pub fn message(&mut self, now: Now, from: &str, msg: &Msg) {
        let Some(m) = Message::parse(msg) else {
            return;
        };
        let numbered = self.peer_numbering(from, msg);
        let stale = numbered
            .as_ref()
            .is_some_and(|(peer, at)| self.last_resource.get(peer).is_some_and(|l| at <= l));
        match m {
            // A peer's `resource` message older than one already handled: a lost packet
            // resent late. Its held set and `isstable` are out of date; taken, an
            // `isstable=0` sent just before an `isstable=1` would leave us sure the peer is
            // in flux, refusing its standby requests for good.
            Message::Resource(_) if stale => {
                let text = format!("resource message from {from} older than one handled");
                self.engine.log(LogLevel::Debug, text);
                return;
            }
            Message::Resource(_) => {
                if let Some((peer, at)) = numbered {
                    self.last_resource.insert(peer, at);
                }
            }
            // Lost and resent after the peer's later `resource`: the peer restarted (its
            // exchange with our old view is void), but where it stands now its later message
            // has told.
            Message::Starting if stale => {
                self.engine.now_ms = now.mono_ms;
                if let Policy::Negotiated(n) = &mut self.policy {
                    n.late_starting(&mut self.engine);
                }
                self.run();
                return;
            }
            _ => {}
        }
        self.handle_message(now, from, &m);
    }

    /// A peer's name and its message's (generation, seq); None for our own messages and
    /// for messages without them (tests).
    fn peer_numbering(&self, from: &str, msg: &Msg) -> Option<(String, (u64, u64))> {
        let from = from.to_ascii_lowercase();
        let num = |f: &str| msg.get_str(f).and_then(crate::wire::messages::parse_hex);
        let at = (num("hg")?, num("seq")?);
        (from != self.engine.me).then_some((from, at))
    }

    /// A typed message from the cluster (see `message`).
    pub fn handle_message(&mut self, now: Now, from: &str, msg: &Message) {
        self.engine.now_ms = now.mono_ms;
        let from = from.to_ascii_lowercase();
        let eng = &mut self.engine;
        if from != eng.me && !matches!(msg, Message::Shutdone(_)) {
            self.gave_up.remove(&from);
            if let Policy::Legacy(l) = &mut self.policy {
                l.peer_heard(eng, &from);
            }
        }
        match &mut self.policy {
            Policy::Legacy(l) => l.message(eng, &mut self.gave_up, &from, msg),
            Policy::Negotiated(n) => n.message(eng, &mut self.gave_up, &from, msg),
        }
        self.run();
    }

    /// A peer was declared dead: its groups are ours now.
    pub fn node_dead(&mut self, now: Now, node: &str) {
        self.node_dead_after(now, node, false);
    }

    /// A dead peer said `shutdone` first: it holds nothing, and is not fenced.
    pub fn gave_up(&self, node: &str) -> bool {
        self.gave_up.contains(&node.to_ascii_lowercase())
    }

    /// A dead peer was reset by the STONITH device (`cluster::stonith`, which said
    /// `result=OK`): its groups are ours now.
    pub fn node_fenced(&mut self, now: Now, node: &str) {
        self.node_dead_after(now, node, true);
    }

    fn node_dead_after(&mut self, now: Now, node: &str, fenced: bool) {
        self.engine.now_ms = now.mono_ms;
        let node = node.to_ascii_lowercase();
        let eng = &mut self.engine;
        if eng.stopping {
            eng.info("Resource takeover cancelled - shutdown in progress.".into());
            return;
        }
        let gave_up = self.gave_up.remove(&node);
        let mut m = Stonith {
            node: Some(node.clone()),
            result: None,
        };
        if gave_up {
            // It released everything before it went: nothing to fence.
            eng.info(format!("Dead node {node} gave up resources."));
            m.result = some("unneeded");
            eng.send(m);
        } else if !fenced {
            m.result = some("n_stnth");
            eng.send(m);
            eng.log(LogLevel::Warn, "No STONITH device configured.".into());
            eng.log(LogLevel::Warn, "Shared disks are not protected.".into());
        }
        match &mut self.policy {
            Policy::Legacy(l) => l.node_dead(eng, &node),
            Policy::Negotiated(n) => {
                n.cancel_standby(eng);
                // Its groups were taken on its `shutdone` already.
                if !gave_up {
                    n.take_over(eng, &node, false);
                }
            }
        }
        self.run();
    }

    /// A peer is late (silent for two keepalives or `warntime`): check the status of what we
    /// would take if it died, now rather than after its death (`Engine::probe_idle_groups`).
    pub fn peer_late(&mut self, now: Now) {
        self.engine.now_ms = now.mono_ms;
        self.engine.probe_idle_groups();
    }

    /// Whether `node`, whose message follows, runs this implementation (its status says so).
    pub fn peer_is_ours(&mut self, node: &str, ours: bool) {
        if let Policy::Negotiated(n) = &mut self.policy {
            if !node.eq_ignore_ascii_case(&self.engine.me) {
                n.peer_is_ours(ours);
            }
        }
    }

    /// The late peer was heard again: what the early checks found is not used.
    pub fn peer_heard_again(&mut self) {
        self.engine.forget_probes();
    }

    /// `node` is heard from again (any status but dead): it no longer counts as dead when
    /// choosing who takes over a dead node's groups.
    pub fn node_alive(&mut self, now: Now, node: &str) {
        self.engine.now_ms = now.mono_ms;
        let node = node.to_ascii_lowercase();
        if let Policy::Legacy(l) = &mut self.policy {
            l.node_alive(&mut self.engine, &node);
            self.run();
        }
    }

    /// A peer we took over is back from a partition: its groups go back to it, at once and
    /// without 3.0.6's restart of both daemons.
    pub fn node_returned(&mut self, now: Now, node: &str) {
        self.engine.now_ms = now.mono_ms;
        let node = node.to_ascii_lowercase();
        match &mut self.policy {
            Policy::Legacy(l) => l.node_returned(&mut self.engine, &node),
            Policy::Negotiated(n) if !self.engine.stopping => {
                n.node_returned(&mut self.engine, &node)
            }
            Policy::Negotiated(_) => return,
        }
        self.run();
    }

    /// A peer reached `active` after we were up: it may have been away unnoticed (it
    /// restarted, or we declared it dead before ever hearing it) and hold groups we took.
    /// Negotiated: tell it what we hold, so that the owner-keeps rule settles any overlap at
    /// once; for a peer starting normally this repeats the answer to its `starting`. (The
    /// legacy manager is told `node_returned` instead, see `Cluster`.)
    pub fn peer_active(&mut self, now: Now) {
        self.engine.now_ms = now.mono_ms;
        if let Policy::Negotiated(n) = &mut self.policy {
            n.peer_active(&mut self.engine);
        }
    }

    /// Graceful stop: release every group, in haresources order, whatever we hold (stops are
    /// idempotent), then `Released`.
    pub fn shutdown(&mut self, now: Now) {
        self.engine.now_ms = now.mono_ms;
        let eng = &mut self.engine;
        if eng.stopping {
            return;
        }
        eng.stopping = true;
        if let Policy::Negotiated(n) = &mut self.policy {
            n.shutdown(eng);
        }
        eng.info("Giving up all HA resources.".into());
        eng.keep_only_gives();
        for g in 0..eng.groups.len() {
            eng.enqueue(engine::Task::Give(g));
        }
        eng.push(engine::Task::Milestone(Milestone::AllReleased));
        self.run();
    }

    pub fn handle_timeout(&mut self, now: Now) {
        self.engine.now_ms = now.mono_ms;
        match &mut self.policy {
            Policy::Legacy(l) => l.handle_timeout(&mut self.engine),
            Policy::Negotiated(n) => n.handle_timeout(&mut self.engine),
        }
        self.run();
        self.engine.handle_timeout(now.mono_ms);
        self.run();
    }

    /// A script run ended.
    pub fn script_done(&mut self, now: Now, job: u64, result: ScriptResult) {
        self.engine.now_ms = now.mono_ms;
        self.engine.script_done(job, result);
        self.run();
    }

    /// Groups the start-up verify found running that this node does not take are stopped,
    /// and our `resource ... isstable=1` waits until they are: the peer never hears us settled
    /// while we run what it runs or takes. One we take stays (its take finds it running and
    /// starts nothing). Legacy: a foreign group is stopped at once (its owner, or the taker
    /// of a dead owner, runs it); our own groups always come back to us there.
    fn settle_found_running(&mut self) -> bool {
        let eng = &mut self.engine;
        if eng.verifying() || eng.found_running.is_empty() || eng.stopping {
            return false;
        }
        let policy = &self.policy;
        let not_ours = |eng: &Engine, g: usize| match policy {
            Policy::Legacy(_) => !eng.is_own_group(g),
            Policy::Negotiated(n) => n.negotiated() && !n.claims(eng, g),
        };
        let stop: Vec<usize> = eng
            .found_running
            .iter()
            .copied()
            .filter(|&g| !eng.taking_or_held(g) && !eng.giving(g) && not_ours(eng, g))
            .collect();
        if stop.is_empty() {
            return false;
        }
        let held_back = eng.take_deferred_sends();
        eng.holding = true;
        for g in stop {
            eng.found_running.remove(&g);
            let key = eng.key(g);
            eng.info(format!(
                "Resource group {key} was left running here and is not ours now: stopping it"
            ));
            eng.enqueue(engine::Task::Give(g));
        }
        for m in held_back {
            eng.push(engine::Task::Milestone(Milestone::Send(m)));
        }
        eng.push(engine::Task::Milestone(Milestone::EndHold));
        true
    }

    fn run(&mut self) {
        loop {
            self.run_queue();
            if !self.settle_found_running() {
                break;
            }
        }
    }

    /// Run the queue: hand each milestone and event of the group work to the policy, until
    /// the engine waits for a script or has nothing left to do.
    fn run_queue(&mut self) {
        let eng = &mut self.engine;
        loop {
            while let Some(WorkEvent::StartFailed(g)) = eng.next_event() {
                if let Policy::Negotiated(n) = &mut self.policy {
                    n.start_failed(eng, g);
                }
            }
            let Some(m) = eng.advance() else { break };
            match m {
                Milestone::Answer(a) => Legacy::answer(eng, a),
                Milestone::AllReleased => {
                    eng.info("All HA resources relinquished.".into());
                    eng.released();
                }
                Milestone::Negotiated(mark) => {
                    if let Policy::Negotiated(n) = &mut self.policy {
                        n.milestone(eng, mark);
                    }
                }
                Milestone::Send(m) => eng.send_now(m),
                Milestone::EndHold => eng.holding = false,
            }
        }
        if eng.is_idle() {
            if let Policy::Negotiated(n) = &mut self.policy {
                n.check_heal_settled(eng);
            }
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
                RmAction::Send(m) => w.sent.push(m.emit()),
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
        // The start-up verify checks every group (a1 found running: a warning); then the
        // running one is checked again and not started again, and the one the verify has
        // just seen stopped is started without asking again.
        assert_eq!(
            w.calls,
            [
                "Marker::a1 status",
                "Marker::a2 status",
                "Marker::b1 status",
                "Marker::a1 status",
                "Marker::a2 start"
            ]
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

    /// A legacy manager of a three-node cluster: alice, bob and carol, one group each.
    fn one_of_three(me: &str) -> (ResourceManager, World) {
        let text = "alice Marker::a1 Marker::a2\nbob Marker::b1\ncarol Marker::c1\n";
        let names: Vec<String> = ["alice", "bob", "carol"].map(String::from).to_vec();
        let groups = haresources::parse(text, Path::new("haresources"), &names).unwrap();
        let mut rm = ResourceManager::new(me, groups, AutoFailback::Legacy);
        rm.set_nodes(&names);
        (rm, World::default())
    }

    /// resource_sim legacy_three_nodes seeds 30380 and 43638, reduced: alice and bob each
    /// took carol's group in separate partitions. bob, hearing carol again, gives it back
    /// unasked (a grant); alice is still stopping it. carol asks alice before she starts it.
    #[test]
    fn an_unasked_grant_of_our_group_waits_for_the_other_holders_answer() {
        let (mut carol, mut w) = one_of_three("carol");
        let grant = |dest: &str| {
            let mut m = Msg::new();
            m.add_str("t", "ip-request-resp")
                .add_str("dest", dest)
                .add_str("ipaddr", "Marker::c1")
                .add_str("weown", "yes")
                .add_str("ok", "OK");
            m
        };
        carol.message(T0, "bob", &grant("carol"));
        pump(&mut carol, &mut w, 0);
        assert!(!w.running.contains("Marker::c1"), "{:?}", w.logs);
        let asked = w.sent.iter().any(|m| {
            m.get_str("t") == Some("ip-request") && m.get_str("ipaddr") == Some("Marker::c1")
        });
        assert!(asked, "{:?}", w.sent);
        carol.message(T0, "alice", &grant("carol"));
        pump(&mut carol, &mut w, 0);
        assert!(w.running.contains("Marker::c1"), "{:?}", w.logs);
    }

    /// resource_sim legacy_three_nodes seed 64320, reduced: the unasked grant comes just
    /// before our comm-up, whose request (here never answered: lost in a one-way partition)
    /// must not take away the grant's 2 s deadline.
    #[test]
    fn a_comm_up_request_after_an_unasked_grant_keeps_its_deadline() {
        let (mut carol, mut w) = one_of_three("carol");
        let mut grant = Msg::new();
        grant
            .add_str("t", "ip-request-resp")
            .add_str("dest", "carol")
            .add_str("ipaddr", "Marker::c1")
            .add_str("weown", "yes")
            .add_str("ok", "OK");
        carol.message(T0, "bob", &grant);
        carol.comm_up(T0, 3);
        pump(&mut carol, &mut w, 0);
        assert!(!w.running.contains("Marker::c1"));
        let later = Now {
            mono_ms: ANSWER_WAIT_MS,
            unix_secs: 0,
        };
        assert_eq!(carol.poll_timeout(), Some(ANSWER_WAIT_MS));
        carol.handle_timeout(later);
        pump(&mut carol, &mut w, ANSWER_WAIT_MS);
        assert!(w.running.contains("Marker::c1"), "{:?}", w.logs);
    }

    /// Three nodes: our comm-up request for our group is lost for good (every answer is due):
    /// it goes out again every `ASK_AGAIN_MS`, and the group starts only once both answered.
    #[test]
    fn a_request_no_answer_came_for_is_sent_again() {
        let (mut carol, mut w) = one_of_three("carol");
        carol.comm_up(T0, 3);
        pump(&mut carol, &mut w, 0);
        let requests = |w: &World| {
            w.sent
                .iter()
                .filter(|m| m.get_str("t") == Some("ip-request"))
                .count()
        };
        assert_eq!(requests(&w), 1);
        for k in 1..=3 {
            let at = k * ASK_AGAIN_MS;
            assert_eq!(carol.poll_timeout(), Some(at));
            carol.handle_timeout(Now {
                mono_ms: at,
                unix_secs: 0,
            });
            pump(&mut carol, &mut w, at);
            assert_eq!(requests(&w), 1 + k as usize);
            assert!(!w.running.contains("Marker::c1"), "{:?}", w.logs);
        }
        let at = Now {
            mono_ms: 3 * ASK_AGAIN_MS + 1,
            unix_secs: 0,
        };
        for peer in ["alice", "bob"] {
            let mut grant = Msg::new();
            grant
                .add_str("t", "ip-request-resp")
                .add_str("dest", "carol")
                .add_str("ipaddr", "Marker::c1")
                .add_str("ok", "OK");
            carol.message(at, peer, &grant);
            pump(&mut carol, &mut w, at.mono_ms);
        }
        assert!(w.running.contains("Marker::c1"), "{:?}", w.logs);
    }

    /// resource_sim legacy_three_nodes seed 3673, reduced: bob and carol, cut off from each
    /// other and from alice, each took every group; alice restarts (both hear her, not yet
    /// active), then bob and carol hear each other again. Her group must stay on one of them
    /// (bob, who would take it over were she dead), not on both until she asks for it.
    #[test]
    fn holders_of_a_restarting_owners_group_keep_it_on_one_node_after_a_heal() {
        let mut nodes = [one_of_three("bob"), one_of_three("carol")];
        for (i, (rm, w)) in nodes.iter_mut().enumerate() {
            rm.node_dead(T0, "alice");
            rm.node_dead(T0, ["carol", "bob"][i]);
            pump(rm, w, 0);
            assert_eq!(rm.held_keys(), ["Marker::a1", "Marker::b1", "Marker::c1"]);
            rm.node_alive(T0, "alice");
            pump(rm, w, 0);
        }
        for (i, (rm, w)) in nodes.iter_mut().enumerate() {
            rm.node_returned(T0, ["carol", "bob"][i]);
            pump(rm, w, 0);
        }
        let a1 = |i: usize| nodes[i].1.running.contains("Marker::a1");
        assert!(a1(0), "bob keeps alice's group");
        assert!(!a1(1), "carol gives it up: {:?}", nodes[1].1.logs);
        assert!(!nodes[1].0.held_keys().contains(&"Marker::a1"));
    }

    /// resource_sim legacy_three_nodes seed 1033, reduced: carol has stopped; bob, restarted
    /// and not yet past his comm-up (which waits to hear about carol), declares alice dead
    /// and, the last one standing, takes his own group by force. alice, who took it while bob
    /// was down, is heard again at once; bob stays `up` (not `active`) until his comm-up, so
    /// nothing else tells her that he runs it: he says so with a grant to himself (what a lone
    /// node sends at comm-up), and she gives it up.
    #[test]
    fn an_owner_that_took_its_group_by_force_tells_a_holder_heard_again() {
        let (mut alice, mut wa) = one_of_three("alice");
        let (mut bob, mut wb) = one_of_three("bob");
        alice.node_dead(T0, "carol");
        alice.node_dead(T0, "bob");
        pump(&mut alice, &mut wa, 0);
        assert!(wa.running.contains("Marker::b1"));
        bob.node_dead(T0, "carol");
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut wb, 0);
        assert!(wb.running.contains("Marker::b1"));
        wb.sent.clear();
        bob.node_alive(T0, "alice");
        pump(&mut bob, &mut wb, 0);
        let grant = wb
            .sent
            .iter()
            .find(|m| m.get_str("t") == Some("ip-request-resp"))
            .cloned()
            .unwrap_or_else(|| panic!("no grant from bob: {:?}", wb.logs));
        assert_eq!(grant.get_str("dest"), Some("bob"));
        assert_eq!(grant.get_str("ipaddr"), Some("Marker::b1"));
        alice.node_alive(T0, "bob");
        alice.message(T0, "bob", &grant);
        pump(&mut alice, &mut wa, 0);
        assert!(!wa.running.contains("Marker::b1"), "{:?}", wa.logs);
        assert!(wb.running.contains("Marker::b1"));
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

    // ----- early status checks (the takeover hot path) -----------------------------------

    /// bob's manager, alice late: her group's status is checked at once.
    fn bob_with_alice_late(mode: AutoFailback, running: &[&str]) -> (ResourceManager, World) {
        let (mut bob, mut w) = (
            ResourceManager::new("bob", groups(), mode),
            World::default(),
        );
        for r in running {
            w.running.insert(r.to_string());
        }
        bob.peer_late(Now {
            mono_ms: 400,
            unix_secs: 0,
        });
        pump(&mut bob, &mut w, 400);
        (bob, w)
    }

    #[test]
    fn a_late_peer_has_its_groups_checked_and_its_death_starts_them_at_once() {
        for mode in [AutoFailback::Legacy, AutoFailback::On, AutoFailback::Off] {
            let (mut bob, mut w) = bob_with_alice_late(mode, &[]);
            // Only what bob would take is checked: alice's group, and bob's own he does not run.
            assert!(
                w.calls.contains(&"Marker::a1 status".to_string()),
                "{mode:?}"
            );
            assert!(
                w.calls.contains(&"Marker::a2 status".to_string()),
                "{mode:?}"
            );
            w.calls.clear();
            bob.node_dead(T0, "alice");
            // The first script asked for in the very call that says alice is dead is a start.
            let first = std::iter::from_fn(|| bob.poll_action())
                .find(|a| matches!(a, RmAction::Run { .. }));
            assert!(
                matches!(first, Some(RmAction::Run { op: Op::Start, ref resource, .. })
                    if resource.spec == "Marker::a1"),
                "{mode:?}: {first:?}"
            );
        }
    }

    #[test]
    fn a_whole_takeover_after_an_early_check_runs_only_starts() {
        let (mut bob, mut w) = bob_with_alice_late(AutoFailback::Legacy, &[]);
        w.calls.clear();
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut w, 1000);
        let alice: Vec<&String> = w.calls.iter().filter(|c| c.contains("::a")).collect();
        assert_eq!(alice, ["Marker::a1 start", "Marker::a2 start"]);
        assert!(bob.held_keys().contains(&"Marker::a1"));
    }

    #[test]
    fn without_an_early_check_the_status_comes_first() {
        let (mut bob, mut w) = (
            ResourceManager::new("bob", groups(), AutoFailback::Legacy),
            World::default(),
        );
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut w, 0);
        let alice: Vec<&String> = w.calls.iter().filter(|c| c.contains("::a")).collect();
        assert_eq!(
            alice,
            [
                "Marker::a1 status",
                "Marker::a1 start",
                "Marker::a2 status",
                "Marker::a2 start"
            ]
        );
    }

    #[test]
    fn a_resource_found_running_early_is_not_started_twice() {
        let (mut bob, mut w) = bob_with_alice_late(AutoFailback::Legacy, &["Marker::a1"]);
        w.calls.clear();
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut w, 1000);
        let alice: Vec<&String> = w.calls.iter().filter(|c| c.contains("::a")).collect();
        // a1 was running: asked again (the early answer is not trusted for "running"),
        // and not started; a2 was seen stopped: started at once.
        assert_eq!(alice, ["Marker::a1 status", "Marker::a2 start"]);
    }

    #[test]
    fn an_early_check_is_stale_once_the_peer_is_heard_again() {
        let (mut bob, mut w) = bob_with_alice_late(AutoFailback::Legacy, &[]);
        bob.peer_heard_again();
        w.calls.clear();
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut w, 1000);
        assert_eq!(
            w.calls.first().map(String::as_str),
            Some("Marker::a1 status")
        );
    }

    #[test]
    fn an_early_check_is_stale_once_ours_ran_the_resource() {
        let (mut bob, mut w) = bob_with_alice_late(AutoFailback::Legacy, &[]);
        // bob takes alice's group, and gives it back (she returned).
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut w, 500);
        bob.shutdown(T0);
        pump(&mut bob, &mut w, 600);
        // Something else started a1 meanwhile; a takeover now must ask, not assume stopped.
        w.running.insert("Marker::a1".into());
        let mut bob2 = bob;
        bob2.engine.stopping = false;
        w.calls.clear();
        bob2.node_dead(T0, "alice");
        pump(&mut bob2, &mut w, 700);
        let alice: Vec<&String> = w.calls.iter().filter(|c| c.contains("::a")).collect();
        assert_eq!(alice.first().map(|s| s.as_str()), Some("Marker::a1 status"));
        assert!(!alice.contains(&&"Marker::a1 start".to_string()));
    }

    #[test]
    fn an_answer_still_under_way_at_the_death_is_not_waited_for() {
        let (mut bob, mut w) = (
            ResourceManager::new("bob", groups(), AutoFailback::Legacy),
            World::default(),
        );
        bob.peer_late(T0);
        // The checks are asked for but not answered yet.
        let asked: Vec<RmAction> = std::iter::from_fn(|| bob.poll_action()).collect();
        assert!(asked
            .iter()
            .any(|a| matches!(a, RmAction::Run { op: Op::Status, .. })));
        bob.node_dead(T0, "alice");
        pump(&mut bob, &mut w, 0);
        assert_eq!(
            w.calls.first().map(String::as_str),
            Some("Marker::a1 status")
        );
        // The late answers change nothing.
        for a in asked {
            if let RmAction::Run { job, .. } = a {
                bob.script_done(
                    T0,
                    job,
                    ScriptResult::Done {
                        code: 0,
                        stdout: "stopped".into(),
                    },
                );
            }
        }
        pump(&mut bob, &mut w, 0);
        assert!(bob.held_keys().contains(&"Marker::a1"));
    }
}
