//! Structure-aware: one `Cluster` (node `alice`, with `bob` and sometimes `carol` as peers)
//! driven by a sequence of datagrams, clock steps, script results, link events, user requests
//! and a graceful stop, all chosen by the fuzzer. Most datagrams are well-formed and signed with
//! the right key, so the input reaches the membership and resource logic instead of stopping at
//! authentication; the rest are replays, mutations and garbage.
//!
//! Checked after every step:
//! * no panic;
//! * everything alice sends decodes, verifies with alice's own keys, and says `src=alice`;
//! * at most one resource script runs at a time, and only ever for a configured resource;
//! * timers settle: serving the due ones again at one instant ends within 10 rounds (else the
//!   runtime would spin);
//! * `held_keys` names configured groups, each once;
//! * consistency (as in tests/resource_sim.rs): while the resource manager is idle and no
//!   script runs, the host runs exactly the resources of the groups alice says it holds;
//! * after `ShutdownComplete` the host runs nothing.
//!
//! The simulated host is honest: a start either succeeds (the resource runs) or fails (nothing
//! runs), a stop stops it, a status tells the truth.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;

use heartbeat::cluster::resources::{Op, ResourceManager, ScriptResult};
use heartbeat::cluster::{Cluster, ClusterAction, Identity, Membership, Now, Params};
use heartbeat::config::{haresources, AutoFailback, ResourceGroup};
use heartbeat::wire::{Authenticator, Msg, Value};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const EPOCH: u64 = 1_795_000_000;
const NAMES: [&str; 3] = ["alice", "bob", "carol"];

#[derive(Arbitrary, Debug)]
struct Input {
    /// Low 2 bits: auto_failback legacy/on/off; bit 2: three nodes; bit 3: msgfmt classic.
    setup: u8,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// Let this many ms pass (in units of 10 ms), serving timers on the way.
    Wait(u8),
    /// A datagram from a peer, built from the fuzzer's choices.
    Peer(PeerMsg),
    /// One of the datagrams seen so far (ours or a peer's), again, possibly with a byte changed.
    Replay { pick: u8, flip: Option<(u16, u8)> },
    /// Raw bytes.
    Raw(Vec<u8>),
    /// The oldest (or another) pending script run ends.
    Script { pick: u8, fail: bool },
    /// Our side of the link goes down or up.
    Link(bool),
    /// hb_standby / hb_takeover on alice.
    User { takeover: bool, hold: u8 },
    /// Graceful stop.
    Shutdown,
}

#[derive(Arbitrary, Debug)]
struct PeerMsg {
    /// Which peer (bob, carol, or an unknown node).
    from: u8,
    kind: u8,
    /// Field choices, each a (name, value) pair of indices into the tables below.
    fields: Vec<(u8, u8)>,
    seq: SeqChoice,
    /// 0: current generation; 1: next (a restart); 2: an older one; else: none (`hg` left out).
    gen: u8,
    sign: u8,
    no_ts: bool,
}

#[derive(Arbitrary, Debug)]
enum SeqChoice {
    Next,
    Same,
    Skip(u8),
    FarAhead,
    Zero,
    Back(u8),
}

const KINDS: &[&str] = &[
    "status",
    "starting",
    "resource",
    "ask_resources",
    "hb_takeover",
    "ip-request",
    "ip-request-resp",
    "shutdone",
    "NS_ackmsg",
    "NS_rexmit",
    "NS_nak_rexmit",
    "reqnodes",
    "repnodes",
    "stonith",
    "NS_st",
    "whatever",
];

const NAMES_F: &[&str] = &[
    "st", "dt", "rsc_hold", "info", "ipaddr", "weown", "ok", "dest", "firstseq", "lastseq",
    "ackseq", "isstable", "rtype", "nodelist", "protocol", "ld", "node", "result", "comment",
];

const VALUES: &[&str] = &[
    "init",
    "up",
    "active",
    "dead",
    "none",
    "local",
    "foreign",
    "all",
    "failback",
    "me",
    "other",
    "done",
    "shutdown",
    "req_our_resources()",
    "Sim::a1",
    "Sim::b1",
    "Sim::c1",
    "yes",
    "no",
    "OK",
    "alice",
    "bob",
    "carol",
    "1",
    "0",
    "2",
    "3e8",
    "ffffffffffffffff",
    "",
    "full",
    "alice bob ",
    "x=y",
    "-1",
];

