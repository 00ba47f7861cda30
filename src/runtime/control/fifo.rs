//! The FIFO in the state directory (`/var/lib/heartbeat/fifo`): scripts (`hb_standby`,
//! `ha_clustermsg`, resource agents) write classic-format messages into it, and the daemon
//! sends them to the cluster. With nobody reading it, writers would block for ever, so the
//! daemon always reads it.

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::wire::{classic, Msg, WireError};

/// Bytes kept while waiting for the end of a message.
const MAX_PENDING: usize = 64 * 1024;

pub struct FifoReader {
    file: File,
    /// Our own write end keeps the FIFO open, so a writer closing it is not an end of file.
    _writer: File,
    pending: Vec<u8>,
}

impl FifoReader {
    /// Open an existing FIFO (see `state::ensure_fifo`) for non-blocking reading.
    pub fn open(path: &Path) -> io::Result<FifoReader> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        let writer = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        Ok(FifoReader {
            file,
            _writer: writer,
            pending: Vec::new(),
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Everything readable now, split into messages; a block that does not decode is an
    /// error in the list, and the reading goes on.
    pub fn read_messages(&mut self) -> Vec<Result<Msg, WireError>> {
        let mut buf = [0u8; 4096];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        split_messages(&mut self.pending)
    }
}

/// Take every complete `>>>` ... `<<<` block out of `pending`; text outside blocks is dropped.
pub fn split_messages(pending: &mut Vec<u8>) -> Vec<Result<Msg, WireError>> {
    let mut out = Vec::new();
    loop {
        let Some(start) = find(pending, b">>>\n") else {
            // Keep a possible beginning of a marker only.
            let keep = pending.len().saturating_sub(3);
            pending.drain(..keep);
            return out;
        };
        let Some(end) = find(&pending[start..], b"<<<\n").map(|e| start + e + 4) else {
            pending.drain(..start);
            if pending.len() > MAX_PENDING {
                pending.clear();
                out.push(Err(WireError::new("message in the FIFO too long; dropped")));
            }
            return out;
        };
        // A second start marker before the end means the first message was cut short.
        let block_start = start + rfind(&pending[start..end - 4], b">>>\n").unwrap_or(0);
        out.push(classic::decode(&pending[block_start..end]));
        pending.drain(..end);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_blocks_and_skips_noise() {
        let mut p = b"junk\n>>>\nt=ask_resources\nrsc_hold=all\ninfo=me\n<<<\n>>>\nt=hb_takeover\nrsc_hold=foreign\n<<<\n>>>\nt=par".to_vec();
        let msgs = split_messages(&mut p);
        assert_eq!(msgs.len(), 2);
        let m0 = msgs[0].as_ref().unwrap();
        assert_eq!(m0.get_str("t"), Some("ask_resources"));
        assert_eq!(m0.get_str("info"), Some("me"));
        assert_eq!(
            msgs[1].as_ref().unwrap().get_str("rsc_hold"),
            Some("foreign")
        );
        assert_eq!(p, b">>>\nt=par".to_vec());
        p.extend_from_slice(b"tial\n<<<\n");
        let msgs = split_messages(&mut p);
        assert_eq!(msgs[0].as_ref().unwrap().get_str("t"), Some("partial"));
        assert!(p.is_empty());
    }

    #[test]
    fn a_cut_message_gives_way_to_the_next() {
        let mut p = b">>>\nt=cut\n>>>\nt=whole\n<<<\n".to_vec();
        let msgs = split_messages(&mut p);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].as_ref().unwrap().get_str("t"), Some("whole"));
    }

    #[test]
    fn reads_what_a_writer_puts_in_the_fifo() {
        let dir = std::env::temp_dir().join(format!("hb-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        crate::runtime::os::state::ensure_fifo(&dir).unwrap();
        let path = crate::runtime::os::state::fifo_path(&dir);
        let mut r = FifoReader::open(&path).unwrap();
        std::fs::write(
            &path,
            ">>>\nt=ask_resources\nrsc_hold=local\ninfo=me\n<<<\n",
        )
        .unwrap();
        let msgs = r.read_messages();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].as_ref().unwrap().get_str("rsc_hold"), Some("local"));
        // The writer closed; the reader sees no end of file and a second writer works too.
        std::fs::write(&path, ">>>\nt=x\n<<<\n").unwrap();
        assert_eq!(r.read_messages().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
