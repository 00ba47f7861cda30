//! What the daemon asks of the operating system: becoming a daemon, signals, the pid and state
//! files, where things live, sd_notify, the deadline timer (timerfd), the watchdog device and the
//! metrics file.

pub mod daemon;
pub mod metrics_file;
pub mod notify;
pub mod paths;
pub mod pidfile;
pub mod signals;
pub mod state;
pub mod timer;
pub mod watchdog;
