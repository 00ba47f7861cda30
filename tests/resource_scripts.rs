//! The resource scripts of `resource.d/`, run with `sh` the way heartbeat runs them
//! (`SCRIPT arg... start|stop|status`).
//!
//! Most tests replace the system tools with the fakes of `tests/fakes/` (through the
//! scripts' `HA_BIN_*` variables), which record their arguments in `$FAKE_STATE/calls`
//! and keep their state in files there. The `netns_*` tests run IPaddr, IPaddr2 and
//! SendArp for real inside two network namespaces they create, joined by a veth pair on
//! 10.249.N.0/24, and watch the gratuitous ARP with tcpdump from the peer namespace.
//! They need root, `ip` and `tcpdump`; without them they print why and pass, unless
//! `HB_REQUIRE_INTEROP=1`, which turns the skip into a failure.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ helpers

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script_path(name: &str) -> PathBuf {
    repo().join("resource.d").join(name)
}

fn fake(name: &str) -> PathBuf {
    repo().join("tests").join("fakes").join(name)
}

/// Every script we ship (the library `rscfuncs.sh` is not one).
const SCRIPTS: &[&str] = &[
    "AudibleAlarm",
    "Delay",
    "Filesystem",
    "IPaddr",
    "IPaddr2",
    "IPsrcaddr",
    "LVM",
    "MailTo",
    "Marker",
    "Raid1",
    "SendArp",
    "Xinetd",
    "apache",
];

