//! `init/heartbeat.service` under a real systemd (issue #5): a minimal Debian with systemd as
//! its init, booted with `systemd-nspawn` in a network namespace of its own (loopback only),
//! our binaries, unit and init script put in by `make install`, a two-node `ha.cf` whose peer
//! never answers. What is checked, each against systemd's own view (`systemctl show`, its
//! debug journal) as well as the daemon's log:
//!
//! * the unit is enabled and starts at boot; `systemctl status` and `service heartbeat status`
//!   say `active (running)` with our `STATUS=` text; the watchdog variables reach the daemon
//!   and its pings move systemd's watchdog timestamp;
//! * `systemctl reload`: `ExecReload` (`-r`), then `RELOADING=1` and `READY=1` from the main
//!   process, same pid; a broken ha.cf fails the reload and the daemon keeps running;
//! * `systemctl stop`: `ExecStop` (`-k`) exits 0, `STOPPING=1`, the daemon exits 0, its
//!   resource groups are released, "Heartbeat shutdown complete.";
//! * `service heartbeat start` goes through systemd and returns only after `READY=1`; with the
//!   notification socket taken away the same start times out (so it is READY that counts);
//! * `WatchdogSec=` (a drop-in of 2 s): a frozen daemon (SIGSTOP) is killed with SIGABRT and
//!   the unit fails with result `watchdog` under the unit's `Restart=no`; with
//!   `Restart=on-watchdog` systemd starts a new daemon, which comes up over the stale pid file
//!   and takes its resource groups again;
//! * `systemctl poweroff` with the groups held: systemd stops heartbeat on the way down and
//!   the groups are released.
//!
//! Needs root, `systemd-nspawn` (package systemd-container), `nsenter`, `make`, and the root
//! file system built by `tests/lab/systemd-rootfs.sh` (debootstrap; `HB_SYSTEMD_ROOTFS`, else
//! `target/systemd-rootfs`). The tree is never changed: the test mounts an overlay on it, in
//! `$CARGO_TARGET_TMPDIR/systemd-PID`, kept when the test fails (its `upper/` holds the logs).
//! Without them it prints `SKIP:` and passes, unless `HB_REQUIRE_INTEROP=1`. About a minute.

mod common;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{log_mark, log_tail, run_with_timeout, wait_for_log_from};

const SRC: &str = env!("CARGO_MANIFEST_DIR");
/// The container's host name, which is the cluster node's name.
const NODE: &str = "hbsysd";
const UNIT: &str = "heartbeat.service";
const MARK: &str = ".hb-systemd-rootfs";
/// In the container.
const HA_LOG: &str = "var/log/ha-log";
const MARKERS: &str = "var/lib/heartbeat/marker";
const DROPIN_DIR: &str = "etc/systemd/system/heartbeat.service.d";

fn rootfs_path() -> PathBuf {
    std::env::var_os("HB_SYSTEMD_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(SRC).join("target/systemd-rootfs"))
}

fn tool_exists(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// The root file system when everything the test needs is there; otherwise `SKIP:` (or, with
/// `HB_REQUIRE_INTEROP=1`, a failure).
fn preconditions() -> Option<PathBuf> {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for tool in [
        "systemd-nspawn",
        "nsenter",
        "mount",
        "umount",
        "chroot",
        "make",
        "systemctl",
    ] {
        if !tool_exists(tool) {
            missing.push(format!("the `{tool}` command"));
        }
    }
    let rootfs = rootfs_path();
    if !rootfs.join(MARK).exists() || !rootfs.join("lib/systemd/systemd").exists() {
        missing.push(format!(
            "a root file system with systemd in {} (build it: tests/lab/systemd-rootfs.sh)",
            rootfs.display()
        ));
    }
    if missing.is_empty() {
        return Some(rootfs);
    }
    let msg = format!(
        "systemd_unit_under_a_real_systemd needs {}",
        missing.join(", ")
    );
    if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("HB_REQUIRE_INTEROP=1 but {msg}");
    }
    let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    None
}

fn run_checked(cmd: &mut Command, what: &str) -> String {
    let (out, err, code) = run_with_timeout(cmd, Duration::from_secs(120));
    assert_eq!(code, 0, "{what} failed ({code}):\n{out}\n{err}");
    format!("{out}{err}")
}

/// Poll `f` every 100 ms until it gives Some, for at most `limit`.
fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The cgroup this process is in, in the hierarchy `controller` names in /proc/self/cgroup
/// (`""` for cgroup2, `name=systemd` for the named v1 one).
fn own_cgroup(controller: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctl, path) = (parts.next()?, parts.next()?, parts.next()?);
        (ctl == controller).then(|| path.to_string())
    })
}

