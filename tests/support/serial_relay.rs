//! A null-modem cable for tests: two pty pairs and a thread that copies bytes between their
//! masters, with faults on demand (links.md 2.10). Test support only: not in the shipped library.
//!
//! ```text
//!   node A opens path_a ── pty A ── relay thread ── pty B ── path_b opened by node B
//!                         (slave)   (masters, faults)  (slave)
//! ```
//!
//! * [`Relay::new`]`(path_a, path_b)` makes both pty pairs (raw, no echo, like `socat
//!   pty,raw,echo=0`) and symlinks `path_a` and `path_b` to their slaves. The relay keeps each
//!   slave open itself, so an end that closes and reopens its port (a node restart) finds the
//!   cable as it left it, as with socat.
//! * [`Dir::AtoB`] is what is written on `path_a` and read on `path_b`; [`Dir::BtoA`] the
//!   reverse.
//! * Faults, per direction, applied to bytes in the order they travel:
//!   [`inject`](Relay::inject) (extra bytes, after what was already forwarded),
//!   [`drop_next`](Relay::drop_next) (the next n bytes vanish),
//!   [`corrupt_next`](Relay::corrupt_next) (the next byte is XORed with a mask),
//!   [`set_forwarding`](Relay::set_forwarding) (off: bytes are read and thrown away, like a
//!   cable whose data wire broke; ends see no hangup).
//! * [`cut`](Relay::cut) closes both pty pairs and removes both symlinks: each end's port
//!   hangs up (read returns 0, write EIO), like a USB adapter pulled out.
//!   [`reconnect`](Relay::reconnect) makes two new pty pairs and puts the symlinks back, so a
//!   node that reopens the same path finds a working cable again.
//! * Observation: [`forwarded`](Relay::forwarded) and [`discarded`](Relay::discarded) count
//!   bytes; [`capture`](Relay::capture) records what was delivered, with timestamps;
//!   [`wait_drained`](Relay::wait_drained) waits until nothing is in flight.
//!
//! The ptys ignore speed, CRTSCTS and breaks; the relay delivers as fast as the ends write.
//! Dropping the relay stops the thread, closes everything and removes the symlinks.

// Each test binary that includes this file uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};

/// Bytes in flight in one direction beyond this are thrown away (counted as discarded).
const MAX_PENDING: usize = 4 * 1024 * 1024;

/// A direction of travel on the cable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Written on `path_a`, read on `path_b`.
    AtoB,
    /// Written on `path_b`, read on `path_a`.
    BtoA,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::AtoB => 0,
            Dir::BtoA => 1,
        }
    }
}

#[derive(Debug, Default)]
struct DirState {
    forwarding: bool,
    drop_next: usize,
    xor_next: Option<u8>,
    pending: Vec<u8>,
    forwarded: u64,
    discarded: u64,
    capture: Option<Vec<(Instant, Vec<u8>)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Cut,
    Reconnect,
}

#[derive(Debug, Default)]
struct Shared {
    dirs: [DirState; 2],
    request: Option<Request>,
    /// Result of the last request, taken by the caller that made it.
    answer: Option<Result<(), String>>,
    connected: bool,
}

struct Inner {
    paths: [PathBuf; 2],
    shared: Mutex<Shared>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One pty pair: the relay's master and its own handle on the slave.
struct End {
    master: OwnedFd,
    _slave: OwnedFd,
}

impl End {
    fn new(link: &Path) -> io::Result<End> {
        let pty = openpty(None, None)?;
        // Programs the test starts must not inherit the cable: a master held open by a daemon
        // would keep the line from ever hanging up.
        for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
            fcntl(fd, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
        }
        let mut t = tcgetattr(&pty.slave)?;
        cfmakeraw(&mut t);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &t)?;
        let flags = OFlag::from_bits_retain(fcntl(pty.master.as_raw_fd(), FcntlArg::F_GETFL)?);
        fcntl(
            pty.master.as_raw_fd(),
            FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK),
        )?;
        let pts = nix::unistd::ttyname(&pty.slave)?;
        // Replace the link atomically: a temporary name renamed over it.
        let tmp = link.with_extension("relay-tmp");
        let _ = fs::remove_file(&tmp);
        symlink(&pts, &tmp)?;
        fs::rename(&tmp, link)?;
        Ok(End {
            master: pty.master,
            _slave: pty.slave,
        })
    }
}

