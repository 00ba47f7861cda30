//! Signing and verification exactly as Heartbeat 3.0.6 computes them (md5, sha1, crc).

use std::fmt;

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;

use super::{classic, netstring, read_netstring, write_netstring, Msg, Value, MAX_PACKET};
use crate::config::{AuthKey, AuthKeys, AuthMethod};

/// Why a packet was refused. `Display` keeps 3.0.6's wording first, detail after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Not a message at all (bad framing, bad field, too big ...).
    Malformed(String),
    /// Netstring packet without a readable trailer.
    NoTrailer,
    /// The named key index is not in authkeys.
    UnknownIndex(u32),
    /// Netstring trailer digest wrong.
    BadDigest { got: String, computed: String },
    /// Classic packet whose `auth` field is wrong (src as found in the packet).
    ClassicAuthFailed { src: String },
    /// Classic packet without a usable `auth` field.
    ClassicNoAuth,
    /// Signed with crc while crc is not our active method (a deliberate divergence).
    CrcNotActive,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Malformed(detail) => write!(f, "malformed message: {detail}"),
            Reject::NoTrailer => f.write_str("peel_netstring() error in getting auth string"),
            Reject::UnknownIndex(i) => write!(f, "Invalid authentication [{i}] in message!"),
            Reject::BadDigest { got, computed } => write!(
                f,
                "authtoken does not match, authtoken={got}, authstr={computed} \
                 (netstring authentication failed)"
            ),
            Reject::ClassicAuthFailed { src } => {
                write!(f, "string2msg_ll: node [{src}] failed authentication")
            }
            Reject::ClassicNoAuth => {
                f.write_str("Bad/invalid auth token (classic message without a usable auth field)")
            }
            Reject::CrcNotActive => f.write_str(
                "crc-signed message refused: crc is not our active auth method \
                 (deliberate divergence from 3.0.6, which accepts crc whenever any crc key \
                 is configured; set accept_any_crc for the old behaviour)",
            ),
        }
    }
}

impl std::error::Error for Reject {}

/// CRC-32, polynomial 0x04C11DB7, MSB first, init 0, final xor 0xFFFFFFFF, no length.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = (i as u32) << 24;
            let mut bit = 0;
            while bit < 8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04C1_1DB7
                } else {
                    c << 1
                };
                bit += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let crc = data.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 24) as u8 ^ b)]
    });
    !crc
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of `data` as 3.0.6 writes it (lowercase hex; crc without leading zeros).
pub fn digest(method: AuthMethod, key: &[u8], data: &[u8]) -> String {
    // HMAC accepts keys of any length (long ones are hashed first), so new_from_slice
    // cannot fail.
    const ANY_KEY: &str = "HMAC takes keys of any length";
    match method {
        AuthMethod::Crc => format!("{:x}", crc32(data)),
        AuthMethod::Md5 => {
            let mut mac = Hmac::<Md5>::new_from_slice(key).expect(ANY_KEY);
            mac.update(data);
            hex(&mac.finalize().into_bytes())
        }
        AuthMethod::Sha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key).expect(ANY_KEY);
            mac.update(data);
            hex(&mac.finalize().into_bytes())
        }
    }
}

/// Lowercase hex only (3.0.6 compares case-sensitively), compared in constant time.
fn digest_matches(got: &[u8], computed: &str) -> bool {
    let computed = computed.as_bytes();
    if got.len() != computed.len() || !got.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return false;
    }
    got.iter()
        .zip(computed)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// `<index> <digest>`: decimal index without leading zeros, one space, the digest.
fn parse_signature(text: &[u8]) -> Option<(u32, &[u8])> {
    let sp = text.iter().position(|&b| b == b' ')?;
    let (index, digest) = (&text[..sp], &text[sp + 1..]);
    if index.is_empty()
        || !index.iter().all(u8::is_ascii_digit)
        || (index.len() > 1 && index[0] == b'0')
        || digest.is_empty()
        || digest.contains(&b' ')
    {
        return None;
    }
    let index = std::str::from_utf8(index).ok()?.parse().ok()?;
    Some((index, digest))
}

/// Which keys a netstring trailer naming index `i` may be computed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetstringKeyRule {
    /// Exactly 3.0.6: method of `i`, key string of the active index.
    Only306,
    /// 3.0.6's rule, or method and key of `i` (makes key rollover possible). Our default.
    #[default]
    Superset,
}

/// An authenticated message and how it was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub msg: Msg,
    /// The authkeys index the packet named.
    pub index: u8,
    /// True for a classic (`>>>`) packet, false for netstring.
    pub classic: bool,
}

/// Signs what we send and verifies what we receive, from one authkeys.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub keys: AuthKeys,
    /// Accept crc-signed packets even when crc is not the active method (3.0.6 does).
    pub accept_any_crc: bool,
}

