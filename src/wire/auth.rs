//! Signing and verification exactly as Heartbeat 3.0.6 computes them (md5, sha1, crc).

use std::fmt;

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;

use super::{classic, netstring, read_netstring, Msg, MsgView, Value, MAX_PACKET};
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

impl Reject {
    /// The kind of refusal, without its details: what a node counts and rate-limits its log
    /// lines by.
    pub fn kind(&self) -> &'static str {
        match self {
            Reject::Malformed(_) => "Malformed",
            Reject::NoTrailer => "NoTrailer",
            Reject::UnknownIndex(_) => "UnknownIndex",
            Reject::BadDigest { .. } => "BadDigest",
            Reject::ClassicAuthFailed { .. } => "ClassicAuthFailed",
            Reject::ClassicNoAuth => "ClassicNoAuth",
            Reject::CrcNotActive => "CrcNotActive",
        }
    }
}

impl std::error::Error for Reject {}

/// CRC-32, polynomial 0x04C11DB7, MSB first, init 0, final xor 0xFFFFFFFF, no length.
fn crc32(data: &[u8]) -> u32 {
    // Eight bytes per step (slicing-by-8): `CRC_TABLES[k][b]` is byte `b` followed by `k` zero
    // bytes, so the eight lookups of a step are independent of each other.
    let mut chunks = data.chunks_exact(8);
    let mut crc = 0u32;
    for c in &mut chunks {
        let hi = crc ^ u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        let lo = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
        let t = &CRC_TABLES;
        crc = t[7][(hi >> 24) as usize]
            ^ t[6][((hi >> 16) & 0xff) as usize]
            ^ t[5][((hi >> 8) & 0xff) as usize]
            ^ t[4][(hi & 0xff) as usize]
            ^ t[3][(lo >> 24) as usize]
            ^ t[2][((lo >> 16) & 0xff) as usize]
            ^ t[1][((lo >> 8) & 0xff) as usize]
            ^ t[0][(lo & 0xff) as usize];
    }
    !crc32_bytewise(crc, chunks.remainder())
}

/// The CRC register after `data`, one byte per step, from register value `crc`.
fn crc32_bytewise(crc: u32, data: &[u8]) -> u32 {
    data.iter().fold(crc, |crc, &b| {
        (crc << 8) ^ CRC_TABLES[0][usize::from((crc >> 24) as u8 ^ b)]
    })
}

const CRC_TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
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
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev << 8) ^ t[0][(prev >> 24) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// An HMAC with its key taken in (the key's inner and outer pad blocks hashed once): a
/// message then costs its own blocks only.
#[derive(Clone)]
enum KeyedMac {
    Md5(Hmac<Md5>),
    Sha1(Hmac<Sha1>),
}

impl KeyedMac {
    fn new(method: AuthMethod, key: &[u8]) -> Option<KeyedMac> {
        // HMAC accepts keys of any length (long ones are hashed first), so new_from_slice
        // does not fail; crc has no key state.
        match method {
            AuthMethod::Md5 => Hmac::<Md5>::new_from_slice(key).ok().map(KeyedMac::Md5),
            AuthMethod::Sha1 => Hmac::<Sha1>::new_from_slice(key).ok().map(KeyedMac::Sha1),
            AuthMethod::Crc => None,
        }
    }

    fn digest(&self, data: &[u8]) -> DigestText {
        match self {
            KeyedMac::Md5(mac) => {
                let mut mac = mac.clone();
                mac.update(data);
                DigestText::hex(&mac.finalize().into_bytes())
            }
            KeyedMac::Sha1(mac) => {
                let mut mac = mac.clone();
                mac.update(data);
                DigestText::hex(&mac.finalize().into_bytes())
            }
        }
    }
}

/// The keyed HMAC states of every method/key pair verification or signing can use, made
/// once from authkeys. Found by method and key bytes, so a changed `keys` only misses (and
/// is computed from scratch), never uses a stale key.
#[derive(Clone, Default)]
struct PreparedKeys(Vec<(AuthMethod, Vec<u8>, KeyedMac)>);

impl PreparedKeys {
    fn new(keys: &AuthKeys) -> PreparedKeys {
        let mut prepared = PreparedKeys::default();
        let active = keys.keys.get(&keys.active).map(|k| k.key.as_slice());
        for k in keys.keys.values() {
            // Netstring trailers are computed with the active key string and the method of the
            // index they name (3.0.6), classic ones and our superset rule with the index's own.
            for key in [Some(k.key.as_slice()), active].into_iter().flatten() {
                if prepared.find(k.method, key).is_none() {
                    if let Some(mac) = KeyedMac::new(k.method, key) {
                        prepared.0.push((k.method, key.to_vec(), mac));
                    }
                }
            }
        }
        prepared
    }

    fn find(&self, method: AuthMethod, key: &[u8]) -> Option<&KeyedMac> {
        self.0
            .iter()
            .find(|(m, k, _)| *m == method && k == key)
            .map(|(_, _, mac)| mac)
    }

    /// The digest of `data` with `method` and `key`.
    fn digest(&self, method: AuthMethod, key: &[u8], data: &[u8]) -> DigestText {
        match self.find(method, key) {
            Some(mac) => mac.digest(data),
            None => DigestText::compute(method, key, data),
        }
    }
}

impl fmt::Debug for PreparedKeys {
    // Key bytes stay out of debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PreparedKeys({} keyed states)", self.0.len())
    }
}