fn require_interop() -> bool {
    std::env::var("HB_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// Print why a test does not run; a failure when HB_REQUIRE_INTEROP=1.
fn skip(why: &str) {
    if require_interop() {
        panic!("HB_REQUIRE_INTEROP=1 but: {why}");
    }
    {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIP: {why}");
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("hb-rsc-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The result of one script run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    what: String,
}

impl Run {
    fn from(what: String, out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            what,
        }
    }
    fn ok(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "{} failed\nstdout: {}\nstderr: {}",
            self.what, self.stdout, self.stderr
        );
        self
    }
    fn fails(&self) -> &Run {
        assert_ne!(
            self.code, 0,
            "{} should have failed\nstdout: {}\nstderr: {}",
            self.what, self.stdout, self.stderr
        );
        self
    }
    fn says(&self, word: &str) -> &Run {
        assert_eq!(
            self.stdout.trim(),
            word,
            "{}: stdout should be exactly {word:?}\nstderr: {}",
            self.what,
            self.stderr
        );
        let code = if word == "running" { 0 } else { 3 };
        assert_eq!(self.code, code, "{}: exit code for {word}", self.what);
        self
    }
    fn stderr_has(&self, text: &str) -> &Run {
        assert!(
            self.stderr.contains(text),
            "{}: stderr lacks {text:?}:\n{}",
            self.what,
            self.stderr
        );
        self
    }
}

/// A sandbox: fakes, their state, the scripts' scratch directory and the environment.
struct Sandbox {
    dir: TempDir,
    vars: Vec<(String, String)>,
}

impl Sandbox {
    fn new(tag: &str) -> Sandbox {
        let dir = TempDir::new(tag);
        let state = dir.path().join("state");
        let bin = dir.path().join("bin");
        for d in [&state, &bin, &dir.path().join("rsctmp")] {
            fs::create_dir_all(d).unwrap();
        }
        for (link, target) in [
            ("fuser", fake("record")),
            ("fsck", fake("record")),
            ("xinetd-reload", fake("record")),
            ("httpd", PathBuf::from("/bin/sleep")),
        ] {
            symlink(target, bin.join(link)).unwrap();
        }
        let s = |p: &Path| p.display().to_string();
        let mut vars: Vec<(String, String)> = vec![
            ("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            ("HA_RSCTMP".into(), s(&dir.path().join("rsctmp"))),
            ("FAKE_STATE".into(), s(&state)),
            ("FAKE_HTTPD".into(), s(&bin.join("httpd"))),
            ("HA_CURHOST".into(), "alice".into()),
            ("HA_ARP_BACKGROUND".into(), "no".into()),
            ("HA_ARP_COUNT".into(), "1".into()),
            ("HA_BIN_SEND_ARP".into(), "none".into()),
            ("HA_PROC_MOUNTS".into(), s(&state.join("mounts"))),
            ("HA_PROC_MDSTAT".into(), s(&state.join("mdstat"))),
            ("HA_BIN_FUSER".into(), s(&bin.join("fuser"))),
            ("HA_BIN_FSCK".into(), s(&bin.join("fsck"))),
        ];
        for tool in [
            "ip",
            "arping",
            "mount",
            "umount",
            "mail",
            "sendmail",
            "apachectl",
            "vgchange",
            "lvs",
            "mdadm",
        ] {
            vars.push((format!("HA_BIN_{}", tool.to_uppercase()), s(&fake(tool))));
        }
        Sandbox { dir, vars }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn rsctmp(&self) -> PathBuf {
        self.dir.path().join("rsctmp")
    }
    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn set(&mut self, k: &str, v: &str) {
        self.vars.retain(|(n, _)| n != k);
        self.vars.push((k.into(), v.into()));
    }

    fn unset(&mut self, k: &str) {
        self.vars.retain(|(n, _)| n != k);
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.state().join(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.state().join(name)).unwrap_or_default()
    }

    /// The fakes' call log, one call a line.
    fn calls(&self) -> Vec<String> {
        self.read("calls").lines().map(str::to_owned).collect()
    }

    fn clear_calls(&self) {
        let _ = fs::remove_file(self.state().join("calls"));
    }

    fn run(&self, script: &str, args: &[&str]) -> Run {
        let out = Command::new("sh")
            .arg(script_path(script))
            .args(args)
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run sh");
        Run::from(format!("{script} {}", args.join(" ")), out)
    }

    /// status stopped, start, start again, status running, stop, stop again, status
    /// stopped: the contract heartbeat relies on.
    fn cycle(&self, script: &str, args: &[&str]) {
        let with = |op: &str| {
            let mut v = args.to_vec();
            v.push(op);
            self.run(script, &v)
        };
        with("status").says("stopped");
        with("start").ok();
        with("start").ok();
        with("status").says("running");
        with("stop").ok();
        with("stop").ok();
        with("status").says("stopped");
    }
}

impl Drop for Sandbox {
    /// End the background processes a failed test may have left: the fake httpd,
    /// the AudibleAlarm loop. Only pids recorded by this sandbox.
    fn drop(&mut self) {
        for (f, needle) in [
            (self.state().join("httpd.pid"), "httpd"),
            (self.rsctmp().join("AudibleAlarm-alarm"), "AudibleAlarm"),
        ] {
            let Some(pid) = fs::read_to_string(&f)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(needle) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        sleep(Duration::from_millis(50));
    }
    f()
}

fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

// ------------------------------------------------------------ static checks

#[test]
fn scripts_are_executable_and_parse() {
    use std::os::unix::fs::PermissionsExt;
    for s in SCRIPTS {
        let p = script_path(s);
        let mode = fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{s} must be executable by everyone");
        let st = Command::new("sh").arg("-n").arg(&p).status().unwrap();
        assert!(st.success(), "sh -n {s}");
        let first = fs::read_to_string(&p).unwrap();
        assert!(
            first.starts_with("#!/bin/sh\n"),
            "{s} must start with #!/bin/sh"
        );
    }
    let st = Command::new("sh")
        .arg("-n")
        .arg(script_path("rscfuncs.sh"))
        .status()
        .unwrap();
    assert!(st.success(), "sh -n rscfuncs.sh");
}

#[test]
fn scripts_pass_shellcheck() {
    if !have("shellcheck") {
        {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: shellcheck is not installed (apt-get install shellcheck)"
            );
        }
        return;
    }
    let mut cmd = Command::new("shellcheck");
    cmd.current_dir(repo())
        .arg("-x")
        .arg("resource.d/rscfuncs.sh");
    for s in SCRIPTS {
        cmd.arg(format!("resource.d/{s}"));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut cmd = Command::new("shellcheck");
    cmd.current_dir(repo()).args(["-s", "sh"]);
    for e in fs::read_dir(repo().join("tests/fakes")).unwrap() {
        cmd.arg(e.unwrap().path());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "shellcheck fakes:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn usage_errors_fail_and_help_succeeds() {
    let sb = Sandbox::new("usage");
    for s in SCRIPTS {
        let r = sb.run(s, &[]);
        // Delay, AudibleAlarm and apache take an empty argument list before the
        // operation, so no arguments at all is a usage error for all of them.
        r.fails();
        assert!(
            r.stderr.contains("usage"),
            "{s} without arguments: usage on stderr, got {:?}",
            r.stderr
        );
        assert!(
            !r.stdout.contains("running"),
            "{s}: usage must not look like running"
        );
        sb.run(s, &["x", "y", "z", "w", "v", "frobnicate"]).fails();
    }
    sb.run("IPaddr", &["10.0.0.1", "frobnicate"])
        .fails()
        .stderr_has("usage");
    sb.run("Marker", &["m", "help"]).ok();
}

// ---------------------------------------------------------------- logging

#[test]
fn logs_to_stderr_without_logfile() {
    let mut sb = Sandbox::new("log-stderr");
    sb.set("HA_MARKER_DIR", &sb.state().join("m").display().to_string());
    let r = sb.run("Marker", &["svc", "start"]);
    r.ok().stderr_has("Marker: info: svc started on alice");
    assert_eq!(r.stdout, "", "nothing on stdout for start");
}

#[test]
fn logs_in_heartbeat_layout_with_logfile() {
    let mut sb = Sandbox::new("log-file");
    let log = sb.state().join("ha-log");
    let debug = sb.state().join("ha-debug");
    sb.set("HA_MARKER_DIR", &sb.state().join("m").display().to_string());
    sb.set("HA_LOGFILE", &log.display().to_string());
    sb.set("HA_DEBUGLOG", &debug.display().to_string());
    let r = sb.run("Marker", &["svc", "start"]);
    r.ok();
    assert_eq!(r.stderr, "", "nothing on stderr when a log file is set");

    // 2026/11/22_21:21:48␠␠Marker(default)[PID]:␠␠␠␠info: svc started on alice
    let text = fs::read_to_string(&log).unwrap();
    let line = text.lines().next().expect("a line in the log file");
    let (date, rest) = line.split_at(19);
    let b = date.as_bytes();
    assert!(
        b[4] == b'/' && b[7] == b'/' && b[10] == b'_' && b[13] == b':' && b[16] == b':',
        "date in {line:?}"
    );
    assert!(
        rest.starts_with("  Marker(default)["),
        "two blanks then the tag: {line:?}"
    );
    let after_pid = rest.split_once("]:").expect("]:").1;
    assert_eq!(
        after_pid, "    info: svc started on alice",
        "four blanks then the text: {line:?}"
    );

    // Marker(default)[PID]:<TAB>2026/11/22_21:21:48 info: svc started on alice
    let text = fs::read_to_string(&debug).unwrap();
    let line = text.lines().next().expect("a line in the debug file");
    let (tag, rest) = line.split_once(":\t").expect("tag, colon, TAB");
    assert!(
        tag.starts_with("Marker(default)[") && tag.ends_with(']'),
        "{line:?}"
    );
    assert_eq!(
        rest.len(),
        19 + " info: svc started on alice".len(),
        "{line:?}"
    );
    assert!(rest.ends_with(" info: svc started on alice"), "{line:?}");
}

// -------------------------------------------------------------- each script

fn ip_sandbox(tag: &str) -> Sandbox {
    let sb = Sandbox::new(tag);
    sb.write("ip.links", "1 lo\n2 eth0\n3 eth1\n");
    sb.write(
        "ip.addrs",
        "1 lo 127.0.0.1/8 - lo\n2 eth0 192.168.50.5/24 192.168.50.255 eth0\n3 eth1 10.20.0.5/16 10.20.255.255 eth1\n",
    );
    sb.write(
        "ip.route",
        "default via 192.168.50.1 dev eth0 proto static metric 100\n",
    );
    sb
}

#[test]
fn ipaddr_cycle_and_alias_labels() {
    let sb = ip_sandbox("ipaddr");
    sb.cycle("IPaddr", &["192.168.50.10"]);
    let calls = sb.calls();
    assert!(
        calls.contains(&"ip addr add 192.168.50.10/24 brd + dev eth0 label eth0:0".into()),
        "{calls:#?}"
    );
    assert!(
        calls.contains(&"arping -U -c 1 -I eth0 192.168.50.10".into()),
        "{calls:#?}"
    );
    assert!(
        calls.contains(&"ip addr del 192.168.50.10/24 dev eth0".into()),
        "{calls:#?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("ip addr add"))
            .count(),
        1,
        "second start adds nothing"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("ip addr del"))
            .count(),
        1,
        "second stop removes nothing"
    );

    // Two aliases on one interface get eth0:0 and eth0:1; the bare form and the full
    // form with a dotted mask and a broadcast address.
    sb.clear_calls();
    sb.run("IPaddr", &["192.168.50.11", "start"]).ok();
    sb.run(
        "IPaddr",
        &["192.168.50.12/255.255.255.0/eth0/192.168.50.255", "start"],
    )
    .ok();
    sb.run("IPaddr", &["10.20.1.1/16/10.20.255.255", "start"])
        .ok();
    let calls = sb.calls();
    assert!(
        calls.contains(&"ip addr add 192.168.50.11/24 brd + dev eth0 label eth0:0".into()),
        "{calls:#?}"
    );
    assert!(
        calls.contains(
            &"ip addr add 192.168.50.12/24 brd 192.168.50.255 dev eth0 label eth0:1".into()
        ),
        "{calls:#?}"
    );
    assert!(
        calls.contains(&"ip addr add 10.20.1.1/16 brd 10.20.255.255 dev eth1 label eth1:0".into()),
        "{calls:#?}"
    );
    // Freed labels are reused.
    sb.run("IPaddr", &["192.168.50.11", "stop"]).ok();
    sb.run("IPaddr", &["192.168.50.13", "start"]).ok();
    assert!(
        sb.read("ip.addrs").contains("192.168.50.13/24 - eth0:0"),
        "{}",
        sb.read("ip.addrs")
    );
}

#[test]
fn ipaddr_refuses_what_it_cannot_place() {
    let sb = ip_sandbox("ipaddr-bad");
    sb.run("IPaddr", &["172.31.9.9", "start"])
        .fails()
        .stderr_has("no interface has a subnet holding 172.31.9.9");
    sb.run("IPaddr", &["172.31.9.9/24/eth7", "start"])
        .fails()
        .stderr_has("eth7 does not exist");
    sb.run("IPaddr", &["172.31.9.9/eth0", "start"])
        .fails()
        .stderr_has("bad netmask");
    sb.run("IPaddr", &["192.168.50.300", "start"])
        .fails()
        .stderr_has("not an IPv4 address");
    sb.run("IPaddr", &["192.168.50.300", "status"])
        .says("stopped");
    sb.run("IPaddr", &["172.31.9.9/33/eth0", "start"]).fails();
    // Stopping something that is not there is fine.
    sb.run("IPaddr", &["172.31.9.9", "stop"]).ok();
    assert!(
        !sb.calls().iter().any(|c| c.starts_with("ip addr add")),
        "{:#?}",
        sb.calls()
    );
}

#[test]
fn ipaddr2_plain_and_labelled() {
    let sb = ip_sandbox("ipaddr2");
    sb.cycle("IPaddr2", &["10.20.3.4"]);
    let calls = sb.calls();
    assert!(
        calls.contains(&"ip addr add 10.20.3.4/16 brd + dev eth1".into()),
        "{calls:#?}"
    );
    sb.run("IPaddr2", &["192.168.50.20/24/eth0:web", "start"])
        .ok();
    assert!(sb
        .calls()
        .contains(&"ip addr add 192.168.50.20/24 brd + dev eth0 label eth0:web".into()));
    sb.run("IPaddr2", &["192.168.50.21/32/eth0", "start"]).ok();
    assert!(
        sb.calls()
            .contains(&"ip addr add 192.168.50.21/32 dev eth0".into()),
        "{:#?}",
        sb.calls()
    );
}

#[test]
fn gratuitous_arp_tool_choice() {
    let mut sb = ip_sandbox("garp");
    // send_arp (resource-agents) is preferred when present.
    sb.set("HA_BIN_SEND_ARP", &fake("send_arp").display().to_string());
    sb.set("HA_ARP_COUNT", "3");
    sb.run("IPaddr2", &["192.168.50.30", "start"]).ok();
    assert!(
        sb.calls()
            .contains(&"send_arp -i 200 -r 3 eth0 192.168.50.30 auto not_used not_used".into()),
        "{:#?}",
        sb.calls()
    );
    // Neither tool: the address still comes up, and the log says what is missing.
    sb.set("HA_BIN_SEND_ARP", "none");
    sb.set("HA_BIN_ARPING", "none");
    sb.run("IPaddr2", &["192.168.50.31", "start"])
        .ok()
        .stderr_has("WARN: no gratuitous ARP tool available");
    sb.run("IPaddr2", &["192.168.50.31", "status"])
        .says("running");
    // In the background (the default), the announcer still runs.
    sb.set("HA_BIN_ARPING", &fake("arping").display().to_string());
    sb.unset("HA_ARP_BACKGROUND");
    sb.run("IPaddr", &["192.168.50.32", "start"]).ok();
    assert!(
        wait_until(Duration::from_secs(5), || sb
            .calls()
            .iter()
            .any(|c| c == "arping -U -c 3 -I eth0 192.168.50.32")),
        "{:#?}",
        sb.calls()
    );
}

#[test]
fn sendarp_cycle() {
    let sb = ip_sandbox("sendarp");
    sb.cycle("SendArp", &["192.168.50.5/eth0"]);
    let n = sb
        .calls()
        .iter()
        .filter(|c| *c == "arping -U -c 1 -I eth0 192.168.50.5")
        .count();
    assert_eq!(n, 1, "announced once: {:#?}", sb.calls());
    sb.run("SendArp", &["192.168.50.5", "start"])
        .fails()
        .stderr_has("no interface");
}

#[test]
fn ipsrcaddr_cycle_restores_route() {
    let sb = ip_sandbox("ipsrcaddr");
    // The address must be configured first.
    sb.run("IPsrcaddr", &["192.168.50.40", "start"])
        .fails()
        .stderr_has("not configured");
    sb.run("IPaddr2", &["192.168.50.40", "start"]).ok();
    sb.cycle("IPsrcaddr", &["192.168.50.40"]);
    assert!(sb
        .calls()
        .contains(&"ip route change default via 192.168.50.1 dev eth0 proto static metric 100 src 192.168.50.40".into()));
    assert_eq!(
        sb.read("ip.route"),
        "default via 192.168.50.1 dev eth0 proto static metric 100\n"
    );
    // A previous source address comes back at stop.
    sb.write(
        "ip.route",
        "default via 192.168.50.1 dev eth0 src 192.168.50.5\n",
    );
    sb.run("IPsrcaddr", &["192.168.50.40", "start"]).ok();
    assert_eq!(
        sb.read("ip.route"),
        "default via 192.168.50.1 dev eth0 src 192.168.50.40\n"
    );
    sb.run("IPsrcaddr", &["192.168.50.40", "stop"]).ok();
    assert_eq!(
        sb.read("ip.route"),
        "default via 192.168.50.1 dev eth0 src 192.168.50.5\n"
    );
    // No default route: start fails, stop is fine.
    sb.write("ip.route", "");
    sb.run("IPsrcaddr", &["192.168.50.40", "start"])
        .fails()
        .stderr_has("no IPv4 default route");
    sb.run("IPsrcaddr", &["192.168.50.40", "stop"]).ok();
}

#[test]
fn filesystem_cycle() {
    let sb = Sandbox::new("fs");
    let mnt = sb.dir.path().join("mnt/data");
    let m = mnt.display().to_string();
    sb.cycle("Filesystem", &["/dev/fake1", &m, "ext3"]);
    assert!(mnt.is_dir(), "mount point created");
    let calls = sb.calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("mount ")).count(),
        1,
        "{calls:#?}"
    );
    assert!(
        calls.contains(&format!("mount -t ext3 /dev/fake1 {m}")),
        "{calls:#?}"
    );
    assert!(calls.contains(&format!("umount {m}")), "{calls:#?}");

    // Options, and no type at all.
    sb.clear_calls();
    sb.run(
        "Filesystem",
        &["/dev/fake1", &m, "ext4", "noatime,nodev", "start"],
    )
    .ok();
    sb.run(
        "Filesystem",
        &["/dev/fake1", &m, "ext4", "noatime,nodev", "stop"],
    )
    .ok();
    sb.run("Filesystem", &["LABEL=data", &m, "start"]).ok();
    sb.run("Filesystem", &["LABEL=data", &m, "status"])
        .says("running");
    sb.run("Filesystem", &["LABEL=data", &m, "stop"]).ok();
    let calls = sb.calls();
    assert!(
        calls.contains(&format!("mount -t ext4 -o noatime,nodev /dev/fake1 {m}")),
        "{calls:#?}"
    );
    assert!(
        calls.contains(&format!("mount LABEL=data {m}")),
        "{calls:#?}"
    );
}

#[test]
fn filesystem_busy_unmount_and_foreign_mount() {
    let mut sb = Sandbox::new("fs-busy");
    let m = sb.dir.path().join("mnt").display().to_string();
    sb.run("Filesystem", &["/dev/fake2", &m, "xfs", "start"])
        .ok();
    // Busy twice: fuser -k -TERM is used, then the third umount works.
    sb.write("busy", "2\n");
    sb.run("Filesystem", &["/dev/fake2", &m, "xfs", "stop"])
        .ok()
        .stderr_has("is busy");
    let calls = sb.calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("umount")).count(),
        3,
        "{calls:#?}"
    );
    assert!(
        calls.contains(&format!("fuser -k -TERM -m {m}")),
        "{calls:#?}"
    );
    sb.run("Filesystem", &["/dev/fake2", &m, "xfs", "status"])
        .says("stopped");

    // Always busy, force off, 2 tries: stop fails, nothing killed.
    sb.clear_calls();
    sb.run("Filesystem", &["/dev/fake2", &m, "xfs", "start"])
        .ok();
    sb.write("busy", "100\n");
    sb.set("HA_FS_FORCE", "no");
    sb.set("HA_FS_UMOUNT_TRIES", "2");
    sb.run("Filesystem", &["/dev/fake2", &m, "xfs", "stop"])
        .fails()
        .stderr_has("could not unmount");
    assert!(
        !sb.calls().iter().any(|c| c.starts_with("fuser")),
        "{:#?}",
        sb.calls()
    );
    sb.write("busy", "0\n");
    sb.run("Filesystem", &["/dev/fake2", &m, "xfs", "stop"])
        .ok();

    // Something else is mounted there: start refuses, stop leaves it alone.
    sb.write("mounts", &format!("/dev/other {m} ext4 rw 0 0\n"));
    sb.run("Filesystem", &["/dev/fake2", &m, "xfs", "status"])
        .says("stopped");
    sb.run("Filesystem", &["/dev/fake2", &m, "xfs", "start"])
        .fails()
        .stderr_has("/dev/other");
    sb.run("Filesystem", &["/dev/fake2", &m, "xfs", "stop"])
        .ok();
    assert!(sb.read("mounts").contains("/dev/other"));

    // A failing mount fails the start; fsck runs first when asked for.
    sb.write("mounts", "");
    sb.write("mount-fails", "");
    sb.set("HA_FS_FSCK", "yes");
    sb.clear_calls();
    sb.run("Filesystem", &["/dev/fake2", &m, "xfs", "start"])
        .fails();
    assert_eq!(sb.calls()[0], "fsck -a /dev/fake2");
    // The root filesystem is never managed.
    sb.run("Filesystem", &["/dev/sda1", "/", "ext4", "stop"])
        .fails()
        .stderr_has("root filesystem");
}

#[test]
fn mailto_cycle() {
    let mut sb = Sandbox::new("mailto");
    sb.cycle("MailTo", &["root,ops@example.org", "webcluster"]);
    let calls = sb.calls();
    assert_eq!(
        calls,
        vec![
            "mail -s [webcluster] alice takes over root ops@example.org".to_owned(),
            "mail -s [webcluster] alice releases root ops@example.org".to_owned()
        ],
        "one mail per real change"
    );
    assert!(sb
        .read("mailbox")
        .contains("heartbeat on alice is starting"));
    // Without mail(1): sendmail with headers. Without either: a warning, no failure.
    sb.set("HA_BIN_MAIL", "none");
    sb.clear_calls();
    sb.run("MailTo", &["root", "start"]).ok();
    assert_eq!(sb.calls(), vec!["sendmail -i -- root".to_owned()]);
    assert!(sb
        .read("mailbox")
        .contains("To: root\nSubject: [heartbeat] alice takes over\n\n"));
    sb.set("HA_BIN_SENDMAIL", "none");
    sb.run("MailTo", &["root", "stop"])
        .ok()
        .stderr_has("WARN: no mail program");
    sb.run("MailTo", &["root", "status"]).says("stopped");
}

#[test]
fn delay_cycle() {
    let sb = Sandbox::new("delay");
    sb.cycle("Delay", &["0"]);
    sb.cycle("Delay", &["0.1", "0"]);
    let t = Instant::now();
    sb.run("Delay", &["1", "0", "start"]).ok();
    assert!(t.elapsed() >= Duration::from_millis(900), "start waits");
    let t = Instant::now();
    sb.run("Delay", &["1", "0", "start"]).ok();
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "second start does not wait"
    );
    sb.run("Delay", &["1", "0", "stop"]).ok();
    sb.run("Delay", &["x", "start"])
        .fails()
        .stderr_has("not a number");
}

