//! dopd in a mixed pair, as root in network namespaces (prefix `dopd`, 10.250.97.0/24): the
//! real Heartbeat 3.0.6 `alice` runs the real dopd (`respawn hacluster
//! /usr/libexec/heartbeat/dopd`, `apiauth dopd ...`), our `bob` the built-in one from the
//! same lines. A fake `drbdadm` first on PATH (inherited by both daemons and their children)
//! records each call with the network namespace it ran in and exits with the code the test
//! chose.
//!
//! 1. our `drbd-peer-outdater` on bob outdates alice's r0: the real dopd runs the fake in
//!    alice's namespace, bob's tool exits 4 (and 6 when drbdadm says 17: primary);
//! 2. the real `drbd-peer-outdater` on alice, against the real dopd, outdates bob's r0: our
//!    daemon runs the fake in bob's namespace, the real tool exits 4;
//! 3. heartbeat traffic dropped both ways (nftables in bob's namespace): once each side has
//!    declared the other dead, both tools exit 5 and nothing more runs.
//!
//! Without root (or the heartbeat package): SKIP; with HB_REQUIRE_INTEROP=1 that fails.

#[macro_use]
mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const OUTDATER: &str = env!("CARGO_BIN_EXE_drbd-peer-outdater");
const REAL_DOPD: &str = "/usr/libexec/heartbeat/dopd";
const REAL_OUTDATER: &str = "/usr/libexec/heartbeat/drbd-peer-outdater";

/// A `drbdadm` that appends `<net namespace> <args>` to `<dir>/calls` and exits with the
/// number in `<dir>/exit`. The real dopd runs it as hacluster: everything is world-writable.
fn fake_drbdadm(dir: &Path) {
    fs::create_dir_all(dir).expect("fake dir");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).expect("chmod dir");
    let script = format!(
        "#!/bin/sh\necho \"$(readlink /proc/self/ns/net) $*\" >> '{d}/calls'\nexit $(cat '{d}/exit' 2>/dev/null || echo 0)\n",
        d = dir.display()
    );
    let p = dir.join("drbdadm");
    fs::write(&p, script).expect("write fake drbdadm");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
    for f in ["calls", "exit"] {
        fs::write(dir.join(f), "").expect("touch");
        fs::set_permissions(dir.join(f), fs::Permissions::from_mode(0o666)).expect("chmod");
    }
}

fn calls(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn netns_of(pid: i32) -> String {
    fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Drop heartbeat's UDP both ways in `netns` (or stop dropping).
fn partition(netns: &str, on: bool) {
    let _ = Command::new("ip")
        .args([
            "netns", "exec", netns, "nft", "delete", "table", "inet", "dopdtest",
        ])
        .stderr(Stdio::null())
        .status();
    if !on {
        return;
    }
    let rules = "table inet dopdtest {\n  chain in {\n    type filter hook input priority 0; policy accept;\n    udp dport 694 drop\n  }\n  chain out {\n    type filter hook output priority 0; policy accept;\n    udp dport 694 drop\n  }\n}\n";
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(rules.as_bytes()).expect("rules");
    drop(stdin);
    assert!(child.wait().expect("nft").success(), "nft in {netns}");
}

/// Our outdater on our node (`rundir` is its run directory).
fn ours(netns: &str, rundir: &Path, peer: &str) -> (i32, String) {
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns", "exec", netns, OUTDATER, "-t", "5", "-p", peer, "-r", "r0",
    ])
    .env("HA_RUNDIR", rundir);
    let (_, err, code) = run_with_timeout(&mut cmd, Duration::from_secs(30));
    (code, err)
}

/// The real outdater inside the real node's namespaces (its dopd's socket is in its /run).
fn real(node: &RealNode, peer: &str) -> (i32, String) {
    let Some(pid) = node.ns_pid() else {
        return (-1, "real node not running".into());
    };
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid.to_string(), "-n", "-m", "-u", REAL_OUTDATER])
        .args(["-t", "5", "-p", peer, "-r", "r0"]);
    let (_, err, code) = run_with_timeout(&mut cmd, Duration::from_secs(30));
    (code, err)
}

