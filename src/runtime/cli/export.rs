//! `heartbeat --export pacemaker|keepalived [--confdir DIR] [--output DIR]`: reads the three
//! files, gathers the facts `export` needs from this machine (our addresses, where each
//! resource script is, STONITH plugin parameter names, random bytes), runs the pure export and
//! writes its files.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::{self, Severity, Stonith};
use crate::export::{self, Export, Facts, ScriptPlace};

use crate::runtime::os::paths::Paths;

/// Exit status for a configuration that does not load (as `--check`).
const EXIT_CONFIG: u8 = 6;
/// Exit status when the engine cannot express the configuration, or files cannot be written.
const EXIT_REFUSED: u8 = 1;

fn local_addrs() -> Vec<(String, std::net::IpAddr)> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            let Some(a) = ifa.address.as_ref() else {
                continue;
            };
            let ip = if let Some(v4) = a.as_sockaddr_in() {
                std::net::IpAddr::V4(v4.ip())
            } else if let Some(v6) = a.as_sockaddr_in6() {
                std::net::IpAddr::V6(v6.ip())
            } else {
                continue;
            };
            out.push((ifa.interface_name.clone(), ip));
        }
    }
    out
}

fn executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn stonith_param_names(device_type: &str) -> Option<Vec<String>> {
    let out = Command::new("stonith")
        .args(["-t", device_type, "-n"])
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    })
}

/// Run the export; returns the exit status.
pub fn run(
    engine: &str,
    paths: &Paths,
    node: &str,
    output: Option<&Path>,
    node_addresses: &[String],
) -> u8 {
    let mut node_addrs = std::collections::BTreeMap::new();
    for spec in node_addresses {
        let parsed = spec.split_once('=').and_then(|(n, list)| {
            let addrs: Result<Vec<std::net::IpAddr>, _> =
                list.split(',').map(|a| a.trim().parse()).collect();
            addrs.ok().map(|a| (n.trim().to_ascii_lowercase(), a))
        });
        match parsed {
            Some((n, a)) if !n.is_empty() => {
                node_addrs.insert(n, a);
            }
            _ => {
                eprintln!("--node-address {spec}: expected NODE=ADDR[,ADDR...]");
                return EXIT_REFUSED;
            }
        }
    }
    let read = |name: &str| fs::read(paths.confdir.join(name));
    let hacf_path = paths.hacf();
    let hacf_text = match read("ha.cf") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", hacf_path.display());
            return EXIT_CONFIG;
        }
    };
    let ak_text = match read("authkeys") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", paths.authkeys().display());
            return EXIT_CONFIG;
        }
    };
    let hr_read = read("haresources");
    let hr_why;
    let hr_data = match &hr_read {
        Ok(data) => Ok(data.as_slice()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(config::Missing::NotFound),
        Err(e) => {
            hr_why = e.to_string();
            Err(config::Missing::Unreadable(&hr_why))
        }
    };
    // The export may run on a machine that is not a node: then ha.cf is read as its first node
    // would read it (only the "current node not in configuration" check depends on that).
    let local = node.to_ascii_lowercase();
    let hacf_decoded = config::decode_file(&hacf_text, &hacf_path, &mut Vec::new());
    let (probe, _) = config::hacf::parse_partial(&hacf_decoded, &hacf_path, &local, None, true);
    let as_node = if probe.nodes.contains(&local) || probe.nodes.is_empty() {
        local.clone()
    } else {
        probe.nodes[0].clone()
    };
    let (cfg, diags) = config::check(
        &hacf_text,
        &hacf_path,
        &ak_text,
        &paths.authkeys(),
        None,
        hr_data,
        &paths.haresources(),
        &as_node,
        None,
        true,
    );
    for d in diags.iter().filter(|d| d.severity == Severity::Error) {
        eprintln!("{d}");
    }
    let Some(cfg) = cfg else {
        eprintln!("heartbeat --export: the configuration has errors; nothing written");
        return EXIT_CONFIG;
    };

    let mut facts = Facts {
        local_node: local,
        local_addrs: local_addrs(),
        node_addrs,
        ..Facts::default()
    };
    for g in &cfg.groups {
        for r in &g.resources {
            let place = if executable(&paths.confdir.join("resource.d").join(&r.script)) {
                ScriptPlace::ResourceD
            } else if executable(&Path::new("/etc/init.d").join(&r.script)) {
                ScriptPlace::InitD
            } else {
                ScriptPlace::Missing
            };
            facts.scripts.insert(r.script.clone(), place);
        }
    }
    for n in facts.node_addrs.keys() {
        if !cfg.hacf.nodes.contains(n) {
            eprintln!(
                "--node-address: {n} is not a node of {}",
                hacf_path.display()
            );
            return EXIT_REFUSED;
        }
    }
    let stonith = export::stonith_per_node(&hacf_decoded, &hacf_path, &cfg.hacf.nodes);
    for (_, s) in &stonith {
        if let Stonith::Host { device_type, .. } = s {
            if let Some(names) = stonith_param_names(device_type) {
                facts.stonith_params.insert(device_type.clone(), names);
            }
        }
    }
    let mut random = vec![0u8; 256];
    if let Err(e) = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random)) {
        eprintln!("heartbeat --export: /dev/urandom: {e}");
        return EXIT_REFUSED;
    }
    facts.random = random;

    let result: Result<Export, Vec<export::Note>> = match engine {
        "pacemaker" => Ok(export::pacemaker::export(&cfg, &stonith, &facts)),
        _ => export::keepalived::export(&cfg, &facts),
    };
    let ex = match result {
        Ok(ex) => ex,
        Err(reasons) => {
            for r in &reasons {
                eprintln!("cannot export to {engine}: {r}");
            }
            eprintln!("heartbeat --export {engine}: nothing written");
            return EXIT_REFUSED;
        }
    };
    let out_dir = output
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("heartbeat-export-{engine}")));
    for f in &ex.files {
        let path = out_dir.join(&f.path);
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|_| {
                // Replace, so that the mode is the one we ask for (the key is 0400).
                let _ = fs::remove_file(&path);
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(f.mode)
                    .open(&path)?;
                std::io::Write::write_all(&mut file, &f.bytes)
            });
        if let Err(e) = written {
            eprintln!("{}: {e}", path.display());
            return EXIT_REFUSED;
        }
        println!("wrote {}", path.display());
    }
    for n in &ex.info {
        println!("note: {n}");
    }
    for n in &ex.unmapped {
        println!("not carried over: {n}");
    }
    println!(
        "heartbeat --export {engine}: {} file(s) in {}; {} item(s) not carried over (see REPORT.txt)",
        ex.files.len(),
        out_dir.display(),
        ex.unmapped.len()
    );
    0
}
