//! The timeline of a [`Report`] as a person reads it (`heartbeat --simulate` without
//! `--json`).

use std::fmt::Write;

use super::scenario::{show_ms, Report};

/// Seconds with one decimal where needed: `12s`, `12.5s`.
fn at(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

pub fn render_text(r: &Report, source: &str) -> String {
    let mut o = String::new();
    let t = &r.timings;
    let _ = writeln!(
        o,
        "Simulation of {} node(s) ({}) from {source}, seed {}.",
        r.nodes.len(),
        r.nodes.join(", "),
        r.seed
    );
    let _ = writeln!(
        o,
        "Timings from ha.cf: keepalive {}, deadtime {}, warntime {}, initdead {}, auto_failback {}.",
        show_ms(t.keepalive_ms),
        show_ms(t.deadtime_ms),
        show_ms(t.warntime_ms),
        show_ms(t.initdead_ms),
        t.auto_failback
    );
    let _ = writeln!(
        o,
        "Assumed: every resource script run (status, start, stop) takes {} (--script-time).",
        show_ms(t.script_time_ms)
    );
    let _ = writeln!(o, "No script runs and no packet leaves this machine.");
    if !r.expected_takeover.is_empty() {
        let _ = writeln!(
            o,
            "Expected takeover when a node dies: deadtime, then each resource's start, after a status\nunless a check run while the node was late had seen it stopped:"
        );
        let w = r
            .expected_takeover
            .iter()
            .map(|e| e.group.len())
            .max()
            .unwrap_or(0);
        for e in &r.expected_takeover {
            let _ = writeln!(
                o,
                "  {:<w$} {} resource(s): {} to {}",
                e.group,
                e.resources,
                show_ms(e.min_ms),
                show_ms(e.max_ms)
            );
        }
    }
    let width = r
        .steps
        .iter()
        .flat_map(|s| s.placement.iter().map(|p| p.group.len()))
        .max()
        .unwrap_or(0);
    for (k, s) in r.steps.iter().enumerate() {
        let _ = writeln!(o);
        let settled = match s.settled_at_ms {
            Some(ms) => format!("settled at {}", at(ms)),
            None => "did not settle".into(),
        };
        let _ = writeln!(o, "[{}] {}: {} ({settled})", k + 1, at(s.at_ms), s.step);
        for p in &s.placement {
            let mut where_ = if p.nodes.is_empty() {
                "nowhere".to_string()
            } else {
                p.nodes.join(" and ")
            };
            if !p.partial.is_empty() {
                let _ = write!(where_, " (partly on {})", p.partial.join(", "));
            }
            let _ = writeln!(o, "    {:<width$}  runs on {where_}", p.group);
        }
        for node in &r.nodes {
            let calls: Vec<_> = s.calls.iter().filter(|c| &c.node == node).collect();
            if calls.is_empty() {
                continue;
            }
            let _ = writeln!(o, "    {node} runs:");
            for c in calls {
                let end = c.ended_ms.map(at).unwrap_or_else(|| "…".into());
                let outcome = c.outcome.as_deref().unwrap_or("running");
                let _ = writeln!(
                    o,
                    "      {:>7} - {:<7} {:<6} {} ({outcome})",
                    at(c.began_ms),
                    end,
                    c.op,
                    c.resource
                );
            }
        }
        for m in &s.moves {
            let _ = writeln!(
                o,
                "    {} running on {} {} after the step",
                m.group,
                m.to,
                show_ms(m.took_ms)
            );
        }
        for n in &s.notes {
            let _ = writeln!(o, "    note: {n}");
        }
        for p in &s.problems {
            let _ = writeln!(o, "    PROBLEM: {}", p.text);
        }
    }
    let _ = writeln!(o);
    if r.ok() {
        let _ = writeln!(
            o,
            "Result: OK: after every step each group ran on exactly one node (or on both sides of a partition)."
        );
    } else {
        let _ = writeln!(o, "Result: {} problem(s):", r.problems.len());
        for (k, s) in r.steps.iter().enumerate() {
            for p in &s.problems {
                let _ = writeln!(o, "  step {} ({}): {}", k + 1, s.step, p.text);
            }
        }
    }
    o
}
