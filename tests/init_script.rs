//! `init/heartbeat`, the LSB init script, run for real: as root, inside a network namespace
//! this test creates, with our daemon and a scratch configuration, state and run directory
//! (the script's `HEARTBEAT_BIN`, `HA_DIR`, `HA_STATEDIR`, `HA_RUNDIR`... overrides). The
//! environment is cleared first, as `service` does.
//!
//! What needs no daemon (missing ha.cf or binary, usage, standby refusals) runs without root.

mod common;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/init/heartbeat");
const RESOURCE_D: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/resource.d");
const HB_STANDBY: &str = env!("CARGO_BIN_EXE_hb_standby");

/// Root and `ip`, or a printed SKIP (a failure with HB_REQUIRE_INTEROP=1).
fn root_or_skip(test: &str) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root");
    }
    if !["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        missing.push("the `ip` command");
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{test} needs {}", missing.join(" and "));
    if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("HB_REQUIRE_INTEROP=1 but {msg}");
    }
    // Straight to the process's stderr, past the test harness's capture.
    let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    false
}

/// One node's scratch world for the script.
struct Site {
    _tmp: TestDir,
    dir: NodeDir,
    lock: PathBuf,
    share: PathBuf,
    marker: PathBuf,
    hooks: PathBuf,
    /// Namespace to run the script in (None: the test's own).
    netns: Option<String>,
    /// Overrides HEARTBEAT_BIN.
    bin: String,
}

impl Site {
    fn new(label: &str, hacf: &HaCf, netns: Option<String>) -> Site {
        let tmp = TestDir::new(label);
        let dir = tmp.node("alice");
        let marker = tmp.path.join("marker");
        let haresources = format!(
            "# two groups\nalice Marker::svc1::{m} \\\n  Marker::svc2::{m}\nbob Marker::svc3::{m}  # bob's\n",
            m = marker.display()
        );
        dir.write_config(hacf, &Auth::lab(AuthMethod::Sha1), &haresources);
        // resource.d: our Marker (and its library) plus the site's startstop hook.
        let rd = dir.conf().join("resource.d");
        fs::create_dir_all(&rd).unwrap();
        for f in ["Marker", "rscfuncs.sh"] {
            std::os::unix::fs::symlink(Path::new(RESOURCE_D).join(f), rd.join(f)).unwrap();
        }
        let hooks = tmp.path.join("hooks.log");
        let hook = rd.join("startstop");
        write_file(
            &hook,
            &format!("#!/bin/sh\necho \"$*\" >>'{}'\n", hooks.display()),
        );
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
        // /usr/share/heartbeat: our hb_standby.
        let share = tmp.path.join("share");
        fs::create_dir_all(&share).unwrap();
        std::os::unix::fs::symlink(HB_STANDBY, share.join("hb_standby")).unwrap();
        fs::create_dir_all(tmp.path.join("init.d")).unwrap();
        Site {
            lock: tmp.path.join("lock"),
            share,
            marker,
            hooks,
            netns,
            bin: OUR_HB.to_string(),
            dir,
            _tmp: tmp,
        }
    }

    /// `init/heartbeat ACTION...`: (stdout, stderr, exit code).
    fn run(&self, args: &[&str]) -> (String, String, i32) {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, SCRIPT]);
                c
            }
            None => Command::new(SCRIPT),
        };
        let root = self.dir.root.parent().unwrap();
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("_SYSTEMCTL_SKIP_REDIRECT", "1")
            .env("HEARTBEAT_BIN", &self.bin)
            .env("HA_DIR", self.dir.conf())
            .env("HA_STATEDIR", self.dir.state())
            .env("HA_RUNDIR", self.dir.run())
            .env("HA_LOCKDIR", &self.lock)
            .env("HA_SHAREDIR", &self.share)
            .env("HA_INITDIR", root.join("init.d"))
            .env("HA_DEFAULTS", root.join("no-defaults"))
            .env("HA_RESTART_GRACE", "0")
            .env("HA_CURHOST", "alice")
            .env("HEARTBEAT_OPTS", "--node alice");
        run_with_timeout(&mut cmd, Duration::from_secs(60))
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.run().join("heartbeat.pid")
    }

    fn pid(&self) -> Option<i32> {
        fs::read_to_string(self.pidfile())
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn hooks(&self) -> Vec<String> {
        fs::read_to_string(&self.hooks)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn set_hacf(&self, extra: &[&str]) {
        let mut hacf = base_hacf();
        hacf.extra = extra.iter().map(|s| s.to_string()).collect();
        write_file(
            &self.dir.conf().join("ha.cf"),
            &hacf.render(&self.dir.log(), &self.dir.debug_log()),
        );
    }
}

fn base_hacf() -> HaCf {
    HaCf::new(&["alice", "bob"], &ucast_lines("hb0", &["10.250.80.2"]))
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            != Some("Z")
}

/// Our daemons running in namespace `ns`.
fn daemons_in(ns: &str) -> Vec<i32> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip netns pids");
    let ours = fs::canonicalize(OUR_HB).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|&p| alive(p))
        .filter(|p| fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e == ours))
        .collect()
}

