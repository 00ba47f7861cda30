//! `watchdog <device>`: a hardware or softdog timer the daemon tickles with every status
//! message it sends; if the event loop stalls the driver resets the machine. Disarmed with the
//! magic `V` on a graceful stop (links.md 5).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::cluster::LogLevel;
use crate::runtime::log as hblog;

// WDIOC_SETTIMEOUT = _IOWR('W', 6, int) from <linux/watchdog.h>.
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, libc::c_int);

pub struct Watchdog {
    path: PathBuf,
    file: Option<File>,
}

impl Watchdog {
    /// Open the device and set its timeout to deadtime + 10 ms, rounded up to seconds. A
    /// device that cannot be opened is logged and the daemon runs without it, as 3.0.6 does.
    pub fn open(path: &Path, deadtime_ms: u64) -> Watchdog {
        let file = match OpenOptions::new().write(true).open(path) {
            Ok(f) => {
                hblog::emit(
                    LogLevel::Notice,
                    &format!("Using watchdog device: {}", path.display()),
                );
                let mut secs = deadtime_ms
                    .saturating_add(10)
                    .div_ceil(1000)
                    .min(i32::MAX as u64) as libc::c_int;
                // SAFETY: the ioctl reads and writes one int through a valid pointer, on a
                // descriptor we own; on a file that is not a watchdog it fails with ENOTTY.
                if let Err(e) = unsafe { wdioc_settimeout(f.as_raw_fd(), &mut secs) } {
                    hblog::emit(
                        LogLevel::Error,
                        &format!(
                            "WDIOC_SETTIMEOUT: Failed to set watchdog timer to {secs} seconds.: {}",
                            e.desc()
                        ),
                    );
                }
                Some(f)
            }
            Err(_) => {
                hblog::emit(
                    LogLevel::Error,
                    &format!("Cannot open watchdog device: {}", path.display()),
                );
                None
            }
        };
        Watchdog {
            path: path.to_path_buf(),
            file,
        }
    }

    /// One byte per status message we send.
    pub fn tickle(&mut self) {
        if let Some(f) = self.file.as_mut() {
            if f.write_all(&[0]).is_err() {
                hblog::emit(
                    LogLevel::Error,
                    &format!("Watchdog write failure: closing {}!", self.path.display()),
                );
                self.file = None;
            }
        }
    }

    /// Graceful stop: tell the driver we stop on purpose, then close.
    pub fn disarm(&mut self) {
        if let Some(mut f) = self.file.take() {
            let _ = f.write_all(b"V");
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.disarm();
    }
}
