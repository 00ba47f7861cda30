//! The site's `rc.d` hooks: what 3.0.6 runs through `/etc/ha.d/harc <type>` on cluster events.
//!
//! `Cluster` decides which events are offered (`ClusterAction::Notify`); here they are queued
//! and run one at a time, in order, never while a resource script runs (3.0.6 runs both from
//! one serial queue; our resource work does not wait for hooks, so a slow hook cannot delay a
//! takeover). A run is `<confdir>/rc.d/<type> <type>` with the base environment, the
//! message's string fields as `HA_<field>` and `HA_OSTATUS`, its output in the log, killed
//! after the notification's time limit. A type without a file is dropped silently (3.0.6
//! does not even start `harc` then); a stock 3.0.6 script is skipped with a debug line.

use std::collections::{BTreeSet, VecDeque};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use crate::cluster::notifications::{self, Notification, ScriptKind};
use crate::cluster::LogLevel;
use crate::runtime::children::script_env;
use crate::runtime::children::scripts::{ChildPool, ExitKind, Job};
use crate::runtime::log as hblog;
use crate::runtime::os::paths::Paths;
/// Notifications kept while waiting; beyond this the newest are dropped (logged).
const MAX_QUEUE: usize = 1000;
/// Hook files larger than this are not read for the stock check (they are the site's own).
const MAX_SCRIPT: u64 = 1 << 20;
/// Tokens `token_base .. token_base + TOKEN_SPAN` belong to the hooks' output pipes.
pub const TOKEN_SPAN: usize = 1 << 22;

pub struct Hooks {
    /// `<confdir>/rc.d`
    rcdir: PathBuf,
    /// The same as 3.0.6 prints it: `<confdir>//rc.d`.
    shown_dir: String,
    queue: VecDeque<Notification>,
    pool: ChildPool,
    token_base: usize,
    next_id: u64,
    /// The hook now running: (job id, what it is, for the log).
    running: Option<(u64, String)>,
    /// Hooks already warned about (calls a missing helper, not executable).
    warned: BTreeSet<String>,
    dropped: u64,
}

impl Hooks {
    pub fn new(paths: &Paths, token_base: usize) -> Hooks {
        Hooks {
            rcdir: paths.confdir.join("rc.d"),
            shown_dir: paths.conf_file("rc.d").display().to_string(),
            queue: VecDeque::new(),
            pool: ChildPool::new(token_base),
            token_base,
            next_id: 1,
            running: None,
            warned: BTreeSet::new(),
            dropped: 0,
        }
    }

    /// Queue a run the cluster asked for.
    pub fn push(&mut self, n: Notification) {
        if self.queue.len() >= MAX_QUEUE {
            self.dropped += 1;
            if self.dropped == 1 || self.dropped % 1000 == 0 {
                hblog::emit(
                    LogLevel::Warn,
                    &format!(
                        "rc.d hook queue full ({MAX_QUEUE}): {} notification(s) dropped",
                        self.dropped
                    ),
                );
            }
            return;
        }
        self.queue.push_back(n);
    }

    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.token_base && token.0 < self.token_base + TOKEN_SPAN
    }

    pub fn on_readable(&mut self, registry: &Registry, token: Token) {
        self.pool.on_readable(registry, token);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.pool.next_deadline()
    }

    pub fn enforce_timeouts(&mut self, now: Instant) {
        self.pool.enforce_timeouts(now);
    }

    /// Collect a hook that ended (on SIGCHLD).
    pub fn reap(&mut self, registry: &Registry) {
        for f in self.pool.reap(registry, Instant::now()) {
            let what = match &self.running {
                Some((id, what)) if *id == f.id => what.clone(),
                _ => continue,
            };
            self.running = None;
            let ms = f.elapsed.as_millis();
            match f.exit {
                ExitKind::Exited(0) => {
                    hblog::emit(LogLevel::Debug, &format!("{what} done in {ms} ms"));
                }
                ExitKind::Exited(c) => hblog::emit(
                    LogLevel::Warn,
                    &format!("{what} exited with status {c} after {ms} ms"),
                ),
                ExitKind::Signaled(s) => hblog::emit(
                    LogLevel::Warn,
                    &format!("{what} killed by signal {s} after {ms} ms"),
                ),
                // The pool logged the kill.
                ExitKind::TimedOut => {}
                ExitKind::SpawnFailed(e) => {
                    hblog::emit(LogLevel::Error, &format!("{what}: cannot execute: {e}"))
                }
            }
        }
    }

    /// Start the next hook if none runs and no resource script runs (`resources_busy`).
    /// `env` is the base environment of the daemon's children (with `HA_OSTATUS`).
    pub fn pump(
        &mut self,
        registry: &Registry,
        resources_busy: bool,
        env: &dyn Fn() -> Vec<(String, String)>,
    ) {
        while self.running.is_none() && !resources_busy {
            let Some(n) = self.queue.pop_front() else {
                return;
            };
            let Some(program) = self.runnable(&n.kind) else {
                continue;
            };
            let shown = format!("{}/{}", self.shown_dir, n.kind);
            hblog::emit(LogLevel::Info, &format!("Running {shown} {}", n.kind));
            let mut vars = env();
            vars.extend(script_env::message(&n.msg));
            let id = self.next_id;
            self.next_id += 1;
            let job = Job {
                id,
                program,
                args: vec![n.kind.clone()],
                env: vars,
                timeout: Duration::from_millis(n.time_limit_ms),
                label: n.kind.clone(),
            };
            let what = format!("{shown} {}", n.kind);
            match self.pool.spawn(registry, job, Instant::now()) {
                Ok(()) => self.running = Some((id, what)),
                Err(f) => {
                    if let ExitKind::SpawnFailed(e) = f.exit {
                        hblog::emit(LogLevel::Error, &format!("{what}: cannot execute: {e}"));
                    }
                }
            }
        }
    }

    /// The hook's path if it should run: it exists, is executable, and is not a stock 3.0.6
    /// script.
    fn runnable(&mut self, kind: &str) -> Option<PathBuf> {
        let path = self.rcdir.join(kind);
        let meta = std::fs::metadata(&path).ok()?;
        let shown = format!("{}/{kind}", self.shown_dir);
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            if self.warned.insert(format!("noexec {kind}")) {
                hblog::emit(LogLevel::Error, &format!("{shown}: not executable"));
            }
            return None;
        }
        let mut content = Vec::new();
        let read = std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_SCRIPT).read_to_end(&mut content))
            .is_ok();
        if !read || meta.len() > MAX_SCRIPT {
            return Some(path);
        }
        match notifications::classify_script(&content) {
            ScriptKind::Stock => {
                hblog::emit(
                    LogLevel::Debug,
                    &format!(
                        "{shown} not run: the stock 3.0.6 hook, whose work this daemon does itself"
                    ),
                );
                None
            }
            ScriptKind::Custom { missing_helpers } => {
                if !missing_helpers.is_empty() && self.warned.insert(format!("helpers {kind}")) {
                    hblog::emit(
                        LogLevel::Warn,
                        &format!(
                            "{shown} calls {}, which this heartbeat does not have (it takes over, requests and gives up groups itself); those calls will fail",
                            missing_helpers.join(", ")
                        ),
                    );
                }
                Some(path)
            }
        }
    }
}
