//! The sample configuration in `etc-ha.d/` passes `heartbeat --check` as it stands (once
//! authkeys has mode 0600, as its own comment says), for both demo nodes; and the legacy
//! layouts in `etc-ha.d/examples/` pass it with their interfaces replaced by `lo`.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("hb-sample-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A configuration directory made of the given ha.cf and haresources texts, the sample
/// authkeys (mode `mode`) and our resource.d.
fn confdir(tag: &str, hacf: &str, haresources: &str, mode: u32) -> TempDir {
    let t = TempDir::new(tag);
    fs::write(t.0.join("ha.cf"), hacf).unwrap();
    fs::write(t.0.join("haresources"), haresources).unwrap();
    let keys = t.0.join("authkeys");
    fs::copy(repo().join("etc-ha.d/authkeys"), &keys).unwrap();
    fs::set_permissions(&keys, fs::Permissions::from_mode(mode)).unwrap();
    symlink(repo().join("resource.d"), t.0.join("resource.d")).unwrap();
    t
}

fn check(dir: &Path, node: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
        .args(["--check", "--confdir"])
        .arg(dir)
        .args(["--node", node])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn sample(name: &str) -> String {
    fs::read_to_string(repo().join("etc-ha.d").join(name)).unwrap()
}

#[test]
fn loopback_demo_validates_for_both_nodes() {
    let d = confdir("demo", &sample("ha.cf"), &sample("haresources"), 0o600);
    for node in ["alice", "bob"] {
        let (code, text) = check(&d.0, node);
        assert_eq!(code, 0, "heartbeat --check for {node}:\n{text}");
    }
}

#[test]
fn demo_resource_dir_link_points_at_our_scripts() {
    let link = repo().join("etc-ha.d/resource.d");
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("../resource.d"));
    assert!(link.join("Marker").exists());
}

#[test]
fn sample_authkeys_is_refused_when_readable_by_others() {
    assert!(
        sample("authkeys").contains("0600"),
        "the sample says how to install it"
    );
    let d = confdir("keys644", &sample("ha.cf"), &sample("haresources"), 0o644);
    let (code, text) = check(&d.0, "alice");
    assert_ne!(code, 0, "mode 0644 must be refused:\n{text}");
}

#[test]
fn legacy_examples_validate() {
    let dir = repo().join("etc-ha.d/examples");
    for (name, node) in [
        ("ucast-pair", "node1"),
        ("bcast", "nfs1"),
        ("serial-udp", "db1"),
    ] {
        let hacf = fs::read_to_string(dir.join(format!("{name}.ha.cf"))).unwrap();
        if hacf.contains("/dev/ttyS0") && !Path::new("/dev/ttyS0").exists() {
            println!("SKIP: {name}: no /dev/ttyS0 on this machine");
            continue;
        }
        let hacf = hacf.replace("eth0", "lo").replace("eth1", "lo");
        let res = fs::read_to_string(dir.join(format!("{name}.haresources"))).unwrap();
        let d = confdir(name, &hacf, &res, 0o600);
        let (code, text) = check(&d.0, node);
        // The examples name services of a real site (apache2, nfs-kernel-server): where this
        // machine has no such init script, --check must say so, and say nothing else.
        let other_errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(": error: ") && !l.contains("Cannot locate resource script"))
            .collect();
        assert!(
            other_errors.is_empty(),
            "example {name} (interfaces as lo):\n{text}"
        );
        if code != 0 {
            assert!(
                text.contains("/etc/init.d/") && text.contains("there is no such file"),
                "{text}"
            );
            println!("NOTE: {name}: an init script it names is not on this machine:\n{text}");
        }
    }
}
