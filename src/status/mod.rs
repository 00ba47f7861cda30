//! What `cl_status` can ask the daemon: a [`ClusterView`] snapshot, its text serialization for
//! the control socket, and (in [`cl_status`]) the pure formatter that turns a command line and a
//! snapshot into the exact output of Heartbeat 3.0.6's `cl_status`.
//!
//! Pure: no sockets, no clock. The daemon builds a view with [`ClusterView::build`] from the
//! membership state machine and the parsed `ha.cf`; the control socket carries it as text
//! ([`ClusterView::to_text`] / [`ClusterView::from_text`]).

pub mod cl_status;
pub mod ops;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::cluster::Membership;
use crate::config::{HaCf, MediumKind};

/// What `hbstatus -v` prints after `managed by:` in v1 mode (3.0.6 prints it even with `-M`).
pub const MANAGED_BY_V1: &str = "haresources";

/// First line of a serialized view; the number is the format's version.
const VIEW_MAGIC: &str = "hbview 1";

/// At most this many nodes, links per node, parameters or clients in a parsed view (the
/// parser is fed by a socket; these bound what a confused peer can make us allocate).
const MAX_ITEMS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeType {
    /// A `node` line.
    Normal,
    /// A `ping` / `ping6` host or a `ping_group`.
    Ping,
}

impl NodeType {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Normal => "normal",
            NodeType::Ping => "ping",
        }
    }

    fn parse(s: &str) -> Option<NodeType> {
        match s {
            "normal" => Some(NodeType::Normal),
            "ping" => Some(NodeType::Ping),
            _ => None,
        }
    }
}

/// One heartbeat link of a node, as `listhblinks -v` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkView {
    /// The interface, device path or ping address as written in ha.cf.
    pub name: String,
    pub up: bool,
}

/// One entry of the node table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// Lowercased, as the daemon knows it.
    pub name: String,
    pub node_type: NodeType,
    /// `init`, `up`, `active`, `dead` or `ping`.
    pub status: String,
    /// In ha.cf order (`cl_status` prints them reversed), one entry per distinct link name.
    pub links: Vec<LinkView>,
}

/// A client of the daemon's API on some node (`clientstatus`). This daemon serves no API
/// clients; the list holds its built-in ones on this node (ipfail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientView {
    pub node: String,
    pub client: String,
    /// `online`, `offline`, `join` or `leave`.
    pub status: String,
}

/// Everything `cl_status` can show, taken at one instant on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// `hbstatus -v`'s `version:` line and `hbparameter -p hbversion`.
    pub version: String,
    /// `managed by:` (always [`MANAGED_BY_V1`] here).
    pub managed_by: String,
    /// This node's name (`test`'s `mynodeid`, `clientstatus` on the local node).
    pub my_node: String,
    /// For `test`: `Dead time` and `keeplive time` in ms.
    pub deadtime_ms: u64,
    pub keepalive_ms: u64,
    /// The node table in ha.cf order, ping nodes included (`cl_status` prints it reversed).
    pub nodes: Vec<NodeView>,
    /// `hbparameter` answers: every recorded ha.cf value as written, defaults, derived values,
    /// `hbversion` and the current `debug` level.
    pub parameters: BTreeMap<String, String>,
    /// `rscstatus`: `none`, `local`, `foreign`, `all` or `transition`; None when resources are
    /// not managed (`-M`), which `rscstatus` reports as an error.
    pub rscstatus: Option<String>,
    pub clients: Vec<ClientView>,
}

/// `rscstatus` before the resource manager reports anything.
pub const RSC_NONE: &str = "none";

