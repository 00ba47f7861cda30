//! STONITH (`stonith_host`) between two of our nodes on loopback, through cluster-glue's real
//! `stonith` command: the dead peer is reset before its group is taken over; a failing reset
//! holds the takeover and is retried every 5 s. With the `null` plugin (no root), and with an
//! `external/` plugin of the test's own that records each reset with a timestamp (cluster-glue
//! looks for external plugins only in /usr/lib/stonith/plugins/external, so that test installs
//! its plugin there and removes it: root only, else SKIP).

#[macro_use]
mod common;

use std::fs;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";
const STONITH: &str = "/usr/sbin/stonith";
const EXTERNAL_DIR: &str = "/usr/lib/stonith/plugins/external";

/// cluster-glue's command is there, or SKIP (a failure under CI's HB_REQUIRE_INTEROP=1).
fn stonith_or_skip(test: &str) -> bool {
    if Path::new(STONITH).exists() {
        return true;
    }
    let msg = format!("{test} needs cluster-glue's {STONITH}");
    if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("HB_REQUIRE_INTEROP=1 but {msg}");
    }
    let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    false
}

/// alice and bob on loopback, each owning one Marker group, with this STONITH line.
fn pair(tmp: &TestDir, marker: &Path, stonith_line: &str) -> (NodeDir, NodeDir) {
    let addrs: [Ipv4Addr; 2] = [A, B].map(|a| a.parse().expect("addr"));
    let mut hacf =
        HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[A, B])).udpport(free_udp_port(&addrs));
    hacf.extra = vec!["crm off".into(), stonith_line.into()];
    let haresources = format!(
        "alice Marker::svcA::{m}\nbob Marker::svcB::{m}\n",
        m = marker.display()
    );
    fs::create_dir_all(marker.join("calls")).expect("marker calls dir");
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    for d in [&da, &db] {
        d.write_config(&hacf, &Auth::lab(AuthMethod::Sha1), &haresources);
        install_resource_scripts(d, false);
    }
    (da, db)
}

/// The lines of `log` containing any of `needles`, in order, as the needle they contain.
fn lines_with(log: &Path, needles: &[&str]) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            needles
                .iter()
                .find(|n| l.contains(*n))
                .map(|n| n.to_string())
        })
        .collect()
}

/// Start both, wait until each runs its group, then kill bob (his svcB goes with him).
fn start_and_kill_bob(da: &NodeDir, db: &NodeDir, marker: &Path) -> (OurNode, OurNode) {
    let mut alice = OurNode::start(da, None, Some(A));
    let mut bob = OurNode::start(db, None, Some(B));
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(1),
    );
    wait_until(
        "svcA on alice, svcB on bob",
        Duration::from_secs(5),
        &mut [&mut alice, &mut bob],
        || marker_runs(marker, "alice", "svcA") && marker_runs(marker, "bob", "svcB"),
    );
    settle(bob.uptime(), Timing::SETTLE);
    bob.kill();
    fs::remove_file(marker.join("bob").join("svcB")).expect("bob's svcB");
    (alice, bob)
}

