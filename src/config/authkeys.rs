//! `authkeys`: `auth N` plus `N crc|md5 KEY|sha1 KEY` lines, as 3.0.6 reads them.
//!
//! Reading rules (admin.md §2.1):
//!
//! * leading blanks are skipped; empty lines and lines whose first non-blank character is `#`
//!   are ignored (a `#` later in a line is an ordinary character, also inside a key);
//! * a line starting with `a` must read `auth <integer>` (blanks after `auth` optional, text
//!   after the integer ignored), else `Invalid auth line [...]`;
//! * any other line is `<index> <method> [<key>]`: index 0-15, method `crc`, `md5` or `sha1`
//!   (case-sensitive), the key is the single word after the method (words after it are
//!   ignored, so keys cannot contain blanks); `crc` takes no key, `md5`/`sha1` need one;
//! * a key line for an index already seen replaces it;
//! * the signing key is chosen when a key line's index equals the last `auth N` read so far,
//!   so `auth N` must come before key line N.
//!
//! The permission rule (§2.2) needs the file's metadata, so the caller stats the file and
//! passes the numbers to [`check_mode`] and [`check_owner`]. 3.0.6 only checks the mode; we
//! also refuse a file owned by another user than the daemon's (so that nobody but root and
//! the daemon's own user can plant signing keys).

use std::collections::BTreeMap;
use std::path::Path;

use super::{Diagnostic, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Crc,
    Md5,
    Sha1,
}

impl AuthMethod {
    /// The method as named in authkeys (case-sensitive there).
    pub fn from_name(name: &str) -> Option<AuthMethod> {
        match name {
            "crc" => Some(AuthMethod::Crc),
            "md5" => Some(AuthMethod::Md5),
            "sha1" => Some(AuthMethod::Sha1),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Crc => "crc",
            AuthMethod::Md5 => "md5",
            AuthMethod::Sha1 => "sha1",
        }
    }

