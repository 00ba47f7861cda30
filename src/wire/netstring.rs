//! The netstring encoding (`###\n` ... `%%%\n`), always used by 3.0.6 on UDP.

use std::borrow::Cow;

use super::message::{text_of, ReadFields};
use super::{
    check_name, check_str_value, pack_list, read_netstring, unpack_list, write_decimal,
    write_netstring, Field, Msg, Value, WireError, MAX_DEPTH, MAX_FIELDS, MAX_PACKET,
};

pub(crate) const HEAD: &[u8] = b"###\n";
pub(crate) const TAIL: &[u8] = b"%%%\n";

/// Encode a message body from `###\n` to `%%%\n` (no trailer).
pub fn encode(msg: &Msg) -> Vec<u8> {
    // Room for a status message and its trailer: one allocation in the common case.
    let mut out = Vec::with_capacity(512);
    encode_into(msg, &mut out);
    out
}

fn encode_into(msg: &Msg, out: &mut Vec<u8>) {
    out.extend_from_slice(HEAD);
    // Nested messages and lists need their length before they are written: only they go
    // through a buffer; flat fields are written in place.
    let mut content = Vec::new();
    for field in &msg.fields {
        let (digit, value): (u8, &[u8]) = match &field.value {
            Value::Str(v) => (b'0', v),
            Value::Binary(v) => (b'1', v),
            Value::Compress(v) => (b'4', v),
            Value::Struct(child) => {
                content.clear();
                content.extend_from_slice(b"(2)");
                content.extend_from_slice(&field.name);
                content.push(b'=');
                encode_into(child, &mut content);
                write_netstring(&content, out);
                continue;
            }
            Value::List(items) => {
                content.clear();
                content.extend_from_slice(b"(3)");
                content.extend_from_slice(&field.name);
                content.push(b'=');
                pack_list(items, &mut content);
                write_netstring(&content, out);
                continue;
            }
        };
        // `LEN:(T)name=value,`
        write_decimal(3 + field.name.len() + 1 + value.len(), out);
        out.extend_from_slice(&[b':', b'(', digit, b')']);
        out.extend_from_slice(&field.name);
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b',');
    }
    out.extend_from_slice(TAIL);
}

/// Decode a body starting at `###\n`. Returns the message and the length of the body
/// (up to and including `%%%\n`), so the caller can read the trailer after it.
pub fn decode_body(bytes: &[u8]) -> Result<(Msg, usize), WireError> {
    let (view, used) = decode_view(bytes)?;
    Ok((view.to_msg(), used))
}

/// Decode a body starting at `###\n` without copying it: the fields borrow the packet. Accepts
/// and refuses exactly what [`decode_body`] does (nested messages and lists are checked here
/// too, and built only when the view becomes a [`Msg`]).
pub fn decode_view(bytes: &[u8]) -> Result<(MsgView<'_>, usize), WireError> {
    let mut view = MsgView::default();
    let used = decode_view_into(bytes, &mut view)?;
    Ok((view, used))
}

/// [`decode_view`] into a view the caller holds (cleared first): the receive path keeps the
/// view on its stack instead of moving it through the results. Returns the body's length.
pub fn decode_view_into<'a>(bytes: &'a [u8], view: &mut MsgView<'a>) -> Result<usize, WireError> {
    view.clear();
    if bytes.len() > MAX_PACKET {
        return Err(WireError::new(format!(
            "packet of {} bytes exceeds {MAX_PACKET}",
            bytes.len()
        )));
    }
    let mut budget = MAX_FIELDS;
    walk(bytes, &mut budget, &mut |field, budget| {
        check_nested(field, 0, budget)?;
        view.push(field);
        Ok(())
    })
}