#[test]
fn audiblealarm_cycle_and_silent_node() {
    let mut sb = Sandbox::new("alarm");
    let console = sb.state().join("console");
    sb.set("HA_ALARM_DEVICE", &console.display().to_string());
    sb.set("HA_ALARM_INTERVAL", "0.1");
    sb.run("AudibleAlarm", &["start"]).ok();
    let pid: i32 = fs::read_to_string(sb.rsctmp().join("AudibleAlarm-alarm"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || fs::metadata(&console)
            .is_ok_and(|m| m.len() >= 2)),
        "the bell rings"
    );
    assert!(fs::read(&console).unwrap().iter().all(|&b| b == 7));
    sb.run("AudibleAlarm", &["start"]).ok();
    sb.run("AudibleAlarm", &["status"]).says("running");
    sb.run("AudibleAlarm", &["stop"]).ok();
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(pid)),
        "the bell loop ends"
    );
    sb.run("AudibleAlarm", &["stop"]).ok();
    sb.run("AudibleAlarm", &["status"]).says("stopped");
    sb.cycle("AudibleAlarm", &["bob", "carol"]);

    // alice is in the silent list: running, but no bell.
    let _ = fs::remove_file(&console);
    sb.cycle("AudibleAlarm", &["bob", "ALICE"]);
    sb.run("AudibleAlarm", &["bob", "alice", "start"]).ok();
    sleep(Duration::from_millis(300));
    assert!(!console.exists(), "silent on alice");
    sb.run("AudibleAlarm", &["bob", "alice", "stop"]).ok();
}