/// Kills the daemon the script started, by the pid it wrote, if a step failed half-way.
struct StopGuard<'a>(&'a Site);

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.0.pid().filter(|&p| alive(p)) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn lifecycle_in_a_namespace() {
    if !root_or_skip("lifecycle_in_a_namespace") {
        return;
    }
    let lab = NetnsPair::new("hbinit", "10.250.80");
    let ns = lab.ns_a();
    let site = Site::new("init", &base_hacf(), Some(ns.clone()));
    let _guard = StopGuard(&site);
    // svc1 (the key of alice's group) already runs here; svc3 (bob's key) does not.
    fs::create_dir_all(site.marker.join("alice")).unwrap();
    write_file(&site.marker.join("alice/svc1"), "left over\n");
    let svc1 = format!("Marker::svc1::{}", site.marker.display());

    // start
    let (out, err, code) = site.run(&["start"]);
    let ctx = format!("stdout {out:?}\nstderr {err:?}");
    assert_eq!(code, 0, "start: {ctx}");
    assert_eq!(
        out, "Starting High-Availability services: Done.\n\n",
        "{ctx}"
    );
    for line in [
        format!("CRITICAL: Resource {svc1} is active, and should not be!"),
        "CRITICAL: Non-idle resources can affect data integrity!".into(),
        "CRITICAL: Non-idle resources will affect resource takeback!".into(),
        "CRITICAL: Non-idle resources may affect data integrity!".into(),
    ] {
        assert!(err.lines().any(|l| l == line), "missing {line:?}: {ctx}");
    }
    assert!(!err.contains("svc3") && !err.contains("svc2"), "{ctx}");
    let logged = log_lines_from(&site.dir.log(), 0, "is active, and should not be!");
    assert!(
        logged
            .iter()
            .any(|l| l.contains("CRIT: Resource") && l.contains(&svc1)),
        "not in ha-log: {logged:?}"
    );
    let pid = site.pid().expect("a pid file after start");
    assert!(alive(pid), "pid {pid} from the pid file is not running");
    assert_eq!(daemons_in(&ns), vec![pid], "our daemons in {ns}");
    assert_eq!(site.hooks(), ["pre-start", "post-start 0"]);
    assert!(site.lock.join("heartbeat").exists(), "lock file");
    let run = site.dir.run();
    for d in [
        "heartbeat",
        "heartbeat/ccm",
        "heartbeat/crm",
        "heartbeat/dopd",
        "crm",
    ] {
        assert_eq!(mode(&run.join(d)), 0o750, "{d}");
    }
    assert_eq!(mode(&run.join("heartbeat/rsctmp")), 0o1755);

    // status
    let (out, err, code) = site.run(&["status"]);
    assert_eq!(code, 0, "status: {out:?} {err:?}");
    assert!(
        out.starts_with(&format!("heartbeat OK [pid {pid} et al] is running on "))
            && out.trim_end().ends_with("[alice]..."),
        "{out:?}"
    );

    // start again: Done, still the one daemon
    let (out, err, code) = site.run(&["start"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Starting High-Availability services: Done.\n\n"),
        "{err}"
    );
    assert_eq!(site.pid(), Some(pid));
    assert_eq!(daemons_in(&ns), vec![pid]);

    // reload and force-reload: the same daemon rereads its files
    for action in ["reload", "force-reload"] {
        let mark = log_mark(&site.dir.log());
        let (out, err, code) = site.run(&[action]);
        assert_eq!(code, 0, "{action}: {out:?} {err:?}");
        assert!(
            out.starts_with("Reloading High-Availability services: ") && out.ends_with("Done.\n\n"),
            "{action}: {out:?}"
        );
        wait_for_log_from(
            &site.dir.log(),
            mark,
            "Configuration unchanged.",
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{action}: {e}"));
        assert_eq!(daemons_in(&ns), vec![pid]);
    }

    // standby while running (auto_failback off): the script hands over to hb_standby
    let (out, err, _) = site.run(&["standby"]);
    assert!(
        out.starts_with("auto_failback: off\nAttempting to enter standby mode"),
        "standby: {out:?} {err:?}"
    );

    // restart: stop, wait deadtime (3 s here, grace 0), start a new daemon
    let (out, err, code) = site.run(&["restart"]);
    assert_eq!(code, 0, "restart: {out:?} {err:?}");
    assert_eq!(
        out,
        "Stopping High-Availability services: Done.\n\n\
         Waiting to allow resource takeover to complete:Done.\n\n\
         Starting High-Availability services: Done.\n\n"
    );
    let pid2 = site.pid().expect("a pid file after restart");
    assert_ne!(pid2, pid);
    assert!(!alive(pid));
    assert_eq!(daemons_in(&ns), vec![pid2]);

    // stop
    let (out, err, code) = site.run(&["stop"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Stopping High-Availability services: Done.\n\n"),
        "{err}"
    );
    assert!(!alive(pid2), "daemon {pid2} still runs after stop");
    assert!(daemons_in(&ns).is_empty());
    assert!(
        !site.lock.join("heartbeat").exists(),
        "lock file after stop"
    );
    assert_eq!(
        site.hooks(),
        [
            "pre-start",
            "post-start 0",
            "pre-start",
            "post-start 0",
            "pre-stop",
            "post-stop 0"
        ]
    );

    // status: 3, stop again: Done, standby: not running
    let (out, _, code) = site.run(&["status"]);
    assert_eq!(
        (code, out.as_str()),
        (3, "heartbeat is stopped. No process\n")
    );
    let (out, _, code) = site.run(&["stop"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Stopping High-Availability services: Done.\n\n")
    );
    let (out, _, code) = site.run(&["standby"]);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "auto_failback: off\nHeartbeat is not currently running.\n"
        )
    );

    // A configuration the daemon refuses: the failure line, the daemon's words, its code.
    Auth::lab(AuthMethod::Sha1).write(&site.dir.conf().join("authkeys"), 0o644);
    let (out, err, code) = site.run(&["start"]);
    assert_eq!(code, 6, "start with a bad authkeys: {out:?} {err:?}");
    assert!(
        out.starts_with(
            "Starting High-Availability services:  Heartbeat failure [rc=6]. Failed.\n\n"
        ),
        "{out:?}"
    );
    assert!(out.contains("authkeys"), "the daemon's own words: {out:?}");
    assert!(daemons_in(&ns).is_empty());
    assert!(!site.lock.join("heartbeat").exists());
    assert_eq!(
        site.hooks().last().map(String::as_str),
        Some("post-start 6")
    );
}

#[test]
fn without_ha_cf_every_action_says_not_configured() {
    let site = Site::new("init-nocf", &base_hacf(), None);
    fs::remove_file(site.dir.conf().join("ha.cf")).unwrap();
    let want = format!(
        "Heartbeat not configured: {}/ha.cf not found. Heartbeat failure [rc=1]. Failed.\n",
        site.dir.conf().display()
    );
    for action in [
        "start", "stop", "status", "restart", "reload", "standby", "bogus",
    ] {
        let (out, err, code) = site.run(&[action]);
        assert_eq!(
            (code, out.as_str()),
            (0, want.as_str()),
            "{action}: {err:?}"
        );
    }
    assert!(site.hooks().is_empty(), "no hook runs unconfigured");
}

#[test]
fn without_the_daemon_the_script_exits_0_silently() {
    let mut site = Site::new("init-nobin", &base_hacf(), None);
    site.bin = "/nonexistent/heartbeat".into();
    for action in ["start", "status", "bogus"] {
        assert_eq!(
            site.run(&[action]),
            (String::new(), String::new(), 0),
            "{action}"
        );
    }
}

#[test]
fn bad_or_missing_action_prints_usage_and_exits_1() {
    let site = Site::new("init-usage", &base_hacf(), None);
    let want = format!("Usage: {SCRIPT} {{start|stop|status|restart|reload|force-reload}}\n");
    for args in [&["bogus"][..], &[], &["try-restart"]] {
        let (out, err, code) = site.run(args);
        assert_eq!(
            (code, out.as_str()),
            (1, want.as_str()),
            "{args:?}: {err:?}"
        );
    }
}

#[test]
fn standby_is_refused_without_auto_failback() {
    let site = Site::new("init-standby", &base_hacf(), None);
    for (extra, want) in [
        (
            &["auto_failback legacy"][..],
            "auto_failback is set to legacy.  Cannot enter standby.\n",
        ),
        (
            &[],
            "auto_failback defaulted to legacy.  Cannot enter standby.\n",
        ),
    ] {
        site.set_hacf(extra);
        let (out, err, code) = site.run(&["standby"]);
        assert_eq!((code, out.as_str()), (1, want), "{extra:?}: {err:?}");
    }
    // Not running: said so before hb_standby is tried.
    site.set_hacf(&["auto_failback on"]);
    let (out, _, code) = site.run(&["standby"]);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "auto_failback: on\nHeartbeat is not currently running.\n"
        )
    );
}

#[test]
fn shell_scripts_parse_and_pass_shellcheck() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scripts = [
        "init/heartbeat",
        "debian/postinst",
        "debian/prerm",
        "debian/postrm",
    ];
    for s in scripts {
        let out = Command::new("sh")
            .arg("-n")
            .arg(root.join(s))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sh -n {s}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            mode(&root.join(s)) & 0o111 != 0,
            "{s} must be executable in git"
        );
    }
    let have_shellcheck = Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_shellcheck {
        {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: shellcheck is not installed (apt-get install shellcheck)"
            );
        }
        return;
    }
    let out = Command::new("shellcheck")
        .current_dir(root)
        .args(["-s", "sh"])
        .args(scripts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
