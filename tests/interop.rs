//! Our daemon beside a real Heartbeat 3.0.6, `crm off`, for md5, sha1 and crc, over ucast and
//! over bcast. Each case gets its own pair of namespaces: the real node `alice` in `PREFIX-a`
//! (NET.1), our node `bob` in `PREFIX-b` (NET.2). The three methods of one medium run in
//! parallel threads of one test, so a medium costs the time of one case (about 20 s).
//!
//! One case, in order:
//! 1. both start; each logs the other `active` within initdead, and `cl_status nodestatus bob`
//!    on alice prints `active`;
//! 2. `carol`, a third node (our binary, NET.3 on bob's host, `--bind NET.3`) whose authkeys has
//!    a different key under the same index, talks to both for a while: alice logs
//!    `authtoken does not match`, bob logs a rejection, and nothing changes. carol is declared
//!    only in her own ha.cf: declared everywhere, alice and bob would wait for her until
//!    initdead and then declare her dead, which is no rejection at all. Her ha.cf uses ucast
//!    (to NET.1 and NET.2) in the bcast case as well, so that she needs no broadcast socket
//!    of her own beside bob's;
//! 3. SIGKILL bob: alice declares him dead after deadtime (checked from both sides);
//! 4. restart bob: alice logs `Heartbeat restart on node bob` (a higher generation), both active;
//! 5. SIGKILL alice: bob declares her dead after deadtime;
//! 6. restart alice: bob logs `Heartbeat restart on node alice`, both active again.
//!
//! Kills wait until the victim has run for `Timing::SETTLE`: 3.0.6 advertises deadtime + 2 s
//! during its first 5 s, which would blur the timing bounds.

#[macro_use]
mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;

#[derive(Clone, Copy, Debug)]
enum Media {
    Ucast,
    Bcast,
}

struct Case {
    media: Media,
    method: AuthMethod,
    prefix: String,
    net: String,
}

fn cases(media: Media, tag: &str, net_base: u8) -> Vec<(String, Case)> {
    AuthMethod::ALL
        .iter()
        .enumerate()
        .map(|(i, &method)| {
            let prefix = format!("hbl-{tag}-{}", method.name());
            let case = Case {
                media,
                method,
                prefix: prefix.clone(),
                net: format!("10.250.{}", net_base + i as u8),
            };
            (format!("{media:?} {}", method.name()), case)
        })
        .collect()
}

#[test]
fn ucast_md5_sha1_crc() {
    if require_root_or_skip("interop::ucast_md5_sha1_crc") {
        run_parallel(cases(Media::Ucast, "u", 21), run_case);
    }
}

#[test]
fn bcast_md5_sha1_crc() {
    if require_root_or_skip("interop::bcast_md5_sha1_crc") {
        run_parallel(cases(Media::Bcast, "b", 31), run_case);
    }
}

