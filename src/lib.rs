//! A drop-in replacement for the Heartbeat v1 failover daemon (wire-compatible with 3.0.6).
//!
//! `config`, `wire`, `cluster` and `status` are pure: no clock, no sockets, no processes.
//! `media` and `runtime` are the thin I/O shell around them.

pub mod cluster;
pub mod config;
pub mod export;
pub mod media;
pub mod runtime;
pub mod sim;
pub mod status;
pub mod wire;
