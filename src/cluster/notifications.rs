//! Which cluster events are offered to the site's `rc.d` hooks, and with which fields.
//!
//! Heartbeat 3.0.6 queues a notification for: each change of a peer's status, the dead status
//! it synthesizes when it takes a dead node's groups over, every link change (`ifstat`), an
//! `ip-request` from another node, every `ip-request-resp`, and every message type it has no
//! built-in handler for (`hb_takeover`, `stonith`, anything a site invents). Each one runs
//! `rc.d/<type lower-cased> <type>` if that file exists, with the message's string fields in
//! the environment as `HA_<field>` (resources.md 7.4, 5). This module decides, `Cluster`
//! offers what it decides as actions; the runtime (`runtime::hooks`) queues and runs them.
//!
//! The stock 3.0.6 `rc.d` scripts do, through helpers this package does not ship
//! (`mach_down`, `ResourceManager`, `req_resource`), what this daemon does itself (takeover,
//! `ip-request` answers, `hb_takeover` mirroring). They stay behind as conffiles when a site
//! swaps packages, so they are recognised ([`classify_script`]) and not run; any other file in
//! `rc.d` is the site's own and runs as 3.0.6 would run it.

use md5::{Digest, Md5};

use super::membership::{Action, NodeStatus};
use crate::wire::Msg;

/// How long a hook may run before it is killed, in ms (3.0.6 has no limit; a hung hook
/// would hold every later one back for ever).
pub const HOOK_TIME_LIMIT_MS: u64 = 300_000;

/// One queued run of `rc.d/<kind> <kind>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The hook's file name (and its only argument): the message type, lower-cased.
    pub kind: String,
    /// The message whose string fields become `HA_<field>`.
    pub msg: Msg,
    /// Killed after this many ms.
    pub time_limit_ms: u64,
}

impl Notification {
    fn new(kind: String, msg: Msg) -> Notification {
        Notification {
            kind,
            msg,
            time_limit_ms: HOOK_TIME_LIMIT_MS,
        }
    }
}

/// What the decisions depend on besides the event itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// This node's name.
    pub me: &'a str,
    /// The `node` lines of ha.cf (ping nodes are not among them).
    pub cluster_nodes: &'a [String],
    /// Resources are managed (no `-M`): a dead node's groups are taken over.
    pub manage_resources: bool,
    /// A graceful stop is under way: no takeover, no `ip-request-resp` hooks.
    pub shutting_down: bool,
}

/// Message types the daemon handles itself and never offers to a hook (3.0.6: `starting`,
/// `resource`, `ask_resources`, `shutdone`; the rest never reach the upper layer, listed so
/// that a stray one is not mistaken for a site's own type).
const BUILT_IN: &[&str] = &[
    "starting",
    "resource",
    "ask_resources",
    "shutdone",
    "status",
    "reqnodes",
    "repnodes",
];

/// The hook name for a message type: lower-cased, and only if it is a plain file name
/// (letters, digits, `-`, `_`, `.`, not starting with a dot), so that a message can never
/// name a path.
pub fn hook_name(t: &str) -> Option<String> {
    let ok = !t.is_empty()
        && t.len() <= 64
        && !t.starts_with('.')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then(|| t.to_ascii_lowercase())
}

fn synthesized(fields: &[(&str, &str)]) -> Msg {
    let mut m = Msg::new();
    for (k, v) in fields {
        m.add_str(k, v);
    }
    m
}

/// The notification (if any) for something the membership layer reported.
pub fn for_action(a: &Action, ctx: &Context) -> Option<Notification> {
    match a {
        Action::NodeStatus(node, st) => {
            // A peer's status (init, up, active); ping nodes and our own status are not offered.
            let peer = node != ctx.me && ctx.cluster_nodes.iter().any(|n| n == node);
            (peer && *st != NodeStatus::Ping).then(|| {
                Notification::new(
                    "status".into(),
                    synthesized(&[("t", "status"), ("src", node), ("st", st.as_str())]),
                )
            })
        }
        // 3.0.6 synthesizes `st=dead` only when it takes the node's groups over: a cluster
        // node, resources managed, not shutting down.
        Action::NodeDead(node) => {
            let takeover = ctx.manage_resources
                && !ctx.shutting_down
                && node != ctx.me
                && ctx.cluster_nodes.iter().any(|n| n == node);
            takeover.then(|| {
                Notification::new(
                    "status".into(),
                    synthesized(&[("t", "status"), ("src", node), ("st", "dead")]),
                )
            })
        }
        Action::Deliver(from, msg) => for_message(from, msg, ctx),
        // Every link change, of any node (ours too), as `ifstat` with `node`, `ifname` and
        // `st=up|dead`.
        Action::LinkStatus {
            node, ifname, up, ..
        } => {
            let st = if *up { "up" } else { "dead" };
            Some(Notification::new(
                "ifstat".into(),
                synthesized(&[
                    ("t", "ifstat"),
                    ("node", node),
                    ("ifname", ifname),
                    ("st", st),
                ]),
            ))
        }
        _ => None,
    }
}

