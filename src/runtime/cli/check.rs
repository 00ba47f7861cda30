//! The machine checks of `heartbeat --check`: what the files say, held against this machine
//! (host names, devices, users, programs, scripts, directories). Each finding names the file
//! and line of the setting and the machine fact that failed. The files' own rules are in
//! `src/config` (pure); this module only asks the machine, through [`Machine`], so the rules
//! here are tested against a made-up machine too.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv6Addr, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::hacf::{MediumKind, Stonith, BUILTIN_CLIENTS};
use crate::config::{Checked, Diagnostic};

/// What a path is on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFact {
    Missing,
    Dir,
    /// A regular file and its permission bits.
    File {
        mode: u32,
    },
    CharDevice,
    Other,
}

/// The facts the checks need. [`System`] asks the real machine.
pub trait Machine {
    /// Resolve a host name to an address (`Err`: the resolver's answer).
    fn resolve(&self, host: &str) -> Result<(), String>;
    /// What is at `path` (following symbolic links).
    fn file(&self, path: &Path) -> FileFact;
    /// Whether a user of this name exists (`Err`: the user database could not be read).
    fn user_exists(&self, name: &str) -> Result<bool, String>;
    /// The STONITH device types cluster-glue offers here (`stonith -L`; `Err`: why not known).
    fn stonith_types(&self) -> Result<Vec<String>, String>;
}

/// The machine this runs on.
pub struct System;

