//! `ha.cf`: every directive Heartbeat 3.0.6 accepts, with its tokenizing, time syntax,
//! defaults and the cross-checks it runs after the file.
//!
//! Reading (admin.md §1.1): a `#` anywhere ends a line, so do `\r` and `\n`; the first word
//! is the directive, matched case-sensitively. Option-list directives split the rest of the
//! line on blanks **and commas** and apply every token as its own occurrence (`node a,b`
//! declares two nodes, `keepalive 2,5` ends with 5 s). Whole-line directives (`stonith`,
//! `stonith_host`, `apiauth`, `respawn`, `failfast`) and the whole-line media (`ucast`,
//! `ucast6`, `mcast`, `mcast6`, `ping_group`) get the rest of the line. Settings take effect
//! while reading: `udpport` and `baud` are read by a medium type the first time its keyword
//! appears (as 3.0.6's plug-ins do), so later values do not change earlier media; we warn
//! when that happens. After the file, defaults and derived values are applied and the
//! checks of §1.6 run in 3.0.6's order.
//!
//! The directives are one table (`DIRECTIVES`: name, how the line is split, handler). The
//! text is the lossless decoding of the file's bytes ([`super::bytes`]), so values in any
//! encoding pass through; [`lint`] adds the findings only `heartbeat --check` prints.
//!
//! Differences from 3.0.6, all in the direction of saying more: every silent failure gets a
//! message naming the directive and the value; duplicate nodes are de-duplicated with a
//! warning; `crm`/`pacemaker` on is refused (v1 only); interfaces are checked against the
//! list the caller found, when it passes one; ports above 65535 are refused.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::duration::parse_ms;
use super::{Diagnostic, Severity};

/// The resource manager `auto_failback` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoFailback {
    On,
    Off,
    Legacy,
}

/// `msgfmt`: only decides whether the inner `auth` field is added (UDP is always netstring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgFmt {
    Classic,
    Netstring,
}

/// One communication medium (one per token of `bcast`/`serial`/`ping`, one per line of
/// `ucast`/`mcast`/...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medium {
    /// Line in ha.cf that declared it.
    pub line: usize,
    pub kind: MediumKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediumKind {
    /// `ucast IFNAME PEER`; `peer` is an address or a host name as written.
    Ucast {
        ifname: String,
        peer: String,
        port: u16,
    },
    Ucast6 {
        ifname: String,
        peer: String,
        port: u16,
    },
    Bcast {
        ifname: String,
        port: u16,
    },
    Mcast {
        ifname: String,
        group: Ipv4Addr,
        port: u16,
        ttl: u8,
        looped: bool,
    },
    Mcast6 {
        ifname: String,
        group: Ipv6Addr,
        port: u16,
        hops: u8,
        looped: bool,
    },
    Serial {
        device: String,
        baud: u32,
    },
    Ping {
        addr: String,
    },
    Ping6 {
        addr: String,
    },
    PingGroup {
        name: String,
        addrs: Vec<String>,
    },
}

impl MediumKind {
    /// The link name operators see (`Link bob:hb0 up.`): the interface, device or ping address.
    pub fn link_name(&self) -> String {
        match self {
            MediumKind::Ucast { ifname, .. }
            | MediumKind::Ucast6 { ifname, .. }
            | MediumKind::Bcast { ifname, .. }
            | MediumKind::Mcast { ifname, .. }
            | MediumKind::Mcast6 { ifname, .. } => ifname.clone(),
            MediumKind::Serial { device, .. } => device.clone(),
            MediumKind::Ping { addr } | MediumKind::Ping6 { addr } => addr.clone(),
            MediumKind::PingGroup { name, .. } => name.clone(),
        }
    }
}

/// `autojoin`: whether unknown nodes may join. Only `none` works with haresources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoJoin {
    None,
    Other,
    Any,
}

/// The STONITH device of this node (the last valid `stonith` or applicable `stonith_host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stonith {
    /// `stonith <type> <config-file>`.
    File {
        line: usize,
        device_type: String,
        config_file: String,
    },
    /// `stonith_host <host|*> <type> <params...>` whose host is `*` or this node.
    Host {
        line: usize,
        host: String,
        device_type: String,
        params: String,
    },
}

/// A `respawn` or `failfast` client. The caller checks that `user` exists and `path` is
/// executable (3.0.6 does both while parsing; they need the system, this module is pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientChild {
    pub line: usize,
    pub user: String,
    /// The command line as written (run through `/bin/sh -c "exec ..."`).
    pub command: String,
    /// Its first word, an absolute path.
    pub path: String,
    /// `failfast`: reboot if the client dies.
    pub failfast: bool,
}

/// An `apiauth <client> [uid=a,b] [gid=c]` line (users and groups as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAuth {
    pub line: usize,
    pub client: String,
    /// Empty: no `uid=` given.
    pub uids: Vec<String>,
    /// Empty: no `gid=` given.
    pub gids: Vec<String>,
}

/// The parsed `ha.cf`. Times are milliseconds. `parameters` keeps every recorded directive's
/// last value **as written** (what `cl_status hbparameter` and the `HA_<name>` environment
/// variables show), defaults and derived values included.
#[derive(Debug, Clone, PartialEq)]
pub struct HaCf {
    pub path: PathBuf,
    /// Declared nodes, lowercased, de-duplicated, in declaration order.
    pub nodes: Vec<String>,
    /// The ha.cf line of each entry of `nodes` (ping media carry theirs in [`Medium::line`]):
    /// 3.0.6's node table, which `cl_status` lists, mixes both in file order.
    pub node_lines: Vec<usize>,
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    pub warntime_ms: u64,
    pub initdead_ms: u64,
    pub deadping_ms: u64,
    /// The last `udpport` written (what `hbparameter` reports), 694 by default. Each UDP
    /// medium carries the port it really uses, see [`MediumKind`].
    pub udpport: u16,
    /// The `baud` setting (19200 by default); serial media carry the speed they really use.
    pub baud: u32,
    pub media: Vec<Medium>,
    pub hopfudge: u32,
    pub auto_failback: AutoFailback,
    pub msgfmt: MsgFmt,
    pub max_rexmit_delay_ms: u64,
    pub logfile: Option<PathBuf>,
    pub debugfile: Option<PathBuf>,
    /// As written; `none` and `kern` mean no syslog (see [`HaCf::syslog_facility`]).
    pub logfacility: Option<String>,
    pub syslogmsgfmt: bool,
    pub debug: u32,
    pub realtime: bool,
    pub rtprio: Option<u32>,
    /// `uuidfrom nodename`: derive the UUID from the node name instead of `hb_uuid`.
    pub uuid_from_nodename: bool,
    /// `hbgenmethod time`: the generation is the clock, not `hb_generation`.
    pub generation_from_time: bool,
    /// `env NAME=value` lines, exported as `HA_NAME=value` to children.
    pub env: Vec<(String, String)>,
    pub parameters: BTreeMap<String, String>,
    /// The line of the last occurrence of each directive given (for messages about them).
    pub directive_lines: BTreeMap<String, usize>,
    /// Every other directive as given: (line, name, value) for those without a dedicated field.
    pub other: Vec<(usize, String, String)>,
    pub autojoin: AutoJoin,
    /// `cluster` name (`linux-ha` by default).
    pub cluster: String,
    pub watchdog: Option<PathBuf>,
    pub stonith: Option<Stonith>,
    /// `respawn` and `failfast` clients in ha.cf order.
    pub clients: Vec<ClientChild>,
    /// `apiauth` lines in ha.cf order (the built-in defaults are not included).
    pub apiauth: Vec<ApiAuth>,
    /// `use_logd`, when given.
    pub use_logd: Option<bool>,
    pub log_badpack: bool,
    pub coredumps: bool,
    pub coreroot: Option<PathBuf>,
    pub conn_logd_time_ms: u64,
}

impl Default for HaCf {
    /// The values 3.0.6 uses when ha.cf says nothing (derived ones computed for the default
    /// deadtime). `parameters` is left empty.
    fn default() -> HaCf {
        HaCf {
            path: PathBuf::new(),
            nodes: Vec::new(),
            node_lines: Vec::new(),
            keepalive_ms: 1000,
            deadtime_ms: 30000,
            warntime_ms: 15000,
            initdead_ms: 30000,
            deadping_ms: 30000,
            udpport: DEFAULT_UDPPORT,
            baud: DEFAULT_BAUD,
            media: Vec::new(),
            hopfudge: 1,
            auto_failback: AutoFailback::Legacy,
            msgfmt: MsgFmt::Classic,
            max_rexmit_delay_ms: 250,
            logfile: None,
            debugfile: None,
            logfacility: None,
            syslogmsgfmt: true,
            debug: 0,
            realtime: true,
            rtprio: None,
            uuid_from_nodename: false,
            generation_from_time: false,
            env: Vec::new(),
            parameters: BTreeMap::new(),
            directive_lines: BTreeMap::new(),
            other: Vec::new(),
            autojoin: AutoJoin::None,
            cluster: "linux-ha".to_string(),
            watchdog: None,
            stonith: None,
            clients: Vec::new(),
            apiauth: Vec::new(),
            use_logd: None,
            log_badpack: true,
            coredumps: true,
            coreroot: None,
            conn_logd_time_ms: 60000,
        }
    }
}

