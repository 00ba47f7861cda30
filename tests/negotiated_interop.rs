//! The negotiated resource manager (`auto_failback on`) in a mixed pair: a real Heartbeat 3.0.6
//! node (alice) and ours (bob), both running the Marker resource. Start-up negotiation, takeover
//! on death both ways, auto failback both ways, hb_standby / hb_takeover typed on our node, and
//! a graceful stop of ours. Root and the heartbeat package.

#[macro_use]
mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

fn on_only(marker: &std::path::Path, node: &str, other: &str, svc: &str) -> bool {
    marker_runs(marker, node, svc) && !marker_runs(marker, other, svc)
}

/// Poll the real node's `cl_status rscstatus` until it says `want`.
fn wait_real_rscstatus(alice: &mut RealNode, bob: &mut OurNode, want: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (got, _) = real_cl_status(alice, &["rscstatus"]);
        if got.trim() == want {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "real alice: rscstatus {got:?}, wanted {want}\n{}",
                dump(&mut [alice, bob])
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn negotiated_mixed_pair_moves_groups_like_two_real_nodes() {
    if !require_root_or_skip("negotiated_mixed_pair_moves_groups_like_two_real_nodes") {
        return;
    }
    let pair = MarkerPair::netns("rsc-negotiated", "hbng", "10.250.66")
        .extra(&["auto_failback on", "crm off"])
        .real(0)
        .build();
    let (marker, db) = (pair.marker.clone(), &pair.dirs[1]);
    // Both start together: each waits ~10 s for the other, then takes its own group.
    let mut alice = pair.start_real(0);
    let mut bob = pair.start_ours(1);
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(3),
    );
    let t0 = Instant::now();
    wait_until(
        "svcA on alice, svcB on bob",
        Duration::from_secs(16),
        &mut [&mut alice, &mut bob],
        || on_only(&marker, "alice", "bob", "svcA") && on_only(&marker, "bob", "alice", "svcB"),
    );
    assert!(
        t0.elapsed() > Duration::from_secs(7),
        "own groups taken after {:?}: the 10 s negotiation was skipped",
        t0.elapsed()
    );

    // Ours dies: the real node takes svcB; ours returns and auto failback gives it back.
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
    bob.restart();
    wait_until(
        "svcB failed back to our bob",
        Duration::from_secs(15),
        &mut [&mut alice, &mut bob],
        || on_only(&marker, "bob", "alice", "svcB"),
    );
    or_dump!(
        wait_for_log(
            &db.log(),
            "Initial resource acquisition complete (auto_failback)",
            Duration::from_secs(3)
        ),
        alice,
        bob
    );

    // The real node dies: ours takes svcA; it returns and ours fails it back.
    settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
    alice.kill();
    let _ = fs::remove_file(marker.join("alice").join("svcA"));
    wait_until(
        "our bob takes svcA",
        late,
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "bob", "svcA"),
    );
    alice.restart();
    wait_until(
        "svcA failed back to real alice",
        Duration::from_secs(15),
        &mut [&mut alice, &mut bob],
        || on_only(&marker, "alice", "bob", "svcA") && on_only(&marker, "bob", "alice", "svcB"),
    );

    // hb_standby on ours: everything to the real node; hb_takeover on ours: everything back.
    let run = |bin: &str, args: &[&str]| {
        std::process::Command::new(bin)
            .arg("--rundir")
            .arg(db.run())
            .args(args)
            .output()
            .expect("run")
    };
    settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
    wait_real_rscstatus(&mut alice, &mut bob, "local", Duration::from_secs(10));
    let out = run(env!("CARGO_BIN_EXE_hb_standby"), &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    wait_until(
        "hb_standby on bob: alice runs both",
        Duration::from_secs(8),
        &mut [&mut alice, &mut bob],
        || on_only(&marker, "alice", "bob", "svcA") && on_only(&marker, "alice", "bob", "svcB"),
    );
    wait_real_rscstatus(&mut alice, &mut bob, "all", Duration::from_secs(8));
    let out = run(env!("CARGO_BIN_EXE_hb_takeover"), &["foreign"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    wait_until(
        "hb_takeover foreign on bob: bob runs svcA, alice svcB",
        Duration::from_secs(10),
        &mut [&mut alice, &mut bob],
        || on_only(&marker, "bob", "alice", "svcA") && on_only(&marker, "alice", "bob", "svcB"),
    );

    // hb_takeover local on ours: bob runs both. (Stopping ours in the state above would show
    // a 3.0.6 bug: on a shutdone, a node holding `foreign` acquires `foreign` again instead of
    // what it lacks, and svcA would stay down; holding `none` it acquires `all`.)
    wait_real_rscstatus(&mut alice, &mut bob, "foreign", Duration::from_secs(8));
    let out = run(env!("CARGO_BIN_EXE_hb_takeover"), &["local"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    wait_until(
        "hb_takeover local on bob: bob runs both",
        Duration::from_secs(10),
        &mut [&mut alice, &mut bob],
        || on_only(&marker, "bob", "alice", "svcA") && on_only(&marker, "bob", "alice", "svcB"),
    );

    // Ours stops gracefully: the real node takes both at once.
    wait_real_rscstatus(&mut alice, &mut bob, "none", Duration::from_secs(8));
    let t0 = Instant::now();
    bob.signal(Signal::SIGTERM);
    wait_until(
        "real alice takes everything at once",
        Duration::from_secs(8),
        &mut [&mut alice, &mut bob],
        || on_only(&marker, "alice", "bob", "svcA") && on_only(&marker, "alice", "bob", "svcB"),
    );
    assert!(
        t0.elapsed() < Timing::FAST.deadtime,
        "handover took {:?}",
        t0.elapsed()
    );
    assert!(bob
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|st| st.success()));
}
