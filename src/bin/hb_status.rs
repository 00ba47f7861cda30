//! `hb_status`: the operator's overview of a running node (nodes with status and generation,
//! links with the age of the last packet heard, where each resource group runs or whether it
//! is moving, the mode, the last takeover and release with their durations), as text or
//! JSON, once or repeatedly; and the metrics in Prometheus text format. Served by the
//! daemon's control socket (`cl_status` stays 3.0.6's tool, byte for byte).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use heartbeat::runtime::control::{self, Answer, ClientError, Request};
use heartbeat::runtime::log as hblog;
use heartbeat::runtime::os::paths::Paths;
use heartbeat::status::ops::Overview;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Parser, Debug)]
#[command(
    name = "hb_status",
    version = heartbeat::runtime::VERSION_STRING,
    term_width = 80,
    about = "Overview of a running heartbeat node: nodes, links, resource groups, takeovers"
)]
struct Args {
    /// Print the overview as JSON (one object; with
    /// --watch, one object per line).
    #[arg(verbatim_doc_comment, long)]
    json: bool,
    /// Print the metrics in Prometheus text format instead.
    #[arg(verbatim_doc_comment, long, conflicts_with = "json")]
    metrics: bool,
    /// Repeat every --interval seconds until interrupted.
    #[arg(verbatim_doc_comment, short = 'w', long)]
    watch: bool,
    /// Seconds between two views with --watch
    /// (default 2).
    #[arg(
        verbatim_doc_comment,
        long,
        value_name = "SECS",
        default_value_t = 2.0,
        hide_default_value = true
    )]
    interval: f64,
    /// Colour the text: auto (on a terminal, the
    /// default), always, never.
    #[arg(verbatim_doc_comment, long, value_enum, default_value_t = Color::Auto,
          hide_default_value = true, hide_possible_values = true)]
    color: Color,
    /// The daemon's run directory (default /run, or
    /// $HA_RUNDIR), as given to heartbeat --rundir.
    #[arg(verbatim_doc_comment, long, value_name = "DIR")]
    rundir: Option<PathBuf>,
}

fn local(unix: u64) -> String {
    let t = hblog::local_time(unix as i64);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// One view: the text to print, or the error message.
fn view(args: &Args, socket: &std::path::Path, color: bool) -> Result<String, String> {
    let req = if args.metrics {
        Request::Metrics
    } else {
        Request::Overview
    };
    let text = match control::ask(socket, req, Duration::from_secs(5)) {
        Ok(Answer::Ok(text)) => text,
        Ok(Answer::Refused) | Err(ClientError::Denied) => {
            return Err("permission denied (root or group haclient only)".into())
        }
        Ok(Answer::Closed) => return Err("heartbeat is not serving yet".into()),
        Ok(Answer::Error(e)) => {
            return Err(format!(
                "heartbeat answered: {e} (a daemon older than hb_status?)"
            ))
        }
        Err(ClientError::NotRunning(e)) => {
            return Err(format!(
                "Heartbeat is not currently running.\nhb_status: {}",
                control::not_reached_hint(socket, &e)
            ))
        }
        Err(ClientError::Timeout) => return Err("no answer from heartbeat".into()),
        Err(ClientError::Protocol(p)) => return Err(format!("unexpected answer: {p}")),
    };
    if args.metrics {
        return Ok(text);
    }
    let o = Overview::from_json(&text).map_err(|e| format!("unreadable overview: {e}"))?;
    Ok(if args.json {
        if args.watch {
            format!("{}\n", serde_json::to_string(&o).unwrap_or_default())
        } else {
            format!("{}\n", o.to_json())
        }
    } else {
        o.to_text(color, &local)
    })
}

fn main() -> ExitCode {
    control::init_tool_logging();
    let args = Args::parse();
    let rundir = args
        .rundir
        .clone()
        .or_else(|| {
            std::env::var_os("HA_RUNDIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| Paths::default().rundir);
    let paths = Paths {
        rundir,
        ..Paths::default()
    };
    let socket = paths.control_socket();
    let tty = std::io::stdout().is_terminal();
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => tty && std::env::var_os("NO_COLOR").is_none(),
    };
    let interval = Duration::from_secs_f64(args.interval.clamp(0.1, 3600.0));
    loop {
        let result = view(&args, &socket, color);
        let mut out = std::io::stdout().lock();
        match result {
            Ok(text) => {
                if args.watch && tty && !args.json {
                    // Clear the screen, cursor home.
                    let _ = out.write_all(b"\x1b[2J\x1b[H");
                }
                // Bytes of a legacy node name shown as `\xNN`, never as garbled text.
                let text = if args.json {
                    heartbeat::config::bytes::escape_as(&text, "\\\\x")
                } else {
                    heartbeat::config::bytes::escape(&text)
                };
                if out
                    .write_all(text.as_bytes())
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    return ExitCode::SUCCESS; // stdout closed (| head)
                }
            }
            Err(e) => {
                eprintln!("hb_status: {e}");
                if !args.watch {
                    return ExitCode::from(1);
                }
            }
        }
        if !args.watch {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(interval);
    }
}
