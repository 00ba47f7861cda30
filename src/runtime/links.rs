//! The media of this node as the event loop drives them: UDP sockets and serial ports behind
//! one type. A serial port that is lost is reopened every second until it is back; its log
//! lines are rate-limited instead of flooding the log as 3.0.6 does.

use std::io::{self, ErrorKind};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::log as hblog;
use crate::cluster::LogLevel;
use crate::cluster::{Cluster, Transmit};
use crate::config::{Medium, MediumKind};
use crate::media::ping::PingMedium;
use crate::media::serial::{self, ReopenPolicy, SerialMedium};
use crate::media::udp::{OpenOptions, UdpMedium};

/// Write errors on one medium are logged at most this often.
const WRITE_ERROR_LOG_MS: u64 = 60_000;
/// Line noise on a serial port is reported at most this often.
const NOISE_LOG_MS: u64 = 60_000;

enum Io {
    Udp(UdpMedium),
    Serial {
        device: String,
        baud: u32,
        lock_dir: PathBuf,
        port: Option<Box<SerialMedium>>,
        policy: ReopenPolicy,
        /// Line-noise bytes dropped by the framer: reported so far, and when last reported.
        noise: (u64, u64),
    },
    /// A ping node: echo requests carry a signed `NS_st` naming it.
    Ping {
        medium: PingMedium,
        inner_auth: bool,
    },
}

pub struct Link {
    pub name: String,
    io: Io,
    /// A `ucast` line naming this node's own address: 3.0.6 sends itself a copy of every
    /// message and only learns from it that its own link is up, which we know without it
    /// (`own_side_up`); the copy would cost a send, a wake-up and a decode per message.
    to_self: bool,
    /// Monotonic ms of the last write error line, and errors since.
    write_errors: (u64, u64),
}

fn emit(lines: Vec<(LogLevel, String)>) {
    for (level, text) in lines {
        hblog::emit(level, &text);
    }
}

fn describe_udp(kind: &MediumKind) -> String {
    match kind {
        MediumKind::Ucast { ifname, peer, port } => {
            format!("glib: ucast: started on port {port} interface {ifname} to {peer}")
        }
        MediumKind::Ucast6 { ifname, peer, port } => {
            format!("glib: ucast6: started on port {port} interface {ifname} to {peer}")
        }
        MediumKind::Bcast { ifname, port } => {
            format!("glib: UDP Broadcast heartbeat started on port {port} (694) interface {ifname}")
        }
        MediumKind::Mcast { ifname, group, port, .. } => format!(
            "glib: UDP multicast heartbeat started for group {group} port {port} interface {ifname}"
        ),
        MediumKind::Mcast6 { ifname, group, port, .. } => format!(
            "glib: UDP multicast6 heartbeat started for group {group} port {port} interface {ifname}"
        ),
        _ => String::new(),
    }
}

/// Whether `ip` is this node: its `--bind` address when several nodes share a host (the
/// others' addresses are local too), else any address of this host.
fn is_own_address(ip: IpAddr, bind: Option<IpAddr>) -> bool {
    match bind {
        Some(b) => b == ip,
        None => crate::media::udp::local_addresses().contains(&ip),
    }
}

/// What one read of a medium that polled readable gave.
pub enum Received {
    /// One UDP datagram, in the caller's buffer (`..n`); read again until `Drained`. Taken
    /// in one at a time, so a burst costs no memory beyond the buffer.
    Datagram(usize),
    /// Everything a serial line or ping socket had (a read may end several packets).
    Packets(Vec<Vec<u8>>),
    /// Nothing more to read until the medium polls readable again.
    Drained,
}

/// One message in the forms the media need, each encoded (and signed) at most once however
/// many media carry it.
pub struct Encoded<'a> {
    t: &'a Transmit,
    udp: Option<Vec<u8>>,
    classic: Option<Vec<u8>>,
}

