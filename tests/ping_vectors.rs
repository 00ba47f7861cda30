//! The ping-node packets captured from Heartbeat 3.0.6 (tests/data/vectors/ping): our echo
//! request for the same message is byte for byte theirs, and their reply gives us the payload.

use std::collections::BTreeMap;
use std::path::PathBuf;

use heartbeat::config::{AuthKey, AuthKeys, AuthMethod};
use heartbeat::media::ping::{checksum, echo_reply_payload, echo_request};
use heartbeat::wire::Authenticator;

fn vector(name: &str) -> Vec<u8> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/vectors/ping"
    ))
    .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn md5() -> Authenticator {
    let mut keys = BTreeMap::new();
    keys.insert(
        1,
        AuthKey {
            method: AuthMethod::Md5,
            key: b"wirekey-md5-secret".to_vec(),
        },
    );
    Authenticator::new(AuthKeys { active: 1, keys })
}

#[test]
fn captured_ping_packets() {
    for (kind, ident, info, src) in [
        ("ping", 3337u16, "ping", "10.254.0.2"),
        ("ping_group", 8032, "ping_group", "grp1"),
    ] {
        let payload = vector(&format!("{kind}-payload.bin"));
        let request = vector(&format!("{kind}-echo-request.icmp.bin"));
        let reply = vector(&format!("{kind}-echo-reply.ip.bin"));
        // The identifier is the pid in host byte order (these were captured on x86).
        assert_eq!(
            echo_request(false, ident, 0, &payload),
            request,
            "{kind} request"
        );
        assert_eq!(checksum(&request), 0);
        assert_eq!(
            echo_reply_payload(false, ident, &reply),
            Some(&payload[..]),
            "{kind} reply"
        );
        assert_eq!(
            echo_reply_payload(false, ident.wrapping_add(1), &reply),
            None
        );
        let msg = md5()
            .verify(&payload)
            .expect("payload verifies with the md5 key");
        assert_eq!(msg.get_str("t"), Some("NS_st"));
        assert_eq!(msg.get_str("info"), Some(info));
        assert_eq!(msg.get_str("src"), Some(src));
        // Our signing of the same fields reproduces their payload.
        let mut ours = heartbeat::wire::Msg::new();
        ours.add_str("t", "NS_st")
            .add_str("st", "ping")
            .add_str("info", info)
            .add_str("src", src);
        ours.add_str("ts", msg.get_str("ts").unwrap());
        md5().add_inner_auth(&mut ours);
        assert_eq!(md5().encode_udp(&ours), payload, "{kind} payload");
    }
}
