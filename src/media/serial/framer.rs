//! Receive framing for serial links: bytes in, classic packets out (links.md 2.4). Pure.
//!
//! The line is a byte stream with no framing of its own; messages are recognised by their
//! classic start and end lines. The rules, as Heartbeat 3.0.6 applies them:
//!
//! 1. **Hunting.** Lines are discarded until one whose first three bytes are `>>>`. Anything
//!    may follow those three bytes on that line.
//! 2. **Collecting.** That line and every following line go into the frame, each cut at its
//!    first NUL byte (the LF is kept), until a line whose first three bytes are `<<<`; that
//!    line goes in too and the frame is complete.
//! 3. **Size guard.** A frame that reaches [`MAXMSG`] bytes is abandoned (3.0.6 logs
//!    `serial_read:serial_pkt exceeds MAXMSG`, or `serial_read:MSG_START exceeds MAXMSG` when
//!    it is still on its start line) and hunting resumes; the rest of the line it was on is
//!    discarded with it.
//! 4. A complete frame whose start line is not exactly `>>>` LF is dropped here, silently and
//!    counted, as 3.0.6 drops it without a log line. Every other complete frame is handed out
//!    as it is; the classic parser and the signature check (`Authenticator::verify`) decide
//!    about the rest (an end line with junk after `<<<`, a missing `=`, a bad `auth` ...).
//!
//! Two deliberate departures. A line that ends in `>>>` while a frame is being collected
//! starts a new frame: the unfinished one lost its end to line noise and is dropped, where
//! 3.0.6 would keep collecting and lose the intact message that follows too. While hunting, a
//! line that ends in `>>>` (garbage glued in front of a start line) starts a frame. And while hunting, NUL bytes at the very beginning of a line are
//! skipped, so that a sender that ends each packet with a NUL (classic packets may carry one,
//! wire-protocol 4.1) does not cost us the packet after it. 3.0.6 would lose that packet; it
//! never sends the NUL itself, so nothing it sends is read differently.
//!
//! The tty driver, configured as 3.0.6 configures it, has already cleared bit 7 of every byte
//! (ISTRIP) and deleted every CR (IGNCR) before the framer sees the bytes. [`SerialFramer::
//! with_input_flags`] does the same in software, for captured streams (the vectors) and as a
//! harmless second application on a live port (both operations are idempotent).
//!
//! Memory is bounded: hunting keeps at most three bytes of the current line, collecting at
//! most one frame below [`MAXMSG`]. Completed frames wait in a queue until [`SerialFramer::pop`]
//! takes them; a caller that pops after every push holds at most what one push completed.

use std::collections::VecDeque;

/// Frames reaching this size are abandoned (3.0.6: 256 KiB; its buffers hold one byte less).
pub const MAXMSG: usize = 256 * 1024;

const START: &[u8; 3] = b">>>";
const END: &[u8; 3] = b"<<<";
const LF: u8 = b'\n';
const CR: u8 = b'\r';
const NUL: u8 = 0;

/// Counters since the framer was made. `dropped_bytes` counts every input byte that did not
/// end up in a handed-out frame: line noise, partial and abandoned frames, the tail of a line
/// after a NUL, frames with a bad start line. It does not count CRs removed by the software
/// IGNCR or NULs skipped at the start of a line while hunting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FramerStats {
    /// Input bytes pushed.
    pub bytes_in: u64,
    /// Frames handed out (complete, start line exactly `>>>`).
    pub frames: u64,
    /// Input bytes that were discarded (see above).
    pub dropped_bytes: u64,
    /// Frames abandoned at [`MAXMSG`] after their start line.
    pub oversize: u64,
    /// Frames abandoned at [`MAXMSG`] while still on their start line.
    pub oversize_start_line: u64,
    /// Complete frames dropped because their start line was `>>>` followed by other bytes.
    pub bad_start: u64,
    /// Unfinished frames dropped because a new `>>>` line started another.
    pub restarted: u64,
    /// Start lines found at the end of a line of garbage.
    pub glued_starts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for a start line. `len` bytes of the current line matched `>` so far;
    /// `dead` once the line is known not to be a start line (its bytes are being discarded).
    Hunting { len: u8, dead: bool },
    /// Inside a frame; `line_start` is where the current line begins in `frame`, `cut` is set
    /// after a NUL in the current line (bytes up to the LF are discarded).
    Collecting { line_start: usize, cut: bool },
}

/// Sans-IO receive framer for one serial port. See the module documentation.
#[derive(Debug, Clone)]
pub struct SerialFramer {
    input_flags: bool,
    /// The last three bytes of a line being discarded while hunting (see `hunt`).
    tail: [u8; 3],
    state: State,
    frame: Vec<u8>,
    ready: VecDeque<Vec<u8>>,
    stats: FramerStats,
}

