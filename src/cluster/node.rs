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
//! * the resource manager's end of a graceful stop (`Released`) lets membership say `shutdone`;
//! * the operator's requests (`handle_admin`) become the messages 3.0.6's tools send;
//! * the rc.d hooks: which events and messages are offered (`notifications`), as `Notify`;
//! * whether we are stopping (`shutdown` was called): the one place that knows.

use std::collections::VecDeque;

use super::admin::{Admin, AdminError, AdminOutcome, Which};
use super::clients::dopd::{CommandEnd, Dopd, DopdAction, NodeView, RequestId};
use super::clients::ipfail::{self, Ipfail, IpfailAction};
use super::clients::status_query::{Query, Roster};
use super::membership::{Action, Membership, NodeStatus, Params, Transmit};
use super::notifications::{self, Context, Notification, HOOK_TIME_LIMIT_MS};
use super::resources::{Op, ResourceManager, RmAction, ScriptResult};
use super::stonith::{Device, FenceAction, Fencer, StonithOp};
use super::{LogLevel, Now};
use crate::config::{AutoFailback, Resource};
use crate::wire::messages::{some, AskResources, HbTakeover, Message};
use crate::wire::{Authenticator, Msg};

/// Something the runtime (or a simulation) must carry out or may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAction {
    /// Send this message on every medium, each encoding it in its own form
    /// (`Cluster::encode_udp`, `Cluster::encode_classic`).
    Transmit(Transmit),
    Log(LogLevel, String),
    /// A line of a built-in client, logged under the client's name as the real client's
    /// lines are (`ipfail: [pid]: info: ...`; the pid is the daemon's).
    ClientLog {
        client: String,
        level: LogLevel,
        text: String,
    },
    /// Run `script args... op` for a resource, killed after `time_limit_ms`; answer with
    /// `Cluster::script_done(job, ...)`, at once if the script cannot be found or started.
    RunScript {
        job: u64,
        resource: Resource,
        op: Op,
        time_limit_ms: u64,
    },
    /// Run the site's `rc.d/<name> <arg>` with `env` added, if it exists, killed after
    /// `time_limit_ms`; answer with `Cluster::script_done(job, ...)` (`NotFound` when it
    /// does not). The group work waits for it.
    RunHook {
        job: u64,
        name: String,
        arg: String,
        env: Vec<(String, String)>,
        time_limit_ms: u64,
    },
    /// Queue this run of an rc.d hook (what 3.0.6 runs through `harc`): one at a time, in
    /// order, never while a resource script runs; nothing waits for it.
    Notify(Notification),
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
    /// Medium `link` to `node` (ours too) came up or went dead.
    LinkStatus {
        node: String,
        link: usize,
        up: bool,
    },
    /// The graceful stop is complete: the process may exit.
    ShutdownComplete,
    /// Run cluster-glue's `stonith` with `args` (`cluster::stonith`), killed after
    /// `time_limit_ms`; answer with `Cluster::script_done(job, ...)` (exit 0 = success).
    RunStonith {
        job: u64,
        op: StonithOp,
        args: Vec<String>,
        time_limit_ms: u64,
    },
}

/// A node: membership plus, unless resources are not managed, the resource manager.
#[derive(Debug)]
pub struct Cluster {
    membership: Membership,
    rm: Option<ResourceManager>,
    /// Comm-up happened but the resource manager has not been told (see `try_rm_comm_up`).
    rm_comm_up_pending: bool,
    /// `shutdown` was called: the one record of it the runtime and the hooks go by.
    stopping: bool,
    /// Each peer's status as the resource side saw it last (`dead` once taken over).
    peers: Vec<(String, NodeStatus)>,
    /// STONITH: dead peers wait here for their reset before the resource manager hears.
    fencer: Fencer,
    /// The built-in ipfail (a `respawn` of ipfail), once started at comm-up.
    ipfail: Option<Ipfail>,
    /// Enabled, waiting for comm-up (when 3.0.6 starts its clients).
    ipfail_waiting: Option<Ipfail>,
    /// The API clients the peers said are signed on (their `hbapi-clstat`).
    peer_clients: Roster,
    /// The name the built-in dopd's lines go under (`enable_dopd_as`).
    dopd_log_name: String,
    actions: VecDeque<ClusterAction>,
    /// The built-in dopd (a `respawn` line runs dopd), and what it asks the runtime to do
    /// (`RunOutdate`, `Answer`; see `poll_dopd`).
    dopd: Option<Dopd>,
    /// dopd's decisions not yet carried out (`pump` does, in order).
    dopd_in: Vec<DopdAction>,
    dopd_out: VecDeque<DopdAction>,
    /// Peers found late: their would-be takeover's status checks were run then
    /// (`ResourceManager::peer_late`).
    late_peers: Vec<Sighting>,
}

