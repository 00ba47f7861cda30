//! `respawn` (and `failfast`) clients: programs the daemon starts at comm-up as a given user,
//! restarts when they die, and stops on a graceful shutdown (links.md 4.1, 4.2).

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, User};

use crate::cluster::LogLevel;
use crate::config::hacf::ClientChild;
use crate::runtime::log as hblog;

/// A run shorter than this counts towards "respawning too fast".
const SHORT_RUN: Duration = Duration::from_secs(30);
/// More consecutive short runs than this and the client is abandoned.
const MAX_SHORT_RUNS: u32 = 10;
/// An exit code that means "do not restart me".
const NO_RESTART: i32 = 100;

struct Client {
    spec: ClientChild,
    uid: u32,
    gid: u32,
    child: Option<Child>,
    started: Instant,
    short_runs: u32,
    abandoned: bool,
}

pub struct Clients {
    clients: Vec<Client>,
    stopping: bool,
}

impl Clients {
    pub fn new(specs: &[ClientChild]) -> Clients {
        let clients = specs
            .iter()
            .filter_map(|spec| match User::from_name(&spec.user) {
                Ok(Some(u)) => Some(Client {
                    spec: spec.clone(),
                    uid: u.uid.as_raw(),
                    gid: u.gid.as_raw(),
                    child: None,
                    started: Instant::now(),
                    short_runs: 0,
                    abandoned: false,
                }),
                _ => {
                    hblog::emit(
                        LogLevel::Error,
                        &format!("Invalid uid [{}] specified for client child", spec.user),
                    );
                    None
                }
            })
            .collect();
        Clients {
            clients,
            stopping: false,
        }
    }

    /// Comm-up: start every client, in ha.cf order.
    pub fn start_all(&mut self) {
        for c in &mut self.clients {
            if c.child.is_none() && !c.abandoned {
                hblog::emit(
                    LogLevel::Info,
                    &format!(
                        "Starting child client \"{}\" ({},{})",
                        c.spec.command, c.uid, c.gid
                    ),
                );
                c.spawn(false);
            }
        }
    }

    /// SIGCHLD: log the clients that ended and start them again as the original does.
    pub fn reap(&mut self) {
        for c in &mut self.clients {
            let Some(child) = c.child.as_mut() else {
                continue;
            };
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            let pid = child.id();
            c.child = None;
            let how = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with return code {code}."),
                (None, Some(sig)) => format!("killed by signal {sig}."),
                _ => "ended.".to_string(),
            };
            hblog::emit(
                LogLevel::Warn,
                &format!("Managed {} process {pid} {how}", c.spec.command),
            );
            if self.stopping {
                continue;
            }
            if c.spec.failfast && status.code() != Some(0) {
                hblog::emit(
                    LogLevel::Emerg,
                    &format!("Rebooting system.  Reason: {}", c.spec.command),
                );
                reboot_now();
                continue;
            }
            if status.code() == Some(NO_RESTART) {
                continue;
            }
            let short = c.started.elapsed() < SHORT_RUN;
            c.short_runs = if short { c.short_runs + 1 } else { 0 };
            if c.short_runs > MAX_SHORT_RUNS {
                hblog::emit(
                    LogLevel::Error,
                    &format!("Client {} \"respawning too fast\"", c.spec.command),
                );
                c.abandoned = true;
                continue;
            }
            hblog::emit(
                LogLevel::Error,
                &format!("Respawning client \"{}\":", c.spec.command),
            );
            c.spawn(short);
        }
    }

    /// Graceful stop: SIGTERM to each client in reverse ha.cf order, each after the previous
    /// one is gone (at most `each` per client).
    pub fn stop_all(&mut self, each: Duration) {
        self.stopping = true;
        for c in self.clients.iter_mut().rev() {
            let Some(mut child) = c.child.take() else {
                continue;
            };
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + each;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Client {
    fn spawn(&mut self, pause: bool) {
        let script = format!(
            "{}exec {}",
            if pause { "sleep 1; " } else { "" },
            self.spec.command
        );
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(crate::config::bytes::to_os(&script))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if nix::unistd::geteuid().is_root() {
            cmd.uid(self.uid).gid(self.gid);
            let user = self.spec.user.clone();
            let gid = self.gid;
            // SAFETY: runs in the forked child before exec; initgroups is the one call made.
            unsafe {
                cmd.pre_exec(move || {
                    let name =
                        std::ffi::CString::new(user.clone()).map_err(std::io::Error::other)?;
                    nix::unistd::initgroups(&name, nix::unistd::Gid::from_raw(gid))
                        .map_err(std::io::Error::from)
                });
            }
        }
        match cmd.spawn() {
            Ok(child) => {
                hblog::emit(
                    LogLevel::Info,
                    &format!(
                        "Starting \"{}\" as uid {}  gid {} (pid {})",
                        self.spec.path,
                        self.uid,
                        self.gid,
                        child.id()
                    ),
                );
                self.child = Some(child);
                self.started = Instant::now();
            }
            Err(e) => hblog::emit(
                LogLevel::Error,
                &format!("Cannot exec {}: {e}", self.spec.command),
            ),
        }
    }
}

/// `failfast`: the machine goes down at once, without a clean shutdown, as the original does.
fn reboot_now() {
    nix::unistd::sync();
    // Only root can; otherwise the line above is all that happens.
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
}