const XINETD_SERVICE: &str = "# test service\nservice tftp\n{\n\tsocket_type = dgram\n\tdisable     = yes  # off by default\n\tserver = /usr/sbin/in.tftpd\n}\n";

#[test]
fn xinetd_cycle_with_reload_command() {
    let mut sb = Sandbox::new("xinetd");
    let dir = sb.state().join("xinetd.d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("tftp"), XINETD_SERVICE).unwrap();
    sb.set("HA_XINETD_DIR", &dir.display().to_string());
    sb.set(
        "HA_XINETD_RELOAD_CMD",
        &sb.bin().join("xinetd-reload").display().to_string(),
    );
    sb.cycle("Xinetd", &["tftp"]);
    assert_eq!(
        sb.calls(),
        vec!["xinetd-reload ".to_owned(), "xinetd-reload ".to_owned()],
        "one reload per change"
    );
    let text = fs::read_to_string(dir.join("tftp")).unwrap();
    assert_eq!(
        text, XINETD_SERVICE,
        "the file is as before after start+stop"
    );
    // A service file without a "disable" line is enabled; stop adds the line.
    fs::write(dir.join("echo"), "service echo\n{\n\ttype = INTERNAL\n}\n").unwrap();
    sb.run("Xinetd", &["echo", "status"]).says("running");
    sb.run("Xinetd", &["echo", "stop"]).ok();
    assert_eq!(
        fs::read_to_string(dir.join("echo")).unwrap(),
        "service echo\n{\n\tdisable = yes\n\ttype = INTERNAL\n}\n"
    );
    sb.run("Xinetd", &["echo", "status"]).says("stopped");
    sb.run("Xinetd", &["nosuch", "status"]).says("stopped");
    sb.run("Xinetd", &["nosuch", "stop"]).ok();
    sb.run("Xinetd", &["nosuch", "start"]).fails();
}

/// A fake xinetd process started here and killed here, by pid.
struct FakeDaemon(Child);

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn xinetd_reload_by_sighup_to_pidfile() {
    let mut sb = Sandbox::new("xinetd-hup");
    let dir = sb.state().join("xinetd.d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("tftp"), XINETD_SERVICE).unwrap();
    // A shell cannot trap a signal ignored when it starts (a test run under `nohup`, or by
    // a CI that ignores SIGHUP): the fake gets SIGHUP at its default, as a real xinetd has.
    let daemon = FakeDaemon(
        Command::new("env")
            .arg("--default-signal=HUP")
            .arg("sh")
            .arg(fake("xinetd"))
            .env("FAKE_STATE", sb.state())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_until(Duration::from_secs(5), || sb
        .state()
        .join("xinetd.ready")
        .exists()));
    let pidfile = sb.state().join("xinetd.pid");
    fs::write(&pidfile, format!("{}\n", daemon.0.id())).unwrap();
    sb.set("HA_XINETD_DIR", &dir.display().to_string());
    sb.set("HA_XINETD_PIDFILE", &pidfile.display().to_string());
    sb.run("Xinetd", &["tftp", "start"]).ok();
    assert!(
        wait_until(Duration::from_secs(5), || sb
            .read("xinetd.hups")
            .lines()
            .count()
            == 1),
        "one SIGHUP"
    );
    sb.run("Xinetd", &["tftp", "start"]).ok();
    sb.run("Xinetd", &["tftp", "stop"]).ok();
    assert!(
        wait_until(Duration::from_secs(5), || sb
            .read("xinetd.hups")
            .lines()
            .count()
            == 2),
        "two SIGHUPs"
    );
    drop(daemon);
    // xinetd gone: the change is still made, with a warning.
    sb.run("Xinetd", &["tftp", "start"])
        .ok()
        .stderr_has("xinetd does not seem to run");
}

#[test]
fn apache_cycle_with_pidfile_from_config() {
    let sb = Sandbox::new("apache");
    let conf = sb.state().join("httpd.conf");
    let pidfile = sb.state().join("httpd.pid");
    fs::write(
        &conf,
        format!(
            "ServerRoot \"{}\"\n  PidFile \"{}\"\nListen 8080\n",
            sb.state().display(),
            pidfile.display()
        ),
    )
    .unwrap();
    let c = conf.display().to_string();
    sb.cycle("apache", &[&c]);
    let calls = sb.calls();
    assert_eq!(
        calls,
        vec![
            format!("apachectl -f {c} -k start"),
            format!("apachectl -f {c} -k stop")
        ],
        "one start and one stop"
    );
    // A relative PidFile is under ServerRoot; ${VAR} comes from envvars beside the file.
    fs::write(sb.state().join("envvars"), "export MY_RUN=run\n").unwrap();
    fs::create_dir_all(sb.state().join("run")).unwrap();
    fs::write(
        &conf,
        format!(
            "ServerRoot {}\nPidFile ${{MY_RUN}}/../httpd.pid\n",
            sb.state().display()
        ),
    )
    .unwrap();
    sb.cycle("apache", &[&c]);
    // A server that ignores "-k stop" is terminated.
    sb.run("apache", &[&c, "start"]).ok();
    let pid: i32 = sb.read("httpd.pid").trim().parse().unwrap();
    let mut sb2 = Sandbox::new("apache2");
    sb2.vars = sb.vars.clone();
    sb2.set("HA_BIN_APACHECTL", "none");
    sb2.set("HA_APACHE_PIDFILE", &pidfile.display().to_string());
    sb2.run("apache", &[&c, "stop"]).ok().stderr_has("SIGTERM");
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)));
    sb.run("apache", &["/nonexistent/httpd.conf", "start"])
        .fails();
    sb.run("apache", &["/nonexistent/httpd.conf", "stop"]).ok();
}

