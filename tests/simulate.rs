//! `heartbeat --simulate` and the scenario runner behind it (`heartbeat::sim::scenario`):
//!
//! * every resource scenario of the matrix (`scenarios/model.rs`, whose expectations were
//!   checked against real 3.0.6 daemons) in each mode, simulated: the placement after each step
//!   is the matrix's, and so are each node's effective script calls (the matrix's own allowance
//!   for a healed partition included);
//! * the sample configuration (etc-ha.d) through the default scenario;
//! * the problems it reports (a group running twice or nowhere), `--json`'s shape, step parse
//!   errors, and the same output for the same seed.

#[allow(dead_code)]
#[path = "scenarios/model.rs"]
mod model;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use heartbeat::sim::scenario::{ProblemKind, Simulation, Step};
use heartbeat::sim::{config_from_texts, Outcome};
use model::{Action, Allowance, Mode, Placement, Who, GROUPS};

const HB: &str = env!("CARGO_BIN_EXE_heartbeat");
const AUTHKEYS: &str = "auth 1\n1 sha1 simulate\n";

/// The matrix's pair: its timers (tests/scenarios.rs), its groups with the resource names the
/// expectations use.
fn matrix_hacf(mode: Mode) -> String {
    format!(
        "keepalive 500ms\nwarntime 2\ndeadtime 3\ninitdead 6\nbcast eth0\n{}\nnode alice\nnode bob\n",
        mode.hacf_line()
    )
}

fn matrix_haresources() -> String {
    GROUPS
        .iter()
        .map(|(_, owner, rscs)| format!("{} {}\n", owner.name(), rscs.join(" ")))
        .collect()
}

fn step_of(a: Action) -> Step {
    let i = |w: Who| w.index();
    let which = |s: Option<&str>| s.map(|s| heartbeat::cluster::Which::parse(s).unwrap());
    match a {
        Action::StartBoth => Step::Start(vec![0, 1]),
        Action::Start(w) => Step::Start(vec![i(w)]),
        Action::Kill(w) => Step::Kill(i(w)),
        Action::Stop(w) => Step::Stop(i(w)),
        Action::Standby(w, s) => Step::Standby(i(w), which(s)),
        Action::Takeover(w, s) => Step::Takeover(i(w), which(s)),
        Action::Partition => Step::Partition(vec![0, 1]),
        Action::Heal => Step::Heal,
    }
}

/// Every scenario of the matrix, in every mode: placement and calls after each step.
#[test]
fn the_matrix_placements_and_calls_are_simulated() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for mode in [Mode::Legacy, Mode::On, Mode::Off] {
        let cfg = config_from_texts(
            matrix_hacf(mode).as_bytes(),
            AUTHKEYS.as_bytes(),
            matrix_haresources().as_bytes(),
            Path::new("/etc/ha.d"),
        )
        .expect("the matrix configuration loads");
        for sc in model::all(mode) {
            let mut sim = Simulation::new(cfg.clone(), 100, 1);
            for (k, st) in sc.steps.iter().enumerate() {
                let first_call = sim.world.calls.len();
                let r = sim.run_step(&step_of(st.action));
                checked += 1;
                let mut got = Placement {
                    full: [Vec::new(), Vec::new()],
                    partial: [Vec::new(), Vec::new()],
                };
                for (g, p) in r.placement.iter().enumerate() {
                    for (list, names) in [
                        (&mut got.full[g], &p.nodes),
                        (&mut got.partial[g], &p.partial),
                    ] {
                        for n in names {
                            list.push(if n == "alice" { Who::Alice } else { Who::Bob });
                        }
                    }
                }
                let expected_calls = match &st.allowance {
                    Some(Allowance::HealWithoutRestart { ours }) => ours.clone(),
                    None => st.calls.clone(),
                };
                let calls: model::Calls = Who::BOTH.map(|w| {
                    sim.world.calls[first_call..]
                        .iter()
                        .filter(|c| c.host == w.index())
                        .filter_map(|c| c.effective())
                        .collect()
                });
                let what = format!("{} {} step {} ({})", mode.name(), sc.name, k + 1, st.action);
                if got != st.placement {
                    failures.push(format!(
                        "{what}: placement {got}, expected {}",
                        st.placement
                    ));
                } else if calls != expected_calls {
                    failures.push(format!(
                        "{what}: calls {}, expected {}",
                        model::render_calls(&calls),
                        model::render_calls(&expected_calls)
                    ));
                }
                if !r.problems.is_empty() && st.action != Action::Partition {
                    failures.push(format!("{what}: problems {:?}", r.problems));
                }
            }
        }
    }
    assert!(checked > 90, "{checked} steps");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("etc-ha.d")
}

