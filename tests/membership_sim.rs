//! Deterministic simulation of the membership layer on the simulation harness
//! (`heartbeat::sim`): several nodes (`Cluster`s without resource management, `-M`), a
//! simulated clock and network with loss, delay, duplication, partitions, crashes and
//! restarts.

use std::collections::BTreeMap;
use std::path::Path;

use heartbeat::cluster::{
    Action, Identity, LogLevel, Membership, NodeStatus, Now, Params, TransmitKind,
};
use heartbeat::config::{AuthKey, AuthKeys, AuthMethod};
use heartbeat::sim::{config_from_texts, Effect, Fault, FaultId, HostEvent, ScriptTimes, World};
use heartbeat::wire::Authenticator;

const EPOCH: u64 = heartbeat::sim::EPOCH_SECS;

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

/// The world's ha.cf: the timings of `params_links`, media `hb0`, `hb1`, ... (broadcast).
fn hacf_text(nodes: &[&str], links: usize) -> String {
    let media: String = (0..links).map(|i| format!("bcast hb{i}\n")).collect();
    let nodes: String = nodes.iter().map(|n| format!("node {n}\n")).collect();
    format!("keepalive 1\ndeadtime 8\nwarntime 4\ninitdead 16\n{media}{nodes}")
}

/// The harness with the switches these tests flip: noise everywhere, directed cuts, media
/// down.
struct Sim {
    w: World,
    noise: Option<FaultId>,
    cuts: Vec<FaultId>,
    down: Vec<FaultId>,
    next_fault: u64,
}

impl Sim {
    fn new(names: &[&str], seed: u64) -> Sim {
        Sim::with_links(names, seed, 1)
    }

    fn with_links(names: &[&str], seed: u64, links: usize) -> Sim {
        let config = config_from_texts(
            hacf_text(names, links).as_bytes(),
            b"auth 1\n1 sha1 s3cret\n",
            b"",
            Path::new("/etc/ha.d"),
        )
        .expect("the simulated configuration loads");
        let mut w = World::new(config, ScriptTimes::fixed(0), seed)
            .without_resources()
            .with_first_generation(EPOCH);
        w.record_logs = true;
        w.record_transmits = true;
        // As on a broadcast medium, a node hears itself.
        w.net.hear_own = true;
        w.net.base_delay_ms = (1, 2);
        Sim {
            w,
            noise: None,
            cuts: Vec::new(),
            down: Vec::new(),
            next_fault: 1,
        }
    }

    fn fault(&mut self, f: Fault) -> FaultId {
        let id = FaultId(self.next_fault);
        self.next_fault += 1;
        self.w.apply(heartbeat::sim::Event::Fault(id, f));
        id
    }

    fn heal(&mut self, ids: Vec<FaultId>) {
        for id in ids {
            self.w.apply(heartbeat::sim::Event::Heal(id));
        }
    }

    /// Every packet lost with `loss_pct`, sent twice with `dup_pct`, delayed up to `max_delay`.
    fn noise(&mut self, loss_pct: u64, dup_pct: u64, max_delay: u64) {
        let old: Vec<FaultId> = self.noise.take().into_iter().collect();
        self.heal(old);
        let f = Fault::everywhere(Effect::Lossy {
            loss_pct,
            dup_pct,
            delay_ms: max_delay.max(1),
        });
        self.noise = Some(self.fault(f));
    }

    /// Nothing from `from` reaches `to`.
    fn cut(&mut self, from: usize, to: usize) {
        let id = self.fault(Fault::one_way(&[from], &[to]));
        self.cuts.push(id);
    }

    fn clear_cuts(&mut self) {
        let ids = std::mem::take(&mut self.cuts);
        self.heal(ids);
    }

    fn link_down(&mut self, link: usize) {
        let id = self.fault(Fault::medium_down(link));
        self.down.push(id);
    }

    fn links_up(&mut self) {
        let ids = std::mem::take(&mut self.down);
        self.heal(ids);
    }

    fn start(&mut self, i: usize) {
        self.w.start(i);
    }

    fn crash(&mut self, i: usize) {
        self.w.crash(i);
    }

    fn run_until(&mut self, until: u64) {
        self.w.run_until(until);
    }

