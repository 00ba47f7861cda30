//! `heartbeat --export pacemaker|keepalived` checked by the real engines' own tools.
//!
//! * the CLI writes the files and a report, refuses what keepalived cannot express;
//! * `crm_verify` accepts the CIB of every sample (etc-ha.d/, etc-ha.d/examples/) and test
//!   configuration, in all three forms (cib.xml, and the CIBs that `crm configure load update`
//!   and the pcs commands build), and `crm_simulate` places every group on its preferred node,
//!   moves it when that node goes down and brings it back (or not) as auto_failback says;
//! * as root, in a network namespace holding the first node's addresses, `corosync -t` accepts
//!   every corosync.conf (with its authkey, installed as /etc/corosync in a private mount
//!   namespace) and `keepalived -t` every keepalived.conf.
//!
//! Without the tools (or root for the last one) the tests print `SKIP:`; with
//! HB_REQUIRE_INTEROP=1 (CI) they fail instead.

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// One configuration to export: its name, its /etc/ha.d, the addresses to give (`--node-address`),
/// the nodes, each group's preferred node (by group index) and its auto_failback.
struct Sample {
    name: String,
    confdir: PathBuf,
    node_addresses: Vec<String>,
    nodes: Vec<String>,
    failback: bool,
}

fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Test configurations beyond the samples: every mapping at once (stock scripts, a site
/// script, an init service, stonith_host per node, ping nodes, mcast, auto_failback off, crc),
/// and three nodes.
const KITCHEN_HACF: &str = "keepalive 1\ndeadtime 10\ninitdead 30\nudpport 694\n\
mcast eth1 239.0.0.42 694 1 0\nbcast eth2\nserial /dev/ttyS0\n\
ping 10.68.0.254\nping_group uplinks 10.68.0.253 10.68.0.252\n\
respawn hacluster /usr/lib/heartbeat/ipfail\n\
stonith_host alice external/ipmi bob 10.0.0.21 admin secret lan\n\
stonith_host bob external/ipmi alice 10.0.0.20 admin secret lan\n\
auto_failback off\nnode alice\nnode bob\n";
const KITCHEN_HR: &str =
    "alice 10.10.0.5/24/eth0 IPaddr2::10.10.0.6/255.255.255.0/eth0:web/10.10.0.255 \
SendArp::10.10.0.5/eth0 Filesystem::/dev/sdb1::/srv/www::ext4::noatime LVM::vg0 \
Raid1::/etc/mdadm/mdadm.conf::/dev/md0 apache::/etc/apache2/apache2.conf Xinetd::tftp \
IPsrcaddr::10.10.0.5 AudibleAlarm::alice Delay::1::1 MailTo::root,ops::web SiteTool::a::b\n\
bob cron Marker::db::/var/tmp/marker\n";
const TRIO_HACF: &str =
    "keepalive 1\ndeadtime 6\nudpport 694\nucast eth0 10.68.0.1\nucast eth0 10.68.0.2\n\
ucast eth0 10.68.0.3\nauto_failback on\nnode n1\nnode n2\nnode n3\n";
const TRIO_HR: &str =
    "n1 IPaddr2::10.68.0.101/24/eth0 Marker::a\nn2 IPaddr2::10.68.0.102/24/eth0 Marker::b\n\
n3 IPaddr2::10.68.0.103/24/eth0 Marker::c\n";
/// The pair of tests/export_engines.rs, on addresses of this test.
const PAIR_HACF: &str =
    "keepalive 500ms\ndeadtime 4\ninitdead 10\nudpport 50694\nucast hb0 10.68.0.1\n\
ucast hb0 10.68.0.2\nauto_failback on\nnode alice\nnode bob\n";
const PAIR_HR: &str = "alice IPaddr2::10.68.0.100/24/hb0 Marker::web::/var/tmp/marker\n\
bob 10.68.0.101/24/hb0 Marker::db::/var/tmp/marker\n";

fn samples(root: &Path) -> Vec<Sample> {
    let repo = Path::new(REPO);
    let auth = fs::read_to_string(repo.join("etc-ha.d/authkeys")).unwrap();
    let mut out = Vec::new();
    let mut add = |name: &str, hacf: String, hr: String, authkeys: &str| {
        let dir = root.join(name).join("ha.d");
        write(&dir.join("ha.cf"), &hacf);
        write(&dir.join("haresources"), &hr);
        write(&dir.join("authkeys"), authkeys);
        fs::set_permissions(dir.join("authkeys"), fs::Permissions::from_mode(0o600)).unwrap();
        // The site's own scripts (Marker, and the kitchen's SiteTool) are in its resource.d.
        for s in ["Marker", "SiteTool"] {
            write(&dir.join("resource.d").join(s), "#!/bin/sh\necho running\n");
            fs::set_permissions(
                dir.join("resource.d").join(s),
                fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
        let (hacf_parsed, _) = heartbeat::config::hacf::parse_partial(
            &hacf,
            Path::new("ha.cf"),
            "nobody-here",
            None,
            true,
        );
        let nodes = hacf_parsed.nodes.clone();
        let node_addresses = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n}=10.68.0.{},10.68.0.{}", i + 1, i + 11))
            .collect();
        out.push(Sample {
            name: name.to_string(),
            confdir: dir,
            node_addresses,
            nodes,
            failback: hacf_parsed.auto_failback != heartbeat::config::AutoFailback::Off,
        });
    };
    add(
        "sample",
        fs::read_to_string(repo.join("etc-ha.d/ha.cf")).unwrap(),
        fs::read_to_string(repo.join("etc-ha.d/haresources")).unwrap(),
        &auth,
    );
    for ex in ["bcast", "serial-udp", "ucast-pair"] {
        let d = repo.join("etc-ha.d/examples");
        add(
            ex,
            fs::read_to_string(d.join(format!("{ex}.ha.cf"))).unwrap(),
            fs::read_to_string(d.join(format!("{ex}.haresources"))).unwrap(),
            &auth,
        );
    }
    add(
        "kitchen",
        KITCHEN_HACF.into(),
        KITCHEN_HR.into(),
        "auth 2\n2 crc\n",
    );
    add("trio", TRIO_HACF.into(), TRIO_HR.into(), &auth);
    add("pair", PAIR_HACF.into(), PAIR_HR.into(), &auth);
    out
}

/// Run `heartbeat --export ENGINE` on a sample; (exit code, stdout, stderr).
fn export(s: &Sample, engine: &str, out: &Path) -> (i32, String, String) {
    let mut cmd = Command::new(OUR_HB);
    cmd.args(["--export", engine, "--confdir"])
        .arg(&s.confdir)
        .arg("--output")
        .arg(out)
        .args(["--node", "nobody-here"]);
    for a in &s.node_addresses {
        cmd.args(["--node-address", a]);
    }
    let o = cmd.output().expect("run heartbeat --export");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// True when every tool is there (and root, if asked); else SKIP, or fail under
/// HB_REQUIRE_INTEROP=1.
fn require(test: &str, tools: &[&str], root: bool) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| !tool(t))
        .map(|t| t.to_string())
        .collect();
    if root && !nix::unistd::geteuid().is_root() {
        missing.push("root".into());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{test} needs {}", missing.join(", "));
    if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("HB_REQUIRE_INTEROP=1 but {msg}");
    }
    // Straight to the process's stderr, past the test harness's output capture.
    let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    false
}

fn run(cmd: &mut Command) -> (i32, String) {
    run_for(cmd, 60)
}

fn run_for(cmd: &mut Command, secs: u64) -> (i32, String) {
    let (out, err, code) = run_with_timeout(cmd, Duration::from_secs(secs));
    (code, format!("{out}{err}"))
}

#[test]
fn cli_writes_the_files_and_a_report_of_what_it_did_not_carry_over() {
    let tmp = TestDir::new("export-cli");
    let all = samples(&tmp.path);
    let kitchen = all.iter().find(|s| s.name == "kitchen").unwrap();
    let out = tmp.path.join("out-kitchen");
    let (code, stdout, stderr) = export(kitchen, "pacemaker", &out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for f in [
        "corosync.conf",
        "authkey",
        "cib.xml",
        "crm-configure.txt",
        "pcs-commands.sh",
        "REPORT.txt",
        "ocf/heartbeat-v1/SiteTool",
        "ocf/heartbeat-v1/Marker",
    ] {
        assert!(out.join(f).is_file(), "{f} missing; {stdout}");
    }
    let key = fs::metadata(out.join("authkey")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o400);
    assert_eq!(key.len(), 256);
    let report = fs::read_to_string(out.join("REPORT.txt")).unwrap();
    // What could not be carried over is said, with the line it came from.
    for want in [
        "ha.cf:7: serial /dev/ttyS0",
        "respawn hacluster /usr/lib/heartbeat/ipfail",
        "generated at random (authkeys key 2 is crc",
    ] {
        assert!(
            report.contains(want),
            "REPORT.txt lacks {want:?}:\n{report}"
        );
    }
    // stonith_host: one device per node (the same cluster-glue plugin, which Pacemaker runs),
    // its parameters named as the plugin names them (`stonith -t TYPE -n`), banned from the
    // other node.
    let cib = fs::read_to_string(out.join("cib.xml")).unwrap();
    assert!(
        cib.contains(r#"<primitive id="fence-alice" class="stonith" type="external/ipmi">"#),
        "{cib}"
    );
    assert!(
        cib.contains(r#"rsc="fence-alice" node="bob" score="-INFINITY""#),
        "{cib}"
    );
    if tool("stonith") {
        assert!(cib.contains(r#"name="hostname" value="bob""#), "{cib}");
        assert!(cib.contains(r#"name="ipaddr" value="10.0.0.21""#), "{cib}");
    } else {
        assert!(report.contains("parameter names are not known"), "{report}");
    }
    // crc has no secret: two exports give two keys; a sha1 secret gives the same key twice.
    let out2 = tmp.path.join("out-kitchen2");
    assert_eq!(export(kitchen, "pacemaker", &out2).0, 0);
    assert_ne!(
        fs::read(out.join("authkey")).unwrap(),
        fs::read(out2.join("authkey")).unwrap()
    );
    let pair = all.iter().find(|s| s.name == "pair").unwrap();
    let (p1, p2) = (tmp.path.join("p1"), tmp.path.join("p2"));
    assert_eq!(export(pair, "pacemaker", &p1).0, 0);
    assert_eq!(export(pair, "pacemaker", &p2).0, 0);
    assert_eq!(
        fs::read(p1.join("authkey")).unwrap(),
        fs::read(p2.join("authkey")).unwrap()
    );

    // A configuration with errors writes nothing and says why, with file:line.
    let bad = tmp.path.join("bad");
    write(
        &bad.join("ha.cf"),
        "deadtime 10\nnode alice\nnode bob\nbogus 1\n",
    );
    write(&bad.join("haresources"), "carol 10.0.0.1\n");
    write(&bad.join("authkeys"), "auth 1\n1 sha1 x\n");
    let o = Command::new(OUR_HB)
        .args(["--export", "pacemaker", "--confdir"])
        .arg(&bad)
        .arg("--output")
        .arg(tmp.path.join("bad-out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(
        err.contains("haresources") && err.contains("carol"),
        "{err}"
    );
    assert!(!tmp.path.join("bad-out").exists());
}

#[test]
fn keepalived_export_refuses_what_vrrp_cannot_express() {
    let tmp = TestDir::new("export-ka-refuse");
    let all = samples(&tmp.path);
    let expect: BTreeMap<&str, &[&str]> = [
        ("sample", &["no IPaddr/IPaddr2 address"][..]),
        (
            "bcast",
            &["Filesystem::/dev/sdb1::/srv/nfs::ext4::noatime: storage"][..],
        ),
        ("serial-udp", &["LVM::vg_db: storage", "Filesystem::"][..]),
        (
            "kitchen",
            &[
                "Filesystem::",
                "LVM::vg0",
                "Raid1::",
                "group cron: no IPaddr",
            ][..],
        ),
        (
            "trio",
            &["3 node(s): a keepalived export is for a pair"][..],
        ),
    ]
    .into_iter()
    .collect();
    for s in &all {
        let out = tmp.path.join(format!("ka-{}", s.name));
        let (code, stdout, stderr) = export(s, "keepalived", &out);
        match expect.get(s.name.as_str()) {
            Some(reasons) => {
                assert_eq!(code, 1, "{}: {stdout}{stderr}", s.name);
                for r in *reasons {
                    assert!(stderr.contains(r), "{}: no {r:?} in:\n{stderr}", s.name);
                }
                assert!(stderr.contains("nothing written"), "{stderr}");
                assert!(
                    !out.exists(),
                    "{}: refused, yet {} exists",
                    s.name,
                    out.display()
                );
            }
            None => {
                assert_eq!(code, 0, "{}: {stdout}{stderr}", s.name);
                for n in &s.nodes {
                    assert!(out.join(n).join("keepalived.conf").is_file(), "{}", s.name);
                }
            }
        }
    }
}

/// crm_verify's warnings about a CIB's (empty) status, not its configuration.
const STATUS_WARNINGS: &[&str] = &[
    "disabled due to lack of quorum",
    "is unclean but cannot be fenced",
    "Blind faith: not fencing unseen nodes",
];

/// The installed OCF agents plus the export's wrappers, seen at /usr/lib/ocf/resource.d by the
/// command that follows (`unshare -m`, a private mount namespace; `scratch` is ours to use).
pub const OCF_OVERLAY: &str = r#"set -e
X=$1 S=$2
shift 2
mkdir -p "$S/orig" "$S/tree"
mount --make-rprivate /
mount --bind /usr/lib/ocf/resource.d "$S/orig"
for p in "$S"/orig/*; do mkdir -p "$S/tree/${p##*/}"; mount --bind "$p" "$S/tree/${p##*/}"; done
if [ -d "$X/ocf" ]; then cp -r "$X/ocf/." "$S/tree/"; fi
mount --rbind "$S/tree" /usr/lib/ocf/resource.d
exec "$@"
"#;

fn with_wrappers(export_dir: &Path, scratch: &Path) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c", OCF_OVERLAY, "ocf-overlay"])
        .arg(export_dir)
        .arg(scratch);
    c
}

/// Group name -> the nodes its members run on, from crm_simulate's "Revised Cluster Status".
fn placement(sim_output: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let revised = sim_output
        .rsplit_once("Revised Cluster Status")
        .map(|(_, r)| r)
        .unwrap_or(sim_output);
    let mut group = None;
    for line in revised.lines() {
        let t = line.trim();
        if let Some(g) = t.strip_prefix("* Resource Group: ") {
            let g = g
                .trim_end_matches(':')
                .split_whitespace()
                .next()
                .unwrap_or("");
            group = Some(g.to_string());
            out.entry(g.to_string()).or_default();
        } else if let Some(g) = &group {
            if !line.starts_with("      ") {
                group = None;
                continue;
            }
            if let Some((_, node)) = t.rsplit_once("Started ") {
                out.get_mut(g).unwrap().insert(node.trim().to_string());
            }
        }
    }
    out
}

/// The groups of a CIB file and their preferred nodes (from the rsc_location node= scores).
fn preferred(cib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for chunk in cib.split("<rsc_location ").skip(1) {
        let attr = |name: &str| {
            chunk
                .split_once(&format!(" {name}=\""))
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(v, _)| v.to_string())
        };
        if let (Some(rsc), Some(node), Some(score)) = (attr("rsc"), attr("node"), attr("score")) {
            if rsc.starts_with("grp-") && score == "100" {
                out.insert(rsc, node);
            }
        }
    }
    out
}

/// One crm_simulate step on `cib` in place (quorum assumed); returns its output.
fn simulate(cib: &Path, extra: &[String]) -> String {
    let (code, out) = run(Command::new("crm_simulate")
        .arg("-x")
        .arg(cib)
        .args(["-q", "1", "-X"])
        .args(extra));
    assert_eq!(
        code,
        0,
        "crm_simulate {extra:?} on {}: {out}",
        cib.display()
    );
    // crm_simulate writes the file back readable by root only; its next run reads it as
    // the cluster user.
    fs::set_permissions(cib, fs::Permissions::from_mode(0o644)).unwrap();
    out
}

/// Groups on their preferred node; the first group's node down: its groups move to a
/// survivor, the others stay; back up: home again if auto_failback, else they stay.
fn check_placement(s: &Sample, form: &str, cib: &Path) {
    let text = fs::read_to_string(cib).unwrap();
    let prefs = preferred(&text);
    assert!(
        !prefs.is_empty(),
        "{} {form}: no group with a preferred node",
        s.name
    );
    let ctx = |what: &str, out: &str| format!("{} ({form}): {what}\n{out}", s.name);
    let ups: Vec<String> = s
        .nodes
        .iter()
        .flat_map(|n| ["-u".to_string(), n.clone()])
        .collect();
    let out = simulate(cib, &ups);
    let p = placement(&out);
    for (g, n) in &prefs {
        assert_eq!(
            p.get(g).cloned().unwrap_or_default(),
            BTreeSet::from([n.clone()]),
            "{}",
            ctx(&format!("{g} must start on {n}"), &out)
        );
    }
    let victim = prefs.values().next().unwrap().clone();
    let out = simulate(cib, &["-d".into(), victim.clone()]);
    let moved = placement(&out);
    for (g, n) in &prefs {
        let at = moved.get(g).cloned().unwrap_or_default();
        assert_eq!(
            at.len(),
            1,
            "{}",
            ctx(&format!("{g} must run on one node"), &out)
        );
        if *n == victim {
            assert!(
                !at.contains(&victim),
                "{}",
                ctx(&format!("{g} must leave {victim}"), &out)
            );
        } else {
            assert_eq!(
                at,
                BTreeSet::from([n.clone()]),
                "{}",
                ctx(&format!("{g} must stay"), &out)
            );
        }
    }
    let out = simulate(cib, &["-u".into(), victim.clone()]);
    let back = placement(&out);
    for (g, n) in &prefs {
        let want = if s.failback {
            BTreeSet::from([n.clone()])
        } else {
            moved[g].clone()
        };
        assert_eq!(
            back.get(g).cloned().unwrap_or_default(),
            want,
            "{}",
            ctx(
                &format!("{g} after {victim} returns (auto_failback {})", s.failback),
                &out
            )
        );
    }
}

#[test]
fn crm_verify_and_crm_simulate_accept_every_pacemaker_export_in_all_three_forms() {
    if !require(
        "crm_verify_and_crm_simulate_accept_every_pacemaker_export",
        &[
            "crm_verify",
            "crm_simulate",
            "cibadmin",
            "crm",
            "pcs",
            "unshare",
        ],
        true,
    ) {
        return;
    }
    let tmp = TestDir::new("export-pcmk");
    for s in samples(&tmp.path) {
        let out = tmp.path.join(format!("pm-{}", s.name));
        let (code, stdout, stderr) = export(&s, "pacemaker", &out);
        assert_eq!(code, 0, "{}: {stdout}{stderr}", s.name);

        let (empty_code, empty) = run(Command::new("cibadmin").arg("--empty"));
        assert_eq!(empty_code, 0, "{empty}");
        let crm_cib = out.join("from-crm.xml");
        let pcs_cib = out.join("from-pcs.xml");
        write(&crm_cib, &empty);
        write(&pcs_cib, &empty);
        // crm checks every agent's meta-data: the generated wrappers are installed as the
        // report says, in a mount namespace of their own (the host's OCF tree is not touched).
        let (c, o) = run(
            with_wrappers(&out, &tmp.path.join(format!("ocf-{}", s.name)))
                .args(["crm", "configure", "load", "update"])
                .arg(out.join("crm-configure.txt"))
                .env("CIB_file", &crm_cib),
        );
        assert_eq!(c, 0, "{}: crm configure load update: {o}", s.name);
        let mut forms = vec![("cib.xml", out.join("cib.xml")), ("crm", crm_cib)];
        // pcs takes a second or more per command: its form is checked on the two test
        // configurations that between them use every mapping.
        if s.name == "kitchen" || s.name == "pair" {
            let (c, o) = run_for(
                with_wrappers(&out, &tmp.path.join(format!("ocf-{}", s.name)))
                    .arg("sh")
                    .arg(out.join("pcs-commands.sh"))
                    .env("PCS_FILE", &pcs_cib),
                300,
            );
            assert_eq!(c, 0, "{}: pcs-commands.sh: {o}", s.name);
            forms.push(("pcs", pcs_cib));
        }
        for (form, cib) in forms {
            let (c, o) = run(Command::new("crm_verify").arg("-V").arg("-x").arg(&cib));
            // Exit 78 is "warnings": accepted only for those a CIB without a status section
            // must earn (no node has been seen yet, so none has quorum or can be fenced).
            let status_only = o
                .lines()
                .all(|l| !l.contains("warning:") || STATUS_WARNINGS.iter().any(|w| l.contains(w)));
            assert!(
                c == 0 || (c == 78 && status_only),
                "{} ({form}): crm_verify -V -x {}: exit {c}: {o}",
                s.name,
                cib.display()
            );
            assert!(
                !o.contains("error:"),
                "{} ({form}): crm_verify: {o}",
                s.name
            );
            let sim = out.join(format!("sim-{}.xml", form.replace('.', "-")));
            fs::copy(&cib, &sim).unwrap();
            fs::set_permissions(&sim, fs::Permissions::from_mode(0o644)).unwrap();
            check_placement(&s, form, &sim);
        }
    }
}

#[test]
fn corosync_and_keepalived_accept_every_export_on_a_node() {
    if !require(
        "corosync_and_keepalived_accept_every_export_on_a_node",
        &["corosync", "keepalived", "ip", "unshare"],
        true,
    ) {
        return;
    }
    let tmp = TestDir::new("export-check");
    let all = samples(&tmp.path);
    let pair = NetnsPair::new("hbexp-chk", "10.68.0");
    let ns = pair.ns_a();
    // The first node of every sample: 10.68.0.1 (link 0) and 10.68.0.11 (link 1), and the
    // interfaces the samples name.
    pair.add_addr(&ns, 11);
    for dev in ["eth0", "eth1", "eth2"] {
        let peer = format!("{dev}-peer");
        for step in [
            vec!["link", "add", dev, "type", "veth", "peer", "name", &peer],
            vec!["link", "set", dev, "up"],
        ] {
            let mut argv = vec!["-n".to_string(), ns.clone()];
            argv.extend(step.iter().map(|w| w.to_string()));
            run_ok("ip", &argv).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let mut keepalived_checked = 0;
    for s in &all {
        let out = tmp.path.join(format!("pm-{}", s.name));
        let (code, stdout, stderr) = export(s, "pacemaker", &out);
        assert_eq!(code, 0, "{}: {stdout}{stderr}", s.name);
        // As installed: /etc/corosync/{corosync.conf,authkey}, in a mount namespace of its own.
        let script = format!(
            "mount --make-rprivate / && mount --bind {} /etc/corosync && corosync -t",
            out.display()
        );
        let (c, o) =
            run(Command::new("ip")
                .args(["netns", "exec", &ns, "unshare", "-m", "sh", "-c", &script]));
        assert_eq!(c, 0, "{}: corosync -t on {}: {o}", s.name, s.nodes[0]);

        let ka = tmp.path.join(format!("ka-{}", s.name));
        let (code, _, _) = export(s, "keepalived", &ka);
        if code != 0 {
            continue; // refused: see keepalived_export_refuses_what_vrrp_cannot_express
        }
        let script = format!(
            "mount --make-rprivate / && mount --bind {} /etc/keepalived && \
             keepalived -t -f /etc/keepalived/keepalived.conf",
            ka.join(&s.nodes[0]).display()
        );
        let (c, o) =
            run(Command::new("ip")
                .args(["netns", "exec", &ns, "unshare", "-m", "sh", "-c", &script]));
        assert_eq!(c, 0, "{}: keepalived -t on {}: {o}", s.name, s.nodes[0]);
        assert!(!o.contains("WARNING"), "{}: keepalived -t: {o}", s.name);
        keepalived_checked += 1;
    }
    // ucast-pair and pair: the samples keepalived can express.
    assert_eq!(keepalived_checked, 2);
}
