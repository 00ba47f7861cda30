//! The I/O shell: event loop, logging, signals, pid and state files.

pub mod children;
pub mod cli;
pub mod control;
pub mod event_loop;
pub mod links;
pub mod log;
pub mod log_setup;
pub mod options;
pub mod os;
pub mod startup;

/// What `heartbeat -V` prints and log lines name: the release we are a drop-in for.
pub const VERSION: &str = "3.0.6";
pub const VERSION_STRING: &str = concat!("3.0.6 (heartbeat-rs ", env!("CARGO_PKG_VERSION"), ")");
