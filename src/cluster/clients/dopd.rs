//! dopd, built in: the DRBD outdate-peer exchange between the two nodes of a DRBD pair.
//!
//! What 3.0.6's `dopd` (heartbeat's contrib/drbd-outdate-peer) does, as a pure policy:
//!
//! * a local `drbd-peer-outdater` (DRBD's `fence-peer` handler) asks to outdate resource `res`
//!   on node `peer` ([`Dopd::outdate_request`]);
//! * if `peer` is this node, unknown, not a `normal` node, or any node is `dead`, the answer is
//!   at once `5` (peer unreachable); if another request for `res` is still waiting, `21`;
//!   otherwise a `t=start_outdate` message goes to `peer`;
//! * the peer's dopd runs `drbdadm outdate <res>` ([`DopdAction::RunOutdate`], the runtime
//!   spawns it and answers with [`Dopd::outdate_done`]) and sends `t=outdate_rc` back with the
//!   converted exit code: 0 → `4` (outdated), 5 → `3` (inconsistent anyway), 17 → `6` (primary,
//!   cannot be outdated), anything else, a signal included, → `20` (unspecified);
//! * the `outdate_rc` reaches the request waiting for that resource, which is answered with the
//!   code as the peer sent it (the command exits with it).
//!
//! On the wire both are ordinary cluster messages addressed to the peer (`dest`), with the API
//! client envelope 3.0.6's heartbeat adds for a client named `dopd`:
//!
//! ```text
//! t=start_outdate  src=<me>  dop_res=<res>  dest=<peer>  from_id=dopd  to_id=dopd  client_gen=0
//! t=outdate_rc  dop_value=<rc>  dop_res=<res>  src=<me>  dest=<asker>  from_id=dopd  to_id=dopd  client_gen=0
//! ```
//!
//! Unlike the original, which runs the command through `system()` (a shell, and the whole
//! daemon waits), the resource name goes to `drbdadm` as one argument and nothing waits.

use std::collections::BTreeMap;

use crate::cluster::LogLevel;
use crate::wire::messages::{some, ClientIds, Message, OutdateRc, StartOutdate};
use crate::wire::Msg;

/// The API client name the original signs on with; also its messages' `from_id`/`to_id`.
pub const CLIENT_ID: &str = "dopd";
/// The command the peer runs, followed by the resource name.
pub const OUTDATE_PROGRAM: &str = "drbdadm";
pub const OUTDATE_ARG: &str = "outdate";

/// The answers the outdater command exits with (DRBD's fence-peer handler codes).
pub mod rc {
    /// The peer's disk is inconsistent anyway (`drbdadm outdate` exited 5).
    pub const INCONSISTENT: &str = "3";
    /// The peer's disk is now outdated.
    pub const OUTDATED: &str = "4";
    /// The peer is down or cannot be reached.
    pub const UNREACHABLE: &str = "5";
    /// The peer is primary: it cannot be outdated (`drbdadm outdate` exited 17).
    pub const PRIMARY: &str = "6";
    /// Unspecified error: the peer was reached but could not be outdated.
    pub const UNSPECIFIED: &str = "20";
    /// Another request for the same resource is still waiting.
    pub const BUSY: &str = "21";
}

/// How the outdate command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandEnd {
    Exited(i32),
    Signalled(i32),
    /// It could not be started, or ended some other way.
    Failed,
}

/// The peer-side conversion of `drbdadm outdate`'s end into the code sent back.
pub fn convert(end: CommandEnd) -> &'static str {
    match end {
        CommandEnd::Exited(0) => rc::OUTDATED,
        CommandEnd::Exited(5) => rc::INCONSISTENT,
        CommandEnd::Exited(17) => rc::PRIMARY,
        _ => rc::UNSPECIFIED,
    }
}

/// What the node list says about one node, as the API's node walk reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    /// `normal` (a `node` of ha.cf) rather than `ping`.
    pub normal: bool,
    /// Its status is `dead`.
    pub dead: bool,
}