impl HaCf {
    /// The syslog facility to log to, None when there is none (`none` and `kern` included).
    pub fn syslog_facility(&self) -> Option<&str> {
        match self.logfacility.as_deref() {
            None | Some("none") | Some("kern") => None,
            Some(f) => Some(f),
        }
    }

    /// Names of the ping nodes (`ping`, `ping6` hosts and `ping_group` names), lowercased,
    /// in ha.cf order. They share the node table with the `node` entries.
    pub fn ping_node_names(&self) -> Vec<String> {
        self.media
            .iter()
            .filter_map(|m| match &m.kind {
                MediumKind::Ping { addr } | MediumKind::Ping6 { addr } => {
                    Some(addr.to_ascii_lowercase())
                }
                MediumKind::PingGroup { name, .. } => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .collect()
    }
}

/// The API clients of 3.0.6 that this daemon runs itself (a `respawn` of them runs ours).
pub const BUILTIN_CLIENTS: [&str; 2] = ["ipfail", "dopd"];

/// Programs of the Heartbeat/Pacemaker family that need 3.0.6's client API to run.
const API_CLIENT_PROGRAMS: [&str; 11] = [
    "ccm",
    "cib",
    "crmd",
    "lrmd",
    "stonithd",
    "attrd",
    "pengine",
    "mgmtd",
    "hbagent",
    "lha_snmpagent",
    "pingd",
];

/// Port of the UDP media when no `udpport` precedes them.
pub const DEFAULT_UDPPORT: u16 = 694;
/// Serial speed when no `baud` precedes the `serial` lines.
pub const DEFAULT_BAUD: u32 = 19200;
/// The speeds `baud` accepts.
pub const BAUD_RATES: [u32; 7] = [9600, 19200, 38400, 57600, 115200, 230400, 460800];
/// At most this many media.
pub const MAX_MEDIA: usize = 64;
/// At most this many entries in the node table (normal and ping nodes).
pub const MAX_NODES: usize = 100;
/// 3.0.6 reads lines in pieces of this many bytes.
const MAX_LINE: usize = 5119;

/// `logfacility` names (case-sensitive), `none` included.
pub const SYSLOG_FACILITIES: [&str; 21] = [
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user",
    "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7", "none",
];

/// Directive values applied after the file when not given (the `heartbeat -D` table).
pub const DEFAULTS: [(&str, &str); 24] = [
    ("cluster", "linux-ha"),
    ("hopfudge", "1"),
    ("keepalive", "1000ms"),
    ("deadtime", "30000ms"),
    ("baud", "19200"),
    ("auto_failback", "legacy"),
    ("hbgenmethod", "file"),
    ("realtime", "true"),
    ("msgfmt", "classic"),
    ("conn_logd_time", "60"),
    ("log_badpack", "true"),
    ("syslogmsgfmt", "true"),
    ("coredumps", "true"),
    ("pacemaker", "false"),
    ("autojoin", "none"),
    ("uuidfrom", "file"),
    ("compression", "zlib"),
    ("compression_threshold", "2"),
    ("traditional_compression", "no"),
    ("max_rexmit_delay", "250"),
    ("record_config_changes", "on"),
    ("record_pengine_inputs", "on"),
    ("enable_config_writes", "on"),
    ("memreserve", "6500"),
];

/// How 3.0.6 splits the rest of a directive's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Blank- or comma-separated tokens, each applied as its own occurrence.
    Options,
    /// The rest of the line as one string.
    WholeLine,
    /// A medium per token (`bcast eth0 eth1`).
    ListMedium,
    /// A medium per line, the rest of the line its arguments.
    LineMedium,
}

/// Applies one token (option lists, list media) or the rest of the line (the others).
type Apply = fn(&mut Parser<'_>, &str, &str);

/// One ha.cf directive: its name (case-sensitive), how its line is split, and what it does.
struct Directive {
    name: &'static str,
    kind: Kind,
    apply: Apply,
}

const fn d(name: &'static str, kind: Kind, apply: Apply) -> Directive {
    Directive { name, kind, apply }
}

use Kind::{LineMedium, ListMedium, Options, WholeLine};

/// Every directive 3.0.6 accepts, in the order of its own table (`udp` is read as `bcast`).
const DIRECTIVES: &[Directive] = &[
    d("cluster", Options, |p, n, v| p.cluster(n, v)),
    d("node", Options, |p, _, v| p.add_node(v)),
    d("hopfudge", Options, |p, n, v| p.hopfudge(n, v)),
    d("keepalive", Options, |p, n, v| p.keepalive(n, v)),
    d("deadtime", Options, |p, n, v| p.deadtime(n, v)),
    d("deadping", Options, |p, n, v| p.deadping(n, v)),
    d("initdead", Options, |p, n, v| p.initdead(n, v)),
    d("warntime", Options, |p, n, v| p.warntime(n, v)),
    d("watchdog", Options, |p, n, v| p.watchdog(n, v)),
    d("baud", Options, |p, _, v| p.baud(v)),
    d("udpport", Options, |p, _, v| p.udpport(v)),
    d("logfacility", Options, |p, n, v| p.logfacility(n, v)),
    d("logfile", Options, |p, n, v| p.path_setting(n, v)),
    d("debugfile", Options, |p, n, v| p.path_setting(n, v)),
    d("nice_failback", Options, |p, _, v| p.nice_failback(v)),
    d("auto_failback", Options, |p, _, v| p.auto_failback(v)),
    d("rtprio", Options, |p, _, v| p.rtprio(v)),
    d("hbgenmethod", Options, |p, n, v| p.hbgenmethod(n, v)),
    d("realtime", Options, |p, n, v| p.flag(n, v)),
    d("debug", Options, |p, n, v| p.debug(n, v)),
    d("msgfmt", Options, |p, n, v| p.msgfmt(n, v)),
    d("use_logd", Options, |p, n, v| p.flag(n, v)),
    d("conn_logd_time", Options, |p, n, v| p.conn_logd_time(n, v)),
    d("use_apphbd", Options, |p, n, v| p.flag(n, v)),
    d("log_badpack", Options, |p, n, v| p.flag(n, v)),
    d("syslogmsgfmt", Options, |p, n, v| p.flag(n, v)),
    d("coredumps", Options, |p, n, v| p.flag(n, v)),
    d("coreroot", Options, |p, n, v| p.path_setting(n, v)),
    d("crm", Options, |p, n, v| p.crm(n, v)),
    d("pacemaker", Options, |p, n, v| p.crm(n, v)),
    d("autojoin", Options, |p, n, v| p.autojoin(n, v)),
    d("uuidfrom", Options, |p, n, v| p.uuidfrom(n, v)),
    d("compression", Options, |p, n, v| p.compression(n, v)),
    d("compression_threshold", Options, |p, n, v| {
        p.compression_threshold(n, v)
    }),
    d("traditional_compression", Options, |p, n, v| p.flag(n, v)),
    d("env", Options, |p, _, v| p.env(v)),
    d("max_rexmit_delay", Options, |p, n, v| {
        p.max_rexmit_delay(n, v)
    }),
    d("record_config_changes", Options, |p, n, v| {
        p.pacemaker_only(n, v)
    }),
    d("record_pengine_inputs", Options, |p, n, v| {
        p.pacemaker_only(n, v)
    }),
    d("enable_config_writes", Options, |p, n, v| {
        p.pacemaker_only(n, v)
    }),
    d("memreserve", Options, |p, n, v| p.memreserve(n, v)),
    d("quorum_server", Options, |p, n, v| p.pacemaker_only(n, v)),
    d("crm_daemon_dir", Options, |p, n, v| p.pacemaker_only(n, v)),
    d("crmd_spawns_pengine", Options, |p, n, v| {
        p.pacemaker_only(n, v)
    }),
    d("stonith", WholeLine, |p, _, rest| p.stonith(rest)),
    d("stonith_host", WholeLine, |p, _, rest| p.stonith_host(rest)),
    d("apiauth", WholeLine, |p, _, rest| p.apiauth(rest)),
    d("respawn", WholeLine, |p, _, rest| {
        p.client_child(rest, false)
    }),
    d("failfast", WholeLine, |p, _, rest| {
        p.client_child(rest, true)
    }),
    d("bcast", ListMedium, |p, _, v| p.bcast(v)),
    d("serial", ListMedium, |p, _, v| p.serial(v)),
    d("ping", ListMedium, |p, n, v| p.ping(n, v)),
    d("ping6", ListMedium, |p, n, v| p.ping(n, v)),
    d("ucast", LineMedium, |p, n, rest| p.line_medium(n, rest)),
    d("ucast6", LineMedium, |p, n, rest| p.line_medium(n, rest)),
    d("mcast", LineMedium, |p, n, rest| p.line_medium(n, rest)),
    d("mcast6", LineMedium, |p, n, rest| p.line_medium(n, rest)),
    d("ping_group", LineMedium, |p, n, rest| {
        p.line_medium(n, rest)
    }),
];

fn directive(name: &str) -> Option<&'static Directive> {
    DIRECTIVES.iter().find(|d| d.name == name)
}

/// Whether `name` is a directive this parser accepts (case-sensitive; `udp` included).
pub fn is_directive(name: &str) -> bool {
    name == "udp" || directive(name).is_some()
}

/// Every directive name, `udp` included (for "did you mean" and documentation checks).
pub fn directive_names() -> impl Iterator<Item = &'static str> {
    DIRECTIVES.iter().map(|d| d.name).chain(["udp"])
}

