//! Becoming a daemon the way 3.0.6 does (admin.md §4.1, §4.7): fork with the parent exiting
//! 0 at once, `setsid`, stdio on `/dev/null`, umask 022; the process title; memory locking
//! and realtime scheduling (`realtime`, `rtprio`); the working directory `cores/root`.

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::Mode;
use nix::unistd::ForkResult;

use crate::cluster::LogLevel;
use crate::runtime::log;

/// The title operators `ps | grep` for.
pub const MASTER_TITLE: &str = "heartbeat: master control process";

/// Forks into the background. The parent exits 0 as soon as the child exists (later
/// failures are the child's to log, as in 3.0.6); the child becomes a session leader,
/// gets `/dev/null` as stdin/stdout/stderr and umask 022, and returns `Ok(())`.
///
/// Call it while the process has a single thread (before any thread is spawned), and before
/// creating the `mio::Poll`, the signal source and the sockets' registrations.
pub fn daemonize() -> io::Result<()> {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    // SAFETY: fork is sound here because the caller guarantees the process is
    // single-threaded, so the child cannot inherit a lock held by another thread.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { .. } => std::process::exit(0),
        ForkResult::Child => {}
    }
    nix::unistd::setsid()?;
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    redirect_stdio_to_devnull()
}

/// Points stdin, stdout and stderr at `/dev/null` (done by [`daemonize`]; `-f` does it
/// itself once the configuration is validated).
pub fn redirect_stdio_to_devnull() -> io::Result<()> {
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..=2 {
        nix::unistd::dup2(null.as_raw_fd(), fd)?;
    }
    Ok(())
}

/// What [`set_process_title`] managed to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TitleOutcome {
    /// The thread name (`/proc/PID/comm`, what `ps -o comm`/`top` show), truncated by the
    /// kernel to 15 bytes: `heartbeat: mast`.
    pub comm: bool,
    /// The command line (`/proc/PID/cmdline`, what `ps -ef`/`ps aux` show). Needs
    /// CAP_SYS_RESOURCE (root); otherwise `ps` keeps showing the original command line.
    pub cmdline: bool,
}

/// Sets the process title: the kernel's thread name (call from the main thread: it names the
/// calling thread) and, when privileged, the command line `ps` shows.
///
/// The command line is not changed by overwriting the original argv memory (Rust gives no
/// safe access to it); instead the title is copied into a buffer that lives for the rest of
/// the process and the kernel is told, with `prctl(PR_SET_MM_ARG_START/ARG_END)`, that this
/// is where the arguments now are. `std::env::args()` is unaffected.
pub fn set_process_title(title: &str) -> io::Result<TitleOutcome> {
    let c = CString::new(title).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "process title contains a NUL byte",
        )
    })?;
    let comm = nix::sys::prctl::set_name(&c).is_ok();
    let cmdline = set_cmdline(c);
    Ok(TitleOutcome { comm, cmdline })
}

fn set_cmdline(title: CString) -> bool {
    // The kernel reads the arguments from this memory from now on: it must never be freed.
    let bytes: &'static [u8] = Box::leak(title.into_bytes_with_nul().into_boxed_slice());
    let start = bytes.as_ptr() as libc::c_ulong;
    let end = start + bytes.len() as libc::c_ulong;
    // The kernel insists on start <= end at every step: whichever order keeps that works.
    (prctl_set_mm(libc::PR_SET_MM_ARG_START, start) && prctl_set_mm(libc::PR_SET_MM_ARG_END, end))
        || (prctl_set_mm(libc::PR_SET_MM_ARG_END, end)
            && prctl_set_mm(libc::PR_SET_MM_ARG_START, start))
}

fn prctl_set_mm(what: libc::c_int, addr: libc::c_ulong) -> bool {
    // SAFETY: PR_SET_MM only updates the kernel's record of where our argument area is; it
    // dereferences nothing in this process. `addr` points into leaked, never-freed memory.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            what as libc::c_ulong,
            addr,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    rc == 0
}

