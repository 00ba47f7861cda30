//! The classic encoding (`>>>\n` ... `<<<\n`): serial links, old releases, and the text the
//! inner `auth` field signs.

use super::{
    base64, check_name, check_str_value, pack_list, unpack_list, Field, Msg, Value, WireError,
    MAX_DEPTH, MAX_FIELDS, MAX_PACKET,
};

pub(crate) const HEAD: &[u8] = b">>>\n";
const TAIL: &[u8] = b"<<<\n";

/// LF inside string values travels as this byte.
const STR_LF: u8 = 0x13;

/// The byte that stands for LF inside a struct field of a message at `depth` (0 = top).
fn depth_byte(depth: usize) -> u8 {
    const BYTES: [u8; MAX_DEPTH] = [
        0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x0f, 0x10, 0x11,
        0x12,
    ];
    // Deeper nesting has no byte in 3.0.6; the decoder refuses it, so any byte will do.
    BYTES[depth.min(MAX_DEPTH - 1)]
}

/// Full classic packet, `>>>\n` to `<<<\n`.
pub fn encode(msg: &Msg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_at(msg, 0, &mut out);
    out
}

fn encode_at(msg: &Msg, depth: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(HEAD);
    for field in &msg.fields {
        write_line(field, depth, out);
    }
    out.extend_from_slice(TAIL);
}

/// One classic line, LF included. Not representable (and so not round-tripping): string
/// names starting with `(T)`, names with LF, 0x13 in strings, LF in list items.
fn write_line(field: &Field, depth: usize, out: &mut Vec<u8>) {
    let marker = |digit: u8, out: &mut Vec<u8>| {
        out.extend_from_slice(&[b'(', digit, b')']);
        out.extend_from_slice(&field.name);
        out.push(b'=');
    };
    match &field.value {
        Value::Str(v) => {
            out.extend_from_slice(&field.name);
            out.push(b'=');
            out.extend(v.iter().map(|&b| if b == b'\n' { STR_LF } else { b }));
        }
        Value::Binary(v) => {
            marker(b'1', out);
            base64::encode(v, out);
        }
        Value::Struct(child) => {
            marker(b'2', out);
            let mut text = Vec::new();
            encode_at(child, depth + 1, &mut text);
            let sub = depth_byte(depth);
            out.extend(text.iter().map(|&b| if b == b'\n' { sub } else { b }));
        }
        Value::List(items) => {
            marker(b'3', out);
            pack_list(items, out);
        }
        Value::Compress(v) => {
            marker(b'4', out);
            base64::encode(v, out);
        }
    }
    out.push(b'\n');
}

/// Decode a classic packet (a trailing NUL is accepted).
pub fn decode(bytes: &[u8]) -> Result<Msg, WireError> {
    if bytes.len() > MAX_PACKET {
        return Err(WireError::new(format!(
            "packet of {} bytes exceeds {MAX_PACKET}",
            bytes.len()
        )));
    }
    // 3.0.6 counts one terminating NUL on local channels.
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    let mut budget = MAX_FIELDS;
    decode_at(bytes, 0, &mut budget)
}

fn decode_at(bytes: &[u8], depth: usize, budget: &mut usize) -> Result<Msg, WireError> {
    let body = bytes
        .strip_prefix(HEAD)
        .ok_or_else(|| WireError::new("classic message does not start with >>>"))?;
    let body = body
        .strip_suffix(TAIL)
        .ok_or_else(|| WireError::new("classic message does not end with <<<"))?;
    let mut msg = Msg::new();
    if body.is_empty() {
        return Ok(msg);
    }
    // The tail must stand on its own line.
    let lines = body
        .strip_suffix(b"\n")
        .ok_or_else(|| WireError::new("classic message does not end with <<<"))?;
    for line in lines.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        *budget = budget
            .checked_sub(1)
            .ok_or_else(|| WireError::new(format!("more than {MAX_FIELDS} fields")))?;
        msg.fields.push(parse_line(line, depth, budget)?);
    }
    Ok(msg)
}

