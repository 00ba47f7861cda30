//! One haresources resource -> one resource agent of the new engine.
//!
//! The argument forms are those of the v1 scripts in `resource.d/` (and resources.md §7): the
//! known ones go to the OCF agent of resource-agents that does the same job, with the
//! parameter names of that agent's metadata; any other script (a site's own, or an init script
//! called with arguments) runs unchanged through a generated OCF wrapper
//! ([`wrapper_agent`]); an `/etc/init.d` service without arguments is `lsb:`.

use std::net::Ipv4Addr;

use super::ScriptPlace;
use crate::config::Resource;

/// The OCF provider of the wrappers we generate for v1 scripts.
pub const WRAPPER_PROVIDER: &str = "heartbeat-v1";

/// A resource agent and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// `ocf`, `lsb`.
    pub class: String,
    pub provider: Option<String>,
    pub kind: String,
    pub params: Vec<(String, String)>,
    /// A short word for the resource's id (`ip-10.0.0.1`, `fs-srv`, ...).
    pub id_hint: String,
    /// The v1 script, when this is a generated wrapper for it.
    pub wrapped: Option<String>,
    /// What an operator must know about this mapping (a parameter the agent needs, an
    /// argument that had no equivalent).
    pub notes: Vec<String>,
}

impl Agent {
    fn ocf(provider: &str, kind: &str, id_hint: String) -> Agent {
        Agent {
            class: "ocf".into(),
            provider: Some(provider.into()),
            kind: kind.into(),
            params: Vec::new(),
            id_hint,
            wrapped: None,
            notes: Vec::new(),
        }
    }

    fn with(mut self, name: &str, value: impl Into<String>) -> Agent {
        let v = value.into();
        if !v.is_empty() {
            self.params.push((name.to_string(), v));
        }
        self
    }

