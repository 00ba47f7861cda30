//! The manual pages in `man/` render without a single warning and fit an 80-column
//! terminal.
//!
//! Each page goes through `man -l` (man-db, with groff's warnings switched on by
//! `--warnings` and kept by `MAN_KEEP_STDERR=1`) and through `groff -ww -z -man`, which
//! prints every warning troff knows. Any output on stderr fails the test. When neither
//! man nor groff is installed the test prints why and passes, unless
//! `HB_REQUIRE_INTEROP=1`, which makes it a failure.

use std::path::PathBuf;
use std::process::Command;

const PAGES: &[(&str, &str)] = &[
    ("heartbeat.8", "HEARTBEAT(8)"),
    ("ha.cf.5", "HA.CF(5)"),
    ("authkeys.5", "AUTHKEYS(5)"),
    ("haresources.5", "HARESOURCES(5)"),
    ("cl_status.1", "CL_STATUS(1)"),
    ("hb_standby.1", "HB_STANDBY(1)"),
    ("hb_takeover.1", "HB_TAKEOVER(1)"),
    ("drbd-peer-outdater.8", "DRBD-PEER-OUTDATER(8)"),
    ("hb_status.1", "HB_STATUS(1)"),
];

fn page(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("man")
        .join(name)
}

fn works(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn unavailable(why: &str) {
    if std::env::var("HB_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        panic!("HB_REQUIRE_INTEROP=1 but {why}");
    }
    {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIP: {why}");
    }
}

#[test]
fn man_renders_every_page_without_warnings() {
    if !works("man", "--version") {
        if !works("groff", "--version") {
            unavailable("neither man nor groff is installed (apt-get install man-db groff)");
        } else {
            {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIP: man is not installed; groff_checks_every_page checks the pages"
                );
            }
        }
        return;
    }
    for (name, title) in PAGES {
        let out = Command::new("man")
            .args(["--warnings=w", "-l"])
            .arg(page(name))
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_STDERR", "1")
            .env("LC_ALL", "C.UTF-8")
            .env_remove("MANPAGER")
            .env_remove("PAGER")
            .output()
            .expect("run man");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "man -l {name} failed: {stderr}");
        assert!(stderr.trim().is_empty(), "man -l {name} warned:\n{stderr}");
        assert!(
            stdout.starts_with(title),
            "{name}: output should start with {title}:\n{stdout}"
        );
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"] {
            assert!(
                stdout.lines().any(|l| l == section),
                "{name}: no {section} section"
            );
        }
        for (i, line) in stdout.lines().enumerate() {
            assert!(
                line.chars().count() <= 80,
                "{name}: rendered line {} is wider than 80 columns: {line:?}",
                i + 1
            );
        }
    }
}

#[test]
fn groff_checks_every_page() {
    if !works("groff", "--version") {
        if works("man", "--version") {
            {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "SKIP: groff is not installed; man_renders_every_page_without_warnings checks the pages");
            }
        } else {
            unavailable("neither man nor groff is installed (apt-get install man-db groff)");
        }
        return;
    }
    for (name, _) in PAGES {
        let out = Command::new("groff")
            .args(["-ww", "-z", "-man", "-Tutf8"])
            .arg(page(name))
            .output()
            .expect("run groff");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "groff {name} failed: {stderr}");
        assert!(
            stderr.trim().is_empty(),
            "groff -ww {name} warned:\n{stderr}"
        );
    }
}

