//! `cl_status` against our daemon's control socket.
//!
//! * `loopback_pair` (no root): two of our nodes on 127.0.0.1/.2; `stopped` during initdead,
//!   then the sub-commands with both active, then after SIGKILL of bob;
//! * `no_daemon_and_silent_daemon` (no root): nothing listening (`stopped`, `Cannot signon`)
//!   and a socket that never answers (exit 12 after 5 s, nothing printed);
//! * `access_root_haclient_others` (root): the SO_PEERCRED rule;
//! * `beside_real_3_0_6` (root, package `heartbeat`): our node `bob` beside a real `alice`,
//!   OUR cl_status on bob against the REAL cl_status on alice for the same cluster state, then
//!   after SIGKILL of alice.

#[macro_use]
mod common;

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const CL_STATUS: &str = env!("CARGO_BIN_EXE_cl_status");
const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

/// Our cl_status with `--rundir`: (stdout, stderr with log prefixes cut to `LOG `, exit code).
fn ours(rundir: &Path, args: &[&str]) -> (String, String, i32) {
    ours_as(CL_STATUS, &[], rundir, args)
}

/// The same, run as another user through `setpriv PRIV...` when `privs` is not empty.
fn ours_as(bin: &str, privs: &[&str], rundir: &Path, args: &[&str]) -> (String, String, i32) {
    let mut cmd = if privs.is_empty() {
        Command::new(bin)
    } else {
        let mut c = Command::new("setpriv");
        c.args(privs).arg(bin);
        c
    };
    cmd.arg("--rundir").arg(rundir).args(args);
    let (out, err, code) = run_with_timeout(&mut cmd, Duration::from_secs(10));
    (out, strip_log_prefix(&err), code)
}

/// `Nov 22 22:02:40 alice cl_status: [22424]: ERROR: x` → `LOG ERROR: x`; other lines as is.
fn strip_log_prefix(err: &str) -> String {
    err.lines()
        .map(|l| {
            match l
                .find("cl_status: [")
                .and_then(|i| l[i..].find("]: ").map(|j| i + j + 3))
            {
                Some(k) => format!("LOG {}\n", &l[k..]),
                None => format!("{l}\n"),
            }
        })
        .collect()
}

