//! Configuration parsing against the behaviour documented in admin.md §1-3, resources.md §2
//! and §7.1, and links.md §1-4.

use std::net::Ipv4Addr;
use std::path::Path;

use heartbeat::config::{
    self, authkeys, hacf, haresources, AuthMethod, AutoFailback, Diagnostic, HaCf, MediumKind,
    MsgFmt, Severity, Stonith,
};

const HACF: &str = "/etc/ha.d//ha.cf";
const AUTHKEYS: &str = "/etc/ha.d//authkeys";
const HARESOURCES: &str = "/etc/ha.d//haresources";

/// A minimal valid file for node alice, without the legacy warnings.
const BASE: &str = "node alice\nnode bob\nucast hb0 10.0.0.2\nauto_failback on\n";

fn parse(text: &str) -> (Option<HaCf>, Vec<Diagnostic>) {
    hacf::parse(text, Path::new(HACF), "alice", None)
}

fn ok(text: &str) -> HaCf {
    match parse(text) {
        (Some(cfg), _) => cfg,
        (None, d) => panic!("unexpected errors: {d:#?}"),
    }
}

fn with(sev: Severity, diags: &[Diagnostic]) -> Vec<(usize, String)> {
    diags
        .iter()
        .filter(|d| d.severity == sev)
        .map(|d| (d.line, d.message.clone()))
        .collect()
}

fn errors(text: &str) -> Vec<(usize, String)> {
    let (cfg, diags) = parse(text);
    assert!(cfg.is_none(), "expected a failure for {text:?}");
    with(Severity::Error, &diags)
}

fn warnings(text: &str) -> Vec<(usize, String)> {
    with(Severity::Warning, &parse(text).1)
}

fn lab_hacf(auto_failback: &str) -> String {
    format!(
        "keepalive 1\nwarntime 4\ndeadtime 8\ninitdead 16\nudpport 694\nucast hb0 10.254.0.1\n\
         ucast hb0 10.254.0.2\nauto_failback {auto_failback}\nnode alice\nnode bob\ncrm off\n"
    )
}

// ---------------------------------------------------------------- the lab configuration

