//! `heartbeat`: the daemon, with the original's flags (`-f -k -s -r -d -V -D -M -l`) plus
//! `--check` and the path overrides used by tests and demos.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use heartbeat::runtime::paths::Paths;
use heartbeat::runtime::{self, cli};

#[derive(Parser, Debug)]
#[command(
    name = "heartbeat",
    disable_version_flag = true,
    about = "Heartbeat v1 failover daemon (drop-in for Heartbeat 3.0.6)"
)]
struct Args {
    /// Stay in the foreground (systemd, tests).
    #[arg(short = 'f', long = "foreground")]
    foreground: bool,
    /// Stop the running daemon (SIGTERM, then wait until it is gone).
    #[arg(short = 'k')]
    kill: bool,
    /// Report whether the daemon runs (exit 0 running, 3 stopped, 1 stale pid file).
    #[arg(short = 's')]
    status: bool,
    /// Check the configuration, then make the running daemon reread it (SIGHUP).
    #[arg(short = 'r')]
    reload: bool,
    /// Raise the debug level (repeatable).
    #[arg(short = 'd', action = clap::ArgAction::Count)]
    debug: u8,
    /// Print the table of ha.cf defaults and exit.
    #[arg(short = 'D')]
    defaults: bool,
    /// With -D: wiki-table output.
    #[arg(short = 'W')]
    wiki: bool,
    /// Print the parsed configuration before starting.
    #[arg(short = 'v')]
    verbose: bool,
    /// Print the version and exit.
    #[arg(short = 'V')]
    version: bool,
    /// Do not manage resources (haresources is not read).
    #[arg(short = 'M')]
    no_resources: bool,
    /// Do not lock memory or use realtime scheduling.
    #[arg(short = 'l')]
    no_realtime: bool,
    /// Internal to the original (re-exec of a running daemon); accepted for compatibility.
    #[arg(short = 'R')]
    restart_exec: bool,
    /// Internal to the original, only with -R: resources currently held.
    #[arg(short = 'C', value_name = "STATE")]
    current_resources: Option<String>,
    /// Read ha.cf, authkeys and haresources, print every problem with file:line, and exit
    /// non-zero if there is any error. Nothing else starts.
    #[arg(long)]
    check: bool,
    /// Configuration directory (default /etc/ha.d).
    #[arg(long, value_name = "DIR")]
    confdir: Option<PathBuf>,
    /// State directory (default /var/lib/heartbeat).
    #[arg(long, value_name = "DIR")]
    statedir: Option<PathBuf>,
    /// Runtime directory (default /run): pid file and control socket.
    #[arg(long, value_name = "DIR")]
    rundir: Option<PathBuf>,
    /// This node's name (default: /etc/ha.d/nodeinfo, else uname -n).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Bind the UDP sockets to this local address (several nodes on one host).
    #[arg(long, value_name = "ADDR")]
    bind: Option<std::net::IpAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.current_resources.is_some() && !args.restart_exec {
        eprintln!(
            "Usage: heartbeat [-dDkMrRsvWlVf] [-C Current-resource-state]\n\t-C only valid with -R"
        );
        return ExitCode::from(2);
    }
    if args.version {
        println!("{}", runtime::VERSION_STRING);
        return ExitCode::SUCCESS;
    }
    let defaults = Paths::default();
    // The daemon works in <statedir>/cores/root: relative paths would stop meaning anything.
    let absolute = |p: PathBuf| match std::env::current_dir() {
        Ok(cwd) if p.is_relative() => cwd.join(p),
        _ => p,
    };
    let paths = Paths {
        confdir: absolute(args.confdir.clone().unwrap_or(defaults.confdir)),
        statedir: absolute(args.statedir.clone().unwrap_or(defaults.statedir)),
        rundir: absolute(args.rundir.clone().unwrap_or(defaults.rundir)),
    };
    let opts = cli::Options {
        paths,
        node: args.node.clone(),
        bind: args.bind,
        foreground: args.foreground,
        debug: u32::from(args.debug),
        manage_resources: !args.no_resources,
        realtime: !args.no_realtime,
        verbose: args.verbose,
    };
    let code = if args.defaults {
        cli::print_defaults(args.wiki)
    } else if args.check {
        cli::check(&opts)
    } else if args.kill {
        cli::stop(&opts)
    } else if args.status {
        cli::status(&opts)
    } else if args.reload {
        cli::reload(&opts)
    } else if args.restart_exec {
        cli::restart_exec(&opts)
    } else {
        cli::start(&opts)
    };
    ExitCode::from(code)
}
