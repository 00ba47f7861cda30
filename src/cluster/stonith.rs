//! STONITH in v1 (`stonith` / `stonith_host`), sans-IO: which node is reset, when, what a
//! failure does, the log lines and the `t=stonith` message, as Heartbeat 3.0.6 does them.
//!
//! `Cluster` hands a dead node here instead of to the resource manager when a device is
//! configured and the node may hold resources; the takeover (what the resource manager hears
//! of the death) waits until `Fenced` comes out. The device itself is cluster-glue's: the
//! runtime runs `stonith -t <type> {-p <params> | -F <file>} -T reset <node>` (or `-S` for the
//! status check) as a child with a time limit, and answers with `Fencer::run_done`.
//!
//! 3.0.6's behaviour kept here:
//! * reset: `Resetting node <n> with [<device description>]`; on success `node <n> now
//!   reset.` and `t=stonith node=<n> result=OK`, then the takeover;
//! * failure: `Host <n> not reset!` (ERROR), `result=bad`, `STONITH of <n> failed.
//!   Retrying...` (ERROR, two spaces) and a new attempt every 5 s, for as long as it fails;
//!   the takeover does not happen meanwhile;
//! * status: `Checking status of STONITH device [<description>]` when the node starts its
//!   resources (comm-up), then every hour after the last check ended; failure logs
//!   `STONITH device <description> not operational!`, `STONITH status operation failed.`
//!   and `This may mean that the STONITH device has failed!`.
//!
//! Not told apart: a device that cannot reset that host (3.0.6: `Device <d> cannot reset
//! host <n>.`, `result=badhost`); the command's exit status does not say so, it is `bad`.
//!
//! Ours on top: a reset or status run has a time limit (`RESET_TIME_LIMIT_MS`; over it, it
//! counts as failed and is retried), and a node heard again before its reset succeeded is not
//! reset again nor taken over (it is alive; membership handles its return).

use std::collections::{BTreeMap, VecDeque};

use super::{LogLevel, Now};
use crate::config::Stonith as StonithConfig;
use crate::wire::messages::{some, Message, Stonith};

/// Between a failed reset and the next attempt (3.0.6's retry timer).
pub const RETRY_MS: u64 = 5_000;
/// Between two status checks of the device (3.0.6: hourly).
pub const STATUS_INTERVAL_MS: u64 = 3_600_000;
/// A reset or status run taking longer is killed and counts as failed.
pub const RESET_TIME_LIMIT_MS: u64 = 120_000;
/// Job numbers of STONITH runs start here, far above the resource manager's.
pub const JOB_BASE: u64 = 1 << 48;

/// How the device is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceConfig {
    /// `stonith_host <host> <type> <params...>`: the plugin's positional parameters.
    Params(String),
    /// `stonith <type> <file>`: a configuration file.
    File(String),
}

/// The STONITH device of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub device_type: String,
    pub config: DeviceConfig,
    /// How 3.0.6 names the device in its log lines (the plugin's short description, e.g.
    /// `NULL STONITH device`); the type when the plugin gave none.
    pub description: String,
}

impl Device {
    /// The device of ha.cf's `stonith`/`stonith_host` line; `description` as the plugin
    /// gives it (the runtime asks the plugin), else the type is used.
    pub fn from_config(c: &StonithConfig, description: Option<String>) -> Device {
        let (device_type, config) = match c {
            StonithConfig::File {
                device_type,
                config_file,
                ..
            } => (device_type, DeviceConfig::File(config_file.clone())),
            StonithConfig::Host {
                device_type,
                params,
                ..
            } => (device_type, DeviceConfig::Params(params.clone())),
        };
        let description = description
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| device_type.clone());
        Device {
            device_type: device_type.clone(),
            config,
            description,
        }
    }

    /// Arguments of cluster-glue's `stonith` command for `op`.
    pub fn args(&self, op: &StonithOp) -> Vec<String> {
        let mut a = vec!["-t".to_string(), self.device_type.clone()];
        match &self.config {
            DeviceConfig::Params(p) => a.extend(["-p".to_string(), p.clone()]),
            DeviceConfig::File(f) => a.extend(["-F".to_string(), f.clone()]),
        }
        match op {
            StonithOp::Reset(node) => a.extend(["-T".into(), "reset".into(), node.clone()]),
            StonithOp::Status => a.push("-S".into()),
        }
        a
    }
}

