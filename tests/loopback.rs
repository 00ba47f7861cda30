//! Our daemon against itself on loopback, without root: `alice` on 127.0.0.1 and `bob` on
//! 127.0.0.2 (`ucast lo ...`, `--bind`), a free high `udpport` per test, every file in a temp
//! dir. Plus the command-line modes that need no peer: `--check`, `-s`, `-k`.

#[macro_use]
mod common;

use std::fs;
use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";
const C: &str = "127.0.0.3";

fn loopback_addrs() -> [Ipv4Addr; 3] {
    [A, B, C].map(|a| a.parse().expect("address"))
}

/// alice and bob (and their ha.cf) in `tmp`, on a fresh port.
fn pair_dirs(tmp: &TestDir, auth: &Auth) -> (NodeDir, NodeDir, u16) {
    let port = free_udp_port(&loopback_addrs());
    let hacf = HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[A, B])).udpport(port);
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    da.write_config(&hacf, auth, "");
    db.write_config(&hacf, auth, "");
    (da, db, port)
}

/// Start both and wait until each has logged the other active, within initdead.
fn start_pair(da: &NodeDir, db: &NodeDir) -> (OurNode, OurNode) {
    let mut alice = OurNode::start(da, None, Some(A));
    let mut bob = OurNode::start(db, None, Some(B));
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(1),
    );
    (alice, bob)
}

#[test]
fn pair_kill_restart_and_wrong_key() {
    let timing = Timing::FAST;
    let tmp = TestDir::new("lo-pair");
    let auth = Auth::lab(AuthMethod::Md5);
    let (da, db, port) = pair_dirs(&tmp, &auth);
    // carol: our binary on 127.0.0.3 with another key; only her own ha.cf declares her.
    let dc = tmp.node("carol");
    let carol_cf = HaCf::new(&["alice", "bob", "carol"], &ucast_lines("lo", &[A, B])).udpport(port);
    dc.write_config(&carol_cf, &auth.wrong(), "");

    let (mut alice, mut bob) = start_pair(&da, &db);

    // The wrong key is refused by both and changes nothing.
    let (ma, mb) = (log_mark(&alice.log()), log_mark(&bob.log()));
    let mut carol = OurNode::start(&dc, None, Some(C));
    for (log, from) in [(alice.log(), ma), (bob.log(), mb)] {
        or_dump!(
            wait_for_any_log_from(&log, from, AUTH_REJECTION, Duration::from_secs(5)),
            alice,
            bob,
            carol
        );
    }
    thread::sleep(Duration::from_secs(1));
    assert!(
        carol.is_running(),
        "carol stopped by herself\n{}",
        dump(&mut [&mut carol])
    );
    carol.kill();
    for log in [alice.log(), bob.log()] {
        for needle in ["Status update for node carol", "Link carol:", "is dead"] {
            let lines = log_lines_from(&log, 0, needle);
            assert!(lines.is_empty(), "{}: {lines:#?}", log.display());
        }
    }

    // SIGKILL bob: alice declares him dead after deadtime, not before.
    settle(bob.uptime(), Timing::SETTLE);
    let ma = log_mark(&alice.log());
    let gen_before = db.generation();
    let t_kill = Instant::now();
    bob.kill();
    let late = timing.death_window().1 + Duration::from_secs(2);
    or_dump!(
        wait_for_log_from(&alice.log(), ma, "node bob: is dead", late),
        alice,
        bob
    );
    assert_death_time(t_kill.elapsed(), &timing, "alice about bob");

    // Restart bob: a new generation, recognised as a restart; both active again.
    let (ma, mb) = (log_mark(&alice.log()), log_mark(&bob.log()));
    bob.restart();
    let limit = timing.initdead + Duration::from_secs(1);
    for (log, from, needle) in [
        (alice.log(), ma, "Heartbeat restart on node bob"),
        (alice.log(), ma, "Status update for node bob: status active"),
        (bob.log(), mb, "Status update for node alice: status active"),
    ] {
        or_dump!(wait_for_log_from(&log, from, needle, limit), alice, bob);
    }
    let gen_after = db.generation();
    assert!(
        matches!((gen_before, gen_after), (Some(g0), Some(g1)) if g1 > g0),
        "hb_generation must grow across a restart: {gen_before:?} -> {gen_after:?}"
    );
    let deaths = log_lines_from(&alice.log(), 0, "is dead");
    assert_eq!(deaths.len(), 1, "alice's deaths: {deaths:#?}");
}

