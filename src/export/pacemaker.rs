//! `heartbeat --export pacemaker`: corosync.conf, its authkey, the CIB (XML, `crm configure`
//! text and `pcs` commands, all three the same configuration) and OCF wrappers for v1 scripts.
//!
//! Choices (also written to REPORT.txt):
//! * one corosync knet link per network interface of the ucast/bcast/mcast media (at most 8);
//! * `token` = deadtime / 2.2: corosync declares a node lost after token + consensus
//!   (1.2 x token by default), so a peer is lost after about `deadtime`, as with Heartbeat;
//! * two nodes: votequorum `two_node` (the survivor keeps quorum, as a v1 pair does);
//! * a group per haresources line, resources in order; preferred node = location score 100;
//!   `auto_failback on`/`legacy` = resource-stickiness 0 (groups go home), `off` = 200
//!   (they stay where they run);
//! * no stonith in ha.cf: `stonith-enabled=false` (a v1 pair without stonith did not fence);
//! * ping nodes: a cloned `ocf:pacemaker:ping` and a rule preferring the node that reaches more
//!   of them (what ipfail did);
//! * every primitive is monitored every 10 s (v1 never checked a running resource); start and
//!   stop may take 120 s.

use std::collections::BTreeSet;

use super::resources::{self, Agent, WRAPPER_PROVIDER};
use super::{
    cluster_key, hacf_place, hr_place, ident, links, ping_hosts, shq, xml_attr, Export, Facts,
    File, Note, ScriptPlace,
};
use crate::config::{AutoFailback, Config, Stonith};

/// knet allows 8 links.
const MAX_LINKS: usize = 8;
/// Location score of a group on its preferred node.
pub const PREFERRED_SCORE: u32 = 100;
/// Stickiness for `auto_failback off`: more than the preferred node's score.
pub const STICKY: u32 = 200;
/// Score a reachable ping node adds (more than any preference or stickiness).
pub const PING_MULTIPLIER: u32 = 1000;

#[derive(Debug, Clone)]
struct Prim {
    id: String,
    agent: Agent,
}

#[derive(Debug, Clone)]
struct Group {
    id: String,
    node: String,
    prims: Vec<Prim>,
}

#[derive(Debug, Clone)]
struct Fence {
    id: String,
    /// The node it runs on (None: `*`, any node).
    host: Option<String>,
    plugin: String,
    params: Vec<(String, String)>,
}

struct Model {
    nodes: Vec<String>,
    groups: Vec<Group>,
    fences: Vec<Fence>,
    ping: Vec<String>,
    stickiness: u32,
    wrappers: BTreeSet<String>,
}

/// The corosync token for a Heartbeat deadtime (see the module doc).
pub fn token_ms(deadtime_ms: u64) -> u64 {
    (deadtime_ms * 10 / 22).max(1000)
}