impl Machine for System {
    fn resolve(&self, host: &str) -> Result<(), String> {
        match (host, 0u16).to_socket_addrs() {
            Ok(mut addrs) => {
                if addrs.next().is_some() {
                    Ok(())
                } else {
                    Err("no address".to_string())
                }
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn file(&self, path: &Path) -> FileFact {
        match fs::metadata(path) {
            Err(_) => FileFact::Missing,
            Ok(m) if m.is_dir() => FileFact::Dir,
            Ok(m) if m.is_file() => FileFact::File {
                mode: m.permissions().mode() & 0o7777,
            },
            Ok(m) if m.file_type().is_char_device() => FileFact::CharDevice,
            Ok(_) => FileFact::Other,
        }
    }

    fn stonith_types(&self) -> Result<Vec<String>, String> {
        let prog = crate::runtime::children::stonith::program();
        let out = std::process::Command::new(&prog)
            .arg("-L")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", prog.display()))?;
        if !out.status.success() {
            return Err(format!("{} -L failed ({})", prog.display(), out.status));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect())
    }

    fn user_exists(&self, name: &str) -> Result<bool, String> {
        if name.contains('\0') {
            return Ok(false);
        }
        match nix::unistd::User::from_name(name) {
            Ok(u) => Ok(u.is_some()),
            Err(e) => Err(io::Error::from(e).to_string()),
        }
    }
}

/// Where resource scripts are looked for: `resource.d` of the configuration, then init.d.
pub fn script_dirs(resource_dir: &Path) -> [PathBuf; 2] {
    [resource_dir.to_path_buf(), PathBuf::from("/etc/init.d")]
}

fn is_ip_literal(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
        || host
            .split('%')
            .next()
            .is_some_and(|a| a.parse::<Ipv6Addr>().is_ok())
}

fn describe(fact: FileFact) -> String {
    match fact {
        FileFact::Missing => "there is no such file on this machine".to_string(),
        FileFact::Dir => "it is a directory on this machine".to_string(),
        FileFact::File { mode } => {
            format!("it is a regular file of mode {mode:04o} on this machine")
        }
        FileFact::CharDevice => "it is a character device on this machine".to_string(),
        FileFact::Other => "it is not a regular file or device on this machine".to_string(),
    }
}

fn executable(fact: FileFact) -> bool {
    matches!(fact, FileFact::File { mode } if mode & 0o111 != 0)
}

/// Every machine finding for what was read. `resource_dir` is `<confdir>/resource.d`.
pub fn machine_findings(
    checked: &Checked,
    resource_dir: &Path,
    haresources_path: &Path,
    m: &dyn Machine,
) -> Vec<Diagnostic> {
    let cfg = &checked.hacf;
    let hacf = cfg.path.as_path();
    let mut out = Vec::new();

    for medium in &cfg.media {
        let line = medium.line;
        match &medium.kind {
            MediumKind::Ucast { ifname, peer, .. } | MediumKind::Ucast6 { ifname, peer, .. } => {
                if is_ip_literal(peer) {
                    continue;
                }
                if let Err(why) = m.resolve(peer) {
                    out.push(Diagnostic::error(
                        hacf,
                        line,
                        format!(
                            "ucast: [{ifname}] cannot resolve hostname [{peer}] (this machine's \
                             resolver says: {why})"
                        ),
                    ));
                }
            }
            MediumKind::Serial { device, .. } => {
                let fact = m.file(Path::new(device));
                if fact != FileFact::CharDevice {
                    out.push(Diagnostic::error(
                        hacf,
                        line,
                        format!(
                            "glib: Nonexistent serial port [{device}] in config file ({}; a \
                             serial port is a character device)",
                            describe(fact)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }

    if let Some(st) = &cfg.stonith {
        let (line, device_type) = match st {
            Stonith::File {
                line, device_type, ..
            }
            | Stonith::Host {
                line, device_type, ..
            } => (*line, device_type),
        };
        match m.stonith_types() {
            Ok(types) if types.iter().any(|t| t == device_type) => {}
            // 3.0.6 refuses the configuration: cluster-glue has no such plugin.
            Ok(_) => out.push(Diagnostic::error(
                hacf,
                line,
                format!(
                    "Invalid Stonith type [{device_type}] (cluster-glue's `stonith -L` on \
                     this machine does not list it)"
                ),
            )),
            Err(why) => out.push(Diagnostic::warning(
                hacf,
                line,
                format!(
                    "STONITH type [{device_type}] not checked: cluster-glue's device list is \
                     not available on this machine ({why}); without it no node can be reset"
                ),
            )),
        }
    }

    if let Some(dev) = &cfg.watchdog {
        let fact = m.file(dev);
        if fact != FileFact::CharDevice {
            let line = cfg.directive_lines.get("watchdog").copied().unwrap_or(0);
            out.push(Diagnostic::warning(
                hacf,
                line,
                format!(
                    "Cannot open watchdog device: {} ({}; load a watchdog driver, e.g. \
                     softdog): heartbeat would run without a watchdog",
                    dev.display(),
                    describe(fact)
                ),
            ));
        }
    }

    for (name, path) in [("logfile", &cfg.logfile), ("debugfile", &cfg.debugfile)] {
        let Some(path) = path else { continue };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let fact = m.file(dir);
        if fact != FileFact::Dir {
            let line = cfg.directive_lines.get(name).copied().unwrap_or(0);
            out.push(Diagnostic::warning(
                hacf,
                line,
                format!(
                    "{name} {}: its directory {} cannot hold it ({}): these log lines would be \
                     lost",
                    path.display(),
                    dir.display(),
                    describe(fact)
                ),
            ));
        }
    }

    for client in &cfg.clients {
        match m.user_exists(&client.user) {
            Ok(true) => {}
            Ok(false) => out.push(Diagnostic::error(
                hacf,
                client.line,
                format!(
                    "Invalid uid [{}] specified for client child (there is no such user on this \
                     machine)",
                    client.user
                ),
            )),
            Err(why) => out.push(Diagnostic::warning(
                hacf,
                client.line,
                format!(
                    "cannot check the user [{}] of this client child: {why}",
                    client.user
                ),
            )),
        }
        let program = client.path.rsplit('/').next().unwrap_or_default();
        if BUILTIN_CLIENTS.contains(&program) {
            // Run inside the daemon: no binary needed.
            continue;
        }
        let path = crate::config::bytes::to_path(&client.path);
        let fact = m.file(&path);
        if !executable(fact) {
            out.push(Diagnostic::error(
                hacf,
                client.line,
                format!(
                    "Client child command [{}] is not executable ({})",
                    client.path,
                    describe(fact)
                ),
            ));
        }
    }

    out.sort_by_key(|d| d.line);
    let dirs = script_dirs(resource_dir);
    for group in &checked.groups {
        let mut seen: Vec<&str> = Vec::new();
        for r in &group.resources {
            if seen.contains(&r.script.as_str()) {
                continue;
            }
            seen.push(&r.script);
            let script = crate::config::bytes::to_path(&r.script);
            let candidates: Vec<(PathBuf, FileFact)> = dirs
                .iter()
                .map(|d| {
                    let p = d.join(&script);
                    let f = m.file(&p);
                    (p, f)
                })
                .collect();
            if candidates.iter().any(|(_, f)| executable(*f)) {
                continue;
            }
            let facts: Vec<String> = candidates
                .iter()
                .map(|(p, f)| format!("{}: {}", p.display(), describe(*f)))
                .collect();
            out.push(Diagnostic::error(
                haresources_path,
                group.line,
                format!(
                    "Cannot locate resource script {} (no executable script in {} or \
                     /etc/init.d; {}): taking over the group [{}] would fail",
                    r.script,
                    resource_dir.display(),
                    facts.join("; "),
                    group.key()
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A made-up machine: the files, users and host names it has.
    #[derive(Default)]
    struct Fake {
        files: BTreeMap<PathBuf, FileFact>,
        users: Vec<&'static str>,
        hosts: Vec<&'static str>,
        /// `stonith -L` (None: cluster-glue missing).
        stonith: Option<Vec<&'static str>>,
    }

    impl Machine for Fake {
        fn resolve(&self, host: &str) -> Result<(), String> {
            if self.hosts.contains(&host) {
                Ok(())
            } else {
                Err("Name or service not known".into())
            }
        }
        fn file(&self, path: &Path) -> FileFact {
            self.files.get(path).copied().unwrap_or(FileFact::Missing)
        }
        fn user_exists(&self, name: &str) -> Result<bool, String> {
            Ok(self.users.contains(&name))
        }
        fn stonith_types(&self) -> Result<Vec<String>, String> {
            match &self.stonith {
                Some(t) => Ok(t.iter().map(|s| s.to_string()).collect()),
                None => Err("cannot run /usr/sbin/stonith: No such file or directory".into()),
            }
        }
    }

    fn checked(hacf: &str, res: &str) -> Checked {
        crate::config::check_partial(
            hacf.as_bytes(),
            Path::new("/c/ha.cf"),
            b"auth 1\n1 crc\n",
            Path::new("/c/authkeys"),
            None,
            Ok(res.as_bytes()),
            Path::new("/c/haresources"),
            "alice",
            None,
            true,
        )
    }

    fn good_machine() -> Fake {
        let mut f = Fake {
            users: vec!["hacluster"],
            hosts: vec!["bob.example"],
            stonith: Some(vec!["null", "external/ssh", "meatware"]),
            ..Fake::default()
        };
        for (p, fact) in [
            ("/var/log", FileFact::Dir),
            ("/dev/ttyS0", FileFact::CharDevice),
            ("/dev/watchdog", FileFact::CharDevice),
            ("/usr/bin/mon", FileFact::File { mode: 0o755 }),
            ("/c/resource.d/Marker", FileFact::File { mode: 0o755 }),
            ("/etc/init.d/apache2", FileFact::File { mode: 0o755 }),
        ] {
            f.files.insert(PathBuf::from(p), fact);
        }
        f
    }

    const HACF: &str = "logfile /var/log/ha-log\nnode alice bob\nucast hb0 bob.example\n\
                        serial /dev/ttyS0\nwatchdog /dev/watchdog\n\
                        respawn hacluster /usr/bin/mon -d\n\
                        respawn hacluster /usr/lib/heartbeat/ipfail\nauto_failback on\n";
    const RES: &str = "alice Marker::a apache2\n";

    fn findings(hacf: &str, res: &str, m: &Fake) -> Vec<String> {
        let c = checked(hacf, res);
        machine_findings(
            &c,
            Path::new("/c/resource.d"),
            Path::new("/c/haresources"),
            m,
        )
        .iter()
        .map(|d| d.to_string())
        .collect()
    }

    #[test]
    fn a_machine_that_has_everything_gives_no_finding() {
        assert_eq!(findings(HACF, RES, &good_machine()), Vec::<String>::new());
    }

    #[test]
    fn each_missing_fact_is_one_finding_at_its_line() {
        let mut m = good_machine();
        m.hosts.clear();
        m.users.clear();
        m.files.clear();
        m.files
            .insert("/usr/bin/mon".into(), FileFact::File { mode: 0o644 });
        let f = findings(HACF, RES, &m);
        let expect = [
            "/c/ha.cf:3: error: ucast: [hb0] cannot resolve hostname [bob.example] (this machine's resolver says: Name or service not known)",
            "/c/ha.cf:4: error: glib: Nonexistent serial port [/dev/ttyS0] in config file (there is no such file on this machine; a serial port is a character device)",
            "/c/ha.cf:5: warning: Cannot open watchdog device: /dev/watchdog (there is no such file on this machine; load a watchdog driver, e.g. softdog): heartbeat would run without a watchdog",
            "/c/ha.cf:1: warning: logfile /var/log/ha-log: its directory /var/log cannot hold it (there is no such file on this machine): these log lines would be lost",
            "/c/ha.cf:6: error: Invalid uid [hacluster] specified for client child (there is no such user on this machine)",
            "/c/ha.cf:6: error: Client child command [/usr/bin/mon] is not executable (it is a regular file of mode 0644 on this machine)",
            "/c/ha.cf:7: error: Invalid uid [hacluster] specified for client child (there is no such user on this machine)",
        ];
        for e in expect {
            assert!(f.iter().any(|l| l == e), "missing {e:?} in {f:#?}");
        }
        let scripts: Vec<&String> = f.iter().filter(|l| l.contains("resource script")).collect();
        assert_eq!(scripts.len(), 2, "{scripts:#?}");
        assert!(scripts[0].starts_with(
            "/c/haresources:1: error: Cannot locate resource script Marker (no executable script in /c/resource.d or /etc/init.d; /c/resource.d/Marker: there is no such file on this machine; /etc/init.d/Marker: there is no such file on this machine): taking over the group [Marker::a] would fail"
        ));
        assert_eq!(f.len(), expect.len() + 2, "{f:#?}");
    }

    #[test]
    fn ip_literals_are_never_resolved_and_builtin_clients_need_no_binary() {
        let m = Fake {
            files: good_machine().files,
            users: vec!["hacluster"],
            hosts: vec![],
            stonith: None,
        };
        let hacf = "logfile /var/log/ha-log\nnode alice bob\nucast hb0 10.0.0.2\n\
                    ucast6 hb0 fe80::1%hb0\nrespawn hacluster /usr/lib/heartbeat/dopd\n";
        assert_eq!(findings(hacf, RES, &m), Vec::<String>::new());
    }

    #[test]
    fn a_stonith_type_is_held_against_cluster_glues_list() {
        let m = good_machine();
        for ok in [
            "stonith_host * null alice bob",
            "stonith_host alice external/ssh bob",
        ] {
            let hacf = format!("{HACF}{ok}\n");
            assert_eq!(findings(&hacf, RES, &m), Vec::<String>::new(), "{ok}");
        }
        // An unknown type, at its line; a line for another host is not looked at.
        let hacf = format!("{HACF}stonith_host carol nosuch\nstonith_host * nulll alice bob\n");
        assert_eq!(
            findings(&hacf, RES, &m),
            [
                "/c/ha.cf:10: error: Invalid Stonith type [nulll] (cluster-glue's `stonith -L` \
              on this machine does not list it)"
            ]
        );
        let hacf = format!("{HACF}stonith external/nosuch /etc/ha.d/st.cfg\n");
        assert_eq!(
            findings(&hacf, RES, &m),
            [
                "/c/ha.cf:9: error: Invalid Stonith type [external/nosuch] (cluster-glue's \
              `stonith -L` on this machine does not list it)"
            ]
        );
        // Without cluster-glue the type cannot be checked: said plainly.
        let mut m = good_machine();
        m.stonith = None;
        let hacf = format!("{HACF}stonith_host * null alice bob\n");
        assert_eq!(
            findings(&hacf, RES, &m),
            [
                "/c/ha.cf:9: warning: STONITH type [null] not checked: cluster-glue's device list \
              is not available on this machine (cannot run /usr/sbin/stonith: No such file or \
              directory); without it no node can be reset"
            ]
        );
    }

    #[test]
    fn a_script_that_is_not_executable_says_its_mode() {
        let mut m = good_machine();
        m.files.insert(
            "/c/resource.d/Marker".into(),
            FileFact::File { mode: 0o644 },
        );
        let f = findings(HACF, RES, &m);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(
            f[0].contains(
                "/c/resource.d/Marker: it is a regular file of mode 0644 on this machine"
            ),
            "{}",
            f[0]
        );
    }
}