impl ClusterView {
    /// The view of the running daemon.
    ///
    /// * the node table mixes `node` entries and ping nodes in ha.cf line order, as 3.0.6's
    ///   node table does;
    /// * a normal node's links are the non-ping media, one per distinct name (3.0.6 keeps one
    ///   link per name: two `ucast hb0 ...` lines make one link `hb0`), up when any medium of
    ///   that name has heard the node within its dead time;
    /// * a ping node has one link named after itself, up while it is `ping`; one the
    ///   membership layer does not know (never, in practice) is shown `dead`, link dead;
    /// * `rscstatus` comes from the resource manager (None with `-M`);
    /// * `debug_level` is the current debug level (`hbparameter -p debug`).
    pub fn build(
        membership: &Membership,
        hacf: &HaCf,
        version: &str,
        rscstatus: Option<&str>,
        debug_level: u32,
    ) -> ClusterView {
        let is_ping = |k: &MediumKind| {
            matches!(
                k,
                MediumKind::Ping { .. } | MediumKind::Ping6 { .. } | MediumKind::PingGroup { .. }
            )
        };
        // (line, index, name, type): nodes then ping media, sorted by line (stable).
        let mut table: Vec<(usize, String, NodeType)> = Vec::new();
        let lines_known = hacf.node_lines.len() == hacf.nodes.len();
        for (i, n) in hacf.nodes.iter().enumerate() {
            let line = if lines_known { hacf.node_lines[i] } else { 0 };
            table.push((line, n.clone(), NodeType::Normal));
        }
        let mut ping_names = hacf.ping_node_names().into_iter();
        for m in hacf.media.iter().filter(|m| is_ping(&m.kind)) {
            if let Some(name) = ping_names.next() {
                let line = if lines_known { m.line } else { usize::MAX };
                table.push((line, name, NodeType::Ping));
            }
        }
        table.sort_by_key(|(line, _, _)| *line);
        // Membership knows nodes that ha.cf no longer lists only between a reload's parse and
        // its reconfigure; show what ha.cf says.
        let media_is_ping: Vec<bool> = hacf.media.iter().map(|m| is_ping(&m.kind)).collect();
        let nodes = table
            .into_iter()
            .map(|(_, name, node_type)| {
                let known = membership.node_status(&name);
                let status = match (node_type, known) {
                    (_, Some(st)) => st.as_str().to_string(),
                    (NodeType::Normal, None) => "init".to_string(),
                    (NodeType::Ping, None) => "dead".to_string(),
                };
                let links = match node_type {
                    NodeType::Normal => {
                        let per_medium = membership.link_status(&name).unwrap_or_default();
                        let mut links: Vec<LinkView> = Vec::new();
                        for (i, (lname, up)) in per_medium.into_iter().enumerate() {
                            if media_is_ping.get(i).copied().unwrap_or(false) {
                                continue;
                            }
                            match links.iter_mut().find(|l| l.name == lname) {
                                Some(l) => l.up |= up,
                                None => links.push(LinkView { name: lname, up }),
                            }
                        }
                        links
                    }
                    NodeType::Ping => vec![LinkView {
                        name: name.clone(),
                        up: status == "ping",
                    }],
                };
                NodeView {
                    name,
                    node_type,
                    status,
                    links,
                }
            })
            .collect();
        let mut parameters = hacf.parameters.clone();
        parameters.insert("hbversion".to_string(), version.to_string());
        parameters.insert("debug".to_string(), debug_level.to_string());
        ClusterView {
            version: version.to_string(),
            managed_by: MANAGED_BY_V1.to_string(),
            my_node: membership.identity().name.to_ascii_lowercase(),
            deadtime_ms: hacf.deadtime_ms,
            keepalive_ms: hacf.keepalive_ms,
            nodes,
            parameters,
            rscstatus: rscstatus.map(str::to_string),
            clients: Vec::new(),
        }
    }

    /// The node named `name`, compared without regard to case (3.0.6 lowercases node names).
    pub fn node(&self, name: &str) -> Option<&NodeView> {
        let lower = name.to_ascii_lowercase();
        self.nodes.iter().find(|n| n.name == lower)
    }

