//! Parsing of `ha.cf`, `authkeys` and `haresources`. Pure: every function takes text and a path
//! (used only in messages) and returns values or diagnostics that name file and line.

pub mod authkeys;
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
                self.message
            )
        } else {
            write!(f, "{}: {}: {}", self.file.display(), sev, self.message)
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

/// Parse and check ha.cf, authkeys and haresources together, collecting **every** problem
/// (what `heartbeat --check` prints). Pure: the caller reads the files and the system facts.
///
/// * `authkeys_mode_uid`: `(st_mode, owner uid, the daemon's uid)` of the keyfile, checked
///   with [`authkeys::check_mode`] and [`authkeys::check_owner`]; None skips both (tests).
///   A keyfile that cannot be opened is the caller's to report ([`authkeys::cannot_open`]).
/// * `haresources_text`: None when the file is missing, which is an error (worded as 3.0.6)
///   unless `manage_resources` is false (the `-M` flag: no resource management, haresources
///   neither read nor required).
/// * `node_name` and `local_ifaces`: as for [`hacf::parse`].
///
/// Diagnostics come file by file (ha.cf, authkeys, haresources), each in file order. The
/// closing lines 3.0.6 prints after them (`Configuration error, heartbeat not started.`) are
/// the caller's. Returns the configuration only when there is no error.
#[allow(clippy::too_many_arguments)]
pub fn check(
    hacf_text: &str,
    hacf_path: &Path,
    authkeys_text: &str,
    authkeys_path: &Path,
    authkeys_mode_uid: Option<(u32, u32, u32)>,
    haresources_text: Option<&str>,
    haresources_path: &Path,
    node_name: &str,
    local_ifaces: Option<&[String]>,
    manage_resources: bool,
) -> (Option<Config>, Vec<Diagnostic>) {
    let (hacf, mut diags) = hacf::parse_partial(
        hacf_text,
        hacf_path,
        node_name,
        local_ifaces,
        manage_resources,
    );

    if let Some((mode, owner, us)) = authkeys_mode_uid {
        if let Err(d) = authkeys::check_mode(mode, authkeys_path) {
            diags.push(d);
        }
        if let Err(d) = authkeys::check_owner(owner, us, authkeys_path) {
            diags.push(d);
        }
    }
    let (keys, key_diags) = authkeys::parse_report(authkeys_text, authkeys_path);
    diags.extend(key_diags);

    let mut groups = Vec::new();
    if manage_resources {
        match haresources_text {
            None => diags.extend(haresources::cannot_open(haresources_path)),
            Some(text) => {
                let (parsed, res_diags) =
                    haresources::parse_report(text, haresources_path, &hacf.nodes);
                diags.extend(res_diags);
                groups = parsed.unwrap_or_default();
            }
        }
    }

    match keys {
        Some(authkeys) if !has_errors(&diags) => (
            Some(Config {
                hacf,
                authkeys,
                groups,
            }),
            diags,
        ),
        _ => (None, diags),
    }
}
