//! Signals as events of the mio loop (admin.md §4.4).
//!
//! TERM, HUP, USR1, USR2 and CHLD are caught by async-signal-safe handlers (signal-hook) that
//! wake the loop through a self-pipe; INT, PIPE, TTIN and TTOU are ignored. Several
//! deliveries of one signal between two reads are reported once (as in 3.0.6, where a
//! signal sets a flag): two quick USR1 may raise the debug level by one only.

use std::io;

use mio::{Interest, Registry, Token};
use nix::sys::signal::{self as nixsig, SigHandler};
use signal_hook::consts::signal::{SIGCHLD, SIGHUP, SIGTERM, SIGUSR1, SIGUSR2};

/// A signal the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// Graceful shutdown.
    Term,
    /// Reread the configuration.
    Hup,
    /// Debug level +1.
    Usr1,
    /// Debug level −1.
    Usr2,
    /// A child process changed state: reap it (`waitpid`) until none is left.
    Chld,
}

impl Signal {
    fn from_raw(sig: i32) -> Option<Signal> {
        match sig {
            SIGTERM => Some(Signal::Term),
            SIGHUP => Some(Signal::Hup),
            SIGUSR1 => Some(Signal::Usr1),
            SIGUSR2 => Some(Signal::Usr2),
            SIGCHLD => Some(Signal::Chld),
            _ => None,
        }
    }
}

const CAUGHT: [i32; 5] = [SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD];
const IGNORED: [nixsig::Signal; 4] = [
    nixsig::Signal::SIGINT,
    nixsig::Signal::SIGPIPE,
    nixsig::Signal::SIGTTIN,
    nixsig::Signal::SIGTTOU,
];

/// The signal source. Create one per process, after [`daemonize`](crate::runtime::os::daemon::daemonize).
pub struct Signals {
    inner: signal_hook_mio::v1_0::Signals,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals")
    }
}

impl Signals {
    /// Installs the handlers, ignores INT/PIPE/TTIN/TTOU, and registers the source with
    /// `registry` under `token` (readable). When the token fires, call [`Signals::pending`].
    pub fn new(registry: &Registry, token: Token) -> io::Result<Signals> {
        for sig in IGNORED {
            set_disposition(sig, SigHandler::SigIgn)?;
        }
        let mut inner = signal_hook_mio::v1_0::Signals::new(CAUGHT)?;
        registry.register(&mut inner, token, Interest::READABLE)?;
        Ok(Signals { inner })
    }

    /// The signals received since the last call, each once, in the order Chld, Hup, Usr1,
    /// Usr2, Term (so a shutdown is handled after everything else). Never blocks.
    pub fn pending(&mut self) -> Vec<Signal> {
        let mut out: Vec<Signal> = self.inner.pending().filter_map(Signal::from_raw).collect();
        out.sort_by_key(|s| match s {
            Signal::Chld => 0,
            Signal::Hup => 1,
            Signal::Usr1 => 2,
            Signal::Usr2 => 3,
            Signal::Term => 4,
        });
        out.dedup();
        out
    }

    /// Removes the source from `registry`.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut self.inner)
    }
}

/// Puts the ignored signals (INT, PIPE, TTIN, TTOU) back to their default action. Ignored
/// dispositions survive `exec`, caught ones do not, so run this in children before `exec`
/// (`CommandExt::pre_exec`); it only calls `sigaction`, which is async-signal-safe.
pub fn reset_for_child() -> io::Result<()> {
    for sig in IGNORED {
        set_disposition(sig, SigHandler::SigDfl)?;
    }
    Ok(())
}

fn set_disposition(sig: nixsig::Signal, handler: SigHandler) -> io::Result<()> {
    // SAFETY: only SIG_IGN or SIG_DFL is installed, never a handler function, so no code
    // of ours runs in signal context.
    unsafe { nixsig::signal(sig, handler) }
        .map(drop)
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The only test that installs the handlers in the (shared) test process.
    #[test]
    fn signals_arrive_through_mio() {
        let mut poll = mio::Poll::new().unwrap();
        let mut signals = Signals::new(poll.registry(), Token(7)).unwrap();
        for sig in [
            nixsig::Signal::SIGTERM,
            nixsig::Signal::SIGUSR2,
            nixsig::Signal::SIGUSR1,
            nixsig::Signal::SIGUSR1,
            nixsig::Signal::SIGHUP,
            // Ignored: the test process must survive them.
            nixsig::Signal::SIGINT,
            nixsig::Signal::SIGPIPE,
        ] {
            nixsig::raise(sig).unwrap();
        }
        let mut got = Vec::new();
        let mut events = mio::Events::with_capacity(8);
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 4 && Instant::now() < deadline {
            poll.poll(&mut events, Some(Duration::from_millis(200)))
                .unwrap();
            for ev in events.iter() {
                assert_eq!(ev.token(), Token(7));
            }
            got.extend(signals.pending());
        }
        got.sort();
        got.dedup();
        assert_eq!(got, [Signal::Term, Signal::Hup, Signal::Usr1, Signal::Usr2]);
        assert!(signals.pending().is_empty());
        signals.deregister(poll.registry()).unwrap();
    }

    #[test]
    fn child_reset_runs() {
        use std::os::unix::process::CommandExt;
        // SAFETY (test): the closure only calls sigaction. It ignores the signals first, as
        // the daemon does, so the reset is what is being checked.
        let out = unsafe {
            std::process::Command::new("sh")
                .args(["-c", "grep SigIgn /proc/self/status"])
                .pre_exec(|| {
                    for sig in IGNORED {
                        set_disposition(sig, SigHandler::SigIgn)?;
                    }
                    reset_for_child()
                })
                .output()
                .unwrap()
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mask = u64::from_str_radix(text.split_whitespace().nth(1).unwrap_or("0"), 16).unwrap();
        for sig in [libc::SIGINT, libc::SIGPIPE, libc::SIGTTIN, libc::SIGTTOU] {
            assert_eq!(
                mask & (1 << (sig - 1)),
                0,
                "signal {sig} still ignored: {text}"
            );
        }
    }

    #[test]
    fn mapping() {
        assert_eq!(Signal::from_raw(SIGCHLD), Some(Signal::Chld));
        assert_eq!(Signal::from_raw(libc::SIGINT), None);
    }
}
