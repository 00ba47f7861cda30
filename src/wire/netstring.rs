//! The netstring encoding (`###\n` ... `%%%\n`), always used by 3.0.6 on UDP.

use super::{
    check_name, check_str_value, pack_list, read_netstring, unpack_list, write_netstring, Field,
    Msg, Value, WireError, MAX_DEPTH, MAX_FIELDS, MAX_PACKET,
};

pub(crate) const HEAD: &[u8] = b"###\n";
pub(crate) const TAIL: &[u8] = b"%%%\n";

/// Encode a message body from `###\n` to `%%%\n` (no trailer).
pub fn encode(msg: &Msg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(msg, &mut out);
    out
}

fn encode_into(msg: &Msg, out: &mut Vec<u8>) {
    out.extend_from_slice(HEAD);
    let mut content = Vec::new();
    for field in &msg.fields {
        content.clear();
        let (digit, value): (u8, &[u8]) = match &field.value {
            Value::Str(v) => (b'0', v),
            Value::Binary(v) => (b'1', v),
            Value::Compress(v) => (b'4', v),
            Value::Struct(child) => {
                content.extend_from_slice(b"(2)");
                content.extend_from_slice(&field.name);
                content.push(b'=');
                encode_into(child, &mut content);
                write_netstring(&content, out);
                continue;
            }
            Value::List(items) => {
                content.extend_from_slice(b"(3)");
                content.extend_from_slice(&field.name);
                content.push(b'=');
                pack_list(items, &mut content);
                write_netstring(&content, out);
                continue;
            }
        };
        content.extend_from_slice(&[b'(', digit, b')']);
        content.extend_from_slice(&field.name);
        content.push(b'=');
        content.extend_from_slice(value);
        write_netstring(&content, out);
    }
    out.extend_from_slice(TAIL);
}

/// Decode a body starting at `###\n`. Returns the message and the length of the body
/// (up to and including `%%%\n`), so the caller can read the trailer after it.
pub fn decode_body(bytes: &[u8]) -> Result<(Msg, usize), WireError> {
    if bytes.len() > MAX_PACKET {
        return Err(WireError::new(format!(
            "packet of {} bytes exceeds {MAX_PACKET}",
            bytes.len()
        )));
    }
    let mut budget = MAX_FIELDS;
    decode_at(bytes, 0, &mut budget)
}

fn decode_at(bytes: &[u8], depth: usize, budget: &mut usize) -> Result<(Msg, usize), WireError> {
    let mut rest = bytes
        .strip_prefix(HEAD)
        .ok_or_else(|| WireError::new("netstring message does not start with ###"))?;
    let mut msg = Msg::new();
    loop {
        if let Some(after) = rest.strip_prefix(TAIL) {
            return Ok((msg, bytes.len() - after.len()));
        }
        if rest.is_empty() {
            return Err(WireError::new("netstring message ends before %%%"));
        }
        let (content, after) = read_netstring(rest)?;
        *budget = budget
            .checked_sub(1)
            .ok_or_else(|| WireError::new(format!("more than {MAX_FIELDS} fields")))?;
        msg.fields.push(parse_field(content, depth, budget)?);
        rest = after;
    }
}

/// `(T)name=value`, T a digit 0-4 (5 never travels, 6-9 are unknown).
fn parse_field(content: &[u8], depth: usize, budget: &mut usize) -> Result<Field, WireError> {
    let digit = match content {
        [b'(', d, b')', ..] if d.is_ascii_digit() => *d,
        _ => return Err(WireError::new("field without a (T) type marker")),
    };
    let body = &content[3..];
    let eq = body
        .iter()
        .position(|&b| b == b'=')
        .ok_or_else(|| WireError::new("field without '='"))?;
    let (name, value) = (&body[..eq], &body[eq + 1..]);
    check_name(name)?;
    let value = match digit {
        b'0' => {
            check_str_value(value)?;
            Value::Str(value.to_vec())
        }
        b'1' => Value::Binary(value.to_vec()),
        b'2' => {
            if depth >= MAX_DEPTH {
                return Err(WireError::new(format!(
                    "struct nesting deeper than {MAX_DEPTH}"
                )));
            }
            let (child, used) = decode_at(value, depth + 1, budget)?;
            if used != value.len() {
                return Err(WireError::new("bytes after the end of a nested message"));
            }
            Value::Struct(child)
        }
        b'3' => Value::List(unpack_list(value)?),
        b'4' => Value::Compress(value.to_vec()),
        b'5' => {
            return Err(WireError::new(
                "type 5 (uncompress) never appears on the wire",
            ))
        }
        _ => {
            return Err(WireError::new(format!(
                "unknown field type {}",
                char::from(digit)
            )))
        }
    };
    Ok(Field {
        name: name.to_vec(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_3_0_6() {
        let mut m = Msg::new();
        m.add_str("t", "status").add_bin("u", &[0, 1]);
        assert_eq!(encode(&m), b"###\n11:(0)t=status,7:(1)u=\x00\x01,%%%\n");
    }

    #[test]
    fn nested_and_list_round_trip() {
        let mut child = Msg::new();
        child.add_str("a", "b");
        let mut m = Msg::new();
        m.add("s", Value::Struct(child));
        m.add(
            "l",
            Value::List(vec![b"abc".to_vec(), b"".to_vec(), b"defg".to_vec()]),
        );
        let bytes = encode(&m);
        assert_eq!(
            bytes,
            b"###\n22:(2)s=###\n6:(0)a=b,%%%\n,21:(3)l=3:abc,0:,4:defg,,%%%\n".as_slice()
        );
        assert_eq!(decode_body(&bytes), Ok((m, bytes.len())));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b"###\n5:abcde,%%%\n"[..],
            b"###\n8:(6)a=bcd,%%%\n",
            b"###\n8:(5)a=bcd,%%%\n",
            b"###\n5:(0)=b,%%%\n",
            b"###\n6:(0)ab=c%%%\n",
            b"###\n06:(0)a=b,%%%\n",
            b"###\n99:(0)a=b,%%%\n",
            b"###\n:(0)a=b,%%%\n",
            b"###\n6:(0)a=\x00b,%%%\n",
            b"###\n6:(0)a=bc,",
            b"##\n%%%\n",
            b"###\n18446744073709551617:",
        ] {
            assert!(
                decode_body(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn limits_nesting_depth() {
        let mut m = Msg::new();
        m.add_str("x", "y");
        for _ in 0..MAX_DEPTH {
            let mut parent = Msg::new();
            parent.add("s", Value::Struct(m));
            m = parent;
        }
        assert!(decode_body(&encode(&m)).is_ok());
        let mut parent = Msg::new();
        parent.add("s", Value::Struct(m));
        assert!(decode_body(&encode(&parent)).is_err());
    }

    #[test]
    fn limits_field_count() {
        let mut m = Msg::new();
        for _ in 0..MAX_FIELDS {
            m.add_str("a", "b");
        }
        assert!(decode_body(&encode(&m)).is_ok());
        m.add_str("a", "b");
        assert!(decode_body(&encode(&m)).is_err());
    }
}
