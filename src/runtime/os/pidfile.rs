//! The PID file (admin.md §4.5) and the `-s` / `-k` flag behaviours (§4.1).
//!
//! Format: the PID right-aligned in 10 columns and a newline (`     22296\n`), mode 0644.
//! Like 3.0.6 the daemon never removes it on a normal exit, so a stale file means "stopped,
//! pid file exists" (exit 1 for `-s`) after a crash or a kill. Unlike 3.0.6, `-k` removes it
//! once the daemon is gone (admin.md §9, quirk 7), so after `heartbeat -k`, the init script's
//! `stop` or the unit's `ExecStop`, `-s`/`status` answer 3 ("not running"), as LSB expects.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The default location.
pub const DEFAULT_PATH: &str = "/var/run/heartbeat.pid";

/// The file's bytes for `pid`.
pub fn format(pid: i32) -> String {
    format!("{pid:>10}\n")
}

/// Writes `pid` to `path` (mode 0644), replacing the file atomically.
pub fn write(path: &Path, pid: i32) -> io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("pid"),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.write_all(format(pid).as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The PID in the file, or `None` when the file is missing, unreadable or holds no positive
/// number.
pub fn read(path: &Path) -> Option<i32> {
    let text = fs::read_to_string(path).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    (pid > 0).then_some(pid)
}

/// True when a process with this PID exists (zombies excepted). As in 3.0.6, the process is
/// not checked to be a heartbeat.
pub fn is_running(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => !is_zombie(pid),
        Err(_) => false,
    }
}

/// A zombie has exited; only its parent has not collected it yet.
fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last ')' (comm may contain anything).
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        == Some('Z')
}

/// `heartbeat -s`: the text for stdout (no trailing newline) and the exit code.
///
/// * running: `heartbeat OK [pid 22296 et al] is running on alice [alice]...`, 0;
/// * no PID file: `heartbeat is stopped. No process`, 3;
/// * a PID file whose process is gone (or that holds no PID): the same text, 1.
///
/// `progname` is the program's basename; `hostname` is `uname -n`, `nodename` the cluster
/// node name (the lab, where both are `alice`, cannot tell which 3.0.6 prints where).
pub fn status(pidfile: &Path, progname: &str, hostname: &str, nodename: &str) -> (String, i32) {
    match read(pidfile) {
        Some(pid) if is_running(pid) => (
            format!("{progname} OK [pid {pid} et al] is running on {hostname} [{nodename}]..."),
            0,
        ),
        _ => {
            let code = if pidfile.exists() { 1 } else { 3 };
            (format!("{progname} is stopped. No process"), code)
        }
    }
}

/// `heartbeat -k`: SIGTERM to the PID in the file, then wait until the process is gone,
/// checking every second; `timeout` `None` waits forever, as 3.0.6 does. Messages go to
/// stderr; returns the exit code:
///
/// * not running: `INFO: Heartbeat already stopped.`, 0;
/// * stopped: 0, silently;
///
/// in both cases a pid file naming a process that no longer runs is removed;
/// * `kill` refused: `ERROR: Could not kill pid N : <strerror>`, 4 for EPERM, else 1;
/// * still running after `timeout`: `ERROR: Heartbeat pid N did not stop in S seconds.`, 1
///   (our wording; 3.0.6 has no timeout).
pub fn stop(pidfile: &Path, timeout: Option<Duration>) -> i32 {
    stop_polling(pidfile, timeout, Duration::from_secs(1))
}

fn stop_polling(pidfile: &Path, timeout: Option<Duration>, poll: Duration) -> i32 {
    let pid = match read(pidfile) {
        Some(pid) if is_running(pid) => pid,
        stale => {
            eprintln!("INFO: Heartbeat already stopped.");
            if let Some(pid) = stale {
                remove_if_stale(pidfile, pid);
            }
            return 0;
        }
    };
    match kill(Pid::from_raw(pid), Signal::SIGTERM) {
        Ok(()) => {}
        Err(Errno::ESRCH) => {
            remove_if_stale(pidfile, pid);
            return 0;
        }
        Err(e) => {
            eprintln!("ERROR: Could not kill pid {pid} : {}", e.desc());
            return if e == Errno::EPERM { 4 } else { 1 };
        }
    }
    let start = Instant::now();
    while is_running(pid) {
        if let Some(t) = timeout {
            if start.elapsed() >= t {
                eprintln!(
                    "ERROR: Heartbeat pid {pid} did not stop in {} seconds.",
                    t.as_secs()
                );
                return 1;
            }
        }
        std::thread::sleep(poll);
    }
    remove_if_stale(pidfile, pid);
    0
}

