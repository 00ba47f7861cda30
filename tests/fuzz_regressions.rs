//! Regressions found by the fuzz targets (fuzz/) and by the hostile-traffic test
//! (tests/hostile.rs): each test replays the input, or the smallest sequence that shows the
//! defect, against the library, and fails on the code before its fix.

use std::path::Path;

use heartbeat::cluster::{Action, Identity, Membership, Now, Params};
use heartbeat::config::authkeys;
use heartbeat::wire::{Authenticator, Msg, Value};

const EPOCH: u64 = 1_795_000_000;

fn now(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        unix_secs: EPOCH + ms / 1000,
    }
}

fn auth(text: &str) -> Authenticator {
    Authenticator::new(authkeys::parse(text, Path::new("authkeys")).expect("authkeys"))
}

/// alice with two links (both named as in ha.cf), peer bob.
fn alice(auth: Authenticator) -> Membership {
    let params = Params {
        my_name: "alice".into(),
        nodes: vec!["alice".into(), "bob".into()],
        links: vec!["hb0".into(), "hb1".into()],
        keepalive_ms: 100,
        deadtime_ms: 1000,
        warntime_ms: 500,
        initdead_ms: 2000,
        max_rexmit_delay_ms: 250,
        hopfudge: 1,
        inner_auth: false,
        ping_nodes: Vec::new(),
        deadping_ms: 1000,
    };
    let id = Identity {
        name: "alice".into(),
        uuid: [1; 16],
        generation: 10,
    };
    let mut m = Membership::new(params, id, auth, now(0), 1);
    m.set_own_link(now(0), 0, true);
    m.set_own_link(now(0), 1, true);
    m
}

fn status(auth: &Authenticator, src: &str, generation: u64, seq: u64, at_ms: u64) -> Vec<u8> {
    let mut m = Msg::new();
    m.add_str("t", "status")
        .add_str("st", "active")
        .add_str("dt", "3e8")
        .add_str("protocol", "1")
        .add_str("src", src)
        .add("srcuuid", Value::Binary(vec![2; 16]))
        .add_str("seq", &format!("{seq:x}"))
        .add_str("hg", &format!("{generation:x}"))
        .add_str("ts", &format!("{:x}", EPOCH + at_ms / 1000))
        .add_str("ld", "0.00 0.00 0.00 1/1 1");
    auth.encode_udp(&m)
}

fn logs(m: &mut Membership) -> Vec<String> {
    std::iter::from_fn(|| m.poll_action())
        .filter_map(|a| match a {
            Action::Log(_, text) => Some(text),
            _ => None,
        })
        .collect()
}

/// Found by tests/hostile.rs: a replayed capture of bob's (an old sequence number, arriving on
/// the second link) brought that link up (`Link bob:hb1 up.`). An old message proves nothing
/// about a link; 3.0.6 refreshes a link only for new messages and exact duplicates.
#[test]
fn an_old_replayed_packet_does_not_bring_a_link_up() {
    let keys = auth("auth 1\n1 sha1 regression-key\n");
    let mut m = alice(keys.clone());
    let captured: Vec<Vec<u8>> = (1..=5)
        .map(|s| status(&keys, "bob", 20, s, 100 * s))
        .collect();
    for (k, p) in captured.iter().enumerate() {
        m.handle_datagram(now(100 * (k as u64 + 1)), 0, p);
    }
    let before = logs(&mut m);
    assert!(
        before.iter().any(|l| l == "Link bob:hb0 up."),
        "bob's link hb0 should be up: {before:?}"
    );
    assert!(
        !before.iter().any(|l| l == "Link bob:hb1 up."),
        "{before:?}"
    );
    // Old captures, replayed on the other link: dropped, the link stays as it was.
    for p in &captured[..4] {
        m.handle_datagram(now(700), 1, p);
    }
    let replayed = logs(&mut m);
    assert!(
        !replayed.iter().any(|l| l.contains("Link bob:hb1 up")),
        "an old replayed packet brought a link up: {replayed:?}"
    );
    // bob's previous generation, sequence far ahead: a replay, no link either.
    m.handle_datagram(now(750), 1, &status(&keys, "bob", 19, 1 << 20, 750));
    let old_gen = logs(&mut m);
    assert!(
        !old_gen.iter().any(|l| l.contains("Link bob:hb1 up")),
        "{old_gen:?}"
    );
    assert!(
        old_gen
            .iter()
            .any(|l| l.contains("attempted replay attack")),
        "{old_gen:?}"
    );
    // The newest message again (a copy on the second medium): 3.0.6 counts it for the link.
    m.handle_datagram(now(800), 1, &captured[4]);
    let dup = logs(&mut m);
    assert!(dup.iter().any(|l| l == "Link bob:hb1 up."), "{dup:?}");
}

