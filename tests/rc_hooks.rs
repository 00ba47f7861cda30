//! The site's rc.d hooks (what 3.0.6 runs through harc) between two of our nodes on loopback,
//! legacy mode, no root: a peer's status changes, its death (the synthesized `st=dead`), link
//! changes, `hb_takeover`, a site's own message type sent through the FIFO; one hook at a time
//! and never while a resource script runs; the stock 3.0.6 scripts are not run, a site's edit
//! of one is.

#[macro_use]
mod common;

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

/// Every hook run appends one line: who, what, which fields, when (ns) it began and ended.
/// It sleeps a little so that two runs at once would overlap visibly.
const HOOK: &str = r#"#!/bin/sh
begin=$(date +%s%N)
sleep 0.3
echo "hook node=$HA_CURHOST name=${0##*/} argc=$# argv=$* t=$HA_t src=$HA_src st=$HA_st hnode=$HA_node ifname=$HA_ifname foo=$HA_foo rsc_hold=$HA_rsc_hold ostatus=$HA_OSTATUS deadtime=$HA_deadtime begin=$begin end=$(date +%s%N)" >>"TIMELINE"
"#;

fn hook(timeline: &Path) -> String {
    HOOK.replace("TIMELINE", &timeline.display().to_string())
}

/// A resource that takes a second to start and records when: `Slow NAME DIR op`.
const SLOW: &str = r#"#!/bin/sh
name=$1 dir=$2 op=$3
state=$dir/$HA_CURHOST-$name
case $op in
start)
	begin=$(date +%s%N)
	sleep 1
	touch "$state"
	echo "rsc node=$HA_CURHOST name=$name begin=$begin end=$(date +%s%N)" >>"$dir/timeline"
	;;
stop) rm -f "$state" ;;
status) if [ -e "$state" ]; then echo running; else echo stopped; exit 3; fi ;;
esac
exit 0
"#;

fn write_exec(path: &Path, text: &str) {
    write_file(path, text);
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[derive(Debug, Clone)]
struct Run {
    kind: String, // "hook" or "rsc"
    fields: Vec<(String, String)>,
}

impl Run {
    fn get(&self, k: &str) -> &str {
        self.fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    fn span(&self) -> (u128, u128) {
        (
            self.get("begin").parse().unwrap_or(0),
            self.get("end").parse().unwrap_or(0),
        )
    }
}

fn timeline(dir: &Path) -> Vec<Run> {
    fs::read_to_string(dir.join("timeline"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut words = l.split(' ');
            let kind = words.next()?.to_string();
            let fields = words
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Some(Run { kind, fields })
        })
        .collect()
}

fn hooks<'a>(runs: &'a [Run], node: &str, name: &str) -> Vec<&'a Run> {
    runs.iter()
        .filter(|r| r.kind == "hook" && r.get("node") == node && r.get("name") == name)
        .collect()
}

/// A stock 3.0.6 rc.d script, if the reference package put one on this machine.
fn stock(name: &str) -> Option<String> {
    fs::read_to_string(Path::new("/etc/ha.d/rc.d").join(name)).ok()
}