#[test]
fn lvm_cycle() {
    let sb = Sandbox::new("lvm");
    sb.write("vg-vg_shared", "n\n");
    sb.cycle("LVM", &["vg_shared"]);
    let changes: Vec<String> = sb
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("vgchange"))
        .collect();
    assert_eq!(
        changes,
        vec![
            "vgchange -a y vg_shared".to_owned(),
            "vgchange -a n vg_shared".to_owned()
        ]
    );
    sb.run("LVM", &["vg_missing", "start"]).fails();
    sb.run("LVM", &["vg_missing", "status"]).says("stopped");
    sb.run("LVM", &["vg_missing", "stop"]).ok();
}

#[test]
fn raid1_cycle() {
    let sb = Sandbox::new("raid1");
    let conf = sb.state().join("mdadm.conf");
    fs::write(
        &conf,
        "ARRAY /dev/md99 metadata=1.2 UUID=00000000:00000000:00000000:00000000\n",
    )
    .unwrap();
    let c = conf.display().to_string();
    sb.write(
        "mdstat",
        "Personalities : [raid1]\nmd98 : active raid1 sdc1[1] sdd1[0]\nunused devices: <none>\n",
    );
    sb.cycle("Raid1", &[&c, "/dev/md99"]);
    let calls: Vec<String> = sb.calls().into_iter().collect();
    assert_eq!(
        calls,
        vec![
            format!("mdadm --assemble /dev/md99 --config={c}"),
            "mdadm --stop /dev/md99".to_owned()
        ]
    );
    assert!(
        sb.read("mdstat").contains("md98 : active"),
        "other arrays untouched"
    );
    sb.run("Raid1", &["/nonexistent.conf", "/dev/md99", "start"])
        .fails();
}

