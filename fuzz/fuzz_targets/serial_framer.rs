//! Whatever arrives on a serial port: the framer must never panic, stay bounded, hand out only
//! well-formed frames, not care how the bytes are chunked, and resynchronise after any garbage.
#![no_main]

use heartbeat::media::serial::{SerialFramer, MAXMSG};
use libfuzzer_sys::fuzz_target;

const PACKET: &[u8] = b">>>\nt=status\nsrc=alice\nseq=1\nauth=1 0123\n<<<\n";

fuzz_target!(|data: &[u8]| {
    // First byte: chunk size and whether to apply ISTRIP/IGNCR in software.
    let (ctl, bytes) = data.split_first().map_or((0u8, data), |(c, r)| (*c, r));
    let chunk = usize::from(ctl >> 1) + 1;
    let make = || {
        if ctl & 1 == 1 {
            SerialFramer::with_input_flags()
        } else {
            SerialFramer::new()
        }
    };

    let mut whole = make();
    whole.push(bytes);
    let whole_frames: Vec<Vec<u8>> = whole.drain().collect();

    let mut split = make();
    let mut split_frames = Vec::new();
    for piece in bytes.chunks(chunk) {
        split.push(piece);
        assert!(split.pending() < MAXMSG);
        split_frames.extend(split.drain());
    }
    assert_eq!(whole_frames, split_frames);
    assert_eq!(whole.stats(), split.stats());
    for f in &split_frames {
        assert!(f.starts_with(b">>>\n") && f.ends_with(b"\n") && f.len() < MAXMSG);
        assert!(!f.contains(&0));
    }

    // A `<<<` line puts any framer back to hunting; the packet after it arrives intact.
    split.push(b"\n<<<\n");
    split.push(PACKET);
    let tail: Vec<Vec<u8>> = split.drain().collect();
    assert_eq!(tail.last().map(Vec::as_slice), Some(PACKET));
    assert!(split.is_hunting());
});
