//! Every captured/forged vector in tests/data/vectors, against its manifest verdict, plus
//! byte-exact re-encoding of the real captures and the worked example of the spec.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use heartbeat::config::{AuthKey, AuthKeys, AuthMethod};
use heartbeat::wire::{
    auth, classic, netstring, Authenticator, Msg, NetstringKeyRule, Reject, Value,
};

/// The vectors copied into the repository (tests/data/vectors; see its README).
fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors")
}

fn read(name: &str) -> Vec<u8> {
    let path = vectors_dir().join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Just enough of authkeys for the vectors' files (the real parser lives in config).
fn parse_authkeys(text: &str) -> AuthKeys {
    let mut active = None;
    let mut keys = BTreeMap::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0] == "auth" {
            active = Some(words[1].parse().unwrap());
            continue;
        }
        let method = match words[1] {
            "crc" => AuthMethod::Crc,
            "md5" => AuthMethod::Md5,
            "sha1" => AuthMethod::Sha1,
            other => panic!("unknown method {other}"),
        };
        let key = words
            .get(2)
            .map(|k| k.as_bytes().to_vec())
            .unwrap_or_default();
        keys.insert(words[0].parse().unwrap(), AuthKey { method, key });
    }
    AuthKeys {
        active: active.expect("no auth line"),
        keys,
    }
}

fn authenticator(keys_file: &str) -> Authenticator {
    let text = String::from_utf8(read(keys_file)).unwrap();
    Authenticator::new(parse_authkeys(&text))
}

struct Row {
    file: String,
    keys: String,
    accept: bool,
    note: String,
}

fn manifest() -> Vec<Row> {
    let text = String::from_utf8(read("manifest.tsv")).unwrap();
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert!(cols.len() >= 3, "bad manifest line {l:?}");
            let accept = match cols[2] {
                "accept" => true,
                "reject" => false,
                other => panic!("bad verdict {other:?}"),
            };
            Row {
                file: cols[0].to_string(),
                keys: cols[1].to_string(),
                accept,
                note: cols.get(3).unwrap_or(&"").to_string(),
            }
        })
        .collect();
    assert_eq!(rows.len(), 60, "the spec announces 60 vectors");
    rows
}

fn vector(prefix: &str) -> (Vec<u8>, Authenticator) {
    let row = manifest()
        .into_iter()
        .find(|r| r.file.starts_with(prefix))
        .unwrap();
    (read(&row.file), authenticator(&row.keys))
}

/// Our verdict differs from 3.0.6's only where we decided so (spec 6.5).
fn our_verdict(row: &Row) -> bool {
    match &row.file[..2] {
        // Superset key rule: index 2 with its own key is fine for us.
        "42" => true,
        // crc is not the active method in authkeys-multi: refused by default.
        "43" | "46" => false,
        _ => row.accept,
    }
}

