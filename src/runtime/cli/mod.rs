//! What each command-line mode of `heartbeat` does. The event loop itself is in
//! `event_loop.rs`; this is start-up, `--check`, `-k`, `-s`, `-r` and `-D`.

pub mod check;
pub mod export;
pub mod simulate;

use super::log_setup::{daemon_log_config, init_config_phase_logging, log_config, log_diagnostic};
use super::options::Options;
use super::{event_loop, log as hblog, os::daemon, os::pidfile, startup};
use crate::cluster::LogLevel;
use crate::config::{Config, Severity};
use crate::media::udp;
pub use simulate::SimulateOptions;

/// `-v`: the effective configuration, defaults and derived timings included.
pub fn effective_config(cfg: &Config, node: &str, opts: &Options) -> String {
    use std::fmt::Write as _;
    let h = &cfg.hacf;
    let ms = |v: u64| {
        if v % 1000 == 0 {
            format!("{} s", v / 1000)
        } else {
            format!("{v} ms")
        }
    };
    let mut o = String::new();
    let _ = writeln!(o, "Effective configuration of node {node}");
    let _ = writeln!(o, "  confdir      {}", opts.paths.confdir.display());
    let _ = writeln!(o, "  statedir     {}", opts.paths.statedir.display());
    let _ = writeln!(
        o,
        "  control      {}",
        opts.paths.control_socket().display()
    );
    let _ = writeln!(o, "  nodes        {}", h.nodes.join(" "));
    let _ = writeln!(o, "  keepalive    {}", ms(h.keepalive_ms));
    let _ = writeln!(o, "  warntime     {}", ms(h.warntime_ms));
    let _ = writeln!(o, "  deadtime     {}", ms(h.deadtime_ms));
    let _ = writeln!(o, "  initdead     {}", ms(h.initdead_ms));
    let _ = writeln!(o, "  udpport      {}", h.udpport);
    let _ = writeln!(
        o,
        "  auto_failback {}",
        crate::status::ops::mode_word(h.auto_failback)
    );
    let _ = writeln!(
        o,
        "  msgfmt       {}",
        format!("{:?}", h.msgfmt).to_lowercase()
    );
    // Each medium as its ha.cf line says it (the file is read again only for this printout).
    let text = std::fs::read(&h.path).unwrap_or_default();
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    for m in &h.media {
        let written = m
            .line
            .checked_sub(1)
            .and_then(|i| lines.get(i))
            .map(|l| {
                String::from_utf8_lossy(l)
                    .split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| format!("{:?}", m.kind));
        let _ = writeln!(
            o,
            "  medium       {} (link {}, ha.cf line {})",
            written.split_whitespace().collect::<Vec<_>>().join(" "),
            m.kind.link_name(),
            m.line
        );
    }
    let (lc, fallback) = daemon_log_config(cfg, opts.debug, opts.foreground);
    let dest = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map_or("-".to_string(), |p| p.display().to_string())
    };
    let _ = writeln!(o, "  logfile      {}", dest(&lc.logfile));
    let _ = writeln!(o, "  debugfile    {}", dest(&lc.debugfile));
    let _ = writeln!(
        o,
        "  syslog       {}",
        lc.facility
            .as_deref()
            .filter(|f| hblog::syslog_facility(f).is_some())
            .unwrap_or("-")
    );
    let _ = writeln!(
        o,
        "  stderr       {}",
        if lc.to_stderr { "yes" } else { "no" }
    );
    if let Some(w) = fallback {
        let _ = writeln!(o, "  note         {w}");
    }
    let _ = writeln!(
        o,
        "  resources    {}",
        if opts.manage_resources {
            "managed (haresources)"
        } else {
            "not managed (-M)"
        }
    );
    for g in &cfg.groups {
        let specs: Vec<&str> = g.resources.iter().map(|r| r.spec.as_str()).collect();
        let _ = writeln!(
            o,
            "  group        {} prefers {}: {}",
            g.key(),
            g.node,
            specs.join(" ")
        );
    }
    let _ = writeln!(o, "Derived timings");
    let beats = h.deadtime_ms.checked_div(h.keepalive_ms).unwrap_or(0);
    let _ = writeln!(
        o,
        "  a peer silent for {} is declared dead ({beats} heartbeats missed); a gap over {} is logged as a late heartbeat",
        ms(h.deadtime_ms),
        ms(h.warntime_ms)
    );
    let _ = writeln!(
        o,
        "  at start-up, peers not yet heard are declared dead after initdead ({})",
        ms(h.initdead_ms)
    );
    let _ = writeln!(
        o,
        "  a takeover starts about deadtime ({}) after a peer's last heartbeat",
        ms(h.deadtime_ms)
    );
    let _ = writeln!(
        o,
        "Parameters (ha.cf as written, defaults and derived values)"
    );
    for (k, v) in &h.parameters {
        let _ = writeln!(o, "  {k:<24} {v}");
    }
    o
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
    let (cfg, diags) =
        match startup::load_partial(&opts.paths, &node, opts.manage_resources, Some(&ifaces)) {
            Ok(checked) => {
                // What the files say, held against this machine (runtime/check.rs).
                let mut extra = crate::config::hacf::lint(&checked.hacf);
                extra.extend(check::machine_findings(
                    &checked,
                    &opts.paths.resource_dir(),
                    &opts.paths.haresources(),
                    &check::System,
                ));
                let (cfg, mut diags) = checked.config();
                diags.extend(extra);
                (cfg, diags)
            }
            Err(diags) => (None, diags),
        };
    for d in &diags {
        // Our own report names files plainly; the message keeps 3.0.6's `//` spelling.
        let mut d = d.clone();
        d.file = std::path::PathBuf::from(d.file.to_string_lossy().replace("//", "/"));
        println!("{d}");
    }
    match cfg {
        Some(c) if !crate::config::has_errors(&diags) => {
            // A node name or group key in Latin-1 shows as \xNN (the files' bytes).
            let node = crate::config::bytes::escape(&node);
            if opts.verbose {
                let text = effective_config(&c, &node, opts);
                print!("{}", crate::config::bytes::escape(&text));
            }
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
            println!("{n} error(s): heartbeat would not start, or would fail later as said above.");
            6
        }
    }
}

/// `heartbeat --export pacemaker|keepalived [--output DIR]`: the configuration for another
/// engine (see `crate::export`); nothing starts.
pub fn export(
    opts: &Options,
    engine: &str,
    output: Option<&std::path::Path>,
    node_addresses: &[String],
) -> u8 {
    export::run(
        engine,
        &opts.paths,
        &opts.node_name(),
        output,
        node_addresses,
    )
}

/// `heartbeat --simulate`: every node of ha.cf through a scenario on the simulated network
/// and clock (see `crate::sim`); nothing starts.
pub fn simulate(opts: &Options, sim: &SimulateOptions<'_>) -> u8 {
    simulate::run(&opts.paths, sim)
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
    if opts.verbose {
        print!(
            "{}",
            crate::config::bytes::escape(&effective_config(&cfg, &node, opts))
        );
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
    // From here on nothing reaches the terminal, as with the original, unless ha.cf names
    // no log destination at all: then stderr (foreground) or syslog, with a warning.
    let (lc, fallback) = daemon_log_config(&cfg, opts.debug, opts.foreground);
    hblog::reconfigure(lc);
    if let Some(w) = fallback {
        hblog::emit(LogLevel::Warn, &w);
    }
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
    println!("{}", crate::config::bytes::escape(&text));
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
