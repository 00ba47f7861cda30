//! The daemon under a (pretend) service manager: `NOTIFY_SOCKET` names a unix datagram socket
//! this test binds, `WATCHDOG_USEC` asks for keep-alive pings. A loopback pair without root,
//! as in `tests/loopback.rs`: `alice` (watched) on 127.0.0.1, `bob` on 127.0.0.2.

#[macro_use]
mod common;

use std::net::Ipv4Addr;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

/// One datagram and when it arrived.
struct Note {
    at: Instant,
    text: String,
}

/// Reads the socket on a thread; the test takes notes from the channel.
struct Listener {
    rx: mpsc::Receiver<Note>,
    seen: Vec<Note>,
}

impl Listener {
    fn new(sock: UnixDatagram) -> Listener {
        let (tx, rx) = mpsc::channel();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        let note = Note {
                            at: Instant::now(),
                            text: String::from_utf8_lossy(&buf[..n]).into_owned(),
                        };
                        if tx.send(note).is_err() {
                            return;
                        }
                    }
                    Err(_) => {
                        // Timeout: stop once the test has dropped its end.
                        if tx
                            .send(Note {
                                at: Instant::now(),
                                text: String::new(),
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        Listener {
            rx,
            seen: Vec::new(),
        }
    }

    /// The first note at or after index `from` of `seen` that satisfies `pred`, collecting
    /// more until `limit` passes; Ok(its index).
    fn wait_from(
        &mut self,
        from: usize,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<usize, String> {
        let deadline = Instant::now() + limit;
        let start = from.min(self.seen.len());
        if let Some(i) = self.seen[start..].iter().position(|n| pred(&n.text)) {
            return Ok(start + i);
        }
        while Instant::now() < deadline {
            if let Ok(n) = self.rx.recv_timeout(Duration::from_millis(50)) {
                if n.text.is_empty() {
                    continue;
                }
                let hit = pred(&n.text);
                self.seen.push(n);
                if hit {
                    return Ok(self.seen.len() - 1);
                }
            }
        }
        Err(format!(
            "not received within {limit:?}; received since: {:?}",
            self.seen[start..]
                .iter()
                .map(|n| n.text.as_str())
                .collect::<Vec<_>>()
        ))
    }

    /// [`Listener::wait_from`] the beginning.
    fn wait_for(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> Result<usize, String> {
        self.wait_from(0, limit, pred)
    }

    /// Everything that arrives during `d`.
    fn collect_for(&mut self, d: Duration) {
        let _ = self.wait_from(usize::MAX, d, |_| false);
    }

    fn texts(&self) -> Vec<&str> {
        self.seen.iter().map(|n| n.text.as_str()).collect()
    }
}

/// alice run by hand, with the service manager's variables.
struct Watched {
    child: Option<Child>,
}

impl Watched {
    fn start(dir: &NodeDir, env: &[(&str, String)]) -> Watched {
        let mut cmd = Command::new(our_hb());
        cmd.arg("-f").args(our_dir_args(dir)).args(["--bind", A]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn our heartbeat");
        Watched { child: Some(child) }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    fn signal(&self, s: Signal) {
        let _ = kill(Pid::from_raw(self.pid()), s);
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        let c = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return st.code();
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
            let _ = c.wait();
        }
    }
}

fn pair(tmp: &TestDir) -> (NodeDir, NodeDir) {
    let addrs: [Ipv4Addr; 2] = [A, B].map(|a| a.parse().expect("address"));
    let port = free_udp_port(&addrs);
    let hacf = HaCf::new(&["alice", "bob"], &ucast_lines("lo", &[A, B])).udpport(port);
    let auth = Auth::lab(AuthMethod::Sha1);
    let (da, db) = (tmp.node("alice"), tmp.node("bob"));
    da.write_config(&hacf, &auth, "");
    db.write_config(&hacf, &auth, "");
    (da, db)
}

#[test]
fn ready_watchdog_reload_and_stop_reach_the_service_manager() {
    let tmp = TestDir::new("notify");
    let (da, db) = pair(&tmp);
    let sock_path = tmp.path.join("notify.sock");
    let listener_sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    let mut l = Listener::new(listener_sock);

    // A 1 s watchdog: pings every 0.5 s.
    let interval = Duration::from_secs(1);
    let mut alice = Watched::start(
        &da,
        &[
            ("NOTIFY_SOCKET", sock_path.display().to_string()),
            ("WATCHDOG_USEC", interval.as_micros().to_string()),
        ],
    );
    let ready = l
        .wait_for(Duration::from_secs(10), |t| t == "READY=1")
        .unwrap_or_else(|e| panic!("READY=1: {e}"));
    assert_eq!(ready, 0, "READY=1 comes first: {:?}", l.texts());
    l.wait_for(Duration::from_secs(5), |t| {
        t.starts_with("STATUS=") && t.contains("initdead")
    })
    .unwrap_or_else(|e| panic!("STATUS before comm-up: {e}"));

    // Pings keep coming, never further apart than the interval.
    l.collect_for(Duration::from_millis(3200));
    let pings: Vec<Instant> = l
        .seen
        .iter()
        .filter(|n| n.text == "WATCHDOG=1")
        .map(|n| n.at)
        .collect();
    assert!(pings.len() >= 5, "{} pings in 3.2 s", pings.len());
    let widest = pings.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        widest < interval,
        "pings {widest:?} apart, watchdog interval {interval:?}"
    );

    // bob joins: comm-up is reported in STATUS.
    let mut bob = OurNode::start(&db, None, Some(B));
    l.wait_for(Duration::from_secs(10), |t| {
        t.starts_with("STATUS=") && t.contains("Communication up")
    })
    .unwrap_or_else(|e| panic!("STATUS at comm-up: {e}\n{}", dump(&mut [&mut bob])));

    // SIGHUP: RELOADING=1 (with its time stamp), then READY=1 again.
    let mark = l.seen.len();
    alice.signal(Signal::SIGHUP);
    let reloading = l
        .wait_from(mark, Duration::from_secs(5), |t| {
            t.starts_with("RELOADING=1\n")
        })
        .unwrap_or_else(|e| panic!("RELOADING=1: {e}"));
    assert!(
        l.seen[reloading].text.contains("\nMONOTONIC_USEC="),
        "{:?}",
        l.seen[reloading].text
    );
    l.wait_from(reloading, Duration::from_secs(5), |t| t == "READY=1")
        .unwrap_or_else(|e| panic!("READY=1 after reload: {e}"));

    // SIGTERM: STOPPING=1, then a clean exit.
    let mark = l.seen.len();
    alice.signal(Signal::SIGTERM);
    l.wait_from(mark, Duration::from_secs(5), |t| t == "STOPPING=1")
        .unwrap_or_else(|e| panic!("STOPPING=1: {e}"));
    assert_eq!(alice.wait_exit(Duration::from_secs(10)), Some(0));
    bob.kill();
}

#[test]
fn abstract_socket_and_a_watchdog_meant_for_another_process() {
    use std::os::linux::net::SocketAddrExt;
    let tmp = TestDir::new("notify-abs");
    let (da, _) = pair(&tmp);
    let name = format!("hb-notify-it-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
    let sock = UnixDatagram::bind_addr(&addr).expect("bind the abstract socket");
    let mut l = Listener::new(sock);

    // WATCHDOG_PID names someone else (pid 1): no pings from us.
    let mut alice = Watched::start(
        &da,
        &[
            ("NOTIFY_SOCKET", format!("@{name}")),
            ("WATCHDOG_USEC", "200000".into()),
            ("WATCHDOG_PID", "1".into()),
        ],
    );
    l.wait_for(Duration::from_secs(10), |t| t == "READY=1")
        .unwrap_or_else(|e| panic!("READY=1 over an abstract socket: {e}"));
    l.collect_for(Duration::from_millis(1000));
    assert!(
        !l.texts().contains(&"WATCHDOG=1"),
        "pinged a watchdog meant for pid 1: {:?}",
        l.texts()
    );
    alice.signal(Signal::SIGTERM);
    assert_eq!(alice.wait_exit(Duration::from_secs(10)), Some(0));
}
