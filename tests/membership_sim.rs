//! Deterministic simulation of the membership layer: several nodes, a simulated clock and a
//! simulated network with loss, delay, duplication, partitions, crashes and restarts.

use std::collections::{BTreeMap, BTreeSet};

use heartbeat::cluster::{Action, Identity, LogLevel, Membership, NodeStatus, Now, Params};
use heartbeat::config::{AuthKey, AuthKeys, AuthMethod};
use heartbeat::wire::Authenticator;

const EPOCH: u64 = 1_795_000_000;

fn keys(secret: &str) -> AuthKeys {
    let mut k = BTreeMap::new();
    k.insert(
        1,
        AuthKey {
            method: AuthMethod::Sha1,
            key: secret.as_bytes().to_vec(),
        },
    );
    AuthKeys { active: 1, keys: k }
}

fn params(me: &str, nodes: &[&str]) -> Params {
    params_links(me, nodes, 1)
}

fn params_links(me: &str, nodes: &[&str], links: usize) -> Params {
    Params {
        my_name: me.into(),
        nodes: nodes.iter().map(|s| s.to_string()).collect(),
        links: (0..links).map(|i| format!("hb{i}")).collect(),
        keepalive_ms: 1000,
        deadtime_ms: 8000,
        warntime_ms: 4000,
        initdead_ms: 16000,
        max_rexmit_delay_ms: 250,
        hopfudge: 1,
        inner_auth: true,
        ping_nodes: Vec::new(),
        deadping_ms: 8000,
    }
}

struct SimNode {
    m: Option<Membership>,
    generation: u64,
    logs: Vec<(u64, LogLevel, String)>,
    events: Vec<(u64, Action)>,
}

struct Packet {
    at: u64,
    to: usize,
    link: usize,
    bytes: Vec<u8>,
}

struct Sim {
    now: u64,
    names: Vec<String>,
    nodes: Vec<SimNode>,
    in_flight: Vec<Packet>,
    rng: u64,
    loss_pct: u64,
    dup_pct: u64,
    max_delay: u64,
    /// Pairs (from, to) that cannot talk.
    cut: BTreeSet<(usize, usize)>,
    /// Links that carry nothing.
    down_links: BTreeSet<usize>,
    links: usize,
    sent: Vec<(usize, Vec<u8>)>,
}

impl Sim {
    fn new(names: &[&str], seed: u64) -> Sim {
        let mut s = Sim {
            now: 0,
            names: names.iter().map(|n| n.to_string()).collect(),
            nodes: Vec::new(),
            in_flight: Vec::new(),
            rng: seed | 1,
            loss_pct: 0,
            dup_pct: 0,
            max_delay: 2,
            cut: BTreeSet::new(),
            down_links: BTreeSet::new(),
            links: 1,
            sent: Vec::new(),
        };
        for _ in names {
            s.nodes.push(SimNode {
                m: None,
                generation: EPOCH,
                logs: Vec::new(),
                events: Vec::new(),
            });
        }
        s
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn clock(&self) -> Now {
        Now {
            mono_ms: self.now,
            unix_secs: EPOCH + self.now / 1000,
        }
    }

    fn start(&mut self, i: usize) {
        let seed = self.rand();
        let names_owned = self.names.clone();
        let names: Vec<&str> = names_owned.iter().map(String::as_str).collect();
        self.nodes[i].generation += 1;
        let id = Identity {
            name: self.names[i].clone(),
            uuid: [i as u8 + 1; 16],
            generation: self.nodes[i].generation,
        };
        let m = Membership::new(
            params_links(&self.names[i], &names, self.links),
            id,
            Authenticator::new(keys("s3cret")),
            self.clock(),
            seed,
        );
        self.nodes[i].m = Some(m);
        self.drain(i);
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i].m = None;
        self.in_flight.retain(|p| p.to != i);
    }

    fn drain(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let Some(m) = node.m.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while let Some(a) = m.poll_action() {
            match a {
                Action::Send(b) => out.push(b),
                Action::Log(l, t) => node.logs.push((now, l, t)),
                other => node.events.push((now, other)),
            }
        }
        for b in out {
            self.sent.push((i, b.clone()));
            for to in 0..self.nodes.len() {
                self.transmit(i, to, b.clone());
            }
        }
    }

    fn transmit(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if self.cut.contains(&(from, to)) {
            return;
        }
        if from != to && self.rand() % 100 < self.loss_pct {
            return;
        }
        for link in 0..self.links {
            if self.down_links.contains(&link) {
                continue;
            }
            let copies = if self.rand() % 100 < self.dup_pct {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let at = self.now + 1 + self.rand() % self.max_delay.max(1);
                self.in_flight.push(Packet {
                    at,
                    to,
                    link,
                    bytes: bytes.clone(),
                });
            }
        }
    }

