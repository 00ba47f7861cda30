//! Heartbeat's log levels, as the cluster code tags the lines it asks the runtime to log.

use std::fmt;

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