    fn now(&self) -> u64 {
        self.w.now_ms()
    }

    fn clock(&self) -> Now {
        self.w.clock()
    }

    fn membership(&self, i: usize) -> &Membership {
        self.w.hosts[i]
            .cluster()
            .expect("the node runs")
            .membership()
    }

    fn status(&self, at: usize, of: &str) -> Option<NodeStatus> {
        self.w.hosts[at].cluster()?.node_status(of)
    }

    fn log_time(&self, at: usize, needle: &str) -> Option<u64> {
        self.w.log_time(at, needle)
    }

    fn count_logs(&self, at: usize, needle: &str) -> usize {
        self.w.count_logs(at, needle)
    }

    fn dump(&self, at: usize) -> String {
        self.w.dump(at)
    }

    /// What node `from` sent, as UDP datagrams, in order.
    fn sent(&self, from: usize) -> Vec<Vec<u8>> {
        self.w.hosts[from]
            .transmits
            .iter()
            .map(|(_, _, b)| b.clone())
            .collect()
    }

    fn inject(&mut self, to: usize, bytes: Vec<u8>) {
        self.w.inject(to, 0, bytes);
    }

    fn events(&self, at: usize) -> usize {
        self.w.hosts[at].events.len()
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
    let crash_at = s.now();
    let last_from_bob = s
        .sent(1)
        .iter()
        .filter(|b| b.windows(8).any(|w| w == b"t=status"))
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
    s.noise(30, 10, 30);
    s.start(0);
    s.start(1);
    s.run_until(120_000);
    for at in 0..2 {
        assert_eq!(s.count_logs(at, "is dead"), 0, "{}", s.dump(at));
        assert!(s.count_logs(at, "lost packet(s)") > 0, "{}", s.dump(at));
        assert!(s.count_logs(at, "No pkts missing") > 0, "{}", s.dump(at));
    }
    // Acknowledgements keep the send history short.
    for i in 0..2 {
        let len = s.membership(i).history_len();
        assert!(len < 100, "history {len}");
    }
}

/// Transmits say what they are, and a retransmission is the original datagram again.
#[test]
fn transmits_are_typed_and_retransmissions_repeat_the_original_bytes() {
    let mut s = Sim::new(&["alice", "bob"], 4);
    s.noise(30, 0, 30);
    s.start(0);
    s.start(1);
    s.run_until(60_000);
    let mut retransmitted = 0;
    for h in &s.w.hosts {
        let mut by_seq = std::collections::BTreeMap::new();
        for (_, t, bytes) in &h.transmits {
            let ty = t.msg.get_str("t").unwrap_or("");
            let seq = t.msg.get_str("seq").map(str::to_string);
            match t.kind {
                TransmitKind::Heartbeat => assert_eq!(ty, "status"),
                TransmitKind::Message => assert!(ty != "status" && !ty.starts_with("NS_"), "{ty}"),
                TransmitKind::Control => assert!(ty.starts_with("NS_") && seq.is_none(), "{ty}"),
                TransmitKind::Retransmission => {
                    retransmitted += 1;
                    let seq = seq.clone().expect("a retransmission has its seq");
                    assert_eq!(by_seq.get(&seq), Some(bytes), "seq {seq}");
                }
                // Between two of ours each status goes out again half a keepalive later.
                TransmitKind::HeartbeatCopy => {
                    assert_eq!(ty, "status");
                    let seq = seq.clone().expect("a copy has its seq");
                    assert_eq!(by_seq.get(&seq), Some(bytes), "seq {seq}");
                }
            }
            let copy = t.kind == TransmitKind::HeartbeatCopy;
            assert_eq!(t.is_status(), ty == "status" && !copy);
            if !matches!(
                t.kind,
                TransmitKind::Retransmission | TransmitKind::HeartbeatCopy
            ) {
                if let Some(seq) = seq {
                    by_seq.insert(seq, bytes.clone());
                }
            }
        }
    }
    assert!(retransmitted > 0, "the loss caused no retransmission");
}

#[test]
fn replayed_packets_change_nothing() {
    let mut s = Sim::new(&["alice", "bob"], 5);
    s.start(0);
    s.start(1);
    s.run_until(10_000);
    let old: Vec<Vec<u8>> = s.sent(1).into_iter().take(5).collect();
    let before = s.w.hosts[0].logs.len();
    for b in old {
        s.inject(0, b);
    }
    s.run_until(10_500);
    let new: Vec<&String> = s.w.hosts[0].logs[before..]
        .iter()
        .map(|l| &l.text)
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
    let stale = s.sent(1).into_iter().next().unwrap();
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
        if let Action::Transmit(t) = a {
            forged.push(forger.encode_udp(&t));
        }
    }
    let before_events = s.events(0);
    for b in forged {
        s.inject(0, b);
    }
    for len in [0usize, 1, 4, 16, 100, 300] {
        let junk: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        s.inject(0, junk);
    }
    s.inject(0, b"###\n5:abcde,%%%\n".to_vec());
    s.run_until(6000);
    assert_eq!(s.events(0), before_events);
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
    s.cut(0, 1);
    s.cut(1, 0);
    s.run_until(35_000);
    assert!(s.log_time(0, "node bob: is dead").is_some());
    assert!(s.log_time(1, "node alice: is dead").is_some());
    s.clear_cuts();
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
        s.noise(seed % 25, seed % 7, 1 + seed % 40);
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
    let total: u64 = s.membership(0).reject_counts().values().sum();
    assert_eq!(total, 5000);
    let lines = s.count_logs(0, "malformed");
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
    let mut s = Sim::with_links(&["alice", "bob"], 12, 2);
    s.noise(0, 20, 2);
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
    s.link_down(1);
    s.run_until(30_000);
    assert!(
        s.log_time(0, "Link bob:hb1 dead.").is_some(),
        "{}",
        s.dump(0)
    );
    assert_eq!(s.count_logs(0, "is dead"), 0, "{}", s.dump(0));
    assert_eq!(s.status(0, "bob"), Some(NodeStatus::Active));
    s.links_up();
    s.run_until(32_000);
    assert_eq!(s.count_logs(0, "Link bob:hb1 up."), 2, "{}", s.dump(0));
}