#[test]
fn site_hooks_run_serially_with_the_message_fields() {
    let tmp = TestDir::new("rc-hooks");
    let shared = tmp.path.join("shared");
    fs::create_dir_all(&shared).expect("shared dir");
    let addrs: [Ipv4Addr; 2] = [A, B].map(|a| a.parse().expect("addr"));
    let mut hacf =
        HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[A, B])).udpport(free_udp_port(&addrs));
    // Legacy mode; debug 1 for the "not run: stock" lines.
    hacf.extra = vec!["crm off".into(), "debug 1".into()];
    let hook = hook(&shared.join("timeline"));
    let haresources = format!("alice Slow::svcA::{}\n", shared.display());
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    let stock_status = stock("status");
    let stock_resp = stock("ip-request-resp");
    for d in [&da, &db] {
        d.write_config(&hacf, &Auth::lab(AuthMethod::Sha1), &haresources);
        let rsc = d.conf().join("resource.d");
        fs::create_dir_all(&rsc).expect("resource.d");
        write_exec(&rsc.join("Slow"), SLOW);
        let rc = d.conf().join("rc.d");
        fs::create_dir_all(&rc).expect("rc.d");
        for name in ["hb_takeover", "site_event"] {
            write_exec(&rc.join(name), &hook);
        }
    }
    let (rca, rcb) = (da.conf().join("rc.d"), db.conf().join("rc.d"));
    // bob: the site's own status and ifstat hooks; an edited stock ip-request-resp (it records
    // and stops before calling anything).
    write_exec(&rcb.join("status"), &hook);
    write_exec(&rcb.join("ifstat"), &hook);
    if let Some(s) = &stock_resp {
        let (first, rest) = s.split_once('\n').unwrap_or((s, ""));
        let edited = format!(
            "{first}\n{}\nexit 0\n{rest}",
            hook.lines().skip(1).collect::<Vec<_>>().join("\n")
        );
        write_exec(&rcb.join("ip-request-resp"), &edited);
    }
    // alice: the stock status and ip-request-resp (with a comment added): never run.
    if let (Some(st), Some(resp)) = (&stock_status, &stock_resp) {
        write_exec(&rca.join("status"), st);
        write_exec(
            &rca.join("ip-request-resp"),
            &format!("{resp}\n# checked by ops\n"),
        );
    } else {
        eprintln!("SKIP: no stock 3.0.6 rc.d scripts in /etc/ha.d/rc.d; stock rule not checked");
    }

    let mut alice = OurNode::start(&da, None, Some(A));
    let mut bob = OurNode::start(&db, None, Some(B));
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(1),
    );
    let s = Duration::from_secs(10);

    // bob sees alice come up: status hooks with her status, ifstat for her link.
    wait_until(
        "bob's status hook for alice active",
        s,
        &mut [&mut alice, &mut bob],
        || {
            hooks(&timeline(&shared), "bob", "status")
                .iter()
                .any(|r| r.get("src") == "alice" && r.get("st") == "active")
        },
    );
    wait_until(
        "bob's ifstat hook for alice's link",
        s,
        &mut [&mut alice, &mut bob],
        || {
            hooks(&timeline(&shared), "bob", "ifstat").iter().any(|r| {
                r.get("hnode") == "alice" && r.get("ifname") == "lo" && r.get("st") == "up"
            })
        },
    );
    let runs = timeline(&shared);
    for r in hooks(&runs, "bob", "status") {
        assert_eq!(r.get("argv"), "status", "{r:?}");
        assert_eq!(r.get("argc"), "1", "{r:?}");
        assert_eq!(r.get("t"), "status", "{r:?}");
        assert_eq!(r.get("deadtime"), "3000ms", "{r:?}");
    }
    or_dump!(
        wait_for_log(
            &db.log(),
            &format!("Running {}//rc.d/status status", db.conf().display()),
            s
        ),
        alice,
        bob
    );

    // alice grants herself svcA: bob's edited stock hook runs for her ip-request-resp.
    if stock_resp.is_some() {
        wait_until(
            "bob's edited ip-request-resp hook",
            s,
            &mut [&mut alice, &mut bob],
            || {
                hooks(&timeline(&shared), "bob", "ip-request-resp")
                    .iter()
                    .any(|r| r.get("t") == "ip-request-resp" && r.get("argv") == "ip-request-resp")
            },
        );
        or_dump!(
            wait_for_log(
                &db.log(),
                "calls ResourceManager, which this heartbeat does not have",
                s
            ),
            alice,
            bob
        );
    }

    // A site's own message type, written into alice's FIFO: both nodes run rc.d/site_event.
    let fifo = da.state().join("fifo");
    fs::write(&fifo, ">>>\nt=site_event\nfoo=bar\n<<<\n").expect("write fifo");
    wait_until(
        "site_event hook on both nodes",
        s,
        &mut [&mut alice, &mut bob],
        || {
            let runs = timeline(&shared);
            ["alice", "bob"].iter().all(|n| {
                hooks(&runs, n, "site_event").iter().any(|r| {
                    r.get("foo") == "bar"
                        && r.get("src") == "alice"
                        && r.get("argv") == "site_event"
                })
            })
        },
    );

    // hb_takeover on alice: both nodes run rc.d/hb_takeover with the requested set.
    let out = Command::new(env!("CARGO_BIN_EXE_hb_takeover"))
        .arg("--rundir")
        .arg(da.run())
        .arg("all")
        .output()
        .expect("hb_takeover");
    assert!(out.status.success(), "hb_takeover: {out:?}");
    wait_until(
        "hb_takeover hook on both nodes",
        s,
        &mut [&mut alice, &mut bob],
        || {
            let runs = timeline(&shared);
            ["alice", "bob"].iter().all(|n| {
                hooks(&runs, n, "hb_takeover")
                    .iter()
                    .any(|r| r.get("rsc_hold") == "all" && r.get("src") == "alice")
            })
        },
    );

    // alice dies: bob takes svcA over (a one-second start) and runs status st=dead, after it.
    settle(alice.uptime(), Timing::SETTLE);
    alice.kill();
    let late = Timing::FAST.death_window().1 + Duration::from_secs(5);
    wait_until(
        "bob's status hook for alice dead",
        late,
        &mut [&mut alice, &mut bob],
        || {
            hooks(&timeline(&shared), "bob", "status")
                .iter()
                .any(|r| r.get("src") == "alice" && r.get("st") == "dead")
        },
    );
    wait_until(
        "bob's ifstat hook for alice's link dead",
        s,
        &mut [&mut alice, &mut bob],
        || {
            hooks(&timeline(&shared), "bob", "ifstat")
                .iter()
                .any(|r| r.get("hnode") == "alice" && r.get("st") == "dead")
        },
    );
    wait_until(
        "svcA's start on bob recorded",
        s,
        &mut [&mut alice, &mut bob],
        || {
            timeline(&shared)
                .iter()
                .any(|r| r.kind == "rsc" && r.get("node") == "bob")
        },
    );
    let runs = timeline(&shared);
    let starts: Vec<&Run> = runs
        .iter()
        .filter(|r| r.kind == "rsc" && r.get("node") == "bob")
        .collect();
    assert_eq!(starts.len(), 1, "svcA started once on bob: {runs:?}");
    let dead = hooks(&runs, "bob", "status")
        .into_iter()
        .find(|r| r.get("st") == "dead")
        .expect("dead hook");
    assert_eq!(dead.get("ostatus"), "active");
    assert!(
        dead.span().0 >= starts[0].span().1,
        "the status hook began before the takeover's start script ended: {dead:?} {:?}",
        starts[0]
    );
    // bob's hooks: one at a time, never during a resource script.
    let bob_hooks: Vec<&Run> = runs
        .iter()
        .filter(|r| r.kind == "hook" && r.get("node") == "bob")
        .collect();
    assert!(bob_hooks.len() >= 6, "{bob_hooks:?}");
    for (i, a) in bob_hooks.iter().enumerate() {
        let (a0, a1) = a.span();
        for b in bob_hooks.iter().skip(i + 1).chain(starts.iter()) {
            let (b0, b1) = b.span();
            assert!(a1 <= b0 || b1 <= a0, "overlap: {a:?} and {b:?}");
        }
    }

    // The stock scripts on alice never ran; each skip left a debug line.
    if stock_status.is_some() {
        let log = fs::read_to_string(da.log()).unwrap_or_default();
        let debug = fs::read_to_string(da.debug_log()).unwrap_or_default();
        let rc = format!("{}//rc.d", da.conf().display());
        assert!(
            !log.contains(&format!("Running {rc}/ip-request-resp"))
                && !log.contains(&format!("Running {rc}/status")),
            "a stock script ran on alice:\n{log}"
        );
        assert!(
            debug.contains(&format!(
                "{rc}/ip-request-resp not run: the stock 3.0.6 hook"
            )) && debug.contains(&format!("{rc}/status not run: the stock 3.0.6 hook")),
            "no skip line in alice's debug log:\n{debug}"
        );
        assert!(hooks(&runs, "alice", "status").is_empty());
    }
}

