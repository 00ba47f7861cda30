//! `authkeys`: `auth N` plus `N crc|md5 KEY|sha1 KEY` lines, as 3.0.6 reads them.

use std::collections::BTreeMap;
use std::path::Path;

use super::Diagnostic;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Crc,
    Md5,
    Sha1,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthKey {
    pub method: AuthMethod,
    /// The key bytes (empty for crc).
    pub key: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthKeys {
    /// The index every outgoing message is signed with.
    pub active: u8,
    /// All configured indices (0-15); every one is accepted when verifying.
    pub keys: BTreeMap<u8, AuthKey>,
}

impl AuthKeys {
    pub fn active_key(&self) -> &AuthKey {
        // `parse` guarantees the active index is present.
        &self.keys[&self.active]
    }
}

/// Parse authkeys text (the permission check is the caller's, it needs the file's metadata).
pub fn parse(text: &str, path: &Path) -> Result<AuthKeys, Vec<Diagnostic>> {
    let _ = (text, path);
    unimplemented!("authkeys parser")
}