/// Every link change is reported as an event, once, by medium index (two media may share a
/// name), in step with the log lines operators read.
#[test]
fn link_changes_are_events_in_step_with_the_log() {
    let mut s = Sim::with_links(&["alice", "bob"], 12, 2);
    // The harness says every medium works on our side at start.
    s.start(0);
    s.start(1);
    s.run_until(10_000);
    s.link_down(1);
    s.run_until(30_000);
    s.links_up();
    s.run_until(32_000);
    s.crash(1);
    s.run_until(50_000);
    let media = &s.w.config().hacf.media;
    let events: Vec<String> = s.w.hosts[0]
        .events
        .iter()
        .filter_map(|(_, a)| match a {
            HostEvent::LinkStatus { node, link, up } => {
                let ifname = media[*link].kind.link_name();
                assert_eq!(ifname, format!("hb{link}"));
                let word = if *up { "up" } else { "dead" };
                Some(format!("Link {node}:{ifname} {word}."))
            }
            _ => None,
        })
        .collect();
    let logs: Vec<String> = s.w.hosts[0]
        .logs
        .iter()
        .filter(|l| l.text.starts_with("Link "))
        .map(|l| l.text.clone())
        .collect();
    assert_eq!(events, logs);
    // bob's two links come up in the order his first packets happen to arrive.
    let mut events = events;
    events[2..4].sort();
    assert_eq!(
        events,
        [
            "Link alice:hb0 up.",
            "Link alice:hb1 up.",
            "Link bob:hb0 up.",
            "Link bob:hb1 up.",
            "Link bob:hb1 dead.",
            "Link bob:hb1 up.",
            "Link bob:hb0 dead.",
            "Link bob:hb1 dead.",
        ],
        "{}",
        s.dump(0)
    );
}

#[test]
fn late_heartbeat_is_warned_before_deadtime() {
    let mut s = Sim::new(&["alice", "bob"], 13);
    s.start(0);
    s.start(1);
    s.run_until(10_000);
    // bob goes silent for 5 s (warntime 4, deadtime 8), then talks again.
    s.cut(1, 0);
    s.run_until(15_000);
    s.clear_cuts();
    s.run_until(17_000);
    let late: Vec<_> = s.w.hosts[0]
        .logs
        .iter()
        .filter(|l| l.text.contains("Late heartbeat: Node bob: interval"))
        .collect();
    assert_eq!(late.len(), 1, "{}", s.dump(0));
    assert_eq!(late[0].level, LogLevel::Warn);
    assert_eq!(s.count_logs(0, "is dead"), 0);
}

