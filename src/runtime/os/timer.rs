//! The loop's clock and its one deadline timer.
//!
//! The loop sleeps in `epoll_wait` with no timeout; the next deadline is a `timerfd` armed at
//! an absolute CLOCK_MONOTONIC instant in the same poll set. `epoll_wait`'s own timeout counts
//! whole milliseconds (mio rounds up) and gets the caller's timer slack added, so a deadline
//! `deadtime` ms after a heartbeat fired up to a millisecond and more late; the timerfd fires
//! at the nanosecond it was armed for. The timer is re-armed only when the deadline changes,
//! and with nothing due it is disarmed: no wake-up without work.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::cluster::Now;

/// Nanoseconds on CLOCK_MONOTONIC (what `Instant` reads on Linux).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

fn unix_secs() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as above, for CLOCK_REALTIME (a vDSO read, no system call).
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec.max(0) as u64
}

/// The cluster's clock: milliseconds since the daemon started, and the wall clock.
pub struct Clock {
    start_ns: u64,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            start_ns: monotonic_ns(),
        }
    }

    pub fn now(&self) -> Now {
        Now {
            mono_ms: (monotonic_ns().saturating_sub(self.start_ns)) / 1_000_000,
            unix_secs: unix_secs(),
        }
    }

    /// The monotonic instant (ns) at which the cluster's clock reads `mono_ms`: the cluster
    /// acts when `now.mono_ms >= mono_ms`, which is from that very nanosecond on.
    pub fn instant_of(&self, mono_ms: u64) -> u64 {
        self.start_ns
            .saturating_add(mono_ms.saturating_mul(1_000_000))
    }

    /// The monotonic instant (ns) of an `Instant` (children's and connections' deadlines).
    pub fn instant_of_std(&self, at: Instant) -> u64 {
        let now_ns = monotonic_ns();
        let now = Instant::now();
        match at.checked_duration_since(now) {
            Some(d) => now_ns.saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
            None => now_ns,
        }
    }
}

/// A non-blocking timerfd on CLOCK_MONOTONIC, for the poll set.
pub struct DeadlineTimer {
    fd: OwnedFd,
    /// The instant it is armed for (0: disarmed).
    armed_ns: u64,
}

impl DeadlineTimer {
    pub fn new() -> io::Result<DeadlineTimer> {
        // SAFETY: timerfd_create returns a new descriptor or -1.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(DeadlineTimer {
            // SAFETY: fd was just created and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            armed_ns: 0,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Arm for the absolute instant `at_ns` (None: disarm). A system call only when the
    /// deadline changed.
    pub fn set(&mut self, at_ns: Option<u64>) -> io::Result<()> {
        // An instant in the past still fires: 0 would disarm, so it becomes 1 ns.
        let want = at_ns.map_or(0, |t| t.max(1));
        if want == self.armed_ns {
            return Ok(());
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (want / 1_000_000_000) as libc::time_t,
                tv_nsec: (want % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: a valid timerfd and a fully initialised itimerspec.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed_ns = want;
        Ok(())
    }

    /// It fired (a one-shot timer is then disarmed). The expiry count is not read: the poll
    /// set is edge-triggered, every expiry is a new edge, and arming again resets the count,
    /// so the read would be a system call per wake-up for nothing.
    pub fn fired(&mut self) {
        self.armed_ns = 0;
    }
}

/// A relative timeout as an absolute deadline, for the ones kept as `Duration`s.
pub fn after(now_ns: u64, d: Duration) -> u64 {
    now_ns.saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_clock_reaches_a_deadline_at_its_instant() {
        let c = Clock::start();
        let at = c.instant_of(3);
        while monotonic_ns() < at {
            std::hint::spin_loop();
        }
        assert!(c.now().mono_ms >= 3);
    }

    #[test]
    fn an_armed_timer_fires_and_rearming_the_same_instant_is_free() {
        let mut t = DeadlineTimer::new().unwrap();
        let at = monotonic_ns() + 2_000_000;
        t.set(Some(at)).unwrap();
        assert_eq!(t.armed_ns, at);
        t.set(Some(at)).unwrap();
        let mut pfd = libc::pollfd {
            fd: t.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own.
        let n = unsafe { libc::poll(&mut pfd, 1, 1000) };
        assert_eq!(n, 1, "the timerfd did not fire within a second");
        assert!(monotonic_ns() >= at, "fired before its instant");
        t.fired();
        assert_eq!(t.armed_ns, 0);
        t.set(None).unwrap();
    }
}