impl<'a> Encoded<'a> {
    pub fn new(t: &'a Transmit) -> Encoded<'a> {
        Encoded {
            t,
            udp: None,
            classic: None,
        }
    }

    fn udp(&mut self, cluster: &Cluster) -> &[u8] {
        let t = self.t;
        self.udp.get_or_insert_with(|| cluster.encode_udp(t))
    }

    fn classic(&mut self, cluster: &Cluster) -> &[u8] {
        let t = self.t;
        self.classic
            .get_or_insert_with(|| cluster.encode_classic(t))
    }
}

impl Link {
    /// Open one medium. An error refuses the start, as with the original.
    /// `inner_auth`: `msgfmt classic`, whose messages carry the inner signature.
    pub fn open(
        m: &Medium,
        udp: &OpenOptions,
        lock_dir: &Path,
        inner_auth: bool,
    ) -> Result<Link, String> {
        let name = m.kind.link_name();
        let io = match &m.kind {
            MediumKind::Serial { device, baud } => {
                match SerialMedium::open(device, *baud, lock_dir) {
                    Ok(port) => {
                        emit(vec![serial::starting_line(device, *baud)]);
                        Io::Serial {
                            device: device.clone(),
                            baud: *baud,
                            lock_dir: lock_dir.to_path_buf(),
                            port: Some(Box::new(port)),
                            policy: ReopenPolicy::new(),
                            noise: (0, 0),
                        }
                    }
                    Err(e) => {
                        emit(vec![
                            e.log_line(device),
                            serial::startup_failure_line(device),
                        ]);
                        return Err(format!(
                            "cannot open serial {device} (ha.cf line {})",
                            m.line
                        ));
                    }
                }
            }
            MediumKind::Ping { .. } | MediumKind::Ping6 { .. } | MediumKind::PingGroup { .. } => {
                match PingMedium::open(&m.kind) {
                    Ok(medium) => {
                        let what = if medium.is_group() {
                            "ping group"
                        } else {
                            "ping"
                        };
                        hblog::emit(LogLevel::Info, &format!("glib: {what} heartbeat started."));
                        Io::Ping { medium, inner_auth }
                    }
                    Err(e) => {
                        hblog::emit(LogLevel::Error, &format!("glib: {e}"));
                        return Err(format!("cannot open ping {name} (ha.cf line {})", m.line));
                    }
                }
            }
            udp_kind => match UdpMedium::open(udp_kind, udp) {
                Ok(u) => {
                    hblog::emit(LogLevel::Info, &describe_udp(udp_kind));
                    Io::Udp(u)
                }
                Err(e) => return Err(format!("cannot open {name} (ha.cf line {}): {e}", m.line)),
            },
        };
        let to_self = match (&io, &m.kind) {
            (Io::Udp(u), MediumKind::Ucast { .. } | MediumKind::Ucast6 { .. }) => u
                .destination()
                .is_some_and(|d| is_own_address(d.ip(), udp.bind)),
            _ => false,
        };
        Ok(Link {
            name,
            io,
            to_self,
            write_errors: (0, 0),
        })
    }

    /// Whether our own side of this medium counts as up (3.0.6 hears itself on UDP media,
    /// never on a serial line).
    /// A ucast medium to this node's own address: nothing is sent on it.
    pub fn sends_to_self(&self) -> bool {
        self.to_self
    }

    pub fn own_side_up(&self) -> bool {
        matches!(self.io, Io::Udp(_))
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match &mut self.io {
            Io::Udp(u) => match u.recv_socket() {
                Some(sock) => registry.register(sock, token, Interest::READABLE),
                None => Ok(()),
            },
            Io::Serial { port: Some(p), .. } => registry.register(
                &mut SourceFd(&p.raw_fd()),
                token,
                Interest::READABLE | Interest::WRITABLE,
            ),
            Io::Ping { medium, .. } => {
                registry.register(&mut SourceFd(&medium.raw_fd()), token, Interest::READABLE)
            }
            _ => Ok(()),
        }
    }

    pub fn deregister(&mut self, registry: &Registry) {
        match &mut self.io {
            Io::Udp(u) => {
                if let Some(sock) = u.recv_socket() {
                    let _ = registry.deregister(sock);
                }
            }
            Io::Serial { port: Some(p), .. } => {
                let _ = registry.deregister(&mut SourceFd(&p.raw_fd()));
            }
            Io::Ping { medium, .. } => {
                let _ = registry.deregister(&mut SourceFd(&medium.raw_fd()));
            }
            _ => {}
        }
    }

    /// Something is readable or writable: read what arrived (one UDP datagram at a time).
    pub fn on_ready(&mut self, registry: &Registry, now_ms: u64, buf: &mut [u8]) -> Received {
        match &mut self.io {
            Io::Udp(u) => loop {
                match u.recv(buf) {
                    Ok(n) => return Received::Datagram(n),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Received::Drained,
                    Err(e) => {
                        hblog::emit(
                            LogLevel::Error,
                            &format!("read failure on {}: {e}", self.name),
                        );
                        return Received::Drained;
                    }
                }
            },
            Io::Serial { .. } => {
                let mut packets = Vec::new();
                let res = self
                    .serial_port()
                    .map(|p| p.read_available(&mut packets).and_then(|_| p.flush(now_ms)));
                if let Some(Err(e)) = res {
                    self.lose_serial(registry, now_ms, e);
                }
                self.serial_events(now_ms);
                Received::Packets(packets)
            }
            Io::Ping { medium, .. } => {
                let mut packets = Vec::new();
                medium.recv(&mut packets);
                Received::Packets(packets)
            }
        }
    }