/// Remove the pid file if it still names `pid` and that process is gone (a daemon started
/// in the meantime has written its own pid: leave that).
fn remove_if_stale(pidfile: &Path, pid: i32) {
    if read(pidfile) == Some(pid) && !is_running(pid) {
        let _ = fs::remove_file(pidfile);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::{Child, Command};

    fn temp_path(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hb-pid-{}-{}", name, std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d.join("heartbeat.pid")
    }

    #[test]
    fn format_and_round_trip() {
        assert_eq!(format(22296), "     22296\n");
        assert_eq!(format(22296).len(), 11);
        let p = temp_path("rt");
        write(&p, 22296).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"     22296\n");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(read(&p), Some(22296));
        fs::write(&p, "garbage\n").unwrap();
        assert_eq!(read(&p), None);
        fs::write(&p, "-5\n").unwrap();
        assert_eq!(read(&p), None);
        assert_eq!(read(&p.with_file_name("missing")), None);
        let _ = fs::remove_dir_all(p.parent().unwrap());
    }

    #[test]
    fn running_checks() {
        assert!(is_running(std::process::id() as i32));
        assert!(!is_running(0));
        assert!(!is_running(-1));
        // PIDs never exceed 2^22 on Linux.
        assert!(!is_running(i32::MAX));
    }

    #[test]
    fn status_texts_and_codes() {
        let p = temp_path("status");
        assert_eq!(
            status(&p, "heartbeat", "alice", "alice"),
            ("heartbeat is stopped. No process".to_string(), 3)
        );
        write(&p, i32::MAX).unwrap();
        assert_eq!(
            status(&p, "heartbeat", "alice", "alice"),
            ("heartbeat is stopped. No process".to_string(), 1)
        );
        let me = std::process::id() as i32;
        write(&p, me).unwrap();
        assert_eq!(
            status(&p, "heartbeat", "alice.example", "alice"),
            (
                format!("heartbeat OK [pid {me} et al] is running on alice.example [alice]..."),
                0
            )
        );
        let _ = fs::remove_dir_all(p.parent().unwrap());
    }

    fn spawn_sleep() -> Child {
        Command::new("sleep").arg("30").spawn().unwrap()
    }

    #[test]
    fn stop_not_running_and_running() {
        let p = temp_path("stop");
        assert_eq!(stop_polling(&p, None, Duration::from_millis(10)), 0);
        // A stale pid file goes.
        write(&p, i32::MAX).unwrap();
        assert_eq!(stop_polling(&p, None, Duration::from_millis(10)), 0);
        assert!(!p.exists(), "stale pid file left behind");
        // One that holds no pid is not ours to judge.
        fs::write(&p, "garbage\n").unwrap();
        assert_eq!(stop_polling(&p, None, Duration::from_millis(10)), 0);
        assert!(p.exists());

        let child = spawn_sleep();
        write(&p, child.id() as i32).unwrap();
        // Reap the child as it dies so it does not linger as a zombie.
        let reaper = std::thread::spawn(move || {
            let mut child = child;
            child.wait().unwrap()
        });
        assert_eq!(
            stop_polling(&p, Some(Duration::from_secs(10)), Duration::from_millis(20)),
            0
        );
        let st = reaper.join().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGTERM));
        assert!(!p.exists(), "pid file left behind after the stop");
        assert_eq!(status(&p, "heartbeat", "h", "n").1, 3);
        let _ = fs::remove_dir_all(p.parent().unwrap());
    }

    #[test]
    fn stop_times_out_when_term_is_ignored() {
        let p = temp_path("stuck");
        // A shell that ignores TERM.
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 5"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        write(&p, child.id() as i32).unwrap();
        assert_eq!(
            stop_polling(
                &p,
                Some(Duration::from_millis(300)),
                Duration::from_millis(20)
            ),
            1
        );
        let _ = child.kill();
        let _ = child.wait();
        let _ = fs::remove_dir_all(p.parent().unwrap());
    }

    #[test]
    fn zombie_is_not_running() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Wait for it to exit without reaping it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_zombie(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!is_running(pid));
        child.wait().unwrap();
    }
}