    fn inject(&mut self, to: usize, bytes: Vec<u8>) {
        self.in_flight.push(Packet {
            at: self.now + 1,
            to,
            link: 0,
            bytes,
        });
    }

    /// Run until `until` (ms), processing deliveries and timers in time order.
    fn run_until(&mut self, until: u64) {
        loop {
            let next_pkt = self.in_flight.iter().map(|p| p.at).min();
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|n| n.m.as_ref().and_then(|m| m.poll_timeout()))
                .min();
            let next = [next_pkt, next_timer].into_iter().flatten().min();
            let Some(next) = next.filter(|&t| t <= until) else {
                self.now = until;
                return;
            };
            self.now = self.now.max(next);
            let now = self.clock();
            // Deliveries due now, in order of arrival.
            let mut due = Vec::new();
            self.in_flight.retain(|p| {
                if p.at <= now.mono_ms {
                    due.push((p.to, p.link, p.bytes.clone()));
                    false
                } else {
                    true
                }
            });
            for (to, link, bytes) in due {
                if let Some(m) = self.nodes[to].m.as_mut() {
                    m.handle_datagram(now, link, &bytes);
                    self.drain(to);
                }
            }
            for i in 0..self.nodes.len() {
                let due = self.nodes[i]
                    .m
                    .as_ref()
                    .and_then(|m| m.poll_timeout())
                    .is_some_and(|t| t <= now.mono_ms);
                if due {
                    self.nodes[i].m.as_mut().unwrap().handle_timeout(now);
                    self.drain(i);
                }
            }
        }
    }

    fn status(&self, at: usize, of: &str) -> Option<NodeStatus> {
        self.nodes[at].m.as_ref()?.node_status(of)
    }

    fn log_time(&self, at: usize, needle: &str) -> Option<u64> {
        self.nodes[at]
            .logs
            .iter()
            .find(|(_, _, t)| t.contains(needle))
            .map(|(ms, _, _)| *ms)
    }

    fn count_logs(&self, at: usize, needle: &str) -> usize {
        self.nodes[at]
            .logs
            .iter()
            .filter(|(_, _, t)| t.contains(needle))
            .count()
    }

    fn dump(&self, at: usize) -> String {
        self.nodes[at]
            .logs
            .iter()
            .map(|(ms, l, t)| format!("{ms:>8} {l}: {t}\n"))
            .collect()
    }
}

#[test]
fn two_nodes_reach_active_and_see_each_other() {
    let mut s = Sim::new(&["alice", "bob"], 1);
    s.start(0);
    s.start(1);
    s.run_until(3000);
    for at in 0..2 {
        assert_eq!(
            s.status(at, "alice"),
            Some(NodeStatus::Active),
            "{}",
            s.dump(at)
        );
        assert_eq!(
            s.status(at, "bob"),
            Some(NodeStatus::Active),
            "{}",
            s.dump(at)
        );
        assert!(s
            .log_time(at, "Comm_now_up(): updating status to active")
            .is_some());
    }
    assert!(
        s.log_time(0, "Status update for node bob: status active")
            .is_some(),
        "{}",
        s.dump(0)
    );
    assert_eq!(s.count_logs(0, "is dead"), 0);
}

#[test]
fn lone_node_declares_peer_dead_after_initdead() {
    let mut s = Sim::new(&["alice", "bob"], 2);
    s.start(0);
    s.run_until(20_000);
    let t = s
        .log_time(0, "node bob: is dead")
        .expect("bob declared dead");
    assert!((16_000..=16_010).contains(&t), "declared dead at {t}");
    assert_eq!(s.status(0, "alice"), Some(NodeStatus::Active));
    let up = s.log_time(0, "Comm_now_up").unwrap();
    assert!(up >= t);
}

