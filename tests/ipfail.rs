//! ipfail in network namespaces (links.md §4.5): alice and bob, `auto_failback on`, alice's
//! group (Marker), `respawn hacluster .../ipfail` on both, and one `ping` node: a third
//! namespace on the same segment (bob's `hb0` becomes a bridge with the pair's veth and the
//! ping host's veth as ports). Dropping alice's echo requests to it (nftables in alice's
//! namespace) leaves alice with fewer visible ping nodes: ipfail moves the group to bob; when
//! the echoes pass again, the counts balance and the group returns to alice.
//!
//! Two pairs: two of ours (built-in ipfail on both), and a mixed pair where alice is a real
//! Heartbeat 3.0.6 running the real ipfail binary, paired with our built-in one on bob. Root,
//! the heartbeat package and `nft` are needed; without them the tests say SKIP (and fail under
//! HB_REQUIRE_INTEROP=1).

#[macro_use]
mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const REAL_IPFAIL: &str = "/usr/libexec/heartbeat/ipfail";
/// Our daemon runs any `respawn` of a program named ipfail built in: the path need not exist.
const OUR_IPFAIL: &str = "/usr/lib/heartbeat/ipfail";
/// The ping node's host number on the pair's network.
const PING_HOST: u8 = 9;

/// A third test host `PREFIX-p` (NET.9) on the pair's segment: in bob's namespace `hb0` is
/// renamed `hb0p`, and a bridge named `hb0` (holding bob's address) joins it with a veth to the
/// new namespace. Deleted on drop (its veth goes with it); nothing runs inside it.
struct PingHost {
    ns: String,
}

impl PingHost {
    fn new(pair: &NetnsPair) -> PingHost {
        let ns = format!("{}-p", pair.prefix);
        let host = PingHost { ns: ns.clone() };
        host.destroy();
        let b = pair.ns_b();
        let (p, net) = (&pair.prefix, &pair.net);
        let steps = [
            format!("link add {p}-vp type veth peer name {p}-vq"),
            format!("netns add {ns}"),
            format!("link set {p}-vp netns {ns}"),
            format!("-n {ns} link set {p}-vp name eth0"),
            format!("-n {ns} addr add {net}.{PING_HOST}/24 dev eth0"),
            format!("-n {ns} link set lo up"),
            format!("-n {ns} link set eth0 up"),
            format!("link set {p}-vq netns {b}"),
            format!("-n {b} addr del {}/24 dev hb0", pair.addr_b()),
            format!("-n {b} link set hb0 down"),
            format!("-n {b} link set hb0 name hb0p"),
            format!("-n {b} link add hb0 type bridge"),
            format!("-n {b} link set hb0p master hb0"),
            format!("-n {b} link set {p}-vq master hb0"),
            format!("-n {b} addr add {}/24 brd {net}.255 dev hb0", pair.addr_b()),
            format!("-n {b} link set hb0p up"),
            format!("-n {b} link set {p}-vq up"),
            format!("-n {b} link set hb0 up"),
        ];
        for step in steps {
            let argv: Vec<String> = step.split_whitespace().map(str::to_string).collect();
            if let Err(e) = run_ok("ip", &argv) {
                panic!("setting up the ping host {ns}: ip {step}: {e}");
            }
        }
        host
    }

    fn destroy(&self) {
        if Path::new("/run/netns").join(&self.ns).exists() {
            let _ = run_ok("ip", &["netns".into(), "del".into(), self.ns.clone()]);
        }
    }
}

impl Drop for PingHost {
    fn drop(&mut self) {
        self.destroy();
    }
}

fn nft_or_skip(test: &str) -> bool {
    let ok = Command::new("nft")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("HB_REQUIRE_INTEROP=1 but {test} needs the nft command");
        }
        let _ = writeln!(std::io::stderr(), "SKIP: {test} needs the nft command");
    }
    ok
}

