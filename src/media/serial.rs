//! Serial links (`serial <dev>` in ha.cf), as Heartbeat 3.0.6 drives them (links.md section 2),
//! inside one non-blocking event loop.
//!
//! # Pieces
//!
//! * [`SerialMedium`]: one open port. Opening takes the line lock, opens the device
//!   non-blocking, applies 3.0.6's termios changes, flushes and sends a break. Sending queues
//!   whole classic packets and writes them in 512-byte pieces paced like 3.0.6; receiving reads
//!   what is there and runs it through a [`SerialFramer`].
//! * [`SerialFramer`] (`framer`): the sans-IO receive framer, fuzzed and property-tested.
//! * [`LineLock`] (`lock`): `LCK..<name>` lock files.
//! * [`ReopenPolicy`]: the long-lived per-link state across reopenings: when to try again and
//!   what to log (rate-limited).
//!
//! # The line lock is held while the port is open
//!
//! 3.0.6 removes its lock about 2 ms after opening (it only protects the open itself). We keep
//! it until the port is closed (link lost, reload, exit), as links.md 2.2 recommends: a getty,
//! minicom or picocom started on the same line by mistake then finds it busy instead of
//! stealing bytes from both sides, which is the whole point of a lock. The port is also opened
//! with the `serialport` crate's exclusive mode (TIOCEXCL and an exclusive `flock`) for the
//! same reason. After a crash the stale-lock rule (dead pid) frees the line again, and the lock
//! directory (`/run/lock` behind `/var/lock` on Debian) is emptied at boot. The one cost: a
//! second `serial` line naming the same device, which 3.0.6 accepts (and then splits the bytes
//! between two readers), gets "cannot lock line" here. A theoretical one: if we die without
//! removing the lock and an unrelated process gets our pid before we restart, the line stays
//! busy until that process ends or the lock is removed by hand (3.0.6 has the same rule but a
//! 2 ms window).
//!
//! # Event loop integration
//!
//! For each `MediumKind::Serial { device, baud }`, index `i` in `cfg.hacf.media`, link name
//! `device` exactly as written in ha.cf (`cl_status listhblinks`, `Link bob:/dev/ttyS0 up.`):
//!
//! 1. **Startup.** `SerialMedium::open(device, baud, Path::new(lock::DEFAULT_LOCK_DIR))`.
//!    On success log [`starting_line`] (`info: glib: Starting serial heartbeat on tty
//!    /dev/ttyS0 (19200 baud)`). On failure log [`OpenError::log_line`] and then
//!    [`startup_failure_line`] (`ERROR: make_io_childpair: cannot open serial /dev/ttyS0`) and
//!    refuse to start, as 3.0.6 does. `open` does not sleep, but the break it sends takes a
//!    real UART a quarter to half a second (a pty returns at once); that happens once per
//!    successful open.
//! 2. **Registration.** `registry.register(&mut SourceFd(&m.raw_fd()), Token(MEDIA_BASE + i),
//!    Interest::READABLE | Interest::WRITABLE)`. Both interests stay on for the port's life:
//!    mio is edge-triggered, so WRITABLE only fires when a full kernel buffer drains.
//!    Deregister *before* dropping the medium (the fd number is reused by the next open).
//! 3. **Events.** On any event for the token, call `m.read_available(&mut frames)` and then
//!    `m.flush(now_ms)`. Every frame in `frames` (even when the call returned `Err`) is a
//!    complete classic packet: hand it to `cluster.handle_datagram(now, i, &frame)`, which runs
//!    `Authenticator::verify` (the classic branch: parse, check the inner `auth` field) and
//!    refreshes link `i` of the sender. Never feed serial bytes to the netstring path.
//! 4. **Sending.** `Action::Send(bytes)` carries our netstring packet. For a serial link turn
//!    it back into a `Msg` (`auth.verify(&bytes)` of our own packet, or better a `Msg` carried
//!    by the action), then `m.send(&auth.encode_classic(&msg), now_ms)`: classic form with the
//!    inner `auth` recomputed, the same value as in the UDP copy (links.md 2.3, vectors
//!    serial/40 and 41; `tests/serial_vectors.rs` checks that `encode_classic` of the decoded
//!    UDP copy is byte for byte 3.0.6's serial copy). A serial link that is down (being
//!    reopened) simply skips the message,
//!    like 3.0.6's writer that reports success whatever happened; no `Is a cable unplugged`
//!    line for serial.
//! 5. **Timers.** The poll timeout must include `m.next_timer()` (pacing: the next 512-byte
//!    piece; the 500 ms write timeout) and `policy.next_timer()` of every link that is down.
//!    When `m.next_timer()` has passed call `m.flush(now_ms)`; when `policy.due(now_ms)`, try
//!    `SerialMedium::open` again.
//! 6. **Events to log.** After reads and flushes, `for ev in m.take_events()` log
//!    `policy.event_lines(now_ms, device, &ev)`: frames over 256 KiB (`ERROR: glib:
//!    serial_read:serial_pkt exceeds MAXMSG`), the write timeout (`WARN: glib: TTY write
//!    timeout on [/dev/ttyS0] (no connection or bad cable? [see documentation])` and `info:
//!    glib: See http://linux-ha.org/wiki/FAQ#TTY_timeout for details`, at most once an hour),
//!    queue overflow (ours).
//! 7. **Lost port.** `Err(LinkError)` from `read_available`, `flush` or `send` means EOF,
//!    hangup or a vanished device: deregister, drop the medium (closes the port, removes the
//!    lock), log `policy.lost(now_ms, device, &err)` (`ERROR: glib: EOF in ttygets
//!    [/dev/ttyS0]: Success [0]` or `ERROR: glib: TTY write failure on [/dev/ttyS0]:
//!    Input/output error`, once, then at most once a minute with a count; 3.0.6 logs the EOF
//!    line thousands of times a second and never reopens). Every second or so (`policy.due`)
//!    call `open` again; failures go through `policy.failed` (logged once, then once a minute
//!    with a count); success through `policy.reopened` plus [`starting_line`] again, then
//!    register as in 2. The link itself goes `dead` and `up` through the normal link timing
//!    (`Link bob:/dev/ttyS0 dead.` after the dead time); nothing else changes.
//! 8. **Status.** The local node's serial link is always `dead` (a node never hears its own
//!    serial output; links.md 2.7). Nothing is forwarded to other serial ports (2.8): a frame
//!    received on one port is only processed, never written to another.
//! 9. **Reload / exit.** Drop the medium (after deregistering): the lock file goes with it.

