//! The test lab shared by the integration tests (`mod common;`).
//!
//! * configuration directories: [`HaCf`], [`Auth`], [`NodeDir`];
//! * hosts: [`NetnsPair`] (two network namespaces joined by a veth pair, interface `hb0` in each);
//! * nodes: [`RealNode`] (the reference Heartbeat 3.0.6 in a namespace) and [`OurNode`] (our
//!   binary, on loopback or in a namespace);
//! * observation: [`wait_for_log`] and friends, [`real_cl_status`];
//! * preconditions: [`require_root_or_skip`];
//! * the usual two-node set-up, one Marker group each: [`MarkerPair`] (`pair.rs`).
//!
//! Every guard cleans up in `Drop`, also when the test panics: nodes are killed by the pid the
//! harness started (plus, for the real daemon, its helper processes, found by its private mount
//! namespace), namespaces are deleted. Nothing here sends traffic anywhere but to loopback or to
//! addresses inside namespaces the test created.

#![allow(dead_code, unused_macros)]

/// `or_dump!(result, node, node...)`: the Ok value, or a panic with the error followed by the state
/// and log tails of the nodes (anything implementing [`NodeInfo`]). Needs `#[macro_use] mod common;`.
macro_rules! or_dump {
    ($res:expr, $($node:expr),+ $(,)?) => {
        match $res {
            Ok(v) => v,
            Err(e) => panic!(
                "{e}\n{}",
                $crate::common::dump(&mut [$(&mut $node as &mut dyn $crate::common::NodeInfo),+])
            ),
        }
    };
}

mod pair;
mod relay;
#[allow(unused_imports)] // not every test binary uses them
pub use pair::{MarkerPair, PairBuilder, LOOPBACK};
#[allow(unused_imports)]
pub use relay::{Impairment, RelayLab};

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The reference daemon (Debian package `heartbeat`).
pub const REAL_HB: &str = "/usr/libexec/heartbeat/heartbeat";
/// Our daemon, built by cargo for the integration tests.
pub const OUR_HB: &str = env!("CARGO_BIN_EXE_heartbeat");

/// The program run as "our" daemon: [`OUR_HB`], unless `HB_LAB_OUR_BIN` names a stand-in (see
/// `tests/lab/real-as-ours.sh`, which runs the real 3.0.6 behind our command line so the tests'
/// expectations can be checked against the reference).
pub fn our_hb() -> String {
    std::env::var("HB_LAB_OUR_BIN").unwrap_or_else(|_| OUR_HB.to_string())
}

/// Log lines by which a node says it dropped a packet that failed authentication: 3.0.6 writes
/// `authtoken does not match` / `netstring authentication failed` for a netstring packet and
/// `node [x] failed authentication` for a classic one.
pub const AUTH_REJECTION: &[&str] = &[
    "authtoken does not match",
    "authentication failed",
    "failed authentication",
];

// ---------------------------------------------------------------------------------------------
// Preconditions

/// True when the interop lab can run: root, the heartbeat package and the namespace tools.
/// Otherwise prints `SKIP: <test> needs root and the heartbeat package` and returns false — unless
/// `HB_REQUIRE_INTEROP=1` (set by CI), in which case a missing precondition fails the test.
pub fn require_root_or_skip(test: &str) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for path in [REAL_HB, "/usr/bin/cl_status"] {
        if !Path::new(path).exists() {
            missing.push(path.to_string());
        }
    }
    for tool in ["ip", "nsenter", "unshare", "bash"] {
        if !tool_exists(tool) {
            missing.push(format!("the `{tool}` command"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test} needs root and the heartbeat package (missing: {})",
        missing.join(", ")
    );
    if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("HB_REQUIRE_INTEROP=1 but {msg}");
    }
    // Straight to the process's stderr, past the test harness's output capture.
    let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    false
}

fn tool_exists(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Timings and configuration files

/// The timing directives written to ha.cf. [`Timing::FAST`] keeps interop tests short; 3.0.6
/// accepts it (an initdead under 10 s only earns three warning lines).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
}

impl Timing {
    pub const FAST: Timing = Timing {
        keepalive: Duration::from_millis(500),
        deadtime: Duration::from_millis(3000),
        warntime: Duration::from_millis(2000),
        initdead: Duration::from_millis(6000),
    };