/// Two pty pairs joined by a copying thread; see the module documentation.
pub struct Relay {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Make the cable: `path_a` and `path_b` become symlinks to the two slaves.
    pub fn new(path_a: impl Into<PathBuf>, path_b: impl Into<PathBuf>) -> io::Result<Relay> {
        let paths = [path_a.into(), path_b.into()];
        let ends = [End::new(&paths[0])?, End::new(&paths[1])?];
        let mut shared = Shared {
            connected: true,
            ..Shared::default()
        };
        for d in &mut shared.dirs {
            d.forwarding = true;
        }
        let inner = Arc::new(Inner {
            paths,
            shared: Mutex::new(shared),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let worker = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("serial-relay".into())
            .spawn(move || run(&worker, Some(ends)))?;
        Ok(Relay {
            inner,
            thread: Some(thread),
        })
    }

    /// The symlink of end A (`Dir::AtoB` starts here).
    pub fn path_a(&self) -> &Path {
        &self.inner.paths[0]
    }

    /// The symlink of end B.
    pub fn path_b(&self) -> &Path {
        &self.inner.paths[1]
    }

    /// Send `bytes` in direction `dir`, after everything already forwarded that way.
    pub fn inject(&self, dir: Dir, bytes: &[u8]) {
        let mut s = self.inner.lock();
        let d = &mut s.dirs[dir.index()];
        d.pending.extend_from_slice(bytes);
    }

    /// The next `n` bytes travelling in `dir` vanish (adds to any drop still to come).
    pub fn drop_next(&self, dir: Dir, n: usize) {
        self.inner.lock().dirs[dir.index()].drop_next += n;
    }

    /// The next byte travelling in `dir` (after any dropped ones) is XORed with `mask`.
    pub fn corrupt_next(&self, dir: Dir, mask: u8) {
        self.inner.lock().dirs[dir.index()].xor_next = Some(mask);
    }

    /// Off: bytes travelling in `dir` are read and discarded; on: forwarded again.
    pub fn set_forwarding(&self, dir: Dir, on: bool) {
        self.inner.lock().dirs[dir.index()].forwarding = on;
    }

    /// Start (or restart, clearing) recording the bytes delivered in `dir`.
    pub fn capture(&self, dir: Dir) {
        self.inner.lock().dirs[dir.index()].capture = Some(Vec::new());
    }

    /// The deliveries recorded in `dir` since [`capture`](Self::capture), with the time each
    /// write into the destination pty completed; recording goes on.
    pub fn take_capture(&self, dir: Dir) -> Vec<(Instant, Vec<u8>)> {
        let mut s = self.inner.lock();
        s.dirs[dir.index()]
            .capture
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Bytes delivered in `dir` so far (injected ones included).
    pub fn forwarded(&self, dir: Dir) -> u64 {
        self.inner.lock().dirs[dir.index()].forwarded
    }

    /// Bytes thrown away in `dir` so far (dropped, not forwarding, cut, overflow).
    pub fn discarded(&self, dir: Dir) -> u64 {
        self.inner.lock().dirs[dir.index()].discarded
    }

    /// True between [`cut`](Self::cut) and [`reconnect`](Self::reconnect).
    pub fn is_cut(&self) -> bool {
        !self.inner.lock().connected
    }

    /// Wait until nothing is in flight in either direction (or `timeout`); true if drained.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.inner.lock().dirs.iter().all(|d| d.pending.is_empty()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Close both pty pairs (both ends hang up) and remove both symlinks.
    pub fn cut(&self) -> io::Result<()> {
        self.request(Request::Cut)
    }

    /// Two new pty pairs behind the same symlinks.
    pub fn reconnect(&self) -> io::Result<()> {
        self.request(Request::Reconnect)
    }

    fn request(&self, r: Request) -> io::Result<()> {
        let mut s = self.inner.lock();
        s.request = Some(r);
        s.answer = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(answer) = s.answer.take() {
                return answer.map_err(io::Error::other);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "relay did not answer",
                ));
            }
            s = self
                .inner
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for p in &self.inner.paths {
            let _ = fs::remove_file(p);
        }
    }
}

/// The relay thread: requests, then one poll round of both masters.
fn run(inner: &Inner, mut ends: Option<[End; 2]>) {
    let mut buf = [0u8; 4096];
    while !inner.stop.load(Ordering::Relaxed) {
        {
            let mut s = inner.lock();
            if let Some(r) = s.request.take() {
                let answer = match r {
                    Request::Cut => {
                        ends = None;
                        for d in &mut s.dirs {
                            d.discarded += d.pending.len() as u64;
                            d.pending.clear();
                        }
                        for p in &inner.paths {
                            let _ = fs::remove_file(p);
                        }
                        s.connected = false;
                        Ok(())
                    }
                    Request::Reconnect => {
                        ends = None;
                        match (End::new(&inner.paths[0]), End::new(&inner.paths[1])) {
                            (Ok(a), Ok(b)) => {
                                ends = Some([a, b]);
                                s.connected = true;
                                Ok(())
                            }
                            (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
                        }
                    }
                };
                s.answer = Some(answer);
                inner.changed.notify_all();
            }
        }
        let Some(pair) = ends.as_ref() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let want_out = {
            let s = inner.lock();
            [!s.dirs[1].pending.is_empty(), !s.dirs[0].pending.is_empty()]
        };
        let mut fds: Vec<PollFd<'_>> = pair
            .iter()
            .zip(want_out)
            .map(|(e, out)| {
                let mut ev = PollFlags::POLLIN;
                if out {
                    ev |= PollFlags::POLLOUT;
                }
                PollFd::new(e.master.as_fd(), ev)
            })
            .collect();
        // Short timeout: injected bytes and requests arrive without waking the poll.
        let _ = poll(&mut fds, PollTimeout::from(5u8));
        let readable: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| r.intersects(PollFlags::POLLIN)))
            .collect();
        drop(fds);
        for (i, end) in pair.iter().enumerate() {
            if !readable[i] {
                continue;
            }
            loop {
                match nix::unistd::read(end.master.as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => take_in(&mut inner.lock().dirs[i], &buf[..n]),
                    Err(Errno::EINTR) => continue,
                    _ => break,
                }
            }
        }
        let mut s = inner.lock();
        for (i, d) in s.dirs.iter_mut().enumerate() {
            // Direction i is delivered into the other end's master.
            let dest = &pair[1 - i].master;
            while !d.pending.is_empty() {
                match nix::unistd::write(dest, &d.pending) {
                    Ok(n) if n > 0 => {
                        d.forwarded += n as u64;
                        if let Some(c) = d.capture.as_mut() {
                            c.push((Instant::now(), d.pending[..n].to_vec()));
                        }
                        d.pending.drain(..n);
                    }
                    Err(Errno::EINTR) => continue,
                    _ => break,
                }
            }
        }
    }
}

/// Bytes read from the master of direction `d`'s source: apply the faults, queue the rest.
fn take_in(d: &mut DirState, bytes: &[u8]) {
    if !d.forwarding {
        d.discarded += bytes.len() as u64;
        return;
    }
    let skip = d.drop_next.min(bytes.len());
    d.drop_next -= skip;
    d.discarded += skip as u64;
    let rest = &bytes[skip..];
    if rest.is_empty() {
        return;
    }
    let room = MAX_PENDING.saturating_sub(d.pending.len());
    let take = rest.len().min(room);
    d.discarded += (rest.len() - take) as u64;
    let start = d.pending.len();
    d.pending.extend_from_slice(&rest[..take]);
    if take > 0 {
        if let Some(mask) = d.xor_next.take() {
            d.pending[start] ^= mask;
        }
    }
}
