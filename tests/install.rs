//! `make install DESTDIR=...` with the binaries cargo built for the tests (passed by path, so
//! nothing is built in release here): the tree it makes, that the installed pieces work, and
//! that a second run leaves the user's configuration and resource scripts alone.

mod common;

use std::fs;
use std::io::{Read, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{run_with_timeout, TestDir};

const SRC: &str = env!("CARGO_MANIFEST_DIR");

fn have_make() -> bool {
    let ok = Command::new("make")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = "the install tests need make";
        if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("HB_REQUIRE_INTEROP=1 but {msg}");
        }
        let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    }
    ok
}

/// `make install DESTDIR=dest VARS...` in the source tree; its output.
fn make_install(dest: &Path, vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(SRC)
        .arg("--no-print-directory")
        .arg("install")
        .arg(format!("DESTDIR={}", dest.display()))
        .arg(format!("BIN_HEARTBEAT={}", env!("CARGO_BIN_EXE_heartbeat")))
        .arg(format!("BIN_CL_STATUS={}", env!("CARGO_BIN_EXE_cl_status")))
        .arg(format!(
            "BIN_HB_STANDBY={}",
            env!("CARGO_BIN_EXE_hb_standby")
        ))
        .arg(format!(
            "BIN_HB_TAKEOVER={}",
            env!("CARGO_BIN_EXE_hb_takeover")
        ))
        .arg(format!(
            "BIN_OUTDATER={}",
            env!("CARGO_BIN_EXE_drbd-peer-outdater")
        ))
        .arg(format!("BIN_HB_STATUS={}", env!("CARGO_BIN_EXE_hb_status")))
        .args(vars.iter().map(|(k, v)| format!("{k}={v}")))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL");
    let (out, err, code) = run_with_timeout(&mut cmd, Duration::from_secs(120));
    assert_eq!(code, 0, "make install failed:\n{out}\n{err}");
    format!("{out}{err}")
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn link(p: &Path) -> PathBuf {
    fs::read_link(p).unwrap_or_else(|e| panic!("{} is not a symlink: {e}", p.display()))
}

/// Run a program from the installed tree.
fn run(prog: &Path, args: &[&str], env: &[(&str, &Path)]) -> (String, String, i32) {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env("_SYSTEMCTL_SKIP_REDIRECT", "1")
        .env("HA_DEFAULTS", "/nonexistent");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, Duration::from_secs(30))
}

