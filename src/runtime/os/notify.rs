//! The service manager notification protocol (systemd's `sd_notify`), written out by hand:
//! one datagram of `NAME=value` lines to the unix socket named by `$NOTIFY_SOCKET`. A name
//! starting with `@` is in the abstract namespace (the `@` stands for the leading NUL byte).
//! Nothing happens when the variable is unset, so the daemon calls these unconditionally.
//!
//! What the daemon says (see `init/heartbeat.service`, `Type=notify`):
//!
//! * `READY=1` once the configuration is loaded, the pid file written and the media and the
//!   control socket open — **not** at comm-up, which takes up to `initdead` (often two
//!   minutes, more than a start timeout) when the peer is down; `STATUS=` says which;
//! * `STOPPING=1` on SIGTERM, `RELOADING=1` (with `MONOTONIC_USEC`) then `READY=1` around
//!   SIGHUP;
//! * `WATCHDOG=1` every half of `$WATCHDOG_USEC`, from the event loop's timer, so a loop that
//!   hangs stops the pings and the service manager acts (`WatchdogSec=`).
//!
//! Sends never block: the socket is non-blocking and a full receiver queue drops the message
//! (a datagram socket whose reader is slow would otherwise stall the event loop).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::LogLevel;
use crate::runtime::log as hblog;

/// The variable naming the socket.
pub const SOCKET_VAR: &str = "NOTIFY_SOCKET";

/// Send `state` (newline-separated assignments) to the socket named by `$NOTIFY_SOCKET`.
/// Ok(false) when the variable is unset or empty (not run by a service manager).
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os(SOCKET_VAR) {
        Some(addr) if !addr.is_empty() => {
            send_to(&addr.to_string_lossy(), state)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Send `state` to the socket `addr` (a path, or `@name` for an abstract socket).
pub fn send_to(addr: &str, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    let sent = if let Some(name) = addr.strip_prefix('@') {
        send_abstract(&sock, name.as_bytes(), state.as_bytes())?
    } else if addr.starts_with('/') {
        sock.send_to(state.as_bytes(), addr)?
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{SOCKET_VAR}={addr}: neither an absolute path nor @abstract"),
        ));
    };
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "notification datagram truncated",
        ));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(sock: &UnixDatagram, name: &[u8], msg: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(msg, &addr)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

/// Failures are logged once (a wrong `NOTIFY_SOCKET` would otherwise fill the log with one
/// line per watchdog ping); everything after that is silent.
static FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

fn say(state: &str) -> bool {
    match notify(state) {
        Ok(sent) => sent,
        Err(e) => {
            // A full queue is the receiver's problem; the next message will do.
            if e.kind() != io::ErrorKind::WouldBlock
                && !FAILURE_LOGGED.swap(true, Ordering::Relaxed)
            {
                hblog::emit(
                    LogLevel::Warn,
                    &format!("Cannot notify the service manager ({SOCKET_VAR}): {e}"),
                );
            }
            false
        }
    }
}

/// `READY=1`: start-up finished (also after a reload). True if a notification was sent.
pub fn ready() -> bool {
    say("READY=1")
}

/// `STOPPING=1`: shutting down.
pub fn stopping() -> bool {
    say("STOPPING=1")
}

/// `RELOADING=1` with the `MONOTONIC_USEC` stamp systemd asks for; follow with [`ready`].
pub fn reloading() -> bool {
    say(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()))
}

/// `STATUS=text`, the one-line state `systemctl status` shows. Newlines become spaces.
pub fn status(text: &str) -> bool {
    say(&format!("STATUS={}", text.replace(['\n', '\r'], " ")))
}

/// `WATCHDOG=1`: the keep-alive ping.
pub fn watchdog_ping() -> bool {
    say("WATCHDOG=1")
}

