//! Two test hosts with a relay between them that delays, jitters, duplicates, reorders and drops
//! their UDP datagrams (this kernel has no netem).
//!
//! Three namespaces: `PREFIX-a` (NET.1 on `hb0`), `PREFIX-b` (NET.2 on `hb0`) and `PREFIX-r`,
//! the relay's host, joined to each by a veth pair (NET.3 on the side of a, NET.4 on the side of
//! b, host routes). alice's `ucast hb0 NET.3` reaches the relay, which sends it on to NET.2
//! from NET.4; bob's `ucast hb0 NET.4` goes on to NET.1 from NET.3. The relay is a thread of
//! the test that entered `PREFIX-r` (`setns` is per thread), so nothing but the test's own
//! namespaces carries the traffic.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{args, netns_pids, run_ok, NETNS_LOCK};

/// What the relay does to each datagram, both ways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Impairment {
    /// Every datagram waits this long.
    pub delay_ms: u64,
    /// Plus a uniform extra wait in [0, jitter_ms]: datagrams closer than that overtake each
    /// other.
    pub jitter_ms: u64,
    /// This share (percent) is sent twice, the copy 1 ms after the original.
    pub duplicate_pct: u32,
    /// This share is held back by `reorder_ms` more, so later ones overtake it.
    pub reorder_pct: u32,
    pub reorder_ms: u64,
    /// This share is dropped.
    pub drop_pct: u32,
}

/// The three namespaces and the relay thread. Drop stops the relay, kills whatever still runs
/// in the namespaces and deletes them.
pub struct RelayLab {
    pub prefix: String,
    pub net: String,
    impairment: Arc<Mutex<Impairment>>,
    stop: Arc<AtomicBool>,
    relay: Option<JoinHandle<()>>,
    _machine_lock: nix::fcntl::Flock<File>,
}

impl RelayLab {
    /// PREFIX at most 10 characters (the veth names are `PREFIX-ar` and so on).
    pub fn new(prefix: &str, net: &str) -> RelayLab {
        assert!(prefix.len() <= 10, "netns prefix {prefix:?} too long");
        let lock_path = std::env::temp_dir().join(format!("heartbeat-rs-netns-{prefix}.lock"));
        let lock_file =
            File::create(&lock_path).unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
        let machine_lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .unwrap_or_else(|(_, e)| panic!("flock {}: {e}", lock_path.display()));
        let mut lab = RelayLab {
            prefix: prefix.to_string(),
            net: net.to_string(),
            impairment: Arc::new(Mutex::new(Impairment::default())),
            stop: Arc::new(AtomicBool::new(false)),
            relay: None,
            _machine_lock: machine_lock,
        };
        {
            let _guard = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            lab.destroy();
            let (a, b, r) = (lab.ns_a(), lab.ns_b(), lab.ns_r());
            let mut steps = vec![
                format!("netns add {a}"),
                format!("netns add {b}"),
                format!("netns add {r}"),
            ];
            // (end host, its address, the relay's side, the relay's address on it)
            for (ns, host, side, relay_host) in [(&a, 1, "a", 3), (&b, 2, "b", 4)] {
                let (v_host, v_relay) = (format!("{prefix}-{side}h"), format!("{prefix}-{side}r"));
                steps.extend([
                    format!("link add {v_host} type veth peer name {v_relay}"),
                    format!("link set {v_host} netns {ns}"),
                    format!("link set {v_relay} netns {r}"),
                    format!("-n {ns} link set {v_host} name hb0"),
                    format!("-n {ns} addr add {net}.{host}/24 dev hb0"),
                    format!("-n {ns} link set lo up"),
                    format!("-n {ns} link set hb0 up"),
                    format!("-n {r} addr add {net}.{relay_host}/32 dev {v_relay}"),
                    format!("-n {r} link set {v_relay} up"),
                    format!("-n {r} route add {net}.{host}/32 dev {v_relay}"),
                ]);
            }
            steps.push(format!("-n {r} link set lo up"));
            for step in steps {
                let argv: Vec<String> = step.split_whitespace().map(str::to_string).collect();
                if let Err(e) = run_ok("ip", &argv) {
                    lab.destroy();
                    panic!("setting up namespaces {a}/{b}/{r}: {e}");
                }
            }
        }
        lab.relay = Some(lab.start_relay());
        lab
    }

    pub fn ns_a(&self) -> String {
        format!("{}-a", self.prefix)
    }
    pub fn ns_b(&self) -> String {
        format!("{}-b", self.prefix)
    }
    pub fn ns_r(&self) -> String {
        format!("{}-r", self.prefix)
    }
    pub fn addr_a(&self) -> String {
        format!("{}.1", self.net)
    }
    pub fn addr_b(&self) -> String {
        format!("{}.2", self.net)
    }
    /// Where alice sends (the relay passes it to bob).
    pub fn relay_for_a(&self) -> String {
        format!("{}.3", self.net)
    }
    /// Where bob sends (the relay passes it to alice).
    pub fn relay_for_b(&self) -> String {
        format!("{}.4", self.net)
    }