#[test]
fn lab_hacf_parses_to_the_expected_values() {
    let (cfg, diags) = parse(&lab_hacf("on"));
    assert!(diags.is_empty(), "{diags:#?}");
    let cfg = cfg.expect("valid");
    assert_eq!(cfg.path, Path::new(HACF));
    assert_eq!(cfg.nodes, vec!["alice", "bob"]);
    assert_eq!(cfg.keepalive_ms, 1000);
    assert_eq!(cfg.warntime_ms, 4000);
    assert_eq!(cfg.deadtime_ms, 8000);
    assert_eq!(cfg.initdead_ms, 16000);
    assert_eq!(cfg.deadping_ms, 8000);
    assert_eq!(cfg.udpport, 694);
    assert_eq!(cfg.baud, 19200);
    assert_eq!(cfg.auto_failback, AutoFailback::On);
    assert_eq!(cfg.msgfmt, MsgFmt::Classic);
    assert_eq!(cfg.hopfudge, 1);
    assert_eq!(cfg.media.len(), 2);
    assert_eq!(cfg.media[0].line, 6);
    assert_eq!(
        cfg.media[0].kind,
        MediumKind::Ucast {
            ifname: "hb0".into(),
            peer: "10.254.0.1".into(),
            port: 694
        }
    );
    assert_eq!(cfg.media[1].kind.link_name(), "hb0");
    let p = &cfg.parameters;
    for (name, value) in [
        ("keepalive", "1"),
        ("deadtime", "8"),
        ("warntime", "4"),
        ("initdead", "16"),
        ("deadping", "8000ms"),
        ("udpport", "694"),
        ("baud", "19200"),
        ("auto_failback", "on"),
        ("debug", "0"),
        ("msgfmt", "classic"),
        ("pacemaker", "off"),
    ] {
        assert_eq!(p.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert!(
        !p.contains_key("crm"),
        "crm is recorded under the name pacemaker"
    );
    assert!(!p.contains_key("node"));
}

#[test]
fn lab_hacf_each_auto_failback_mode() {
    assert_eq!(ok(&lab_hacf("off")).auto_failback, AutoFailback::Off);
    let (cfg, diags) = parse(&lab_hacf("legacy"));
    assert_eq!(cfg.expect("valid").auto_failback, AutoFailback::Legacy);
    let w: Vec<String> = with(Severity::Warning, &diags)
        .into_iter()
        .map(|x| x.1)
        .collect();
    assert_eq!(
        w,
        vec![
            "Deprecated 'legacy' auto_failback option selected.",
            "Please convert to 'auto_failback on'.",
            "See documentation for conversion details.",
        ]
    );
}

#[test]
fn hbparameter_lab_example() {
    // admin.md §1.5: keepalive 1, deadtime 6, warntime 3, initdead 12, crm off.
    let cfg = ok(&format!(
        "{BASE}keepalive 1\ndeadtime 6\nwarntime 3\ninitdead 12\ncrm off\n"
    ));
    let p = &cfg.parameters;
    assert_eq!(p["keepalive"], "1");
    assert_eq!(p["deadtime"], "6");
    assert_eq!(p["warntime"], "3");
    assert_eq!(p["initdead"], "12");
    assert_eq!(p["deadping"], "6000ms");
    assert_eq!(p["udpport"], "694");
    assert_eq!(p["baud"], "19200");
    assert_eq!(p["auto_failback"], "on");
    assert_eq!(p["debug"], "0");
    assert_eq!(p["msgfmt"], "classic");
    assert_eq!(p["pacemaker"], "off");
}

#[test]
fn derived_values_for_deadtime_8() {
    // admin.md §1.5: with warntime and initdead removed and deadtime 8.
    let cfg = ok(&format!("{BASE}keepalive 1\ndeadtime 8\n"));
    assert_eq!(cfg.parameters["warntime"], "4000ms");
    assert_eq!(cfg.parameters["initdead"], "16000ms");
    assert_eq!(cfg.parameters["deadping"], "8000ms");
    assert_eq!(
        (cfg.warntime_ms, cfg.initdead_ms, cfg.deadping_ms),
        (4000, 16000, 8000)
    );
}

#[test]
fn initdead_derivation() {
    // deadtime > 10 s: initdead = deadtime.
    let cfg = ok(&format!("{BASE}deadtime 20\n"));
    assert_eq!(
        (cfg.initdead_ms, cfg.parameters["initdead"].as_str()),
        (20000, "20000ms")
    );
    // deadtime < 6 s: 12 s.
    let cfg = ok(&format!("{BASE}deadtime 5\n"));
    assert_eq!(cfg.initdead_ms, 12000);
    // 6 s <= deadtime <= 10 s: twice deadtime.
    let cfg = ok(&format!("{BASE}deadtime 10\n"));
    assert_eq!(cfg.initdead_ms, 20000);
    let (cfg, diags) = parse(&format!("{BASE}deadtime 6\n"));
    assert_eq!(cfg.expect("valid").initdead_ms, 12000);
    assert!(with(Severity::Warning, &diags).is_empty());
    // Defaults: deadtime 30 s, initdead 30 s, warntime 15 s.
    let cfg = ok(BASE);
    assert_eq!(
        (cfg.deadtime_ms, cfg.initdead_ms, cfg.warntime_ms),
        (30000, 30000, 15000)
    );
    assert_eq!(cfg.parameters["initdead"], "30000ms");
    assert_eq!(cfg.parameters["warntime"], "15000ms");
    assert_eq!(cfg.parameters["deadping"], "30000ms");
}

#[test]
fn initdead_checks() {
    let e = errors(&format!("{BASE}deadtime 10\ninitdead 5\n"));
    assert_eq!(
        e,
        vec![(
            0,
            "Initial dead time [5000] is smaller than deadtime [10000]".to_string()
        )]
    );
    let (cfg, diags) = parse(&format!("{BASE}deadtime 5\ninitdead 8\n"));
    assert!(cfg.is_some());
    assert_eq!(
        with(Severity::Warning, &diags),
        vec![(
            0,
            "Initial dead time [8000 ms] may be too small!".to_string()
        )]
    );
    let infos: Vec<String> = with(Severity::Info, &diags)
        .into_iter()
        .map(|x| x.1)
        .collect();
    assert_eq!(
        infos,
        vec![
            "Initial dead time accounts for slow network startup time",
            "It should be >= deadtime and >= 10 seconds",
        ]
    );
}

#[test]
fn deadping_check() {
    let e = errors(&format!("{BASE}keepalive 2\ndeadtime 10\ndeadping 4\n"));
    assert_eq!(
        e,
        vec![(
            0,
            "Ping dead time [4000] is too small compared to keeplive [2000]".to_string()
        )]
    );
    assert_eq!(ok(&format!("{BASE}deadping 5\n")).deadping_ms, 5000);
}

#[test]
fn defaults_table_is_recorded() {
    let cfg = ok(BASE);
    for (name, value) in hacf::DEFAULTS {
        if name == "auto_failback" {
            continue;
        }
        assert_eq!(
            cfg.parameters.get(name).map(String::as_str),
            Some(value),
            "{name}"
        );
    }
    let (cfg, _) = parse("node alice\nbcast eth0\n");
    assert_eq!(cfg.expect("valid").parameters["auto_failback"], "legacy");
    // Not recorded unless set.
    for name in [
        "watchdog",
        "logfacility",
        "use_logd",
        "rtprio",
        "nice_failback",
        "node",
        "logfile",
    ] {
        assert!(!ok(BASE).parameters.contains_key(name), "{name}");
    }
}

// ---------------------------------------------------------------- admin.md §1.8 broken files

#[test]
fn broken_unknown_directive() {
    let e = errors(&format!("frobnicate yes\n{BASE}"));
    assert_eq!(
        e,
        vec![(
            1,
            "Illegal directive [frobnicate] in /etc/ha.d//ha.cf".to_string()
        )]
    );
    // The path is printed as the caller gives it.
    let (_, d) = hacf::parse("frobnicate\n", Path::new("/tmp/x/ha.cf"), "alice", None);
    assert_eq!(
        d[0].message,
        "Illegal directive [frobnicate] in /tmp/x/ha.cf"
    );
    assert_eq!(
        d[0].to_string(),
        "/tmp/x/ha.cf:1: error: Illegal directive [frobnicate] in /tmp/x/ha.cf"
    );
}

#[test]
fn broken_keepalive_larger_than_deadtime() {
    let e = errors(&format!("{BASE}keepalive 20\ndeadtime 10\n"));
    assert_eq!(
        e,
        vec![(
            0,
            "Dead time [10000] is too small compared to keeplive [20000]".to_string()
        )]
    );
    // Equality fails too.
    let e = errors(&format!("{BASE}keepalive 1\ndeadtime 2\n"));
    assert_eq!(
        e,
        vec![(
            0,
            "Dead time [2000] is too small compared to keeplive [1000]".to_string()
        )]
    );
}

#[test]
fn broken_no_media() {
    let e = errors("node alice\nauto_failback on\n");
    assert_eq!(e, vec![(0, "No heartbeat media defined".to_string())]);
}

#[test]
fn broken_local_node_not_declared() {
    let (cfg, d) = parse("node carol\nucast hb0 10.0.0.2\nauto_failback on\n");
    assert!(cfg.is_none());
    let lines: Vec<(Severity, &str)> = d.iter().map(|x| (x.severity, x.message.as_str())).collect();
    assert_eq!(
        lines,
        vec![
            (Severity::Error, "Current node [alice] not in configuration!"),
            (
                Severity::Info,
                "By default, cluster nodes are named by `uname -n` and must be declared with a 'node' \
                 directive in the ha.cf file."
            ),
            (Severity::Info, "See also: http://linux-ha.org/wiki/Ha.cf#node_directive"),
        ]
    );
    // The node name is compared lowercased.
    assert!(hacf::parse(BASE, Path::new(HACF), "ALICE", None)
        .0
        .is_some());
}

#[test]
fn broken_no_node_line() {
    let e = errors("ucast hb0 10.0.0.2\nauto_failback on\n");
    assert_eq!(
        e,
        vec![
            (0, "no nodes defined".to_string()),
            (0, "Current node [alice] not in configuration!".to_string()),
        ]
    );
}

#[test]
fn broken_keepalive_1s_names_line_and_directive() {
    let e = errors(&format!("{BASE}keepalive 1s\n"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, 5);
    assert!(e[0].1.starts_with("keepalive: invalid value [1s]"), "{e:?}");
    assert!(e[0].1.contains("no 's' unit"));
}

#[test]
fn duplicate_nodes_warn_and_are_deduplicated() {
    let (cfg, diags) =
        parse("node alice\nnode Bob\nucast hb0 10.0.0.2\nauto_failback on\nnode alice\nnode bob\n");
    let cfg = cfg.expect("accepted");
    assert_eq!(cfg.nodes, vec!["alice", "bob"]);
    let w = with(Severity::Warning, &diags);
    assert_eq!(w.iter().map(|x| x.0).collect::<Vec<_>>(), vec![5, 6]);
    assert!(w[0].1.contains("first declared at line 1"));
    assert!(w[1].1.contains("node [bob]"));
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = "frobnicate 1\nnode alice\nkeepalive 1s\nmsgfmt xml\nhopfudge 300\nrealtime maybe\n\
                ucast hb0 10.0.0.2\nauto_failback sometimes\nwarntime 0\nbogus\n";
    let (cfg, diags) = parse(text);
    assert!(cfg.is_none());
    let e = with(Severity::Error, &diags);
    assert_eq!(
        e.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![1, 3, 4, 5, 6, 8, 9, 10]
    );
    assert!(e[2].1.starts_with("msgfmt: invalid value [xml]"));
    assert!(e[3].1.starts_with("hopfudge: invalid value [300]"));
    assert!(e[4].1.starts_with("realtime: invalid value [maybe]"));
    assert!(e[5]
        .1
        .starts_with("auto_failback: invalid value [sometimes]"));
    assert!(e[6].1.starts_with("Warn time [0] is invalid."));
    assert!(e[7].1.starts_with("Illegal directive [bogus]"));
    // Diagnostics are in file order, whole-file checks (line 0) last.
    let lines: Vec<usize> = diags.iter().map(|d| d.line).collect();
    let first_zero = lines.iter().position(|l| *l == 0).unwrap_or(lines.len());
    assert!(lines[..first_zero].windows(2).all(|w| w[0] <= w[1]));
    assert!(lines[first_zero..].iter().all(|l| *l == 0));
}

// ---------------------------------------------------------------- directives

#[test]
fn silent_failures_get_messages() {
    for (line, starts) in [
        ("msgfmt xml", "msgfmt: invalid value [xml]"),
        ("msgfmt Classic", "msgfmt: invalid value [Classic]"),
        ("hopfudge 300", "hopfudge: invalid value [300]"),
        ("hopfudge -1", "hopfudge: invalid value [-1]"),
        ("memreserve 0", "memreserve: invalid value [0]"),
        ("syslogmsgfmt maybe", "syslogmsgfmt: invalid value [maybe]"),
        ("log_badpack 2", "log_badpack: invalid value [2]"),
        ("coredumps x", "coredumps: invalid value [x]"),
        ("use_logd x", "use_logd: invalid value [x]"),
        ("conn_logd_time 0", "conn_logd_time: invalid value [0]"),
        ("deadtime -5", "deadtime: invalid value [-5]"),
        ("debug 256", "debug: invalid value [256]"),
        (
            "traditional_compression x",
            "traditional_compression: invalid value [x]",
        ),
    ] {
        let e = errors(&format!("{BASE}{line}\n"));
        assert_eq!(e.len(), 1, "{line}: {e:?}");
        assert_eq!(e[0].0, 5, "{line}");
        assert!(e[0].1.starts_with(starts), "{line}: {e:?}");
    }
}

#[test]
fn messages_operators_know() {
    for (line, msg) in [
        (
            "autojoin sometimes",
            "Invalid autojoin directive [sometimes]",
        ),
        ("uuidfrom NodeName", "Invalid uuidfrom directive [NodeName]"),
        ("hbgenmethod clock", "Illegal hb generation method [clock]"),
        ("max_rexmit_delay 0", "Invalid max_rexmit_delay time(0)"),
        ("logfacility local9", "Log facility(local9) not valid"),
        ("logfacility LOCAL0", "Log facility(LOCAL0) not valid"),
        ("rtprio 200", "Illegal realtime priority [200]"),
        ("compression lzma", "Compression module(lzma) not found"),
        (
            "compression_threshold 0",
            "set_compression_threshold: compress_threshhold(0) invalid",
        ),
        ("udpport 0", "invalid port [0] specified."),
        ("udpport 70000", "invalid port [70000] specified."),
        ("baud 12345", "invalid baudrate [12345] specified."),
        ("warntime -1", "Warn time [-1] is invalid."),
        ("env =x", "set_env: invalid nvpair(=x)"),
        (
            "respawn hacluster bin/true",
            "Client child command [bin/true] is not full pathname",
        ),
        ("stonith", "No Stonith type given"),
        ("apiauth foo", "Invalid apiauth directive [foo]"),
    ] {
        let e = errors(&format!("{BASE}{line}\n"));
        assert!(e.iter().any(|x| x.1.starts_with(msg)), "{line}: {e:?}");
    }
}

#[test]
fn values_accepted() {
    let cfg = ok(&format!(
        "{BASE}hopfudge 0\nmsgfmt netstring\nuuidfrom nodename\nhbgenmethod time\nmax_rexmit_delay 500\n\
         logfacility local0\nlogfile /var/log/ha-log\ndebug 2\nrealtime off\nrtprio 50\nsyslogmsgfmt no\n\
         cluster lab\nwarntime 20\ndeadtime 10\nautojoin NONE\ncoredumps false\ncoreroot /var/lib/heartbeat/cores\n\
         use_logd yes\nconn_logd_time 500ms\nlog_badpack n\ncompression bz2\ncompression_threshold 4\nmemreserve 1000\n"
    ));
    assert_eq!(cfg.hopfudge, 0);
    assert_eq!(cfg.msgfmt, MsgFmt::Netstring);
    assert!(cfg.uuid_from_nodename);
    assert!(cfg.generation_from_time);
    assert_eq!(cfg.max_rexmit_delay_ms, 500);
    assert_eq!(cfg.logfacility.as_deref(), Some("local0"));
    assert_eq!(cfg.syslog_facility(), Some("local0"));
    assert_eq!(cfg.logfile.as_deref(), Some(Path::new("/var/log/ha-log")));
    assert_eq!(cfg.debugfile, None);
    assert_eq!(cfg.parameters["debugfile"], "/dev/null");
    assert_eq!(cfg.parameters["logfile"], "/var/log/ha-log");
    assert_eq!(cfg.debug, 2);
    assert_eq!(cfg.parameters["debug"], "2");
    assert!(!cfg.realtime);
    assert_eq!(cfg.rtprio, Some(50));
    assert!(!cfg.syslogmsgfmt);
    assert_eq!(cfg.cluster, "lab");
    // warntime is not compared with deadtime.
    assert_eq!((cfg.warntime_ms, cfg.deadtime_ms), (20000, 10000));
    assert!(!cfg.coredumps);
    assert_eq!(cfg.use_logd, Some(true));
    assert_eq!(cfg.conn_logd_time_ms, 500);
    assert!(!cfg.log_badpack);
    assert!(cfg
        .other
        .iter()
        .any(|(l, n, v)| *l == 25 && n == "compression" && v == "bz2"));
}

#[test]
fn logfacility_none_means_no_syslog() {
    let cfg = ok(&format!("{BASE}logfacility none\n"));
    assert_eq!(cfg.syslog_facility(), None);
    assert_eq!(cfg.parameters["logfacility"], "none");
    assert_eq!(cfg.parameters["logfile"], "/dev/null");
}

#[test]
fn integers_with_trailing_junk_read_like_atoi() {
    let (cfg, diags) = parse(&format!("{BASE}hopfudge 3x\n"));
    assert_eq!(cfg.expect("accepted as 3.0.6 does").hopfudge, 3);
    assert_eq!(with(Severity::Warning, &diags).len(), 1);
}

#[test]
fn env_directive() {
    let cfg = ok(&format!("{BASE}env FOO=bar,EMPTY=\nenv X=a=b\n"));
    assert_eq!(
        cfg.env,
        vec![
            ("FOO".into(), "bar".into()),
            ("EMPTY".into(), String::new()),
            ("X".into(), "a=b".into())
        ]
    );
    assert!(!cfg.parameters.contains_key("env"));
    assert!(errors(&format!("{BASE}env NOVALUE\n"))[0]
        .1
        .starts_with("set_env: invalid nvpair(NOVALUE)"));
}

#[test]
fn respawn_and_failfast() {
    let cfg = ok(&format!(
        "{BASE}respawn hacluster /usr/lib/heartbeat/ipfail\nfailfast root /usr/sbin/watcher --strict\n"
    ));
    assert_eq!(cfg.clients.len(), 2);
    assert_eq!(cfg.clients[0].line, 5);
    assert_eq!(cfg.clients[1].command, "/usr/sbin/watcher --strict");
    assert_eq!(cfg.clients[1].path, "/usr/sbin/watcher");
    assert!(cfg.clients[1].failfast);
    assert!(errors(&format!("{BASE}respawn\n"))[0]
        .1
        .starts_with("Invalid uid []"));
    assert!(errors(&format!("{BASE}respawn hacluster\n"))[0]
        .1
        .starts_with("Client child command [] is not full pathname"));
}

#[test]
fn apiauth_directive() {
    let cfg = ok(&format!(
        "{BASE}apiauth ipfail uid=hacluster\napiauth default gid=haclient,root uid=root\n"
    ));
    assert_eq!(cfg.apiauth.len(), 2);
    assert_eq!(cfg.apiauth[0].client, "ipfail");
    assert_eq!(cfg.apiauth[0].uids, vec!["hacluster"]);
    assert!(cfg.apiauth[0].gids.is_empty());
    assert_eq!(cfg.apiauth[1].gids, vec!["haclient", "root"]);
    assert_eq!(cfg.apiauth[1].uids, vec!["root"]);

    let e = errors(&format!("{BASE}apiauth foo uid=a\napiauth foo gid=root\n"));
    assert_eq!(
        e,
        vec![
            (
                6,
                "Duplicate apiauth directive for API client foo: [foo gid=root]".to_string()
            ),
            (6, "Invalid apiauth directive [foo gid=root]".to_string()),
        ]
    );
    let e = errors(&format!("{BASE}apiauth foo bar\n"));
    assert_eq!(e[0].1, "Missing uid or gid in apiauth");
    assert_eq!(e[1].1, "Invalid apiauth directive [foo bar]");
    let (_, d) = parse(&format!("{BASE}apiauth foo\n"));
    assert_eq!(with(Severity::Info, &d).len(), 4, "the four syntax lines");
}

#[test]
fn stonith_directives() {
    let cfg = ok(&format!(
        "{BASE}stonith baytech /etc/ha.d/conf/stonith.baytech\n"
    ));
    assert_eq!(
        cfg.stonith,
        Some(Stonith::File {
            line: 5,
            device_type: "baytech".into(),
            config_file: "/etc/ha.d/conf/stonith.baytech".into()
        })
    );
    // Lines for other hosts are ignored; `*` and our own name apply; the last one wins.
    let cfg = ok(&format!(
        "{BASE}stonith_host * null bob\nstonith_host bob ssh alice\nstonith_host ALICE ssh bob x\n"
    ));
    assert_eq!(
        cfg.stonith,
        Some(Stonith::Host {
            line: 7,
            host: "alice".into(),
            device_type: "ssh".into(),
            params: "bob x".into()
        })
    );
    let cfg = ok(&format!("{BASE}stonith_host bob\n"));
    assert_eq!(cfg.stonith, None);
    assert!(errors(&format!("{BASE}stonith_host alice\n"))[0]
        .1
        .starts_with("No Stonith type given"));
    assert!(errors(&format!("{BASE}stonith null\n"))[0]
        .1
        .starts_with("Invalid Stonith config file []"));
}

#[test]
fn watchdog_once() {
    let cfg = ok(&format!("{BASE}watchdog /dev/watchdog\n"));
    assert_eq!(cfg.watchdog.as_deref(), Some(Path::new("/dev/watchdog")));
    assert_eq!(cfg.parameters["watchdog"], "/dev/watchdog");
    let e = errors(&format!(
        "{BASE}watchdog /dev/watchdog\nwatchdog /dev/watchdog\n"
    ));
    assert_eq!(
        e,
        vec![(6, "Watchdog device multiply specified.".to_string())]
    );
}

#[test]
fn too_many_nodes() {
    let nodes: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
    let text = format!("node alice\nnode {}\nbcast eth0\n", nodes.join(","));
    let e = errors(&text);
    assert_eq!(e.len(), 1);
    assert!(e[0].1.contains("too many nodes"), "{e:?}");
}

// ---------------------------------------------------------------- pacemaker / crm

#[test]
fn crm_on_is_refused_as_v1_only() {
    for line in [
        "crm on",
        "crm yes",
        "crm respawn",
        "pacemaker true",
        "pacemaker minimal",
        "crm 1",
        "crm Manual",
    ] {
        let e = errors(&format!("{BASE}{line}\n"));
        assert_eq!(e.len(), 1, "{line}");
        assert_eq!(e[0].0, 5);
        assert!(e[0].1.contains("Heartbeat v1"), "{line}: {e:?}");
    }
    assert!(errors(&format!("{BASE}crm perhaps\n"))[0]
        .1
        .starts_with("crm: invalid value [perhaps]"));
}

#[test]
fn crm_off_is_accepted_and_recorded_as_pacemaker() {
    for (line, value) in [
        ("crm off", "off"),
        ("crm no", "no"),
        ("pacemaker false", "false"),
        ("crm 0", "0"),
    ] {
        let cfg = ok(&format!("{BASE}{line}\n"));
        assert_eq!(cfg.parameters["pacemaker"], value, "{line}");
    }
    assert_eq!(ok(BASE).parameters["pacemaker"], "false");
}

#[test]
fn crm_twice_is_an_error() {
    let e = errors(&format!("{BASE}crm off\npacemaker off\n"));
    assert_eq!(
        e,
        vec![(
            6,
            "pacemaker/crm directive used multiple times!".to_string()
        )]
    );
}

#[test]
fn pacemaker_only_directives_warn() {
    let text = format!(
        "{BASE}crm_daemon_dir /usr/lib/pacemaker\ncrmd_spawns_pengine on\nrecord_config_changes off\n\
         record_pengine_inputs on\nenable_config_writes no\nquorum_server qs.example\n"
    );
    let (cfg, diags) = parse(&text);
    let cfg = cfg.expect("accepted");
    assert_eq!(
        with(Severity::Warning, &diags)
            .iter()
            .map(|x| x.0)
            .collect::<Vec<_>>(),
        vec![5, 6, 7, 8, 9, 10]
    );
    assert_eq!(cfg.parameters["record_config_changes"], "off");
    assert!(errors(&format!("{BASE}record_pengine_inputs maybe\n"))[0]
        .1
        .starts_with("record_pengine_inputs: invalid"));
}

// ---------------------------------------------------------------- auto_failback / nice_failback

#[test]
fn auto_failback_values() {
    for (v, mode) in [
        ("on", AutoFailback::On),
        ("yes", AutoFailback::On),
        ("TRUE", AutoFailback::On),
        ("off", AutoFailback::Off),
        ("n", AutoFailback::Off),
        ("legacy", AutoFailback::Legacy),
        ("LEGACY", AutoFailback::Legacy),
    ] {
        let (cfg, _) = parse(&format!("node alice\nbcast eth0\nauto_failback {v}\n"));
        assert_eq!(cfg.expect("valid").auto_failback, mode, "{v}");
    }
}

#[test]
fn nice_failback_alone_becomes_legacy_without_error() {
    let (cfg, diags) = parse("node alice\nbcast eth0\nnice_failback on\n");
    let cfg = cfg.expect("not a configuration error");
    assert_eq!(cfg.auto_failback, AutoFailback::Legacy);
    assert!(!cfg.parameters.contains_key("nice_failback"));
    let w: Vec<String> = with(Severity::Warning, &diags)
        .into_iter()
        .map(|x| x.1)
        .collect();
    assert_eq!(
        w[0],
        "nice_failback flag is obsolete.. Use auto_failback {on, off, legacy} instead."
    );
    assert_eq!(
        w[1],
        "nice_failback on has been strictly interpreted as 'auto_failback legacy'"
    );
    assert_eq!(w[2], "Consider converting to 'auto_failback on'.");
    assert_eq!(w[4], "See documentation for details.");
    // Then the three legacy lines at the end.
    assert_eq!(
        &w[5..],
        [
            "Deprecated 'legacy' auto_failback option selected.",
            "Please convert to 'auto_failback on'.",
            "See documentation for conversion details."
        ]
    );
    // Its own value does not matter.
    let (cfg, _) = parse("node alice\nbcast eth0\nnice_failback off\n");
    assert_eq!(cfg.expect("valid").auto_failback, AutoFailback::Legacy);
}

#[test]
fn nice_failback_after_auto_failback_means_off() {
    for earlier in ["on", "off"] {
        let (cfg, diags) = parse(&format!(
            "node alice\nbcast eth0\nauto_failback {earlier}\nnice_failback on\n"
        ));
        assert_eq!(cfg.expect("valid").auto_failback, AutoFailback::Off);
        assert!(with(Severity::Warning, &diags)
            .iter()
            .any(|x| x.1 == "'nice_failback on' has been changed to 'auto_failback off'"));
    }
}

#[test]
fn later_auto_failback_overrides_nice_failback() {
    let (cfg, diags) = parse("node alice\nbcast eth0\nnice_failback on\nauto_failback on\n");
    assert_eq!(cfg.expect("valid").auto_failback, AutoFailback::On);
    assert!(!with(Severity::Warning, &diags)
        .iter()
        .any(|x| x.1.starts_with("Deprecated 'legacy'")));
}

#[test]
fn nice_failback_bad_value_is_an_error() {
    let e = errors("node alice\nbcast eth0\nnice_failback perhaps\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].1.starts_with("nice_failback: invalid value [perhaps]"));
}

// ---------------------------------------------------------------- autojoin

#[test]
fn autojoin_conflicts_with_haresources() {
    let e = errors(&format!("{BASE}autojoin any\n"));
    assert_eq!(
        e,
        vec![
            (
                5,
                "R1 style resource management conflicts with  autojoin set".to_string()
            ),
            (
                5,
                "You need either unset autojoin or enable crm".to_string()
            ),
        ]
    );
    // Without resource management the conflict lines do not apply, but we do not do autojoin.
    let (_, d) = hacf::parse_partial(
        &format!("{BASE}autojoin other\n"),
        Path::new(HACF),
        "alice",
        None,
        false,
    );
    let e = with(Severity::Error, &d);
    assert_eq!(e.len(), 1);
    assert!(e[0].1.contains("not supported"));
}

#[test]
fn autojoin_any_skips_the_node_checks() {
    let e = errors("bcast eth0\nautojoin any\nauto_failback on\n");
    assert!(!e.iter().any(|x| x.1 == "no nodes defined"));
    assert!(!e.iter().any(|x| x.1.starts_with("Current node")));
}

#[test]
fn no_legacy_warnings_without_resource_management() {
    let (cfg, d) = hacf::parse_partial(
        "node alice\nbcast eth0\n",
        Path::new(HACF),
        "alice",
        None,
        false,
    );
    assert_eq!(cfg.auto_failback, AutoFailback::Legacy);
    assert!(d.is_empty(), "{d:?}");
}

// ---------------------------------------------------------------- media

#[test]
fn list_media_make_one_medium_per_token() {
    let cfg = ok(&format!("{BASE}bcast eth1,eth2 eth3\nserial /dev/ttyS0 /dev/ttyS1\nping 10.0.0.254,gw.example\nping6 fe80::1\n"));
    let kinds: Vec<&MediumKind> = cfg.media.iter().map(|m| &m.kind).collect();
    assert_eq!(kinds.len(), 9);
    assert_eq!(
        kinds[1],
        &MediumKind::Bcast {
            ifname: "eth1".into(),
            port: 694
        }
    );
    assert_eq!(
        kinds[3],
        &MediumKind::Bcast {
            ifname: "eth3".into(),
            port: 694
        }
    );
    assert_eq!(
        kinds[4],
        &MediumKind::Serial {
            device: "/dev/ttyS0".into(),
            baud: 19200
        }
    );
    assert_eq!(
        kinds[6],
        &MediumKind::Ping {
            addr: "10.0.0.254".into()
        }
    );
    assert_eq!(
        kinds[7],
        &MediumKind::Ping {
            addr: "gw.example".into()
        }
    );
    assert_eq!(
        kinds[8],
        &MediumKind::Ping6 {
            addr: "fe80::1".into()
        }
    );
    assert_eq!(cfg.media[5].line, 6);
    assert_eq!(
        cfg.ping_node_names(),
        vec!["10.0.0.254", "gw.example", "fe80::1"]
    );
    assert_eq!(
        cfg.nodes,
        vec!["alice", "bob"],
        "ping nodes are not `node` entries"
    );
}

#[test]
fn ucast_peer_is_kept_as_written() {
    let cfg = ok(&format!("{BASE}ucast hb1 Bob.Example\n"));
    assert_eq!(
        cfg.media[1].kind,
        MediumKind::Ucast {
            ifname: "hb1".into(),
            peer: "Bob.Example".into(),
            port: 694
        }
    );
}

#[test]
fn ucast_errors() {
    assert_eq!(
        errors(&format!("{BASE}ucast hb0\n")),
        vec![(
            5,
            "ucast: [hb0] missing target IP address/hostname".to_string()
        )]
    );
    assert!(errors(&format!("{BASE}ucast6 hb0 zz::zz\n"))[0]
        .1
        .starts_with("ucast6 [hb0] bad addr [zz::zz]"));
    assert!(errors(&format!("{BASE}ucast hb0 10.0.0.300\n"))[0]
        .1
        .contains("[10.0.0.300]"));
    let cfg = ok(&format!("{BASE}ucast6 hb0 fe80::2%hb0\n"));
    assert_eq!(
        cfg.media[1].kind,
        MediumKind::Ucast6 {
            ifname: "hb0".into(),
            peer: "fe80::2%hb0".into(),
            port: 694
        }
    );
    // An empty ucast line is ignored, as 3.0.6 does.
    assert_eq!(warnings(&format!("{BASE}ucast\n")).len(), 1);
}

#[test]
fn interfaces_are_checked_when_known() {
    let ifaces = vec!["lo".to_string(), "hb0".to_string()];
    let run = |text: &str| hacf::parse(text, Path::new(HACF), "alice", Some(&ifaces));
    assert!(run(BASE).0.is_some());
    for (line, msg) in [
        (
            "ucast eth9 10.0.0.2",
            "ucast: interface [eth9] does not exist",
        ),
        (
            "bcast eth7",
            "Illegal bcast [UDP/IP broadcast] in config file [eth7]",
        ),
        (
            "mcast eth9 239.0.0.1 694 1 0",
            "mcast device [eth9] is invalid or not set up properly",
        ),
    ] {
        let (cfg, d) = run(&format!("{BASE}{line}\n"));
        assert!(cfg.is_none(), "{line}");
        let e = with(Severity::Error, &d);
        assert_eq!(e.len(), 1, "{line}: {e:?}");
        assert_eq!(e[0].0, 5);
        assert!(e[0].1.starts_with(msg), "{line}: {e:?}");
    }
    // Without a list nothing is checked (3.0.6 behaviour for ucast).
    assert!(parse(&format!("{BASE}ucast eth9 10.0.0.2\n")).0.is_some());
}

#[test]
fn mcast_validation() {
    let cfg = ok(&format!(
        "{BASE}mcast hb0 239.0.0.1 7000 1 0\nmcast6 hb0 ff02::1:2 7001 4 1\n"
    ));
    assert_eq!(
        cfg.media[1].kind,
        MediumKind::Mcast {
            ifname: "hb0".into(),
            group: Ipv4Addr::new(239, 0, 0, 1),
            port: 7000,
            ttl: 1,
            looped: false
        }
    );
    match &cfg.media[2].kind {
        MediumKind::Mcast6 {
            port, hops, looped, ..
        } => assert_eq!((*port, *hops, *looped), (7001, 4, true)),
        other => panic!("{other:?}"),
    }
    for (line, msg) in [
        ("mcast hb0", "mcast [hb0] missing mcast address"),
        (
            "mcast hb0 10.1.1.1 694 1 0",
            "mcast [hb0] bad addr [10.1.1.1]",
        ),
        (
            "mcast hb0 nonsense 694 1 0",
            "mcast [hb0] bad addr [nonsense]",
        ),
        ("mcast hb0 239.0.0.1", "mcast [hb0] missing port"),
        ("mcast hb0 239.0.0.1 0 1 0", "mcast [hb0] bad port [0]"),
        ("mcast hb0 239.0.0.1 694", "mcast [hb0] missing ttl"),
        ("mcast hb0 239.0.0.1 694 9 0", "mcast [hb0] bad ttl [9]"),
        ("mcast hb0 239.0.0.1 694 1", "mcast [hb0] missing loop"),
        ("mcast hb0 239.0.0.1 694 1 2", "mcast [hb0] bad loop [2]"),
        (
            "mcast6 hb0 fe80::1 694 1 0",
            "mcast6 [hb0] bad addr [fe80::1]",
        ),
        ("mcast6 hb0 ff02::1 694 5 0", "mcast6 [hb0] bad hops [5]"),
    ] {
        let e = errors(&format!("{BASE}{line}\n"));
        assert_eq!(e.len(), 1, "{line}: {e:?}");
        assert!(e[0].1.starts_with(msg), "{line}: {e:?}");
    }
}

#[test]
fn serial_and_ping_errors() {
    let e = errors(&format!("{BASE}serial ttyS0\n"));
    assert!(e[0]
        .1
        .starts_with("Illegal serial [serial ring] in config file [ttyS0]"));
    assert!(e[0].1.contains("Serial port not full pathname [ttyS0]"));
    let e = errors(&format!("{BASE}ping 10.0.0.999\n"));
    assert!(e[0]
        .1
        .starts_with("Illegal ping [ping membership] in config file [10.0.0.999]"));
}

#[test]
fn ping_group() {
    let cfg = ok(&format!("{BASE}ping_group grp1 10.0.0.1 10.0.0.2\n"));
    assert_eq!(
        cfg.media[1].kind,
        MediumKind::PingGroup {
            name: "grp1".into(),
            addrs: vec!["10.0.0.1".into(), "10.0.0.2".into()]
        }
    );
    assert_eq!(cfg.media[1].kind.link_name(), "grp1");
    // An empty group is accepted (as observed), with a warning.
    let (cfg, d) = parse(&format!("{BASE}ping_group grp2\n"));
    assert!(cfg.is_some());
    assert_eq!(with(Severity::Warning, &d).len(), 1);
}

#[test]
fn too_many_media() {
    let ifaces: Vec<String> = (0..65).map(|i| format!("eth{i}")).collect();
    let text = format!("node alice\nbcast {}\n", ifaces.join(" "));
    let e = errors(&text);
    assert_eq!(e.len(), 1);
    assert!(e[0].1.starts_with("Too many media specified (> 64)"));
    assert!(e[0].1.contains("Offending command: bcast eth64"));
}

// ---------------------------------------------------------------- order dependence

#[test]
fn udpport_after_media_does_not_move_them() {
    let (cfg, d) = parse(
        "node alice\nucast hb0 10.0.0.2\nucast hb0 10.0.0.3\nudpport 7777\nauto_failback on\n",
    );
    let cfg = cfg.expect("valid");
    assert_eq!(cfg.udpport, 7777);
    assert_eq!(cfg.parameters["udpport"], "7777");
    for m in &cfg.media {
        assert!(
            matches!(m.kind, MediumKind::Ucast { port: 694, .. }),
            "{m:?}"
        );
    }
    let w = with(Severity::Warning, &d);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].0, 4);
    assert!(w[0].1.contains("port 694"), "{w:?}");
}

#[test]
fn udpport_before_media_applies() {
    let (cfg, d) = parse("udpport 7777\nnode alice\nucast hb0 10.0.0.2\nbcast eth0\nmcast hb0 239.0.0.1 694 1 0\nauto_failback on\n");
    let cfg = cfg.expect("valid");
    assert!(d.is_empty(), "{d:?}");
    assert!(matches!(
        cfg.media[0].kind,
        MediumKind::Ucast { port: 7777, .. }
    ));
    assert!(matches!(
        cfg.media[1].kind,
        MediumKind::Bcast { port: 7777, .. }
    ));
    assert!(
        matches!(cfg.media[2].kind, MediumKind::Mcast { port: 694, .. }),
        "mcast has its own port"
    );
}

#[test]
fn udpport_between_media_lines() {
    // Each medium type reads udpport when it first appears, as 3.0.6's plug-ins do.
    let (cfg, d) = parse("node alice\nucast hb0 10.0.0.2\nudpport 7777\nucast hb0 10.0.0.3\nbcast eth0\nauto_failback on\n");
    let cfg = cfg.expect("valid");
    assert!(matches!(
        cfg.media[0].kind,
        MediumKind::Ucast { port: 694, .. }
    ));
    assert!(matches!(
        cfg.media[1].kind,
        MediumKind::Ucast { port: 694, .. }
    ));
    assert!(matches!(
        cfg.media[2].kind,
        MediumKind::Bcast { port: 7777, .. }
    ));
    assert_eq!(with(Severity::Warning, &d).len(), 1);
    // A late udpport equal to the one in use changes nothing and does not warn.
    let (_, d) = parse("node alice\nucast hb0 10.0.0.2\nudpport 694\nauto_failback on\n");
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn baud_order() {
    let (cfg, d) = parse("node alice\nserial /dev/ttyS0\nbaud 38400\nauto_failback on\n");
    let cfg = cfg.expect("valid");
    assert_eq!(
        cfg.media[0].kind,
        MediumKind::Serial {
            device: "/dev/ttyS0".into(),
            baud: 19200
        }
    );
    assert_eq!(cfg.baud, 38400);
    assert_eq!(cfg.parameters["baud"], "38400");
    let w = with(Severity::Warning, &d);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].0, 3);
    assert!(w[0].1.contains("19200"));

    let (cfg, d) =
        parse("node alice\nbaud 38400\nserial /dev/ttyS0,/dev/ttyS1\nauto_failback on\n");
    let cfg = cfg.expect("valid");
    assert!(d.is_empty());
    assert!(cfg
        .media
        .iter()
        .all(|m| matches!(m.kind, MediumKind::Serial { baud: 38400, .. })));

    let e = errors("node alice\nbaud 38400\nbaud 9600\nserial /dev/ttyS0\n");
    assert_eq!(e, vec![(3, "Baudrate multiply specified.".to_string())]);
}

// ---------------------------------------------------------------- authkeys (admin.md §2)

fn authkeys_errors(text: &str) -> Vec<String> {
    match authkeys::parse(text, Path::new(AUTHKEYS)) {
        Ok(k) => panic!("accepted: {k:?}"),
        Err(d) => d
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.message)
            .collect(),
    }
}

