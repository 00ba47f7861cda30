//! The single-threaded mio loop: the only place where sockets, signals and the clock meet
//! the cluster state machine.

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Poll, Token};

use super::children::clients::Clients;
use super::children::hooks::Hooks;
use super::children::outdate::OutdateRuns;
use super::children::script_env;
use super::children::scripts::{self, ChildPool, ExitKind};
use super::control::fifo::FifoReader;
use super::control::{ConnId, ControlServer, Reply, Request};
use super::links::{Encoded, Link, Received};
use super::log_setup::{daemon_log_config, log_diagnostic};
use super::options::{Options, METRICS_FILE_INTERVAL_MS};
use super::os::paths::Paths;
use super::os::signals::{Signal, Signals};
use super::os::timer::{self, Clock, DeadlineTimer};
use super::os::watchdog::Watchdog;
use super::{log as hblog, os::daemon, os::notify, os::pidfile, os::state};
use crate::cluster::clients::dopd::DopdAction;
use crate::cluster::clients::ipfail::is_ipfail_program;
use crate::cluster::resources::{Op as ResourceOp, ResourceManager, ScriptResult};
use crate::cluster::{
    Admin, AdminOutcome, Cluster, ClusterAction, Identity, LogLevel, Membership, Now, Params,
    Transmit,
};
use crate::config::Resource;
use crate::config::{Config, MsgFmt};
use crate::media::udp::{self, OpenOptions};
use crate::status::ops::{self, OpsStats, Overview};
use crate::status::{ClusterView, RSC_NONE};
use crate::wire::Authenticator;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const SIGNAL_TOKEN: Token = Token(0);
/// The control socket's listener; its connections use Token(CONTROL_CONN_BASE + n).
const CONTROL_TOKEN: Token = Token(1);
/// The FIFO scripts write cluster messages into.
const FIFO_TOKEN: Token = Token(2);
/// The deadline timer (a timerfd): it only wakes the loop, whose turn then does what is due.
const TIMER_TOKEN: Token = Token(3);
/// Resource scripts' output pipes use tokens from here (below the control connections).
const CHILD_BASE: usize = 1 << 20;
const CONTROL_CONN_BASE: usize = 1 << 24;
/// rc.d hooks' output pipes (checked before the resource scripts' open-ended range).
const HOOK_BASE: usize = 1 << 23;
/// Medium i listens on Token(MEDIA_BASE + i).
const MEDIA_BASE: usize = 16;
/// What hb_standby / hb_takeover tell the user in legacy mode, where they move nothing.
const LEGACY_NOOP: &str = "note: auto_failback legacy (no auto_failback line in ha.cf): \
    standby and takeover requests move nothing in this mode, as in 3.0.6 (the log says \
    \"Standby mode only implemented when nice_failback on\"); set auto_failback on or off";
/// Largest datagram we read (3.0.6 refuses messages of 256 KiB and more).
const RECV_BUF: usize = 256 * 1024;

fn open_links(cfg: &Config, opts: &Options) -> Result<Vec<Link>, String> {
    let udp = OpenOptions {
        bind: opts.bind,
        port_override: None,
    };
    // Serial line locks: the system's lock directory, or the run directory of a test or demo.
    let lock_dir = if opts.paths.rundir == Paths::default().rundir {
        PathBuf::from(crate::media::serial::lock::DEFAULT_LOCK_DIR)
    } else {
        opts.paths.rundir.join("lock")
    };
    let _ = std::fs::create_dir_all(&lock_dir);
    cfg.hacf
        .media
        .iter()
        .map(|m| Link::open(m, &udp, &lock_dir, cfg.hacf.msgfmt == MsgFmt::Classic))
        .collect()
}

/// `/proc/loadavg`'s line, reread from the start of the open file (no open per read).
fn read_loadavg(file: &Option<std::fs::File>) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let f = file.as_ref()?;
    let mut buf = [0u8; 128];
    let n = f.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()
        .map(|s| s.trim().to_string())
}

/// The deadline timer in the poll set; without it the loop falls back to poll's timeout.
fn open_timer(poll: &Poll) -> Option<DeadlineTimer> {
    let made = DeadlineTimer::new().and_then(|t| {
        poll.registry()
            .register(
                &mut mio::unix::SourceFd(&t.raw_fd()),
                TIMER_TOKEN,
                mio::Interest::READABLE,
            )
            .map(|_| t)
    });
    match made {
        Ok(t) => Some(t),
        Err(e) => {
            hblog::emit(
                LogLevel::Error,
                &format!("cannot create the deadline timer: {e}; using poll's timeout"),
            );
            None
        }
    }
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok()
    {
        u64::from_ne_bytes(b)
    } else {
        std::process::id() as u64
            ^ SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
    }
}

