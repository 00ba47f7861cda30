//! Property tests of the serial receive framer (links.md 2.4): it never panics and stays
//! bounded on arbitrary bytes, its output does not depend on how the bytes are chunked, and
//! after any garbage it recovers every intact packet that starts on a fresh line.

use heartbeat::media::serial::{SerialFramer, MAXMSG};
use proptest::collection::vec;
use proptest::prelude::*;

/// A classic packet as a sender writes it: start line, `name=value` lines without NUL, CR,
/// LF or bit 7 (the line would alter them), end line.
fn packet() -> impl Strategy<Value = Vec<u8>> {
    vec(("[a-z]{1,8}", "[ -~]{0,40}"), 0..8).prop_map(|fields| {
        let mut p = b">>>\n".to_vec();
        for (n, v) in fields {
            p.extend_from_slice(format!("{n}={v}\n").as_bytes());
        }
        p.extend_from_slice(b"<<<\n");
        p
    })
}

/// Bytes biased towards the ones the framer cares about.
fn noisy_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => any::<u8>(),
        2 => Just(b'\n'),
        2 => Just(b'>'),
        2 => Just(b'<'),
        1 => Just(0u8),
        1 => Just(b'\r'),
    ]
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..600), vec(noisy_byte(), 0..600)]
}

/// Push `bytes` split at the given cut points; every frame and the framer.
fn run(bytes: &[u8], cuts: &[usize], input_flags: bool) -> (Vec<Vec<u8>>, SerialFramer) {
    let mut f = if input_flags {
        SerialFramer::with_input_flags()
    } else {
        SerialFramer::new()
    };
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        f.push(&bytes[at..p]);
        at = p;
        assert!(f.pending() < MAXMSG);
        out.extend(f.drain());
    }
    (out, f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_frames_are_well_formed(
        bytes in garbage(),
        cuts in vec(any::<usize>(), 0..8),
        flags in any::<bool>(),
    ) {
        let (frames, f) = run(&bytes, &cuts, flags);
        let mut out_bytes = 0u64;
        for fr in &frames {
            prop_assert!(fr.starts_with(b">>>\n"));
            prop_assert!(fr.ends_with(b"\n"));
            let last = fr[..fr.len() - 1].rsplit(|&b| b == b'\n').next().unwrap_or_default();
            prop_assert!(last.starts_with(b"<<<"));
            prop_assert!(!fr.contains(&0));
            prop_assert!(fr.len() < MAXMSG);
            if flags {
                prop_assert!(!fr.contains(&b'\r') && fr.iter().all(|b| *b < 0x80));
            }
            out_bytes += fr.len() as u64;
        }
        let st = f.stats();
        prop_assert_eq!(st.frames as usize, frames.len());
        prop_assert_eq!(st.bytes_in, bytes.len() as u64);
        prop_assert!(out_bytes + st.dropped_bytes + f.pending() as u64 <= st.bytes_in);
    }

    #[test]
    fn chunking_does_not_matter(
        bytes in garbage(),
        cuts in vec(any::<usize>(), 1..12),
        flags in any::<bool>(),
    ) {
        let (whole, fw) = run(&bytes, &[], flags);
        let (split, fs) = run(&bytes, &cuts, flags);
        prop_assert_eq!(whole, split);
        prop_assert_eq!(fw.stats(), fs.stats());
        prop_assert_eq!(fw.pending(), fs.pending());
    }

    /// Whatever came before, a line `<<<` resynchronises, and every packet after it arrives
    /// intact and in order, with or without a NUL after each.
    #[test]
    fn packets_after_garbage_are_recovered(
        junk in garbage(),
        packets in vec((packet(), any::<bool>()), 1..6),
        cuts in vec(any::<usize>(), 0..8),
        flags in any::<bool>(),
    ) {
        let mut bytes = junk.clone();
        bytes.extend_from_slice(b"\n<<<\n");
        for (p, nul) in &packets {
            bytes.extend_from_slice(p);
            if *nul {
                bytes.push(0);
            }
        }
        let (frames, f) = run(&bytes, &cuts, flags);
        let want: Vec<Vec<u8>> = packets.iter().map(|(p, _)| p.clone()).collect();
        prop_assert!(frames.len() >= want.len());
        prop_assert_eq!(&frames[frames.len() - want.len()..], &want[..]);
        prop_assert!(f.is_hunting());
        prop_assert_eq!(f.pending(), 0);
    }

    /// Noise that cannot start a frame (no `>` at all) costs nothing, whether or not it ends
    /// its line (3.0.6 loses the next packet when it does not; we find the start line at the
    /// end of the garbage).
    #[test]
    fn noise_costs_at_most_the_next_packet(
        noise in vec(any::<u8>().prop_filter("no >", |b| *b & 0x7f != b'>'), 1..200),
        packets in vec(packet(), 2..5),
        ends_line in any::<bool>(),
    ) {
        let mut bytes = noise.clone();
        // Make the noise end its line or not, whatever bytes it holds.
        bytes.retain(|b| *b & 0x7f != b'\n');
        if ends_line {
            bytes.push(b'\n');
        } else {
            bytes.push(b'x');
        }
        for p in &packets {
            bytes.extend_from_slice(p);
        }
        let (frames, _) = run(&bytes, &[], true);
        prop_assert_eq!(&frames[..], &packets[..]);
    }
}

#[test]
fn oversize_garbage_stays_bounded() {
    // A start line followed by far more than MAXMSG of fields, in odd chunks, then a packet.
    let mut bytes = b">>>\n".to_vec();
    while bytes.len() < 3 * MAXMSG {
        bytes.extend_from_slice(b"k=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\n");
    }
    bytes.extend_from_slice(b"\n<<<\n>>>\na=b\n<<<\n");
    let (frames, f) = run(&bytes, &[1, 4095, 70_000, 300_000, 600_000], false);
    assert_eq!(frames, vec![b">>>\na=b\n<<<\n".to_vec()]);
    // Hunting resumes after each abandoned frame: the fields that follow are just lines, so
    // only the first 256 KiB make a frame to abandon.
    assert_eq!(f.stats().oversize, 1);
}