/// Found reading the rejection log while writing tests/hostile.rs: an authentic packet from a
/// node not in ha.cf was counted under a kind named after the sender, so a crc cluster (where
/// anyone can sign) kept one entry per name ever seen: memory grew with every new name.
#[test]
fn unknown_senders_do_not_grow_the_rejection_table() {
    let keys = auth("auth 1\n1 crc\n");
    let mut m = alice(keys.clone());
    for k in 0..5000u64 {
        let name = format!("mallory{k}");
        m.handle_datagram(now(10 + k), 0, &status(&keys, &name, 1, 1, 10 + k));
    }
    let lines = logs(&mut m);
    let bad: Vec<&String> = lines.iter().filter(|l| l.contains("bad node")).collect();
    assert_eq!(bad.len(), 1, "one line per interval: {bad:?}");
    assert!(
        m.reject_counts().len() <= 2,
        "rejection kinds: {:?}",
        m.reject_counts().keys().take(10).collect::<Vec<_>>()
    );
    assert_eq!(m.reject_counts().values().sum::<u64>(), 5000);
}

fn ns_rexmit(auth: &Authenticator, generation: u64, seq: u64, at_ms: u64) -> Vec<u8> {
    let mut m = Msg::new();
    m.add_str("t", "NS_rexmit")
        .add_str("dest", "alice")
        .add_str("firstseq", &seq.to_string())
        .add_str("lastseq", &seq.to_string())
        .add_str("src", "bob")
        .add("srcuuid", Value::Binary(vec![2; 16]))
        .add_str("hg", &format!("{generation:x}"))
        .add_str("ts", &format!("{:x}", EPOCH + at_ms / 1000));
    auth.encode_udp(&m)
}

/// Count alice's datagrams, draining its actions.
fn sends(m: &mut Membership) -> (usize, Vec<String>) {
    let mut n = 0;
    let mut lines = Vec::new();
    while let Some(a) = m.poll_action() {
        match a {
            Action::Transmit(_) => n += 1,
            Action::Log(_, l) => lines.push(l),
            _ => {}
        }
    }
    (n, lines)
}

/// Found by tests/hostile.rs: a captured `NS_ackmsg`/`NS_rexmit` (no sequence number) replayed
/// later was taken as new: it brought a link up, and a replayed `NS_rexmit` made alice send
/// from its history again, as often as the attacker liked. Now one stamped well before the
/// sender's last status, or from its older generation, is dropped; a fresh one still works.
#[test]
fn a_replayed_ns_message_is_dropped() {
    let keys = auth("auth 1\n1 sha1 regression-key\n");
    let mut m = alice(keys.clone());
    m.handle_datagram(now(100), 0, &status(&keys, "bob", 20, 1, 100));
    let captured = ns_rexmit(&keys, 20, 1, 150);
    let old_generation = ns_rexmit(&keys, 19, 1, 20_000);
    // bob goes on talking for 20 s; alice goes on sending.
    for s in 2..=200u64 {
        let t = 100 * s;
        m.handle_timeout(now(t));
        m.handle_datagram(now(t), 0, &status(&keys, "bob", 20, s, t));
    }
    sends(&mut m);
    m.handle_datagram(now(20_010), 1, &captured);
    m.handle_datagram(now(20_020), 1, &old_generation);
    let (sent, lines) = sends(&mut m);
    assert_eq!(sent, 0, "a replayed NS_rexmit was served: {lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("Link bob:hb1 up")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("stale NS_rexmit")),
        "{lines:?}"
    );
    // A fresh request is served (and proves the link).
    m.handle_datagram(now(20_050), 1, &ns_rexmit(&keys, 20, 1, 20_050));
    let (sent, lines) = sends(&mut m);
    assert!(sent >= 1, "a fresh NS_rexmit was not served: {lines:?}");
    assert!(lines.iter().any(|l| l == "Link bob:hb1 up."), "{lines:?}");
}