#[test]
fn authkeys_spec_example_and_rollover() {
    let k = authkeys::parse(
        "auth 2\n1 md5 oldkey\n2 sha1 secret2\n",
        Path::new(AUTHKEYS),
    )
    .expect("valid");
    assert_eq!(k.active, 2);
    assert_eq!(k.active_key().method, AuthMethod::Sha1);
    assert_eq!(k.active_key().key, b"secret2");
    assert_eq!(
        k.keys[&1].method,
        AuthMethod::Md5,
        "every key is kept for verifying"
    );
}

#[test]
fn authkeys_every_error_of_2_1() {
    let cases: [(&str, &str); 11] = [
        (
            "abc\nauth 1\n1 sha1 k\n",
            "Invalid auth line [abc] in /etc/ha.d//authkeys",
        ),
        (
            "auth one\n1 sha1 k\n",
            "Invalid auth line [auth one] in /etc/ha.d//authkeys",
        ),
        (
            "auth 1\n1 sha1 k\n16 md5 x\n",
            "Invalid authnum [16] in /etc/ha.d//authkeys",
        ),
        ("auth 1\n1 sha256 k\n", "Invalid authtype [sha256]"),
        ("auth 1\n1 MD5 k\n", "Invalid authtype [MD5]"),
        ("auth 1\n1 md5\n", "Auth method [md5] requires a key"),
        ("auth 1\n1 crc key\n", "Auth method [crc] doesn't use a key"),
        ("auth 1\n1\n1 sha1 k\n", "Auth line [1] is invalid."),
        (
            "auth 1\nhello world\n1 sha1 k\n",
            "Auth line [hello world] is invalid.",
        ),
        (
            "1 sha1 k\nauth 1\n",
            "Auth Key [1] not found in keyfile [/etc/ha.d//authkeys]",
        ),
        (
            "1 sha1 k\n",
            "Missing auth directive in keyfile [/etc/ha.d//authkeys]",
        ),
    ];
    for (text, msg) in cases {
        let e = authkeys_errors(text);
        assert!(e.iter().any(|m| m.starts_with(msg)), "{text:?}: {e:?}");
    }
}

