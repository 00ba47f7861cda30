//! Child processes for resource scripts and rc.d hooks: started without blocking the loop,
//! their output read through mio and written to the log, their exit collected on SIGCHLD, and
//! killed when they overrun their time limit.

use crate::config::bytes;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::cluster::LogLevel;
use crate::runtime::{log as hblog, os::daemon, os::signals};

/// How long a script may take after SIGTERM before it gets SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Output kept per child for the caller (status answers are short; the rest goes to the log).
const MAX_CAPTURE: usize = 64 * 1024;
/// Output of one run copied into the log at most; a script that prints megabytes must not fill
/// the disk under the log (the rest is counted and reported once).
const MAX_LOGGED: usize = 64 * 1024;

/// One program to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to the daemon's own environment.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Names the child in log lines (`Marker svcA start`).
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitKind {
    Exited(i32),
    Signaled(i32),
    /// Overran its time limit and was killed.
    TimedOut,
    /// Could not be started at all.
    SpawnFailed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: u64,
    pub exit: ExitKind,
    /// Standard output (capped), for `status` answers.
    pub stdout: String,
    pub elapsed: Duration,
}

struct Running {
    job: Job,
    child: Child,
    /// stdout, stderr
    streams: [Option<File>; 2],
    captured: Vec<u8>,
    /// Partial lines not yet logged, per stream.
    pending: [Vec<u8>; 2],
    /// Bytes of output logged so far, and bytes left out past `MAX_LOGGED`.
    logged: usize,
    not_logged: usize,
    started: Instant,
    /// SIGTERM sent at; SIGKILL follows after the grace period.
    terminated_at: Option<Instant>,
    timed_out: bool,
    status: Option<std::process::ExitStatus>,
}

/// The running children. Tokens `token_base + 2*slot` (stdout) and `+1` (stderr) belong to it.
pub struct ChildPool {
    token_base: usize,
    next_slot: usize,
    running: BTreeMap<usize, Running>,
}