pub mod framer;
pub mod lock;

pub use framer::{FramerStats, SerialFramer, MAXMSG};
pub use lock::{LineLock, LockError, DEFAULT_LOCK_DIR};

use std::collections::VecDeque;
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::termios::{
    self, BaudRate, ControlFlags, InputFlags, LocalFlags, OutputFlags, SetArg,
    SpecialCharacterIndices, Termios,
};
use serialport::{BreakDuration, ClearBuffer, SerialPort, TTYPort};

use crate::cluster::LogLevel;

/// Largest piece written at once; pieces of one message are paced (links.md 2.3).
pub const CHUNK: usize = 512;
/// A piece that makes no progress for this long is a write timeout.
pub const WRITE_TIMEOUT_MS: u64 = 500;
/// Whole messages waiting beyond this many bytes push the oldest waiting ones out. At 19200
/// baud this is about four minutes of line time; heartbeats that old are worthless anyway.
pub const MAX_QUEUED_BYTES: usize = 512 * 1024;
/// `baud` values 3.0.6 accepts.
pub const SUPPORTED_BAUDS: [u32; 7] = [9600, 19200, 38400, 57600, 115200, 230400, 460800];

/// The pause between two pieces of one message: 512 / (baud / 8) seconds, the division by 8
/// an integer one and the result truncated to whole microseconds, as 3.0.6 computes it.
pub fn chunk_delay_us(baud: u32) -> u64 {
    let bytes_per_sec = u64::from((baud / 8).max(1));
    CHUNK as u64 * 1_000_000 / bytes_per_sec
}

fn baud_rate(baud: u32) -> Option<BaudRate> {
    Some(match baud {
        9600 => BaudRate::B9600,
        19200 => BaudRate::B19200,
        38400 => BaudRate::B38400,
        57600 => BaudRate::B57600,
        115200 => BaudRate::B115200,
        230400 => BaudRate::B230400,
        460800 => BaudRate::B460800,
        _ => return None,
    })
}

/// Change `t` the way 3.0.6 changes a port's settings (links.md 2.2, step 3). Read-modify-
/// write: whatever is not named here stays as it was (CSTOPB, HUPCL, IGNPAR, INLCR, IEXTEN ...)
/// so that the same corrupted frames survive or die as with 3.0.6. (nix's flag types do not
/// carry three bits through a read: IUCLC, which is cleared here anyway, XCASE, which only
/// acts in canonical mode, and ADDRB, RS-485 addressing; none matters on our line.)
pub fn apply_line_settings(t: &mut Termios, baud: u32) -> nix::Result<()> {
    let speed = baud_rate(baud).ok_or(Errno::EINVAL)?;
    t.input_flags.remove(
        InputFlags::IGNBRK
            | InputFlags::from_bits_retain(libc::IUCLC)
            | InputFlags::IXANY
            | InputFlags::IXOFF
            | InputFlags::IXON
            | InputFlags::ICRNL
            | InputFlags::PARMRK,
    );
    t.input_flags
        .insert(InputFlags::INPCK | InputFlags::ISTRIP | InputFlags::IGNCR | InputFlags::BRKINT);
    t.output_flags.remove(OutputFlags::OPOST);
    t.control_flags
        .remove(ControlFlags::CSIZE | ControlFlags::PARENB);
    termios::cfsetspeed(t, speed)?;
    t.control_flags.insert(
        ControlFlags::CS8 | ControlFlags::CREAD | ControlFlags::CLOCAL | ControlFlags::CRTSCTS,
    );
    t.local_flags
        .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG);
    t.line_discipline = 0;
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 1;
    Ok(())
}

