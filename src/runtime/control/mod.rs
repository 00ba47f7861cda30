//! The daemon's local control socket, `<rundir>/heartbeat/control`, used by `cl_status` (and
//! later `hb_standby` / `hb_takeover`). It replaces 3.0.6's client API socket
//! (`/var/run/heartbeat/register`) for these tools; it is not wire-compatible with it.
//!
//! # Protocol (version 1)
//!
//! One request per connection. The client writes one line of at most [`REQUEST_MAX`] bytes
//! ending in LF:
//!
//! * `status` — a snapshot of the cluster as this node sees it;
//! * `standby <all|foreign|local|failback>` — `hb_standby`;
//! * `takeover <all|foreign|local|failback>` — `hb_takeover`;
//! * `outdate <peer> <resource> <seconds>` — `drbd-peer-outdater`: ask the built-in dopd to
//!   outdate `resource` on `peer` (both escaped as in [`crate::status::escape`]); the
//!   connection may wait up to `<seconds>` (at most [`OUTDATE_WAIT_MAX`]) for the answer
//!   `ok` followed by the code line (`4`, `5`, ...);
//! * `overview` — `hb_status`: the [`crate::status::ops::Overview`] as JSON, served at any
//!   time (also before comm-up);
//! * `metrics` — `hb_status --metrics`: the Prometheus text exposition.
//!
//! The server writes the reply and closes the connection. The reply's first line is one of
//!
//! * `ok` — for `status`, followed by the serialized [`ClusterView`] (see
//!   [`ClusterView::to_text`]); for the others, nothing follows;
//! * `closed` — the daemon runs but does not serve yet: like 3.0.6, whose API opens at
//!   comm-up, it answers `status` only once communication is up;
//! * `refused` — the peer is not allowed (see below);
//! * `error <text>` — a malformed or unsupported request (`<text>` escaped as in
//!   [`crate::status::escape`]).
//!
//! # Access
//!
//! The socket is mode 0666 in a 0755 directory, like 3.0.6's 0777 `register` socket: anyone
//! may connect, and the daemon decides by the peer's credentials (`SO_PEERCRED`), as 3.0.6's
//! `anon` apiauth rule does: uid 0, the daemon's own uid, or membership (primary or
//! supplementary group, read from `/proc/<pid>/status`) in group `haclient` when that group
//! exists. Others get `refused`, which `cl_status` reports with 3.0.6's
//! `client failed authorization` texts.
//!
//! # Never blocking the event loop
//!
//! Listener and connections are non-blocking and registered with the daemon's mio poll; a
//! request longer than [`REQUEST_MAX`] is answered with an error; a client that has not sent
//! its request or read its reply within [`CLIENT_TIMEOUT`] is dropped (the loop calls
//! [`ControlServer::expire`] and includes [`ControlServer::next_deadline`] in its poll
//! timeout); at most [`MAX_CONNECTIONS`] are open at once, further ones are closed at once.

pub mod admin;
pub mod fifo;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use crate::status::{escape, unescape, ClusterView};

/// Longest request line, LF included.
pub const REQUEST_MAX: usize = 512;
/// Longest reply a client accepts.
pub const REPLY_MAX: usize = 4 << 20;
/// A connection must be done (request read, reply written) within this time.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest an `outdate` request may keep its connection waiting.
pub const OUTDATE_WAIT_MAX: Duration = Duration::from_secs(3600);
/// Connections open at once; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 32;

/// The argument of `hb_standby` / `hb_takeover`: the cluster's own type.
pub use crate::cluster::admin::Which;

/// A parsed request, handed to the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Status,
    Overview,
    Metrics,
    Standby(Which),
    Takeover(Which),
    /// Outdate `resource` on `peer`, waiting at most `wait_secs` for the answer.
    Outdate {
        peer: String,
        resource: String,
        wait_secs: u64,
    },
}