/// One boot of the root file system, on an overlay of its own. Drop stops the container
/// (SIGTERM to systemd-nspawn, which halts it; SIGKILL to its init after 30 s), unmounts the
/// overlay and removes the cgroups made for it; the directory is removed unless the test
/// failed or `HB_LAB_KEEP=1`.
struct Container {
    dir: PathBuf,
    merged: PathBuf,
    mounted: bool,
    nspawn: Option<Child>,
    /// The container's init, as this (the host's) pid namespace numbers it.
    leader: Option<i32>,
    cgroups: Vec<PathBuf>,
}

impl Container {
    fn new(rootfs: &Path) -> Container {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("systemd-{}", std::process::id()));
        let _ = Command::new("umount").arg(dir.join("merged")).output();
        let _ = fs::remove_dir_all(&dir);
        for sub in ["upper", "work", "merged"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let merged = dir.join("merged");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            rootfs.display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        run_checked(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &opts])
                .arg(&merged),
            "mount the overlay",
        );
        Container {
            dir,
            merged,
            mounted: true,
            nspawn: None,
            leader: None,
            cgroups: Vec::new(),
        }
    }

    /// A path inside the container (for files outside its /run, which is a tmpfs of its own).
    fn path(&self, rel: &str) -> PathBuf {
        self.merged.join(rel.trim_start_matches('/'))
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    /// What a legacy node has: our build installed by `make install`, the accounts the package
    /// makes, a configuration, and the unit enabled.
    fn install(&self) {
        let mut make = Command::new("make");
        make.arg("-C")
            .arg(SRC)
            .arg("--no-print-directory")
            .arg("install")
            .arg(format!("DESTDIR={}", self.merged.display()))
            .arg(format!("BIN_HEARTBEAT={}", env!("CARGO_BIN_EXE_heartbeat")))
            .arg(format!("BIN_CL_STATUS={}", env!("CARGO_BIN_EXE_cl_status")))
            .arg(format!(
                "BIN_HB_STANDBY={}",
                env!("CARGO_BIN_EXE_hb_standby")
            ))
            .arg(format!(
                "BIN_HB_TAKEOVER={}",
                env!("CARGO_BIN_EXE_hb_takeover")
            ))
            .arg(format!(
                "BIN_OUTDATER={}",
                env!("CARGO_BIN_EXE_drbd-peer-outdater")
            ))
            .arg(format!("BIN_HB_STATUS={}", env!("CARGO_BIN_EXE_hb_status")))
            .arg("SAMPLE_CONFIG=no")
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("MAKELEVEL");
        run_checked(&mut make, "make install");
        for argv in [
            &["groupadd", "--system", "haclient"][..],
            &[
                "useradd",
                "--system",
                "--gid",
                "haclient",
                "--home-dir",
                "/var/lib/heartbeat",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "hacluster",
            ][..],
        ] {
            run_checked(Command::new("chroot").arg(&self.merged).args(argv), argv[0]);
        }
        self.write("etc/hostname", &format!("{NODE}\n"));
        // Two nodes, the peer never up: after initdead this node runs both groups. Loopback
        // only (the container has no other interface).
        self.write(
            "etc/ha.d/ha.cf",
            &format!(
                "logfile /{HA_LOG}\nlogfacility daemon\nkeepalive 500ms\nwarntime 1\n\
                 deadtime 2\ninitdead 4\nudpport 694\nucast lo 127.0.0.1\n\
                 node {NODE}\nnode peer\n"
            ),
        );
        self.write(
            "etc/ha.d/haresources",
            &format!("{NODE} Marker::web\npeer Marker::db\n"),
        );
        self.write("etc/ha.d/authkeys", "auth 1\n1 sha1 systemd-unit-test\n");
        fs::set_permissions(
            self.path("etc/ha.d/authkeys"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        // The unit's EnvironmentFile: the options must reach ExecStart, ExecStop, ExecReload.
        self.write("etc/default/heartbeat", "HEARTBEAT_OPTS=\"-l\"\n");
        // What the package's postinst does with deb-systemd-helper (offline: --root).
        run_checked(
            Command::new("systemctl")
                .arg(format!("--root={}", self.merged.display()))
                .args(["enable", UNIT]),
            "systemctl --root enable",
        );
    }

    /// Leaf cgroups for the container in each hierarchy systemd uses, below our own, when
    /// the host has no systemd to ask for a scope: systemd-nspawn --keep-unit puts the
    /// container below the cgroup it is started in.
    fn make_cgroups(&mut self) -> Vec<PathBuf> {
        let name = format!("hb-systemd-test-{}", std::process::id());
        let mut dirs = Vec::new();
        let hierarchies: &[(&str, &str)] =
            if Path::new("/sys/fs/cgroup/cgroup.subtree_control").exists() {
                &[("/sys/fs/cgroup", "")]
            } else {
                &[
                    ("/sys/fs/cgroup/systemd", "name=systemd"),
                    ("/sys/fs/cgroup/unified", ""),
                ]
            };
        for (mount, controller) in hierarchies {
            if !Path::new(mount).join("cgroup.procs").exists() {
                continue;
            }
            let Some(own) = own_cgroup(controller) else {
                continue;
            };
            let d = Path::new(mount)
                .join(own.trim_start_matches('/'))
                .join(&name);
            fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
            self.cgroups.push(d.clone());
            dirs.push(d);
        }
        dirs
    }

    fn boot(&mut self) {
        // On a host run by systemd, systemd-nspawn asks it for a scope; elsewhere (a container,
        // a VM whose init is something else) it stays in the cgroup it is started in.
        let host_systemd = Path::new("/run/systemd/system").exists();
        let mut script = String::new();
        if !host_systemd {
            for d in self.make_cgroups() {
                script.push_str(&format!("echo $$ >'{}/cgroup.procs' && ", d.display()));
            }
        }
        script.push_str("exec \"$@\"");
        let log = fs::File::create(self.dir.join("nspawn.log")).unwrap();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            &script,
            "sh",
            "systemd-nspawn",
            "--quiet",
            "--register=no",
        ]);
        if !host_systemd {
            cmd.arg("--keep-unit");
        }
        cmd.arg("--directory")
            .arg(&self.merged)
            .args([
                &format!("--machine={NODE}"),
                // Only loopback, in a namespace of the container's own.
                "--private-network",
                // As on a real machine: the daemon locks itself into memory.
                "--capability=CAP_IPC_LOCK",
                "--console=pipe",
                // Its journal stays in the container, nothing of it on the host.
                "--link-journal=no",
                "--boot",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("spawn systemd-nspawn");
        let nspawn_pid = child.id() as i32;
        self.nspawn = Some(child);
        // The container's init: the child of systemd-nspawn that has become systemd.
        let leader = poll(Duration::from_secs(30), || {
            let entries = fs::read_dir("/proc").ok()?;
            entries.flatten().find_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
                let ppid: i32 = rest.split_whitespace().nth(1)?.parse().ok()?;
                (ppid == nspawn_pid && comm == "systemd").then_some(pid)
            })
        });
        let Some(leader) = leader else {
            panic!(
                "no systemd in the container within 30 s; systemd-nspawn said:\n{}",
                log_tail(&self.dir.join("nspawn.log"), 30)
            );
        };
        self.leader = Some(leader);
        let state = poll(Duration::from_secs(90), || {
            let (out, _, _) = self.run(&["systemctl", "is-system-running", "--wait"]);
            let s = out.trim().to_string();
            matches!(s.as_str(), "running" | "degraded").then_some(s)
        });
        match state.as_deref() {
            Some("running") => {}
            Some(_) => {
                let (failed, _, _) = self.run(&["systemctl", "--failed", "--no-legend"]);
                let _ = writeln!(
                    std::io::stderr(),
                    "systemd test: the container booted degraded:\n{failed}"
                );
            }
            None => self.fail("the container did not finish booting within 90 s"),
        }
    }

    /// Run a command in the container (all its namespaces, its root, a clean environment),
    /// for at most `limit`: `timeout` in there ends it, as killing nsenter would not (its child
    /// in the container would keep our end of the pipes open).
    fn run_for(&self, argv: &[&str], limit: Duration) -> (String, String, i32) {
        let leader = self.leader.expect("booted").to_string();
        let secs = limit.as_secs().max(1).to_string();
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "-t", &leader, "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
        ])
        .args([
            "--",
            "timeout",
            "--kill-after=5",
            &secs,
            "env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            "SYSTEMD_PAGER=",
            "SYSTEMD_COLORS=0",
            "COLUMNS=200",
        ])
        .args(argv);
        run_with_timeout(&mut cmd, limit + Duration::from_secs(15))
    }

    fn run(&self, argv: &[&str]) -> (String, String, i32) {
        self.run_for(argv, Duration::from_secs(60))
    }

    /// Run, and fail the test unless it exits 0; its stdout.
    fn ok(&self, argv: &[&str]) -> String {
        let (out, err, code) = self.run(argv);
        if code != 0 {
            self.fail(&format!(
                "`{}` exited {code}:\n{out}\n{err}",
                argv.join(" ")
            ));
        }
        out
    }

    fn sh(&self, script: &str) -> (String, String, i32) {
        self.run(&["sh", "-c", script])
    }

    /// A property of the unit, as `systemctl show` gives it.
    fn prop(&self, name: &str) -> String {
        let (out, _, _) = self.run(&["systemctl", "show", UNIT, "-p", name, "--value"]);
        out.trim_end_matches('\n').to_string()
    }

    fn main_pid(&self) -> i32 {
        self.prop("MainPID").parse().unwrap_or(0)
    }

    fn daemon_reload(&self) {
        self.ok(&["systemctl", "daemon-reload"]);
    }

    fn dropin(&self, name: &str, text: Option<&str>) {
        let p = self.path(&format!("{DROPIN_DIR}/{name}"));
        match text {
            Some(t) => self.write(&format!("{DROPIN_DIR}/{name}"), t),
            None => {
                let _ = fs::remove_file(p);
            }
        }
        self.daemon_reload();
    }

    /// The journal's position now, for [`Container::journal_after`].
    fn cursor(&self) -> String {
        let (out, _, _) = self.run(&["journalctl", "-n", "0", "--show-cursor", "--no-pager"]);
        out.lines()
            .find_map(|l| l.strip_prefix("-- cursor: "))
            .unwrap_or_else(|| self.fail(&format!("no journal cursor in {out:?}")))
            .to_string()
    }

    /// The unit's journal messages after `cursor`: the daemon's and systemd's about the unit,
    /// also those of its processes before they exec (`journalctl -u` shows those only from
    /// pid 1).
    fn journal_after(&self, cursor: &str) -> Vec<String> {
        let (out, _, _) = self.run(&[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            &format!("--after-cursor={cursor}"),
            &format!("UNIT={UNIT}"),
            "+",
            &format!("_SYSTEMD_UNIT={UNIT}"),
        ]);
        out.lines().map(str::to_string).collect()
    }

    /// Wait for a journal message (after `cursor`) containing every one of `needles`; its
    /// index in [`Container::journal_after`].
    fn wait_journal(&self, cursor: &str, needles: &[&str], limit: Duration) -> usize {
        poll(limit, || {
            self.journal_after(cursor)
                .iter()
                .position(|l| needles.iter().all(|n| l.contains(n)))
        })
        .unwrap_or_else(|| {
            self.fail(&format!(
                "no journal message with {needles:?} within {} s",
                limit.as_secs()
            ))
        })
    }

    /// Wait until a property has one of `values`.
    fn wait_prop(&self, name: &str, values: &[&str], limit: Duration) -> String {
        poll(limit, || {
            let v = self.prop(name);
            values.contains(&v.as_str()).then_some(v)
        })
        .unwrap_or_else(|| {
            self.fail(&format!(
                "{name} is {:?}, not one of {values:?}, after {} s",
                self.prop(name),
                limit.as_secs()
            ))
        })
    }

    fn marker(&self, group: &str) -> bool {
        self.path(&format!("{MARKERS}/{NODE}/{group}")).exists()
    }

    /// Wait until both resource groups run here (or, `false`, neither does).
    fn wait_groups(&self, running: bool, limit: Duration) {
        if poll(limit, || {
            (self.marker("web") == running && self.marker("db") == running).then_some(())
        })
        .is_none()
        {
            self.fail(&format!(
                "the resource groups web and db are not {} after {} s",
                if running {
                    "both running"
                } else {
                    "both stopped"
                },
                limit.as_secs()
            ));
        }
    }

    /// Wait for comm-up (our STATUS= text) and both groups acquired.
    fn wait_active(&self) {
        let active = format!("Communication up; {NODE} is active");
        self.wait_prop("StatusText", &[&active], Duration::from_secs(20));
        self.wait_groups(true, Duration::from_secs(15));
    }

    fn ha_log(&self) -> PathBuf {
        self.path(HA_LOG)
    }

    /// Fail the test with what the container knows about the unit.
    fn fail(&self, msg: &str) -> ! {
        let mut dump = String::new();
        if self.leader.is_some() {
            let (st, _, _) = self.run_for(
                &["systemctl", "status", "--no-pager", "-n", "0", UNIT],
                Duration::from_secs(10),
            );
            let (j, _, _) = self.run_for(
                &["journalctl", "--no-pager", "-n", "60", "-u", UNIT],
                Duration::from_secs(10),
            );
            dump = format!("--- systemctl status\n{st}--- journal of {UNIT}\n{j}");
        }
        panic!(
            "{msg}\n{dump}--- {}\n{}",
            self.ha_log().display(),
            log_tail(&self.ha_log(), 25)
        );
    }

    /// `systemctl poweroff`, then wait for systemd-nspawn to return; its exit status.
    fn poweroff(&mut self) -> std::process::ExitStatus {
        // systemctl first asks logind (there is no D-Bus here) and then systemd directly.
        let _ = self.run_for(&["systemctl", "poweroff"], Duration::from_secs(30));
        let child = self.nspawn.as_mut().expect("booted");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.leader = None;
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "the container did not power off within 60 s"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(child) = self.nspawn.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                // systemd-nspawn halts the container on SIGTERM.
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(30);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(100));
                }
                if matches!(child.try_wait(), Ok(None)) {
                    // Killing the init of a pid namespace kills everything in it.
                    if let Some(l) = self.leader {
                        let _ = kill(Pid::from_raw(l), Signal::SIGKILL);
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        if self.mounted {
            let ok = Command::new("umount")
                .arg(&self.merged)
                .status()
                .is_ok_and(|s| s.success())
                || Command::new("umount")
                    .arg("-l")
                    .arg(&self.merged)
                    .status()
                    .is_ok_and(|s| s.success());
            self.mounted = !ok;
        }
        // Our cgroups and what the container's systemd left below them (empty directories).
        for d in self.cgroups.iter().rev() {
            remove_empty_tree(d);
        }
        let keep = thread::panicking() || std::env::var("HB_LAB_KEEP").as_deref() == Ok("1");
        if keep || self.mounted {
            let _ = writeln!(
                std::io::stderr(),
                "systemd test: keeping {} for inspection (upper/ holds what the container wrote)",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// rmdir a cgroup directory tree, children first (cgroupfs removes only empty groups).
fn remove_empty_tree(d: &Path) {
    if let Ok(entries) = fs::read_dir(d) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(d);
}

#[test]
fn systemd_unit_under_a_real_systemd() {
    let Some(rootfs) = preconditions() else {
        return;
    };
    let mut c = Container::new(&rootfs);
    c.install();
    c.boot();
    let log = c.ha_log();
    let active = format!("Communication up; {NODE} is active");

    // --- Started at boot (enabled), Type=notify, our status text, the watchdog wired up.
    assert_eq!(c.prop("Type"), "notify");
    assert_eq!(c.prop("NotifyAccess"), "main");
    assert_eq!(
        c.prop("FragmentPath"),
        "/lib/systemd/system/heartbeat.service"
    );
    assert_eq!(c.ok(&["systemctl", "is-enabled", UNIT]).trim(), "enabled");
    c.wait_prop("ActiveState", &["active"], Duration::from_secs(10));
    c.wait_active();
    let pid = c.main_pid();
    assert!(pid > 0);
    let cmdline = c.ok(&["cat", &format!("/proc/{pid}/cmdline")]);
    assert_eq!(
        cmdline.split('\0').collect::<Vec<_>>(),
        ["/usr/libexec/heartbeat/heartbeat", "-f", "-l", ""],
        "ExecStart with HEARTBEAT_OPTS from /etc/default/heartbeat"
    );
    let status = c.ok(&["systemctl", "status", "--no-pager", UNIT]);
    assert!(status.contains("Active: active (running)"), "{status}");
    assert!(
        status.contains(&format!("Status: \"{active}\"")),
        "{status}"
    );
    // `service` hands over to systemctl on a systemd machine, and so does the init script.
    let (out, err, code) = c.run(&["service", "heartbeat", "status"]);
    assert_eq!(code, 0, "service heartbeat status:\n{out}{err}");
    assert!(out.contains("Active: active (running)"), "{out}");
    assert!(out.contains(&format!("Main PID: {pid}")), "{out}");
    let (out, err, code) = c.run(&["/etc/init.d/heartbeat", "status"]);
    assert_eq!(code, 0, "/etc/init.d/heartbeat status:\n{out}{err}");
    assert!(out.contains("Active: active (running)"), "{out}");
    // The daemon's pid file names the process systemd watches.
    let pidfile = c.ok(&["cat", "/run/heartbeat.pid"]);
    assert_eq!(pidfile.trim().parse::<i32>().ok(), Some(pid), "{pidfile:?}");

    assert_eq!(c.prop("WatchdogUSec"), "10s");
    let environ = c.ok(&["cat", &format!("/proc/{pid}/environ")]);
    let env: Vec<&str> = environ.split('\0').collect();
    assert!(env.contains(&"WATCHDOG_USEC=10000000"), "{env:?}");
    assert!(
        env.contains(&format!("WATCHDOG_PID={pid}").as_str()),
        "{env:?}"
    );
    assert!(
        env.iter().any(|v| v.starts_with("NOTIFY_SOCKET=/")),
        "{env:?}"
    );
    // A ping every 5 s moves systemd's watchdog timestamp.
    let t0 = c.prop("WatchdogTimestampMonotonic");
    if poll(Duration::from_secs(8), || {
        (c.prop("WatchdogTimestampMonotonic") != t0).then_some(())
    })
    .is_none()
    {
        c.fail("no watchdog ping reached systemd within 8 s (WatchdogTimestamp unchanged)");
    }

    // From here systemd logs every notification it gets ("Got notification message").
    c.ok(&["systemctl", "log-level", "debug"]);
    let from_main = format!("Got notification message from PID {pid} (");

    // --- Reload: ExecReload (-r) signals the daemon, which says RELOADING=1 then READY=1.
    let cur = c.cursor();
    let mark = log_mark(&log);
    c.ok(&["systemctl", "reload", UNIT]);
    let i_reloading = c.wait_journal(
        &cur,
        &[&from_main, "RELOADING=1", "MONOTONIC_USEC="],
        Duration::from_secs(10),
    );
    let i_ready = c.wait_journal(
        &cur,
        &[&format!("{from_main}READY=1)")],
        Duration::from_secs(10),
    );
    assert!(i_reloading < i_ready, "READY=1 before RELOADING=1");
    c.wait_journal(
        &cur,
        &["Executing:", "heartbeat -r -l"],
        Duration::from_secs(5),
    );
    wait_for_log_from(
        &log,
        mark,
        "Configuration unchanged.",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| c.fail(&e));
    c.wait_prop("SubState", &["running"], Duration::from_secs(10));
    assert_eq!(c.main_pid(), pid, "reload restarted the daemon");
    assert_eq!(c.prop("ReloadResult"), "success");

    // A broken ha.cf: -r refuses to signal, the reload fails, the daemon runs on.
    let hacf = fs::read_to_string(c.path("etc/ha.d/ha.cf")).unwrap();
    c.write("etc/ha.d/ha.cf", &format!("{hacf}no_such_directive 1\n"));
    let (out, err, code) = c.run(&["systemctl", "reload", UNIT]);
    assert_ne!(
        code, 0,
        "a reload with a broken ha.cf succeeded:\n{out}{err}"
    );
    assert_eq!(c.prop("ReloadResult"), "exit-code");
    c.write("etc/ha.d/ha.cf", &hacf);
    assert_eq!(c.prop("ActiveState"), "active");
    assert_eq!(c.prop("SubState"), "running");
    assert_eq!(c.main_pid(), pid);

    // --- Stop: ExecStop (-k), STOPPING=1, groups released, a clean exit.
    let cur = c.cursor();
    let mark = log_mark(&log);
    c.ok(&["systemctl", "stop", UNIT]);
    assert_eq!(c.prop("ActiveState"), "inactive");
    assert_eq!(c.prop("Result"), "success");
    assert_eq!(
        c.prop("ExecMainCode"),
        "1",
        "the daemon did not exit by itself"
    );
    assert_eq!(c.prop("ExecMainStatus"), "0");
    let exec_stop = c.prop("ExecStop");
    assert!(
        exec_stop.contains("heartbeat -k $HEARTBEAT_OPTS")
            && exec_stop.contains("code=exited ; status=0 }")
            && !exec_stop.contains("pid=0 ;"),
        "ExecStop did not run, or failed: {exec_stop}"
    );
    c.wait_journal(
        &cur,
        &["Executing:", "heartbeat -k -l"],
        Duration::from_secs(5),
    );
    c.wait_journal(
        &cur,
        &[&format!("{from_main}STOPPING=1)")],
        Duration::from_secs(5),
    );
    wait_for_log_from(
        &log,
        mark,
        &format!("[{pid}]: info: {NODE} Heartbeat shutdown complete."),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| c.fail(&e));
    c.wait_groups(false, Duration::from_secs(1));
    let (_, _, code) = c.sh(&format!("test -d /proc/{pid}"));
    assert_ne!(code, 0, "pid {pid} still runs after the stop");
    let (out, _, code) = c.run(&["service", "heartbeat", "status"]);
    assert_eq!(code, 3, "service heartbeat status when stopped:\n{out}");

    // --- Not configured (no ha.cf): the start is skipped, and succeeds.
    fs::rename(c.path("etc/ha.d/ha.cf"), c.path("etc/ha.d/ha.cf.away")).unwrap();
    c.ok(&["systemctl", "start", UNIT]);
    assert_eq!(c.prop("ConditionResult"), "no");
    assert_eq!(c.prop("ActiveState"), "inactive");
    // A broken ha.cf: the daemon exits 6 before READY=1 and the start fails at once.
    c.write("etc/ha.d/ha.cf", &format!("{hacf}no_such_directive 1\n"));
    let t = Instant::now();
    let (out, err, code) = c.run(&["systemctl", "start", UNIT]);
    assert_ne!(
        code, 0,
        "a start with a broken ha.cf succeeded:\n{out}{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(c.prop("Result"), "exit-code");
    assert_eq!(c.prop("ExecMainStatus"), "6");
    fs::rename(c.path("etc/ha.d/ha.cf.away"), c.path("etc/ha.d/ha.cf")).unwrap();
    c.ok(&["systemctl", "reset-failed", UNIT]);

    // --- Start waits for READY=1: without the notification socket it times out...
    c.dropin(
        "no-notify.conf",
        Some("[Service]\nEnvironment=NOTIFY_SOCKET=/run/hb-test-nowhere\nTimeoutStartSec=3s\n"),
    );
    let t = Instant::now();
    let (out, err, code) = c.run(&["systemctl", "start", UNIT]);
    let waited = t.elapsed();
    assert_ne!(code, 0, "a start without READY=1 succeeded:\n{out}{err}");
    assert!(waited >= Duration::from_millis(2500), "{waited:?}");
    assert_eq!(c.prop("Result"), "timeout");
    c.wait_prop("ActiveState", &["failed"], Duration::from_secs(10));
    c.dropin("no-notify.conf", None);
    c.ok(&["systemctl", "reset-failed", UNIT]);

    // ... and with it, `service heartbeat start` returns once the daemon said READY=1.
    let cur = c.cursor();
    let (out, err, code) = c.run(&["service", "heartbeat", "start"]);
    assert_eq!(code, 0, "service heartbeat start:\n{out}{err}");
    assert_eq!(
        c.prop("ActiveState"),
        "active",
        "start returned before READY"
    );
    assert_eq!(c.prop("SubState"), "running");
    let pid = c.main_pid();
    let from_main = format!("Got notification message from PID {pid} (");
    let i_ready = c.wait_journal(
        &cur,
        &[&format!("{from_main}READY=1)")],
        Duration::from_secs(5),
    );
    let i_started = c.wait_journal(&cur, &["Started heartbeat.service"], Duration::from_secs(5));
    assert!(
        i_ready < i_started,
        "systemd called it started before READY=1"
    );
    let pidfile = c.ok(&["cat", "/run/heartbeat.pid"]);
    assert_eq!(
        pidfile.trim().parse::<i32>().ok(),
        Some(pid),
        "not run by systemd"
    );

    // --- Watchdog, the unit's Restart=no: a frozen daemon is aborted and the unit fails.
    c.dropin("watchdog.conf", Some("[Service]\nWatchdogSec=2s\n"));
    c.ok(&["systemctl", "restart", UNIT]);
    let pid = c.main_pid();
    let environ = c.ok(&["cat", &format!("/proc/{pid}/environ")]);
    assert!(environ.split('\0').any(|v| v == "WATCHDOG_USEC=2000000"));
    let cur = c.cursor();
    c.wait_journal(
        &cur,
        &[&format!(
            "Got notification message from PID {pid} (WATCHDOG=1)"
        )],
        Duration::from_secs(3),
    );
    c.ok(&["systemctl", "kill", "--signal=SIGSTOP", UNIT]);
    c.wait_prop("ActiveState", &["failed"], Duration::from_secs(15));
    assert_eq!(c.prop("Result"), "watchdog");
    // CLD_KILLED, or CLD_DUMPED: `coredumps` (on by default, as in 3.0.6) raises the core
    // limit at start, and whether a core is written depends on the host's core_pattern.
    let code = c.prop("ExecMainCode");
    assert!(
        code == "2" || code == "3",
        "not killed by a signal: ExecMainCode {code}"
    );
    assert_eq!(c.prop("ExecMainStatus"), "6", "not SIGABRT");
    assert_eq!(c.prop("NRestarts"), "0");
    c.wait_journal(
        &cur,
        &["Watchdog timeout (limit 2s)!"],
        Duration::from_secs(5),
    );

    // With Restart=on-watchdog systemd starts it again, over the stale pid file.
    c.dropin(
        "watchdog.conf",
        Some("[Service]\nWatchdogSec=2s\nRestart=on-watchdog\nRestartSec=1s\n"),
    );
    c.ok(&["systemctl", "reset-failed", UNIT]);
    c.ok(&["systemctl", "start", UNIT]);
    c.wait_active();
    let frozen = c.main_pid();
    c.ok(&["systemctl", "kill", "--signal=SIGSTOP", UNIT]);
    c.wait_prop("NRestarts", &["1"], Duration::from_secs(15));
    c.wait_prop("ActiveState", &["active"], Duration::from_secs(10));
    let pid = c.main_pid();
    assert!(
        pid > 0 && pid != frozen,
        "pid {pid} after the restart of {frozen}"
    );
    let pidfile = c.ok(&["cat", "/run/heartbeat.pid"]);
    assert_eq!(pidfile.trim().parse::<i32>().ok(), Some(pid));
    c.wait_active();
    c.dropin("watchdog.conf", None);

    // --- Power off with the groups held: systemd stops heartbeat on the way down.
    let mark = log_mark(&log);
    let st = c.poweroff();
    assert!(st.success(), "systemd-nspawn: {st}");
    wait_for_log_from(
        &log,
        mark,
        &format!("[{pid}]: info: {NODE} Heartbeat shutdown complete."),
        Duration::from_secs(1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !c.marker("web") && !c.marker("db"),
        "groups still marked running"
    );
}
