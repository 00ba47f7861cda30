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

/// Sets the command-line title `ps -ef`/`ps aux` show, as 3.0.6 does, and nothing else: the
/// process name (`/proc/PID/comm`, from the executable's file name) stays `heartbeat`, so
/// `pidof heartbeat`, `pgrep -x heartbeat` and `killall heartbeat` find the daemon, as
/// operators' scripts and CTS (`killall -9 heartbeat`) expect. 3.0.6 only rewrites its argv
/// area; it never renames the process (no `PR_SET_NAME`).
///
/// The command line is not changed by overwriting the original argv memory (Rust gives no
/// safe access to it); instead the title is copied into a buffer that lives for the rest of
/// the process and the kernel is told, with `prctl(PR_SET_MM_ARG_START/ARG_END)`, that this
/// is where the arguments now are. `std::env::args()` is unaffected. That needs
/// CAP_SYS_RESOURCE (root): `Ok(false)` when the kernel refused, and `ps` keeps showing the
/// original command line.
pub fn set_process_title(title: &str) -> io::Result<bool> {
    let c = CString::new(title).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "process title contains a NUL byte",
        )
    })?;
    Ok(set_cmdline(c))
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
    /// Pages are locked as they are first touched (`MCL_ONFAULT`), not all at once.
    pub locked_on_fault: bool,
    /// Bytes of the program's own image locked whole besides (with `MCL_ONFAULT` only).
    pub image_locked: usize,
    pub realtime: bool,
}

/// `realtime on`: lock the process in memory and switch to `SCHED_RR` at `rtprio` (default
/// 1, the lowest realtime priority). Failures are logged as `ERROR:` lines and are not fatal,
/// e.g. `ERROR: Cannot lock ourselves into memory:  System limits on locked-in memory are too
/// small.` as 3.0.6 logs it.
///
/// Memory: as root the `RLIMIT_MEMLOCK` limit is lifted first; future allocations are locked
/// too (`MCL_FUTURE`) only when that limit is unlimited, so a later allocation can never fail
/// because of the lock. Pages are locked as they are touched (`MCL_ONFAULT`, Linux 4.4 and
/// later; older kernels lock everything mapped): a page the daemon has used once is never
/// paged out, so nothing it does again faults, and the code of the subcommands (`simulate`,
/// `export`, `check`), untouched buffer space and unused stack are not made resident for
/// nothing. The stack is touched to [`STACK_WARM`] so a deeper call later finds it locked.
///
/// `SCHED_RR` is what 3.0.6 uses (cluster-glue's default policy; `chrt -p` on a running 3.0.6
/// master shows `SCHED_RR` at its `rtprio`).
///
/// Children inherit the policy: run [`make_normaltime`] in the child before `exec`.
pub fn lock_memory_and_realtime(rtprio: Option<u32>) -> RealtimeOutcome {
    let lock = lock_memory();
    RealtimeOutcome {
        memory_locked: lock.is_some(),
        locked_on_fault: matches!(lock, Some(LockMode::OnFault { .. })),
        image_locked: match lock {
            Some(LockMode::OnFault { image_locked }) => image_locked,
            _ => 0,
        },
        realtime: make_realtime(rtprio),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockMode {
    /// With the bytes of our own image locked whole besides (`lock_own_image`).
    OnFault {
        image_locked: usize,
    },
    Everything,
}

/// Main-thread stack made resident (and so locked) below the point where memory is locked. An
/// idle pair that has acquired its resources was measured at 40 KiB of stack in all, counting
/// the arguments and environment above `main`; locking everything the kernel maps at exec
/// locked 132 KiB.
pub const STACK_WARM: usize = 32 * 1024;

fn lock_memory() -> Option<LockMode> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    if nix::unistd::geteuid().is_root() {
        let _ = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY);
    }
    let unlimited =
        matches!(getrlimit(Resource::RLIMIT_MEMLOCK), Ok((soft, _)) if soft == RLIM_INFINITY);
    let flags = if unlimited {
        libc::MCL_CURRENT | libc::MCL_FUTURE
    } else {
        libc::MCL_CURRENT
    };
    let mut result =
        mlockall(flags | libc::MCL_ONFAULT).map(|()| LockMode::OnFault { image_locked: 0 });
    if result == Err(Errno::EINVAL) {
        // A kernel before 4.4 does not know MCL_ONFAULT.
        result = mlockall(flags).map(|()| LockMode::Everything);
    }
    match result {
        Ok(mode) => {
            warm_stack(STACK_WARM);
            Some(match mode {
                LockMode::OnFault { .. } => LockMode::OnFault {
                    image_locked: lock_own_image(),
                },
                LockMode::Everything => mode,
            })
        }
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
            None
        }
    }
}