/// A local request (one connection of `drbd-peer-outdater`), named by the runtime.
pub type RequestId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DopdAction {
    /// Send this cluster message (it carries its `dest`).
    Send(Msg),
    /// Answer the local request with this code; the request is then finished.
    Answer {
        request: RequestId,
        code: String,
    },
    /// Run `drbdadm outdate <resource>`; report its end with `Dopd::outdate_done(job, ..)`.
    RunOutdate {
        job: u64,
        resource: String,
    },
    Log(LogLevel, String),
}

/// dopd's ids on the wire: from and to dopd, first generation.
fn ids() -> ClientIds {
    ClientIds::same_client(CLIENT_ID, 0)
}

/// Ask `dest` to outdate `res`, answering to `me`.
fn start_outdate_msg(me: &str, res: &str, dest: &str) -> Msg {
    Message::from(StartOutdate {
        src: some(me),
        res: some(res),
        dest: some(dest),
        ids: ids(),
    })
    .emit()
}

/// Answer `dest`'s request for `res` with the return code `value`.
fn outdate_rc_msg(me: &str, value: &str, res: &str, dest: &str) -> Msg {
    Message::from(OutdateRc {
        value: some(value),
        res: some(res),
        src: some(me),
        dest: some(dest),
        ids: ids(),
    })
    .emit()
}

/// A run of `drbdadm outdate` for a peer's request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    resource: String,
    asker: String,
}

/// The built-in dopd of one node.
#[derive(Debug)]
pub struct Dopd {
    me: String,
    /// Local requests waiting for the peer's answer, by resource.
    waiting: BTreeMap<String, RequestId>,
    /// Outdate commands running for a peer, by job.
    runs: BTreeMap<u64, Run>,
    next_job: u64,
}

impl Dopd {
    pub fn new(me: &str) -> Dopd {
        Dopd {
            me: me.to_string(),
            waiting: BTreeMap::new(),
            runs: BTreeMap::new(),
            next_job: 1,
        }
    }

    /// The cluster's name for `peer` if it can be asked: not us, found among the `normal`
    /// nodes, and no node met before it in the walk is dead (the original's walk stops at
    /// the first dead node it meets). Names compare without case: 3.0.6 lowercases node
    /// names while DRBD passes the peer's host name as configured.
    fn reachable_peer(
        &self,
        peer: &str,
        nodes: &[NodeView],
        out: &mut Vec<DopdAction>,
    ) -> Option<String> {
        if peer.eq_ignore_ascii_case(&self.me) {
            out.push(DopdAction::Log(
                LogLevel::Warn,
                format!("drbd peer node {peer} is me!"),
            ));
            return None;
        }
        for n in nodes {
            if n.dead {
                out.push(DopdAction::Log(
                    LogLevel::Warn,
                    format!("Cluster node: {}: status: dead", n.name),
                ));
                return None;
            }
            if n.normal && n.name.eq_ignore_ascii_case(peer) {
                return Some(n.name.clone());
            }
        }
        out.push(DopdAction::Log(
            LogLevel::Warn,
            format!("drbd peer {peer} was not found"),
        ));
        None
    }

    /// A local outdater asks to outdate `resource` on `peer`.
    pub fn outdate_request(
        &mut self,
        request: RequestId,
        peer: &str,
        resource: &str,
        nodes: &[NodeView],
    ) -> Vec<DopdAction> {
        let mut out = Vec::new();
        let Some(peer) = self.reachable_peer(peer, nodes, &mut out) else {
            out.push(DopdAction::Answer {
                request,
                code: rc::UNREACHABLE.into(),
            });
            return out;
        };
        match self.waiting.get(resource) {
            Some(&other) if other != request => {
                out.push(DopdAction::Log(
                    LogLevel::Debug,
                    format!("one client with {resource} already connected"),
                ));
                out.push(DopdAction::Answer {
                    request,
                    code: rc::BUSY.into(),
                });
            }
            Some(_) => {}
            None => {
                self.waiting.insert(resource.to_string(), request);
                out.push(DopdAction::Log(
                    LogLevel::Info,
                    format!(
                        "sending start_outdate message to the other node {} -> {peer}",
                        self.me
                    ),
                ));
                out.push(DopdAction::Send(start_outdate_msg(
                    &self.me, resource, &peer,
                )));
            }
        }
        out
    }