    /// Whether a key line for this method must carry a key.
    pub fn needs_key(self) -> bool {
        !matches!(self, AuthMethod::Crc)
    }
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

/// The key of the sample `etc-ha.d/authkeys`: published, so never to be used for real.
pub const DEMO_KEY: &str = "demo-only-not-a-secret";

/// Highest index plus one (indices are 0-15).
pub const MAX_AUTH: i64 = 16;

/// What `sscanf` treats as white space.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// `%d` of sscanf: optional blanks, optional sign, at least one digit. Returns the value
/// (saturated, where C would overflow) and the rest of the input.
fn scan_int(s: &str) -> Option<(i64, &str)> {
    let s = s.trim_start_matches(is_c_space);
    let (negative, digits_start) = match s.as_bytes().first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let tail = s.get(digits_start..)?;
    let ndigits = tail.bytes().take_while(u8::is_ascii_digit).count();
    if ndigits == 0 {
        return None;
    }
    let mut value: i64 = 0;
    for b in tail.bytes().take(ndigits) {
        value = value.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    Some((if negative { -value } else { value }, &tail[ndigits..]))
}

/// `%s` of sscanf: optional blanks, then a run of non-blanks (at least one).
fn scan_word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(is_c_space);
    let end = s.find(is_c_space).unwrap_or(s.len());
    if end == 0 {
        None
    } else {
        Some((&s[..end], &s[end..]))
    }
}

/// Parse authkeys text (the permission check is the caller's, it needs the file's metadata).
pub fn parse(text: &str, path: &Path) -> Result<AuthKeys, Vec<Diagnostic>> {
    match parse_report(text, path) {
        (Some(keys), _) => Ok(keys),
        (None, diags) => Err(diags),
    }
}

/// Like [`parse`], but also returns the warnings of a file that parsed cleanly
/// (for `heartbeat --check`). The keys are `Some` exactly when there is no error.
/// Messages never contain key material.
pub fn parse_report(text: &str, path: &Path) -> (Option<AuthKeys>, Vec<Diagnostic>) {
    let file = path.display();
    let mut diags = Vec::new();
    let mut keys: BTreeMap<u8, AuthKey> = BTreeMap::new();
    // The last `auth N` read so far (-1: none yet) and the line it was on.
    let mut authnum: i64 = -1;
    let mut auth_line = 0usize;
    let mut active: Option<u8> = None;

    for (idx, raw) in text.split('\n').enumerate() {
        let line = idx + 1;
        let shown = raw.trim_end_matches(['\r', '\n']);
        let bp = raw.trim_start_matches([' ', '\t', '\n', '\r', '\x0c']);
        if bp.is_empty() || bp.starts_with('#') {
            continue;
        }
        if bp.starts_with('a') {
            let parsed = bp.strip_prefix("auth").and_then(scan_int);
            match parsed {
                Some((n, _)) => {
                    authnum = n;
                    auth_line = line;
                    if !(0..MAX_AUTH).contains(&n) {
                        diags.push(Diagnostic::error(
                            path,
                            line,
                            format!(
                                "Invalid authnum [{n}] in {file} (auth selects a key index 0-15)"
                            ),
                        ));
                    }
                }
                None => diags.push(Diagnostic::error(
                    path,
                    line,
                    format!("Invalid auth line [{shown}] in {file} (expected: auth <index>)"),
                )),
            }
            continue;
        }

        let Some((index, rest)) = scan_int(bp) else {
            diags.push(Diagnostic::error(
                path,
                line,
                format!("Auth line [{shown}] is invalid."),
            ));
            continue;
        };
        let Some((method_name, rest)) = scan_word(rest) else {
            diags.push(Diagnostic::error(
                path,
                line,
                format!("Auth line [{shown}] is invalid. (expected: <index> <method> [<key>])"),
            ));
            continue;
        };
        let (key, rest) = scan_word(rest).unwrap_or(("", ""));

        if !(0..MAX_AUTH).contains(&index) {
            diags.push(Diagnostic::error(
                path,
                line,
                format!("Invalid authnum [{index}] in {file} (indices are 0-15)"),
            ));
            continue;
        }
        let Some(method) = AuthMethod::from_name(method_name) else {
            let hint = match AuthMethod::from_name(&method_name.to_ascii_lowercase()) {
                Some(m) => format!(
                    " (method names are case-sensitive: did you mean {}?)",
                    m.name()
                ),
                None => " (known methods: crc, md5, sha1)".to_string(),
            };
            diags.push(Diagnostic::error(
                path,
                line,
                format!("Invalid authtype [{method_name}]{hint}"),
            ));
            continue;
        };
        if !key.is_empty() && !method.needs_key() {
            diags.push(Diagnostic::error(
                path,
                line,
                format!("Auth method [{}] doesn't use a key", method.name()),
            ));
            continue;
        }
        if key.is_empty() && method.needs_key() {
            diags.push(Diagnostic::error(
                path,
                line,
                format!("Auth method [{}] requires a key", method.name()),
            ));
            continue;
        }
        let ignored = rest.split(is_c_space).filter(|w| !w.is_empty()).count();
        if ignored > 0 {
            diags.push(Diagnostic::warning(
                path,
                line,
                format!(
                    "only the first word after [{}] is the key; the {ignored} word(s) after it are \
                     ignored (keys cannot contain blanks)",
                    method.name()
                ),
            ));
        }
        if key == DEMO_KEY {
            diags.push(Diagnostic::warning(
                path,
                line,
                format!(
                    "key {index} is the public demo key of heartbeat-rs's sample authkeys: anyone \
                     can sign messages your nodes accept. Make a key of your own, e.g. \
                     `{index} sha1 $(dd if=/dev/urandom bs=512 count=1 2>/dev/null | sha1sum | cut -d' ' -f1)`"
                ),
            ));
        }
        // The range check above guarantees the index fits.
        let Ok(slot) = u8::try_from(index) else {
            continue;
        };
        keys.insert(
            slot,
            AuthKey {
                method,
                key: super::bytes::encode(key),
            },
        );
        if index == authnum {
            active = Some(slot);
        }
    }

    let active = match active {
        Some(a) if keys.contains_key(&a) => Some(a),
        _ => {
            if authnum < 0 && auth_line == 0 {
                diags.push(Diagnostic::error(
                    path,
                    0,
                    format!("Missing auth directive in keyfile [{file}]"),
                ));
            } else {
                diags.push(Diagnostic::error(
                    path,
                    auth_line,
                    format!(
                        "Auth Key [{authnum}] not found in keyfile [{file}] (the 'auth {authnum}' \
                         line must come before key line {authnum})"
                    ),
                ));
            }
            None
        }
    };

    let failed = diags.iter().any(|d| d.severity == Severity::Error);
    match active {
        Some(active) if !failed => (Some(AuthKeys { active, keys }), diags),
        _ => (None, diags),
    }
}

/// The message for a keyfile that cannot be opened, worded as 3.0.6 (two blanks before Stop).
pub fn cannot_open(path: &Path) -> Diagnostic {
    Diagnostic::error(
        path,
        0,
        format!("Cannot open keyfile [{}].  Stop.", path.display()),
    )
}

/// 3.0.6's permission rule: the file is refused iff its group-read or other-read bit is set
/// (644, 640, 604 refused; 620, 600, 400, 700 accepted).
pub fn check_mode(mode: u32, path: &Path) -> Result<(), Diagnostic> {
    if mode & 0o044 != 0 {
        Err(Diagnostic::error(
            path,
            0,
            format!(
                "Bad permissions on keyfile [{}], 600 recommended.",
                path.display()
            ),
        ))
    } else {
        Ok(())
    }
}

/// Our addition: the keyfile must belong to the user the daemon runs as (normally root),
/// otherwise whoever owns it could change the cluster's signing keys. 3.0.6 does not check.
pub fn check_owner(file_uid: u32, our_uid: u32, path: &Path) -> Result<(), Diagnostic> {
    if file_uid != our_uid {
        Err(Diagnostic::error(
            path,
            0,
            format!(
                "Bad owner of keyfile [{}]: owned by uid {file_uid}, but heartbeat runs as uid \
                 {our_uid}; chown it to uid {our_uid} (and chmod 600)",
                path.display()
            ),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/etc/ha.d//authkeys";

    fn ok(text: &str) -> AuthKeys {
        match parse(text, Path::new(P)) {
            Ok(k) => k,
            Err(d) => panic!("unexpected errors: {d:?}"),
        }
    }

    fn errors(text: &str) -> Vec<(usize, String)> {
        let (keys, diags) = parse_report(text, Path::new(P));
        assert!(keys.is_none(), "expected a failure for {text:?}");
        diags
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| (d.line, d.message))
            .collect()
    }

    #[test]
    fn the_spec_example() {
        let k = ok("auth 2\n1 md5 oldkey\n2 sha1 secret2\n");
        assert_eq!(k.active, 2);
        assert_eq!(k.keys.len(), 2);
        assert_eq!(
            k.keys[&1],
            AuthKey {
                method: AuthMethod::Md5,
                key: b"oldkey".to_vec()
            }
        );
        assert_eq!(
            k.active_key(),
            &AuthKey {
                method: AuthMethod::Sha1,
                key: b"secret2".to_vec()
            }
        );
    }

    #[test]
    fn comments_blanks_and_crlf() {
        let k = ok("# keys\r\n\r\n   \n  auth 1\r\n\t1 sha1 k#notacomment\r\n  # 2 md5 x\n");
        assert_eq!(k.active, 1);
        assert_eq!(k.keys.len(), 1);
        assert_eq!(k.keys[&1].key, b"k#notacomment".to_vec());
    }

    #[test]
    fn crc_and_index_zero() {
        let k = ok("auth 0\n0 crc\n");
        assert_eq!(k.active, 0);
        assert_eq!(
            k.keys[&0],
            AuthKey {
                method: AuthMethod::Crc,
                key: vec![]
            }
        );
    }

    #[test]
    fn only_first_word_is_the_key() {
        let (keys, diags) = parse_report("auth 1\n1 sha1 my secret words # c\n", Path::new(P));
        let keys = keys.expect("accepted");
        assert_eq!(keys.keys[&1].key, b"my".to_vec());
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].severity, Severity::Warning);
        assert!(
            !diags[0].message.contains("secret"),
            "no key material in messages"
        );
    }

    #[test]
    fn sscanf_style_tokens() {
        // `auth2` and `1md5 key` read like sscanf does.
        let k = ok("auth2\n2md5 key\n");
        assert_eq!(k.active, 2);
        assert_eq!(k.keys[&2].method, AuthMethod::Md5);
        let k = ok("auth 3 trailing words\n3 sha1 k\n");
        assert_eq!(k.active, 3);
    }

    #[test]
    fn invalid_auth_line() {
        let e = errors("abc\nauth 1\n1 sha1 k\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, 1);
        assert!(e[0]
            .1
            .starts_with("Invalid auth line [abc] in /etc/ha.d//authkeys"));
        let e = errors("auth one\n1 sha1 k\n");
        assert!(e[0]
            .1
            .starts_with("Invalid auth line [auth one] in /etc/ha.d//authkeys"));
    }

    #[test]
    fn last_auth_before_its_key_wins() {
        let k = ok("auth 1\n1 md5 a\nauth 2\n2 sha1 b\n");
        assert_eq!(k.active, 2);
        // A later auth line without a following key line leaves the earlier choice.
        let k = ok("auth 1\n1 md5 a\nauth 2\n");
        assert_eq!(k.active, 1);
    }

    #[test]
    fn same_index_replaces() {
        let k = ok("auth 1\n1 md5 a\n1 sha1 b\n");
        assert_eq!(
            k.keys[&1],
            AuthKey {
                method: AuthMethod::Sha1,
                key: b"b".to_vec()
            }
        );
    }

    #[test]
    fn authnum_out_of_range() {
        let e = errors("auth 1\n1 sha1 k\n16 sha1 x\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, 3);
        assert!(e[0]
            .1
            .starts_with("Invalid authnum [16] in /etc/ha.d//authkeys"));
        let e = errors("auth 1\n1 sha1 k\n-1 md5 x\n");
        assert!(e[0].1.starts_with("Invalid authnum [-1]"));
    }

    #[test]
    fn unknown_or_miscased_method() {
        let e = errors("auth 1\n1 sha256 k\n");
        assert!(e[0].1.starts_with("Invalid authtype [sha256]"));
        let e = errors("auth 1\n1 MD5 k\n");
        assert!(e[0].1.starts_with("Invalid authtype [MD5]"));
        assert!(e[0].1.contains("case-sensitive"));
    }

    #[test]
    fn key_required_or_refused() {
        let e = errors("auth 1\n1 md5\n");
        assert_eq!(e[0], (2, "Auth method [md5] requires a key".to_string()));
        let e = errors("auth 1\n1 sha1 \n");
        assert_eq!(e[0], (2, "Auth method [sha1] requires a key".to_string()));
        let e = errors("auth 1\n1 crc k\n");
        assert_eq!(e[0], (2, "Auth method [crc] doesn't use a key".to_string()));
    }

    #[test]
    fn invalid_key_lines() {
        let e = errors("auth 1\n1\n1 sha1 k\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].1.starts_with("Auth line [1] is invalid."));
        let e = errors("auth 1\nhello world\n1 sha1 k\n");
        assert_eq!(e[0], (2, "Auth line [hello world] is invalid.".to_string()));
    }

    #[test]
    fn auth_must_precede_its_key() {
        let e = errors("1 sha1 k\nauth 1\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, 2);
        assert!(e[0]
            .1
            .starts_with("Auth Key [1] not found in keyfile [/etc/ha.d//authkeys]"));
    }

    #[test]
    fn auth_names_a_missing_key() {
        let e = errors("auth 3\n1 sha1 k\n");
        assert!(e[0]
            .1
            .starts_with("Auth Key [3] not found in keyfile [/etc/ha.d//authkeys]"));
    }

    #[test]
    fn missing_auth_directive() {
        let e = errors("1 sha1 k\n");
        assert_eq!(
            e,
            vec![(
                0,
                "Missing auth directive in keyfile [/etc/ha.d//authkeys]".to_string()
            )]
        );
        let e = errors("");
        assert_eq!(
            e,
            vec![(
                0,
                "Missing auth directive in keyfile [/etc/ha.d//authkeys]".to_string()
            )]
        );
    }

    #[test]
    fn broken_active_key_line_is_reported_twice() {
        // The selected key line is itself wrong: its own error and the missing key.
        let e = errors("auth 1\n1 md5\n");
        assert_eq!(e.len(), 2);
        assert!(e[1].1.starts_with("Auth Key [1] not found"));
    }

    #[test]
    fn every_error_is_reported() {
        let e = errors("abc\n17 md5 x\n2 MD5 y\n3 crc z\n4 sha1\nauth 9\n");
        assert_eq!(
            e.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn permissions() {
        let p = Path::new(P);
        for mode in [0o644, 0o640, 0o604, 0o100644, 0o444] {
            let d = check_mode(mode, p).expect_err("refused");
            assert_eq!(
                d.message,
                "Bad permissions on keyfile [/etc/ha.d//authkeys], 600 recommended."
            );
        }
        for mode in [0o620, 0o600, 0o400, 0o700, 0o100600, 0o622] {
            assert!(check_mode(mode, p).is_ok(), "{mode:o} accepted");
        }
    }

    #[test]
    fn owner() {
        let p = Path::new(P);
        assert!(check_owner(0, 0, p).is_ok());
        let d = check_owner(1000, 0, p).expect_err("refused");
        assert!(d.message.contains("owned by uid 1000"));
        assert_eq!(d.severity, Severity::Error);
    }

    #[test]
    fn cannot_open_wording() {
        assert_eq!(
            cannot_open(Path::new(P)).message,
            "Cannot open keyfile [/etc/ha.d//authkeys].  Stop."
        );
    }
}