#[test]
fn crash_is_detected_deadtime_after_last_heartbeat() {
    let mut s = Sim::new(&["alice", "bob"], 3);
    s.start(0);
    s.start(1);
    s.run_until(30_000);
    // Last status bob sent before the crash.
    let crash_at = s.now;
    let last_from_bob = s
        .sent
        .iter()
        .filter(|(from, b)| *from == 1 && b.windows(8).any(|w| w == b"t=status"))
        .count();
    assert!(last_from_bob > 20);
    s.crash(1);
    s.run_until(50_000);
    let t = s
        .log_time(0, "node bob: is dead")
        .expect("bob declared dead");
    // bob's last status left at most one keepalive before the crash; dt is 8000 ms.
    assert!(
        t >= crash_at + 8000 - 1000 && t <= crash_at + 8000 + 10,
        "dead at {t}, crash at {crash_at}\n{}",
        s.dump(0)
    );
    assert!(s.log_time(0, "Link bob:hb0 dead.").is_some());
    assert_eq!(s.status(0, "bob"), Some(NodeStatus::Dead));
    // It comes back with a higher generation and is accepted.
    s.start(1);
    s.run_until(60_000);
    assert!(
        s.log_time(0, "Heartbeat restart on node bob").is_some(),
        "{}",
        s.dump(0)
    );
    assert_eq!(s.status(0, "bob"), Some(NodeStatus::Active));
    assert_eq!(
        s.status(1, "alice"),
        Some(NodeStatus::Active),
        "{}",
        s.dump(1)
    );
}

#[test]
fn loss_is_repaired_by_retransmission_without_false_death() {
    let mut s = Sim::new(&["alice", "bob"], 4);
    s.loss_pct = 30;
    s.dup_pct = 10;
    s.max_delay = 30;
    s.start(0);
    s.start(1);
    s.run_until(120_000);
    for at in 0..2 {
        assert_eq!(s.count_logs(at, "is dead"), 0, "{}", s.dump(at));
        assert!(s.count_logs(at, "lost packet(s)") > 0, "{}", s.dump(at));
        assert!(s.count_logs(at, "No pkts missing") > 0, "{}", s.dump(at));
    }
    // Acknowledgements keep the send history short.
    for n in &s.nodes {
        assert!(
            n.m.as_ref().unwrap().history_len() < 100,
            "history {}",
            n.m.as_ref().unwrap().history_len()
        );
    }
}

#[test]
fn replayed_packets_change_nothing() {
    let mut s = Sim::new(&["alice", "bob"], 5);
    s.start(0);
    s.start(1);
    s.run_until(10_000);
    let old: Vec<Vec<u8>> = s
        .sent
        .iter()
        .filter(|(f, _)| *f == 1)
        .map(|(_, b)| b.clone())
        .take(5)
        .collect();
    let before = s.nodes[0].logs.len();
    for b in old {
        s.inject(0, b);
    }
    s.run_until(10_500);
    let new: Vec<&String> = s.nodes[0].logs[before..]
        .iter()
        .map(|(_, _, t)| t)
        .collect();
    assert!(
        new.iter()
            .all(|t| !t.contains("Status update") && !t.contains("restart")),
        "{new:?}"
    );
    // A restarted bob makes its old generation a replay attack.
    s.crash(1);
    s.start(1);
    s.run_until(12_000);
    let stale = s
        .sent
        .iter()
        .find(|(f, _)| *f == 1)
        .map(|(_, b)| b.clone())
        .unwrap();
    s.inject(0, stale);
    s.run_until(12_100);
    assert!(
        s.log_time(0, "attempted replay attack [bob]").is_some(),
        "{}",
        s.dump(0)
    );
}

#[test]
fn garbage_and_wrong_key_are_rejected_without_state_change() {
    let mut s = Sim::new(&["alice", "bob"], 6);
    s.start(0);
    s.start(1);
    s.run_until(5000);
    // A third node with the wrong key.
    let id = Identity {
        name: "bob".into(),
        uuid: [9; 16],
        generation: EPOCH + 100,
    };
    let mut forger = Membership::new(
        params("bob", &["alice", "bob"]),
        id,
        Authenticator::new(keys("wrong")),
        s.clock(),
        9,
    );
    let mut forged = Vec::new();
    while let Some(a) = forger.poll_action() {
        if let Action::Send(b) = a {
            forged.push(b);
        }
    }
    let before_events = s.nodes[0].events.len();
    for b in forged {
        s.inject(0, b);
    }
    for len in [0usize, 1, 4, 16, 100, 300] {
        let junk: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        s.inject(0, junk);
    }
    s.inject(0, b"###\n5:abcde,%%%\n".to_vec());
    s.run_until(6000);
    assert_eq!(s.nodes[0].events.len(), before_events);
    assert!(
        s.count_logs(0, "authtoken does not match") >= 1,
        "{}",
        s.dump(0)
    );
    assert_eq!(s.status(0, "bob"), Some(NodeStatus::Active));
    assert_eq!(s.count_logs(0, "Heartbeat restart"), 0);
}