#[test]
fn every_vector_matches_its_verdict() {
    let mut wrong = Vec::new();
    for row in manifest() {
        let result = authenticator(&row.keys).verify(&read(&row.file));
        if result.is_ok() != our_verdict(&row) {
            wrong.push(format!(
                "{}: expected {}, got {:?}",
                row.file,
                our_verdict(&row),
                result
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "verdict mismatches:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_vector_matches_3_0_6_in_compatibility_mode() {
    // Only306 + accept_any_crc is exactly what a 3.0.6 receiver decides.
    for row in manifest() {
        let mut auth = authenticator(&row.keys);
        auth.accept_any_crc = true;
        let result = auth.verify_with(&read(&row.file), NetstringKeyRule::Only306);
        assert_eq!(result.is_ok(), row.accept, "{}: {:?}", row.file, result);
    }
}

#[test]
fn vector_42_is_accepted_by_our_superset_rule_only() {
    // 3.0.6 rejects 42 (index 2 keyed with its own key); we knowingly accept it.
    let (packet, auth) = vector("42-");
    let ours = auth
        .verify_detailed(&packet)
        .expect("superset rule accepts 42");
    assert_eq!((ours.index, ours.classic), (2, false));
    assert!(matches!(
        auth.verify_with(&packet, NetstringKeyRule::Only306),
        Err(Reject::BadDigest { .. })
    ));
    // 41 (index 2 keyed with the active key string) passes under both rules.
    let (packet, auth) = vector("41-");
    assert!(auth.verify_with(&packet, NetstringKeyRule::Only306).is_ok());
    assert!(auth
        .verify_with(&packet, NetstringKeyRule::Superset)
        .is_ok());
}

#[test]
fn crc_from_a_non_active_index_needs_accept_any_crc() {
    for prefix in ["43-", "46-"] {
        let (packet, mut auth) = vector(prefix);
        assert_eq!(auth.verify(&packet), Err(Reject::CrcNotActive), "{prefix}");
        auth.accept_any_crc = true;
        let v = auth
            .verify_detailed(&packet)
            .unwrap_or_else(|e| panic!("{prefix}: {e}"));
        assert_eq!(v.index, 3);
        assert_eq!(v.classic, prefix == "46-");
    }
}

type RejectCheck = fn(&Reject) -> bool;

#[test]
fn rejects_carry_the_3_0_6_reason() {
    let cases: &[(&str, RejectCheck)] = &[
        (
            "45-",
            |r| matches!(r, Reject::ClassicAuthFailed { src } if src == "carol"),
        ),
        ("47-", |r| *r == Reject::UnknownIndex(5)),
        ("54-", |r| *r == Reject::NoTrailer),
        ("55-", |r| matches!(r, Reject::BadDigest { .. })),
        (
            "56-",
            |r| matches!(r, Reject::ClassicAuthFailed { src } if src == "carol"),
        ),
        ("60-", |r| matches!(r, Reject::BadDigest { .. })),
        ("62-", |r| *r == Reject::NoTrailer),
        ("63-", |r| matches!(r, Reject::Malformed(_))),
        ("65-", |r| *r == Reject::UnknownIndex(2)),
        ("67-", |r| matches!(r, Reject::BadDigest { .. })),
        ("68-", |r| matches!(r, Reject::BadDigest { .. })),
        (
            "69-",
            |r| matches!(r, Reject::ClassicAuthFailed { src } if src == "carol"),
        ),
        ("70-", |r| matches!(r, Reject::Malformed(_))),
        ("73-", |r| *r == Reject::ClassicNoAuth),
        ("74-", |r| matches!(r, Reject::BadDigest { .. })),
    ];
    for (prefix, expected) in cases {
        let (packet, auth) = vector(prefix);
        let reject = auth.verify(&packet).expect_err(prefix);
        assert!(expected(&reject), "{prefix}: {reject:?}");
    }
}

#[test]
fn reject_messages_keep_3_0_6_wording() {
    let (packet, auth) = vector("66-");
    let text = auth.verify(&packet).unwrap_err().to_string();
    assert!(
        text.starts_with("authtoken does not match, authtoken="),
        "{text}"
    );
    assert!(text.contains(", authstr="), "{text}");
    assert_eq!(
        Reject::NoTrailer.to_string(),
        "peel_netstring() error in getting auth string"
    );
    assert_eq!(
        Reject::UnknownIndex(5).to_string(),
        "Invalid authentication [5] in message!"
    );
    assert_eq!(
        Reject::ClassicAuthFailed {
            src: "carol".into()
        }
        .to_string(),
        "string2msg_ll: node [carol] failed authentication"
    );
    assert!(Reject::ClassicNoAuth
        .to_string()
        .starts_with("Bad/invalid auth token"));
    assert!(Reject::CrcNotActive
        .to_string()
        .contains("deliberate divergence"));
}

#[test]
fn vector_70_is_rejected_cleanly() {
    let packet = read("70-malformed-field-without-type.bin");
    assert_eq!(packet, b"###\n5:abcde,%%%\n");
    assert!(netstring::decode_body(&packet).is_err());
    assert!(matches!(
        authenticator("authkeys-md5").verify(&packet),
        Err(Reject::Malformed(_))
    ));
}

#[test]
fn real_captures_re_encode_byte_for_byte() {
    let mut checked = 0;
    let mut inner = 0;
    for row in manifest().iter().filter(|r| r.note.starts_with("real:")) {
        let packet = read(&row.file);
        assert!(
            packet.starts_with(b"###\n"),
            "{}: 3.0.6 only sends netstring",
            row.file
        );
        let auth = authenticator(&row.keys);
        let msg = auth
            .verify(&packet)
            .unwrap_or_else(|e| panic!("{}: {e}", row.file));
        assert!(
            auth.encode_udp(&msg) == packet,
            "{}: re-encoding differs",
            row.file
        );
        if msg.get("auth").is_some() {
            let mut resigned = msg.clone();
            auth.add_inner_auth(&mut resigned);
            assert_eq!(resigned, msg, "{}: inner auth differs", row.file);
            inner += 1;
        }
        checked += 1;
    }
    // 01-18, 20-25, 30-34 and 40; all but the msgfmt-netstring ones (31, 32, 34) sign inside.
    assert_eq!((checked, inner), (30, 27));
}

#[test]
fn forged_packets_signed_with_the_active_key_re_encode() {
    for prefix in ["50-", "52-", "53-", "57-"] {
        let (packet, auth) = vector(prefix);
        let msg = auth.verify(&packet).unwrap();
        assert!(auth.encode_udp(&msg) == packet, "{prefix}");
    }
    // Classic: the forged 51 is what encode_classic writes.
    let (packet, auth) = vector("51-");
    let msg = auth.verify(&packet).unwrap();
    assert!(auth.encode_classic(&msg) == packet);
    assert!(classic::encode(&msg) == packet);
}

#[test]
fn worked_example_vector_04() {
    let (packet, auth) = vector("04-");
    assert_eq!(packet.len(), 292);
    let (msg, body_len) = netstring::decode_body(&packet).unwrap();
    assert_eq!(body_len, 254);

    let signed = b"t=status\nst=active\ndt=1f40\nprotocol=1\nsrc=bob\n\
        (1)srcuuid=gHV92tPVQBqPox3WAFA6gQ==\nseq=d\nhg=6b036004\nts=6b036008\n\
        ld=0.10 0.05 0.01 1/104 8491\nttl=3\n";
    assert_eq!(signed.len(), 147);
    assert_eq!(classic::signing_text(&msg), signed);
    let inner = auth::digest(AuthMethod::Md5, b"wirekey-md5-secret", signed);
    assert_eq!(inner, "282896688aefd8a3b80d85cbff63c8fd");
    assert_eq!(
        msg.get_str("auth"),
        Some("1 282896688aefd8a3b80d85cbff63c8fd")
    );
    assert_eq!(
        msg.get_bin("srcuuid"),
        Some(&b"\x80\x75\x7d\xda\xd3\xd5\x40\x1a\x8f\xa3\x1d\xd6\x00\x50\x3a\x81"[..])
    );

    let trailer = auth::digest(AuthMethod::Md5, b"wirekey-md5-secret", &packet[..254]);
    assert_eq!(trailer, "30d2684b9c933d5e8207e20dd76eb1d7");
    assert_eq!(&packet[254..], b"34:1 30d2684b9c933d5e8207e20dd76eb1d7,");

    // Built from scratch, the message signs and encodes to the captured bytes.
    let mut fresh = Msg::new();
    for field in msg.fields.iter().filter(|f| f.name != b"auth") {
        fresh.fields.push(field.clone());
    }
    auth.add_inner_auth(&mut fresh);
    assert_eq!(fresh, msg);
    assert!(auth.encode_udp(&fresh) == packet);
}

#[test]
fn crc_trailers_have_no_leading_zeros() {
    let (packet, auth) = vector("30-");
    assert!(packet.ends_with(b"%%%\n10:1 16c35573,"));
    let (packet32, _) = vector("32-");
    assert!(packet32.ends_with(b"%%%\n8:1 c9ca91,"));
    assert!(auth.verify(&packet32).is_ok());
    let (packet33, _) = vector("33-");
    let msg = auth.verify(&packet33).unwrap();
    assert_eq!(msg.get_str("auth").map(|a| a.len()), Some(2 + 7));
}

#[test]
fn trailing_bytes_and_nul() {
    // 71: netstring plus one NUL after the trailer; 72: classic plus one NUL.
    let (packet, auth) = vector("71-");
    let (orig, _) = vector("04-");
    assert_eq!(auth.verify(&packet), auth.verify(&orig));
    let (packet, auth) = vector("72-");
    let v = auth.verify_detailed(&packet).unwrap();
    assert!(v.classic);
    assert_eq!(v.msg.get_str("src"), Some("carol"));
}

#[test]
fn serial_capture_matches_the_udp_capture() {
    // The same message as alice sent it on UDP and wrote it on the serial port: the classic
    // packet we build from the UDP one is the serial capture, and it verifies.
    let auth = authenticator("serial/authkeys");
    let udp = read("serial/40-same-message-udp-netstring.bin");
    let serial = read("serial/41-same-message-serial-classic.bin");
    let msg = auth.verify(&udp).unwrap();
    assert!(auth.encode_classic(&msg) == serial);
    let v = auth.verify_detailed(&serial).unwrap();
    assert!(v.classic);
    assert_eq!(v.msg, msg);
}

#[test]
fn netstring_and_classic_carry_the_same_fields() {
    // 50 and 51 are carol's heartbeat in both forms (seq and ts differ): same field list.
    let (ns, auth) = vector("50-");
    let (cl, _) = vector("51-");
    let shape = |m: &Msg| -> Vec<(Vec<u8>, bool)> {
        m.fields
            .iter()
            .map(|f| (f.name.clone(), matches!(f.value, Value::Binary(_))))
            .collect()
    };
    let a = auth.verify(&ns).unwrap();
    let b = auth.verify(&cl).unwrap();
    assert_eq!(shape(&a), shape(&b));
    assert_eq!(a.get("srcuuid"), b.get("srcuuid"));
    assert!(matches!(a.get("srcuuid"), Some(Value::Binary(u)) if u.len() == 16));
}