    /// `ocf:heartbeat:IPaddr2`, `lsb:nfs-kernel-server`.
    pub fn spec(&self) -> String {
        match &self.provider {
            Some(p) => format!("{}:{}:{}", self.class, p, self.kind),
            None => format!("{}:{}", self.class, self.kind),
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_address(&self) -> bool {
        self.class == "ocf"
            && self.kind == "IPaddr2"
            && self.provider.as_deref() == Some("heartbeat")
    }
}

/// An IPv4 service address as IPaddr/IPaddr2 take it: `IP[/MASK[/NIC[:LABEL][/BROADCAST]]]`
/// or `IP/MASK/BROADCAST`; MASK a prefix length or a dotted netmask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSpec {
    pub ip: Ipv4Addr,
    pub prefix: Option<u8>,
    pub nic: Option<String>,
    pub label: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
}

pub fn parse_ip_spec(spec: &str) -> Result<IpSpec, String> {
    let mut parts = spec.split('/');
    let ip_s = parts.next().unwrap_or_default();
    let ip: Ipv4Addr = ip_s
        .parse()
        .map_err(|_| format!("not an IPv4 address: '{ip_s}' (in '{spec}')"))?;
    let mut out = IpSpec {
        ip,
        prefix: None,
        nic: None,
        label: None,
        broadcast: None,
    };
    if let Some(mask) = parts.next().filter(|m| !m.is_empty()) {
        out.prefix = Some(mask_to_prefix(mask).ok_or_else(|| {
            format!("bad netmask '{mask}' in '{spec}' (a prefix length or a dotted mask)")
        })?);
    }
    if let Some(field) = parts.next().filter(|f| !f.is_empty()) {
        let brd = if field.starts_with(|c: char| c.is_ascii_digit()) {
            Some(field)
        } else {
            match field.split_once(':') {
                Some((nic, label)) => {
                    out.nic = Some(nic.to_string());
                    out.label = Some(label.to_string()).filter(|l| !l.is_empty());
                }
                None => out.nic = Some(field.to_string()),
            }
            parts.next().filter(|b| !b.is_empty())
        };
        if let Some(b) = brd {
            out.broadcast = Some(
                b.parse()
                    .map_err(|_| format!("bad broadcast address '{b}' in '{spec}'"))?,
            );
        }
    }
    if parts.next().is_some() {
        return Err(format!("too many '/' fields in '{spec}'"));
    }
    Ok(out)
}

fn mask_to_prefix(mask: &str) -> Option<u8> {
    if let Ok(n) = mask.parse::<u8>() {
        return (n <= 32).then_some(n);
    }
    let m: Ipv4Addr = mask.parse().ok()?;
    let bits = u32::from(m);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// Map one resource. `place` is where 3.0.6 would find its script.
pub fn map(res: &Resource, place: ScriptPlace) -> Agent {
    // A site's own script of a known name wins over ours, as in 3.0.6's search order only
    // when it is not one of the stock names; the stock names are mapped by meaning.
    match known(res) {
        Some(Ok(agent)) => agent,
        Some(Err(why)) => {
            let mut a = wrapper(res);
            a.notes.push(format!(
                "{why}: not mapped to the OCF agent; the v1 script runs through the wrapper"
            ));
            a
        }
        None => match place {
            ScriptPlace::InitD if res.args.is_empty() => Agent {
                class: "lsb".into(),
                provider: None,
                kind: res.script.clone(),
                params: Vec::new(),
                id_hint: res.script.clone(),
                wrapped: None,
                notes: Vec::new(),
            },
            ScriptPlace::InitD => {
                let mut a = wrapper(res);
                a.notes.push(format!(
                    "/etc/init.d/{} is called with arguments, which lsb: cannot pass; it runs \
                     through the wrapper",
                    res.script
                ));
                a
            }
            ScriptPlace::ResourceD => wrapper(res),
            ScriptPlace::Missing => {
                let mut a = wrapper(res);
                a.notes.push(format!(
                    "no script {} in resource.d or /etc/init.d on this machine; the wrapper \
                     looks for it there when it runs",
                    res.script
                ));
                a
            }
        },
    }
}

fn wrapper(res: &Resource) -> Agent {
    let mut a = Agent::ocf(WRAPPER_PROVIDER, &super::ident(&res.script), {
        let mut h = res.script.to_ascii_lowercase();
        if let Some(first) = res.args.first() {
            h.push('-');
            h.push_str(first);
        }
        h
    });
    a.wrapped = Some(res.script.clone());
    if !res.args.is_empty() {
        a.params.push(("args".into(), res.args.join(" ")));
    }
    a
}

fn want(res: &Resource, min: usize, max: usize, usage: &str) -> Result<(), String> {
    let n = res.args.len();
    if n < min || n > max {
        Err(format!(
            "{} takes {usage}, given {n} argument(s)",
            res.script
        ))
    } else {
        Ok(())
    }
}

/// The stock v1 scripts. None: not one of them.
fn known(res: &Resource) -> Option<Result<Agent, String>> {
    let a = &res.args;
    let arg = |i: usize| a.get(i).cloned().unwrap_or_default();
    Some(match res.script.as_str() {
        "IPaddr" | "IPaddr2" => want(res, 1, 1, "IP[/MASK[/NIC[/BROADCAST]]]")
            .and_then(|_| parse_ip_spec(&a[0]))
            .map(|ip| {
                let mut ag = Agent::ocf("heartbeat", "IPaddr2", format!("ip-{}", ip.ip))
                    .with("ip", ip.ip.to_string())
                    .with(
                        "cidr_netmask",
                        ip.prefix.map(|p| p.to_string()).unwrap_or_default(),
                    )
                    .with("nic", ip.nic.clone().unwrap_or_default())
                    .with("iflabel", ip.label.clone().unwrap_or_default())
                    .with(
                        "broadcast",
                        ip.broadcast.map(|b| b.to_string()).unwrap_or_default(),
                    );
                if ip.prefix.is_none() || ip.nic.is_none() {
                    ag.notes.push(
                        "no netmask or interface given: IPaddr2 finds them from the routes, as \
                         the v1 script did"
                            .into(),
                    );
                }
                ag
            }),
        "Filesystem" => want(res, 2, 4, "DEVICE DIRECTORY [FSTYPE [OPTIONS]]").map(|_| {
            let mut ag = Agent::ocf(
                "heartbeat",
                "Filesystem",
                format!("fs-{}", arg(1).trim_matches('/')),
            )
            .with("device", arg(0))
            .with("directory", arg(1))
            .with("fstype", arg(2))
            .with("options", arg(3));
            if a.len() < 3 {
                ag.notes
                    .push("no FSTYPE: ocf:heartbeat:Filesystem requires fstype; add it".into());
            }
            ag
        }),
        "SendArp" => want(res, 1, 1, "IP/INTERFACE").and_then(|_| {
            let (ip, nic) = a[0]
                .split_once('/')
                .ok_or_else(|| format!("SendArp takes IP/INTERFACE, given '{}'", a[0]))?;
            Ok(Agent::ocf("heartbeat", "SendArp", format!("arp-{ip}"))
                .with("ip", ip)
                .with("nic", nic))
        }),
        "MailTo" => want(res, 1, 2, "ADDRESS[,ADDRESS...] [SUBJECT]").map(|_| {
            Agent::ocf("heartbeat", "MailTo", "mailto".into())
                .with("email", arg(0).replace(',', " "))
                .with("subject", arg(1))
        }),
        "apache" => want(res, 0, 1, "[CONFIGFILE]")
            .map(|_| Agent::ocf("heartbeat", "apache", "apache".into()).with("configfile", arg(0))),
        "LVM" => want(res, 1, 1, "VOLUMEGROUP").map(|_| {
            let mut ag = Agent::ocf("heartbeat", "LVM", format!("lvm-{}", arg(0)))
                .with("volgrpname", arg(0));
            ag.notes.push(
                "ocf:heartbeat:LVM activates the volume group as the v1 script did; \
                 ocf:heartbeat:LVM-activate is its successor (it needs vg_access_mode)"
                    .into(),
            );
            ag
        }),
        "Raid1" => want(res, 2, 2, "CONFIGFILE MDDEVICE").map(|_| {
            Agent::ocf(
                "heartbeat",
                "Raid1",
                format!("raid-{}", arg(1).trim_start_matches("/dev/")),
            )
            .with("raidconf", arg(0))
            .with("raiddev", arg(1))
        }),
        "Xinetd" => want(res, 1, 1, "SERVICE").map(|_| {
            Agent::ocf("heartbeat", "Xinetd", format!("xinetd-{}", arg(0))).with("service", arg(0))
        }),
        "IPsrcaddr" => want(res, 1, 1, "IP").map(|_| {
            Agent::ocf("heartbeat", "IPsrcaddr", format!("srcaddr-{}", arg(0)))
                .with("ipaddress", arg(0))
        }),
        "AudibleAlarm" => {
            Ok(Agent::ocf("heartbeat", "AudibleAlarm", "alarm".into())
                .with("nodelist", a.join(" ")))
        }
        "Delay" => want(res, 0, 2, "[STARTDELAY [STOPDELAY]]").map(|_| {
            Agent::ocf("heartbeat", "Delay", "delay".into())
                .with("startdelay", arg(0))
                .with("stopdelay", arg(1))
        }),
        _ => return None,
    })
}

/// The OCF wrapper that runs a v1 script under Pacemaker: start/stop/monitor call
/// `<script> <args...> start|stop|status` found as 3.0.6 finds it (`/etc/ha.d/resource.d`,
/// then `/etc/init.d`), and read `status` output the way 3.0.6 does (resources.md §7.2:
/// "not ... running" means stopped, else "running" or "OK" means running).
pub fn wrapper_agent(script: &str) -> String {
    let name = super::ident(script);
    let q = super::shq(script);
    format!(
        r#"#!/bin/sh
# OCF resource agent {prov}:{name}, generated by `heartbeat --export pacemaker`.
# Runs the Heartbeat v1 resource script {script} unchanged: the script is looked up as
# Heartbeat did (/etc/ha.d/resource.d, then /etc/init.d) and called as
#   {script} ARGS... start|stop|status
# with ARGS the resource's `args` parameter (the haresources '::' arguments, blank-separated).
# Install as /usr/lib/ocf/resource.d/{prov}/{name} (mode 755) on every node.

: "${{OCF_ROOT:=/usr/lib/ocf}}"
OCF_SUCCESS=0; OCF_ERR_GENERIC=1; OCF_ERR_ARGS=2; OCF_ERR_UNIMPLEMENTED=3
OCF_ERR_INSTALLED=5; OCF_NOT_RUNNING=7

script={q}
meta_data() {{
	cat <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="{name}" version="1.0">
<version>1.1</version>
<longdesc lang="en">Runs the Heartbeat v1 resource script {xscript} (generated wrapper).</longdesc>
<shortdesc lang="en">Heartbeat v1 script {xscript}</shortdesc>
<parameters>
<parameter name="args" unique="0" required="0">
<longdesc lang="en">The script's arguments (haresources '::' fields), separated by blanks.</longdesc>
<shortdesc lang="en">arguments</shortdesc>
<content type="string" default=""/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="120s"/>
<action name="stop" timeout="120s"/>
<action name="monitor" timeout="60s" interval="10s"/>
<action name="meta-data" timeout="5s"/>
<action name="validate-all" timeout="5s"/>
</actions>
</resource-agent>
EOF
}}

find_script() {{
	for d in /etc/ha.d/resource.d /etc/init.d; do
		if [ -x "$d/$script" ]; then
			echo "$d/$script"
			return 0
		fi
	done
	return 1
}}

# Heartbeat's scripts know which node they run on from HA_CURHOST.
HA_CURHOST=${{OCF_RESKEY_CRM_meta_on_node:-$(uname -n)}}
export HA_CURHOST

run() {{
	path=$(find_script) || {{
		echo "Cannot locate resource script $script" >&2
		exit $OCF_ERR_INSTALLED
	}}
	# shellcheck disable=SC2086 # the arguments are blank-separated on purpose
	"$path" ${{OCF_RESKEY_args:-}} "$1"
}}

case ${{1:-}} in
meta-data) meta_data; exit $OCF_SUCCESS ;;
validate-all) find_script >/dev/null || exit $OCF_ERR_INSTALLED; exit $OCF_SUCCESS ;;
start) run start >&2 && exit $OCF_SUCCESS; exit $OCF_ERR_GENERIC ;;
stop) run stop >&2 && exit $OCF_SUCCESS; exit $OCF_ERR_GENERIC ;;
monitor | status)
	[ "${{1:-}}" = monitor ] && ! find_script >/dev/null && exit $OCF_NOT_RUNNING
	out=$(run status 2>/dev/null)
	if printf '%s' "$out" | grep -qi 'not.*running'; then exit $OCF_NOT_RUNNING; fi
	if printf '%s' "$out" | grep -qi 'running' || printf '%s' "$out" | grep -q 'OK'; then
		exit $OCF_SUCCESS
	fi
	exit $OCF_NOT_RUNNING
	;;