#[test]
fn partition_heal_is_reported() {
    let mut s = Sim::new(&["alice", "bob"], 7);
    s.start(0);
    s.start(1);
    s.run_until(20_000);
    s.cut.insert((0, 1));
    s.cut.insert((1, 0));
    s.run_until(35_000);
    assert!(s.log_time(0, "node bob: is dead").is_some());
    assert!(s.log_time(1, "node alice: is dead").is_some());
    s.cut.clear();
    s.run_until(40_000);
    assert!(
        s.log_time(0, "Cluster node bob returning after partition.")
            .is_some(),
        "{}",
        s.dump(0)
    );
    assert_eq!(s.status(0, "bob"), Some(NodeStatus::Active));
}

#[test]
fn many_seeds_with_faults_never_lose_a_live_peer() {
    for seed in 100..160u64 {
        let mut s = Sim::new(&["alice", "bob", "carol"], seed);
        s.loss_pct = seed % 25;
        s.dup_pct = seed % 7;
        s.max_delay = 1 + seed % 40;
        for i in 0..3 {
            s.start(i);
        }
        s.run_until(40_000);
        for at in 0..3 {
            assert_eq!(
                s.count_logs(at, "is dead"),
                0,
                "seed {seed}\n{}",
                s.dump(at)
            );
            for of in ["alice", "bob", "carol"] {
                assert_eq!(
                    s.status(at, of),
                    Some(NodeStatus::Active),
                    "seed {seed} node {at} sees {of}\n{}",
                    s.dump(at)
                );
            }
        }
    }
}

#[test]
fn rejections_are_counted_but_logged_at_a_bounded_rate() {
    let mut s = Sim::new(&["alice", "bob"], 11);
    s.start(0);
    s.start(1);
    s.run_until(3000);
    // 5000 garbage datagrams over 20 s.
    for k in 0..5000u64 {
        s.run_until(3000 + k * 4);
        s.inject(0, format!("###\n{k}:junk,%%%\n").into_bytes());
    }
    s.run_until(24_000);
    let total: u64 = s.nodes[0]
        .m
        .as_ref()
        .unwrap()
        .reject_counts()
        .values()
        .sum();
    assert_eq!(total, 5000);
    let lines = s.nodes[0]
        .logs
        .iter()
        .filter(|(_, _, t)| t.contains("malformed"))
        .count();
    assert!(
        (1..=4).contains(&lines),
        "{lines} lines for 5000 rejections\n{}",
        s.dump(0)
    );
    assert!(
        s.count_logs(0, "similar packets dropped") >= 1,
        "{}",
        s.dump(0)
    );
    assert_eq!(s.status(0, "bob"), Some(NodeStatus::Active));
}

#[test]
fn two_links_count_each_message_once_and_survive_losing_one() {
    let mut s = Sim::new(&["alice", "bob"], 12);
    s.links = 2;
    s.dup_pct = 20;
    s.start(0);
    s.start(1);
    s.run_until(10_000);
    assert!(s.log_time(0, "Link bob:hb0 up.").is_some());
    assert!(s.log_time(0, "Link bob:hb1 up.").is_some());
    // Every message arrives at least twice, yet nothing is seen as lost or restarted.
    assert_eq!(s.count_logs(0, "lost packet"), 0, "{}", s.dump(0));
    assert_eq!(
        s.count_logs(0, "Status update for node bob: status active"),
        1
    );
    s.down_links.insert(1);
    s.run_until(30_000);
    assert!(
        s.log_time(0, "Link bob:hb1 dead.").is_some(),
        "{}",
        s.dump(0)
    );
    assert_eq!(s.count_logs(0, "is dead"), 0, "{}", s.dump(0));
    assert_eq!(s.status(0, "bob"), Some(NodeStatus::Active));
    s.down_links.clear();
    s.run_until(32_000);
    assert_eq!(s.count_logs(0, "Link bob:hb1 up."), 2, "{}", s.dump(0));
}

#[test]
fn late_heartbeat_is_warned_before_deadtime() {
    let mut s = Sim::new(&["alice", "bob"], 13);
    s.start(0);
    s.start(1);
    s.run_until(10_000);
    // bob goes silent for 5 s (warntime 4, deadtime 8), then talks again.
    s.cut.insert((1, 0));
    s.run_until(15_000);
    s.cut.clear();
    s.run_until(17_000);
    let late: Vec<_> = s.nodes[0]
        .logs
        .iter()
        .filter(|(_, _, t)| t.contains("Late heartbeat: Node bob: interval"))
        .collect();
    assert_eq!(late.len(), 1, "{}", s.dump(0));
    assert_eq!(late[0].1, LogLevel::Warn);
    assert_eq!(s.count_logs(0, "is dead"), 0);
}

