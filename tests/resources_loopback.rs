//! Resource management between two of our nodes on loopback, with the harmless Marker
//! resource: in legacy mode (no `auto_failback` line) own groups at start, takeover when a node
//! dies, failback when it returns, handover on a graceful stop; in negotiated mode the quick
//! start of two of ours. No root.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

fn events(marker: &Path) -> Vec<String> {
    fs::read_to_string(marker.join("events"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn legacy_takeover_failback_and_graceful_handover() {
    let pair = MarkerPair::loopback("rsc-legacy")
        .extra(&["crm off"]) // no auto_failback line: legacy
        .build();
    let (marker, da) = (pair.marker.clone(), &pair.dirs[0]);
    let mut alice = pair.start_ours(0);
    let mut bob = pair.start_ours(1);
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
    let pair = MarkerPair::loopback("rsc-standby")
        .extra(&["crm off"])
        .haresources("alice Marker::svcA::{m}\n")
        .build();
    let (marker, [da, db]) = (pair.marker.clone(), &pair.dirs);
    let mut alice = pair.start_ours(0);
    let mut bob = pair.start_ours(1);
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
    let out = run(env!("CARGO_BIN_EXE_hb_standby"), da);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Going standby [all]."), "{err}");
    // Unlike 3.0.6, the tool itself says why nothing will move.
    assert!(err.contains("move nothing in this mode"), "{err}");
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
    let out = run(env!("CARGO_BIN_EXE_hb_takeover"), db);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("move nothing in this mode"), "{err}");
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
    let pair = MarkerPair::loopback("rsc-freeze")
        .extra(&["crm off"])
        .build();
    let (marker, da) = (pair.marker.clone(), &pair.dirs[0]);
    let mut alice = pair.start_ours(0);
    let mut bob = pair.start_ours(1);
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

/// Negotiated mode (`auto_failback on`), two of ours starting together: each offers the other
/// a quick start, so the groups run as soon as the two hear each other, not after 3.0.6's 10 s
/// wait (which a mixed pair keeps: `tests/negotiated_interop.rs`).
#[test]
fn two_of_ours_in_negotiated_mode_start_without_the_ten_second_wait() {
    let pair = MarkerPair::loopback("rsc-quick")
        .extra(&["auto_failback on", "crm off"])
        .build();
    let (marker, da) = (pair.marker.clone(), &pair.dirs[0]);
    let t0 = Instant::now();
    let mut alice = pair.start_ours(0);
    let mut bob = pair.start_ours(1);
    wait_until(
        "svcA on alice, svcB on bob",
        Duration::from_secs(14),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA") && marker_runs(&marker, "bob", "svcB"),
    );
    let took = t0.elapsed();
    eprintln!("own groups running {took:?} after both daemons were started");
    assert!(
        took < Duration::from_secs(3),
        "own groups running {took:?} after the start: the 10 s wait was not skipped\n{}",
        dump(&mut [&mut alice, &mut bob])
    );
    assert!(!marker_runs(&marker, "bob", "svcA") && !marker_runs(&marker, "alice", "svcB"));
    or_dump!(
        wait_for_log(
            &da.log(),
            "Initial resource acquisition complete",
            Duration::from_secs(2)
        ),
        alice,
        bob
    );
}