/// What a STONITH run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StonithOp {
    Reset(String),
    Status,
}

/// What `Cluster` must do for the fencer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceAction {
    /// Run cluster-glue's `stonith` with `args`, killed after `time_limit_ms`; answer with
    /// `Fencer::run_done(job, success)`.
    Run {
        job: u64,
        op: StonithOp,
        args: Vec<String>,
        time_limit_ms: u64,
    },
    /// Send to the cluster (`t=stonith`).
    Send(Message),
    Log(LogLevel, String),
    /// The node is reset: its takeover may go ahead.
    Fenced(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Running(u64),
    RetryAt(u64),
}

/// The fencing decisions of one node.
#[derive(Debug)]
pub struct Fencer {
    device: Option<Device>,
    /// Runs under way, by job.
    jobs: BTreeMap<u64, StonithOp>,
    next_job: u64,
    /// Dead nodes whose reset has not succeeded yet.
    pending: BTreeMap<String, Pending>,
    /// The next status check; None before the first (comm-up) or while one runs.
    status_at: Option<u64>,
    status_started: bool,
    stopped: bool,
    actions: VecDeque<FenceAction>,
}

impl Fencer {
    pub fn new(device: Option<Device>) -> Fencer {
        Fencer {
            device,
            jobs: BTreeMap::new(),
            next_job: JOB_BASE,
            pending: BTreeMap::new(),
            status_at: None,
            status_started: false,
            stopped: false,
            actions: VecDeque::new(),
        }
    }

    pub fn is_configured(&self) -> bool {
        self.device.is_some()
    }

    pub fn device(&self) -> Option<&Device> {
        self.device.as_ref()
    }

    /// The job is one of ours (a STONITH run), not a resource script.
    pub fn owns(&self, job: u64) -> bool {
        self.jobs.contains_key(&job)
    }

    /// A dead node waits for its reset.
    pub fn is_pending(&self, node: &str) -> bool {
        self.pending.contains_key(node)
    }

