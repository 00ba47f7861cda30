//! One node of the cluster, sans-IO: the membership layer and the resource manager joined
//! together. Datagrams, timers, script results and local requests go in; datagrams to send,
//! log lines, script runs and a few events come out. The runtime only does I/O around it; the
//! resource simulation (`tests/resource_sim.rs`) runs several of these on a simulated network.
//!
//! The glue it owns:
//! * membership's deliveries go to the resource manager, and so do the node's own messages
//!   (3.0.6 handles what it sends before sending it);
//! * a peer's death reaches the resource manager only for `node`s of ha.cf (ping nodes hold no
//!   resources); so does a peer's return: back from a partition (membership says so), or, after
//!   reaching `active` (see `peer_active`);
//! * the resource manager hears of comm-up once every peer has been heard from (none still
//!   `init`), with the number of `active` nodes, and again when a peer restarts (see
//!   `peer_restarted`);
//! * the resource manager's end of a graceful stop (`Released`) lets membership say `shutdone`.

use std::collections::VecDeque;

use super::membership::{Action, Membership, NodeStatus, Params};
use super::resources::{Op, ResourceManager, RmAction, ScriptResult};
use super::{LogLevel, Now};
use crate::config::{AutoFailback, Resource};
use crate::wire::{Authenticator, Msg};

/// Something the runtime (or a simulation) must carry out or may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAction {
    /// Send this datagram on every medium.
    Send(Vec<u8>),
    Log(LogLevel, String),
    /// Run `script args... op` for a resource; answer with `Cluster::script_done(job, ...)`,
    /// at once if the script cannot be found or started.
    RunScript {
        job: u64,
        resource: Resource,
        op: Op,
    },
    /// Run the site's `rc.d/<name> <arg>` with `env` added, if it exists; answer with
    /// `Cluster::script_done(job, ...)` (`NotFound` when it does not).
    RunHook {
        job: u64,
        name: String,
        arg: String,
        env: Vec<(String, String)>,
    },
    /// Comm-up reached (the API may open, clients may start).
    CommUp,
    /// A peer's recorded status changed (`init`, `up`, `active`, `ping`).
    NodeStatus(String, NodeStatus),
    /// A peer (or ping node) was declared dead.
    NodeDead(String),
    /// A peer we had declared dead talks again with the same generation.
    NodeReturned(String),
    /// A peer started again (a higher generation).
    NodeRestarted(String),
    /// The graceful stop is complete: the process may exit.
    ShutdownComplete,
    /// A peer's message was handed to this node (for the rc.d hooks).
    Delivered(String, Msg),
    /// This node sent a message, its own user's (FIFO, control socket) or its resource
    /// manager's (for the rc.d hooks: 3.0.6 handles its own messages as received ones).
    Sent(Msg),
}

/// A node: membership plus, unless resources are not managed, the resource manager.
#[derive(Debug)]
pub struct Cluster {
    membership: Membership,
    rm: Option<ResourceManager>,
    /// Comm-up happened but the resource manager has not been told (see `try_rm_comm_up`).
    rm_comm_up_pending: bool,
    /// `shutdown` was called.
    stopping: bool,
    /// Each peer's status as the resource side saw it last (`dead` once taken over).
    peers: Vec<(String, NodeStatus)>,
    actions: VecDeque<ClusterAction>,
}

impl Cluster {
    /// Join a freshly created membership (its first status messages are queued) and the
    /// resource manager, if resources are managed.
    pub fn new(now: Now, membership: Membership, rm: Option<ResourceManager>) -> Cluster {
        let mut rm = rm;
        if let Some(rm) = rm.as_mut() {
            rm.set_nodes(&membership.params().nodes);
        }
        let mut c = Cluster {
            membership,
            rm,
            rm_comm_up_pending: false,
            stopping: false,
            peers: Vec::new(),
            actions: VecDeque::new(),
        };
        c.pump(now);
        c
    }

    // ----- outputs and queries -------------------------------------------------------------

    pub fn poll_action(&mut self) -> Option<ClusterAction> {
        self.actions.pop_front()
    }

    /// The earliest monotonic ms at which `handle_timeout` has something to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        let rm = self.rm.as_ref().and_then(ResourceManager::poll_timeout);
        self.membership.poll_timeout().into_iter().chain(rm).min()
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn resource_manager(&self) -> Option<&ResourceManager> {
        self.rm.as_ref()
    }