/// The C library's text for an error, as 3.0.6 prints it (`Input/output error`), without
/// Rust's ` (os error 5)` suffix.
pub fn strerror(e: &io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => return e.to_string(),
    };
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// `info: glib: Starting serial heartbeat on tty /dev/ttyS0 (19200 baud)`, after every
/// successful open.
pub fn starting_line(device: &str, baud: u32) -> (LogLevel, String) {
    (
        LogLevel::Info,
        format!("glib: Starting serial heartbeat on tty {device} ({baud} baud)"),
    )
}

/// The core's line when a serial port cannot be opened at startup (3.0.6 then dies).
pub fn startup_failure_line(device: &str) -> (LogLevel, String) {
    (
        LogLevel::Error,
        format!("make_io_childpair: cannot open serial {device}"),
    )
}

/// Why a port could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// `baud` is not one of [`SUPPORTED_BAUDS`] (the configuration parser refuses it first).
    Baud(u32),
    /// The line lock is held by somebody else, or the lock directory is unusable.
    Lock(LockError),
    /// The port is open elsewhere with an exclusive flock.
    Exclusive,
    /// open(2) failed.
    Open(io::Error),
    /// tcgetattr failed (not a terminal, device gone).
    GetAttr(io::Error),
    /// tcsetattr failed.
    SetAttr(io::Error),
}

impl OpenError {
    /// What to log, in 3.0.6's words where it has some.
    pub fn log_line(&self, device: &str) -> (LogLevel, String) {
        let text = match self {
            OpenError::Baud(b) => format!("glib: invalid baudrate [{b}] for {device}"),
            OpenError::Lock(_) | OpenError::Exclusive => {
                format!("glib: cannot lock line {device}")
            }
            OpenError::Open(e) => format!("glib: cannot open {device}: {}", strerror(e)),
            OpenError::GetAttr(e) => {
                format!("glib: cannot get tty attributes: {}", strerror(e))
            }
            OpenError::SetAttr(e) => {
                format!("glib: cannot set tty attributes: {}", strerror(e))
            }
        };
        (LogLevel::Error, text)
    }

    /// True when somebody else holds the line (as opposed to a missing or broken device).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            OpenError::Exclusive | OpenError::Lock(LockError::Busy { .. })
        )
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Baud(b) => write!(f, "unsupported baud rate {b}"),
            OpenError::Lock(e) => write!(f, "cannot lock line: {e}"),
            OpenError::Exclusive => f.write_str("cannot lock line: port is in exclusive use"),
            OpenError::Open(e) => write!(f, "cannot open: {}", strerror(e)),
            OpenError::GetAttr(e) => write!(f, "cannot get tty attributes: {}", strerror(e)),
            OpenError::SetAttr(e) => write!(f, "cannot set tty attributes: {}", strerror(e)),
        }
    }
}

impl std::error::Error for OpenError {}

impl From<OpenError> for io::Error {
    fn from(e: OpenError) -> io::Error {
        let kind = match &e {
            OpenError::Baud(_) => io::ErrorKind::InvalidInput,
            OpenError::Lock(LockError::Busy { .. }) | OpenError::Exclusive => {
                io::ErrorKind::ResourceBusy
            }
            OpenError::Lock(LockError::Io { error, .. })
            | OpenError::Open(error)
            | OpenError::GetAttr(error)
            | OpenError::SetAttr(error) => error.kind(),
        };
        io::Error::new(kind, e)
    }
}

/// The port is unusable: close it and reopen later ([`ReopenPolicy`]).
#[derive(Debug)]
pub enum LinkError {
    /// read() returned 0: the other end hung up (pty master closed, modem hangup).
    Eof,
    /// read() failed (EIO, ENXIO, ENODEV ...: the device went away).
    Read(io::Error),
    /// write() failed (EIO after a hangup, ...).
    Write(io::Error),
}

impl LinkError {
    /// 3.0.6's line for this failure.
    pub fn log_line(&self, device: &str) -> (LogLevel, String) {
        let text = match self {
            LinkError::Eof => format!("glib: EOF in ttygets [{device}]: Success [0]"),
            LinkError::Read(e) => format!(
                "glib: EOF in ttygets [{device}]: {} [{}]",
                strerror(e),
                e.raw_os_error().unwrap_or(0)
            ),
            LinkError::Write(e) => {
                format!("glib: TTY write failure on [{device}]: {}", strerror(e))
            }
        };
        (LogLevel::Error, text)
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Eof => f.write_str("end of file (hangup)"),
            LinkError::Read(e) => write!(f, "read failure: {}", strerror(e)),
            LinkError::Write(e) => write!(f, "write failure: {}", strerror(e)),
        }
    }
}

impl std::error::Error for LinkError {}