/// A digest as text (lowercase hex), on the stack: signing and checking a packet allocate
/// nothing for it.
#[derive(Clone, Copy)]
struct DigestText {
    buf: [u8; 40],
    len: usize,
}

impl DigestText {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn hex(bytes: &[u8]) -> DigestText {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut d = DigestText {
            buf: [0; 40],
            len: 0,
        };
        for &b in bytes.iter().take(20) {
            d.buf[d.len] = DIGITS[usize::from(b >> 4)];
            d.buf[d.len + 1] = DIGITS[usize::from(b & 15)];
            d.len += 2;
        }
        d
    }

    /// crc: hex without leading zeros, as 3.0.6 prints it (`%lx`).
    fn crc(value: u32) -> DigestText {
        let be = DigestText::hex(&value.to_be_bytes());
        let zeros = be
            .as_bytes()
            .iter()
            .take_while(|&&c| c == b'0')
            .count()
            .min(7);
        let mut d = DigestText {
            buf: [0; 40],
            len: 8 - zeros,
        };
        d.buf[..d.len].copy_from_slice(&be.buf[zeros..8]);
        d
    }

    fn compute(method: AuthMethod, key: &[u8], data: &[u8]) -> DigestText {
        match (method, KeyedMac::new(method, key)) {
            (AuthMethod::Crc, _) => DigestText::crc(crc32(data)),
            (_, Some(mac)) => mac.digest(data),
            // Not reached (HMAC takes keys of any length); an empty digest matches no trailer.
            (_, None) => DigestText {
                buf: [0; 40],
                len: 0,
            },
        }
    }

    fn to_string_lossy(self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

/// The digest of `data` as 3.0.6 writes it (lowercase hex; crc without leading zeros).
pub fn digest(method: AuthMethod, key: &[u8], data: &[u8]) -> String {
    DigestText::compute(method, key, data).to_string_lossy()
}

/// Lowercase hex only (3.0.6 compares case-sensitively), compared in constant time.
fn digest_matches(got: &[u8], computed: &[u8]) -> bool {
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
    /// HMAC states keyed once (`keys` at construction).
    prepared: PreparedKeys,
}

impl Authenticator {
    pub fn new(keys: AuthKeys) -> Authenticator {
        Authenticator {
            prepared: PreparedKeys::new(&keys),
            keys,
            accept_any_crc: false,
        }
    }

    /// `<active index> <digest of data>` with the active key.
    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let key = self.keys.active_key();
        let d = self.prepared.digest(key.method, &key.key, data);
        let mut out = Vec::with_capacity(44);
        super::write_decimal(usize::from(self.keys.active), &mut out);
        out.push(b' ');
        out.extend_from_slice(d.as_bytes());
        out
    }

    /// Add (or replace in place) the inner classic `auth` field, signed with the active key.
    pub fn add_inner_auth(&self, msg: &mut Msg) {
        let mut value = Some(Value::Str(self.sign(&classic::signing_text(msg))));
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
        // `LEN:<index> <digest>,` after the body, written in place.
        let key = self.keys.active_key();
        let d = self.prepared.digest(key.method, &key.key, &out);
        let index = self.keys.active;
        let index_digits = if index >= 100 {
            3
        } else if index >= 10 {
            2
        } else {
            1
        };
        super::write_decimal(index_digits + 1 + d.len, &mut out);
        out.push(b':');
        super::write_decimal(usize::from(index), &mut out);
        out.push(b' ');
        out.extend_from_slice(d.as_bytes());
        out.push(b',');
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

    /// Decode and authenticate one netstring datagram without copying it: the message
    /// borrows `packet`. Refuses what [`Authenticator::verify`] refuses, with the same
    /// reasons; a packet that is not netstring (`###\n`) is malformed here (classic packets go
    /// through `verify`).
    pub fn verify_view<'a>(&self, packet: &'a [u8]) -> Result<MsgView<'a>, Reject> {
        self.verify_view_with(packet, NetstringKeyRule::default())
            .map(|(view, _)| view)
    }