#[test]
fn install_tree_and_a_second_run_keeps_the_users_files() {
    if !have_make() {
        return;
    }
    let tmp = TestDir::new("install");
    let d = tmp.path.join("root");
    make_install(&d, &[]);
    let p = |s: &str| d.join(s.trim_start_matches('/'));

    // Binaries where the original put them, and the links.
    for (f, m) in [
        ("/usr/libexec/heartbeat/heartbeat", 0o755),
        ("/usr/bin/cl_status", 0o755),
        ("/usr/bin/hb_status", 0o755),
        ("/usr/share/heartbeat/hb_standby", 0o755),
        ("/usr/share/heartbeat/hb_takeover", 0o755),
        ("/usr/libexec/heartbeat/drbd-peer-outdater", 0o755),
        ("/etc/init.d/heartbeat", 0o755),
        ("/lib/systemd/system/heartbeat.service", 0o644),
        ("/usr/lib/tmpfiles.d/heartbeat.conf", 0o644),
        ("/etc/logrotate.d/heartbeat", 0o644),
        ("/etc/ha.d/ha.cf", 0o644),
        ("/etc/ha.d/haresources", 0o644),
        ("/etc/ha.d/authkeys", 0o600),
        ("/etc/ha.d/resource.d/IPaddr", 0o755),
        ("/etc/ha.d/resource.d/Marker", 0o755),
        ("/etc/ha.d/resource.d/rscfuncs.sh", 0o644),
        ("/var/lib/heartbeat/cores/root", 0o700),
        ("/usr/share/doc/heartbeat/examples/ucast-pair.ha.cf", 0o644),
    ] {
        assert_eq!(mode(&p(f)), m, "{f}");
    }
    // No published key: a generated one, different on every install.
    let key_line = |root: &Path| {
        let text = read(&root.join("etc/ha.d/authkeys"));
        assert!(!text.contains("demo-only-not-a-secret"), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("1 sha1 "))
            .unwrap_or_else(|| panic!("no sha1 key in {text}"))
            .to_string();
        assert_eq!(line.len(), "1 sha1 ".len() + 64, "{line}");
        line
    };
    let other = tmp.path.join("root2");
    make_install(&other, &[]);
    assert_ne!(key_line(&d), key_line(&other));
    assert_eq!(
        fs::read(p("/usr/libexec/heartbeat/heartbeat")).unwrap(),
        fs::read(env!("CARGO_BIN_EXE_heartbeat")).unwrap()
    );
    for (l, target) in [
        ("/usr/sbin/heartbeat", "/usr/libexec/heartbeat/heartbeat"),
        ("/usr/sbin/hb_standby", "/usr/share/heartbeat/hb_standby"),
        ("/usr/sbin/hb_takeover", "/usr/share/heartbeat/hb_takeover"),
        (
            "/usr/lib/heartbeat/drbd-peer-outdater",
            "/usr/libexec/heartbeat/drbd-peer-outdater",
        ),
    ] {
        assert_eq!(link(&p(l)), Path::new(target), "{l}");
    }
    // Every resource script and man page of the source tree.
    for e in fs::read_dir(Path::new(SRC).join("resource.d")).unwrap() {
        let name = e.unwrap().file_name();
        let installed = p("/etc/ha.d/resource.d").join(&name);
        assert_eq!(
            fs::read(&installed).unwrap(),
            fs::read(Path::new(SRC).join("resource.d").join(&name)).unwrap(),
            "{}",
            installed.display()
        );
    }
    for e in fs::read_dir(Path::new(SRC).join("man")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let sec = name.rsplit('.').next().unwrap();
        let gz = p(&format!("/usr/share/man/man{sec}/{name}.gz"));
        let mut text = String::new();
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(&gz)
            .output()
            .unwrap_or_else(|e| panic!("gzip -dc {}: {e}", gz.display()));
        assert!(out.status.success(), "{} is not gzip", gz.display());
        out.stdout.as_slice().read_to_string(&mut text).unwrap();
        assert_eq!(text, read(&Path::new(SRC).join("man").join(&name)));
    }
    // The unit and the init script name the installed daemon.
    let unit = read(&p("/lib/systemd/system/heartbeat.service"));
    for line in [
        "Type=notify",
        "ExecStart=/usr/libexec/heartbeat/heartbeat -f $HEARTBEAT_OPTS",
        "ExecStop=/usr/libexec/heartbeat/heartbeat -k $HEARTBEAT_OPTS",
        "ExecReload=/usr/libexec/heartbeat/heartbeat -r $HEARTBEAT_OPTS",
        "WatchdogSec=10s",
        "TimeoutStartSec=60s",
        "TimeoutStopSec=30min",
        "After=network.target",
        "NotifyAccess=main",
        "KillMode=process",
    ] {
        assert!(unit.lines().any(|l| l == line), "unit lacks {line:?}");
    }
    assert_eq!(
        read(&p("/etc/init.d/heartbeat")),
        read(&Path::new(SRC).join("init/heartbeat"))
    );

    // The installed pieces work: the daemon, the sample configuration, the init script.
    let daemon = p("/usr/libexec/heartbeat/heartbeat");
    let (out, _, code) = run(&daemon, &["-V"], &[]);
    assert!(code == 0 && out.starts_with("3.0.6"), "-V: {out}");
    let conf = p("/etc/ha.d");
    let (out, err, code) = run(
        &daemon,
        &[
            "--check",
            "--confdir",
            conf.to_str().unwrap(),
            "--node",
            "alice",
        ],
        &[],
    );
    assert_eq!(code, 0, "the sample configuration: {out}{err}");
    let rundir = tmp.path.join("run");
    fs::create_dir_all(&rundir).unwrap();
    let init_env: [(&str, &Path); 4] = [
        ("HEARTBEAT_BIN", &daemon),
        ("HA_DIR", &conf),
        ("HA_RUNDIR", &rundir),
        ("HA_STATEDIR", &p("/var/lib/heartbeat")),
    ];
    let (out, err, code) = run(&p("/etc/init.d/heartbeat"), &["status"], &init_env);
    assert_eq!(
        (code, out.as_str()),
        (3, "heartbeat is stopped. No process\n"),
        "{err}"
    );

    // The user edits things; a second install keeps them.
    let hacf = p("/etc/ha.d/ha.cf");
    let mine = format!("{}\n# edited by the admin\n", read(&hacf));
    fs::write(&hacf, &mine).unwrap();
    let authkeys = p("/etc/ha.d/authkeys");
    fs::write(&authkeys, "auth 2\n2 sha1 the-admins-own\n").unwrap();
    let ipaddr = p("/etc/ha.d/resource.d/IPaddr");
    fs::write(&ipaddr, "#!/bin/sh\n# site's own IPaddr\n").unwrap();
    let init = p("/etc/init.d/heartbeat");
    fs::write(&init, "#!/bin/sh\n# an old init script\n").unwrap();
    let output = make_install(&d, &[]);
    assert_eq!(read(&hacf), mine, "ha.cf was changed");
    assert_eq!(read(&authkeys), "auth 2\n2 sha1 the-admins-own\n");
    assert_eq!(mode(&authkeys), 0o600);
    assert_eq!(read(&ipaddr), "#!/bin/sh\n# site's own IPaddr\n");
    assert_eq!(
        read(&p("/etc/ha.d/resource.d/IPaddr.heartbeat-rs")),
        read(&Path::new(SRC).join("resource.d/IPaddr"))
    );
    assert!(output.contains("IPaddr is yours"), "{output}");
    assert_eq!(read(&init), read(&Path::new(SRC).join("init/heartbeat")));
    assert_eq!(
        read(&p("/etc/init.d/heartbeat.old")),
        "#!/bin/sh\n# an old init script\n"
    );
    // Identical files are simply installed again: no side copies.
    assert!(!p("/etc/ha.d/resource.d/Marker.heartbeat-rs").exists());
    assert!(!p("/etc/logrotate.d/heartbeat.old").exists());
}

