//! Property tests: both encodings round-trip, decoders never panic, signatures hold and any
//! one-byte tampering is refused.

use std::collections::BTreeMap;

use heartbeat::config::{AuthKey, AuthKeys, AuthMethod};
use heartbeat::wire::{classic, netstring, Authenticator, Field, Msg, Value};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// Non-empty, no '=', not starting with '(' (classic would read a type marker), no LF.
fn name() -> impl Strategy<Value = Vec<u8>> {
    "[a-zA-Z0-9_][ -<>-~]{0,10}".prop_map(String::into_bytes)
}

/// Bytes classic cannot carry in strings: NUL (never sent), 0x13 (stands for LF) and the
/// per-depth struct bytes 0x0F-0x1F. LF itself is fine in strings.
fn plain_byte(allow_lf: bool) -> impl Strategy<Value = u8> {
    prop_oneof![
        8 => any::<u8>().prop_map(|b| if b == 0 || (0x0f..=0x1f).contains(&b) { b'x' } else { b }),
        1 => Just(if allow_lf { b'\n' } else { b'y' }),
    ]
    .prop_map(move |b| if !allow_lf && b == b'\n' { b'z' } else { b })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => vec(plain_byte(true), 0..16).prop_map(Value::Str),
        2 => vec(any::<u8>(), 0..20).prop_map(Value::Binary),
        1 => vec(vec(plain_byte(false), 0..6), 0..4).prop_map(Value::List),
        1 => vec(any::<u8>(), 0..20).prop_map(Value::Compress),
    ]
}

fn to_msg(fields: Vec<(Vec<u8>, Value)>) -> Msg {
    Msg {
        fields: fields
            .into_iter()
            .map(|(name, value)| Field { name, value })
            .collect(),
    }
}

fn message() -> impl Strategy<Value = Msg> {
    let value = leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            3 => leaf(),
            1 => vec((name(), inner), 0..5).prop_map(|f| Value::Struct(to_msg(f))),
        ]
    });
    vec((name(), value), 0..8).prop_map(to_msg)
}

fn authenticator(method: AuthMethod) -> Authenticator {
    let key = if method == AuthMethod::Crc {
        Vec::new()
    } else {
        b"prop-secret".to_vec()
    };
    let keys = BTreeMap::from([(1u8, AuthKey { method, key })]);
    Authenticator::new(AuthKeys { active: 1, keys })
}

fn method() -> impl Strategy<Value = AuthMethod> {
    prop_oneof![
        Just(AuthMethod::Md5),
        Just(AuthMethod::Sha1),
        Just(AuthMethod::Crc)
    ]
}

proptest! {
    #[test]
    fn netstring_round_trip(msg in message()) {
        let bytes = netstring::encode(&msg);
        prop_assert_eq!(netstring::decode_body(&bytes), Ok((msg, bytes.len())));
    }

    #[test]
    fn classic_round_trip(msg in message()) {
        let bytes = classic::encode(&msg);
        prop_assert_eq!(classic::decode(&bytes), Ok(msg));
    }

    #[test]
    fn decoders_never_panic_on_random_bytes(
        head in prop_oneof![Just(&b""[..]), Just(&b"###\n"[..]), Just(&b">>>\n"[..])],
        tail in vec(any::<u8>(), 0..300),
    ) {
        let packet = [head, &tail].concat();
        let _ = netstring::decode_body(&packet);
        let _ = classic::decode(&packet);
        let _ = authenticator(AuthMethod::Md5).verify(&packet);
    }

    #[test]
    fn decoders_never_panic_on_damaged_packets(
        msg in message(),
        edits in vec((any::<Index>(), any::<u8>()), 1..4),
        cut in any::<Index>(),
    ) {
        let auth = authenticator(AuthMethod::Crc);
        for mut packet in [auth.encode_udp(&msg), auth.encode_classic(&msg)] {
            for (at, byte) in &edits {
                let i = at.index(packet.len());
                packet[i] = *byte;
            }
            packet.truncate(cut.index(packet.len() + 1));
            let _ = netstring::decode_body(&packet);
            let _ = classic::decode(&packet);
            let _ = auth.verify(&packet);
        }
    }

    #[test]
    fn signed_packets_verify(msg in message(), method in method(), inner in any::<bool>()) {
        let auth = authenticator(method);
        let mut msg = msg;
        if inner {
            auth.add_inner_auth(&mut msg);
        }
        prop_assert_eq!(auth.verify(&auth.encode_udp(&msg)), Ok(msg.clone()));

        let classic = auth.verify_detailed(&auth.encode_classic(&msg)).unwrap();
        prop_assert!(classic.classic);
        let mut expected = msg;
        auth.add_inner_auth(&mut expected);
        prop_assert_eq!(classic.msg, expected);
    }

    #[test]
    fn tampering_is_rejected(
        msg in message(),
        method in method(),
        at in any::<Index>(),
        flip in 1u8..=255,
    ) {
        let auth = authenticator(method);
        for packet in [auth.encode_udp(&msg), auth.encode_classic(&msg)] {
            let mut bad = packet.clone();
            let i = at.index(bad.len());
            bad[i] ^= flip;
            let result = auth.verify(&bad);
            prop_assert!(
                result.is_err(),
                "byte {} of {:?} changed and still accepted: {:?}",
                i,
                String::from_utf8_lossy(&packet),
                result
            );
        }
    }
}