/// Things worth a log line that do not stop the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialEvent {
    /// A frame reached [`MAXMSG`] and was abandoned (`start_line`: while still on its first line).
    Oversize { start_line: bool },
    /// A piece made no progress for [`WRITE_TIMEOUT_MS`]: the output was flushed and the partly
    /// sent message dropped (on a real UART: CTS low, cable pulled).
    WriteTimeout,
    /// Messages dropped before sending: the queue was over [`MAX_QUEUED_BYTES`] or the message
    /// itself was [`MAXMSG`] or more.
    SendDropped { messages: usize, bytes: usize },
}

impl SerialEvent {
    /// The lines for this event, without rate limiting ([`ReopenPolicy::event_lines`] adds it).
    pub fn log_lines(&self, device: &str) -> Vec<(LogLevel, String)> {
        match self {
            SerialEvent::Oversize { start_line: false } => vec![(
                LogLevel::Error,
                "glib: serial_read:serial_pkt exceeds MAXMSG".to_string(),
            )],
            SerialEvent::Oversize { start_line: true } => vec![(
                LogLevel::Error,
                "glib: serial_read:MSG_START exceeds MAXMSG".to_string(),
            )],
            SerialEvent::WriteTimeout => vec![
                (
                    LogLevel::Warn,
                    format!(
                        "glib: TTY write timeout on [{device}] (no connection or bad cable? [see documentation])"
                    ),
                ),
                (
                    LogLevel::Info,
                    "glib: See http://linux-ha.org/wiki/FAQ#TTY_timeout for details".to_string(),
                ),
            ],
            SerialEvent::SendDropped { messages, bytes } => vec![(
                LogLevel::Warn,
                format!(
                    "glib: serial output queue on [{device}] full: {messages} message(s), {bytes} bytes dropped"
                ),
            )],
        }
    }
}

/// Counters of one open port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SerialStats {
    pub bytes_out: u64,
    pub messages_out: u64,
    pub write_timeouts: u64,
    pub messages_dropped: u64,
    pub framer: FramerStats,
}

/// The port's fd, borrowed for nix calls.
fn borrow_fd(port: &TTYPort) -> BorrowedFd<'_> {
    // SAFETY: the fd is owned by `port` (TTYPort closes it only in its Drop), so it stays open
    // for as long as `port` is borrowed.
    unsafe { BorrowedFd::borrow_raw(port.as_raw_fd()) }
}

/// The message being written: `sent` bytes are in the kernel, the current piece ends at
/// `piece_end`.
#[derive(Debug)]
struct Outgoing {
    bytes: Vec<u8>,
    sent: usize,
    piece_end: usize,
}

/// One open serial port. See the module documentation for how the event loop drives it.
#[derive(Debug)]
pub struct SerialMedium {
    // Field order is drop order: the port is closed before the lock file goes.
    port: TTYPort,
    _lock: LineLock,
    device: String,
    baud: u32,
    delay_us: u64,
    framer: SerialFramer,
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    current: Option<Outgoing>,
    /// No piece may start before this (µs on the caller's clock); set after a piece that was
    /// not the last of its message.
    next_piece_us: Option<u64>,
    /// When the current piece started or last made progress (ms).
    last_progress_ms: u64,
    events: Vec<SerialEvent>,
    reported_oversize: (u64, u64),
    stats: SerialStats,
}

