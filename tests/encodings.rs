//! Legacy sites keep their files as they are: ha.cf, authkeys and haresources with comments in
//! EUC-KR, Shift-JIS or Latin-1 and a resource argument in the same encoding, on both nodes of
//! a mixed pair (a real Heartbeat 3.0.6 node, alice, and ours, bob). Both come up and run their
//! groups, and the argument reaches the resource script byte for byte on either node (the
//! Marker script names its file after it). The data comes from tests/data/encodings (made with
//! iconv by make.sh there). Also node names and a group key in Latin-1 on both nodes of a
//! mixed pair. Root and the heartbeat package.

#[macro_use]
mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

fn data(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/encodings")
            .join(name),
    )
    .expect("test data")
}

/// Every line of `file` gets ` # <comment>` (`inline`), and a comment line is put first.
fn comment_every_line(file: &Path, comment: &[u8], inline: bool) {
    let text = fs::read(file).expect("read");
    let mut out = b"# ".to_vec();
    out.extend_from_slice(comment);
    out.push(b'\n');
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        out.extend_from_slice(line);
        if inline {
            out.extend_from_slice(b"    # ");
            out.extend_from_slice(comment);
        }
        out.push(b'\n');
    }
    fs::write(file, out).expect("write");
}

/// `marker/<node>/<name>` where the name is raw bytes.
fn runs(marker: &Path, node: &str, name: &[u8]) -> bool {
    marker.join(node).join(OsStr::from_bytes(name)).exists()
}