    /// From now on, treat datagrams this way (those already held keep their times).
    pub fn set(&self, imp: Impairment) {
        *self.impairment.lock().unwrap_or_else(|e| e.into_inner()) = imp;
    }

    fn start_relay(&self) -> JoinHandle<()> {
        let ns_path = Path::new("/run/netns").join(self.ns_r());
        let addr = |h: u8| -> SocketAddr {
            format!("{}.{h}:694", self.net)
                .parse()
                .expect("relay address")
        };
        let (to_b_from, to_a_from, a, b) = (addr(4), addr(3), addr(1), addr(2));
        let (imp, stop) = (self.impairment.clone(), self.stop.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let h = thread::spawn(move || {
            let setup = (|| -> Result<(UdpSocket, UdpSocket), String> {
                let f = File::open(&ns_path).map_err(|e| format!("{}: {e}", ns_path.display()))?;
                setns(f, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
                let s3 =
                    UdpSocket::bind(to_a_from).map_err(|e| format!("bind {to_a_from}: {e}"))?;
                let s4 =
                    UdpSocket::bind(to_b_from).map_err(|e| format!("bind {to_b_from}: {e}"))?;
                for s in [&s3, &s4] {
                    s.set_nonblocking(true).map_err(|e| e.to_string())?;
                }
                Ok((s3, s4))
            })();
            // The daemons run SCHED_RR (`realtime on`); a relay at normal priority stalls
            // behind any build on the machine and adds delays nobody asked for (a second,
            // taken for a dead peer). As root, it runs SCHED_FIFO too; it sleeps when idle.
            let _ = heartbeat::runtime::os::daemon::set_scheduler(libc::SCHED_FIFO, 10);
            let (s3, s4) = match setup {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            relay_loop(&s3, &s4, a, b, &imp, &stop);
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => h,
            Ok(Err(e)) => panic!("relay in {}: {e}", self.ns_r()),
            Err(_) => panic!("relay in {} did not start", self.ns_r()),
        }
    }

    fn destroy(&self) {
        for side in ["a", "b"] {
            let v = format!("{}-{side}h", self.prefix);
            if Path::new("/sys/class/net").join(&v).exists() {
                let _ = run_ok("ip", &args(&["link", "del", &v]));
            }
        }
        for ns in [self.ns_a(), self.ns_b(), self.ns_r()] {
            if !Path::new("/run/netns").join(&ns).exists() {
                continue;
            }
            // Only processes this harness started can live in a namespace it created.
            for pid in netns_pids(&ns) {
                if pid as u32 != std::process::id() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            let _ = run_ok("ip", &args(&["netns", "del", &ns]));
        }
    }
}

impl Drop for RelayLab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.relay.take() {
            let _ = h.join();
        }
        let _guard = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        self.destroy();
    }
}

/// A datagram held until its time: (due, order of arrival, payload, from NET.3 to NET.2?).
type Held = Reverse<(Instant, u64, Vec<u8>, bool)>;

fn relay_loop(
    s3: &UdpSocket,
    s4: &UdpSocket,
    a: SocketAddr,
    b: SocketAddr,
    imp: &Mutex<Impairment>,
    stop: &AtomicBool,
) {
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut held: BinaryHeap<Held> = BinaryHeap::new();
    let mut order = 0u64;
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let mut idle = true;
        // s3 receives what alice sends (for bob); s4 what bob sends (for alice).
        for (sock, to_b) in [(s3, true), (s4, false)] {
            while let Ok((n, _)) = sock.recv_from(&mut buf) {
                idle = false;
                let i = *imp.lock().unwrap_or_else(|e| e.into_inner());
                if (next() % 100) < u64::from(i.drop_pct) {
                    continue;
                }
                let mut wait = i.delay_ms;
                if i.jitter_ms > 0 {
                    wait += next() % (i.jitter_ms + 1);
                }
                if (next() % 100) < u64::from(i.reorder_pct) {
                    wait += i.reorder_ms;
                }
                let due = Instant::now() + Duration::from_millis(wait);
                order += 1;
                held.push(Reverse((due, order, buf[..n].to_vec(), to_b)));
                if (next() % 100) < u64::from(i.duplicate_pct) {
                    order += 1;
                    let again = due + Duration::from_millis(1);
                    held.push(Reverse((again, order, buf[..n].to_vec(), to_b)));
                }
            }
        }
        let now = Instant::now();
        while held.peek().is_some_and(|Reverse(h)| h.0 <= now) {
            if let Some(Reverse((_, _, bytes, to_b))) = held.pop() {
                // To bob from NET.4 (its side), to alice from NET.3.
                let _ = if to_b {
                    s4.send_to(&bytes, b)
                } else {
                    s3.send_to(&bytes, a)
                };
            }
        }
        if idle {
            thread::sleep(Duration::from_millis(1));
        }
    }
}