/// With `MCL_ONFAULT` a page is locked once touched. The code of a path not run yet (the first
/// takeover) could be evicted meanwhile under memory pressure, and that first run would wait
/// for the disk: the daemon's own image (code, read-only data) is locked whole. It is resident
/// anyway (measured), so this costs no memory. Returns the bytes locked.
fn lock_own_image() -> usize {
    let (Ok(exe), Ok(maps)) = (
        fs::read_link("/proc/self/exe"),
        fs::read_to_string("/proc/self/maps"),
    ) else {
        return 0;
    };
    let mut locked = 0;
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let mut fields = line.split_whitespace();
        let range = fields.next().unwrap_or("");
        if fields.nth(4).map(Path::new) != Some(exe.as_path()) {
            continue;
        }
        let Some((Ok(start), Ok(end))) = range
            .split_once('-')
            .map(|(a, b)| (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)))
        else {
            continue;
        };
        // SAFETY: the kernel lists this range as mapped in this process; mlock changes only
        // whether its pages stay resident.
        if unsafe { libc::mlock(start as *const libc::c_void, end.saturating_sub(start)) } == 0 {
            locked += end.saturating_sub(start);
        }
    }
    locked
}

fn mlockall(flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: a syscall on integer flags; it changes no memory the program sees.
    Errno::result(unsafe { libc::mlockall(flags) }).map(drop)
}

/// Touches `depth` bytes of stack below the caller, so those pages are resident (and locked,
/// after `mlockall`) before the loop needs them.
#[inline(never)]
fn warm_stack(depth: usize) {
    const CHUNK: usize = 4096;
    #[inline(never)]
    fn touch(left: usize) {
        let mut page = [0u8; CHUNK];
        // Volatile, so the writes (and the frame) are not optimised away.
        // SAFETY: writing a byte of a local array.
        unsafe { std::ptr::write_volatile(page.as_mut_ptr(), 1) };
        if left > CHUNK {
            touch(left - CHUNK);
        }
        std::hint::black_box(&page);
    }
    touch(depth);
}

fn make_realtime(rtprio: Option<u32>) -> bool {
    // SAFETY: plain syscalls on integers.
    let (min, max) = unsafe {
        (
            libc::sched_get_priority_min(libc::SCHED_RR),
            libc::sched_get_priority_max(libc::SCHED_RR),
        )
    };
    let wanted = rtprio.map(|p| p.min(i32::MAX as u32) as i32).unwrap_or(min);
    let prio = wanted.clamp(min.max(1), max.max(1));
    match set_scheduler(libc::SCHED_RR, prio) {
        Ok(()) => {
            // Timers to the nanosecond: the default 50 us of slack is added to every sleep
            // of a normal task (a real-time task gets none, but say so rather than rely on
            // it); at keepalive 1 ms that is 5% of the interval.
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
            true
        }
        Err(e) => {
            log::emit(
                LogLevel::Error,
                &format!("Cannot set realtime scheduling (SCHED_RR, priority {prio}): {e}"),
            );
            false
        }
    }
}

/// `coredumps` (on by default), as 3.0.6 does it: the core size limit raised to its hard limit
/// (root first lifts a hard limit of 0 to unlimited) when on, set to 0 when off. Problems are
/// logged with 3.0.6's words and are not fatal.
pub fn set_coredumps(enable: bool) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let Ok((_, mut hard)) = getrlimit(Resource::RLIMIT_CORE) else {
        log::emit(LogLevel::Error, "Cannot get current core limit value.");
        return;
    };
    if hard == 0 && nix::unistd::geteuid().is_root() {
        hard = RLIM_INFINITY;
    }
    if enable && hard == 0 {
        log::emit(
            LogLevel::Warn,
            "Not possible to enable core dumps (rlim_max is 0)",
        );
    }
    let soft = if enable { hard } else { 0 };
    if let Err(e) = setrlimit(Resource::RLIMIT_CORE, soft, hard) {
        log::emit(
            LogLevel::Error,
            &format!(
                "Unable to {} core dumps: {}",
                if enable { "enable" } else { "disable" },
                e.desc()
            ),
        );
    }
}

