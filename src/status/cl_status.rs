//! The `cl_status` command line, as Heartbeat 3.0.6's tool behaves (admin.md §6, plus what the
//! real tool was observed to print in the lab): every sub-command, its options (parsed like
//! the C library's `getopt`, operands and options in any order), output text, node and link
//! order (reverse of ha.cf order) and exit codes.
//!
//! Pure: [`run`] takes the arguments and what the daemon answered ([`Contact`]) and returns
//! what to print ([`ClOutput`]). The binary adds the time, host and pid to the error lines
//! that 3.0.6 writes as log lines.
//!
//! Exit codes: 0 ok; 1 node/link down, parameter unset, cannot sign on; 2/3 `clientstatus`
//! join/leave; 11 bad usage; 12 no answer within 5 s (the binary's); 13 other errors.

use super::{ClusterView, NodeView};
use crate::cluster::LogLevel;

/// Exit code for bad usage (unknown sub-command, missing operand, bad option).
pub const EXIT_USAGE: i32 = 11;
/// Exit code when the daemon does not answer in time.
pub const EXIT_TIMEOUT: i32 = 12;
/// Exit code for other errors (unknown link, resources not managed, no reply).
pub const EXIT_OTHER: i32 = 13;

/// `clientstatus`'s default time limit in ms.
pub const CLIENTSTATUS_TIMEOUT_MS: i64 = 500;

/// Node weight and site: fixed for v1 nodes.
const NODE_WEIGHT: &str = "100";
const NODE_SITE: &str = "";

const SUBCOMMANDS: [&str; 12] = [
    "hbstatus",
    "listnodes",
    "nodestatus",
    "nodetype",
    "nodeweight",
    "nodesite",
    "listhblinks",
    "hblinkstatus",
    "clientstatus",
    "rscstatus",
    "hbparameter",
    "test",
];

const USAGE: &str = "Usage: cl_status <sub-command> [<options>] [<parameters>]

Sub-commands:
clientstatus <node-name> <client-id> [<timeout>]
\tShow the status of heartbeat clients.
hblinkstatus <node-name> <link-name>
\tShow the status of a heartbeat link
hbstatus
\tIndicate if heartbeat is running on the local system.
\tOptions:
\t\t-v\tverbose: also add \"listnodes -v\" output
listnodes [<option>]
\tList the nodes in the cluster.
\tOptions:
\t\t-p\tlist only 'ping' type nodes
\t\t-n\tlist only 'normal' type nodes
\t\t-v\tverbose: also list type and status,
\t\t\tthen add \"listhblinks -v\" output
listhblinks <node-name>
\tList the network interfaces used as hearbeat links.
\tOptions:
\t\t-v\tverbose: list link status as well
nodestatus <node-name>
\tList the node status.
nodeweight <node-name>
\tList the node weight.
nodesite <node-name>
\tList the node site.
nodetype <node-name>
\tList the nodes of a given type.
rscstatus
\tShow the status of cluster resources.
hbparameter -p <parameter-name>
\tRetrieve the value of a cluster parameter.
\tAs for the valid parameter names, please refer to the man page.
";

/// What the daemon said when asked.
#[derive(Debug, Clone, Copy)]
pub enum Contact<'a> {
    /// Nothing listens, or the daemon is not yet (or no longer) serving: 3.0.6's API opens at
    /// comm-up.
    NotRunning,
    /// The daemon refused us (neither root nor group `haclient`).
    Refused,
    Running(&'a ClusterView),
}

/// One line for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrLine {
    /// Written by 3.0.6 as a log line: `Nov 22 22:02:40 alice cl_status: [PID]: LEVEL: text`.
    Log(LogLevel, String),
    /// Written as is (getopt's complaints, some sentences).
    Plain(String),
}

/// What `cl_status` prints, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClOutput {
    pub stdout: String,
    pub stderr: Vec<ErrLine>,
    pub code: i32,
}

impl ClOutput {
    /// stderr as text; `log_line(level, text)` renders the log lines (the binary passes
    /// `runtime::log::format_line` with the time, host and pid).
    pub fn stderr_text(&self, log_line: &dyn Fn(LogLevel, &str) -> String) -> String {
        let mut s = String::new();
        for l in &self.stderr {
            match l {
                ErrLine::Log(level, text) => s.push_str(&log_line(*level, text)),
                ErrLine::Plain(text) => s.push_str(text),
            }
            s.push('\n');
        }
        s
    }

    fn new() -> ClOutput {
        ClOutput {
            stdout: String::new(),
            stderr: Vec::new(),
            code: 0,
        }
    }

    fn out(&mut self, line: &str) {
        self.stdout.push_str(line);
        self.stdout.push('\n');
    }

    fn error(&mut self, text: &str) {
        self.stderr
            .push(ErrLine::Log(LogLevel::Error, text.to_string()));
    }

    fn plain(&mut self, text: &str) {
        self.stderr.push(ErrLine::Plain(text.to_string()));
    }

    fn done(mut self, code: i32) -> ClOutput {
        self.code = code;
        self
    }
}

/// Whether these arguments need an answer from the daemon: not for the usage screen nor for
/// an unknown sub-command, which 3.0.6 reports without connecting.
pub fn needs_daemon(args: &[String]) -> bool {
    !is_usage(args) && SUBCOMMANDS.contains(&args[0].as_str())
}

fn is_usage(args: &[String]) -> bool {
    args.is_empty() || (args.len() == 1 && args[0] == "-h")
}

/// [`run`] with `None` meaning "not running".
pub fn cl_status_output(args: &[String], view: Option<&ClusterView>) -> ClOutput {
    run(
        args,
        match view {
            Some(v) => Contact::Running(v),
            None => Contact::NotRunning,
        },
    )
}