    pub fn poll_action(&mut self) -> Option<FenceAction> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        let retries = self.pending.values().filter_map(|p| match p {
            Pending::RetryAt(t) => Some(*t),
            Pending::Running(_) => None,
        });
        retries.chain(self.status_at).min()
    }

    /// A node that may hold resources died: reset it (without a device, it is fenced at
    /// once: the resource manager says `n_stnth` itself).
    pub fn node_dead(&mut self, _now: Now, node: &str) {
        if self.device.is_none() || self.stopped {
            self.actions
                .push_back(FenceAction::Fenced(node.to_string()));
            return;
        }
        if self.pending.contains_key(node) {
            return;
        }
        self.start_reset(node);
    }

    /// The node is heard from again: no reset, no takeover.
    pub fn node_alive(&mut self, node: &str) {
        self.pending.remove(node);
    }

    /// Resources are being started (comm-up): the first status check, then hourly.
    pub fn start_status_checks(&mut self, now: Now) {
        if self.device.is_none() || self.status_started || self.stopped {
            return;
        }
        self.status_started = true;
        self.start_status(now);
    }

    /// The configuration names another device (SIGHUP; 3.0.6 restarts quickly and runs with
    /// the new one). Resets under way finish with the old one; due retries use the new one;
    /// with no device left, every dead node still waiting is fenced at once, as a node without
    /// a device does.
    pub fn change_device(&mut self, now: Now, device: Option<Device>) {
        if self.device == device {
            return;
        }
        self.device = device;
        if self.device.is_none() {
            let waiting: Vec<String> = self
                .pending
                .iter()
                .filter(|(_, p)| matches!(p, Pending::RetryAt(_)))
                .map(|(n, _)| n.clone())
                .collect();
            for node in waiting {
                self.pending.remove(&node);
                self.actions.push_back(FenceAction::Fenced(node));
            }
            self.status_at = None;
            self.status_started = false;
            return;
        }
        // Checks had begun: the new device is checked now (a check of the old one under way
        // just ends; the hourly schedule goes on from whichever ends last).
        if self.status_started && !self.stopped {
            self.start_status(now);
        }
    }

    /// We are stopping: no more resets, retries or checks.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.pending.clear();
        self.status_at = None;
    }

    pub fn handle_timeout(&mut self, now: Now) {
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p, Pending::RetryAt(t) if *t <= now.mono_ms))
            .map(|(n, _)| n.clone())
            .collect();
        for node in due {
            self.start_reset(&node);
        }
        if self.status_at.is_some_and(|t| t <= now.mono_ms) {
            self.start_status(now);
        }
    }

    /// A run asked for with `Run` ended (`success`: the command exited 0).
    pub fn run_done(&mut self, now: Now, job: u64, success: bool) {
        let Some(op) = self.jobs.remove(&job) else {
            return;
        };
        match op {
            StonithOp::Status => {
                if !success {
                    // 3.0.6: the child's line, then the parent's two.
                    let desc = self.description();
                    self.log(
                        LogLevel::Error,
                        format!("STONITH device {desc} not operational!"),
                    );
                    self.log(LogLevel::Error, "STONITH status operation failed.".into());
                    self.log(
                        LogLevel::Info,
                        "This may mean that the STONITH device has failed!".into(),
                    );
                }
                if !self.stopped {
                    self.status_at = Some(now.mono_ms + STATUS_INTERVAL_MS);
                }
            }
            StonithOp::Reset(node) => {
                if self.pending.get(&node) != Some(&Pending::Running(job)) {
                    // Came back (or we stop) meanwhile: nothing waits for this reset.
                    return;
                }
                if success {
                    self.pending.remove(&node);
                    self.log(LogLevel::Info, format!("node {node} now reset."));
                    self.send(&node, "OK");
                    self.actions.push_back(FenceAction::Fenced(node));
                } else {
                    self.log(LogLevel::Error, format!("Host {node} not reset!"));
                    self.send(&node, "bad");
                    self.log(
                        LogLevel::Error,
                        format!("STONITH of {node} failed.  Retrying..."),
                    );
                    self.pending
                        .insert(node, Pending::RetryAt(now.mono_ms + RETRY_MS));
                }
            }
        }
    }

    fn description(&self) -> String {
        self.device
            .as_ref()
            .map(|d| d.description.clone())
            .unwrap_or_default()
    }

    fn start_reset(&mut self, node: &str) {
        let Some(dev) = self.device.as_ref() else {
            return;
        };
        let text = format!("Resetting node {node} with [{}]", dev.description);
        self.log(LogLevel::Info, text);
        let job = self.run(StonithOp::Reset(node.to_string()));
        self.pending.insert(node.to_string(), Pending::Running(job));
    }

    fn start_status(&mut self, _now: Now) {
        let Some(dev) = self.device.as_ref() else {
            return;
        };
        let text = format!("Checking status of STONITH device [{}]", dev.description);
        self.status_at = None;
        self.log(LogLevel::Info, text);
        self.run(StonithOp::Status);
    }

    fn run(&mut self, op: StonithOp) -> u64 {
        let job = self.next_job;
        self.next_job += 1;
        let args = self
            .device
            .as_ref()
            .map(|d| d.args(&op))
            .unwrap_or_default();
        self.jobs.insert(job, op.clone());
        self.actions.push_back(FenceAction::Run {
            job,
            op,
            args,
            time_limit_ms: RESET_TIME_LIMIT_MS,
        });
        job
    }

    fn send(&mut self, node: &str, result: &str) {
        let m = Stonith {
            node: some(node),
            result: some(result),
        };
        self.actions.push_back(FenceAction::Send(m.into()));
    }

    fn log(&mut self, level: LogLevel, text: String) {
        self.actions.push_back(FenceAction::Log(level, text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Now {
        Now {
            mono_ms: ms,
            unix_secs: 1_700_000_000 + ms / 1000,
        }
    }

    fn null_device() -> Device {
        let c = StonithConfig::Host {
            line: 1,
            host: "*".into(),
            device_type: "null".into(),
            params: "alice bob".into(),
        };
        Device::from_config(&c, Some("NULL STONITH device".into()))
    }

    fn drain(f: &mut Fencer) -> Vec<FenceAction> {
        std::iter::from_fn(|| f.poll_action()).collect()
    }

    fn runs(out: &[FenceAction]) -> Vec<(u64, StonithOp, Vec<String>)> {
        out.iter()
            .filter_map(|a| match a {
                FenceAction::Run { job, op, args, .. } => Some((*job, op.clone(), args.clone())),
                _ => None,
            })
            .collect()
    }

    fn logs(out: &[FenceAction]) -> Vec<String> {
        out.iter()
            .filter_map(|a| match a {
                FenceAction::Log(l, t) => Some(format!("{}: {t}", l.word())),
                _ => None,
            })
            .collect()
    }

    fn results(out: &[FenceAction]) -> Vec<(String, String)> {
        out.iter()
            .filter_map(|a| match a {
                FenceAction::Send(Message::Stonith(s)) => Some((
                    s.node.clone().unwrap_or_default(),
                    s.result.clone().unwrap_or_default(),
                )),
                _ => None,
            })
            .collect()
    }

    fn fenced(out: &[FenceAction]) -> Vec<String> {
        out.iter()
            .filter_map(|a| match a {
                FenceAction::Fenced(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_command_line_of_each_form_of_configuration() {
        let d = null_device();
        assert_eq!(
            d.args(&StonithOp::Reset("bob".into())),
            ["-t", "null", "-p", "alice bob", "-T", "reset", "bob"]
        );
        let f = StonithConfig::File {
            line: 3,
            device_type: "external/ssh".into(),
            config_file: "/etc/ha.d/ssh.cfg".into(),
        };
        let d = Device::from_config(&f, None);
        assert_eq!(d.description, "external/ssh");
        assert_eq!(
            d.args(&StonithOp::Status),
            ["-t", "external/ssh", "-F", "/etc/ha.d/ssh.cfg", "-S"]
        );
    }

    #[test]
    fn a_dead_node_is_reset_before_it_is_released_for_takeover() {
        let mut f = Fencer::new(Some(null_device()));
        f.node_dead(at(10), "bob");
        let out = drain(&mut f);
        assert_eq!(
            logs(&out),
            ["info: Resetting node bob with [NULL STONITH device]"]
        );
        let r = runs(&out);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1, StonithOp::Reset("bob".into()));
        assert!(fenced(&out).is_empty(), "no takeover before the reset");
        assert!(f.is_pending("bob") && f.owns(r[0].0));
        f.run_done(at(20), r[0].0, true);
        let out = drain(&mut f);
        assert_eq!(logs(&out), ["info: node bob now reset."]);
        assert_eq!(results(&out), [("bob".to_string(), "OK".to_string())]);
        assert_eq!(fenced(&out), ["bob"]);
        // The Send comes before the release, as 3.0.6 sends before it takes over.
        let send = out.iter().position(|a| matches!(a, FenceAction::Send(_)));
        let rel = out.iter().position(|a| matches!(a, FenceAction::Fenced(_)));
        assert!(send < rel);
        assert!(!f.is_pending("bob") && !f.owns(r[0].0));
        assert_eq!(f.poll_timeout(), None);
    }

    #[test]
    fn a_failed_reset_holds_the_takeover_and_is_retried_every_five_seconds() {
        let mut f = Fencer::new(Some(null_device()));
        f.node_dead(at(0), "bob");
        let mut job = runs(&drain(&mut f))[0].0;
        let mut t = 100;
        for _ in 0..3 {
            f.run_done(at(t), job, false);
            let out = drain(&mut f);
            assert_eq!(
                logs(&out),
                [
                    "ERROR: Host bob not reset!",
                    "ERROR: STONITH of bob failed.  Retrying..."
                ]
            );
            assert_eq!(results(&out), [("bob".to_string(), "bad".to_string())]);
            assert!(fenced(&out).is_empty());
            assert_eq!(f.poll_timeout(), Some(t + RETRY_MS));
            // Not before its time.
            f.handle_timeout(at(t + RETRY_MS - 1));
            assert!(drain(&mut f).is_empty());
            t += RETRY_MS;
            f.handle_timeout(at(t));
            let out = drain(&mut f);
            assert_eq!(
                logs(&out),
                ["info: Resetting node bob with [NULL STONITH device]"]
            );
            job = runs(&out)[0].0;
            t += 100;
        }
        f.run_done(at(t), job, true);
        assert_eq!(fenced(&drain(&mut f)), ["bob"]);
    }

    #[test]
    fn a_node_heard_again_is_neither_retried_nor_released() {
        let mut f = Fencer::new(Some(null_device()));
        f.node_dead(at(0), "bob");
        let job = runs(&drain(&mut f))[0].0;
        f.node_alive("bob");
        f.run_done(at(50), job, true);
        assert!(drain(&mut f).is_empty());
        // Failed and waiting for the retry: the return cancels it.
        f.node_dead(at(100), "bob");
        let job = runs(&drain(&mut f))[0].0;
        f.run_done(at(150), job, false);
        drain(&mut f);
        f.node_alive("bob");
        assert_eq!(f.poll_timeout(), None);
    }

    #[test]
    fn without_a_device_the_node_is_released_at_once() {
        let mut f = Fencer::new(None);
        f.node_dead(at(0), "bob");
        let out = drain(&mut f);
        assert_eq!(fenced(&out), ["bob"]);
        assert!(runs(&out).is_empty() && logs(&out).is_empty());
        f.start_status_checks(at(0));
        assert!(drain(&mut f).is_empty());
    }

    #[test]
    fn the_device_status_is_checked_at_comm_up_then_hourly_and_a_failure_is_logged() {
        let mut f = Fencer::new(Some(null_device()));
        f.start_status_checks(at(1000));
        let out = drain(&mut f);
        assert_eq!(
            logs(&out),
            ["info: Checking status of STONITH device [NULL STONITH device]"]
        );
        let r = runs(&out);
        assert_eq!(r[0].1, StonithOp::Status);
        assert_eq!(r[0].2.last().map(String::as_str), Some("-S"));
        // Only once, however often comm-up comes.
        f.start_status_checks(at(1001));
        assert!(drain(&mut f).is_empty());
        f.run_done(at(2000), r[0].0, false);
        assert_eq!(
            logs(&drain(&mut f)),
            [
                "ERROR: STONITH device NULL STONITH device not operational!",
                "ERROR: STONITH status operation failed.",
                "info: This may mean that the STONITH device has failed!"
            ]
        );
        assert_eq!(f.poll_timeout(), Some(2000 + STATUS_INTERVAL_MS));
        f.handle_timeout(at(2000 + STATUS_INTERVAL_MS));
        let out = drain(&mut f);
        assert_eq!(runs(&out).len(), 1);
        f.run_done(at(2000 + STATUS_INTERVAL_MS + 5), runs(&out)[0].0, true);
        assert!(drain(&mut f).is_empty());
    }

    #[test]
    fn stopping_ends_retries_and_checks() {
        let mut f = Fencer::new(Some(null_device()));
        f.start_status_checks(at(0));
        f.node_dead(at(0), "bob");
        let r = runs(&drain(&mut f));
        f.run_done(at(10), r[1].0, false);
        f.stop();
        drain(&mut f);
        f.run_done(at(20), r[0].0, true);
        assert!(drain(&mut f).is_empty());
        assert_eq!(f.poll_timeout(), None);
    }
}
