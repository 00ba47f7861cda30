//! UDP media: `ucast`, `ucast6`, `bcast`, `mcast` and `mcast6` (wire-protocol.md §13).
//!
//! Each medium owns two sockets, as 3.0.6 does: a send socket bound to an ephemeral port
//! (peers must not look at the source port) and a receive socket bound to the medium's port.
//! Both are non-blocking and close-on-exec. The receive socket is a [`mio::net::UdpSocket`]
//! so the event loop can register it.
//!
//! Socket options per medium:
//!
//! | medium | send socket | receive socket |
//! |---|---|---|
//! | ucast | `IP_TOS`=lowdelay, `SO_BINDTODEVICE`, `SO_REUSEPORT` | `0.0.0.0:port`, `SO_REUSEADDR`, `SO_REUSEPORT`, `SO_BINDTODEVICE` |
//! | ucast6 | `IPV6_TCLASS`=lowdelay, `SO_BINDTODEVICE`, `SO_REUSEPORT` | `[::]:port` (v6 only), same options |
//! | bcast | `SO_BROADCAST`, `SO_DONTROUTE`, to the interface's broadcast address | `0.0.0.0:port`, `SO_REUSEADDR`, no device binding |
//! | mcast | `IP_MULTICAST_IF`=interface address, `IP_MULTICAST_LOOP`, `IP_MULTICAST_TTL` | `group:port`, `SO_REUSEADDR`, `IP_ADD_MEMBERSHIP` on the interface address |
//! | mcast6 | `IPV6_MULTICAST_IF`=interface index, `IPV6_MULTICAST_LOOP`, `IPV6_MULTICAST_HOPS` | `[group]:port`, `SO_REUSEADDR`, `IPV6_ADD_MEMBERSHIP` on the interface |
//!
//! [`OpenOptions::bind`] is our addition for running several nodes on one host (tests on
//! loopback): see its documentation.

use std::io;
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs,
    UdpSocket as StdUdpSocket,
};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};

use crate::config::hacf::MediumKind;

/// `IPTOS_LOWDELAY`, the TOS 3.0.6 puts on ucast packets (seen on the wire as 0x10).
const IPTOS_LOWDELAY: libc::c_int = 0x10;

/// Options that are not part of the `ha.cf` medium line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Our addition (not in 3.0.6), for several nodes on one host, e.g. node A on 127.0.0.1
    /// and node B on 127.0.0.2 with the same port:
    ///
    /// * ucast/ucast6/mcast/mcast6 send sockets bind to `addr:0`;
    /// * ucast/ucast6 receive sockets bind to `addr:port` instead of the wildcard;
    /// * bcast/mcast receive sockets keep their wildcard/group address (a socket bound to a
    ///   unicast address never sees broadcasts or multicasts), bcast send binds to `addr:0`;
    /// * `SO_BINDTODEVICE` is skipped when `addr` is a loopback address, so `ucast lo
    ///   127.0.0.2` works without privileges;
    pub bind: Option<IpAddr>,
    /// Use this port instead of the one in the medium line (`udpport`).
    pub port_override: Option<u16>,
}

/// One opened UDP medium.
#[derive(Debug)]
pub struct UdpMedium {
    kind: MediumKind,
    port: u16,
    /// `None` for a ucast medium whose peer is ourselves: it sends nothing.
    send: Option<StdUdpSocket>,
    dest: Option<SocketAddr>,
    recv: Option<mio::net::UdpSocket>,
}