    /// `verify_view` with an explicit netstring key rule, also telling the index that signed.
    pub fn verify_view_with<'a>(
        &self,
        packet: &'a [u8],
        rule: NetstringKeyRule,
    ) -> Result<(MsgView<'a>, u8), Reject> {
        let mut view = MsgView::default();
        let index = self.verify_view_into(packet, rule, &mut view)?;
        Ok((view, index))
    }

    /// `verify_view_with` into a view the caller holds (the receive path keeps it on its
    /// stack); returns the index that signed.
    pub fn verify_view_into<'a>(
        &self,
        packet: &'a [u8],
        rule: NetstringKeyRule,
        view: &mut MsgView<'a>,
    ) -> Result<u8, Reject> {
        if packet.len() > MAX_PACKET {
            return Err(Reject::Malformed(format!(
                "packet of {} bytes exceeds {MAX_PACKET}",
                packet.len()
            )));
        }
        if !packet.starts_with(netstring::HEAD) {
            return Err(Reject::Malformed("no ###\\n at the start".into()));
        }
        let body_len =
            netstring::decode_view_into(packet, view).map_err(|e| Reject::Malformed(e.0))?;
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
        let computed = self
            .prepared
            .digest(key.method, active_key.unwrap_or(&key.key), body);
        let mut ok = digest_matches(got, computed.as_bytes());
        if !ok && rule == NetstringKeyRule::Superset && active_key != Some(&key.key) {
            ok = digest_matches(
                got,
                self.prepared.digest(key.method, &key.key, body).as_bytes(),
            );
        }
        if !ok {
            return Err(Reject::BadDigest {
                got: String::from_utf8_lossy(got).into_owned(),
                computed: computed.to_string_lossy(),
            });
        }
        Ok(index)
    }

    fn verify_netstring(&self, packet: &[u8], rule: NetstringKeyRule) -> Result<Verified, Reject> {
        let (view, index) = self.verify_view_with(packet, rule)?;
        Ok(Verified {
            msg: view.to_msg(),
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
        let computed = self
            .prepared
            .digest(key.method, &key.key, &classic::signing_text(&msg));
        if !digest_matches(got, computed.as_bytes()) {
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
        assert_eq!(DigestText::crc(0x00c9_ca91).to_string_lossy(), "c9ca91");
        assert_eq!(DigestText::crc(0).to_string_lossy(), "0");
        assert_eq!(DigestText::crc(0x1000_0000).to_string_lossy(), "10000000");
        assert_eq!(DigestText::crc(0xf).to_string_lossy(), "f");
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
        assert!(digest_matches(b"ab01", b"ab01"));
        assert!(!digest_matches(b"AB01", b"ab01"));
        assert!(!digest_matches(b"ab0", b"ab01"));
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

    #[test]
    fn crc_eight_bytes_at_a_time_equals_one_at_a_time() {
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for n in 0..data.len() {
            assert_eq!(
                crc32(&data[..n]),
                !crc32_bytewise(0, &data[..n]),
                "{n} bytes"
            );
        }
    }

    #[test]
    fn prepared_keys_give_the_digest_of_a_fresh_hmac() {
        let auth = Authenticator::new(keys(
            2,
            &[
                (1, AuthMethod::Sha1, "one"),
                (2, AuthMethod::Md5, "two"),
                (3, AuthMethod::Crc, ""),
            ],
        ));
        // Each index's own key, and every method with the active key (3.0.6's netstring rule).
        assert_eq!(auth.prepared.0.len(), 3);
        for (method, key) in [
            (AuthMethod::Sha1, &b"one"[..]),
            (AuthMethod::Sha1, b"two"),
            (AuthMethod::Md5, b"two"),
            (AuthMethod::Crc, b""),
            (AuthMethod::Md5, b"not prepared"),
        ] {
            for data in [&b""[..], b"abc", &[7u8; 200]] {
                assert_eq!(
                    auth.prepared.digest(method, key, data).as_bytes(),
                    DigestText::compute(method, key, data).as_bytes()
                );
            }
        }
        // A key changed after construction is not served from a stale state.
        let mut changed = auth.clone();
        changed.keys.keys.get_mut(&2).unwrap().key = b"new".to_vec();
        let mut m = Msg::new();
        m.add_str("t", "status");
        let packet = changed.encode_udp(&m);
        let fresh = Authenticator::new(changed.keys.clone());
        assert_eq!(packet, fresh.encode_udp(&m));
        assert!(auth.verify(&packet).is_err());
        assert!(fresh.verify(&packet).is_ok());
    }

    /// `verify_view` refuses what `verify` refuses, with the same reason, and accepts the
    /// same message.
    fn view_agrees(auth: &Authenticator, packet: &[u8]) {
        let view = auth.verify_view(packet).map(|v| v.to_msg());
        if packet.starts_with(b"###\n") || packet.len() > MAX_PACKET {
            assert_eq!(
                view,
                auth.verify(packet),
                "{}",
                String::from_utf8_lossy(packet)
            );
        } else {
            assert!(matches!(view, Err(Reject::Malformed(_))));
        }
    }

    #[test]
    fn verify_view_refuses_hostile_packets_as_verify_does() {
        let auth = Authenticator::new(keys(
            1,
            &[(1, AuthMethod::Sha1, "k"), (2, AuthMethod::Crc, "")],
        ));
        let mut m = Msg::new();
        m.add_str("t", "status")
            .add_str("src", "bob")
            .add_bin("srcuuid", &[1; 16]);
        let good = auth.encode_udp(&m);
        assert_eq!(auth.verify_view(&good).map(|v| v.to_msg()), Ok(m.clone()));
        // Truncated anywhere, any byte changed, bytes after the trailer.
        for n in 0..good.len() {
            view_agrees(&auth, &good[..n]);
            assert!(auth.verify_view(&good[..n]).is_err());
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            view_agrees(&auth, &bad);
            assert!(auth.verify_view(&bad).is_err(), "byte {i} changed");
        }
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk");
        view_agrees(&auth, &trailing);
        // A wrong digest names both; an unknown index; crc while sha1 is active.
        let body_len = good.windows(4).position(|w| w == b"%%%\n").unwrap() + 4;
        let mut wrong = good[..body_len].to_vec();
        wrong.extend_from_slice(b"42:1 0000000000000000000000000000000000000000,");
        assert!(matches!(
            auth.verify_view(&wrong),
            Err(Reject::BadDigest { .. })
        ));
        view_agrees(&auth, &wrong);
        let mut unknown = good[..body_len].to_vec();
        unknown.extend_from_slice(b"6:9 abcd,");
        assert_eq!(
            auth.verify_view(&unknown).err(),
            Some(Reject::UnknownIndex(9))
        );
        let mut crc = good[..body_len].to_vec();
        crc.extend_from_slice(b"6:2 abcd,");
        assert_eq!(auth.verify_view(&crc).err(), Some(Reject::CrcNotActive));
        // Oversized, classic, nothing.
        let mut huge = good.clone();
        huge.resize(MAX_PACKET + 1, b'x');
        view_agrees(&auth, &huge);
        view_agrees(&auth, &auth.encode_classic(&m));
        view_agrees(&auth, b"");
    }
}
