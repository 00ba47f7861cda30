//! Configuration files are bytes, not text: Heartbeat 3.0.6 reads them with C string
//! functions, so comments and values may be in any encoding (EUC-KR, Shift-JIS, GB2312,
//! Latin-1, UTF-8). Every delimiter the parsers look at (`#`, blanks, `,`, `=`, `::`, `\`,
//! newline) is ASCII, and no byte of those encodings' multi-byte characters is one of them
//! (Shift-JIS and GBK trail bytes start at 0x40), so splitting the bytes or splitting a
//! lossless decoding of them gives the same words.
//!
//! [`decode`] turns a file into a `String` without losing a byte: a UTF-8 file stays as it is,
//! and in any other file every byte from 0x80 up becomes one character of a reserved
//! private-use range (U+10FE80 to U+10FEFF, one per byte value 0x80-0xFF). A file that
//! really contains characters of that range has them escaped byte by byte as well, so
//! [`encode`] always gives back the exact bytes of the file. The parsers work on the
//! decoded text; values that leave the daemon (script arguments, paths, environment values,
//! keys) go through [`encode`] (or [`to_os`], [`to_path`]); messages go through [`escape`],
//! which shows such bytes as `\xNN`, never as garbled text.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// The character standing for byte 0x80 is `BASE + 0x80`.
const BASE: u32 = 0x10_FE00;
const FIRST: u32 = BASE + 0x80;
const LAST: u32 = BASE + 0xFF;

/// The UTF-8 byte-order mark some editors put at the start of a file.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

fn reserved(c: char) -> bool {
    (FIRST..=LAST).contains(&u32::from(c))
}

fn byte_char(b: u8) -> char {
    // Every value BASE + 0x00..=0xFF is a valid scalar value (plane 16, private use).
    char::from_u32(BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The bytes of a file as text, losslessly (see the module documentation). A file that is
/// valid UTF-8 is read as UTF-8; any other is in some legacy encoding, and then every byte
/// from 0x80 up stands for itself (a pair of Shift-JIS or EUC-KR bytes that happens to be
/// valid UTF-8 is not shown as an unrelated character).
pub fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(reserved) => s.to_string(),
        _ => {
            let mut out = String::with_capacity(bytes.len() * 2);
            for &b in bytes {
                if b < 0x80 {
                    out.push(char::from(b));
                } else {
                    out.push(byte_char(b));
                }
            }
            out
        }
    }
}

