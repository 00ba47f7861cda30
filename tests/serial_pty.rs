//! Serial links without hardware: pseudo-terminals stand in for the cable (links.md 2.10).
//!
//! Two `SerialMedium`s talk through the test support's `serial_relay::Relay` (two pty pairs and a
//! copying thread that can inject noise, drop bytes and cut the line), driven by a small mio loop like
//! the daemon's. Packets are hand-written classic packets; nothing here needs the wire module.
//! Timing bounds are deliberately loose: two shared cores, other tests running beside.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[path = "support/serial_relay.rs"]
mod serial_relay;

use heartbeat::media::serial::{
    lock, LinkError, OpenError, ReopenPolicy, SerialEvent, SerialMedium, CHUNK,
};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::termios::{self, BaudRate, ControlFlags, InputFlags, LocalFlags, OutputFlags};
use serial_relay::{Dir, Relay};

/// A scratch directory removed on drop: symlinks for the cable and the lock directory.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hb-serial-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("lock")).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn locks(&self) -> PathBuf {
        self.0.join("lock")
    }

    fn relay(&self) -> Relay {
        Relay::new(self.path("ttyA"), self.path("ttyB")).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A classic packet of about `len` bytes (never less than the fixed fields).
fn packet(src: &str, seq: u32, len: usize) -> Vec<u8> {
    let head = format!(">>>\nt=status\nst=active\nsrc={src}\nseq={seq:x}\n");
    let tail = "auth=1 0123456789abcdef\n<<<\n";
    let fill = len.saturating_sub(head.len() + tail.len() + 6);
    format!("{head}load={}\n{tail}", "x".repeat(fill)).into_bytes()
}

/// The daemon's loop in miniature: media registered with mio, frames collected per medium.
struct Bench {
    poll: Poll,
    events: Events,
    start: Instant,
    media: Vec<Option<SerialMedium>>,
    got: Vec<Vec<(u64, Vec<u8>)>>,
    lost: Vec<Option<LinkError>>,
    seen: Vec<Vec<SerialEvent>>,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            poll: Poll::new().unwrap(),
            events: Events::with_capacity(16),
            start: Instant::now(),
            media: Vec::new(),
            got: Vec::new(),
            lost: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn register(&mut self, i: usize, m: SerialMedium) {
        self.poll
            .registry()
            .register(
                &mut SourceFd(&m.raw_fd()),
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .unwrap();
        self.media[i] = Some(m);
        self.lost[i] = None;
    }

    fn add(&mut self, m: SerialMedium) -> usize {
        let i = self.media.len();
        self.media.push(None);
        self.got.push(Vec::new());
        self.lost.push(None);
        self.seen.push(Vec::new());
        self.register(i, m);
        i
    }

    fn close(&mut self, i: usize) {
        if let Some(m) = self.media[i].take() {
            let _ = self.poll.registry().deregister(&mut SourceFd(&m.raw_fd()));
        }
    }

    fn fail(&mut self, i: usize, e: LinkError) {
        self.close(i);
        self.lost[i] = Some(e);
    }

    fn send(&mut self, i: usize, p: &[u8]) {
        let now = self.now();
        let r = self.media[i].as_mut().expect("medium open").send(p, now);
        if let Err(e) = r {
            self.fail(i, e);
        }
    }

    fn service(&mut self, i: usize) {
        let now = self.now();
        let Some(m) = self.media[i].as_mut() else {
            return;
        };
        let mut frames = Vec::new();
        let r = m.read_available(&mut frames).and_then(|()| m.flush(now));
        self.seen[i].extend(m.take_events());
        self.got[i].extend(frames.into_iter().map(|f| (now, f)));
        if let Err(e) = r {
            self.fail(i, e);
        }
    }

    /// Run the loop until `done` or `timeout`; true if `done`.
    fn run_until(&mut self, timeout: Duration, done: impl Fn(&Bench) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            let now = self.now();
            if Instant::now() >= deadline {
                return false;
            }
            let next = self
                .media
                .iter()
                .flatten()
                .filter_map(|m| m.next_timer())
                .min()
                .map_or(20, |t| t.saturating_sub(now).min(20));
            let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
            self.poll
                .poll(&mut events, Some(Duration::from_millis(next)))
                .unwrap();
            let tokens: Vec<usize> = events.iter().map(|e| e.token().0).collect();
            self.events = events;
            for t in tokens {
                self.service(t);
            }
            let now = self.now();
            for i in 0..self.media.len() {
                if self.media[i]
                    .as_ref()
                    .and_then(|m| m.next_timer())
                    .is_some_and(|t| t <= now)
                {
                    self.service(i);
                }
            }
        }
    }

    fn frames(&self, i: usize) -> Vec<Vec<u8>> {
        self.got[i].iter().map(|(_, f)| f.clone()).collect()
    }
}

fn open(path: &Path, baud: u32, locks: &Path) -> SerialMedium {
    SerialMedium::open(s(path), baud, locks).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn exchange(baud: u32) {
    let dir = Scratch::new(&format!("x{baud}"));
    let relay = dir.relay();
    let mut b = Bench::new();
    let a = b.add(open(relay.path_a(), baud, &dir.locks()));
    let z = b.add(open(relay.path_b(), baud, &dir.locks()));
    // Both lines are locked while open.
    assert!(lock::lock_path(&dir.locks(), relay.path_a()).exists());
    assert!(lock::lock_path(&dir.locks(), relay.path_b()).exists());
    let from_a: Vec<_> = (1..=5)
        .map(|n| packet("alice", n, 200 + 30 * n as usize))
        .collect();
    let from_z: Vec<_> = (1..=5).map(|n| packet("bob", n, 180)).collect();
    for n in 0..5 {
        b.send(a, &from_a[n]);
        b.send(z, &from_z[n]);
    }
    assert!(
        b.run_until(Duration::from_secs(5), |b| b.got[0].len() >= 5
            && b.got[1].len() >= 5),
        "a got {}, b got {}",
        b.got[0].len(),
        b.got[1].len()
    );
    assert_eq!(b.frames(z), from_a);
    assert_eq!(b.frames(a), from_z);
    let st = b.media[a].as_ref().unwrap().stats();
    assert_eq!(st.messages_out, 5);
    assert_eq!(st.framer.dropped_bytes, 0);
    b.close(a);
    b.close(z);
    assert!(!lock::lock_path(&dir.locks(), relay.path_a()).exists());
}

#[test]
fn packets_both_ways_at_19200() {
    exchange(19200);
}

#[test]
fn packets_both_ways_at_115200() {
    exchange(115200);
}

/// How long a message of `len` bytes takes from `send` to the peer's frame, and the frames.
fn paced(baud: u32, len: usize) -> (Duration, Vec<Vec<u8>>, Vec<u8>, Vec<u8>) {
    let dir = Scratch::new(&format!("p{baud}"));
    let relay = dir.relay();
    let mut b = Bench::new();
    let a = b.add(open(relay.path_a(), baud, &dir.locks()));
    let z = b.add(open(relay.path_b(), baud, &dir.locks()));
    let big = packet("alice", 1, len);
    let small = packet("alice", 2, 200);
    let t0 = Instant::now();
    b.send(a, &big);
    b.send(a, &small);
    let m = b.media[a].as_ref().unwrap();
    assert_eq!(m.queued().0, 2);
    assert!(m.next_timer().is_some(), "a paced message must set a timer");
    assert!(b.run_until(Duration::from_secs(10), |b| b.got[z].len() >= 2));
    let took = t0.elapsed();
    (took, b.frames(z), big, small)
}

#[test]
fn long_message_is_paced_at_19200() {
    // 2048 bytes = 4 pieces, 3 pauses of 213.333 ms: about 640 ms.
    let (took, frames, big, small) = paced(19200, 2048);
    eprintln!("2048 bytes at 19200 baud took {took:?} (3.0.6: 640 ms of pauses)");
    assert_eq!(
        frames,
        vec![big, small],
        "the small message waits behind the long one"
    );
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn long_message_is_paced_at_115200() {
    // 3 pauses of 35.555 ms.
    let (took, frames, big, _) = paced(115200, 2048);
    eprintln!("2048 bytes at 115200 baud took {took:?} (3.0.6: 107 ms of pauses)");
    assert_eq!(frames[0], big);
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn short_messages_go_out_in_one_piece_without_pause() {
    let dir = Scratch::new("short");
    let relay = dir.relay();
    relay.capture(Dir::AtoB);
    let mut b = Bench::new();
    let a = b.add(open(relay.path_a(), 19200, &dir.locks()));
    let z = b.add(open(relay.path_b(), 19200, &dir.locks()));
    let t0 = Instant::now();
    for n in 0..4 {
        b.send(a, &packet("alice", n, 300));
        assert_eq!(b.media[a].as_ref().unwrap().next_timer(), None);
    }
    assert!(b.run_until(Duration::from_secs(5), |b| b.got[z].len() >= 4));
    // Four 300-byte messages: no pause at all (a pause only separates pieces of one message).
    assert!(
        t0.elapsed() < Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
    let delivered: usize = relay
        .take_capture(Dir::AtoB)
        .iter()
        .map(|(_, c)| c.len())
        .sum();
    assert_eq!(delivered, 4 * packet("alice", 0, 300).len());
}

#[test]
fn noise_between_packets_and_truncated_packets() {
    let dir = Scratch::new("noise");
    let relay = dir.relay();
    let mut b = Bench::new();
    let a = b.add(open(relay.path_a(), 115200, &dir.locks()));
    let z = b.add(open(relay.path_b(), 115200, &dir.locks()));
    let p: Vec<_> = (1..=12).map(|n| packet("alice", n, 220)).collect();
    let mut expect = Vec::new();
    let mut seq = 0;
    // Send packet `n` from a and wait until the relay has passed (or dropped) all of it.
    let step = |b: &mut Bench, n: usize| {
        let seen = |r: &Relay| r.forwarded(Dir::AtoB) + r.discarded(Dir::AtoB);
        let before = seen(&relay);
        b.send(a, &p[n]);
        let want = before + p[n].len() as u64;
        assert!(b.run_until(Duration::from_secs(5), |_| seen(&relay) >= want));
    };
    let wait_for = |b: &mut Bench, count: usize| {
        assert!(
            b.run_until(Duration::from_secs(5), |b| b.got[z].len() >= count),
            "expected {count} frames, got {:?}",
            b.frames(z)
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect::<Vec<_>>()
        );
    };

    // 1. A noise line ending in LF between packets costs nothing. Random bytes, some with bit 7
    //    set (the tty strips it), CRs (ignored), XON/XOFF (data), NULs (cut the line).
    step(&mut b, seq);
    expect.push(p[seq].clone());
    seq += 1;
    wait_for(&mut b, expect.len());
    let mut noise: Vec<u8> = (0u32..64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    noise.retain(|&c| c != b'\n');
    noise.extend_from_slice(b"\x11\x13\r\0GARBAGE\n");
    relay.inject(Dir::AtoB, &noise);
    assert!(relay.wait_drained(Duration::from_secs(2)));
    step(&mut b, seq);
    expect.push(p[seq].clone());
    seq += 1;
    wait_for(&mut b, expect.len());

    // 2. Noise without LF right before a packet: 3.0.6 loses that packet (its start line is
    //    glued to the noise); our framer finds the start line at the end of the garbage.
    relay.inject(Dir::AtoB, b"\x05\x06junk");
    assert!(relay.wait_drained(Duration::from_secs(2)));
    step(&mut b, seq);
    expect.push(p[seq].clone());
    seq += 1;
    step(&mut b, seq);
    expect.push(p[seq].clone());
    seq += 1;
    wait_for(&mut b, expect.len());

    // 3. A truncated packet (head only, no end line): 3.0.6 swallows the next packet into the
    //    same frame and loses both; we drop the head when the next start line arrives.
    relay.inject(Dir::AtoB, &p[seq][..100]);
    seq += 1;
    step(&mut b, seq);
    expect.push(p[seq].clone());
    seq += 1;
    step(&mut b, seq);
    expect.push(p[seq].clone());
    seq += 1;
    wait_for(&mut b, expect.len());

    // 4. Bytes dropped from the head of a packet (its start line): lost, next intact.
    relay.drop_next(Dir::AtoB, 2);
    step(&mut b, seq);
    seq += 1;
    step(&mut b, seq);
    expect.push(p[seq].clone());
    seq += 1;
    wait_for(&mut b, expect.len());

    // 5. Bit 7 set on a byte: the tty strips it (ISTRIP), the packet arrives intact.
    relay.corrupt_next(Dir::AtoB, 0x80);
    step(&mut b, seq);
    expect.push(p[seq].clone());
    seq += 1;
    wait_for(&mut b, expect.len());
    // 6. A low bit flipped in the first byte ('>' becomes '?'): start line spoiled, packet
    //    lost, the next intact.
    relay.corrupt_next(Dir::AtoB, 0x01);
    step(&mut b, seq);
    seq += 1;
    step(&mut b, seq);
    expect.push(p[seq].clone());
    wait_for(&mut b, expect.len());

    assert_eq!(b.frames(z), expect);
    let st = b.media[z].as_ref().unwrap().stats();
    assert!(st.framer.dropped_bytes > 0);
    eprintln!("receiver framer stats: {:?}", st.framer);
}

#[test]
fn cut_line_is_reported_and_the_port_reopens() {
    let dir = Scratch::new("cut");
    let relay = dir.relay();
    let mut b = Bench::new();
    let (pa, pb) = (relay.path_a().to_path_buf(), relay.path_b().to_path_buf());
    let a = b.add(open(&pa, 38400, &dir.locks()));
    let z = b.add(open(&pb, 38400, &dir.locks()));
    b.send(a, &packet("alice", 1, 200));
    assert!(b.run_until(Duration::from_secs(5), |b| b.got[z].len() == 1));

    relay.cut().unwrap();
    assert!(
        b.run_until(Duration::from_secs(5), |b| b.lost[a].is_some()
            && b.lost[z].is_some()),
        "both ends must see the hangup"
    );
    for i in [a, z] {
        let e = b.lost[i].as_ref().unwrap();
        assert!(
            matches!(e, LinkError::Eof | LinkError::Read(_)),
            "unexpected {e:?}"
        );
        eprintln!("{}", e.log_line("/dev/ttyS0").1);
    }
    // Closed ports release their locks.
    assert!(!lock::lock_path(&dir.locks(), &pa).exists());

    // The daemon's reopen loop: nothing at the path until the cable is back.
    let mut policy = ReopenPolicy::with_retry(100);
    let lines = policy.lost(b.now(), s(&pa), b.lost[a].as_ref().unwrap());
    assert_eq!(lines.len(), 2);
    let mut failures = 0;
    let mut logged = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut reconnected = false;
    while b.media[a].is_none() && Instant::now() < deadline {
        let now = b.now();
        if !policy.due(now) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match SerialMedium::open(s(&pa), 38400, &dir.locks()) {
            Ok(m) => {
                assert!(!policy.reopened(now, s(&pa)).is_empty());
                b.register(a, m);
            }
            Err(e) => {
                assert!(!e.is_busy(), "{e}");
                failures += 1;
                logged += policy.failed(now, s(&pa), &e).len();
                if failures == 3 && !reconnected {
                    relay.reconnect().unwrap();
                    reconnected = true;
                }
            }
        }
    }
    assert!(b.media[a].is_some(), "port A did not come back");
    assert_eq!(failures, 3);
    assert_eq!(logged, 1, "failed attempts are logged once a minute");
    let m = open(&pb, 38400, &dir.locks());
    b.register(z, m);
    b.got[z].clear();
    b.send(a, &packet("alice", 2, 200));
    b.send(z, &packet("bob", 9, 200));
    assert!(b.run_until(Duration::from_secs(5), |b| b.got[z].len() == 1
        && b.got[a].len() == 1));
    assert_eq!(b.frames(z), vec![packet("alice", 2, 200)]);
    assert_eq!(b.frames(a), vec![packet("bob", 9, 200)]);
}

#[test]
fn a_locked_line_is_busy() {
    let dir = Scratch::new("busy");
    let relay = dir.relay();
    let m = open(relay.path_a(), 19200, &dir.locks());
    // A second medium on the same line in this process.
    let e = SerialMedium::open(s(relay.path_a()), 19200, &dir.locks()).unwrap_err();
    assert!(e.is_busy(), "{e}");
    assert_eq!(
        e.log_line("/dev/ttyS0").1,
        "glib: cannot lock line /dev/ttyS0"
    );
    drop(m);
    // Another live process holds the lock.
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    fs::write(
        lock::lock_path(&dir.locks(), relay.path_a()),
        format!("{:>10}\n", child.id()),
    )
    .unwrap();
    let e = SerialMedium::open(s(relay.path_a()), 19200, &dir.locks()).unwrap_err();
    let _ = child.kill();
    let _ = child.wait();
    assert!(matches!(e, OpenError::Lock(_)), "{e}");
    // Its owner gone, the lock is stale.
    drop(open(relay.path_a(), 19200, &dir.locks()));
    // Not a terminal; no such file; bad speed.
    let plain = dir.path("plain");
    fs::write(&plain, b"").unwrap();
    assert!(matches!(
        SerialMedium::open(s(&plain), 19200, &dir.locks()),
        Err(OpenError::GetAttr(_))
    ));
    assert!(matches!(
        SerialMedium::open(s(&dir.path("nope")), 19200, &dir.locks()),
        Err(OpenError::Open(_))
    ));
    assert!(matches!(
        SerialMedium::open(s(relay.path_a()), 14400, &dir.locks()),
        Err(OpenError::Baud(14400))
    ));
}

#[test]
fn termios_on_a_pty_is_what_3_0_6_sets() {
    let dir = Scratch::new("termios");
    let pty = nix::pty::openpty(None, None).unwrap();
    let name = nix::unistd::ttyname(&pty.slave).unwrap();
    let m = open(&name, 19200, &dir.locks());
    let t = termios::tcgetattr(&pty.slave).unwrap();
    assert!(t
        .input_flags
        .contains(InputFlags::INPCK | InputFlags::ISTRIP | InputFlags::IGNCR | InputFlags::BRKINT));
    assert!(!t.input_flags.intersects(
        InputFlags::IGNBRK
            | InputFlags::IXON
            | InputFlags::IXOFF
            | InputFlags::IXANY
            | InputFlags::ICRNL
            | InputFlags::PARMRK
    ));
    assert!(!t.output_flags.contains(OutputFlags::OPOST));
    assert!(t
        .control_flags
        .contains(ControlFlags::CS8 | ControlFlags::CREAD | ControlFlags::CLOCAL));
    assert!(!t.control_flags.contains(ControlFlags::PARENB));
    assert!(!t
        .local_flags
        .intersects(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG));
    assert_eq!(termios::cfgetospeed(&t), BaudRate::B19200);
    assert_eq!(t.control_chars[libc::VMIN], 1);
    assert_eq!(t.control_chars[libc::VTIME], 1);
    // The fd is non-blocking and close-on-exec.
    let fl = nix::fcntl::fcntl(m.raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert!(fl & libc::O_NONBLOCK != 0);
    let fd = nix::fcntl::fcntl(m.raw_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
    assert!(fd & libc::FD_CLOEXEC != 0);
    let _ = pty.master.as_raw_fd();
}

#[test]
fn stalled_output_times_out_and_recovers() {
    // A pty never stalls by itself; stopping its output (tcflow TCOOFF) makes writes block the
    // way a real UART does with CTS low.
    let dir = Scratch::new("stall");
    let pty = nix::pty::openpty(None, None).unwrap();
    let name = nix::unistd::ttyname(&pty.slave).unwrap();
    let mut b = Bench::new();
    let a = b.add(open(&name, 115200, &dir.locks()));
    termios::tcflow(&pty.slave, termios::FlowArg::TCOOFF).unwrap();
    b.send(a, &packet("alice", 1, 1500));
    b.send(a, &packet("alice", 2, 200));
    let t0 = Instant::now();
    assert!(
        b.run_until(Duration::from_secs(5), |b| b.seen[a]
            .contains(&SerialEvent::WriteTimeout)),
        "no write timeout"
    );
    let waited = t0.elapsed();
    eprintln!("write timeout after {waited:?}");
    assert!(waited >= Duration::from_millis(450), "{waited:?}");
    termios::tcflow(&pty.slave, termios::FlowArg::TCOON).unwrap();
    let after = packet("alice", 3, 200);
    b.send(a, &after);
    assert!(b.run_until(Duration::from_secs(5), |b| b.media[a]
        .as_ref()
        .unwrap()
        .queued()
        .0
        == 0));
    // Whatever was still queued went out after the restart; the line carries whole packets.
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    let flags = nix::fcntl::fcntl(pty.master.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
    nix::fcntl::fcntl(
        pty.master.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::from_bits_retain(
            flags | libc::O_NONBLOCK,
        )),
    )
    .unwrap();
    while let Ok(n) = nix::unistd::read(pty.master.as_raw_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(out.ends_with(&after), "{}", String::from_utf8_lossy(&out));
    assert!(b.lost[a].is_none());
}

/// socat's pty pair, the lab's cable (links.md 2.10), when socat is installed.
#[test]
fn socat_cable() {
    let have = Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        if std::env::var("HB_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("socat is required (HB_REQUIRE_INTEROP=1) but not installed");
        }
        println!("SKIP socat_cable: socat not installed");
        return;
    }
    let dir = Scratch::new("socat");
    let (pa, pb) = (dir.path("ttyA"), dir.path("ttyB"));
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut socat = Kill(
        Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", pa.display()))
            .arg(format!("pty,raw,echo=0,link={}", pb.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(pa.exists() && pb.exists()) {
        assert!(Instant::now() < deadline, "socat made no links");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut b = Bench::new();
    let a = b.add(open(&pa, 19200, &dir.locks()));
    let z = b.add(open(&pb, 19200, &dir.locks()));
    b.send(a, &packet("alice", 1, 700));
    b.send(z, &packet("bob", 1, 250));
    assert!(b.run_until(Duration::from_secs(5), |b| b.got[a].len() == 1
        && b.got[z].len() == 1));
    assert_eq!(b.frames(z), vec![packet("alice", 1, 700)]);
    assert_eq!(b.frames(a), vec![packet("bob", 1, 250)]);
    let _ = socat.0.kill();
    let _ = socat.0.wait();
    assert!(
        b.run_until(Duration::from_secs(5), |b| b.lost[a].is_some()
            && b.lost[z].is_some()),
        "socat gone: both ends must see the hangup"
    );
}

/// The pacing itself, on the caller's clock: deterministic, no sleeping.
#[test]
fn pieces_are_512_bytes_apart_by_the_delay() {
    let dir = Scratch::new("pieces");
    let pty = nix::pty::openpty(None, None).unwrap();
    let master = pty.master.as_raw_fd();
    let flags = nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    nix::fcntl::fcntl(
        master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::from_bits_retain(
            flags | libc::O_NONBLOCK,
        )),
    )
    .unwrap();
    let drain = || {
        let mut buf = vec![0u8; 8192];
        let mut n = 0;
        // The pty hands the bytes over asynchronously; give it a moment.
        std::thread::sleep(Duration::from_millis(20));
        while let Ok(k) = nix::unistd::read(master, &mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    };
    let name = nix::unistd::ttyname(&pty.slave).unwrap();
    let mut m = open(&name, 19200, &dir.locks());
    let big = packet("alice", 1, 2048);
    let small = packet("alice", 2, 200);
    assert_eq!(big.len(), 2048);
    m.send(&big, 1000).unwrap();
    m.send(&small, 1000).unwrap();
    assert_eq!(drain(), CHUNK);
    // 213.333 ms later, rounded up to whole ms.
    assert_eq!(m.next_timer(), Some(1214));
    m.flush(1213).unwrap();
    assert_eq!(drain(), 0);
    m.flush(1214).unwrap();
    assert_eq!(drain(), CHUNK);
    assert_eq!(m.next_timer(), Some(1428));
    m.flush(1428).unwrap();
    assert_eq!(drain(), CHUNK);
    // The last piece, then the next message at once: no pause after a message's last piece.
    m.flush(1642).unwrap();
    assert_eq!(drain(), CHUNK + small.len());
    assert_eq!(m.next_timer(), None);
    assert_eq!(m.queued(), (0, 0));
    assert_eq!(m.stats().messages_out, 2);
    // A trailing NUL is not sent: serial carries none.
    let mut with_nul = small.clone();
    with_nul.push(0);
    m.send(&with_nul, 2000).unwrap();
    assert_eq!(drain(), small.len());
}
