//! The daemon's operator surface on loopback, without root: SIGHUP reloads (good and broken
//! files), SIGUSR1/SIGUSR2 debug levels, daemonizing by default with `-k` to stop it.

#[macro_use]
mod common;

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

fn pair(tmp: &TestDir) -> (NodeDir, NodeDir, HaCf) {
    let addrs: [Ipv4Addr; 2] = [A, B].map(|a| a.parse().expect("address"));
    let port = free_udp_port(&addrs);
    let hacf = HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[A, B])).udpport(port);
    let auth = Auth::lab(AuthMethod::Sha1);
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    da.write_config(&hacf, &auth, "");
    db.write_config(&hacf, &auth, "");
    (da, db, hacf)
}

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
fn sighup_with_broken_files_keeps_running_then_good_change_applies() {
    let tmp = TestDir::new("ops-hup");
    let (da, db, _) = pair(&tmp);
    let (mut alice, mut bob) = start_pair(&da, &db);
    let hacf_path = da.conf().join("ha.cf");
    let good = fs::read_to_string(&hacf_path).expect("ha.cf");

    // A broken ha.cf: alice says why and keeps her configuration and her place in the cluster.
    let mark = log_mark(&alice.log());
    write_file(&hacf_path, &format!("{good}frobnicate yes\n"));
    alice.signal(Signal::SIGHUP);
    or_dump!(
        wait_for_log_from(
            &alice.log(),
            mark,
            "keeping the running configuration",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    let lines = log_lines_from(&alice.log(), mark, "Illegal directive [frobnicate]");
    assert!(!lines.is_empty(), "the reason is logged");

    // A group-readable authkeys: the same.
    write_file(&hacf_path, &good);
    let ak = da.conf().join("authkeys");
    fs::set_permissions(&ak, fs::Permissions::from_mode(0o644)).expect("chmod");
    let mark = log_mark(&alice.log());
    alice.signal(Signal::SIGHUP);
    or_dump!(
        wait_for_log_from(
            &alice.log(),
            mark,
            "Bad permissions on keyfile",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    or_dump!(
        wait_for_log_from(
            &alice.log(),
            mark,
            "keeping the running configuration",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    fs::set_permissions(&ak, fs::Permissions::from_mode(0o600)).expect("chmod");

    // Longer than bob's deadtime: alice is still alive for him, and for her he still is.
    let mb = log_mark(&bob.log());
    thread::sleep(Timing::FAST.deadtime + Duration::from_secs(1));
    assert!(alice.is_running() && bob.is_running());
    assert!(
        log_lines_from(&bob.log(), mb, "is dead").is_empty(),
        "bob declared alice dead after her failed reload"
    );

    // Unchanged files: said so. A real change: applied.
    let mark = log_mark(&alice.log());
    alice.signal(Signal::SIGHUP);
    or_dump!(
        wait_for_log_from(
            &alice.log(),
            mark,
            "Configuration unchanged.",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    write_file(
        &hacf_path,
        &good.replace("warntime 2000ms", "warntime 2500ms"),
    );
    let mark = log_mark(&alice.log());
    alice.signal(Signal::SIGHUP);
    or_dump!(
        wait_for_log_from(
            &alice.log(),
            mark,
            "Configuration reloaded.",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    thread::sleep(Duration::from_secs(1));
    assert!(log_lines_from(&bob.log(), mb, "is dead").is_empty());
}

#[test]
fn usr1_usr2_change_the_debug_level() {
    let tmp = TestDir::new("ops-usr");
    let (da, db, _) = pair(&tmp);
    let (mut alice, mut bob) = start_pair(&da, &db);
    alice.signal(Signal::SIGUSR1);
    or_dump!(
        wait_for_log(
            &da.debug_log(),
            "debug now set to 1",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    thread::sleep(Duration::from_millis(200));
    alice.signal(Signal::SIGUSR1);
    or_dump!(
        wait_for_log(
            &da.debug_log(),
            "debug now set to 2",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    thread::sleep(Duration::from_millis(200));
    alice.signal(Signal::SIGUSR2);
    thread::sleep(Duration::from_millis(200));
    alice.signal(Signal::SIGUSR2);
    thread::sleep(Duration::from_millis(500));
    // Debug lines never reach the normal log file.
    assert!(log_lines_from(&da.log(), 0, "debug now set").is_empty());
    assert!(alice.is_running());
}

#[test]
fn daemonizes_by_default_and_k_stops_it() {
    let tmp = TestDir::new("ops-daemon");
    let (da, db, _) = pair(&tmp);
    let mut bob = OurNode::start(&db, None, Some(B));
    let mut argv: Vec<String> = our_dir_args(&da);
    argv.extend(["--bind".to_string(), A.to_string()]);
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let t0 = Instant::now();
    let (_, err, code) = run_our(&args, Duration::from_secs(10));
    assert_eq!(
        code, 0,
        "the parent exits 0 once the daemon is forked: {err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    // The daemon writes its pid file after the fork, as 3.0.6 does: the parent may be faster.
    let pidfile = da.run().join("heartbeat.pid");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pidfile.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let pid: i32 = fs::read_to_string(&pidfile)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert!(pid > 1);
    let limit = Timing::FAST.initdead + Duration::from_secs(1);
    or_dump!(
        wait_for_log(
            &db.log(),
            "Status update for node alice: status active",
            limit
        ),
        bob
    );

    let mut st: Vec<&str> = vec!["-s"];
    st.extend(args.iter().take(8));
    let (out, _, code) = run_our(&st, Duration::from_secs(5));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("pid {pid}")), "{out}");

    let mut k: Vec<&str> = vec!["-k"];
    k.extend(args.iter().take(8));
    let (out, err, code) = run_our(&k, Duration::from_secs(20));
    assert_eq!(code, 0, "{out}{err}");
    // Reparented away from us, the daemon may linger as a zombie until its new parent reaps it.
    let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let running = state
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next())
        .is_some_and(|s| s != "Z");
    assert!(!running, "daemon still running after -k: {state}");
    or_dump!(
        wait_for_log(
            &da.log(),
            "alice Heartbeat shutdown complete.",
            Duration::from_secs(2)
        ),
        bob
    );
    or_dump!(
        wait_for_log(
            &db.log(),
            "Received shutdown notice from 'alice'.",
            Duration::from_secs(2)
        ),
        bob
    );
    assert!(bob.is_running());
}

#[test]
fn what_scripts_write_into_the_fifo_reaches_the_cluster() {
    let tmp = TestDir::new("ops-fifo");
    let (da, db, mut hacf) = pair(&tmp);
    hacf.extra.push("debug 1".into());
    let auth = Auth::lab(AuthMethod::Sha1);
    da.write_config(&hacf, &auth, "");
    db.write_config(&hacf, &auth, "");
    let (mut alice, mut bob) = start_pair(&da, &db);
    let fifo = da.state().join("fifo");
    // As `ha_clustermsg` writes it: a classic block; the daemon adds src, seq and the rest.
    fs::write(&fifo, ">>>\nt=fifotest\ninfo=hello\n<<<\n").expect("write fifo");
    or_dump!(
        wait_for_log(
            &db.debug_log(),
            "received fifotest message from alice",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
}

#[test]
fn watchdog_is_tickled_per_status_and_disarmed_on_a_graceful_stop() {
    let tmp = TestDir::new("ops-wd");
    let (da, db, hacf) = pair(&tmp);
    let auth = Auth::lab(AuthMethod::Sha1);
    // A plain file stands in for /dev/watchdog, as in the spec's lab (the ioctl fails, logged).
    let (wa, wb) = (tmp.path.join("wd-alice"), tmp.path.join("wd-bob"));
    for (dir, wd) in [(&da, &wa), (&db, &wb)] {
        fs::write(wd, b"").expect("watchdog file");
        let mut cf = hacf.clone();
        cf.extra.push(format!("watchdog {}", wd.display()));
        dir.write_config(&cf, &auth, "");
    }
    let (mut alice, mut bob) = start_pair(&da, &db);
    assert!(!log_lines_from(&alice.log(), 0, "Using watchdog device:").is_empty());
    thread::sleep(Duration::from_millis(1600));
    let tickles = fs::read(&wa).expect("read");
    // keepalive 500 ms: the start-up status messages plus about three a second since.
    assert!(
        tickles.len() >= 4 && tickles.iter().all(|&b| b == 0),
        "{tickles:?}"
    );
    alice.signal(Signal::SIGTERM);
    assert!(alice
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|st| st.success()));
    assert_eq!(
        fs::read(&wa).expect("read").last(),
        Some(&b'V'),
        "disarmed on a graceful stop"
    );
    bob.kill();
    assert_eq!(
        fs::read(&wb).expect("read").last(),
        Some(&0),
        "a killed daemon leaves it armed"
    );
}

#[test]
fn respawn_clients_start_at_comm_up_restart_and_stop_with_the_daemon() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TestDir::new("ops-respawn");
    let (da, db, hacf) = pair(&tmp);
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .expect("user")
        .expect("user")
        .name;
    let script = |name: &str, body: &str| {
        let p = tmp.path.join(name);
        fs::write(
            &p,
            format!("#!/bin/sh\necho $$ >> {}.runs\n{body}\n", p.display()),
        )
        .expect("script");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    };
    let flaky = script("flaky", "exit 3");
    let done = script("done", "exit 100");
    let steady = script("steady", "exec sleep 1000");
    let mut cf = hacf.clone();
    for s in [&flaky, &done, &steady] {
        cf.extra.push(format!("respawn {me} {}", s.display()));
    }
    da.write_config(&cf, &Auth::lab(AuthMethod::Sha1), "");
    let (mut alice, mut bob) = start_pair(&da, &db);
    let runs = |p: &std::path::Path| -> Vec<i32> {
        fs::read_to_string(format!("{}.runs", p.display()))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    or_dump!(
        wait_for_log(&alice.log(), "Respawning client", Duration::from_secs(5)),
        alice,
        bob
    );
    thread::sleep(Duration::from_millis(2500));
    assert!(
        runs(&flaky).len() >= 2,
        "a client that dies is started again"
    );
    assert_eq!(runs(&done).len(), 1, "exit code 100 means: do not restart");
    let steady_pid = *runs(&steady).first().expect("steady client ran");
    assert!(std::path::Path::new(&format!("/proc/{steady_pid}")).exists());
    alice.signal(Signal::SIGTERM);
    assert!(alice
        .wait_exit(Duration::from_secs(15))
        .is_some_and(|st| st.success()));
    let state = fs::read_to_string(format!("/proc/{steady_pid}/stat")).unwrap_or_default();
    let alive = state
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next())
        .is_some_and(|s| s != "Z");
    assert!(!alive, "the client is stopped with the daemon");
}
