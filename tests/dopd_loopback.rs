//! The built-in dopd between two of ours on loopback, without root: alice on 127.0.0.1 and
//! bob on 127.0.0.2, both with `respawn hacluster /usr/lib/heartbeat/dopd` and its `apiauth`
//! line, as DRBD pairs have them. Our `drbd-peer-outdater` on alice asks bob's disk to be
//! outdated; a fake `drbdadm` first on PATH records each call with the pid of the daemon
//! that ran it and exits with the code the test chose. Then bob dies and the outdater must
//! report the peer unreachable (5) without anything run.

#[macro_use]
mod common;

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";
const OUTDATER: &str = env!("CARGO_BIN_EXE_drbd-peer-outdater");

/// A `drbdadm` that appends `<parent pid> <args>` to `<dir>/calls` and exits with the number
/// in `<dir>/exit` (0 without it), after 3 s if `<dir>/hang` exists.
fn fake_drbdadm(dir: &Path) {
    fs::create_dir_all(dir).expect("fake dir");
    let script = format!(
        "#!/bin/sh\necho \"$PPID $*\" >> '{d}/calls'\nif [ -e '{d}/hang' ]; then sleep 3; fi\nexit $(cat '{d}/exit' 2>/dev/null || echo 0)\n",
        d = dir.display()
    );
    let p = dir.join("drbdadm");
    fs::write(&p, script).expect("write fake drbdadm");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn calls(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Run our outdater against `rundir`; its exit code, stderr and how long it took.
fn outdater(rundir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, Duration) {
    let mut cmd = Command::new(OUTDATER);
    cmd.args(args)
        .env("HA_RUNDIR", rundir)
        .env_remove("DRBD_PEER")
        .env_remove("DRBD_RESOURCE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t0 = Instant::now();
    let (_, err, code) = run_with_timeout(&mut cmd, Duration::from_secs(30));
    (code, err, t0.elapsed())
}

#[test]
fn outdate_through_our_pair_and_unreachable_peer() {
    let tmp = TestDir::new("dopd-lo");
    let fake = tmp.path.join("fake-bin");
    fake_drbdadm(&fake);
    // The daemons' children find drbdadm on PATH, as the original's system() does. This is the
    // only test of this binary, so no other thread reads the environment meanwhile.
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);

    let addrs: [Ipv4Addr; 2] = [A, B].map(|a| a.parse().expect("address"));
    let port = free_udp_port(&addrs);
    let mut hacf = HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[A, B])).udpport(port);
    hacf.extra
        .push("respawn hacluster /usr/lib/heartbeat/dopd".into());
    hacf.extra
        .push("apiauth dopd gid=haclient uid=hacluster".into());
    let auth = Auth::lab(AuthMethod::Sha1);
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    da.write_config(&hacf, &auth, "");
    db.write_config(&hacf, &auth, "");
    let mut alice = OurNode::start(&da, None, Some(A));
    let mut bob = OurNode::start(&db, None, Some(B));
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(2),
    );
    let bob_pid = bob.pid().expect("bob runs").to_string();
    let run = da.run();

    // drbdadm's answer on bob → the outdater's exit code on alice.
    for (drbdadm_exit, want) in [(0, 4), (5, 3), (17, 6), (1, 20)] {
        fs::write(fake.join("exit"), drbdadm_exit.to_string()).expect("exit file");
        let before = calls(&fake).len();
        let (code, err, _) = outdater(&run, &["-t", "5", "-p", "bob", "-r", "r0"], &[]);
        let checked = if code == want {
            Ok(())
        } else {
            Err(format!(
                "drbdadm exit {drbdadm_exit}: outdater exited {code}, want {want}; stderr: {err}"
            ))
        };
        or_dump!(checked, alice, bob);
        let now = calls(&fake);
        assert_eq!(
            now[before..].to_vec(),
            vec![format!("{bob_pid} outdate r0")],
            "exactly one drbdadm call, by bob's daemon"
        );
    }
    // DRBD's environment instead of options.
    fs::write(fake.join("exit"), "0").expect("exit file");
    let (code, err, _) = outdater(
        &run,
        &["-t", "5"],
        &[("DRBD_PEER", "bob"), ("DRBD_RESOURCE", "r1")],
    );
    assert_eq!(code, 4, "{err}");
    assert_eq!(
        calls(&fake).last().cloned(),
        Some(format!("{bob_pid} outdate r1"))
    );
    // The log lines operators know, on both sides.
    wait_for_log(
        &alice.log(),
        "sending start_outdate message to the other node alice -> bob",
        Duration::from_secs(1),
    )
    .expect("alice logged the request");
    wait_for_log(
        &bob.log(),
        "sending return code: 4, bob -> alice",
        Duration::from_secs(1),
    )
    .expect("bob logged the answer");
    // Under the name the real dopd logs under: its path as the respawn line gives it.
    for (log, text) in [
        (alice.log(), "sending start_outdate message"),
        (bob.log(), "sending return code: 4"),
    ] {
        let lines = log_lines_from(&log, 0, text);
        assert!(
            !lines.is_empty()
                && lines
                    .iter()
                    .all(|l| l.contains(" /usr/lib/heartbeat/dopd: [")),
            "{lines:#?}"
        );
    }
    // drbdadm slower than the outdater's time limit: 5 with the original's complaint; the
    // late answer reaches nobody, and once the connection is gone a new request is served.
    fs::write(fake.join("hang"), "").expect("hang file");
    let (code, err, took) = outdater(&run, &["-t", "1", "-p", "bob", "-r", "r0"], &[]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("could not connect to dopd after 1 seconds: timeout reached"),
        "{err}"
    );
    assert!(
        took < Duration::from_millis(2500),
        "gave up after -t, took {took:?}"
    );
    fs::remove_file(fake.join("hang")).expect("hang file");
    std::thread::sleep(Duration::from_secs(3));
    let (code, err, _) = outdater(&run, &["-t", "5", "-p", "bob", "-r", "r0"], &[]);
    assert_eq!(code, 4, "{err}");
    // No peer of that name, and ourselves: unreachable at once, nothing run.
    let n = calls(&fake).len();
    assert_eq!(
        outdater(&run, &["-t", "5", "-p", "carol", "-r", "r0"], &[]).0,
        5
    );
    assert_eq!(
        outdater(&run, &["-t", "5", "-p", "alice", "-r", "r0"], &[]).0,
        5
    );
    // Usage errors.
    assert_eq!(outdater(&run, &["-t", "5", "-p", "bob"], &[]).0, 1);

    // bob dies: once alice has declared him dead the outdater says unreachable at once.
    let mark = log_mark(&alice.log());
    bob.signal(Signal::SIGKILL);
    let late = Timing::FAST.deadtime + Duration::from_secs(3);
    wait_for_log_from(&alice.log(), mark, "node bob: is dead", late).expect("bob declared dead");
    let (code, err, took) = outdater(&run, &["-t", "5", "-p", "bob", "-r", "r0"], &[]);
    assert_eq!(code, 5, "{err}");
    assert!(
        took < Duration::from_secs(4),
        "answered at once, took {took:?}"
    );
    assert_eq!(calls(&fake).len(), n, "nothing ran drbdadm");

    // No daemon at all: 5 too, with the original's complaint.
    let (code, err, _) = outdater(&tmp.path.join("nowhere"), &["-p", "bob", "-r", "r0"], &[]);
    assert_eq!(code, 5);
    assert!(
        err.contains("Could not connect to outdater channel"),
        "{err}"
    );
}