/// The simulated host and the node on it.
struct World {
    cluster: Cluster,
    auth: Authenticator,
    groups: Vec<ResourceGroup>,
    now: u64,
    /// Resources running on alice's host.
    running: BTreeSet<String>,
    /// Pending script runs: (job, resource spec, op); hooks have spec None.
    pending: Vec<(u64, Option<String>, Op)>,
    /// Datagrams seen so far, to replay.
    seen: Vec<Vec<u8>>,
    /// Each peer's generation and last sequence number.
    peers: [(u64, u64); 3],
    done: bool,
}

fn clock(now: u64) -> Now {
    Now {
        mono_ms: now,
        unix_secs: EPOCH + now / 1000,
    }
}

fn authenticator() -> Authenticator {
    let keys = heartbeat::config::authkeys::parse(
        "auth 1\n1 sha1 fuzz-key\n2 crc\n",
        Path::new("authkeys"),
    )
    .expect("authkeys");
    Authenticator::new(keys)
}

fn wrong_authenticator() -> Authenticator {
    let keys =
        heartbeat::config::authkeys::parse("auth 1\n1 sha1 not-the-key\n", Path::new("authkeys"))
            .expect("authkeys");
    Authenticator::new(keys)
}

impl World {
    fn new(setup: u8) -> World {
        let mode = match setup & 3 {
            0 | 3 => AutoFailback::Legacy,
            1 => AutoFailback::On,
            _ => AutoFailback::Off,
        };
        let n = if setup & 4 != 0 { 3 } else { 2 };
        let names: Vec<String> = NAMES[..n].iter().map(|s| s.to_string()).collect();
        let text = if n == 2 {
            "alice Sim::a1 Sim::a2\nbob Sim::b1\n"
        } else {
            "alice Sim::a1 Sim::a2\nbob Sim::b1\ncarol Sim::c1\n"
        };
        let groups = haresources::parse(text, Path::new("haresources"), &names).expect("groups");
        let params = Params {
            my_name: "alice".into(),
            nodes: names,
            links: vec!["hb0".into(), "hb1".into()],
            keepalive_ms: 100,
            deadtime_ms: 1000,
            warntime_ms: 500,
            initdead_ms: 2000,
            max_rexmit_delay_ms: 250,
            hopfudge: 1,
            inner_auth: setup & 8 != 0,
            ping_nodes: Vec::new(),
            deadping_ms: 1000,
        };
        let id = Identity {
            name: "alice".into(),
            uuid: [1; 16],
            generation: 7,
        };
        let now = 1000;
        let auth = authenticator();
        let m = Membership::new(params, id, auth.clone(), clock(now), u64::from(setup));
        let rm = ResourceManager::new("alice", groups.clone(), mode);
        let mut cluster = Cluster::new(clock(now), m, Some(rm));
        cluster.set_own_link(clock(now), 0, true);
        cluster.set_own_link(clock(now), 1, true);
        let mut w = World {
            cluster,
            auth,
            groups,
            now,
            running: BTreeSet::new(),
            pending: Vec::new(),
            seen: Vec::new(),
            peers: [(7, 0), (20, 0), (30, 0)],
            done: false,
        };
        w.drain();
        w
    }

    fn resource_specs(&self) -> BTreeSet<&str> {
        self.groups
            .iter()
            .flat_map(|g| g.resources.iter().map(|r| r.spec.as_str()))
            .collect()
    }

    /// Take every action, checking what can be checked as it comes.
    fn drain(&mut self) {
        while let Some(a) = self.cluster.poll_action() {
            match a {
                ClusterAction::Transmit(t) => {
                    let bytes = self.cluster.encode_udp(&t);
                    let msg = self
                        .auth
                        .verify(&bytes)
                        .unwrap_or_else(|e| panic!("alice sent what it cannot verify: {e:?}"));
                    assert_eq!(msg.get_str("src"), Some("alice"), "sent with src {msg:?}");
                    assert!(msg.get_str("t").is_some(), "sent without t: {msg:?}");
                    if self.seen.len() < 64 {
                        self.seen.push(bytes);
                    }
                }
                ClusterAction::RunScript {
                    job, resource, op, ..
                } => {
                    assert!(!self.done, "a script run after ShutdownComplete");
                    assert!(
                        self.resource_specs().contains(resource.spec.as_str()),
                        "script for an unknown resource {}",
                        resource.spec
                    );
                    // Group work runs one script at a time; early status checks (a late peer,
                    // a stop or handover announced) run beside it by design: they change
                    // nothing. So no start or stop beside any other start or stop.
                    assert!(
                        op == Op::Status
                            || !self
                                .pending
                                .iter()
                                .any(|(_, s, o)| s.is_some() && *o != Op::Status),
                        "two resource starts or stops at once: {:?} while {:?} runs",
                        (&resource.spec, op),
                        self.pending
                    );
                    assert!(
                        !self.pending.iter().any(|(j, _, _)| *j == job),
                        "job reused"
                    );
                    self.pending.push((job, Some(resource.spec), op));
                }
                ClusterAction::RunHook { job, .. } => {
                    self.pending.push((job, None, Op::Status));
                }
                ClusterAction::ShutdownComplete => {
                    assert!(
                        self.running.is_empty(),
                        "graceful stop complete with {:?} running",
                        self.running
                    );
                    self.done = true;
                }
                _ => {}
            }
        }
        self.check();
    }