/// `cl_status ARGS` (without the program name) given what the daemon answered.
pub fn run(args: &[String], contact: Contact<'_>) -> ClOutput {
    let mut o = ClOutput::new();
    if is_usage(args) {
        o.stdout.push_str(USAGE);
        return o.done(0);
    }
    let sub = args[0].as_str();
    if !SUBCOMMANDS.contains(&sub) {
        o.error(&format!("{sub}: invalid sub-command."));
        return o.done(EXIT_USAGE);
    }
    let rest = &args[1..];
    if sub == "hbstatus" {
        return hbstatus(o, rest, contact);
    }
    let view = match contact {
        Contact::Running(v) => v,
        Contact::NotRunning | Contact::Refused => {
            o.error("Cannot signon with heartbeat");
            o.error(&format!("REASON: {}", signon_reason(contact)));
            return o.done(1);
        }
    };
    match sub {
        "listnodes" => listnodes_cmd(o, rest, view),
        "nodestatus" => node_query(o, rest, view, NodeQuery::Status),
        "nodetype" => node_query(o, rest, view, NodeQuery::Type),
        "nodeweight" => node_query(o, rest, view, NodeQuery::Weight),
        "nodesite" => node_query(o, rest, view, NodeQuery::Site),
        "listhblinks" => listhblinks_cmd(o, rest, view),
        "hblinkstatus" => hblinkstatus(o, rest, view),
        "clientstatus" => clientstatus(o, rest, view),
        "rscstatus" => rscstatus(o, rest, view),
        "hbparameter" => hbparameter(o, rest, view),
        _ => test(o, view),
    }
}