/// `rc.d/local_giveip` (which 3.0.6's stock ip-request hook runs): on the node that gives a
/// group to the node asking for it, run before the group's stop scripts, with the request's
/// fields, and the group moves all the same.
#[test]
fn local_giveip_runs_before_a_group_is_given_back() {
    let pair = MarkerPair::loopback("giveip")
        .extra(&["crm off"])
        .haresources("alice Marker::svcA::{m}\n")
        .build();
    let (marker, [da, db]) = (pair.marker.clone(), &pair.dirs);
    let record = pair.tmp.path.join("giveip");
    for d in [da, db] {
        fs::create_dir_all(d.conf().join("rc.d")).expect("rc.d");
        // Records its arguments, the request and whether the group still ran at that moment.
        write_exec(
            &d.conf().join("rc.d").join("local_giveip"),
            &format!(
                "#!/bin/sh\nif [ -e {m}/$HA_CURHOST/svcA ]; then r=running; else r=stopped; fi\n\
                 echo \"$HA_CURHOST argv=$* t=$HA_t src=$HA_src ipaddr=$HA_ipaddr svcA=$r\" >>{rec}\n",
                m = marker.display(),
                rec = record.display()
            ),
        );
    }
    let mut alice = pair.start_ours(0);
    let mut bob = pair.start_ours(1);
    wait_mutually_active(
        &mut alice,
        &mut bob,
        Timing::FAST.initdead + Duration::from_secs(1),
    );
    wait_until(
        "svcA on alice",
        Duration::from_secs(5),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA"),
    );
    settle(alice.uptime().min(bob.uptime()), Timing::SETTLE);
    alice.kill();
    let _ = fs::remove_file(marker.join("alice").join("svcA"));
    wait_until(
        "bob takes svcA",
        Timing::FAST.death_window().1 + Duration::from_secs(3),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "bob", "svcA"),
    );
    assert!(!record.exists(), "no hook on a takeover");
    alice.restart();
    wait_until(
        "svcA back on alice",
        Duration::from_secs(12),
        &mut [&mut alice, &mut bob],
        || marker_runs(&marker, "alice", "svcA") && !marker_runs(&marker, "bob", "svcA"),
    );
    let text = fs::read_to_string(&record).expect("local_giveip ran");
    assert_eq!(
        text,
        format!(
            "bob argv=ip-request t=ip-request src=alice ipaddr=Marker::svcA::{m} svcA=running\n",
            m = marker.display()
        )
    );
}