struct Daemon {
    opts: Options,
    node: String,
    cfg: Config,
    poll: Poll,
    links: Vec<Link>,
    /// Membership and resource manager: everything but I/O.
    cluster: Cluster,
    clock: Clock,
    /// Wakes the loop at the next deadline, to the nanosecond; None if it could not be made
    /// (logged), then poll's millisecond timeout does it.
    timer: Option<DeadlineTimer>,
    /// `/proc/loadavg`, kept open and reread in place.
    loadavg: Option<std::fs::File>,
    last_loadavg: u64,
    exit: Option<u8>,
    /// `cl_status`'s socket; None if it could not be opened (logged).
    control: Option<ControlServer>,
    /// `<statedir>/fifo`; None if it could not be opened (logged).
    fifo: Option<FifoReader>,
    /// `watchdog` from ha.cf, tickled with every status message we send.
    watchdog: Option<Watchdog>,
    /// `respawn` / `failfast` clients, started at comm-up.
    clients: Clients,
    /// Resource script runs.
    children: ChildPool,
    /// The site's rc.d hooks (what 3.0.6 runs through harc).
    hooks: Hooks,
    /// The service manager's watchdog (`WATCHDOG_USEC`), pinged from the loop's timer.
    sd_watchdog: Option<notify::Watchdog>,
    /// The built-in dopd's `drbdadm outdate` runs, and the control connections of
    /// `drbd-peer-outdater` waiting for their answer (by request number).
    outdates: OutdateRuns,
    outdate_conns: std::collections::BTreeMap<u64, ConnId>,
    /// Counters and takeover times for `hb_status` and the metrics.
    ops: OpsStats,
    /// `--metrics-file`: the textfile-collector file and when it is next written.
    metrics_file: Option<(PathBuf, u64)>,
}

/// Run the daemon until it stops; the exit code. Every log line is written when it returns.
pub fn run(opts: &Options, node: String, cfg: Config) -> u8 {
    let code = run_daemon(opts, node, cfg);
    hblog::flush();
    code
}

