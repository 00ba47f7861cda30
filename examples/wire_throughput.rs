//! Micro-benchmark: status messages a node takes in per second on one core, for each
//! authentication method (md5, sha1, crc): decode, verify the signature, sequence and deliver
//! (`Membership::handle_datagram`, actions drained), the receive path of every heartbeat.
//!
//!     cargo run --release --example wire_throughput [-- --quick]
//!
//! The packets are real: a sending node (`bob`, the same state machine) produces its status
//! messages, signed, over simulated time; the receiving node (`alice`) is then fed them in order
//! and timed. Each method is measured ROUNDS times (5, or 1 with `--quick`) over N packets
//! (200 000, or 2 000); the figures are median, p90 and worst of the rounds, in messages per
//! second of the thread's CPU time (what one core does; on a shared machine the wall clock also
//! counts other processes' turns, so its median is printed beside). Decoding and verifying
//! alone (`Authenticator::verify_view`, no membership) is timed the same way, its median
//! printed next: the rest of a heartbeat's cost is membership's. Last, the heap allocations per
//! message taken in (a counting global allocator). Figures only: nothing here asserts a time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use heartbeat::cluster::{Identity, Membership, Now, Params};
use heartbeat::config::{AuthKey, AuthKeys, AuthMethod};
use heartbeat::wire::Authenticator;

/// The system allocator, counting allocations: the figures say how many a message costs.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is the one `System.alloc` needs.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; the new size is the caller's, unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const EPOCH: u64 = 1_795_000_000;
const KEEPALIVE_MS: u64 = 1000;

fn keys(method: AuthMethod) -> AuthKeys {
    let mut k = BTreeMap::new();
    k.insert(
        1,
        AuthKey {
            method,
            key: b"bench-secret".to_vec(),
        },
    );
    AuthKeys { active: 1, keys: k }
}

fn params(me: &str) -> Params {
    Params {
        my_name: me.into(),
        nodes: vec!["alice".into(), "bob".into()],
        links: vec!["hb0".into()],
        keepalive_ms: KEEPALIVE_MS,
        deadtime_ms: 30_000,
        warntime_ms: 10_000,
        initdead_ms: 60_000,
        max_rexmit_delay_ms: 250,
        hopfudge: 1,
        inner_auth: true,
        ping_nodes: Vec::new(),
        deadping_ms: 30_000,
    }
}

fn at(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        unix_secs: EPOCH + ms / 1000,
    }
}

fn node(name: &str, method: AuthMethod, uuid: u8) -> Membership {
    Membership::new(
        params(name),
        Identity {
            name: name.into(),
            uuid: [uuid; 16],
            generation: EPOCH,
        },
        Authenticator::new(keys(method)),
        at(0),
        u64::from(uuid),
    )
}

/// `n` status packets from bob, each with the time it was sent.
fn status_packets(method: AuthMethod, n: usize) -> Vec<(u64, Vec<u8>)> {
    let mut bob = node("bob", method, 2);
    let mut out = Vec::with_capacity(n);
    let mut t = 0;
    while out.len() < n {
        while let Some(a) = bob.poll_action() {
            if let heartbeat::cluster::Action::Transmit(tx) = a {
                if tx.is_status() {
                    out.push((t, bob.encode_udp(&tx)));
                }
            }
        }
        t = bob.poll_timeout().unwrap_or(t + KEEPALIVE_MS).max(t + 1);
        bob.handle_timeout(at(t));
    }
    out.truncate(n);
    out
}

/// CPU time of this thread, in seconds: on a shared machine the wall clock would also count the
/// time other processes had the core.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        eprintln!("wire_throughput: clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        std::process::exit(1);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Messages per second of CPU time (and of wall-clock time) for one round, and allocations
/// per message: a fresh alice takes in every packet.
fn round(method: AuthMethod, packets: &[(u64, Vec<u8>)]) -> (f64, f64, f64) {
    let mut alice = node("alice", method, 1);
    while alice.poll_action().is_some() {}
    let a0 = ALLOCATIONS.load(Ordering::Relaxed);
    let c0 = thread_cpu_secs();
    let t0 = Instant::now();
    let mut actions = 0usize;
    for (t, bytes) in packets {
        alice.handle_datagram(at(*t), 0, bytes);
        while alice.poll_action().is_some() {
            actions += 1;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu_secs() - c0;
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - a0;
    // Every packet must have been taken in (one Deliver or status action at least for the first
    // few): a rejected stream would measure the reject path, not the receive path.
    if actions == 0 {
        eprintln!("wire_throughput: alice took nothing in from the {method:?} stream");
        std::process::exit(1);
    }
    let n = packets.len() as f64;
    (
        n / cpu.max(1e-9),
        n / wall.max(1e-9),
        allocations as f64 / n.max(1.0),
    )
}

/// Messages per CPU second for decoding and verifying alone (the view the receive path reads,
/// no membership): what of a heartbeat's cost is the wire's.
fn wire_round(method: AuthMethod, packets: &[(u64, Vec<u8>)]) -> f64 {
    let auth = Authenticator::new(keys(method));
    let c0 = thread_cpu_secs();
    let mut fields = 0usize;
    for (_, bytes) in packets {
        match auth.verify_view(bytes) {
            Ok(view) => fields += view.fields().count(),
            Err(e) => {
                eprintln!("wire_throughput: a {method:?} packet was refused: {e}");
                std::process::exit(1);
            }
        }
    }
    let cpu = thread_cpu_secs() - c0;
    std::hint::black_box(fields);
    packets.len() as f64 / cpu.max(1e-9)
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    // p90 of a rate: the rate 90% of the rounds reached or beat (the 10th percentile up).
    let p90 = v[((n as f64) * 0.1).floor() as usize];
    (median, p90, v[0])
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, rounds) = if quick { (2_000, 1) } else { (200_000, 5) };
    println!(
        "decode + verify + deliver of status messages, one core, {n} messages x {rounds} rounds"
    );
    for method in [AuthMethod::Md5, AuthMethod::Sha1, AuthMethod::Crc] {
        let packets = status_packets(method, n);
        let bytes: usize = packets.iter().map(|(_, b)| b.len()).sum();
        let mut cpu = Vec::new();
        let mut wall = Vec::new();
        let mut allocations = 0.0;
        for _ in 0..rounds {
            let (c, w, a) = round(method, &packets);
            cpu.push(c);
            wall.push(w);
            allocations = a;
        }
        let (median, p90, worst) = stats(cpu);
        let (wall_median, _, _) = stats(wall);
        let (wire_median, _, _) =
            stats((0..rounds).map(|_| wire_round(method, &packets)).collect());
        println!(
            "{:<5} median {:>9.0} msg/s, p90 {:>9.0}, worst {:>9.0} per CPU second \
             (wall clock: median {:>9.0} msg/s; {} bytes/msg; decode + verify alone: \
             median {:>9.0} msg/s; {:.2} allocations/msg)",
            format!("{method:?}").to_lowercase(),
            median,
            p90,
            worst,
            wall_median,
            bytes / packets.len().max(1),
            wire_median,
            allocations
        );
    }
}