fn unique_id(want: &str, taken: &mut BTreeSet<String>) -> String {
    let base = ident(want);
    let mut id = base.clone();
    let mut n = 2;
    while !taken.insert(id.clone()) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

fn build(cfg: &Config, stonith: &[(String, Stonith)], facts: &Facts, ex: &mut Export) -> Model {
    let mut taken = BTreeSet::new();
    // Ids the generated configuration uses for itself.
    for fixed in [
        "ping",
        "ping-clone",
        "cib-bootstrap-options",
        "rsc-options",
        "op-options",
    ] {
        taken.insert(fixed.to_string());
    }
    let mut groups = Vec::new();
    let mut wrappers = BTreeSet::new();
    for g in &cfg.groups {
        let mut prims = Vec::new();
        for r in &g.resources {
            let place = facts
                .scripts
                .get(&r.script)
                .copied()
                .unwrap_or(ScriptPlace::Missing);
            let agent = resources::map(r, place);
            for n in &agent.notes {
                ex.unmapped.push(Note {
                    place: hr_place(g.line),
                    text: format!("{}: {n}", r.spec),
                });
            }
            if let Some(w) = &agent.wrapped {
                wrappers.insert(w.clone());
            }
            let id = unique_id(&agent.id_hint, &mut taken);
            prims.push(Prim { id, agent });
        }
        let id = unique_id(&format!("grp-{}", prims[0].id), &mut taken);
        groups.push(Group {
            id,
            node: g.node.clone(),
            prims,
        });
    }
    if !wrappers.is_empty() {
        ex.info.push(Note {
            place: String::new(),
            text: format!(
                "v1 scripts without an OCF equivalent ({}) run unchanged through the wrappers in \
                 ocf/{WRAPPER_PROVIDER}/: install them as /usr/lib/ocf/resource.d/{WRAPPER_PROVIDER}/ \
                 and keep the scripts in /etc/ha.d/resource.d on every node",
                wrappers.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }

    let mut fences = Vec::new();
    for (node, s) in stonith {
        let (line, host, plugin, params) = match s {
            Stonith::Host {
                line,
                host,
                device_type,
                params,
            } => (
                *line,
                host.clone(),
                device_type.clone(),
                Some(params.clone()),
            ),
            Stonith::File {
                line,
                device_type,
                config_file,
            } => {
                ex.unmapped.push(Note {
                    place: hacf_place(*line),
                    text: format!(
                        "stonith {device_type} {config_file}: the device's parameters are in \
                         {config_file}; add them to the stonith resource as name=value \
                         parameters (`stonith -t {device_type} -n` lists the names)"
                    ),
                });
                (*line, node.clone(), device_type.clone(), None)
            }
        };
        let host = (host != "*").then_some(host);
        // `stonith_host *` applies to every node: one device, not one per node.
        if host.is_none() && fences.iter().any(|f: &Fence| f.host.is_none()) {
            continue;
        }
        let mut named = Vec::new();
        if let Some(p) = params {
            let values: Vec<&str> = p.split_whitespace().collect();
            match facts.stonith_params.get(&plugin) {
                Some(names) if names.len() == values.len() => {
                    named = names
                        .iter()
                        .zip(&values)
                        .map(|(n, v)| (n.clone(), v.to_string()))
                        .collect();
                }
                other => ex.unmapped.push(Note {
                    place: hacf_place(line),
                    text: match other {
                        Some(names) => format!(
                            "stonith_host {} {plugin}: {} parameter(s) given, the plugin takes \
                             {} ({}); add them to the stonith resource by name",
                            host.as_deref().unwrap_or("*"),
                            values.len(),
                            names.len(),
                            names.join(" ")
                        ),
                        None => format!(
                            "stonith_host {} {plugin}: the plugin's parameter names are not \
                             known on this machine (cluster-glue's `stonith -t {plugin} -n`); \
                             add the parameters ({p}) to the stonith resource by name",
                            host.as_deref().unwrap_or("*")
                        ),
                    },
                }),
            }
        }
        let id = unique_id(
            &format!("fence-{}", host.as_deref().unwrap_or("all")),
            &mut taken,
        );
        fences.push(Fence {
            id,
            host,
            plugin,
            params: named,
        });
    }

    let ping: Vec<String> = ping_hosts(cfg).into_iter().map(|(_, h)| h).collect();
    let stickiness = match cfg.hacf.auto_failback {
        AutoFailback::Off => STICKY,
        AutoFailback::On | AutoFailback::Legacy => 0,
    };
    Model {
        nodes: cfg.hacf.nodes.clone(),
        groups,
        fences,
        ping,
        stickiness,
        wrappers,
    }
}

/// Export a configuration for Pacemaker + Corosync. `stonith` is every node's device
/// ([`super::stonith_per_node`]).
pub fn export(cfg: &Config, stonith: &[(String, Stonith)], facts: &Facts) -> Export {
    let mut ex = Export::default();
    let model = build(cfg, stonith, facts, &mut ex);
    let corosync = corosync_conf(cfg, facts, &mut ex);
    let (key, key_source) = cluster_key(cfg, facts, "corosync authkey");
    ex.info.push(Note {
        place: String::new(),
        text: format!(
            "authkey (corosync's crypto key, /etc/corosync/authkey, mode 0400): {key_source}"
        ),
    });
    ex.info.push(Note {
        place: String::new(),
        text: format!(
            "deadtime {} ms -> corosync token {} ms (a node is lost after token + consensus, \
             1.2 x token: about the deadtime)",
            cfg.hacf.deadtime_ms,
            token_ms(cfg.hacf.deadtime_ms)
        ),
    });
    ex.info.push(Note {
        place: String::new(),
        text: match cfg.hacf.auto_failback {
            AutoFailback::Off => format!(
                "auto_failback off -> resource-stickiness {STICKY}, more than the preferred \
                 node's score {PREFERRED_SCORE}: a group stays where it runs"
            ),
            _ => format!(
                "auto_failback on/legacy -> resource-stickiness 0 and a score of \
                 {PREFERRED_SCORE} on the preferred node: a group goes home when its node is back"
            ),
        },
    });
    ex.info.push(Note {
        place: String::new(),
        text: format!(
            "corosync talks on its own UDP port (5405 for link 0, then 5406...), not on \
             udpport {}: open it between the nodes",
            cfg.hacf.udpport
        ),
    });
    if cfg.hacf.nodes.len() == 2 {
        ex.unmapped.push(Note {
            place: String::new(),
            text: format!(
                "initdead {} ms: a node that boots alone does not take every group after \
                 initdead as Heartbeat did; two_node makes it wait until it has seen its peer \
                 once (wait_for_all). Add `wait_for_all: 0` to the quorum section for v1's \
                 behaviour, at the price of a split brain when a partition exists at boot",
                cfg.hacf.initdead_ms
            ),
        });
    }
    if model.fences.is_empty() {
        ex.info.push(Note {
            place: String::new(),
            text: "no stonith in ha.cf -> stonith-enabled=false: like the v1 pair, this cluster \
                   does not fence; Pacemaker strongly advises a fencing device"
                .into(),
        });
    }
    if !model.ping.is_empty() {
        ex.info.push(Note {
            place: String::new(),
            text: format!(
                "ping nodes {} -> a cloned ocf:pacemaker:ping; each group prefers the node that \
                 reaches more of them ({PING_MULTIPLIER} per host), which is ipfail's job in v1",
                model.ping.join(" ")
            ),
        });
    }
    for c in &cfg.hacf.clients {
        ex.unmapped.push(Note {
            place: hacf_place(c.line),
            text: format!(
                "{} {} {}: Pacemaker does not run client programs; {}",
                if c.failfast { "failfast" } else { "respawn" },
                c.user,
                c.command,
                if c.path.ends_with("/ipfail") {
                    "the ping rule does ipfail's job"
                } else {
                    "run it from systemd, or as a resource (ocf:heartbeat:anything)"
                }
            ),
        });
    }
    if let Some(w) = &cfg.hacf.watchdog {
        ex.unmapped.push(Note {
            place: String::new(),
            text: format!(
                "watchdog {}: use sbd for a watchdog with Pacemaker",
                w.display()
            ),
        });
    }

    let mut files = vec![
        File::text("corosync.conf", corosync, 0o644),
        File {
            path: "authkey".into(),
            bytes: key,
            mode: 0o400,
        },
        File::text("cib.xml", cib_xml(&model), 0o644),
        File::text("crm-configure.txt", crm_text(&model), 0o644),
        File::text("pcs-commands.sh", pcs_script(&model), 0o755),
    ];
    for w in &model.wrappers {
        files.push(File::text(
            format!("ocf/{WRAPPER_PROVIDER}/{}", ident(w)),
            resources::wrapper_agent(w),
            0o755,
        ));
    }
    let report = ex.report(&format!(
        "heartbeat --export pacemaker: {} node(s), {} group(s)\n\nInstall on every node: \
         corosync.conf and authkey in /etc/corosync/, the ocf/ wrappers (if any) under \
         /usr/lib/ocf/resource.d/; then load the CIB on one node once the cluster runs:\n  \
         cibadmin --replace --scope configuration --xml-file cib.xml   (or: crm configure load update \
         crm-configure.txt, or: sh pcs-commands.sh)",
        model.nodes.len(),
        model.groups.len()
    ));
    files.push(File::text("REPORT.txt", report, 0o644));
    ex.files = files;
    ex
}

fn corosync_conf(cfg: &Config, facts: &Facts, ex: &mut Export) -> String {
    let mut notes = Vec::new();
    let mut all = links(cfg, facts, &mut notes);
    if all.len() > MAX_LINKS {
        for l in all.drain(MAX_LINKS..) {
            notes.push(Note {
                place: hacf_place(l.lines[0]),
                text: format!(
                    "link {}: corosync has at most {MAX_LINKS} links; dropped",
                    l.ifname
                ),
            });
        }
    }
    // A node whose address cannot be told on a link other than the first makes that link
    // unusable (corosync needs every node's address on every link).
    let mut kept = Vec::new();
    for (i, l) in all.into_iter().enumerate() {
        if i > 0 && !l.all_known() {
            notes.push(Note {
                place: hacf_place(l.lines[0]),
                text: format!(
                    "link {}: left out of corosync.conf, some node's address on it is unknown \
                     (add it as ring{}_addr)",
                    l.ifname,
                    kept.len()
                ),
            });
            continue;
        }
        kept.push(l);
    }
    let has_name = kept.first().is_some_and(|l| !l.all_known());
    for n in notes {
        if has_name || !n.text.contains("the node name stands for it") {
            ex.unmapped.push(n);
        }
    }
    let h = &cfg.hacf;
    let mut s = String::new();
    s.push_str("# corosync.conf generated by `heartbeat --export pacemaker` from ");
    s.push_str(&h.path.display().to_string().replace("//", "/"));
    s.push_str("\n# See REPORT.txt for what was carried over and how.\n");
    s.push_str("totem {\n    version: 2\n");
    s.push_str(&format!("    cluster_name: {}\n", ident(&h.cluster)));
    s.push_str("    transport: knet\n");
    s.push_str(&format!(
        "    # deadtime {} ms: token + consensus (1.2 x token) is about the same\n",
        h.deadtime_ms
    ));
    s.push_str(&format!("    token: {}\n", token_ms(h.deadtime_ms)));
    s.push_str("    crypto_cipher: aes256\n    crypto_hash: sha256\n");
    s.push_str("    keyfile: /etc/corosync/authkey\n");
    for (i, l) in kept.iter().enumerate() {
        s.push_str(&format!(
            "    # link {i}: {} (ha.cf line {})\n    interface {{\n        linknumber: {i}\n    }}\n",
            l.ifname,
            l.lines
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s.push_str("}\n\nnodelist {\n");
    for (ni, n) in h.nodes.iter().enumerate() {
        s.push_str("    node {\n");
        s.push_str(&format!("        name: {n}\n        nodeid: {}\n", ni + 1));
        if kept.is_empty() {
            s.push_str(&format!("        ring0_addr: {n}\n"));
        }
        for (li, l) in kept.iter().enumerate() {
            s.push_str(&format!("        ring{li}_addr: {}\n", l.addrs[ni]));
        }
        s.push_str("    }\n");
    }
    s.push_str("}\n\nquorum {\n    provider: corosync_votequorum\n");
    if h.nodes.len() == 2 {
        s.push_str("    # a pair: the survivor keeps quorum (both must have met once at start)\n");
        s.push_str("    two_node: 1\n");
    }
    s.push_str("}\n\nlogging {\n    to_syslog: yes\n    to_stderr: no\n    timestamp: on\n}\n");
    if kept.is_empty() {
        ex.unmapped.push(Note {
            place: String::new(),
            text: "no UDP medium in ha.cf: corosync.conf names the nodes; each name must \
                   resolve to the node's address"
                .into(),
        });
    }
    s
}

fn nv(parent: &str, name: &str, value: &str) -> String {
    format!(
        "<nvpair id=\"{}\" name=\"{}\" value=\"{}\"/>",
        xml_attr(&format!("{parent}-{}", ident(name))),
        xml_attr(name),
        xml_attr(value)
    )
}

fn prim_xml(
    id: &str,
    class: &str,
    provider: Option<&str>,
    kind: &str,
    params: &[(String, String)],
    ind: &str,
) -> String {
    let mut s = format!(
        "{ind}<primitive id=\"{}\" class=\"{}\"{} type=\"{}\">\n",
        xml_attr(id),
        class,
        provider
            .map(|p| format!(" provider=\"{}\"", xml_attr(p)))
            .unwrap_or_default(),
        xml_attr(kind)
    );
    if !params.is_empty() {
        let ia = format!("{id}-instance_attributes");
        s.push_str(&format!(
            "{ind}  <instance_attributes id=\"{}\">\n",
            xml_attr(&ia)
        ));
        for (k, v) in params {
            s.push_str(&format!("{ind}    {}\n", nv(&ia, k, v)));
        }
        s.push_str(&format!("{ind}  </instance_attributes>\n"));
    }
    let interval = if class == "stonith" { "60s" } else { "10s" };
    s.push_str(&format!(
        "{ind}  <operations>\n{ind}    <op id=\"{}\" name=\"monitor\" interval=\"{interval}\"/>\n{ind}  </operations>\n",
        xml_attr(&format!("{id}-monitor-{interval}"))
    ));
    s.push_str(&format!("{ind}</primitive>\n"));
    s
}

fn ping_params(m: &Model) -> Vec<(String, String)> {
    vec![
        ("host_list".into(), m.ping.join(" ")),
        ("multiplier".into(), PING_MULTIPLIER.to_string()),
        ("dampen".into(), "5s".into()),
    ]
}

fn fence_params(f: &Fence) -> Vec<(String, String)> {
    f.params.clone()
}

fn cib_xml(m: &Model) -> String {
    let mut s = String::from(
        "<cib validate-with=\"pacemaker-3.0\" epoch=\"1\" num_updates=\"0\" admin_epoch=\"0\">\n  <configuration>\n    <crm_config>\n      <cluster_property_set id=\"cib-bootstrap-options\">\n",
    );
    // cluster-name is not ours to set: Pacemaker takes it from corosync.conf.
    s.push_str(&format!(
        "        {}\n",
        nv(
            "cib-bootstrap-options",
            "stonith-enabled",
            if m.fences.is_empty() { "false" } else { "true" }
        ),
    ));
    s.push_str("      </cluster_property_set>\n    </crm_config>\n    <nodes>\n");
    for (i, n) in m.nodes.iter().enumerate() {
        s.push_str(&format!(
            "      <node id=\"{}\" uname=\"{}\"/>\n",
            i + 1,
            xml_attr(n)
        ));
    }
    s.push_str("    </nodes>\n    <resources>\n");
    for g in &m.groups {
        s.push_str(&format!("      <group id=\"{}\">\n", xml_attr(&g.id)));
        for p in &g.prims {
            let a = &p.agent;
            s.push_str(&prim_xml(
                &p.id,
                &a.class,
                a.provider.as_deref(),
                &a.kind,
                &a.params,
                "        ",
            ));
        }
        s.push_str("      </group>\n");
    }
    if !m.ping.is_empty() {
        s.push_str("      <clone id=\"ping-clone\">\n");
        s.push_str(&prim_xml(
            "ping",
            "ocf",
            Some("pacemaker"),
            "ping",
            &ping_params(m),
            "        ",
        ));
        s.push_str("      </clone>\n");
    }
    for f in &m.fences {
        s.push_str(&prim_xml(
            &f.id,
            "stonith",
            None,
            &f.plugin,
            &fence_params(f),
            "      ",
        ));
    }
    s.push_str("    </resources>\n    <constraints>\n");
    for g in &m.groups {
        s.push_str(&format!(
            "      <rsc_location id=\"{}\" rsc=\"{}\" node=\"{}\" score=\"{PREFERRED_SCORE}\"/>\n",
            xml_attr(&format!("loc-{}", g.id)),
            xml_attr(&g.id),
            xml_attr(&g.node)
        ));
        if !m.ping.is_empty() {
            let id = format!("loc-{}-ping", g.id);
            s.push_str(&format!(
                "      <rsc_location id=\"{0}\" rsc=\"{1}\">\n        <rule id=\"{0}-rule\" score-attribute=\"pingd\">\n          <expression id=\"{0}-rule-expr\" attribute=\"pingd\" operation=\"defined\"/>\n        </rule>\n      </rsc_location>\n",
                xml_attr(&id),
                xml_attr(&g.id)
            ));
        }
    }
    for f in &m.fences {
        if let Some(h) = &f.host {
            for n in m.nodes.iter().filter(|n| *n != h) {
                s.push_str(&format!(
                    "      <rsc_location id=\"{}\" rsc=\"{}\" node=\"{}\" score=\"-INFINITY\"/>\n",
                    xml_attr(&format!("loc-{}-not-{n}", f.id)),
                    xml_attr(&f.id),
                    xml_attr(n)
                ));
            }
        }
    }
    s.push_str(
        "    </constraints>\n    <rsc_defaults>\n      <meta_attributes id=\"rsc-options\">\n",
    );
    s.push_str(&format!(
        "        {}\n",
        nv(
            "rsc-options",
            "resource-stickiness",
            &m.stickiness.to_string()
        )
    ));
    s.push_str("      </meta_attributes>\n    </rsc_defaults>\n    <op_defaults>\n      <meta_attributes id=\"op-options\">\n");
    s.push_str(&format!(
        "        {}\n",
        nv("op-options", "timeout", "120s")
    ));
    s.push_str(
        "      </meta_attributes>\n    </op_defaults>\n  </configuration>\n  <status/>\n</cib>\n",
    );
    s
}

/// A crm shell value: quoted when it has blanks or quotes.
fn crmq(v: &str) -> String {
    if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

fn crm_params(params: &[(String, String)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let mut s = String::from(" \\\n    params");
    for (k, v) in params {
        s.push_str(&format!(" {k}={}", crmq(v)));
    }
    s
}

fn crm_text(m: &Model) -> String {
    let mut s = String::from(
        "# crm configure load update crm-configure.txt   (generated by the pacemaker export of heartbeat)\n",
    );
    for (i, n) in m.nodes.iter().enumerate() {
        s.push_str(&format!("node {}: {n}\n", i + 1));
    }
    for g in &m.groups {
        for p in &g.prims {
            s.push_str(&format!(
                "primitive {} {}{} \\\n    op monitor interval=10s\n",
                p.id,
                p.agent.spec(),
                crm_params(&p.agent.params)
            ));
        }
        s.push_str(&format!(
            "group {} {}\n",
            g.id,
            g.prims
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        s.push_str(&format!(
            "location loc-{0} {0} {PREFERRED_SCORE}: {1}\n",
            g.id, g.node
        ));
    }
    if !m.ping.is_empty() {
        s.push_str(&format!(
            "primitive ping ocf:pacemaker:ping{} \\\n    op monitor interval=10s\nclone ping-clone ping\n",
            crm_params(&ping_params(m))
        ));
        for g in &m.groups {
            s.push_str(&format!(
                "location loc-{0}-ping {0} rule pingd: defined pingd\n",
                g.id
            ));
        }
    }
    for f in &m.fences {
        s.push_str(&format!(
            "primitive {} stonith:{}{} \\\n    op monitor interval=60s\n",
            f.id,
            f.plugin,
            crm_params(&fence_params(f))
        ));
        if let Some(h) = &f.host {
            for n in m.nodes.iter().filter(|n| *n != h) {
                s.push_str(&format!("location loc-{0}-not-{n} {0} -inf: {n}\n", f.id));
            }
        }
    }
    s.push_str(&format!(
        "property cib-bootstrap-options: stonith-enabled={}\n",
        if m.fences.is_empty() { "false" } else { "true" },
    ));
    s.push_str(&format!(
        "rsc_defaults rsc-options: resource-stickiness={}\nop_defaults op-options: timeout=120s\n",
        m.stickiness
    ));
    s
}

fn pcs_params(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!(" {}", shq(&format!("{k}={v}"))))
        .collect()
}

fn pcs_script(m: &Model) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# The CIB as pcs commands (generated by the pacemaker export of heartbeat).\n\
         # Run on one node of the running cluster; PCS_FILE=cib.xml makes them edit that file.\n\
         set -e\npcs() { command pcs ${PCS_FILE:+-f \"$PCS_FILE\"} \"$@\"; }\n",
    );
    s.push_str(&format!(
        "pcs property set stonith-enabled={}\n",
        if m.fences.is_empty() { "false" } else { "true" },
    ));
    s.push_str(&format!(
        "pcs resource defaults update resource-stickiness={}\npcs resource op defaults update timeout=120s\n",
        m.stickiness
    ));
    for g in &m.groups {
        for p in &g.prims {
            // The wrappers and agents may not be installed where this runs: --force skips
            // pcs's check of the agent's parameters.
            s.push_str(&format!(
                "pcs resource create {} {}{} op monitor interval=10s --group {} --force\n",
                p.id,
                p.agent.spec(),
                pcs_params(&p.agent.params),
                g.id
            ));
        }
        s.push_str(&format!(
            "pcs constraint location {} prefers {}\n",
            g.id,
            shq(&format!("{}={PREFERRED_SCORE}", g.node))
        ));
    }
    if !m.ping.is_empty() {
        s.push_str(&format!(
            "pcs resource create ping ocf:pacemaker:ping{} op monitor interval=10s clone ping-clone --force\n",
            pcs_params(&ping_params(m))
        ));
        for g in &m.groups {
            s.push_str(&format!(
                "pcs constraint location {} rule score-attribute=pingd defined pingd\n",
                g.id
            ));
        }
    }
    for f in &m.fences {
        s.push_str(&format!(
            "pcs stonith create {} {}{} op monitor interval=60s --force\n",
            f.id,
            f.plugin,
            pcs_params(&fence_params(f))
        ));
        if let Some(h) = &f.host {
            for n in m.nodes.iter().filter(|n| *n != h) {
                s.push_str(&format!(
                    "pcs constraint location {} avoids {}\n",
                    f.id,
                    shq(n)
                ));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use std::net::IpAddr;
    use std::path::Path;

    fn cfg(hacf: &str, hr: &str, auth: &str) -> Config {
        let (c, d) = config::check(
            hacf.as_bytes(),
            Path::new("ha.cf"),
            auth.as_bytes(),
            Path::new("authkeys"),
            None,
            Ok(hr.as_bytes()),
            Path::new("haresources"),
            "alice",
            None,
            true,
        );
        c.unwrap_or_else(|| panic!("{d:?}"))
    }

    fn facts(local: &[(&str, &str)]) -> Facts {
        Facts {
            local_node: "alice".into(),
            local_addrs: local
                .iter()
                .map(|(i, a)| (i.to_string(), a.parse::<IpAddr>().unwrap()))
                .collect(),
            random: vec![7; 256],
            ..Facts::default()
        }
    }

    const PAIR: &str = "deadtime 22\nucast eth1 10.0.0.1\nucast eth1 10.0.0.2\nucast eth0 192.168.1.12\nauto_failback on\nnode alice\nnode bob\n";
    const SHA: &str = "auth 3\n3 sha1 s3cret\n";

    #[test]
    fn token_is_deadtime_over_2_2() {
        assert_eq!(token_ms(22_000), 10_000);
        assert_eq!(token_ms(30_000), 13_636);
        assert_eq!(token_ms(500), 1000);
    }

    #[test]
    fn rings_from_ucast_media_told_apart_by_our_own_address() {
        let c = cfg(PAIR, "alice 10.0.0.100/24/eth1\n", SHA);
        // ha.cf on alice names both addresses on eth1 and only bob's on eth0.
        let ex = export(
            &c,
            &[],
            &facts(&[("eth1", "10.0.0.1"), ("eth0", "192.168.1.11")]),
        );
        let conf = ex.text("corosync.conf").unwrap();
        assert!(conf.contains("name: alice\n        nodeid: 1\n        ring0_addr: 10.0.0.1\n        ring1_addr: 192.168.1.11\n"), "{conf}");
        assert!(conf.contains("name: bob\n        nodeid: 2\n        ring0_addr: 10.0.0.2\n        ring1_addr: 192.168.1.12\n"), "{conf}");
        assert!(conf.contains("token: 10000\n"));
        assert!(conf.contains("two_node: 1\n"));
        assert!(conf.contains("linknumber: 1\n"));
        // A pair: only the boot-alone difference is left to say.
        assert_eq!(ex.unmapped.len(), 1, "{:?}", ex.unmapped);
        assert!(
            ex.unmapped[0].text.contains("ms: a node that boots alone"),
            "{:?}",
            ex.unmapped
        );
    }

    #[test]
    fn unknown_addresses_fall_back_to_names_and_are_said() {
        let c = cfg(PAIR, "alice 10.0.0.100\n", SHA);
        // Not run on a node: the first link names the nodes, the second is left out.
        let mut f = facts(&[]);
        f.local_node = "laptop".into();
        let ex = export(&c, &[], &f);
        let conf = ex.text("corosync.conf").unwrap();
        assert!(
            conf.contains("ring0_addr: alice\n") && conf.contains("ring0_addr: bob\n"),
            "{conf}"
        );
        assert!(!conf.contains("ring1_addr"), "{conf}");
        let said: Vec<String> = ex.unmapped.iter().map(|n| n.to_string()).collect();
        assert!(
            said.iter()
                .any(|n| n.starts_with("ha.cf:2: link eth1: the address of alice, bob")),
            "{said:?}"
        );
        assert!(
            said.iter()
                .any(|n| n.contains("link eth0: left out of corosync.conf")),
            "{said:?}"
        );
        // --node-address wins.
        f.node_addrs.insert(
            "alice".into(),
            vec!["10.9.0.1".parse().unwrap(), "10.9.1.1".parse().unwrap()],
        );
        f.node_addrs.insert(
            "bob".into(),
            vec!["10.9.0.2".parse().unwrap(), "10.9.1.2".parse().unwrap()],
        );
        let conf = export(&c, &[], &f).text("corosync.conf").unwrap();
        assert!(
            conf.contains("ring0_addr: 10.9.0.2\n        ring1_addr: 10.9.1.2\n"),
            "{conf}"
        );
    }

    #[test]
    fn groups_locations_and_stickiness_follow_haresources_and_auto_failback() {
        let hr = "alice 10.0.0.100/24/eth1 Marker::web\nbob Marker::db\n";
        let c = cfg(PAIR, hr, SHA);
        let ex = export(&c, &[], &facts(&[]));
        let cib = ex.text("cib.xml").unwrap();
        let ip = cib.find("<primitive id=\"ip-10.0.0.100\"").unwrap();
        let web = cib.find("<primitive id=\"marker-web\"").unwrap();
        assert!(ip < web, "group order kept");
        assert!(cib.contains(r#"<rsc_location id="loc-grp-ip-10.0.0.100" rsc="grp-ip-10.0.0.100" node="alice" score="100"/>"#), "{cib}");
        assert!(cib.contains(r#"<rsc_location id="loc-grp-marker-db" rsc="grp-marker-db" node="bob" score="100"/>"#), "{cib}");
        assert!(cib.contains(r#"name="resource-stickiness" value="0""#));
        assert!(cib.contains(r#"name="stonith-enabled" value="false""#));
        assert!(ex
            .file("ocf/heartbeat-v1/Marker")
            .is_some_and(|f| f.mode == 0o755));
        let crm = ex.text("crm-configure.txt").unwrap();
        assert!(
            crm.contains("group grp-ip-10.0.0.100 ip-10.0.0.100 marker-web\n"),
            "{crm}"
        );
        assert!(
            crm.contains("location loc-grp-marker-db grp-marker-db 100: bob\n"),
            "{crm}"
        );
        let pcs = ex.text("pcs-commands.sh").unwrap();
        assert!(
            pcs.contains("pcs constraint location grp-marker-db prefers bob=100\n"),
            "{pcs}"
        );
        assert!(pcs.contains("--group grp-ip-10.0.0.100"), "{pcs}");

        let off = cfg(
            &PAIR.replace("auto_failback on", "auto_failback off"),
            hr,
            SHA,
        );
        let cib = export(&off, &[], &facts(&[])).text("cib.xml").unwrap();
        assert!(cib.contains(&format!(r#"name="resource-stickiness" value="{STICKY}""#)));
        const { assert!(STICKY > PREFERRED_SCORE) };
    }

    #[test]
    fn ids_stay_unique_and_valid() {
        let hr = "alice Marker::web Marker::web::x\nbob 10.0.0.1 IPaddr::10.0.0.1/24\n";
        // Two groups may not share a key, but resources inside may look alike.
        let c = cfg(PAIR, hr, SHA);
        let cib = export(&c, &[], &facts(&[])).text("cib.xml").unwrap();
        assert!(
            cib.contains(r#"<primitive id="marker-web" "#)
                && cib.contains(r#"<primitive id="marker-web-2" "#),
            "{cib}"
        );
        assert!(
            cib.contains(r#"<primitive id="ip-10.0.0.1" "#)
                && cib.contains(r#"<primitive id="ip-10.0.0.1-2" "#),
            "{cib}"
        );
    }

    #[test]
    fn key_from_the_authkeys_secret_or_random() {
        let c = cfg(PAIR, "alice Marker::a\n", SHA);
        let k1 = export(&c, &[], &facts(&[]))
            .file("authkey")
            .unwrap()
            .bytes
            .clone();
        let mut f = facts(&[]);
        f.random = vec![9; 256];
        let k2 = export(&c, &[], &f).file("authkey").unwrap().bytes.clone();
        assert_eq!(k1, k2, "derived, not random");
        assert_eq!(k1.len(), 256);
        let other = cfg(PAIR, "alice Marker::a\n", "auth 3\n3 sha1 other\n");
        assert_ne!(k1, export(&other, &[], &f).file("authkey").unwrap().bytes);
        let crc = cfg(PAIR, "alice Marker::a\n", "auth 1\n1 crc\n");
        let ex = export(&crc, &[], &f);
        assert_eq!(ex.file("authkey").unwrap().bytes, vec![9; 256]);
        assert!(ex
            .info
            .iter()
            .any(|n| n.text.contains("generated at random")));
    }

    #[test]
    fn stonith_ping_and_clients_are_mapped_or_listed() {
        let hacf = format!(
            "{PAIR}stonith_host alice external/ipmi bob 10.0.0.21 admin pw lan\n\
             stonith_host bob baytech 10.0.0.3 admin\nping 10.0.0.254\n\
             respawn hacluster /usr/lib/heartbeat/ipfail\nserial /dev/ttyS0\n"
        );
        let c = cfg(&hacf, "alice Marker::a\n", SHA);
        let text = hacf.clone();
        let stonith = super::super::stonith_per_node(&text, Path::new("ha.cf"), &c.hacf.nodes);
        assert_eq!(stonith.len(), 2);
        let mut f = facts(&[]);
        f.stonith_params.insert(
            "external/ipmi".into(),
            ["hostname", "ipaddr", "userid", "passwd", "interface"]
                .map(String::from)
                .to_vec(),
        );
        let ex = export(&c, &stonith, &f);
        let cib = ex.text("cib.xml").unwrap();
        assert!(cib.contains(r#"name="stonith-enabled" value="true""#));
        assert!(
            cib.contains(r#"<primitive id="fence-alice" class="stonith" type="external/ipmi">"#)
        );
        assert!(cib.contains(r#"name="userid" value="admin""#));
        assert!(cib.contains(r#"rsc="fence-alice" node="bob" score="-INFINITY""#));
        assert!(cib.contains(r#"<primitive id="fence-bob" class="stonith" type="baytech">"#));
        assert!(cib.contains(r#"name="host_list" value="10.0.0.254""#));
        assert!(cib.contains(r#"score-attribute="pingd""#));
        let said: Vec<String> = ex.unmapped.iter().map(|n| n.to_string()).collect();
        for want in [
            "ha.cf:9: stonith_host bob baytech: the plugin's parameter names are not known",
            "ha.cf:11: respawn hacluster /usr/lib/heartbeat/ipfail: Pacemaker does not run client programs; the ping rule",
            "ha.cf:12: serial /dev/ttyS0",
        ] {
            assert!(said.iter().any(|n| n.starts_with(want)), "no {want:?} in {said:?}");
        }
        let report = ex.text("REPORT.txt").unwrap();
        for n in &said {
            assert!(report.contains(n.as_str()), "REPORT.txt lacks {n}");
        }
    }
}