impl Default for SerialFramer {
    fn default() -> Self {
        SerialFramer::new()
    }
}

impl SerialFramer {
    /// A framer for bytes as a tty set up like 3.0.6 delivers them (ISTRIP, IGNCR applied).
    pub fn new() -> SerialFramer {
        SerialFramer {
            input_flags: false,
            tail: [0; 3],
            state: State::Hunting {
                len: 0,
                dead: false,
            },
            frame: Vec::new(),
            ready: VecDeque::new(),
            stats: FramerStats::default(),
        }
    }

    /// A framer that also applies ISTRIP (clear bit 7) and IGNCR (drop CR) itself, for raw
    /// captures of the line (the serial vectors) or when the tty may not have done it.
    pub fn with_input_flags() -> SerialFramer {
        SerialFramer {
            input_flags: true,
            ..SerialFramer::new()
        }
    }

    /// Feed bytes from the line, in any chunking: the result does not depend on it.
    pub fn push(&mut self, bytes: &[u8]) {
        self.stats.bytes_in += bytes.len() as u64;
        for &b in bytes {
            // The tty strips bit 7 (ISTRIP) before it drops CRs (IGNCR).
            let b = if self.input_flags {
                let b = b & 0x7f;
                if b == CR {
                    continue;
                }
                b
            } else {
                b
            };
            self.byte(b);
        }
    }