impl SerialMedium {
    /// Lock, open and set up `device` at `baud` (links.md 2.2). `lock_dir` is
    /// [`DEFAULT_LOCK_DIR`] in the daemon, a scratch directory in tests.
    pub fn open(device: &str, baud: u32, lock_dir: &Path) -> Result<SerialMedium, OpenError> {
        if baud_rate(baud).is_none() {
            return Err(OpenError::Baud(baud));
        }
        let lock = LineLock::acquire(lock_dir, Path::new(device)).map_err(OpenError::Lock)?;
        // Non-blocking from the start: a modem line without CLOCAL would block open() until
        // carrier, and the event loop never blocks. std adds O_CLOEXEC.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(device)
            .map_err(OpenError::Open)?;
        termios::tcgetattr(&file).map_err(|e| OpenError::GetAttr(e.into()))?;
        // SAFETY: `file` was opened just above and is owned by nobody else; into_raw_fd gives up
        // its ownership, so the TTYPort becomes the fd's only owner and closes it once.
        let port = unsafe { TTYPort::from_raw_fd(file.into_raw_fd()) };
        if !port.exclusive() {
            return Err(OpenError::Exclusive);
        }
        let m = SerialMedium {
            port,
            _lock: lock,
            device: device.to_string(),
            baud,
            delay_us: chunk_delay_us(baud),
            framer: SerialFramer::with_input_flags(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            current: None,
            next_piece_us: None,
            last_progress_ms: 0,
            events: Vec::new(),
            reported_oversize: (0, 0),
            stats: SerialStats::default(),
        };
        let mut t =
            termios::tcgetattr(borrow_fd(&m.port)).map_err(|e| OpenError::GetAttr(e.into()))?;
        apply_line_settings(&mut t, baud).map_err(|e| OpenError::SetAttr(e.into()))?;
        // TCSAFLUSH: drain output, discard input, then apply (3.0.6's TCSETSF).
        termios::tcsetattr(borrow_fd(&m.port), SetArg::TCSAFLUSH, &t)
            .map_err(|e| OpenError::SetAttr(e.into()))?;
        let _ = m.port.clear(ClearBuffer::All);
        // 3.0.6 also tries to make the tty's foreground process group its own, which fails
        // (not our controlling terminal) and is ignored; we skip it.
        // The break makes the peer's driver discard whatever half-received input it holds.
        let _ = m.port.send_break(BreakDuration::Short);
        Ok(m)
    }

    /// The port's fd, for `mio::unix::SourceFd` (READABLE | WRITABLE).
    pub fn raw_fd(&self) -> RawFd {
        self.port.as_raw_fd()
    }

    /// The device path as given to `open` (the link name).
    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn baud(&self) -> u32 {
        self.baud
    }

    /// Queue one classic packet (`>>>` LF ... `<<<` LF; a trailing NUL is removed, serial
    /// carries none) and write what the pacing allows now.
    pub fn send(&mut self, packet: &[u8], now_ms: u64) -> Result<(), LinkError> {
        let packet = packet.strip_suffix(b"\0").unwrap_or(packet);
        if packet.len() >= MAXMSG {
            self.dropped(1, packet.len());
        } else if !packet.is_empty() {
            self.queued_bytes += packet.len();
            self.queue.push_back(packet.to_vec());
            let (mut n, mut bytes) = (0, 0);
            while self.queued_bytes > MAX_QUEUED_BYTES && self.queue.len() > 1 {
                if let Some(old) = self.queue.pop_front() {
                    self.queued_bytes -= old.len();
                    n += 1;
                    bytes += old.len();
                }
            }
            if n > 0 {
                self.dropped(n, bytes);
            }
        }
        self.flush(now_ms)
    }

    fn dropped(&mut self, messages: usize, bytes: usize) {
        self.stats.messages_dropped += messages as u64;
        self.events
            .push(SerialEvent::SendDropped { messages, bytes });
    }

    /// Write as much as the pacing and the kernel allow. Call on every event of the port and
    /// whenever [`next_timer`](Self::next_timer) has passed.
    pub fn flush(&mut self, now_ms: u64) -> Result<(), LinkError> {
        let now_us = now_ms.saturating_mul(1000);
        loop {
            if self.current.is_none() {
                let Some(bytes) = self.queue.pop_front() else {
                    return Ok(());
                };
                self.queued_bytes -= bytes.len();
                self.current = Some(Outgoing {
                    bytes,
                    sent: 0,
                    piece_end: 0,
                });
            }
            let Some(cur) = self.current.as_mut() else {
                return Ok(());
            };
            if cur.sent == cur.piece_end {
                if self.next_piece_us.is_some_and(|t| now_us < t) {
                    return Ok(());
                }
                self.next_piece_us = None;
                cur.piece_end = (cur.sent + CHUNK).min(cur.bytes.len());
                self.last_progress_ms = now_ms;
            }
            let piece = &cur.bytes[cur.sent..cur.piece_end];
            match nix::unistd::write(borrow_fd(&self.port), piece) {
                Ok(n) if n > 0 => {
                    self.stats.bytes_out += n as u64;
                    self.last_progress_ms = now_ms;
                    cur.sent += n;
                    if cur.sent == cur.piece_end {
                        if cur.sent == cur.bytes.len() {
                            // No pause after the last piece: the next message follows at once.
                            self.current = None;
                            self.stats.messages_out += 1;
                        } else {
                            self.next_piece_us = Some(now_us + self.delay_us);
                        }
                    }
                }
                Ok(_) | Err(Errno::EAGAIN) => {
                    if now_ms < self.last_progress_ms + WRITE_TIMEOUT_MS {
                        return Ok(());
                    }
                    // 3.0.6's remedy: flush the output and give the message up.
                    let _ = self.port.clear(ClearBuffer::Output);
                    self.current = None;
                    self.next_piece_us = None;
                    self.stats.write_timeouts += 1;
                    self.stats.messages_dropped += 1;
                    self.events.push(SerialEvent::WriteTimeout);
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(LinkError::Write(e.into())),
            }
        }
    }

    /// When the caller must call [`flush`](Self::flush) next without an event (ms on the
    /// caller's clock): the next paced piece, or the write timeout of a stalled one.
    pub fn next_timer(&self) -> Option<u64> {
        let cur = self.current.as_ref();
        if cur.is_some_and(|c| c.sent < c.piece_end) {
            return Some(self.last_progress_ms + WRITE_TIMEOUT_MS);
        }
        if cur.is_some() || !self.queue.is_empty() {
            return self.next_piece_us.map(|us| us.div_ceil(1000));
        }
        None
    }

    /// Read everything the port has and append every complete classic packet to `frames`
    /// (oldest first). On `Err` the frames completed before the failure are in `frames` too:
    /// process them, then treat the port as lost.
    pub fn read_available(&mut self, frames: &mut Vec<Vec<u8>>) -> Result<(), LinkError> {
        let mut buf = [0u8; 4096];
        let result = loop {
            match nix::unistd::read(self.port.as_raw_fd(), &mut buf) {
                Ok(0) => break Err(LinkError::Eof),
                Ok(n) => self.framer.push(&buf[..n]),
                Err(Errno::EAGAIN) => break Ok(()),
                Err(Errno::EINTR) => {}
                Err(e) => break Err(LinkError::Read(e.into())),
            }
        };
        frames.extend(self.framer.drain());
        let st = self.framer.stats();
        for _ in self.reported_oversize.0..st.oversize {
            self.events
                .push(SerialEvent::Oversize { start_line: false });
        }
        for _ in self.reported_oversize.1..st.oversize_start_line {
            self.events.push(SerialEvent::Oversize { start_line: true });
        }
        self.reported_oversize = (st.oversize, st.oversize_start_line);
        result
    }

    /// Events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<SerialEvent> {
        std::mem::take(&mut self.events)
    }

    /// Messages and bytes waiting to be written (the one being written included).
    pub fn queued(&self) -> (usize, usize) {
        let cur = self.current.as_ref().map_or(0, |c| c.bytes.len() - c.sent);
        (
            self.queue.len() + usize::from(self.current.is_some()),
            self.queued_bytes + cur,
        )
    }

    pub fn stats(&self) -> SerialStats {
        SerialStats {
            framer: self.framer.stats(),
            ..self.stats
        }
    }
}

/// At most one line per period; counts what it held back.
#[derive(Debug, Clone)]
pub struct LogLimiter {
    period_ms: u64,
    last: Option<u64>,
    suppressed: u64,
}

impl LogLimiter {
    pub fn new(period_ms: u64) -> LogLimiter {
        LogLimiter {
            period_ms,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be logged now, `n` being how many were held back since the
    /// last one; `None` (and one more held back) otherwise.
    pub fn allow(&mut self, now_ms: u64) -> Option<u64> {
        match self.last {
            Some(t) if now_ms < t.saturating_add(self.period_ms) => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now_ms);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    /// Held back since the last line.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

fn with_count((level, text): (LogLevel, String), held: u64, what: &str) -> (LogLevel, String) {
    if held == 0 {
        (level, text)
    } else {
        (level, format!("{text} ({held} more {what} not logged)"))
    }
}

/// The per-link state that outlives each [`SerialMedium`]: whether the port is down, when to
/// try opening it again (every `retry_ms`, 1 s by default), and the rate limits of its log
/// lines (loss and failed reopen: once a minute with a count; write timeout: once an hour, as
/// 3.0.6). Pure: the caller passes the time and logs what comes back.
#[derive(Debug, Clone)]
pub struct ReopenPolicy {
    retry_ms: u64,
    down_since: Option<u64>,
    next_attempt: u64,
    failed_attempts: u64,
    lost_log: LogLimiter,
    fail_log: LogLimiter,
    timeout_log: LogLimiter,
    oversize_log: LogLimiter,
}

impl Default for ReopenPolicy {
    fn default() -> Self {
        ReopenPolicy::new()
    }
}

impl ReopenPolicy {
    pub fn new() -> ReopenPolicy {
        ReopenPolicy::with_retry(1000)
    }

    pub fn with_retry(retry_ms: u64) -> ReopenPolicy {
        ReopenPolicy {
            retry_ms: retry_ms.max(1),
            down_since: None,
            next_attempt: 0,
            failed_attempts: 0,
            lost_log: LogLimiter::new(60_000),
            fail_log: LogLimiter::new(60_000),
            timeout_log: LogLimiter::new(3_600_000),
            oversize_log: LogLimiter::new(1_000),
        }
    }

    /// The port failed and was closed: schedule a reopen; the lines to log.
    pub fn lost(&mut self, now_ms: u64, device: &str, err: &LinkError) -> Vec<(LogLevel, String)> {
        self.down_since = Some(now_ms);
        self.next_attempt = now_ms + self.retry_ms;
        self.failed_attempts = 0;
        match self.lost_log.allow(now_ms) {
            Some(held) => vec![
                with_count(err.log_line(device), held, "port failures"),
                (
                    LogLevel::Info,
                    format!(
                        "glib: closed serial port {device}; trying to reopen it every {} ms",
                        self.retry_ms
                    ),
                ),
            ],
            None => Vec::new(),
        }
    }

    /// The port could not be opened at startup and the caller goes on without it (the daemon
    /// refuses to start instead, as 3.0.6; this is for reloads).
    pub fn down(&mut self, now_ms: u64) {
        self.down_since = Some(now_ms);
        self.next_attempt = now_ms + self.retry_ms;
    }

    pub fn is_down(&self) -> bool {
        self.down_since.is_some()
    }

    /// Time to try opening again.
    pub fn due(&self, now_ms: u64) -> bool {
        self.down_since.is_some() && now_ms >= self.next_attempt
    }

    /// When the next attempt is due, while the port is down.
    pub fn next_timer(&self) -> Option<u64> {
        self.down_since.map(|_| self.next_attempt)
    }

    /// An attempt failed; the lines to log.
    pub fn failed(
        &mut self,
        now_ms: u64,
        device: &str,
        err: &OpenError,
    ) -> Vec<(LogLevel, String)> {
        self.failed_attempts += 1;
        self.next_attempt = now_ms + self.retry_ms;
        match self.fail_log.allow(now_ms) {
            Some(held) => vec![with_count(err.log_line(device), held, "failed attempts")],
            None => Vec::new(),
        }
    }

    /// The port is open again; the lines to log (log [`starting_line`] as well).
    pub fn reopened(&mut self, now_ms: u64, device: &str) -> Vec<(LogLevel, String)> {
        let Some(since) = self.down_since.take() else {
            return Vec::new();
        };
        let attempts = std::mem::take(&mut self.failed_attempts);
        vec![(
            LogLevel::Info,
            format!(
                "glib: serial port {device} reopened after {} ms ({attempts} failed attempt(s))",
                now_ms.saturating_sub(since)
            ),
        )]
    }

    /// The lines for an event of the open port, rate-limited (write timeouts once an hour as
    /// 3.0.6, oversize frames once a second).
    pub fn event_lines(
        &mut self,
        now_ms: u64,
        device: &str,
        ev: &SerialEvent,
    ) -> Vec<(LogLevel, String)> {
        let limiter = match ev {
            SerialEvent::WriteTimeout => &mut self.timeout_log,
            SerialEvent::Oversize { .. } => &mut self.oversize_log,
            SerialEvent::SendDropped { .. } => return ev.log_lines(device),
        };
        match limiter.allow(now_ms) {
            Some(_) => ev.log_lines(device),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_match_3_0_6() {
        let expect = [
            (9600, 426_666),
            (19200, 213_333),
            (38400, 106_666),
            (57600, 71_111),
            (115200, 35_555),
            (230400, 17_777),
            (460800, 8_888),
        ];
        for (baud, us) in expect {
            assert_eq!(chunk_delay_us(baud), us, "{baud}");
            assert!(baud_rate(baud).is_some());
        }
        assert!(baud_rate(14400).is_none());
        assert!(chunk_delay_us(0) > 0);
    }

    /// The kernel's defaults for a serial port, as links.md 2.2 lists them.
    fn kernel_default() -> Termios {
        let raw = libc::termios {
            c_iflag: libc::ICRNL | libc::IXON,
            c_oflag: libc::OPOST | libc::ONLCR,
            c_cflag: libc::B9600 | libc::CS8 | libc::CREAD | libc::HUPCL,
            c_lflag: libc::ISIG
                | libc::ICANON
                | libc::IEXTEN
                | libc::ECHO
                | libc::ECHOE
                | libc::ECHOK
                | libc::ECHOCTL
                | libc::ECHOKE,
            c_line: 0,
            c_cc: [0; libc::NCCS],
            c_ispeed: libc::B9600,
            c_ospeed: libc::B9600,
        };
        Termios::from(raw)
    }

    #[test]
    fn termios_from_kernel_defaults() {
        let mut t = kernel_default();
        apply_line_settings(&mut t, 19200).unwrap();
        assert_eq!(
            t.input_flags,
            InputFlags::INPCK | InputFlags::ISTRIP | InputFlags::IGNCR | InputFlags::BRKINT
        );
        assert_eq!(t.output_flags, OutputFlags::ONLCR);
        assert_eq!(
            t.control_flags & !ControlFlags::CBAUD,
            ControlFlags::CS8
                | ControlFlags::CREAD
                | ControlFlags::CLOCAL
                | ControlFlags::CRTSCTS
                | ControlFlags::HUPCL
        );
        assert_eq!(termios::cfgetospeed(&t), BaudRate::B19200);
        assert_eq!(termios::cfgetispeed(&t), BaudRate::B19200);
        assert_eq!(
            t.local_flags,
            LocalFlags::IEXTEN
                | LocalFlags::ECHOE
                | LocalFlags::ECHOK
                | LocalFlags::ECHOCTL
                | LocalFlags::ECHOKE
        );
        assert_eq!(t.control_chars[libc::VMIN], 1);
        assert_eq!(t.control_chars[libc::VTIME], 1);
        assert_eq!(t.line_discipline, 0);
    }

    #[test]
    fn termios_keeps_what_3_0_6_keeps() {
        let mut t = kernel_default();
        t.control_flags
            .insert(ControlFlags::CSTOPB | ControlFlags::PARENB | ControlFlags::CS7);
        t.input_flags
            .insert(InputFlags::IGNPAR | InputFlags::INLCR | InputFlags::PARMRK);
        apply_line_settings(&mut t, 38400).unwrap();
        assert!(t.control_flags.contains(ControlFlags::CSTOPB));
        assert!(!t.control_flags.contains(ControlFlags::PARENB));
        assert_eq!(t.control_flags & ControlFlags::CSIZE, ControlFlags::CS8);
        assert!(t
            .input_flags
            .contains(InputFlags::IGNPAR | InputFlags::INLCR));
        assert!(!t.input_flags.contains(InputFlags::PARMRK));
        assert_eq!(termios::cfgetospeed(&t), BaudRate::B38400);
        assert!(apply_line_settings(&mut t, 14400).is_err());
    }

    #[test]
    fn strerror_is_the_c_text() {
        assert_eq!(
            strerror(&io::Error::from_raw_os_error(libc::EIO)),
            "Input/output error"
        );
        assert_eq!(
            strerror(&io::Error::from_raw_os_error(libc::ENOENT)),
            "No such file or directory"
        );
    }

    #[test]
    fn wording() {
        let d = "/dev/ttyS0";
        assert_eq!(
            LinkError::Eof.log_line(d).1,
            "glib: EOF in ttygets [/dev/ttyS0]: Success [0]"
        );
        assert_eq!(
            LinkError::Write(io::Error::from_raw_os_error(libc::EIO))
                .log_line(d)
                .1,
            "glib: TTY write failure on [/dev/ttyS0]: Input/output error"
        );
        assert_eq!(
            starting_line(d, 19200).1,
            "glib: Starting serial heartbeat on tty /dev/ttyS0 (19200 baud)"
        );
        let busy = OpenError::Exclusive;
        assert_eq!(
            busy.log_line(d),
            (LogLevel::Error, "glib: cannot lock line /dev/ttyS0".into())
        );
        assert!(busy.is_busy());
        let lines = SerialEvent::WriteTimeout.log_lines(d);
        assert_eq!(lines[0].0, LogLevel::Warn);
        assert_eq!(
            lines[0].1,
            "glib: TTY write timeout on [/dev/ttyS0] (no connection or bad cable? [see documentation])"
        );
        assert_eq!(
            SerialEvent::Oversize { start_line: false }.log_lines(d)[0].1,
            "glib: serial_read:serial_pkt exceeds MAXMSG"
        );
    }

    #[test]
    fn limiter_counts_what_it_holds_back() {
        let mut l = LogLimiter::new(60_000);
        assert_eq!(l.allow(1000), Some(0));
        assert_eq!(l.allow(2000), None);
        assert_eq!(l.allow(60_999), None);
        assert_eq!(l.suppressed(), 2);
        assert_eq!(l.allow(61_000), Some(2));
        assert_eq!(l.allow(61_001), None);
    }

    #[test]
    fn reopen_policy_schedule_and_logs() {
        let d = "/dev/ttyS0";
        let mut p = ReopenPolicy::new();
        assert!(!p.is_down());
        assert_eq!(p.next_timer(), None);
        let lines = p.lost(10_000, d, &LinkError::Eof);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].1, "glib: EOF in ttygets [/dev/ttyS0]: Success [0]");
        assert!(!p.due(10_500));
        assert!(p.due(11_000));
        assert_eq!(p.next_timer(), Some(11_000));
        let err = OpenError::Open(io::Error::from_raw_os_error(libc::ENOENT));
        let mut logged = 0;
        let mut now = 11_000;
        while now < 11_000 + 120_000 {
            logged += p.failed(now, d, &err).len();
            now += 1000;
        }
        // 120 failures over two minutes: logged at 0 s, 60 s (and 120 s would be next).
        assert_eq!(logged, 2);
        let back = p.reopened(now, d);
        assert_eq!(back.len(), 1);
        assert!(back[0].1.contains("120 failed attempt(s)"), "{}", back[0].1);
        assert!(!p.is_down());
        // Flapping: a loss within a minute of the last logged one is only counted.
        assert_eq!(p.lost(now + 5000, d, &LinkError::Eof).len(), 2);
        assert!(p.lost(now + 10_000, d, &LinkError::Eof).is_empty());
        let later = p.lost(now + 70_000, d, &LinkError::Eof);
        assert!(
            later[0].1.ends_with("(1 more port failures not logged)"),
            "{}",
            later[0].1
        );
    }

    #[test]
    fn write_timeouts_logged_once_an_hour() {
        let mut p = ReopenPolicy::new();
        let d = "/dev/ttyS0";
        assert_eq!(p.event_lines(0, d, &SerialEvent::WriteTimeout).len(), 2);
        assert!(p
            .event_lines(1000, d, &SerialEvent::WriteTimeout)
            .is_empty());
        assert!(p
            .event_lines(3_599_999, d, &SerialEvent::WriteTimeout)
            .is_empty());
        assert_eq!(
            p.event_lines(3_600_000, d, &SerialEvent::WriteTimeout)
                .len(),
            2
        );
    }
}