/// Wait until our cl_status on `rundir` answers `nodestatus node` with `want`.
fn wait_our_nodestatus(
    rundir: &Path,
    node: &str,
    want: &str,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let (out, err, code) = ours(rundir, &["nodestatus", node]);
        if out.trim() == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "our cl_status nodestatus {node}: {out:?} {err:?} exit {code}, want {want:?}"
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_socket(rundir: &Path, limit: Duration) -> Result<(), String> {
    let sock = rundir.join("heartbeat/control");
    let deadline = Instant::now() + limit;
    while !sock.exists() {
        if Instant::now() > deadline {
            return Err(format!("{} did not appear", sock.display()));
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn expect(got: (String, String, i32), out: &str, err: &str, code: i32, what: &str) {
    assert_eq!(
        got,
        (out.to_string(), err.to_string(), code),
        "cl_status {what}"
    );
}

const SIGNON: &str = "LOG ERROR: Cannot signon with heartbeat\n\
                      LOG ERROR: REASON: hb_api_signon: Can't initiate connection to heartbeat\n";

#[test]
fn loopback_pair() {
    let timing = Timing::FAST;
    let tmp = TestDir::new("cls-lo");
    let port = free_udp_port(&[A, B].map(|a| a.parse::<Ipv4Addr>().expect("addr")));
    let hacf = HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[A, B])).udpport(port);
    let auth = Auth::lab(AuthMethod::Md5);
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    da.write_config(&hacf, &auth, "");
    db.write_config(&hacf, &auth, "");
    let run_a = da.run();

    // alice alone: the daemon runs, but like 3.0.6 it serves nothing before comm-up.
    let mut alice = OurNode::start(&da, None, Some(A));
    or_dump!(wait_for_socket(&run_a, Duration::from_secs(5)), alice);
    let mode = fs::metadata(run_a.join("heartbeat/control"))
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o666, "control socket mode");
    expect(
        ours(&run_a, &["hbstatus"]),
        "Heartbeat is stopped on this machine.\n",
        "",
        1,
        "hbstatus during initdead",
    );
    expect(
        ours(&run_a, &["nodestatus", "alice"]),
        "",
        SIGNON,
        1,
        "nodestatus during initdead",
    );

    let mut bob = OurNode::start(&db, None, Some(B));
    let limit = timing.initdead + Duration::from_secs(2);
    or_dump!(
        wait_our_nodestatus(&run_a, "bob", "active", limit),
        alice,
        bob
    );
    or_dump!(
        wait_our_nodestatus(&db.run(), "alice", "active", limit),
        alice,
        bob
    );
    // Links: alice hears herself and bob on `lo` (one link for both ucast lines).
    let both_up = "\nbob\tactive\t(nodetype: normal)\n\tlo\tup\n\
                   \nalice\tactive\t(nodetype: normal)\n\tlo\tup\n";
    let version = format!(
        "version:\t3.0.6 (heartbeat-rs {})\nmanaged by:\t\"haresources\"\n",
        env!("CARGO_PKG_VERSION")
    );
    let cases: Vec<(Vec<&str>, String, &str, i32)> = vec![
        (
            vec!["hbstatus"],
            "Heartbeat is running on this machine.\n".into(),
            "",
            0,
        ),
        (vec!["hbstatus", "-v"], format!("{version}{both_up}"), "", 0),
        (vec!["listnodes"], "bob\nalice\n".into(), "", 0),
        (vec!["listnodes", "-p"], String::new(), "", 0),
        (vec!["listnodes", "-v"], both_up.into(), "", 0),
        (vec!["nodestatus", "bob"], "active\n".into(), "", 0),
        (
            vec!["nodestatus", "-m", "alice"],
            "The cluster node alice is active\n".into(),
            "",
            0,
        ),
        (
            vec!["nodestatus", "carol"],
            String::new(),
            "Error. May be due to incorrect node name\n",
            11,
        ),
        (vec!["nodetype", "bob"], "normal\n".into(), "", 0),
        (vec!["listhblinks", "alice"], "\tlo\n".into(), "", 0),
        (vec!["listhblinks", "-v", "bob"], "\tlo\tup\n".into(), "", 0),
        (vec!["hblinkstatus", "bob", "lo"], "up\n".into(), "", 0),
        (vec!["hblinkstatus", "alice", "lo"], "up\n".into(), "", 0),
        (
            vec!["hbparameter", "-p", "keepalive"],
            "500ms\n".into(),
            "",
            0,
        ),
        (
            vec!["hbparameter", "-p", "deadtime"],
            "3000ms\n".into(),
            "",
            0,
        ),
        (
            vec!["hbparameter", "-p", "udpport"],
            format!("{port}\n"),
            "",
            0,
        ),
        (
            vec!["hbparameter", "-p", "auto_failback"],
            "off\n".into(),
            "",
            0,
        ),
        (
            vec!["hbparameter", "-p", "nice_failback"],
            String::new(),
            "LOG ERROR: Cannot get parameter nice_failback's value\nLOG ERROR: REASON: \n",
            1,
        ),
        // auto_failback off, both nodes just started: two of ours skip the 10 s negotiation
        // (quick start; two 3.0.6 nodes say `transition` for those 10 s) and hold their own
        // (empty) set at once.
        (vec!["rscstatus"], "local\n".into(), "", 0),
        (
            vec!["clientstatus", "alice", "ipfail"],
            "offline\n".into(),
            "",
            1,
        ),
        (
            vec!["test"],
            "Dead time: 3000\n keeplive time: 500\n mynodeid: alice\n rsc: local\n".into(),
            "",
            0,
        ),
        (
            vec!["bogus"],
            String::new(),
            "LOG ERROR: bogus: invalid sub-command.\n",
            11,
        ),
    ];
    for (args, out, err, code) in &cases {
        let got = ours(&run_a, args);
        if got != (out.clone(), err.to_string(), *code) {
            panic!(
                "cl_status {args:?}: got {got:?}, want {:?}\n{}",
                (out, err, code),
                dump(&mut [&mut alice, &mut bob])
            );
        }
    }
    // bob sees the same from his side.
    expect(
        ours(&db.run(), &["listnodes"]),
        "bob\nalice\n",
        "",
        0,
        "listnodes on bob",
    );
    expect(
        ours(&db.run(), &["test"]),
        "Dead time: 3000\n keeplive time: 500\n mynodeid: bob\n rsc: local\n",
        "",
        0,
        "test on bob",
    );

    // SIGKILL bob: alice says dead once she has declared him dead.
    let ma = log_mark(&alice.log());
    bob.kill();
    let late = timing.death_window().1 + Duration::from_secs(2);
    or_dump!(
        wait_for_log_from(&alice.log(), ma, "node bob: is dead", late),
        alice
    );
    expect(
        ours(&run_a, &["nodestatus", "bob"]),
        "dead\n",
        "",
        1,
        "nodestatus bob (dead)",
    );
    expect(
        ours(&run_a, &["hblinkstatus", "-m", "bob", "lo"]),
        "The node bob's heartbeat link lo is dead\n",
        "",
        1,
        "hblinkstatus bob lo (dead)",
    );
    expect(
        ours(&run_a, &["listnodes", "-v"]),
        "\nbob\tdead\t(nodetype: normal)\n\tlo\tdead\n\
         \nalice\tactive\t(nodetype: normal)\n\tlo\tup\n",
        "",
        0,
        "listnodes -v (bob dead)",
    );
    expect(
        ours(&run_a, &["clientstatus", "bob", "x"]),
        "offline\n",
        "",
        1,
        "clientstatus",
    );

    // Stopped: the socket goes away with the daemon.
    alice.signal(nix::sys::signal::Signal::SIGTERM);
    let st = alice.wait_exit(Duration::from_secs(20));
    assert!(st.is_some(), "alice did not stop");
    assert!(
        !run_a.join("heartbeat/control").exists(),
        "control socket left behind"
    );
    expect(
        ours(&run_a, &["hbstatus", "-v"]),
        "Heartbeat is stopped on this machine.\n\
         (hb_api_signon: Can't initiate connection to heartbeat)\n",
        "",
        1,
        "hbstatus -v after stop",
    );
}

#[test]
fn no_daemon_and_silent_daemon() {
    let tmp = TestDir::new("cls-none");
    let run = tmp.path.join("run");
    expect(
        ours(&run, &["hbstatus"]),
        "Heartbeat is stopped on this machine.\n",
        "",
        1,
        "hbstatus, nothing running",
    );
    expect(
        ours(&run, &["listnodes"]),
        "",
        SIGNON,
        1,
        "listnodes, nothing running",
    );
    // HA_RUNDIR names the run directory too; no arguments: the usage screen.
    let (out, err, code) = run_with_timeout(
        Command::new(CL_STATUS)
            .env("HA_RUNDIR", &run)
            .arg("rscstatus"),
        Duration::from_secs(10),
    );
    assert_eq!(
        (out.as_str(), strip_log_prefix(&err), code),
        ("", SIGNON.to_string(), 1)
    );
    let (out, _, code) = run_with_timeout(&mut Command::new(CL_STATUS), Duration::from_secs(10));
    assert!(out.starts_with("Usage: cl_status <sub-command> [<options>] [<parameters>]\n"));
    assert_eq!(code, 0);

    // Something listens but never answers: 5 s, then exit 12 without a word.
    let dir = run.join("heartbeat");
    fs::create_dir_all(&dir).expect("mkdir");
    let listener = std::os::unix::net::UnixListener::bind(dir.join("control")).expect("bind");
    let t0 = Instant::now();
    let got = ours(&run, &["nodestatus", "alice"]);
    let took = t0.elapsed();
    drop(listener);
    assert_eq!(got, (String::new(), String::new(), 12), "silent daemon");
    assert!(
        took >= Duration::from_millis(4900) && took < Duration::from_secs(8),
        "gave up after {took:?}"
    );
}

/// A copy of our cl_status that any user can run, in a directory any user can enter.
fn world_runnable_copy(tmp: &TestDir) -> PathBuf {
    let dir = tmp.path.join("bin");
    fs::create_dir_all(&dir).expect("mkdir");
    for d in [&tmp.path, &dir] {
        let _ = fs::set_permissions(d, fs::Permissions::from_mode(0o755));
    }
    let bin = dir.join("cl_status");
    fs::copy(CL_STATUS, &bin).expect("copy cl_status");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

#[test]
fn access_root_haclient_others() {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("HB_REQUIRE_INTEROP=1 but access_root_haclient_others needs root");
        }
        {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: cl_status::access_root_haclient_others needs root"
            );
        }
        return;
    }
    // A one-node cluster is up at once.
    let tmp = TestDir::new("cls-acc");
    let port = free_udp_port(&[A.parse::<Ipv4Addr>().expect("addr")]);
    let hacf = HaCf::new(&["solo"], &ucast_lines("lo", &[A])).udpport(port);
    let ds = tmp.node("solo");
    ds.write_config(&hacf, &Auth::lab(AuthMethod::Sha1), "");
    let mut solo = OurNode::start(&ds, None, Some(A));
    let run = ds.run();
    for d in [&tmp.path, &ds.root, &run] {
        let _ = fs::set_permissions(d, fs::Permissions::from_mode(0o755));
    }
    or_dump!(
        wait_our_nodestatus(&run, "solo", "active", Duration::from_secs(10)),
        solo
    );
    let bin = world_runnable_copy(&tmp);
    let bin = bin.to_str().expect("utf-8 path");
    let nobody = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];
    expect(
        ours_as(bin, &nobody, &run, &["hbstatus"]),
        "Heartbeat is apparently running on this machine, but refuses my connection\n",
        "",
        0,
        "hbstatus as nobody",
    );
    expect(
        ours_as(bin, &nobody, &run, &["hbstatus", "-v"]),
        "Heartbeat is apparently running on this machine, but refuses my connection\n\
         (client failed authorization)\n",
        "",
        0,
        "hbstatus -v as nobody",
    );
    expect(
        ours_as(bin, &nobody, &run, &["listnodes"]),
        "",
        "LOG ERROR: Cannot signon with heartbeat\nLOG ERROR: REASON: client failed authorization\n",
        1,
        "listnodes as nobody",
    );
    if nix::unistd::Group::from_name("haclient")
        .ok()
        .flatten()
        .is_some()
    {
        for privs in [
            ["--reuid=nobody", "--regid=nogroup", "--groups=haclient"],
            ["--reuid=nobody", "--regid=haclient", "--clear-groups"],
        ] {
            expect(
                ours_as(bin, &privs, &run, &["listnodes"]),
                "solo\n",
                "",
                0,
                &format!("listnodes with {privs:?}"),
            );
        }
    } else {
        eprintln!("note: no group haclient here; only root and nobody were tried");
    }
    expect(
        ours(&run, &["listnodes"]),
        "solo\n",
        "",
        0,
        "listnodes as root",
    );
}

