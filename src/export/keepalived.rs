//! `heartbeat --export keepalived`: for a pair whose groups are service addresses plus
//! services, one `keepalived.conf` per node and one notify script per group and node.
//!
//! Each haresources group is a VRRPv3 instance: its IPaddr/IPaddr2 addresses are the virtual
//! addresses, the preferred node has the higher priority (150 against 100), `auto_failback off`
//! is `nopreempt`; the rest of the group is started in order by the notify script when the
//! node becomes master and stopped in reverse order otherwise, the v1 scripts called as 3.0.6
//! calls them. Adverts go unicast between the two ucast addresses of a link when both are
//! known, else by VRRP multicast; `advert_int` is a third of deadtime (VRRP declares the
//! master down after three adverts).
//!
//! Refused, with the reason: more or fewer than two nodes, a group without an address, storage
//! in a group (Filesystem, LVM, Raid1, DRBD: keepalived cannot fence, a split brain would use it
//! on both nodes), a resource whose arguments do not parse.

use std::collections::BTreeSet;

use super::resources::{parse_ip_spec, IpSpec};
use super::{hr_place, ident, links, ping_hosts, shq, Export, Facts, File, NodeAddr, Note};
use crate::config::{AutoFailback, Config, Resource};

pub const PRIORITY_PREFERRED: u32 = 150;
pub const PRIORITY_OTHER: u32 = 100;

/// Scripts that manage storage: refused (no fencing in keepalived).
const STORAGE: &[&str] = &[
    "Filesystem",
    "LVM",
    "Raid1",
    "drbddisk",
    "drbdupper",
    "LinuxSCSI",
];

struct Instance {
    name: String,
    vrid: u8,
    preferred: usize,
    vips: Vec<IpSpec>,
    services: Vec<Resource>,
}