#[test]
fn marker_cycle_events_and_failures() {
    let mut sb = Sandbox::new("marker");
    let dir = sb.state().join("marker");
    let d = dir.display().to_string();
    sb.cycle("Marker", &["web", &d]);
    let events = fs::read_to_string(dir.join("events")).unwrap();
    let words: Vec<Vec<&str>> = events
        .lines()
        .map(|l| l.split(' ').skip(1).collect())
        .collect();
    assert_eq!(
        words,
        vec![vec!["alice", "start", "web"], vec!["alice", "stop", "web"]]
    );
    // Nodes on one host are kept apart; the directory may come from HA_MARKER_DIR.
    sb.set("HA_MARKER_DIR", &d);
    sb.run("Marker", &["web", "start"]).ok();
    sb.set("HA_CURHOST", "bob");
    sb.run("Marker", &["web", "status"]).says("stopped");
    sb.run("Marker", &["web", "start"]).ok();
    assert!(dir.join("alice/web").exists() && dir.join("bob/web").exists());
    // Failure injection.
    fs::write(dir.join("fail-start-db"), "").unwrap();
    sb.run("Marker", &["db", "start"])
        .fails()
        .stderr_has("fails on purpose");
    sb.run("Marker", &["db", "status"]).says("stopped");
    fs::write(dir.join("bob/fail-stop-web"), "").unwrap();
    sb.run("Marker", &["web", "stop"]).fails();
    sb.set("HA_CURHOST", "alice");
    sb.run("Marker", &["web", "stop"]).ok();
    sb.run("Marker", &["../x", "start"]).fails();
}

