//! `cl_status`: Heartbeat 3.0.6's status tool, same command line, output and exit codes
//! (admin.md §6), talking to our daemon's control socket `<rundir>/heartbeat/control`.
//!
//! Additions: `--rundir DIR` (or `--rundir=DIR`) before the sub-command, or the environment
//! variable `HA_RUNDIR`, names the daemon's run directory (default `/run`), as the daemon's
//! own `--rundir` does.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use heartbeat::runtime::control::{self, Answer, ClientError, Request};
use heartbeat::runtime::log as hblog;
use heartbeat::runtime::os::paths::Paths;
use heartbeat::status::cl_status::{self, Contact, EXIT_TIMEOUT};
use heartbeat::status::ClusterView;

/// 3.0.6 gives up after this long, exit 12, saying nothing.
const GIVE_UP: Duration = Duration::from_secs(5);

/// Split off our `--rundir` option; the rest are cl_status's arguments.
fn rundir_and_args(raw: Vec<OsString>) -> (Option<PathBuf>, Vec<String>) {
    let mut args: Vec<String> = raw
        .into_iter()
        // A node name in any bytes (Latin-1), losslessly, as the daemon holds it.
        .map(|a| {
            use std::os::unix::ffi::OsStrExt;
            heartbeat::config::bytes::decode(a.as_bytes())
        })
        .collect();
    let mut rundir = std::env::var_os("HA_RUNDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    loop {
        match args.first().map(String::as_str) {
            Some("--rundir") if args.len() >= 2 => {
                rundir = Some(PathBuf::from(&args[1]));
                args.drain(..2);
            }
            Some(a) if a.starts_with("--rundir=") => {
                rundir = Some(PathBuf::from(&a["--rundir=".len()..]));
                args.remove(0);
            }
            _ => break,
        }
    }
    (rundir, args)
}

fn main() -> ExitCode {
    control::init_tool_logging();
    let (rundir, args) = rundir_and_args(std::env::args_os().skip(1).collect());
    let mut paths = Paths::default();
    if let Some(d) = rundir {
        paths.rundir = d;
    }
    let view: Option<ClusterView>;
    let socket = paths.control_socket();
    // 3.0.6's output stays byte-identical for scripts; a person at a terminal also learns
    // which socket was tried.
    let hint = |e: &std::io::Error| {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprintln!("cl_status: {}", control::not_reached_hint(&socket, e));
        }
    };
    let contact = if cl_status::needs_daemon(&args) {
        // Like 3.0.6's alarm: whatever hangs, stop after 5 s with exit 12.
        thread::spawn(|| {
            thread::sleep(GIVE_UP);
            std::process::exit(EXIT_TIMEOUT);
        });
        match control::ask(&paths.control_socket(), Request::Status, GIVE_UP) {
            Ok(Answer::Ok(text)) => {
                view = ClusterView::from_text(&text).ok();
                match &view {
                    Some(v) => Contact::Running(v),
                    None => Contact::NotRunning,
                }
            }
            Ok(Answer::Refused) | Err(ClientError::Denied) => Contact::Refused,
            Err(ClientError::Timeout) => return ExitCode::from(EXIT_TIMEOUT as u8),
            Err(ClientError::NotRunning(e)) => {
                hint(&e);
                Contact::NotRunning
            }
            Ok(Answer::Closed) | Ok(Answer::Error(_)) | Err(ClientError::Protocol(_)) => {
                Contact::NotRunning
            }
        }
    } else {
        Contact::NotRunning
    };
    let out = cl_status::run(&args, contact);

    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let tm = hblog::local_time(secs);
    let host = hblog::uname_nodename();
    let pid = std::process::id();
    let err = out.stderr_text(&|level, text| {
        hblog::format_line(true, &tm, &host, "cl_status", pid, level, text)
    });
    // A closed stdout or stderr (`cl_status ... | head -0`) is not our problem.
    // Node names go to stdout as their bytes, as 3.0.6 prints them (scripts compare them
    // with `uname -n`); the log-style lines on stderr show such bytes escaped.
    let _ = std::io::stdout()
        .lock()
        .write_all(&heartbeat::config::bytes::encode(&out.stdout));
    let _ = std::io::stderr()
        .lock()
        .write_all(heartbeat::config::bytes::escape(&err).as_bytes());
    ExitCode::from(u8::try_from(out.code).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn rundir_option() {
        let (d, a) = rundir_and_args(os(&["--rundir", "/tmp/x", "listnodes", "-v"]));
        assert_eq!(d, Some(PathBuf::from("/tmp/x")));
        assert_eq!(a, vec!["listnodes", "-v"]);
        let (d, a) = rundir_and_args(os(&["--rundir=/r", "hbstatus"]));
        assert_eq!(d, Some(PathBuf::from("/r")));
        assert_eq!(a, vec!["hbstatus"]);
        // Only before the sub-command, and a lone --rundir is an (invalid) sub-command.
        let (_, a) = rundir_and_args(os(&["hbstatus", "--rundir", "/r"]));
        assert_eq!(a, vec!["hbstatus", "--rundir", "/r"]);
        let (_, a) = rundir_and_args(os(&["--rundir"]));
        assert_eq!(a, vec!["--rundir"]);
    }
}