impl UdpMedium {
    /// Opens the send and receive sockets of a UDP medium.
    ///
    /// Errors carry a message naming the medium, the interface and what failed, fit for an
    /// `ERROR:` log line (e.g. `ucast: cannot bind socket to device hb0: No such device (os
    /// error 19)`). Non-UDP kinds (serial, ping) give an `InvalidInput` error.
    pub fn open(kind: &MediumKind, opts: &OpenOptions) -> io::Result<UdpMedium> {
        match kind {
            MediumKind::Ucast { ifname, peer, port } => open_ucast(
                kind,
                ifname,
                peer,
                opts.port_override.unwrap_or(*port),
                false,
                opts,
            ),
            MediumKind::Ucast6 { ifname, peer, port } => open_ucast(
                kind,
                ifname,
                peer,
                opts.port_override.unwrap_or(*port),
                true,
                opts,
            ),
            MediumKind::Bcast { ifname, port } => {
                open_bcast(kind, ifname, opts.port_override.unwrap_or(*port), opts)
            }
            MediumKind::Mcast {
                ifname,
                group,
                port,
                ttl,
                looped,
            } => open_mcast(
                kind,
                ifname,
                *group,
                opts.port_override.unwrap_or(*port),
                *ttl,
                *looped,
                opts,
            ),
            MediumKind::Mcast6 {
                ifname,
                group,
                port,
                hops,
                looped,
            } => open_mcast6(
                kind,
                ifname,
                *group,
                opts.port_override.unwrap_or(*port),
                *hops,
                *looped,
                opts,
            ),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a UDP medium", kind_word(kind)),
            )),
        }
    }

    /// Sends one packet to the medium's destination (a ucast medium addressed to ourselves
    /// included, as 3.0.6 does). The socket is non-blocking: a full send buffer
    /// gives `WouldBlock`, which the caller should treat as a lost packet (retransmission
    /// covers it). Other errors (`ENETUNREACH`, ...) are for the caller to log.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        match (&self.send, self.dest) {
            (Some(sock), Some(dest)) => {
                let n = sock.send_to(bytes, dest)?;
                if n != bytes.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("short UDP send: {n} of {} bytes", bytes.len()),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The receive socket, for `mio::Registry::register` (readable interest).
    pub fn recv_socket(&mut self) -> Option<&mut mio::net::UdpSocket> {
        self.recv.as_mut()
    }

    /// Reads one datagram into `buf` (the source address is ignored, as 3.0.6 does).
    /// `WouldBlock` when nothing is queued. A datagram larger than `buf` is truncated.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.recv.as_mut() {
            Some(sock) => sock.recv_from(buf).map(|(n, _)| n),
            None => Err(io::Error::from(io::ErrorKind::WouldBlock)),
        }
    }

    /// The medium as configured.
    pub fn kind(&self) -> &MediumKind {
        &self.kind
    }

    /// The link name (the interface): `hb0` in `Link bob:hb0 up.`.
    pub fn link_name(&self) -> String {
        self.kind.link_name()
    }

    /// The UDP port in use (after `port_override`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where packets go: the peer, the broadcast address or the group, with the port.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.dest
    }

    /// True when this medium sends (every UDP medium does).
    pub fn sends(&self) -> bool {
        self.send.is_some() && self.dest.is_some()
    }
}

/// Names of all network interfaces, in the order `getifaddrs` lists them, without duplicates.
/// Empty when `getifaddrs` fails.
pub fn interface_names() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            if !names.contains(&ifa.interface_name) {
                names.push(ifa.interface_name);
            }
        }
    }
    names
}

/// Every IPv4 and IPv6 address configured on this host's interfaces (loopback included).
/// Empty when `getifaddrs` fails.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            if let Some(ip) = ifa.address.as_ref().and_then(storage_ip) {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

fn storage_ip(s: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

fn kind_word(kind: &MediumKind) -> &'static str {
    match kind {
        MediumKind::Ucast { .. } => "ucast",
        MediumKind::Ucast6 { .. } => "ucast6",
        MediumKind::Bcast { .. } => "bcast",
        MediumKind::Mcast { .. } => "mcast",
        MediumKind::Mcast6 { .. } => "mcast6",
        MediumKind::Serial { .. } => "serial",
        MediumKind::Ping { .. } => "ping",
        MediumKind::Ping6 { .. } => "ping6",
        MediumKind::PingGroup { .. } => "ping_group",
    }
}

