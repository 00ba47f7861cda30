//! Our node and a real Heartbeat 3.0.6 node joined only by a serial "cable" (a socat pty pair):
//! both active, and each detects the other's death and return. Root and the heartbeat and
//! socat packages (the real node runs in a namespace of its own, as the lab does it).

#[macro_use]
mod common;

use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// `socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B`, killed (by pid) when dropped.
struct NullModem(Child);

impl NullModem {
    fn new(a: &std::path::Path, b: &std::path::Path) -> NullModem {
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (Debian package socat)");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(a.exists() && b.exists()) {
            assert!(Instant::now() < deadline, "socat made no pty pair");
            thread::sleep(Duration::from_millis(20));
        }
        NullModem(child)
    }
}

impl Drop for NullModem {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serial_only_beside_real_3_0_6() {
    if !require_root_or_skip("serial_only_beside_real_3_0_6") {
        return;
    }
    let timing = Timing::FAST;
    let tmp = TestDir::new("ser-real");
    let (tty_a, tty_b) = (tmp.path.join("ttyA"), tmp.path.join("ttyB"));
    let _cable = NullModem::new(&tty_a, &tty_b);
    // The real node needs a namespace of its own (mounts, hostname); no network is used.
    let ns = NetnsPair::new("hbsr", "10.250.61");
    let auth = Auth::lab(AuthMethod::Sha1);
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    // Legacy resource management (no auto_failback line) with the Marker resource, so the
    // groups move over the cable as they do over UDP.
    let marker = tmp.path.join("marker");
    std::fs::create_dir_all(&marker).expect("marker");
    let haresources = format!(
        "alice Marker::svcA::{m}\nbob Marker::svcB::{m}\n",
        m = marker.display()
    );
    for (d, tty, real) in [(&da, &tty_a, true), (&db, &tty_b, false)] {
        let mut cf = HaCf::new(&["alice", "bob"], &[format!("serial {}", tty.display())]);
        cf.extra = vec!["crm off".into()];
        d.write_config(&cf, &auth, &haresources);
        install_resource_scripts(d, real);
    }

    let mut alice = RealNode::start(&da, &ns.ns_a());
    let mut bob = OurNode::start(&db, None, None);
    let limit = timing.initdead + Duration::from_secs(3);
    wait_mutually_active(&mut alice, &mut bob, limit);
    wait_until(
        "svcA on alice, svcB on bob",
        Duration::from_secs(10),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA") && marker_runs(&marker, "bob", "svcB"),
    );
    let st = wait_real_nodestatus(&alice, "bob", "active", Duration::from_secs(10));
    assert!(st.is_ok(), "real cl_status nodestatus bob: {st:?}");
    let link_up = format!("Link alice:{} up.", tty_b.display());
    assert!(
        !log_lines_from(&bob.log(), 0, &link_up).is_empty(),
        "our link line names the device as written"
    );

    // Our node killed: the real one declares it dead after deadtime; back with a restart.
    settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
    let ma = log_mark(&alice.log());
    let t0 = Instant::now();
    bob.kill();
    let _ = std::fs::remove_file(marker.join("bob").join("svcB"));
    let late = timing.death_window().1 + Duration::from_secs(2);
    or_dump!(
        wait_for_log_from(&alice.log(), ma, "node bob: is dead", late),
        alice,
        bob
    );
    assert_death_time(
        t0.elapsed(),
        &timing,
        "real alice about our bob over serial",
    );
    wait_until(
        "real alice takes svcB",
        Duration::from_secs(5),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcB"),
    );
    bob.restart();
    wait_until(
        "svcB back on our bob",
        Duration::from_secs(15),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "bob", "svcB") && !marker_runs(&marker, "alice", "svcB"),
    );
    or_dump!(
        wait_for_log_from(
            &alice.log(),
            ma,
            "Status update for node bob: status active",
            limit
        ),
        alice,
        bob
    );

    // The real node killed: ours declares it dead; back with a restart.
    settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
    let mb = log_mark(&bob.log());
    let t0 = Instant::now();
    alice.kill();
    let _ = std::fs::remove_file(marker.join("alice").join("svcA"));
    or_dump!(
        wait_for_log_from(&bob.log(), mb, "node alice: is dead", late),
        alice,
        bob
    );
    assert_death_time(
        t0.elapsed(),
        &timing,
        "our bob about real alice over serial",
    );
    wait_until(
        "our bob takes svcA",
        Duration::from_secs(5),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "bob", "svcA"),
    );
    alice.restart();
    wait_until(
        "svcA back on real alice",
        Duration::from_secs(20),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA") && !marker_runs(&marker, "bob", "svcA"),
    );
    or_dump!(
        wait_for_log_from(&bob.log(), mb, "Heartbeat restart on node alice", limit),
        alice,
        bob
    );
    or_dump!(
        wait_for_log_from(
            &bob.log(),
            mb,
            "Status update for node alice: status active",
            limit
        ),
        alice,
        bob
    );
}
