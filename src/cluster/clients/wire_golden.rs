//! Every message the built-in clients put on the wire, field by field in order, as 3.0.6
//! peers see it. Written against the hand-built messages before they became typed, so that
//! the typed ones are held to the same bytes.

use super::dopd::{CommandEnd, Dopd, DopdAction, NodeView};
use super::ipfail::{Ipfail, IpfailAction, View};
use super::status_query::Query;
use crate::cluster::NodeStatus;
use crate::wire::message::Value;
use crate::wire::Msg;

/// All fields in order; values as bytes shown losslessly (non-UTF-8 as escapes).
fn dump(m: &Msg) -> Vec<(String, String)> {
    m.fields
        .iter()
        .map(|f| {
            let v = match &f.value {
                Value::Str(b) => b.escape_ascii().to_string(),
                other => format!("{other:?}"),
            };
            (String::from_utf8_lossy(&f.name).into_owned(), v)
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ipfail_sent(i: &mut Ipfail) -> Vec<Msg> {
    std::iter::from_fn(|| i.poll_action())
        .filter_map(|a| match a {
            IpfailAction::Send(m) | IpfailAction::Standby(m) => Some(m),
            IpfailAction::Log(..) => None,
        })
        .collect()
}

fn ipfail() -> Ipfail {
    let nodes = vec!["alice".to_string(), "bob".to_string()];
    Ipfail::new("alice", &nodes, 1000, false)
}

fn peer_msg(p: &[(&str, &str)]) -> Msg {
    let mut m = Msg::new();
    for (k, v) in p {
        m.add_str(k, v);
    }
    m
}

#[test]
fn ipfail_clstat_join_and_leave() {
    let i = ipfail();
    assert_eq!(
        dump(&i.clstat(true)),
        pairs(&[
            ("t", "hbapi-clstat"),
            ("st", "join"),
            ("from_id", "ipfail"),
            ("to_id", "ipfail"),
            ("src", "alice"),
            ("info", "signon"),
            ("client_gen", "0"),
        ])
    );
    assert_eq!(
        dump(&i.clstat(false)),
        pairs(&[
            ("t", "hbapi-clstat"),
            ("st", "leave"),
            ("from_id", "ipfail"),
            ("to_id", "ipfail"),
            ("src", "alice"),
            ("info", "died"),
            ("client_gen", "0"),
        ])
    );
}

#[test]
fn ipfail_num_ping_nodes_you_are_dead_abort_giveup_ask_resources() {
    let mut i = ipfail();
    let view = |n| View {
        ping_count: n,
        stable: true,
    };
    i.node_status("10.0.0.1", NodeStatus::Ping, view(2));
    assert_eq!(
        ipfail_sent(&mut i).iter().map(dump).collect::<Vec<_>>(),
        vec![pairs(&[
            ("t", "num_ping_nodes"),
            ("src", "alice"),
            ("num_ping", "2"),
            ("dest", "bob"),
            ("from_id", "ipfail"),
            ("to_id", "ipfail"),
            ("client_gen", "0"),
        ])]
    );
    let ask = |n: &str| {
        peer_msg(&[
            ("t", "num_ping_nodes"),
            ("src", "bob"),
            ("num_ping", n),
            ("dest", "alice"),
            ("from_id", "ipfail"),
            ("to_id", "ipfail"),
            ("client_gen", "0"),
        ])
    };
    // We see more: the partner is told it is dead.
    i.message(0, "bob", &ask("1"), view(2));
    assert_eq!(
        ipfail_sent(&mut i).iter().map(dump).collect::<Vec<_>>(),
        vec![pairs(&[
            ("t", "you_are_dead"),
            ("dest", "bob"),
            ("from_id", "ipfail"),
            ("to_id", "ipfail"),
            ("client_gen", "0"),
        ])]
    );
    // Balanced: abort_giveup.
    i.message(0, "bob", &ask("2"), view(2));
    assert_eq!(
        ipfail_sent(&mut i).iter().map(dump).collect::<Vec<_>>(),
        vec![pairs(&[
            ("t", "abort_giveup"),
            ("src", "alice"),
            ("dest", "bob"),
            ("from_id", "ipfail"),
            ("to_id", "ipfail"),
            ("client_gen", "0"),
        ])]
    );
    // We see fewer: a delayed giveup, then ask_resources for all.
    i.message(0, "bob", &ask("3"), view(2));
    assert!(ipfail_sent(&mut i).is_empty());
    i.handle_timeout(2000, view(2));
    assert_eq!(
        ipfail_sent(&mut i).iter().map(dump).collect::<Vec<_>>(),
        vec![pairs(&[
            ("t", "ask_resources"),
            ("rsc_hold", "all"),
            ("src", "alice"),
            ("info", "me"),
            ("from_id", "ipfail"),
            ("to_id", "ipfail"),
            ("client_gen", "0"),
        ])]
    );
}

#[test]
fn ipfail_reads_what_3_0_6_sends() {
    let mut i = ipfail();
    let view = View {
        ping_count: 1,
        stable: true,
    };
    // Another node's ipfail signs on: we ask.
    let join = peer_msg(&[
        ("t", "hbapi-clstat"),
        ("st", "join"),
        ("from_id", "ipfail"),
        ("to_id", "ipfail"),
        ("src", "bob"),
        ("info", "signon"),
        ("client_gen", "0"),
    ]);
    i.message(0, "bob", &join, view);
    assert_eq!(ipfail_sent(&mut i).len(), 1);
    // Our own join looped back: nothing.
    let mut own = join.clone();
    own.set_str("src", "ALICE");
    i.message(0, "alice", &own, view);
    assert!(ipfail_sent(&mut i).is_empty());
    // you_are_dead for another client is not ours.
    let dead = |to: &str| {
        peer_msg(&[
            ("t", "you_are_dead"),
            ("dest", "alice"),
            ("from_id", "ipfail"),
            ("to_id", to),
        ])
    };
    i.message(0, "bob", &dead("dopd"), view);
    assert_eq!(i.pending_giveup(), None);
    i.message(0, "bob", &dead("ipfail"), view);
    assert!(i.pending_giveup().is_some());
    // abort_giveup without a to_id is delivered (as the API does).
    i.message(0, "bob", &peer_msg(&[("t", "abort_giveup")]), view);
    assert_eq!(i.pending_giveup(), None);
    // num_ping is read with atoi: " 3x" is 3, more than ours: a giveup.
    let n = peer_msg(&[("t", "num_ping_nodes"), ("num_ping", " 3x")]);
    i.message(0, "bob", &n, view);
    assert!(i.pending_giveup().is_some());
}

fn pair() -> Vec<NodeView> {
    ["alice", "bob"]
        .iter()
        .map(|n| NodeView {
            name: n.to_string(),
            normal: true,
            dead: false,
        })
        .collect()
}

fn dopd_sent(actions: &[DopdAction]) -> Vec<Msg> {
    actions
        .iter()
        .filter_map(|a| match a {
            DopdAction::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn dopd_start_outdate_and_outdate_rc() {
    let mut alice = Dopd::new("alice");
    let mut bob = Dopd::new("bob");
    let start = dopd_sent(&alice.outdate_request(1, "bob", "r0", &pair()));
    assert_eq!(
        start.iter().map(dump).collect::<Vec<_>>(),
        vec![pairs(&[
            ("t", "start_outdate"),
            ("src", "alice"),
            ("dop_res", "r0"),
            ("dest", "bob"),
            ("from_id", "dopd"),
            ("to_id", "dopd"),
            ("client_gen", "0"),
        ])]
    );
    let run = bob.message(&start[0]);
    let job = run
        .iter()
        .find_map(|a| match a {
            DopdAction::RunOutdate { job, resource } => {
                assert_eq!(resource, "r0");
                Some(*job)
            }
            _ => None,
        })
        .expect("bob runs drbdadm outdate");
    let rc = dopd_sent(&bob.outdate_done(job, CommandEnd::Exited(0)));
    assert_eq!(
        rc.iter().map(dump).collect::<Vec<_>>(),
        vec![pairs(&[
            ("t", "outdate_rc"),
            ("dop_value", "4"),
            ("dop_res", "r0"),
            ("src", "bob"),
            ("dest", "alice"),
            ("from_id", "dopd"),
            ("to_id", "dopd"),
            ("client_gen", "0"),
        ])]
    );
    let answered = alice.message(&rc[0]);
    assert!(answered.iter().any(|a| matches!(
        a,
        DopdAction::Answer { request: 1, code } if code == "4"
    )));
}

#[test]
fn dopd_keeps_non_utf8_names() {
    // A peer with a Latin-1 resource name: bob's answer carries the same bytes back.
    let mut bob = Dopd::new("bob");
    let mut m = Msg::new();
    m.add_str("t", "start_outdate")
        .add_str("src", "alice")
        .add("dop_res", Value::Str(b"r\xe9s".to_vec()))
        .add_str("dest", "bob");
    let job = bob
        .message(&m)
        .iter()
        .find_map(|a| match a {
            DopdAction::RunOutdate { job, .. } => Some(*job),
            _ => None,
        })
        .expect("runs");
    let rc = dopd_sent(&bob.outdate_done(job, CommandEnd::Exited(0)));
    assert_eq!(rc.len(), 1);
    assert_eq!(rc[0].get("dop_res"), Some(&Value::Str(b"r\xe9s".to_vec())));
}

#[test]
fn status_query_and_response() {
    let q = Query {
        client: "ipfail".into(),
        asker: "cl_status".into(),
    };
    assert_eq!(
        dump(&q.emit("bob")),
        pairs(&[
            ("t", "query-cstatus"),
            ("dest", "bob"),
            ("cn", "ipfail"),
            ("from_id", "cl_status"),
        ])
    );
    assert_eq!(Query::parse(&q.emit("bob")), Some(q.clone()));
    for (online, cs) in [(true, "online"), (false, "offline")] {
        assert_eq!(
            dump(&q.answer("alice", online)),
            pairs(&[
                ("t", "respond-cstatus"),
                ("dest", "alice"),
                ("result", "OK"),
                ("cn", "ipfail"),
                ("to_id", "cl_status"),
                ("cs", cs),
            ])
        );
    }
    let mut no_asker = Msg::new();
    no_asker
        .add_str("t", "query-cstatus")
        .add_str("cn", "ipfail");
    assert_eq!(Query::parse(&no_asker), None);
}