/// The bytes a decoded string stands for.
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if reserved(c) {
            out.push((u32::from(c) - BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

/// A value's own canonical text: the same bytes decoded on their own, not as part of their
/// file. A name that is compared with names from elsewhere (a node name from `ha.cf`
/// against the `src` of a packet or `uname -n`) must be in this form: in a Latin-1 file a
/// UTF-8 `é` stands for two raw bytes, while the same bytes in a packet read as `é`.
pub fn canonical(text: &str) -> String {
    if !has_raw(text) {
        return text.to_string();
    }
    decode(&encode(text))
}

/// A decoded value as an OS string (a script argument, an environment value).
pub fn to_os(text: &str) -> OsString {
    OsString::from_vec(encode(text))
}

/// A decoded value as a path, byte for byte.
pub fn to_path(text: &str) -> PathBuf {
    PathBuf::from(to_os(text))
}

/// True when the decoded text stood for bytes that are not UTF-8.
pub fn has_raw(text: &str) -> bool {
    // Every reserved character's UTF-8 form starts with 0xF4: most text is ruled out at once.
    text.as_bytes().contains(&0xF4) && text.chars().any(reserved)
}

/// The text for a message: bytes that are not UTF-8 shown as `\xNN`.
pub fn escape(text: &str) -> String {
    escape_as(text, "\\x")
}

/// Like [`escape`] with another prefix before the two hex digits (`\\x` inside a JSON
/// string, where a lone backslash would start a JSON escape).
pub fn escape_as(text: &str, prefix: &str) -> String {
    if !has_raw(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if reserved(c) {
            out.push_str(&format!("{prefix}{:02x}", u32::from(c) - BASE));
        } else {
            out.push(c);
        }
    }
    out
}

/// Strip a leading UTF-8 byte-order mark. Returns the rest and whether there was one.
pub fn strip_bom(bytes: &[u8]) -> (&[u8], bool) {
    match bytes.strip_prefix(BOM) {
        Some(rest) => (rest, true),
        None => (bytes, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "두 노드" in EUC-KR, "日本語" in Shift-JIS, "中文" in GB2312, "café" in Latin-1.
    const EUC_KR: &[u8] = b"\xb5\xce \xb3\xeb\xb5\xe5";
    const SJIS: &[u8] = b"\x93\xfa\x96\x7b\x8c\xea";
    const GB2312: &[u8] = b"\xd6\xd0\xce\xc4";
    const LATIN1: &[u8] = b"caf\xe9";

    #[test]
    fn round_trips_every_legacy_encoding_byte_for_byte() {
        for sample in [EUC_KR, SJIS, GB2312, LATIN1, "두 노드 café".as_bytes()] {
            let text = decode(sample);
            assert_eq!(encode(&text), sample, "{sample:?}");
        }
    }

    #[test]
    fn utf8_stays_as_it_is() {
        let s = "keepalive 2 # 두 노드간 café";
        assert_eq!(decode(s.as_bytes()), s);
        assert!(!has_raw(s));
        assert_eq!(escape(s), s);
    }

    #[test]
    fn round_trips_every_byte_string_of_two_bytes() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let v = [a, b, b'x', a];
                assert_eq!(encode(&decode(&v)), v);
            }
        }
    }

    #[test]
    fn a_file_that_contains_the_reserved_range_is_still_exact() {
        let reserved_char = char::from_u32(FIRST + 5).unwrap().to_string();
        let bytes = format!("a{reserved_char}b").into_bytes();
        let text = decode(&bytes);
        assert_eq!(encode(&text), bytes);
        assert_eq!(escape(&text), "a\\xf4\\x8f\\xba\\x85b");
    }

    #[test]
    fn delimiters_are_never_swallowed_by_a_legacy_character() {
        // Shift-JIS "表" is 0x95 0x5C: its trail byte is a backslash, and stays one.
        let text = decode(b"x \x95\x5c # c\xe9 , y");
        let (before, after) = text.split_once('#').unwrap();
        assert_eq!(encode(before), b"x \x95\x5c ");
        assert_eq!(encode(after), b" c\xe9 , y");
        assert_eq!(text.split(' ').count(), 6);
        assert!(text.contains('\\'));
    }

    #[test]
    fn a_legacy_file_is_escaped_byte_by_byte_even_where_it_looks_like_utf8() {
        // Shift-JIS "設定": 0xDD 0x92 alone would be valid UTF-8 (U+0752).
        assert_eq!(
            escape(&decode(b"x\x90\xdd\x92\xe8")),
            "x\\x90\\xdd\\x92\\xe8"
        );
    }

    #[test]
    fn escape_shows_bytes_never_garbled_text() {
        assert_eq!(escape(&decode(LATIN1)), "caf\\xe9");
        assert_eq!(escape(&decode(GB2312)), "\\xd6\\xd0\\xce\\xc4");
        // A cut-off UTF-8 sequence at the end.
        assert_eq!(escape(&decode(b"ab\xe4\xb8")), "ab\\xe4\\xb8");
    }

    #[test]
    fn os_and_path_values_carry_the_original_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let t = decode(b"/var/log/h\xe9.log");
        assert_eq!(to_path(&t).as_os_str().as_bytes(), b"/var/log/h\xe9.log");
        assert_eq!(to_os(&t).as_bytes(), b"/var/log/h\xe9.log");
    }

    #[test]
    fn a_value_is_canonical_whatever_file_it_came_from() {
        // "café" in UTF-8 inside a Latin-1 file, and the same bytes alone (a packet's src).
        let in_legacy_file = decode(b"node caf\xc3\xa9 # caf\xe9");
        let name = in_legacy_file.split(' ').nth(1).unwrap();
        assert!(has_raw(name));
        assert_eq!(canonical(name), "café");
        assert_eq!(canonical(name), decode("café".as_bytes()));
        // A Latin-1 name stays raw, and equal to the same bytes decoded alone.
        let latin1 = decode(b"node caf\xe9");
        let name = latin1.split(' ').nth(1).unwrap();
        assert_eq!(canonical(name), decode(LATIN1));
        assert_eq!(encode(&canonical(name)), LATIN1);
    }

    #[test]
    fn bom_is_stripped_once() {
        assert_eq!(strip_bom(b"\xEF\xBB\xBFnode a"), (&b"node a"[..], true));
        assert_eq!(strip_bom(b"node a"), (&b"node a"[..], false));
    }
}