impl Request {
    /// Parse one request line (without its LF).
    pub fn parse(line: &str) -> Result<Request, String> {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["status"] => Ok(Request::Status),
            ["overview"] => Ok(Request::Overview),
            ["metrics"] => Ok(Request::Metrics),
            ["standby", w] | ["takeover", w] => {
                let which = Which::parse(w).ok_or_else(|| format!("wrong resources({w})"))?;
                Ok(if words[0] == "standby" {
                    Request::Standby(which)
                } else {
                    Request::Takeover(which)
                })
            }
            ["outdate", peer, resource, secs] => Ok(Request::Outdate {
                peer: unescape(peer).map_err(|_| format!("bad peer {peer:?}"))?,
                resource: unescape(resource).map_err(|_| format!("bad resource {resource:?}"))?,
                wait_secs: secs
                    .parse()
                    .map_err(|_| format!("bad time limit {secs:?}"))?,
            }),
            _ => Err(format!("unknown request {line:?}")),
        }
    }

    /// The request line, LF included.
    pub fn to_line(&self) -> String {
        match self {
            Request::Status => "status\n".to_string(),
            Request::Overview => "overview\n".to_string(),
            Request::Metrics => "metrics\n".to_string(),
            Request::Standby(w) => format!("standby {}\n", w.as_str()),
            Request::Takeover(w) => format!("takeover {}\n", w.as_str()),
            Request::Outdate {
                peer,
                resource,
                wait_secs,
            } => format!("outdate {} {} {wait_secs}\n", word(peer), word(resource)),
        }
    }
}

/// `s` escaped so that it is one word of a request line (spaces too).
fn word(s: &str) -> String {
    escape(s).replace(' ', "%20")
}

/// The event loop's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `ok` and the view (to `status`).
    View(ClusterView),
    /// `ok` alone (a standby or takeover request was accepted).
    Done,
    /// `ok` and a code line (to `outdate`).
    Code(String),
    /// `ok` and this text (the overview's JSON, the metrics).
    Text(String),
    /// `ok` and one escaped line for the user (accepted, but see the note: e.g. the mode
    /// makes the request a no-op). Older clients ignore what follows `ok`.
    Note(String),
    /// `closed`: not serving yet (before comm-up).
    Closed,
    Error(String),
}

impl Reply {
    fn to_bytes(&self) -> Vec<u8> {
        match self {
            Reply::View(v) => format!("ok\n{}", v.to_text()).into_bytes(),
            Reply::Done => b"ok\n".to_vec(),
            Reply::Code(c) => format!("ok\n{}\n", escape(c)).into_bytes(),
            Reply::Text(t) => format!("ok\n{t}").into_bytes(),
            Reply::Note(n) => format!("ok\n{}\n", escape(n)).into_bytes(),
            Reply::Closed => b"closed\n".to_vec(),
            Reply::Error(e) => format!("error {}\n", escape(e)).into_bytes(),
        }
    }
}

/// Identifies a connection awaiting [`ControlServer::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnId(usize);

