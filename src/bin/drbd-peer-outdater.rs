//! `drbd-peer-outdater [-t <seconds>] [-p <peer>] [-r <resource>]`: DRBD's `fence-peer`
//! handler. Asks the daemon's built-in dopd (over the control socket) to outdate `resource` on
//! `peer` and exits with the answer, as 3.0.6's tool does: 3 the peer's disk is inconsistent,
//! 4 outdated, 5 the peer is down or unreachable (also: no daemon, no answer in time), 6 the
//! peer is primary, 20 unspecified error, 21 another outdater for the resource is waiting.
//! `-p` and `-r` default to `$DRBD_PEER` and `$DRBD_RESOURCE`, which DRBD sets. `-V` is
//! accepted (more debug output in the original). The run directory is `$HA_RUNDIR` or
//! `--rundir DIR` (first argument), as for `hb_standby`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use heartbeat::runtime::control::admin::rundir_and_args;
use heartbeat::runtime::control::{self, Answer, ClientError, Request};
use heartbeat::runtime::os::paths::Paths;
use heartbeat::wire::messages::atoi;

const PROG: &str = "drbd-peer-outdater";
/// The original's default time limit, in seconds.
const DEFAULT_TIMEOUT: i64 = 60;
/// Exit codes (DRBD's fence-peer handler convention).
const EXIT_UNREACHABLE: u8 = 5;
const EXIT_UNSPECIFIED: u8 = 20;

#[derive(Debug, PartialEq, Eq)]
struct Options {
    timeout: i64,
    peer: String,
    resource: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Run(Options),
    /// `-h`: usage on stdout, exit 0.
    Help,
    /// Usage on stderr, exit 1; the complaints first.
    Usage(Vec<String>),
}

fn usage() -> String {
    format!(
        "usage: {PROG} -r <string> -p <string> [-t <int>]\n\
         \t-p <string>\tdrbd peer\n\
         \t-r <string>\tdrbd resource\n\
         \t-t <int>\ttimeout in seconds; default: {DEFAULT_TIMEOUT}\n\n\
         The drbd peer and drbd resource have to be specified either on the\n\
         commandline using the -p and -r options, or using the $DRBD_PEER and\n\
         $DRBD_RESOURCE environment variables. $DRBD_RESOURCE and $DRBD_PEER\n\
         will be ignored, if the command line options are used.\n"
    )
}

/// Options as getopt("hVt:p:r:") reads them (GNU: options may follow other arguments, which
/// are ignored; `--` ends them), then the environment for what is missing.
fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Parsed {
    let mut errors = Vec::new();
    let (mut timeout, mut peer, mut resource) = (DEFAULT_TIMEOUT, None, None);
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            break;
        }
        if !a.starts_with('-') || a == "-" {
            continue;
        }
        for (pos, c) in a[1..].char_indices() {
            match c {
                'h' => return Parsed::Help,
                'V' => {}
                't' | 'p' | 'r' => {
                    let rest = &a[1 + pos + c.len_utf8()..];
                    let value = if !rest.is_empty() {
                        rest.to_string()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        errors.push(format!("{PROG}: option requires an argument -- '{c}'"));
                        break;
                    };
                    match c {
                        't' => timeout = atoi(&value),
                        'p' => peer = Some(value),
                        _ => resource = Some(value),
                    }
                    break;
                }
                other => errors.push(format!("{PROG}: invalid option -- '{other}'")),
            }
        }
    }
    let peer = peer.or_else(|| env("DRBD_PEER"));
    let resource = resource.or_else(|| env("DRBD_RESOURCE"));
    match (peer, resource) {
        (Some(peer), Some(resource)) if errors.is_empty() => Parsed::Run(Options {
            timeout,
            peer,
            resource,
        }),
        _ => Parsed::Usage(errors),
    }
}

/// The exit code for the daemon's answer (or its absence), and what to print on stderr.
fn outcome(answer: Result<Answer, ClientError>, timeout: i64) -> (u8, Option<String>) {
    let unreachable = |why: String| (EXIT_UNREACHABLE, Some(why));
    match answer {
        Ok(Answer::Ok(rest)) => {
            let line = rest.lines().next().unwrap_or("");
            match line.parse::<u8>() {
                Ok(code) => (code, None),
                Err(_) => (
                    EXIT_UNSPECIFIED,
                    Some(format!("unknown message: {line} from server")),
                ),
            }
        }
        Ok(Answer::Closed) => unreachable("Could not connect to outdater channel".into()),
        Ok(Answer::Refused) | Err(ClientError::Denied) => {
            unreachable("Could not connect to outdater channel (permission denied)".into())
        }
        Ok(Answer::Error(e)) => unreachable(format!("no message from server: {e}")),
        Err(ClientError::NotRunning(_)) => {
            unreachable("Could not connect to outdater channel".into())
        }
        Err(ClientError::Timeout) => unreachable(format!(
            "error: could not connect to dopd after {timeout} seconds: timeout reached"
        )),
        Err(ClientError::Protocol(p)) => unreachable(format!("no message from server: {p}")),
    }
}

