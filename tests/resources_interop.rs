//! Legacy resource management in a mixed pair: a real Heartbeat 3.0.6 node (alice) and ours
//! (bob), both running the Marker resource. Groups end where two real nodes put them: own
//! groups at start, takeover on death, failback on return, handover on a graceful stop.
//! Root and the heartbeat package.

#[macro_use]
mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

#[test]
fn legacy_mixed_pair_moves_groups_like_two_real_nodes() {
    if !require_root_or_skip("legacy_mixed_pair_moves_groups_like_two_real_nodes") {
        return;
    }
    let pair = MarkerPair::netns("rsc-mixed", "hbrs", "10.250.64")
        .extra(&["crm off"])
        .auth(AuthMethod::Md5)
        .real(0)
        .build();
    let marker = pair.marker.clone();
    let mut alice = pair.start_real(0);
    let mut bob = pair.start_ours(1);
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(3),
    );
    let s = Duration::from_secs(8);
    wait_until(
        "svcA on alice, svcB on bob",
        s,
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA") && marker_runs(&marker, "bob", "svcB"),
    );

    // Ours dies: the real node takes svcB.
    settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
    bob.kill();
    let _ = fs::remove_file(marker.join("bob").join("svcB"));
    let late = Timing::FAST.death_window().1 + Duration::from_secs(4);
    wait_until(
        "real alice takes svcB",
        late,
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcB"),
    );

    // Ours returns: it asks, the real node gives svcB back.
    bob.restart();
    wait_until(
        "svcB back on our bob",
        Duration::from_secs(12),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "bob", "svcB") && !marker_runs(&marker, "alice", "svcB"),
    );

    // The real node dies: ours takes svcA.
    settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
    alice.kill();
    let _ = fs::remove_file(marker.join("alice").join("svcA"));
    wait_until(
        "our bob takes svcA",
        late,
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "bob", "svcA"),
    );

    // The real node returns: legacy fails back; ours releases svcA when asked.
    alice.restart();
    wait_until(
        "svcA back on real alice",
        Duration::from_secs(15),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA") && !marker_runs(&marker, "bob", "svcA"),
    );

    // Ours stops gracefully: the real node takes svcB without waiting for deadtime.
    settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
    let t0 = Instant::now();
    bob.signal(Signal::SIGTERM);
    wait_until(
        "real alice takes svcB at once",
        Duration::from_secs(8),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcB") && !marker_runs(&marker, "bob", "svcB"),
    );
    assert!(
        t0.elapsed() < Timing::FAST.deadtime + Duration::from_secs(1),
        "handover took {:?}",
        t0.elapsed()
    );
    assert!(bob
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|st| st.success()));
    for svc in ["svcA", "svcB"] {
        assert!(
            !(marker_runs(&marker, "alice", svc) && marker_runs(&marker, "bob", svc)),
            "{svc} on both"
        );
    }
}