#[test]
fn status_while_running_then_sigterm_exits_0() {
    let tmp = TestDir::new("lo-term");
    let (da, db, _) = pair_dirs(&tmp, &Auth::lab(AuthMethod::Sha1));
    let (mut alice, mut bob) = start_pair(&da, &db);

    let pid = alice.pid().expect("alice runs");
    let argv = our_dir_args(&da);
    let argv: Vec<&str> = std::iter::once("-s")
        .chain(argv.iter().map(String::as_str))
        .collect();
    let (out, err, code) = run_our(&argv, Duration::from_secs(10));
    assert!(
        // `heartbeat OK [pid N et al] is running on HOST [NODE]...`: HOST is uname -n.
        code == 0
            && out.contains(&format!("[pid {pid} "))
            && out.contains("is running on")
            && out.contains("[alice]"),
        "heartbeat -s while running: exit {code}, stdout {out:?}, stderr {err:?}"
    );
    let pidfile = fs::read_to_string(da.run().join("heartbeat.pid")).unwrap_or_default();
    assert_eq!(pidfile.trim(), pid.to_string(), "pid file");

    // 3.0.6 defers a SIGTERM while resource work runs: nodes that start together wait 10 s
    // before taking their groups, so alice took 9.6 s to stop when signalled 3 s after start.
    for node in [&mut alice, &mut bob] {
        node.signal(Signal::SIGTERM);
        let st = node.wait_exit(Duration::from_secs(20));
        let name = node.dir.name.clone();
        assert!(
            st.is_some_and(|s| s.code() == Some(0)),
            "{name} after SIGTERM: {st:?}\n{}",
            dump(&mut [node])
        );
    }
}

#[test]
fn check_accepts_a_good_configuration() {
    let tmp = TestDir::new("lo-check-ok");
    let (da, _, _) = pair_dirs(&tmp, &Auth::lab(AuthMethod::Crc));
    let mut argv = vec!["--check".to_string()];
    argv.extend(our_dir_args(&da));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (out, err, code) = run_our(&argv, Duration::from_secs(10));
    assert_eq!(
        code, 0,
        "--check of a good config: stdout {out:?}, stderr {err:?}"
    );
}

#[test]
fn check_reports_every_error_with_its_place() {
    let tmp = TestDir::new("lo-check-bad");
    let (da, _, _) = pair_dirs(&tmp, &Auth::lab(AuthMethod::Md5));
    // Line 3 of ha.cf becomes an unknown directive; authkeys becomes group/other-readable.
    let hacf = da.conf().join("ha.cf");
    let text = fs::read_to_string(&hacf).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "bogus_directive on");
    write_file(&hacf, &(lines.join("\n") + "\n"));
    let authkeys = da.conf().join("authkeys");
    Auth::lab(AuthMethod::Md5).write(&authkeys, 0o644);

    let mut argv = vec!["--check".to_string()];
    argv.extend(our_dir_args(&da));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (out, err, code) = run_our(&argv, Duration::from_secs(10));
    let all = format!("{out}{err}");
    assert_ne!(code, 0, "--check of a broken config must fail:\n{all}");
    let at_line_3 = format!("{}:3", hacf.display());
    assert!(
        all.lines()
            .any(|l| l.contains(&at_line_3) && l.contains("bogus_directive")),
        "no `{at_line_3}` line naming bogus_directive in:\n{all}"
    );
    let keyfile = authkeys.display().to_string();
    assert!(
        all.lines()
            .any(|l| l.contains(&keyfile) && !l.contains("bogus_directive")),
        "no line about the permissions of {keyfile} in:\n{all}"
    );
}

#[test]
fn status_and_stop_when_nothing_runs() {
    let tmp = TestDir::new("lo-stopped");
    let (da, _, _) = pair_dirs(&tmp, &Auth::lab(AuthMethod::Md5));
    let dirs = our_dir_args(&da);
    let with = |flag: &'static str| -> Vec<&str> {
        std::iter::once(flag)
            .chain(dirs.iter().map(String::as_str))
            .collect()
    };

    let (out, err, code) = run_our(&with("-s"), Duration::from_secs(10));
    assert!(
        code == 3 && out.contains("heartbeat is stopped. No process"),
        "heartbeat -s with nothing running: exit {code}, stdout {out:?}, stderr {err:?}"
    );
    let (out, err, code) = run_our(&with("-k"), Duration::from_secs(10));
    assert!(
        code == 0 && err.contains("INFO: Heartbeat already stopped."),
        "heartbeat -k with nothing running: exit {code}, stdout {out:?}, stderr {err:?}"
    );
}
