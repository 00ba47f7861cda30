//! The I/O shell: event loop, logging, signals, pid and state files.

pub mod admin;
pub mod cli;
pub mod clients;
pub mod control;
pub mod daemon;
pub mod event_loop;
pub mod fifo;
pub mod hooks;
pub mod links;
pub mod log;
pub mod notify;
pub mod paths;
pub mod pidfile;
pub mod script_env;
pub mod scripts;
pub mod signals;
pub mod startup;
pub mod state;
pub mod watchdog;

/// What `heartbeat -V` prints and log lines name: the release we are a drop-in for.
pub const VERSION: &str = "3.0.6";
pub const VERSION_STRING: &str = concat!("3.0.6 (heartbeat-rs ", env!("CARGO_PKG_VERSION"), ")");
