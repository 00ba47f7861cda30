//! The I/O shell: event loop, logging, signals, pid and state files.
pub mod daemon;
pub mod log;
pub mod pidfile;
pub mod signals;
pub mod state;