// ---------------------------------------------------------------------------------------------
// Beside the real 3.0.6

/// The real cl_status inside `node`'s namespaces: (stdout, stderr cut like ours, exit code).
fn real(node: &RealNode, args: &[&str]) -> (String, String, i32) {
    let Some(pid) = node.pid() else {
        return (String::new(), "real node not running".into(), -1);
    };
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid.to_string(), "-n", "-m", "-u", "cl_status"])
        .args(args);
    let (out, err, code) = run_with_timeout(&mut cmd, Duration::from_secs(10));
    (out, strip_log_prefix(&err), code)
}

/// alice <-> bob.
fn swap(s: &str) -> String {
    s.replace("alice", "\u{1}")
        .replace("bob", "alice")
        .replace('\u{1}', "bob")
}

/// `3.0.6 (node: <hash>)` and `3.0.6 (heartbeat-rs x.y.z)` both become `3.0.6 (...)`.
fn same_version(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("3.0.6 (") {
        out.push_str(&rest[..i + 7]);
        rest = &rest[i + 7..];
        match rest.find(')') {
            Some(j) => {
                out.push_str("...");
                rest = &rest[j..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// A second veth pair, `hb1` on both sides (NET2.1 / NET2.2), for a second link name.
fn add_hb1(lab: &NetnsPair, net2: &str) {
    let p = &lab.prefix;
    let (a, b) = (lab.ns_a(), lab.ns_b());
    let steps = [
        format!("link add {p}-wa type veth peer name {p}-wb"),
        format!("link set {p}-wa netns {a}"),
        format!("link set {p}-wb netns {b}"),
        format!("-n {a} link set {p}-wa name hb1"),
        format!("-n {b} link set {p}-wb name hb1"),
        format!("-n {a} addr add {net2}.1/24 brd {net2}.255 dev hb1"),
        format!("-n {b} addr add {net2}.2/24 brd {net2}.255 dev hb1"),
        format!("-n {a} link set hb1 up"),
        format!("-n {b} link set hb1 up"),
    ];
    for s in steps {
        let argv: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        run_ok("ip", &argv).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn beside_real_3_0_6() {
    if !require_root_or_skip("cl_status::beside_real_3_0_6") {
        return;
    }
    let timing = Timing::FAST;
    let lab = NetnsPair::new("hbl-cls", "10.250.61");
    add_hb1(&lab, "10.250.62");
    let tmp = TestDir::new("cls-real");
    let mut media = ucast_lines("hb0", &[&lab.addr_a(), &lab.addr_b()]);
    media.push("bcast hb1".into());
    let hacf = HaCf::new(&["alice", "bob"], &media);
    let auth = Auth::lab(AuthMethod::Md5);
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    da.write_config(&hacf, &auth, "");
    db.write_config(&hacf, &auth, "");
    let run_b = db.run();

    // Our bob first: running, but in initdead, so "stopped" like 3.0.6.
    let mut bob = OurNode::start(&db, Some(&lab.ns_b()), None);
    or_dump!(wait_for_socket(&run_b, Duration::from_secs(5)), bob);
    expect(
        ours(&run_b, &["hbstatus"]),
        "Heartbeat is stopped on this machine.\n",
        "",
        1,
        "our hbstatus during initdead",
    );
    let mut alice = RealNode::start(&da, &lab.ns_a());
    let limit = timing.initdead + Duration::from_secs(2);
    or_dump!(
        wait_real_nodestatus(&alice, "bob", "active", limit),
        alice,
        bob
    );
    or_dump!(
        wait_our_nodestatus(&run_b, "alice", "active", limit),
        alice,
        bob
    );
    // Let the links settle on both sides (each must have heard itself and the other on both).
    let settled = |args: &[&str]| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = real(&alice, args);
            let o = ours(&run_b, args);
            if (r == o && !r.0.contains("dead")) || Instant::now() > deadline {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
    };
    settled(&["listnodes", "-v"]);

    // The same cluster state from each node's own point of view: our output on bob with the
    // names swapped must be the real output on alice. Lists (node order is the declaration
    // order, the same on both) are compared as they are.
    let per_node: &[&[&str]] = &[
        &["nodestatus", "alice"],
        &["nodestatus", "bob"],
        &["nodestatus", "-m", "bob"],
        &["nodestatus", "carol"],
        &["nodestatus"],
        &["nodetype", "alice"],
        &["nodetype", "-m", "bob"],
        &["nodetype"],
        &["nodeweight", "alice"],
        &["nodesite", "-m", "bob"],
        &["listhblinks", "alice"],
        &["listhblinks", "bob"],
        &["listhblinks", "-v", "alice"],
        &["listhblinks", "-v", "bob"],
        &["listhblinks", "-m", "-v", "bob"],
        &["listhblinks", "carol"],
        &["hblinkstatus", "alice", "hb0"],
        &["hblinkstatus", "bob", "hb0"],
        &["hblinkstatus", "alice", "hb1"],
        &["hblinkstatus", "-m", "bob", "hb1"],
        &["hblinkstatus", "bob", "eth9"],
        &["hblinkstatus", "bob"],
        &["clientstatus", "alice", "cl_status"],
        &["test"],
    ];
    let lists: &[&[&str]] = &[
        &["hbstatus"],
        &["hbstatus", "-v"],
        &["hbstatus", "-m", "-v"],
        &["hbstatus", "-x"],
        &["listnodes"],
        &["listnodes", "-v"],
        &["listnodes", "-m", "-v"],
        &["listnodes", "-n"],
        &["listnodes", "-p"],
        &["listnodes", "-h"],
        &["hbparameter", "-p", "deadtime"],
        &["hbparameter", "-p", "keepalive"],
        &["hbparameter", "-p", "warntime"],
        &["hbparameter", "-p", "initdead"],
        &["hbparameter", "-p", "udpport"],
        &["hbparameter", "-p", "auto_failback"],
        &["hbparameter", "-p", "deadping"],
        &["hbparameter", "-p", "crm"],
        &["hbparameter", "-p", "debug"],
        &["hbparameter", "-p", "hbversion"],
        &["hbparameter", "-p", "nice_failback"],
        &["hbparameter", "-m", "-p", "deadtime"],
        &["hbparameter"],
        &["hbparameter", "-p"],
        &["rscstatus", "-v"],
        &["bogus"],
        &[],
    ];
    let mut diffs = Vec::new();
    for (args, swapped) in per_node
        .iter()
        .map(|a| (*a, true))
        .chain(lists.iter().map(|a| (*a, false)))
    {
        let want = real(&alice, args);
        let (got_args, norm): (Vec<String>, fn(&str) -> String) = if swapped {
            (args.iter().map(|a| swap(a)).collect(), swap)
        } else {
            (args.iter().map(|a| a.to_string()).collect(), str::to_string)
        };
        let got_args: Vec<&str> = got_args.iter().map(String::as_str).collect();
        let (o, e, c) = ours(&run_b, &got_args);
        let got = (same_version(&norm(&o)), norm(&e), c);
        let want = (same_version(&want.0), want.1, want.2);
        // `test`'s rsc line: resources are not managed by our node yet.
        let (got, want) = if args == ["test"] {
            let cut = |s: &str| s.lines().take(3).collect::<Vec<_>>().join("\n");
            ((cut(&got.0), got.1, got.2), (cut(&want.0), want.1, want.2))
        } else {
            (got, want)
        };
        if got != want {
            diffs.push(format!(
                "cl_status {args:?}:\n  real {want:?}\n  ours {got:?}"
            ));
        }
    }
    if !diffs.is_empty() {
        panic!(
            "{} differences:\n{}\n{}",
            diffs.len(),
            diffs.join("\n"),
            dump(&mut [&mut alice, &mut bob])
        );
    }

    // SIGKILL the real alice: our bob says dead once deadtime is over.
    let mb = log_mark(&bob.log());
    alice.kill();
    let late = timing.death_window().1 + Duration::from_secs(2);
    or_dump!(
        wait_for_log_from(&bob.log(), mb, "node alice: is dead", late),
        bob
    );
    // What the real tool printed in the lab about a dead peer (admin.md §6.2), names swapped.
    expect(
        ours(&run_b, &["nodestatus", "alice"]),
        "dead\n",
        "",
        1,
        "nodestatus alice",
    );
    expect(
        ours(&run_b, &["nodestatus", "-m", "alice"]),
        "The cluster node alice is dead\n",
        "",
        1,
        "nodestatus -m alice",
    );
    expect(
        ours(&run_b, &["hblinkstatus", "alice", "hb0"]),
        "dead\n",
        "",
        1,
        "hblinkstatus alice hb0",
    );
    expect(
        ours(&run_b, &["listhblinks", "-v", "alice"]),
        "\thb1\tdead\n\thb0\tdead\n",
        "",
        0,
        "listhblinks -v alice",
    );
    let (out, _, code) = ours(&run_b, &["hbstatus", "-v"]);
    assert_eq!(
        (same_version(&out), code),
        (
            "version:\t3.0.6 (...)\nmanaged by:\t\"haresources\"\n\
             \nbob\tactive\t(nodetype: normal)\n\thb1\tup\n\thb0\tup\n\
             \nalice\tdead\t(nodetype: normal)\n\thb1\tdead\n\thb0\tdead\n"
                .to_string(),
            0
        ),
        "hbstatus -v after alice's death"
    );
    expect(
        ours(&run_b, &["clientstatus", "alice", "ipfail"]),
        "offline\n",
        "",
        1,
        "clientstatus of a dead node",
    );
}