#[test]
fn another_prefix_and_configuration_directory() {
    if !have_make() {
        return;
    }
    let tmp = TestDir::new("install-prefix");
    let d = tmp.path.join("root");
    let out = make_install(
        &d,
        &[
            ("PREFIX", "/opt/hb"),
            ("SYSCONFDIR", "/opt/hb/etc"),
            ("SAMPLE_CONFIG", "no"),
        ],
    );
    let p = |s: &str| d.join(s.trim_start_matches('/'));
    assert!(p("/opt/hb/libexec/heartbeat/heartbeat").is_file(), "{out}");
    assert_eq!(
        link(&p("/opt/hb/sbin/heartbeat")),
        Path::new("/opt/hb/libexec/heartbeat/heartbeat")
    );
    assert!(!p("/opt/hb/etc/ha.d/ha.cf").exists(), "SAMPLE_CONFIG=no");
    assert!(p("/opt/hb/etc/ha.d/resource.d/IPaddr").is_file());
    let unit = read(&p("/opt/hb/lib/systemd/system/heartbeat.service"));
    assert!(
        unit.lines()
            .any(|l| l
                == "ExecStart=/opt/hb/libexec/heartbeat/heartbeat --confdir /opt/hb/etc/ha.d -f $HEARTBEAT_OPTS"),
        "{unit}"
    );
    assert!(unit.contains("ConditionPathExists=/opt/hb/etc/ha.d/ha.cf"));
    let init = read(&p("/opt/hb/etc/init.d/heartbeat"));
    for line in [
        "HEARTBEAT_BIN=${HEARTBEAT_BIN:-/opt/hb/libexec/heartbeat/heartbeat}",
        "HA_DIR=${HA_DIR:-/opt/hb/etc/ha.d}",
        "HA_SHAREDIR=${HA_SHAREDIR:-/opt/hb/share/heartbeat}",
    ] {
        assert!(init.lines().any(|l| l == line), "init script lacks {line}");
    }
}

/// The Debian package lists its files one by one in Cargo.toml: every resource script, man
/// page and example must be there (a new file would otherwise be missing from the .deb).
#[test]
fn deb_assets_cover_the_source_tree() {
    let manifest = read(&Path::new(SRC).join("Cargo.toml"));
    let deb = manifest
        .split("[package.metadata.deb]")
        .nth(1)
        .expect("a [package.metadata.deb] section");
    for e in fs::read_dir(Path::new(SRC).join("resource.d")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let mode = if name.ends_with(".sh") { "644" } else { "755" };
        let entry = format!("[\"resource.d/{name}\", \"etc/ha.d/resource.d/\", \"{mode}\"]");
        assert!(deb.contains(&entry), "Cargo.toml lacks {entry}");
    }
    for e in fs::read_dir(Path::new(SRC).join("man")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let sec = name.rsplit('.').next().unwrap();
        let entry = format!("[\"man/*.{sec}\", \"usr/share/man/man{sec}/\", \"644\"]");
        assert!(
            deb.contains(&entry),
            "Cargo.toml lacks {entry} (for {name})"
        );
    }
    for bin in [
        "heartbeat",
        "cl_status",
        "hb_standby",
        "hb_takeover",
        "drbd-peer-outdater",
        "hb_status",
    ] {
        assert!(
            deb.contains(&format!("[\"target/release/{bin}\", ")),
            "Cargo.toml does not package {bin}"
        );
    }
    for f in [
        "init/heartbeat",
        "init/heartbeat.service",
        "init/heartbeat.tmpfiles",
        "init/logrotate",
    ] {
        assert!(deb.contains(&format!("[\"{f}\", ")), "Cargo.toml lacks {f}");
    }
    // Only documents for users go into the package: no developer notes.
    for line in deb.lines().filter(|l| l.contains("usr/share/doc/")) {
        assert!(
            !line.contains("NOTES") && !line.contains("TESTING"),
            "developer notes packaged: {line}"
        );
    }
}