    /// When a peer killed at time 0 may be declared dead: its last heartbeat left up to one
    /// keepalive before the kill, so not before deadtime - keepalive (less 0.2 s of slack). 3.0.6
    /// was observed to take about deadtime + keepalive (3.5 s with the fast timings), so the late
    /// side allows that plus 1.25 s for a busy two-core machine.
    pub fn death_window(&self) -> (Duration, Duration) {
        let early = self.deadtime - self.keepalive - Duration::from_millis(200);
        let late = self.deadtime + self.keepalive + Duration::from_millis(1250);
        (early, late)
    }

    /// 3.0.6 advertises deadtime + 2 s during its first 5 s; a node killed later than this
    /// after its start is declared dead after plain deadtime. The 5 s count from the daemon's
    /// own start, which a loaded machine delays by a second or more after the spawn the
    /// tests measure from (interop saw deaths 5.0-5.8 s after a kill at 6 s).
    pub const SETTLE: Duration = Duration::from_millis(7000);
}

/// An authentication method of authkeys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Md5,
    Sha1,
    Crc,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [AuthMethod::Md5, AuthMethod::Sha1, AuthMethod::Crc];

    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Md5 => "md5",
            AuthMethod::Sha1 => "sha1",
            AuthMethod::Crc => "crc",
        }
    }
}

/// The one key of an authkeys file (`auth 1` / `1 METHOD [KEY]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub method: AuthMethod,
    /// Ignored for crc (which takes no key).
    pub key: String,
}

impl Auth {
    pub fn new(method: AuthMethod, key: &str) -> Auth {
        Auth {
            method,
            key: key.to_string(),
        }
    }

    /// The lab's key for `method`.
    pub fn lab(method: AuthMethod) -> Auth {
        Auth::new(method, &format!("lab-{}-secret", method.name()))
    }

    /// A key under the same index that the holder of `self` must reject: the same method with
    /// another secret, or for crc (which has no secret) md5 with a secret.
    pub fn wrong(&self) -> Auth {
        match self.method {
            AuthMethod::Crc => Auth::new(AuthMethod::Md5, "not-the-lab-key"),
            m => Auth::new(m, "not-the-lab-key"),
        }
    }

    pub fn render(&self) -> String {
        match self.method {
            AuthMethod::Crc => "auth 1\n1 crc\n".to_string(),
            m => format!("auth 1\n1 {} {}\n", m.name(), self.key),
        }
    }

    /// Write the authkeys file with the given mode (0600 is what both daemons require).
    pub fn write(&self, path: &Path, mode: u32) {
        write_file(path, &self.render());
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    }
}

/// The ha.cf of a test node. `render` puts the log directives first so that everything after
/// them lands in the node's own files.
#[derive(Clone, Debug)]
pub struct HaCf {
    pub nodes: Vec<String>,
    /// Media lines, e.g. `ucast hb0 10.250.1.1` or `bcast hb0`.
    pub media: Vec<String>,
    /// Written before the media lines (3.0.6 ignores a udpport that follows them).
    pub udpport: Option<u16>,
    pub timing: Timing,
    /// Appended verbatim.
    pub extra: Vec<String>,
}

impl HaCf {
    pub fn new(nodes: &[&str], media: &[String]) -> HaCf {
        HaCf {
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            media: media.to_vec(),
            udpport: None,
            timing: Timing::FAST,
            extra: vec!["auto_failback off".into(), "crm off".into()],
        }
    }

    pub fn udpport(mut self, port: u16) -> HaCf {
        self.udpport = Some(port);
        self
    }

    pub fn render(&self, logfile: &Path, debugfile: &Path) -> String {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut s = String::new();
        let _ = writeln!(s, "logfile {}", logfile.display());
        let _ = writeln!(s, "debugfile {}", debugfile.display());
        let _ = writeln!(s, "keepalive {}", ms(self.timing.keepalive));
        let _ = writeln!(s, "deadtime {}", ms(self.timing.deadtime));
        let _ = writeln!(s, "warntime {}", ms(self.timing.warntime));
        let _ = writeln!(s, "initdead {}", ms(self.timing.initdead));
        if let Some(p) = self.udpport {
            let _ = writeln!(s, "udpport {p}");
        }
        for m in &self.media {
            let _ = writeln!(s, "{m}");
        }
        for n in &self.nodes {
            let _ = writeln!(s, "node {n}");
        }
        for e in &self.extra {
            let _ = writeln!(s, "{e}");
        }
        s
    }
}