// ---------------------------------------------------- real network namespaces

/// Two network namespaces joined by a veth pair, `hb0` in each, 10.249.N.1/24 in the
/// first and 10.249.N.2/24 in the second. Deleted when dropped.
struct NetnsPair {
    a: String,
    b: String,
    net: String,
}

impl NetnsPair {
    fn new(n: u8) -> Result<NetnsPair, String> {
        let id = std::process::id() % 100_000;
        let a = format!("hbrs{id}n{n}a");
        let b = format!("hbrs{id}n{n}b");
        let pair = NetnsPair {
            a: a.clone(),
            b: b.clone(),
            net: format!("10.249.{n}"),
        };
        let net = &pair.net;
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), a.clone()],
            vec!["netns".into(), "add".into(), b.clone()],
            vec![
                "link".into(),
                "add".into(),
                format!("{a}v"),
                "netns".into(),
                a.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                format!("{b}v"),
                "netns".into(),
                b.clone(),
            ],
        ];
        for s in &steps {
            ip(None, s)?;
        }
        for (ns, me) in [(&a, 1), (&b, 2)] {
            ip(Some(ns), &["link", "set", &format!("{ns}v"), "name", "hb0"])?;
            ip(
                Some(ns),
                &[
                    "addr",
                    "add",
                    &format!("{net}.{me}/24"),
                    "brd",
                    &format!("{net}.255"),
                    "dev",
                    "hb0",
                ],
            )?;
            ip(Some(ns), &["link", "set", "lo", "up"])?;
            ip(Some(ns), &["link", "set", "hb0", "up"])?;
        }
        Ok(pair)
    }

    fn addrs(&self) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.a, "-o", "-4", "addr", "show", "dev", "hb0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn ip<S: AsRef<str>>(ns: Option<&str>, args: &[S]) -> Result<(), String> {
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns]);
    }
    c.args(args.iter().map(AsRef::as_ref));
    let out = c.output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let shown: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        Err(format!(
            "ip {}: {}",
            shown.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// tcpdump listening for ARP in a namespace; killed (by pid) when dropped.
struct Capture {
    child: Child,
    out: PathBuf,
}

impl Capture {
    fn start(ns: &str, dir: &Path) -> Capture {
        let out = dir.join(format!("tcpdump-{ns}.out"));
        let err = dir.join(format!("tcpdump-{ns}.err"));
        let child = Command::new("ip")
            .args([
                "netns", "exec", ns, "tcpdump", "-i", "hb0", "-n", "-l", "-U", "arp",
            ])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .expect("tcpdump");
        let ready = wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&err)
                .unwrap_or_default()
                .contains("listening on")
        });
        assert!(
            ready,
            "tcpdump did not start: {}",
            fs::read_to_string(&err).unwrap_or_default()
        );
        Capture { child, out }
    }

    /// Wait until a line mentions `addr` as the announcing address.
    fn saw_announcement(&self, addr: &str) -> bool {
        // send_arp: "Request who-has A tell A" and "Reply A is-at MAC";
        // arping -U: "Request who-has A (ff:ff:ff:ff:ff:ff) tell A".
        let asks = format!("who-has {addr} ");
        let tells = format!("tell {addr},");
        let reply = format!("Reply {addr} is-at");
        wait_until(Duration::from_secs(10), || {
            let text = fs::read_to_string(&self.out).unwrap_or_default();
            text.lines()
                .any(|l| (l.contains(&asks) && l.contains(&tells)) || l.contains(&reply))
        })
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The announcing tools installed here, each as the HA_BIN_* settings selecting it.
fn garp_tools() -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let mut v = Vec::new();
    for p in [
        "/usr/libexec/heartbeat/send_arp",
        "/usr/lib/heartbeat/send_arp",
    ] {
        if Path::new(p).exists() {
            v.push(("send_arp", vec![("HA_BIN_SEND_ARP", p.to_owned())]));
            break;
        }
    }
    if have("arping") {
        v.push((
            "arping",
            vec![
                ("HA_BIN_SEND_ARP", "none".to_owned()),
                ("HA_BIN_ARPING", String::new()),
            ],
        ));
    }
    v
}

