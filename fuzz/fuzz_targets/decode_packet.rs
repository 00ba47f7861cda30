//! Whatever arrives on UDP 694: decoding and verification must never panic, and what decodes
//! must survive our own encoder unchanged.
//!
//! The keys are those of the captured wire vectors (fuzz/corpus/decode_packet holds them), so
//! the seeds authenticate and mutations start from packets that get past the signature.
#![no_main]

use std::path::Path;

use heartbeat::config::authkeys;
use heartbeat::wire::{classic, netstring, Authenticator, NetstringKeyRule};
use libfuzzer_sys::fuzz_target;

fn authenticator(text: &str, accept_any_crc: bool) -> Authenticator {
    let keys = authkeys::parse(text, Path::new("authkeys")).expect("authkeys");
    let mut auth = Authenticator::new(keys);
    auth.accept_any_crc = accept_any_crc;
    auth
}

fuzz_target!(|data: &[u8]| {
    if let Ok((msg, len)) = netstring::decode_body(data) {
        assert!(len <= data.len());
        let again = netstring::encode(&msg);
        let (back, n) = netstring::decode_body(&again).expect("our own encoding decodes");
        assert_eq!(back, msg, "netstring round trip changed the message");
        assert_eq!(n, again.len());
    }
    if let Ok(msg) = classic::decode(data) {
        // Classic cannot carry every value (a newline in a string), so only decoding again
        // what we encode must not panic.
        let _ = classic::decode(&classic::encode(&msg));
    }
    let sets = [
        "auth 1\n1 md5 wirekey-md5-secret\n",
        "auth 1\n1 sha1 wirekey-sha1-secret\n",
        "auth 1\n1 crc\n",
        "auth 1\n1 sha1 wirekey-sha1-secret\n2 md5 second-md5-key\n3 crc\n",
    ];
    for (k, text) in sets.iter().enumerate() {
        let auth = authenticator(text, k == 3);
        for rule in [NetstringKeyRule::Only306, NetstringKeyRule::Superset] {
            if let Ok(v) = auth.verify_with(data, rule) {
                // What we accept, we can send: signed by us, it verifies to the same message.
                let resent = auth.encode_udp(&v.msg);
                let back = auth.verify(&resent).expect("our own packet verifies");
                assert_eq!(back, v.msg, "re-signed message changed");
            }
        }
    }
});
