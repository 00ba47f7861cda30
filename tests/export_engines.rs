//! The exports run on the real engines, in two network namespaces (alice 10.6x.0.1, bob
//! 10.6x.0.2, joined by a veth `hb0`), each node in a private mount namespace so that nothing of
//! the host's /etc/corosync, /var/lib/pacemaker, /run or /etc/keepalived is read or written:
//!
//! * Pacemaker: `heartbeat --export pacemaker`, run on alice (it finds the nodes' addresses
//!   from the ucast lines and alice's own address), gives corosync.conf, authkey and the CIB;
//!   corosync and pacemakerd run in the foreground on both nodes, the CIB is loaded with
//!   `cibadmin`, and alice's group (a service address on hb0 and the site script `Marker`
//!   through the generated OCF wrapper) starts on alice, bob's on bob; alice is killed (every
//!   process of her namespace, SIGKILL) and her group starts on bob.
//! * keepalived: the same with `--export keepalived`: the address appears on alice with her
//!   Marker started by the notify script, and moves to bob when alice is killed.
//!
//! Needs root and the packages (corosync, pacemaker, keepalived, resource-agents); `SKIP:`
//! otherwise, a failure with HB_REQUIRE_INTEROP=1.

#[macro_use]
mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

fn require(test: &str, tools: &[&str], dirs: &[&str]) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| !tool(t))
        .map(|t| format!("the `{t}` command"))
        .collect();
    missing.extend(
        dirs.iter()
            .filter(|d| !Path::new(d).is_dir())
            .map(|d| d.to_string()),
    );
    if !nix::unistd::geteuid().is_root() {
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

/// A pair whose groups are an address plus the site script Marker (alice), and Marker or a
/// second address (bob).
fn write_conf(dir: &Path, net: &str, bob_group: &str, marker: &Path) {
    fs::create_dir_all(dir.join("resource.d")).unwrap();
    let hacf = format!(
        "keepalive 500ms\ndeadtime 4\nwarntime 2\ninitdead 10\nudpport 50694\n\
         ucast hb0 {net}.1\nucast hb0 {net}.2\nauto_failback on\nnode alice\nnode bob\n"
    );
    let hr = format!(
        "alice IPaddr2::{net}.100/24/hb0 Marker::web::{m}\nbob {bob_group}\n",
        m = marker.display()
    );
    fs::write(dir.join("ha.cf"), hacf).unwrap();
    fs::write(dir.join("haresources"), hr).unwrap();
    fs::write(dir.join("authkeys"), "auth 1\n1 sha1 export-engines-test\n").unwrap();
    for s in ["Marker", "rscfuncs.sh"] {
        fs::copy(
            Path::new(REPO).join("resource.d").join(s),
            dir.join("resource.d").join(s),
        )
        .unwrap();
    }
}

/// `heartbeat --export ENGINE` run on alice (inside her namespace, as `--node alice`).
fn export_on_alice(pair: &NetnsPair, engine: &str, confdir: &Path, out: &Path) -> String {
    let (stdout, stderr, code) = run_with_timeout(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.ns_a(),
                OUR_HB,
                "--export",
                engine,
                "--node",
                "alice",
            ])
            .arg("--confdir")
            .arg(confdir)
            .arg("--output")
            .arg(out),
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "export {engine}: {stdout}{stderr}");
    stdout
}