/// Prefixes an error with context, keeping its kind.
fn ctx(what: &str, err: impl Into<io::Error>) -> io::Error {
    let err: io::Error = err.into();
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A non-blocking, close-on-exec datagram socket of the given family.
fn new_socket(v6: bool) -> io::Result<OwnedFd> {
    let family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    socket::socket(
        family,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(io::Error::from)
}

fn bind_fd(fd: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(io::Error::from)
}

/// `setsockopt` for the few options nix does not wrap (`IP_MULTICAST_IF`,
/// `IPV6_MULTICAST_IF`, `IPV6_MULTICAST_LOOP`, `IPV6_ADD_MEMBERSHIP` with an interface).
fn setsockopt_raw<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `fd` is a live socket borrowed for the call; `value` points to `len` readable
    // bytes of a plain-data option struct that outlives the call; the kernel copies it.
    let rc =
        unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn is_loopback(ip: &IpAddr) -> bool {
    ip.is_loopback()
}

/// `SO_BINDTODEVICE`, with an error that says what is needed when it is refused.
fn bind_to_device(fd: &OwnedFd, what: &str, ifname: &str) -> io::Result<()> {
    let name = std::ffi::OsString::from(ifname);
    match socket::setsockopt(fd, sockopt::BindToDevice, &name) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{what}: cannot bind socket to device {ifname}: Operation not permitted \
                 (SO_BINDTODEVICE needs root or CAP_NET_RAW)"
            ),
        )),
        Err(e) => Err(ctx(
            &format!("{what}: cannot bind socket to device {ifname}"),
            e,
        )),
    }
}

fn interface_index(what: &str, ifname: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(ifname)
        .map_err(|e| ctx(&format!("{what}: interface {ifname} not found"), e))
}

/// Resolves a ucast peer given as an address or a host name.
fn resolve_peer(what: &str, peer: &str, port: u16, v6: bool) -> io::Result<IpAddr> {
    if let Ok(ip) = peer.parse::<IpAddr>() {
        if ip.is_ipv6() != v6 {
            return Err(invalid(format!(
                "{what}: peer {peer} is not an IPv{} address",
                if v6 { 6 } else { 4 }
            )));
        }
        return Ok(ip);
    }
    let addrs = (peer, port)
        .to_socket_addrs()
        .map_err(|e| ctx(&format!("{what}: cannot resolve peer {peer}"), e))?;
    addrs
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv6() == v6)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{what}: peer {peer} has no IPv{} address",
                    if v6 { 6 } else { 4 }
                ),
            )
        })
}

fn check_bind_family(what: &str, bind: Option<IpAddr>, v6: bool) -> io::Result<()> {
    match bind {
        Some(ip) if ip.is_ipv6() != v6 => Err(invalid(format!(
            "{what}: bind address {ip} is not an IPv{} address",
            if v6 { 6 } else { 4 }
        ))),
        _ => Ok(()),
    }
}

fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

fn to_mio(fd: OwnedFd) -> mio::net::UdpSocket {
    mio::net::UdpSocket::from_std(StdUdpSocket::from(fd))
}

