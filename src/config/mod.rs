//! Parsing of `ha.cf`, `authkeys` and `haresources`. Pure: every function takes text and a path
//! (used only in messages) and returns values or diagnostics that name file and line.

pub mod authkeys;
pub mod bytes;
pub mod duration;
pub mod hacf;
pub mod haresources;

use std::fmt;
use std::path::{Path, PathBuf};

pub use authkeys::{AuthKey, AuthKeys, AuthMethod};
pub use hacf::{
    ApiAuth, AutoFailback, AutoJoin, ClientChild, HaCf, Medium, MediumKind, MsgFmt, Stonith,
};
pub use haresources::{Resource, ResourceGroup};

/// How bad a diagnostic is: errors stop the daemon from starting, warnings are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One problem found in a configuration file. `line` is 1-based; 0 means "the whole file".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        if self.line > 0 {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file.display(),
                self.line,
                sev,
                bytes::escape(&self.message)
            )
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                sev,
                bytes::escape(&self.message)
            )
        }
    }
}

impl Diagnostic {
    pub fn new(
        severity: Severity,
        file: &Path,
        line: usize,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    pub fn error(file: &Path, line: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, file, line, message)
    }

    pub fn warning(file: &Path, line: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Warning, file, line, message)
    }

    pub fn info(file: &Path, line: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Info, file, line, message)
    }
}

/// True when any diagnostic is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}

/// The three files, parsed and cross-checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub hacf: HaCf,
    pub authkeys: AuthKeys,
    /// Empty when resources are not managed.
    pub groups: Vec<ResourceGroup>,
}

/// A file's bytes as the parsers read them: a leading UTF-8 byte-order mark removed (with a
/// warning), everything else kept byte for byte ([`bytes::decode`]).
pub fn decode_file(data: &[u8], path: &Path, diags: &mut Vec<Diagnostic>) -> String {
    let (rest, bom) = bytes::strip_bom(data);
    if bom {
        diags.push(Diagnostic::warning(
            path,
            1,
            "the file starts with a UTF-8 byte-order mark; it is ignored (Heartbeat 3.0.6 would \
             read it as part of the first line's first word)",
        ));
    }
    bytes::decode(rest)
}

/// What the caller found when it tried to read haresources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing<'a> {
    /// There is no such file.
    NotFound,
    /// It exists but could not be read: the system's reason.
    Unreadable(&'a str),
}

/// Everything read from the three files, errors or not: what the machine checks of
/// `heartbeat --check` look at (they check only what was read, so one mistake gives one
/// finding).
#[derive(Debug, Clone)]
pub struct Checked {
    pub hacf: HaCf,
    pub authkeys: Option<AuthKeys>,
    /// The groups of haresources; empty when it has an error or is not read.
    pub groups: Vec<ResourceGroup>,
    pub diags: Vec<Diagnostic>,
}

impl Checked {
    /// The configuration, when there is no error.
    pub fn config(self) -> (Option<Config>, Vec<Diagnostic>) {
        match self.authkeys {
            Some(authkeys) if !has_errors(&self.diags) => (
                Some(Config {
                    hacf: self.hacf,
                    authkeys,
                    groups: self.groups,
                }),
                self.diags,
            ),
            _ => (None, self.diags),
        }
    }
}

/// Parse and check ha.cf, authkeys and haresources together, collecting **every** problem
/// (what `heartbeat --check` prints). Pure: the caller reads the files (as bytes, in any
/// encoding) and the system facts.
///
/// * `authkeys_mode_uid`: `(st_mode, owner uid, the daemon's uid)` of the keyfile, checked
///   with [`authkeys::check_mode`] and [`authkeys::check_owner`]; None skips both (tests).
///   A keyfile that cannot be opened is the caller's to report ([`authkeys::cannot_open`]).
/// * `haresources`: the file's bytes, or why there are none, which is an error (worded as
///   3.0.6) unless `manage_resources` is false (the `-M` flag: no resource management,
///   haresources neither read nor required).
/// * `node_name` and `local_ifaces`: as for [`hacf::parse`].
///
/// Diagnostics come file by file (ha.cf, authkeys, haresources), each in file order. The
/// closing lines 3.0.6 prints after them (`Configuration error, heartbeat not started.`) are
/// the caller's. Returns the configuration only when there is no error.
#[allow(clippy::too_many_arguments)]
pub fn check(
    hacf_data: &[u8],
    hacf_path: &Path,
    authkeys_data: &[u8],
    authkeys_path: &Path,
    authkeys_mode_uid: Option<(u32, u32, u32)>,
    haresources: Result<&[u8], Missing<'_>>,
    haresources_path: &Path,
    node_name: &str,
    local_ifaces: Option<&[String]>,
    manage_resources: bool,
) -> (Option<Config>, Vec<Diagnostic>) {
    check_partial(
        hacf_data,
        hacf_path,
        authkeys_data,
        authkeys_path,
        authkeys_mode_uid,
        haresources,
        haresources_path,
        node_name,
        local_ifaces,
        manage_resources,
    )
    .config()
}