/// `resource.d/<name>` first, then `/etc/init.d/<name>`; it must be an executable file.
pub fn find_script(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    dirs.iter().map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn set_nonblocking(fd: i32) -> io::Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

impl ChildPool {
    pub fn new(token_base: usize) -> ChildPool {
        ChildPool {
            token_base,
            next_slot: 0,
            running: BTreeMap::new(),
        }
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.token_base
    }

    /// Start a job. A job that cannot start is reported at once as `SpawnFailed`.
    pub fn spawn(&mut self, registry: &Registry, job: Job, now: Instant) -> Result<(), Finished> {
        let mut cmd = Command::new(&job.program);
        // Arguments and values from the configuration files go out byte for byte, in
        // whatever encoding the files are in.
        cmd.args(job.args.iter().map(|a| bytes::to_os(a)))
            .envs(job.env.iter().map(|(k, v)| (k.as_str(), bytes::to_os(v))))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (setsid, sched_setscheduler, sigaction).
        unsafe {
            cmd.pre_exec(|| {
                // Its own process group, so a timeout kills the whole script tree.
                nix::unistd::setsid().map_err(io::Error::from)?;
                let _ = daemon::make_normaltime();
                signals::reset_for_child()
            });
        }
        let failed = |e: io::Error| Finished {
            id: job.id,
            exit: ExitKind::SpawnFailed(e.to_string()),
            stdout: String::new(),
            elapsed: Duration::ZERO,
        };
        let mut child = cmd.spawn().map_err(failed)?;
        let streams = [
            child.stdout.take().map(|s| File::from(OwnedFd::from(s))),
            child.stderr.take().map(|s| File::from(OwnedFd::from(s))),
        ];
        let slot = self.next_slot;
        self.next_slot += 1;
        for (i, stream) in streams.iter().enumerate() {
            if let Some(fd) = stream.as_ref().map(|f| f.as_raw_fd()) {
                let registered = set_nonblocking(fd).and_then(|_| {
                    registry.register(
                        &mut SourceFd(&fd),
                        Token(self.token_base + 2 * slot + i),
                        Interest::READABLE,
                    )
                });
                if let Err(e) = registered {
                    hblog::emit(
                        LogLevel::Error,
                        &format!("cannot watch the output of {}: {e}", job.label),
                    );
                }
            }
        }
        self.running.insert(
            slot,
            Running {
                job,
                child,
                streams,
                captured: Vec::new(),
                pending: [Vec::new(), Vec::new()],
                logged: 0,
                not_logged: 0,
                started: now,
                terminated_at: None,
                timed_out: false,
                status: None,
            },
        );
        Ok(())
    }

    /// Output is waiting on one of our pipes.
    pub fn on_readable(&mut self, registry: &Registry, token: Token) {
        let rel = token.0 - self.token_base;
        let (slot, stream) = (rel / 2, rel % 2);
        if let Some(r) = self.running.get_mut(&slot) {
            r.read_stream(registry, stream);
        }
    }

    /// Collect children that have exited (call on SIGCHLD and on timer expiry).
    pub fn reap(&mut self, registry: &Registry, now: Instant) -> Vec<Finished> {
        let mut done = Vec::new();
        for (&slot, r) in self.running.iter_mut() {
            if r.status.is_none() {
                if let Ok(Some(st)) = r.child.try_wait() {
                    r.status = Some(st);
                }
            }
            if r.status.is_some() {
                // Whatever is still in the pipes belongs to this run.
                r.read_stream(registry, 0);
                r.read_stream(registry, 1);
                r.close_streams(registry);
                done.push(slot);
            }
        }
        done.into_iter()
            .filter_map(|slot| self.running.remove(&slot))
            .map(|mut r| {
                r.flush_pending();
                let st = r
                    .status
                    .unwrap_or_else(|| std::process::ExitStatus::from_raw(0));
                let exit = if r.timed_out {
                    ExitKind::TimedOut
                } else if let Some(c) = st.code() {
                    ExitKind::Exited(c)
                } else {
                    ExitKind::Signaled(st.signal().unwrap_or(0))
                };
                Finished {
                    id: r.job.id,
                    exit,
                    stdout: String::from_utf8_lossy(&r.captured).into_owned(),
                    elapsed: now.saturating_duration_since(r.started),
                }
            })
            .collect()
    }

    /// The next moment a child overruns its limit or its grace period.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.running
            .values()
            .filter(|r| r.status.is_none())
            .map(|r| match r.terminated_at {
                Some(t) => t + KILL_GRACE,
                None => r.started + r.job.timeout,
            })
            .min()
    }

    /// SIGTERM to children past their limit, SIGKILL to those past the grace period too.
    pub fn enforce_timeouts(&mut self, now: Instant) {
        for r in self.running.values_mut().filter(|r| r.status.is_none()) {
            let pgid = Pid::from_raw(r.child.id() as i32);
            match r.terminated_at {
                None if now >= r.started + r.job.timeout => {
                    hblog::emit(
                        LogLevel::Error,
                        &format!(
                            "{} timed out after {} ms: killing it",
                            r.job.label,
                            r.job.timeout.as_millis()
                        ),
                    );
                    let _ = killpg(pgid, Signal::SIGTERM);
                    r.terminated_at = Some(now);
                    r.timed_out = true;
                }
                Some(t) if now >= t + KILL_GRACE => {
                    let _ = killpg(pgid, Signal::SIGKILL);
                    r.terminated_at = Some(now + Duration::from_secs(3600));
                }
                _ => {}
            }
        }
    }
}

impl Running {
    fn read_stream(&mut self, registry: &Registry, stream: usize) {
        let mut buf = [0u8; 4096];
        loop {
            let res = self.streams[stream].as_mut().map(|s| s.read(&mut buf));
            match res {
                None => return,
                Some(Ok(0)) => {
                    self.close_stream(registry, stream);
                    return;
                }
                Some(Ok(n)) => {
                    if stream == 0 && self.captured.len() < MAX_CAPTURE {
                        let room = MAX_CAPTURE - self.captured.len();
                        self.captured.extend_from_slice(&buf[..n.min(room)]);
                    }
                    self.pending[stream].extend_from_slice(&buf[..n]);
                    self.log_lines(stream);
                }
                Some(Err(e)) if e.kind() == ErrorKind::Interrupted => continue,
                Some(Err(_)) => return,
            }
        }
    }

