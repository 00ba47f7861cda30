//! The single-threaded mio loop: the only place where sockets, signals and the clock meet
//! the cluster state machine.

use std::io::ErrorKind;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Poll, Token};

use super::cli::{self, Options};
use super::clients::Clients;
use super::control::{ControlServer, Reply, Request, Which};
use super::fifo::FifoReader;
use super::hooks::Hooks;
use super::links::Link;
use super::paths::Paths;
use super::script_env;
use super::scripts::{self, ChildPool, ExitKind};
use super::signals::{Signal, Signals};
use super::watchdog::{self, Watchdog};
use super::{daemon, log as hblog, notify, pidfile, state};
use crate::cluster::resources::{Op as ResourceOp, ResourceManager, ScriptResult};
use crate::cluster::{Cluster, ClusterAction, Identity, LogLevel, Membership, Now, Params};
use crate::config::Resource;
use crate::config::{Config, MsgFmt};
use crate::media::udp::{self, OpenOptions};
use crate::status::{ClusterView, RSC_NONE};
use crate::wire::Authenticator;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const SIGNAL_TOKEN: Token = Token(0);
/// The control socket's listener; its connections use Token(CONTROL_CONN_BASE + n).
const CONTROL_TOKEN: Token = Token(1);
/// The FIFO scripts write cluster messages into.
const FIFO_TOKEN: Token = Token(2);
/// Resource scripts' output pipes use tokens from here (below the control connections).
const CHILD_BASE: usize = 1 << 20;
const CONTROL_CONN_BASE: usize = 1 << 24;
/// rc.d hooks' output pipes (checked before the resource scripts' open-ended range).
const HOOK_BASE: usize = 1 << 23;
/// Medium i listens on Token(MEDIA_BASE + i).
const MEDIA_BASE: usize = 16;
/// Largest datagram we read (3.0.6 refuses messages of 256 KiB and more).
const RECV_BUF: usize = 256 * 1024;

struct Clock {
    start: Instant,
}

impl Clock {
    fn now(&self) -> Now {
        let unix_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Now {
            mono_ms: self.start.elapsed().as_millis() as u64,
            unix_secs,
        }
    }
}

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

fn read_loadavg() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.trim().to_string())
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
    /// Signs what goes out on serial lines (classic form).
    auth: Authenticator,
    opts: Options,
    node: String,
    cfg: Config,
    poll: Poll,
    links: Vec<Link>,
    /// Membership and resource manager: everything but I/O.
    cluster: Cluster,
    clock: Clock,
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
}

