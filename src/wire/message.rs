//! An ordered list of named, typed fields. Order is kept: signatures cover fields in order.

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

    /// Append a string field.
    pub fn add_str(&mut self, name: &str, value: &str) -> &mut Msg {
        self.add(name, Value::Str(value.as_bytes().to_vec()))
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
        self.set(name, Value::Str(value.as_bytes().to_vec()))
    }

    /// Remove every field with this name.
    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|f| f.name != name.as_bytes());
    }
}