/// Scheduling policy and priority of the calling thread (pid 0: on Linux, this thread).
pub fn set_scheduler(policy: libc::c_int, prio: libc::c_int) -> io::Result<()> {
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
    // A slack of 0 gives the child the system's default back (ours is 1 ns under realtime).
    // SAFETY: prctl with integer arguments (async-signal-safe, fine between fork and exec).
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 0 as libc::c_ulong, 0, 0, 0) };
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

    /// CAP_SYS_RESOURCE in the effective set (root in a container may lack it).
    fn has_cap_sys_resource() -> bool {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap();
        eff & (1 << 24) != 0 // CAP_SYS_RESOURCE
    }

    #[test]
    fn title() {
        let comm_before = fs::read_to_string("/proc/self/comm").unwrap();
        let changed = set_process_title(MASTER_TITLE).unwrap();
        // The process name is never touched: only the command line changes.
        let comm = fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(comm, comm_before);
        if has_cap_sys_resource() {
            assert!(changed, "CAP_SYS_RESOURCE may move the argument area");
            let cmdline = fs::read("/proc/self/cmdline").unwrap();
            assert_eq!(cmdline, format!("{MASTER_TITLE}\0").as_bytes());
        } else {
            assert!(!changed);
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
                &format!(
                    "{}::core_dir_inner",
                    module_path!().trim_start_matches("heartbeat::")
                ),
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
                &format!(
                    "{}::realtime_inner",
                    module_path!().trim_start_matches("heartbeat::")
                ),
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
        let (major, minor) = nix::sys::utsname::uname()
            .ok()
            .and_then(|u| {
                let r = u.release().to_string_lossy().into_owned();
                let mut n = r.split(|c: char| !c.is_ascii_digit());
                Some((
                    n.next()?.parse::<u32>().ok()?,
                    n.next()?.parse::<u32>().ok()?,
                ))
            })
            .unwrap_or((0, 0));
        if out.contains("memory_locked: true") && (major, minor) >= (4, 4) {
            // The kernel has MCL_ONFAULT: what is locked is what the daemon uses.
            assert!(out.contains("locked_on_fault: true"), "{out}");
        }
        if out.contains("locked_on_fault: true") {
            assert!(
                out.contains("on fault: a reservation is not made resident"),
                "{out}"
            );
            assert!(!out.contains("own image locked: 0 kB"), "{out}");
        }
        if nix::unistd::geteuid().is_root() {
            // 3.0.6's policy at rtprio, then back to normal for children.
            assert!(out.contains("policy 2 priority 5"), "{out}");
            assert!(out.contains("after normaltime: policy 0"), "{out}");
        }
        // coredumps on: the soft limit is the hard one; off: 0.
        assert!(out.contains("cores on: soft == hard"), "{out}");
        assert!(out.contains("cores off: soft 0"), "{out}");
    }

    #[test]
    #[ignore]
    fn realtime_inner() {
        if std::env::var("HB_TEST_REALTIME").is_err() {
            return;
        }
        let out = lock_memory_and_realtime(Some(5));
        println!("realtime outcome: {out:?}");
        if out.locked_on_fault {
            // A big allocation made after the lock is not made resident until it is used.
            let resident = |field: &str| -> u64 {
                let text = fs::read_to_string("/proc/self/smaps_rollup").unwrap();
                text.lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
                    .unwrap()
            };
            let before = resident("Rss:");
            let locked_before = resident("Locked:");
            let mut big: Vec<u8> = std::hint::black_box(Vec::with_capacity(8 << 20));
            let untouched = resident("Rss:").saturating_sub(before);
            big.resize(1 << 20, 1);
            let locked = resident("Locked:").saturating_sub(locked_before);
            std::hint::black_box(&big);
            println!("on fault: {untouched} kB resident before use, {locked} kB locked (of {locked_before} kB before)");
            // The program's own image is locked whole (`lock_own_image`).
            println!("own image locked: {} kB", out.image_locked / 1024);
            if untouched < 1024 {
                println!("on fault: a reservation is not made resident");
            }
        }
        let policy = || {
            // SAFETY: plain syscalls on our own process.
            let mut p = libc::sched_param { sched_priority: 0 };
            let pol = unsafe { libc::sched_getscheduler(0) };
            unsafe { libc::sched_getparam(0, &mut p) };
            format!("policy {pol} priority {}", p.sched_priority)
        };
        println!("{}", policy());
        if out.realtime {
            make_normaltime().unwrap();
        }
        println!("after normaltime: {}", policy());
        use nix::sys::resource::{getrlimit, Resource};
        set_coredumps(true);
        let (soft, hard) = getrlimit(Resource::RLIMIT_CORE).unwrap();
        if soft == hard {
            println!("cores on: soft == hard");
        }
        set_coredumps(false);
        let (soft, _) = getrlimit(Resource::RLIMIT_CORE).unwrap();
        println!("cores off: soft {soft}");
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
                &format!(
                    "{}::daemonize_inner",
                    module_path!().trim_start_matches("heartbeat::")
                ),
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
