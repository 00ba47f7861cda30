//! Signing and verification exactly as Heartbeat 3.0.6 computes them (md5, sha1, crc).

use std::fmt;

use super::Msg;
use crate::config::{AuthKeys, AuthMethod};

/// Why a packet was refused. `Display` keeps 3.0.6's wording first, detail after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Not a message at all (bad framing, bad field, too big ...).
    Malformed(String),
    /// Netstring packet without a readable trailer.
    NoTrailer,
    /// The named key index is not in authkeys.
    UnknownIndex(u32),
    /// Netstring trailer digest wrong.
    BadDigest { got: String, computed: String },
    /// Classic packet whose `auth` field is wrong (src as found in the packet).
    ClassicAuthFailed { src: String },
    /// Classic packet without a usable `auth` field.
    ClassicNoAuth,
    /// Signed with crc while crc is not our active method (a deliberate divergence).
    CrcNotActive,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        unimplemented!()
    }
}

/// The digest of `data` as 3.0.6 writes it (lowercase hex; crc without leading zeros).
pub fn digest(method: AuthMethod, key: &[u8], data: &[u8]) -> String {
    let _ = (method, key, data);
    unimplemented!()
}

/// Signs what we send and verifies what we receive, from one authkeys.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub keys: AuthKeys,
    /// Accept crc-signed packets even when crc is not the active method (3.0.6 does).
    pub accept_any_crc: bool,
}

impl Authenticator {
    pub fn new(keys: AuthKeys) -> Authenticator {
        Authenticator {
            keys,
            accept_any_crc: false,
        }
    }

    /// Add (or replace in place) the inner classic `auth` field, signed with the active key.
    pub fn add_inner_auth(&self, msg: &mut Msg) {
        let _ = msg;
        unimplemented!()
    }

    /// Netstring body plus trailer, as 3.0.6 puts it in a UDP datagram.
    pub fn encode_udp(&self, msg: &Msg) -> Vec<u8> {
        let _ = msg;
        unimplemented!()
    }

    /// Classic packet with its `auth` field recomputed (serial links).
    pub fn encode_classic(&self, msg: &Msg) -> Vec<u8> {
        let _ = msg;
        unimplemented!()
    }

    /// Decode and authenticate one datagram (netstring or classic).
    pub fn verify(&self, packet: &[u8]) -> Result<Msg, Reject> {
        let _ = packet;
        unimplemented!()
    }
}