#[test]
fn own_links_follow_the_media_not_our_own_echo() {
    let mut s = Sim::new(&["alice", "bob"], 14);
    s.start(0);
    s.start(1);
    // The runtime says alice's medium works; she never hears herself in this network.
    s.cut.insert((0, 0));
    let now = s.clock();
    s.nodes[0].m.as_mut().unwrap().set_own_link(now, 0, true);
    s.drain(0);
    s.run_until(30_000);
    assert_eq!(s.count_logs(0, "Link alice:hb0 up."), 1, "{}", s.dump(0));
    assert_eq!(s.count_logs(0, "Link alice:hb0 dead."), 0, "{}", s.dump(0));
    let links = s.nodes[0].m.as_ref().unwrap().link_status("alice").unwrap();
    assert_eq!(links, vec![("hb0".to_string(), true)]);
    let now = s.clock();
    s.nodes[0].m.as_mut().unwrap().set_own_link(now, 0, false);
    s.drain(0);
    assert_eq!(s.count_logs(0, "Link alice:hb0 dead."), 1);
}

/// What a ping node echoes back: our own signed `NS_st` message naming it.
fn ping_echo(auth: &Authenticator, node: &str, unix_secs: u64) -> Vec<u8> {
    let mut m = heartbeat::wire::Msg::new();
    m.add_str("t", "NS_st")
        .add_str("st", "ping")
        .add_str("info", "ping")
        .add_str("src", node)
        .add_str("ts", &format!("{unix_secs:x}"));
    auth.add_inner_auth(&mut m);
    auth.encode_udp(&m)
}

#[test]
fn ping_node_lives_while_it_echoes_and_dies_after_deadping() {
    let auth = Authenticator::new(keys("s3cret"));
    let mut p = params_links("alice", &["alice"], 2);
    p.links[1] = "10.0.0.9".into();
    p.ping_nodes = vec!["10.0.0.9".into()];
    p.deadping_ms = 6000;
    let id = Identity {
        name: "alice".into(),
        uuid: [1; 16],
        generation: EPOCH,
    };
    let at = |ms: u64| Now {
        mono_ms: ms,
        unix_secs: EPOCH + ms / 1000,
    };
    let mut m = Membership::new(p, id, Authenticator::new(keys("s3cret")), at(0), 1);
    let mut logs = Vec::new();
    let pump = |m: &mut Membership, logs: &mut Vec<String>| {
        while let Some(a) = m.poll_action() {
            if let Action::Log(_, t) = a {
                logs.push(t);
            }
        }
    };
    // Echoes every second for 10 s: comm-up does not wait for initdead, the node is `ping`.
    for t in (500..10_000).step_by(1000) {
        m.handle_timeout(at(t));
        m.handle_datagram(at(t), 1, &ping_echo(&auth, "10.0.0.9", EPOCH + t / 1000));
        pump(&mut m, &mut logs);
    }
    assert!(m.is_comm_up(), "{logs:#?}");
    assert_eq!(m.node_status("10.0.0.9"), Some(NodeStatus::Ping));
    assert!(
        logs.iter().any(|l| l == "Link 10.0.0.9:10.0.0.9 up."),
        "{logs:#?}"
    );
    assert!(logs
        .iter()
        .any(|l| l == "Status update for node 10.0.0.9: status ping"));
    // Silence: dead after deadping (6 s after the last echo at 9.5 s), not before.
    for t in (10_000..15_000).step_by(250) {
        m.handle_timeout(at(t));
    }
    pump(&mut m, &mut logs);
    assert!(!logs.iter().any(|l| l.contains("is dead")), "{logs:#?}");
    for t in (15_000..17_000).step_by(250) {
        m.handle_timeout(at(t));
    }
    pump(&mut m, &mut logs);
    assert!(
        logs.iter()
            .any(|l| l.starts_with("node 10.0.0.9: is dead (")),
        "{logs:#?}"
    );
    assert_eq!(m.node_status("10.0.0.9"), Some(NodeStatus::Dead));
    // Echoes again: back to `ping`. A forged echo (wrong key) changes nothing.
    let wrong = Authenticator::new(keys("wrong"));
    m.handle_datagram(at(18_000), 1, &ping_echo(&wrong, "10.0.0.9", EPOCH + 18));
    assert_eq!(m.node_status("10.0.0.9"), Some(NodeStatus::Dead));
    m.handle_datagram(at(18_100), 1, &ping_echo(&auth, "10.0.0.9", EPOCH + 18));
    assert_eq!(m.node_status("10.0.0.9"), Some(NodeStatus::Ping));
}