/// Drop (or stop dropping) echo requests from namespace `ns` to `target`.
fn block_pings(ns: &str, target: &str, block: bool) {
    let _ = Command::new("ip")
        .args([
            "netns", "exec", ns, "nft", "delete", "table", "inet", "ipftest",
        ])
        .stderr(Stdio::null())
        .status();
    if !block {
        return;
    }
    let rules = format!(
        "table inet ipftest {{\n  chain out {{\n    type filter hook output priority 0;\n    \
         ip daddr {target} icmp type echo-request drop\n  }}\n}}\n"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(rules.as_bytes())
        .expect("nft rules");
    assert!(child.wait().expect("nft").success(), "nft in {ns}");
}

fn on_only(marker: &Path, node: &str, other: &str) -> bool {
    marker_runs(marker, node, "svcA") && !marker_runs(marker, other, "svcA")
}

/// `cl_status ARGS` on the real 3.0.6 node of namespace `ns` (its master control process
/// found among the namespace's processes), inside its namespaces: (stdout, exit code).
fn real_cl_status_in(ns: &str, args: &[&str]) -> (String, Option<i32>) {
    let pids = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip netns pids");
    let real = String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .find(|p| {
            fs::read_link(format!("/proc/{p}/exe"))
                .is_ok_and(|e| e == Path::new("/usr/libexec/heartbeat/heartbeat"))
        })
        .map(str::to_string)
        .expect("the real heartbeat in its namespace");
    let out = Command::new("nsenter")
        .args(["-t", &real, "-n", "-m", "-u", "cl_status"])
        .args(args)
        .output()
        .expect("nsenter cl_status");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

/// Every line of `log` since `mark` holding `text` was written under the name `ipfail`, as
/// the real ipfail's lines are (`<host> ipfail: [pid]: info: ...`), and there is one.
fn ipfail_lines_carry_its_name(log: &Path, mark: u64, text: &str) {
    let lines = log_lines_from(log, mark, text);
    assert!(
        !lines.is_empty(),
        "no line with {text:?} in {}",
        log.display()
    );
    for l in &lines {
        assert!(l.contains(" ipfail: ["), "not under ipfail's name: {l}");
    }
}

/// The whole scenario; `real_alice`: alice is Heartbeat 3.0.6 with the real ipfail.
fn ping_node_moves_the_group(prefix: &str, net: &str, real_alice: bool) {
    let ns = NetnsPair::new(prefix, net);
    let _ping_host = PingHost::new(&ns);
    let ping = ns.addr(PING_HOST);
    let tmp = TestDir::new(prefix);
    let marker: PathBuf = tmp.path.join("marker");
    fs::create_dir_all(&marker).expect("marker");
    let mut media = ucast_lines("hb0", &[&ns.addr_a(), &ns.addr_b()]);
    media.push(format!("ping {ping}"));
    let haresources = format!("alice Marker::svcA::{}\n", marker.display());
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    for (d, real) in [(&da, real_alice), (&db, false)] {
        let mut hacf = HaCf::new(&["alice", "bob"], &media);
        let prog = if real { REAL_IPFAIL } else { OUR_IPFAIL };
        hacf.extra = vec![
            "auto_failback on".into(),
            "crm off".into(),
            format!("respawn hacluster {prog}"),
            "apiauth ipfail gid=haclient uid=hacluster".into(),
        ];
        d.write_config(&hacf, &Auth::lab(AuthMethod::Sha1), &haresources);
        install_resource_scripts(d, real);
    }

    let mut alice: Box<dyn NodeInfo> = if real_alice {
        Box::new(RealNode::start(&da, &ns.ns_a()))
    } else {
        Box::new(OurNode::start(&da, Some(&ns.ns_a()), None))
    };
    let mut bob = OurNode::start(&db, Some(&ns.ns_b()), None);
    wait_mutually_active(
        alice.as_mut(),
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(3),
    );
    wait_until(
        "svcA on alice",
        Duration::from_secs(20),
        &mut [alice.as_mut(), &mut bob],
        || on_only(&marker, "alice", "bob"),
    );
    // Both see the ping node before it is taken from alice.
    for log in [da.log(), db.log()] {
        or_dump!(
            wait_for_log(
                &log,
                &format!("Status update for node {ping}: status ping"),
                Duration::from_secs(10)
            ),
            *alice,
            bob
        );
    }
    // Our built-in answers `clientstatus` for this node as the real client would.
    let out = Command::new(env!("CARGO_BIN_EXE_cl_status"))
        .arg("--rundir")
        .arg(db.run())
        .args(["clientstatus", "bob", "ipfail"])
        .output()
        .expect("cl_status");
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout).as_ref(),
            out.status.code()
        ),
        ("online\n", Some(0)),
        "cl_status clientstatus bob ipfail"
    );
    // And for alice's ipfail, as alice's sign-on said.
    let out = Command::new(env!("CARGO_BIN_EXE_cl_status"))
        .arg("--rundir")
        .arg(db.run())
        .args(["clientstatus", "alice", "ipfail"])
        .output()
        .expect("cl_status");
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout).as_ref(),
            out.status.code()
        ),
        ("online\n", Some(0)),
        "cl_status clientstatus alice ipfail (on bob)"
    );
    if real_alice {
        // The real node asks ours over the wire (query-cstatus) and gets 3.0.6's answer.
        for (client, want) in [
            ("ipfail", ("online\n", Some(0))),
            ("ccm", ("offline\n", Some(1))),
        ] {
            let (out, code) =
                real_cl_status_in(&ns.ns_a(), &["clientstatus", "bob", client, "5000"]);
            assert_eq!(
                (out.as_str(), code),
                want,
                "real cl_status clientstatus bob {client}"
            );
        }
    }
    let mark_b = log_mark(&db.log());
    let mark_a = log_mark(&da.log());

    // Alice no longer reaches the ping node: deadping (= deadtime, 3 s), the count exchange,
    // a 2 × keepalive delayed giveup, then the standby hand-over.
    block_pings(&ns.ns_a(), &ping, true);
    wait_until(
        "svcA moved to bob",
        Duration::from_secs(25),
        &mut [alice.as_mut(), &mut bob],
        || on_only(&marker, "bob", "alice"),
    );
    or_dump!(
        wait_for_log_from(
            &db.log(),
            mark_b,
            "Telling other node that we have more visible ping nodes.",
            Duration::from_secs(2)
        ),
        *alice,
        bob
    );
    // Our built-in ipfail's lines go under its own name, as the real one's do.
    ipfail_lines_carry_its_name(
        &db.log(),
        mark_b,
        "Telling other node that we have more visible ping nodes.",
    );
    or_dump!(
        wait_for_log_from(
            &da.log(),
            mark_a,
            "alice wants to go standby [all]",
            Duration::from_secs(2)
        ),
        *alice,
        bob
    );
    // Alice's ipfail (the real one logs into the same file) heard bob's you_are_dead.
    for line in [
        "Giving up because we were told that we have less ping nodes.",
        "giveup() called (timeout worked)",
    ] {
        or_dump!(
            wait_for_log_from(&da.log(), mark_a, line, Duration::from_secs(2)),
            *alice,
            bob
        );
        // Under ipfail's name, whether the real ipfail or ours wrote it.
        ipfail_lines_carry_its_name(&da.log(), mark_a, line);
    }

    // Reachable again: the counts balance and bob gives the foreign group back.
    let mark_b = log_mark(&db.log());
    block_pings(&ns.ns_a(), &ping, false);
    wait_until(
        "svcA back on alice",
        Duration::from_secs(30),
        &mut [alice.as_mut(), &mut bob],
        || on_only(&marker, "alice", "bob"),
    );
    for line in [
        "Ping node count is balanced.",
        "Giving up foreign resources (auto_failback).",
        "bob wants to go standby [foreign]",
    ] {
        or_dump!(
            wait_for_log_from(&db.log(), mark_b, line, Duration::from_secs(2)),
            *alice,
            bob
        );
    }
    for line in [
        "Ping node count is balanced.",
        "Giving up foreign resources (auto_failback).",
    ] {
        ipfail_lines_carry_its_name(&db.log(), mark_b, line);
    }
    // Never on both at once, and still where it belongs a little later.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        on_only(&marker, "alice", "bob"),
        "svcA left alice again\n{}",
        dump(&mut [alice.as_mut(), &mut bob])
    );
    block_pings(&ns.ns_a(), &ping, false);
}

#[test]
fn ipfail_two_of_ours_follow_the_ping_node() {
    let name = "ipfail_two_of_ours_follow_the_ping_node";
    if !require_root_or_skip(name) || !nft_or_skip(name) {
        return;
    }
    ping_node_moves_the_group("ipf-o", "10.250.71", false);
}

#[test]
fn ipfail_mixed_pair_real_ipfail_on_3_0_6() {
    let name = "ipfail_mixed_pair_real_ipfail_on_3_0_6";
    if !require_root_or_skip(name) || !nft_or_skip(name) {
        return;
    }
    if !Path::new(REAL_IPFAIL).exists() {
        if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("HB_REQUIRE_INTEROP=1 but {REAL_IPFAIL} is missing");
        }
        let _ = writeln!(std::io::stderr(), "SKIP: {name} needs {REAL_IPFAIL}");
        return;
    }
    ping_node_moves_the_group("ipf-m", "10.250.72", true);
}