/// Run the daemon until it stops; the exit code.
pub fn run(opts: &Options, node: String, cfg: Config) -> u8 {
    let pid = std::process::id();
    // Without CAP_SYS_RESOURCE only the 15-character thread name changes; not worth a line.
    let _ = daemon::set_process_title(daemon::MASTER_TITLE);
    hblog::emit(
        LogLevel::Info,
        &format!("heartbeat: version {}", super::VERSION),
    );
    if cfg.hacf.realtime && opts.realtime {
        daemon::lock_memory_and_realtime(cfg.hacf.rtprio);
    }
    let clock = Clock {
        start: Instant::now(),
    };
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
    for (i, l) in links.iter().enumerate() {
        cluster.set_own_link(now, i, l.own_side_up());
    }
    let auth = Authenticator::new(cfg.authkeys.clone());
    let clients = Clients::new(&cfg.hacf.clients);
    let node_name = node.clone();
    let mut d = Daemon {
        auth,
        opts: opts.clone(),
        node,
        cfg,
        poll,
        links,
        cluster,
        clock,
        last_loadavg: 0,
        exit: None,
        control,
        fifo,
        watchdog,
        clients,
        children: ChildPool::new(CHILD_BASE),
        hooks: Hooks::new(&opts.paths, &node_name, opts.manage_resources, HOOK_BASE),
        sd_watchdog: notify::Watchdog::from_env(Instant::now()),
    };
    d.refresh_loadavg(now);
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
            let now = self.clock.now();
            let mut timeout = self
                .next_timer()
                .map(|t| Duration::from_millis(t.saturating_sub(now.mono_ms)));
            if let Some(d) = self.control.as_ref().and_then(|c| c.next_deadline()) {
                let left = d.saturating_duration_since(Instant::now());
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            if let Some(w) = &self.sd_watchdog {
                timeout = w.fold_timeout(timeout, Instant::now());
            }
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
                c.expire(Instant::now());
            }
            if let Some(w) = self.sd_watchdog.as_mut() {
                w.poll(Instant::now());
            }
        }
    }

    /// The earliest moment the cluster or a medium needs attention.
    fn next_timer(&self) -> Option<u64> {
        let media = self.links.iter().filter_map(Link::next_timer);
        let now = self.clock.now().mono_ms;
        let children = self
            .children
            .next_deadline()
            .into_iter()
            .chain(self.hooks.next_deadline())
            .map(|d| now + d.saturating_duration_since(Instant::now()).as_millis() as u64);
        self.cluster
            .poll_timeout()
            .into_iter()
            .chain(media)
            .chain(children)
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
                Request::Standby(w) | Request::Takeover(w) if self.cluster.manages_resources() => {
                    // What hb_standby / hb_takeover write into 3.0.6's FIFO.
                    let mut m = crate::wire::Msg::new();
                    if matches!(req, Request::Standby(_)) {
                        let set = if w == Which::Failback {
                            "foreign"
                        } else {
                            w.as_str()
                        };
                        m.add_str("t", "ask_resources")
                            .add_str("rsc_hold", set)
                            .add_str("info", "me");
                    } else {
                        m.add_str("t", "hb_takeover")
                            .add_str("rsc_hold", w.as_str());
                    }
                    // Sent, and handled by this node too.
                    let now = self.clock.now();
                    self.cluster.send_message(now, m);
                    Reply::Done
                }
                Request::Standby(_) | Request::Takeover(_) => {
                    Reply::Error("this node manages no resources (started with -M)".into())
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
        Some(ClusterView::build(
            self.cluster.membership(),
            &self.cfg.hacf,
            super::VERSION_STRING,
            rscstatus,
            hblog::debug_level(),
        ))
    }

    fn read_medium(&mut self, i: usize, buf: &mut [u8]) {
        let mut packets = Vec::new();
        let now = self.clock.now();
        if let Some(l) = self.links.get_mut(i) {
            l.on_ready(self.poll.registry(), now.mono_ms, buf, &mut packets);
        }
        for p in packets {
            self.cluster.handle_datagram(now, i, &p);
            self.drain();
        }
    }

    fn refresh_loadavg(&mut self, now: Now) {
        if now.mono_ms >= self.last_loadavg + 1000 || self.last_loadavg == 0 {
            if let Some(l) = read_loadavg() {
                self.cluster.set_load_average(&l);
            }
            self.last_loadavg = now.mono_ms.max(1);
        }
    }

    /// Carry out everything the state machine asked for.
    fn drain(&mut self) {
        while let Some(a) = self.cluster.poll_action() {
            match a {
                ClusterAction::Send(bytes) => {
                    if watchdog::is_status(&bytes) {
                        if let Some(w) = self.watchdog.as_mut() {
                            w.tickle();
                        }
                    }
                    self.send(&bytes)
                }
                ClusterAction::Log(level, text) => hblog::emit(level, &text),
                ClusterAction::RunScript { job, resource, op } => {
                    self.run_script(job, &resource, op)
                }
                ClusterAction::RunHook {
                    job,
                    name,
                    arg,
                    env,
                } => self.run_hook(job, &name, &arg, env),
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
                ClusterAction::NodeStatus(node, st) => {
                    let a = crate::cluster::Action::NodeStatus(node, st);
                    self.hooks.on_action(&a, &self.cfg.hacf.nodes);
                }
                ClusterAction::NodeDead(node) => {
                    let a = crate::cluster::Action::NodeDead(node);
                    self.hooks.on_action(&a, &self.cfg.hacf.nodes);
                }
                ClusterAction::Delivered(from, msg) => {
                    let a = crate::cluster::Action::Deliver(from, msg);
                    self.hooks.on_action(&a, &self.cfg.hacf.nodes);
                }
                ClusterAction::Sent(msg) => self.hooks.on_own_message(&msg, &self.cfg.hacf.nodes),
                ClusterAction::NodeReturned(_) | ClusterAction::NodeRestarted(_) => {}
            }
        }
        self.pump_hooks();
    }

    /// Queue link changes, then start the next rc.d hook if nothing else runs.
    fn pump_hooks(&mut self) {
        self.hooks.check_links(self.cluster.membership());
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
    fn run_script(&mut self, job: u64, resource: &Resource, op: ResourceOp) {
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
                let limit = if op == ResourceOp::Status { 60 } else { 600 };
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
                    timeout: Duration::from_secs(limit),
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
            self.cluster.script_done(now, job, r);
        }
    }

    /// A site hook the resource manager waits for (`rc.d/local_giveip`): run like a resource
    /// script, so that the group work waits for it; none there is `NotFound`.
    fn run_hook(&mut self, job: u64, name: &str, arg: &str, extra: Vec<(String, String)>) {
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
                timeout: Duration::from_secs(300),
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

    fn send(&mut self, bytes: &[u8]) {
        let now = self.clock.now().mono_ms;
        for l in &mut self.links {
            l.send(self.poll.registry(), bytes, &self.auth, now);
        }
    }

    fn on_signal(&mut self, s: Signal) {
        match s {
            Signal::Term => {
                notify::stopping();
                self.hooks.shutting_down();
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
                self.clients.reap();
                self.hooks.reap(self.poll.registry());
                self.reap_children();
            }
        }
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
                cli::log_diagnostic(d);
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
            cli::log_diagnostic(d);
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
        hblog::reconfigure(cli::log_config(&cfg, self.opts.debug, false));
        let params = Params::from_config(&cfg.hacf, &self.node);
        let now = self.clock.now();
        self.cluster
            .reconfigure(now, params, Authenticator::new(cfg.authkeys.clone()));
        for (i, l) in self.links.iter().enumerate() {
            self.cluster.set_own_link(now, i, l.own_side_up());
        }
        self.auth = Authenticator::new(cfg.authkeys.clone());
        self.cfg = cfg;
        hblog::emit(LogLevel::Info, "Configuration reloaded.");
    }
}
