//! The Heartbeat message model, its two encodings (netstring and classic) and signing. Pure.

pub mod auth;
mod base64;
pub mod classic;
pub mod message;
pub mod messages;
pub mod netstring;

pub use auth::{Authenticator, NetstringKeyRule, Reject, Verified};
pub use message::{Field, Msg, ReadFields, Value};
pub use netstring::MsgView;

use std::fmt;

/// Largest packet we read (3.0.6's MAXMSG, 256 KiB).
pub const MAX_PACKET: usize = 262_144;

/// Deepest nesting of struct fields below the top-level message (3.0.6 allows 16).
pub const MAX_DEPTH: usize = 16;

/// Most fields one packet may hold, nested ones included (bounds work per packet).
pub const MAX_FIELDS: usize = 1000;

/// Why bytes did not decode as a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl WireError {
    pub(crate) fn new(msg: impl Into<String>) -> WireError {
        WireError(msg.into())
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

/// Checks shared by both decoders: names non-empty without `=` or NUL.
pub(crate) fn check_name(name: &[u8]) -> Result<(), WireError> {
    if name.is_empty() {
        return Err(WireError::new("field with an empty name"));
    }
    if name.contains(&0) {
        return Err(WireError::new("NUL byte in a field name"));
    }
    Ok(())
}

/// 3.0.6 aborts on string values holding NUL, so no honest peer sends one.
pub(crate) fn check_str_value(value: &[u8]) -> Result<(), WireError> {
    if value.contains(&0) {
        return Err(WireError::new("NUL byte in a string value"));
    }
    Ok(())
}

/// Split a packed list value (`LEN:item,` repeated) into its items.
pub(crate) fn unpack_list(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
    let mut items = Vec::new();
    while !bytes.is_empty() {
        let (item, rest) = read_netstring(bytes)?;
        items.push(item.to_vec());
        bytes = rest;
    }
    Ok(items)
}

/// Packed form of a list value.
pub(crate) fn pack_list(items: &[Vec<u8>], out: &mut Vec<u8>) {
    for item in items {
        write_netstring(item, out);
    }
}

pub(crate) fn write_netstring(content: &[u8], out: &mut Vec<u8>) {
    write_decimal(content.len(), out);
    out.push(b':');
    out.extend_from_slice(content);
    out.push(b',');
}

/// `n` in decimal without leading zeros, straight into `out` (no `String` per field).
pub(crate) fn write_decimal(mut n: usize, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Read one `LEN:content,` from the front of `bytes`: digits without leading zeros, the
/// exact content, the comma. Returns the content and what follows.
pub(crate) fn read_netstring(bytes: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    // One pass over the digits; an overflow is reported only after the leading-zero check,
    // as the order of the checks decides which error a bad length gets.
    let mut digits = 0;
    let mut len: Option<usize> = Some(0);
    for &d in bytes.iter().take_while(|b| b.is_ascii_digit()) {
        digits += 1;
        len = len
            .and_then(|l| l.checked_mul(10))
            .and_then(|l| l.checked_add(usize::from(d - b'0')));
    }
    if digits == 0 {
        return Err(WireError::new("netstring length missing"));
    }
    if digits > 1 && bytes[0] == b'0' {
        return Err(WireError::new("netstring length with a leading zero"));
    }
    let len = len.ok_or_else(|| WireError::new("netstring length too large"))?;
    let rest = &bytes[digits..];
    if rest.first() != Some(&b':') {
        return Err(WireError::new("netstring length not followed by ':'"));
    }
    let rest = &rest[1..];
    if len >= rest.len() {
        return Err(WireError::new("netstring runs past the end of the data"));
    }
    if rest[len] != b',' {
        return Err(WireError::new("netstring not terminated by ','"));
    }
    Ok((&rest[..len], &rest[len + 1..]))
}
