//! Legacy resource management (no `auto_failback` line) between two of our nodes on loopback,
//! with the harmless Marker resource: own groups at start, takeover when a node dies, failback
//! when it returns, handover on a graceful stop. No root.

#[macro_use]
mod common;

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

fn events(marker: &Path) -> Vec<String> {
    fs::read_to_string(marker.join("events"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn legacy_takeover_failback_and_graceful_handover() {
    let tmp = TestDir::new("rsc-legacy");
    let marker: PathBuf = tmp.path.join("marker");
    fs::create_dir_all(&marker).expect("marker dir");
    let addrs: [Ipv4Addr; 2] = [A, B].map(|a| a.parse().expect("addr"));
    let mut hacf =
        HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[A, B])).udpport(free_udp_port(&addrs));
    hacf.extra = vec!["crm off".into()]; // no auto_failback line: legacy
    let haresources = format!(
        "alice Marker::svcA::{m}\nbob Marker::svcB::{m}\n",
        m = marker.display()
    );
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    for d in [&da, &db] {
        d.write_config(&hacf, &Auth::lab(AuthMethod::Sha1), &haresources);
        install_resource_scripts(d, false);
    }
    let mut alice = OurNode::start(&da, None, Some(A));
    let mut bob = OurNode::start(&db, None, Some(B));
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(1),
    );

    // Each runs its own group, once.
    let s = Duration::from_secs(5);
    wait_until(
        "svcA on alice, svcB on bob",
        s,
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA") && marker_runs(&marker, "bob", "svcB"),
    );
    assert!(!marker_runs(&marker, "bob", "svcA") && !marker_runs(&marker, "alice", "svcB"));

    // bob dies (and his machine with its resources): alice takes svcB after deadtime.
    settle(bob.uptime(), Timing::SETTLE);
    bob.kill();
    fs::remove_file(marker.join("bob").join("svcB")).expect("bob's svcB");
    let late = Timing::FAST.death_window().1 + Duration::from_secs(3);
    wait_until(
        "alice takes svcB",
        late,
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcB"),
    );
    or_dump!(
        wait_for_log(&da.log(), "Resources being acquired from bob.", s),
        alice,
        bob
    );

    // bob returns: legacy always fails back; alice stops svcB before bob starts it.
    let before = events(&marker).len();
    bob.restart();
    wait_until(
        "svcB back on bob",
        Duration::from_secs(10),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "bob", "svcB") && !marker_runs(&marker, "alice", "svcB"),
    );
    // Marker writes its state file before its event line.
    wait_until(
        "bob's start event",
        Duration::from_secs(2),
        &mut [&mut alice, &mut bob],
        || {
            events(&marker)[before..]
                .iter()
                .any(|e| e == "bob start svcB")
        },
    );
    let new: Vec<String> = events(&marker)[before..].to_vec();
    let stop = new.iter().position(|e| e == "alice stop svcB");
    let start = new.iter().position(|e| e == "bob start svcB");
    assert!(
        matches!((stop, start), (Some(a), Some(b)) if a < b),
        "failback order: {new:?}"
    );

    // alice stops gracefully: she releases svcA and bob takes it at once (no deadtime wait).
    let t0 = Instant::now();
    alice.signal(Signal::SIGTERM);
    wait_until(
        "svcA on bob",
        Duration::from_secs(8),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "bob", "svcA") && !marker_runs(&marker, "alice", "svcA"),
    );
    assert!(
        t0.elapsed() < Timing::FAST.deadtime,
        "handover took {:?}",
        t0.elapsed()
    );
    assert!(alice
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|st| st.success()));
    or_dump!(
        wait_for_log(&da.log(), "All HA resources relinquished.", s),
        alice,
        bob
    );
    // Never both at once.
    for svc in ["svcA", "svcB"] {
        assert!(
            !(marker_runs(&marker, "alice", svc) && marker_runs(&marker, "bob", svc)),
            "{svc} on both"
        );
    }
}