    fn check(&self) {
        let held = self.cluster.held_keys();
        let keys: BTreeSet<&str> = held.iter().copied().collect();
        assert_eq!(keys.len(), held.len(), "a group held twice: {held:?}");
        for k in &keys {
            assert!(
                self.groups.iter().any(|g| g.key() == *k),
                "unknown group {k}"
            );
        }
        let idle = self
            .cluster
            .resource_manager()
            .is_some_and(ResourceManager::is_idle);
        if idle && !self.pending.iter().any(|(_, s, _)| s.is_some()) {
            for g in &self.groups {
                let says = keys.contains(g.key());
                for r in &g.resources {
                    assert_eq!(
                        self.running.contains(&r.spec),
                        says,
                        "idle, says it {} {}, but {} is {}",
                        if says { "holds" } else { "does not hold" },
                        g.key(),
                        r.spec,
                        if says { "not running" } else { "running" }
                    );
                }
            }
        }
    }

    fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        // Serve every timer on the way, at its own time. Serving one may bring another into
        // the past (comm-up shortens a peer's dead time from initdead to deadtime), which the
        // runtime serves at once; but serving again at the same instant must settle quickly,
        // or the runtime would spin.
        let mut same_instant = 0;
        for _ in 0..10_000 {
            match self.cluster.poll_timeout() {
                Some(t) if t <= end => {
                    let at = self.now.max(t);
                    same_instant = if at == self.now { same_instant + 1 } else { 0 };
                    assert!(
                        same_instant < 10,
                        "timer {t} still due at {} after 10 rounds: the runtime would spin",
                        self.now
                    );
                    self.now = at;
                    self.cluster.handle_timeout(clock(self.now));
                    self.drain();
                    if self.done {
                        return;
                    }
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn peer_packet(&mut self, p: &PeerMsg) -> Vec<u8> {
        let who = usize::from(p.from % 4);
        let name = if who == 0 || who == 3 {
            "dave"
        } else {
            NAMES[who]
        };
        let slot = who.min(2);
        let (gen, seq) = &mut self.peers[slot];
        if p.gen == 1 {
            *gen += 1;
            *seq = 0;
        }
        let new_seq = match p.seq {
            SeqChoice::Next => *seq + 1,
            SeqChoice::Same => *seq,
            SeqChoice::Skip(k) => *seq + 2 + u64::from(k),
            SeqChoice::FarAhead => *seq + 100_000,
            SeqChoice::Zero => 0,
            SeqChoice::Back(k) => seq.saturating_sub(u64::from(k) + 1),
        };
        if new_seq > *seq {
            *seq = new_seq;
        }
        let kind = KINDS[usize::from(p.kind) % KINDS.len()];
        let mut m = Msg::new();
        m.add_str("t", kind);
        for &(n, v) in p.fields.iter().take(12) {
            let fname = NAMES_F[usize::from(n) % NAMES_F.len()];
            let value = VALUES[usize::from(v) % VALUES.len()];
            m.add_str(fname, value);
        }
        m.add_str("src", name);
        if p.from & 4 == 0 {
            m.add(
                "srcuuid",
                Value::Binary(vec![u8::try_from(slot).unwrap_or(0) + 1; 16]),
            );
        }
        if !kind.starts_with("NS_") || p.from & 8 != 0 {
            m.add_str("seq", &format!("{new_seq:x}"));
        }
        match p.gen {
            0 | 1 => {
                m.add_str("hg", &format!("{gen:x}"));
            }
            2 => {
                m.add_str("hg", &format!("{:x}", gen.saturating_sub(1)));
            }
            _ => {}
        }
        if !p.no_ts {
            m.add_str("ts", &format!("{:x}", EPOCH + self.now / 1000));
        }
        m.add_str("ld", "0.00 0.00 0.00 1/1 1");
        match p.sign % 8 {
            0 => wrong_authenticator().encode_udp(&m),
            1 => self.auth.encode_classic(&m),
            2 => {
                // The crc key (index 2) signs it: accepted as 3.0.6 would only if crc is allowed.
                let mut bytes = heartbeat::wire::netstring::encode(&m);
                let d =
                    heartbeat::wire::auth::digest(heartbeat::config::AuthMethod::Crc, b"", &bytes);
                let t = format!("2 {d}");
                bytes.extend_from_slice(format!("{}:{t},", t.len()).as_bytes());
                bytes
            }
            _ => self.auth.encode_udp(&m),
        }
    }

    fn datagram(&mut self, link: usize, bytes: Vec<u8>) {
        self.cluster.handle_datagram(clock(self.now), link, &bytes);
        if self.seen.len() < 64 {
            self.seen.push(bytes);
        }
        self.drain();
    }

    fn script(&mut self, pick: u8, fail: bool) {
        if self.pending.is_empty() {
            return;
        }
        // Mostly the oldest (a resource script always is the only one of its kind).
        let i = if pick < 200 {
            0
        } else {
            usize::from(pick) % self.pending.len()
        };
        let (job, spec, op) = self.pending.remove(i);
        let result = match (spec, op) {
            (None, _) => {
                if fail {
                    ScriptResult::Done {
                        code: 1,
                        stdout: String::new(),
                    }
                } else {
                    ScriptResult::NotFound
                }
            }
            (Some(spec), Op::Start) => {
                if fail {
                    ScriptResult::Done {
                        code: 1,
                        stdout: "failed".into(),
                    }
                } else {
                    self.running.insert(spec);
                    ScriptResult::Done {
                        code: 0,
                        stdout: String::new(),
                    }
                }
            }
            (Some(spec), Op::Stop) => {
                self.running.remove(&spec);
                ScriptResult::Done {
                    code: 0,
                    stdout: String::new(),
                }
            }
            (Some(spec), Op::Status) => ScriptResult::Done {
                code: 0,
                stdout: if self.running.contains(&spec) {
                    "running".into()
                } else {
                    "stopped".into()
                },
            },
        };
        self.cluster.script_done(clock(self.now), job, result);
        self.drain();
    }

    fn step(&mut self, s: &Step) {
        match s {
            Step::Wait(units) => self.advance(u64::from(*units) * 10),
            Step::Peer(p) => {
                let bytes = self.peer_packet(p);
                self.datagram(usize::from(p.kind & 1), bytes);
            }
            Step::Replay { pick, flip } => {
                if self.seen.is_empty() {
                    return;
                }
                let mut b = self.seen[usize::from(*pick) % self.seen.len()].clone();
                if let Some((at, x)) = flip {
                    if !b.is_empty() {
                        let at = usize::from(*at) % b.len();
                        b[at] ^= x | 1;
                    }
                }
                self.datagram(0, b);
            }
            Step::Raw(b) => self.datagram(1, b.clone()),
            Step::Script { pick, fail } => self.script(*pick, *fail),
            Step::Link(up) => {
                self.cluster.set_own_link(clock(self.now), 0, *up);
                self.drain();
            }
            Step::User { takeover, hold } => {
                let mut m = Msg::new();
                let hold = ["all", "local", "foreign", "none"][usize::from(*hold) % 4];
                if *takeover {
                    m.add_str("t", "hb_takeover").add_str("rsc_hold", hold);
                } else {
                    m.add_str("t", "ask_resources")
                        .add_str("rsc_hold", hold)
                        .add_str("info", "me");
                }
                self.cluster.send_message(clock(self.now), m);
                self.drain();
            }
            Step::Shutdown => {
                self.cluster.shutdown(clock(self.now));
                self.drain();
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let mut w = World::new(input.setup);
    for s in input.steps.iter().take(300) {
        if w.done {
            break;
        }
        w.step(s);
    }
    // Finish every script and let the clock run: the checks apply to the settled state too.
    for _ in 0..200 {
        if w.done || w.pending.is_empty() {
            break;
        }
        w.script(0, false);
    }
    if !w.done {
        w.advance(1500);
    }
});
