//! The sans-IO cluster state machine: membership, sequencing, retransmission, resource
//! management, and the node (`Cluster`) that joins them. It takes (time, input) and queues
//! actions; it never reads the clock, touches a socket or spawns a process.

use std::fmt;

/// The two clocks the protocol needs: a monotonic one for timers and the wall clock for the
/// `ts` field. Supplied by the caller (the runtime, or a simulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Now {
    pub mono_ms: u64,
    pub unix_secs: u64,
}

/// Heartbeat's log levels (upper case for warning and worse on the wire of the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Emerg,
    Alert,
    Crit,
    Error,
    Warn,
    Notice,
    Info,
    Debug,
}

impl LogLevel {
    /// The word 3.0.6 writes after the pid: `CRIT`, `ERROR`, `WARN`, `info`, `debug` ...
    pub fn word(self) -> &'static str {
        match self {
            LogLevel::Emerg => "EMERG",
            LogLevel::Alert => "ALERT",
            LogLevel::Crit => "CRIT",
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Notice => "notice",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }

    /// syslog severity number.
    pub fn syslog_severity(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

pub mod history;
pub mod membership;
pub mod node;
pub mod notifications;
pub mod resources;
pub mod sequence;

pub use membership::{Action, Identity, Membership, NodeStatus, Params};
pub use node::{Cluster, ClusterAction};