fn run_daemon(opts: &Options, node: String, cfg: Config) -> u8 {
    let pid = std::process::id();
    // Without CAP_SYS_RESOURCE the title stays the command line we were started with; the
    // process name is always `heartbeat` (the executable's name), as with 3.0.6.
    let _ = daemon::set_process_title(daemon::MASTER_TITLE);
    hblog::emit(
        LogLevel::Info,
        &format!("heartbeat: version {}", super::VERSION),
    );
    if cfg.hacf.realtime && opts.realtime {
        // Before the switch, so the writer thread stays at normal priority.
        hblog::write_files_in_background();
        daemon::lock_memory_and_realtime(cfg.hacf.rtprio);
    }
    daemon::set_coredumps(cfg.hacf.coredumps);
    // `env NAME=value`: HA_NAME in the daemon's own environment, as 3.0.6's setenv, so that
    // every child has it (respawn clients, hooks, scripts), byte for byte.
    for (name, value) in &cfg.hacf.env {
        std::env::set_var(format!("HA_{name}"), crate::config::bytes::to_os(value));
    }
    let clock = Clock::start();
    let statedir = &opts.paths.statedir;
    let generation = match state::next_generation(
        statedir,
        cfg.hacf.generation_from_time,
        clock.now().unix_secs,
    ) {
        Ok((g, first)) => {
            if first {
                hblog::emit(
                    LogLevel::Warn,
                    &format!("No Previous generation - starting at {g}"),
                );
            }
            g
        }
        Err(e) => {
            hblog::emit(
                LogLevel::Error,
                &format!(
                    "Cannot write generation file in {}: {e}",
                    statedir.display()
                ),
            );
            return 1;
        }
    };
    hblog::emit(
        LogLevel::Info,
        &format!("Heartbeat generation: {generation}"),
    );
    let from_name = if cfg.hacf.uuid_from_nodename {
        Some(node.as_str())
    } else {
        None
    };
    let uuid = match state::node_uuid(statedir, from_name) {
        Ok((u, created)) => {
            if created {
                hblog::emit(
                    LogLevel::Info,
                    "No uuid found for current node - generating a new uuid.",
                );
            }
            u
        }
        Err(e) => {
            hblog::emit(
                LogLevel::Error,
                &format!(
                    "Cannot read or create {}: {e}",
                    statedir.join("hb_uuid").display()
                ),
            );
            return 1;
        }
    };
    if let Err(e) = pidfile::write(&opts.paths.pidfile(), pid as i32) {
        hblog::emit(
            LogLevel::Error,
            &format!(
                "Cannot write pid file {}: {e}",
                opts.paths.pidfile().display()
            ),
        );
        return 4;
    }
    if let Err(e) = daemon::enter_core_dir(statedir) {
        let dir = statedir.join("cores/root");
        hblog::emit(
            LogLevel::Error,
            &format!("Cannot chdir to [{}]: {e}", dir.display()),
        );
    }
    let poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            hblog::emit(
                LogLevel::Error,
                &format!("cannot create the event loop: {e}"),
            );
            return 1;
        }
    };
    let mut signals = match Signals::new(poll.registry(), SIGNAL_TOKEN) {
        Ok(s) => s,
        Err(e) => {
            hblog::emit(
                LogLevel::Error,
                &format!("cannot set up signal handling: {e}"),
            );
            return 1;
        }
    };
    let mut links = match open_links(&cfg, opts) {
        Ok(l) => l,
        Err(e) => {
            hblog::emit(LogLevel::Error, &e);
            return 1;
        }
    };
    if let Err(e) = register_links(&poll, &mut links) {
        hblog::emit(LogLevel::Error, &format!("cannot register media: {e}"));
        return 1;
    }
    let control = open_control(&poll, opts);
    let fifo = open_fifo(&poll, &opts.paths.statedir);
    let watchdog = cfg
        .hacf
        .watchdog
        .as_deref()
        .map(|p| Watchdog::open(p, cfg.hacf.deadtime_ms));
    let params = Params::from_config(&cfg.hacf, &node);
    let id = Identity {
        name: node.clone(),
        uuid,
        generation,
    };
    let auth = Authenticator::new(cfg.authkeys.clone());
    let now = clock.now();
    let membership = Membership::new(params, id, auth, now, seed());
    // The resource manager (legacy or negotiated); None with `-M`.
    let rm = resource_manager(opts, &cfg, &node);
    let mut cluster = Cluster::new(now, membership, rm);
    cluster.set_stonith(
        now,
        super::children::stonith::device(cfg.hacf.stonith.as_ref()),
    );
    for (i, l) in links.iter().enumerate() {
        cluster.set_own_link(now, i, l.own_side_up());
    }
    // `respawn` of ipfail (links.md 4.5) or dopd runs built in: no child process.
    let is_dopd = |c: &crate::config::hacf::ClientChild| {
        std::path::Path::new(&c.path).file_name() == Some(std::ffi::OsStr::new("dopd"))
    };
    let is_ipfail =
        |c: &crate::config::hacf::ClientChild| !c.failfast && is_ipfail_program(&c.path);
    let (builtin, children): (Vec<_>, Vec<_>) = cfg
        .hacf
        .clients
        .iter()
        .cloned()
        .partition(|c| is_ipfail(c) || is_dopd(c));
    if builtin.iter().any(is_ipfail) {
        cluster.enable_ipfail();
    }
    if let Some(d) = builtin.iter().find(|c| is_dopd(c)) {
        cluster.enable_dopd_as(&d.path);
    }
    let clients = Clients::new(&children);
    let links_len = links.len();
    let timer = open_timer(&poll);
    let mut d = Daemon {
        opts: opts.clone(),
        node,
        cfg,
        poll,
        links,
        cluster,
        clock,
        timer,
        loadavg: std::fs::File::open("/proc/loadavg").ok(),
        last_loadavg: 0,
        exit: None,
        control,
        fifo,
        watchdog,
        clients,
        children: ChildPool::new(CHILD_BASE),
        hooks: Hooks::new(&opts.paths, HOOK_BASE),
        sd_watchdog: notify::Watchdog::from_env(Instant::now()),
        outdates: OutdateRuns::default(),
        outdate_conns: Default::default(),
        ops: OpsStats::new(now.mono_ms, links_len),
        metrics_file: opts.metrics_file.clone().map(|p| (p, 0)),
    };
    d.refresh_loadavg(now);
    d.read_test_opts();
    d.drain();
    // Up for the service manager once the media are open; comm-up may take initdead.
    notify::ready();
    notify::status("Media open; waiting for the cluster (initdead)");
    d.main_loop(&mut signals)
}

/// The resource manager for this configuration, if it manages resources.
fn resource_manager(opts: &Options, cfg: &Config, node: &str) -> Option<ResourceManager> {
    if !opts.manage_resources {
        return None;
    }
    Some(ResourceManager::new(
        node,
        cfg.groups.clone(),
        cfg.hacf.auto_failback,
    ))
}

/// Create (if needed) and open the FIFO; without it the daemon runs, scripts that write to it
/// would block (logged).
fn open_fifo(poll: &Poll, statedir: &std::path::Path) -> Option<FifoReader> {
    let path = state::fifo_path(statedir);
    match state::ensure_fifo(statedir) {
        Ok(true) => hblog::emit(
            LogLevel::Info,
            &format!("Creating FIFO {}.", path.display()),
        ),
        Ok(false) => {}
        Err(e) => {
            hblog::emit(
                LogLevel::Error,
                &format!("Cannot create FIFO {}: {e}", path.display()),
            );
            return None;
        }
    }
    let reader = FifoReader::open(&path).and_then(|r| {
        let fd = std::os::fd::AsRawFd::as_raw_fd(r.file());
        poll.registry()
            .register(
                &mut mio::unix::SourceFd(&fd),
                FIFO_TOKEN,
                mio::Interest::READABLE,
            )
            .map(|_| r)
    });
    match reader {
        Ok(r) => Some(r),
        Err(e) => {
            hblog::emit(
                LogLevel::Error,
                &format!("Cannot open FIFO {}: {e}", path.display()),
            );
            None
        }
    }
}