    /// Script output goes to the log, one line each, named after the script.
    fn log_lines(&mut self, stream: usize) {
        while let Some(pos) = self.pending[stream].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending[stream].drain(..=pos).collect();
            self.log_line(&line[..line.len() - 1]);
        }
        if self.pending[stream].len() > 4096 {
            let line = std::mem::take(&mut self.pending[stream]);
            self.log_line(&line);
        }
    }

    fn log_line(&mut self, line: &[u8]) {
        if self.logged >= MAX_LOGGED {
            self.not_logged += line.len() + 1;
            return;
        }
        self.logged += line.len() + 1;
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        if !text.is_empty() {
            hblog::emit(
                LogLevel::Info,
                &format!("{}[{}]: {text}", self.job.label, self.child.id()),
            );
        }
    }

    fn flush_pending(&mut self) {
        for stream in 0..2 {
            let line = std::mem::take(&mut self.pending[stream]);
            self.log_line(&line);
        }
        if self.not_logged > 0 {
            hblog::emit(
                LogLevel::Warn,
                &format!(
                    "{}[{}]: {} more bytes of output not logged (at most {} KiB a run)",
                    self.job.label,
                    self.child.id(),
                    self.not_logged,
                    MAX_LOGGED / 1024
                ),
            );
            self.not_logged = 0;
        }
    }

    fn close_stream(&mut self, registry: &Registry, stream: usize) {
        if let Some(f) = self.streams[stream].take() {
            let _ = registry.deregister(&mut SourceFd(&f.as_raw_fd()));
        }
    }

    fn close_streams(&mut self, registry: &Registry) {
        self.close_stream(registry, 0);
        self.close_stream(registry, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    fn run_all(pool: &mut ChildPool, poll: &mut Poll, limit: Duration) -> Vec<Finished> {
        let start = Instant::now();
        let mut events = Events::with_capacity(16);
        let mut out = Vec::new();
        while pool.running() > 0 && start.elapsed() < limit {
            let _ = poll.poll(&mut events, Some(Duration::from_millis(20)));
            for ev in events.iter() {
                pool.on_readable(poll.registry(), ev.token());
            }
            let now = Instant::now();
            pool.enforce_timeouts(now);
            out.extend(pool.reap(poll.registry(), now));
        }
        out
    }

    fn job(id: u64, script: &str, timeout_ms: u64) -> Job {
        Job {
            id,
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![("HA_TEST".into(), "yes".into())],
            timeout: Duration::from_millis(timeout_ms),
            label: format!("test{id}"),
        }
    }

    #[test]
    fn output_exit_code_and_environment() {
        let mut poll = Poll::new().unwrap();
        let mut pool = ChildPool::new(1000);
        pool.spawn(
            poll.registry(),
            job(1, "echo running $HA_TEST; echo oops >&2; exit 3", 5000),
            Instant::now(),
        )
        .unwrap();
        pool.spawn(poll.registry(), job(2, "exit 0", 5000), Instant::now())
            .unwrap();
        let mut done = run_all(&mut pool, &mut poll, Duration::from_secs(5));
        done.sort_by_key(|f| f.id);
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].exit, ExitKind::Exited(3));
        assert_eq!(done[0].stdout, "running yes\n");
        assert_eq!(done[1].exit, ExitKind::Exited(0));
    }

    #[test]
    fn a_hung_script_is_killed_at_its_limit() {
        let mut poll = Poll::new().unwrap();
        let mut pool = ChildPool::new(1000);
        let t0 = Instant::now();
        pool.spawn(poll.registry(), job(7, "sleep 30 & sleep 30", 300), t0)
            .unwrap();
        let done = run_all(&mut pool, &mut poll, Duration::from_secs(10));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].exit, ExitKind::TimedOut);
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "took {:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn missing_program_fails_at_once() {
        let poll = Poll::new().unwrap();
        let mut pool = ChildPool::new(1000);
        let mut j = job(3, "", 100);
        j.program = PathBuf::from("/nonexistent/script");
        let err = pool.spawn(poll.registry(), j, Instant::now()).unwrap_err();
        assert!(matches!(err.exit, ExitKind::SpawnFailed(_)));
    }

    #[test]
    fn script_lookup_order() {
        let base = std::env::temp_dir().join(format!("hb-scripts-{}", std::process::id()));
        let (a, b) = (base.join("resource.d"), base.join("init.d"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for p in [
            a.join("both"),
            b.join("both"),
            b.join("initonly"),
            a.join("noexec"),
        ] {
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            let mode = if p.ends_with("noexec") { 0o644 } else { 0o755 };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let dirs = vec![a.clone(), b.clone()];
        assert_eq!(find_script("both", &dirs), Some(a.join("both")));
        assert_eq!(find_script("initonly", &dirs), Some(b.join("initonly")));
        assert_eq!(find_script("noexec", &dirs), None);
        assert_eq!(find_script("../init.d/both", &dirs), None);
        let _ = std::fs::remove_dir_all(&base);
    }
}
