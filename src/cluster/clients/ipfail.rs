//! ipfail, built in (spec links.md §4.5): a `respawn` line whose program is `ipfail` runs this
//! policy inside the daemon instead of a child process. It compares the number of ping nodes
//! this node sees with the partner's and, when ours is lower, gives our groups away with the
//! same `ask_resources` `hb_standby` sends; when the counts balance again and `auto_failback`
//! is on, the node holding foreign groups gives those back.
//!
//! The messages are 3.0.6 ipfail's, field for field, so that the partner may run the real
//! ipfail: `num_ping_nodes` (`num_ping`), `you_are_dead` and `abort_giveup`, addressed to the
//! partner, and `ask_resources` to all, each with `from_id=ipfail to_id=ipfail client_gen`.
//! Heartbeat's own `hbapi-clstat` join/leave for the client is built here too (`Cluster`
//! sends it when the built-in "signs on", at comm-up, and "signs off", at shutdown).
//!
//! Pure: `Cluster` feeds it the events it already has (node status, link status, delivered
//! messages, its own view of ping node count and resource stability) with the time, and
//! carries out what it returns.

use std::collections::VecDeque;

use crate::cluster::{LogLevel, NodeStatus};
use crate::wire::messages::{
    some, AbortGiveup, ClStat, ClientAskResources, ClientIds, Message, NumPingNodes, YouAreDead,
};
use crate::wire::Msg;

/// The client name on the wire (`from_id`, `to_id`) and in `hbapi-clstat`.
pub const CLIENT_ID: &str = "ipfail";

/// A ping node answering after the partner asked for our count: 3.0.6 ipfail sleeps this long
/// after the partner becomes stable before asking again (a pending standby).
pub const STABLE_RECHECK_MS: u64 = 10_000;

/// True when a `respawn` program is ipfail (any path whose last component is `ipfail`).
pub fn is_ipfail_program(path: &str) -> bool {
    path.rsplit('/').next() == Some(CLIENT_ID)
}

/// What `Cluster` knows that ipfail asks heartbeat for through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Nodes whose status is `ping` (ping and ping_group nodes that answer).
    pub ping_count: usize,
    /// Our resource state is not `transition`.
    pub stable: bool,
}

/// Which groups a giveup asks the partner to take (`rsc_hold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    All,
    Foreign,
}

impl Hold {
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::All => "all",
            Hold::Foreign => "foreign",
        }
    }
}

/// What the built-in ipfail asks `Cluster` to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpfailAction {
    Log(LogLevel, String),
    /// Send this client message to the cluster (sequenced; `dest` in it when addressed).
    Send(Msg),
    /// Send this `ask_resources` and handle it ourselves, as `hb_standby` does.
    Standby(Msg),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Giveup {
    at: u64,
    hold: Hold,
    /// The number logged by `Aborted delayed giveup (<id>)` (3.0.6 logs its timer tag).
    id: u32,
}

/// The ipfail policy of one node.
#[derive(Debug, Clone)]
pub struct Ipfail {
    me: String,
    /// The one other `node` of ha.cf, if any.
    partner: Option<String>,
    keepalive_ms: u64,
    auto_failback: bool,
    /// Messages sent by this client (`client_gen`); 3.0.6 writes 0 for the first instance.
    client_gen: u64,
    giveup: Option<Giveup>,
    next_id: u32,
    /// A giveup fired while we were in transition: re-ask once the partner is stable.
    need_standby: bool,
    /// When the pending re-ask (after the partner's stable `resource`) is due.
    recheck_at: Option<u64>,
    actions: VecDeque<IpfailAction>,
}

impl Ipfail {
    /// `nodes`: the `node` lines of ha.cf (ping nodes excluded); the partner is the other one.
    pub fn new(me: &str, nodes: &[String], keepalive_ms: u64, auto_failback: bool) -> Ipfail {
        let partner = nodes.iter().rfind(|n| !n.eq_ignore_ascii_case(me)).cloned();
        Ipfail {
            me: me.to_string(),
            partner,
            keepalive_ms,
            auto_failback,
            client_gen: 0,
            giveup: None,
            next_id: 1,
            need_standby: false,
            recheck_at: None,
            actions: VecDeque::new(),
        }
    }