/// `ucast IFACE ADDR` for every address: the same file serves every node (a node tolerates the
/// line that points at itself).
pub fn ucast_lines(iface: &str, addrs: &[&str]) -> Vec<String> {
    addrs.iter().map(|a| format!("ucast {iface} {a}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Directories

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A scratch directory under the system temp dir, removed on drop — kept when the test panics
/// (or with `HB_LAB_KEEP=1`) so the logs can be read; its path is then printed.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(label: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!(
            "hblab-{label}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        // The real daemon's helpers run as hacluster and must reach the files below.
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o755));
        TestDir { path }
    }

    pub fn node(&self, name: &str) -> NodeDir {
        NodeDir::new(&self.path, name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if thread::panicking() || std::env::var("HB_LAB_KEEP").as_deref() == Ok("1") {
            let _ = writeln!(
                std::io::stderr(),
                "lab: keeping {} for inspection",
                self.path.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// One node's files: `ha.d/` (ha.cf, authkeys, haresources), `var/` (its /var/lib/heartbeat),
/// `run/` (its /run), `log/` (ha-log, ha-debug and the captured stdout/stderr).
#[derive(Clone, Debug)]
pub struct NodeDir {
    pub name: String,
    pub root: PathBuf,
    /// The node's name as bytes when it is not `name` (a Latin-1 host name): the real
    /// daemon's host name and our `--node`.
    pub uname: Option<Vec<u8>>,
}

impl NodeDir {
    pub fn new(parent: &Path, name: &str) -> NodeDir {
        let d = NodeDir {
            name: name.to_string(),
            root: parent.join(name),
            uname: None,
        };
        for sub in [d.conf(), d.state(), d.run(), d.root.join("log")] {
            fs::create_dir_all(&sub).unwrap_or_else(|e| panic!("mkdir {}: {e}", sub.display()));
        }
        d
    }

    /// The same directory for a node whose name is these bytes (any encoding).
    pub fn named(mut self, uname: &[u8]) -> NodeDir {
        self.uname = Some(uname.to_vec());
        self
    }

    /// The node's name as the daemons get it.
    pub fn uname_bytes(&self) -> Vec<u8> {
        self.uname
            .clone()
            .unwrap_or_else(|| self.name.clone().into_bytes())
    }

    pub fn conf(&self) -> PathBuf {
        self.root.join("ha.d")
    }
    pub fn state(&self) -> PathBuf {
        self.root.join("var")
    }
    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn log(&self) -> PathBuf {
        self.root.join("log/ha-log")
    }
    pub fn debug_log(&self) -> PathBuf {
        self.root.join("log/ha-debug")
    }
    pub fn output(&self) -> PathBuf {
        self.root.join("log/output")
    }

    /// Write ha.cf (logging into this directory), authkeys (mode 0600) and haresources.
    pub fn write_config(&self, hacf: &HaCf, auth: &Auth, haresources: &str) {
        write_file(
            &self.conf().join("ha.cf"),
            &hacf.render(&self.log(), &self.debug_log()),
        );
        auth.write(&self.conf().join("authkeys"), 0o600);
        write_file(&self.conf().join("haresources"), haresources);
    }

    /// The generation in `hb_generation` (decimal, right-aligned), if the file is there.
    pub fn generation(&self) -> Option<u64> {
        fs::read_to_string(self.state().join("hb_generation"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

pub fn write_file(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------------
// Network namespaces

/// `ip netns add/del` are serialised: the first `ip netns add` on a machine sets up /run/netns
/// and two at once can trip over each other.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

/// Two test hosts, namespaces `PREFIX-a` (NET.1) and `PREFIX-b` (NET.2), joined by a veth pair
/// named `hb0` on both sides — what `netns-pair.sh up PREFIX NET` builds. PREFIX must be at most
/// 12 characters (interface names are `PREFIX-va`/`PREFIX-vb` while being set up). Drop kills
/// whatever still runs inside them and deletes them.
pub struct NetnsPair {
    pub prefix: String,
    pub net: String,
    /// Held for the pair's life: another checkout running the same test on this machine waits
    /// instead of deleting our namespaces as leftovers.
    _machine_lock: nix::fcntl::Flock<File>,
}

impl NetnsPair {
    pub fn new(prefix: &str, net: &str) -> NetnsPair {
        assert!(prefix.len() <= 12, "netns prefix {prefix:?} too long");
        let lock_path = std::env::temp_dir().join(format!("heartbeat-rs-netns-{prefix}.lock"));
        let lock_file =
            File::create(&lock_path).unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
        let machine_lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .unwrap_or_else(|(_, e)| panic!("flock {}: {e}", lock_path.display()));
        let pair = NetnsPair {
            prefix: prefix.to_string(),
            net: net.to_string(),
            _machine_lock: machine_lock,
        };
        let _guard = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // Left over by a run that was killed before its guards could run.
        pair.destroy();
        let (a, b) = (pair.ns_a(), pair.ns_b());
        let mut steps = vec![format!(
            "link add {prefix}-va type veth peer name {prefix}-vb"
        )];
        for (ns, side, host) in [(&a, "va", 1), (&b, "vb", 2)] {
            steps.extend([
                format!("netns add {ns}"),
                format!("link set {prefix}-{side} netns {ns}"),
                format!("-n {ns} link set {prefix}-{side} name hb0"),
                format!("-n {ns} addr add {net}.{host}/24 brd {net}.255 dev hb0"),
                format!("-n {ns} link set lo up"),
                format!("-n {ns} link set hb0 up"),
            ]);
        }
        for step in steps {
            let argv: Vec<String> = step.split_whitespace().map(str::to_string).collect();
            if let Err(e) = run_ok("ip", &argv) {
                pair.destroy();
                panic!("setting up namespaces {a}/{b}: {e}");
            }
        }
        pair
    }

    pub fn ns_a(&self) -> String {
        format!("{}-a", self.prefix)
    }
    pub fn ns_b(&self) -> String {
        format!("{}-b", self.prefix)
    }
    /// NET.host
    pub fn addr(&self, host: u8) -> String {
        format!("{}.{host}", self.net)
    }
    pub fn addr_a(&self) -> String {
        self.addr(1)
    }
    pub fn addr_b(&self) -> String {
        self.addr(2)
    }

    /// Add NET.host/24 to hb0 in namespace `ns` (a second node on one test host).
    pub fn add_addr(&self, ns: &str, host: u8) {
        let cidr = format!("{}/24", self.addr(host));
        run_ok("ip", &args(&["-n", ns, "addr", "add", &cidr, "dev", "hb0"]))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn destroy(&self) {
        // A veth still in the host namespace (a run killed half-way through `new`).
        if Path::new("/sys/class/net")
            .join(format!("{}-va", self.prefix))
            .exists()
        {
            let _ = run_ok(
                "ip",
                &args(&["link", "del", &format!("{}-va", self.prefix)]),
            );
        }
        for ns in [self.ns_a(), self.ns_b()] {
            if !Path::new("/run/netns").join(&ns).exists() {
                continue;
            }
            // Only processes this harness started can live in a namespace it created.
            for pid in netns_pids(&ns) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = run_ok("ip", &args(&["netns", "del", &ns]));
        }
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        let _guard = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        self.destroy();
    }
}

fn netns_pids(ns: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Run a command to completion; Err carries its stderr.
pub fn run_ok(prog: &str, argv: &[String]) -> Result<(), String> {
    let out = Command::new(prog)
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{prog} {}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Run a command with a time limit, returning (stdout, stderr, exit code; -1 if killed by a
/// signal or by the time limit).
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> (String, String, i32) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t_out = thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = t_out.join().unwrap_or_default();
    let err = t_err.join().unwrap_or_default();
    (out, err, status.and_then(|s| s.code()).unwrap_or(-1))
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// What the failure messages show about a node.
pub trait NodeInfo {
    fn describe(&mut self) -> String;
    /// The node's name and its log file.
    fn name_and_log(&self) -> (String, PathBuf);
}

/// Wait until each of two nodes has logged the other `active`, within `limit` from now; on
/// failure the message shows both nodes.
pub fn wait_mutually_active(a: &mut dyn NodeInfo, b: &mut dyn NodeInfo, limit: Duration) {
    let deadline = Instant::now() + limit;
    let ((an, alog), (bn, blog)) = (a.name_and_log(), b.name_and_log());
    for (log, peer) in [(alog, bn), (blog, an)] {
        let left = deadline.saturating_duration_since(Instant::now());
        let needle = format!("Status update for node {peer}: status active");
        if let Err(e) = wait_for_log(&log, &needle, left) {
            panic!("{e}\n{}", dump(&mut [a, b]));
        }
    }
}

/// A readable account of several nodes (state, log tail, captured output) for panic messages.
pub fn dump(nodes: &mut [&mut dyn NodeInfo]) -> String {
    nodes
        .iter_mut()
        .map(|n| n.describe())
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe_common(kind: &str, dir: &NodeDir, child: &mut Option<Child>) -> String {
    let state = match child {
        None => "not running (stopped by the test)".to_string(),
        Some(c) => match c.try_wait() {
            Ok(Some(st)) => format!("EXITED: {st}"),
            Ok(None) => format!("running as pid {}", c.id()),
            Err(e) => format!("unknown: {e}"),
        },
    };
    format!(
        "---- {kind} node {} ({state}); files in {}\n-- last lines of {}:\n{}\n-- last lines of {}:\n{}",
        dir.name,
        dir.root.display(),
        dir.log().display(),
        log_tail(&dir.log(), 25),
        dir.output().display(),
        log_tail(&dir.output(), 10),
    )
}

fn append_output(dir: &NodeDir) -> (Stdio, Stdio) {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.output())
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.output().display()));
    let g = f.try_clone().expect("dup");
    (Stdio::from(f), Stdio::from(g))
}

fn kill_and_reap(child: &mut Child) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
}

/// The reference Heartbeat 3.0.6 as node `dir.name` inside namespace `netns`, set up the way
/// `realhb-node.sh` does it: private mount and UTS namespaces (hostname = node name), `/etc/ha.d`
/// bound from `dir/ha.d`, `/var/lib/heartbeat` from `dir/var`, a fresh tmpfs on `/run`. It runs
/// with `-f`, so the process the harness spawns *is* the master control process (`ip netns exec`,
/// `unshare` and `sh` all exec); its helpers share its private mount namespace, which is how
/// `kill` finds them.
pub struct RealNode {
    pub dir: NodeDir,
    pub netns: String,
    child: Option<Child>,
    mntns: String,
    started: Instant,
}

impl RealNode {
    pub fn start(dir: &NodeDir, netns: &str) -> RealNode {
        prepare_real_dir(dir);
        let q = |p: PathBuf| shell_quote(&p.display().to_string());
        // Any bytes, as a host name may be: octal escapes for sh's printf.
        let set_host = match &dir.uname {
            None => format!("hostname {}", shell_quote(&dir.name)),
            Some(b) => format!(
                "printf '{}' > /proc/sys/kernel/hostname",
                b.iter().map(|c| format!("\\{c:03o}")).collect::<String>()
            ),
        };
        let script = format!(
            "set -e\n\
             {set_host}\n\
             mount --bind {conf} /etc/ha.d\n\
             mount --bind {var} /var/lib/heartbeat\n\
             mount -t tmpfs tmpfs /run\n\
             mkdir -p /var/lib/heartbeat/ccm /run/heartbeat/ccm /run/heartbeat/dopd /run/lock/subsys\n\
             chown hacluster:haclient /var/lib/heartbeat /run/heartbeat /run/heartbeat/ccm\n\
             exec {hb} -f\n",
            conf = q(dir.conf()),
            var = q(dir.state()),
            hb = REAL_HB,
        );
        let (out, err) = append_output(dir);
        let started = Instant::now();
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns, "unshare", "--mount", "--uts"])
            .args(["--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn real heartbeat: {e}"));
        // Wait for the exec chain to arrive at the daemon, then note its mount namespace.
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "real heartbeat {} in {netns} exited at once ({st}):\n{}",
                    dir.name,
                    log_tail(&dir.output(), 30)
                );
            }
            let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
            if exe.as_deref() == Some(Path::new(REAL_HB)) {
                break;
            }
            if Instant::now() > deadline {
                kill_and_reap(&mut child);
                panic!("real heartbeat {} did not start in time", dir.name);
            }
            thread::sleep(Duration::from_millis(10));
        }
        let mntns = fs::read_link(format!("/proc/{pid}/ns/mnt"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        RealNode {
            dir: dir.clone(),
            netns: netns.to_string(),
            child: Some(child),
            mntns,
            started,
        }
    }

    /// The master control process, while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    pub fn log(&self) -> PathBuf {
        self.dir.log()
    }

    /// Time since the last (re)start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// SIGKILL the master control process, then its helpers (left alone they would notice within
    /// ~2 s and exit; killing them at once lets a restart bind the port without racing them).
    pub fn kill(&mut self) {
        // The helpers are found while the master still lives: once its namespace is empty the
        // kernel may give the namespace's number to another test's new node, so scanning by it
        // afterwards could kill that node.
        let helpers = if self.mntns.is_empty() {
            Vec::new()
        } else {
            pids_in_mntns(&self.mntns)
        };
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c);
        }
        for &pid in &helpers {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let still_ours = |pid: i32| {
            fs::read_link(format!("/proc/{pid}/ns/mnt"))
                .is_ok_and(|ns| ns.display().to_string() == self.mntns)
        };
        while helpers.iter().any(|&p| still_ours(p)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        self.mntns.clear();
    }

    /// Start again with the same files (so the generation grows).
    pub fn restart(&mut self) {
        self.kill();
        *self = RealNode::start(&self.dir, &self.netns);
    }

    /// A live process of this node, to enter its namespaces with: the master control process
    /// as started, or, once 3.0.6 has restarted itself (after a healed partition it forks, the
    /// first master exits and the new one execs after deadtime + 1 s), whichever of its
    /// processes still lives in its private mount namespace.
    pub fn ns_pid(&self) -> Option<i32> {
        if self.mntns.is_empty() {
            return None;
        }
        let ours = |pid: i32| {
            fs::read_link(format!("/proc/{pid}/ns/mnt"))
                .is_ok_and(|ns| ns.display().to_string() == self.mntns)
        };
        match self.pid() {
            Some(p) if ours(p) => Some(p),
            _ => {
                // The top of the node's process tree: the one whose parent is not the node's.
                let pids = pids_in_mntns(&self.mntns);
                let ppid = |pid: i32| {
                    fs::read_to_string(format!("/proc/{pid}/stat"))
                        .ok()
                        .and_then(|st| {
                            let rest = st.rsplit_once(')')?.1.to_string();
                            rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                        })
                };
                pids.iter()
                    .copied()
                    .filter(|&p| ppid(p).is_some_and(|pp| !pids.contains(&pp)))
                    .min()
                    .or_else(|| pids.into_iter().min())
            }
        }
    }

    /// Send `sig` to the master control process.
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }

    /// Wait up to `limit` for the master process to exit on its own (after SIGTERM: it stops
    /// its helpers before it exits, so nothing is left to kill).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let c = self.child.as_mut()?;
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                // Its namespace may now be given to another node: never scan by it again.
                self.mntns.clear();
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        self.kill();
    }
}

impl NodeInfo for RealNode {
    fn describe(&mut self) -> String {
        describe_common("real 3.0.6", &self.dir, &mut self.child)
    }
    fn name_and_log(&self) -> (String, PathBuf) {
        (self.dir.name.clone(), self.log())
    }
}

/// `cl_status ARGS` on a real node, inside its namespaces (`nsenter -t PID -n -m -u`).
/// Returns (stdout, exit code); stderr is appended to stdout when the command fails.
pub fn real_cl_status(node: &RealNode, args: &[&str]) -> (String, i32) {
    let Some(pid) = node.ns_pid() else {
        return (format!("{} is not running", node.dir.name), -1);
    };
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid.to_string(), "-n", "-m", "-u", "cl_status"])
        .args(args);
    let (out, err, code) = run_with_timeout(&mut cmd, Duration::from_secs(15));
    if code == 0 {
        (out, code)
    } else {
        (format!("{out}{err}"), code)
    }
}

/// Ask `cl_status nodestatus NODE` on `on` until it prints `want` (the API only opens at
/// comm-up), for at most `limit`. Err carries the last answer.
pub fn wait_real_nodestatus(
    on: &RealNode,
    node: &str,
    want: &str,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let (out, code) = real_cl_status(on, &["nodestatus", node]);
        if out.trim() == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "cl_status nodestatus {node} on {}: got {:?} (exit {code}), want {want:?}",
                on.dir.name,
                out.trim()
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

fn prepare_real_dir(dir: &NodeDir) {
    for sub in ["cores/root", "cores/hacluster", "ccm"] {
        let p = dir.state().join(sub);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }
    // The notification scripts the daemon runs (harc, rc.d) and the resource scripts.
    for item in ["rc.d", "resource.d", "shellfuncs", "harc"] {
        let src = Path::new("/etc/ha.d").join(item);
        let dst = dir.conf().join(item);
        if src.exists() && !dst.exists() {
            let _ = run_ok(
                "cp",
                &args(&["-r", &src.display().to_string(), &dst.display().to_string()]),
            );
        }
    }
    run_ok(
        "chown",
        &args(&[
            "-R",
            "hacluster:haclient",
            &dir.state().display().to_string(),
        ]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn pids_in_mntns(mntns: &str) -> Vec<i32> {
    if mntns.is_empty() {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/ns/mnt"))
                .map(|l| l.display().to_string() == mntns)
                .unwrap_or(false)
        })
        .collect()
}

/// Our daemon: `heartbeat -f --confdir --statedir --rundir --node [--bind]`, optionally under
/// `ip netns exec NS` (which execs, so the spawned pid is the daemon's). Output goes to
/// `dir/log/output`. Drop sends SIGKILL to that pid.
pub struct OurNode {
    pub dir: NodeDir,
    pub netns: Option<String>,
    pub bind: Option<String>,
    child: Option<Child>,
    started: Instant,
}

impl OurNode {
    pub fn start(dir: &NodeDir, netns: Option<&str>, bind: Option<&str>) -> OurNode {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, &our_hb()]);
                c
            }
            None => Command::new(our_hb()),
        };
        cmd.arg("-f")
            .arg("--confdir")
            .arg(dir.conf())
            .arg("--statedir")
            .arg(dir.state())
            .arg("--rundir")
            .arg(dir.run())
            .arg("--node")
            .arg(std::ffi::OsStr::from_bytes(&dir.uname_bytes()));
        if let Some(b) = bind {
            cmd.arg("--bind").arg(b);
        }
        let (out, err) = append_output(dir);
        let started = Instant::now();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", our_hb()));
        OurNode {
            dir: dir.clone(),
            netns: netns.map(str::to_string),
            bind: bind.map(str::to_string),
            child: Some(child),
            started,
        }
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    pub fn log(&self) -> PathBuf {
        self.dir.log()
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Still running (not exited, not killed by the test)?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }

    /// Wait up to `limit` for the process to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let c = self.child.as_mut()?;
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c);
        }
    }

    /// Kill (if still running) and start again with the same files and options.
    pub fn restart(&mut self) {
        self.kill();
        *self = OurNode::start(&self.dir, self.netns.as_deref(), self.bind.as_deref());
    }
}

