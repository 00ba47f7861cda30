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
    println!("SKIP: {why}");
}

#[test]
fn man_renders_every_page_without_warnings() {
    if !works("man", "--version") {
        if !works("groff", "--version") {
            unavailable("neither man nor groff is installed (apt-get install man-db groff)");
        } else {
            println!("SKIP: man is not installed; groff_checks_every_page checks the pages");
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
            println!("SKIP: groff is not installed; man_renders_every_page_without_warnings checks the pages");
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