/// The VRRP router id of a group: stable for a cluster name and group key, 1..=255.
fn vrid(cluster: &str, key: &str, taken: &mut BTreeSet<u8>) -> u8 {
    // FNV-1a: a small, fixed hash (the value must not change between releases).
    let mut h: u32 = 0x811c_9dc5;
    for b in cluster.bytes().chain([0]).chain(key.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let mut v = (h % 255) as u8 + 1;
    while !taken.insert(v) {
        v = if v == 255 { 1 } else { v + 1 };
    }
    v
}

/// `advert_int` in seconds (VRRPv3 allows hundredths): a third of deadtime.
pub fn advert_int(deadtime_ms: u64) -> String {
    let cs = (deadtime_ms / 30).clamp(1, 4095);
    format!("{}.{:02}", cs / 100, cs % 100)
}

/// Export for keepalived, or the reasons it cannot be expressed.
pub fn export(cfg: &Config, facts: &Facts) -> Result<Export, Vec<Note>> {
    let mut refused = Vec::new();
    let mut ex = Export::default();
    let h = &cfg.hacf;
    if h.nodes.len() != 2 {
        refused.push(Note {
            place: String::new(),
            text: format!(
                "{} node(s): a keepalived export is for a pair (VRRP has one master); use \
                 --export pacemaker",
                h.nodes.len()
            ),
        });
    }
    if cfg.groups.is_empty() {
        refused.push(Note {
            place: String::new(),
            text: "haresources has no group: nothing for keepalived to move".into(),
        });
    }
    let mut taken = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut instances = Vec::new();
    for g in &cfg.groups {
        let place = hr_place(g.line);
        let mut vips = Vec::new();
        let mut services = Vec::new();
        let mut seen_service = false;
        for r in &g.resources {
            if STORAGE.contains(&r.script.as_str()) {
                refused.push(Note {
                    place: place.clone(),
                    text: format!(
                        "{}: storage; keepalived cannot fence, so after a split brain both \
                         nodes would use it. Use --export pacemaker (with stonith)",
                        r.spec
                    ),
                });
                continue;
            }
            match r.script.as_str() {
                "IPaddr" | "IPaddr2" => match r.args.as_slice() {
                    [one] => match parse_ip_spec(one) {
                        Ok(ip) => {
                            if seen_service {
                                ex.info.push(Note {
                                    place: place.clone(),
                                    text: format!(
                                        "{}: keepalived adds the addresses before the notify \
                                         script starts the services, so it now comes first",
                                        r.spec
                                    ),
                                });
                            }
                            if ip.prefix.is_none() {
                                ex.unmapped.push(Note {
                                    place: place.clone(),
                                    text: format!(
                                        "{}: no netmask given; keepalived adds it as /32 (the v1 \
                                         script looked for a matching route): add /PREFIX",
                                        r.spec
                                    ),
                                });
                            }
                            vips.push(ip);
                        }
                        Err(e) => refused.push(Note {
                            place: place.clone(),
                            text: format!("{}: {e}", r.spec),
                        }),
                    },
                    _ => refused.push(Note {
                        place: place.clone(),
                        text: format!("{}: takes one IP[/MASK[/NIC[/BROADCAST]]]", r.spec),
                    }),
                },
                "SendArp" => ex.info.push(Note {
                    place: place.clone(),
                    text: format!(
                        "{}: left out, keepalived sends gratuitous ARP for its addresses",
                        r.spec
                    ),
                }),
                _ => {
                    seen_service = true;
                    services.push(r.clone());
                }
            }
        }
        if instances.len() >= 255 {
            refused.push(Note {
                place: place.clone(),
                text: "more than 255 groups: VRRP has 255 router ids".into(),
            });
            continue;
        }
        if vips.is_empty() {
            refused.push(Note {
                place: place.clone(),
                text: format!(
                    "group {}: no IPaddr/IPaddr2 address, and a keepalived instance moves \
                     addresses; use --export pacemaker",
                    g.key()
                ),
            });
            continue;
        }
        let mut name = ident(&format!("hb-{}", vips[0].ip));
        while !names.insert(name.clone()) {
            name.push('x');
        }
        instances.push(Instance {
            name,
            vrid: vrid(&h.cluster, g.key(), &mut taken),
            preferred: h.nodes.iter().position(|n| *n == g.node).unwrap_or(0),
            vips,
            services,
        });
    }
    for (line, host) in ping_hosts(cfg) {
        ex.unmapped.push(Note {
            place: format!("ha.cf:{line}"),
            text: format!(
                "ping node {host}: not carried over; keepalived can follow it with a \
                 vrrp_script running ping and track_script"
            ),
        });
    }
    if h.stonith.is_some() {
        ex.unmapped.push(Note {
            place: String::new(),
            text: "stonith: keepalived does not fence; the device is not used".into(),
        });
    }
    for c in &h.clients {
        ex.unmapped.push(Note {
            place: format!("ha.cf:{}", c.line),
            text: format!("{}: keepalived does not run client programs", c.command),
        });
    }
    if !refused.is_empty() {
        return Err(refused);
    }

    let mut link_notes = Vec::new();
    let all_links = links(cfg, facts, &mut link_notes);
    let link = all_links.iter().find(|l| l.all_known());
    let vrrp_if = match link {
        Some(l) => l.ifname.clone(),
        None => {
            // Multicast VRRP on the interface of the first address (or the first link).
            let nic = instances
                .iter()
                .find_map(|i| i.vips.iter().find_map(|v| v.nic.clone()))
                .or_else(|| all_links.first().map(|l| l.ifname.clone()));
            match nic {
                Some(n) => {
                    ex.info.push(Note {
                        place: String::new(),
                        text: format!(
                            "no link with both nodes' addresses known: VRRP adverts go by \
                             multicast (224.0.0.18) on {n}"
                        ),
                    });
                    n
                }
                None => {
                    return Err(vec![Note {
                        place: String::new(),
                        text: "no interface to send VRRP adverts on: ha.cf has no UDP medium \
                               and no address names its interface"
                            .into(),
                    }])
                }
            }
        }
    };
    ex.unmapped.push(Note {
        place: String::new(),
        text: format!(
            "authkeys key {}: VRRPv3 (RFC 5798) has no authentication, so no key is carried \
             over; keep the VRRP link private (or filter VRRP, IP protocol 112, to the peer)",
            cfg.authkeys.active
        ),
    });
    ex.info.push(Note {
        place: String::new(),
        text: format!(
            "deadtime {} ms -> advert_int {} s (the master is declared down after 3 adverts)",
            h.deadtime_ms,
            advert_int(h.deadtime_ms)
        ),
    });
    ex.info.push(Note {
        place: String::new(),
        text: match h.auto_failback {
            AutoFailback::Off => {
                "auto_failback off -> nopreempt: an address stays where it runs".into()
            }
            _ => format!(
                "auto_failback on/legacy -> preempt: the preferred node (priority \
                 {PRIORITY_PREFERRED}, the other {PRIORITY_OTHER}) takes its addresses back"
            ),
        },
    });

    for (ni, node) in h.nodes.iter().enumerate() {
        let mut conf = format!(
            "# keepalived.conf for {node}, generated by `heartbeat --export keepalived` from {}\n\
             # Install as /etc/keepalived/keepalived.conf with the heartbeat-*.sh notify scripts\n\
             # of this directory; see REPORT.txt.\n\
             global_defs {{\n    router_id {node}\n    vrrp_version 3\n    script_user root\n    enable_script_security\n}}\n",
            h.path.display().to_string().replace("//", "/")
        );
        for inst in &instances {
            let script = format!("/etc/keepalived/heartbeat-{}.sh", inst.name);
            conf.push_str(&format!(
                "\nvrrp_instance {} {{\n    state BACKUP\n    interface {vrrp_if}\n    virtual_router_id {}\n    priority {}\n    advert_int {}\n",
                inst.name,
                inst.vrid,
                if ni == inst.preferred { PRIORITY_PREFERRED } else { PRIORITY_OTHER },
                advert_int(h.deadtime_ms)
            ));
            if h.auto_failback == AutoFailback::Off {
                conf.push_str("    nopreempt\n");
            }
            if let Some(l) = link {
                if let (NodeAddr::Addr(own), NodeAddr::Addr(peer)) =
                    (&l.addrs[ni], &l.addrs[1 - ni])
                {
                    conf.push_str(&format!(
                        "    unicast_src_ip {own}\n    unicast_peer {{\n        {peer}\n    }}\n"
                    ));
                }
            }
            conf.push_str("    virtual_ipaddress {\n");
            for v in &inst.vips {
                let mut line = format!("        {}", v.ip);
                if let Some(p) = v.prefix {
                    line.push_str(&format!("/{p}"));
                }
                if let Some(b) = v.broadcast {
                    line.push_str(&format!(" brd {b}"));
                }
                let dev = v.nic.clone().unwrap_or_else(|| vrrp_if.clone());
                line.push_str(&format!(" dev {dev}"));
                if let Some(lbl) = &v.label {
                    line.push_str(&format!(" label {dev}:{lbl}"));
                }
                conf.push_str(&line);
                conf.push('\n');
            }
            conf.push_str("    }\n");
            for (what, arg) in [
                ("master", "master"),
                ("backup", "backup"),
                ("fault", "fault"),
                ("stop", "stop"),
            ] {
                conf.push_str(&format!("    notify_{what} \"{script} {arg}\"\n"));
            }
            conf.push_str("}\n");
            ex.files.push(File::text(
                format!("{node}/heartbeat-{}.sh", inst.name),
                notify_script(node, inst),
                0o755,
            ));
        }
        ex.files
            .push(File::text(format!("{node}/keepalived.conf"), conf, 0o644));
    }
    for n in link_notes {
        if link.is_none() || !n.text.contains("the node name stands for it") {
            ex.unmapped.push(n);
        }
    }
    let report = ex.report(&format!(
        "heartbeat --export keepalived: {} instance(s)\n\nInstall each node's directory as \
         /etc/keepalived/ on that node (keepalived.conf and the heartbeat-*.sh notify scripts, \
         mode 755), keep /etc/ha.d/resource.d, then stop heartbeat and start keepalived.",
        instances.len()
    ));
    ex.files.push(File::text("REPORT.txt", report, 0o644));
    Ok(ex)
}

fn notify_script(node: &str, inst: &Instance) -> String {
    let mut calls_start = String::new();
    let mut calls_stop = String::new();
    for r in &inst.services {
        let words: Vec<String> = std::iter::once(r.script.clone())
            .chain(r.args.iter().cloned())
            .map(|w| shq(&w))
            .collect();
        calls_start.push_str(&format!("\tacquire {} || return 1\n", words.join(" ")));
        calls_stop.insert_str(0, &format!("\trelease {}\n", words.join(" ")));
    }
    if inst.services.is_empty() {
        calls_start.push_str("\t: # addresses only\n");
        calls_stop.push_str("\t: # addresses only\n");
    }
    let mut started_list = String::new();
    for r in &inst.services {
        started_list.push_str(&format!(" {}", shq(&r.spec)));
    }
    format!(
        r#"#!/bin/sh
# keepalived notify script for VRRP instance {name} on {node}, generated by
# `heartbeat --export keepalived`. keepalived has added the addresses when it runs
# "$0 master": then the rest of the haresources group starts in order ({count} resource(s):{list}).
# On backup, fault and stop they stop in reverse order. The v1 scripts are found and called
# as Heartbeat did: /etc/ha.d/resource.d, then /etc/init.d; SCRIPT ARGS... start|stop|status.

HA_CURHOST={node_q}
export HA_CURHOST
log() {{ logger -t heartbeat-keepalived -- "$*" 2>/dev/null || echo "$*" >&2; }}

locate() {{
	for d in /etc/ha.d/resource.d /etc/init.d; do
		if [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi
	done
	log "ERROR: Cannot locate resource script $1"
	return 1
}}

# Start unless its status says it runs (as Heartbeat's takegroup does).
acquire() {{
	path=$(locate "$1") || return 1
	shift
	out=$("$path" "$@" status 2>/dev/null)
	if ! printf '%s' "$out" | grep -qi 'not.*running' &&
		{{ printf '%s' "$out" | grep -qi 'running' || printf '%s' "$out" | grep -q 'OK'; }}; then
		return 0
	fi
	log "info: Running $path $* start"
	"$path" "$@" start && return 0
	log "ERROR: Return code $? from $path"
	return 1
}}

release() {{
	path=$(locate "$1") || return 1
	shift
	log "info: Running $path $* stop"
	"$path" "$@" stop || log "ERROR: Return code $? from $path"
}}

start_all() {{
{calls_start}}}

stop_all() {{
{calls_stop}}}

# One transition at a time: keepalived does not wait for a notify script.
lockdir=/run/lock
[ -d "$lockdir" ] && [ -w "$lockdir" ] || lockdir=${{TMPDIR:-/tmp}}
exec 9>"$lockdir/heartbeat-keepalived-{node_id}-{name}.lock"
flock 9 2>/dev/null || true
case ${{1:-}} in
master)
	if ! start_all; then
		log "CRIT: Giving up resources of {name}: a start failed"
		stop_all
		exit 1
	fi
	;;
backup | fault | stop) stop_all ;;
*) echo "usage: $0 master|backup|fault|stop" >&2; exit 2 ;;
esac
exit 0
"#,
        name = inst.name,
        node_q = shq(node),
        node_id = ident(node),
        count = inst.services.len(),
        list = started_list,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use std::path::Path;

    fn cfg(hacf: &str, hr: &str) -> Config {
        let (c, d) = config::check(
            hacf.as_bytes(),
            Path::new("ha.cf"),
            b"auth 1\n1 sha1 k\n",
            Path::new("authkeys"),
            None,
            Ok(hr.as_bytes()),
            Path::new("haresources"),
            "alice",
            None,
            true,
        );
        c.unwrap_or_else(|| panic!("{d:?}"))
    }

    fn facts() -> Facts {
        Facts {
            local_node: "alice".into(),
            local_addrs: vec![("eth1".into(), "10.0.0.1".parse().unwrap())],
            ..Facts::default()
        }
    }

    const PAIR: &str = "deadtime 6\nucast eth1 10.0.0.1\nucast eth1 10.0.0.2\nauto_failback on\nnode alice\nnode bob\n";

    #[test]
    fn advert_interval_is_a_third_of_deadtime() {
        assert_eq!(advert_int(6000), "2.00");
        assert_eq!(advert_int(4000), "1.33");
        assert_eq!(advert_int(10), "0.01");
    }

    #[test]
    fn a_pair_of_address_groups_becomes_two_instances_per_node() {
        let c = cfg(PAIR, "alice 10.0.0.100/24/eth0:www Marker::web Marker::cache\nbob IPaddr2::10.0.0.101/24 apache\n");
        let ex = export(&c, &facts()).unwrap();
        let a = ex.text("alice/keepalived.conf").unwrap();
        let b = ex.text("bob/keepalived.conf").unwrap();
        assert!(a.contains("vrrp_version 3"));
        // alice prefers the first group, bob the second.
        let first = |s: &str| {
            s.split("vrrp_instance hb-10.0.0.101")
                .next()
                .unwrap()
                .to_string()
        };
        assert!(
            first(&a).contains(&format!("priority {PRIORITY_PREFERRED}")),
            "{a}"
        );
        assert!(
            first(&b).contains(&format!("priority {PRIORITY_OTHER}")),
            "{b}"
        );
        assert!(
            a.contains("unicast_src_ip 10.0.0.1\n    unicast_peer {\n        10.0.0.2\n"),
            "{a}"
        );
        assert!(
            b.contains("unicast_src_ip 10.0.0.2\n    unicast_peer {\n        10.0.0.1\n"),
            "{b}"
        );
        assert!(a.contains("10.0.0.100/24 dev eth0 label eth0:www\n"), "{a}");
        assert!(a.contains("10.0.0.101/24 dev eth1\n"), "{a}");
        assert!(a.contains("advert_int 2.00\n") && !a.contains("nopreempt"));
        // The same router id on both nodes, different between groups.
        let vrids = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.contains("virtual_router_id"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(vrids(&a), vrids(&b));
        assert_ne!(vrids(&a)[0], vrids(&a)[1]);
        // The notify script starts the rest in order and stops it in reverse.
        let s = ex.text("alice/heartbeat-hb-10.0.0.100.sh").unwrap();
        let start = s.find("acquire Marker web").unwrap();
        assert!(start < s.find("acquire Marker cache").unwrap());
        assert!(s.find("release Marker cache").unwrap() < s.find("release Marker web").unwrap());
        assert!(s.contains("HA_CURHOST=alice\n"));
        assert!(ex.file("bob/heartbeat-hb-10.0.0.101.sh").unwrap().mode == 0o755);
        assert!(ex
            .text("REPORT.txt")
            .unwrap()
            .contains("VRRPv3 (RFC 5798) has no authentication"));

        let off = cfg(
            &PAIR.replace("auto_failback on", "auto_failback off"),
            "alice 10.0.0.100/24\n",
        );
        assert!(export(&off, &facts())
            .unwrap()
            .text("alice/keepalived.conf")
            .unwrap()
            .contains("    nopreempt\n"));
    }

    #[test]
    fn refusals_name_the_line_and_the_reason() {
        let c = cfg(
            PAIR,
            "alice 10.0.0.100 Filesystem::/dev/sdb1::/srv::ext4\nbob Marker::db\n",
        );
        let why: Vec<String> = export(&c, &facts())
            .unwrap_err()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert!(why.iter().any(|w| w.starts_with("haresources:1: Filesystem::/dev/sdb1::/srv::ext4: storage")), "{why:?}");
        assert!(
            why.iter()
                .any(|w| w.starts_with("haresources:2: group Marker::db: no IPaddr")),
            "{why:?}"
        );
        let trio = cfg(
            "ucast eth1 10.0.0.9\nnode alice\nnode bob\nnode carol\n",
            "alice 10.0.0.100\n",
        );
        let why = export(&trio, &facts()).unwrap_err();
        assert!(why[0].text.starts_with("3 node(s)"), "{why:?}");
    }

    #[test]
    fn more_groups_than_router_ids_are_refused_not_looped_over() {
        let hr: String = (0..256)
            .map(|i| format!("alice 10.1.{}.{}/24\n", i / 250, i % 250 + 1))
            .collect();
        let c = cfg(PAIR, &hr);
        let why = export(&c, &facts()).unwrap_err();
        assert_eq!(why.len(), 1, "{why:?}");
        assert_eq!(why[0].place, "haresources:256");
        assert!(why[0].text.contains("255 router ids"));
    }

    #[test]
    fn bcast_pairs_use_vrrp_multicast() {
        let c = cfg(
            "deadtime 6\nbcast eth1\nnode alice\nnode bob\n",
            "alice 10.0.0.100/24/eth1\n",
        );
        let mut f = facts();
        f.local_addrs.clear();
        let ex = export(&c, &f).unwrap();
        let a = ex.text("alice/keepalived.conf").unwrap();
        assert!(!a.contains("unicast"), "{a}");
        assert!(a.contains("interface eth1\n"), "{a}");
        assert!(ex.info.iter().any(|n| n.text.contains("multicast")));
    }
}