/// What [`lock_memory_and_realtime`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealtimeOutcome {
    pub memory_locked: bool,
    pub realtime: bool,
}

/// `realtime on`: lock the process in memory and switch to `SCHED_FIFO` at `rtprio` (default
/// 1, the lowest realtime priority). Failures are logged as `ERROR:` lines and are not fatal,
/// e.g. `ERROR: Cannot lock ourselves into memory:  System limits on locked-in memory are too
/// small.` as 3.0.6 logs it.
///
/// Memory: as root the `RLIMIT_MEMLOCK` limit is lifted first; future allocations are locked
/// too (`MCL_FUTURE`) only when that limit is unlimited, so a later allocation can never fail
/// because of the lock.
///
/// Children inherit `SCHED_FIFO`: run [`make_normaltime`] in the child before `exec`.
pub fn lock_memory_and_realtime(rtprio: Option<u32>) -> RealtimeOutcome {
    RealtimeOutcome {
        memory_locked: lock_memory(),
        realtime: make_realtime(rtprio),
    }
}

fn lock_memory() -> bool {
    use nix::sys::mman::{mlockall, MlockAllFlags};
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    if nix::unistd::geteuid().is_root() {
        let _ = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY);
    }
    let unlimited =
        matches!(getrlimit(Resource::RLIMIT_MEMLOCK), Ok((soft, _)) if soft == RLIM_INFINITY);
    let flags = if unlimited {
        MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE
    } else {
        MlockAllFlags::MCL_CURRENT
    };
    match mlockall(flags) {
        Ok(()) => true,
        Err(e) => {
            let why = match e {
                Errno::EAGAIN | Errno::ENOMEM => {
                    "System limits on locked-in memory are too small.".to_string()
                }
                other => other.desc().to_string(),
            };
            log::emit(
                LogLevel::Error,
                &format!("Cannot lock ourselves into memory:  {why}"),
            );
            false
        }
    }
}

fn make_realtime(rtprio: Option<u32>) -> bool {
    // SAFETY: plain syscalls on integers.
    let (min, max) = unsafe {
        (
            libc::sched_get_priority_min(libc::SCHED_FIFO),
            libc::sched_get_priority_max(libc::SCHED_FIFO),
        )
    };
    let wanted = rtprio.map(|p| p.min(i32::MAX as u32) as i32).unwrap_or(min);
    let prio = wanted.clamp(min.max(1), max.max(1));
    match set_scheduler(libc::SCHED_FIFO, prio) {
        Ok(()) => true,
        Err(e) => {
            log::emit(
                LogLevel::Error,
                &format!("Cannot set realtime scheduling (SCHED_FIFO, priority {prio}): {e}"),
            );
            false
        }
    }
}

fn set_scheduler(policy: libc::c_int, prio: libc::c_int) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call; pid 0 is us.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Back to normal scheduling (`SCHED_OTHER`). Async-signal-safe: meant for
/// `CommandExt::pre_exec` of resource scripts and other children.
pub fn make_normaltime() -> io::Result<()> {
    set_scheduler(libc::SCHED_OTHER, 0)
}

