//! `hb_standby` and `hb_takeover`: the original's arguments, output and exit codes, sending
//! their request over the control socket instead of the FIFO (so they fail at once, instead
//! of hanging for ever, when the daemon is not running).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::runtime::control::{self, Answer, ClientError, Request, Which};
use crate::runtime::log as hblog;
use crate::runtime::os::paths::Paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Standby,
    Takeover,
}

/// What to print and the exit code.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Split off `--rundir DIR` (our addition, before the argument) or `HA_RUNDIR`.
pub fn rundir_and_args(mut args: Vec<String>) -> (PathBuf, Vec<String>) {
    let mut rundir = std::env::var_os("HA_RUNDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    if args.first().map(String::as_str) == Some("--rundir") && args.len() >= 2 {
        rundir = Some(PathBuf::from(args.remove(1)));
        args.remove(0);
    }
    (rundir.unwrap_or_else(|| Paths::default().rundir), args)
}

fn usage(prog: &str) -> String {
    format!("{prog} [all|foreign|local|failback]\n")
}

/// Check the arguments as the original scripts do. `prog` is the program path as invoked.
pub fn parse(prog: &str, args: &[String]) -> Result<Which, Outcome> {
    let fail = |first: String| Outcome {
        stdout: format!("{first}\nusage:\n"),
        stderr: usage(prog),
        code: 1,
    };
    match args {
        [] => Ok(Which::All),
        [one] => match Which::parse(one) {
            Some(w) => Ok(w),
            None if one == "--help" || one == "-h" => Err(Outcome {
                stdout: "usage:\n".into(),
                stderr: usage(prog),
                code: 1,
            }),
            None => Err(fail(format!("{prog}: wrong resources({one})."))),
        },
        _ => Err(fail(format!("{prog}: too many arguments"))),
    }
}

/// Run one command against the daemon whose run directory is `rundir`.
pub fn run(cmd: Command, prog: &str, args: &[String], rundir: &Path) -> Outcome {
    let which = match parse(prog, args) {
        Ok(w) => w,
        Err(o) => return o,
    };
    let request = match cmd {
        Command::Standby => Request::Standby(which),
        Command::Takeover => Request::Takeover(which),
    };
    let paths = Paths {
        rundir: rundir.to_path_buf(),
        ..Paths::default()
    };
    let failed = |why: String| Outcome {
        stderr: format!("{prog}: {why}\n"),
        code: 1,
        ..Outcome::default()
    };
    let socket = paths.control_socket();
    let mut note = String::new();
    match control::ask(&socket, request, Duration::from_secs(5)) {
        Ok(Answer::Ok(rest)) => {
            let line = rest.lines().next().unwrap_or("");
            if !line.is_empty() {
                let text = crate::status::unescape(line).unwrap_or_else(|_| line.to_string());
                note = format!("{prog}: {text}\n");
            }
        }
        Ok(Answer::Closed) => {
            return failed("heartbeat is still starting (communication is not up yet)".into())
        }
        Ok(Answer::Refused) | Err(ClientError::Denied) => {
            return failed("permission denied (root or group haclient only)".into())
        }
        Ok(Answer::Error(e)) => return failed(e),
        Err(ClientError::NotRunning(e)) => {
            return failed(format!(
                "Heartbeat is not currently running.\n{prog}: {}",
                control::not_reached_hint(&socket, &e)
            ))
        }
        Err(ClientError::Timeout) => return failed("no answer from heartbeat".into()),
        Err(ClientError::Protocol(p)) => {
            return failed(format!("unexpected answer from heartbeat: {p}"))
        }
    }
    match cmd {
        Command::Takeover => Outcome {
            stderr: note,
            ..Outcome::default()
        },
        Command::Standby => {
            // `failback` means `foreign`, as the original says it.
            let shown = if which == Which::Failback {
                "foreign"
            } else {
                which.as_str()
            };
            let text = format!("Going standby [{shown}].");
            let line = if std::io::stderr().is_terminal() {
                text
            } else {
                let tm = hblog::local_time(now_secs());
                format!(
                    "{} {:02} {:02}:{:02}:{:02} {text}",
                    MONTHS[(tm.month as usize).saturating_sub(1) % 12],
                    tm.day,
                    tm.hour,
                    tm.minute,
                    tm.second
                )
            };
            Outcome {
                stderr: format!("{line}\n{note}"),
                ..Outcome::default()
            }
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The whole program, for the two thin binaries.
pub fn main(cmd: Command) -> std::process::ExitCode {
    use std::io::Write;
    control::init_tool_logging();
    let mut argv = std::env::args();
    let prog = argv.next().unwrap_or_else(|| match cmd {
        Command::Standby => "hb_standby".into(),
        Command::Takeover => "hb_takeover".into(),
    });
    let (rundir, args) = rundir_and_args(argv.collect());
    let o = run(cmd, &prog, &args, &rundir);
    let _ = std::io::stdout().write_all(o.stdout.as_bytes());
    let _ = std::io::stderr().write_all(o.stderr.as_bytes());
    std::process::ExitCode::from(o.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn arguments_as_the_original() {
        let p = "/usr/share/heartbeat/hb_standby";
        assert_eq!(parse(p, &[]), Ok(Which::All));
        assert_eq!(parse(p, &s(&["failback"])), Ok(Which::Failback));
        let bad = parse(p, &s(&["bogus"])).unwrap_err();
        assert_eq!(
            bad.stdout,
            format!("{p}: wrong resources(bogus).\nusage:\n")
        );
        assert_eq!(bad.stderr, format!("{p} [all|foreign|local|failback]\n"));
        assert_eq!(bad.code, 1);
        let two = parse(p, &s(&["a", "b"])).unwrap_err();
        assert!(two.stdout.starts_with(&format!("{p}: too many arguments")));
        assert_eq!(parse(p, &s(&["--help"])).unwrap_err().code, 1);
    }

    #[test]
    fn no_daemon_fails_at_once() {
        let dir = std::env::temp_dir().join(format!("hb-admin-{}", std::process::id()));
        let o = run(Command::Standby, "hb_standby", &[], &dir);
        assert_eq!(o.code, 1);
        assert!(o.stderr.contains("not currently running"), "{o:?}");
        // The socket it tried, and how to name another run directory.
        assert!(o
            .stderr
            .contains(&dir.join("heartbeat/control").display().to_string()));
        assert!(o.stderr.contains("--rundir DIR or HA_RUNDIR=DIR"), "{o:?}");
    }
}