fn open_ucast(
    kind: &MediumKind,
    ifname: &str,
    peer: &str,
    port: u16,
    v6: bool,
    opts: &OpenOptions,
) -> io::Result<UdpMedium> {
    let what = if v6 { "ucast6" } else { "ucast" };
    check_bind_family(what, opts.bind, v6)?;
    let peer_ip = resolve_peer(what, peer, port, v6)?;
    let bind_device = !opts.bind.as_ref().is_some_and(is_loopback);
    let ifindex = if bind_device {
        Some(interface_index(what, ifname)?)
    } else {
        None
    };

    // Receive socket.
    let rfd = new_socket(v6)?;
    if v6 {
        socket::setsockopt(&rfd, sockopt::Ipv6V6Only, &true)
            .map_err(|e| ctx(&format!("{what}: cannot set IPV6_V6ONLY"), e))?;
    }
    socket::setsockopt(&rfd, sockopt::ReuseAddr, &true)
        .map_err(|e| ctx(&format!("{what}: cannot set SO_REUSEADDR"), e))?;
    socket::setsockopt(&rfd, sockopt::ReusePort, &true)
        .map_err(|e| ctx(&format!("{what}: cannot set SO_REUSEPORT"), e))?;
    if bind_device {
        bind_to_device(&rfd, what, ifname)?;
    }
    let local = SocketAddr::new(opts.bind.unwrap_or_else(|| unspecified(v6)), port);
    bind_fd(&rfd, local).map_err(|e| ctx(&format!("{what}: cannot bind to {local}"), e))?;

    // Send socket. A line that names our own address is kept: 3.0.6 sends to itself too
    // (seen on the wire as `lo In 10.251.0.1 > 10.251.0.1.694`), which is how its own link
    // comes up (`Link alice:hb0 up.`, `cl_status hblinkstatus alice hb0` → `up`).
    let (send, dest) = {
        let sfd = new_socket(v6)?;
        if v6 {
            socket::setsockopt(&sfd, sockopt::Ipv6TClass, &IPTOS_LOWDELAY)
                .map_err(|e| ctx(&format!("{what}: cannot set IPV6_TCLASS"), e))?;
        } else {
            socket::setsockopt(&sfd, sockopt::IpTos, &IPTOS_LOWDELAY)
                .map_err(|e| ctx(&format!("{what}: cannot set IP_TOS"), e))?;
        }
        if bind_device {
            bind_to_device(&sfd, what, ifname)?;
        }
        socket::setsockopt(&sfd, sockopt::ReusePort, &true)
            .map_err(|e| ctx(&format!("{what}: cannot set SO_REUSEPORT"), e))?;
        if let Some(b) = opts.bind {
            bind_fd(&sfd, SocketAddr::new(b, 0))
                .map_err(|e| ctx(&format!("{what}: cannot bind to {b}"), e))?;
        }
        let dest = match peer_ip {
            IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, port)),
            IpAddr::V6(ip) => {
                // A link-local peer needs the scope of the interface it lives on.
                let scope = if (ip.segments()[0] & 0xffc0) == 0xfe80 {
                    match ifindex {
                        Some(i) => i,
                        None => interface_index(what, ifname).unwrap_or(0),
                    }
                } else {
                    0
                };
                SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))
            }
        };
        (Some(StdUdpSocket::from(sfd)), Some(dest))
    };

    Ok(UdpMedium {
        kind: kind.clone(),
        port,
        send,
        dest,
        recv: Some(to_mio(rfd)),
    })
}

/// The first IPv4 address of `ifname` and, when it has one, its broadcast address.
fn interface_v4(ifname: &str) -> Option<(Ipv4Addr, Option<Ipv4Addr>)> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for ifa in addrs {
        if ifa.interface_name != ifname {
            continue;
        }
        if let Some(sin) = ifa
            .address
            .as_ref()
            .and_then(|a| a.as_sockaddr_in().copied())
        {
            let bcast = ifa
                .broadcast
                .as_ref()
                .and_then(|b| b.as_sockaddr_in().map(|s| s.ip()));
            return Some((sin.ip(), bcast));
        }
    }
    None
}

fn open_bcast(
    kind: &MediumKind,
    ifname: &str,
    port: u16,
    opts: &OpenOptions,
) -> io::Result<UdpMedium> {
    let what = "bcast";
    check_bind_family(what, opts.bind, false)?;
    let (_, bcast) = interface_v4(ifname).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{what}: interface {ifname} not found or has no IPv4 address"),
        )
    })?;
    let bcast = bcast.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{what}: interface {ifname} has no broadcast address"),
        )
    })?;

    // Receive socket: the wildcard, no device binding (it hears the port on every
    // interface), even with `bind` (a unicast-bound socket never sees broadcasts).
    let rfd = new_socket(false)?;
    socket::setsockopt(&rfd, sockopt::ReuseAddr, &true)
        .map_err(|e| ctx(&format!("{what}: cannot set SO_REUSEADDR"), e))?;
    let local = SocketAddr::new(unspecified(false), port);
    bind_fd(&rfd, local).map_err(|e| ctx(&format!("{what}: cannot bind to {local}"), e))?;

    let sfd = new_socket(false)?;
    socket::setsockopt(&sfd, sockopt::Broadcast, &true)
        .map_err(|e| ctx(&format!("{what}: cannot set SO_BROADCAST"), e))?;
    socket::setsockopt(&sfd, sockopt::DontRoute, &true)
        .map_err(|e| ctx(&format!("{what}: cannot set SO_DONTROUTE"), e))?;
    if let Some(b) = opts.bind {
        bind_fd(&sfd, SocketAddr::new(b, 0))
            .map_err(|e| ctx(&format!("{what}: cannot bind to {b}"), e))?;
    }
    Ok(UdpMedium {
        kind: kind.clone(),
        port,
        send: Some(StdUdpSocket::from(sfd)),
        dest: Some(SocketAddr::V4(SocketAddrV4::new(bcast, port))),
        recv: Some(to_mio(rfd)),
    })
}