/// Creates `<statedir>/cores/root` (mode 0700) if needed and makes it the working directory,
/// returning its path. On error the caller logs
/// `ERROR: Cannot chdir to [/var/lib/heartbeat/cores/root]: <strerror>`.
pub fn enter_core_dir(statedir: &Path) -> io::Result<PathBuf> {
    let dir = statedir.join("cores").join("root");
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
    }
    std::env::set_current_dir(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    #[test]
    fn title() {
        let out = set_process_title(MASTER_TITLE).unwrap();
        assert!(out.comm);
        let comm = fs::read_to_string("/proc/thread-self/comm").unwrap();
        assert_eq!(comm.trim_end(), "heartbeat: mast");
        if nix::unistd::geteuid().is_root() && out.cmdline {
            let cmdline = fs::read("/proc/self/cmdline").unwrap();
            assert_eq!(cmdline, format!("{MASTER_TITLE}\0").as_bytes());
        } else {
            println!("skipped: changing the command line needs CAP_SYS_RESOURCE");
        }
        assert!(set_process_title("bad\0title").is_err());
    }

    #[test]
    fn core_dir() {
        let d = std::env::temp_dir().join(format!("hb-cores-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        // Run in a child: the working directory is process-wide and tests share the process.
        let exe = std::env::current_exe().unwrap();
        let st = Command::new(exe)
            .args([
                "--exact",
                "runtime::daemon::tests::core_dir_inner",
                "--ignored",
                "--test-threads=1",
            ])
            .env("HB_TEST_STATEDIR", &d)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stdout)
        );
        assert!(d.join("cores/root").is_dir());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    #[ignore]
    fn core_dir_inner() {
        let Ok(d) = std::env::var("HB_TEST_STATEDIR") else {
            return;
        };
        let dir = enter_core_dir(Path::new(&d)).unwrap();
        assert_eq!(std::env::current_dir().unwrap(), dir);
        // Again, now that it exists.
        enter_core_dir(Path::new(&d)).unwrap();
    }

    #[test]
    fn realtime_is_never_fatal() {
        // Run in a child: memory locking and the scheduler are process-wide.
        let exe = std::env::current_exe().unwrap();
        let st = Command::new(exe)
            .args([
                "--exact",
                "runtime::daemon::tests::realtime_inner",
                "--ignored",
                "--test-threads=1",
                "--nocapture",
            ])
            .env("HB_TEST_REALTIME", "1")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&st.stdout);
        assert!(st.status.success(), "{out}");
        assert!(out.contains("realtime outcome"), "{out}");
    }

    #[test]
    #[ignore]
    fn realtime_inner() {
        if std::env::var("HB_TEST_REALTIME").is_err() {
            return;
        }
        let out = lock_memory_and_realtime(Some(1));
        println!("realtime outcome: {out:?}");
        if out.realtime {
            make_normaltime().unwrap();
        }
    }

    #[test]
    fn daemonize_detaches() {
        let d = std::env::temp_dir().join(format!("hb-daemon-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let report = d.join("report");
        let exe = std::env::current_exe().unwrap();
        let st = Command::new(exe)
            .args([
                "--exact",
                "runtime::daemon::tests::daemonize_inner",
                "--ignored",
                "--test-threads=1",
            ])
            .env("HB_TEST_DAEMON_REPORT", &report)
            .output()
            .unwrap();
        // The parent exited 0 right after forking.
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !report.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        let text = fs::read_to_string(&report).unwrap();
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields.len(), 6, "{text}");
        assert_eq!(
            fields[0], fields[1],
            "the child leads its own session: {text}"
        );
        assert_eq!(
            &fields[2..5],
            ["/dev/null", "/dev/null", "/dev/null"],
            "{text}"
        );
        assert_eq!(fields[5], "22", "umask: {text}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    #[ignore]
    fn daemonize_inner() {
        let Ok(report) = std::env::var("HB_TEST_DAEMON_REPORT") else {
            return;
        };
        daemonize().unwrap();
        // Only the child gets here; report and leave without returning to the test harness
        // (its other threads did not survive the fork).
        let pid = std::process::id();
        let sid = nix::unistd::getsid(None).map(|p| p.as_raw()).unwrap_or(-1);
        let fd = |n: i32| {
            fs::read_link(format!("/proc/self/fd/{n}"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
        let text = format!(
            "{pid} {sid} {} {} {} {:o}\n",
            fd(0),
            fd(1),
            fd(2),
            old.bits()
        );
        let tmp = format!("{report}.tmp");
        let _ = fs::write(&tmp, text);
        let _ = fs::rename(&tmp, &report);
        std::process::exit(0);
    }
}
