use std::path::Path;

use super::*;
use crate::cluster::{Admin, NodeStatus, Which};

const AUTHKEYS: &str = "auth 1\n1 sha1 s3cret\n";
const HARESOURCES: &str = "alice Sim::a1 Sim::a2\nbob Sim::b1\n";

fn config(auto_failback: &str, media: &str) -> crate::config::Config {
    let hacf = format!(
        "keepalive 100ms\ndeadtime 1\nwarntime 500ms\ninitdead 2\n{media}\nauto_failback {auto_failback}\nnode alice\nnode bob\n"
    );
    config_from_texts(
        hacf.as_bytes(),
        AUTHKEYS.as_bytes(),
        HARESOURCES.as_bytes(),
        Path::new("/etc/ha.d"),
    )
    .unwrap_or_else(|d| panic!("{d:?}"))
}

fn pair(auto_failback: &str, media: &str, seed: u64) -> World {
    let mut w = World::new(config(auto_failback, media), ScriptTimes::fixed(20), seed);
    w.record_logs = true;
    w.start(0);
    w.start(1);
    w
}

/// Run to `until`, checking safety (with a settling bound) and consistency at every instant.
fn run_checked(w: &mut World, until: u64) {
    while w.step(until).is_some() {
        if let Some(v) = w.take_violation() {
            panic!("{v}");
        }
        w.check_safety(1000).unwrap();
        w.check_consistency().unwrap();
    }
}

#[test]
fn a_pair_runs_its_groups_fails_over_and_back() {
    let mut w = pair("legacy", "bcast eth0", 1);
    // Past the first seconds, in which a node advertises a longer dead time.
    run_checked(&mut w, 10_000);
    assert_eq!(w.placement(), vec![vec![0], vec![1]], "{}", w.dump(0));
    // alice's calls: status then start for each resource, in order, with times.
    let alice: Vec<String> = w
        .calls
        .iter()
        .filter(|c| c.host == 0)
        .filter_map(ScriptCall::effective)
        .collect();
    assert_eq!(alice, ["+Sim::a1", "+Sim::a2"]);
    assert!(w.calls.iter().all(|c| c.ended_ms == Some(c.began_ms + 20)));
    w.crash(0);
    let crashed = w.now_ms();
    run_checked(&mut w, 15_000);
    assert_eq!(w.placement(), vec![vec![1], vec![1]]);
    let took = w
        .calls
        .iter()
        .find(|c| c.host == 1 && c.spec == "Sim::a2" && c.effective().is_some())
        .and_then(|c| c.ended_ms)
        .unwrap();
    // Declared dead after deadtime (1 s), give or take a keepalive; then the scripts.
    assert!((crashed + 900..crashed + 1300).contains(&took), "{took}");
    w.start(0);
    run_checked(&mut w, 25_000);
    assert_eq!(w.placement(), vec![vec![0], vec![1]], "{}", w.dump(1));
}

#[test]
fn standby_moves_groups_in_negotiated_mode() {
    let mut w = pair("on", "bcast eth0", 2);
    run_checked(&mut w, 15_000);
    assert_eq!(w.placement(), vec![vec![0], vec![1]]);
    let r = w.admin(0, Admin::Standby(Which::All));
    assert!(r.is_some_and(|r| r.is_ok()));
    run_checked(&mut w, 20_000);
    assert_eq!(
        w.placement(),
        vec![vec![1], vec![1]],
        "{}\n---- bob\n{}",
        w.dump(0),
        w.dump(1)
    );
    w.admin(0, Admin::Takeover(Which::All));
    run_checked(&mut w, 25_000);
    assert_eq!(w.placement(), vec![vec![0], vec![0]], "{}", w.dump(0));
}

#[test]
fn a_partition_runs_groups_twice_and_the_heal_settles_it() {
    let mut w = pair("legacy", "bcast eth0", 3);
    run_checked(&mut w, 5_000);
    w.schedule(
        5_000,
        Event::Fault(FaultId(7), Fault::partition(&[0], &[1])),
    );
    w.schedule(10_000, Event::Heal(FaultId(7)));
    run_checked(&mut w, 9_000);
    assert_eq!(w.placement(), vec![vec![0, 1], vec![0, 1]]);
    run_checked(&mut w, 20_000);
    assert_eq!(w.placement(), vec![vec![0], vec![1]], "{}", w.dump(0));
    assert!(w.settled());
}

