//! Simulated resource scripts: each host has its own set of running resources; `start` adds a
//! resource when it begins (the thing may be up before the script returns), `stop` removes it
//! when it ends, `status` answers from the set when it ends. Durations come from ranges (drawn
//! from the world's generator) and results can be made to fail per host and resource. Every
//! call is recorded in order with its simulated times.

use crate::cluster::resources::Op;

/// Inclusive duration ranges, in ms, for each operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptTimes {
    pub status_ms: (u64, u64),
    pub start_ms: (u64, u64),
    pub stop_ms: (u64, u64),
}

impl ScriptTimes {
    /// Every run takes exactly `ms`.
    pub fn fixed(ms: u64) -> ScriptTimes {
        ScriptTimes {
            status_ms: (ms, ms),
            start_ms: (ms, ms),
            stop_ms: (ms, ms),
        }
    }

    pub fn range(&self, op: Op) -> (u64, u64) {
        match op {
            Op::Status => self.status_ms,
            Op::Start => self.start_ms,
            Op::Stop => self.stop_ms,
        }
    }

    /// The longest any run may take.
    pub fn max_ms(&self) -> u64 {
        self.status_ms.1.max(self.start_ms.1).max(self.stop_ms.1)
    }
}

/// How the scripts behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptModel {
    pub times: ScriptTimes,
    /// (host, resource spec): its start fails there (exit 1) and starts nothing.
    pub broken_starts: Vec<(usize, String)>,
    /// (host, resource spec): its stop fails there (exit 1) and leaves it running.
    pub broken_stops: Vec<(usize, String)>,
    /// A test of the checks themselves: every stop says it succeeded but leaves the resource
    /// running.
    pub stop_leaves_running: bool,
}

impl ScriptModel {
    pub fn new(times: ScriptTimes) -> ScriptModel {
        ScriptModel {
            times,
            broken_starts: Vec::new(),
            broken_stops: Vec::new(),
            stop_leaves_running: false,
        }
    }

    pub fn start_fails(&self, host: usize, spec: &str) -> bool {
        self.broken_starts
            .iter()
            .any(|(h, s)| *h == host && s == spec)
    }

    pub fn stop_fails(&self, host: usize, spec: &str) -> bool {
        self.broken_stops
            .iter()
            .any(|(h, s)| *h == host && s == spec)
    }
}

/// How a recorded call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Started,
    /// A start of something that already ran.
    Already,
    Stopped,
    /// A stop of something that did not run.
    Idle,
    /// `status` said running / not running.
    Running,
    NotRunning,
    /// Exit status other than 0 (start or stop).
    Failed,
    /// The host crashed (or stopped) while it ran.
    Lost,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Already => "already running",
            Outcome::Stopped => "stopped",
            Outcome::Idle => "was not running",
            Outcome::Running => "running",
            Outcome::NotRunning => "stopped",
            Outcome::Failed => "failed",
            Outcome::Lost => "lost",
        }
    }
}

/// One resource-script run, as the node would have made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCall {
    pub host: usize,
    /// The resource as written in haresources (`IPaddr::10.0.0.1/24`).
    pub spec: String,
    pub op: Op,
    pub began_ms: u64,
    /// None while it runs.
    pub ended_ms: Option<u64>,
    pub outcome: Option<Outcome>,
    /// It ran into its time limit and was killed there.
    pub killed: bool,
    /// The resource ran when the call began.
    pub was_running: bool,
}

impl ScriptCall {
    /// The call as the scenario matrix writes it: `+spec` a start that started, `-spec` a
    /// stop that stopped something running, `!+spec` / `!-spec` ones that failed; status queries and lost runs
    /// are not effective.
    pub fn effective(&self) -> Option<String> {
        let spec = &self.spec;
        match (self.op, self.outcome?) {
            (Op::Start, Outcome::Started) => Some(format!("+{spec}")),
            (Op::Stop, Outcome::Stopped) => Some(format!("-{spec}")),
            (Op::Start, Outcome::Failed) => Some(format!("!+{spec}")),
            (Op::Stop, Outcome::Failed) => Some(format!("!-{spec}")),
            _ => None,
        }
    }
}
