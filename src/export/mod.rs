//! `heartbeat --export pacemaker|keepalived`: the same cluster, described for another engine.
//!
//! Pure: [`pacemaker`] and [`keepalived`] take the parsed [`Config`] and the few facts about the
//! machine that a v1 configuration leaves implicit ([`Facts`]: which node we are, this machine's
//! addresses, where each resource script lives, random bytes for a key) and return files as
//! bytes plus a plain list of everything that could not be carried over ([`Note`]). The caller
//! (`runtime::cli::export`) gathers the facts and writes the files.
//!
//! Nothing is dropped silently: every ha.cf medium, haresources resource and `stonith_host`
//! line either appears in the output or in the notes (also written to `REPORT.txt`).

pub mod keepalived;
pub mod pacemaker;
pub mod resources;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::config::{AuthMethod, Config, MediumKind, Stonith};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Where 3.0.6 would find a resource script (it looks in `resource.d`, then `/etc/init.d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptPlace {
    /// `<confdir>/resource.d/<name>`, executable.
    ResourceD,
    /// `/etc/init.d/<name>`, executable.
    InitD,
    /// Neither (3.0.6 would log `Cannot locate resource script`).
    Missing,
}

/// What the export needs to know about the machine it runs on.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// This node's name (`--node`, `nodeinfo` or `uname -n`), lowercased.
    pub local_node: String,
    /// This machine's addresses: (interface, address).
    pub local_addrs: Vec<(String, IpAddr)>,
    /// Where each script named in haresources was found; absent names count as Missing.
    pub scripts: BTreeMap<String, ScriptPlace>,
    /// Parameter names of STONITH plugin types (`stonith -t TYPE -n`), in order.
    pub stonith_params: BTreeMap<String, Vec<String>>,
    /// At least 256 random bytes, used when authkeys has no secret (crc).
    pub random: Vec<u8>,
    /// Addresses the operator gave (`--node-address NODE=ADDR[,ADDR...]`): a node's address
    /// on each link, in link order. They win over what ha.cf and this machine tell.
    pub node_addrs: BTreeMap<String, Vec<IpAddr>>,
}

/// One output file: a path relative to the output directory, its bytes and its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub bytes: Vec<u8>,
    pub mode: u32,
}

impl File {
    fn text(path: impl Into<String>, text: String, mode: u32) -> File {
        File {
            path: path.into(),
            bytes: text.into_bytes(),
            mode,
        }
    }
}

/// Something of the v1 configuration the export could not carry over as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `ha.cf:12` or `haresources:3`; empty for the configuration as a whole.
    pub place: String,
    pub text: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.place.is_empty() {
            write!(f, "{}", self.text)
        } else {
            write!(f, "{}: {}", self.place, self.text)
        }
    }
}

/// The result of an export: files to write and notes to show (also in `REPORT.txt`).
#[derive(Debug, Clone, Default)]
pub struct Export {
    pub files: Vec<File>,
    /// What was done that an operator must know (key source, addresses by name, ...).
    pub info: Vec<Note>,
    /// What could not be carried over.
    pub unmapped: Vec<Note>,
}

impl Export {
    pub fn file(&self, path: &str) -> Option<&File> {
        self.files.iter().find(|f| f.path == path)
    }
    pub fn text(&self, path: &str) -> Option<String> {
        self.file(path)
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
    }

    fn report(&self, title: &str) -> String {
        let mut s = format!("{title}\n\n");
        s.push_str("Carried over with these choices:\n");
        if self.info.is_empty() {
            s.push_str("  (nothing to say)\n");
        }
        for n in &self.info {
            s.push_str(&format!("  - {n}\n"));
        }
        s.push_str("\nNot carried over (act on each before you switch):\n");
        if self.unmapped.is_empty() {
            s.push_str("  (nothing: everything was mapped)\n");
        }
        for n in &self.unmapped {
            s.push_str(&format!("  - {n}\n"));
        }
        s
    }
}

fn hacf_place(line: usize) -> String {
    format!("ha.cf:{line}")
}

fn hr_place(line: usize) -> String {
    format!("haresources:{line}")
}

/// A node's address on one link, and how we know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeAddr {
    Addr(IpAddr),
    /// Unknown: the node name, for the engine to resolve.
    Name(String),
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeAddr::Addr(a) => write!(f, "{a}"),
            NodeAddr::Name(n) => write!(f, "{n}"),
        }
    }
}

/// One network path between the nodes (an interface named by ucast/bcast/mcast media).
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub ifname: String,
    /// The ha.cf lines that declared it.
    pub lines: Vec<usize>,
    /// One per node, in ha.cf node order.
    pub addrs: Vec<NodeAddr>,
}

impl Link {
    pub fn all_known(&self) -> bool {
        self.addrs.iter().all(|a| matches!(a, NodeAddr::Addr(_)))
    }
}

/// The links of a configuration, in ha.cf order of their first medium, with each node's
/// address where it can be told: a ucast address that is one of ours is ours; for a pair, the
/// other ucast address of that interface (or the only one, when ha.cf names the peer only) is
/// the peer's; a node whose address on a link cannot be told keeps its name.
pub(crate) fn links(cfg: &Config, facts: &Facts, notes: &mut Vec<Note>) -> Vec<Link> {
    let nodes = &cfg.hacf.nodes;
    let mut order: Vec<String> = Vec::new();
    let mut lines: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut ucast: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for m in &cfg.hacf.media {
        let (ifname, peer) = match &m.kind {
            MediumKind::Ucast { ifname, peer, .. } | MediumKind::Ucast6 { ifname, peer, .. } => {
                (ifname, Some(peer))
            }
            MediumKind::Bcast { ifname, .. }
            | MediumKind::Mcast { ifname, .. }
            | MediumKind::Mcast6 { ifname, .. } => (ifname, None),
            MediumKind::Serial { device, .. } => {
                notes.push(Note {
                    place: hacf_place(m.line),
                    text: format!(
                        "serial {device}: the new engine has no serial links; this path is \
                         dropped, add a second network instead"
                    ),
                });
                continue;
            }
            // Ping nodes are resources of the new cluster (see ping_hosts).
            MediumKind::Ping { .. } | MediumKind::Ping6 { .. } | MediumKind::PingGroup { .. } => {
                continue
            }
        };
        if !order.contains(ifname) {
            order.push(ifname.clone());
        }
        lines.entry(ifname.clone()).or_default().push(m.line);
        if let Some(peer) = peer {
            match peer.parse::<IpAddr>() {
                Ok(a) => {
                    let v = ucast.entry(ifname.clone()).or_default();
                    if !v.contains(&a) {
                        v.push(a);
                    }
                }
                Err(_) => notes.push(Note {
                    place: hacf_place(m.line),
                    text: format!(
                        "ucast {ifname} {peer}: a host name, left for the engine to resolve"
                    ),
                }),
            }
        }
    }
    let local_idx = nodes.iter().position(|n| *n == facts.local_node);
    let is_local = |a: &IpAddr| facts.local_addrs.iter().any(|(_, l)| l == a);
    let mut out = Vec::new();
    for ifname in order {
        let mut addrs: Vec<NodeAddr> = nodes.iter().map(|n| NodeAddr::Name(n.clone())).collect();
        let listed = ucast.get(&ifname).cloned().unwrap_or_default();
        if let Some(li) = local_idx {
            let own = listed.iter().copied().find(|a| is_local(a)).or_else(|| {
                facts
                    .local_addrs
                    .iter()
                    .find(|(i, a)| *i == ifname && a.is_ipv4())
                    .map(|(_, a)| *a)
            });
            if let Some(own) = own {
                addrs[li] = NodeAddr::Addr(own);
                let others: Vec<IpAddr> = listed.iter().copied().filter(|a| *a != own).collect();
                if nodes.len() == 2 && others.len() == 1 {
                    addrs[1 - li] = NodeAddr::Addr(others[0]);
                }
            }
        }
        for (ni, n) in nodes.iter().enumerate() {
            if let Some(a) = facts.node_addrs.get(n).and_then(|v| v.get(out.len())) {
                addrs[ni] = NodeAddr::Addr(*a);
            }
        }
        let link = Link {
            ifname: ifname.clone(),
            lines: lines.remove(&ifname).unwrap_or_default(),
            addrs,
        };
        if !link.all_known() {
            let unknown: Vec<String> = nodes
                .iter()
                .zip(&link.addrs)
                .filter(|(_, a)| matches!(a, NodeAddr::Name(_)))
                .map(|(n, _)| n.clone())
                .collect();
            notes.push(Note {
                place: hacf_place(link.lines[0]),
                text: format!(
                    "link {ifname}: the address of {} on it cannot be told from ha.cf{}; the \
                     node name stands for it and must resolve to that address (or give \
                     --node-address NODE=ADDR[,ADDR...], one address per link)",
                    unknown.join(", "),
                    if local_idx.is_some() {
                        ""
                    } else {
                        " on a machine that is not a node (--node names the node this is)"
                    }
                ),
            });
        }
        out.push(link);
    }
    out
}

/// The key material: derived from the active authkeys secret, or random. 256 bytes.
/// Returns the key and a sentence saying where it came from.
pub(crate) fn cluster_key(cfg: &Config, facts: &Facts, purpose: &str) -> (Vec<u8>, String) {
    let ak = cfg.authkeys.active_key();
    if ak.method != AuthMethod::Crc && !ak.key.is_empty() {
        // HMAC-SHA1 in counter mode keyed with the authkeys secret: every node running the
        // export computes the same key; it is exactly as secret as the authkeys line.
        let mut out = Vec::new();
        let mut counter: u32 = 1;
        while out.len() < 256 {
            let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&ak.key)
                .expect("HMAC accepts keys of any length");
            mac.update(b"heartbeat-rs export ");
            mac.update(purpose.as_bytes());
            mac.update(&counter.to_be_bytes());
            out.extend_from_slice(&mac.finalize().into_bytes());
            counter += 1;
        }
        out.truncate(256);
        (
            out,
            format!(
                "derived from authkeys key {} ({}); every node's export gives the same key, as \
                 secret as that line",
                cfg.authkeys.active,
                ak.method.name()
            ),
        )
    } else {
        let mut out = facts.random.clone();
        out.truncate(256);
        (
            out,
            format!(
                "generated at random (authkeys key {} is crc, which has no secret); copy this \
                 key to every node, do not export again on each",
                cfg.authkeys.active
            ),
        )
    }
}

/// The ping hosts of ha.cf (`ping`, `ping6`, `ping_group`), with their lines.
pub(crate) fn ping_hosts(cfg: &Config) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for m in &cfg.hacf.media {
        match &m.kind {
            MediumKind::Ping { addr } | MediumKind::Ping6 { addr } => {
                out.push((m.line, addr.clone()))
            }
            MediumKind::PingGroup { addrs, .. } => {
                out.extend(addrs.iter().map(|a| (m.line, a.clone())))
            }
            _ => {}
        }
    }
    out
}

/// Every node's `stonith`/`stonith_host` device: ha.cf is parsed once as each node, the way
/// 3.0.6 on that node would read it (the parser keeps only the lines that apply to the node).
pub fn stonith_per_node(
    hacf_text: &str,
    hacf_path: &std::path::Path,
    nodes: &[String],
) -> Vec<(String, Stonith)> {
    nodes
        .iter()
        .filter_map(|n| {
            let (cfg, _) = crate::config::hacf::parse_partial(hacf_text, hacf_path, n, None, true);
            cfg.stonith.map(|s| (n.clone(), s))
        })
        .collect()
}

/// Make a word usable as an XML ID / shell-safe name: letters, digits, `-`, `_`, `.`; a letter
/// first.
pub(crate) fn ident(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    let s = s.trim_matches('_').to_string();
    if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        format!("r-{s}")
    } else {
        s
    }
}

/// Quote a word for a POSIX shell (single quotes).
pub(crate) fn shq(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Escape text for an XML attribute value.
pub(crate) fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_makes_xml_ids() {
        assert_eq!(ident("10.0.0.1"), "r-10.0.0.1");
        assert_eq!(ident("fs-/srv/nfs"), "fs-_srv_nfs");
        assert_eq!(ident("web"), "web");
        assert_eq!(ident("///"), "r-");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shq("a b"), "'a b'");
        assert_eq!(shq("it's"), "'it'\\''s'");
        assert_eq!(shq("/etc/x"), "/etc/x");
        assert_eq!(shq(""), "''");
    }
}