/// [`check`], keeping what was read even when there are errors.
#[allow(clippy::too_many_arguments)]
pub fn check_partial(
    hacf_data: &[u8],
    hacf_path: &Path,
    authkeys_data: &[u8],
    authkeys_path: &Path,
    authkeys_mode_uid: Option<(u32, u32, u32)>,
    haresources: Result<&[u8], Missing<'_>>,
    haresources_path: &Path,
    node_name: &str,
    local_ifaces: Option<&[String]>,
    manage_resources: bool,
) -> Checked {
    let mut diags = Vec::new();
    let hacf_text = decode_file(hacf_data, hacf_path, &mut diags);
    let (hacf, hacf_diags) = hacf::parse_partial(
        &hacf_text,
        hacf_path,
        node_name,
        local_ifaces,
        manage_resources,
    );
    diags.extend(hacf_diags);

    if let Some((mode, owner, us)) = authkeys_mode_uid {
        if let Err(d) = authkeys::check_mode(mode, authkeys_path) {
            diags.push(d);
        }
        if let Err(d) = authkeys::check_owner(owner, us, authkeys_path) {
            diags.push(d);
        }
    }
    let authkeys_text = decode_file(authkeys_data, authkeys_path, &mut diags);
    let (keys, key_diags) = authkeys::parse_report(&authkeys_text, authkeys_path);
    diags.extend(key_diags);

    let mut groups = Vec::new();
    if manage_resources {
        match haresources {
            Err(why) => diags.extend(haresources::cannot_open(haresources_path, why)),
            Ok(data) => {
                let text = decode_file(data, haresources_path, &mut diags);
                let (parsed, res_diags) =
                    haresources::parse_report(&text, haresources_path, &hacf.nodes);
                diags.extend(res_diags);
                groups = parsed.unwrap_or_default();
            }
        }
    }
    Checked {
        hacf,
        authkeys: keys,
        groups,
        diags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    const HACF: &[u8] = b"# \xb5\xce \xb3\xeb\xb5\xe5\xb0\xa3 (EUC-KR)\n\
        keepalive 2 # \x93\xfa\x96\x7b\x8c\xea (Shift-JIS)\n\
        deadtime 10 # \xd6\xd0\xce\xc4 (GB2312)\n\
        logfile /var/log/h\xe9.log # caf\xe9 (Latin-1)\n\
        ucast hb0 10.0.0.2\nnode alice bob\nauto_failback on\n";
    const KEYS: &[u8] = b"# cl\xe9\nauth 1\n1 sha1 s\xe9cret\n";
    const RES: &[u8] = b"alice Marker::a Marker::caf\xe9 # \xb5\xce\n";

    fn run(hacf: &[u8], keys: &[u8], res: &[u8]) -> (Option<Config>, Vec<Diagnostic>) {
        check(
            hacf,
            Path::new("/etc/ha.d//ha.cf"),
            keys,
            Path::new("/etc/ha.d//authkeys"),
            None,
            Ok(res),
            Path::new("/etc/ha.d//haresources"),
            "alice",
            None,
            true,
        )
    }

    #[test]
    fn legacy_encodings_in_all_three_files_are_read_and_values_kept_byte_for_byte() {
        let (cfg, diags) = run(HACF, KEYS, RES);
        let cfg = cfg.unwrap_or_else(|| panic!("{diags:?}"));
        assert!(!has_errors(&diags));
        assert_eq!(cfg.hacf.keepalive_ms, 2000);
        assert_eq!(cfg.hacf.deadtime_ms, 10000);
        assert_eq!(
            cfg.hacf
                .logfile
                .as_deref()
                .map(|p| p.as_os_str().as_bytes()),
            Some(&b"/var/log/h\xe9.log"[..])
        );
        assert_eq!(cfg.authkeys.active_key().key, b"s\xe9cret");
        assert_eq!(
            bytes::encode(&cfg.groups[0].resources[1].args[0]),
            b"caf\xe9"
        );
    }

    #[test]
    fn a_bom_is_ignored_with_a_warning_in_each_file() {
        let with_bom = |b: &[u8]| [bytes::BOM, b].concat();
        let (cfg, diags) = run(&with_bom(HACF), &with_bom(KEYS), &with_bom(RES));
        assert!(cfg.is_some(), "{diags:?}");
        let boms: Vec<String> = diags
            .iter()
            .filter(|d| d.message.contains("byte-order mark"))
            .map(|d| d.to_string())
            .collect();
        assert_eq!(boms.len(), 3, "{boms:?}");
        assert!(boms[0].starts_with("/etc/ha.d//ha.cf:1: warning: "));
        // A BOM right before a directive: the directive is still read.
        let (cfg, diags) = run(&with_bom(b"node alice\nucast hb0 10.0.0.2\n"), KEYS, RES);
        assert!(cfg.is_some(), "{diags:?}");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_escaped_in_messages() {
        let (cfg, diags) = run(
            b"node alice\nucast hb0 10.0.0.2\nk\xe9epalive 2\n",
            KEYS,
            RES,
        );
        assert!(cfg.is_none());
        let shown: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert!(
            shown.contains(
                &"/etc/ha.d//ha.cf:3: error: Illegal directive [k\\xe9epalive] in \
                  /etc/ha.d//ha.cf (did you mean 'keepalive'?)"
                    .to_string()
            ),
            "{shown:?}"
        );
        // A node named in Latin-1 is taken, as 3.0.6 takes it; a duplicate shows escaped.
        let (cfg, diags) = run(
            b"node alice caf\xe9\nnode CAF\xe9\nucast hb0 10.0.0.2\n",
            KEYS,
            RES,
        );
        let cfg = cfg.expect("a Latin-1 node name is accepted");
        assert_eq!(bytes::encode(&cfg.hacf.nodes[1]), b"caf\xe9");
        let shown: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert!(
            shown
                .iter()
                .any(|d| d
                    .starts_with("/etc/ha.d//ha.cf:2: warning: node [caf\\xe9] is declared again")),
            "{shown:?}"
        );
    }
}