impl Drop for OurNode {
    fn drop(&mut self) {
        self.kill();
    }
}

impl NodeInfo for OurNode {
    fn describe(&mut self) -> String {
        describe_common("our", &self.dir, &mut self.child)
    }
    fn name_and_log(&self) -> (String, PathBuf) {
        (self.dir.name.clone(), self.log())
    }
}

/// Run our binary to completion with extra arguments (for `--check`, `-s`, `-k`), with a time
/// limit. Returns (stdout, stderr, exit code).
pub fn run_our(argv: &[&str], limit: Duration) -> (String, String, i32) {
    run_with_timeout(Command::new(our_hb()).args(argv), limit)
}

/// `--confdir D --statedir D --rundir D --node NAME` for `dir`.
pub fn our_dir_args(dir: &NodeDir) -> Vec<String> {
    vec![
        "--confdir".into(),
        dir.conf().display().to_string(),
        "--statedir".into(),
        dir.state().display().to_string(),
        "--rundir".into(),
        dir.run().display().to_string(),
        "--node".into(),
        dir.name.clone(),
    ]
}

// ---------------------------------------------------------------------------------------------
// Logs

/// How far a log has grown (its length in bytes; 0 if it does not exist yet). Pass to
/// [`wait_for_log_from`] to look only at what is written afterwards.
pub fn log_mark(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn read_from(path: &Path, from: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut buf);
    }
    // A log that shrank was truncated or replaced: read it whole.
    let from = if (buf.len() as u64) < from {
        0
    } else {
        from as usize
    };
    String::from_utf8_lossy(&buf[from..]).into_owned()
}

