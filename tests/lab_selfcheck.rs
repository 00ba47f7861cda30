//! The lab checks itself against two REAL Heartbeat 3.0.6 nodes, so that a failing interop test
//! points at our daemon and not at the harness: alice in one namespace, bob in the other, `crm
//! off`, md5, ucast, the fast timings of `Timing::FAST`.
//!
//! Also pins the expectations the interop tests put on the real daemon: its log wording for a
//! status change, a death, a restart and a packet with a wrong signature.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A well-formed netstring status message from `src`, with a trailer that no key produces.
fn forged_status(src: &str) -> Vec<u8> {
    let mut p = b"###\n".to_vec();
    for (name, value) in [
        ("t", "status"),
        ("st", "active"),
        ("src", src),
        ("seq", "1"),
        ("hg", "6b036004"),
    ] {
        let field = format!("(0){name}={value}");
        p.extend_from_slice(format!("{}:{field},", field.len()).as_bytes());
    }
    p.extend_from_slice(b"%%%\n");
    let trailer = format!("1 {}", "0".repeat(32));
    p.extend_from_slice(format!("{}:{trailer},", trailer.len()).as_bytes());
    p
}

#[test]
fn two_real_nodes() {
    if !require_root_or_skip("lab_selfcheck::two_real_nodes") {
        return;
    }
    let t_begin = Instant::now();
    let timing = Timing::FAST;
    let lab = NetnsPair::new("hbl-self", "10.250.10");
    let tmp = TestDir::new("selfcheck");
    let hacf = HaCf::new(
        &["alice", "bob"],
        &ucast_lines("hb0", &[&lab.addr_a(), &lab.addr_b()]),
    )
    .udpport(694);
    let auth = Auth::lab(AuthMethod::Md5);
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    da.write_config(&hacf, &auth, "");
    db.write_config(&hacf, &auth, "");

    let mut alice = RealNode::start(&da, &lab.ns_a());
    let mut bob = RealNode::start(&db, &lab.ns_b());
    let ctx = |a: &mut RealNode, b: &mut RealNode| dump(&mut [a as &mut dyn NodeInfo, b]);

    // Both active, each seen active by the other, well within initdead.
    let limit = timing.initdead + Duration::from_secs(1);
    let t_active = Instant::now();
    for (log, peer) in [(alice.log(), "bob"), (bob.log(), "alice")] {
        let needle = format!("Status update for node {peer}: status active");
        if let Err(e) = wait_for_log(&log, &needle, limit) {
            panic!("{e}\n{}", ctx(&mut alice, &mut bob));
        }
    }
    for (node, me) in [(&alice, "alice"), (&bob, "bob")] {
        let got = wait_for_log(
            &node.log(),
            "Local status now set to: 'active'",
            Duration::ZERO,
        );
        assert!(got.is_ok(), "{me} never went active: {got:?}");
        assert!(wait_for_log(&node.log(), &format!("Link {me}:hb0 up."), Duration::ZERO).is_ok());
    }
    let active_after = t_active.elapsed();
    if let Err(e) = wait_real_nodestatus(&alice, "bob", "active", Duration::from_secs(5)) {
        panic!("{e}\n{}", ctx(&mut alice, &mut bob));
    }
    let (out, code) = real_cl_status(&alice, &["nodestatus", "bob"]);
    assert_eq!((out.trim(), code), ("active", 0));
    let (out, code) = real_cl_status(&alice, &["listnodes"]);
    assert_eq!((out.as_str(), code), ("bob\nalice\n", 0), "listnodes");

    // A packet with a wrong signature: logged, dropped, nothing changes.
    let mark_a = log_mark(&alice.log());
    let pkt = tmp.path.join("forged.bin");
    std::fs::write(&pkt, forged_status("carol")).unwrap();
    let send = format!("cat {} > /dev/udp/{}/694", pkt.display(), lab.addr_a());
    let st = Command::new("ip")
        .args(["netns", "exec", &lab.ns_b(), "bash", "-c", &send])
        .status()
        .unwrap();
    assert!(st.success(), "sending the forged packet: {st}");
    if let Err(e) = wait_for_log_from(
        &alice.log(),
        mark_a,
        "authtoken does not match",
        Duration::from_secs(3),
    ) {
        panic!("{e}\n{}", ctx(&mut alice, &mut bob));
    }
    assert!(log_lines_from(&alice.log(), 0, "Status update for node carol").is_empty());
    assert!(log_lines_from(&alice.log(), 0, "Link carol:").is_empty());

    // SIGKILL bob once his advertised dead time is the plain deadtime.
    settle(bob.uptime(), Timing::SETTLE);
    let mark_a = log_mark(&alice.log());
    let gen_before = db.generation().expect("bob's hb_generation");
    let t_kill = Instant::now();
    bob.kill();
    let dead_after = match wait_for_log_from(
        &alice.log(),
        mark_a,
        "WARN: node bob: is dead",
        timing.death_window().1 + Duration::from_secs(2),
    ) {
        Ok(_) => t_kill.elapsed(),
        Err(e) => panic!("{e}\n{}", ctx(&mut alice, &mut bob)),
    };
    assert_death_time(dead_after, &timing, "real alice about real bob");
    wait_for_log_from(
        &alice.log(),
        mark_a,
        "Link bob:hb0 dead.",
        Duration::from_secs(1),
    )
    .unwrap();
    let (out, code) = real_cl_status(&alice, &["nodestatus", "bob"]);
    assert_eq!((out.trim(), code), ("dead", 1), "nodestatus of a dead node");

    // Restart bob: a higher generation, accepted as a restart.
    let mark_a = log_mark(&alice.log());
    let mark_b = log_mark(&bob.log());
    let t_restart = Instant::now();
    bob.restart();
    for (log, from, needle) in [
        (alice.log(), mark_a, "Heartbeat restart on node bob"),
        (
            alice.log(),
            mark_a,
            "Status update for node bob: status active",
        ),
        (
            bob.log(),
            mark_b,
            "Status update for node alice: status active",
        ),
    ] {
        if let Err(e) = wait_for_log_from(&log, from, needle, limit) {
            panic!("{e}\n{}", ctx(&mut alice, &mut bob));
        }
    }
    let back_after = t_restart.elapsed();
    let gen_after = db.generation().expect("bob's hb_generation");
    assert!(
        gen_after > gen_before,
        "generation {gen_before} -> {gen_after}"
    );
    wait_real_nodestatus(&alice, "bob", "active", Duration::from_secs(5)).unwrap();

    let _ = writeln!(
        std::io::stderr(),
        "lab self-check: both active {:.2} s after start, bob dead {:.2} s after SIGKILL, \
         back {:.2} s after restart, {:.1} s in all",
        active_after.as_secs_f64(),
        dead_after.as_secs_f64(),
        back_after.as_secs_f64(),
        t_begin.elapsed().as_secs_f64()
    );
}
