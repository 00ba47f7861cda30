//! `ha.cf`: every directive Heartbeat 3.0.6 accepts, with its tokenizing, time syntax,
//! defaults and the cross-checks it runs after the file.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::Diagnostic;

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

/// The parsed `ha.cf`. Times are milliseconds. `parameters` keeps every recorded directive's
/// last value **as written** (what `cl_status hbparameter` and the `HA_<name>` environment
/// variables show), defaults and derived values included.
#[derive(Debug, Clone, PartialEq)]
pub struct HaCf {
    pub path: PathBuf,
    /// Declared nodes, lowercased, de-duplicated, in declaration order.
    pub nodes: Vec<String>,
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    pub warntime_ms: u64,
    pub initdead_ms: u64,
    pub deadping_ms: u64,
    pub udpport: u16,
    pub baud: u32,
    pub media: Vec<Medium>,
    pub hopfudge: u32,
    pub auto_failback: AutoFailback,
    pub msgfmt: MsgFmt,
    pub max_rexmit_delay_ms: u64,
    pub logfile: Option<PathBuf>,
    pub debugfile: Option<PathBuf>,
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
    /// Every other directive as given: (line, name, value) for those without a dedicated field.
    pub other: Vec<(usize, String, String)>,
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
    let _ = (
        text,
        path,
        node_name,
        local_ifaces,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    );
    unimplemented!("ha.cf parser")
}