/// An owned message from a nested body (depth `depth`), and the length it used.
fn decode_owned(bytes: &[u8], depth: usize, budget: &mut usize) -> Result<(Msg, usize), WireError> {
    let mut msg = Msg::new();
    let used = walk(bytes, budget, &mut |field, budget| {
        let value = match field.value {
            ValueRef::Str(v) => Value::Str(v.to_vec()),
            ValueRef::Binary(v) => Value::Binary(v.to_vec()),
            ValueRef::Compress(v) => Value::Compress(v.to_vec()),
            ValueRef::Struct(v) => Value::Struct(nested_struct(v, depth, budget)?),
            ValueRef::List(v) => Value::List(unpack_list(v)?),
        };
        msg.fields.push(Field {
            name: field.name.to_vec(),
            value,
        });
        Ok(())
    })?;
    Ok((msg, used))
}

/// Refuse a field whose nested message or list does not decode (the view keeps their bytes).
fn check_nested(field: FieldRef<'_>, depth: usize, budget: &mut usize) -> Result<(), WireError> {
    match field.value {
        ValueRef::Struct(v) => {
            if depth >= MAX_DEPTH {
                return Err(too_deep());
            }
            let used = walk(v, budget, &mut |f, budget| {
                check_nested(f, depth + 1, budget)
            })?;
            if used != v.len() {
                return Err(trailing_bytes());
            }
        }
        ValueRef::List(mut v) => {
            while !v.is_empty() {
                v = read_netstring(v)?.1;
            }
        }
        ValueRef::Str(_) | ValueRef::Binary(_) | ValueRef::Compress(_) => {}
    }
    Ok(())
}

/// The message a struct field of a message at `depth` holds.
fn nested_struct(value: &[u8], depth: usize, budget: &mut usize) -> Result<Msg, WireError> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    let (child, used) = decode_owned(value, depth + 1, budget)?;
    if used != value.len() {
        return Err(trailing_bytes());
    }
    Ok(child)
}

fn too_deep() -> WireError {
    WireError::new(format!("struct nesting deeper than {MAX_DEPTH}"))
}

fn trailing_bytes() -> WireError {
    WireError::new("bytes after the end of a nested message")
}

/// The fields of one message (not those nested in it), in order, each handed to `field` with
/// the field budget; returns the length of the body up to and including `%%%\n`.
fn walk<'a, F>(bytes: &'a [u8], budget: &mut usize, field: &mut F) -> Result<usize, WireError>
where
    F: FnMut(FieldRef<'a>, &mut usize) -> Result<(), WireError>,
{
    let mut rest = bytes
        .strip_prefix(HEAD)
        .ok_or_else(|| WireError::new("netstring message does not start with ###"))?;
    loop {
        if let Some(after) = rest.strip_prefix(TAIL) {
            return Ok(bytes.len() - after.len());
        }
        if rest.is_empty() {
            return Err(WireError::new("netstring message ends before %%%"));
        }
        let (content, after) = read_netstring(rest)?;
        *budget = budget
            .checked_sub(1)
            .ok_or_else(|| WireError::new(format!("more than {MAX_FIELDS} fields")))?;
        field(parse_field(content)?, budget)?;
        rest = after;
    }
}

/// `(T)name=value`, T a digit 0-4 (5 never travels, 6-9 are unknown).
fn parse_field(content: &[u8]) -> Result<FieldRef<'_>, WireError> {
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
            ValueRef::Str(value)
        }
        b'1' => ValueRef::Binary(value),
        b'2' => ValueRef::Struct(value),
        b'3' => ValueRef::List(value),
        b'4' => ValueRef::Compress(value),
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
    Ok(FieldRef { name, value })
}

/// A field value as it lies in the packet: struct and list values are their encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    Str(&'a [u8]),
    Binary(&'a [u8]),
    Struct(&'a [u8]),
    List(&'a [u8]),
    Compress(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRef<'a> {
    pub name: &'a [u8],
    pub value: ValueRef<'a>,
}

impl ReadFields for MsgView<'_> {
    fn get_str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            ValueRef::Str(v) => std::str::from_utf8(v).ok(),
            _ => None,
        }
    }

    fn get_text(&self, name: &str) -> Option<Cow<'_, str>> {
        match self.get(name)? {
            ValueRef::Str(v) => Some(text_of(v)),
            _ => None,
        }
    }

    fn get_bin(&self, name: &str) -> Option<&[u8]> {
        match self.get(name)? {
            ValueRef::Binary(v) => Some(v),
            _ => None,
        }
    }

    fn to_msg(&self) -> Msg {
        MsgView::to_msg(self)
    }
}