    /// The local request went away (answered, timed out, connection closed).
    pub fn request_gone(&mut self, request: RequestId) {
        self.waiting.retain(|_, r| *r != request);
    }

    /// A cluster message delivered to this node; anything but dopd's two is ignored.
    pub fn message(&mut self, m: &Msg) -> Vec<DopdAction> {
        match Message::parse(m) {
            Some(Message::StartOutdate(start)) if start.ids.is_for(CLIENT_ID) => {
                self.start_outdate(start)
            }
            Some(Message::OutdateRc(answer)) if answer.ids.is_for(CLIENT_ID) => {
                self.outdate_rc(answer)
            }
            _ => Vec::new(),
        }
    }

    fn start_outdate(&mut self, start: StartOutdate) -> Vec<DopdAction> {
        let (Some(src), Some(resource)) = (start.src, start.res) else {
            return vec![DopdAction::Log(
                LogLevel::Warn,
                "start_outdate message without src or dop_res ignored".into(),
            )];
        };
        let job = self.next_job;
        self.next_job += 1;
        self.runs.insert(
            job,
            Run {
                resource: resource.clone(),
                asker: src,
            },
        );
        vec![
            DopdAction::Log(
                LogLevel::Debug,
                format!("msg_start_outdate: command: {OUTDATE_PROGRAM} {OUTDATE_ARG} {resource}"),
            ),
            DopdAction::RunOutdate { job, resource },
        ]
    }

    fn outdate_rc(&mut self, answer: OutdateRc) -> Vec<DopdAction> {
        let (Some(value), Some(res)) = (answer.value, answer.res) else {
            return Vec::new();
        };
        let mut out = vec![DopdAction::Log(
            LogLevel::Debug,
            format!("msg_outdate_rc: {res} {value}"),
        )];
        if let Some(request) = self.waiting.remove(&res) {
            out.push(DopdAction::Answer {
                request,
                code: value,
            });
        }
        out
    }

