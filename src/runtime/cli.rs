//! What each command-line mode of `heartbeat` does. The event loop itself is in
//! `event_loop.rs`; this is start-up, `--check`, `-k`, `-s`, `-r` and `-D`.

use std::net::IpAddr;

use super::paths::Paths;
use super::{daemon, event_loop, log as hblog, pidfile, startup};
use crate::cluster::LogLevel;
use crate::config::{Config, Diagnostic, Severity};
use crate::media::udp;

#[derive(Debug, Clone)]
pub struct Options {
    pub paths: Paths,
    pub node: Option<String>,
    pub bind: Option<IpAddr>,
    pub foreground: bool,
    pub debug: u32,
    pub manage_resources: bool,
    pub realtime: bool,
    pub verbose: bool,
}

impl Options {
    pub fn node_name(&self) -> String {
        startup::node_name(self.node.as_deref(), &self.paths)
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

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
        hostname: hostname(),
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
        hostname: hostname(),
    }
}

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

/// Read and validate everything, logging each problem. None on any error.
pub fn load_config(opts: &Options, node: &str) -> Option<Config> {
    let ifaces = udp::interface_names();
    let (cfg, diags) = startup::load(&opts.paths, node, opts.manage_resources, Some(&ifaces));
    if let Some(c) = &cfg {
        hblog::reconfigure(log_config(c, opts.debug, true));
    }
    for d in &diags {
        log_diagnostic(d);
    }
    cfg
}

/// `heartbeat --check`: every problem with file:line; exit 6 on any error, like a start.
pub fn check(opts: &Options) -> u8 {
    let node = opts.node_name();
    let ifaces = udp::interface_names();
    let (cfg, diags) = startup::load(&opts.paths, &node, opts.manage_resources, Some(&ifaces));
    for d in &diags {
        // Our own report names files plainly; the message keeps 3.0.6's `//` spelling.
        let mut d = d.clone();
        d.file = std::path::PathBuf::from(d.file.to_string_lossy().replace("//", "/"));
        println!("{d}");
    }
    match cfg {
        Some(c) if !crate::config::has_errors(&diags) => {
            println!(
                "Configuration OK for node {node}: {} node(s), {} medium/media, {} resource group(s).",
                c.hacf.nodes.len(),
                c.hacf.media.len(),
                c.groups.len()
            );
            0
        }
        _ => {
            let n = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            println!("{n} error(s): heartbeat would not start.");
            6
        }
    }
}

/// `heartbeat` (and `-f`): validate, daemonize unless `-f`, run.
pub fn start(opts: &Options) -> u8 {
    init_config_phase_logging(opts.debug);
    let node = opts.node_name();
    let Some(cfg) = load_config(opts, &node) else {
        hblog::emit(
            LogLevel::Error,
            "Configuration error, heartbeat not started.",
        );
        return 6;
    };
    if let Some(pid) = pidfile::read(&opts.paths.pidfile()).filter(|&p| pidfile::is_running(p)) {
        let line = format!("heartbeat: already running [pid {pid}].");
        hblog::emit(LogLevel::Info, &line);
        return 0;
    }
    hblog::emit(LogLevel::Info, "**************************");
    hblog::emit(
        LogLevel::Info,
        &format!(
            "Configuration validated. Starting heartbeat {}",
            super::VERSION
        ),
    );
    if !opts.foreground {
        if let Err(e) = daemon::daemonize() {
            hblog::emit(
                LogLevel::Error,
                &format!("cannot fork into the background: {e}"),
            );
            return 1;
        }
    }
    // From here on nothing reaches the terminal, as with the original.
    hblog::reconfigure(log_config(&cfg, opts.debug, false));
    event_loop::run(opts, node, cfg)
}

/// `heartbeat -k`.
pub fn stop(opts: &Options) -> u8 {
    clamp(pidfile::stop(&opts.paths.pidfile(), None))
}

