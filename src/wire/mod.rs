//! The Heartbeat message model, its two encodings (netstring and classic) and signing. Pure.

pub mod auth;
pub mod classic;
pub mod message;
pub mod netstring;

pub use auth::{Authenticator, Reject};
pub use message::{Field, Msg, Value};

use std::fmt;

/// Why bytes did not decode as a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}