/// The directive a mistyped name most likely meant: a case-only difference, else the
/// closest name by edit distance (at most 2 edits, or 3 for long names).
pub fn did_you_mean(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if let Some(d) = DIRECTIVES.iter().find(|d| d.name == lower) {
        return Some(d.name);
    }
    let limit = if name.chars().count() >= 8 { 3 } else { 2 };
    DIRECTIVES
        .iter()
        .map(|d| (strsim::damerau_levenshtein(&lower, d.name), d.name))
        .filter(|(dist, _)| *dist <= limit)
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, n)| n)
}

/// Blanks as Heartbeat's tokenizer sees them.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// Option-list separators: blanks and commas.
fn is_delim(c: char) -> bool {
    c == ',' || is_ws(c)
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_ws).filter(|w| !w.is_empty())
}

/// The first blank-separated word and the rest (leading blanks removed).
fn first_word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(is_ws);
    if s.is_empty() {
        return None;
    }
    let end = s.find(is_ws).unwrap_or(s.len());
    Some((&s[..end], s[end..].trim_start_matches(is_ws)))
}

/// Heartbeat's boolean words, case-insensitive.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// C `atoi`: optional sign and leading digits, 0 when there are none. Also says whether the
/// whole string was such a number. Saturates where C would overflow.
fn atoi(s: &str) -> (i64, bool) {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let ndigits = body.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: i64 = 0;
    for b in body.bytes().take(ndigits) {
        value = value.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    let value = if negative { -value } else { value };
    (value, ndigits > 0 && ndigits == body.len())
}

/// A strict unsigned decimal (for the fields of mcast lines).
fn strict_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An IPv4 address or a host name, as `gethostbyname` would take it. Host names are not
/// resolved here (that needs the system); only what can never resolve is refused.
fn check_ipv4_or_host(s: &str) -> Result<(), String> {
    if s.contains(':') {
        return Err("an IPv6 address where an IPv4 address or host name is expected".to_string());
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let parts: Vec<&str> = s.split('.').collect();
        let bad_part = parts.iter().any(|p| p.is_empty());
        let out_of_range = parts.len() == 4
            && parts
                .iter()
                .any(|p| p.parse::<u32>().map_or(true, |n| n > 255));
        if parts.len() > 4 || bad_part || out_of_range {
            return Err("not a valid IPv4 address".to_string());
        }
    }
    Ok(())
}

/// An IPv6 address (optionally `%scope`) or a host name.
fn check_ipv6_or_host(s: &str) -> Result<(), String> {
    if s.contains(':') {
        let addr = s.split('%').next().unwrap_or_default();
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err("not a valid IPv6 address".to_string());
        }
    }
    Ok(())
}

fn time_hint(value: &str) -> String {
    let base = "expected seconds (2, 1.5), milliseconds (500ms) or microseconds (2000us)";
    if value.starts_with(['-', '+']) {
        format!("{base}; a time has no sign")
    } else if let Some(number) = value.strip_suffix(['s', 'S']) {
        if parse_ms(number).is_some() {
            format!("{base}; there is no 's' unit: write {number} for seconds")
        } else {
            base.to_string()
        }
    } else {
        base.to_string()
    }
}

/// Parse ha.cf text. `node_name` is the local node (from `--node`, `nodeinfo` or `uname -n`),
/// used for the "Current node not in configuration" check; `local_ifaces` names the
/// interfaces that exist (None: do not check). Returns the configuration when there is no
/// error, and every diagnostic (warnings too) in file order.
pub fn parse(
    text: &str,
    path: &Path,
    node_name: &str,
    local_ifaces: Option<&[String]>,
) -> (Option<HaCf>, Vec<Diagnostic>) {
    let (cfg, diags) = parse_partial(text, path, node_name, local_ifaces, true);
    if diags.iter().any(|d| d.severity == Severity::Error) {
        (None, diags)
    } else {
        (Some(cfg), diags)
    }
}

/// Like [`parse`], but always returns what was read, errors or not (the node list is needed
/// to check haresources even when ha.cf has other problems). `manage_resources` is false
/// when the daemon runs without haresources (`-M`): the `auto_failback legacy` warnings and
/// the autojoin/haresources conflict then do not apply.
pub fn parse_partial(
    text: &str,
    path: &Path,
    node_name: &str,
    local_ifaces: Option<&[String]>,
    manage_resources: bool,
) -> (HaCf, Vec<Diagnostic>) {
    let mut p = Parser {
        path,
        node_name: super::bytes::canonical(node_name).to_ascii_lowercase(),
        local_ifaces,
        manage_resources,
        line: 0,
        diags: Vec::new(),
        cfg: HaCf {
            path: path.to_path_buf(),
            ..HaCf::default()
        },
        warntime_set: false,
        initdead_set: false,
        deadping_set: false,
        udpport_set: false,
        udpport_current: DEFAULT_UDPPORT,
        udp_latch: Vec::new(),
        baud_current: DEFAULT_BAUD,
        baud_seen: false,
        serial_latch: None,
        crm_seen: false,
        watchdog_seen: false,
        negotiated: false,
        node_lines: BTreeMap::new(),
        ping_nodes: 0,
    };
    for (idx, raw) in text.split('\n').enumerate() {
        p.line = idx + 1;
        p.parse_line(raw);
    }
    p.finish();
    (p.cfg, p.diags)
}

/// Findings about a parsed ha.cf that do not stop a start but that `heartbeat --check`
/// reports: things that go wrong later, without any error from 3.0.6 either.
pub fn lint(cfg: &HaCf) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if cfg.logfile.is_none() && cfg.debugfile.is_none() && cfg.syslog_facility().is_none() {
        out.push(Diagnostic::warning(
            &cfg.path,
            0,
            "No log entry found in ha.cf: no logfile, debugfile or logfacility (other than none \
             or kern), and this daemon has no logging daemon to fall back on, so its log lines \
             go nowhere. Add e.g. 'logfacility local0' or 'logfile /var/log/ha-log'",
        ));
    }
    out
}

/// The messages for an ha.cf that cannot be opened, worded as 3.0.6.
pub fn cannot_open(path: &Path) -> Vec<Diagnostic> {
    let file = path.display();
    vec![
        Diagnostic::error(path, 0, format!("Cannot open config file [{file}]")),
        Diagnostic::info(
            path,
            0,
            format!("An annotated sample {file} file is provided in the documentation."),
        ),
        Diagnostic::info(
            path,
            0,
            format!("Please copy it to {file}, read it, customize it, and try again."),
        ),
    ]
}

struct Parser<'a> {
    path: &'a Path,
    node_name: String,
    local_ifaces: Option<&'a [String]>,
    manage_resources: bool,
    line: usize,
    diags: Vec<Diagnostic>,
    cfg: HaCf,
    warntime_set: bool,
    initdead_set: bool,
    deadping_set: bool,
    udpport_set: bool,
    /// The udpport in force at this point of the file.
    udpport_current: u16,
    /// UDP medium types already seen: (keyword, port they use, line of their first use).
    udp_latch: Vec<(&'static str, u16, usize)>,
    /// The baud in force at this point of the file.
    baud_current: u32,
    baud_seen: bool,
    /// Speed and line of the first `serial` line.
    serial_latch: Option<(u32, usize)>,
    crm_seen: bool,
    watchdog_seen: bool,
    /// An `auto_failback on|off` has been read (3.0.6's `nice_failback` flag).
    negotiated: bool,
    /// Line of each declared node.
    node_lines: BTreeMap<String, usize>,
    /// Ping nodes declared so far (they use node-table slots).
    ping_nodes: usize,
}

