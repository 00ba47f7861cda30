//! The classic encoding (`>>>\n` ... `<<<\n`): serial links, old releases, and the text the
//! inner `auth` field signs.

use super::{Msg, WireError};

/// Full classic packet, `>>>\n` to `<<<\n`.
pub fn encode(msg: &Msg) -> Vec<u8> {
    let _ = msg;
    unimplemented!()
}

/// Decode a classic packet (a trailing NUL is accepted).
pub fn decode(bytes: &[u8]) -> Result<Msg, WireError> {
    let _ = bytes;
    unimplemented!()
}

/// The text the classic signature covers: every field but `auth`, one classic line each.
pub fn signing_text(msg: &Msg) -> Vec<u8> {
    let _ = msg;
    unimplemented!()
}