*) exit $OCF_ERR_UNIMPLEMENTED ;;
esac
"#,
        prov = WRAPPER_PROVIDER,
        xscript = super::xml_attr(script),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::haresources::parse_resource;

    fn m(word: &str, place: ScriptPlace) -> Agent {
        map(&parse_resource(word).unwrap(), place)
    }

    #[test]
    fn ip_specs_in_every_v1_form() {
        let s = parse_ip_spec("10.0.0.5").unwrap();
        assert_eq!((s.prefix, s.nic.as_deref()), (None, None));
        let s = parse_ip_spec("10.0.0.5/24/eth0/10.0.0.255").unwrap();
        assert_eq!(s.prefix, Some(24));
        assert_eq!(s.nic.as_deref(), Some("eth0"));
        assert_eq!(s.broadcast, Some("10.0.0.255".parse().unwrap()));
        let s = parse_ip_spec("10.0.0.5/255.255.255.0/10.0.0.255").unwrap();
        assert_eq!((s.prefix, s.nic.as_deref()), (Some(24), None));
        assert_eq!(s.broadcast, Some("10.0.0.255".parse().unwrap()));
        let s = parse_ip_spec("10.0.0.5/16/eth1:web").unwrap();
        assert_eq!(s.nic.as_deref(), Some("eth1"));
        assert_eq!(s.label.as_deref(), Some("web"));
        assert!(parse_ip_spec("10.0.0.5/255.0.255.0").is_err());
        assert!(parse_ip_spec("10.0.0.5/33").is_err());
        assert!(parse_ip_spec("fe80::1").is_err());
        assert!(parse_ip_spec("10.0.0.5/24/eth0/10.0.0.255/x").is_err());
    }

    #[test]
    fn addresses_become_ipaddr2_with_netmask_and_nic() {
        for word in [
            "IPaddr::10.1.1.50/24/eth0",
            "IPaddr2::10.1.1.50/24/eth0",
            "10.1.1.50/24/eth0",
        ] {
            let a = m(word, ScriptPlace::ResourceD);
            assert_eq!(a.spec(), "ocf:heartbeat:IPaddr2", "{word}");
            assert_eq!(a.param("ip"), Some("10.1.1.50"));
            assert_eq!(a.param("cidr_netmask"), Some("24"));
            assert_eq!(a.param("nic"), Some("eth0"));
            assert!(a.notes.is_empty());
        }
        let a = m("10.1.1.50", ScriptPlace::ResourceD);
        assert_eq!(a.param("nic"), None);
        assert_eq!(a.notes.len(), 1);
    }

    #[test]
    fn stock_scripts_map_to_their_agents_with_metadata_names() {
        let a = m(
            "Filesystem::/dev/sdb1::/srv/nfs::ext4::noatime",
            ScriptPlace::ResourceD,
        );
        assert_eq!(a.spec(), "ocf:heartbeat:Filesystem");
        assert_eq!(
            a.params,
            [
                ("device", "/dev/sdb1"),
                ("directory", "/srv/nfs"),
                ("fstype", "ext4"),
                ("options", "noatime")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let a = m("Filesystem::/dev/sdb1::/srv/nfs", ScriptPlace::ResourceD);
        assert!(a.notes[0].contains("fstype"));
        let a = m("MailTo::root,ops::nfs-cluster", ScriptPlace::ResourceD);
        assert_eq!(a.param("email"), Some("root ops"));
        assert_eq!(a.param("subject"), Some("nfs-cluster"));
        assert_eq!(
            m("SendArp::10.0.0.1/eth0", ScriptPlace::ResourceD).param("nic"),
            Some("eth0")
        );
        assert_eq!(
            m("apache::/etc/apache2/apache2.conf", ScriptPlace::ResourceD).param("configfile"),
            Some("/etc/apache2/apache2.conf")
        );
        assert_eq!(
            m("LVM::vg_db", ScriptPlace::ResourceD).param("volgrpname"),
            Some("vg_db")
        );
        let a = m("Raid1::/etc/mdadm.conf::/dev/md0", ScriptPlace::ResourceD);
        assert_eq!(
            (a.param("raidconf"), a.param("raiddev")),
            (Some("/etc/mdadm.conf"), Some("/dev/md0"))
        );
        assert_eq!(
            m("Xinetd::tftp", ScriptPlace::ResourceD).param("service"),
            Some("tftp")
        );
        assert_eq!(
            m("IPsrcaddr::10.0.0.9", ScriptPlace::ResourceD).param("ipaddress"),
            Some("10.0.0.9")
        );
        assert_eq!(
            m("Delay::5::2", ScriptPlace::ResourceD).param("stopdelay"),
            Some("2")
        );
        assert_eq!(
            m("AudibleAlarm::a::b", ScriptPlace::ResourceD).param("nodelist"),
            Some("a b")
        );
    }

    #[test]
    fn bad_arguments_fall_back_to_the_wrapper_with_a_note() {
        let a = m("LVM::a::b", ScriptPlace::ResourceD);
        assert_eq!(a.spec(), "ocf:heartbeat-v1:LVM");
        assert_eq!(a.param("args"), Some("a b"));
        assert!(
            a.notes[0].contains("LVM takes VOLUMEGROUP"),
            "{:?}",
            a.notes
        );
        let a = m("IPaddr::10.0.0.300", ScriptPlace::ResourceD);
        assert_eq!(a.wrapped.as_deref(), Some("IPaddr"));
        assert!(a.notes[0].contains("not an IPv4 address"));
    }

    #[test]
    fn services_and_site_scripts() {
        let a = m("nfs-kernel-server", ScriptPlace::InitD);
        assert_eq!(a.spec(), "lsb:nfs-kernel-server");
        let a = m("postgresql::main", ScriptPlace::InitD);
        assert_eq!(a.spec(), "ocf:heartbeat-v1:postgresql");
        assert!(a.notes[0].contains("arguments"));
        let a = m("Marker::web::/tmp/m", ScriptPlace::ResourceD);
        assert_eq!(a.spec(), "ocf:heartbeat-v1:Marker");
        assert_eq!(a.param("args"), Some("web /tmp/m"));
        assert!(a.notes.is_empty());
        let a = m("nosuch", ScriptPlace::Missing);
        assert_eq!(a.spec(), "ocf:heartbeat-v1:nosuch");
        assert!(a.notes[0].contains("no script nosuch"));
    }

    #[test]
    fn wrapper_reads_status_like_heartbeat() {
        let w = wrapper_agent("Marker");
        assert!(w.contains("script=Marker"));
        assert!(w.contains("not.*running"));
        assert!(w.contains("<resource-agent name=\"Marker\""));
    }
}