fn open_mcast(
    kind: &MediumKind,
    ifname: &str,
    group: Ipv4Addr,
    port: u16,
    ttl: u8,
    looped: bool,
    opts: &OpenOptions,
) -> io::Result<UdpMedium> {
    let what = "mcast";
    check_bind_family(what, opts.bind, false)?;
    if !group.is_multicast() {
        return Err(invalid(format!(
            "{what}: {group} is not a multicast address"
        )));
    }
    let (ifaddr, _) = interface_v4(ifname).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{what}: interface {ifname} not found or has no IPv4 address"),
        )
    })?;

    let rfd = new_socket(false)?;
    socket::setsockopt(&rfd, sockopt::ReuseAddr, &true)
        .map_err(|e| ctx(&format!("{what}: cannot set SO_REUSEADDR"), e))?;
    let local = SocketAddr::V4(SocketAddrV4::new(group, port));
    bind_fd(&rfd, local).map_err(|e| ctx(&format!("{what}: cannot bind to {local}"), e))?;
    let mreq = socket::IpMembershipRequest::new(group, Some(ifaddr));
    socket::setsockopt(&rfd, sockopt::IpAddMembership, &mreq).map_err(|e| {
        ctx(
            &format!("{what}: cannot join group {group} on {ifname} ({ifaddr})"),
            e,
        )
    })?;

    let sfd = new_socket(false)?;
    let ifaddr_c = libc::in_addr {
        s_addr: u32::from_ne_bytes(ifaddr.octets()),
    };
    setsockopt_raw(
        sfd.as_fd(),
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_IF,
        &ifaddr_c,
    )
    .map_err(|e| {
        ctx(
            &format!("{what}: cannot set IP_MULTICAST_IF to {ifaddr}"),
            e,
        )
    })?;
    socket::setsockopt(&sfd, sockopt::IpMulticastLoop, &looped)
        .map_err(|e| ctx(&format!("{what}: cannot set IP_MULTICAST_LOOP"), e))?;
    socket::setsockopt(&sfd, sockopt::IpMulticastTtl, &ttl)
        .map_err(|e| ctx(&format!("{what}: cannot set IP_MULTICAST_TTL"), e))?;
    if let Some(b) = opts.bind {
        bind_fd(&sfd, SocketAddr::new(b, 0))
            .map_err(|e| ctx(&format!("{what}: cannot bind to {b}"), e))?;
    }
    Ok(UdpMedium {
        kind: kind.clone(),
        port,
        send: Some(StdUdpSocket::from(sfd)),
        dest: Some(local),
        recv: Some(to_mio(rfd)),
    })
}