/// The watchdog interval the service manager expects pings within (`$WATCHDOG_USEC`), when
/// it is meant for this process (`$WATCHDOG_PID` unset or ours). Ping at half of it.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// [`watchdog_interval`] from the two variables' values (pure, for tests).
pub fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(p) = pid {
        if p.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    let us: u64 = usec?.trim().parse().ok()?;
    (us > 0).then(|| Duration::from_micros(us))
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid, exclusive pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// When the event loop owes the service manager its next `WATCHDOG=1`.
#[derive(Debug, Clone)]
pub struct Watchdog {
    period: Duration,
    next: Instant,
}

impl Watchdog {
    /// Ping every `interval / 2`; the first ping is due at once.
    pub fn new(interval: Duration, now: Instant) -> Watchdog {
        Watchdog {
            period: (interval / 2).max(Duration::from_millis(1)),
            next: now,
        }
    }

    /// From `$WATCHDOG_USEC`/`$WATCHDOG_PID`; None when no watchdog is asked for.
    pub fn from_env(now: Instant) -> Option<Watchdog> {
        watchdog_interval().map(|i| Watchdog::new(i, now))
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// When the next ping is due.
    pub fn deadline(&self) -> Instant {
        self.next
    }

    /// `timeout` shortened so that the loop wakes up for the next ping.
    pub fn fold_timeout(&self, timeout: Option<Duration>, now: Instant) -> Option<Duration> {
        let left = self.next.saturating_duration_since(now);
        Some(timeout.map_or(left, |t| t.min(left)))
    }

    /// Ping if due; true when it was due.
    pub fn poll(&mut self, now: Instant) -> bool {
        self.poll_with(now, || {
            watchdog_ping();
        })
    }

    fn poll_with(&mut self, now: Instant, ping: impl FnOnce()) -> bool {
        if now < self.next {
            return false;
        }
        ping();
        self.next = now + self.period;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    fn temp_socket(name: &str) -> (PathBuf, UnixDatagram) {
        let dir = std::env::temp_dir().join(format!("hb-notify-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (path, sock)
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Run [`child_sends_everything`] in a child process of this test binary with
    /// `NOTIFY_SOCKET=addr` (the environment of this multi-threaded process stays untouched).
    fn run_child(addr: Option<&str>) {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new(exe);
        cmd.args([
            "--exact",
            &format!(
                "{}::child_sends_everything",
                module_path!().trim_start_matches("heartbeat::")
            ),
            "--nocapture",
        ]);
        match addr {
            Some(a) => cmd.env(SOCKET_VAR, a).env("HB_NOTIFY_TEST_CHILD", "send"),
            None => cmd
                .env_remove(SOCKET_VAR)
                .env("HB_NOTIFY_TEST_CHILD", "unset"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "child failed: {out:?}");
    }

    /// Does something only as the child of [`run_child`].
    #[test]
    fn child_sends_everything() {
        match std::env::var("HB_NOTIFY_TEST_CHILD").as_deref() {
            Ok("send") => {}
            Ok("unset") => {
                // Not under a service manager: nothing is sent, nothing fails.
                assert!(!ready() && !stopping() && !watchdog_ping());
                return;
            }
            _ => return,
        }
        assert!(ready());
        assert!(status("waiting\nfor bob"));
        assert!(reloading());
        assert!(stopping());
        assert!(watchdog_ping());
        let mut w = Watchdog::new(Duration::from_millis(200), Instant::now());
        assert!(w.poll(Instant::now()));
    }

    fn expect_everything(sock: &UnixDatagram) {
        assert_eq!(recv(sock), "READY=1");
        assert_eq!(recv(sock), "STATUS=waiting for bob");
        let r = recv(sock);
        let mut lines = r.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let stamp = lines.next().and_then(|l| l.strip_prefix("MONOTONIC_USEC="));
        assert!(
            stamp.is_some_and(|s| s.parse::<u64>().is_ok_and(|v| v > 0)),
            "{r:?}"
        );
        assert_eq!(recv(sock), "STOPPING=1");
        assert_eq!(recv(sock), "WATCHDOG=1");
        assert_eq!(recv(sock), "WATCHDOG=1");
    }

    #[test]
    fn every_message_reaches_a_path_socket() {
        let (path, sock) = temp_socket("path");
        run_child(Some(&path.to_string_lossy()));
        expect_everything(&sock);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn abstract_socket_names_start_with_at() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("hb-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        run_child(Some(&format!("@{name}")));
        expect_everything(&sock);
    }

    #[test]
    fn nothing_without_a_socket() {
        run_child(None);
    }

    #[test]
    fn bad_addresses_fail_and_a_full_queue_never_blocks() {
        assert!(send_to("relative/path", "READY=1").is_err());
        assert!(send_to("/nonexistent/hb-notify/socket", "READY=1").is_err());
        // A receiver that never reads: the queue fills, and sends fail with WouldBlock
        // instead of hanging the caller.
        let (path, _sock) = temp_socket("full");
        let addr = path.to_string_lossy().into_owned();
        let t0 = Instant::now();
        let mut would_block = false;
        for _ in 0..100_000 {
            if let Err(e) = send_to(&addr, "WATCHDOG=1") {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
                would_block = true;
                break;
            }
        }
        assert!(would_block, "the queue never filled");
        assert!(t0.elapsed() < Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn watchdog_variables() {
        assert_eq!(
            parse_watchdog(Some("10000000"), None, 42),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_watchdog(Some("500000"), Some("42"), 42),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_watchdog(Some("500000"), Some("43"), 42), None);
        assert_eq!(parse_watchdog(Some("500000"), Some("x"), 42), None);
        assert_eq!(parse_watchdog(Some("0"), None, 42), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 42), None);
        assert_eq!(parse_watchdog(None, Some("42"), 42), None);
        assert_eq!(parse_watchdog(None, None, 42), None);
    }

    #[test]
    fn watchdog_pings_at_half_the_interval() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_secs(10), t0);
        assert_eq!(w.period(), Duration::from_secs(5));
        let mut pings = 0;
        // Due at once, then every 5 s.
        assert!(w.poll_with(t0, || pings += 1));
        assert!(!w.poll_with(t0 + Duration::from_millis(4999), || pings += 1));
        assert_eq!(w.deadline(), t0 + Duration::from_secs(5));
        assert_eq!(
            w.fold_timeout(None, t0 + Duration::from_secs(1)),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            w.fold_timeout(Some(Duration::from_secs(1)), t0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            w.fold_timeout(Some(Duration::from_secs(9)), t0 + Duration::from_secs(6)),
            Some(Duration::ZERO)
        );
        assert!(w.poll_with(t0 + Duration::from_secs(6), || pings += 1));
        assert_eq!(w.deadline(), t0 + Duration::from_secs(11));
        assert_eq!(pings, 2);
    }
}