#[test]
fn null_device_resets_the_dead_peer_before_the_takeover() {
    if !stonith_or_skip("null_device_resets_the_dead_peer_before_the_takeover") {
        return;
    }
    let tmp = TestDir::new("sto-null");
    let marker: PathBuf = tmp.path.join("marker");
    let (da, db) = pair(&tmp, &marker, "stonith_host * null alice bob");
    let (mut alice, mut bob) = start_and_kill_bob(&da, &db, &marker);
    let late = Timing::FAST.death_window().1 + Duration::from_secs(5);
    wait_until(
        "alice takes svcB",
        late,
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcB"),
    );
    or_dump!(
        wait_for_log(
            &da.log(),
            "Resources being acquired from bob.",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    let order = lines_with(
        &da.log(),
        &[
            "Checking status of STONITH device [NULL STONITH device]",
            "Resetting node bob with [NULL STONITH device]",
            "node bob now reset.",
            "Resources being acquired from bob.",
            "No STONITH device configured.",
        ],
    );
    assert_eq!(
        order,
        [
            "Checking status of STONITH device [NULL STONITH device]",
            "Resetting node bob with [NULL STONITH device]",
            "node bob now reset.",
            "Resources being acquired from bob.",
        ],
        "{}",
        dump(&mut [&mut alice, &mut bob])
    );
}

/// An `external/` plugin of the test's own, installed for as long as the test runs: each
/// reset appends `SECONDS.NANOSECONDS reset NODE` to `<dir>/resets`, and fails (exit 1)
/// while `<dir>/fail` exists.
struct RecordingPlugin {
    name: String,
    path: PathBuf,
}

impl RecordingPlugin {
    /// `tag` keeps the tests of this file apart: they run at once, in one process.
    fn install(tag: &str) -> RecordingPlugin {
        let name = format!("hbrs-sto-record-{tag}-{}", std::process::id());
        let path = Path::new(EXTERNAL_DIR).join(&name);
        let script = r#"#!/bin/sh
# heartbeat-rs test plugin (tests/stonith.rs): records resets; removed after the test.
case "$1" in
gethosts) echo alice; echo bob; exit 0 ;;
reset)
	[ -e "$recorddir/fail" ] && exit 1
	printf '%s reset %s\n' "$(date '+%s.%N')" "$2" >>"$recorddir/resets"
	exit 0 ;;
on|off|status) exit 0 ;;
getconfignames) echo recorddir; exit 0 ;;
getinfo-devid|getinfo-devname) echo "heartbeat-rs test recorder"; exit 0 ;;
getinfo-devdescr) echo "Records resets for heartbeat-rs tests"; exit 0 ;;
getinfo-devurl) echo "none"; exit 0 ;;
getinfo-xml)
	echo '<parameters><parameter name="recorddir" unique="1" required="1"><content type="string"/><shortdesc lang="en">Directory</shortdesc></parameter></parameters>'
	exit 0 ;;
esac
exit 1
"#;
        fs::write(&path, script).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod plugin");
        RecordingPlugin { name, path }
    }
}

impl Drop for RecordingPlugin {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// First `SECONDS.NANOSECONDS` of the lines of `file` whose other fields are `rest`.
fn first_time(file: &Path, rest: &str) -> Option<f64> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (t, r) = l.split_once(' ')?;
            r.starts_with(rest).then(|| t.parse().ok())?
        })
}

#[test]
fn external_plugin_records_the_reset_before_the_first_start_and_a_failure_holds_the_takeover() {
    let test =
        "external_plugin_records_the_reset_before_the_first_start_and_a_failure_holds_the_takeover";
    if !stonith_or_skip(test) {
        return;
    }
    if !nix::unistd::geteuid().is_root() || !Path::new(EXTERNAL_DIR).is_dir() {
        let msg = format!("{test} needs root and {EXTERNAL_DIR} (it installs a plugin there)");
        if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("HB_REQUIRE_INTEROP=1 but {msg}");
        }
        let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
        return;
    }
    let plugin = RecordingPlugin::install("ext");
    let tmp = TestDir::new("sto-ext");
    let marker: PathBuf = tmp.path.join("marker");
    let record = tmp.path.join("record");
    fs::create_dir_all(&record).expect("record dir");
    fs::write(record.join("fail"), "").expect("fail switch");
    let line = format!(
        "stonith_host * external/{} {}",
        plugin.name,
        record.display()
    );
    let (da, db) = pair(&tmp, &marker, &line);
    let (mut alice, mut bob) = start_and_kill_bob(&da, &db, &marker);

    // The device fails: alice retries every 5 s and does not take svcB over.
    let late = Timing::FAST.death_window().1 + Duration::from_secs(3);
    or_dump!(
        wait_for_log(&da.log(), "STONITH of bob failed.  Retrying...", late),
        alice,
        bob
    );
    let mark = log_mark(&da.log());
    or_dump!(
        wait_for_log_from(
            &da.log(),
            mark,
            "STONITH of bob failed.  Retrying...",
            Duration::from_secs(9)
        ),
        alice,
        bob
    );
    assert!(
        lines_with(&da.log(), &["Host bob not reset!"]).len() >= 2,
        "{}",
        dump(&mut [&mut alice, &mut bob])
    );
    assert!(
        !marker_runs(&marker, "alice", "svcB"),
        "taken over unfenced"
    );
    assert_eq!(first_time(&marker.join("calls/alice"), "start svcB"), None);
    assert!(!record.join("resets").exists());

    // The device works again: the next attempt resets bob, then alice takes svcB.
    fs::remove_file(record.join("fail")).expect("fail switch off");
    wait_until(
        "alice takes svcB",
        Duration::from_secs(12),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcB"),
    );
    // Marker logs the call once it is done, after its state file.
    wait_until(
        "alice's start call logged",
        Duration::from_secs(3),
        &mut [&mut alice, &mut bob],
        || first_time(&marker.join("calls/alice"), "start svcB").is_some(),
    );
    let reset = first_time(&record.join("resets"), "reset bob");
    let start = first_time(&marker.join("calls/alice"), "start svcB");
    assert!(
        matches!((reset, start), (Some(r), Some(s)) if r < s),
        "reset {reset:?} must come before the first start {start:?}"
    );
    let order = lines_with(
        &da.log(),
        &[
            "Checking status of STONITH device [heartbeat-rs test recorder]",
            "node bob now reset.",
            "Resources being acquired from bob.",
        ],
    );
    assert_eq!(
        order,
        [
            "Checking status of STONITH device [heartbeat-rs test recorder]",
            "node bob now reset.",
            "Resources being acquired from bob.",
        ]
    );
}