/// A reference such as `.BR ha.cf (5),` to one of our pages uses that page's section.
#[test]
fn cross_references_use_the_right_section() {
    for (name, _) in PAGES {
        let text = std::fs::read_to_string(page(name)).unwrap();
        assert!(text.contains("\n.SH SEE ALSO\n"), "{name}: no SEE ALSO");
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() < 3 || words[0] != ".BR" || !words[2].starts_with('(') {
                continue;
            }
            let cited_section = words[2].trim_start_matches('(').split(')').next().unwrap();
            for (other, _) in PAGES {
                let (stem, section) = other.rsplit_once('.').unwrap();
                if words[1] == stem {
                    assert_eq!(
                        cited_section, section,
                        "{name}: {line:?} should cite {stem}({section})"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the pages claim against what the programs do (flags, exit codes, options).

fn page_text(name: &str) -> String {
    std::fs::read_to_string(page(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn run_hb(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .expect("run heartbeat");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// The flags `--help` lists: `-X` and `--word` at the start of its option lines.
fn help_flags(help: &str) -> Vec<String> {
    let mut flags = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if !t.starts_with('-') || line.len() - t.len() > 6 {
            continue;
        }
        for word in t.split("  ").next().unwrap_or("").split([',', ' ']) {
            let w = word.trim_end_matches("...");
            if w.starts_with('-') && w.len() > 1 {
                flags.push(w.to_string());
            }
        }
    }
    flags
}

#[test]
fn heartbeat_help_fits_80_columns_and_the_page_names_every_flag() {
    let (help, _, code) = run_hb(&["--help"]);
    assert_eq!(code, 0);
    for line in help.lines() {
        assert!(
            line.chars().count() <= 80,
            "--help line over 80 columns: {line:?}"
        );
    }
    let flags = help_flags(&help);
    assert!(
        flags.len() >= 15,
        "too few flags parsed from --help: {flags:?}"
    );
    let man = page_text("heartbeat.8");
    for f in flags.iter().filter(|f| *f != "-h" && *f != "--help") {
        let roff = f.replace('-', "\\-");
        assert!(man.contains(&roff), "heartbeat(8) does not document {f}");
    }
    // And every single-letter option the page documents is one the program takes.
    for line in man.lines() {
        let Some(rest) = line
            .strip_prefix(".B \\-")
            .or_else(|| line.strip_prefix(".BR \\-"))
        else {
            continue;
        };
        let letter: String = rest.chars().take(1).collect();
        if rest.starts_with('\\') || rest.chars().nth(1).is_some_and(|c| c.is_ascii_alphabetic()) {
            continue; // a long option
        }
        assert!(
            flags.contains(&format!("-{letter}")),
            "heartbeat(8) documents -{letter}, which --help does not list"
        );
    }
}

#[test]
fn heartbeat_exit_codes_are_the_pages() {
    let man = page_text("heartbeat.8");
    let tmp = std::env::temp_dir().join(format!("hb-man-exit-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let d = tmp.display().to_string();
    // Configuration error (here: no files at all): 6, for --check and for a start.
    assert!(man.contains("6 configuration error"));
    let (out, _, code) = run_hb(&["--check", "--confdir", &d, "--node", "alice"]);
    assert_eq!(code, 6, "{out}");
    let (_, err, code) = run_hb(&[
        "--confdir",
        &d,
        "--statedir",
        &d,
        "--rundir",
        &d,
        "--node",
        "alice",
    ]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("Configuration error, heartbeat not started."),
        "{err}"
    );
    // -s without a daemon: 3.
    assert!(man.contains("3 not running"));
    let (_, _, code) = run_hb(&["-s", "--rundir", &d, "--node", "alice"]);
    assert_eq!(code, 3);
    // Usage error: 2.
    assert!(man.contains("2 usage error"));
    let (_, _, code) = run_hb(&["-C", "x"]);
    assert_eq!(code, 2);
    let (_, _, code) = run_hb(&["--no-such-flag"]);
    assert_eq!(code, 2);
    // -V and --version: the same line, exit 0.
    let (v1, _, c1) = run_hb(&["-V"]);
    let (v2, _, c2) = run_hb(&["--version"]);
    assert_eq!((c1, c2), (0, 0));
    assert_eq!(v1, v2);
    assert!(v1.starts_with("3.0.6"), "{v1}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn tool_pages_document_rundir_and_the_programs_take_it() {
    for name in ["cl_status.1", "hb_standby.1", "hb_takeover.1"] {
        let man = page_text(name);
        for word in ["\\-\\-rundir", "HA_RUNDIR", "RUST_LOG"] {
            assert!(man.contains(word), "{name} does not mention {word}");
        }
    }
    let tmp = std::env::temp_dir().join(format!("hb-man-rundir-{}", std::process::id()));
    for bin in [
        env!("CARGO_BIN_EXE_hb_standby"),
        env!("CARGO_BIN_EXE_hb_takeover"),
    ] {
        let out = Command::new(bin)
            .arg("--rundir")
            .arg(&tmp)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let socket = tmp.join("heartbeat/control");
        assert!(err.contains(&socket.display().to_string()), "{err}");
        let out = Command::new(bin)
            .env("HA_RUNDIR", &tmp)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&socket.display().to_string()), "{err}");
    }
}

#[test]
fn hb_status_help_fits_80_columns_and_its_page_names_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_hb_status"))
        .arg("--help")
        .output()
        .expect("run hb_status");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for line in help.lines() {
        assert!(
            line.chars().count() <= 80,
            "--help line over 80 columns: {line:?}"
        );
    }
    let man = page_text("hb_status.1");
    let flags = help_flags(&help);
    assert!(flags.len() >= 7, "{flags:?}");
    for f in flags.iter().filter(|f| *f != "-h" && *f != "--help") {
        let roff = f.replace('-', "\\-");
        assert!(man.contains(&roff), "hb_status(1) does not document {f}");
    }
}