impl Authenticator {
    pub fn new(keys: AuthKeys) -> Authenticator {
        Authenticator {
            keys,
            accept_any_crc: false,
        }
    }

    /// `<active index> <digest of data>` with the active key.
    fn sign(&self, data: &[u8]) -> String {
        let key = self.keys.active_key();
        format!(
            "{} {}",
            self.keys.active,
            digest(key.method, &key.key, data)
        )
    }

    /// Add (or replace in place) the inner classic `auth` field, signed with the active key.
    pub fn add_inner_auth(&self, msg: &mut Msg) {
        let mut value = Some(Value::Str(
            self.sign(&classic::signing_text(msg)).into_bytes(),
        ));
        // The first `auth` field takes the value; later ones go (a receiver reads the last).
        msg.fields
            .retain_mut(|f| f.name != b"auth" || value.take().map(|v| f.value = v).is_some());
        if let Some(value) = value {
            msg.add("auth", value);
        }
    }

    /// Netstring body plus trailer, as 3.0.6 puts it in a UDP datagram.
    pub fn encode_udp(&self, msg: &Msg) -> Vec<u8> {
        let mut out = netstring::encode(msg);
        let trailer = self.sign(&out);
        write_netstring(trailer.as_bytes(), &mut out);
        out
    }

    /// Classic packet with its `auth` field recomputed (serial links).
    pub fn encode_classic(&self, msg: &Msg) -> Vec<u8> {
        let mut msg = msg.clone();
        self.add_inner_auth(&mut msg);
        classic::encode(&msg)
    }

    /// Decode and authenticate one datagram (netstring or classic).
    pub fn verify(&self, packet: &[u8]) -> Result<Msg, Reject> {
        self.verify_detailed(packet).map(|v| v.msg)
    }

    /// `verify`, also telling which index signed the packet and in which form it came.
    pub fn verify_detailed(&self, packet: &[u8]) -> Result<Verified, Reject> {
        self.verify_with(packet, NetstringKeyRule::default())
    }

    /// `verify_detailed` with an explicit netstring key rule.
    pub fn verify_with(&self, packet: &[u8], rule: NetstringKeyRule) -> Result<Verified, Reject> {
        if packet.len() > MAX_PACKET {
            return Err(Reject::Malformed(format!(
                "packet of {} bytes exceeds {MAX_PACKET}",
                packet.len()
            )));
        }
        if packet.starts_with(netstring::HEAD) {
            self.verify_netstring(packet, rule)
        } else if packet.starts_with(classic::HEAD) {
            self.verify_classic(packet)
        } else {
            Err(Reject::Malformed(
                "neither ###\\n nor >>>\\n at the start".into(),
            ))
        }
    }

    /// The key for `index`, refusing unknown indices and (unless allowed) crc.
    fn key_for(&self, index: u32) -> Result<(u8, &AuthKey), Reject> {
        let found = u8::try_from(index)
            .ok()
            .and_then(|i| Some((i, self.keys.keys.get(&i)?)));
        let (i, key) = found.ok_or(Reject::UnknownIndex(index))?;
        let crc_active =
            self.keys.keys.get(&self.keys.active).map(|k| k.method) == Some(AuthMethod::Crc);
        if key.method == AuthMethod::Crc && !crc_active && !self.accept_any_crc {
            return Err(Reject::CrcNotActive);
        }
        Ok((i, key))
    }

    fn verify_netstring(&self, packet: &[u8], rule: NetstringKeyRule) -> Result<Verified, Reject> {
        let (msg, body_len) = netstring::decode_body(packet).map_err(|e| Reject::Malformed(e.0))?;
        let (body, rest) = packet.split_at(body_len);
        // Bytes after the trailer are ignored, as 3.0.6 does.
        let (trailer, _) = read_netstring(rest).map_err(|_| Reject::NoTrailer)?;
        let (index, got) = parse_signature(trailer).ok_or(Reject::NoTrailer)?;
        let (index, key) = self.key_for(index)?;
        // 3.0.6 keys every index's method with the active key string.
        let active_key = self
            .keys
            .keys
            .get(&self.keys.active)
            .map(|k| k.key.as_slice());
        let computed = digest(key.method, active_key.unwrap_or(&key.key), body);
        let mut ok = digest_matches(got, &computed);
        if !ok && rule == NetstringKeyRule::Superset && active_key != Some(&key.key) {
            ok = digest_matches(got, &digest(key.method, &key.key, body));
        }
        if !ok {
            return Err(Reject::BadDigest {
                got: String::from_utf8_lossy(got).into_owned(),
                computed,
            });
        }
        Ok(Verified {
            msg,
            index,
            classic: false,
        })
    }