#[test]
fn authkeys_permissions_of_2_2() {
    let p = Path::new(AUTHKEYS);
    for refused in [0o644, 0o640, 0o604] {
        assert_eq!(
            authkeys::check_mode(refused, p)
                .expect_err("refused")
                .message,
            "Bad permissions on keyfile [/etc/ha.d//authkeys], 600 recommended."
        );
    }
    for accepted in [0o620, 0o600, 0o400, 0o700] {
        assert!(authkeys::check_mode(accepted, p).is_ok());
    }
    assert!(authkeys::check_owner(0, 0, p).is_ok());
    assert!(authkeys::check_owner(1000, 0, p).is_err());
}

// ---------------------------------------------------------------- haresources

#[test]
fn haresources_lab_file() {
    let nodes = ok(&lab_hacf("on")).nodes;
    let g = haresources::parse(
        "alice Marker::svcA\nbob Marker::svcB\n",
        Path::new(HARESOURCES),
        &nodes,
    )
    .expect("valid");
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].node, "alice");
    assert_eq!(g[0].key(), "Marker::svcA");
    assert_eq!(g[0].resources[0].script, "Marker");
    assert_eq!(g[0].resources[0].args, vec!["svcA"]);
}

#[test]
fn haresources_errors() {
    let nodes = vec!["alice".to_string(), "bob".to_string()];
    let e = haresources::parse("carol 10.0.0.1\n", Path::new(HARESOURCES), &nodes)
        .expect_err("bad node");
    assert_eq!(
        e[0].message,
        "Bad nodename in /etc/ha.d//haresources [carol]"
    );
    assert_eq!(e[0].line, 1);
    let e = haresources::parse(
        "alice Marker::x1 A\n# c\nbob Marker::x1 B\n",
        Path::new(HARESOURCES),
        &nodes,
    )
    .expect_err("duplicate key");
    assert_eq!(e[0].line, 3);
    assert!(e[0]
        .message
        .contains("Duplicate resource group key [Marker::x1]"));
}