fn run_case(c: Case) {
    let timing = Timing::FAST;
    let lab = NetnsPair::new(&c.prefix, &c.net);
    let tmp = TestDir::new(&c.prefix);
    let (ns_a, ns_b) = (lab.ns_a(), lab.ns_b());
    let (addr_a, addr_b, addr_c) = (lab.addr_a(), lab.addr_b(), lab.addr(3));

    let ucast = ucast_lines("hb0", &[&addr_a, &addr_b]);
    let media = match c.media {
        Media::Ucast => ucast.clone(),
        Media::Bcast => vec!["bcast hb0".to_string()],
    };
    let auth = Auth::lab(c.method);
    let hacf = HaCf::new(&["alice", "bob"], &media).udpport(694);
    let (da, db, dc) = (tmp.node("alice"), tmp.node("bob"), tmp.node("carol"));
    da.write_config(&hacf, &auth, "");
    db.write_config(&hacf, &auth, "");
    let carol_cf = HaCf::new(&["alice", "bob", "carol"], &ucast).udpport(694);
    dc.write_config(&carol_cf, &auth.wrong(), "");
    lab.add_addr(&ns_b, 3);
    // A broadcast receiver cannot be bound to one unicast address.
    let bob_bind = match c.media {
        Media::Ucast => Some(addr_b.as_str()),
        Media::Bcast => None,
    };

    // 1. Both up and active.
    let t0 = Instant::now();
    let mut alice = RealNode::start(&da, &ns_a);
    let mut bob = OurNode::start(&db, Some(&ns_b), bob_bind);
    let initdead_left = || {
        (t0 + timing.initdead + Duration::from_secs(1)).saturating_duration_since(Instant::now())
    };
    or_dump!(
        wait_for_log(
            &alice.log(),
            "Status update for node bob: status active",
            initdead_left()
        ),
        alice,
        bob
    );
    or_dump!(
        wait_for_log(
            &bob.log(),
            "Status update for node alice: status active",
            initdead_left()
        ),
        alice,
        bob
    );
    or_dump!(
        wait_real_nodestatus(&alice, "bob", "active", Duration::from_secs(5)),
        alice,
        bob
    );

    // 2. carol, with the wrong key, changes nothing.
    let (ma, mb) = (log_mark(&alice.log()), log_mark(&bob.log()));
    let mut carol = OurNode::start(&dc, Some(&ns_b), Some(&addr_c));
    let five = Duration::from_secs(5);
    or_dump!(
        wait_for_log_from(&alice.log(), ma, "authtoken does not match", five),
        alice,
        bob,
        carol
    );
    or_dump!(
        wait_for_any_log_from(&bob.log(), mb, AUTH_REJECTION, five),
        alice,
        bob,
        carol
    );
    thread::sleep(Duration::from_secs(1));
    assert!(
        carol.is_running(),
        "carol stopped by herself\n{}",
        dump(&mut [&mut carol])
    );
    carol.kill();
    for log in [alice.log(), bob.log()] {
        for needle in ["Status update for node carol", "Link carol:", "is dead"] {
            let lines = log_lines_from(&log, 0, needle);
            assert!(lines.is_empty(), "{}: {lines:#?}", log.display());
        }
    }
    or_dump!(
        wait_real_nodestatus(&alice, "bob", "active", Duration::ZERO),
        alice,
        bob
    );

    // 3. SIGKILL our node: the real one declares it dead after deadtime.
    settle(bob.uptime(), Timing::SETTLE);
    let ma = log_mark(&alice.log());
    let bob_gen = db.generation();
    let t_kill = Instant::now();
    bob.kill();
    let late = timing.death_window().1 + Duration::from_secs(2);
    or_dump!(
        wait_for_log_from(&alice.log(), ma, "node bob: is dead", late),
        alice,
        bob
    );
    assert_death_time(t_kill.elapsed(), &timing, "real alice about our bob");
    or_dump!(
        wait_real_nodestatus(&alice, "bob", "dead", Duration::from_secs(2)),
        alice,
        bob
    );

    // 4. Restart our node: accepted as a restart (generation grows), both active.
    let (ma, mb) = (log_mark(&alice.log()), log_mark(&bob.log()));
    bob.restart();
    let limit = timing.initdead + Duration::from_secs(1);
    for (log, from, needle) in [
        (alice.log(), ma, "Heartbeat restart on node bob"),
        (alice.log(), ma, "Status update for node bob: status active"),
        (bob.log(), mb, "Status update for node alice: status active"),
    ] {
        or_dump!(wait_for_log_from(&log, from, needle, limit), alice, bob);
    }
    let bob_gen_now = db.generation();
    assert!(
        matches!((bob_gen, bob_gen_now), (Some(g0), Some(g1)) if g1 > g0),
        "our hb_generation must grow across a restart: {bob_gen:?} -> {bob_gen_now:?}"
    );
    or_dump!(
        wait_real_nodestatus(&alice, "bob", "active", Duration::from_secs(5)),
        alice,
        bob
    );

    // 5. SIGKILL the real node: ours declares it dead after deadtime.
    settle(alice.uptime(), Timing::SETTLE);
    let mb = log_mark(&bob.log());
    let alice_gen = da.generation();
    let t_kill = Instant::now();
    alice.kill();
    or_dump!(
        wait_for_log_from(&bob.log(), mb, "node alice: is dead", late),
        alice,
        bob
    );
    assert_death_time(t_kill.elapsed(), &timing, "our bob about real alice");

    // 6. Restart the real node: ours accepts it as a restart, both active.
    let (ma, mb) = (log_mark(&alice.log()), log_mark(&bob.log()));
    alice.restart();
    for (log, from, needle) in [
        (bob.log(), mb, "Heartbeat restart on node alice"),
        (bob.log(), mb, "Status update for node alice: status active"),
        (alice.log(), ma, "Status update for node bob: status active"),
    ] {
        or_dump!(wait_for_log_from(&log, from, needle, limit), alice, bob);
    }
    let alice_gen_now = da.generation();
    assert!(
        matches!((alice_gen, alice_gen_now), (Some(g0), Some(g1)) if g1 > g0),
        "real hb_generation: {alice_gen:?} -> {alice_gen_now:?}"
    );
    or_dump!(
        wait_real_nodestatus(&alice, "bob", "active", Duration::from_secs(5)),
        alice,
        bob
    );

    // Over the whole run: carol never counted, and each node declared dead exactly once.
    for (log, dead) in [
        (alice.log(), "node bob: is dead"),
        (bob.log(), "node alice: is dead"),
    ] {
        for needle in ["Status update for node carol", "Link carol:"] {
            let lines = log_lines_from(&log, 0, needle);
            assert!(lines.is_empty(), "{}: {lines:#?}", log.display());
        }
        let deaths = log_lines_from(&log, 0, "is dead");
        assert!(
            deaths.len() == 1 && deaths[0].contains(dead),
            "{}: expected one `{dead}`, got {deaths:#?}",
            log.display()
        );
    }
}