    fn verify_classic(&self, packet: &[u8]) -> Result<Verified, Reject> {
        let msg = classic::decode(packet).map_err(|e| Reject::Malformed(e.0))?;
        let auth = msg.fields.iter().rev().find(|f| f.name == b"auth");
        let signature = match auth.map(|f| &f.value) {
            Some(Value::Str(v)) => v.as_slice(),
            _ => return Err(Reject::ClassicNoAuth),
        };
        let (index, got) = parse_signature(signature).ok_or(Reject::ClassicNoAuth)?;
        let (index, key) = self.key_for(index)?;
        // Classic: each index with its own key; the text is re-rendered from the parse.
        let computed = digest(key.method, &key.key, &classic::signing_text(&msg));
        if !digest_matches(got, &computed) {
            let src = match msg.get("src") {
                Some(Value::Str(v)) => String::from_utf8_lossy(v).into_owned(),
                _ => String::new(),
            };
            return Err(Reject::ClassicAuthFailed { src });
        }
        Ok(Verified {
            msg,
            index,
            classic: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn crc_check_values() {
        assert_eq!(digest(AuthMethod::Crc, b"", b"123456789"), "765e7680");
        assert_eq!(digest(AuthMethod::Crc, b"", b"a"), "579b24df");
        assert_eq!(digest(AuthMethod::Crc, b"", b""), "ffffffff");
        // The key is ignored; small values have no leading zeros.
        assert_eq!(digest(AuthMethod::Crc, b"k", b"a"), "579b24df");
        assert_eq!(format!("{:x}", 0x00c9_ca91u32), "c9ca91");
    }

    #[test]
    fn hmac_check_values() {
        assert_eq!(
            digest(AuthMethod::Md5, b"k", b"abc"),
            "75972c9c6569f2f407752ddb02ac79de"
        );
        assert_eq!(
            digest(AuthMethod::Sha1, b"k", b"abc"),
            "f9bef091fe00d9f5128593836dba99e193f08174"
        );
        // RFC 2202 test case 2 for each.
        let data = b"what do ya want for nothing?";
        assert_eq!(
            digest(AuthMethod::Md5, b"Jefe", data),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            digest(AuthMethod::Sha1, b"Jefe", data),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        // Keys longer than a block are hashed first (RFC 2202 test case 6).
        let long = [0xaau8; 80];
        assert_eq!(
            digest(
                AuthMethod::Md5,
                &long,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"
        );
    }

    #[test]
    fn signature_syntax() {
        assert_eq!(parse_signature(b"1 abc"), Some((1, &b"abc"[..])));
        for bad in [
            &b"1abc"[..],
            b" abc",
            b"1 ",
            b"01 abc",
            b"1  abc",
            b"x abc",
            b"99999999999 a",
        ] {
            assert_eq!(
                parse_signature(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn digest_comparison_is_lowercase_only() {
        assert!(digest_matches(b"ab01", "ab01"));
        assert!(!digest_matches(b"AB01", "ab01"));
        assert!(!digest_matches(b"ab0", "ab01"));
    }

    fn keys(active: u8, list: &[(u8, AuthMethod, &str)]) -> AuthKeys {
        let keys: BTreeMap<u8, AuthKey> = list
            .iter()
            .map(|&(i, method, key)| {
                (
                    i,
                    AuthKey {
                        method,
                        key: key.as_bytes().to_vec(),
                    },
                )
            })
            .collect();
        AuthKeys { active, keys }
    }

    #[test]
    fn inner_auth_is_replaced_in_place_and_deduplicated() {
        let auth = Authenticator::new(keys(1, &[(1, AuthMethod::Md5, "k")]));
        let mut m = Msg::new();
        m.add_str("t", "x")
            .add_str("auth", "junk")
            .add_str("z", "y")
            .add_str("auth", "more");
        auth.add_inner_auth(&mut m);
        let names: Vec<&[u8]> = m.fields.iter().map(|f| f.name.as_slice()).collect();
        assert_eq!(names, [&b"t"[..], b"auth", b"z"]);
        let expected = format!("1 {}", digest(AuthMethod::Md5, b"k", b"t=x\nz=y\n"));
        assert_eq!(m.get_str("auth"), Some(expected.as_str()));
    }

    #[test]
    fn oversize_packets_are_refused() {
        let auth = Authenticator::new(keys(1, &[(1, AuthMethod::Crc, "")]));
        let mut m = Msg::new();
        m.add_str("t", &"x".repeat(MAX_PACKET));
        let packet = auth.encode_udp(&m);
        assert!(matches!(auth.verify(&packet), Err(Reject::Malformed(_))));
        let mut small = Msg::new();
        small.add_str("t", &"x".repeat(MAX_PACKET - 100));
        assert!(auth.verify(&auth.encode_udp(&small)).is_ok());
    }
}