fn escaped(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b < 0x80 {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

#[test]
fn legacy_encoded_files_on_both_nodes_of_a_mixed_pair_run_their_groups() {
    if !require_root_or_skip("legacy_encoded_files_on_both_nodes_of_a_mixed_pair_run_their_groups")
    {
        return;
    }
    let ns = NetnsPair::new("hbenc", "10.250.91");
    for enc in ["euc-kr", "shift-jis", "latin1"] {
        let comment = data(&format!("{enc}.comment"));
        let arg = data(&format!("{enc}.arg"));
        let arg_b: Vec<u8> = [&arg[..], b"-b"].concat();
        let tmp = TestDir::new(&format!("enc-{enc}"));
        let marker: PathBuf = tmp.path.join("marker");
        fs::create_dir_all(&marker).expect("marker");
        let mut hacf = HaCf::new(
            &["alice", "bob"],
            &ucast_lines("hb0", &[&ns.addr_a(), &ns.addr_b()]),
        );
        hacf.extra = vec!["crm off".into()];
        let m = marker.display().to_string();
        let mut haresources = b"# ".to_vec();
        haresources.extend_from_slice(&comment);
        haresources.extend_from_slice(format!("\nalice Marker::svcA::{m} Marker::").as_bytes());
        haresources.extend_from_slice(&arg);
        haresources.extend_from_slice(format!("::{m}    # ").as_bytes());
        haresources.extend_from_slice(&comment);
        haresources.extend_from_slice(format!("\nbob Marker::svcB::{m} Marker::").as_bytes());
        haresources.extend_from_slice(&arg_b);
        haresources.extend_from_slice(format!("::{m}\n").as_bytes());

        let (da, db) = (tmp.node("alice"), tmp.node("bob"));
        for d in [&da, &db] {
            d.write_config(&hacf, &Auth::lab(AuthMethod::Md5), "");
            comment_every_line(&d.conf().join("ha.cf"), &comment, true);
            // authkeys has whole-line comments only (a key ends at the first blank).
            comment_every_line(&d.conf().join("authkeys"), &comment, false);
            fs::write(d.conf().join("haresources"), &haresources).expect("haresources");
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
            &format!("{enc}: both groups run where they belong, legacy arguments included"),
            Duration::from_secs(10),
            &mut [&mut alice, &mut bob],
            || {
                marker_runs(&marker, "alice", "svcA")
                    && runs(&marker, "alice", &arg)
                    && marker_runs(&marker, "bob", "svcB")
                    && runs(&marker, "bob", &arg_b)
            },
        );
        // Our log lines show the argument's bytes escaped, never as garbled text (the Marker
        // script's own lines in the same file carry the raw bytes, as 3.0.6's would).
        let log = String::from_utf8_lossy(&fs::read(bob.log()).expect("our log")).into_owned();
        let running = format!("/Marker {} ", escaped(&arg_b));
        assert!(
            log.lines()
                .any(|l| l.contains("heartbeat") && l.contains("Running ") && l.contains(&running)),
            "{enc}: no 'Running ...{running}' line in our log:\n{log}"
        );
        for (node, svc) in [("alice", &arg_b), ("bob", &arg)] {
            assert!(
                !runs(&marker, node, svc),
                "{enc}: {node} runs the other group"
            );
        }
        // The real node dies: ours takes its group, legacy argument and all.
        settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
        alice.kill();
        let _ = fs::remove_file(marker.join("alice").join("svcA"));
        let _ = fs::remove_file(marker.join("alice").join(OsStr::from_bytes(&arg)));
        wait_until(
            &format!("{enc}: our bob takes alice's group"),
            Timing::FAST.death_window().1 + Duration::from_secs(4),
            &mut [&mut alice, &mut bob],
            || marker_runs(&marker, "bob", "svcA") && runs(&marker, "bob", &arg),
        );
        bob.kill();
    }
}

/// Whether `log` holds a line with all of `parts` (bytes, as the daemon wrote them).
fn log_has(log: &Path, parts: &[&[u8]]) -> bool {
    let Ok(text) = fs::read(log) else {
        return false;
    };
    text.split(|b| *b == b'\n')
        .any(|l| parts.iter().all(|p| l.windows(p.len()).any(|w| w == *p)))
}

/// Nodes named in Latin-1 (`caf\xe9`, the real 3.0.6; `b\xf6b`, ours: host names as
/// `uname -n` gives them, bytes in ha.cf and haresources), with a group key in Latin-1: both
/// join and run their groups, each name reaches the scripts (Marker's directory) as its
/// bytes, our `cl_status` prints the names raw as 3.0.6 does, our log shows them escaped;
/// then ours takes the real node's group when it dies.
#[test]
fn nodes_named_in_latin1_join_a_mixed_pair_and_run_their_groups() {
    if !require_root_or_skip("nodes_named_in_latin1_join_a_mixed_pair_and_run_their_groups") {
        return;
    }
    let (real_name, our_name): (&[u8], &[u8]) = (b"caf\xe9", b"b\xf6b");
    let our_svc: &[u8] = b"b\xf6b-svc";
    let ns = NetnsPair::new("hbleg-nm", "10.250.93");
    let tmp = TestDir::new("leg-names");
    let marker: PathBuf = tmp.path.join("marker");
    fs::create_dir_all(&marker).expect("marker");
    let hacf = HaCf::new(&[], &ucast_lines("hb0", &[&ns.addr_a(), &ns.addr_b()]));
    let m = marker.display().to_string();
    let mut haresources = Vec::new();
    for (node, svc) in [(real_name, &b"svcA"[..]), (our_name, our_svc)] {
        haresources.extend_from_slice(node);
        haresources.extend_from_slice(b" Marker::");
        haresources.extend_from_slice(svc);
        haresources.extend_from_slice(format!("::{m}\n").as_bytes());
    }
    let da = tmp.node("cafe").named(real_name);
    let db = tmp.node("bob").named(our_name);
    for d in [&da, &db] {
        d.write_config(&hacf, &Auth::lab(AuthMethod::Md5), "");
        let mut cf = fs::read(d.conf().join("ha.cf")).expect("ha.cf");
        for n in [real_name, our_name] {
            cf.extend_from_slice(b"node ");
            cf.extend_from_slice(n);
            cf.push(b'\n');
        }
        fs::write(d.conf().join("ha.cf"), cf).expect("ha.cf");
        fs::write(d.conf().join("haresources"), &haresources).expect("haresources");
    }
    install_resource_scripts(&da, true);
    install_resource_scripts(&db, false);

    let mut alice = RealNode::start(&da, &ns.ns_a());
    let mut bob = OurNode::start(&db, Some(&ns.ns_b()), None);
    let status_of = |peer: &[u8]| [b"Status update for node ".to_vec(), peer.to_vec()].concat();
    let (real_sees, ours_sees) = (status_of(our_name), status_of(b"caf\\xe9"));
    let (alog, blog) = (alice.log(), bob.log());
    wait_until(
        "each node logs the other, named in Latin-1, active",
        Timing::FAST.initdead + Duration::from_secs(5),
        &mut [&mut alice, &mut bob],
        || {
            log_has(&alog, &[&real_sees, b": status active"])
                && log_has(&blog, &[&ours_sees, b": status active"])
        },
    );
    wait_until(
        "both groups run where they belong, under the Latin-1 names",
        Duration::from_secs(15),
        &mut [&mut alice, &mut bob],
        || {
            runs(&marker.join(OsStr::from_bytes(real_name)), "", b"svcA")
                && runs(&marker.join(OsStr::from_bytes(our_name)), "", our_svc)
        },
    );
    // Our log shows the bytes escaped; nothing of them raw.
    let log = fs::read(bob.log()).expect("our log");
    assert!(
        !log.windows(4).any(|w| w == b"caf\xe9"),
        "raw bytes in our log"
    );
    // Our cl_status prints the names as their bytes, as 3.0.6's does, and finds the peer by them.
    let cl = |args: &[&OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cl_status"))
            .arg("--rundir")
            .arg(db.run())
            .args(args)
            .output()
            .expect("cl_status");
        (out.stdout, out.status.code())
    };
    let (listed, code) = cl(&[OsStr::new("listnodes")]);
    assert_eq!(code, Some(0));
    let mut nodes: Vec<&[u8]> = listed
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    nodes.sort();
    assert_eq!(nodes, [our_name, real_name]);
    let (st, code) = cl(&[OsStr::new("nodestatus"), OsStr::from_bytes(real_name)]);
    assert_eq!((st, code), (b"active\n".to_vec(), Some(0)));

    // The real node dies: ours takes its group.
    settle(bob.uptime().min(alice.uptime()), Timing::SETTLE);
    alice.kill();
    let _ = fs::remove_file(marker.join(OsStr::from_bytes(real_name)).join("svcA"));
    wait_until(
        "our node takes the group of the dead Latin-1 node",
        Timing::FAST.death_window().1 + Duration::from_secs(4),
        &mut [&mut alice, &mut bob],
        || runs(&marker.join(OsStr::from_bytes(our_name)), "", b"svcA"),
    );
    bob.kill();
}

/// `env` values in a legacy encoding reach respawn clients byte for byte (3.0.6 sets them in
/// its own environment, so every child has them). Our daemon alone on loopback, no root.
#[test]
fn env_values_reach_respawn_clients_byte_for_byte() {
    let tmp = TestDir::new("enc-env");
    let port = free_udp_port(&["127.0.0.1".parse().expect("address")]);
    let mut hacf = HaCf::new(&["alice"], &ucast_lines("lo", &["127.0.0.2"])).udpport(port);
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("our user name");
    let out = tmp.path.join("env-out");
    hacf.extra.push(format!(
        "respawn {user} /bin/sh -c 'printf %s \"$HA_GREETING\" > {}; exec sleep 30'",
        out.display()
    ));
    let da = tmp.node("alice");
    da.write_config(&hacf, &Auth::lab(AuthMethod::Md5), "");
    let arg = data("latin1.arg");
    let mut cf = fs::read(da.conf().join("ha.cf")).expect("ha.cf");
    cf.extend_from_slice(b"env GREETING=");
    cf.extend_from_slice(&arg);
    cf.push(b'\n');
    fs::write(da.conf().join("ha.cf"), cf).expect("ha.cf");

    let mut alice = OurNode::start(&da, None, Some("127.0.0.1"));
    wait_until(
        "the respawn client wrote its HA_GREETING",
        Duration::from_secs(15),
        &mut [&mut alice],
        || fs::metadata(&out).is_ok_and(|m| m.len() > 0),
    );
    assert_eq!(fs::read(&out).expect("env-out"), arg);
    alice.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(alice.wait_exit(Duration::from_secs(15)).is_some());
}