/// A message this node sent (resource manager, FIFO, `hb_takeover`): 3.0.6 processes its own
/// messages as if received, so they are offered too (with `src` = this node).
pub fn for_own_message(msg: &Msg, ctx: &Context) -> Option<Notification> {
    if msg.get("src").is_some() {
        return for_message(ctx.me, msg, ctx);
    }
    let mut m = msg.clone();
    m.add_str("src", ctx.me);
    for_message(ctx.me, &m, ctx)
}

fn for_message(from: &str, msg: &Msg, ctx: &Context) -> Option<Notification> {
    let t = msg.get_str("t")?;
    let lower = t.to_ascii_lowercase();
    if BUILT_IN.contains(&lower.as_str()) || lower.starts_with("ns_") {
        return None;
    }
    match lower.as_str() {
        "ip-request" if from == ctx.me => return None,
        "ip-request-resp" if ctx.shutting_down => return None,
        _ => {}
    }
    let kind = hook_name(t)?;
    Some(Notification::new(kind, msg.clone()))
}

/// What an `rc.d` file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptKind {
    /// One of the scripts Heartbeat 3.0.6 ships (comments and blank lines aside): its work is
    /// done by this daemon, so it is not run.
    Stock,
    /// The site's own; it runs. `missing_helpers` lists the 3.0.6 helpers it calls that this
    /// package does not have (that part of it will fail), for a warning.
    Custom { missing_helpers: Vec<&'static str> },
}

/// Fingerprints (md5 of [`normalize`]d text) of the `rc.d` scripts of Heartbeat 3.0.6 as
/// Debian ships them: `ask_resources`, `hb_takeover`, `ip-request`, `ip-request-resp`,
/// `status`.
const STOCK: &[(&str, &str)] = &[
    ("ask_resources", "4ffdd0fd3df36ae1101091c5e5e190e8"),
    ("hb_takeover", "4a4abd60475337b571d236194f6ef45f"),
    ("ip-request", "490657d27911b9fcb5a234a371bae80f"),
    ("ip-request-resp", "7f24cfa3d695e306ec612cbf7a9772b6"),
    ("status", "9efdea431171eca7559bc69234d24402"),
];

/// 3.0.6 helpers the stock scripts call and this package does not ship.
const MISSING_HELPERS: &[&str] = &["mach_down", "ResourceManager", "req_resource"];