/// A peer and its last proof of life (monotonic ms): what it was late after.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sighting {
    node: String,
    alive_at: u64,
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
            fencer: Fencer::new(None),
            ipfail: None,
            ipfail_waiting: None,
            peer_clients: Roster::default(),
            dopd_log_name: super::clients::dopd::CLIENT_ID.into(),
            actions: VecDeque::new(),
            dopd: None,
            dopd_in: Vec::new(),
            dopd_out: VecDeque::new(),
            late_peers: Vec::new(),
        };
        c.pump(now);
        c
    }

    /// The STONITH device of `stonith`/`stonith_host` (None: none configured, the dead
    /// are taken over at once with 3.0.6's warnings).
    pub fn set_stonith(&mut self, now: Now, device: Option<Device>) {
        self.fencer = Fencer::new(device);
        // A lone node reached comm-up inside `new`: its check starts now.
        if self.rm.is_some() && self.membership.is_comm_up() && !self.rm_comm_up_pending {
            self.fencer.start_status_checks(now);
        }
        self.pump(now);
    }

    /// The configured STONITH device changed (SIGHUP): see `Fencer::change_device`.
    pub fn change_stonith(&mut self, now: Now, device: Option<Device>) {
        self.fencer.change_device(now, device);
        if self.rm.is_some() && self.membership.is_comm_up() && !self.rm_comm_up_pending {
            self.fencer.start_status_checks(now);
        }
        self.pump(now);
    }

    // ----- the built-in dopd ----------------------------------------------------------------

    /// Run the built-in dopd (ha.cf has a `respawn` line for dopd). Its lines go under
    /// `program`, the path of that line: the real dopd logs under its `argv[0]` as given
    /// (`/usr/lib/heartbeat/dopd: [pid]: ...`, lab), unlike ipfail (`ipfail: [pid]: ...`).
    pub fn enable_dopd_as(&mut self, program: &str) {
        self.dopd_log_name = program.to_string();
        self.enable_dopd();
    }

    /// Run the built-in dopd (ha.cf has a `respawn` line for dopd).
    pub fn enable_dopd(&mut self) {
        let me = self.membership.params().my_name.clone();
        self.dopd = Some(Dopd::new(&me));
    }

    pub fn dopd_enabled(&self) -> bool {
        self.dopd.is_some()
    }

    /// What dopd asks of the runtime: `RunOutdate` (spawn `drbdadm outdate <resource>`,
    /// report with `outdate_done`) and `Answer` (reply to the local outdater request).
    pub fn poll_dopd(&mut self) -> Option<DopdAction> {
        self.dopd_out.pop_front()
    }

    /// `drbd-peer-outdater` asks to outdate `resource` on `peer`; without a built-in dopd
    /// the answer is `5`, as when the original's channel cannot be reached.
    pub fn dopd_request(&mut self, now: Now, request: RequestId, peer: &str, resource: &str) {
        let params = self.membership.params();
        let nodes: Vec<NodeView> = params
            .nodes
            .iter()
            .map(|n| (n, true))
            .chain(params.ping_nodes.iter().map(|n| (n, false)))
            .map(|(n, normal)| NodeView {
                name: n.clone(),
                normal,
                dead: self.membership.node_status(n) == Some(NodeStatus::Dead),
            })
            .collect();
        let out = match self.dopd.as_mut() {
            Some(d) => d.outdate_request(request, peer, resource, &nodes),
            None => vec![DopdAction::Answer {
                request,
                code: super::clients::dopd::rc::UNREACHABLE.into(),
            }],
        };
        self.dopd_actions(now, out);
    }

    /// The local request went away unanswered (its connection timed out).
    pub fn dopd_request_gone(&mut self, request: RequestId) {
        if let Some(d) = self.dopd.as_mut() {
            d.request_gone(request);
        }
    }

    /// A `drbdadm outdate` run asked for with `RunOutdate` ended.
    pub fn outdate_done(&mut self, now: Now, job: u64, end: CommandEnd) {
        let out = match self.dopd.as_mut() {
            Some(d) => d.outdate_done(job, end),
            None => Vec::new(),
        };
        self.dopd_actions(now, out);
    }

    fn dopd_actions(&mut self, now: Now, out: Vec<DopdAction>) {
        self.dopd_in.extend(out);
        self.pump(now);
    }

    /// Carry out dopd's decisions; true if there were any.
    fn drain_dopd(&mut self, now: Now) -> bool {
        let batch = std::mem::take(&mut self.dopd_in);
        let any = !batch.is_empty();
        for a in batch {
            match a {
                DopdAction::Send(msg) => self.membership.send_message(now, msg),
                DopdAction::Log(level, text) => self.actions.push_back(ClusterAction::ClientLog {
                    client: self.dopd_log_name.clone(),
                    level,
                    text,
                }),
                a @ (DopdAction::Answer { .. } | DopdAction::RunOutdate { .. }) => {
                    self.dopd_out.push_back(a)
                }
            }
        }
        any
    }

    // ----- outputs and queries -------------------------------------------------------------

    pub fn poll_action(&mut self) -> Option<ClusterAction> {
        self.actions.pop_front()
    }

    /// The earliest monotonic ms at which `handle_timeout` has something to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        let rm = self
            .rm
            .as_ref()
            .and_then(ResourceManager::poll_timeout)
            .into_iter()
            .chain(self.next_late_check())
            .min();
        let fence = self.fencer.poll_timeout();
        let ipf = self.ipfail.as_ref().and_then(Ipfail::poll_timeout);
        self.membership
            .poll_timeout()
            .into_iter()
            .chain(rm)
            .chain(fence)
            .chain(ipf)
            .min()
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// A transmitted message as a UDP datagram (netstring, signed trailer).
    pub fn encode_udp(&self, t: &Transmit) -> Vec<u8> {
        self.membership.encode_udp(t)
    }

    /// A transmitted message in the classic form of serial links.
    pub fn encode_classic(&self, t: &Transmit) -> Vec<u8> {
        self.membership.encode_classic(t)
    }

    /// The keys of this node (the ping medium signs its echo requests with them).
    pub fn authenticator(&self) -> &Authenticator {
        self.membership.authenticator()
    }

    pub fn resource_manager(&self) -> Option<&ResourceManager> {
        self.rm.as_ref()
    }

    /// Resources are managed (not `-M`, and a manager exists for the mode).
    pub fn manages_resources(&self) -> bool {
        self.rm.is_some()
    }

    /// A graceful stop is under way (`shutdown` was called).
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// The built-in ipfail runs (enabled, and started at comm-up).
    pub fn ipfail_running(&self) -> bool {
        self.ipfail.is_some()
    }

    /// Whether this node's API client `client` is signed on: the built-in ipfail once
    /// started, the built-in dopd.
    pub fn client_online(&self, client: &str) -> bool {
        match client {
            ipfail::CLIENT_ID => self.ipfail.is_some(),
            super::clients::dopd::CLIENT_ID => self.dopd.is_some(),
            _ => false,
        }
    }

    /// (node, client, online) for `cl_status clientstatus`: ours (the built-ins that run)
    /// and what the peers said of theirs.
    pub fn client_statuses(&self) -> Vec<(String, String, bool)> {
        let me = &self.membership.params().my_name;
        let mut out: Vec<(String, String, bool)> =
            [ipfail::CLIENT_ID, super::clients::dopd::CLIENT_ID]
                .into_iter()
                .filter(|c| self.client_online(c))
                .map(|c| (me.clone(), c.to_string(), true))
                .collect();
        out.extend(
            self.peer_clients
                .entries()
                .map(|(n, c, o)| (n.to_string(), c.to_string(), o)),
        );
        out
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
        if !self.late_peers.is_empty() {
            self.check_late_peers(now);
            self.pump(now);
        }
    }

    /// How long a peer may be silent before the status checks of its takeover run early:
    /// two keepalives, or `warntime` if sooner, but never at every heartbeat.
    fn late_after_ms(&self) -> u64 {
        let p = self.membership.params();
        let ka = p.keepalive_ms.max(1);
        (2 * ka).min(p.warntime_ms).max(ka + ka / 2)
    }

    /// Peers that may be taken over, with their last proof of life (none while resources
    /// are not managed yet, or are being given up).
    fn takeover_candidates(&self) -> impl Iterator<Item = (&String, u64)> + '_ {
        let ready = self.rm.is_some() && !self.rm_comm_up_pending && !self.stopping;
        let p = self.membership.params();
        p.nodes
            .iter()
            .filter(move |_| ready)
            .filter(move |n| **n != p.my_name)
            .filter_map(|n| Some((n, self.membership.peer_alive_at(n)?)))
    }

    /// When the next peer turns late, unless it is heard first.
    fn next_late_check(&self) -> Option<u64> {
        let after = self.late_after_ms();
        self.takeover_candidates()
            .filter(|(n, at)| {
                !self
                    .late_peers
                    .iter()
                    .any(|l| l.node == **n && l.alive_at == *at)
            })
            .map(|(_, at)| at + after)
            .min()
    }

    /// Run the status checks of a takeover when a peer turns late; drop what they found
    /// when a late peer is heard again.
    fn check_late_peers(&mut self, now: Now) {
        let after = self.late_after_ms();
        let current: Vec<Sighting> = self
            .takeover_candidates()
            .map(|(n, at)| Sighting {
                node: n.clone(),
                alive_at: at,
            })
            .collect();
        // A late peer heard since (its proof of life moved on); the dead are left out, their
        // takeover has what was found.
        let heard_again = self
            .late_peers
            .iter()
            .any(|l| current.iter().any(|c| c.node == l.node && c != l));
        self.late_peers.retain(|l| current.contains(l));
        if heard_again {
            if let Some(rm) = self.rm.as_mut() {
                rm.peer_heard_again();
            }
        }
        let late: Vec<Sighting> = current
            .into_iter()
            .filter(|c| {
                c.alive_at + after <= now.mono_ms
                    && !self.late_peers.iter().any(|l| l.node == c.node)
            })
            .collect();
        if !late.is_empty() {
            self.late_peers.extend(late);
            if let Some(rm) = self.rm.as_mut() {
                rm.peer_late(now);
            }
        }
    }

    /// Timers of membership and resource manager, whichever are due.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.next_late_check().is_some_and(|t| t <= now.mono_ms) {
            self.check_late_peers(now);
        }
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
        if self.fencer.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
            self.fencer.handle_timeout(now);
        }
        if self
            .ipfail
            .as_ref()
            .and_then(Ipfail::poll_timeout)
            .is_some_and(|t| t <= now.mono_ms)
        {
            let view = self.ipfail_view();
            if let Some(ipf) = self.ipfail.as_mut() {
                ipf.handle_timeout(now.mono_ms, view);
            }
        }
        self.pump(now);
    }

    /// A script run asked for with `RunScript` ended.
    pub fn script_done(&mut self, now: Now, job: u64, result: ScriptResult) {
        if self.fencer.owns(job) {
            let ok = matches!(result, ScriptResult::Done { code: 0, .. });
            self.fencer.run_done(now, job, ok);
        } else if let Some(rm) = self.rm.as_mut() {
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

    /// An operator's request (`hb_standby`, `hb_takeover`): the message 3.0.6's tool writes
    /// into its FIFO, sent, and handled by this node too. Refused when resources are not
    /// managed.
    pub fn handle_admin(&mut self, now: Now, req: Admin) -> Result<AdminOutcome, AdminError> {
        let Some(rm) = self.rm.as_ref() else {
            return Err(AdminError::NoResources);
        };
        let outcome = if rm.mode() == AutoFailback::Legacy {
            AdminOutcome::NoEffectInLegacyMode
        } else {
            AdminOutcome::Sent
        };
        let m: Message = match req {
            Admin::Standby(w) => {
                // `hb_standby failback` asks the peer for what it does not own: `foreign`.
                let set = if w == Which::Failback {
                    "foreign"
                } else {
                    w.as_str()
                };
                AskResources {
                    rsc_hold: some(set),
                    info: some("me"),
                }
                .into()
            }
            Admin::Takeover(w) => HbTakeover {
                rsc_hold: some(w.as_str()),
            }
            .into(),
        };
        self.send_message(now, m.emit());
        Ok(outcome)
    }

    /// Run ipfail built in (a `respawn` line whose program is ipfail), with 3.0.6 ipfail's
    /// preconditions: resources managed, `auto_failback` on or off. When they fail, the
    /// client's error is logged and it stays off (3.0.6's ipfail exits 100: not respawned).
    pub fn enable_ipfail(&mut self) -> bool {
        let failback = match self.rm.as_ref().map(ResourceManager::mode) {
            None => Err("No managed resources"),
            Some(AutoFailback::Legacy) => Err("auto_failback set to incompatible legacy option."),
            Some(m) => Ok(m == AutoFailback::On),
        };
        match failback {
            Ok(on) => {
                let p = self.membership.params();
                let ipf = Ipfail::new(&p.my_name, &p.nodes, p.keepalive_ms, on);
                if self.membership.is_comm_up() {
                    self.ipfail = Some(ipf);
                } else {
                    self.ipfail_waiting = Some(ipf);
                }
                true
            }
            Err(e) => {
                self.actions.push_back(ClusterAction::ClientLog {
                    client: ipfail::CLIENT_ID.into(),
                    level: LogLevel::Error,
                    text: e.to_string(),
                });
                false
            }
        }
    }

    /// Graceful stop: release every group, then say `shutdone`; `ShutdownComplete` follows.
    pub fn shutdown(&mut self, now: Now) {
        if !self.stopping {
            // Not started yet: it never will. A running one lives on while the groups are
            // released, as 3.0.6's clients do (see `stop_membership`).
            self.ipfail_waiting = None;
        }
        self.stopping = true;
        self.fencer.stop();
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
                self.stop_membership(now);
            }
        }
        self.pump(now);
    }

    /// The end of a graceful stop: the built-in ipfail goes (3.0.6 kills its clients once
    /// the groups are released: the peers see `hbapi-clstat st=leave info=died` for it,
    /// observed after `shutdone`; here just before it, so that the last thing said is
    /// `shutdone`), then membership says `shutdone`.
    fn stop_membership(&mut self, now: Now) {
        if let Some(m) = self.ipfail.take().map(|i| i.clstat(false)) {
            if self.membership.is_comm_up() {
                self.membership.send_message(now, m);
            }
        }
        self.membership.shutdown(now);
    }

    pub fn set_load_average(&mut self, ld: &str) {
        self.membership.set_load_average(ld);
    }

    /// Our own side of a medium works (or stopped working).
    pub fn set_own_link(&mut self, now: Now, link: usize, up: bool) {
        self.membership.set_own_link(now, link, up);
        self.pump(now);
    }

    /// The text of `OnlyForTesting` (None: no such file), read at start and on SIGHUP; see
    /// [`crate::cluster::testopts`].
    ///
    /// Packets queued but not yet handed to the media go through the switches too: read at
    /// start, right after [`Cluster::new`], the file stops our first status messages as
    /// 3.0.6 (which reads it before it sends anything) does.
    pub fn set_test_opts(&mut self, now: Now, text: Option<&str>, path: &str) {
        self.membership.set_test_opts(text, path);
        let queued = std::mem::take(&mut self.actions);
        for a in queued {
            if matches!(a, ClusterAction::Transmit(_)) && self.membership.test_drops_outgoing() {
                continue;
            }
            self.actions.push_back(a);
        }
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
        // 3.0.6 handles its own messages as received ones: the hooks see them too.
        let n = notifications::for_own_message(&msg, &self.hook_context());
        self.notify(n);
        // A node handles its own messages too (3.0.6 does it before sending).
        if let Some(rm) = self.rm.as_mut() {
            rm.message(now, &me, &msg);
        }
    }

    /// What the hook decisions depend on besides the event.
    fn hook_context(&self) -> Context<'_> {
        let params = self.membership.params();
        Context {
            me: &params.my_name,
            cluster_nodes: &params.nodes,
            manage_resources: self.rm.is_some(),
            shutting_down: self.stopping,
        }
    }

    fn notify(&mut self, n: Option<Notification>) {
        if let Some(n) = n {
            self.actions.push_back(ClusterAction::Notify(n));
        }
    }

    /// The hook run (if any) for something membership reported.
    fn notify_for(&mut self, a: &Action) {
        let n = notifications::for_action(a, &self.hook_context());
        self.notify(n);
    }

    /// Move everything between the two layers until both are quiet.
    fn pump(&mut self, now: Now) {
        loop {
            self.drain_membership(now);
            let fenced = self.drain_fencer(now);
            let resources = self.drain_resources(now);
            let dopd = self.drain_dopd(now);
            let ipf = self.drain_ipfail(now);
            if !fenced && !resources && !dopd && !ipf {
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
        // Peers seen restarted by a status that says `active` and changes nothing in
        // membership's view (the old process was `active` too): no status action follows, yet
        // the new process reaching `active` is news for the resource side (`peer_active`).
        let restarted_active: Vec<String> = batch
            .iter()
            .filter_map(|a| match a {
                Action::NodeRestarted(n)
                    if self.membership.node_status(n) == Some(NodeStatus::Active)
                        && !batch.contains(&Action::NodeStatus(n.clone(), NodeStatus::Active)) =>
                {
                    Some(n.clone())
                }
                _ => None,
            })
            .collect();
        for a in batch {
            self.notify_for(&a);
            match a {
                Action::Transmit(t) => self.actions.push_back(ClusterAction::Transmit(t)),
                Action::Log(level, text) => self.actions.push_back(ClusterAction::Log(level, text)),
                Action::Deliver(from, msg) => {
                    let t = msg.get_str("t").unwrap_or("?");
                    self.actions.push_back(ClusterAction::Log(
                        LogLevel::Debug,
                        format!("received {t} message from {from}"),
                    ));
                    if let Some(rm) = self.rm.as_mut() {
                        rm.peer_is_ours(&from, self.membership.is_one_of_ours(&from));
                        rm.message(now, &from, &msg);
                    }
                    if !from.eq_ignore_ascii_case(&self.membership.params().my_name) {
                        self.peer_clients.message(&from, &msg);
                        // A peer's client asks whether one of ours runs: 3.0.6 answers.
                        if let Some(q) = Query::parse(&msg) {
                            let online = self.client_online(&q.client);
                            self.membership.send_message(now, q.answer(&from, online));
                        }
                    }
                    if let Some(d) = self.dopd.as_mut() {
                        self.dopd_in.extend(d.message(&msg));
                    }
                    let view = self.ipfail_view();
                    if let Some(ipf) = self.ipfail.as_mut() {
                        ipf.message(now.mono_ms, &from, &msg, view);
                    }
                }
                Action::CommUp => {
                    self.actions.push_back(ClusterAction::CommUp);
                    // The built-in ipfail starts, and "signs on", as 3.0.6's clients: at comm-up.
                    if let Some(ipf) = self.ipfail_waiting.take() {
                        self.membership.send_message(now, ipf.clstat(true));
                        self.ipfail = Some(ipf);
                    }
                    self.rm_comm_up_pending = true;
                    self.try_rm_comm_up(now);
                }
                Action::NodeDead(node) => {
                    self.peer_clients.forget(&node);
                    self.try_rm_comm_up(now);
                    // Ping nodes hold no resources.
                    if late.contains(&node) {
                        self.actions.push_back(ClusterAction::Log(
                            LogLevel::Info,
                            format!("{node} is alive after all: no resource takeover"),
                        ));
                    } else if self.membership.params().nodes.contains(&node) {
                        self.set_peer(&node, NodeStatus::Dead);
                        self.node_dead(now, &node);
                    }
                    self.ipfail_node_status(&node, NodeStatus::Dead);
                    self.actions.push_back(ClusterAction::NodeDead(node));
                }
                Action::NodeStatus(node, st) => {
                    let before = self.set_peer(&node, st);
                    if matches!(st, NodeStatus::Init | NodeStatus::Up | NodeStatus::Active) {
                        self.fencer.node_alive(&node);
                        if let Some(rm) = self.rm.as_mut() {
                            rm.node_alive(now, &node);
                        }
                    }
                    if st == NodeStatus::Active && before != Some(NodeStatus::Active) {
                        self.peer_active(now, &node);
                    }
                    self.try_rm_comm_up(now);
                    self.ipfail_node_status(&node, st);
                    self.actions.push_back(ClusterAction::NodeStatus(node, st));
                }
                Action::NodeReturned(node) => {
                    self.fencer.node_alive(&node);
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
                    self.peer_clients.forget(&node);
                    self.peer_restarted(now);
                    // The new process holds nothing yet: its `active` is news again.
                    self.set_peer(&node, NodeStatus::Init);
                    if restarted_active.contains(&node) {
                        self.set_peer(&node, NodeStatus::Active);
                        self.peer_active(now, &node);
                    }
                    self.actions.push_back(ClusterAction::NodeRestarted(node));
                }
                Action::LinkStatus { node, link, up, .. } => {
                    let view = self.ipfail_view();
                    let name = self.membership.params().links.get(link).cloned();
                    if let Some(ipf) = self.ipfail.as_mut() {
                        ipf.link_status(&node, name.as_deref().unwrap_or("?"), up, view);
                    }
                    self.actions
                        .push_back(ClusterAction::LinkStatus { node, link, up })
                }
                Action::ShutdownComplete => self.actions.push_back(ClusterAction::ShutdownComplete),
            }
        }
    }

    /// What ipfail asks heartbeat for: how many ping nodes answer, whether we are stable.
    fn ipfail_view(&self) -> ipfail::View {
        let p = self.membership.params();
        let ping_count = p
            .ping_nodes
            .iter()
            .filter(|n| self.membership.node_status(n) == Some(NodeStatus::Ping))
            .count();
        let stable = self
            .rm
            .as_ref()
            .is_some_and(|rm| rm.rscstatus() != "transition");
        ipfail::View { ping_count, stable }
    }

    fn ipfail_node_status(&mut self, node: &str, st: NodeStatus) {
        let view = self.ipfail_view();
        if let Some(ipf) = self.ipfail.as_mut() {
            ipf.node_status(node, st, view);
        }
    }

    /// Carry out what the built-in ipfail asked for; true if it asked for anything.
    fn drain_ipfail(&mut self, now: Now) -> bool {
        let mut any = false;
        while let Some(a) = self.ipfail.as_mut().and_then(Ipfail::poll_action) {
            any = true;
            match a {
                IpfailAction::Log(level, text) => {
                    self.actions.push_back(ClusterAction::ClientLog {
                        client: ipfail::CLIENT_ID.into(),
                        level,
                        text,
                    })
                }
                IpfailAction::Send(m) => self.membership.send_message(now, m),
                IpfailAction::Standby(m) => {
                    if !self.stopping {
                        self.send_and_loop_back(now, m)
                    }
                }
            }
        }
        any
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
            // 3.0.6 checks its STONITH device when it starts its resources.
            self.fencer.start_status_checks(now);
        }
    }

    /// A node of ha.cf died: the resource manager hears of it now, or, when a STONITH
    /// device applies (it may hold resources), once it is reset (`drain_fencer`).
    fn node_dead(&mut self, now: Now, node: &str) {
        let Some(rm) = self.rm.as_mut() else {
            return;
        };
        if self.fencer.is_configured() && !self.stopping && !rm.gave_up(node) {
            self.fencer.node_dead(now, node);
        } else {
            rm.node_dead(now, node);
        }
    }

    /// Carry out what the fencer asked for; true if it released a node for takeover.
    fn drain_fencer(&mut self, now: Now) -> bool {
        let mut released = false;
        while let Some(a) = self.fencer.poll_action() {
            match a {
                FenceAction::Run {
                    job,
                    op,
                    args,
                    time_limit_ms,
                } => self.actions.push_back(ClusterAction::RunStonith {
                    job,
                    op,
                    args,
                    time_limit_ms,
                }),
                FenceAction::Send(m) => self.send_and_loop_back(now, m.emit()),
                FenceAction::Log(level, text) => {
                    self.actions.push_back(ClusterAction::Log(level, text))
                }
                FenceAction::Fenced(node) => {
                    released = true;
                    if let Some(rm) = self.rm.as_mut() {
                        rm.node_fenced(now, &node);
                    }
                }
            }
        }
        released
    }

    /// Carry out what the resource manager asked for; true if it asked for anything.
    fn drain_resources(&mut self, now: Now) -> bool {
        let mut any = false;
        while let Some(a) = self.rm.as_mut().and_then(ResourceManager::poll_action) {
            any = true;
            match a {
                RmAction::Send(msg) => self.send_and_loop_back(now, msg.emit()),
                RmAction::Log(level, text) => {
                    self.actions.push_back(ClusterAction::Log(level, text))
                }
                RmAction::Released => self.stop_membership(now),
                RmAction::Run { job, resource, op } => {
                    self.actions.push_back(ClusterAction::RunScript {
                        job,
                        resource,
                        op,
                        time_limit_ms: op.time_limit_ms(),
                    })
                }
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
                    time_limit_ms: HOOK_TIME_LIMIT_MS,
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
    use crate::wire::classic;
    use std::collections::BTreeSet;
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
        let rm = ResourceManager::new("alice", groups, AutoFailback::Legacy);
        alice_with(ping, Some(rm))
    }

    /// alice alone in ha.cf (plus `ping` nodes), with this resource manager (None: `-M`).
    fn alice_with(ping: &[&str], rm: Option<ResourceManager>) -> Cluster {
        alice_among(&["alice"], ping, rm)
    }

    /// alice with these `node`s of ha.cf (hers included) and `ping` nodes.
    fn alice_among(names: &[&str], ping: &[&str], rm: Option<ResourceManager>) -> Cluster {
        node_among("alice", names, ping, rm)
    }

    /// Node `me` with these `node`s of ha.cf (its own included) and `ping` nodes.
    fn node_among(me: &str, names: &[&str], ping: &[&str], rm: Option<ResourceManager>) -> Cluster {
        node_started(me, names, ping, rm, 1, 0)
    }

    /// The same, started at `now` with this generation (a restart has a higher one).
    fn node_started(
        me: &str,
        names: &[&str],
        ping: &[&str],
        rm: Option<ResourceManager>,
        generation: u64,
        now: u64,
    ) -> Cluster {
        let nodes: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = Params {
            my_name: me.into(),
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
            name: me.into(),
            uuid: [if me == "alice" { 7 } else { 8 }; 16],
            generation,
        };
        let m = Membership::new(params, id, Authenticator::new(keys), at(now), generation);
        Cluster::new(at(now), m, rm)
    }

    /// alice and a node named `caf\xe9` (Latin-1, as `uname -n` and ha.cf give it), each
    /// with a group whose key is in Latin-1 too: they join, each runs its group, and the name
    /// and key travel as their bytes (3.0.6 sends them as they are).
    #[test]
    fn a_node_named_in_latin1_joins_and_runs_its_group() {
        use crate::config::bytes;
        let cafe = bytes::decode(b"caf\xe9");
        let names = ["alice", cafe.as_str()];
        let file = bytes::decode(b"alice Marker::a1\nCAF\xe9 Marker::caf\xe9 Marker::x\n");
        let nodes: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let groups = haresources::parse(&file, Path::new("haresources"), &nodes).unwrap();
        let mut pair = [
            node_among(
                "alice",
                &names,
                &[],
                Some(ResourceManager::new(
                    "alice",
                    groups.clone(),
                    AutoFailback::Legacy,
                )),
            ),
            node_among(
                &cafe,
                &names,
                &[],
                Some(ResourceManager::new(&cafe, groups, AutoFailback::Legacy)),
            ),
        ];
        let mut started: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut sent = Vec::new();
        run_two(&mut pair, 0, 8000, &mut sent, &mut started);
        let raw_src_seen = sent
            .iter()
            .any(|(i, p)| *i == 1 && p.windows(8).any(|w| w == b"src=caf\xe9"));
        assert!(raw_src_seen, "the Latin-1 node's src went out as its bytes");
        assert_eq!(pair[0].node_status(&cafe), Some(NodeStatus::Active));
        assert_eq!(pair[1].node_status("alice"), Some(NodeStatus::Active));
        assert!(
            started.contains(&(0, b"Marker::a1".to_vec())),
            "{started:?}"
        );
        assert!(
            started.contains(&(1, b"Marker::caf\xe9".to_vec())),
            "{started:?}"
        );
        assert!(!started
            .iter()
            .any(|(i, s)| *i == 0 && s.starts_with(b"Marker::caf")));
        assert_eq!(pair[1].held_keys(), [cafe_key(&cafe)]);
    }

    /// Run two nodes from `t0` to `t1` ms, every packet of one handed to the other at once,
    /// resource scripts answered (stopped; start and stop succeed). Every packet sent is
    /// noted as (sender, bytes), every start as (node, resource).
    fn run_two(
        pair: &mut [Cluster; 2],
        t0: u64,
        t1: u64,
        sent: &mut Vec<(usize, Vec<u8>)>,
        started: &mut Vec<(usize, Vec<u8>)>,
    ) {
        let mut t = t0;
        while t <= t1 {
            for i in 0..2 {
                let mut jobs = Vec::new();
                let mut packets = Vec::new();
                for a in drain(&mut pair[i]) {
                    match a {
                        ClusterAction::Transmit(tx) => packets.push(pair[i].encode_udp(&tx)),
                        ClusterAction::RunScript {
                            job, resource, op, ..
                        } => {
                            if op == Op::Start {
                                started.push((i, crate::config::bytes::encode(&resource.spec)));
                            }
                            let stdout = if op == Op::Status { "stopped" } else { "" };
                            jobs.push((job, stdout));
                        }
                        _ => {}
                    }
                }
                for (job, stdout) in jobs {
                    let result = ScriptResult::Done {
                        code: 0,
                        stdout: stdout.into(),
                    };
                    pair[i].script_done(at(t), job, result);
                }
                for p in packets {
                    pair[1 - i].handle_datagram(at(t), 0, &p);
                    sent.push((i, p));
                }
            }
            t += 50;
            for c in pair.iter_mut() {
                c.handle_timeout(at(t));
            }
        }
    }

    /// A peer's client asks whether our ipfail runs (`query-cstatus`): answered as 3.0.6
    /// answers, `online` once the built-in ipfail started, `offline` for a client we do not
    /// have; and the peer's ipfail sign-on is what `clientstatus <peer> ipfail` shows.
    #[test]
    fn a_peers_client_status_query_is_answered_and_its_sign_on_noted() {
        use crate::cluster::clients::status_query::Query;
        let names = ["alice", "bob"];
        let nodes: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let groups = haresources::parse("alice Marker::a1\n", Path::new("hr"), &nodes).unwrap();
        let mut pair = names.map(|me| {
            let rm = ResourceManager::new(me, groups.clone(), AutoFailback::On);
            node_among(me, &names, &["10.0.0.9"], Some(rm))
        });
        assert!(pair[0].enable_ipfail() && pair[1].enable_ipfail());
        let (mut sent, mut started) = (Vec::new(), Vec::new());
        run_two(&mut pair, 0, 3000, &mut sent, &mut started);
        assert!(pair[0].ipfail_running() && pair[1].ipfail_running());
        assert!(pair[1]
            .client_statuses()
            .contains(&("alice".into(), "ipfail".into(), true)));
        for (client, cs) in [("ipfail", "online"), ("ccm", "offline")] {
            let q = Query {
                client: client.into(),
                asker: "cl_status".into(),
            };
            pair[1].send_message(at(3000), q.emit("alice"));
            sent.clear();
            run_two(&mut pair, 3000, 3200, &mut sent, &mut started);
            let answers: Vec<Msg> = sent
                .iter()
                .filter(|(i, _)| *i == 0)
                .filter_map(|(_, p)| pair[1].authenticator().verify(p).ok())
                .filter(|m| m.get_str("t") == Some("respond-cstatus"))
                .collect();
            assert_eq!(answers.len(), 1, "{client}: {answers:?}");
            let a = &answers[0];
            assert_eq!(
                [
                    a.get_str("dest"),
                    a.get_str("cn"),
                    a.get_str("to_id"),
                    a.get_str("cs")
                ],
                [Some("bob"), Some(client), Some("cl_status"), Some(cs)]
            );
            assert_eq!(a.get_str("result"), Some("OK"));
        }
    }

    /// `hopfudge` (ha.cf) at run time: every message's `ttl` is hopfudge plus the node
    /// table, ping nodes counted, as 3.0.6 writes it (links.md §2.8).
    #[test]
    fn ttl_is_hopfudge_plus_the_node_table_ping_nodes_included() {
        fn ttls(c: &mut Cluster, t: u64) -> Vec<String> {
            c.handle_timeout(at(t));
            drain(c)
                .iter()
                .filter_map(|a| match a {
                    ClusterAction::Transmit(tx) => tx.msg.get_str("ttl").map(str::to_string),
                    _ => None,
                })
                .collect()
        }
        let mut c = alice_among(&["alice", "bob"], &["10.0.0.9"], None);
        drain(&mut c);
        let got = ttls(&mut c, 200);
        assert!(!got.is_empty() && got.iter().all(|t| t == "4"), "{got:?}");
        let mut p = c.membership().params().clone();
        p.hopfudge = 0;
        let auth = c.authenticator().clone();
        c.reconfigure(at(250), p, auth);
        drain(&mut c);
        let got = ttls(&mut c, 400);
        assert!(!got.is_empty() && got.iter().all(|t| t == "3"), "{got:?}");
    }

    /// The `t=stonith` message leaves with the fields in the order of a 3.0.6 capture
    /// (tests/data/vectors/17-md5-stonith.bin: t, node, result, then the envelope); the
    /// capture's inner `auth` is left out (these test nodes sign without it).
    #[test]
    fn the_stonith_message_has_the_field_order_of_a_3_0_6_capture() {
        let captured = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/vectors/17-md5-stonith.bin"
        ));
        let names = |m: &Msg| -> Vec<String> {
            m.fields
                .iter()
                .map(|f| String::from_utf8_lossy(&f.name).into_owned())
                .filter(|n| n != "auth")
                .collect()
        };
        let (theirs, _) = crate::wire::netstring::decode_body(captured).expect("capture");
        let mut c = alice_of_pair(Some(null_device()));
        c.set_load_average("0.01 0.03 0.00 1/98 9622");
        let mut ours = None;
        let mut t = 0;
        while ours.is_none() && t < 5000 {
            let mut done = Vec::new();
            for a in drain(&mut c) {
                match a {
                    ClusterAction::Transmit(tx) if tx.msg.get_str("t") == Some("stonith") => {
                        let packet = c.encode_udp(&tx);
                        ours = Some(
                            crate::wire::netstring::decode_body(&packet)
                                .expect("ours")
                                .0,
                        );
                    }
                    ClusterAction::RunStonith { job, .. }
                    | ClusterAction::RunScript { job, .. } => done.push(job),
                    _ => {}
                }
            }
            for job in done {
                let result = ScriptResult::Done {
                    code: 0,
                    stdout: "stopped".into(),
                };
                c.script_done(at(t), job, result);
            }
            t += 50;
            c.handle_timeout(at(t));
        }
        let ours = ours.expect("alice sent t=stonith");
        assert_eq!(ours.get_str("result"), Some("OK"));
        assert_eq!(names(&ours), names(&theirs));
        assert_eq!(
            names(&theirs),
            ["t", "node", "result", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl"]
        );
    }

    fn cafe_key(cafe: &str) -> String {
        format!("Marker::{cafe}")
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

    /// The lines of a built-in client, as `client: text`.
    fn client_logs(actions: &[ClusterAction]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                ClusterAction::ClientLog { client, text, .. } => Some(format!("{client}: {text}")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn built_in_ipfail_keeps_the_original_preconditions() {
        let mut legacy = alice(&[]);
        drain(&mut legacy);
        assert!(!legacy.enable_ipfail());
        assert_eq!(
            client_logs(&drain(&mut legacy)),
            ["ipfail: auto_failback set to incompatible legacy option."]
        );
        let mut unmanaged = alice_with(&[], None);
        drain(&mut unmanaged);
        assert!(!unmanaged.enable_ipfail());
        assert_eq!(
            client_logs(&drain(&mut unmanaged)),
            ["ipfail: No managed resources"]
        );
        let groups =
            haresources::parse("alice Marker::a1\n", Path::new("hr"), &["alice".into()]).unwrap();
        let rm = ResourceManager::new("alice", groups, AutoFailback::On);
        let mut on = alice_with(&["10.0.0.9"], Some(rm));
        assert!(on.enable_ipfail());
        // Started, and signed on, only at comm-up (initdead here: the ping node never answers).
        let before: Vec<ClusterAction> = drain(&mut on);
        assert!(!format!("{before:?}").contains("hbapi-clstat"));
        let mut signed_on = false;
        for t in (100..=3000).step_by(100) {
            on.handle_timeout(at(t));
            for a in drain(&mut on) {
                if let ClusterAction::Transmit(tx) = a {
                    if tx.msg.get_str("t") == Some("hbapi-clstat") {
                        assert!(on.is_comm_up());
                        assert_eq!(tx.msg.get_str("st"), Some("join"));
                        assert_eq!(tx.msg.get_str("from_id"), Some("ipfail"));
                        signed_on = true;
                    }
                }
            }
        }
        assert!(signed_on, "no hbapi-clstat join after comm-up");
    }

    /// Answer every script run (status says stopped, start and stop succeed); the runs, and
    /// the other actions.
    fn run_scripts(c: &mut Cluster, now: Now) -> (Vec<String>, Vec<ClusterAction>) {
        let (mut calls, mut other) = (Vec::new(), Vec::new());
        loop {
            let mut runs = Vec::new();
            for a in drain(c) {
                match a {
                    ClusterAction::RunScript {
                        job, resource, op, ..
                    } => runs.push((job, resource.spec, op)),
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

    /// A graceful stop: the built-in ipfail runs while the groups are released, then leaves
    /// the way 3.0.6's killed ipfail does (`hbapi-clstat st=leave info=died`, lab capture),
    /// just before `shutdone`.
    #[test]
    fn at_a_graceful_stop_ipfail_leaves_after_the_release_saying_died() {
        let groups =
            haresources::parse("alice Marker::a1\n", Path::new("hr"), &["alice".into()]).unwrap();
        let rm = ResourceManager::new("alice", groups, AutoFailback::On);
        let mut c = alice_with(&["10.0.0.9"], Some(rm));
        assert!(c.enable_ipfail());
        for t in (100..=3000).step_by(100) {
            c.handle_timeout(at(t));
            run_scripts(&mut c, at(t));
        }
        assert!(c.ipfail_running());
        c.shutdown(at(3100));
        assert!(
            c.ipfail_running(),
            "ipfail lives on while the groups are released"
        );
        let (calls, out) = run_scripts(&mut c, at(3100));
        assert!(calls.contains(&"Marker::a1 stop".to_string()), "{calls:?}");
        let sent: Vec<&Msg> = out
            .iter()
            .filter_map(|a| match a {
                ClusterAction::Transmit(t) => Some(&t.msg),
                _ => None,
            })
            .collect();
        let leave = sent
            .iter()
            .position(|m| m.get_str("t") == Some("hbapi-clstat"));
        let shutdone = sent.iter().position(|m| m.get_str("t") == Some("shutdone"));
        assert!(leave.is_some() && leave < shutdone, "{sent:?}");
        let m = sent[leave.unwrap_or(0)];
        assert_eq!(
            [m.get_str("st"), m.get_str("from_id"), m.get_str("info")],
            [Some("leave"), Some("ipfail"), Some("died")]
        );
        assert!(!c.ipfail_running());
    }

    #[test]
    fn a_lone_node_grants_itself_its_group_through_its_own_message() {
        let mut c = alice(&[]);
        // Comm-up at once (no peer); the grant it sends itself comes back to its manager.
        assert!(c.is_comm_up());
        let (calls, _) = run_scripts(&mut c, at(1));
        // The start-up verify first (nothing left running), then the group's take, which
        // starts what the verify has just seen stopped without asking again.
        assert_eq!(
            calls,
            [
                "Marker::a1 status",
                "Marker::a2 status",
                "Marker::a1 start",
                "Marker::a2 start"
            ]
        );
        assert_eq!(c.held_keys(), ["Marker::a1"]);
        assert_eq!(c.rscstatus(), Some("none"));
    }

    #[test]
    fn a_lone_node_checks_its_stonith_device_too() {
        let mut c = alice(&[]);
        c.set_stonith(at(1), Some(null_device()));
        let out = drain(&mut c);
        assert!(
            logs(&out).contains(&"Checking status of STONITH device [NULL STONITH device]"),
            "{out:?}"
        );
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
            .any(|a| matches!(a, ClusterAction::Transmit(t) if t.msg.get_str("t") == Some("ask_resources"))));
        assert!(
            logs(&out).contains(&"Standby mode only implemented when nice_failback on"),
            "{out:?}"
        );
    }

    fn sent_with(out: &[ClusterAction], needle: &str) -> bool {
        out.iter().any(
            |a| matches!(a, ClusterAction::Transmit(t) if String::from_utf8_lossy(&classic::encode(&t.msg)).contains(needle)),
        )
    }

    fn hooks(out: &[ClusterAction]) -> Vec<(String, Msg)> {
        out.iter()
            .filter_map(|a| match a {
                ClusterAction::Notify(n) => Some((n.kind.clone(), n.msg.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn operator_requests_become_the_tools_messages() {
        let mut c = alice(&[]);
        run_scripts(&mut c, at(1));
        // hb_standby failback asks for `foreign`; the others name their set.
        // alice(..) runs the legacy manager: sent, but the tool is told nothing moves.
        assert_eq!(
            c.handle_admin(at(2), Admin::Standby(Which::Failback)),
            Ok(AdminOutcome::NoEffectInLegacyMode)
        );
        let out = drain(&mut c);
        assert!(sent_with(&out, "t=ask_resources"), "{out:?}");
        assert!(sent_with(&out, "rsc_hold=foreign"), "{out:?}");
        assert!(sent_with(&out, "info=me"), "{out:?}");
        c.handle_admin(at(3), Admin::Takeover(Which::Local))
            .unwrap();
        let out = drain(&mut c);
        assert!(sent_with(&out, "t=hb_takeover"), "{out:?}");
        assert!(sent_with(&out, "rsc_hold=local"), "{out:?}");
        // 3.0.6 handles its own hb_takeover as a received one: its hook is offered, with src.
        let h = hooks(&out);
        assert_eq!(h.len(), 1, "{out:?}");
        assert_eq!(h[0].0, "hb_takeover");
        assert_eq!(h[0].1.get_str("src"), Some("alice"));
        assert_eq!(h[0].1.get_str("rsc_hold"), Some("local"));
    }

    #[test]
    fn in_negotiated_mode_an_operator_request_is_sent_to_take_effect() {
        let mut c = alice_of_pair_in(AutoFailback::On, None);
        drain(&mut c);
        assert_eq!(
            c.handle_admin(at(1), Admin::Standby(Which::All)),
            Ok(AdminOutcome::Sent)
        );
        assert!(sent_with(&drain(&mut c), "t=ask_resources"));
    }

    #[test]
    fn without_resources_operator_requests_are_refused_and_nothing_is_sent() {
        let mut c = alice_with(&[], None);
        drain(&mut c);
        assert_eq!(
            c.handle_admin(at(1), Admin::Standby(Which::All)),
            Err(AdminError::NoResources)
        );
        assert_eq!(
            c.handle_admin(at(1), Admin::Takeover(Which::All)),
            Err(AdminError::NoResources)
        );
        let out = drain(&mut c);
        assert!(!sent_with(&out, "t=ask_resources"), "{out:?}");
        assert!(!sent_with(&out, "t=hb_takeover"), "{out:?}");
    }

    #[test]
    fn script_runs_carry_their_time_limits() {
        let mut c = alice(&[]);
        let mut limits = Vec::new();
        for _ in 0..6 {
            let out = drain(&mut c);
            for a in out {
                if let ClusterAction::RunScript {
                    job,
                    op,
                    time_limit_ms,
                    ..
                } = a
                {
                    limits.push((op, time_limit_ms));
                    let stdout = if op == Op::Status { "stopped" } else { "" };
                    let result = ScriptResult::Done {
                        code: 0,
                        stdout: stdout.into(),
                    };
                    c.script_done(at(1), job, result);
                }
            }
        }
        assert_eq!(
            limits,
            [
                (Op::Status, 60_000),
                (Op::Status, 60_000),
                (Op::Start, 600_000),
                (Op::Start, 600_000)
            ]
        );
    }

    #[test]
    fn own_links_and_stopping_decide_the_hooks() {
        let mut c = alice(&[]);
        run_scripts(&mut c, at(1));
        c.set_own_link(at(2), 0, true);
        let out = drain(&mut c);
        assert!(out.contains(&ClusterAction::LinkStatus {
            node: "alice".into(),
            link: 0,
            up: true
        }));
        let h = hooks(&out);
        assert_eq!(h.len(), 1, "{out:?}");
        assert_eq!(h[0].0, "ifstat");
        assert_eq!(h[0].1.get_str("st"), Some("up"));
        // A grant this node sends is offered while running, not once stopping.
        let mut grant = Msg::new();
        grant.add_str("t", "ip-request-resp");
        c.send_message(at(3), grant.clone());
        assert_eq!(hooks(&drain(&mut c)).len(), 1);
        assert!(!c.is_stopping());
        c.shutdown(at(4));
        assert!(c.is_stopping());
        c.send_message(at(5), grant);
        assert!(hooks(&drain(&mut c)).is_empty());
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
            |a| matches!(a, ClusterAction::Transmit(t) if t.msg.get_str("t") == Some("stonith"))
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
            |a| matches!(a, ClusterAction::Transmit(t) if t.msg.get_str("t") == Some("shutdone")),
        );
        let complete = out
            .iter()
            .position(|a| *a == ClusterAction::ShutdownComplete);
        assert!(shutdone.is_some() && shutdone < complete, "{out:?}");
        assert!(c.held_keys().is_empty());
        assert_eq!(c.poll_timeout(), None);
    }

    /// alice of the pair alice/bob (bob never heard: dead at initdead), each owning a group,
    /// with this STONITH device.
    fn alice_of_pair(device: Option<Device>) -> Cluster {
        alice_of_pair_in(AutoFailback::Legacy, device)
    }

    fn alice_of_pair_in(mode: AutoFailback, device: Option<Device>) -> Cluster {
        let nodes = vec!["alice".to_string(), "bob".to_string()];
        let groups = haresources::parse(
            "alice Marker::a1\nbob Marker::b1\n",
            Path::new("haresources"),
            &nodes,
        )
        .unwrap();
        let rm = ResourceManager::new("alice", groups, mode);
        let mut c = alice_among(&["alice", "bob"], &[], Some(rm));
        c.set_stonith(at(0), device);
        c
    }

    fn null_device() -> Device {
        let cfg = crate::config::Stonith::Host {
            line: 1,
            host: "*".into(),
            device_type: "null".into(),
            params: "alice bob".into(),
        };
        Device::from_config(&cfg, Some("NULL STONITH device".into()))
    }

    /// Run alice until `until` ms, answering resource scripts (stopped; start/stop succeed)
    /// and STONITH runs with `stonith_ok(op)`; every event in order, as text.
    fn run_pair(
        c: &mut Cluster,
        until: u64,
        stonith_ok: &dyn Fn(&StonithOp) -> bool,
    ) -> Vec<String> {
        let mut seen = Vec::new();
        let mut t = 0;
        loop {
            let mut pending = Vec::new();
            for a in drain(c) {
                match a {
                    ClusterAction::RunScript {
                        job, resource, op, ..
                    } => {
                        seen.push(format!("run {} {}", resource.spec, op.as_str()));
                        let stdout = if op == Op::Status { "stopped" } else { "" };
                        pending.push((job, 0, stdout.to_string()));
                    }
                    ClusterAction::RunStonith { job, op, args, .. } => {
                        seen.push(format!("stonith {}", args.join(" ")));
                        pending.push((job, if stonith_ok(&op) { 0 } else { 1 }, String::new()));
                    }
                    ClusterAction::Log(l, text) => seen.push(format!("{}: {text}", l.word())),
                    ClusterAction::Transmit(tx) if tx.msg.get_str("t") == Some("stonith") => seen
                        .push(format!(
                            "send stonith node={} result={}",
                            tx.msg.get_str("node").unwrap_or("?"),
                            tx.msg.get_str("result").unwrap_or("?")
                        )),
                    _ => {}
                }
            }
            if !pending.is_empty() {
                for (job, code, stdout) in pending {
                    c.script_done(at(t), job, ScriptResult::Done { code, stdout });
                }
                continue;
            }
            match c.poll_timeout() {
                Some(next) if next <= until => {
                    t = next.max(t);
                    c.handle_timeout(at(t));
                }
                _ => return seen,
            }
        }
    }

    fn index(seen: &[String], what: &str) -> Option<usize> {
        seen.iter().position(|s| s.contains(what))
    }

    #[test]
    fn a_dead_peer_is_reset_before_its_groups_are_started() {
        let mut c = alice_of_pair(Some(null_device()));
        let seen = run_pair(&mut c, 3000, &|_| true);
        let check = index(
            &seen,
            "Checking status of STONITH device [NULL STONITH device]",
        );
        let reset = index(&seen, "stonith -t null -p alice bob -T reset bob");
        let now_reset = index(&seen, "info: node bob now reset.");
        let ok = index(&seen, "send stonith node=bob result=OK");
        let start = index(&seen, "run Marker::b1 start");
        assert!(check.is_some(), "{seen:#?}");
        assert!(index(&seen, "stonith -t null -p alice bob -S").is_some());
        assert!(index(&seen, "info: Resetting node bob with [NULL STONITH device]") < reset);
        assert!(
            reset.is_some() && reset < now_reset && now_reset < ok && ok < start,
            "{seen:#?}"
        );
        assert_eq!(index(&seen, "No STONITH device configured."), None);
        assert_eq!(index(&seen, "n_stnth"), None);
        assert_eq!(c.held_keys(), ["Marker::a1", "Marker::b1"]);
    }

    #[test]
    fn in_negotiated_mode_too_the_reset_comes_before_the_takeover() {
        for mode in [AutoFailback::On, AutoFailback::Off] {
            let mut c = alice_of_pair_in(mode, Some(null_device()));
            let seen = run_pair(&mut c, 15_000, &|_| true);
            let now_reset = index(&seen, "info: node bob now reset.");
            let start = index(&seen, "run Marker::b1 start");
            assert!(
                now_reset.is_some() && now_reset < start,
                "{mode:?} {seen:#?}"
            );
            assert_eq!(c.held_keys(), ["Marker::a1", "Marker::b1"], "{mode:?}");
        }
    }

    #[test]
    fn a_failing_reset_is_retried_every_five_seconds_and_nothing_is_taken_over() {
        let mut c = alice_of_pair(Some(null_device()));
        let seen = run_pair(&mut c, 13_000, &|op| *op == StonithOp::Status);
        let resets = seen.iter().filter(|s| s.ends_with("-T reset bob")).count();
        // Dead at initdead (2 s), then at 7 s and 12 s: three attempts by 13 s.
        assert_eq!(resets, 3, "{seen:#?}");
        assert_eq!(
            seen.iter()
                .filter(|s| *s == "ERROR: STONITH of bob failed.  Retrying...")
                .count(),
            3
        );
        assert!(index(&seen, "ERROR: Host bob not reset!").is_some());
        assert!(index(&seen, "send stonith node=bob result=bad").is_some());
        assert_eq!(index(&seen, "run Marker::b1 start"), None, "{seen:#?}");
        assert_eq!(c.held_keys(), ["Marker::a1"]);
        // It works at last: the takeover follows.
        let seen = run_pair(&mut c, 18_000, &|_| true);
        let now_reset = index(&seen, "info: node bob now reset.");
        assert!(
            now_reset.is_some() && now_reset < index(&seen, "run Marker::b1 start"),
            "{seen:#?}"
        );
        assert!(index(&seen, "send stonith node=bob result=OK").is_some());
        assert_eq!(c.held_keys(), ["Marker::a1", "Marker::b1"]);
    }

    /// SIGHUP with another `stonith_host` line: the new device is checked at once, and the
    /// reset still waiting for a retry is done with it before the takeover.
    #[test]
    fn a_device_changed_on_reload_is_used_for_the_next_check_and_reset() {
        let mut c = alice_of_pair(Some(null_device()));
        let seen = run_pair(&mut c, 4000, &|op| *op == StonithOp::Status);
        assert!(
            index(&seen, "ERROR: Host bob not reset!").is_some(),
            "{seen:#?}"
        );
        let cfg = crate::config::Stonith::Host {
            line: 3,
            host: "*".into(),
            device_type: "external/recorder".into(),
            params: "/tmp/record".into(),
        };
        c.change_stonith(
            at(4000),
            Some(Device::from_config(&cfg, Some("Recorder".into()))),
        );
        let seen = run_pair(&mut c, 9000, &|_| true);
        let check = index(&seen, "info: Checking status of STONITH device [Recorder]");
        let reset = index(&seen, "info: Resetting node bob with [Recorder]");
        let start = index(&seen, "run Marker::b1 start");
        assert!(
            check.is_some() && reset.is_some() && reset < start,
            "{seen:#?}"
        );
        assert!(
            seen.iter()
                .any(|s| s.starts_with("stonith ") && s.contains("external/recorder")),
            "{seen:#?}"
        );
        assert!(
            !seen.iter().any(|s| s.contains("NULL STONITH")),
            "{seen:#?}"
        );
        assert_eq!(c.held_keys(), ["Marker::a1", "Marker::b1"]);
    }

    /// SIGHUP that removes the device: a takeover waiting for a reset goes on, as for a node
    /// without a device.
    #[test]
    fn a_device_removed_on_reload_lets_the_waiting_takeover_go_on() {
        let mut c = alice_of_pair(Some(null_device()));
        run_pair(&mut c, 4000, &|op| *op == StonithOp::Status);
        assert_eq!(c.held_keys(), ["Marker::a1"]);
        c.change_stonith(at(4000), None);
        let seen = run_pair(&mut c, 6000, &|_| true);
        assert!(index(&seen, "run Marker::b1 start").is_some(), "{seen:#?}");
        assert!(!seen.iter().any(|s| s.starts_with("stonith ")), "{seen:#?}");
        assert_eq!(c.held_keys(), ["Marker::a1", "Marker::b1"]);
    }

    #[test]
    fn without_a_device_a_dead_peer_is_taken_over_at_once_with_the_warnings() {
        let mut c = alice_of_pair(None);
        let seen = run_pair(&mut c, 3000, &|_| true);
        let n = index(&seen, "send stonith node=bob result=n_stnth");
        let w1 = index(&seen, "WARN: No STONITH device configured.");
        let w2 = index(&seen, "WARN: Shared disks are not protected.");
        let start = index(&seen, "run Marker::b1 start");
        // (The message leaves through membership, after the log lines of the same turn.)
        assert!(n.is_some() && n < start, "{seen:#?}");
        assert!(w1.is_some() && w1 < w2 && w2 < start, "{seen:#?}");
        assert!(!seen.iter().any(|s| s.starts_with("stonith ")));
        assert_eq!(index(&seen, "Checking status"), None);
    }

    /// Two nodes on a link that can be cut, resource scripts answered at once (a host's
    /// running set per node), time in 10 ms steps.
    struct TwoNodes {
        c: [Cluster; 2],
        running: [BTreeSet<String>; 2],
        now: u64,
        linked: bool,
    }

    fn node_of_pair(me: &str, generation: u64, now: u64) -> Cluster {
        let nodes = vec!["alice".to_string(), "bob".to_string()];
        let groups = haresources::parse(
            "alice Marker::a1\nbob Marker::b1\n",
            Path::new("haresources"),
            &nodes,
        )
        .unwrap();
        let rm = ResourceManager::new(me, groups, AutoFailback::Legacy);
        node_started(me, &["alice", "bob"], &[], Some(rm), generation, now)
    }

    impl TwoNodes {
        fn new() -> TwoNodes {
            TwoNodes {
                c: [node_of_pair("alice", 1, 0), node_of_pair("bob", 1, 0)],
                running: [BTreeSet::new(), BTreeSet::new()],
                now: 0,
                linked: true,
            }
        }

        /// Carry out every action of node i; false if there were none.
        fn drain(&mut self, i: usize) -> bool {
            let out = drain(&mut self.c[i]);
            let any = !out.is_empty();
            for a in out {
                match a {
                    ClusterAction::Transmit(t) if self.linked => {
                        let bytes = self.c[i].encode_udp(&t);
                        self.c[1 - i].handle_datagram(at(self.now), 0, &bytes);
                    }
                    ClusterAction::RunScript {
                        job, resource, op, ..
                    } => {
                        let name = resource.spec.clone();
                        let stdout = match op {
                            Op::Status if self.running[i].contains(&name) => "running",
                            Op::Status => "stopped",
                            Op::Start => {
                                self.running[i].insert(name);
                                ""
                            }
                            Op::Stop => {
                                self.running[i].remove(&name);
                                ""
                            }
                        };
                        let r = ScriptResult::Done {
                            code: 0,
                            stdout: stdout.into(),
                        };
                        self.c[i].script_done(at(self.now), job, r);
                    }
                    ClusterAction::RunHook { job, .. } => {
                        self.c[i].script_done(at(self.now), job, ScriptResult::NotFound)
                    }
                    _ => {}
                }
            }
            any
        }

        fn run_for(&mut self, ms: u64) {
            let end = self.now + ms;
            while self.now < end {
                self.now += 10;
                for i in 0..2 {
                    if self.c[i].poll_timeout().is_some_and(|t| t <= self.now) {
                        self.c[i].handle_timeout(at(self.now));
                    }
                }
                while self.drain(0) | self.drain(1) {}
            }
        }

        fn runs(&self, i: usize) -> Vec<&str> {
            self.running[i].iter().map(String::as_str).collect()
        }
    }

    /// resource_sim legacy seed 30424, reduced: bob stops (alice takes his group), restarts
    /// while the link is cut, declares alice dead and takes every group, all before alice
    /// would declare his old process dead. When the link comes
    /// back alice sees his restart by a status that says `active`, as his old one did: no
    /// status change for membership to report. His reaching `active` must still count, or
    /// alice keeps his group beside him.
    #[test]
    fn a_peer_restarted_unseen_gets_its_group_back_when_heard_active() {
        let mut p = TwoNodes::new();
        p.run_for(3_000);
        assert_eq!(p.runs(0), ["Marker::a1"]);
        assert_eq!(p.runs(1), ["Marker::b1"]);
        let now = at(p.now);
        p.c[1].shutdown(now);
        p.run_for(300);
        assert_eq!(p.runs(0), ["Marker::a1", "Marker::b1"]);
        assert!(p.runs(1).is_empty());
        p.linked = false;
        p.c[1] = node_of_pair("bob", 2, p.now);
        // Within the dead time bob's old process advertised in its first seconds (3 s).
        p.run_for(2_100);
        assert_eq!(
            p.runs(1),
            ["Marker::a1", "Marker::b1"],
            "bob alone took all"
        );
        p.linked = true;
        p.run_for(2_000);
        assert_eq!(p.runs(0), ["Marker::a1"]);
        assert_eq!(p.runs(1), ["Marker::b1"]);
    }
}
