//! The netstring encoding (`###\n` ... `%%%\n`), always used by 3.0.6 on UDP.

use super::{Msg, WireError};

/// Encode a message body from `###\n` to `%%%\n` (no trailer).
pub fn encode(msg: &Msg) -> Vec<u8> {
    let _ = msg;
    unimplemented!()
}

/// Decode a body starting at `###\n`. Returns the message and the length of the body
/// (up to and including `%%%\n`), so the caller can read the trailer after it.
pub fn decode_body(bytes: &[u8]) -> Result<(Msg, usize), WireError> {
    let _ = bytes;
    unimplemented!()
}
