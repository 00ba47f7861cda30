//! `heartbeat --simulate [--step STEP]... [--script-time T] [--seed N] [--json]`: reads the
//! three files of the configuration directory, and runs every node of ha.cf through the
//! steps on the simulated network and clock (`crate::sim`). Nothing runs, nothing is sent.

use std::fs;

use crate::sim::report::render_text;
use crate::sim::scenario::{default_steps, parse_time, Simulation, Step};

use crate::runtime::os::paths::Paths;

/// The configuration does not load (as `--check`).
const EXIT_CONFIG: u8 = 6;
/// A group ran twice or nowhere, or the cluster never settled.
const EXIT_PROBLEMS: u8 = 1;
/// A step or option could not be read.
const EXIT_USAGE: u8 = 2;

/// The default assumption for every script run.
pub const DEFAULT_SCRIPT_TIME: &str = "2s";

/// What the user asked for.
pub struct SimulateOptions<'a> {
    pub steps: &'a [String],
    pub script_time: Option<&'a str>,
    pub seed: u64,
    pub json: bool,
}

/// Run the simulation; returns the exit status.
pub fn run(paths: &Paths, o: &SimulateOptions<'_>) -> u8 {
    let read = |name: &str| {
        let path = paths.confdir.join(name);
        fs::read(&path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
    };
    let files = (read("ha.cf"), read("authkeys"), read("haresources"));
    let (hacf, authkeys, haresources) = match files {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (a, b, c) => {
            for e in [a.err(), b.err(), c.err()].into_iter().flatten() {
                eprintln!("{e}");
            }
            return EXIT_CONFIG;
        }
    };
    let config = match crate::sim::config_from_texts(&hacf, &authkeys, &haresources, &paths.confdir)
    {
        Ok(c) => c,
        Err(diags) => {
            for d in diags
                .iter()
                .filter(|d| d.severity == crate::config::Severity::Error)
            {
                eprintln!("{d}");
            }
            eprintln!("The configuration does not load: nothing to simulate.");
            return EXIT_CONFIG;
        }
    };
    let script_time = o.script_time.unwrap_or(DEFAULT_SCRIPT_TIME);
    let Some(script_ms) = parse_time(script_time) else {
        eprintln!("--script-time '{script_time}': not a time (as in ha.cf: 2, 1.5, 500ms; or 2s)");
        return EXIT_USAGE;
    };
    let nodes = config.hacf.nodes.clone();
    let steps: Vec<Step> = if o.steps.is_empty() {
        default_steps(nodes.len())
    } else {
        let mut parsed = Vec::new();
        for s in o.steps {
            match Step::parse(s, &nodes) {
                Ok(step) => parsed.push(step),
                Err(e) => {
                    eprintln!("heartbeat --simulate: {e}");
                    return EXIT_USAGE;
                }
            }
        }
        parsed
    };
    let report = Simulation::new(config, script_ms, o.seed).run(&steps);
    if o.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("cannot write the report as JSON: {e}");
                return EXIT_PROBLEMS;
            }
        }
    } else {
        print!(
            "{}",
            render_text(&report, &paths.confdir.display().to_string())
        );
    }
    if report.ok() {
        0
    } else {
        EXIT_PROBLEMS
    }
}