impl Parser<'_> {
    fn push(&mut self, severity: Severity, line: usize, message: String) {
        self.diags
            .push(Diagnostic::new(severity, self.path, line, message));
    }

    fn err(&mut self, message: impl Into<String>) {
        self.push(Severity::Error, self.line, message.into());
    }

    fn warn(&mut self, message: impl Into<String>) {
        self.push(Severity::Warning, self.line, message.into());
    }

    fn info(&mut self, message: impl Into<String>) {
        self.push(Severity::Info, self.line, message.into());
    }

    fn bad_value(&mut self, name: &str, value: &str, why: &str) {
        self.err(format!("{name}: invalid value [{value}]: {why}"));
    }

    fn record(&mut self, name: &str, value: &str) {
        self.cfg
            .parameters
            .insert(name.to_string(), value.to_string());
    }

    fn other(&mut self, name: &str, value: &str) {
        self.cfg
            .other
            .push((self.line, name.to_string(), value.to_string()));
    }

    fn no_value(&mut self, name: &str) {
        self.warn(format!("{name}: no value given; the line is ignored"));
    }

    fn parse_line(&mut self, raw: &str) {
        if raw.len() > MAX_LINE {
            self.warn(format!(
                "line is longer than {MAX_LINE} bytes; Heartbeat 3.0.6 would cut it there and read \
                 the rest as a new line"
            ));
        }
        let content = raw.trim_start_matches(is_ws);
        let end = content
            .find(['#', '\r', '\n', '\0'])
            .unwrap_or(content.len());
        let content = &content[..end];
        if content.is_empty() {
            return;
        }
        let name_end = content.find(is_ws).unwrap_or(content.len());
        let mut name = &content[..name_end];
        let rest = content[name_end..].trim_start_matches(is_delim);
        if name == "udp" {
            self.warn("WARNING: directive 'udp' replaced by 'bcast'");
            name = "bcast";
        }
        let Some(directive) = directive(name) else {
            self.illegal(name);
            return;
        };
        self.cfg.directive_lines.insert(name.to_string(), self.line);
        match directive.kind {
            Kind::WholeLine | Kind::LineMedium => {
                (directive.apply)(self, name, rest.trim_end_matches(is_ws))
            }
            Kind::Options | Kind::ListMedium => {
                let tokens: Vec<&str> = rest.split(is_delim).filter(|t| !t.is_empty()).collect();
                if tokens.is_empty() {
                    self.no_value(name);
                }
                for token in tokens {
                    (directive.apply)(self, name, token);
                }
            }
        }
    }

    fn illegal(&mut self, name: &str) {
        let mut msg = format!("Illegal directive [{name}] in {}", self.path.display());
        let lower = name.to_ascii_lowercase();
        if lower != name && is_directive(&lower) {
            msg.push_str(&format!(
                " (directive names are case-sensitive: did you mean '{lower}'?)"
            ));
        } else if matches!(name, "hbaping" | "tipc" | "rds") {
            msg.push_str(" (this communication medium is not supported)");
        } else if name == "normalpoll" {
            msg.push_str(" (not supported by Heartbeat 3.0.6 either)");
        } else if let Some(near) = did_you_mean(name) {
            msg.push_str(&format!(" (did you mean '{near}'?)"));
        }
        self.err(msg);
    }

    fn keepalive(&mut self, name: &str, value: &str) {
        if let Some(ms) = self.time(name, value) {
            if ms == 0 {
                self.bad_value(name, value, "keepalive must be greater than 0");
            } else {
                self.cfg.keepalive_ms = ms;
                self.record(name, value);
            }
        }
    }

    fn deadtime(&mut self, name: &str, value: &str) {
        if let Some(ms) = self.time(name, value) {
            self.cfg.deadtime_ms = ms;
            self.record(name, value);
        }
    }

    fn warntime(&mut self, name: &str, value: &str) {
        match parse_ms(value) {
            Some(ms) if ms > 0 => {
                self.cfg.warntime_ms = ms;
                self.warntime_set = true;
                self.record(name, value);
            }
            Some(_) => self.err(format!(
                "Warn time [{value}] is invalid. (warntime must be greater than 0)"
            )),
            None => self.err(format!(
                "Warn time [{value}] is invalid. ({})",
                time_hint(value)
            )),
        }
    }

    fn initdead(&mut self, name: &str, value: &str) {
        if let Some(ms) = self.time(name, value) {
            self.cfg.initdead_ms = ms;
            self.initdead_set = true;
            self.record(name, value);
        }
    }

    fn deadping(&mut self, name: &str, value: &str) {
        if let Some(ms) = self.time(name, value) {
            self.cfg.deadping_ms = ms;
            self.deadping_set = true;
            self.record(name, value);
        }
    }

    fn conn_logd_time(&mut self, name: &str, value: &str) {
        if let Some(ms) = self.time(name, value) {
            if ms == 0 {
                self.bad_value(name, value, "conn_logd_time must be greater than 0");
            } else {
                self.cfg.conn_logd_time_ms = ms;
                self.record(name, value);
            }
        }
    }

    fn hopfudge(&mut self, name: &str, value: &str) {
        let n = self.int(name, value);
        match u32::try_from(n) {
            Ok(h) if h <= 255 => {
                self.cfg.hopfudge = h;
                self.record(name, value);
            }
            _ => self.bad_value(name, value, "hopfudge must be an integer from 0 to 255"),
        }
    }

    fn debug(&mut self, name: &str, value: &str) {
        let n = self.int(name, value);
        match u32::try_from(n) {
            Ok(level) if level <= 255 => {
                self.cfg.debug = level;
                self.record(name, value);
            }
            _ => self.bad_value(
                name,
                value,
                "the debug level must be an integer from 0 to 255",
            ),
        }
    }

    fn max_rexmit_delay(&mut self, name: &str, value: &str) {
        let n = self.int(name, value);
        match u64::try_from(n) {
            Ok(ms) if ms > 0 => {
                self.cfg.max_rexmit_delay_ms = ms;
                self.record(name, value);
            }
            _ => self.err(format!(
                "Invalid max_rexmit_delay time({value}) (a number of milliseconds > 0)"
            )),
        }
    }

    fn rtprio(&mut self, value: &str) {
        let n = self.int("rtprio", value);
        match u32::try_from(n) {
            Ok(prio) if (1..=99).contains(&prio) => self.cfg.rtprio = Some(prio),
            _ => self.err(format!("Illegal realtime priority [{value}] (1 to 99)")),
        }
    }

    fn compression_threshold(&mut self, name: &str, value: &str) {
        let n = self.int(name, value);
        if n > 0 {
            self.record(name, value);
            self.other(name, value);
        } else {
            self.err(format!(
                "set_compression_threshold: compress_threshhold({value}) invalid (a number of KB > 0)"
            ));
        }
    }

    fn memreserve(&mut self, name: &str, value: &str) {
        let n = self.int(name, value);
        if n > 0 {
            self.record(name, value);
            self.other(name, value);
        } else {
            self.bad_value(
                name,
                value,
                "memreserve must be a number of KB greater than 0",
            );
        }
    }

    fn autojoin(&mut self, name: &str, value: &str) {
        let mode = match value.to_ascii_lowercase().as_str() {
            "none" => AutoJoin::None,
            "other" => AutoJoin::Other,
            "any" => AutoJoin::Any,
            _ => {
                self.err(format!(
                    "Invalid autojoin directive [{value}] (none, other or any)"
                ));
                return;
            }
        };
        self.cfg.autojoin = mode;
        self.record(name, value);
    }

    fn cluster(&mut self, name: &str, value: &str) {
        self.cfg.cluster = value.to_string();
        self.record(name, value);
    }

    fn uuidfrom(&mut self, name: &str, value: &str) {
        match value {
            "file" | "nodename" => {
                self.cfg.uuid_from_nodename = value == "nodename";
                self.record(name, value);
            }
            _ => self.err(format!(
                "Invalid uuidfrom directive [{value}] (file or nodename)"
            )),
        }
    }

    fn hbgenmethod(&mut self, name: &str, value: &str) {
        match value {
            "file" | "time" => {
                self.cfg.generation_from_time = value == "time";
                self.record(name, value);
            }
            _ => self.err(format!(
                "Illegal hb generation method [{value}] (file or time)"
            )),
        }
    }

    fn msgfmt(&mut self, name: &str, value: &str) {
        match value {
            "classic" | "netstring" => {
                self.cfg.msgfmt = if value == "classic" {
                    MsgFmt::Classic
                } else {
                    MsgFmt::Netstring
                };
                self.record(name, value);
            }
            _ => self.bad_value(
                name,
                value,
                "msgfmt must be 'classic' or 'netstring' (case-sensitive)",
            ),
        }
    }

    /// `logfile`, `debugfile`, `coreroot`: a path, byte for byte as written.
    fn path_setting(&mut self, name: &str, value: &str) {
        let path = Some(super::bytes::to_path(value));
        match name {
            "logfile" => self.cfg.logfile = path,
            "debugfile" => self.cfg.debugfile = path,
            _ => {
                self.cfg.coreroot = path;
                self.warn(format!(
                    "coreroot {value}: not supported: this daemon's core files go to \
                     <statedir>/cores/root (/var/lib/heartbeat/cores/root), as with 3.0.6's \
                     default"
                ));
            }
        }
        self.record(name, value);
    }

    fn logfacility(&mut self, name: &str, value: &str) {
        if SYSLOG_FACILITIES.contains(&value) {
            self.cfg.logfacility = Some(value.to_string());
            self.record(name, value);
        } else {
            self.err(format!("Log facility({value}) not valid"));
        }
    }

    fn watchdog(&mut self, name: &str, value: &str) {
        if self.watchdog_seen {
            self.err("Watchdog device multiply specified.");
        } else {
            self.watchdog_seen = true;
            self.cfg.watchdog = Some(super::bytes::to_path(value));
            self.record(name, value);
        }
    }

    fn compression(&mut self, name: &str, value: &str) {
        if matches!(value, "zlib" | "bz2") {
            self.record(name, value);
            self.other(name, value);
        } else {
            self.err(format!(
                "Compression module({value}) not found (zlib or bz2)"
            ));
        }
    }

    /// The boolean settings.
    fn flag(&mut self, name: &str, value: &str) {
        let Some(b) = self.boolean(name, value) else {
            return;
        };
        match name {
            "use_logd" => {
                self.cfg.use_logd = Some(b);
                if b {
                    self.warn(
                        "use_logd on: this daemon has no logging daemon (ha_logd); it writes \
                         logfile, debugfile and syslog itself, as configured in ha.cf",
                    );
                }
            }
            "syslogmsgfmt" => self.cfg.syslogmsgfmt = b,
            "log_badpack" => self.cfg.log_badpack = b,
            "realtime" => self.cfg.realtime = b,
            "coredumps" => self.cfg.coredumps = b,
            "use_apphbd" => {
                if b {
                    self.warn(
                        "use_apphbd on: this daemon does not register with apphbd; the line has \
                         no effect",
                    );
                }
                self.other(name, value);
            }
            _ => self.other(name, value),
        }
        // use_apphbd is the one boolean 3.0.6 does not record.
        if name != "use_apphbd" {
            self.record(name, value);
        }
    }

    fn env(&mut self, value: &str) {
        match value.split_once('=') {
            Some((var, val)) if !var.is_empty() => {
                self.cfg.env.push((var.to_string(), val.to_string()))
            }
            _ => self.err(format!(
                "set_env: invalid nvpair({value}) (expected NAME=value)"
            )),
        }
    }

    /// Directives only Pacemaker or its quorum server read.
    fn pacemaker_only(&mut self, name: &str, value: &str) {
        if name != "crm_daemon_dir"
            && name != "quorum_server"
            && self.boolean(name, value).is_none()
        {
            return;
        }
        self.warn(format!(
            "{name} only matters to Pacemaker or its quorum server; this daemon is Heartbeat \
             v1 only: accepted and ignored"
        ));
        self.record(name, value);
        self.other(name, value);
    }

    fn time(&mut self, name: &str, value: &str) -> Option<u64> {
        let ms = parse_ms(value);
        if ms.is_none() {
            self.bad_value(name, value, &time_hint(value));
        }
        ms
    }

    fn boolean(&mut self, name: &str, value: &str) -> Option<bool> {
        let b = parse_bool(value);
        if b.is_none() {
            self.bad_value(
                name,
                value,
                "expected a boolean: true, on, yes, y, 1 or false, off, no, n, 0",
            );
        }
        b
    }

    /// An integer read like C `atoi`; trailing junk is accepted as 3.0.6 does, with a warning.
    fn int(&mut self, name: &str, value: &str) -> i64 {
        let (n, clean) = atoi(value);
        if !clean {
            self.warn(format!(
                "{name}: [{value}] is not a plain integer; read as {n}, as Heartbeat 3.0.6 does"
            ));
        }
        n
    }

    fn node_table_full(&self) -> bool {
        self.cfg.nodes.len() + self.ping_nodes >= MAX_NODES
    }

    fn add_node(&mut self, value: &str) {
        // Any bytes, as 3.0.6 takes them (a Latin-1 host name): compared with `src` of
        // packets and `uname -n`, so in its own canonical form (`bytes::canonical`).
        let node = super::bytes::canonical(value).to_ascii_lowercase();
        if let Some(first) = self.node_lines.get(&node) {
            let first = *first;
            self.warn(format!(
                "node [{node}] is declared again (first declared at line {first}); the duplicate is \
                 ignored (Heartbeat 3.0.6 would create a phantom node that is later declared dead)"
            ));
            return;
        }
        if self.node_table_full() {
            self.err(format!(
                "node [{node}]: too many nodes (at most {MAX_NODES}, ping nodes included)"
            ));
            return;
        }
        self.node_lines.insert(node.clone(), self.line);
        self.cfg.nodes.push(node);
        self.cfg.node_lines.push(self.line);
    }

    fn add_medium(&mut self, directive: &str, value: &str, kind: MediumKind) {
        if self.cfg.media.len() >= MAX_MEDIA {
            self.err(format!(
                "Too many media specified (> {MAX_MEDIA}); Offending command: {directive} {value}"
            ));
            return;
        }
        self.cfg.media.push(Medium {
            line: self.line,
            kind,
        });
    }

    fn iface_exists(&self, ifname: &str) -> bool {
        self.local_ifaces
            .is_none_or(|list| list.iter().any(|i| i == ifname))
    }

    /// The port a UDP medium type uses: the udpport in force when the type first appeared.
    fn udp_port(&mut self, medium: &'static str) -> u16 {
        if let Some((_, port, _)) = self.udp_latch.iter().find(|(m, _, _)| *m == medium) {
            return *port;
        }
        self.udp_latch
            .push((medium, self.udpport_current, self.line));
        self.udpport_current
    }

    /// The speed of the serial media: the baud in force at the first `serial` line.
    fn serial_baud(&mut self) -> u32 {
        match self.serial_latch {
            Some((baud, _)) => baud,
            None => {
                self.serial_latch = Some((self.baud_current, self.line));
                self.baud_current
            }
        }
    }

    fn udpport(&mut self, value: &str) {
        let n = self.int("udpport", value);
        let port = match u16::try_from(n) {
            Ok(p) if p > 0 => p,
            _ => {
                self.err(format!(
                    "invalid port [{value}] specified. (udpport must be 1 to 65535)"
                ));
                return;
            }
        };
        let stale: Vec<(&'static str, u16, usize)> = self
            .udp_latch
            .iter()
            .copied()
            .filter(|(_, p, _)| *p != port)
            .collect();
        for (medium, used, line) in stale {
            self.warn(format!(
                "udpport {value} comes after the first '{medium}' line (line {line}): every {medium} \
                 medium keeps using port {used}, as in Heartbeat 3.0.6. Move udpport before the \
                 media lines if {port} is meant"
            ));
        }
        self.udpport_current = port;
        self.udpport_set = true;
        self.cfg.udpport = port;
        self.record("udpport", value);
    }

    fn baud(&mut self, value: &str) {
        if self.baud_seen {
            self.err("Baudrate multiply specified.");
            return;
        }
        self.baud_seen = true;
        let n = self.int("baud", value);
        let Some(baud) = u32::try_from(n).ok().filter(|b| BAUD_RATES.contains(b)) else {
            self.err(format!(
                "invalid baudrate [{value}] specified. (9600, 19200, 38400, 57600, 115200, 230400 or 460800)"
            ));
            return;
        };
        if let Some((used, line)) = self.serial_latch {
            if used != baud {
                self.warn(format!(
                    "baud {value} comes after the first 'serial' line (line {line}): the serial links \
                     keep running at {used} baud, as in Heartbeat 3.0.6. Move baud before the serial \
                     lines if {baud} is meant"
                ));
            }
        }
        self.baud_current = baud;
        self.cfg.baud = baud;
        self.record("baud", value);
    }

    fn crm(&mut self, name: &str, value: &str) {
        if self.crm_seen {
            self.err("pacemaker/crm directive used multiple times!");
            return;
        }
        self.crm_seen = true;
        let lower = value.to_ascii_lowercase();
        let on = match parse_bool(value) {
            Some(b) => b,
            None if matches!(
                lower.as_str(),
                "respawn" | "minimal" | "manual" | "ccm-only" | "valgrind"
            ) =>
            {
                true
            }
            None => {
                self.bad_value(
                    name,
                    value,
                    "expected off (this daemon is Heartbeat v1 only)",
                );
                return;
            }
        };
        if on {
            self.err(format!(
                "{name} {value}: Pacemaker (CRM) mode is not supported: this daemon implements \
                 Heartbeat v1 with haresources only. Use '{name} off' or remove the line"
            ));
            return;
        }
        self.record("pacemaker", value);
        self.other(name, value);
    }

    fn auto_failback(&mut self, value: &str) {
        let mode = match parse_bool(value) {
            Some(true) => AutoFailback::On,
            Some(false) => AutoFailback::Off,
            None if value.eq_ignore_ascii_case("legacy") => AutoFailback::Legacy,
            None => {
                self.bad_value("auto_failback", value, "expected on, off or legacy");
                return;
            }
        };
        self.negotiated = mode != AutoFailback::Legacy;
        self.cfg.auto_failback = mode;
        self.record("auto_failback", value);
    }

    fn nice_failback(&mut self, value: &str) {
        self.warn("nice_failback flag is obsolete.. Use auto_failback {on, off, legacy} instead.");
        if parse_bool(value).is_some() {
            if self.negotiated {
                self.warn(format!(
                    "'nice_failback {value}' has been changed to 'auto_failback off'"
                ));
                self.cfg.auto_failback = AutoFailback::Off;
            } else {
                self.warn(format!(
                    "nice_failback {value} has been strictly interpreted as 'auto_failback legacy'"
                ));
                self.warn("Consider converting to 'auto_failback on'.");
                self.warn("When you do, then you can use ipfail, and hb_standby");
                self.cfg.auto_failback = AutoFailback::Legacy;
            }
        } else {
            self.bad_value(
                "nice_failback",
                value,
                "expected a boolean (nice_failback is obsolete: use auto_failback on, off or legacy)",
            );
        }
        self.warn("See documentation for details.");
    }

    fn bcast(&mut self, ifname: &str) {
        let port = self.udp_port("bcast");
        if !self.iface_exists(ifname) {
            self.err(format!(
                "Illegal bcast [UDP/IP broadcast] in config file [{ifname}]: IP interface [{ifname}] \
                 does not exist"
            ));
            return;
        }
        self.add_medium(
            "bcast",
            ifname,
            MediumKind::Bcast {
                ifname: ifname.to_string(),
                port,
            },
        );
    }

    fn serial(&mut self, device: &str) {
        if !device.starts_with('/') {
            self.err(format!(
                "Illegal serial [serial ring] in config file [{device}]: Serial port not full \
                 pathname [{device}] in config file"
            ));
            return;
        }
        let baud = self.serial_baud();
        self.add_medium(
            "serial",
            device,
            MediumKind::Serial {
                device: device.to_string(),
                baud,
            },
        );
    }

    fn ping(&mut self, name: &str, host: &str) {
        let checked = if name == "ping6" {
            check_ipv6_or_host(host)
        } else {
            check_ipv4_or_host(host)
        };
        if let Err(why) = checked {
            self.err(format!(
                "Illegal {name} [ping membership] in config file [{host}]: unknown host: {host} ({why})"
            ));
            return;
        }
        if self.node_table_full() {
            self.err(format!(
                "{name} {host}: too many nodes (at most {MAX_NODES}, ping nodes included)"
            ));
            return;
        }
        self.ping_nodes += 1;
        let addr = host.to_string();
        let kind = if name == "ping6" {
            MediumKind::Ping6 { addr }
        } else {
            MediumKind::Ping { addr }
        };
        self.add_medium(name, host, kind);
    }

    fn line_medium(&mut self, name: &str, rest: &str) {
        let mut w = words(rest);
        let Some(first) = w.next() else {
            self.no_value(name);
            return;
        };
        match name {
            "ucast" => self.ucast("ucast", first, w.collect(), rest),
            "ucast6" => self.ucast("ucast6", first, w.collect(), rest),
            "mcast" | "mcast6" => self.mcast(name, first, w.collect(), rest),
            _ => self.ping_group(first, w.collect(), rest),
        }
    }

    fn ucast(&mut self, name: &'static str, ifname: &str, args: Vec<&str>, rest: &str) {
        let v6 = name == "ucast6";
        let Some(peer) = args.first().copied() else {
            self.err(format!(
                "{name}: [{ifname}] missing target IP address/hostname"
            ));
            return;
        };
        if args.len() > 1 {
            self.warn(format!(
                "{name}: words after the peer address are ignored: [{}]",
                args[1..].join(" ")
            ));
        }
        let checked = if v6 {
            check_ipv6_or_host(peer)
        } else {
            check_ipv4_or_host(peer)
        };
        if let Err(why) = checked {
            if v6 {
                self.err(format!("ucast6 [{ifname}] bad addr [{peer}] ({why})"));
            } else {
                self.err(format!(
                    "ucast: [{ifname}] cannot resolve hostname [{peer}] ({why})"
                ));
            }
            return;
        }
        let port = self.udp_port(name);
        if !self.iface_exists(ifname) {
            self.err(format!(
                "{name}: interface [{ifname}] does not exist (Heartbeat 3.0.6 would accept it and \
                 then fail to start: cannot open {name} {ifname})"
            ));
            return;
        }
        let (ifname, peer) = (ifname.to_string(), peer.to_string());
        let kind = if v6 {
            MediumKind::Ucast6 { ifname, peer, port }
        } else {
            MediumKind::Ucast { ifname, peer, port }
        };
        self.add_medium(name, rest, kind);
    }

    fn mcast(&mut self, name: &str, ifname: &str, args: Vec<&str>, rest: &str) {
        let v6 = name == "mcast6";
        let ttl_word = if v6 { "hops" } else { "ttl" };
        let mut it = args.iter().copied();
        let Some(group) = it.next() else {
            self.err(format!("{name} [{ifname}] missing mcast address"));
            return;
        };
        let group4 = if v6 {
            None
        } else {
            group
                .parse::<Ipv4Addr>()
                .ok()
                .filter(Ipv4Addr::is_multicast)
        };
        let group6 = if v6 {
            group
                .parse::<Ipv6Addr>()
                .ok()
                .filter(Ipv6Addr::is_multicast)
        } else {
            None
        };
        if group4.is_none() && group6.is_none() {
            self.err(format!(
                "{name} [{ifname}] bad addr [{group}] (a {} multicast group address is expected)",
                if v6 {
                    "IPv6 (ff00::/8)"
                } else {
                    "class D IPv4 (224.0.0.0 to 239.255.255.255)"
                }
            ));
            return;
        }
        let Some(port_s) = it.next() else {
            self.err(format!("{name} [{ifname}] missing port"));
            return;
        };
        let Some(port) = strict_u32(port_s)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
        else {
            self.err(format!(
                "{name} [{ifname}] bad port [{port_s}] (1 to 65535)"
            ));
            return;
        };
        let Some(ttl_s) = it.next() else {
            self.err(format!("{name} [{ifname}] missing {ttl_word}"));
            return;
        };
        let Some(ttl) = strict_u32(ttl_s)
            .filter(|t| *t <= 4)
            .and_then(|t| u8::try_from(t).ok())
        else {
            self.err(format!(
                "{name} [{ifname}] bad {ttl_word} [{ttl_s}] (0 to 4)"
            ));
            return;
        };
        let Some(loop_s) = it.next() else {
            self.err(format!("{name} [{ifname}] missing loop"));
            return;
        };
        let looped = match loop_s {
            "0" => false,
            "1" => true,
            _ => {
                self.err(format!("{name} [{ifname}] bad loop [{loop_s}] (0 or 1)"));
                return;
            }
        };
        let extra: Vec<&str> = it.collect();
        if !extra.is_empty() {
            self.warn(format!(
                "{name}: words after the loop flag are ignored: [{}]",
                extra.join(" ")
            ));
        }
        if !self.iface_exists(ifname) {
            self.err(format!(
                "{name} device [{ifname}] is invalid or not set up properly"
            ));
            return;
        }
        let ifname = ifname.to_string();
        let kind = match (group4, group6) {
            (Some(group), _) => MediumKind::Mcast {
                ifname,
                group,
                port,
                ttl,
                looped,
            },
            (_, Some(group)) => MediumKind::Mcast6 {
                ifname,
                group,
                port,
                hops: ttl,
                looped,
            },
            _ => return,
        };
        self.add_medium(name, rest, kind);
    }

    fn ping_group(&mut self, group: &str, hosts: Vec<&str>, rest: &str) {
        let mut ok = true;
        for host in &hosts {
            if let Err(why) = check_ipv4_or_host(host) {
                self.err(format!(
                    "ping_group [{group}]: unknown host: {host} ({why})"
                ));
                ok = false;
            }
        }
        if !ok {
            return;
        }
        if hosts.is_empty() {
            self.warn(format!(
                "ping_group [{group}] has no members: it can never be heard from"
            ));
        }
        if self.node_table_full() {
            self.err(format!(
                "ping_group {group}: too many nodes (at most {MAX_NODES}, ping nodes included)"
            ));
            return;
        }
        self.ping_nodes += 1;
        let kind = MediumKind::PingGroup {
            name: group.to_string(),
            addrs: hosts.iter().map(|h| h.to_string()).collect(),
        };
        self.add_medium("ping_group", rest, kind);
    }

    fn stonith(&mut self, rest: &str) {
        let Some((device_type, config_file)) = first_word(rest) else {
            self.err("No Stonith type given (stonith <type> <config-file>)");
            return;
        };
        if config_file.is_empty() {
            self.err("Invalid Stonith config file [] (stonith <type> <config-file>)");
            return;
        }
        self.cfg.stonith = Some(Stonith::File {
            line: self.line,
            device_type: device_type.to_string(),
            config_file: config_file.to_string(),
        });
    }

    fn stonith_host(&mut self, rest: &str) {
        let Some((host, after)) = first_word(rest) else {
            self.err(
                "No Stonith hostname argument given (stonith_host <host|*> <type> <params...>)",
            );
            return;
        };
        let host = super::bytes::canonical(host).to_ascii_lowercase();
        if host != "*" && host != self.node_name {
            // A line for another host: 3.0.6 ignores it without looking further.
            return;
        }
        let Some((device_type, params)) = first_word(after) else {
            self.err("No Stonith type given (stonith_host <host|*> <type> <params...>)");
            return;
        };
        self.cfg.stonith = Some(Stonith::Host {
            line: self.line,
            host,
            device_type: device_type.to_string(),
            params: params.to_string(),
        });
    }

    fn client_child(&mut self, rest: &str, failfast: bool) {
        let Some((user, command)) = first_word(rest) else {
            self.err("Invalid uid [] specified for client child (respawn <user> <command>)");
            return;
        };
        if !command.starts_with('/') {
            self.err(format!(
                "Client child command [{command}] is not full pathname"
            ));
            return;
        }
        let path = command.split(is_ws).next().unwrap_or_default().to_string();
        let program = path.rsplit('/').next().unwrap_or_default();
        if API_CLIENT_PROGRAMS.contains(&program) {
            self.warn(format!(
                "{} {user} {command}: {program} is a client of Heartbeat's API, which this daemon \
                 does not serve (its only API clients, ipfail and dopd, are built in): it will \
                 be started and fail to sign on",
                if failfast { "failfast" } else { "respawn" }
            ));
        }
        self.cfg.clients.push(ClientChild {
            line: self.line,
            user: user.to_string(),
            command: command.to_string(),
            path,
            failfast,
        });
    }

    fn apiauth(&mut self, rest: &str) {
        let mut specific: Option<String> = None;
        let mut parsed: Option<ApiAuth> = None;
        if let Some((client, lists)) = first_word(rest) {
            let mut uids: Option<Vec<String>> = None;
            let mut gids: Option<Vec<String>> = None;
            for word in words(lists) {
                let (slot, list, what) = if let Some(l) = word.strip_prefix("uid=") {
                    (&mut uids, l, "uid")
                } else if let Some(l) = word.strip_prefix("gid=") {
                    (&mut gids, l, "gid")
                } else {
                    specific = Some("Missing uid or gid in apiauth".to_string());
                    break;
                };
                if slot.is_some() {
                    specific = Some(format!("Duplicate {what} list in apiauth"));
                    break;
                }
                let items: Vec<String> = list
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect();
                if items.is_empty() {
                    specific = Some(format!("Empty {what} list in apiauth"));
                    break;
                }
                *slot = Some(items);
            }
            if specific.is_none() && (uids.is_some() || gids.is_some()) {
                if self.cfg.apiauth.iter().any(|a| a.client == client) {
                    specific = Some(format!(
                        "Duplicate apiauth directive for API client {client}: [{rest}]"
                    ));
                } else {
                    parsed = Some(ApiAuth {
                        line: self.line,
                        client: client.to_string(),
                        uids: uids.unwrap_or_default(),
                        gids: gids.unwrap_or_default(),
                    });
                }
            }
        }
        if let Some(entry) = parsed {
            if !BUILTIN_CLIENTS.contains(&entry.client.as_str()) {
                self.warn(format!(
                    "apiauth {rest}: this daemon does not serve Heartbeat's client API (its only \
                     API clients, ipfail and dopd, are built in), so the line has no effect; \
                     cl_status, hb_standby and hb_takeover use its control socket, open to root, \
                     the daemon's user and group haclient"
                ));
            }
            self.cfg.apiauth.push(entry);
            return;
        }
        if let Some(msg) = specific {
            self.err(msg);
        }
        self.err(format!("Invalid apiauth directive [{rest}]"));
        self.info("Syntax: apiauth client [uid=uidlist] [gid=gidlist]");
        self.info("Where uidlist is a comma-separated list of uids,");
        self.info("and gidlist is a comma-separated list of gids");
        self.info("One or the other must be specified.");
    }

    /// Defaults, derived values and the checks of admin.md §1.6, in 3.0.6's order.
    fn finish(&mut self) {
        self.line = 0;
        for (name, value) in DEFAULTS {
            self.cfg
                .parameters
                .entry(name.to_string())
                .or_insert_with(|| value.to_string());
        }
        let debug = self.cfg.debug.to_string();
        self.cfg
            .parameters
            .entry("debug".to_string())
            .or_insert(debug);

        if self.cfg.media.is_empty() {
            self.err("No heartbeat media defined");
        }
        if !self.warntime_set {
            self.cfg.warntime_ms = self.cfg.deadtime_ms / 2;
            let v = format!("{}ms", self.cfg.warntime_ms);
            self.record("warntime", &v);
        }
        let autojoin_any = self.cfg.autojoin == AutoJoin::Any;
        if self.cfg.nodes.is_empty() && !autojoin_any {
            self.err("no nodes defined");
        }
        if !autojoin_any && !self.cfg.nodes.contains(&self.node_name) {
            self.err(format!(
                "Current node [{}] not in configuration!",
                self.node_name
            ));
            self.info(
                "By default, cluster nodes are named by `uname -n` and must be declared with a 'node' \
                 directive in the ha.cf file.",
            );
            self.info("See also: http://linux-ha.org/wiki/Ha.cf#node_directive");
        }
        let keepalive = self.cfg.keepalive_ms;
        let deadtime = self.cfg.deadtime_ms;
        if self.warntime_set && self.cfg.warntime_ms >= deadtime {
            let line = self
                .cfg
                .directive_lines
                .get("warntime")
                .copied()
                .unwrap_or(0);
            self.push(
                Severity::Warning,
                line,
                format!(
                    "warntime [{} ms] is not below deadtime [{deadtime} ms]: a late node is \
                     declared dead before any 'Late heartbeat' warning (Heartbeat 3.0.6 accepts \
                     this silently)",
                    self.cfg.warntime_ms
                ),
            );
        }
        if deadtime <= keepalive.saturating_mul(2) {
            self.err(format!(
                "Dead time [{deadtime}] is too small compared to keeplive [{keepalive}]"
            ));
        }
        if !self.initdead_set {
            self.cfg.initdead_ms = if deadtime > 10_000 {
                deadtime
            } else if deadtime < 6_000 {
                12_000
            } else {
                deadtime * 2
            };
            let v = format!("{}ms", self.cfg.initdead_ms);
            self.record("initdead", &v);
        }
        let initdead = self.cfg.initdead_ms;
        if initdead < deadtime {
            self.err(format!(
                "Initial dead time [{initdead}] is smaller than deadtime [{deadtime}]"
            ));
        } else if initdead < 10_000 {
            self.warn(format!(
                "Initial dead time [{initdead} ms] may be too small!"
            ));
            self.info("Initial dead time accounts for slow network startup time");
            self.info("It should be >= deadtime and >= 10 seconds");
        }
        if !self.deadping_set {
            self.cfg.deadping_ms = deadtime;
            let v = format!("{deadtime}ms");
            self.record("deadping", &v);
        } else if self.cfg.deadping_ms <= keepalive.saturating_mul(2) {
            let deadping = self.cfg.deadping_ms;
            self.err(format!(
                "Ping dead time [{deadping}] is too small compared to keeplive [{keepalive}]"
            ));
        }
        if !self.udpport_set {
            let v = DEFAULT_UDPPORT.to_string();
            self.record("udpport", &v);
        }
        if self.manage_resources && self.cfg.auto_failback == AutoFailback::Legacy {
            self.warn("Deprecated 'legacy' auto_failback option selected.");
            self.warn("Please convert to 'auto_failback on'.");
            self.warn("See documentation for conversion details.");
        }
        if self.cfg.logfacility.is_some() {
            for name in ["logfile", "debugfile"] {
                self.cfg
                    .parameters
                    .entry(name.to_string())
                    .or_insert_with(|| "/dev/null".to_string());
            }
        }
        if self.cfg.autojoin != AutoJoin::None {
            // 3.0.6's lines, at the line that set autojoin (so --check names it).
            let line = self
                .cfg
                .directive_lines
                .get("autojoin")
                .copied()
                .unwrap_or(0);
            if self.manage_resources {
                for m in [
                    "R1 style resource management conflicts with  autojoin set",
                    "You need either unset autojoin or enable crm",
                ] {
                    self.push(Severity::Error, line, m.into());
                }
            } else {
                self.push(
                    Severity::Error,
                    line,
                    "autojoin other/any is not supported: this daemon only knows the nodes \
                     declared in ha.cf"
                        .into(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/etc/ha.d//ha.cf";
    const BASE: &str = "node alice\nnode bob\nucast hb0 10.0.0.2\nauto_failback on\n";

    fn run(text: &str) -> (HaCf, Vec<Diagnostic>) {
        parse_partial(text, Path::new(P), "alice", None, true)
    }

    fn ok(extra: &str) -> HaCf {
        let text = format!("{BASE}{extra}");
        match parse(&text, Path::new(P), "alice", None) {
            (Some(cfg), _) => cfg,
            (None, d) => panic!("unexpected errors: {d:#?}"),
        }
    }

    fn errors(extra: &str) -> Vec<(usize, String)> {
        let text = format!("{BASE}{extra}");
        let (cfg, diags) = parse(&text, Path::new(P), "alice", None);
        assert!(cfg.is_none(), "expected a failure for {extra:?}");
        diags
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| (d.line, d.message))
            .collect()
    }

    fn warnings(extra: &str) -> Vec<(usize, String)> {
        let text = format!("{BASE}{extra}");
        let (_, diags) = parse(&text, Path::new(P), "alice", None);
        diags
            .into_iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(|d| (d.line, d.message))
            .collect()
    }

    #[test]
    fn hash_anywhere_ends_the_line() {
        let cfg = ok("node carol#dave\nkeepalive 2 # 5\n# deadtime 1\n");
        assert_eq!(cfg.nodes, vec!["alice", "bob", "carol"]);
        assert_eq!(cfg.keepalive_ms, 2000);
        assert_eq!(cfg.parameters["keepalive"], "2");
    }

    #[test]
    fn crlf_and_leading_blanks() {
        let text = "node alice\r\n  \tnode bob\r\nucast hb0 10.0.0.2\r\n\r\nkeepalive 2\r\nauto_failback on\r\n";
        let (cfg, diags) = parse(text, Path::new(P), "alice", None);
        assert!(diags.is_empty(), "{diags:?}");
        let cfg = cfg.expect("valid");
        assert_eq!(cfg.keepalive_ms, 2000);
        assert_eq!(cfg.media.len(), 1);
    }

    #[test]
    fn option_lists_split_on_blanks_and_commas() {
        let cfg = ok("node carol,dave  erin\nkeepalive 2,5\n");
        assert_eq!(cfg.nodes, vec!["alice", "bob", "carol", "dave", "erin"]);
        assert_eq!(cfg.keepalive_ms, 5000);
        assert_eq!(cfg.parameters["keepalive"], "5");
    }

    #[test]
    fn directive_without_value_is_ignored() {
        let cfg = ok("keepalive\n");
        assert_eq!(cfg.keepalive_ms, 1000);
        assert_eq!(
            warnings("keepalive\n"),
            vec![(
                5,
                "keepalive: no value given; the line is ignored".to_string()
            )]
        );
    }

    #[test]
    fn directive_names_are_case_sensitive() {
        let e = errors("Keepalive 2\n");
        assert_eq!(e.len(), 1);
        assert!(e[0]
            .1
            .starts_with("Illegal directive [Keepalive] in /etc/ha.d//ha.cf"));
        assert!(e[0].1.contains("did you mean 'keepalive'"));
    }

    #[test]
    fn unshipped_media_are_illegal() {
        for name in ["hbaping", "tipc", "rds", "normalpoll"] {
            let e = errors(&format!("{name} x\n"));
            assert!(e[0]
                .1
                .starts_with(&format!("Illegal directive [{name}] in /etc/ha.d//ha.cf")));
        }
    }

    #[test]
    fn whole_line_directives_get_the_rest_of_the_line() {
        let cfg = ok("respawn hacluster /usr/lib/heartbeat/ipfail -a,b  c\n");
        assert_eq!(cfg.clients.len(), 1);
        assert_eq!(cfg.clients[0].user, "hacluster");
        assert_eq!(cfg.clients[0].command, "/usr/lib/heartbeat/ipfail -a,b  c");
        assert_eq!(cfg.clients[0].path, "/usr/lib/heartbeat/ipfail");
        assert!(!cfg.clients[0].failfast);
    }

    #[test]
    fn half_a_time_value_in_hacf() {
        // `500 ms` is two tokens: 500 seconds, then `ms`, which is invalid.
        let e = errors("keepalive 500 ms\ndeadtime 2000\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].1.starts_with("keepalive: invalid value [ms]"), "{e:?}");
    }

    #[test]
    fn time_table_in_hacf() {
        for (written, ms) in [
            ("2", 2000),
            ("1.5", 1500),
            (".25", 250),
            ("0.5", 500),
            ("500ms", 500),
            ("2000ms", 2000),
            ("1500MS", 1500),
            ("1msec", 1),
            ("2000us", 2),
            ("1500000us", 1500),
            ("1.5ms", 2),
            ("1.2.3", 1200),
        ] {
            let cfg = ok(&format!("keepalive {written}\ndeadtime 60\n"));
            assert_eq!(cfg.keepalive_ms, ms, "{written}");
            assert_eq!(cfg.parameters["keepalive"], written);
        }
        for bad in ["1s", "3x", "1e3", "abc", "-1"] {
            let e = errors(&format!("keepalive {bad}\n"));
            assert_eq!(e.len(), 1, "{bad}");
            assert_eq!(e[0].0, 5);
            assert!(
                e[0].1
                    .starts_with(&format!("keepalive: invalid value [{bad}]")),
                "{e:?}"
            );
        }
        // 0 where 0 is allowed, refused where it is not.
        let (cfg, diags) = run("initdead 0\ndeadtime 0\ndeadping 0\n");
        assert_eq!(
            (cfg.initdead_ms, cfg.deadtime_ms, cfg.deadping_ms),
            (0, 0, 0)
        );
        assert!(
            diags.iter().all(|d| d.line == 0),
            "0 is a valid value for all three: {diags:?}"
        );
        assert!(errors("keepalive 0\n")[0].1.contains("greater than 0"));
        assert!(errors("keepalive 0.0001\n")[0].1.contains("greater than 0"));
    }

    #[test]
    fn udp_alias() {
        let (cfg, diags) = run("udp eth0\nnode alice\n");
        assert_eq!(
            diags[0].message,
            "WARNING: directive 'udp' replaced by 'bcast'"
        );
        assert_eq!(diags[0].severity, Severity::Warning);
        assert_eq!(
            cfg.media[0].kind,
            MediumKind::Bcast {
                ifname: "eth0".into(),
                port: 694
            }
        );
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("12"), (12, true));
        assert_eq!(atoi("-3"), (-3, true));
        assert_eq!(atoi("12ab"), (12, false));
        assert_eq!(atoi("ab"), (0, false));
        assert_eq!(atoi(""), (0, false));
        assert_eq!(atoi("-"), (0, false));
        assert_eq!(atoi("99999999999999999999999").0, i64::MAX);
    }

    #[test]
    fn booleans() {
        for t in ["true", "on", "yes", "y", "1", "TRUE", "On", "Y"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "off", "no", "n", "0", "OFF", "No"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for x in ["", "2", "enable", "yes!"] {
            assert_eq!(parse_bool(x), None, "{x}");
        }
    }

    #[test]
    fn host_checks() {
        assert!(check_ipv4_or_host("10.0.0.1").is_ok());
        assert!(check_ipv4_or_host("bob.example.com").is_ok());
        assert!(check_ipv4_or_host("10.1").is_ok());
        assert!(check_ipv4_or_host("10.0.0.256").is_err());
        assert!(check_ipv4_or_host("10..0.1").is_err());
        assert!(check_ipv4_or_host("fe80::1").is_err());
        assert!(check_ipv6_or_host("fe80::1%hb0").is_ok());
        assert!(check_ipv6_or_host("bob6").is_ok());
        assert!(check_ipv6_or_host("zz::zz").is_err());
    }

    #[test]
    fn lines_longer_than_3_0_6_reads_warn() {
        let long = format!("cluster {}\n", "x".repeat(6000));
        let w = warnings(&long);
        assert_eq!(w.len(), 1);
        assert!(w[0].1.contains("5119"));
    }

    #[test]
    fn nul_ends_a_line_like_a_c_string() {
        let cfg = ok("node carol\0dave\n");
        assert_eq!(cfg.nodes, vec!["alice", "bob", "carol"]);
    }

    #[test]
    fn default_matches_unconfigured_values() {
        let d = HaCf::default();
        assert_eq!(
            (d.keepalive_ms, d.deadtime_ms, d.warntime_ms, d.initdead_ms),
            (1000, 30000, 15000, 30000)
        );
        assert_eq!((d.udpport, d.baud, d.hopfudge), (694, 19200, 1));
        assert_eq!(d.auto_failback, AutoFailback::Legacy);
    }
}