/// `service heartbeat reload` (SIGHUP) after the `stonith_host` line was changed from the
/// `null` device to the test's recording plugin: the new device is checked at once and is
/// the one that resets the dead peer before the takeover (3.0.6 restarts quickly on a
/// changed ha.cf and runs with the new device). Root (it installs a plugin).
#[test]
fn a_stonith_host_line_changed_on_reload_takes_effect() {
    let test = "a_stonith_host_line_changed_on_reload_takes_effect";
    if !stonith_or_skip(test) {
        return;
    }
    if !nix::unistd::geteuid().is_root() || !Path::new(EXTERNAL_DIR).is_dir() {
        let msg = format!("{test} needs root and {EXTERNAL_DIR} (it installs a plugin there)");
        if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("HB_REQUIRE_INTEROP=1 but {msg}");
        }
        let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
        return;
    }
    let plugin = RecordingPlugin::install("hup");
    let tmp = TestDir::new("sto-hup");
    let marker: PathBuf = tmp.path.join("marker");
    let record = tmp.path.join("record");
    fs::create_dir_all(&record).expect("record dir");
    let null_line = "stonith_host * null alice bob";
    let (da, db) = pair(&tmp, &marker, null_line);
    let mut alice = OurNode::start(&da, None, Some(A));
    let mut bob = OurNode::start(&db, None, Some(B));
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(1),
    );
    or_dump!(
        wait_for_log(
            &da.log(),
            "Checking status of STONITH device [NULL STONITH device]",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    let cf_path = da.conf().join("ha.cf");
    let cf = fs::read_to_string(&cf_path).expect("ha.cf");
    let new_line = format!(
        "stonith_host * external/{} {}",
        plugin.name,
        record.display()
    );
    fs::write(&cf_path, cf.replace(null_line, &new_line)).expect("ha.cf");
    let mark = log_mark(&da.log());
    alice.signal(nix::sys::signal::Signal::SIGHUP);
    or_dump!(
        wait_for_log_from(
            &da.log(),
            mark,
            "Checking status of STONITH device [heartbeat-rs test recorder]",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    wait_until(
        "svcA on alice, svcB on bob",
        Duration::from_secs(5),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA") && marker_runs(&marker, "bob", "svcB"),
    );
    settle(bob.uptime(), Timing::SETTLE);
    bob.kill();
    fs::remove_file(marker.join("bob").join("svcB")).expect("bob's svcB");
    wait_until(
        "alice takes svcB after resetting bob with the new device",
        Timing::FAST.death_window().1 + Duration::from_secs(5),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcB"),
    );
    wait_until(
        "alice's start call logged",
        Duration::from_secs(3),
        &mut [&mut alice, &mut bob],
        || first_time(&marker.join("calls/alice"), "start svcB").is_some(),
    );
    let reset = first_time(&record.join("resets"), "reset bob");
    let start = first_time(&marker.join("calls/alice"), "start svcB");
    assert!(
        matches!((reset, start), (Some(r), Some(s)) if r < s),
        "reset {reset:?} must come before the first start {start:?}"
    );
    assert_eq!(
        lines_with(
            &da.log(),
            &[
                "Resetting node bob with [NULL STONITH device]",
                "Resetting node bob with [heartbeat-rs test recorder]",
            ]
        ),
        ["Resetting node bob with [heartbeat-rs test recorder]"]
    );
}

/// A mixed pair, both with the `null` device: the real 3.0.6 node (alice) fences ours, ours
/// fences the real one, each before taking the other's group over. Root and the heartbeat
/// package (network namespaces, prefix `sto`).
#[test]
fn mixed_pair_each_side_resets_the_other_before_its_takeover() {
    let test = "mixed_pair_each_side_resets_the_other_before_its_takeover";
    if !require_root_or_skip(test) || !stonith_or_skip(test) {
        return;
    }
    let ns = NetnsPair::new("sto", "10.250.121");
    let tmp = TestDir::new("sto-mixed");
    let marker: PathBuf = tmp.path.join("marker");
    fs::create_dir_all(&marker).expect("marker");
    let mut hacf = HaCf::new(
        &["alice", "bob"],
        &ucast_lines("hb0", &[&ns.addr_a(), &ns.addr_b()]),
    );
    hacf.extra = vec!["crm off".into(), "stonith_host * null alice bob".into()];
    let haresources = format!(
        "alice Marker::svcA::{m}\nbob Marker::svcB::{m}\n",
        m = marker.display()
    );
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    for d in [&da, &db] {
        d.write_config(&hacf, &Auth::lab(AuthMethod::Md5), &haresources);
    }
    install_resource_scripts(&da, true);
    install_resource_scripts(&db, false);

    let mut alice = RealNode::start(&da, &ns.ns_a());
    let mut bob = OurNode::start(&db, Some(&ns.ns_b()), None);
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(3),
    );
    wait_until(
        "svcA on alice, svcB on bob",
        Duration::from_secs(8),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA") && marker_runs(&marker, "bob", "svcB"),
    );
    let reset_then_takeover = |log: &Path, peer: &str| {
        let needles = [
            format!("Resetting node {peer} with [NULL STONITH device]"),
            format!("node {peer} now reset."),
            format!("Resources being acquired from {peer}."),
        ];
        let refs: Vec<&str> = needles.iter().map(String::as_str).collect();
        (lines_with(log, &refs), needles.to_vec())
    };

    // Ours dies: the real node resets it, then takes svcB.
    settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
    bob.kill();
    let _ = fs::remove_file(marker.join("bob").join("svcB"));
    let late = Timing::FAST.death_window().1 + Duration::from_secs(6);
    wait_until(
        "real alice takes svcB",
        late,
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcB"),
    );
    or_dump!(
        wait_for_log(
            &da.log(),
            "Resources being acquired from bob.",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    let (got, want) = reset_then_takeover(&da.log(), "bob");
    assert_eq!(got, want, "{}", dump(&mut [&mut alice, &mut bob]));

    // Ours returns and gets svcB back; then the real node dies: ours resets it first.
    bob.restart();
    wait_until(
        "svcB back on our bob",
        Duration::from_secs(15),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "bob", "svcB") && !marker_runs(&marker, "alice", "svcB"),
    );
    settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
    alice.kill();
    let _ = fs::remove_file(marker.join("alice").join("svcA"));
    wait_until(
        "our bob takes svcA",
        late,
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "bob", "svcA"),
    );
    or_dump!(
        wait_for_log(
            &db.log(),
            "Resources being acquired from alice.",
            Duration::from_secs(5)
        ),
        alice,
        bob
    );
    let (got, want) = reset_then_takeover(&db.log(), "alice");
    assert_eq!(got, want, "{}", dump(&mut [&mut alice, &mut bob]));
    // Both checked their device when they started their resources.
    for log in [da.log(), db.log()] {
        assert!(
            !lines_with(
                &log,
                &["Checking status of STONITH device [NULL STONITH device]"]
            )
            .is_empty(),
            "{}",
            log.display()
        );
    }
}