/// `heartbeat -s`.
pub fn status(opts: &Options) -> u8 {
    let node = opts.node_name();
    let (text, code) = pidfile::status(
        &opts.paths.pidfile(),
        "heartbeat",
        &super::log::uname_nodename(),
        &node,
    );
    println!("{text}");
    clamp(code)
}

/// `heartbeat -r`: check, then SIGHUP the running daemon (start it when none runs, as the
/// original does).
pub fn reload(opts: &Options) -> u8 {
    init_config_phase_logging(opts.debug);
    let node = opts.node_name();
    let running = pidfile::read(&opts.paths.pidfile()).filter(|&p| pidfile::is_running(p));
    let Some(pid) = running else {
        return start(opts);
    };
    if load_config(opts, &node).is_none() {
        hblog::emit(
            LogLevel::Info,
            &format!("Config errors: Heartbeat pid {pid} NOT restarted"),
        );
        return 1;
    }
    hblog::emit(
        LogLevel::Info,
        &format!("Signalling heartbeat pid {pid} to reread config files"),
    );
    match nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    ) {
        Ok(()) => 0,
        Err(e) => {
            hblog::emit(
                LogLevel::Error,
                &format!("Could not signal pid {pid} : {e}"),
            );
            4
        }
    }
}

/// `-R` run by hand: there is no re-exec in this implementation.
pub fn restart_exec(opts: &Options) -> u8 {
    init_config_phase_logging(opts.debug);
    if pidfile::read(&opts.paths.pidfile()).is_some_and(pidfile::is_running) {
        hblog::emit(
            LogLevel::Info,
            "heartbeat restarts in place on SIGHUP; -R is not needed.",
        );
        0
    } else {
        hblog::emit(LogLevel::Error, "heartbeat is not running.");
        6
    }
}

/// `heartbeat -D`: the defaults table.
pub fn print_defaults(wiki: bool) -> u8 {
    let rows = crate::config::hacf::DEFAULTS
        .iter()
        .map(|(d, v)| (*d, *v, describe_directive(d)));
    if wiki {
        println!("||'''Directive'''||'''Default'''||'''Description'''||");
        for (d, v, desc) in rows {
            println!("||{d}||{v}||{desc}||");
        }
    } else {
        println!("{:<24}{:<20}Description", "Directive", "Default");
        println!("{:<24}{:<20}-----------", "---------", "-------");
        for (d, v, desc) in rows {
            println!("{d:<24}{v:<20}{desc}");
        }
    }
    0
}

fn clamp(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}

/// One line of explanation for `-D`, in our own words.
fn describe_directive(name: &str) -> &'static str {
    match name {
        "cluster" => "Name of the cluster",
        "hopfudge" => "Added to the node count to form the ttl of messages",
        "keepalive" => "Interval between our heartbeats",
        "deadtime" => "Silence after which a node is declared dead",
        "baud" => "Speed of serial links",
        "auto_failback" => "Whether resource groups move back to their preferred node",
        "hbgenmethod" => "Where the heartbeat generation comes from (file or time)",
        "realtime" => "Lock memory and run with realtime priority",
        "msgfmt" => "Whether messages carry the classic inner signature",
        "conn_logd_time" => "Retry interval for the logging daemon",
        "log_badpack" => "Log packets that cannot be decoded",
        "syslogmsgfmt" => "Log file lines in syslog format",
        "coredumps" => "Allow core dumps",
        "pacemaker" | "crm" => "Pacemaker mode (not supported: this daemon is v1 only)",
        "autojoin" => "Whether unknown nodes may join",
        "uuidfrom" => "Where the node UUID comes from (file or nodename)",
        "compression" => "Compression module for large messages",
        "compression_threshold" => "Size in KB above which messages are compressed",
        "traditional_compression" => "Compress whole messages",
        "max_rexmit_delay" => "Upper bound of the retransmission request delay (ms)",
        "record_config_changes" | "record_pengine_inputs" | "enable_config_writes" => {
            "Pacemaker only"
        }
        "memreserve" => "Memory reserved at start-up (KB)",
        _ => "",
    }
}
