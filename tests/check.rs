//! `heartbeat --check` finds what would fail later, each finding as `file:line: severity:
//! message` naming the machine fact that failed, and nothing else (no follow-on noise). Runs
//! the binary against configuration directories made here; the one check that needs a name
//! resolver runs in a network namespace of its own with no network at all (root only), so that
//! no query ever leaves the machine.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const HB: &str = env!("CARGO_BIN_EXE_heartbeat");

struct Conf {
    dir: PathBuf,
}

impl Drop for Conf {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A clean pair: alice and bob over `lo`, a key of our own, one Marker group.
const HACF: &str = "logfile LOGDIR/ha-log\nnode alice bob\nucast lo 127.0.0.2\nauto_failback on\n";
const KEYS: &str = "auth 1\n1 sha1 a-key-of-this-test-only\n";
const RES: &str = "alice Marker::svcA\n";

impl Conf {
    fn new(tag: &str) -> Conf {
        let dir = std::env::temp_dir().join(format!("hb-check-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("resource.d")).unwrap();
        let marker = Path::new(env!("CARGO_MANIFEST_DIR")).join("resource.d/Marker");
        fs::copy(marker, dir.join("resource.d/Marker")).unwrap();
        let c = Conf { dir };
        c.hacf(HACF);
        c.keys(KEYS.as_bytes());
        c.res(RES.as_bytes());
        c
    }

    fn hacf(&self, text: &str) {
        self.hacf_bytes(text.as_bytes());
    }

    fn hacf_bytes(&self, bytes: &[u8]) {
        let logdir = self.dir.display().to_string();
        let text = String::from_utf8_lossy(bytes).contains("LOGDIR");
        let data = if text {
            String::from_utf8(bytes.to_vec())
                .unwrap()
                .replace("LOGDIR", &logdir)
                .into_bytes()
        } else {
            bytes.to_vec()
        };
        fs::write(self.dir.join("ha.cf"), data).unwrap();
    }

    fn keys(&self, bytes: &[u8]) {
        let p = self.dir.join("authkeys");
        fs::write(&p, bytes).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn res(&self, bytes: &[u8]) {
        fs::write(self.dir.join("haresources"), bytes).unwrap();
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Run `--check`; (exit code, the finding lines).
    fn check_with(&self, wrapper: &[&str]) -> (i32, Vec<String>) {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(HB);
                c
            }
            None => Command::new(HB),
        };
        let out = cmd
            .args(["--check", "--confdir"])
            .arg(&self.dir)
            .args(["--node", "alice"])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).expect("--check prints UTF-8 only");
        let lines = text
            .lines()
            .filter(|l| !l.starts_with("Configuration OK") && !l.contains(" error(s): "))
            .map(str::to_string)
            .collect();
        (out.status.code().unwrap_or(-1), lines)
    }

    fn check(&self) -> (i32, Vec<String>) {
        self.check_with(&[])
    }
}

/// The findings are exactly `expected` (each a whole line), in any order.
#[track_caller]
fn exactly(found: &[String], expected: &[String]) {
    let mut f = found.to_vec();
    let mut e = expected.to_vec();
    f.sort();
    e.sort();
    assert_eq!(f, e, "--check printed:\n{}", found.join("\n"));
}

#[test]
fn a_clean_configuration_has_no_finding() {
    let c = Conf::new("clean");
    let (code, found) = c.check();
    exactly(&found, &[]);
    assert_eq!(code, 0);
}

#[test]
fn a_missing_serial_device() {
    let c = Conf::new("serial");
    c.hacf("logfile LOGDIR/ha-log\nnode alice bob\nserial /dev/ttyNOPE-hbrs\nauto_failback on\n");
    let (code, found) = c.check();
    exactly(
        &found,
        &[format!(
            "{}:3: error: glib: Nonexistent serial port [/dev/ttyNOPE-hbrs] in config file (there \
             is no such file on this machine; a serial port is a character device)",
            c.file("ha.cf")
        )],
    );
    assert_eq!(code, 6);
}

#[test]
fn resource_scripts_missing_or_not_executable() {
    let c = Conf::new("scripts");
    let rd = c.dir.join("resource.d");
    fs::write(rd.join("Readonly"), "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(rd.join("Readonly"), fs::Permissions::from_mode(0o644)).unwrap();
    // An init script of this machine, found in /etc/init.d as 3.0.6 finds it.
    let init = fs::read_dir("/etc/init.d")
        .ok()
        .and_then(|mut d| {
            d.find_map(|e| {
                let e = e.ok()?;
                let m = e.metadata().ok()?;
                (m.is_file() && m.permissions().mode() & 0o111 != 0)
                    .then(|| e.file_name().to_string_lossy().into_owned())
            })
        })
        .filter(|n| !n.contains(':') && !n.contains(' '));
    let init_word = init.clone().map(|n| format!(" {n}")).unwrap_or_default();
    c.res(
        format!("alice Marker::svcA{init_word}\nbob Marker::svcB Nosuch::x Readonly\n").as_bytes(),
    );
    let (code, found) = c.check();
    let rdir = c.dir.join("resource.d").display().to_string();
    let res = c.file("haresources");
    exactly(
        &found,
        &[
            format!(
                "{res}:2: error: Cannot locate resource script Nosuch (no executable script in \
                 {rdir} or /etc/init.d; {rdir}/Nosuch: there is no such file on this machine; \
                 /etc/init.d/Nosuch: there is no such file on this machine): taking over the \
                 group [Marker::svcB] would fail"
            ),
            format!(
                "{res}:2: error: Cannot locate resource script Readonly (no executable script in \
                 {rdir} or /etc/init.d; {rdir}/Readonly: it is a regular file of mode 0644 on \
                 this machine; /etc/init.d/Readonly: there is no such file on this machine): \
                 taking over the group [Marker::svcB] would fail"
            ),
        ],
    );
    assert_eq!(code, 6);
    if init.is_none() {
        println!("NOTE: no executable init script here: the /etc/init.d case is not exercised");
    }
}

#[test]
fn respawn_users_and_programs_that_do_not_exist() {
    let c = Conf::new("respawn");
    let plain = c.dir.join("plain-file");
    fs::write(&plain, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
    c.hacf(
        &"logfile LOGDIR/ha-log\nnode alice bob\nucast lo 127.0.0.2\nauto_failback on\n\
         respawn nosuchuser-hbrs /bin/true\n\
         respawn root /nonexistent-hbrs/monitor -d\n\
         respawn root CONF/plain-file\n\
         respawn root /usr/lib/heartbeat/ipfail\n\
         respawn root /nonexistent-hbrs/dopd\n"
            .replace("CONF", &c.dir.display().to_string()),
    );
    let (code, found) = c.check();
    let f = c.file("ha.cf");
    exactly(
        &found,
        &[
            format!(
                "{f}:5: error: Invalid uid [nosuchuser-hbrs] specified for client child (there is \
                 no such user on this machine)"
            ),
            format!(
                "{f}:6: error: Client child command [/nonexistent-hbrs/monitor] is not executable \
                 (there is no such file on this machine)"
            ),
            format!(
                "{f}:7: error: Client child command [{}] is not executable (it is a regular file \
                 of mode 0644 on this machine)",
                plain.display()
            ),
        ],
    );
    assert_eq!(code, 6);
}

#[test]
fn log_destinations() {
    let c = Conf::new("log");
    c.hacf(
        "logfile /nonexistent-hbrs/ha-log\ndebugfile LOGDIR/ha-debug\nnode alice bob\n\
         ucast lo 127.0.0.2\nauto_failback on\n",
    );
    let (code, found) = c.check();
    let f = c.file("ha.cf");
    exactly(
        &found,
        &[format!(
            "{f}:1: warning: logfile /nonexistent-hbrs/ha-log: its directory /nonexistent-hbrs \
             cannot hold it (there is no such file on this machine): these log lines would be lost"
        )],
    );
    assert_eq!(code, 0, "a warning does not fail --check");

    c.hacf("node alice bob\nucast lo 127.0.0.2\nauto_failback on\n");
    let (code, found) = c.check();
    exactly(
        &found,
        &[format!(
            "{f}: warning: No log entry found in ha.cf: no logfile, debugfile or logfacility \
             (other than none or kern), and this daemon has no logging daemon to fall back on, so \
             its log lines go nowhere. Add e.g. 'logfacility local0' or 'logfile /var/log/ha-log'"
        )],
    );
    assert_eq!(code, 0);
    c.hacf("logfacility none\nnode alice bob\nucast lo 127.0.0.2\nauto_failback on\n");
    assert_eq!(c.check().1.len(), 1, "logfacility none logs nowhere too");
}

#[test]
fn warntime_not_below_deadtime() {
    let c = Conf::new("warntime");
    c.hacf(
        "logfile LOGDIR/ha-log\nnode alice bob\nucast lo 127.0.0.2\nauto_failback on\n\
         deadtime 10\nwarntime 10\n",
    );
    let (code, found) = c.check();
    exactly(
        &found,
        &[format!(
            "{}:6: warning: warntime [10000 ms] is not below deadtime [10000 ms]: a late node is \
             declared dead before any 'Late heartbeat' warning (Heartbeat 3.0.6 accepts this \
             silently)",
            c.file("ha.cf")
        )],
    );
    assert_eq!(code, 0);
}

#[test]
fn a_missing_watchdog_device() {
    let c = Conf::new("watchdog");
    c.hacf(
        "logfile LOGDIR/ha-log\nnode alice bob\nucast lo 127.0.0.2\nauto_failback on\n\
         watchdog /dev/nowatchdog-hbrs\n",
    );
    let (code, found) = c.check();
    exactly(
        &found,
        &[format!(
            "{}:5: warning: Cannot open watchdog device: /dev/nowatchdog-hbrs (there is no such \
             file on this machine; load a watchdog driver, e.g. softdog): heartbeat would run \
             without a watchdog",
            c.file("ha.cf")
        )],
    );
    assert_eq!(code, 0);
}

/// The STONITH type is held against cluster-glue's `stonith -L` on this machine (the package
/// is needed, else SKIP; a failure under HB_REQUIRE_INTEROP=1).
#[test]
fn an_unknown_stonith_type() {
    if !Path::new("/usr/sbin/stonith").exists() {
        let msg = "an_unknown_stonith_type needs cluster-glue's /usr/sbin/stonith";
        if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("HB_REQUIRE_INTEROP=1 but {msg}");
        }
        eprintln!("SKIP: {msg}");
        return;
    }
    let c = Conf::new("stonith");
    let base = "logfile LOGDIR/ha-log\nnode alice bob\nucast lo 127.0.0.2\nauto_failback on\n";
    c.hacf(&format!("{base}stonith_host * null alice bob\n"));
    let (code, found) = c.check();
    exactly(&found, &[]);
    assert_eq!(code, 0);

    c.hacf(&format!(
        "{base}stonith_host * nosuch-hbrs alice bob\nstonith_host carol alsonot x\n"
    ));
    let (code, found) = c.check();
    exactly(
        &found,
        &[format!(
            "{}:5: error: Invalid Stonith type [nosuch-hbrs] (cluster-glue's `stonith -L` on \
             this machine does not list it)",
            c.file("ha.cf")
        )],
    );
    assert_eq!(code, 6);
}

/// `autojoin` other than `none` with haresources: 3.0.6's two lines, at the autojoin line.
#[test]
fn autojoin_with_haresources() {
    let c = Conf::new("autojoin");
    c.hacf(
        "logfile LOGDIR/ha-log\nnode alice bob\nucast lo 127.0.0.2\nauto_failback on\n\
         autojoin other\n",
    );
    let (code, found) = c.check();
    let f = c.file("ha.cf");
    exactly(
        &found,
        &[
            format!("{f}:5: error: R1 style resource management conflicts with  autojoin set"),
            format!("{f}:5: error: You need either unset autojoin or enable crm"),
        ],
    );
    assert_eq!(code, 6);
}

/// Node names and a group key in Latin-1 are a clean configuration, as for 3.0.6; `-v
/// --check` for the node named so prints UTF-8 only, the bytes as \xNN.
#[test]
fn nodes_named_in_latin1() {
    use std::os::unix::ffi::OsStrExt;
    let c = Conf::new("latin1-names");
    let mut hacf = HACF
        .replace("LOGDIR", &c.dir.display().to_string())
        .replace("node alice bob", "node alice")
        .into_bytes();
    hacf.extend_from_slice(b"node caf\xe9\n");
    c.hacf_bytes(&hacf);
    c.res(b"alice Marker::svcA\ncaf\xe9 Marker::caf\xe9\n");
    let (code, found) = c.check();
    exactly(&found, &[]);
    assert_eq!(code, 0);
    let out = Command::new(HB)
        .args(["-v", "--check", "--confdir"])
        .arg(&c.dir)
        .arg("--node")
        .arg(std::ffi::OsStr::from_bytes(b"caf\xe9"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).expect("UTF-8 only");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Configuration OK for node caf\\xe9: 2 node(s)"),
        "{text}"
    );
    assert!(text.contains("Marker::caf\\xe9"), "{text}");
}

#[test]
fn the_public_demo_key() {
    let c = Conf::new("demokey");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc-ha.d/authkeys");
    let text = fs::read_to_string(sample).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("1 sha1 "))
        .expect("the sample's key line")
        + 1;
    c.keys(text.as_bytes());
    let (code, found) = c.check();
    exactly(
        &found,
        &[format!(
            "{}:{line}: warning: key 1 is the public demo key of heartbeat-rs's sample authkeys: \
             anyone can sign messages your nodes accept. Make a key of your own, e.g. `1 sha1 \
             $(dd if=/dev/urandom bs=512 count=1 2>/dev/null | sha1sum | cut -d' ' -f1)`",
            c.file("authkeys")
        )],
    );
    assert_eq!(code, 0);
}

#[test]
fn directive_typos_get_a_did_you_mean_and_nothing_else() {
    let c = Conf::new("typo");
    c.hacf(
        "logfile LOGDIR/ha-log\nnode alice bob\nucast lo 127.0.0.2\nauto_failback on\n\
         keepalve 2\nDeadtime 10\nudpprot 694\n",
    );
    let (code, found) = c.check();
    let f = c.file("ha.cf");
    // The message keeps 3.0.6's spelling of the path.
    let f2 = format!("{}//ha.cf", c.dir.display());
    exactly(
        &found,
        &[
            format!(
                "{f}:5: error: Illegal directive [keepalve] in {f2} (did you mean 'keepalive'?)"
            ),
            format!(
                "{f}:6: error: Illegal directive [Deadtime] in {f2} (directive names are \
                 case-sensitive: did you mean 'deadtime'?)"
            ),
            format!("{f}:7: error: Illegal directive [udpprot] in {f2} (did you mean 'udpport'?)"),
        ],
    );
    assert_eq!(code, 6);
}

#[test]
fn a_bad_medium_is_one_finding_not_two() {
    let c = Conf::new("noise");
    c.hacf("logfile LOGDIR/ha-log\nnode alice bob\nucast lo 300.1.2.3\nucast lo 127.0.0.2\nauto_failback on\n");
    let (code, found) = c.check();
    let f = c.file("ha.cf");
    exactly(
        &found,
        &[format!(
            "{f}:3: error: ucast: [lo] cannot resolve hostname [300.1.2.3] (not a valid IPv4 address)"
        )],
    );
    assert_eq!(code, 6);
}

#[test]
fn unsupported_lines_are_warnings_naming_the_line() {
    let c = Conf::new("unsupported");
    c.hacf(
        "logfile LOGDIR/ha-log\nnode alice bob\nucast lo 127.0.0.2\nauto_failback on\n\
         apiauth ipfail uid=hacluster\napiauth mon gid=haclient uid=root\n\
         apiauth dopd gid=haclient uid=hacluster\nuse_logd on\nuse_apphbd yes\n\
         respawn hacluster /bin/true\ncoreroot /var/tmp\n",
    );
    let (code, found) = c.check();
    let f = c.file("ha.cf");
    exactly(
        &found,
        &[
            format!(
                "{f}:6: warning: apiauth mon gid=haclient uid=root: this daemon does not serve \
                 Heartbeat's client API (its only API clients, ipfail and dopd, are built in), so \
                 the line has no effect; cl_status, hb_standby and hb_takeover use its control \
                 socket, open to root, the daemon's user and group haclient"
            ),
            format!(
                "{f}:8: warning: use_logd on: this daemon has no logging daemon (ha_logd); it \
                 writes logfile, debugfile and syslog itself, as configured in ha.cf"
            ),
            format!(
                "{f}:9: warning: use_apphbd on: this daemon does not register with apphbd; the \
                 line has no effect"
            ),
            format!(
                "{f}:11: warning: coreroot /var/tmp: not supported: this daemon's core files go \
                 to <statedir>/cores/root (/var/lib/heartbeat/cores/root), as with 3.0.6's default"
            ),
        ],
    );
    assert_eq!(code, 0);

    c.hacf(
        "logfile LOGDIR/ha-log\nnode alice bob\nucast lo 127.0.0.2\nauto_failback on\n\
         respawn hacluster /bin/ccm\n",
    );
    let (_, found) = c.check();
    let line = format!(
        "{f}:5: warning: respawn hacluster /bin/ccm: ccm is a client of Heartbeat's API, which \
         this daemon does not serve (its only API clients, ipfail and dopd, are built in): it will \
         be started and fail to sign on"
    );
    assert!(found.contains(&line), "{found:#?}");
}

/// Both halves of the resolver check in a network namespace of its own, with no interface up,
/// so that nothing is sent anywhere; `localhost` resolves from /etc/hosts.
#[test]
fn an_unresolvable_ucast_host() {
    if !nix::unistd::geteuid().is_root() || !Path::new("/usr/bin/unshare").exists() {
        {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: an_unresolvable_ucast_host needs root and unshare"
            );
        }
        return;
    }
    let c = Conf::new("resolve");
    c.hacf(
        "logfile LOGDIR/ha-log\nnode alice bob\nucast lo no-such-host-hbrs.invalid\n\
         ucast lo localhost\nauto_failback on\n",
    );
    let (code, found) = c.check_with(&["/usr/bin/unshare", "--net", "--"]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let want = format!(
        "{}:3: error: ucast: [lo] cannot resolve hostname [no-such-host-hbrs.invalid] (this \
         machine's resolver says: ",
        c.file("ha.cf")
    );
    assert!(found[0].starts_with(&want), "{found:#?}");
    assert_eq!(code, 6);
}

fn data(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/encodings")
            .join(name),
    )
    .unwrap()
}

/// Comments and resource arguments in EUC-KR, Shift-JIS, GB2312 and Latin-1 (made with iconv,
/// tests/data/encodings/make.sh) are a clean configuration; a mistake next to such bytes is
/// reported with the bytes escaped, and --check prints nothing that is not UTF-8.
#[test]
fn legacy_encodings_check_clean_and_errors_show_bytes_escaped() {
    for enc in ["euc-kr", "shift-jis", "gb2312", "latin1"] {
        let c = Conf::new(&format!("enc-{enc}"));
        let comment = data(&format!("{enc}.comment"));
        let arg = data(&format!("{enc}.arg"));
        let mut hacf = Vec::new();
        for line in HACF.replace("LOGDIR", &c.dir.display().to_string()).lines() {
            hacf.extend_from_slice(line.as_bytes());
            hacf.extend_from_slice(b"  # ");
            hacf.extend_from_slice(&comment);
            hacf.push(b'\n');
        }
        c.hacf_bytes(&hacf);
        let mut res = b"# ".to_vec();
        res.extend_from_slice(&comment);
        res.extend_from_slice(b"\nalice Marker::svcA Marker::");
        res.extend_from_slice(&arg);
        res.extend_from_slice(b"\n");
        c.res(&res);
        let mut keys = b"# ".to_vec();
        keys.extend_from_slice(&comment);
        keys.extend_from_slice(b"\n");
        keys.extend_from_slice(KEYS.as_bytes());
        c.keys(&keys);
        let (code, found) = c.check();
        exactly(&found, &[]);
        assert_eq!(code, 0, "{enc}");

        // A typo whose word holds the legacy bytes.
        let mut bad = hacf.clone();
        bad.extend_from_slice(b"keepalive");
        bad.extend_from_slice(&arg);
        bad.extend_from_slice(b" 2\n");
        c.hacf_bytes(&bad);
        let (code, found) = c.check();
        let escaped: String = arg
            .iter()
            .map(|&b| {
                if b < 0x80 {
                    char::from(b).to_string()
                } else {
                    format!("\\x{b:02x}")
                }
            })
            .collect();
        let f = c.file("ha.cf");
        assert_eq!(code, 6);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with(&format!(
                "{f}:5: error: Illegal directive [keepalive{escaped}] in {}//ha.cf",
                c.dir.display()
            )),
            "{enc}: {found:#?}"
        );
    }
}
