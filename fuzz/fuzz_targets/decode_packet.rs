//! Whatever arrives on UDP 694: decoding and verification must never panic.
#![no_main]

use std::collections::BTreeMap;

use heartbeat::config::{AuthKey, AuthKeys, AuthMethod};
use heartbeat::wire::{classic, netstring, Authenticator};
use libfuzzer_sys::fuzz_target;

fn authenticator(accept_any_crc: bool) -> Authenticator {
    let key = |method, key: &str| AuthKey {
        method,
        key: key.as_bytes().to_vec(),
    };
    let keys = BTreeMap::from([
        (1u8, key(AuthMethod::Sha1, "fuzz-sha1")),
        (2, key(AuthMethod::Md5, "fuzz-md5")),
        (3, key(AuthMethod::Crc, "")),
    ]);
    let mut auth = Authenticator::new(AuthKeys { active: 1, keys });
    auth.accept_any_crc = accept_any_crc;
    auth
}

fuzz_target!(|data: &[u8]| {
    let _ = netstring::decode_body(data);
    let _ = classic::decode(data);
    // With crc allowed, forged-looking packets reach the digest comparison too.
    let _ = authenticator(false).verify(data);
    let _ = authenticator(true).verify(data);
});