fn parse_line(line: &[u8], depth: usize, budget: &mut usize) -> Result<Field, WireError> {
    let (digit, body) = match line {
        [b'(', d, b')', rest @ ..] if d.is_ascii_digit() => (Some(*d), rest),
        // A name may not start with '(': it would be read as a marker.
        [b'(', ..] => return Err(WireError::new("malformed type marker")),
        _ => (None, line),
    };
    let eq = body
        .iter()
        .position(|&b| b == b'=')
        .ok_or_else(|| WireError::new("line doesn't contain '='"))?;
    let (name, value) = (&body[..eq], &body[eq + 1..]);
    check_name(name)?;
    let value = match digit {
        None => {
            check_str_value(value)?;
            Value::Str(
                value
                    .iter()
                    .map(|&b| if b == STR_LF { b'\n' } else { b })
                    .collect(),
            )
        }
        Some(b'0') => return Err(WireError::new("string field with a (0) marker")),
        Some(b'1') => Value::Binary(base64::decode(value)?),
        Some(b'2') => {
            if depth >= MAX_DEPTH {
                return Err(WireError::new(format!(
                    "struct nesting deeper than {MAX_DEPTH}"
                )));
            }
            let sub = depth_byte(depth);
            if value.contains(&b'\n') {
                return Err(WireError::new("LF inside a nested message"));
            }
            let text: Vec<u8> = value
                .iter()
                .map(|&b| if b == sub { b'\n' } else { b })
                .collect();
            Value::Struct(decode_at(&text, depth + 1, budget)?)
        }
        Some(b'3') => Value::List(unpack_list(value)?),
        Some(b'4') => Value::Compress(base64::decode(value)?),
        Some(b'5') => {
            return Err(WireError::new(
                "type 5 (uncompress) never appears on the wire",
            ))
        }
        Some(d) => {
            return Err(WireError::new(format!(
                "unknown field type {}",
                char::from(d)
            )))
        }
    };
    Ok(Field {
        name: name.to_vec(),
        value,
    })
}

/// The text the classic signature covers: every field but `auth`, one classic line each.
pub fn signing_text(msg: &Msg) -> Vec<u8> {
    // Room for a status message's text: one allocation in the common case.
    let mut out = Vec::with_capacity(256);
    for field in msg.fields.iter().filter(|f| f.name != b"auth") {
        write_line(field, 0, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_swap_lf_and_0x13() {
        let mut m = Msg::new();
        m.add_str("t", "a\nb").add_bin("u", b"\x11\x11");
        let bytes = encode(&m);
        assert_eq!(bytes, b">>>\nt=a\x13b\n(1)u=ERE=\n<<<\n");
        assert_eq!(decode(&bytes), Ok(m.clone()));
        let mut with_nul = bytes.clone();
        with_nul.push(0);
        assert_eq!(decode(&with_nul), Ok(m));
    }

    #[test]
    fn nested_uses_per_depth_byte() {
        let mut grandchild = Msg::new();
        grandchild.add_str("c", "d");
        let mut child = Msg::new();
        child.add_str("a", "b").add("g", Value::Struct(grandchild));
        let mut m = Msg::new();
        m.add("s", Value::Struct(child));
        let bytes = encode(&m);
        assert_eq!(
            bytes,
            b">>>\n(2)s=>>>\x14a=b\x14(2)g=>>>\x15c=d\x15<<<\x15\x14<<<\x14\n<<<\n".as_slice()
        );
        assert_eq!(decode(&bytes), Ok(m));
    }

    #[test]
    fn empty_lines_are_skipped() {
        let m = decode(b">>>\n\nt=x\n\n<<<\n").unwrap();
        assert_eq!(m.get_str("t"), Some("x"));
        assert_eq!(decode(b">>>\n<<<\n"), Ok(Msg::new()));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b">>>\n(0)t=x\n<<<\n"[..],
            b">>>\nt\n<<<\n",
            b">>>\n=x\n<<<\n",
            b">>>\n(1)u=ERE\n<<<\n",
            b">>>\n(6)u=x\n<<<\n",
            b">>>\n(x)u=x\n<<<\n",
            b">>>\nt=x\n<<<\nt=y\n<<<\n",
            b">>>\nt=x\n<<<",
            b">>>\nt=x\n<<<\n\0\0",
            b">>>\nt=x\x00y\n<<<\n",
            b">>>t=x\n<<<\n",
            b">>><<<\n",
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn signing_text_skips_auth() {
        let mut m = Msg::new();
        m.add_str("t", "x")
            .add_str("auth", "1 00")
            .add_str("z", "y");
        assert_eq!(signing_text(&m), b"t=x\nz=y\n");
    }
}
