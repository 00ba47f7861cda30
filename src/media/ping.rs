//! Ping nodes (`ping`, `ping6`, `ping_group`): a raw ICMP socket per medium. With every status
//! message we send an echo request whose payload is a signed `NS_st` message naming the ping
//! node; the echo that comes back is handled as a message from that node (links.md 3).

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvfrom, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
    SockaddrIn, SockaddrIn6, SockaddrStorage,
};

use crate::config::MediumKind;
use crate::wire::messages::{some, Message, PingEcho};
use crate::wire::{Authenticator, Msg};

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO: u8 = 8;
const ICMP6_ECHO: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;

pub struct PingMedium {
    sock: OwnedFd,
    v6: bool,
    /// The ping node's name (the address as written, or the group's name).
    node: String,
    targets: Vec<IpAddr>,
    group: bool,
    ident: u16,
    seq: u16,
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum = sum.wrapping_add(u32::from(word));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type, code 0, checksum, identifier (host byte order, as 3.0.6 stores it),
/// sequence (network order), payload. ICMPv6 checksums are filled in by the kernel.
pub fn echo_request(v6: bool, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![if v6 { ICMP6_ECHO } else { ICMP_ECHO }, 0, 0, 0];
    p.extend_from_slice(&ident.to_ne_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The payload of an echo reply carrying our identifier, from what a raw socket delivers
/// (IPv4: with the IP header; IPv6: without).
pub fn echo_reply_payload(v6: bool, ident: u16, packet: &[u8]) -> Option<&[u8]> {
    let icmp = if v6 {
        packet
    } else {
        let ihl = usize::from(*packet.first()? & 0x0f) * 4;
        packet.get(ihl..)?
    };
    let want = if v6 {
        ICMP6_ECHO_REPLY
    } else {
        ICMP_ECHO_REPLY
    };
    if icmp.len() < 8 || icmp[0] != want || icmp[4..6] != ident.to_ne_bytes() {
        return None;
    }
    Some(&icmp[8..])
}

fn resolve(host: &str, v6: bool) -> io::Result<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    (host, 0)
        .to_socket_addrs()?
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv6() == v6)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("unknown host: {host}")))
}

impl PingMedium {
    pub fn open(kind: &MediumKind) -> io::Result<PingMedium> {
        let (node, hosts, group, v6) = match kind {
            MediumKind::Ping { addr } => (addr.clone(), vec![addr.clone()], false, false),
            MediumKind::Ping6 { addr } => (addr.clone(), vec![addr.clone()], false, true),
            MediumKind::PingGroup { name, addrs } => (name.clone(), addrs.clone(), true, false),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a ping medium",
                ))
            }
        };
        let targets = hosts
            .iter()
            .map(|h| resolve(h, v6))
            .collect::<io::Result<Vec<_>>>()?;
        let (family, proto) = if v6 {
            (AddressFamily::Inet6, SockProtocol::IcmpV6)
        } else {
            (AddressFamily::Inet, SockProtocol::Icmp)
        };
        let sock = socket(
            family,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            proto,
        )
        .map_err(|e| io::Error::other(format!("Can't open RAW socket.: {}", e.desc())))?;
        Ok(PingMedium {
            sock,
            v6,
            node: node.to_ascii_lowercase(),
            targets,
            group,
            ident: (std::process::id() & 0xffff) as u16,
            seq: 0,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    pub fn is_group(&self) -> bool {
        self.group
    }

    /// For one of our status messages: the signed `NS_st` the ping node is to echo.
    pub fn send_for(
        &mut self,
        status: &Msg,
        auth: &Authenticator,
        inner_auth: bool,
    ) -> io::Result<()> {
        let mut m = Message::from(PingEcho {
            st: some("ping"),
            info: some(if self.group { "ping_group" } else { "ping" }),
        })
        .emit();
        m.add_str("src", &self.node)
            .add_str("ts", status.get_str("ts").unwrap_or("0"));
        if inner_auth {
            auth.add_inner_auth(&mut m);
        }
        let packet = echo_request(self.v6, self.ident, self.seq, &auth.encode_udp(&m));
        self.seq = self.seq.wrapping_add(1);
        let mut result = Ok(());
        for ip in &self.targets {
            let sent = match ip {
                IpAddr::V4(a) => sendto(
                    self.raw_fd(),
                    &packet,
                    &SockaddrIn::from(std::net::SocketAddrV4::new(*a, 0)),
                    MsgFlags::empty(),
                ),
                IpAddr::V6(a) => sendto(
                    self.raw_fd(),
                    &packet,
                    &SockaddrIn6::from(std::net::SocketAddrV6::new(*a, 0, 0, 0)),
                    MsgFlags::empty(),
                ),
            };
            if let Err(e) = sent {
                result = Err(io::Error::from(e));
            }
        }
        result
    }

    /// Everything readable now: the payloads of echo replies meant for us.
    pub fn recv(&mut self, out: &mut Vec<Vec<u8>>) {
        let mut buf = [0u8; 65536];
        loop {
            match recvfrom::<SockaddrStorage>(self.raw_fd(), &mut buf) {
                Ok((n, from)) => {
                    let from_ip: Option<IpAddr> = from.and_then(|f| {
                        f.as_sockaddr_in()
                            .map(|a| IpAddr::V4(a.ip()))
                            .or_else(|| f.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
                    });
                    // A group counts replies from its members only (a plain ping does not check).
                    if self.group && !from_ip.is_some_and(|ip| self.targets.contains(&ip)) {
                        continue;
                    }
                    if let Some(p) = echo_reply_payload(self.v6, self.ident, &buf[..n]) {
                        out.push(p.to_vec());
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }

    pub fn targets(&self) -> Vec<SocketAddr> {
        self.targets
            .iter()
            .map(|ip| SocketAddr::new(*ip, 0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_header() {
        // Echo request, id 0x0d09 in host order on x86 (pid 3337), seq 0, no payload.
        let p = echo_request(false, 3337, 0, &[]);
        assert_eq!(p[0], 8);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!(&p[6..8], &[0, 0]);
    }

    #[test]
    fn only_our_echo_replies_count() {
        let mut reply = echo_request(false, 77, 5, b"payload");
        reply[0] = ICMP_ECHO_REPLY;
        let mut ip = vec![0x45u8];
        ip.extend_from_slice(&[0u8; 19]);
        ip.extend_from_slice(&reply);
        assert_eq!(echo_reply_payload(false, 77, &ip), Some(&b"payload"[..]));
        assert_eq!(echo_reply_payload(false, 78, &ip), None);
        let mut req = ip.clone();
        req[20] = ICMP_ECHO;
        assert_eq!(echo_reply_payload(false, 77, &req), None);
        assert_eq!(echo_reply_payload(false, 77, &ip[..24]), None);
        assert_eq!(echo_reply_payload(false, 77, &[]), None);
    }
}