    /// Send one signed netstring packet (serial lines carry it in classic form).
    /// Send one message in this medium's form: a signed netstring datagram over UDP, the
    /// classic form on a serial line, an echo request for each status message to a ping
    /// node.
    pub fn send(
        &mut self,
        registry: &Registry,
        enc: &mut Encoded<'_>,
        cluster: &Cluster,
        now_ms: u64,
    ) {
        let t = enc.t;
        let result = match &mut self.io {
            Io::Udp(_) if self.to_self => return,
            Io::Udp(u) => u.send(enc.udp(cluster)).map_err(|e| e.to_string()),
            Io::Serial { port: Some(p), .. } => match p.send(enc.classic(cluster), now_ms) {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.lose_serial(registry, now_ms, e);
                    return;
                }
            },
            Io::Ping { medium, inner_auth } => {
                // One echo request per status message, as 3.0.6 sends them.
                if !t.is_status() {
                    return;
                }
                medium
                    .send_for(&t.msg, cluster.authenticator(), *inner_auth)
                    .map_err(|e| e.to_string())
            }
            _ => return,
        };
        if let Err(e) = result {
            let (last, count) = &mut self.write_errors;
            *count += 1;
            if *last == 0 || now_ms >= *last + WRITE_ERROR_LOG_MS {
                hblog::emit(
                    LogLevel::Error,
                    &format!("write_child: write failure on {}.: {e}", self.name),
                );
                if *count > 1 {
                    hblog::emit(
                        LogLevel::Warn,
                        &format!(
                            "Is a cable unplugged on {}? ({count} write errors)",
                            self.name
                        ),
                    );
                }
                *last = now_ms.max(1);
                *count = 0;
            }
        }
    }

    /// When this link next needs `on_timer`.
    pub fn next_timer(&self) -> Option<u64> {
        match &self.io {
            Io::Serial { port: Some(p), .. } => p.next_timer(),
            Io::Serial {
                port: None, policy, ..
            } => policy.next_timer(),
            _ => None,
        }
    }

    /// Pace serial output; reopen a lost serial port when it is due.
    pub fn on_timer(&mut self, registry: &Registry, token: Token, now_ms: u64) {
        let Io::Serial {
            device,
            baud,
            lock_dir,
            port,
            policy,
            noise,
        } = &mut self.io
        else {
            return;
        };
        match port {
            Some(p) => {
                if let Err(e) = p.flush(now_ms) {
                    self.lose_serial(registry, now_ms, e);
                }
            }
            None if policy.due(now_ms) => match SerialMedium::open(device, *baud, lock_dir) {
                Ok(p) => {
                    let mut lines = policy.reopened(now_ms, device);
                    lines.push(serial::starting_line(device, *baud));
                    emit(lines);
                    *port = Some(Box::new(p));
                    *noise = (0, 0);
                    if let Err(e) = self.register(registry, token) {
                        hblog::emit(LogLevel::Error, &format!("cannot watch {}: {e}", self.name));
                    }
                }
                Err(e) => emit(policy.failed(now_ms, device, &e)),
            },
            None => {}
        }
    }

    fn serial_port(&mut self) -> Option<&mut SerialMedium> {
        match &mut self.io {
            Io::Serial { port: Some(p), .. } => Some(p),
            _ => None,
        }
    }

    fn serial_events(&mut self, now_ms: u64) {
        if let Io::Serial {
            device,
            port: Some(p),
            policy,
            noise,
            ..
        } = &mut self.io
        {
            // Skipped noise: counted by the framer, reported at most once a minute.
            let dropped = p.stats().framer.dropped_bytes;
            if dropped > noise.0 && (noise.1 == 0 || now_ms >= noise.1 + NOISE_LOG_MS) {
                hblog::emit(
                    LogLevel::Warn,
                    &format!(
                        "serial {device}: {} bytes of line noise or broken messages skipped",
                        dropped - noise.0
                    ),
                );
                *noise = (dropped, now_ms.max(1));
            }
            for ev in p.take_events() {
                emit(policy.event_lines(now_ms, device, &ev));
            }
        }
    }

    fn lose_serial(&mut self, registry: &Registry, now_ms: u64, err: serial::LinkError) {
        self.deregister(registry);
        if let Io::Serial {
            device,
            port,
            policy,
            ..
        } = &mut self.io
        {
            *port = None;
            emit(policy.lost(now_ms, device, &err));
        }
    }
}
