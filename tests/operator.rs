//! The operator's view against a running pair on loopback (no root): `hb_status` text and
//! JSON, the metrics after a takeover (command and `--metrics-file`), and the log fallback
//! when ha.cf names no destination.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";
const HB_STATUS: &str = env!("CARGO_BIN_EXE_hb_status");

fn hb_status(dir: &NodeDir, args: &[&str]) -> (String, String, i32) {
    run_with_timeout(
        Command::new(HB_STATUS)
            .arg("--rundir")
            .arg(dir.run())
            .args(args),
        Duration::from_secs(10),
    )
}

fn overview(dir: &NodeDir) -> Option<Value> {
    let (out, _, code) = hb_status(dir, &["--json"]);
    (code == 0)
        .then(|| serde_json::from_str(&out).ok())
        .flatten()
}

fn node<'a>(o: &'a Value, name: &str) -> &'a Value {
    o["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("no node {name} in {o}"))
}

/// The value of the metric line `name{labels}` (exact label text), if present.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// bob, started by hand for the extra --metrics-file option.
struct Bob(Child);

impl Drop for Bob {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_bob(dir: &NodeDir, metrics: &Path) -> Bob {
    let log = fs::File::create(dir.output()).expect("output");
    let child = Command::new(our_hb())
        .arg("-f")
        .args(our_dir_args(dir))
        .args(["--bind", B, "--metrics-file"])
        .arg(metrics)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("spawn bob");
    Bob(child)
}

/// Heartbeats `dir`'s node received, from `hb_status --metrics`. Two media share port and
/// address in these tests; which of their sockets gets a datagram is the kernel's choice, so
/// what was received is counted over both.
fn received_heartbeats(dir: &NodeDir) -> f64 {
    let (m, _, _) = hb_status(dir, &["--metrics"]);
    m.lines()
        .filter(|l| l.starts_with("heartbeat_heartbeats_received_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn overview_and_metrics_of_a_pair_through_a_takeover() {
    let pair = MarkerPair::loopback("operator")
        .extra(&["crm off", "auto_failback off"])
        .haresources("alice Marker::svcA::{m}\n")
        .build();
    let (tmp, marker, db) = (&pair.tmp, pair.marker.clone(), &pair.dirs[1]);
    let svc = format!("Marker::svcA::{}", marker.display());
    let prom = tmp.path.join("textfile").join("heartbeat.prom");
    fs::create_dir_all(prom.parent().expect("dir")).expect("textfile dir");
    let mut alice = pair.start_ours(0);
    let _bob = start_bob(db, &prom);

    // Both active, svcA on alice, as bob sees it.
    let limit = Timing::FAST.initdead + Duration::from_secs(10);
    wait_for("bob sees alice active and svcA there", limit, || {
        overview(db).is_some_and(|o| {
            node(&o, "alice")["status"] == "active"
                && o["groups"][0]["state"] == "elsewhere"
                && o["groups"][0]["node"] == "alice"
        })
    });
    wait_for("svcA on alice", Duration::from_secs(10), || {
        marker_runs(&marker, "alice", "svcA")
    });
    let o = overview(db).expect("overview");
    assert_eq!(o["format"], 1);
    assert_eq!(o["node"], "bob");
    assert_eq!(o["mode"], "off");
    assert_eq!(o["comm_up"], true);
    assert!(node(&o, "alice")["generation"].as_u64().is_some(), "{o}");
    assert!(node(&o, "bob")["generation"].as_u64().is_some(), "{o}");
    assert_eq!(node(&o, "bob")["this_node"], true);
    let link = &node(&o, "alice")["links"][0];
    assert_eq!(link["up"], true, "{o}");
    let age = link["last_heard_ms_ago"].as_u64().expect("heard");
    assert!(age < 5000, "last heard {age} ms ago");
    assert!(o["last_takeover"].is_null(), "{o}");

    // alice dies: bob takes svcA over, and says so with its duration. First bob has heard a
    // few of her heartbeats (two of ours start in well under a second: no 10 s negotiation).
    wait_for(
        "bob has heard 3 heartbeats",
        Duration::from_secs(10),
        || received_heartbeats(db) >= 3.0,
    );
    alice.kill();
    fs::remove_file(marker.join("alice").join("svcA")).expect("alice's svcA");
    let late = Timing::FAST.death_window().1 + Duration::from_secs(10);
    wait_for("svcA on bob", late, || marker_runs(&marker, "bob", "svcA"));
    wait_for("the takeover finished", Duration::from_secs(10), || {
        overview(db).is_some_and(|o| o["last_takeover"]["duration_ms"].is_u64())
    });
    let o = overview(db).expect("overview");
    assert_eq!(node(&o, "alice")["status"], "dead", "{o}");
    assert_eq!(node(&o, "alice")["links"][0]["up"], false, "{o}");
    let g = &o["groups"][0];
    assert_eq!(
        (g["group"].as_str(), g["home"].as_str()),
        (Some(svc.as_str()), Some("alice"))
    );
    assert_eq!(
        (g["state"].as_str(), g["node"].as_str()),
        (Some("running"), Some("bob"))
    );
    let t = &o["last_takeover"];
    assert_eq!(t["kind"], "takeover");
    assert_eq!(t["cause"], "node alice dead");
    assert_eq!(t["groups"][0], svc.as_str());
    assert_eq!(t["failures"], 0);
    let took = t["duration_ms"].as_u64().expect("duration");
    assert!(took < 10_000, "takeover took {took} ms");

    // The text form says the same.
    let (text, _, code) = hb_status(db, &["--color", "never"]);
    assert_eq!(code, 0);
    assert!(text.starts_with("Node bob ("), "{text}");
    assert!(text.contains("auto_failback off"), "{text}");
    let alice_line = text
        .lines()
        .find(|l| l.starts_with("alice ") && l.contains("normal"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(alice_line.contains("dead"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&svc) && l.contains("running on bob (here)")),
        "{text}"
    );
    assert!(
        text.contains("Last takeover: node alice dead at "),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "colour with --color never");
    let (colored, _, _) = hb_status(db, &["--color", "always"]);
    assert!(colored.contains("\x1b[31mdead"), "{colored}");

    // The metrics: command.
    let (m, _, code) = hb_status(db, &["--metrics"]);
    assert_eq!(code, 0);
    let lo = "medium=\"0\",link=\"lo\"";
    let sent = metric(&m, &format!("heartbeat_heartbeats_sent_total{{{lo}}}")).expect(&m);
    let recv = received_heartbeats(db);
    assert!(sent >= 3.0 && recv >= 3.0, "sent {sent} received {recv}");
    assert_eq!(
        metric(&m, "heartbeat_moves_total{kind=\"takeover\"}"),
        Some(1.0),
        "{m}"
    );
    let d = metric(
        &m,
        "heartbeat_last_move_duration_seconds{kind=\"takeover\"}",
    )
    .expect(&m);
    assert!((d * 1000.0 - took as f64).abs() < 2.0, "{d} s vs {took} ms");
    assert_eq!(
        metric(&m, "heartbeat_node_status{node=\"alice\",status=\"dead\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "heartbeat_node_status{node=\"bob\",status=\"active\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "heartbeat_link_up{node=\"alice\",link=\"lo\"}"),
        Some(0.0)
    );
    assert!(metric(&m, "heartbeat_resource_script_runs_total{op=\"start\"}").unwrap_or(0.0) >= 1.0);
    assert_eq!(
        metric(&m, "heartbeat_resource_script_failures_total{op=\"start\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &m,
            &format!("heartbeat_resource_group_running{{group=\"{svc}\",home=\"alice\"}}")
        ),
        Some(1.0)
    );
    for family in [
        "heartbeat_rejected_packets_total",
        "heartbeat_late_heartbeats_total",
    ] {
        assert!(m.contains(&format!("# TYPE {family} counter")), "{m}");
    }

    // The textfile-collector file: written at start and every 15 s, renamed into place.
    wait_for(
        "the takeover in the metrics file",
        Duration::from_secs(20),
        || {
            fs::read_to_string(&prom)
                .is_ok_and(|t| metric(&t, "heartbeat_moves_total{kind=\"takeover\"}") == Some(1.0))
        },
    );
    let names: Vec<String> = fs::read_dir(prom.parent().expect("dir"))
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["heartbeat.prom".to_string()]);

    // A watch prints one JSON object per line until stopped.
    let mut watch = Command::new(HB_STATUS)
        .arg("--rundir")
        .arg(db.run())
        .args(["--json", "--watch", "--interval", "0.2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch");
    thread::sleep(Duration::from_millis(1500));
    let _ = watch.kill();
    let out = watch.wait_with_output().expect("watch output");
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("utf8")
        .lines()
        .collect();
    assert!(lines.len() >= 3, "{lines:?}");
    for l in lines {
        let v: Value = serde_json::from_str(l).expect("one object per line");
        assert_eq!(v["node"], "bob");
    }
}

#[test]
fn hb_status_without_a_daemon_names_the_socket() {
    let tmp = TestDir::new("operator-nodaemon");
    let d = tmp.node("alice");
    let (_, err, code) = hb_status(&d, &[]);
    assert_eq!(code, 1);
    let socket = d.run().join("heartbeat/control");
    assert!(err.contains(&socket.display().to_string()), "{err}");
    assert!(err.contains("HA_RUNDIR"), "{err}");
}

#[test]
fn no_log_destination_logs_to_stderr_in_the_foreground() {
    let tmp = TestDir::new("operator-log");
    let d = tmp.node("alice");
    let port = free_udp_port(&[A.parse().expect("addr")]);
    fs::create_dir_all(d.conf()).expect("conf");
    write_file(
        &d.conf().join("ha.cf"),
        &format!(
            "keepalive 200ms\ndeadtime 2\ninitdead 4\nudpport {port}\nucast lo {A}\nnode alice\nlogfacility none\n"
        ),
    );
    write_file(&d.conf().join("haresources"), "");
    Auth::lab(AuthMethod::Sha1).write(&d.conf().join("authkeys"), 0o600);
    let mut child = Command::new(our_hb())
        .arg("-f")
        .args(our_dir_args(&d))
        .args(["--bind", A])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Messages after start-up (the link coming up, generation) still reach stderr.
    thread::sleep(Duration::from_secs(2));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let t0 = Instant::now();
    while child.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(15) {
        thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WARN: No log destination in ha.cf (no logfile, no debugfile, logfacility none): logging to stderr."),
        "{err}"
    );
    let warn_at = err.find("No log destination").expect("warning");
    let later = &err[warn_at..];
    assert!(later.contains("Heartbeat generation"), "{err}");
    assert!(later.contains("Heartbeat shutdown complete"), "{err}");
}

#[test]
fn dash_v_prints_the_effective_configuration() {
    let tmp = TestDir::new("operator-v");
    let d = tmp.node("alice");
    fs::create_dir_all(d.conf()).expect("conf");
    write_file(
        &d.conf().join("ha.cf"),
        &format!("keepalive 250ms\ndeadtime 3\nucast lo {A}\nnode alice bob\n"),
    );
    write_file(
        &d.conf().join("haresources"),
        "alice Marker::svcA::/tmp/m\n",
    );
    Auth::lab(AuthMethod::Sha1).write(&d.conf().join("authkeys"), 0o600);
    install_resource_scripts(&d, false);
    let mut args = vec!["-v".to_string(), "--check".to_string()];
    args.extend(our_dir_args(&d));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, err, code) = run_our(&argv, Duration::from_secs(20));
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "Effective configuration of node alice",
        "  keepalive    250 ms",
        "  deadtime     3 s",
        // A default filled in.
        "  initdead     ",
        &format!("  medium       ucast lo {A} (link lo, ha.cf line 3)"),
        "  group        Marker::svcA::/tmp/m prefers alice: Marker::svcA::/tmp/m",
        "a peer silent for 3 s is declared dead (12 heartbeats missed)",
        // No log destination: where messages will go instead.
        "logging to syslog facility daemon",
        "Configuration OK for node alice",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}