/// Poll `path` (every 50 ms) until a line contains `needle`; Ok(time waited) or Err with the
/// end of the log.
pub fn wait_for_log(path: &Path, needle: &str, timeout: Duration) -> Result<Duration, String> {
    wait_for_log_from(path, 0, needle, timeout)
}

/// [`wait_for_log`], looking only past `from` (see [`log_mark`]).
pub fn wait_for_log_from(
    path: &Path,
    from: u64,
    needle: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    wait_for_any_log_from(path, from, &[needle], timeout).map(|(d, _)| d)
}

/// Wait for a line containing any of `needles`; Ok((time waited, the line)).
pub fn wait_for_any_log_from(
    path: &Path,
    from: u64,
    needles: &[&str],
    timeout: Duration,
) -> Result<(Duration, String), String> {
    let t0 = Instant::now();
    loop {
        let text = read_from(path, from);
        if let Some(line) = text.lines().find(|l| needles.iter().any(|n| l.contains(n))) {
            return Ok((t0.elapsed(), line.to_string()));
        }
        if t0.elapsed() >= timeout {
            return Err(format!(
                "no line with {needles:?} in {} within {:.1} s; its end:\n{}",
                path.display(),
                timeout.as_secs_f64(),
                log_tail(path, 15)
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of `path` past `from` that contain `needle`.
pub fn log_lines_from(path: &Path, from: u64, needle: &str) -> Vec<String> {
    read_from(path, from)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

pub fn log_tail(path: &Path, n: usize) -> String {
    let text = read_from(path, 0);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    if lines.is_empty() {
        format!("   (empty or missing: {})", path.display())
    } else {
        lines[start..]
            .iter()
            .map(|l| format!("   {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Panics unless `elapsed` (from a kill to the peer's `is dead` line) lies in `timing`'s death
/// window.
pub fn assert_death_time(elapsed: Duration, timing: &Timing, what: &str) {
    let (early, late) = timing.death_window();
    assert!(
        elapsed >= early && elapsed <= late,
        "{what}: declared dead {:.2} s after the kill, expected between {:.2} and {:.2} s \
         (deadtime {:.1} s)",
        elapsed.as_secs_f64(),
        early.as_secs_f64(),
        late.as_secs_f64(),
        timing.deadtime.as_secs_f64()
    );
}

/// Sleep until `uptime()` of a node reaches `at_least`.
pub fn settle(uptime: Duration, at_least: Duration) {
    if uptime < at_least {
        thread::sleep(at_least - uptime);
    }
}

// ---------------------------------------------------------------------------------------------
// Ports, parallel cases

/// A UDP port that is free on every address in `addrs`, never handed out twice by this process
/// and below the kernel's ephemeral range (so no daemon's send socket grabs it meanwhile).
pub fn free_udp_port(addrs: &[Ipv4Addr]) -> u16 {
    static USED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
    let base = 20000 + (std::process::id() % 500) as u16 * 20;
    for port in (base..32000).chain(20000..base) {
        if used.contains(&port) {
            continue;
        }
        let free = addrs.iter().all(|a| UdpSocket::bind((*a, port)).is_ok());
        if free {
            used.insert(port);
            return port;
        }
    }
    panic!("no free UDP port between 20000 and 32000");
}

/// Run each case in its own thread (they use distinct namespaces and ports) and panic with every
/// failure, labelled, once all are done.
pub fn run_parallel<C: Send>(cases: Vec<(String, C)>, run: fn(C)) {
    let total = cases.len();
    let failures: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = cases
            .into_iter()
            .map(|(label, case)| (label, s.spawn(move || run(case))))
            .collect();
        handles
            .into_iter()
            .filter_map(|(label, h)| {
                h.join().err().map(|p| {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "(no message)".into());
                    format!("==== case {label} failed:\n{msg}")
                })
            })
            .collect()
    });
    if !failures.is_empty() {
        panic!(
            "{} of {total} cases failed:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Resource groups with the Marker resource

/// Whether Marker resource `svc` runs on `node` (the file Marker keeps while it runs).
pub fn marker_runs(marker: &Path, node: &str, svc: &str) -> bool {
    marker.join(node).join(svc).exists()
}

/// Poll `ok` until it holds; on time-out the message shows the nodes.
pub fn wait_until(
    what: &str,
    limit: Duration,
    nodes: &mut [&mut dyn NodeInfo],
    mut ok: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + limit;
    while !ok() {
        if Instant::now() >= deadline {
            panic!("timed out waiting for: {what}\n{}", dump(nodes));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Resource scripts for a node: ours get the repository's resource.d; a real node gets Debian's
/// plus our Marker.
pub fn install_resource_scripts(dir: &NodeDir, real: bool) {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("resource.d");
    let rd = dir.conf().join("resource.d");
    if !real {
        std::os::unix::fs::symlink(&ours, &rd).expect("resource.d link");
        return;
    }
    let _ = run_ok(
        "cp",
        &args(&["-r", "/etc/ha.d/resource.d", &rd.display().to_string()]),
    );
    fs::create_dir_all(&rd).expect("resource.d");
    for f in ["Marker", "rscfuncs.sh"] {
        fs::copy(ours.join(f), rd.join(f)).expect("copy Marker");
    }
}