#[test]
fn hb_standby_and_hb_takeover_in_legacy_mode_change_nothing_and_say_why() {
    let tmp = TestDir::new("rsc-standby");
    let marker: PathBuf = tmp.path.join("marker");
    fs::create_dir_all(&marker).expect("marker dir");
    let addrs: [Ipv4Addr; 2] = [A, B].map(|a| a.parse().expect("addr"));
    let mut hacf =
        HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[A, B])).udpport(free_udp_port(&addrs));
    hacf.extra = vec!["crm off".into()];
    let haresources = format!("alice Marker::svcA::{m}\n", m = marker.display());
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    for d in [&da, &db] {
        d.write_config(&hacf, &Auth::lab(AuthMethod::Sha1), &haresources);
        install_resource_scripts(d, false);
    }
    let mut alice = OurNode::start(&da, None, Some(A));
    let mut bob = OurNode::start(&db, None, Some(B));
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(1),
    );
    wait_until(
        "svcA on alice",
        Duration::from_secs(5),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA"),
    );
    let run = |bin: &str, dir: &NodeDir| {
        std::process::Command::new(bin)
            .arg("--rundir")
            .arg(dir.run())
            .output()
            .expect("run")
    };
    let out = run(env!("CARGO_BIN_EXE_hb_standby"), &da);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Going standby [all]."));
    let line = "Standby mode only implemented when nice_failback on";
    or_dump!(
        wait_for_log(&da.log(), line, Duration::from_secs(5)),
        alice,
        bob
    );
    or_dump!(
        wait_for_log(&db.log(), line, Duration::from_secs(5)),
        alice,
        bob
    );
    // hb_takeover on bob: alice answers with her own standby request, refused the same way.
    let mark = log_mark(&da.log());
    let out = run(env!("CARGO_BIN_EXE_hb_takeover"), &db);
    assert_eq!(out.status.code(), Some(0));
    or_dump!(
        wait_for_log_from(&da.log(), mark, line, Duration::from_secs(5)),
        alice,
        bob
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(marker_runs(&marker, "alice", "svcA") && !marker_runs(&marker, "bob", "svcA"));
}

#[test]
fn after_a_frozen_node_resumes_every_group_ends_on_exactly_one_node() {
    let tmp = TestDir::new("rsc-freeze");
    let marker: PathBuf = tmp.path.join("marker");
    fs::create_dir_all(&marker).expect("marker dir");
    let addrs: [Ipv4Addr; 2] = [A, B].map(|a| a.parse().expect("addr"));
    let mut hacf =
        HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[A, B])).udpport(free_udp_port(&addrs));
    hacf.extra = vec!["crm off".into()];
    let haresources = format!(
        "alice Marker::svcA::{m}\nbob Marker::svcB::{m}\n",
        m = marker.display()
    );
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    for d in [&da, &db] {
        d.write_config(&hacf, &Auth::lab(AuthMethod::Sha1), &haresources);
        install_resource_scripts(d, false);
    }
    let mut alice = OurNode::start(&da, None, Some(A));
    let mut bob = OurNode::start(&db, None, Some(B));
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(1),
    );
    let s = Duration::from_secs(5);
    wait_until("own groups", s, &mut [&mut alice, &mut bob], || {
        marker_runs(&marker, "alice", "svcA") && marker_runs(&marker, "bob", "svcB")
    });
    settle(bob.uptime(), Timing::SETTLE);
    // bob freezes past deadtime: alice takes svcB (split brain while bob sleeps).
    bob.signal(Signal::SIGSTOP);
    wait_until(
        "alice takes svcB",
        Timing::FAST.deadtime + s,
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcB"),
    );
    thread::sleep(Duration::from_secs(1));
    bob.signal(Signal::SIGCONT);
    or_dump!(
        wait_for_log(&da.log(), "Cluster node bob returning after partition.", s),
        alice,
        bob
    );
    // Both sides settle: each group on its own node only.
    wait_until(
        "each group on exactly one node",
        Duration::from_secs(10),
        &mut [&mut alice, &mut bob],
        || {
            marker_runs(&marker, "alice", "svcA")
                && !marker_runs(&marker, "bob", "svcA")
                && marker_runs(&marker, "bob", "svcB")
                && !marker_runs(&marker, "alice", "svcB")
        },
    );
    thread::sleep(Duration::from_secs(2));
    for svc in ["svcA", "svcB"] {
        assert!(
            marker_runs(&marker, "alice", svc) != marker_runs(&marker, "bob", svc),
            "{svc} not on exactly one node"
        );
    }
    assert!(alice.is_running() && bob.is_running());
}