    /// The next complete frame, oldest first.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// Every complete frame, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.ready.drain(..)
    }

    /// Counters since the framer was made.
    pub fn stats(&self) -> FramerStats {
        self.stats
    }

    /// True while no frame is being collected.
    pub fn is_hunting(&self) -> bool {
        matches!(self.state, State::Hunting { .. })
    }

    /// Bytes held for a frame still incomplete (always below [`MAXMSG`]).
    pub fn pending(&self) -> usize {
        self.frame.len()
    }

    /// Forget any partial frame and line (after the port was reopened); counters stay.
    pub fn reset(&mut self) {
        self.stats.dropped_bytes += self.frame.len() as u64;
        if let State::Hunting { len, .. } = self.state {
            self.stats.dropped_bytes += u64::from(len);
        }
        self.frame = Vec::new();
        self.state = State::Hunting {
            len: 0,
            dead: false,
        };
    }

    fn byte(&mut self, b: u8) {
        match self.state {
            State::Hunting { len, dead } => self.hunt(b, len, dead),
            State::Collecting { line_start, cut } => self.collect(b, line_start, cut),
        }
    }

    fn hunt(&mut self, b: u8, len: u8, dead: bool) {
        let fresh = State::Hunting {
            len: 0,
            dead: false,
        };
        if b == LF && dead && &self.tail == START {
            // Garbage glued in front of a start line: the message itself is intact, keep it
            // (3.0.6 loses it). Only while hunting, so no frame in progress can be cut.
            self.stats.dropped_bytes -= START.len() as u64;
            self.stats.glued_starts += 1;
            self.tail = [0; 3];
            self.frame.clear();
            self.frame.extend_from_slice(b">>>\n");
            self.state = State::Collecting {
                line_start: self.frame.len(),
                cut: false,
            };
        } else if b == LF {
            self.stats.dropped_bytes += u64::from(len) + 1;
            self.tail = [0; 3];
            self.state = fresh;
        } else if dead {
            self.stats.dropped_bytes += 1;
            self.tail = [self.tail[1], self.tail[2], if b == NUL { 0 } else { b }];
        } else if b == NUL && len == 0 {
            // A NUL before anything else on the line: skipped (module doc, superset rule).
        } else if b != START[0] {
            // Not `>`, or a NUL cutting the line before three `>`: not a start line.
            self.stats.dropped_bytes += u64::from(len) + 1;
            self.tail = [0, 0, b];
            self.state = State::Hunting { len: 0, dead: true };
        } else if usize::from(len) + 1 < START.len() {
            self.state = State::Hunting {
                len: len + 1,
                dead: false,
            };
        } else {
            self.frame.clear();
            self.frame.extend_from_slice(START);
            self.state = State::Collecting {
                line_start: 0,
                cut: false,
            };
        }
    }

    fn collect(&mut self, b: u8, line_start: usize, cut: bool) {
        if b == LF {
            self.frame.push(LF);
            if self.frame[line_start..].starts_with(END) {
                self.complete();
                return;
            }
            if line_start > 0 && self.frame.ends_with(b">>>\n") {
                // A new message starts (possibly glued to the cut end of the one before): the
                // unfinished one is dropped and this one kept, instead of letting the remains
                // swallow it (3.0.6 does). No field value of a v1 message ends in `>>>`.
                let keep_from = self.frame.len() - 4;
                self.stats.dropped_bytes += keep_from as u64;
                self.stats.restarted += 1;
                self.frame.drain(..keep_from);
            }
            self.state = State::Collecting {
                line_start: self.frame.len(),
                cut: false,
            };
        } else if cut {
            self.stats.dropped_bytes += 1;
            return;
        } else if b == NUL {
            self.stats.dropped_bytes += 1;
            self.state = State::Collecting {
                line_start,
                cut: true,
            };
            return;
        } else {
            self.frame.push(b);
        }
        if self.frame.len() >= MAXMSG {
            self.abandon(line_start == 0);
        }
    }

    fn complete(&mut self) {
        let frame = std::mem::take(&mut self.frame);
        self.state = State::Hunting {
            len: 0,
            dead: false,
        };
        if frame.starts_with(b">>>\n") {
            self.stats.frames += 1;
            self.ready.push_back(frame);
        } else {
            self.stats.bad_start += 1;
            self.stats.dropped_bytes += frame.len() as u64;
        }
    }

    /// The frame reached MAXMSG: drop it; the rest of the current line goes with it unless
    /// the byte that filled the frame was the LF ending that line.
    fn abandon(&mut self, on_start_line: bool) {
        let ended_line = self.frame.last() == Some(&LF);
        self.stats.dropped_bytes += self.frame.len() as u64;
        if on_start_line {
            self.stats.oversize_start_line += 1;
        } else {
            self.stats.oversize += 1;
        }
        self.frame = Vec::new();
        self.state = State::Hunting {
            len: 0,
            dead: !ended_line,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1: &[u8] = b">>>\nt=status\nsrc=alice\nseq=1\nauth=1 abc\n<<<\n";
    const P2: &[u8] = b">>>\nt=status\nsrc=alice\nseq=2\nauth=1 def\n<<<\n";

    fn frames(input: &[u8]) -> (Vec<Vec<u8>>, FramerStats) {
        let mut f = SerialFramer::new();
        f.push(input);
        let out = f.drain().collect();
        (out, f.stats())
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn back_to_back_packets() {
        let (out, st) = frames(&cat(&[P1, P2]));
        assert_eq!(out, vec![P1.to_vec(), P2.to_vec()]);
        assert_eq!(st.dropped_bytes, 0);
        assert_eq!(st.frames, 2);
    }

    #[test]
    fn byte_by_byte_equals_one_push() {
        let input = cat(&[b"junk\n", P1, b"x>>>\n", P2, b"\0", P1]);
        let (whole, st_whole) = frames(&input);
        let mut f = SerialFramer::new();
        for b in &input {
            f.push(std::slice::from_ref(b));
        }
        assert_eq!(f.drain().collect::<Vec<_>>(), whole);
        assert_eq!(f.stats(), st_whole);
    }

    #[test]
    fn garbage_line_between_packets_is_ignored() {
        let (out, st) = frames(&cat(&[P1, b"GARBAGE LINE xyz\n", P2]));
        assert_eq!(out, vec![P1.to_vec(), P2.to_vec()]);
        assert_eq!(st.dropped_bytes, 17);
    }

    #[test]
    fn noise_without_lf_costs_nothing() {
        // 3.0.6 loses P2, whose start line is glued to the noise; we find it.
        let (out, _) = frames(&cat(&[P1, b"\x01\x99noise", P2, P1]));
        assert_eq!(out, vec![P1.to_vec(), P2.to_vec(), P1.to_vec()]);
    }

    #[test]
    fn trailing_nul_after_a_packet_costs_nothing() {
        let (out, st) = frames(&cat(&[P1, b"\0", P2, b"\0\0", P1]));
        assert_eq!(out, vec![P1.to_vec(), P2.to_vec(), P1.to_vec()]);
        assert_eq!(st.dropped_bytes, 0);
    }

    #[test]
    fn nul_cuts_the_rest_of_its_line() {
        let input = b">>>\nt=status\nprot\0ocol=1\nauth=1 x\n<<<\n";
        let (out, st) = frames(input);
        assert_eq!(out, vec![b">>>\nt=status\nprot\nauth=1 x\n<<<\n".to_vec()]);
        assert_eq!(st.dropped_bytes, 7);
    }

    #[test]
    fn nul_inside_the_end_marker_means_no_end() {
        let input = cat(&[b">>>\na=b\n<<\0<\n", P1]);
        let (out, st) = frames(&input);
        // The cut line "<<" does not end the frame, but P1's start line restarts it.
        assert_eq!(out, vec![P1.to_vec()]);
        assert_eq!(st.restarted, 1);
    }

    #[test]
    fn start_line_with_suffix_is_dropped_silently() {
        let (out, st) = frames(&cat(&[b">>>XXXX\nt=x\n<<<\n", P2]));
        assert_eq!(out, vec![P2.to_vec()]);
        assert_eq!(st.bad_start, 1);
    }

    #[test]
    fn start_line_missing_loses_only_that_packet() {
        let (out, _) = frames(&cat(&[P1, &P2[4..], P1]));
        assert_eq!(out, vec![P1.to_vec(), P1.to_vec()]);
    }

    #[test]
    fn end_line_missing_loses_only_that_packet() {
        // 3.0.6 merges the cut packet with the next one and loses both; we lose one.
        let (out, st) = frames(&cat(&[&P1[..P1.len() - 4], P2, P1]));
        assert_eq!(out, vec![P2.to_vec(), P1.to_vec()]);
        assert_eq!(st.restarted, 1);
    }

    #[test]
    fn end_line_with_junk_is_handed_to_the_parser() {
        let (out, _) = frames(b">>>\na=b\n<<<junk\n");
        assert_eq!(out, vec![b">>>\na=b\n<<<junk\n".to_vec()]);
    }

    #[test]
    fn oversize_frame_is_abandoned_and_hunting_resumes() {
        let mut input = b">>>\n".to_vec();
        while input.len() < MAXMSG + 100 {
            input.extend_from_slice(b"a=b\n");
        }
        input.extend_from_slice(P1);
        let mut f = SerialFramer::new();
        for chunk in input.chunks(997) {
            f.push(chunk);
            assert!(f.pending() < MAXMSG);
        }
        assert_eq!(f.drain().collect::<Vec<_>>(), vec![P1.to_vec()]);
        assert_eq!(f.stats().oversize, 1);
        assert_eq!(f.stats().oversize_start_line, 0);
    }

    #[test]
    fn oversize_start_line() {
        let mut input = b">>>".to_vec();
        input.resize(MAXMSG + 10, b'z');
        input.push(b'\n');
        input.extend_from_slice(P2);
        let (out, st) = frames(&input);
        assert_eq!(out, vec![P2.to_vec()]);
        assert_eq!(st.oversize_start_line, 1);
    }

    #[test]
    fn abandoned_frame_leaves_the_rest_of_its_line_behind() {
        // The frame fills up in the middle of a line that ends like a start line: what follows
        // is framed (and left to the signature check), the oversize frame is not.
        let mut input = b">>>\n".to_vec();
        input.resize(MAXMSG - 2, b'a');
        input.extend_from_slice(b"bb>>>\nq=1\n<<<\n");
        input.extend_from_slice(P1);
        let (out, st) = frames(&input);
        assert_eq!(out, vec![b">>>\nq=1\n<<<\n".to_vec(), P1.to_vec()]);
        assert_eq!(st.oversize, 1);
    }

    #[test]
    fn input_flags_strip_bit7_and_cr() {
        let mut f = SerialFramer::with_input_flags();
        f.push(b">>>\r\nt=st\r\ratus\nprotocol\xbd1\n<<<\n");
        assert_eq!(f.pop(), Some(b">>>\nt=status\nprotocol=1\n<<<\n".to_vec()));
    }

    #[test]
    fn without_input_flags_bytes_pass_as_they_are() {
        let (out, _) = frames(b">>>\nk=\xff\r\n<<<\n");
        assert_eq!(out, vec![b">>>\nk=\xff\r\n<<<\n".to_vec()]);
    }

    #[test]
    fn reset_drops_the_partial_frame() {
        let mut f = SerialFramer::new();
        f.push(&P1[..10]);
        assert!(!f.is_hunting());
        f.reset();
        assert!(f.is_hunting());
        f.push(&P1[10..]);
        f.push(P2);
        assert_eq!(f.drain().collect::<Vec<_>>(), vec![P2.to_vec()]);
    }
}

#[cfg(test)]
mod superset_tests {
    use super::*;

    #[test]
    fn garbage_glued_to_a_start_line_costs_nothing() {
        let p = b">>>\nt=status\nseq=1\n<<<\n";
        let mut f = SerialFramer::new();
        f.push(b"\x01noise without end");
        f.push(p);
        f.push(b"more noise>>");
        f.push(p);
        let out: Vec<_> = f.drain().collect();
        assert_eq!(out, vec![p.to_vec(), p.to_vec()]);
        assert_eq!(f.stats().glued_starts, 2);
    }
}