    /// The serialized form carried by the control socket: one record per line, fields
    /// separated by TAB, each field escaped with [`escape`]:
    ///
    /// ```text
    /// hbview 1
    /// version     <text>
    /// managed_by  <text>
    /// my_node     <name>
    /// deadtime_ms <n>
    /// keepalive_ms <n>
    /// rscstatus   <word>          (absent: not managed)
    /// node        <name> <normal|ping> <status>
    /// link        <name> <up|dead>       (a link of the node record before it)
    /// param       <name> <value>
    /// client      <node> <client> <status>
    /// end
    /// ```
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let mut rec = |fields: &[&str]| {
            let line: Vec<String> = fields.iter().map(|f| escape(f)).collect();
            s.push_str(&line.join("\t"));
            s.push('\n');
        };
        rec(&[VIEW_MAGIC]);
        rec(&["version", &self.version]);
        rec(&["managed_by", &self.managed_by]);
        rec(&["my_node", &self.my_node]);
        rec(&["deadtime_ms", &self.deadtime_ms.to_string()]);
        rec(&["keepalive_ms", &self.keepalive_ms.to_string()]);
        if let Some(r) = &self.rscstatus {
            rec(&["rscstatus", r]);
        }
        for n in &self.nodes {
            rec(&["node", &n.name, n.node_type.as_str(), &n.status]);
            for l in &n.links {
                rec(&["link", &l.name, if l.up { "up" } else { "dead" }]);
            }
        }
        for (k, v) in &self.parameters {
            rec(&["param", k, v]);
        }
        for c in &self.clients {
            rec(&["client", &c.node, &c.client, &c.status]);
        }
        rec(&["end"]);
        s
    }

    /// Parse what [`ClusterView::to_text`] wrote. Never panics; any defect is an Err.
    pub fn from_text(text: &str) -> Result<ClusterView, String> {
        let mut lines = text.split('\n');
        if lines.next() != Some(VIEW_MAGIC) {
            return Err("not a cluster view (bad first line)".into());
        }
        let mut v = ClusterView {
            version: String::new(),
            managed_by: String::new(),
            my_node: String::new(),
            deadtime_ms: 0,
            keepalive_ms: 0,
            nodes: Vec::new(),
            parameters: BTreeMap::new(),
            rscstatus: None,
            clients: Vec::new(),
        };
        let mut ended = false;
        for (no, line) in lines.enumerate() {
            if ended {
                if line.is_empty() {
                    continue;
                }
                return Err("data after `end`".into());
            }
            let fields: Vec<String> = line
                .split('\t')
                .map(unescape)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("line {}: {e}", no + 2))?;
            let f: Vec<&str> = fields.iter().map(String::as_str).collect();
            let bad = || format!("line {}: bad record {:?}", no + 2, line);
            match f.as_slice() {
                ["version", x] => v.version = x.to_string(),
                ["managed_by", x] => v.managed_by = x.to_string(),
                ["my_node", x] => v.my_node = x.to_string(),
                ["deadtime_ms", x] => v.deadtime_ms = x.parse().map_err(|_| bad())?,
                ["keepalive_ms", x] => v.keepalive_ms = x.parse().map_err(|_| bad())?,
                ["rscstatus", x] => v.rscstatus = Some(x.to_string()),
                ["node", name, t, status] => {
                    if v.nodes.len() >= MAX_ITEMS {
                        return Err("too many nodes".into());
                    }
                    v.nodes.push(NodeView {
                        name: name.to_string(),
                        node_type: NodeType::parse(t).ok_or_else(bad)?,
                        status: status.to_string(),
                        links: Vec::new(),
                    });
                }
                ["link", name, st] => {
                    let up = match *st {
                        "up" => true,
                        "dead" => false,
                        _ => return Err(bad()),
                    };
                    let node = v.nodes.last_mut().ok_or_else(bad)?;
                    if node.links.len() >= MAX_ITEMS {
                        return Err("too many links".into());
                    }
                    node.links.push(LinkView {
                        name: name.to_string(),
                        up,
                    });
                }
                ["param", k, val] => {
                    if v.parameters.len() >= MAX_ITEMS {
                        return Err("too many parameters".into());
                    }
                    v.parameters.insert(k.to_string(), val.to_string());
                }
                ["client", node, client, status] => {
                    if v.clients.len() >= MAX_ITEMS {
                        return Err("too many clients".into());
                    }
                    v.clients.push(ClientView {
                        node: node.to_string(),
                        client: client.to_string(),
                        status: status.to_string(),
                    });
                }
                ["end"] => ended = true,
                _ => return Err(bad()),
            }
        }
        if !ended {
            return Err("truncated cluster view (no `end`)".into());
        }
        Ok(v)
    }
}