fn open_mcast6(
    kind: &MediumKind,
    ifname: &str,
    group: Ipv6Addr,
    port: u16,
    hops: u8,
    looped: bool,
    opts: &OpenOptions,
) -> io::Result<UdpMedium> {
    let what = "mcast6";
    check_bind_family(what, opts.bind, true)?;
    if !group.is_multicast() {
        return Err(invalid(format!(
            "{what}: {group} is not a multicast address"
        )));
    }
    let ifindex = interface_index(what, ifname)?;

    let rfd = new_socket(true)?;
    socket::setsockopt(&rfd, sockopt::Ipv6V6Only, &true)
        .map_err(|e| ctx(&format!("{what}: cannot set IPV6_V6ONLY"), e))?;
    socket::setsockopt(&rfd, sockopt::ReuseAddr, &true)
        .map_err(|e| ctx(&format!("{what}: cannot set SO_REUSEADDR"), e))?;
    let scope = if (group.segments()[0] & 0xff0f) == 0xff02 {
        ifindex
    } else {
        0
    };
    let local = SocketAddr::V6(SocketAddrV6::new(group, port, 0, scope));
    bind_fd(&rfd, local).map_err(|e| ctx(&format!("{what}: cannot bind to {local}"), e))?;
    let mreq = libc::ipv6_mreq {
        ipv6mr_multiaddr: libc::in6_addr {
            s6_addr: group.octets(),
        },
        ipv6mr_interface: ifindex,
    };
    setsockopt_raw(
        rfd.as_fd(),
        libc::IPPROTO_IPV6,
        libc::IPV6_ADD_MEMBERSHIP,
        &mreq,
    )
    .map_err(|e| ctx(&format!("{what}: cannot join group {group} on {ifname}"), e))?;

    let sfd = new_socket(true)?;
    let idx = ifindex as libc::c_int;
    setsockopt_raw(
        sfd.as_fd(),
        libc::IPPROTO_IPV6,
        libc::IPV6_MULTICAST_IF,
        &idx,
    )
    .map_err(|e| {
        ctx(
            &format!("{what}: cannot set IPV6_MULTICAST_IF to {ifname}"),
            e,
        )
    })?;
    let lp: libc::c_int = looped.into();
    setsockopt_raw(
        sfd.as_fd(),
        libc::IPPROTO_IPV6,
        libc::IPV6_MULTICAST_LOOP,
        &lp,
    )
    .map_err(|e| ctx(&format!("{what}: cannot set IPV6_MULTICAST_LOOP"), e))?;
    socket::setsockopt(&sfd, sockopt::Ipv6MulticastHops, &libc::c_int::from(hops))
        .map_err(|e| ctx(&format!("{what}: cannot set IPV6_MULTICAST_HOPS"), e))?;
    if let Some(b) = opts.bind {
        bind_fd(&sfd, SocketAddr::new(b, 0))
            .map_err(|e| ctx(&format!("{what}: cannot bind to {b}"), e))?;
    }
    Ok(UdpMedium {
        kind: kind.clone(),
        port,
        send: Some(StdUdpSocket::from(sfd)),
        dest: Some(local),
        recv: Some(to_mio(rfd)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A port unlikely to clash with other test runs on the same host.
    fn test_port(offset: u16) -> u16 {
        40000 + (std::process::id() % 10000) as u16 * 2 + offset
    }

    fn ucast(ifname: &str, peer: &str, port: u16) -> MediumKind {
        MediumKind::Ucast {
            ifname: ifname.into(),
            peer: peer.into(),
            port,
        }
    }

    fn opts(bind: &str) -> OpenOptions {
        OpenOptions {
            bind: Some(bind.parse().unwrap()),
            port_override: None,
        }
    }

    /// Waits (up to 3 s) for one datagram on `m`.
    fn recv_one(m: &mut UdpMedium) -> Vec<u8> {
        let mut poll = mio::Poll::new().unwrap();
        poll.registry()
            .register(
                m.recv_socket().unwrap(),
                mio::Token(1),
                mio::Interest::READABLE,
            )
            .unwrap();
        let mut events = mio::Events::with_capacity(4);
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = [0u8; 2048];
        loop {
            match m.recv(&mut buf) {
                Ok(n) => {
                    poll.registry()
                        .deregister(m.recv_socket().unwrap())
                        .unwrap();
                    return buf[..n].to_vec();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("recv on {:?}: {e}", m.kind()),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no datagram on {:?}", m.kind());
            poll.poll(&mut events, Some(left)).unwrap();
        }
    }

    #[test]
    fn ucast_two_nodes_on_loopback() {
        let port = test_port(0);
        let mut a = UdpMedium::open(&ucast("lo", "127.0.0.2", port), &opts("127.0.0.1")).unwrap();
        let mut b = UdpMedium::open(&ucast("lo", "127.0.0.1", port), &opts("127.0.0.2")).unwrap();
        assert!(a.sends() && b.sends());
        assert_eq!(
            a.destination(),
            Some(SocketAddr::new("127.0.0.2".parse().unwrap(), port))
        );
        a.send(b"from a").unwrap();
        assert_eq!(recv_one(&mut b), b"from a");
        b.send(b"from b").unwrap();
        assert_eq!(recv_one(&mut a), b"from b");
        assert_eq!(a.link_name(), "lo");
        assert_eq!(a.port(), port);
    }

    #[test]
    fn ucast_to_own_bind_address_hears_itself() {
        let port = test_port(1);
        let mut m = UdpMedium::open(
            &ucast("lo", "127.0.0.1", 1),
            &OpenOptions {
                bind: Some("127.0.0.1".parse().unwrap()),
                port_override: Some(port),
            },
        )
        .unwrap();
        assert!(m.sends());
        assert_eq!(
            m.destination(),
            Some(SocketAddr::from(([127, 0, 0, 1], port)))
        );
        assert_eq!(m.port(), port);
        m.send(b"to myself").unwrap();
        assert_eq!(recv_one(&mut m), b"to myself");
    }

    #[test]
    fn ucast_peer_by_host_name() {
        let port = test_port(0);
        let m = UdpMedium::open(&ucast("lo", "localhost", port), &opts("127.0.0.3")).unwrap();
        assert_eq!(
            m.destination(),
            Some(SocketAddr::new("127.0.0.1".parse().unwrap(), port))
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let serial = MediumKind::Serial {
            device: "/dev/ttyS0".into(),
            baud: 19200,
        };
        let e = UdpMedium::open(&serial, &OpenOptions::default()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

        let e = UdpMedium::open(&ucast("lo", "127.0.0.2", 1), &opts("::1")).unwrap_err();
        assert!(e.to_string().contains("not an IPv4 address"), "{e}");

        let e = UdpMedium::open(&ucast("lo", "no-such-host.invalid", 1), &opts("127.0.0.1"))
            .unwrap_err();
        assert!(e.to_string().contains("no-such-host.invalid"), "{e}");

        let e = UdpMedium::open(&ucast("nosuchif0", "127.0.0.2", 1), &OpenOptions::default())
            .unwrap_err();
        assert!(e.to_string().contains("nosuchif0"), "{e}");

        // Loopback has no broadcast address.
        let e = UdpMedium::open(
            &MediumKind::Bcast {
                ifname: "lo".into(),
                port: 1,
            },
            &OpenOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("broadcast"), "{e}");

        let mc = MediumKind::Mcast {
            ifname: "lo".into(),
            group: "10.0.0.1".parse().unwrap(),
            port: 1,
            ttl: 0,
            looped: true,
        };
        let e = UdpMedium::open(&mc, &OpenOptions::default()).unwrap_err();
        assert!(e.to_string().contains("not a multicast address"), "{e}");
    }

    #[test]
    fn interfaces_and_addresses() {
        assert!(interface_names().iter().any(|n| n == "lo"));
        assert!(local_addresses().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    /// Runs the privileged media tests of `netns_inner` in a private network namespace with a
    /// veth pair between two namespaces (no traffic ever leaves this host's sandbox).
    #[test]
    fn privileged_media_in_private_netns() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: bcast/mcast/SO_BINDTODEVICE tests need root");
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let script = r#"
set -e
ip link set lo up
unshare -n sleep 60 &
B=$!
trap 'kill $B 2>/dev/null' EXIT
i=0
while [ "$(readlink /proc/$B/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do
  sleep 0.05; i=$((i+1)); [ $i -lt 100 ]
done
ip link add hbt0 type veth peer name hbt1 netns $B
ip addr add 10.99.0.1/24 brd + dev hbt0
ip -6 addr add fd99::1/64 dev hbt0 nodad
ip link set hbt0 up
nsenter -t $B -n sh -c 'ip addr add 10.99.0.2/24 brd + dev hbt1 && ip -6 addr add fd99::2/64 dev hbt1 nodad && ip link set hbt1 up && ip link set lo up'
HB_TEST_NETNS_B=/proc/$B/ns/net "$0" --exact media::udp::tests::netns_inner --ignored --nocapture --test-threads=1
"#;
        let out = match std::process::Command::new("unshare")
            .args(["-n", "sh", "-c", script])
            .arg(&exe)
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                println!("skipped: cannot run unshare: {e}");
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !stdout.contains("netns_inner") {
            println!("skipped: cannot set up a private network namespace: {stderr}");
            return;
        }
        assert!(
            out.status.success(),
            "inner test failed:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
    }

    /// The body of `privileged_media_in_private_netns`; only meaningful inside it.
    #[test]
    #[ignore]
    fn netns_inner() {
        let Ok(netns_b) = std::env::var("HB_TEST_NETNS_B") else {
            println!("skipped: run by privileged_media_in_private_netns");
            return;
        };
        let port = 694;
        let group: Ipv4Addr = "239.0.0.94".parse().unwrap();
        let group6: Ipv6Addr = "ff02::694".parse().unwrap();
        let kinds_a = vec![
            ucast("hbt0", "10.99.0.2", port),
            MediumKind::Ucast6 {
                ifname: "hbt0".into(),
                peer: "fd99::2".into(),
                port,
            },
            MediumKind::Bcast {
                ifname: "hbt0".into(),
                port,
            },
            MediumKind::Mcast {
                ifname: "hbt0".into(),
                group,
                port,
                ttl: 1,
                looped: false,
            },
            MediumKind::Mcast6 {
                ifname: "hbt0".into(),
                group: group6,
                port,
                hops: 1,
                looped: false,
            },
        ];
        let kinds_b: Vec<MediumKind> = vec![
            ucast("hbt1", "10.99.0.1", port),
            MediumKind::Ucast6 {
                ifname: "hbt1".into(),
                peer: "fd99::1".into(),
                port,
            },
            MediumKind::Bcast {
                ifname: "hbt1".into(),
                port,
            },
            MediumKind::Mcast {
                ifname: "hbt1".into(),
                group,
                port,
                ttl: 1,
                looped: false,
            },
            MediumKind::Mcast6 {
                ifname: "hbt1".into(),
                group: group6,
                port,
                hops: 1,
                looped: false,
            },
        ];
        // Node A lives in this thread's namespace; node B's sockets are made by a thread that
        // entered the other namespace (a socket stays in the namespace it was created in).
        let mut a: Vec<UdpMedium> = Vec::new();
        for k in &kinds_a {
            a.push(
                UdpMedium::open(k, &OpenOptions::default())
                    .unwrap_or_else(|e| panic!("{k:?}: {e}")),
            );
        }
        let mut b: Vec<UdpMedium> = std::thread::spawn(move || {
            let f = std::fs::File::open(netns_b).unwrap();
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            kinds_b
                .iter()
                .map(|k| {
                    UdpMedium::open(k, &OpenOptions::default())
                        .unwrap_or_else(|e| panic!("{k:?}: {e}"))
                })
                .collect()
        })
        .join()
        .unwrap();
        assert_eq!(a[2].destination(), Some("10.99.0.255:694".parse().unwrap()));
        // ucast, ucast6, mcast6: both directions. bcast and mcast: A to B.
        for i in 0..a.len() {
            let msg = format!("a->b {:?}", a[i].kind());
            a[i].send(msg.as_bytes()).unwrap();
            // Several receive sockets listen on port 694; only the medium's own must get it,
            // and bcast sockets hear everything sent to the port, so read the one we expect.
            assert_eq!(recv_one(&mut b[i]), msg.as_bytes(), "{:?}", a[i].kind());
            // Drain whatever the other sockets of B heard.
            let mut buf = [0u8; 2048];
            for m in b.iter_mut() {
                while m.recv(&mut buf).is_ok() {}
            }
        }
        // A hears its own broadcasts too (as 3.0.6 nodes do): drain them first.
        let mut buf = [0u8; 2048];
        for m in a.iter_mut() {
            while m.recv(&mut buf).is_ok() {}
        }
        b[0].send(b"b->a").unwrap();
        assert_eq!(recv_one(&mut a[0]), b"b->a");
        println!("netns media exchange ok");
    }
}