fn main() -> ExitCode {
    let (rundir, args) = rundir_and_args(std::env::args().skip(1).collect());
    let opts = match parse(&args, |k| std::env::var(k).ok()) {
        Parsed::Run(o) => o,
        Parsed::Help => {
            print!("{}", usage());
            let _ = std::io::stdout().flush();
            return ExitCode::SUCCESS;
        }
        Parsed::Usage(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            eprint!("{}", usage());
            return ExitCode::from(1);
        }
    };
    let paths = Paths {
        rundir,
        ..Paths::default()
    };
    let secs = opts.timeout.max(0) as u64;
    let request = Request::Outdate {
        peer: opts.peer.clone(),
        resource: opts.resource.clone(),
        wait_secs: secs,
    };
    // A zero limit is not a socket timeout; the smallest one gives up at once as well.
    let limit = Duration::from_secs(secs).max(Duration::from_millis(1));
    let (code, why) = outcome(
        control::ask(&paths.control_socket(), request, limit),
        opts.timeout,
    );
    if let Some(why) = why {
        eprintln!("{why}");
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn run(timeout: i64, peer: &str, resource: &str) -> Parsed {
        Parsed::Run(Options {
            timeout,
            peer: peer.into(),
            resource: resource.into(),
        })
    }

    #[test]
    fn options_as_getopt_reads_them() {
        assert_eq!(
            parse(&args(&["-t", "5", "-p", "bob", "-r", "r0"]), no_env),
            run(5, "bob", "r0")
        );
        // Attached values, clustered flags, options after other arguments.
        assert_eq!(
            parse(&args(&["-Vt5", "x", "-pbob", "-r", "r0"]), no_env),
            run(5, "bob", "r0")
        );
        // `--` ends the options.
        assert_eq!(
            parse(&args(&["-p", "bob", "-r", "r0", "--", "-t", "9"]), no_env),
            run(60, "bob", "r0")
        );
        // -h wins wherever it is.
        assert_eq!(parse(&args(&["-p", "bob", "-h"]), no_env), Parsed::Help);
    }

    #[test]
    fn timeout_is_read_like_atoi() {
        let t = |v: &str| match parse(&args(&["-t", v, "-p", "b", "-r", "r"]), no_env) {
            Parsed::Run(o) => o.timeout,
            other => panic!("{other:?}"),
        };
        assert_eq!(t("5"), 5);
        assert_eq!(t(" 7s"), 7);
        assert_eq!(t("abc"), 0);
        assert_eq!(t("-3"), -3);
        assert_eq!(t("+4"), 4);
    }

    #[test]
    fn environment_fills_in_and_options_win() {
        let env = |k: &str| match k {
            "DRBD_PEER" => Some("envpeer".to_string()),
            "DRBD_RESOURCE" => Some("envres".to_string()),
            _ => None,
        };
        assert_eq!(parse(&args(&["-t", "5"]), env), run(5, "envpeer", "envres"));
        assert_eq!(parse(&args(&["-p", "bob"]), env), run(60, "bob", "envres"));
        assert_eq!(parse(&args(&["-r", "r1"]), env), run(60, "envpeer", "r1"));
    }

    #[test]
    fn missing_or_bad_options_give_usage() {
        assert_eq!(parse(&args(&["-r", "r0"]), no_env), Parsed::Usage(vec![]));
        assert_eq!(parse(&args(&["-p", "bob"]), no_env), Parsed::Usage(vec![]));
        assert_eq!(
            parse(&args(&["-p", "bob", "-r", "r0", "-x"]), no_env),
            Parsed::Usage(vec![format!("{PROG}: invalid option -- 'x'")])
        );
        assert_eq!(
            parse(&args(&["-p", "bob", "-r", "r0", "-t"]), no_env),
            Parsed::Usage(vec![format!("{PROG}: option requires an argument -- 't'")])
        );
        assert!(usage().starts_with("usage: drbd-peer-outdater -r <string> -p <string>"));
    }

    #[test]
    fn answers_become_exit_codes() {
        assert_eq!(outcome(Ok(Answer::Ok("4\n".into())), 5), (4, None));
        assert_eq!(outcome(Ok(Answer::Ok("21\n".into())), 5), (21, None));
        assert_eq!(outcome(Ok(Answer::Ok("x\n".into())), 5).0, 20);
        assert_eq!(outcome(Ok(Answer::Closed), 5).0, 5);
        assert_eq!(outcome(Ok(Answer::Refused), 5).0, 5);
        let (code, why) = outcome(Err(ClientError::Timeout), 5);
        assert_eq!(code, 5);
        assert_eq!(
            why.as_deref(),
            Some("error: could not connect to dopd after 5 seconds: timeout reached")
        );
        let gone = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(outcome(Err(ClientError::NotRunning(gone)), 5).0, 5);
    }
}
