//! `heartbeat`: the daemon, with the original's flags (`-f -k -s -r -d -V -D -M -l`) plus
//! `--check` and the path overrides used by tests and demos.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use heartbeat::runtime::options::Options;
use heartbeat::runtime::os::paths::Paths;
use heartbeat::runtime::{self, cli};

#[derive(Parser, Debug)]
#[command(
    name = "heartbeat",
    disable_version_flag = true,
    term_width = 80,
    about = "Heartbeat v1 failover daemon (drop-in for Heartbeat 3.0.6)"
)]
struct Args {
    /// Stay in the foreground (systemd, tests).
    #[arg(verbatim_doc_comment, short = 'f', long = "foreground")]
    foreground: bool,
    /// Stop the running daemon (SIGTERM, then wait until
    /// it is gone).
    #[arg(verbatim_doc_comment, short = 'k')]
    kill: bool,
    /// Report whether the daemon runs (exit 0 running, 3
    /// stopped, 1 stale pid file).
    #[arg(verbatim_doc_comment, short = 's')]
    status: bool,
    /// Check the configuration, then make the running
    /// daemon reread it (SIGHUP).
    #[arg(verbatim_doc_comment, short = 'r')]
    reload: bool,
    /// Raise the debug level (repeatable).
    #[arg(verbatim_doc_comment, short = 'd', action = clap::ArgAction::Count)]
    debug: u8,
    /// Print the table of ha.cf defaults and exit.
    #[arg(verbatim_doc_comment, short = 'D')]
    defaults: bool,
    /// With -D: wiki-table output.
    #[arg(verbatim_doc_comment, short = 'W')]
    wiki: bool,
    /// Print the effective configuration (defaults and
    /// derived timings included) before starting or after
    /// --check.
    #[arg(verbatim_doc_comment, short = 'v')]
    verbose: bool,
    /// Print the version and exit.
    #[arg(verbatim_doc_comment, short = 'V', long = "version")]
    version: bool,
    /// Do not manage resources (haresources is not read).
    #[arg(verbatim_doc_comment, short = 'M')]
    no_resources: bool,
    /// Do not lock memory or use realtime scheduling.
    #[arg(verbatim_doc_comment, short = 'l')]
    no_realtime: bool,
    /// Internal to the original (re-exec of a running
    /// daemon); accepted for compatibility.
    #[arg(verbatim_doc_comment, short = 'R')]
    restart_exec: bool,
    /// Internal to the original, only with -R: resources
    /// currently held.
    #[arg(verbatim_doc_comment, short = 'C', value_name = "STATE")]
    current_resources: Option<String>,
    /// Read ha.cf, authkeys and haresources, print every
    /// problem with file:line, and exit 6 if there is any
    /// error. Nothing else starts.
    #[arg(verbatim_doc_comment, long)]
    check: bool,
    /// Write the configuration for another engine
    /// (pacemaker: corosync.conf, authkey, CIB as XML,
    /// crm and pcs; keepalived: keepalived.conf per node)
    /// and a REPORT.txt of what could not be carried
    /// over. Nothing else starts.
    #[arg(verbatim_doc_comment, long, value_name = "ENGINE",
          value_parser = ["pacemaker", "keepalived"], hide_possible_values = true)]
    export: Option<String>,
    /// With --export: the directory to write (default
    /// ./heartbeat-export-ENGINE).
    #[arg(verbatim_doc_comment, long, value_name = "DIR", requires = "export")]
    output: Option<PathBuf>,
    /// With --export: a node's address on each link, in
    /// link order (repeatable), for what ha.cf does not
    /// say (bcast and mcast media name no address).
    #[arg(
        verbatim_doc_comment,
        long,
        value_name = "NODE=ADDR[,ADDR...]",
        requires = "export"
    )]
    node_address: Vec<String>,
    /// Run every node of ha.cf through a scenario on a
    /// simulated network and clock and print a timeline:
    /// where each group runs after each step, the scripts
    /// each node would run, takeover times. Exit 1 if a
    /// group runs twice or nowhere. Nothing runs or is
    /// sent. Default steps: each node killed and back,
    /// stopped and back, standby and takeover on each, a
    /// partition and its heal.
    #[arg(verbatim_doc_comment, long)]
    simulate: bool,
    /// With --simulate: one step instead of the default
    /// scenario (repeatable, in order): start NODE...,
    /// kill NODE, stop NODE, standby NODE [WHICH],
    /// takeover NODE [WHICH], partition NODE [NODE...],
    /// oneway FROM TO, heal, wait TIME. WHICH is all,
    /// foreign, local or failback; TIME as in ha.cf (10,
    /// 500ms) or 10s.
    #[arg(verbatim_doc_comment, long, value_name = "STEP", requires = "simulate")]
    step: Vec<String>,
    /// With --simulate: how long each resource script run
    /// is assumed to take (default 2s).
    #[arg(verbatim_doc_comment, long, value_name = "TIME", requires = "simulate")]
    script_time: Option<String>,
    /// With --simulate: the seed of the simulated network's
    /// randomness (default 1; the same seed, the same run).
    #[arg(verbatim_doc_comment, long, value_name = "N", requires = "simulate")]
    seed: Option<u64>,
    /// With --simulate: print the report as JSON.
    #[arg(verbatim_doc_comment, long, requires = "simulate")]
    json: bool,
    /// Configuration directory (default /etc/ha.d).
    #[arg(verbatim_doc_comment, long, value_name = "DIR")]
    confdir: Option<PathBuf>,
    /// State directory (default /var/lib/heartbeat).
    #[arg(verbatim_doc_comment, long, value_name = "DIR")]
    statedir: Option<PathBuf>,
    /// Runtime directory (default /run): pid file and
    /// control socket.
    #[arg(verbatim_doc_comment, long, value_name = "DIR")]
    rundir: Option<PathBuf>,
    /// This node's name (default: /etc/ha.d/nodeinfo,
    /// else uname -n).
    /// Any bytes, as a host name may be (Latin-1).
    #[arg(verbatim_doc_comment, long, value_name = "NAME")]
    node: Option<std::ffi::OsString>,
    /// Bind the UDP sockets to this local address
    /// (several nodes on one host).
    #[arg(verbatim_doc_comment, long, value_name = "ADDR")]
    bind: Option<std::net::IpAddr>,
    /// Write the metrics (Prometheus text format) to this
    /// file every 15 s, for node_exporter's textfile
    /// collector (name it *.prom; replaced atomically).
    #[arg(verbatim_doc_comment, long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
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
    let opts = Options {
        paths,
        node: args.node.as_ref().map(|n| {
            use std::os::unix::ffi::OsStrExt;
            heartbeat::config::bytes::decode(n.as_bytes())
        }),
        bind: args.bind,
        foreground: args.foreground,
        debug: u32::from(args.debug),
        manage_resources: !args.no_resources,
        realtime: !args.no_realtime,
        verbose: args.verbose,
        metrics_file: args.metrics_file.clone().map(absolute),
    };
    let code = if args.defaults {
        cli::print_defaults(args.wiki)
    } else if args.simulate {
        let sim = cli::SimulateOptions {
            steps: &args.step,
            script_time: args.script_time.as_deref(),
            seed: args.seed.unwrap_or(1),
            json: args.json,
        };
        cli::simulate(&opts, &sim)
    } else if let Some(engine) = &args.export {
        cli::export(&opts, engine, args.output.as_deref(), &args.node_address)
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
