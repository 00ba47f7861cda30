//! An ordered list of named, typed fields. Order is kept: signatures cover fields in order.
//!
//! String values are bytes, as 3.0.6 sends them: a node name or group key in Latin-1 or
//! EUC-KR travels unchanged. [`Msg::get_text`] reads such a value losslessly in the form the
//! configuration uses (`config::bytes`), and [`Msg::add_str`] / [`Msg::set_str`] write that
//! form back as the original bytes, so a name read from ha.cf goes out byte for byte.

use std::borrow::Cow;

use crate::config::bytes;

/// A field value. Types are the wire type digits: 0 string, 1 binary, 2 struct, 3 list,
/// 4 compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Vec<u8>),
    Binary(Vec<u8>),
    Struct(Msg),
    List(Vec<Vec<u8>>),
    Compress(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Vec<u8>,
    pub value: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Msg {
    pub fields: Vec<Field>,
}

impl Msg {
    pub fn new() -> Msg {
        Msg { fields: Vec::new() }
    }

    /// Value of the first field with this name, if it is a string and valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Value::Str(v) => std::str::from_utf8(v).ok(),
            _ => None,
        }
    }

    /// Value of the first string field with this name, whatever its bytes: UTF-8 as it is,
    /// any other bytes in the lossless form of `config::bytes` (a node name, a group key).
    pub fn get_text(&self, name: &str) -> Option<Cow<'_, str>> {
        match self.get(name)? {
            Value::Str(v) => Some(text_of(v)),
            _ => None,
        }
    }

    /// Value of the first field with this name, if it is binary.
    pub fn get_bin(&self, name: &str) -> Option<&[u8]> {
        match self.get(name)? {
            Value::Binary(v) => Some(v),
            _ => None,
        }
    }

    /// The first field with this name (duplicates are legal; lookups see the first).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|f| f.name == name.as_bytes())
            .map(|f| &f.value)
    }

    /// Append a string field (a lossless `config::bytes` value goes out as its bytes).
    pub fn add_str(&mut self, name: &str, value: &str) -> &mut Msg {
        self.add(name, Value::Str(bytes_of(value)))
    }

    /// Append a binary field.
    pub fn add_bin(&mut self, name: &str, value: &[u8]) -> &mut Msg {
        self.add(name, Value::Binary(value.to_vec()))
    }

    pub fn add(&mut self, name: &str, value: Value) -> &mut Msg {
        self.fields.push(Field {
            name: name.as_bytes().to_vec(),
            value,
        });
        self
    }

    /// Replace the first field with this name in place, or append it.
    pub fn set(&mut self, name: &str, value: Value) -> &mut Msg {
        match self.fields.iter_mut().find(|f| f.name == name.as_bytes()) {
            Some(f) => f.value = value,
            None => self.fields.push(Field {
                name: name.as_bytes().to_vec(),
                value,
            }),
        }
        self
    }

    pub fn set_str(&mut self, name: &str, value: &str) -> &mut Msg {
        self.set(name, Value::Str(bytes_of(value)))
    }

    /// Remove every field with this name.
    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|f| f.name != name.as_bytes());
    }
}

/// Reading fields by name, from an owned [`Msg`] or from a packet's
/// [`MsgView`](super::netstring::MsgView): the receive path reads a heartbeat without copying
/// it and builds a `Msg` only for what it hands on.
pub trait ReadFields {
    /// Value of the first field with this name, if it is a string and valid UTF-8.
    fn get_str(&self, name: &str) -> Option<&str>;
    /// Value of the first string field with this name, whatever its bytes (see
    /// [`Msg::get_text`]).
    fn get_text(&self, name: &str) -> Option<Cow<'_, str>>;
    /// Value of the first field with this name, if it is binary.
    fn get_bin(&self, name: &str) -> Option<&[u8]>;
    /// The message as an owned `Msg`.
    fn to_msg(&self) -> Msg;
}

impl ReadFields for Msg {
    fn get_str(&self, name: &str) -> Option<&str> {
        Msg::get_str(self, name)
    }

    fn get_text(&self, name: &str) -> Option<Cow<'_, str>> {
        Msg::get_text(self, name)
    }

    fn get_bin(&self, name: &str) -> Option<&[u8]> {
        Msg::get_bin(self, name)
    }

    fn to_msg(&self) -> Msg {
        self.clone()
    }
}

/// A string value's bytes as text (see the module documentation).
pub fn text_of(value: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(value) {
        Ok(s) if !bytes::has_raw(s) => Cow::Borrowed(s),
        _ => Cow::Owned(bytes::decode(value)),
    }
}

/// The bytes a text value stands for.
fn bytes_of(text: &str) -> Vec<u8> {
    if bytes::has_raw(text) {
        bytes::encode(text)
    } else {
        text.as_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legacy_node_name_goes_out_and_comes_back_byte_for_byte() {
        let name = bytes::decode(b"caf\xe9");
        let mut m = Msg::new();
        m.add_str("src", &name).add_str("t", "status");
        assert_eq!(m.get("src"), Some(&Value::Str(b"caf\xe9".to_vec())));
        // get_str sees UTF-8 only; get_text sees every value.
        assert_eq!(m.get_str("src"), None);
        assert_eq!(m.get_text("src").as_deref(), Some(name.as_str()));
        assert!(matches!(m.get_text("t"), Some(Cow::Borrowed("status"))));
        m.set_str("src", &bytes::decode(b"\xb5\xce"));
        assert_eq!(m.get("src"), Some(&Value::Str(b"\xb5\xce".to_vec())));
        assert_eq!(m.get_text("nothing"), None);
    }
}