fn simulate(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(HB)
        .arg("--simulate")
        .arg("--confdir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run heartbeat --simulate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The sample configuration (auto_failback on) through the default scenario: after each
/// step, the placement the matrix's `on` rules give.
#[test]
fn the_sample_configuration_through_the_default_scenario() {
    let (code, out, err) = simulate(&sample_dir(), &["--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let web = "Marker::web::/tmp/hb-demo/marker";
    let db = "Marker::db::/tmp/hb-demo/marker";
    let own = [("start alice bob", "alice", "bob")];
    let expected: Vec<(&str, &str, &str)> = own
        .into_iter()
        .chain([
            ("kill alice", "bob", "bob"),
            ("start alice", "alice", "bob"),
            ("kill bob", "alice", "alice"),
            ("start bob", "alice", "bob"),
            ("stop alice", "bob", "bob"),
            ("start alice", "alice", "bob"),
            ("stop bob", "alice", "alice"),
            ("start bob", "alice", "bob"),
            ("standby alice", "bob", "bob"),
            ("takeover alice", "alice", "alice"),
            ("standby bob", "alice", "alice"),
            ("takeover bob", "bob", "bob"),
            ("partition alice", "alice+bob", "alice+bob"),
            ("heal", "alice", "bob"),
        ])
        .collect();
    let steps = v["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), expected.len());
    for (s, (name, w, d)) in steps.iter().zip(expected) {
        assert_eq!(s["step"], name);
        let p = s["placement"].as_array().unwrap();
        let nodes = |i: usize| {
            p[i]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join("+")
        };
        assert_eq!(p[0]["group"], web);
        assert_eq!(p[1]["group"], db);
        assert_eq!(
            (nodes(0).as_str(), nodes(1).as_str()),
            (w, d),
            "after {name}"
        );
    }
    // The takeover when alice is killed: deadtime 4 s, then the starts of two resources at the
    // assumed 2 s each, each after a status unless checked early; the simulation agrees.
    let exp = &v["expected_takeover"][0];
    assert_eq!(
        (exp["min_ms"].as_u64(), exp["max_ms"].as_u64()),
        (Some(7_500), Some(12_000))
    );
    let took = steps[1]["moves"][0]["took_ms"].as_u64().unwrap();
    assert!((7_500..=12_100).contains(&took), "{took}");
}

/// The text timeline says the assumption, the expected takeover, and, per step, where groups
/// run and which scripts ran.
#[test]
fn the_timeline_reads_as_documented() {
    let (code, out, err) = simulate(
        &sample_dir(),
        &[
            "--step",
            "start alice bob",
            "--step",
            "kill alice",
            "--script-time",
            "1s",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    for needle in [
        "Simulation of 2 node(s) (alice, bob)",
        "every resource script run (status, start, stop) takes 1s (--script-time)",
        "No script runs and no packet leaves this machine.",
        "Expected takeover when a node dies",
        "[1] 0s: start alice bob",
        "[2] ",
        ": kill alice",
        "Marker::web::/tmp/hb-demo/marker  runs on bob",
        "bob runs:",
        "start  Marker::web::/tmp/hb-demo/marker (started)",
        "Result: OK",
    ] {
        assert!(out.contains(needle), "{needle:?} missing:\n{out}");
    }
    for line in out.lines() {
        assert!(!line.contains('\t'), "{line}");
    }
}

#[test]
fn the_same_seed_gives_the_same_output() {
    let args = [
        "--step",
        "start alice bob",
        "--step",
        "partition alice bob",
        "--step",
        "heal",
    ];
    let a = simulate(&sample_dir(), &args);
    let b = simulate(&sample_dir(), &args);
    assert_eq!(a, b);
    let mut with_seed: Vec<&str> = args.to_vec();
    with_seed.extend(["--seed", "77"]);
    let c = simulate(&sample_dir(), &with_seed);
    assert_eq!(c, simulate(&sample_dir(), &with_seed));
    assert!(c.1.contains("seed 77"));
}

#[test]
fn bad_steps_are_named_plainly() {
    for (step, needle) in [
        (
            "kill carol",
            "step 'kill carol': there is no node 'carol' in ha.cf (nodes: alice, bob)",
        ),
        ("reboot alice", "step 'reboot alice': unknown step 'reboot'"),
        (
            "standby bob sideways",
            "step 'standby bob sideways': 'sideways' is not one of all, foreign, local, failback",
        ),
        ("wait soon", "step 'wait soon': 'soon' is not a time"),
        ("heal now", "step 'heal now': 'heal' takes nothing more"),
        ("kill", "step 'kill': 'kill' takes 1 word(s)"),
    ] {
        let (code, out, err) = simulate(&sample_dir(), &["--step", step]);
        assert_eq!(code, 2, "{step}: {out}{err}");
        assert!(err.contains(needle), "{step}: {err}");
        assert!(out.is_empty(), "{out}");
    }
    let (code, _, err) = simulate(&sample_dir(), &["--script-time", "fast"]);
    assert_eq!(code, 2);
    assert!(err.contains("--script-time 'fast': not a time"), "{err}");
    let (code, _, err) = simulate(Path::new("/nonexistent-hbsim"), &[]);
    assert_eq!(code, 6);
    assert!(
        err.contains("/nonexistent-hbsim/ha.cf: cannot read"),
        "{err}"
    );
}

#[test]
fn json_has_the_documented_shape() {
    let (code, out, _) = simulate(
        &sample_dir(),
        &["--json", "--step", "start alice bob", "--step", "wait 5"],
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    for key in [
        "seed",
        "nodes",
        "timings",
        "expected_takeover",
        "steps",
        "problems",
    ] {
        assert!(v.get(key).is_some(), "{key}: {v}");
    }
    assert_eq!(v["timings"]["deadtime_ms"], 4000);
    assert_eq!(v["timings"]["script_time_ms"], 2000);
    assert_eq!(v["timings"]["auto_failback"], "on");
    let s = &v["steps"][0];
    for key in [
        "step",
        "at_ms",
        "settled_at_ms",
        "placement",
        "calls",
        "moves",
        "notes",
        "problems",
    ] {
        assert!(s.get(key).is_some(), "{key}: {s}");
    }
    let c = &s["calls"][0];
    for key in ["node", "resource", "op", "began_ms", "ended_ms", "outcome"] {
        assert!(c.get(key).is_some(), "{key}: {c}");
    }
    assert_eq!(v["steps"][1]["step"], "wait 5s");
}

/// Scripts slower than their time limit (a start is killed after ten minutes): the groups
/// never start, and the simulation says so and exits 1.
#[test]
fn a_group_running_nowhere_fails_the_simulation() {
    let (code, out, _) = simulate(
        &sample_dir(),
        &["--step", "start alice bob", "--script-time", "700"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("runs nowhere after the step"), "{out}");
    assert!(out.contains("PROBLEM:"), "{out}");
}

/// A stop that does not stop: the group runs on both nodes after a standby, and it is
/// reported as running twice.
#[test]
fn a_group_running_twice_is_reported() {
    let cfg = config_from_texts(
        matrix_hacf(Mode::On).as_bytes(),
        AUTHKEYS.as_bytes(),
        matrix_haresources().as_bytes(),
        Path::new("/etc/ha.d"),
    )
    .unwrap();
    let mut sim = Simulation::new(cfg, 100, 1);
    let r = sim.run_step(&Step::Start(vec![0, 1]));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    sim.world.scripts.stop_leaves_running = true;
    let r = sim.run_step(&Step::Standby(0, None));
    assert!(
        r.problems
            .iter()
            .any(|p| p.kind == ProblemKind::RunsTwice && p.group == "svcA"),
        "{:?}",
        r.problems
    );
    // alice's stops of her group "succeeded", yet it still runs there.
    assert!(sim.world.calls.iter().any(|c| c.host == 0
        && c.spec == "svcA"
        && c.op.as_str() == "stop"
        && c.outcome == Some(Outcome::Stopped)));
    assert!(sim.world.hosts[0].running.contains("svcA"));
}

/// The sample `bcast` pair (auto_failback off, only nfs1 owns a group): nfs1 is killed, nfs2
/// takes the group, nfs1 starts again, and `hb_standby` on nfs2 hands the group back. It used
/// to be refused (`standby message [me] from nfs2 ignored. Other side is in flux.`) with a
/// one-hour standby timer left pending on nfs1, the group staying on nfs2.
#[test]
fn a_standby_after_the_owner_was_killed_and_restarted_moves_the_group() {
    let hacf = fs::read("etc-ha.d/examples/bcast.ha.cf").unwrap();
    let hares = fs::read("etc-ha.d/examples/bcast.haresources").unwrap();
    let cfg = config_from_texts(&hacf, AUTHKEYS.as_bytes(), &hares, Path::new("/etc/ha.d"))
        .unwrap_or_else(|d| panic!("{d:?}"));
    // The simulated network loses packets (by the seed): at seed 1 a lost `resource none
    // isstable=0` of the restarted nfs1, resent after its `isstable=1`, reached nfs2 last,
    // which then took nfs1 to be in flux for good (fails on the code before the fix). The
    // start-up verify shifts the timing so this sequence no longer hits it; the unit test
    // `a_late_resent_unstable_resource_message_does_not_leave_the_peer_in_flux` holds the rule.
    for seed in 1..=30 {
        standby_after_kill_and_restart(&cfg, seed);
    }
}

fn standby_after_kill_and_restart(cfg: &heartbeat::config::Config, seed: u64) {
    let mut sim = Simulation::new(cfg.clone(), 2000, seed);
    sim.world.record_logs = true;
    for step in [
        Step::Start(vec![0, 1]),
        Step::Kill(0),
        Step::Start(vec![0]),
        Step::Standby(1, None),
    ] {
        let r = sim.run_step(&step);
        assert!(
            r.problems.is_empty(),
            "seed {seed} {step:?}: {:?}",
            r.problems
        );
    }
    let w = &sim.world;
    assert_eq!(
        w.placement(),
        vec![vec![0]],
        "seed {seed}\n{}\n{}",
        w.dump(0),
        w.dump(1)
    );
    for i in 0..2 {
        assert_eq!(w.count_logs(i, "in flux"), 0, "seed {seed}\n{}", w.dump(i));
    }
    // Nothing left waiting: no standby timer an hour away.
    let now = w.now_ms();
    for i in 0..2 {
        let due = w.hosts[i].cluster().and_then(|c| c.poll_timeout());
        assert!(
            due.is_none_or(|t| t < now + 600_000),
            "seed {seed} node {i}: a timer at {due:?} (now {now})"
        );
    }
}
