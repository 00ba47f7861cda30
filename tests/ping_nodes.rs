//! Ping nodes (`ping`, `ping_group`) in network namespaces: our node pings the other test
//! host; the ping node is `ping` while it echoes, `dead` after deadping when the host goes
//! away, and `ping` again when it is back. Needs root (raw ICMP sockets, namespaces).

#[macro_use]
mod common;

use std::process::Command;
use std::thread;
use std::time::Duration;

use common::*;

fn our_cl_status(dir: &NodeDir, args: &[&str]) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_cl_status"))
        .arg("--rundir")
        .arg(dir.run())
        .args(args)
        .output()
        .expect("cl_status");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn ping_and_ping_group_follow_their_hosts() {
    if !require_root_or_skip("ping_and_ping_group_follow_their_hosts") {
        return;
    }
    let ns = NetnsPair::new("hbpg", "10.250.63");
    let tmp = TestDir::new("ping");
    let target = ns.addr_b();
    let unreachable = ns.addr(9);
    let media = vec![
        format!("ping {target}"),
        format!("ping_group grp1 {unreachable} {target}"),
    ];
    let da = tmp.node("alice");
    da.write_config(
        &HaCf::new(&["alice"], &media),
        &Auth::lab(AuthMethod::Md5),
        "",
    );
    let mut alice = OurNode::start(&da, Some(&ns.ns_a()), None);
    let limit = Timing::FAST.initdead;
    for line in [
        format!("Link {target}:{target} up."),
        format!("Status update for node {target}: status ping"),
        "Link grp1:grp1 up.".to_string(),
        "Status update for node grp1: status ping".to_string(),
        "Comm_now_up(): updating status to active".to_string(),
    ] {
        or_dump!(wait_for_log(&alice.log(), &line, limit), alice);
    }
    assert_eq!(
        our_cl_status(&da, &["nodestatus", &target]),
        ("ping\n".into(), 0)
    );
    assert_eq!(
        our_cl_status(&da, &["nodetype", "grp1"]),
        ("ping\n".into(), 0)
    );

    // The host goes away: both ping nodes die after deadping (= deadtime here).
    let mark = log_mark(&alice.log());
    let ok = Command::new("ip")
        .args(["-n", &ns.ns_b(), "link", "set", "hb0", "down"])
        .status();
    assert!(ok.is_ok_and(|s| s.success()));
    let late = Timing::FAST.deadtime + Duration::from_secs(3);
    or_dump!(
        wait_for_log_from(&alice.log(), mark, &format!("node {target}: is dead"), late),
        alice
    );
    or_dump!(
        wait_for_log_from(&alice.log(), mark, "node grp1: is dead", late),
        alice
    );
    assert_eq!(our_cl_status(&da, &["nodestatus", &target]).0, "dead\n");

    // Back: `ping` again.
    let mark = log_mark(&alice.log());
    let ok = Command::new("ip")
        .args(["-n", &ns.ns_b(), "link", "set", "hb0", "up"])
        .status();
    assert!(ok.is_ok_and(|s| s.success()));
    or_dump!(
        wait_for_log_from(
            &alice.log(),
            mark,
            &format!("Status update for node {target}: status ping"),
            Duration::from_secs(8)
        ),
        alice
    );
    thread::sleep(Duration::from_millis(200));
    assert!(alice.is_running());
}