// ---------------------------------------------------------------- check(): the three files together

const KEYS: &str = "auth 1\n1 sha1 secret\n";
const RES: &str = "alice Marker::svcA\nbob Marker::svcB\n";

fn check(
    hacf_text: &str,
    keys: &str,
    mode_uid: Option<(u32, u32, u32)>,
    res: Option<&str>,
    manage: bool,
) -> (Option<config::Config>, Vec<Diagnostic>) {
    config::check(
        hacf_text.as_bytes(),
        Path::new(HACF),
        keys.as_bytes(),
        Path::new(AUTHKEYS),
        mode_uid,
        res.map(str::as_bytes).ok_or(config::Missing::NotFound),
        Path::new(HARESOURCES),
        "alice",
        None,
        manage,
    )
}

#[test]
fn check_accepts_the_lab() {
    let (cfg, diags) = check(
        &lab_hacf("on"),
        KEYS,
        Some((0o100600, 0, 0)),
        Some(RES),
        true,
    );
    assert!(diags.is_empty(), "{diags:#?}");
    let cfg = cfg.expect("valid");
    assert_eq!(cfg.hacf.nodes, vec!["alice", "bob"]);
    assert_eq!(cfg.authkeys.active, 1);
    assert_eq!(cfg.groups.len(), 2);
}