#[test]
fn a_serial_line_alone_carries_the_pair_in_classic_form() {
    let mut w = pair("legacy", "serial /dev/ttyS0\nbcast eth0", 4);
    w.net.add(Fault::medium_down(1));
    run_checked(&mut w, 20_000);
    assert_eq!(w.count_logs(0, "is dead"), 0, "{}", w.dump(0));
    assert_eq!(
        w.hosts[0].cluster().unwrap().node_status("bob"),
        Some(NodeStatus::Active)
    );
    assert!(w.log_time(0, "Link bob:/dev/ttyS0 up.").is_some());
    // The dead medium is seen dead; the serial line never is.
    assert!(
        w.log_time(0, "Link bob:eth0 dead.").is_some(),
        "{}",
        w.dump(0)
    );
    assert!(w.log_time(0, "Link bob:/dev/ttyS0 dead.").is_none());
}

#[test]
fn a_ping_node_echoes_and_dies_when_its_medium_does() {
    let mut w = pair("legacy", "bcast eth0\nping 10.0.0.9", 5);
    run_checked(&mut w, 5_000);
    let st = |w: &World| w.hosts[0].cluster().unwrap().node_status("10.0.0.9");
    assert_eq!(st(&w), Some(NodeStatus::Ping), "{}", w.dump(0));
    w.schedule(5_000, Event::Fault(FaultId(1), Fault::medium_down(1)));
    run_checked(&mut w, 10_000);
    assert_eq!(st(&w), Some(NodeStatus::Dead), "{}", w.dump(0));
}

#[test]
fn hooks_and_notifications_are_carried() {
    let mut w = pair("legacy", "bcast eth0", 6);
    run_checked(&mut w, 5_000);
    w.crash(1);
    run_checked(&mut w, 10_000);
    let notified: Vec<&HostEvent> = w.hosts[0]
        .events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| matches!(e, HostEvent::Notify(_)))
        .collect();
    assert!(!notified.is_empty());
    assert!(w.hosts[0]
        .events
        .iter()
        .any(|(_, e)| *e == HostEvent::NodeDead("bob".into())));
}

#[test]
fn the_checks_fail_when_they_should() {
    let mut w = pair("legacy", "bcast eth0", 7);
    w.scripts.stop_leaves_running = true;
    run_checked(&mut w, 5_000);
    w.stop(0);
    let mut found = None;
    while w.step(10_000).is_some() {
        if let Some(v) = w.take_violation().or(w.check_consistency().err()) {
            found = Some(v);
            break;
        }
    }
    let v = found.expect("a stop that does not stop is caught");
    assert_eq!(v.kind, ViolationKind::Consistency, "{v}");
    let mut w = pair("legacy", "bcast eth0", 7);
    run_checked(&mut w, 5_000);
    w.hosts[0].running.insert("Sim::b1".into());
    let v = w.check_safety(1000).unwrap_err();
    assert!(v
        .to_string()
        .starts_with("safety: group Sim::b1 runs on alice and on bob"));
    for h in &mut w.hosts {
        h.running.clear();
    }
    let v = w.check_liveness(1000, &[]).unwrap_err();
    assert!(v
        .to_string()
        .starts_with("liveness: group Sim::a1 runs nowhere"));
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let run = |seed: u64| {
        let mut w = pair("on", "bcast eth0", seed);
        w.net.add(Fault::everywhere(Effect::Lossy {
            loss_pct: 20,
            dup_pct: 5,
            delay_ms: 30,
        }));
        w.run_until(15_000);
        (w.calls.clone(), w.hosts[0].logs.clone())
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11).1, run(12).1);
}

#[test]
fn steps_parse_and_render_back() {
    use super::scenario::{parse_time, Step};
    let nodes = vec!["alice".to_string(), "bob".to_string()];
    let names = nodes.clone();
    for text in [
        "start alice bob",
        "kill alice",
        "stop bob",
        "standby bob",
        "standby bob foreign",
        "takeover alice local",
        "partition alice bob",
        "oneway bob alice",
        "heal",
        "wait 1.5s",
    ] {
        let s = Step::parse(text, &nodes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.render(&names), text);
    }
    assert_eq!(
        Step::parse("partition BOB bob", &nodes),
        Ok(Step::Partition(vec![1]))
    );
    assert_eq!(parse_time("10"), Some(10_000));
    assert_eq!(parse_time("10s"), Some(10_000));
    assert_eq!(parse_time("500ms"), Some(500));
    assert_eq!(parse_time("2000us"), Some(2));
    assert_eq!(parse_time("s"), None);
    assert_eq!(parse_time("-1"), None);
    let e = Step::parse("takeover carol", &nodes).unwrap_err();
    assert_eq!(e.step, "takeover carol");
}

