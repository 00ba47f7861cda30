//! How the daemon's logging is set up: before the configuration is read, from ha.cf, and with a
//! fallback when ha.cf names no destination; and how configuration problems are logged.

use super::log as hblog;
use crate::cluster::LogLevel;
use crate::config::{Config, Diagnostic, Severity};

/// Logging before the configuration is known: stderr only.
pub fn init_config_phase_logging(debug: u32) {
    hblog::init(hblog::LogConfig {
        logfile: None,
        debugfile: None,
        facility: None,
        syslogmsgfmt: true,
        to_stderr: true,
        debug_level: debug,
        program: "heartbeat".into(),
        hostname: hblog::uname_nodename(),
    });
}

/// The log destinations ha.cf asks for.
pub fn log_config(cfg: &Config, debug: u32, to_stderr: bool) -> hblog::LogConfig {
    let h = &cfg.hacf;
    hblog::LogConfig {
        logfile: h.logfile.clone(),
        debugfile: h.debugfile.clone(),
        facility: h.logfacility.clone(),
        syslogmsgfmt: h.syslogmsgfmt,
        to_stderr,
        debug_level: debug.max(h.debug),
        program: "heartbeat".into(),
        hostname: hblog::uname_nodename(),
    }
}

/// The daemon's log destinations once it runs: what ha.cf asks for, or, when it names none
/// (no `logfile`, no `debugfile`, no syslog `logfacility`), stderr in the foreground (`-f`,
/// systemd: the journal) and syslog facility `daemon` when daemonized, so that no message is
/// lost. The second value is the warning to log at start in that case.
pub fn daemon_log_config(
    cfg: &Config,
    debug: u32,
    foreground: bool,
) -> (hblog::LogConfig, Option<String>) {
    let mut lc = log_config(cfg, debug, false);
    let syslog = lc
        .facility
        .as_deref()
        .is_some_and(|f| hblog::syslog_facility(f).is_some());
    if lc.logfile.is_some() || lc.debugfile.is_some() || syslog {
        return (lc, None);
    }
    let written = match lc.facility.as_deref() {
        Some(f) => format!("logfacility {f}"),
        None => "no logfacility".to_string(),
    };
    let warning = if foreground {
        lc.to_stderr = true;
        format!(
            "No log destination in ha.cf (no logfile, no debugfile, {written}): logging to stderr."
        )
    } else {
        lc.facility = Some(FALLBACK_FACILITY.to_string());
        format!(
            "No log destination in ha.cf (no logfile, no debugfile, {written}): logging to syslog facility {FALLBACK_FACILITY}."
        )
    };
    (lc, Some(warning))
}

/// Where a daemonized heartbeat logs when ha.cf names no destination.
pub const FALLBACK_FACILITY: &str = "daemon";

/// Log a diagnostic the way the daemon reports configuration problems.
pub fn log_diagnostic(d: &Diagnostic) {
    let level = match d.severity {
        Severity::Error => LogLevel::Error,
        Severity::Warning => LogLevel::Warn,
        Severity::Info => LogLevel::Info,
    };
    let text = if d.line > 0 {
        format!("{} ({}:{})", d.message, d.file.display(), d.line)
    } else {
        d.message.clone()
    };
    hblog::emit(level, &text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HaCf;

    fn cfg(logfile: Option<&str>, facility: Option<&str>) -> Config {
        let hacf = HaCf {
            logfile: logfile.map(std::path::PathBuf::from),
            logfacility: facility.map(str::to_string),
            ..HaCf::default()
        };
        Config {
            hacf,
            authkeys: crate::config::AuthKeys {
                active: 1,
                keys: Default::default(),
            },
            groups: Vec::new(),
        }
    }

    #[test]
    fn no_log_destination_falls_back_to_stderr_or_syslog() {
        for facility in [None, Some("none"), Some("kern")] {
            let (lc, w) = daemon_log_config(&cfg(None, facility), 0, true);
            assert!(lc.to_stderr, "{facility:?}");
            assert!(w.expect("warning").contains("logging to stderr"));
            let (lc, w) = daemon_log_config(&cfg(None, facility), 0, false);
            assert!(!lc.to_stderr);
            assert_eq!(lc.facility.as_deref(), Some(FALLBACK_FACILITY));
            assert!(w
                .expect("warning")
                .contains("logging to syslog facility daemon"));
        }
    }

    #[test]
    fn a_configured_destination_is_left_alone() {
        for c in [
            cfg(Some("/var/log/ha-log"), None),
            cfg(None, Some("local7")),
        ] {
            for fg in [true, false] {
                let (lc, w) = daemon_log_config(&c, 0, fg);
                assert!(w.is_none());
                assert!(!lc.to_stderr);
                assert_eq!(lc.facility, c.hacf.logfacility);
            }
        }
    }
}