/// Open the control socket; without it the daemon still runs (cl_status then says stopped).
fn open_control(poll: &Poll, opts: &Options) -> Option<ControlServer> {
    let path = opts.paths.control_socket();
    match ControlServer::open(&path, poll.registry(), CONTROL_TOKEN, CONTROL_CONN_BASE) {
        Ok(c) => Some(c),
        Err(e) => {
            hblog::emit(
                LogLevel::Error,
                &format!("Cannot open the control socket {}: {e}", path.display()),
            );
            None
        }
    }
}

fn register_links(poll: &Poll, links: &mut [Link]) -> std::io::Result<()> {
    for (i, l) in links.iter_mut().enumerate() {
        l.register(poll.registry(), Token(MEDIA_BASE + i))?;
    }
    Ok(())
}

impl Daemon {
    fn main_loop(&mut self, signals: &mut Signals) -> u8 {
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            if let Some(code) = self.exit {
                return code;
            }
            let timeout = self.arm_next_deadline();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != ErrorKind::Interrupted {
                    hblog::emit(LogLevel::Error, &format!("poll failed: {e}"));
                    return 1;
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    SIGNAL_TOKEN => {
                        for s in signals.pending() {
                            self.on_signal(s);
                        }
                    }
                    FIFO_TOKEN => self.on_fifo(),
                    TIMER_TOKEN => {
                        if let Some(t) = self.timer.as_mut() {
                            t.fired();
                        }
                    }
                    t if self.control.as_ref().is_some_and(|c| c.owns(t)) => self.on_control(t),
                    t if self.hooks.owns(t) => self.hooks.on_readable(self.poll.registry(), t),
                    t if self.children.owns(t) => {
                        self.children.on_readable(self.poll.registry(), t)
                    }
                    Token(t) if t >= MEDIA_BASE => self.read_medium(t - MEDIA_BASE, &mut buf),
                    _ => {}
                }
            }
            let now = self.clock.now();
            for i in 0..self.links.len() {
                if self.links[i].next_timer().is_some_and(|t| t <= now.mono_ms) {
                    self.links[i].on_timer(
                        self.poll.registry(),
                        Token(MEDIA_BASE + i),
                        now.mono_ms,
                    );
                }
            }
            if self
                .cluster
                .poll_timeout()
                .is_some_and(|t| t <= now.mono_ms)
            {
                self.refresh_loadavg(now);
                self.cluster.handle_timeout(now);
            }
            // Scripts past their time limit are killed; their exit arrives with SIGCHLD.
            self.children.enforce_timeouts(Instant::now());
            self.hooks.enforce_timeouts(Instant::now());
            self.drain();
            if let Some(c) = self.control.as_mut() {
                for conn in c.expire(Instant::now()) {
                    if self.outdate_conns.remove(&conn.number()).is_some() {
                        self.cluster.dopd_request_gone(conn.number());
                    }
                }
            }
            if let Some(w) = self.sd_watchdog.as_mut() {
                w.poll(Instant::now());
            }
            self.write_metrics_file();
        }
    }

    /// The next deadline of anything (cluster, media, scripts, control connections, the
    /// service manager's watchdog), armed on the timer; the poll timeout to use (None with
    /// a working timer: it alone wakes us).
    fn arm_next_deadline(&mut self) -> Option<Duration> {
        let mut at: Option<u64> = self.next_timer().map(|ms| self.clock.instant_of(ms));
        let mut consider = |t: u64| at = Some(at.map_or(t, |a| a.min(t)));
        if let Some(d) = self.control.as_ref().and_then(|c| c.next_deadline()) {
            consider(self.clock.instant_of_std(d));
        }
        if let Some(w) = &self.sd_watchdog {
            consider(self.clock.instant_of_std(w.deadline()));
        }
        let armed = match self.timer.as_mut().map(|t| t.set(at)) {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                hblog::emit(
                    LogLevel::Error,
                    &format!("cannot arm the deadline timer: {e}; using poll's timeout"),
                );
                self.timer = None;
                false
            }
            None => false,
        };
        if armed {
            return None;
        }
        let now = timer::monotonic_ns();
        at.map(|t| Duration::from_nanos(t.saturating_sub(now)))
    }

    /// `--metrics-file`: rewrite it (a temporary file renamed over it) when due.
    fn write_metrics_file(&mut self) {
        let now = self.clock.now().mono_ms;
        let Some((path, due)) = self.metrics_file.as_mut() else {
            return;
        };
        if now < *due {
            return;
        }
        *due = now + METRICS_FILE_INTERVAL_MS;
        let path = path.clone();
        let text = self.metrics();
        if let Err(e) = super::os::metrics_file::write_atomically(&path, &text) {
            hblog::emit(
                LogLevel::Warn,
                &format!("Cannot write metrics file {}: {e}", path.display()),
            );
        }
    }

    fn overview(&self) -> Overview {
        Overview::build(
            &self.cluster,
            &self.cfg,
            &self.ops,
            super::VERSION_STRING,
            self.opts.manage_resources,
            self.clock.now().mono_ms,
        )
    }

    fn metrics(&self) -> String {
        ops::metrics_text(&self.cluster, &self.cfg, &self.ops, &self.overview())
    }

    /// The earliest moment (cluster ms) the cluster, a medium, a script's time limit or the
    /// metrics file needs attention.
    fn next_timer(&self) -> Option<u64> {
        let media = self.links.iter().filter_map(Link::next_timer);
        let children = self
            .children
            .next_deadline()
            .into_iter()
            .chain(self.hooks.next_deadline())
            .min()
            .map(|d| {
                let now = self.clock.now().mono_ms;
                // Rounded up: the limit is enforced once it has passed.
                now + d
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000) as u64
            });
        let metrics = self.metrics_file.as_ref().map(|(_, due)| *due);
        self.cluster
            .poll_timeout()
            .into_iter()
            .chain(media)
            .chain(children)
            .chain(metrics)
            .min()
    }

    /// Scripts wrote to the FIFO: each message goes to the cluster (and to this node's own
    /// resource manager), as with the original.
    fn on_fifo(&mut self) {
        let Some(fifo) = self.fifo.as_mut() else {
            return;
        };
        for m in fifo.read_messages() {
            match m {
                Ok(msg) => {
                    let now = self.clock.now();
                    self.cluster.send_message(now, msg);
                }
                Err(e) => hblog::emit(LogLevel::Error, &format!("Bad message in the FIFO: {e}")),
            }
        }
        self.drain();
    }

    /// A control socket event: answer the requests it completed.
    fn on_control(&mut self, token: Token) {
        let Some(ctl) = self.control.as_mut() else {
            return;
        };
        for (conn, req) in ctl.handle_event(token) {
            let reply = match req {
                Request::Status => match self.cluster_view() {
                    Some(v) => Reply::View(v),
                    None => Reply::Closed,
                },
                Request::Overview => Reply::Text(self.overview().to_json()),
                Request::Metrics => Reply::Text(self.metrics()),
                Request::Outdate { peer, resource, .. } => {
                    if !self.cluster.is_comm_up() {
                        Reply::Closed
                    } else {
                        self.outdate_conns.insert(conn.number(), conn);
                        let now = self.clock.now();
                        self.cluster
                            .dopd_request(now, conn.number(), &peer, &resource);
                        self.drain();
                        continue;
                    }
                }
                Request::Standby(w) | Request::Takeover(w) => {
                    let req = if matches!(req, Request::Standby(_)) {
                        Admin::Standby(w)
                    } else {
                        Admin::Takeover(w)
                    };
                    let now = self.clock.now();
                    match self.cluster.handle_admin(now, req) {
                        Ok(AdminOutcome::NoEffectInLegacyMode) => Reply::Note(LEGACY_NOOP.into()),
                        Ok(AdminOutcome::Sent) => Reply::Done,
                        Err(e) => Reply::Error(e.to_string()),
                    }
                }
            };
            if let Some(ctl) = self.control.as_mut() {
                ctl.respond(conn, reply);
            }
        }
    }

    /// What `cl_status` shows; None until comm-up (3.0.6's API opens only then, so
    /// `cl_status hbstatus` says "stopped" during initdead, which scripts rely on).
    fn cluster_view(&self) -> Option<ClusterView> {
        if !self.cluster.is_comm_up() {
            return None;
        }
        let rscstatus = self
            .opts
            .manage_resources
            .then(|| self.cluster.rscstatus().unwrap_or(RSC_NONE));
        let mut view = ClusterView::build(
            self.cluster.membership(),
            &self.cfg.hacf,
            super::VERSION_STRING,
            rscstatus,
            hblog::debug_level(),
        );
        // The built-in clients are this node's API clients (`clientstatus <me> ipfail`); the
        // peers' are what they said (`clientstatus <peer> ipfail`).
        for (node, client, online) in self.cluster.client_statuses() {
            view.clients.push(crate::status::ClientView {
                node,
                client,
                status: if online { "online" } else { "offline" }.into(),
            });
        }
        Some(view)
    }

    fn read_medium(&mut self, i: usize, buf: &mut [u8]) {
        loop {
            let now = self.clock.now();
            let Some(l) = self.links.get_mut(i) else {
                return;
            };
            match l.on_ready(self.poll.registry(), now.mono_ms, buf) {
                Received::Datagram(n) => self.take_packet(now, i, &buf[..n]),
                Received::Packets(packets) => {
                    for p in packets {
                        self.take_packet(now, i, &p);
                    }
                    return;
                }
                Received::Drained => return,
            }
        }
    }

    fn take_packet(&mut self, now: Now, link: usize, packet: &[u8]) {
        self.ops.received(link);
        self.cluster.handle_datagram(now, link, packet);
        self.drain();
    }

    fn refresh_loadavg(&mut self, now: Now) {
        // The kernel computes the load average every 5 s: reading it more often finds the
        // same text.
        if now.mono_ms >= self.last_loadavg + 5000 || self.last_loadavg == 0 {
            if let Some(l) = read_loadavg(&self.loadavg) {
                self.cluster.set_load_average(&l);
            }
            self.last_loadavg = now.mono_ms.max(1);
        }
    }

    /// Carry out everything the state machine asked for.
    fn drain(&mut self) {
        while let Some(a) = self.cluster.poll_action() {
            let now = self.clock.now();
            self.ops.on_action(now.mono_ms, now.unix_secs, &a);
            if let ClusterAction::RunScript {
                job, resource, op, ..
            } = &a
            {
                let group = ops::group_of(&self.cfg.groups, &resource.spec).unwrap_or("");
                self.ops
                    .script_started(now.mono_ms, now.unix_secs, *job, group, *op);
            }
            match a {
                ClusterAction::Transmit(t) => {
                    if t.is_status() {
                        if let Some(w) = self.watchdog.as_mut() {
                            w.tickle();
                        }
                    }
                    self.send(&t)
                }
                ClusterAction::Log(level, text) => hblog::emit(level, &text),
                ClusterAction::ClientLog {
                    client,
                    level,
                    text,
                } => hblog::emit_as(Some(&client), level, &text),
                ClusterAction::RunScript {
                    job,
                    resource,
                    op,
                    time_limit_ms,
                } => self.run_script(job, &resource, op, time_limit_ms),
                ClusterAction::RunHook {
                    job,
                    name,
                    arg,
                    env,
                    time_limit_ms,
                } => self.run_hook(job, &name, &arg, env, time_limit_ms),
                ClusterAction::Notify(n) => self.hooks.push(n),
                ClusterAction::RunStonith {
                    job,
                    op,
                    args,
                    time_limit_ms,
                } => {
                    let spec = super::children::stonith::job(job, &op, args, time_limit_ms);
                    if let Err(f) = self
                        .children
                        .spawn(self.poll.registry(), spec, Instant::now())
                    {
                        let now = self.clock.now();
                        let r = ScriptResult::Failed(format!("{:?}", f.exit));
                        self.cluster.script_done(now, job, r);
                    }
                }
                ClusterAction::CommUp => {
                    notify::status(&format!("Communication up; {} is active", self.node));
                    self.clients.start_all();
                }
                ClusterAction::ShutdownComplete => {
                    self.clients.stop_all(Duration::from_secs(10));
                    hblog::emit(
                        LogLevel::Info,
                        &format!("{} Heartbeat shutdown complete.", self.node),
                    );
                    self.exit = Some(0);
                }
                ClusterAction::NodeStatus(..)
                | ClusterAction::NodeDead(_)
                | ClusterAction::NodeReturned(_)
                | ClusterAction::NodeRestarted(_)
                | ClusterAction::LinkStatus { .. } => {}
            }
        }
        if self.drain_dopd() {
            // An outdate that could not start was answered: its message is queued.
            self.drain();
            return;
        }
        self.pump_hooks();
    }

    /// Carry out the built-in dopd's requests: answer waiting outdaters, start outdate runs.
    /// True if the cluster was given something (an outdate's immediate end).
    fn drain_dopd(&mut self) -> bool {
        let mut fed = false;
        while let Some(a) = self.cluster.poll_dopd() {
            match a {
                DopdAction::Answer { request, code } => {
                    if let Some(conn) = self.outdate_conns.remove(&request) {
                        if let Some(ctl) = self.control.as_mut() {
                            ctl.respond(conn, Reply::Code(code));
                        }
                    }
                    self.cluster.dopd_request_gone(request);
                }
                DopdAction::RunOutdate { job, resource } => {
                    if let Some(end) = self.outdates.start(job, &resource) {
                        let now = self.clock.now();
                        self.cluster.outdate_done(now, job, end);
                        fed = true;
                    }
                }
                DopdAction::Send(_) | DopdAction::Log(..) => {}
            }
        }
        fed
    }

    /// Start the next rc.d hook if nothing else runs.
    fn pump_hooks(&mut self) {
        let busy = self.children.running() > 0;
        let env = || {
            let mut env = script_env::base(
                &self.cfg.hacf,
                &self.opts.paths,
                &self.node,
                hblog::debug_level(),
            );
            env.push((
                "HA_OSTATUS".into(),
                self.cluster.membership().own_status().as_str().into(),
            ));
            env
        };
        self.hooks.pump(self.poll.registry(), busy, &env);
    }

    /// Start a resource script; results known at once (no such script, could not start) go
    /// back to the cluster in the same turn.
    fn run_script(&mut self, job: u64, resource: &Resource, op: ResourceOp, limit_ms: u64) {
        let dirs = [self.opts.paths.resource_dir(), PathBuf::from("/etc/init.d")];
        let immediate = match scripts::find_script(&resource.script, &dirs) {
            None => Some(ScriptResult::NotFound),
            Some(program) => {
                hblog::emit(
                    LogLevel::Info,
                    &format!(
                        "Running {} {} {}",
                        program.display(),
                        resource.args.join(" "),
                        op.as_str()
                    )
                    .replace("  ", " "),
                );
                let mut args = resource.args.clone();
                args.push(op.as_str().to_string());
                let job_spec = scripts::Job {
                    id: job,
                    program,
                    args,
                    env: script_env::base(
                        &self.cfg.hacf,
                        &self.opts.paths,
                        &self.node,
                        hblog::debug_level(),
                    ),
                    timeout: Duration::from_millis(limit_ms),
                    label: format!("{}({})", resource.script, resource.spec),
                };
                self.children
                    .spawn(self.poll.registry(), job_spec, Instant::now())
                    .err()
                    .map(|f| ScriptResult::Failed(format!("{:?}", f.exit)))
            }
        };
        if let Some(r) = immediate {
            let now = self.clock.now();
            self.ops.script_done(now.mono_ms, job, false);
            self.cluster.script_done(now, job, r);
        }
    }

    /// A site hook the resource manager waits for (`rc.d/local_giveip`): run like a resource
    /// script, so that the group work waits for it; none there is `NotFound`.
    fn run_hook(
        &mut self,
        job: u64,
        name: &str,
        arg: &str,
        extra: Vec<(String, String)>,
        limit_ms: u64,
    ) {
        let program = self.opts.paths.confdir.join("rc.d").join(name);
        let runnable = std::fs::metadata(&program)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        let immediate = if !runnable {
            Some(ScriptResult::NotFound)
        } else {
            hblog::emit(
                LogLevel::Info,
                &format!("Running {} {arg}", program.display()),
            );
            let mut env = script_env::base(
                &self.cfg.hacf,
                &self.opts.paths,
                &self.node,
                hblog::debug_level(),
            );
            env.extend(extra);
            let job_spec = scripts::Job {
                id: job,
                program,
                args: vec![arg.to_string()],
                env,
                timeout: Duration::from_millis(limit_ms),
                label: format!("rc.d/{name}"),
            };
            self.children
                .spawn(self.poll.registry(), job_spec, Instant::now())
                .err()
                .map(|f| ScriptResult::Failed(format!("{:?}", f.exit)))
        };
        if let Some(r) = immediate {
            let now = self.clock.now();
            self.cluster.script_done(now, job, r);
        }
    }

    /// Children that ended: their results go to the resource manager.
    fn reap_children(&mut self) {
        let done = self.children.reap(self.poll.registry(), Instant::now());
        for f in done {
            let ok = matches!(f.exit, ExitKind::Exited(0));
            self.ops.script_done(self.clock.now().mono_ms, f.id, ok);
            let result = match f.exit {
                ExitKind::Exited(code) => ScriptResult::Done {
                    code,
                    stdout: f.stdout,
                },
                ExitKind::Signaled(sig) => ScriptResult::Failed(format!("killed by signal {sig}")),
                ExitKind::TimedOut => ScriptResult::Failed("timed out".into()),
                ExitKind::SpawnFailed(e) => ScriptResult::Failed(e),
            };
            let now = self.clock.now();
            self.cluster.script_done(now, f.id, result);
        }
        self.drain();
    }

    fn send(&mut self, t: &Transmit) {
        let now = self.clock.now().mono_ms;
        let heartbeat = t.is_status();
        let mut enc = Encoded::new(t);
        for (i, l) in self.links.iter_mut().enumerate() {
            if l.sends_to_self() {
                continue;
            }
            l.send(self.poll.registry(), &mut enc, &self.cluster, now);
            self.ops.sent(i, heartbeat);
        }
    }

    fn on_signal(&mut self, s: Signal) {
        match s {
            Signal::Term => {
                notify::stopping();
                if let Some(w) = self.watchdog.as_mut() {
                    w.disarm();
                }
                let pid = std::process::id();
                hblog::emit(
                    LogLevel::Info,
                    &format!("Heartbeat shutdown in progress. ({pid})"),
                );
                // Every group is released first, then `shutdone` goes out and we exit.
                let now = self.clock.now();
                self.cluster.shutdown(now);
            }
            Signal::Hup => {
                notify::reloading();
                self.reload();
                self.read_test_opts();
                notify::ready();
            }
            Signal::Usr1 | Signal::Usr2 => {
                let cur = hblog::debug_level();
                let new = if s == Signal::Usr1 {
                    cur.saturating_add(1)
                } else {
                    cur.saturating_sub(1)
                };
                hblog::set_debug_level(new);
                if cur == 0 && new == 1 {
                    hblog::emit(
                        LogLevel::Info,
                        &format!("heartbeat: version {}", super::VERSION),
                    );
                }
                hblog::emit(
                    LogLevel::Debug,
                    &format!("debug now set to {new} [pid {}]", std::process::id()),
                );
            }
            Signal::Chld => {
                for (job, end) in self.outdates.reap() {
                    let now = self.clock.now();
                    self.cluster.outdate_done(now, job, end);
                }
                self.clients.reap();
                self.hooks.reap(self.poll.registry());
                self.reap_children();
            }
        }
    }

    /// `<confdir>/OnlyForTesting` (CTS's break-communication switches), at start and on every
    /// SIGHUP as 3.0.6 reads it: present, its text goes to the cluster, which logs `WARNING:
    /// Enabling Test Code` and drops traffic as told; absent (or unreadable), test code is off.
    fn read_test_opts(&mut self) {
        let path = self.opts.paths.confdir.join("OnlyForTesting");
        let text = std::fs::File::open(&path).ok().and_then(|f| {
            let mut buf = Vec::new();
            // 3.0.6 reads a few short lines; a huge file is cut rather than held in memory.
            f.take(64 * 1024).read_to_end(&mut buf).ok()?;
            Some(String::from_utf8_lossy(&buf).into_owned())
        });
        let now = self.clock.now();
        self.cluster
            .set_test_opts(now, text.as_deref(), &path.display().to_string());
    }

    /// SIGHUP: reread ha.cf and authkeys; a broken file keeps the running configuration.
    fn reload(&mut self) {
        let ifaces = udp::interface_names();
        let (cfg, diags) = super::startup::load(
            &self.opts.paths,
            &self.node,
            self.opts.manage_resources,
            Some(&ifaces),
        );
        let Some(cfg) = cfg else {
            for d in &diags {
                log_diagnostic(d);
            }
            hblog::emit(
                LogLevel::Error,
                "Configuration errors on reload: keeping the running configuration.",
            );
            return;
        };
        if cfg == self.cfg {
            hblog::emit(LogLevel::Info, "Configuration unchanged.");
            return;
        }
        for d in &diags {
            log_diagnostic(d);
        }
        if cfg.authkeys != self.cfg.authkeys {
            hblog::emit(LogLevel::Info, "Rereading authentication file.");
        }
        if cfg.hacf.media != self.cfg.hacf.media {
            // The old media go first: a serial line or a socket option may not be held twice.
            for l in &mut self.links {
                l.deregister(self.poll.registry());
            }
            let old = std::mem::take(&mut self.links);
            drop(old);
            let opened = open_links(&cfg, &self.opts).and_then(|mut links| {
                register_links(&self.poll, &mut links)
                    .map(|_| links)
                    .map_err(|e| format!("cannot register media: {e}"))
            });
            match opened {
                Ok(links) => self.links = links,
                Err(e) => {
                    hblog::emit(
                        LogLevel::Error,
                        &format!("{e}; keeping the running configuration"),
                    );
                    match open_links(&self.cfg, &self.opts) {
                        Ok(mut links) => {
                            let _ = register_links(&self.poll, &mut links);
                            self.links = links;
                        }
                        Err(e) => hblog::emit(
                            LogLevel::Error,
                            &format!("cannot reopen the running media: {e}"),
                        ),
                    }
                    return;
                }
            }
        }
        hblog::reconfigure(daemon_log_config(&cfg, self.opts.debug, self.opts.foreground).0);
        let params = Params::from_config(&cfg.hacf, &self.node);
        let now = self.clock.now();
        self.cluster
            .reconfigure(now, params, Authenticator::new(cfg.authkeys.clone()));
        // A changed `stonith`/`stonith_host` line takes effect, as after 3.0.6's restart.
        if cfg.hacf.stonith != self.cfg.hacf.stonith {
            let device = super::children::stonith::device(cfg.hacf.stonith.as_ref());
            self.cluster.change_stonith(now, device);
        }
        for (i, l) in self.links.iter().enumerate() {
            self.cluster.set_own_link(now, i, l.own_side_up());
        }
        self.ops.set_media(self.links.len());
        self.cfg = cfg;
        hblog::emit(LogLevel::Info, "Configuration reloaded.");
    }
}