/// Fields a view holds without allocating (a status message has about 13).
const INLINE_FIELDS: usize = 16;

const NO_FIELD: FieldRef<'static> = FieldRef {
    name: b"",
    value: ValueRef::Str(b""),
};

/// A decoded netstring message borrowing the packet: what the receive path reads a heartbeat
/// with, allocating nothing for messages up to `INLINE_FIELDS` fields.
#[derive(Debug, Clone)]
pub struct MsgView<'a> {
    inline: [FieldRef<'a>; INLINE_FIELDS],
    len: usize,
    /// Fields past the inline ones.
    more: Vec<FieldRef<'a>>,
}

impl Default for MsgView<'_> {
    fn default() -> Self {
        MsgView {
            inline: [NO_FIELD; INLINE_FIELDS],
            len: 0,
            more: Vec::new(),
        }
    }
}

impl<'a> MsgView<'a> {
    fn clear(&mut self) {
        self.len = 0;
        self.more.clear();
    }

    fn push(&mut self, field: FieldRef<'a>) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = field;
                self.len += 1;
            }
            None => self.more.push(field),
        }
    }

    /// The fields in order.
    pub fn fields(&self) -> impl Iterator<Item = &FieldRef<'a>> {
        self.inline[..self.len].iter().chain(self.more.iter())
    }

    /// The value of the first field with this name (duplicates are legal; lookups see the
    /// first, as [`Msg::get`]).
    pub fn get(&self, name: &str) -> Option<ValueRef<'a>> {
        let name = name.as_bytes();
        // Length and first byte first: most names of a heartbeat differ there, and the
        // receive path looks up about fifteen of them per message.
        let same = |f: &&FieldRef<'a>| {
            f.name.len() == name.len() && f.name.first() == name.first() && f.name == name
        };
        // The inline table, then the rest (a chained iterator costs a check per step).
        self.inline[..self.len]
            .iter()
            .find(same)
            .or_else(|| self.more.iter().find(same))
            .map(|f| f.value)
    }

    /// The owned message, equal to what [`decode_body`] returns for the same bytes.
    pub fn to_msg(&self) -> Msg {
        let mut msg = Msg {
            fields: Vec::with_capacity(self.len + self.more.len()),
        };
        let mut budget = MAX_FIELDS;
        for f in self.fields() {
            let value = match f.value {
                ValueRef::Str(v) => Value::Str(v.to_vec()),
                ValueRef::Binary(v) => Value::Binary(v.to_vec()),
                ValueRef::Compress(v) => Value::Compress(v.to_vec()),
                // Checked when the view was made (depth, framing, field budget), so neither
                // fails; an empty value stands in rather than a panic.
                ValueRef::Struct(v) => {
                    Value::Struct(nested_struct(v, 0, &mut budget).unwrap_or_default())
                }
                ValueRef::List(v) => Value::List(unpack_list(v).unwrap_or_default()),
            };
            msg.fields.push(Field {
                name: f.name.to_vec(),
                value,
            });
        }
        msg
    }
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

    /// The decoder as it was before views (an owned `Msg` built field by field), kept as the
    /// reference the view decoder must agree with, error text included.
    mod reference {
        use super::super::*;

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

        fn decode_at(
            bytes: &[u8],
            depth: usize,
            budget: &mut usize,
        ) -> Result<(Msg, usize), WireError> {
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

        fn parse_field(
            content: &[u8],
            depth: usize,
            budget: &mut usize,
        ) -> Result<Field, WireError> {
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
    }

    /// The view decoder, made owned, against the reference: same message and length, or the
    /// same error.
    fn agrees_with_reference(bytes: &[u8]) {
        let view = decode_view(bytes).map(|(v, used)| (v.to_msg(), used));
        assert_eq!(
            view,
            reference::decode_body(bytes),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }

    fn sample() -> Msg {
        let mut child = Msg::new();
        child
            .add_str("a", "b")
            .add("l", Value::List(vec![b"x".to_vec()]));
        let mut m = Msg::new();
        m.add_str("t", "status")
            .add_bin("srcuuid", &[0, 1, 2])
            .add("s", Value::Struct(child))
            .add("c", Value::Compress(b"zz".to_vec()))
            .add("l", Value::List(vec![b"abc".to_vec(), Vec::new()]));
        m
    }

    #[test]
    fn view_reads_fields_in_place() {
        let bytes = encode(&sample());
        let (view, used) = decode_view(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(view.get_str("t"), Some("status"));
        assert_eq!(view.get_bin("srcuuid"), Some(&[0u8, 1, 2][..]));
        assert_eq!(view.get_str("srcuuid"), None);
        assert_eq!(view.get_bin("t"), None);
        assert!(matches!(view.get("s"), Some(ValueRef::Struct(_))));
        assert_eq!(view.get("nothing"), None);
        assert_eq!(view.fields().count(), 5);
        assert_eq!(view.to_msg(), sample());
    }

    #[test]
    fn view_spills_past_its_inline_fields() {
        let mut m = Msg::new();
        for i in 0..INLINE_FIELDS * 2 + 1 {
            m.add_str(&format!("f{i}"), &i.to_string());
        }
        let bytes = encode(&m);
        let (view, _) = decode_view(&bytes).unwrap();
        assert_eq!(view.fields().count(), INLINE_FIELDS * 2 + 1);
        let last = format!("f{}", INLINE_FIELDS * 2);
        assert_eq!(view.get_str(&last), Some(&*(INLINE_FIELDS * 2).to_string()));
        assert_eq!(view.to_msg(), m);
    }

    #[test]
    fn view_agrees_with_the_reference_decoder_on_hostile_input() {
        let good = encode(&sample());
        // Every truncation and every single-byte change of a valid message.
        for n in 0..=good.len() {
            agrees_with_reference(&good[..n]);
        }
        for i in 0..good.len() {
            for b in [
                0u8, b'0', b'9', b':', b',', b'(', b')', b'=', b'#', b'%', b'\n', 0xff,
            ] {
                let mut bad = good.clone();
                bad[i] = b;
                agrees_with_reference(&bad);
            }
        }
        // Nested too deep, too many fields, oversized.
        let mut deep = Msg::new();
        deep.add_str("x", "y");
        for _ in 0..=MAX_DEPTH {
            let mut parent = Msg::new();
            parent.add("s", Value::Struct(deep));
            deep = parent;
        }
        agrees_with_reference(&encode(&deep));
        let mut many = Msg::new();
        let mut child = Msg::new();
        for _ in 0..MAX_FIELDS / 2 {
            child.add_str("a", "b");
            many.add_str("a", "b");
        }
        many.add("s", Value::Struct(child));
        agrees_with_reference(&encode(&many));
        let mut big = Msg::new();
        big.add_str("t", &"x".repeat(MAX_PACKET));
        agrees_with_reference(&encode(&big));
        for bad in [
            &b"###\n5:abcde,%%%\n"[..],
            b"###\n8:(6)a=bcd,%%%\n",
            b"###\n8:(5)a=bcd,%%%\n",
            b"###\n5:(0)=b,%%%\n",
            b"###\n06:(0)a=b,%%%\n",
            b"###\n99:(0)a=b,%%%\n",
            b"###\n14:(2)s=###\n%%%\nx,%%%\n",
            b"###\n11:(3)l=3:ab,,%%%\n",
            b"###\n18446744073709551617:",
            b"",
        ] {
            agrees_with_reference(bad);
            assert!(decode_view(bad).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn view_agrees_with_the_reference_decoder(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            at in 0usize..400,
            cut in 0usize..400,
        ) {
            agrees_with_reference(&bytes);
            // Noise spliced into, and cut from, a valid message reaches the deeper checks.
            let mut spliced = encode(&sample());
            let at = at.min(spliced.len());
            spliced.splice(at..at, bytes.iter().copied());
            agrees_with_reference(&spliced);
            spliced.truncate(cut.min(spliced.len()));
            agrees_with_reference(&spliced);
        }
    }
}