fn addrs(ns: &str) -> String {
    let o = Command::new("ip")
        .args(["-n", ns, "-4", "addr", "show", "dev", "hb0"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn has_addr(ns: &str, ip: &str) -> bool {
    addrs(ns).contains(&format!("inet {ip}/"))
}

fn wait_for(
    what: &str,
    limit: Duration,
    mut ok: impl FnMut() -> bool,
    diag: impl Fn() -> String,
) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if ok() {
            return t0.elapsed();
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {limit:?} waiting for {what}\n{}", diag());
}

/// What a reboot of a killed node clears: its service address and the Marker it ran.
fn as_rebooted(ns: &str, ip: &str, marker_state: &Path) {
    run_ok(
        "ip",
        &["-n", ns, "addr", "del", &format!("{ip}/24"), "dev", "hb0"].map(String::from),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fs::remove_file(marker_state).unwrap();
}

fn count(events: &Path, what: &str) -> usize {
    fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with(what))
        .count()
}

/// A node's processes: started by `ip netns exec NS unshare -m bash SCRIPT ARGS`, which execs
/// down to the engine's main process (its pid is the child's).
struct EngineNode {
    ns: String,
    child: Child,
    state: PathBuf,
}

impl EngineNode {
    fn start(ns: &str, script: &Path, state: &Path, args: &[&Path]) -> EngineNode {
        fs::create_dir_all(state).unwrap();
        let log = fs::File::create(state.join("node.out")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "unshare", "-m", "bash"])
            .arg(script)
            .arg(state)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start a node");
        EngineNode {
            ns: ns.to_string(),
            child,
            state: state.to_path_buf(),
        }
    }

    /// Run a command in the node's namespaces (network and mount).
    fn exec(&self, argv: &[&str]) -> (String, i32) {
        let (o, e, c) = run_with_timeout(
            Command::new("nsenter")
                .args(["-t", &self.child.id().to_string(), "-m", "-n"])
                .args(argv),
            Duration::from_secs(30),
        );
        (format!("{o}{e}"), c)
    }

    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.state.join(name)).unwrap_or_default()
    }

    /// SIGKILL every process in the node's network namespace (all of them ours).
    fn kill(&mut self) {
        let o = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
            .unwrap();
        for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            if let Ok(p) = pid.parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for EngineNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// corosync and pacemakerd in the foreground, in a private mount namespace: the export's
/// corosync.conf and authkey at /etc/corosync, private /var/lib/{corosync,pacemaker},
/// /var/log/pacemaker, /run and /dev/shm, and the export's OCF wrappers next to the installed
/// agents; the repository's resource.d at /etc/ha.d/resource.d. Only to_stderr is changed in
/// the copy of corosync.conf, so that its log lands in the test's directory.
const PACEMAKER_NODE: &str = r#"set -eu
S=$1 X=$2 R=$3
mkdir -p "$S"/etc-corosync "$S"/lib-corosync "$S"/log-pcmk "$S"/ocf-orig "$S"/ocf
mkdir -p "$S"/lib-pcmk/cib "$S"/lib-pcmk/pengine "$S"/lib-pcmk/blackbox "$S"/lib-pcmk/cores
cp "$X/authkey" "$S/etc-corosync/"
sed 's/to_stderr: no/to_stderr: yes/' "$X/corosync.conf" >"$S/etc-corosync/corosync.conf"
chown -R hacluster:haclient "$S/lib-pcmk" "$S/log-pcmk"
chmod 750 "$S"/lib-pcmk/*
mount --make-rprivate /
mount --bind "$S/etc-corosync" /etc/corosync
mount --bind "$S/lib-corosync" /var/lib/corosync
mount --bind "$S/lib-pcmk" /var/lib/pacemaker
mount --bind "$S/log-pcmk" /var/log/pacemaker
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/crm /run/resource-agents /run/lock
chown hacluster:haclient /run/crm
chmod 750 /run/crm
chmod 1777 /run/lock
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount --bind /usr/lib/ocf/resource.d "$S/ocf-orig"
for p in "$S"/ocf-orig/*; do mkdir -p "$S/ocf/${p##*/}"; mount --bind "$p" "$S/ocf/${p##*/}"; done
cp -r "$X/ocf/." "$S/ocf/"
mount --rbind "$S/ocf" /usr/lib/ocf/resource.d
mount --bind "$R" /etc/ha.d/resource.d
export PCMK_logfile=/var/log/pacemaker/pacemaker.log
corosync -f >"$S/corosync.out" 2>&1 &
for _ in $(seq 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done
exec pacemakerd -f
"#;

/// keepalived (VRRP only) in the foreground, the export's directory for this node at
/// /etc/keepalived, the repository's resource.d at /etc/ha.d/resource.d, a private /run.
const KEEPALIVED_NODE: &str = r#"set -eu
S=$1 X=$2 R=$3
mount --make-rprivate /
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/lock
chmod 1777 /run/lock
mount --bind "$X" /etc/keepalived
mount --bind "$R" /etc/ha.d/resource.d
exec keepalived -n -l -D -P -f /etc/keepalived/keepalived.conf -p "$S/keepalived.pid" -r "$S/vrrp.pid"
"#;

#[test]
fn pacemaker_runs_the_export_and_moves_a_killed_nodes_group() {
    if !require(
        "pacemaker_runs_the_export_and_moves_a_killed_nodes_group",
        &[
            "corosync",
            "corosync-cfgtool",
            "pacemakerd",
            "crm_mon",
            "cibadmin",
            "ip",
            "unshare",
            "nsenter",
        ],
        &[
            "/etc/corosync",
            "/var/lib/corosync",
            "/var/lib/pacemaker",
            "/var/log/pacemaker",
            "/etc/ha.d/resource.d",
            "/usr/lib/ocf/resource.d/heartbeat",
        ],
    ) {
        return;
    }
    let tmp = TestDir::new("export-pcmk-run");
    let pair = NetnsPair::new("hbexp-pm", "10.67.0");
    let marker = tmp.path.join("marker");
    fs::create_dir_all(&marker).unwrap();
    let conf = tmp.path.join("ha.d");
    write_conf(
        &conf,
        "10.67.0",
        &format!("Marker::db::{}", marker.display()),
        &marker,
    );
    let out = tmp.path.join("export");
    export_on_alice(&pair, "pacemaker", &conf, &out);
    let corosync = fs::read_to_string(out.join("corosync.conf")).unwrap();
    // Found on alice: her address is hers, the other ucast address is bob's.
    assert!(
        corosync.contains("name: alice\n        nodeid: 1\n        ring0_addr: 10.67.0.1\n")
            && corosync.contains("name: bob\n        nodeid: 2\n        ring0_addr: 10.67.0.2\n"),
        "{corosync}"
    );
    let script = tmp.path.join("pacemaker-node.sh");
    fs::write(&script, PACEMAKER_NODE).unwrap();
    let res_d = Path::new(REPO).join("resource.d");
    let mut alice = EngineNode::start(
        &pair.ns_a(),
        &script,
        &tmp.path.join("alice"),
        &[&out, &res_d],
    );
    let bob = EngineNode::start(
        &pair.ns_b(),
        &script,
        &tmp.path.join("bob"),
        &[&out, &res_d],
    );
    let status = |n: &EngineNode| n.exec(&["crm_mon", "-1"]).0;
    let diag = |what: &str, a: &EngineNode, b: &EngineNode| {
        format!(
            "{what}\n-- crm_mon on bob:\n{}\n-- alice corosync:\n{}\n-- bob corosync:\n{}\n-- hb0 alice: {}\n-- hb0 bob: {}",
            status(b),
            a.log("corosync.out"),
            b.log("corosync.out"),
            addrs(&a.ns),
            addrs(&b.ns)
        )
    };
    let t = wait_for(
        "both nodes online in Pacemaker",
        Duration::from_secs(150),
        || status(&alice).contains("Online: [ alice bob ]"),
        || diag("", &alice, &bob),
    );
    eprintln!("cluster formed after {t:?}");
    let (o, c) = alice.exec(&[
        "cibadmin",
        "--replace",
        "--scope",
        "configuration",
        "--xml-file",
        out.join("cib.xml").to_str().unwrap(),
    ]);
    assert_eq!(c, 0, "cibadmin --replace: {o}");
    let t = wait_for(
        "alice's group on alice, bob's on bob",
        Duration::from_secs(90),
        || {
            has_addr(&pair.ns_a(), "10.67.0.100")
                && marker.join("alice/web").exists()
                && marker.join("bob/db").exists()
        },
        || diag("", &alice, &bob),
    );
    eprintln!("groups placed {t:?} after the CIB was loaded");
    assert!(!marker.join("bob/web").exists() && !has_addr(&pair.ns_b(), "10.67.0.100"));

    alice.kill();
    let t = wait_for(
        "alice's group on bob after alice is killed",
        Duration::from_secs(60),
        || has_addr(&pair.ns_b(), "10.67.0.100") && marker.join("bob/web").exists(),
        || diag("", &alice, &bob),
    );
    eprintln!("alice's group started on bob {t:?} after she was killed (deadtime 4 s)");
    assert!(marker.join("bob/db").exists(), "bob's own group stays");
    let events = marker.join("events");
    assert_eq!(count(&events, "bob start web"), 1);

    // alice comes back (auto_failback on: stickiness 0): her group goes home.
    as_rebooted(&pair.ns_a(), "10.67.0.100", &marker.join("alice/web"));
    let alice = EngineNode::start(
        &pair.ns_a(),
        &script,
        &tmp.path.join("alice"),
        &[&out, &res_d],
    );
    let t = wait_for(
        "alice's group back on alice after she returns",
        Duration::from_secs(150),
        || {
            has_addr(&pair.ns_a(), "10.67.0.100")
                && !has_addr(&pair.ns_b(), "10.67.0.100")
                && count(&events, "alice start web") == 2
                && count(&events, "bob stop web") == 1
        },
        || {
            diag(
                &fs::read_to_string(&events).unwrap_or_default(),
                &alice,
                &bob,
            )
        },
    );
    eprintln!("alice's group back on alice {t:?} after she was restarted");
    assert!(marker.join("bob/db").exists() && !marker.join("bob/web").exists());
    drop(bob);
    drop(alice);
    drop(pair);
}

#[test]
fn keepalived_runs_the_export_and_moves_a_killed_nodes_address() {
    if !require(
        "keepalived_runs_the_export_and_moves_a_killed_nodes_address",
        &["keepalived", "ip", "unshare", "flock"],
        &["/etc/keepalived", "/etc/ha.d/resource.d"],
    ) {
        return;
    }
    let tmp = TestDir::new("export-ka-run");
    let pair = NetnsPair::new("hbexp-ka", "10.66.0");
    let marker = tmp.path.join("marker");
    fs::create_dir_all(&marker).unwrap();
    let conf = tmp.path.join("ha.d");
    write_conf(
        &conf,
        "10.66.0",
        &format!(
            "IPaddr2::10.66.0.101/24/hb0 Marker::db::{}",
            marker.display()
        ),
        &marker,
    );
    let out = tmp.path.join("export");
    export_on_alice(&pair, "keepalived", &conf, &out);
    let alice_conf = fs::read_to_string(out.join("alice/keepalived.conf")).unwrap();
    assert!(
        alice_conf.contains("unicast_src_ip 10.66.0.1\n    unicast_peer {\n        10.66.0.2\n"),
        "{alice_conf}"
    );
    let script = tmp.path.join("keepalived-node.sh");
    fs::write(&script, KEEPALIVED_NODE).unwrap();
    let res_d = Path::new(REPO).join("resource.d");
    let mut alice = EngineNode::start(
        &pair.ns_a(),
        &script,
        &tmp.path.join("alice"),
        &[&out.join("alice"), &res_d],
    );
    let bob = EngineNode::start(
        &pair.ns_b(),
        &script,
        &tmp.path.join("bob"),
        &[&out.join("bob"), &res_d],
    );
    let diag = |a: &EngineNode, b: &EngineNode| {
        format!(
            "-- alice:\n{}\n-- bob:\n{}\n-- hb0 alice: {}\n-- hb0 bob: {}",
            a.log("node.out"),
            b.log("node.out"),
            addrs(&a.ns),
            addrs(&b.ns)
        )
    };
    let t = wait_for(
        "each address and Marker on its preferred node",
        Duration::from_secs(60),
        || {
            has_addr(&pair.ns_a(), "10.66.0.100")
                && has_addr(&pair.ns_b(), "10.66.0.101")
                && marker.join("alice/web").exists()
                && marker.join("bob/db").exists()
        },
        || diag(&alice, &bob),
    );
    eprintln!("addresses placed after {t:?}");
    assert!(!has_addr(&pair.ns_b(), "10.66.0.100") && !marker.join("bob/web").exists());

    alice.kill();
    let t = wait_for(
        "alice's address and Marker on bob after alice is killed",
        Duration::from_secs(30),
        || has_addr(&pair.ns_b(), "10.66.0.100") && marker.join("bob/web").exists(),
        || diag(&alice, &bob),
    );
    eprintln!("alice's address moved to bob {t:?} after she was killed (deadtime 4 s)");

    // alice comes back: preempt (auto_failback on) gives her the address back, bob's notify
    // script stops his Marker web, hers starts it.
    let events = marker.join("events");
    as_rebooted(&pair.ns_a(), "10.66.0.100", &marker.join("alice/web"));
    let alice = EngineNode::start(
        &pair.ns_a(),
        &script,
        &tmp.path.join("alice"),
        &[&out.join("alice"), &res_d],
    );
    let t = wait_for(
        "alice's address back on alice after she returns",
        Duration::from_secs(30),
        || {
            has_addr(&pair.ns_a(), "10.66.0.100")
                && !has_addr(&pair.ns_b(), "10.66.0.100")
                && count(&events, "alice start web") == 2
                && count(&events, "bob stop web") == 1
        },
        || diag(&alice, &bob),
    );
    eprintln!("alice's address back on alice {t:?} after she was restarted");
    assert!(has_addr(&pair.ns_b(), "10.66.0.101") && marker.join("bob/db").exists());
    drop(bob);
    drop(alice);
    drop(pair);
}
