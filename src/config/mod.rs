//! Parsing of `ha.cf`, `authkeys` and `haresources`. Pure: every function takes text and a path
//! (used only in messages) and returns values or diagnostics that name file and line.

pub mod authkeys;
pub mod duration;
pub mod hacf;
pub mod haresources;

use std::fmt;
use std::path::{Path, PathBuf};

pub use authkeys::{AuthKey, AuthKeys, AuthMethod};
pub use hacf::{AutoFailback, HaCf, Medium, MediumKind, MsgFmt};
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