/// Escape a field for the control protocol: `%`, TAB, LF, CR and the other control
/// characters become `%XX` (upper-case hex of the byte); everything else is kept.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || c.is_ascii_control() {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Undo [`escape`]. Err on a `%` not followed by two hex digits or a result that is not UTF-8.
pub fn unescape(s: &str) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("bad escape in {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_view() -> ClusterView {
        let link = |name: &str, up: bool| LinkView {
            name: name.into(),
            up,
        };
        let mut parameters = BTreeMap::new();
        for (k, v) in [
            ("keepalive", "1"),
            ("deadtime", "6"),
            ("warntime", "3"),
            ("initdead", "12"),
            ("deadping", "6000ms"),
            ("udpport", "694"),
            ("pacemaker", "off"),
        ] {
            parameters.insert(k.to_string(), v.to_string());
        }
        ClusterView {
            version: "3.0.6 (node: x)".into(),
            managed_by: MANAGED_BY_V1.into(),
            my_node: "alice".into(),
            deadtime_ms: 6000,
            keepalive_ms: 1000,
            nodes: vec![
                NodeView {
                    name: "alice".into(),
                    node_type: NodeType::Normal,
                    status: "active".into(),
                    links: vec![link("hb0", true), link("hb1", true)],
                },
                NodeView {
                    name: "bob".into(),
                    node_type: NodeType::Normal,
                    status: "dead".into(),
                    links: vec![link("hb0", false), link("hb1", false)],
                },
            ],
            parameters,
            rscstatus: Some("all".into()),
            clients: vec![ClientView {
                node: "alice".into(),
                client: "ipfail".into(),
                status: "online".into(),
            }],
        }
    }

    #[test]
    fn text_round_trip() {
        let mut v = lab_view();
        v.parameters
            .insert("odd".into(), "tab\there\nnewline 100% \u{e9}".into());
        let t = v.to_text();
        assert_eq!(ClusterView::from_text(&t), Ok(v.clone()));
        v.rscstatus = None;
        v.nodes.clear();
        assert_eq!(ClusterView::from_text(&v.to_text()), Ok(v));
    }

    #[test]
    fn text_rejects_defects() {
        let t = lab_view().to_text();
        assert!(ClusterView::from_text("").is_err());
        assert!(ClusterView::from_text(&t.replace("end\n", "")).is_err());
        assert!(ClusterView::from_text(&t.replace("\tup\n", "\tmaybe\n")).is_err());
        assert!(ClusterView::from_text(&t.replace("hbview 1", "hbview 2")).is_err());
        assert!(ClusterView::from_text(&format!("{t}junk\n")).is_err());
        assert!(ClusterView::from_text("hbview 1\nlink\thb0\tup\nend\n").is_err());
        assert!(ClusterView::from_text("hbview 1\nversion\t%4\nend\n").is_err());
        assert!(ClusterView::from_text("hbview 1\nversion\t%FF\nend\n").is_err());
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a\tb%c\n"), "a%09b%25c%0A");
        assert_eq!(unescape("a%09b%25c%0A").as_deref(), Ok("a\tb%c\n"));
        assert!(unescape("%").is_err());
        assert!(unescape("%zz").is_err());
    }

    /// A fresh node (before comm-up, nothing heard): ping nodes in file order among the
    /// `node` lines, one link per distinct name, ping media not listed as links of normal
    /// nodes, derived parameters, hbversion and the debug level.
    #[test]
    fn build_from_config_and_membership() {
        use crate::cluster::{Identity, Now, Params};
        use crate::config::hacf;
        use crate::wire::Authenticator;
        use std::path::Path;

        let text = "keepalive 500ms\ndeadtime 3\nping 10.0.0.9\n\
                    ucast hb0 10.0.0.1\nucast hb0 10.0.0.2\nbcast hb1\n\
                    node alice\nping_group grp1 10.0.0.7 10.0.0.8\nnode Bob\ncrm off\n";
        let ifaces = vec!["hb0".to_string(), "hb1".to_string()];
        let (cfg, diags) = hacf::parse(text, Path::new("/etc/ha.d//ha.cf"), "alice", Some(&ifaces));
        let cfg = cfg.unwrap_or_else(|| panic!("{diags:#?}"));
        let keys = crate::config::authkeys::parse("auth 1\n1 crc\n", Path::new("authkeys"))
            .expect("authkeys");
        let id = Identity {
            name: "alice".into(),
            uuid: [7; 16],
            generation: 1,
        };
        let now = Now {
            mono_ms: 0,
            unix_secs: 1_700_000_000,
        };
        let m = Membership::new(
            Params::from_config(&cfg, "alice"),
            id,
            Authenticator::new(keys),
            now,
            1,
        );
        let v = ClusterView::build(&m, &cfg, "3.0.6 (test)", Some("none"), 2);
        let table: Vec<(&str, NodeType, &str)> = v
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.node_type, n.status.as_str()))
            .collect();
        assert_eq!(
            table,
            vec![
                ("10.0.0.9", NodeType::Ping, "init"),
                ("alice", NodeType::Normal, "up"),
                ("grp1", NodeType::Ping, "init"),
                ("bob", NodeType::Normal, "init"),
            ]
        );
        let names = |n: &NodeView| n.links.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&v.nodes[1]), vec!["hb0", "hb1"]);
        assert_eq!(names(&v.nodes[3]), vec!["hb0", "hb1"]);
        assert_eq!(names(&v.nodes[0]), vec!["10.0.0.9"]);
        assert_eq!(names(&v.nodes[2]), vec!["grp1"]);
        assert!(v.nodes.iter().all(|n| n.links.iter().all(|l| !l.up)));
        assert_eq!(v.my_node, "alice");
        assert_eq!((v.deadtime_ms, v.keepalive_ms), (3000, 500));
        assert_eq!(v.parameters["keepalive"], "500ms");
        assert_eq!(v.parameters["deadtime"], "3");
        assert_eq!(v.parameters["warntime"], "1500ms");
        assert_eq!(v.parameters["hbversion"], "3.0.6 (test)");
        assert_eq!(v.parameters["debug"], "2");
        assert_eq!(v.parameters["pacemaker"], "off");
        assert_eq!(v.rscstatus.as_deref(), Some("none"));
        assert_eq!(v.managed_by, "haresources");
        assert_eq!(ClusterView::from_text(&v.to_text()), Ok(v));
    }

    proptest::proptest! {
        #[test]
        fn escape_round_trips(s in ".*") {
            let e = escape(&s);
            proptest::prop_assert!(!e.contains(['\t', '\n', '\r']));
            proptest::prop_assert_eq!(unescape(&e), Ok(s));
        }

        #[test]
        fn from_text_never_panics(s in "(hbview 1\n)?([a-z_]{0,12}(\t[ -~%]{0,8}){0,4}\n){0,8}(end\n)?") {
            let _ = ClusterView::from_text(&s);
        }
    }

    #[test]
    fn node_lookup_ignores_case() {
        let v = lab_view();
        assert_eq!(v.node("BoB").map(|n| n.name.as_str()), Some("bob"));
        assert!(v.node("carol").is_none());
    }
}