/// Can the namespace tests run here? Prints why not.
fn netns_ready() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        skip("network-namespace tests need root");
        return false;
    }
    for tool in ["ip", "tcpdump"] {
        if !have(tool) {
            skip(&format!("network-namespace tests need {tool}"));
            return false;
        }
    }
    true
}

/// A sandbox whose scripts run inside namespace `ns` with the real `ip`.
fn netns_run(sb: &Sandbox, ns: &str, script: &str, args: &[&str]) -> Run {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sh"])
        .arg(script_path(script))
        .args(args)
        .env_clear()
        .envs(sb.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("ip netns exec");
    Run::from(format!("[{ns}] {script} {}", args.join(" ")), out)
}

fn real_sandbox(tag: &str, tool: &[(&str, String)], background: bool) -> Sandbox {
    let mut sb = Sandbox::new(tag);
    sb.vars
        .retain(|(k, _)| !k.starts_with("HA_BIN_") && !k.starts_with("HA_ARP_"));
    sb.set("HA_ARP_COUNT", "2");
    if !background {
        sb.set("HA_ARP_BACKGROUND", "no");
    }
    for (k, v) in tool {
        if !v.is_empty() {
            sb.set(k, v);
        }
    }
    sb
}

fn netns_ipaddr(script: &str, n: u8, label: &str) {
    if !netns_ready() {
        return;
    }
    let tools = garp_tools();
    if tools.is_empty() {
        skip("no gratuitous ARP tool installed (resource-agents' send_arp or iputils-arping)");
        return;
    }
    let pair = NetnsPair::new(n).unwrap_or_else(|e| panic!("cannot make the namespaces: {e}"));
    let net = pair.net.clone();
    for (i, (name, tool)) in tools.iter().enumerate() {
        let vip = format!("{net}.{}", 10 + i);
        // send_arp in the background (the default), arping waited for: both modes run.
        let sb = real_sandbox(&format!("{script}-{name}"), tool, *name == "send_arp");
        let cap = Capture::start(&pair.b, sb.dir.path());
        netns_run(&sb, &pair.a, script, &[&vip, "status"]).says("stopped");
        netns_run(&sb, &pair.a, script, &[&vip, "start"]).ok();
        netns_run(&sb, &pair.a, script, &[&vip, "start"]).ok();
        netns_run(&sb, &pair.a, script, &[&vip, "status"]).says("running");
        let addrs = pair.addrs();
        let line = addrs
            .lines()
            .find(|l| l.contains(&format!("inet {vip}/24")))
            .unwrap_or_else(|| panic!("{addrs}"));
        let want = if label.is_empty() {
            " hb0\\".to_owned()
        } else {
            format!(" {label}\\")
        };
        assert!(
            line.contains(&want),
            "{script} with {name}: label {want:?} in {line:?}"
        );
        assert!(
            cap.saw_announcement(&vip),
            "{script} with {name}: no gratuitous ARP for {vip} seen:\n{}",
            cap.text()
        );
        // The address answers from the peer.
        let st = Command::new("ip")
            .args(["netns", "exec", &pair.b, "ping", "-c", "1", "-W", "2", &vip])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{vip} answers ping from the peer namespace");
        netns_run(&sb, &pair.a, script, &[&vip, "stop"]).ok();
        netns_run(&sb, &pair.a, script, &[&vip, "stop"]).ok();
        netns_run(&sb, &pair.a, script, &[&vip, "status"]).says("stopped");
        assert!(
            !pair.addrs().contains(&format!("inet {vip}/")),
            "{vip} removed"
        );
        println!(
            "{script}: {vip} added, announced with {name} and removed in {}",
            pair.a
        );
    }
}

#[test]
fn netns_ipaddr_real() {
    netns_ipaddr("IPaddr", 1, "hb0:0");
}

#[test]
fn netns_ipaddr2_real() {
    netns_ipaddr("IPaddr2", 2, "");
}

#[test]
fn netns_sendarp_real() {
    if !netns_ready() {
        return;
    }
    let tools = garp_tools();
    if tools.is_empty() {
        skip("no gratuitous ARP tool installed (resource-agents' send_arp or iputils-arping)");
        return;
    }
    let pair = NetnsPair::new(3).unwrap_or_else(|e| panic!("cannot make the namespaces: {e}"));
    let addr = format!("{}.1", pair.net);
    for (name, tool) in &tools {
        let sb = real_sandbox(&format!("sendarp-{name}"), tool, true);
        let cap = Capture::start(&pair.b, sb.dir.path());
        let spec = format!("{addr}/hb0");
        netns_run(&sb, &pair.a, "SendArp", &[&spec, "start"]).ok();
        netns_run(&sb, &pair.a, "SendArp", &[&spec, "status"]).says("running");
        assert!(
            cap.saw_announcement(&addr),
            "SendArp with {name}: nothing seen:\n{}",
            cap.text()
        );
        netns_run(&sb, &pair.a, "SendArp", &[&spec, "stop"]).ok();
        netns_run(&sb, &pair.a, "SendArp", &[&spec, "stop"]).ok();
        netns_run(&sb, &pair.a, "SendArp", &[&spec, "status"]).says("stopped");
        println!("SendArp: {addr} announced with {name} in {}", pair.a);
    }
}