#[test]
fn a_stonith_device_resets_the_dead_before_the_takeover() {
    use super::scenario::{Simulation, Step};
    let hacf = "keepalive 100ms\ndeadtime 1\ninitdead 2\nbcast eth0\nstonith_host * null alice bob\nnode alice\nnode bob\n";
    let cfg = config_from_texts(
        hacf.as_bytes(),
        AUTHKEYS.as_bytes(),
        HARESOURCES.as_bytes(),
        Path::new("/etc/ha.d"),
    )
    .unwrap_or_else(|d| panic!("{d:?}"));
    let mut sim = Simulation::new(cfg, 20, 1);
    sim.run_step(&Step::Start(vec![0, 1]));
    sim.run_step(&Step::Wait(5_000));
    let r = sim.run_step(&Step::Kill(0));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("bob runs stonith") && n.contains("reset alice")),
        "{:?}",
        r.notes
    );
    assert_eq!(r.placement[0].nodes, ["bob"]);
}

/// The takeover hot path: bob checks alice's resources while she is late, so at her death the
/// first script he runs for her group is a start, forked in the instant she is declared dead.
#[test]
fn a_takeover_starts_at_the_death_when_the_early_check_saw_the_group_stopped() {
    let mut w = pair("legacy", "bcast eth0", 1);
    run_checked(&mut w, 10_000);
    assert_eq!(w.placement(), vec![vec![0], vec![1]], "{}", w.dump(1));
    w.crash(0);
    let crashed = w.now_ms();
    run_checked(&mut w, 15_000);
    assert_eq!(w.placement(), vec![vec![1], vec![1]], "{}", w.dump(1));
    let after: Vec<&ScriptCall> = w
        .calls
        .iter()
        .filter(|c| c.host == 1 && c.spec == "Sim::a1" && c.began_ms > crashed)
        .collect();
    // An early status, then (after deadtime) the start, with no status in between.
    let status = after
        .iter()
        .position(|c| c.op == crate::cluster::resources::Op::Status);
    let start = after
        .iter()
        .position(|c| c.op == crate::cluster::resources::Op::Start);
    let (Some(status), Some(start)) = (status, start) else {
        panic!("{after:?}");
    };
    assert_eq!(start, status + 1, "{after:?}");
    assert!(
        after[start].began_ms >= after[status].ended_ms.unwrap_or(u64::MAX),
        "{after:?}"
    );
    // The early check ran well before the death (deadtime 1 s, keepalive 200 ms or less).
    assert!(
        after[start].began_ms - after[status].began_ms >= 300,
        "{after:?}"
    );
}

/// A node alone at start takes the silent peer's group at initdead, before its first comm-up:
/// the start-up verify that follows must not take that group for a predecessor's leftover
/// (seen in CTS: a CRIT line, then a second stop of the group when the peer came).
#[test]
fn a_group_taken_before_comm_up_is_not_a_leftover() {
    for mode in ["legacy", "on", "off"] {
        let mut w = World::new(config(mode, "bcast eth0"), ScriptTimes::fixed(20), 1);
        w.record_logs = true;
        w.start(0);
        run_checked(&mut w, 6_000);
        assert_eq!(
            w.placement(),
            vec![vec![0], vec![0]],
            "{mode}\n{}",
            w.dump(0)
        );
        let leftover = w.hosts[0]
            .logs
            .iter()
            .any(|l| l.text.contains("is active, and should not be"));
        assert!(!leftover, "{mode}\n{}", w.dump(0));
        w.start(1);
        run_checked(&mut w, 15_000);
        let stops_of_b1 = w
            .calls
            .iter()
            .filter(|c| {
                c.host == 0 && c.spec == "Sim::b1" && c.op == crate::cluster::resources::Op::Stop
            })
            .count();
        assert!(
            stops_of_b1 <= 1,
            "{mode}: alice stopped b1 {stops_of_b1} times\n{}",
            w.dump(0)
        );
    }
}