fn signon_reason(contact: Contact<'_>) -> &'static str {
    match contact {
        Contact::Refused => "client failed authorization",
        _ => "hb_api_signon: Can't initiate connection to heartbeat",
    }
}

// ---------------------------------------------------------------------------------------------
// Option parsing

/// The result of a getopt pass.
#[derive(Debug, Default)]
struct Opts {
    flags: Vec<char>,
    /// The last `-p` argument.
    p_arg: Option<String>,
    operands: Vec<String>,
    /// getopt's own complaints, in order.
    errors: Vec<String>,
}

impl Opts {
    fn has(&self, c: char) -> bool {
        self.flags.contains(&c)
    }
}

/// Parse `args` with a getopt option string (`"mv"`, `"mp:"`) the way the GNU C library's
/// `getopt` does with argument permutation: options may follow operands, `--` ends the
/// options, a lone `-` is an operand, flags may be bundled (`-mv`), an option argument may be
/// attached (`-pkeepalive`) or the next word. `--name` is not a long option: it is read as
/// the bundle `-`, `n`, `a`, ... Complaints are written as getopt writes them, prefixed with
/// `prog`. Unless `keep_going`, parsing stops at the first complaint.
fn getopt(prog: &str, args: &[String], spec: &str, keep_going: bool) -> Opts {
    let takes_arg = |c: char| {
        spec.char_indices()
            .any(|(i, x)| x == c && spec[i + x.len_utf8()..].starts_with(':'))
    };
    let known = |c: char| c != ':' && spec.contains(c);
    let mut o = Opts::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            o.operands.extend(args[i..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a == "-" {
            o.operands.push(a.clone());
            continue;
        }
        let body = &a[1..];
        for (pos, c) in body.char_indices() {
            if !known(c) {
                o.errors.push(format!("{prog}: invalid option -- '{c}'"));
                if keep_going {
                    continue;
                }
                return o;
            }
            if takes_arg(c) {
                let attached = &body[pos + c.len_utf8()..];
                let value = if !attached.is_empty() {
                    Some(attached.to_string())
                } else if i < args.len() {
                    i += 1;
                    Some(args[i - 1].clone())
                } else {
                    None
                };
                match value {
                    Some(v) => {
                        if c == 'p' {
                            o.p_arg = Some(v);
                        }
                    }
                    None => {
                        o.errors
                            .push(format!("{prog}: option requires an argument -- '{c}'"));
                        if !keep_going {
                            return o;
                        }
                    }
                }
                break;
            }
            o.flags.push(c);
        }
    }
    o
}

/// getopt's complaints, then the sub-command's own error line; exit 11. 3.0.6 words that line
/// in two ways depending on the sub-command (`with_code`).
fn bad_options(mut o: ClOutput, opts: &Opts, with_code: bool) -> ClOutput {
    for e in &opts.errors {
        o.plain(e);
    }
    o.error(if with_code {
        "Error: getopt returnedcharacter code ?."
    } else {
        "Error: getopt returnedcharacter ?."
    });
    o.done(EXIT_USAGE)
}

// ---------------------------------------------------------------------------------------------
// Sub-commands

fn hbstatus(mut o: ClOutput, args: &[String], contact: Contact<'_>) -> ClOutput {
    // 3.0.6 complains about bad options here but carries on.
    let opts = getopt("hbstatus", args, "mv", true);
    for e in &opts.errors {
        o.plain(e);
    }
    let (verbose, human) = (opts.has('v'), opts.has('m'));
    match contact {
        Contact::NotRunning => {
            o.out("Heartbeat is stopped on this machine.");
            if verbose {
                o.out("(hb_api_signon: Can't initiate connection to heartbeat)");
            }
            o.done(1)
        }
        Contact::Refused => {
            o.out("Heartbeat is apparently running on this machine, but refuses my connection");
            if verbose {
                o.out("(client failed authorization)");
            }
            o.done(0)
        }
        Contact::Running(v) => {
            if !verbose {
                o.out("Heartbeat is running on this machine.");
                return o.done(0);
            }
            if human {
                o.out(&format!("Heartbeat version {}", v.version));
                o.out(&format!("Resources controlled by \"{}\"", v.managed_by));
            } else {
                o.out(&format!("version:\t{}", v.version));
                o.out(&format!("managed by:\t\"{}\"", v.managed_by));
            }
            listnodes(&mut o, v, true, true, true, human);
            o.done(0)
        }
    }
}

fn listnodes_cmd(o: ClOutput, args: &[String], v: &ClusterView) -> ClOutput {
    let opts = getopt("listnodes", args, "mpnv", false);
    if !opts.errors.is_empty() {
        return bad_options(o, &opts, true);
    }
    let (ping, normal) = match (opts.has('p'), opts.has('n')) {
        (true, false) => (true, false),
        (false, true) => (false, true),
        _ => (true, true),
    };
    let mut o = o;
    listnodes(&mut o, v, normal, ping, opts.has('v'), opts.has('m'));
    o.done(0)
}

/// The node list, last declared first; verbose adds status, type and links.
fn listnodes(
    o: &mut ClOutput,
    v: &ClusterView,
    normal: bool,
    ping: bool,
    verbose: bool,
    human: bool,
) {
    if human {
        o.out("The nodes are as follow:");
    }
    for n in v.nodes.iter().rev() {
        let wanted = match n.node_type {
            super::NodeType::Normal => normal,
            super::NodeType::Ping => ping,
        };
        if !wanted {
            continue;
        }
        if verbose {
            o.out("");
            o.out(&format!(
                "{}\t{}\t(nodetype: {})",
                n.name,
                n.status,
                n.node_type.as_str()
            ));
            listhblinks(o, n, true, human);
        } else {
            o.out(&n.name);
        }
    }
}

fn listhblinks(o: &mut ClOutput, n: &NodeView, verbose: bool, human: bool) {
    if human {
        o.out("\tthis node has the following heartbeat links:");
    }
    for l in n.links.iter().rev() {
        if verbose {
            o.out(&format!("\t{}\t{}", l.name, link_word(l.up)));
        } else {
            o.out(&format!("\t{}", l.name));
        }
    }
}

fn link_word(up: bool) -> &'static str {
    if up {
        "up"
    } else {
        "dead"
    }
}

fn listhblinks_cmd(mut o: ClOutput, args: &[String], v: &ClusterView) -> ClOutput {
    let opts = getopt("listhblinks", args, "mv", false);
    if !opts.errors.is_empty() {
        return bad_options(o, &opts, true);
    }
    let Some(name) = opts.operands.first() else {
        o.plain("No enough parameter.");
        return o.done(EXIT_USAGE);
    };
    let Some(n) = v.node(name) else {
        o.error("Cannot start heartbeat link interface walk.");
        o.error("REASON: EINVAL");
        return o.done(EXIT_OTHER);
    };
    listhblinks(&mut o, n, opts.has('v'), opts.has('m'));
    o.done(0)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeQuery {
    Status,
    Type,
    Weight,
    Site,
}

fn node_query(mut o: ClOutput, args: &[String], v: &ClusterView, q: NodeQuery) -> ClOutput {
    let prog = match q {
        NodeQuery::Status => "nodestatus",
        NodeQuery::Type => "nodetype",
        NodeQuery::Weight => "nodeweight",
        NodeQuery::Site => "nodesite",
    };
    let opts = getopt(prog, args, "m", false);
    if !opts.errors.is_empty() {
        return bad_options(o, &opts, false);
    }
    let Some(name) = opts.operands.first() else {
        o.plain(if q == NodeQuery::Type {
            "No enough parameter."
        } else {
            "Not enough parameters."
        });
        return o.done(EXIT_USAGE);
    };
    let Some(n) = v.node(name) else {
        o.plain(if q == NodeQuery::Weight {
            "Error. Maybe due to incorrect node name."
        } else {
            "Error. May be due to incorrect node name"
        });
        return o.done(EXIT_USAGE);
    };
    let human = opts.has('m');
    // -m texts name the node as typed.
    match q {
        NodeQuery::Status => {
            if human {
                o.out(&format!("The cluster node {name} is {}", n.status));
            } else {
                o.out(&n.status);
            }
            let code = if matches!(n.status.as_str(), "active" | "up" | "ping") {
                0
            } else {
                1
            };
            o.done(code)
        }
        NodeQuery::Type => {
            let t = n.node_type.as_str();
            if human {
                o.out(&format!("The node {name}'s type: {t}"));
            } else {
                o.out(t);
            }
            o.done(0)
        }
        NodeQuery::Weight => {
            if human {
                o.out(&format!(
                    "The weight of the cluster node {name} is {NODE_WEIGHT}"
                ));
            } else {
                o.out(NODE_WEIGHT);
            }
            o.done(0)
        }
        NodeQuery::Site => {
            if human {
                o.out(&format!(
                    "The site of the cluster node {name} is {NODE_SITE}"
                ));
            } else {
                o.out(NODE_SITE);
            }
            o.done(0)
        }
    }
}

fn hblinkstatus(mut o: ClOutput, args: &[String], v: &ClusterView) -> ClOutput {
    let opts = getopt("hblinkstatus", args, "m", false);
    if !opts.errors.is_empty() {
        return bad_options(o, &opts, false);
    }
    let [name, link, ..] = opts.operands.as_slice() else {
        o.plain("No enough parameter.");
        return o.done(EXIT_USAGE);
    };
    // The node name ignores case, the link name does not.
    let Some(l) = v
        .node(name)
        .and_then(|n| n.links.iter().find(|l| &l.name == link))
    else {
        o.error("Cannot get heartbeat link status");
        o.error("REASON: ");
        return o.done(EXIT_OTHER);
    };
    let word = link_word(l.up);
    if opts.has('m') {
        o.out(&format!(
            "The node {name}'s heartbeat link {link} is {word}"
        ));
    } else {
        o.out(word);
    }
    o.done(if l.up { 0 } else { 1 })
}

/// The C library's `atoi`: leading blanks, an optional sign, digits; anything else ends it.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

/// 3.0.6 asks the named node's daemon and waits up to the timeout. The local daemon answers
/// for itself (this daemon has no API clients, so: `offline`) and for dead nodes (`offline`);
/// a live peer answers only for clients it has, else nobody answers in time. We answer at
/// once instead of waiting the timeout out.
fn clientstatus(mut o: ClOutput, args: &[String], v: &ClusterView) -> ClOutput {
    let opts = getopt("clientstatus", args, "m", false);
    if !opts.errors.is_empty() {
        return bad_options(o, &opts, false);
    }
    let [node, client, more @ ..] = opts.operands.as_slice() else {
        o.plain("No enough parameter.");
        return o.done(EXIT_USAGE);
    };
    let timeout = more.first().map_or(CLIENTSTATUS_TIMEOUT_MS, |t| atoi(t));
    let known = v
        .clients
        .iter()
        .find(|c| &c.node == node && &c.client == client)
        .map(|c| c.status.clone());
    // Node names are compared as typed here: the query is addressed to that name.
    let answerable = node == &v.my_node
        || v.nodes
            .iter()
            .any(|n| &n.name == node && n.status == "dead");
    let status = match known {
        Some(s) if timeout > 0 => Some(s),
        None if timeout > 0 && answerable => Some("offline".to_string()),
        _ => None,
    };
    let Some(status) = status else {
        o.error(&format!("Cannot get heartbeat client {client}'s status"));
        o.error("REASON: No timely response.");
        return o.done(EXIT_OTHER);
    };
    let code = match status.as_str() {
        "online" => 0,
        "join" => 2,
        "leave" => 3,
        _ => 1,
    };
    o.out(&status);
    o.done(code)
}

fn rscstatus(mut o: ClOutput, args: &[String], v: &ClusterView) -> ClOutput {
    let opts = getopt("rscstatus", args, "m", false);
    if !opts.errors.is_empty() {
        return bad_options(o, &opts, false);
    }
    let Some(r) = &v.rscstatus else {
        o.error("Cannot get cluster resource status");
        o.error("REASON: Resource is managed by crm. Use crm tool to query resource");
        return o.done(EXIT_OTHER);
    };
    if opts.has('m') {
        o.out(&format!("This node is holding {r} resources."));
    } else {
        o.out(r);
    }
    o.done(0)
}

fn hbparameter(mut o: ClOutput, args: &[String], v: &ClusterView) -> ClOutput {
    let opts = getopt("hbparameter", args, "mp:", false);
    if !opts.errors.is_empty() {
        return bad_options(o, &opts, true);
    }
    let Some(name) = &opts.p_arg else {
        o.error("parameter name required");
        return o.done(EXIT_USAGE);
    };
    let key = if name == "crm" { "pacemaker" } else { name };
    let Some(value) = v.parameters.get(key) else {
        o.error(&format!("Cannot get parameter {name}'s value"));
        o.error("REASON: ");
        return o.done(1);
    };
    if opts.has('m') {
        o.out(&format!("Heartbeat parameter {name}'s value: {value}"));
    } else {
        o.out(value);
    }
    o.done(0)
}

/// Undocumented; takes no options (anything after it is ignored).
fn test(mut o: ClOutput, v: &ClusterView) -> ClOutput {
    o.out(&format!("Dead time: {}", v.deadtime_ms));
    o.out(&format!(" keeplive time: {}", v.keepalive_ms));
    o.out(&format!(" mynodeid: {}", v.my_node));
    o.out(&format!(
        " rsc: {}",
        v.rscstatus.as_deref().unwrap_or("(null)")
    ));
    o.done(0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::status::{ClientView, LinkView, NodeType, NodeView, MANAGED_BY_V1};

    const V: &str = "3.0.6 (node: 958e11be8686759f1b99204c17812f2c2633b169)";

    fn link(name: &str, up: bool) -> LinkView {
        LinkView {
            name: name.into(),
            up,
        }
    }

    fn node(name: &str, t: NodeType, status: &str, links: Vec<LinkView>) -> NodeView {
        NodeView {
            name: name.into(),
            node_type: t,
            status: status.into(),
            links,
        }
    }

    /// The lab of admin.md §6.2: alice active (links up), bob dead; keepalive 1, deadtime 6.
    fn lab() -> ClusterView {
        let mut parameters = BTreeMap::new();
        for (k, v) in [
            ("keepalive", "1"),
            ("deadtime", "6"),
            ("warntime", "3"),
            ("initdead", "12"),
            ("deadping", "6000ms"),
            ("udpport", "694"),
            ("baud", "19200"),
            ("auto_failback", "on"),
            ("debug", "0"),
            ("msgfmt", "classic"),
            ("pacemaker", "off"),
            ("hbversion", V),
        ] {
            parameters.insert(k.to_string(), v.to_string());
        }
        ClusterView {
            version: V.into(),
            managed_by: MANAGED_BY_V1.into(),
            my_node: "alice".into(),
            deadtime_ms: 6000,
            keepalive_ms: 1000,
            nodes: vec![
                node(
                    "alice",
                    NodeType::Normal,
                    "active",
                    vec![link("hb0", true), link("hb1", true)],
                ),
                node(
                    "bob",
                    NodeType::Normal,
                    "dead",
                    vec![link("hb0", false), link("hb1", false)],
                ),
            ],
            parameters,
            rscstatus: Some("all".into()),
            clients: Vec::new(),
        }
    }

    /// lab() plus ping nodes as the real tool showed them: `ping 10.251.1.2` before the node
    /// lines, `ping_group grp1 ...` after them.
    fn with_ping() -> ClusterView {
        let mut v = lab();
        v.nodes.insert(
            0,
            node(
                "10.251.1.2",
                NodeType::Ping,
                "ping",
                vec![link("10.251.1.2", true)],
            ),
        );
        v.nodes.push(node(
            "grp1",
            NodeType::Ping,
            "ping",
            vec![link("grp1", true)],
        ));
        v
    }

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn log(o: &ClOutput) -> String {
        o.stderr_text(&|level, text| format!("LOG {level}: {text}"))
    }

    /// (stdout, stderr with log lines as `LOG LEVEL: text`, exit code)
    fn call(args: &str, contact: Contact<'_>) -> (String, String, i32) {
        let o = run(&argv(args), contact);
        (o.stdout.clone(), log(&o), o.code)
    }

    fn up(args: &str) -> (String, String, i32) {
        call(args, Contact::Running(&lab()))
    }

    fn ok(out: &str, code: i32) -> (String, String, i32) {
        (out.to_string(), String::new(), code)
    }

    fn err(e: &str, code: i32) -> (String, String, i32) {
        (String::new(), e.to_string(), code)
    }

    #[test]
    fn usage_screen() {
        for a in ["", "-h"] {
            let (out, e, code) = call(a, Contact::NotRunning);
            assert!(out.starts_with(
                "Usage: cl_status <sub-command> [<options>] [<parameters>]\n\nSub-commands:\n"
            ));
            assert!(out.ends_with("please refer to the man page.\n"));
            assert_eq!((e.as_str(), code), ("", 0));
        }
        assert_eq!(USAGE.lines().count(), 35);
        assert!(!needs_daemon(&[]));
        assert!(!needs_daemon(&argv("-h")));
    }

    #[test]
    fn invalid_sub_command() {
        for (a, word) in [
            ("bogus", "bogus"),
            ("parameter -p keepalive", "parameter"),
            ("-m hbstatus", "-m"),
            ("-h hbstatus", "-h"),
            ("--help", "--help"),
        ] {
            assert_eq!(
                call(a, Contact::NotRunning),
                err(&format!("LOG ERROR: {word}: invalid sub-command.\n"), 11),
                "{a}"
            );
            assert!(!needs_daemon(&argv(a)));
        }
        assert_eq!(
            run(&["".to_string()], Contact::NotRunning).stderr,
            vec![ErrLine::Log(
                LogLevel::Error,
                ": invalid sub-command.".into()
            )]
        );
        assert!(needs_daemon(&argv("hbstatus")));
        assert!(needs_daemon(&argv("test")));
    }

    #[test]
    fn not_running() {
        let signon = "LOG ERROR: Cannot signon with heartbeat\n\
                      LOG ERROR: REASON: hb_api_signon: Can't initiate connection to heartbeat\n";
        for a in [
            "listnodes",
            "nodestatus alice",
            "nodestatus",
            "rscstatus",
            "hbparameter",
            "hbparameter -p",
            "listnodes -x",
            "test",
            "clientstatus alice x",
        ] {
            assert_eq!(call(a, Contact::NotRunning), err(signon, 1), "{a}");
        }
        assert_eq!(
            call("hbstatus", Contact::NotRunning),
            ok("Heartbeat is stopped on this machine.\n", 1)
        );
        assert_eq!(
            call("hbstatus -m", Contact::NotRunning),
            ok("Heartbeat is stopped on this machine.\n", 1)
        );
        let stopped_v = "Heartbeat is stopped on this machine.\n\
                         (hb_api_signon: Can't initiate connection to heartbeat)\n";
        assert_eq!(call("hbstatus -v", Contact::NotRunning), ok(stopped_v, 1));
        assert_eq!(
            call("hbstatus -v -m", Contact::NotRunning),
            ok(stopped_v, 1)
        );
        // Bad options are reported, and hbstatus carries on.
        assert_eq!(
            call("hbstatus -m -v -x", Contact::NotRunning),
            (
                stopped_v.to_string(),
                "hbstatus: invalid option -- 'x'\n".to_string(),
                1
            )
        );
        // cl_status_output(None) is the same thing.
        let o = cl_status_output(&argv("hbstatus"), None);
        assert_eq!(
            (o.stdout.as_str(), o.code),
            ("Heartbeat is stopped on this machine.\n", 1)
        );
    }

    #[test]
    fn refused() {
        assert_eq!(
            call("hbstatus", Contact::Refused),
            ok(
                "Heartbeat is apparently running on this machine, but refuses my connection\n",
                0
            )
        );
        assert_eq!(
            call("hbstatus -v", Contact::Refused),
            ok(
                "Heartbeat is apparently running on this machine, but refuses my connection\n\
                 (client failed authorization)\n",
                0
            )
        );
        assert_eq!(
            call("nodestatus alice", Contact::Refused),
            err(
                "LOG ERROR: Cannot signon with heartbeat\n\
                 LOG ERROR: REASON: client failed authorization\n",
                1
            )
        );
    }

    const LAB_V: &str = "\nbob\tdead\t(nodetype: normal)\n\thb1\tdead\n\thb0\tdead\n\
                         \nalice\tactive\t(nodetype: normal)\n\thb1\tup\n\thb0\tup\n";
    const LAB_MV: &str = "The nodes are as follow:\n\
        \nbob\tdead\t(nodetype: normal)\n\tthis node has the following heartbeat links:\n\thb1\tdead\n\thb0\tdead\n\
        \nalice\tactive\t(nodetype: normal)\n\tthis node has the following heartbeat links:\n\thb1\tup\n\thb0\tup\n";

    #[test]
    fn hbstatus_running() {
        assert_eq!(
            up("hbstatus"),
            ok("Heartbeat is running on this machine.\n", 0)
        );
        assert_eq!(
            up("hbstatus -m"),
            ok("Heartbeat is running on this machine.\n", 0)
        );
        let v = format!("version:\t{V}\nmanaged by:\t\"haresources\"\n{LAB_V}");
        assert_eq!(up("hbstatus -v"), ok(&v, 0));
        let mv =
            format!("Heartbeat version {V}\nResources controlled by \"haresources\"\n{LAB_MV}");
        assert_eq!(up("hbstatus -m -v"), ok(&mv, 0));
        assert_eq!(up("hbstatus -vm"), ok(&mv, 0));
        // Every bad option is reported, the rest still counts.
        let (out, e, code) = up("hbstatus -xy");
        assert_eq!(out, "Heartbeat is running on this machine.\n");
        assert_eq!(
            e,
            "hbstatus: invalid option -- 'x'\nhbstatus: invalid option -- 'y'\n"
        );
        assert_eq!(code, 0);
        let (out, e, _) = up("hbstatus --verbose");
        assert_eq!(out, v);
        assert_eq!(e.lines().count(), 7, "{e}");
        assert!(e.starts_with("hbstatus: invalid option -- '-'\nhbstatus: invalid option -- 'e'\n"));
        // Operands are ignored.
        assert_eq!(
            up("hbstatus -"),
            ok("Heartbeat is running on this machine.\n", 0)
        );
    }

    #[test]
    fn listnodes() {
        assert_eq!(up("listnodes"), ok("bob\nalice\n", 0));
        assert_eq!(
            up("listnodes -m"),
            ok("The nodes are as follow:\nbob\nalice\n", 0)
        );
        assert_eq!(up("listnodes -p"), ok("", 0));
        assert_eq!(up("listnodes -p -m"), ok("The nodes are as follow:\n", 0));
        assert_eq!(up("listnodes -n"), ok("bob\nalice\n", 0));
        assert_eq!(up("listnodes -pn"), ok("bob\nalice\n", 0));
        assert_eq!(up("listnodes -v"), ok(LAB_V, 0));
        assert_eq!(up("listnodes -m -v"), ok(LAB_MV, 0));
        assert_eq!(up("listnodes -v -p"), ok("", 0));
        assert_eq!(up("listnodes extra"), ok("bob\nalice\n", 0));
        assert_eq!(up("listnodes -- -x"), ok("bob\nalice\n", 0));
        let bad = |c: char| {
            err(
                &format!(
                    "listnodes: invalid option -- '{c}'\n\
                     LOG ERROR: Error: getopt returnedcharacter code ?.\n"
                ),
                11,
            )
        };
        assert_eq!(up("listnodes -h"), bad('h'));
        assert_eq!(up("listnodes -xy"), bad('x'));
        assert_eq!(up("listnodes -vx"), bad('x'));
    }

    #[test]
    fn listnodes_with_ping_nodes() {
        let v = with_ping();
        let c = || Contact::Running(&v);
        assert_eq!(
            call("listnodes", c()),
            ok("grp1\nbob\nalice\n10.251.1.2\n", 0)
        );
        assert_eq!(call("listnodes -p", c()), ok("grp1\n10.251.1.2\n", 0));
        assert_eq!(call("listnodes -n", c()), ok("bob\nalice\n", 0));
        assert_eq!(
            call("listnodes -p -v", c()),
            ok(
                "\ngrp1\tping\t(nodetype: ping)\n\tgrp1\tup\n\
                 \n10.251.1.2\tping\t(nodetype: ping)\n\t10.251.1.2\tup\n",
                0
            )
        );
        assert_eq!(call("nodestatus grp1", c()), ok("ping\n", 0));
        assert_eq!(call("nodetype grp1", c()), ok("ping\n", 0));
        assert_eq!(call("nodeweight grp1", c()), ok("100\n", 0));
        assert_eq!(
            call("listhblinks -v 10.251.1.2", c()),
            ok("\t10.251.1.2\tup\n", 0)
        );
        assert_eq!(call("hblinkstatus grp1 grp1", c()), ok("up\n", 0));
    }

    #[test]
    fn nodestatus() {
        assert_eq!(up("nodestatus alice"), ok("active\n", 0));
        assert_eq!(up("nodestatus ALICE"), ok("active\n", 0));
        assert_eq!(up("nodestatus bob"), ok("dead\n", 1));
        assert_eq!(
            up("nodestatus -m bob"),
            ok("The cluster node bob is dead\n", 1)
        );
        assert_eq!(
            up("nodestatus -m ALICE"),
            ok("The cluster node ALICE is active\n", 0)
        );
        assert_eq!(
            up("nodestatus alice -m"),
            ok("The cluster node alice is active\n", 0)
        );
        assert_eq!(
            up("nodestatus -mm alice"),
            ok("The cluster node alice is active\n", 0)
        );
        assert_eq!(up("nodestatus alice bob"), ok("active\n", 0));
        assert_eq!(up("nodestatus -- alice"), ok("active\n", 0));
        let wrong = err("Error. May be due to incorrect node name\n", 11);
        assert_eq!(up("nodestatus carol"), wrong);
        assert_eq!(up("nodestatus -m carol"), wrong);
        assert_eq!(up("nodestatus -"), wrong);
        assert_eq!(up("nodestatus -m -- -x"), wrong);
        assert_eq!(up("nodestatus"), err("Not enough parameters.\n", 11));
        for o in ["-x", "-v", "-p", "-n"] {
            let c = o.chars().nth(1).unwrap_or('?');
            assert_eq!(
                up(&format!("nodestatus alice {o}")),
                err(
                    &format!(
                        "nodestatus: invalid option -- '{c}'\n\
                         LOG ERROR: Error: getopt returnedcharacter ?.\n"
                    ),
                    11
                )
            );
        }
        // getopt before the operand check.
        assert_eq!(up("nodestatus -x").2, 11);
        assert!(up("nodestatus -x")
            .1
            .starts_with("nodestatus: invalid option"));
        // Other statuses.
        let mut v = lab();
        for (st, code) in [("up", 0), ("init", 1), ("ping", 0), ("dead", 1)] {
            v.nodes[1].status = st.into();
            assert_eq!(
                call("nodestatus bob", Contact::Running(&v)),
                ok(&format!("{st}\n"), code)
            );
        }
    }

    #[test]
    fn nodetype_weight_site() {
        assert_eq!(up("nodetype alice"), ok("normal\n", 0));
        assert_eq!(up("nodetype BOB"), ok("normal\n", 0));
        assert_eq!(
            up("nodetype -m bob"),
            ok("The node bob's type: normal\n", 0)
        );
        assert_eq!(
            up("nodetype -m BOB"),
            ok("The node BOB's type: normal\n", 0)
        );
        assert_eq!(
            up("nodetype carol"),
            err("Error. May be due to incorrect node name\n", 11)
        );
        assert_eq!(up("nodetype"), err("No enough parameter.\n", 11));
        assert_eq!(
            up("nodetype alice -v"),
            err(
                "nodetype: invalid option -- 'v'\nLOG ERROR: Error: getopt returnedcharacter ?.\n",
                11
            )
        );

        assert_eq!(up("nodeweight alice"), ok("100\n", 0));
        assert_eq!(
            up("nodeweight -m alice"),
            ok("The weight of the cluster node alice is 100\n", 0)
        );
        assert_eq!(
            up("nodeweight carol"),
            err("Error. Maybe due to incorrect node name.\n", 11)
        );
        assert_eq!(up("nodeweight"), err("Not enough parameters.\n", 11));

        assert_eq!(up("nodesite alice"), ok("\n", 0));
        assert_eq!(
            up("nodesite -m Bob"),
            ok("The site of the cluster node Bob is \n", 0)
        );
        assert_eq!(
            up("nodesite carol"),
            err("Error. May be due to incorrect node name\n", 11)
        );
        assert_eq!(up("nodesite"), err("Not enough parameters.\n", 11));
    }

    #[test]
    fn listhblinks() {
        assert_eq!(up("listhblinks alice"), ok("\thb1\n\thb0\n", 0));
        assert_eq!(up("listhblinks BOB"), ok("\thb1\n\thb0\n", 0));
        assert_eq!(
            up("listhblinks -v bob"),
            ok("\thb1\tdead\n\thb0\tdead\n", 0)
        );
        assert_eq!(up("listhblinks alice -v"), ok("\thb1\tup\n\thb0\tup\n", 0));
        let hdr = "\tthis node has the following heartbeat links:\n";
        assert_eq!(
            up("listhblinks -m bob"),
            ok(&format!("{hdr}\thb1\n\thb0\n"), 0)
        );
        assert_eq!(
            up("listhblinks -vm bob"),
            ok(&format!("{hdr}\thb1\tdead\n\thb0\tdead\n"), 0)
        );
        let walk =
            "LOG ERROR: Cannot start heartbeat link interface walk.\nLOG ERROR: REASON: EINVAL\n";
        assert_eq!(up("listhblinks carol"), err(walk, 13));
        assert_eq!(up("listhblinks -m carol"), err(walk, 13));
        assert_eq!(up("listhblinks"), err("No enough parameter.\n", 11));
        assert_eq!(
            up("listhblinks alice -p"),
            err(
                "listhblinks: invalid option -- 'p'\n\
                 LOG ERROR: Error: getopt returnedcharacter code ?.\n",
                11
            )
        );
    }

    #[test]
    fn hblinkstatus() {
        assert_eq!(up("hblinkstatus bob hb0"), ok("dead\n", 1));
        assert_eq!(up("hblinkstatus alice hb0"), ok("up\n", 0));
        assert_eq!(up("hblinkstatus BOB hb0"), ok("dead\n", 1));
        assert_eq!(up("hblinkstatus alice hb0 extra"), ok("up\n", 0));
        assert_eq!(
            up("hblinkstatus -m bob hb1"),
            ok("The node bob's heartbeat link hb1 is dead\n", 1)
        );
        assert_eq!(
            up("hblinkstatus -m ALICE hb1"),
            ok("The node ALICE's heartbeat link hb1 is up\n", 0)
        );
        let cannot = "LOG ERROR: Cannot get heartbeat link status\nLOG ERROR: REASON: \n";
        for a in [
            "hblinkstatus bob eth9",
            "hblinkstatus carol hb0",
            "hblinkstatus -m carol hb0",
            "hblinkstatus bob HB0",
        ] {
            assert_eq!(up(a), err(cannot, 13), "{a}");
        }
        assert_eq!(up("hblinkstatus bob"), err("No enough parameter.\n", 11));
        assert_eq!(up("hblinkstatus"), err("No enough parameter.\n", 11));
        assert_eq!(
            up("hblinkstatus alice hb0 -x"),
            err(
                "hblinkstatus: invalid option -- 'x'\n\
                 LOG ERROR: Error: getopt returnedcharacter ?.\n",
                11
            )
        );
    }

    #[test]
    fn clientstatus() {
        assert_eq!(up("clientstatus alice cl_status"), ok("offline\n", 1));
        assert_eq!(up("clientstatus -m alice cl_status"), ok("offline\n", 1));
        assert_eq!(up("clientstatus bob ipfail"), ok("offline\n", 1));
        assert_eq!(up("clientstatus alice x 10abc"), ok("offline\n", 1));
        let none = |c: &str| {
            err(
                &format!(
                    "LOG ERROR: Cannot get heartbeat client {c}'s status\n\
                     LOG ERROR: REASON: No timely response.\n"
                ),
                13,
            )
        };
        assert_eq!(up("clientstatus ALICE x"), none("x"));
        assert_eq!(up("clientstatus alice x 0"), none("x"));
        assert_eq!(up("clientstatus alice x abc"), none("x"));
        assert_eq!(up("clientstatus carol ipfail"), none("ipfail"));
        assert_eq!(up("clientstatus bob"), err("No enough parameter.\n", 11));
        assert_eq!(
            up("clientstatus bob x -5"),
            err(
                "clientstatus: invalid option -- '5'\n\
                 LOG ERROR: Error: getopt returnedcharacter ?.\n",
                11
            )
        );
        // A live peer: nobody answers.
        let mut v = lab();
        v.nodes[1].status = "active".into();
        assert_eq!(
            call("clientstatus bob ipfail", Contact::Running(&v)),
            none("ipfail")
        );
        // Known clients.
        for (st, code) in [("online", 0), ("offline", 1), ("join", 2), ("leave", 3)] {
            v.clients = vec![ClientView {
                node: "bob".into(),
                client: "ipfail".into(),
                status: st.into(),
            }];
            assert_eq!(
                call("clientstatus bob ipfail", Contact::Running(&v)),
                ok(&format!("{st}\n"), code)
            );
        }
    }

    #[test]
    fn rscstatus() {
        assert_eq!(up("rscstatus"), ok("all\n", 0));
        assert_eq!(up("rscstatus extra"), ok("all\n", 0));
        assert_eq!(
            up("rscstatus -m"),
            ok("This node is holding all resources.\n", 0)
        );
        let mut v = lab();
        for word in ["none", "local", "foreign", "transition"] {
            v.rscstatus = Some(word.into());
            assert_eq!(
                call("rscstatus", Contact::Running(&v)),
                ok(&format!("{word}\n"), 0)
            );
        }
        v.rscstatus = None;
        let crm = "LOG ERROR: Cannot get cluster resource status\n\
                   LOG ERROR: REASON: Resource is managed by crm. Use crm tool to query resource\n";
        assert_eq!(call("rscstatus", Contact::Running(&v)), err(crm, 13));
        assert_eq!(call("rscstatus -m", Contact::Running(&v)), err(crm, 13));
        assert_eq!(
            up("rscstatus -v"),
            err(
                "rscstatus: invalid option -- 'v'\nLOG ERROR: Error: getopt returnedcharacter ?.\n",
                11
            )
        );
    }

    #[test]
    fn hbparameter() {
        assert_eq!(up("hbparameter -p keepalive"), ok("1\n", 0));
        assert_eq!(up("hbparameter -p deadping"), ok("6000ms\n", 0));
        assert_eq!(up("hbparameter -p hbversion"), ok(&format!("{V}\n"), 0));
        assert_eq!(up("hbparameter -p crm"), ok("off\n", 0));
        assert_eq!(
            up("hbparameter -m -p deadtime"),
            ok("Heartbeat parameter deadtime's value: 6\n", 0)
        );
        assert_eq!(
            up("hbparameter -m -p crm"),
            ok("Heartbeat parameter crm's value: off\n", 0)
        );
        assert_eq!(
            up("hbparameter -mpkeepalive"),
            ok("Heartbeat parameter keepalive's value: 1\n", 0)
        );
        assert_eq!(up("hbparameter -p keepalive -p deadtime"), ok("6\n", 0));
        assert_eq!(up("hbparameter -p keepalive -- -x"), ok("1\n", 0));
        let unset = |n: &str| {
            err(
                &format!("LOG ERROR: Cannot get parameter {n}'s value\nLOG ERROR: REASON: \n"),
                1,
            )
        };
        assert_eq!(up("hbparameter -p nice_failback"), unset("nice_failback"));
        assert_eq!(up("hbparameter -p KEEPALIVE"), unset("KEEPALIVE"));
        assert_eq!(
            run(
                &["hbparameter".into(), "-p".into(), String::new()],
                Contact::Running(&lab())
            )
            .stderr[0],
            ErrLine::Log(LogLevel::Error, "Cannot get parameter 's value".into())
        );
        assert_eq!(
            up("hbparameter"),
            err("LOG ERROR: parameter name required\n", 11)
        );
        assert_eq!(
            up("hbparameter keepalive"),
            err("LOG ERROR: parameter name required\n", 11)
        );
        assert_eq!(
            up("hbparameter -p"),
            err(
                "hbparameter: option requires an argument -- 'p'\n\
                 LOG ERROR: Error: getopt returnedcharacter code ?.\n",
                11
            )
        );
        assert_eq!(
            up("hbparameter -p keepalive -n"),
            err(
                "hbparameter: invalid option -- 'n'\n\
                 LOG ERROR: Error: getopt returnedcharacter code ?.\n",
                11
            )
        );
        assert_eq!(up("hbparameter --p=x").2, 11);
    }

    #[test]
    fn test_sub_command() {
        let t = "Dead time: 6000\n keeplive time: 1000\n mynodeid: alice\n rsc: all\n";
        assert_eq!(up("test"), ok(t, 0));
        assert_eq!(up("test -x -v"), ok(t, 0));
        let mut v = lab();
        v.rscstatus = None;
        assert!(call("test", Contact::Running(&v))
            .0
            .ends_with(" rsc: (null)\n"));
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("10abc"), 10);
        assert_eq!(atoi(" 20"), 20);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi("-5"), -5);
        assert_eq!(atoi("+7"), 7);
        assert_eq!(atoi("99999999999999999999999"), i64::MAX);
    }

    #[test]
    fn stderr_rendering() {
        let o = run(&argv("hbparameter -p"), Contact::Running(&lab()));
        let text = o
            .stderr_text(&|level, t| format!("Nov 22 22:02:40 alice cl_status: [1]: {level}: {t}"));
        assert_eq!(
            text,
            "hbparameter: option requires an argument -- 'p'\n\
             Nov 22 22:02:40 alice cl_status: [1]: ERROR: Error: getopt returnedcharacter code ?.\n"
        );
    }

    #[test]
    fn never_panics_on_odd_arguments() {
        let odd = [
            "", "-", "--", "-\u{e9}", "\u{e9}", "-p", "-pp", "-:", "-m:", "--p", "\u{0}",
        ];
        let v = with_ping();
        for sub in SUBCOMMANDS {
            for a in odd {
                for b in odd {
                    let args = vec![sub.to_string(), a.to_string(), b.to_string()];
                    for c in [Contact::Running(&v), Contact::NotRunning, Contact::Refused] {
                        let _ = run(&args, c);
                    }
                }
            }
        }
    }
}