    /// `drbdadm outdate` (started for `job`) ended.
    pub fn outdate_done(&mut self, job: u64, end: CommandEnd) -> Vec<DopdAction> {
        let Some(run) = self.runs.remove(&job) else {
            return Vec::new();
        };
        let command = format!("{OUTDATE_PROGRAM} {OUTDATE_ARG} {}", run.resource);
        let mut out = Vec::new();
        match end {
            CommandEnd::Exited(0 | 5 | 17) => {}
            CommandEnd::Exited(code) => out.push(DopdAction::Log(
                LogLevel::Info,
                format!("unknown exit code from {command}: {code}"),
            )),
            CommandEnd::Signalled(sig) => out.push(DopdAction::Log(
                LogLevel::Info,
                format!("killed by signal {sig}: {command}"),
            )),
            CommandEnd::Failed => out.push(DopdAction::Log(
                LogLevel::Info,
                format!("could not run {command}"),
            )),
        }
        let code = convert(end);
        out.push(DopdAction::Log(
            LogLevel::Info,
            format!("sending return code: {code}, {} -> {}", self.me, run.asker),
        ));
        out.push(DopdAction::Send(outdate_rc_msg(
            &self.me,
            code,
            &run.resource,
            &run.asker,
        )));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(list: &[(&str, bool, bool)]) -> Vec<NodeView> {
        list.iter()
            .map(|&(name, normal, dead)| NodeView {
                name: name.into(),
                normal,
                dead,
            })
            .collect()
    }

    fn pair() -> Vec<NodeView> {
        nodes(&[("alice", true, false), ("bob", true, false)])
    }

    fn fields(m: &Msg) -> Vec<(String, String)> {
        [
            "t",
            "src",
            "dop_value",
            "dop_res",
            "dest",
            "from_id",
            "to_id",
        ]
        .iter()
        .filter_map(|f| m.get_str(f).map(|v| (f.to_string(), v.to_string())))
        .collect()
    }

    fn sent(actions: &[DopdAction]) -> Vec<Msg> {
        actions
            .iter()
            .filter_map(|a| match a {
                DopdAction::Send(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn answers(actions: &[DopdAction]) -> Vec<(RequestId, String)> {
        actions
            .iter()
            .filter_map(|a| match a {
                DopdAction::Answer { request, code } => Some((*request, code.clone())),
                _ => None,
            })
            .collect()
    }

    fn logs(actions: &[DopdAction]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                DopdAction::Log(_, l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    /// The whole exchange between two built-in dopds, for each drbdadm outcome.
    fn exchange(end: CommandEnd) -> String {
        let mut alice = Dopd::new("alice");
        let mut bob = Dopd::new("bob");
        let a = alice.outdate_request(7, "bob", "r0", &pair());
        let msgs = sent(&a);
        assert_eq!(msgs.len(), 1);
        assert_eq!(
            fields(&msgs[0]),
            vec![
                ("t".into(), "start_outdate".into()),
                ("src".into(), "alice".into()),
                ("dop_res".into(), "r0".into()),
                ("dest".into(), "bob".into()),
                ("from_id".into(), "dopd".into()),
                ("to_id".into(), "dopd".into()),
            ]
        );
        let b = bob.message(&msgs[0]);
        let job = match b.last() {
            Some(DopdAction::RunOutdate { job, resource }) if resource == "r0" => *job,
            other => panic!("expected a run of drbdadm outdate r0, got {other:?}"),
        };
        let b = bob.outdate_done(job, end);
        let replies = sent(&b);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].get_str("dest"), Some("alice"));
        assert_eq!(replies[0].get_str("src"), Some("bob"));
        assert_eq!(replies[0].get_str("dop_res"), Some("r0"));
        let a = alice.message(&replies[0]);
        let ans = answers(&a);
        assert_eq!(ans.len(), 1);
        assert_eq!(ans[0].0, 7);
        ans[0].1.clone()
    }

    #[test]
    fn drbdadm_results_convert_as_the_original() {
        assert_eq!(exchange(CommandEnd::Exited(0)), "4");
        assert_eq!(exchange(CommandEnd::Exited(5)), "3");
        assert_eq!(exchange(CommandEnd::Exited(17)), "6");
        assert_eq!(exchange(CommandEnd::Exited(1)), "20");
        assert_eq!(exchange(CommandEnd::Signalled(9)), "20");
        assert_eq!(exchange(CommandEnd::Failed), "20");
    }

    #[test]
    fn unknown_exit_and_signal_are_logged_with_the_original_words() {
        let mut bob = Dopd::new("bob");
        bob.message(&start_outdate_msg("alice", "r0", "bob"));
        let out = bob.outdate_done(1, CommandEnd::Exited(10));
        assert!(logs(&out).contains(&"unknown exit code from drbdadm outdate r0: 10".to_string()));
        assert!(logs(&out).contains(&"sending return code: 20, bob -> alice".to_string()));
        bob.message(&start_outdate_msg("alice", "r1", "bob"));
        let out = bob.outdate_done(2, CommandEnd::Signalled(15));
        assert!(logs(&out).contains(&"killed by signal 15: drbdadm outdate r1".to_string()));
        // A job that is not ours (or finished twice) does nothing.
        assert!(bob.outdate_done(2, CommandEnd::Exited(0)).is_empty());
    }

    #[test]
    fn outdate_rc_carries_fields_in_the_original_order() {
        let m = outdate_rc_msg("bob", "4", "r0", "alice");
        assert_eq!(
            fields(&m),
            vec![
                ("t".into(), "outdate_rc".into()),
                ("src".into(), "bob".into()),
                ("dop_value".into(), "4".into()),
                ("dop_res".into(), "r0".into()),
                ("dest".into(), "alice".into()),
                ("from_id".into(), "dopd".into()),
                ("to_id".into(), "dopd".into()),
            ]
        );
        let names: Vec<&[u8]> = m.fields.iter().map(|f| f.name.as_slice()).collect();
        let want: Vec<&[u8]> = [
            "t",
            "dop_value",
            "dop_res",
            "src",
            "dest",
            "from_id",
            "to_id",
            "client_gen",
        ]
        .iter()
        .map(|n| n.as_bytes())
        .collect();
        assert_eq!(names, want);
    }

    #[test]
    fn unreachable_peer_answers_5_at_once_and_sends_nothing() {
        let mut alice = Dopd::new("alice");
        // Peer dead.
        let dead = nodes(&[("alice", true, false), ("bob", true, true)]);
        let out = alice.outdate_request(1, "bob", "r0", &dead);
        assert!(sent(&out).is_empty());
        assert_eq!(answers(&out), vec![(1, "5".to_string())]);
        assert!(logs(&out).contains(&"Cluster node: bob: status: dead".to_string()));
        // Peer unknown.
        let out = alice.outdate_request(2, "carol", "r0", &pair());
        assert_eq!(answers(&out), vec![(2, "5".to_string())]);
        assert!(logs(&out).contains(&"drbd peer carol was not found".to_string()));
        // A ping node is not a peer.
        let ping = nodes(&[("alice", true, false), ("10.0.0.1", false, false)]);
        let out = alice.outdate_request(3, "10.0.0.1", "r0", &ping);
        assert_eq!(answers(&out), vec![(3, "5".to_string())]);
        // Ourselves, in any case.
        let out = alice.outdate_request(4, "ALICE", "r0", &pair());
        assert_eq!(answers(&out), vec![(4, "5".to_string())]);
        assert!(logs(&out).contains(&"drbd peer node ALICE is me!".to_string()));
        // None of these left a waiting request: a new one is sent, to the cluster's name.
        let out = alice.outdate_request(5, "Bob", "r0", &pair());
        assert_eq!(sent(&out)[0].get_str("dest"), Some("bob"));
    }

    #[test]
    fn second_request_for_the_same_resource_gets_21_until_the_first_is_gone() {
        let mut alice = Dopd::new("alice");
        assert_eq!(
            sent(&alice.outdate_request(1, "bob", "r0", &pair())).len(),
            1
        );
        let out = alice.outdate_request(2, "bob", "r0", &pair());
        assert_eq!(answers(&out), vec![(2, "21".to_string())]);
        assert!(sent(&out).is_empty());
        // Another resource is independent.
        assert_eq!(
            sent(&alice.outdate_request(3, "bob", "r1", &pair())).len(),
            1
        );
        // The first asker gave up (timeout): a late answer reaches nobody; a new request goes.
        alice.request_gone(1);
        assert!(answers(&alice.message(&outdate_rc_msg("bob", "4", "r0", "alice"))).is_empty());
        assert_eq!(
            sent(&alice.outdate_request(4, "bob", "r0", &pair())).len(),
            1
        );
        let out = alice.message(&outdate_rc_msg("bob", "4", "r0", "alice"));
        assert_eq!(answers(&out), vec![(4, "4".to_string())]);
    }

    #[test]
    fn answers_pass_the_peers_code_as_sent_and_other_messages_are_ignored() {
        let mut alice = Dopd::new("alice");
        alice.outdate_request(1, "bob", "r0", &pair());
        // Another client's message of the same type is not ours.
        let mut foreign = outdate_rc_msg("bob", "4", "r0", "alice");
        foreign.set_str("to_id", "ipfail");
        assert!(alice.message(&foreign).is_empty());
        // A message of another type.
        let mut other = Msg::new();
        other.add_str("t", "num_ping_nodes");
        assert!(alice.message(&other).is_empty());
        // An answer missing its fields is dropped.
        let mut broken = Msg::new();
        broken.add_str("t", "outdate_rc").add_str("dop_res", "r0");
        assert!(alice.message(&broken).is_empty());
        // A start_outdate without a resource runs nothing.
        let mut start = Msg::new();
        start.add_str("t", "start_outdate").add_str("src", "bob");
        assert!(!alice
            .message(&start)
            .iter()
            .any(|a| matches!(a, DopdAction::RunOutdate { .. })));
        let out = alice.message(&outdate_rc_msg("bob", "7", "r0", "alice"));
        assert_eq!(answers(&out), vec![(1, "7".to_string())]);
    }
}