#[test]
fn check_collects_every_problem_from_every_file() {
    let hacf_text = format!("{}frobnicate\n", lab_hacf("on"));
    let (cfg, diags) = check(
        &hacf_text,
        "auth 1\n1 md5\n",
        Some((0o100644, 1000, 0)),
        Some("carol X\n"),
        true,
    );
    assert!(cfg.is_none());
    let e: Vec<(String, usize, String)> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.file.display().to_string(), d.line, d.message.clone()))
        .collect();
    let files: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        files,
        vec![HACF, AUTHKEYS, AUTHKEYS, AUTHKEYS, AUTHKEYS, HARESOURCES]
    );
    assert_eq!(e[0].2, "Illegal directive [frobnicate] in /etc/ha.d//ha.cf");
    assert!(e[1].2.starts_with("Bad permissions on keyfile"));
    assert!(e[2].2.starts_with("Bad owner of keyfile"));
    assert_eq!(e[3].2, "Auth method [md5] requires a key");
    assert!(e[4].2.starts_with("Auth Key [1] not found"));
    assert_eq!(e[5].2, "Bad nodename in /etc/ha.d//haresources [carol]");
}

#[test]
fn check_haresources_missing() {
    let (cfg, diags) = check(&lab_hacf("on"), KEYS, None, None, true);
    assert!(cfg.is_none());
    assert_eq!(
        diags[0].message,
        "Cannot open resources file [/etc/ha.d//haresources]"
    );
    assert_eq!(diags.len(), 3);
    // Not needed when resources are not managed (-M).
    let (cfg, diags) = check(&lab_hacf("on"), KEYS, None, None, false);
    assert!(diags.is_empty(), "{diags:?}");
    assert!(cfg.expect("valid").groups.is_empty());
}