    /// Resources are managed (not `-M`, and a manager exists for the mode).
    pub fn manages_resources(&self) -> bool {
        self.rm.is_some()
    }

    pub fn is_comm_up(&self) -> bool {
        self.membership.is_comm_up()
    }

    pub fn node_status(&self, name: &str) -> Option<NodeStatus> {
        self.membership.node_status(name)
    }

    /// `cl_status rscstatus`; None when resources are not managed.
    pub fn rscstatus(&self) -> Option<&'static str> {
        self.rm.as_ref().map(ResourceManager::rscstatus)
    }

    /// The groups this node runs, by key (empty when resources are not managed).
    pub fn held_keys(&self) -> Vec<&str> {
        self.rm
            .as_ref()
            .map(ResourceManager::held_keys)
            .unwrap_or_default()
    }

    // ----- inputs --------------------------------------------------------------------------

    /// One datagram from medium `link`.
    pub fn handle_datagram(&mut self, now: Now, link: usize, bytes: &[u8]) {
        self.membership.handle_datagram(now, link, bytes);
        self.pump(now);
    }

    /// Timers of membership and resource manager, whichever are due.
    pub fn handle_timeout(&mut self, now: Now) {
        if self
            .membership
            .poll_timeout()
            .is_some_and(|t| t <= now.mono_ms)
        {
            self.membership.handle_timeout(now);
        }
        if let Some(rm) = self.rm.as_mut() {
            if rm.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
                rm.handle_timeout(now);
            }
        }
        self.pump(now);
    }

    /// A script run asked for with `RunScript` ended.
    pub fn script_done(&mut self, now: Now, job: u64, result: ScriptResult) {
        if let Some(rm) = self.rm.as_mut() {
            rm.script_done(now, job, result);
        }
        self.pump(now);
    }

    /// A message from this node's users (the FIFO, `hb_standby`, `hb_takeover`): it goes to
    /// the cluster and, as every message this node sends, to its own resource manager.
    pub fn send_message(&mut self, now: Now, msg: Msg) {
        self.send_and_loop_back(now, msg);
        self.pump(now);
    }

    /// Graceful stop: release every group, then say `shutdone`; `ShutdownComplete` follows.
    pub fn shutdown(&mut self, now: Now) {
        self.stopping = true;
        match self.rm.as_mut() {
            // The resource manager releases everything, then `Released` stops membership.
            Some(rm) => rm.shutdown(now),
            None => {
                self.actions.push_back(ClusterAction::Log(
                    LogLevel::Info,
                    "Giving up all HA resources.".into(),
                ));
                self.actions.push_back(ClusterAction::Log(
                    LogLevel::Info,
                    "All HA resources relinquished.".into(),
                ));
                self.membership.shutdown(now);
            }
        }
        self.pump(now);
    }

    pub fn set_load_average(&mut self, ld: &str) {
        self.membership.set_load_average(ld);
    }

    /// Our own side of a medium works (or stopped working).
    pub fn set_own_link(&mut self, now: Now, link: usize, up: bool) {
        self.membership.set_own_link(now, link, up);
        self.pump(now);
    }

    /// New configuration (SIGHUP); the resource manager keeps its groups.
    pub fn reconfigure(&mut self, now: Now, params: Params, auth: Authenticator) {
        self.membership.reconfigure(now, params, auth);
        self.pump(now);
    }

    // ----- the glue ------------------------------------------------------------------------

    fn send_and_loop_back(&mut self, now: Now, msg: Msg) {
        let me = self.membership.params().my_name.clone();
        self.membership.send_message(now, msg.clone());
        self.actions.push_back(ClusterAction::Sent(msg.clone()));
        // A node handles its own messages too (3.0.6 does it before sending).
        if let Some(rm) = self.rm.as_mut() {
            rm.message(now, &me, &msg);
        }
    }

    /// Move everything between the two layers until both are quiet.
    fn pump(&mut self, now: Now) {
        loop {
            self.drain_membership(now);
            if !self.drain_resources(now) {
                break;
            }
        }
    }

    fn drain_membership(&mut self, now: Now) {
        let batch: Vec<Action> = std::iter::from_fn(|| self.membership.poll_action()).collect();
        // Peers declared dead by the very message that shows them alive (a heartbeat later than
        // the dead time: one of us was frozen): not dead for the resource manager. Taking
        // their groups over only to give them back would run them twice meanwhile.
        let late: Vec<String> = batch
            .iter()
            .filter_map(|a| match a {
                Action::NodeReturned(n) if batch.contains(&Action::NodeDead(n.clone())) => {
                    Some(n.clone())
                }
                _ => None,
            })
            .collect();
        for a in batch {
            match a {
                Action::Send(bytes) => self.actions.push_back(ClusterAction::Send(bytes)),
                Action::Log(level, text) => self.actions.push_back(ClusterAction::Log(level, text)),
                Action::Deliver(from, msg) => {
                    let t = msg.get_str("t").unwrap_or("?");
                    self.actions.push_back(ClusterAction::Log(
                        LogLevel::Debug,
                        format!("received {t} message from {from}"),
                    ));
                    if let Some(rm) = self.rm.as_mut() {
                        rm.message(now, &from, &msg);
                    }
                    self.actions.push_back(ClusterAction::Delivered(from, msg));
                }
                Action::CommUp => {
                    self.actions.push_back(ClusterAction::CommUp);
                    self.rm_comm_up_pending = true;
                    self.try_rm_comm_up(now);
                }
                Action::NodeDead(node) => {
                    self.try_rm_comm_up(now);
                    // Ping nodes hold no resources.
                    if late.contains(&node) {
                        self.actions.push_back(ClusterAction::Log(
                            LogLevel::Info,
                            format!("{node} is alive after all: no resource takeover"),
                        ));
                    } else if self.membership.params().nodes.contains(&node) {
                        self.set_peer(&node, NodeStatus::Dead);
                        if let Some(rm) = self.rm.as_mut() {
                            rm.node_dead(now, &node);
                        }
                    }
                    self.actions.push_back(ClusterAction::NodeDead(node));
                }
                Action::NodeStatus(node, st) => {
                    let before = self.set_peer(&node, st);
                    if matches!(st, NodeStatus::Init | NodeStatus::Up | NodeStatus::Active) {
                        if let Some(rm) = self.rm.as_mut() {
                            rm.node_alive(now, &node);
                        }
                    }
                    if st == NodeStatus::Active && before != Some(NodeStatus::Active) {
                        self.peer_active(now, &node);
                    }
                    self.try_rm_comm_up(now);
                    self.actions.push_back(ClusterAction::NodeStatus(node, st));
                }
                Action::NodeReturned(node) => {
                    if !late.contains(&node) {
                        // Back from a partition, `active`: its status update follows.
                        self.set_peer(&node, NodeStatus::Active);
                        if let Some(rm) = self.rm.as_mut() {
                            rm.node_returned(now, &node);
                        }
                    }
                    self.actions.push_back(ClusterAction::NodeReturned(node));
                }
                Action::NodeRestarted(node) => {
                    self.peer_restarted(now);
                    self.actions.push_back(ClusterAction::NodeRestarted(node));
                }
                Action::ShutdownComplete => self.actions.push_back(ClusterAction::ShutdownComplete),
            }
        }
    }

    /// Record a peer's status; the one recorded before.
    fn set_peer(&mut self, node: &str, st: NodeStatus) -> Option<NodeStatus> {
        match self.peers.iter_mut().find(|(n, _)| n == node) {
            Some((_, s)) => Some(std::mem::replace(s, st)),
            None => {
                self.peers.push((node.to_string(), st));
                None
            }
        }
    }

    /// A peer reached `active`: it is past its comm-up, where it asked for its own groups
    /// (`ip-request`) or, not hearing us as `active`, granted them to itself. Any of its groups
    /// we hold (taken over while it was dead, stopped or away) go back to it, as after a
    /// partition; an `ip-request` of its is answered after the release, as always. This also
    /// covers what membership does not call a return from a partition: a peer first heard
    /// after we declared it dead at initdead, or one that restarted and reached comm-up
    /// without hearing us, whose grant to itself we missed; both ran the group for good.
    fn peer_active(&mut self, now: Now, node: &str) {
        if !self.membership.params().nodes.iter().any(|n| n == node) {
            return;
        }
        // Negotiated mode settles this with `starting` / `resource` (and auto_failback off
        // must leave a returning owner idle).
        match self.rm.as_mut() {
            Some(rm) if rm.mode() == AutoFailback::Legacy => rm.node_returned(now, node),
            Some(rm) => rm.peer_active(now),
            None => {}
        }
    }

    /// A peer restarted. Whatever its predecessor was asked (our `ip-request` for a group of
    /// ours it held, say) died with it, and the new process holds nothing: we acquire our own
    /// groups again as at comm-up (a group we hold is not started twice). Legacy 3.0.6 waits
    /// for an answer that never comes, and the group runs nowhere.
    fn peer_restarted(&mut self, now: Now) {
        // Negotiated mode: the restarted peer's `starting` renegotiates.
        if self
            .rm
            .as_ref()
            .is_some_and(|rm| rm.mode() != AutoFailback::Legacy)
        {
            return;
        }
        if self.membership.is_comm_up() && !self.rm_comm_up_pending && !self.stopping {
            self.rm_comm_up_pending = true;
            self.try_rm_comm_up(now);
        }
    }

    /// Resource acquisition at comm-up counts the peers that are `active` (3.0.6's rule: one
    /// that is only `up` has not reached its own comm-up and would ignore an `ip-request`).
    /// Comm-up can come before a peer's first status message; then we wait for it.
    fn try_rm_comm_up(&mut self, now: Now) {
        if !self.rm_comm_up_pending {
            return;
        }
        let params = self.membership.params();
        let peers: Vec<&String> = params
            .nodes
            .iter()
            .filter(|n| **n != params.my_name)
            .collect();
        let status = |n: &str| self.membership.node_status(n);
        if peers.iter().any(|n| status(n) == Some(NodeStatus::Init)) {
            return;
        }
        let active = 1 + peers
            .iter()
            .filter(|n| status(n) == Some(NodeStatus::Active))
            .count();
        self.rm_comm_up_pending = false;
        if let Some(rm) = self.rm.as_mut() {
            rm.comm_up(now, active);
        }
    }

    /// Carry out what the resource manager asked for; true if it asked for anything.
    fn drain_resources(&mut self, now: Now) -> bool {
        let mut any = false;
        while let Some(a) = self.rm.as_mut().and_then(ResourceManager::poll_action) {
            any = true;
            match a {
                RmAction::Send(msg) => self.send_and_loop_back(now, msg),
                RmAction::Log(level, text) => {
                    self.actions.push_back(ClusterAction::Log(level, text))
                }
                RmAction::Released => self.membership.shutdown(now),
                RmAction::Run { job, resource, op } => self
                    .actions
                    .push_back(ClusterAction::RunScript { job, resource, op }),
                RmAction::RunHook {
                    job,
                    name,
                    arg,
                    env,
                } => self.actions.push_back(ClusterAction::RunHook {
                    job,
                    name,
                    arg,
                    env,
                }),
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Identity;
    use crate::config::{haresources, AutoFailback};
    use std::path::Path;

    fn at(ms: u64) -> Now {
        Now {
            mono_ms: ms,
            unix_secs: 1_700_000_000 + ms / 1000,
        }
    }

    /// alice alone in ha.cf (plus `ping` nodes), owning one group of two resources.
    fn alice(ping: &[&str]) -> Cluster {
        let nodes = vec!["alice".to_string()];
        let groups = haresources::parse(
            "alice Marker::a1 Marker::a2\n",
            Path::new("haresources"),
            &nodes,
        )
        .unwrap();
        let params = Params {
            my_name: "alice".into(),
            nodes,
            links: vec!["hb0".into()],
            keepalive_ms: 100,
            deadtime_ms: 1000,
            warntime_ms: 500,
            initdead_ms: 2000,
            max_rexmit_delay_ms: 250,
            hopfudge: 1,
            inner_auth: false,
            ping_nodes: ping.iter().map(|p| p.to_string()).collect(),
            deadping_ms: 1000,
        };
        let keys = crate::config::authkeys::parse("auth 1\n1 crc\n", Path::new("authkeys"))
            .expect("authkeys");
        let id = Identity {
            name: "alice".into(),
            uuid: [7; 16],
            generation: 1,
        };
        let m = Membership::new(params, id, Authenticator::new(keys), at(0), 1);
        let rm = ResourceManager::new("alice", groups, AutoFailback::Legacy);
        Cluster::new(at(0), m, Some(rm))
    }

    fn drain(c: &mut Cluster) -> Vec<ClusterAction> {
        std::iter::from_fn(|| c.poll_action()).collect()
    }

    fn logs(actions: &[ClusterAction]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                ClusterAction::Log(_, t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Answer every script run (status says stopped, start and stop succeed); the runs, and
    /// the other actions.
    fn run_scripts(c: &mut Cluster, now: Now) -> (Vec<String>, Vec<ClusterAction>) {
        let (mut calls, mut other) = (Vec::new(), Vec::new());
        loop {
            let mut runs = Vec::new();
            for a in drain(c) {
                match a {
                    ClusterAction::RunScript { job, resource, op } => {
                        runs.push((job, resource.spec, op))
                    }
                    a => other.push(a),
                }
            }
            if runs.is_empty() {
                return (calls, other);
            }
            for (job, spec, op) in runs {
                calls.push(format!("{spec} {}", op.as_str()));
                let stdout = if op == Op::Status { "stopped" } else { "" };
                let result = ScriptResult::Done {
                    code: 0,
                    stdout: stdout.into(),
                };
                c.script_done(now, job, result);
            }
        }
    }

    #[test]
    fn a_lone_node_grants_itself_its_group_through_its_own_message() {
        let mut c = alice(&[]);
        // Comm-up at once (no peer); the grant it sends itself comes back to its manager.
        assert!(c.is_comm_up());
        let (calls, _) = run_scripts(&mut c, at(1));
        assert_eq!(
            calls,
            [
                "Marker::a1 status",
                "Marker::a1 start",
                "Marker::a2 status",
                "Marker::a2 start"
            ]
        );
        assert_eq!(c.held_keys(), ["Marker::a1"]);
        assert_eq!(c.rscstatus(), Some("none"));
    }

    #[test]
    fn a_users_message_is_sent_and_handled_by_this_node_too() {
        let mut c = alice(&[]);
        run_scripts(&mut c, at(1));
        let mut m = Msg::new();
        m.add_str("t", "ask_resources")
            .add_str("rsc_hold", "all")
            .add_str("info", "me");
        c.send_message(at(2), m);
        let out = drain(&mut c);
        assert!(out
            .iter()
            .any(|a| matches!(a, ClusterAction::Send(b) if b.windows(15).any(|w| w == b"t=ask_resources"))));
        assert!(
            logs(&out).contains(&"Standby mode only implemented when nice_failback on"),
            "{out:?}"
        );
    }

    #[test]
    fn a_dead_ping_node_takes_nothing_over() {
        let mut c = alice(&["10.0.0.9"]);
        // Comm-up waits for the ping node: heard, or dead after initdead.
        assert!(!c.is_comm_up());
        let mut out = drain(&mut c);
        let mut t = 0;
        while t < 3000 {
            t = c.poll_timeout().unwrap();
            c.handle_timeout(at(t));
            out.extend(drain(&mut c));
        }
        assert!(out.contains(&ClusterAction::NodeDead("10.0.0.9".into())));
        assert!(out.contains(&ClusterAction::CommUp));
        assert!(
            !logs(&out).contains(&"No STONITH device configured."),
            "{out:?}"
        );
        assert!(!out.iter().any(
            |a| matches!(a, ClusterAction::Send(b) if b.windows(9).any(|w| w == b"t=stonith"))
        ));
    }

    #[test]
    fn a_graceful_stop_releases_then_says_shutdone_and_completes() {
        let mut c = alice(&[]);
        run_scripts(&mut c, at(1));
        c.shutdown(at(5));
        let (calls, out) = run_scripts(&mut c, at(6));
        assert_eq!(calls, ["Marker::a2 stop", "Marker::a1 stop"]);
        let shutdone = out.iter().position(
            |a| matches!(a, ClusterAction::Send(b) if b.windows(10).any(|w| w == b"t=shutdone")),
        );
        let complete = out
            .iter()
            .position(|a| *a == ClusterAction::ShutdownComplete);
        assert!(shutdone.is_some() && shutdone < complete, "{out:?}");
        assert!(c.held_keys().is_empty());
        assert_eq!(c.poll_timeout(), None);
    }
}