#[test]
fn own_links_follow_the_media_not_our_own_echo() {
    let mut s = Sim::new(&["alice", "bob"], 14);
    s.start(0);
    s.start(1);
    // The runtime says alice's medium works; she never hears herself in this network.
    s.cut(0, 0);
    s.w.with_cluster(0, |c, now| c.set_own_link(now, 0, true));
    s.run_until(30_000);
    assert_eq!(s.count_logs(0, "Link alice:hb0 up."), 1, "{}", s.dump(0));
    assert_eq!(s.count_logs(0, "Link alice:hb0 dead."), 0, "{}", s.dump(0));
    let links = s.membership(0).link_status("alice").unwrap();
    assert_eq!(links, vec![("hb0".to_string(), true)]);
    s.w.with_cluster(0, |c, now| c.set_own_link(now, 0, false));
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

/// CTS's break-communication: `OnlyForTesting` with xmitloss=1, rcvloss=1 and no node allowed
/// on one node partitions it (it neither sends nor hears); both sides declare the other dead;
/// removing the file heals the partition as any heal does.
#[test]
fn only_for_testing_partitions_and_its_removal_heals() {
    const PATH: &str = "/etc/ha.d/OnlyForTesting";
    let mut s = Sim::new(&["alice", "bob"], 11);
    s.start(0);
    s.start(1);
    s.run_until(20_000);
    assert_eq!(s.status(0, "bob"), Some(NodeStatus::Active));
    s.w.with_cluster(0, |c, now| {
        c.set_test_opts(now, Some("xmitloss=1\nrcvloss=1\nallownodes=;\n"), PATH)
    });
    assert!(s.log_time(0, "WARNING: Enabling Test Code").is_some());
    assert!(s
        .log_time(0, "WARNING: Above Options Now Enabled.")
        .is_some());
    let sent_before = s.sent(0).len();
    s.run_until(35_000);
    assert_eq!(
        s.sent(0).len(),
        sent_before,
        "alice sends nothing while the switches drop everything"
    );
    assert!(
        s.log_time(0, "node bob: is dead").is_some(),
        "{}",
        s.dump(0)
    );
    assert!(
        s.log_time(1, "node alice: is dead").is_some(),
        "{}",
        s.dump(1)
    );

    s.w.with_cluster(0, |c, now| c.set_test_opts(now, None, PATH));
    assert!(s.log_time(0, "Test Code Now disabled.").is_some());
    s.run_until(40_000);
    assert!(
        s.log_time(0, "Cluster node bob returning after partition.")
            .is_some(),
        "{}",
        s.dump(0)
    );
    assert_eq!(s.status(0, "bob"), Some(NodeStatus::Active));
    assert_eq!(s.status(1, "alice"), Some(NodeStatus::Active));
}

/// With nodes allowed, 3.0.6 still sends everything and hears only the allowed nodes.
#[test]
fn only_for_testing_allowed_nodes_are_still_heard() {
    const PATH: &str = "/etc/ha.d/OnlyForTesting";
    let mut s = Sim::new(&["alice", "bob", "carol"], 12);
    for i in 0..3 {
        s.start(i);
    }
    s.run_until(20_000);
    s.w.with_cluster(0, |c, now| {
        c.set_test_opts(now, Some("xmitloss=1\nrcvloss=1\nallownodes=bob;\n"), PATH)
    });
    s.run_until(35_000);
    assert_eq!(
        s.status(0, "bob"),
        Some(NodeStatus::Active),
        "{}",
        s.dump(0)
    );
    assert!(
        s.log_time(0, "node carol: is dead").is_some(),
        "{}",
        s.dump(0)
    );
    // Alice still sends: nobody declares her dead.
    assert_eq!(s.status(1, "alice"), Some(NodeStatus::Active));
    assert_eq!(s.status(2, "alice"), Some(NodeStatus::Active));
}