#[test]
fn check_uses_hacf_nodes_even_when_hacf_has_errors() {
    let hacf_text = format!("{}keepalive 1s\n", lab_hacf("on"));
    let (_, diags) = check(&hacf_text, KEYS, None, Some(RES), true);
    let e = with(Severity::Error, &diags);
    assert_eq!(
        e.len(),
        1,
        "haresources is checked against alice and bob: {e:?}"
    );
}

#[test]
fn check_warnings_do_not_fail() {
    let hacf_text = format!("{}node alice\n", lab_hacf("on"));
    let (cfg, diags) = check(
        &hacf_text,
        "auth 1\n1 sha1 my secret\n",
        None,
        Some(RES),
        true,
    );
    assert!(cfg.is_some());
    assert_eq!(with(Severity::Warning, &diags).len(), 2);
    assert!(!config::has_errors(&diags));
}

// ---------------------------------------------------------------- robustness

mod never_panic {
    use super::*;
    use proptest::prelude::*;

    const WORDS: &[&str] = &[
        "node",
        "keepalive",
        "deadtime",
        "warntime",
        "initdead",
        "deadping",
        "udpport",
        "baud",
        "bcast",
        "ucast",
        "ucast6",
        "mcast",
        "mcast6",
        "serial",
        "ping",
        "ping6",
        "ping_group",
        "crm",
        "pacemaker",
        "auto_failback",
        "nice_failback",
        "respawn",
        "failfast",
        "apiauth",
        "stonith",
        "stonith_host",
        "env",
        "watchdog",
        "debug",
        "hopfudge",
        "logfacility",
        "udp",
        "auth",
        "alice",
        "bob",
        "hb0",
        "eth0",
        "1",
        "0",
        "2.5",
        "500ms",
        "1s",
        "-1",
        "239.0.0.1",
        "10.0.0.1",
        "ff02::1",
        "zz::zz",
        "694",
        "99999999999",
        "uid=root",
        "gid=",
        "=",
        "#",
        "\\",
        "::",
        "IPaddr::10.0.0.1/24",
        "1.2.3.4",
        "on",
        "legacy",
        "sha1",
        "md5",
        "crc",
        ",",
        "/dev/ttyS0",
        "*",
        "\r",
        "\t",
        "é",
        "\0",
    ];