/// The text with every line trimmed, comment lines (first non-blank character `#`, the `#!`
/// line included) and blank lines dropped: a stock script whose comments or indentation were
/// touched is still the stock script.
pub fn normalize(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    for line in content.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stock or the site's own (whatever its name: a stock script copied under another name is
/// still not run).
pub fn classify_script(content: &[u8]) -> ScriptKind {
    let digest = hex(&Md5::digest(normalize(content)));
    if STOCK.iter().any(|(_, d)| *d == digest) {
        return ScriptKind::Stock;
    }
    let text = String::from_utf8_lossy(content);
    let missing_helpers = MISSING_HELPERS
        .iter()
        .copied()
        .filter(|h| mentions(&text, h))
        .collect();
    ScriptKind::Custom { missing_helpers }
}

/// `word` appears as a word (not inside a longer name) on a line that is not a comment.
fn mentions(text: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .any(|l| {
            l.match_indices(word).any(|(i, _)| {
                let before = l[..i].chars().next_back();
                let after = l[i + word.len()..].chars().next();
                !before.is_some_and(is_name) && !after.is_some_and(is_name)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        vec!["alice".into(), "bob".into()]
    }

    fn ctx(nodes: &[String]) -> Context<'_> {
        Context {
            me: "alice",
            cluster_nodes: nodes,
            manage_resources: true,
            shutting_down: false,
        }
    }

    fn msg(fields: &[(&str, &str)]) -> Msg {
        synthesized(fields)
    }

    fn kind(n: Option<Notification>) -> Option<String> {
        n.map(|n| n.kind)
    }

    #[test]
    fn peer_status_changes_are_offered_with_src_and_st() {
        let n = nodes();
        let c = ctx(&n);
        let got = for_action(&Action::NodeStatus("bob".into(), NodeStatus::Active), &c).unwrap();
        assert_eq!(got.kind, "status");
        assert_eq!(got.msg.get_str("t"), Some("status"));
        assert_eq!(got.msg.get_str("src"), Some("bob"));
        assert_eq!(got.msg.get_str("st"), Some("active"));
        // Our own status, a ping node, a node not in ha.cf: nothing.
        for (who, st) in [
            ("alice", NodeStatus::Active),
            ("10.0.0.254", NodeStatus::Ping),
            ("mallory", NodeStatus::Up),
        ] {
            assert_eq!(
                for_action(&Action::NodeStatus(who.into(), st), &c),
                None,
                "{who}"
            );
        }
    }

    #[test]
    fn a_death_is_offered_only_when_it_means_a_takeover() {
        let n = nodes();
        let dead = Action::NodeDead("bob".into());
        let got = for_action(&dead, &ctx(&n)).unwrap();
        assert_eq!(got.kind, "status");
        assert_eq!(got.msg.get_str("src"), Some("bob"));
        assert_eq!(got.msg.get_str("st"), Some("dead"));
        let mut c = ctx(&n);
        c.shutting_down = true;
        assert_eq!(for_action(&dead, &c), None, "no takeover while stopping");
        let mut c = ctx(&n);
        c.manage_resources = false;
        assert_eq!(for_action(&dead, &c), None, "-M: no takeover");
        assert_eq!(
            for_action(&Action::NodeDead("10.0.0.254".into()), &ctx(&n)),
            None,
            "ping node"
        );
    }

    #[test]
    fn messages_without_a_built_in_handler_are_offered_by_type() {
        let n = nodes();
        let c = ctx(&n);
        let deliver = |t: &str, from: &str| {
            kind(for_action(
                &Action::Deliver(from.into(), msg(&[("t", t), ("src", from)])),
                &c,
            ))
        };
        assert_eq!(
            deliver("hb_takeover", "bob").as_deref(),
            Some("hb_takeover")
        );
        assert_eq!(deliver("stonith", "bob").as_deref(), Some("stonith"));
        assert_eq!(deliver("Site_Event", "bob").as_deref(), Some("site_event"));
        assert_eq!(deliver("ip-request", "bob").as_deref(), Some("ip-request"));
        assert_eq!(
            deliver("ip-request-resp", "bob").as_deref(),
            Some("ip-request-resp")
        );
        for t in [
            "starting",
            "resource",
            "ask_resources",
            "shutdone",
            "status",
            "NS_ackmsg",
        ] {
            assert_eq!(deliver(t, "bob"), None, "{t}");
        }
        // A type that is not a plain file name never becomes a path.
        for t in ["../../bin/sh", "a/b", ".hidden", "", "x y"] {
            assert_eq!(deliver(t, "bob"), None, "{t:?}");
        }
        // Fields go along unchanged.
        let m = msg(&[("t", "stonith"), ("node", "bob"), ("result", "n_stnth")]);
        let got = for_action(&Action::Deliver("bob".into(), m.clone()), &c).unwrap();
        assert_eq!(got.msg, m);
    }

    #[test]
    fn own_messages_as_3_0_6_sees_them_through_its_loopback() {
        let n = nodes();
        let c = ctx(&n);
        let own = |t: &str| for_own_message(&msg(&[("t", t)]), &c);
        // Our own ip-request is not offered; our grant, takeover request and stonith are.
        assert_eq!(own("ip-request"), None);
        let got = own("ip-request-resp").unwrap();
        assert_eq!(got.kind, "ip-request-resp");
        assert_eq!(got.msg.get_str("src"), Some("alice"));
        assert_eq!(kind(own("hb_takeover")).as_deref(), Some("hb_takeover"));
        assert_eq!(kind(own("stonith")).as_deref(), Some("stonith"));
        assert_eq!(own("resource"), None);
        // While stopping, grants are not offered (3.0.6), other types still are.
        let mut c = ctx(&n);
        c.shutting_down = true;
        assert_eq!(for_own_message(&msg(&[("t", "ip-request-resp")]), &c), None);
        assert!(for_own_message(&msg(&[("t", "stonith")]), &c).is_some());
    }

    #[test]
    fn link_changes_become_ifstat() {
        let n = nodes();
        let c = ctx(&n);
        let link = |node: &str, link: usize, ifname: &str, up: bool| {
            for_action(
                &Action::LinkStatus {
                    node: node.into(),
                    link,
                    ifname: ifname.into(),
                    up,
                },
                &c,
            )
            .unwrap()
        };
        let got = link("bob", 0, "eth0", true);
        assert_eq!(got.kind, "ifstat");
        assert_eq!(got.msg.get_str("t"), Some("ifstat"));
        assert_eq!(got.msg.get_str("node"), Some("bob"));
        assert_eq!(got.msg.get_str("ifname"), Some("eth0"));
        assert_eq!(got.msg.get_str("st"), Some("up"));
        assert_eq!(got.time_limit_ms, HOOK_TIME_LIMIT_MS);
        let got = link("alice", 1, "eth1", false);
        assert_eq!(got.msg.get_str("node"), Some("alice"), "our own links too");
        assert_eq!(got.msg.get_str("st"), Some("dead"));
    }

    #[test]
    fn normalizing_drops_comments_blank_lines_and_indentation() {
        let a = b"#!/bin/sh\n# comment\n\n  case $HA_st in\n\tdead) x;;   \nesac\n";
        let b = b"#!/bin/bash\ncase $HA_st in\r\ndead) x;;\n\n\n# other comment\nesac";
        assert_eq!(normalize(a), normalize(b));
        assert_eq!(normalize(a), b"case $HA_st in\ndead) x;;\nesac\n".to_vec());
        assert_ne!(
            normalize(a),
            normalize(b"case $HA_st in\ndead) y;;\nesac\n")
        );
    }

    #[test]
    fn site_scripts_are_custom_and_missing_helpers_are_named() {
        let mail = b"#!/bin/sh\n[ \"$HA_st\" = dead ] && echo \"$HA_src died\" | mail root\n";
        assert_eq!(
            classify_script(mail),
            ScriptKind::Custom {
                missing_helpers: vec![]
            }
        );
        let mixed =
            b"#!/bin/sh\n# uses mach_down below\n$HA_NOARCHBIN/mach_down $HA_src\nmail_admin\n";
        assert_eq!(
            classify_script(mixed),
            ScriptKind::Custom {
                missing_helpers: vec!["mach_down"]
            }
        );
        // Only whole words on code lines count.
        assert!(!mentions(
            "# ResourceManager\nmy_ResourceManager x\n",
            "ResourceManager"
        ));
        assert!(mentions(
            "x=1; ResourceManager takegroup $k\n",
            "ResourceManager"
        ));
    }

    /// The installed 3.0.6 scripts (when the reference package is on this machine) are
    /// recognised, also with a comment added, and are no longer once a command is added.
    #[test]
    fn installed_stock_scripts_are_recognised() {
        // md5 of the files exactly as the package installs them (dpkg's conffile sums).
        const PACKAGED: &[(&str, &str)] = &[
            ("ask_resources", "75f0bba9a05855ea6928bb52c4d256c4"),
            ("hb_takeover", "a0cc84fff08b1e7cafe901881ff43afe"),
            ("ip-request", "e9d60274532fad2123364cd91dab1be8"),
            ("ip-request-resp", "0b88432734529b255cb6dd14b0a34096"),
            ("status", "8765723352d8d8f00976e27ee1b84d53"),
        ];
        let dir = std::path::Path::new("/etc/ha.d/rc.d");
        let mut seen = 0;
        for (name, sum) in PACKAGED {
            let Ok(text) = std::fs::read(dir.join(name)) else {
                continue;
            };
            if hex(&Md5::digest(&text)) != *sum {
                // A site's edited copy on this machine, not the package's file.
                continue;
            }
            seen += 1;
            assert_eq!(classify_script(&text), ScriptKind::Stock, "{name}");
            let mut commented = text.clone();
            commented.extend_from_slice(b"\n# site: reviewed 2024\n");
            assert_eq!(classify_script(&commented), ScriptKind::Stock, "{name}");
            let mut edited = text.clone();
            edited.extend_from_slice(b"\nlogger site hook\n");
            assert!(
                matches!(classify_script(&edited), ScriptKind::Custom { .. }),
                "{name}"
            );
        }
        if seen == 0 {
            // CI installs the reference package: there, finding none is a failure, not a skip.
            assert_ne!(
                std::env::var("HB_REQUIRE_INTEROP").as_deref(),
                Ok("1"),
                "HB_REQUIRE_INTEROP=1 but no stock 3.0.6 rc.d script in /etc/ha.d/rc.d"
            );
            eprintln!("SKIP: no stock 3.0.6 rc.d scripts in /etc/ha.d/rc.d");
        }
    }
}