impl ConnId {
    /// A number naming the connection while it is open.
    pub fn number(self) -> u64 {
        self.0 as u64
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the request line.
    Reading,
    /// Handed to the event loop; waiting for `respond`.
    Waiting,
    /// Writing the reply; then close.
    Writing,
}

struct Conn {
    stream: UnixStream,
    /// The peer passed the access check; if not, its request is answered `refused`.
    allowed: bool,
    deadline: Instant,
    phase: Phase,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
}

enum ReadOutcome {
    /// No complete line yet.
    Pending,
    /// EOF or an error before a complete line.
    Gone,
    Request(Request),
    Bad(String),
}

/// Read what is there; a complete request line, a bad one, or not yet.
fn read_request(c: &mut Conn) -> ReadOutcome {
    let mut buf = [0u8; REQUEST_MAX];
    loop {
        let room = REQUEST_MAX.saturating_sub(c.inbuf.len()).max(1);
        match c.stream.read(&mut buf[..room]) {
            Ok(0) => return ReadOutcome::Gone,
            Ok(n) => {
                c.inbuf.extend_from_slice(&buf[..n]);
                if let Some(pos) = c.inbuf.iter().position(|&b| b == b'\n') {
                    let line = String::from_utf8_lossy(&c.inbuf[..pos]).into_owned();
                    return match Request::parse(line.trim_end_matches('\r')) {
                        Ok(req) => ReadOutcome::Request(req),
                        Err(e) => ReadOutcome::Bad(e),
                    };
                }
                if c.inbuf.len() >= REQUEST_MAX {
                    return ReadOutcome::Bad("request too long".into());
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return ReadOutcome::Pending,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return ReadOutcome::Gone,
        }
    }
}

/// Who may use the socket.
#[derive(Debug, Clone)]
struct Access {
    our_uid: u32,
    haclient_gid: Option<u32>,
}

impl Access {
    fn allows(&self, uid: u32, gid: u32, pid: i32) -> bool {
        if uid == 0 || uid == self.our_uid {
            return true;
        }
        let Some(hg) = self.haclient_gid else {
            return false;
        };
        gid == hg || supplementary_groups(pid).contains(&hg)
    }
}

/// The supplementary groups of process `pid` (empty if it cannot be read).
fn supplementary_groups(pid: i32) -> Vec<u32> {
    if pid <= 0 {
        return Vec::new();
    }
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    parse_groups_line(&status)
}

/// The numbers of the `Groups:` line of a `/proc/<pid>/status` text.
fn parse_groups_line(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The control socket's server side. See the module documentation.
pub struct ControlServer {
    path: PathBuf,
    /// (dev, ino) of the socket we bound, so Drop removes only our own file.
    identity: (u64, u64),
    listener: UnixListener,
    registry: Registry,
    listen_token: Token,
    conn_base: usize,
    next_id: usize,
    conns: BTreeMap<usize, Conn>,
    access: Access,
}

impl ControlServer {
    /// Create the directory (0755), remove a stale socket, bind `path` (mode 0666), and
    /// register the listener as `listen_token`; connections get tokens from `conn_base` up
    /// (reserve that range: `conn_base + any usize`).
    pub fn open(
        path: &Path,
        registry: &Registry,
        listen_token: Token,
        conn_base: usize,
    ) -> io::Result<ControlServer> {
        if let Some(dir) = path.parent() {
            if !dir.is_dir() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(dir)?;
            }
        }
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => fs::remove_file(path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut listener = UnixListener::bind(path)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o666))?;
        let meta = fs::symlink_metadata(path)?;
        registry.register(&mut listener, listen_token, Interest::READABLE)?;
        let haclient_gid = nix::unistd::Group::from_name("haclient")
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw());
        Ok(ControlServer {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
            listener,
            registry: registry.try_clone()?,
            listen_token,
            conn_base,
            next_id: 0,
            conns: BTreeMap::new(),
            access: Access {
                our_uid: nix::unistd::geteuid().as_raw(),
                haclient_gid,
            },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `token` is the listener's or a connection's.
    pub fn owns(&self, token: Token) -> bool {
        token == self.listen_token || token.0 >= self.conn_base
    }

    /// Handle a readiness event for one of our tokens; the requests that are now complete,
    /// for the event loop to answer with [`ControlServer::respond`].
    pub fn handle_event(&mut self, token: Token) -> Vec<(ConnId, Request)> {
        let mut ready = Vec::new();
        if token == self.listen_token {
            self.accept_all();
        } else if token.0 >= self.conn_base {
            let id = token.0 - self.conn_base;
            if let Some(req) = self.service(id) {
                ready.push((ConnId(id), req));
            }
        }
        ready
    }

    /// Send `reply` on a connection returned by `handle_event`, then close it.
    pub fn respond(&mut self, conn: ConnId, reply: Reply) {
        let Some(c) = self.conns.get_mut(&conn.0) else {
            return;
        };
        if c.phase != Phase::Waiting {
            return;
        }
        self.send_bytes(conn.0, reply.to_bytes());
    }

    fn send_bytes(&mut self, id: usize, bytes: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.out = bytes;
        c.written = 0;
        c.phase = Phase::Writing;
        self.write_some(id);
    }

    /// The earliest time a connection must be dropped, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.values().map(|c| c.deadline).min()
    }

    /// Drop connections whose time is up; those that were still waiting for `respond`.
    pub fn expire(&mut self, now: Instant) -> Vec<ConnId> {
        let late: Vec<(usize, bool)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(id, c)| (*id, c.phase == Phase::Waiting))
            .collect();
        let mut waiting = Vec::new();
        for (id, was_waiting) in late {
            self.close(id);
            if was_waiting {
                waiting.push(ConnId(id));
            }
        }
        waiting
    }

    /// Open connections (for tests and status).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: leave the rest in the backlog for the next event.
                    log::warn!("control socket: accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: UnixStream) {
        if self.conns.len() >= MAX_CONNECTIONS {
            return; // dropped: closed at once
        }
        let allowed = match getsockopt(&stream, PeerCredentials) {
            Ok(cred) => self.access.allows(cred.uid(), cred.gid(), cred.pid()),
            Err(_) => false,
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let token = Token(self.conn_base.wrapping_add(id));
        if self
            .registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            return;
        }
        let c = Conn {
            stream,
            allowed,
            deadline: Instant::now() + CLIENT_TIMEOUT,
            phase: Phase::Reading,
            inbuf: Vec::new(),
            out: Vec::new(),
            written: 0,
        };
        self.conns.insert(id, c);
    }

    /// Progress on connection `id`; a complete request if one just arrived.
    fn service(&mut self, id: usize) -> Option<Request> {
        let phase = match self.conns.get(&id) {
            Some(c) => &c.phase,
            None => return None,
        };
        match phase {
            Phase::Reading => self.read_some(id),
            Phase::Writing => {
                self.write_some(id);
                None
            }
            Phase::Waiting => None,
        }
    }

    fn read_some(&mut self, id: usize) -> Option<Request> {
        let c = self.conns.get_mut(&id)?;
        let outcome = read_request(c);
        match outcome {
            ReadOutcome::Pending => None,
            ReadOutcome::Gone => {
                self.close(id);
                None
            }
            ReadOutcome::Request(req) if c.allowed => {
                c.phase = Phase::Waiting;
                if let Request::Outdate { wait_secs, .. } = &req {
                    let wait = Duration::from_secs(*wait_secs).min(OUTDATE_WAIT_MAX);
                    c.deadline = c.deadline.max(Instant::now() + wait + CLIENT_TIMEOUT);
                }
                Some(req)
            }
            // Answered only once the request is read: closing a unix socket with unread
            // data resets the peer, which could then miss the answer.
            ReadOutcome::Request(_) => {
                self.send_bytes(id, b"refused\n".to_vec());
                None
            }
            ReadOutcome::Bad(e) => {
                c.phase = Phase::Waiting;
                self.respond(ConnId(id), Reply::Error(e));
                None
            }
        }
    }

    fn write_some(&mut self, id: usize) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        while c.written < c.out.len() {
            match c.stream.write(&c.out[c.written..]) {
                Ok(0) => break,
                Ok(n) => c.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.close(id);
    }

    fn close(&mut self, id: usize) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.registry.deregister(&mut c.stream);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path)
            .map(|m| (m.dev(), m.ino()) == self.identity)
            .unwrap_or(false);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client side

/// What the daemon answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `ok`, with what followed it (the view's text for `status`).
    Ok(String),
    Closed,
    Refused,
    Error(String),
}

/// Why there was no answer.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens (no socket, connection refused) or the connection failed.
    NotRunning(io::Error),
    /// The socket's permissions kept us out.
    Denied,
    /// No complete answer within the time limit.
    Timeout,
    /// Something answered that is not this protocol.
    Protocol(String),
}

/// Send `request` to the control socket at `path` and read the answer, giving up after
/// `limit` for each blocking step.
pub fn ask(path: &Path, request: Request, limit: Duration) -> Result<Answer, ClientError> {
    log::debug!("connecting to the control socket {}", path.display());
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| match e.kind() {
        ErrorKind::PermissionDenied => ClientError::Denied,
        _ => ClientError::NotRunning(e),
    })?;
    let timed_out = |e: &io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    s.set_read_timeout(Some(limit))
        .and_then(|_| s.set_write_timeout(Some(limit)))
        .map_err(ClientError::NotRunning)?;
    // Should the server answer and close before reading, a failed write still leaves its
    // answer to read.
    if let Err(e) = s.write_all(request.to_line().as_bytes()) {
        if timed_out(&e) {
            return Err(ClientError::Timeout);
        }
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.len() > REPLY_MAX {
                    return Err(ClientError::Protocol("reply too long".into()));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if timed_out(&e) => return Err(ClientError::Timeout),
            Err(e) => return Err(ClientError::NotRunning(e)),
        }
    }
    log::debug!("{} bytes of reply from {}", reply.len(), path.display());
    parse_answer(&reply)
}