    fn line() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(WORDS), 0..7).prop_map(|w| w.join(" "))
    }

    fn file() -> impl Strategy<Value = String> {
        prop::collection::vec(line(), 0..20).prop_map(|l| l.join("\n"))
    }

    fn everything(text: &str) {
        let ifaces = vec!["hb0".to_string()];
        let _ = config::duration::parse_ms(text);
        let _ = hacf::parse(text, Path::new(HACF), "alice", None);
        let _ = hacf::parse(text, Path::new(HACF), "alice", Some(&ifaces));
        let _ = hacf::parse_partial(text, Path::new(HACF), "", None, false);
        if let Ok(k) = authkeys::parse(text, Path::new(AUTHKEYS)) {
            let _ = k.active_key();
        }
        let nodes = vec!["alice".to_string()];
        if let Ok(groups) = haresources::parse(text, Path::new(HARESOURCES), &nodes) {
            for g in &groups {
                let _ = g.key();
            }
        }
        if let (Some(c), _) = config::check(
            text.as_bytes(),
            Path::new(HACF),
            text.as_bytes(),
            Path::new(AUTHKEYS),
            Some((0o600, 0, 0)),
            Ok(text.as_bytes()),
            Path::new(HARESOURCES),
            "alice",
            None,
            true,
        ) {
            let _ = c.authkeys.active_key();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_strings(text in any::<String>()) {
            everything(&text);
        }

        #[test]
        fn directive_soup(text in file()) {
            everything(&text);
        }

        /// Files are bytes in any encoding: arbitrary bytes (with the directives' words mixed
        /// in) never panic, and a value read back gives the file's own bytes.
        #[test]
        fn arbitrary_bytes(
            soup in file(),
            raw in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut data = soup.into_bytes();
            data.extend_from_slice(&raw);
            let _ = config::check(
                &data,
                Path::new(HACF),
                &data,
                Path::new(AUTHKEYS),
                Some((0o600, 0, 0)),
                Ok(&data),
                Path::new(HARESOURCES),
                "alice",
                None,
                true,
            );
            let text = config::bytes::decode(&data);
            prop_assert_eq!(config::bytes::encode(&text), data);
            let _ = config::bytes::escape(&text);
        }

        #[test]
        fn time_values(text in "[0-9.]{0,12}(ms|MS|us|usec|msec|s|x| ms)?") {
            let _ = config::duration::parse_ms(&text);
        }
    }
}