    pub fn partner(&self) -> Option<&str> {
        self.partner.as_deref()
    }

    pub fn poll_action(&mut self) -> Option<IpfailAction> {
        self.actions.pop_front()
    }

    /// The earliest time `handle_timeout` has something to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.giveup
            .map(|g| g.at)
            .into_iter()
            .chain(self.recheck_at)
            .min()
    }

    /// A giveup is scheduled (for tests and status).
    pub fn pending_giveup(&self) -> Option<Hold> {
        self.giveup.map(|g| g.hold)
    }

    /// heartbeat's `hbapi-clstat` for this client: `join` (`signon`) or `leave` (`died`).
    pub fn clstat(&self, join: bool) -> Msg {
        Message::from(ClStat {
            st: some(if join { "join" } else { "leave" }),
            src: some(&self.me),
            // 3.0.6 kills its clients at a stop: their leave says `died` (lab capture).
            info: some(if join { "signon" } else { "died" }),
            ids: self.ids(),
        })
        .emit()
    }

    // ----- inputs ---------------------------------------------------------------------------

    /// A node's status changed (the API's node-status callback).
    pub fn node_status(&mut self, node: &str, status: NodeStatus, view: View) {
        self.log(format!(
            "Status update: Node {node} now has status {}",
            status.as_str()
        ));
        match status {
            NodeStatus::Dead if view.ping_count > 0 => self.log("NS: We are still alive!".into()),
            NodeStatus::Dead => self.log("NS: We are dead. :<".into()),
            NodeStatus::Ping => {
                self.log("A ping node just came up.".into());
                self.ask(view.ping_count);
            }
            _ => {}
        }
    }

    /// A link to `node` changed (the API's link-status callback); only deaths matter.
    pub fn link_status(&mut self, node: &str, link: &str, up: bool, view: View) {
        let st = if up { "up" } else { "dead" };
        self.log(format!(
            "Link Status update: Link {node}/{link} now has status {st}"
        ));
        if up {
            return;
        }
        if view.ping_count > 0 {
            self.ask(view.ping_count);
            self.log("Checking remote count of ping nodes.".into());
        } else {
            self.log("We are dead. :<".into());
            self.ask(0);
        }
    }

    /// A cluster message delivered to us (from a peer, or our own looped back).
    pub fn message(&mut self, now: u64, from: &str, msg: &Msg, view: View) {
        match Message::parse(msg) {
            Some(Message::ClStat(c)) => {
                let ipfail = c.ids.from_id.as_deref() == Some(CLIENT_ID);
                let other = c
                    .src
                    .as_deref()
                    .is_some_and(|s| !s.eq_ignore_ascii_case(&self.me));
                if c.joined() == Some(true) && ipfail && other {
                    self.debug(format!(
                        "Got join message from another ipfail client. ({from})"
                    ));
                    self.ask(view.ping_count);
                }
            }
            Some(Message::NumPingNodes(n)) if n.ids.is_for(CLIENT_ID) => {
                self.compare(now, n.count(), view);
            }
            Some(Message::YouAreDead(d)) if d.ids.is_for(CLIENT_ID) => {
                self.log("Giving up because we were told that we have less ping nodes.".into());
                self.delay_giveup(now, Hold::All);
            }
            Some(Message::AbortGiveup(a)) if a.ids.is_for(CLIENT_ID) => self.abort_giveup(),
            Some(Message::Resource(r)) if self.is_partner(from) => {
                let stable = r.isstable.as_deref().map(str::trim);
                if stable == Some("1") && r.info.is_none() {
                    self.debug("Other side is now stable.".into());
                    if self.need_standby {
                        self.need_standby = false;
                        self.recheck_at = Some(now + STABLE_RECHECK_MS);
                    }
                } else if stable == Some("0") {
                    self.debug("Other side is unstable.".into());
                }
            }
            _ => {}
        }
    }

    /// Timers: the delayed giveup and the re-ask after a pending standby.
    pub fn handle_timeout(&mut self, now: u64, view: View) {
        if self.recheck_at.is_some_and(|t| t <= now) {
            self.recheck_at = None;
            self.ask(view.ping_count);
        }
        if let Some(g) = self.giveup.filter(|g| g.at <= now) {
            self.giveup = None;
            self.log("giveup() called (timeout worked)".into());
            if view.stable {
                let ask = ClientAskResources {
                    rsc_hold: some(g.hold.as_str()),
                    src: some(&self.me),
                    info: some("me"),
                    ids: self.ids(),
                };
                self.actions.push_back(IpfailAction::Standby(ask.emit()));
                self.need_standby = false;
            } else {
                self.need_standby = true;
            }
        }
    }

    // ----- the rules ------------------------------------------------------------------------

    fn compare(&mut self, now: u64, theirs: usize, view: View) {
        let ours = view.ping_count;
        if ours > theirs {
            self.log("Telling other node that we have more visible ping nodes.".into());
            let tell = |dest, ids| YouAreDead { dest, ids }.into();
            self.send_partner(tell);
        } else if ours < theirs {
            self.log("Giving up because we have less visible ping nodes.".into());
            self.delay_giveup(now, Hold::All);
        } else {
            self.log("Ping node count is balanced.".into());
            let src = some(&self.me);
            self.send_partner(|dest, ids| AbortGiveup { src, dest, ids }.into());
            if self.giveup.is_some() {
                self.abort_giveup();
            } else if self.auto_failback && view.stable {
                self.log("Giving up foreign resources (auto_failback).".into());
                self.delay_giveup(now, Hold::Foreign);
            }
        }
    }

    /// Ask the partner for its count, telling it ours.
    fn ask(&mut self, ours: usize) {
        self.log("Asking other side for ping node count.".into());
        let src = some(&self.me);
        self.send_partner(|dest, ids| {
            NumPingNodes {
                src,
                num_ping: Some(ours.to_string()),
                dest,
                ids,
            }
            .into()
        });
    }

    fn delay_giveup(&mut self, now: u64, hold: Hold) {
        let ms = self.keepalive_ms * 2;
        self.log(format!("Delayed giveup in {} seconds.", ms / 1000));
        if self.giveup.is_some() {
            self.debug("Detected existing delay timer, overriding".into());
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.giveup = Some(Giveup {
            at: now + ms,
            hold,
            id,
        });
    }

    fn abort_giveup(&mut self) {
        match self.giveup.take() {
            Some(g) => self.log(format!("Aborted delayed giveup ({})", g.id)),
            None => self.log("No giveup timer to abort.".into()),
        }
    }

    /// Send the partner this message (given its `dest` and our ids); nothing without a
    /// partner (a one-node cluster has no one to ask).
    fn send_partner(&mut self, build: impl FnOnce(Option<String>, ClientIds) -> Message) {
        if let Some(partner) = &self.partner {
            let m = build(some(partner), self.ids()).emit();
            self.actions.push_back(IpfailAction::Send(m));
        }
    }

    fn ids(&self) -> ClientIds {
        ClientIds::same_client(CLIENT_ID, self.client_gen)
    }

    fn is_partner(&self, node: &str) -> bool {
        self.partner
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(node))
    }

    fn log(&mut self, text: String) {
        self.actions
            .push_back(IpfailAction::Log(LogLevel::Info, text));
    }

    fn debug(&mut self, text: String) {
        self.actions
            .push_back(IpfailAction::Log(LogLevel::Debug, text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice(auto_failback: bool) -> Ipfail {
        let nodes = vec!["alice".to_string(), "bob".to_string()];
        Ipfail::new("alice", &nodes, 1000, auto_failback)
    }

    fn view(ping_count: usize) -> View {
        View {
            ping_count,
            stable: true,
        }
    }

    fn drain(i: &mut Ipfail) -> Vec<IpfailAction> {
        std::iter::from_fn(|| i.poll_action()).collect()
    }

    fn logs(a: &[IpfailAction]) -> Vec<String> {
        a.iter()
            .filter_map(|a| match a {
                IpfailAction::Log(LogLevel::Info, t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    fn sent(a: &[IpfailAction]) -> Vec<Msg> {
        a.iter()
            .filter_map(|a| match a {
                IpfailAction::Send(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn fields(m: &Msg) -> Vec<(String, String)> {
        [
            "t",
            "src",
            "num_ping",
            "dest",
            "rsc_hold",
            "info",
            "from_id",
            "to_id",
            "client_gen",
        ]
        .iter()
        .filter_map(|f| m.get_str(f).map(|v| (f.to_string(), v.to_string())))
        .collect()
    }

    fn msg(pairs: &[(&str, &str)]) -> Msg {
        let mut m = Msg::new();
        for (k, v) in pairs {
            m.add_str(k, v);
        }
        m
    }

    fn num_ping(n: &str) -> Msg {
        msg(&[
            ("t", "num_ping_nodes"),
            ("src", "bob"),
            ("num_ping", n),
            ("dest", "alice"),
            ("from_id", "ipfail"),
            ("to_id", "ipfail"),
            ("client_gen", "0"),
        ])
    }

    fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn partner_is_the_other_node_and_ipfail_paths_are_recognised() {
        assert_eq!(alice(true).partner(), Some("bob"));
        let alone = Ipfail::new("alice", &["alice".to_string()], 1000, true);
        assert_eq!(alone.partner(), None);
        assert!(is_ipfail_program("/usr/lib/heartbeat/ipfail"));
        assert!(is_ipfail_program("/usr/libexec/heartbeat/ipfail"));
        assert!(!is_ipfail_program("/usr/lib/heartbeat/dopd"));
        assert!(!is_ipfail_program("/opt/ipfail2"));
    }

    #[test]
    fn a_dead_link_asks_the_partner_with_our_count() {
        let mut i = alice(true);
        i.link_status("bob", "eth0", false, view(0));
        let a = drain(&mut i);
        assert_eq!(
            logs(&a),
            [
                "Link Status update: Link bob/eth0 now has status dead",
                "We are dead. :<",
                "Asking other side for ping node count."
            ]
        );
        let s = sent(&a);
        assert_eq!(s.len(), 1);
        assert_eq!(
            fields(&s[0]),
            owned(&[
                ("t", "num_ping_nodes"),
                ("src", "alice"),
                ("num_ping", "0"),
                ("dest", "bob"),
                ("from_id", "ipfail"),
                ("to_id", "ipfail"),
                ("client_gen", "0"),
            ])
        );
        // A link coming up asks nothing.
        i.link_status("bob", "eth0", true, view(1));
        assert!(sent(&drain(&mut i)).is_empty());
    }

    #[test]
    fn more_ping_nodes_tells_the_partner_it_is_dead() {
        let mut i = alice(true);
        i.message(0, "bob", &num_ping("0"), view(1));
        let a = drain(&mut i);
        assert_eq!(
            logs(&a),
            ["Telling other node that we have more visible ping nodes."]
        );
        assert_eq!(
            fields(&sent(&a)[0]),
            owned(&[
                ("t", "you_are_dead"),
                ("dest", "bob"),
                ("from_id", "ipfail"),
                ("to_id", "ipfail"),
                ("client_gen", "0"),
            ])
        );
        assert_eq!(i.pending_giveup(), None);
    }

    #[test]
    fn fewer_ping_nodes_gives_everything_up_after_two_keepalives() {
        let mut i = alice(true);
        i.message(1000, "bob", &num_ping("1"), view(0));
        assert_eq!(
            logs(&drain(&mut i)),
            [
                "Giving up because we have less visible ping nodes.",
                "Delayed giveup in 2 seconds."
            ]
        );
        assert_eq!(i.poll_timeout(), Some(3000));
        // you_are_dead restarts the timer.
        i.message(2500, "bob", &msg(&[("t", "you_are_dead")]), view(0));
        assert_eq!(
            logs(&drain(&mut i)),
            [
                "Giving up because we were told that we have less ping nodes.",
                "Delayed giveup in 2 seconds."
            ]
        );
        assert_eq!(i.poll_timeout(), Some(4500));
        i.handle_timeout(3000, view(0));
        assert!(drain(&mut i).is_empty());
        i.handle_timeout(4500, view(0));
        let a = drain(&mut i);
        assert_eq!(logs(&a), ["giveup() called (timeout worked)"]);
        let IpfailAction::Standby(m) = &a[1] else {
            panic!("no standby: {a:?}")
        };
        assert_eq!(
            fields(m),
            owned(&[
                ("t", "ask_resources"),
                ("src", "alice"),
                ("rsc_hold", "all"),
                ("info", "me"),
                ("from_id", "ipfail"),
                ("to_id", "ipfail"),
                ("client_gen", "0"),
            ])
        );
        assert_eq!(i.poll_timeout(), None);
    }

    #[test]
    fn balance_aborts_a_pending_giveup_and_tells_the_partner() {
        let mut i = alice(true);
        i.message(0, "bob", &num_ping("1"), view(0));
        drain(&mut i);
        i.message(500, "bob", &num_ping("1"), view(1));
        let a = drain(&mut i);
        assert_eq!(
            logs(&a),
            ["Ping node count is balanced.", "Aborted delayed giveup (1)"]
        );
        assert_eq!(
            fields(&sent(&a)[0]),
            owned(&[
                ("t", "abort_giveup"),
                ("src", "alice"),
                ("dest", "bob"),
                ("from_id", "ipfail"),
                ("to_id", "ipfail"),
                ("client_gen", "0"),
            ])
        );
        assert_eq!(i.poll_timeout(), None);
        // The partner's abort_giveup with nothing pending.
        i.message(600, "bob", &msg(&[("t", "abort_giveup")]), view(1));
        assert_eq!(logs(&drain(&mut i)), ["No giveup timer to abort."]);
    }

    #[test]
    fn balance_with_auto_failback_gives_foreign_groups_back() {
        let mut i = alice(true);
        i.message(0, "bob", &num_ping("1"), view(1));
        assert_eq!(
            logs(&drain(&mut i)),
            [
                "Ping node count is balanced.",
                "Giving up foreign resources (auto_failback).",
                "Delayed giveup in 2 seconds."
            ]
        );
        assert_eq!(i.pending_giveup(), Some(Hold::Foreign));
        i.handle_timeout(2000, view(1));
        let a = drain(&mut i);
        let IpfailAction::Standby(m) = &a[1] else {
            panic!("no standby: {a:?}")
        };
        assert_eq!(m.get_str("rsc_hold"), Some("foreign"));

        // auto_failback off: nothing to give back; in transition: neither.
        let mut off = alice(false);
        off.message(0, "bob", &num_ping("1"), view(1));
        assert_eq!(off.pending_giveup(), None);
        let mut busy = alice(true);
        let transition = View {
            ping_count: 1,
            stable: false,
        };
        busy.message(0, "bob", &num_ping("1"), transition);
        assert_eq!(busy.pending_giveup(), None);
    }

    #[test]
    fn giveup_in_transition_waits_for_the_partner_then_asks_again() {
        let mut i = alice(true);
        i.message(0, "bob", &num_ping("1"), view(0));
        drain(&mut i);
        let transition = View {
            ping_count: 0,
            stable: false,
        };
        i.handle_timeout(2000, transition);
        let a = drain(&mut i);
        assert!(!a.iter().any(|a| matches!(a, IpfailAction::Standby(_))));
        assert_eq!(i.poll_timeout(), None);
        // An unstable resource message, or one with info=, does not count.
        let res = |st: &str, info: Option<&str>| {
            let mut m = msg(&[("t", "resource"), ("rsc_hold", "all"), ("isstable", st)]);
            if let Some(v) = info {
                m.add_str("info", v);
            }
            m
        };
        i.message(2500, "bob", &res("0", None), view(0));
        i.message(2600, "bob", &res("1", Some("x")), view(0));
        // Nor one from ourselves.
        i.message(2700, "alice", &res("1", None), view(0));
        assert_eq!(i.poll_timeout(), None);
        i.message(3000, "bob", &res("1", None), view(0));
        assert_eq!(i.poll_timeout(), Some(3000 + STABLE_RECHECK_MS));
        drain(&mut i);
        i.handle_timeout(3000 + STABLE_RECHECK_MS, view(0));
        let a = drain(&mut i);
        assert_eq!(sent(&a)[0].get_str("t"), Some("num_ping_nodes"));
        assert_eq!(sent(&a)[0].get_str("num_ping"), Some("0"));
    }

    #[test]
    fn node_status_callbacks_log_and_a_returning_ping_node_asks() {
        let mut i = alice(true);
        i.node_status("10.0.0.9", NodeStatus::Dead, view(0));
        i.node_status("bob", NodeStatus::Dead, view(1));
        assert_eq!(
            logs(&drain(&mut i)),
            [
                "Status update: Node 10.0.0.9 now has status dead",
                "NS: We are dead. :<",
                "Status update: Node bob now has status dead",
                "NS: We are still alive!"
            ]
        );
        i.node_status("10.0.0.9", NodeStatus::Ping, view(1));
        let a = drain(&mut i);
        assert_eq!(
            logs(&a),
            [
                "Status update: Node 10.0.0.9 now has status ping",
                "A ping node just came up.",
                "Asking other side for ping node count."
            ]
        );
        assert_eq!(sent(&a)[0].get_str("num_ping"), Some("1"));
    }

    #[test]
    fn the_partners_join_asks_and_our_own_does_not() {
        let mut i = alice(true);
        let join = |src: &str, st: &str, from_id: &str| {
            msg(&[
                ("t", "hbapi-clstat"),
                ("st", st),
                ("from_id", from_id),
                ("to_id", "ipfail"),
                ("src", src),
                ("info", "signon"),
                ("client_gen", "0"),
            ])
        };
        i.message(0, "alice", &join("alice", "join", "ipfail"), view(1));
        i.message(0, "bob", &join("bob", "leave", "ipfail"), view(1));
        i.message(0, "bob", &join("bob", "join", "dopd"), view(1));
        assert!(sent(&drain(&mut i)).is_empty());
        i.message(0, "bob", &join("bob", "join", "ipfail"), view(1));
        assert_eq!(sent(&drain(&mut i))[0].get_str("num_ping"), Some("1"));
        // Our own sign-on and sign-off, as heartbeat announces a client.
        assert_eq!(
            fields(&i.clstat(true)),
            owned(&[
                ("t", "hbapi-clstat"),
                ("src", "alice"),
                ("info", "signon"),
                ("from_id", "ipfail"),
                ("to_id", "ipfail"),
                ("client_gen", "0"),
            ])
        );
        assert_eq!(i.clstat(false).get_str("st"), Some("leave"));
    }

    #[test]
    fn malformed_counts_read_as_atoi_does() {
        // A negative or garbage count from the partner is 0: we (1) have more.
        let mut i = alice(true);
        i.message(0, "bob", &num_ping("-5"), view(1));
        assert_eq!(sent(&drain(&mut i))[0].get_str("t"), Some("you_are_dead"));
    }
}