/// Why a tool could not reach the daemon, for its error message: the socket it tried and
/// how to name another run directory.
pub fn not_reached_hint(path: &Path, err: &io::Error) -> String {
    format!(
        "no daemon answers on {} ({err}); a daemon started with --rundir DIR is reached \
         with --rundir DIR or HA_RUNDIR=DIR",
        path.display()
    )
}

/// Logging for the command-line tools: `RUST_LOG` (e.g. `RUST_LOG=debug`) on stderr through
/// env_logger; silent by default.
pub fn init_tool_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off"))
        .format_timestamp(None)
        .try_init();
}

fn parse_answer(reply: &[u8]) -> Result<Answer, ClientError> {
    let text = std::str::from_utf8(reply)
        .map_err(|_| ClientError::Protocol("reply is not UTF-8".into()))?;
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    match first {
        "ok" => Ok(Answer::Ok(rest.to_string())),
        "closed" => Ok(Answer::Closed),
        "refused" => Ok(Answer::Refused),
        _ => match first.strip_prefix("error ") {
            Some(e) => Ok(Answer::Error(unescape(e).unwrap_or_else(|_| e.to_string()))),
            None if text.is_empty() => Err(ClientError::Protocol("no reply".into())),
            None => Err(ClientError::Protocol(format!("unexpected reply {first:?}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::os::unix::net::UnixStream as StdStream;
    use std::thread;

    fn view() -> ClusterView {
        ClusterView {
            version: "v".into(),
            managed_by: "haresources".into(),
            my_node: "alice".into(),
            deadtime_ms: 1,
            keepalive_ms: 2,
            nodes: Vec::new(),
            parameters: BTreeMap::new(),
            rscstatus: Some("none".into()),
            clients: Vec::new(),
        }
    }

    #[test]
    fn requests_parse() {
        assert_eq!(Request::parse("status"), Ok(Request::Status));
        assert_eq!(
            Request::parse("standby foreign"),
            Ok(Request::Standby(Which::Foreign))
        );
        assert_eq!(
            Request::parse("takeover failback"),
            Ok(Request::Takeover(Which::Failback))
        );
        assert!(Request::parse("standby bogus").is_err());
        assert!(Request::parse("standby").is_err());
        assert!(Request::parse("status now").is_err());
        assert!(Request::parse("").is_err());
        let outdate = Request::Outdate {
            peer: "bob smith".into(),
            resource: "r%0".into(),
            wait_secs: 5,
        };
        let line = outdate.to_line();
        assert_eq!(line, "outdate bob%20smith r%250 5\n");
        assert_eq!(Request::parse(line.trim_end()), Ok(outdate));
        assert!(Request::parse("outdate bob r0 soon").is_err());
        assert!(Request::parse("outdate bob r0").is_err());
        for r in [
            Request::Status,
            Request::Overview,
            Request::Metrics,
            Request::Standby(Which::All),
            Request::Takeover(Which::Local),
        ] {
            assert_eq!(Request::parse(r.to_line().trim_end()), Ok(r));
        }
    }

    #[test]
    fn answers_parse() {
        assert_eq!(
            parse_answer(b"ok\nabc").ok(),
            Some(Answer::Ok("abc".into()))
        );
        assert_eq!(parse_answer(b"ok\n").ok(), Some(Answer::Ok(String::new())));
        assert_eq!(parse_answer(b"closed\n").ok(), Some(Answer::Closed));
        assert_eq!(parse_answer(b"refused\n").ok(), Some(Answer::Refused));
        assert_eq!(
            parse_answer(b"error a%0Ab\n").ok(),
            Some(Answer::Error("a\nb".into()))
        );
        assert!(parse_answer(b"").is_err());
        assert!(parse_answer(b"HTTP/1.0 200\n").is_err());
        assert!(parse_answer(&[0xff, b'\n']).is_err());
    }

    #[test]
    fn groups_line() {
        let s = "Name:\tx\nUid:\t1\t1\t1\t1\nGroups:\t4 24 1001 \nNSpid:\t9\n";
        assert_eq!(parse_groups_line(s), vec![4, 24, 1001]);
        assert_eq!(parse_groups_line("Name:\tx\n"), Vec::<u32>::new());
    }

    #[test]
    fn access_rule() {
        let a = Access {
            our_uid: 1000,
            haclient_gid: Some(4242),
        };
        assert!(a.allows(0, 0, -1));
        assert!(a.allows(1000, 1000, -1));
        assert!(a.allows(2000, 4242, -1));
        assert!(!a.allows(2000, 2000, -1));
        let b = Access {
            our_uid: 1000,
            haclient_gid: None,
        };
        assert!(!b.allows(2000, 4242, -1));
    }

    /// Drive a server in this thread until `done` says stop or 5 s pass, answering every
    /// request with `answer`.
    fn serve(
        poll: &mut Poll,
        srv: &mut ControlServer,
        answer: &dyn Fn(Request) -> Reply,
        done: &dyn Fn(&ControlServer) -> bool,
    ) {
        let mut events = Events::with_capacity(16);
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end && !done(srv) {
            let _ = poll.poll(&mut events, Some(Duration::from_millis(20)));
            for ev in events.iter() {
                if srv.owns(ev.token()) {
                    for (c, r) in srv.handle_event(ev.token()) {
                        srv.respond(c, answer(r));
                    }
                }
            }
            srv.expire(Instant::now());
        }
    }

    fn tmp_socket(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hbctl-{label}-{}-{:?}",
            std::process::id(),
            thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir.join("heartbeat").join("control")
    }

    #[test]
    fn round_trip_errors_limits_and_cleanup() {
        let path = tmp_socket("rt");
        let mut poll = Poll::new().expect("poll");
        // A stale socket file is replaced.
        fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        drop(std::os::unix::net::UnixListener::bind(&path).expect("stale"));
        let mut srv = ControlServer::open(&path, poll.registry(), Token(1), 1000).expect("open");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);

        let p = path.clone();
        let client = thread::spawn(move || {
            let lim = Duration::from_secs(3);
            let a = ask(&p, Request::Status, lim).expect("status");
            let b = ask(&p, Request::Standby(Which::Local), lim).expect("standby");
            // Raw: a bad request, an over-long one, a silent client, then a slow writer.
            let mut s = StdStream::connect(&p).expect("connect");
            s.write_all(b"bogus\n").expect("write");
            let mut bad = String::new();
            s.read_to_string(&mut bad).expect("read");
            let mut s = StdStream::connect(&p).expect("connect");
            let _ = s.write_all(&[b'x'; REQUEST_MAX]);
            let mut long = String::new();
            let _ = s.read_to_string(&mut long);
            let mut silent = StdStream::connect(&p).expect("connect");
            let t0 = Instant::now();
            let mut nothing = Vec::new();
            let _ = silent.read_to_end(&mut nothing);
            let silent_for = t0.elapsed();
            let mut slow = StdStream::connect(&p).expect("connect");
            slow.write_all(b"sta").expect("write");
            thread::sleep(Duration::from_millis(100));
            slow.write_all(b"tus\r\n").expect("write");
            let mut slow_reply = String::new();
            slow.read_to_string(&mut slow_reply).expect("read");
            (a, b, bad, long, nothing, silent_for, slow_reply)
        });
        let answer = |r: Request| match r {
            Request::Status => Reply::View(view()),
            Request::Standby(Which::Local) => Reply::Done,
            _ => Reply::Error("no".into()),
        };
        serve(&mut poll, &mut srv, &answer, &|_| client.is_finished());
        let (a, b, bad, long, nothing, silent_for, slow_reply) = client.join().expect("client");
        match a {
            Answer::Ok(text) => assert_eq!(ClusterView::from_text(&text), Ok(view())),
            other => panic!("{other:?}"),
        }
        assert_eq!(b, Answer::Ok(String::new()));
        assert!(bad.starts_with("error unknown request"), "{bad}");
        assert_eq!(long, "error request too long\n");
        assert!(nothing.is_empty());
        assert!(
            silent_for >= CLIENT_TIMEOUT - Duration::from_millis(100)
                && silent_for < CLIENT_TIMEOUT + Duration::from_secs(1),
            "{silent_for:?}"
        );
        assert!(slow_reply.starts_with("ok\nhbview 1\n"), "{slow_reply}");
        assert_eq!(srv.connections(), 0);
        drop(srv);
        assert!(!path.exists(), "socket removed on drop");
        assert!(matches!(
            ask(&path, Request::Status, Duration::from_secs(1)),
            Err(ClientError::NotRunning(_))
        ));
        let _ = fs::remove_dir_all(path.parent().and_then(Path::parent).expect("dir"));
    }

    #[test]
    fn too_many_connections_are_closed() {
        let path = tmp_socket("many");
        let mut poll = Poll::new().expect("poll");
        let mut srv = ControlServer::open(&path, poll.registry(), Token(1), 1000).expect("open");
        let held: Vec<StdStream> = (0..MAX_CONNECTIONS + 3)
            .map(|_| StdStream::connect(&path).expect("connect"))
            .collect();
        serve(&mut poll, &mut srv, &|_| Reply::Closed, &|s| {
            s.connections() == MAX_CONNECTIONS
        });
        // Give the extra ones a moment to be accepted and dropped.
        let mut events = Events::with_capacity(16);
        for _ in 0..5 {
            let _ = poll.poll(&mut events, Some(Duration::from_millis(20)));
            for ev in events.iter() {
                let _ = srv.handle_event(ev.token());
            }
        }
        assert_eq!(srv.connections(), MAX_CONNECTIONS);
        drop(held);
        let p = path.clone();
        let client = thread::spawn(move || ask(&p, Request::Status, Duration::from_secs(3)));
        serve(&mut poll, &mut srv, &|_| Reply::Closed, &|_| {
            client.is_finished()
        });
        assert_eq!(client.join().expect("client").ok(), Some(Answer::Closed));
        drop(srv);
        let _ = fs::remove_dir_all(path.parent().and_then(Path::parent).expect("dir"));
    }

    #[test]
    fn refuses_a_non_socket_file() {
        let path = tmp_socket("file");
        fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        fs::write(&path, "not a socket").expect("write");
        let poll = Poll::new().expect("poll");
        assert!(ControlServer::open(&path, poll.registry(), Token(1), 1000).is_err());
        assert_eq!(
            fs::read_to_string(&path).ok().as_deref(),
            Some("not a socket")
        );
        let _ = fs::remove_dir_all(path.parent().and_then(Path::parent).expect("dir"));
    }
}