#[test]
fn mixed_pair_real_dopd() {
    if !require_root_or_skip("dopd_interop::mixed_pair_real_dopd") {
        return;
    }
    for p in [REAL_DOPD, REAL_OUTDATER, "/usr/sbin/nft"] {
        if !Path::new(p).exists() {
            let msg = format!("dopd_interop needs {p}");
            assert!(
                std::env::var("HB_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "HB_REQUIRE_INTEROP=1 but {msg}"
            );
            eprintln!("SKIP: {msg}");
            return;
        }
    }
    let lab = NetnsPair::new("dopd", "10.250.97");
    let tmp = TestDir::new("dopd-mixed");
    let fake = tmp.path.join("fake-bin");
    fake_drbdadm(&fake);
    // Both daemons inherit PATH from this process; the only test of this binary.
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);

    let (ns_a, ns_b) = (lab.ns_a(), lab.ns_b());
    let (addr_a, addr_b) = (lab.addr_a(), lab.addr_b());
    let mut hacf =
        HaCf::new(&["alice", "bob"], &ucast_lines("hb0", &[&addr_a, &addr_b])).udpport(694);
    hacf.extra.push(format!("respawn hacluster {REAL_DOPD}"));
    hacf.extra
        .push("apiauth dopd gid=haclient uid=hacluster".into());
    let auth = Auth::lab(AuthMethod::Sha1);
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    da.write_config(&hacf, &auth, "");
    db.write_config(&hacf, &auth, "");

    let mut alice = RealNode::start(&da, &ns_a);
    // The real dopd (hacluster) makes its socket in /run/heartbeat/dopd, which the lab
    // creates root-owned; Debian's tmpfiles give it to hacluster. Before comm-up starts dopd.
    let apid = alice.ns_pid().expect("alice runs").to_string();
    let _ = Command::new("nsenter")
        .args([
            "-t",
            &apid,
            "-m",
            "chown",
            "hacluster:haclient",
            "/run/heartbeat/dopd",
        ])
        .status();
    let mut bob = OurNode::start(&db, Some(&ns_b), Some(&addr_b));
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(3),
    );
    let (net_a, net_b) = (
        netns_of(alice.pid().expect("alice")),
        netns_of(bob.pid().expect("bob")),
    );
    assert_ne!(net_a, net_b);
    // The real dopd starts at comm-up, signs on, then opens its socket: wait for that.
    let socket_up = || {
        Command::new("nsenter")
            .args([
                "-t",
                &apid,
                "-m",
                "test",
                "-S",
                "/run/heartbeat/dopd/outdater",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    wait_until(
        "the real dopd's socket /run/heartbeat/dopd/outdater",
        Duration::from_secs(10),
        &mut [&mut alice, &mut bob],
        socket_up,
    );

    // 1. Ours on bob → the real dopd on alice.
    for (exit, want) in [("0", 4), ("17", 6)] {
        fs::write(fake.join("exit"), exit).expect("exit file");
        let before = calls(&fake).len();
        let (code, err) = ours(&ns_b, &db.run(), "alice");
        let got = calls(&fake)[before..].to_vec();
        let checked = if code == want && got == vec![format!("{net_a} outdate r0")] {
            Ok(())
        } else {
            Err(format!(
                "our outdater on bob (drbdadm exit {exit}): exit {code}, want {want}; \
                 stderr {err:?}; drbdadm calls {got:?} (alice is {net_a})"
            ))
        };
        or_dump!(checked, alice, bob);
    }

    // 2. The real outdater on alice → our dopd on bob.
    fs::write(fake.join("exit"), "0").expect("exit file");
    let before = calls(&fake).len();
    let (code, err) = real(&alice, "bob");
    let got = calls(&fake)[before..].to_vec();
    let checked = if code == 4 && got == vec![format!("{net_b} outdate r0")] {
        Ok(())
    } else {
        Err(format!(
            "real outdater on alice: exit {code}, want 4; stderr {err:?}; drbdadm calls {got:?} \
             (bob is {net_b})"
        ))
    };
    or_dump!(checked, alice, bob);

    // 3. Cut apart: each declares the other dead, then both tools say 5 and nothing runs.
    let (ma, mb) = (log_mark(&alice.log()), log_mark(&bob.log()));
    partition(&ns_b, true);
    let late = Timing::FAST.deadtime + Duration::from_secs(5);
    or_dump!(
        wait_for_log_from(&alice.log(), ma, "node bob: is dead", late),
        alice,
        bob
    );
    or_dump!(
        wait_for_log_from(&bob.log(), mb, "node alice: is dead", late),
        alice,
        bob
    );
    let before = calls(&fake).len();
    let (code, err) = ours(&ns_b, &db.run(), "alice");
    assert_eq!(code, 5, "our outdater, peer dead: {err}");
    let (code, err) = real(&alice, "bob");
    assert_eq!(code, 5, "real outdater, peer dead: {err}");
    assert_eq!(calls(&fake).len(), before, "nothing ran drbdadm");
    partition(&ns_b, false);
}
