//! The captured serial-line vectors (tests/data/vectors/serial, links.md 2.4) through the serial
//! receive path: the tty's input flags (ISTRIP, IGNCR), the framer, then
//! `Authenticator::verify`, frame by frame, against the verdicts in the README there.
//! Also the send path: the UDP copy of a message, re-encoded for serial, is byte for byte
//! what 3.0.6 wrote on its serial port.

use std::fs;
use std::path::{Path, PathBuf};

use heartbeat::config::authkeys;
use heartbeat::media::serial::{FramerStats, SerialFramer};
use heartbeat::wire::Authenticator;

/// The serial vectors copied into the repository (tests/data/vectors/serial).
fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors/serial")
}

fn auth() -> Authenticator {
    let path = dir().join("authkeys");
    let text = fs::read_to_string(&path).unwrap();
    Authenticator::new(authkeys::parse(&text, Path::new(&path)).expect("authkeys"))
}

fn find(prefix: &str) -> Vec<u8> {
    let d = dir();
    let entry = fs::read_dir(&d)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no vector {prefix}* in {}", d.display()));
    fs::read(entry.path()).unwrap()
}

/// A (accepted) or R (refused) for every frame the framer hands out, and its counters.
fn verdicts(bytes: &[u8], chunk: usize) -> (String, FramerStats) {
    let a = auth();
    let mut f = SerialFramer::with_input_flags();
    let mut out = String::new();
    for piece in bytes.chunks(chunk) {
        f.push(piece);
        while let Some(frame) = f.pop() {
            out.push(if a.verify(&frame).is_ok() { 'A' } else { 'R' });
        }
    }
    (out, f.stats())
}

#[test]
fn fault_vectors_match_the_real_receiver() {
    // (file prefix, verdict per frame, frames dropped for a bad start line, oversize frames)
    let table: &[(&str, &str, u64, u64)] = &[
        ("10-", "AAAA", 0, 0),
        // 3.0.6 loses 4b, whose start line is glued to the noise ("AAA"); we frame it.
        ("11-", "AAAA", 0, 0),
        ("12-", "ARAAA", 0, 0),
        ("16-", "ARAAAA", 0, 0),
        ("17-", "ARAAA", 0, 0),
        // 3.0.6 merges 3d (end line lost) with 3e and rejects both ("AARAA"); our framer
        // drops the unfinished 3d when 3e's start line arrives and accepts 3e.
        ("18-", "AAAAA", 0, 0),
        // The README lists 42, 44, 43; the file also holds message 45 after them.
        ("19-", "AAAA", 0, 0),
        ("20-", "AAAA", 1, 0),
        ("21-", "AAAAA", 0, 1),
        ("03-", "AAAA", 0, 0),
        ("41-", "A", 0, 0),
        ("40-", "", 0, 0),
    ];
    for &(prefix, expect, bad_start, oversize) in table {
        let bytes = find(prefix);
        for chunk in [1 << 20, 97, 1] {
            if chunk == 1 && bytes.len() > 20_000 {
                continue;
            }
            let (got, st) = verdicts(&bytes, chunk);
            assert_eq!(got, expect, "vector {prefix} (chunks of {chunk})");
            assert_eq!(st.bad_start, bad_start, "vector {prefix}");
            assert_eq!(st.oversize, oversize, "vector {prefix}");
        }
    }
}

#[test]
fn clean_vectors_are_all_accepted() {
    for (prefix, count) in [("01-", 85), ("02-", 82), ("13-", 0), ("14-", 0), ("15-", 0)] {
        let (got, st) = verdicts(&find(prefix), 4096);
        assert!(
            !got.is_empty() && got.chars().all(|c| c == 'A'),
            "vector {prefix}: {got}"
        );
        if count > 0 {
            assert_eq!(got.len(), count, "vector {prefix}");
        }
        assert_eq!(st.dropped_bytes, 0, "vector {prefix}");
    }
    for n in 30..=39 {
        let (got, _) = verdicts(&find(&format!("{n}-")), 4096);
        assert_eq!(got, "A", "vector {n}");
    }
}

#[test]
fn serial_copy_of_a_udp_message_is_what_3_0_6_wrote() {
    let a = auth();
    let udp = find("40-");
    let serial = find("41-");
    let msg = a.verify(&udp).expect("the UDP copy verifies");
    let ours = a.encode_classic(&msg);
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&serial)
    );
    // What the medium writes: no NUL after the packet.
    assert!(!ours.ends_with(b"\0"));
}
