//! The legacy manager (`auto_failback legacy`, or no `auto_failback` line; resources.md
//! 4.2-4.4, 4.7): groups are asked for with `ip-request` and granted with `ip-request-resp`,
//! taken over when their node dies or stops, given back when it returns, released on a
//! graceful stop. The grant exchange is also how the negotiated manager starts its own groups
//! (it grants them to itself), so its handlers here serve both ([`on_ip_request`],
//! [`on_ip_request_resp`]).
//!
//! 3.0.6's manager is written for a pair. With three or more nodes ours adds rules, so that a
//! dead node's groups run on one node only: the first live node in ha.cf order takes them (the
//! *taker*), asking for them first since another node with another view may run them; a node
//! asking for its own groups waits for every live peer's answer; an owner keeps its group when a
//! third node asks for it; only the last node standing takes its own groups by force.

use std::collections::BTreeSet;

use super::engine::{Engine, Milestone, PendingAnswer, Task};
use crate::wire::messages::{some, AskResources, IpRequest, IpRequestResp, Message};

/// How long a first answer waits for the other peers' (legacy, three or more nodes).
pub const ANSWER_WAIT_MS: u64 = 2_000;
/// A request that no answer came for is sent again this often: messages are retransmitted,
/// but one that crossed a partition outlasting the sender's history is lost for good, and
/// taking the group without an answer could run it twice.
pub const ASK_AGAIN_MS: u64 = 10_000;

/// Three or more nodes: our `ip-request` for `group`, waiting for every live peer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AwaitedGrant {
    group: usize,
    /// The peers whose answer is still due.
    peers: BTreeSet<String>,
    /// Set by the first answer: then the rest are waited for until this time.
    deadline: Option<u64>,
    /// When the request goes out again if answers are still due.
    ask_again_at: u64,
}

/// Who of the cluster is dead for the takeover rules, and our requests for groups.
#[derive(Debug, Default)]
pub(super) struct Takers {
    /// The nodes we consider dead.
    dead: BTreeSet<String>,
    awaiting: Vec<AwaitedGrant>,
}

impl Takers {
    /// Who takes over a dead node's groups: the first live node in ha.cf order (with two
    /// nodes, the survivor).
    fn taker_of(&self, eng: &Engine, dead: &str) -> String {
        eng.nodes
            .iter()
            .find(|n| n.as_str() != dead && !self.dead.contains(n.as_str()))
            .cloned()
            .unwrap_or_else(|| eng.me.clone())
    }

    /// The other nodes we do not consider dead.
    fn live_peers(&self, eng: &Engine) -> BTreeSet<String> {
        eng.nodes
            .iter()
            .filter(|n| **n != eng.me && !self.dead.contains(n.as_str()))
            .cloned()
            .collect()
    }

    /// Ask `peers` for group `g` (`ip-request`) and wait for each answer, or for `deadline`.
    /// A wait already under way for `g` keeps its deadline if sooner: a grant came first (a
    /// holder gave the group back unasked), and a request lost for good must not make us
    /// wait for ever.
    fn ask(&mut self, eng: &mut Engine, g: usize, peers: BTreeSet<String>, deadline: Option<u64>) {
        let earlier = self
            .awaiting
            .iter()
            .find(|a| a.group == g)
            .and_then(|a| a.deadline);
        self.awaiting.retain(|a| a.group != g);
        self.awaiting.push(AwaitedGrant {
            group: g,
            peers,
            deadline: [earlier, deadline].into_iter().flatten().min(),
            ask_again_at: eng.now_ms + ASK_AGAIN_MS,
        });
        send_request(eng, g);
    }

    /// Requests made for `node`'s groups while it was dead are void.
    fn forget_requests_for(&mut self, eng: &Engine, node: &str) {
        self.awaiting
            .retain(|a| eng.groups[a.group].owner() != node);
    }

    fn next_deadline(&self) -> Option<u64> {
        self.awaiting
            .iter()
            .flat_map(|a| [a.deadline, Some(a.ask_again_at)])
            .flatten()
            .min()
    }
}

/// Our `ip-request` for group `g`, to every peer.
fn send_request(eng: &mut Engine, g: usize) {
    eng.send(IpRequest {
        ipaddr: Some(eng.key(g)),
    });
}

/// The legacy manager's state.
#[derive(Debug, Default)]
pub(super) struct Legacy {
    takers: Takers,
}

/// Someone asks for a group (`ip-request`): we give it up if we run it (the site's
/// `local_giveip` first), and answer once released. Both managers.
pub(super) fn on_ip_request(eng: &mut Engine, from: &str, req: &IpRequest) {
    if from == eng.me || eng.stopping {
        return;
    }
    let Some(g) = req.ipaddr.as_deref().and_then(|k| eng.group_by_key(k)) else {
        return;
    };
    if eng.nodes.len() > 2 && eng.is_own_group(g) && eng.groups[g].held {
        // A third node asks for our own group, thinking us dead: we keep it and say so
        // (`ok=no`: a 3.0.6 node ignores such an answer, ours drop the request).
        eng.send(IpRequestResp {
            dest: Some(from.to_string()),
            ipaddr: some(eng.groups[g].key()),
            weown: some("yes"),
            ok: some("no"),
        });
        return;
    }
    let weown = eng.groups[g].held;
    if weown {
        eng.give_to(g, from);
    }
    eng.push(Task::Milestone(Milestone::Answer(PendingAnswer {
        group: g,
        node: from.to_string(),
        weown,
    })));
}

/// What a grant (`ip-request-resp`) meant for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GrantOutcome {
    Nothing,
    /// A peer took its own group, which we held or were taking: we give it up.
    OwnerTookIt,
}

/// A grant, to us or to another node. Both managers; `takers` is the legacy manager's.
pub(super) fn on_ip_request_resp(
    eng: &mut Engine,
    takers: Option<&mut Takers>,
    from: &str,
    resp: &IpRequestResp,
) -> GrantOutcome {
    if eng.stopping {
        return GrantOutcome::Nothing;
    }
    let dest = resp.dest.as_deref().unwrap_or("").to_ascii_lowercase();
    let g = resp.ipaddr.as_deref().and_then(|k| eng.group_by_key(k));
    // A peer takes its own group (it granted it to itself, not seeing us yet): it is its
    // home, we give it up. Two 3.0.6 nodes would both run it.
    if dest != eng.me {
        if let Some(g) = g.filter(|&g| eng.taking_or_held(g) && eng.groups[g].owner() == dest) {
            let key = eng.key(g);
            eng.info(format!(
                "{dest} takes its resource group {key}: giving it up"
            ));
            eng.cancel_take(g);
            eng.enqueue(Task::Give(g));
            return GrantOutcome::OwnerTookIt;
        }
        return GrantOutcome::Nothing;
    }
    let mut none = Takers::default();
    let takers = takers.unwrap_or(&mut none);
    if !resp.granted() {
        // The owner keeps its group: our request for it is over.
        if let Some(g) = g.filter(|&g| eng.groups[g].owner() == from) {
            takers.awaiting.retain(|a| a.group != g);
        }
        return GrantOutcome::Nothing;
    }
    let Some(g) = g else {
        return GrantOutcome::Nothing;
    };
    let key = eng.key(g);
    let weown = resp.weown.as_deref().unwrap_or("");
    eng.info(format!(
        "ip-request-resp: received ip-request-resp {key} OK {weown}"
    ));
    let owner = eng.groups[g].owner().to_string();
    if owner != eng.me && !(takers.dead.contains(&owner) && takers.taker_of(eng, &owner) == eng.me)
    {
        // An answer to a request for a dead node's group, come after it returned.
        return GrantOutcome::Nothing;
    }
    if let Some(pos) = takers.awaiting.iter().position(|a| a.group == g) {
        let a = &mut takers.awaiting[pos];
        // Even a `weown=yes`: another peer may still be stopping the group too.
        a.peers.remove(from);
        if !a.peers.is_empty() {
            a.deadline.get_or_insert(eng.now_ms + ANSWER_WAIT_MS);
            return GrantOutcome::Nothing;
        }
        takers.awaiting.remove(pos);
    } else if owner == eng.me && eng.nodes.len() > 2 && !eng.taking_or_held(g) {
        // Unasked: a holder gives our group back as it hears us again. Another peer may hold
        // it too (taken in another partition) and still be stopping it: ask every other one.
        let mut peers = takers.live_peers(eng);
        peers.remove(from);
        if !peers.is_empty() {
            takers.ask(eng, g, peers, Some(eng.now_ms + ANSWER_WAIT_MS));
            return GrantOutcome::Nothing;
        }
    }
    eng.enqueue(Task::Take(g));
    GrantOutcome::Nothing
}

impl Legacy {
    pub fn poll_timeout(&self) -> Option<u64> {
        self.takers.next_deadline()
    }

    /// Comm-up: ask for our own groups (`active` counts the nodes that are `active`, us
    /// included). Alone, we grant them to ourselves, as 3.0.6 does.
    pub fn comm_up(&mut self, eng: &mut Engine, active: usize) {
        let own = eng.groups_of(&eng.me.clone());
        if own.is_empty() {
            eng.info("No local resources [ResourceManager listkeys] to acquire.".into());
        }
        for g in own {
            if active < 2 {
                eng.grant_to_self(g);
            } else {
                if eng.nodes.len() > 2 {
                    // Wait for every live peer: one that does not run the group must not
                    // send us starting it while another is still stopping it.
                    let peers = self.takers.live_peers(eng);
                    self.takers.ask(eng, g, peers, None);
                } else {
                    send_request(eng, g);
                }
            }
        }
        eng.info("Local Resource acquisition completed.".into());
    }

    /// Any message from `from` (not ourselves): it is alive.
    pub fn peer_heard(&mut self, eng: &mut Engine, from: &str) {
        if self.takers.dead.remove(from) {
            self.hand_over_to_takers(eng);
        }
    }

    pub fn message(
        &mut self,
        eng: &mut Engine,
        gave_up: &mut BTreeSet<String>,
        from: &str,
        msg: &Message,
    ) {
        match msg {
            Message::IpRequest(req) => on_ip_request(eng, from, req),
            Message::IpRequestResp(resp) => {
                on_ip_request_resp(eng, Some(&mut self.takers), from, resp);
            }
            // Standby is a negotiated-mode exchange; every legacy node says so, as 3.0.6 does.
            Message::AskResources(_) => {
                eng.info("Standby mode only implemented when nice_failback on".into());
            }
            // rc.d/hb_takeover of 3.0.6: the other node runs hb_standby with the mirrored set.
            Message::HbTakeover(req) if from != eng.me => mirror_takeover(eng, req),
            // The full takeover of a dead peer (4.7 -> 4.4), own groups included.
            Message::Shutdone(_) if from != eng.me && !eng.stopping => {
                gave_up.insert(from.to_string());
                self.take_over_dead(eng, from);
                self.take_own_missing(eng);
            }
            _ => {}
        }
    }

    /// `node` is heard from again (any status but dead): it no longer counts as dead when
    /// choosing who takes over a dead node's groups.
    pub fn node_alive(&mut self, eng: &mut Engine, node: &str) {
        // A request for its groups made while it was dead is void.
        self.takers.forget_requests_for(eng, node);
        if self.takers.dead.remove(node) {
            self.hand_over_to_takers(eng);
            self.claim_taken_groups(eng);
            self.announce_own_groups(eng);
        }
    }

    /// A peer was declared dead (and fenced if a device applies): its groups are ours now,
    /// or the taker's.
    pub fn node_dead(&mut self, eng: &mut Engine, node: &str) {
        self.take_over_dead(eng, node);
        self.take_own_missing(eng);
    }

    /// A peer we took over is back from a partition: it kept (or took back) its own groups, so
    /// we give them up. Done on both sides, every group ends on exactly one node at once;
    /// 3.0.6 instead restarts both daemons, stopping everything for deadtime and more.
    pub fn node_returned(&mut self, eng: &mut Engine, node: &str) {
        self.takers.dead.remove(node);
        self.takers.forget_requests_for(eng, node);
        if eng.stopping {
            return;
        }
        self.hand_over_to_takers(eng);
        self.hand_over_live_owners_groups(eng, node);
        self.claim_taken_groups(eng);
        self.announce_own_groups(eng);
        for g in eng.groups_of(node) {
            if eng.taking_or_held(g) {
                let key = eng.key(g);
                eng.info(format!("Giving back resource group {key}: {node} is back"));
                eng.cancel_take(g);
                // What 3.0.6 does when the owner's `ip-request` comes: the site's hook first.
                eng.give_to(g, node);
                // Once released, tell it so, as if it had asked: its own `ip-request` may
                // have been lost, and it would wait for an answer for ever.
                eng.push(Task::Milestone(Milestone::Answer(PendingAnswer {
                    group: g,
                    node: node.to_string(),
                    weown: true,
                })));
            }
        }
    }

    pub fn handle_timeout(&mut self, eng: &mut Engine) {
        self.awaited_answers(eng);
    }

    /// Answer a request once the queue reached it (the group is released by then).
    pub fn answer(eng: &mut Engine, a: PendingAnswer) {
        eng.send(IpRequestResp {
            dest: Some(a.node),
            ipaddr: some(eng.groups[a.group].key()),
            weown: some(if a.weown { "yes" } else { "no" }),
            ok: some("OK"),
        });
    }

    /// With three or more nodes: give up a dead node's groups that another live node (first
    /// in ha.cf order) is now responsible for; views converge as nodes hear each other again.
    fn hand_over_to_takers(&mut self, eng: &mut Engine) {
        if eng.nodes.len() < 3 || eng.stopping {
            return;
        }
        let dead: Vec<String> = self.takers.dead.iter().cloned().collect();
        for d in dead {
            let taker = self.takers.taker_of(eng, &d);
            if taker == eng.me {
                continue;
            }
            for g in eng.groups_of(&d) {
                if eng.taking_or_held(g) {
                    let key = eng.key(g);
                    eng.info(format!(
                        "Giving up resource group {key}: {taker} takes over {d}'s groups"
                    ));
                    eng.cancel_take(g);
                    eng.enqueue(Task::Give(g));
                }
            }
        }
    }

    /// With three or more nodes, `returned` heard again after a partition: each of us may
    /// have taken a third node's groups while we could not hear each other, and that node may
    /// be alive again (restarting) without having asked for them yet. Until it does, one of us
    /// keeps them: the one that would take them over were it dead.
    fn hand_over_live_owners_groups(&mut self, eng: &mut Engine, returned: &str) {
        if eng.nodes.len() < 3 || eng.stopping {
            return;
        }
        for g in 0..eng.groups.len() {
            let owner = eng.groups[g].owner().to_string();
            if owner == eng.me || owner == returned || self.takers.dead.contains(&owner) {
                continue;
            }
            let keeper = self.takers.taker_of(eng, &owner);
            if keeper != eng.me && eng.taking_or_held(g) {
                let key = eng.key(g);
                eng.info(format!(
                    "Giving up resource group {key}: {keeper} keeps {owner}'s groups until {owner} asks for them"
                ));
                eng.cancel_take(g);
                eng.enqueue(Task::Give(g));
            }
        }
    }

    /// Three or more nodes: a dead node's groups that we are to take are asked for first
    /// (`ip-request`), since another live node may still run them (it took them while our
    /// view was different); its answer comes once it has stopped them.
    fn request_groups_of(&mut self, eng: &mut Engine, node: &str) {
        let peers = self.takers.live_peers(eng);
        for g in eng.groups_of(node) {
            if eng.taking_or_held(g) || self.takers.awaiting.iter().any(|a| a.group == g) {
                continue;
            }
            let key = eng.key(g);
            eng.info(format!("Taking over resource group {key}"));
            if peers.is_empty() {
                eng.enqueue(Task::Take(g));
                continue;
            }
            self.takers.ask(eng, g, peers.clone(), None);
        }
    }

    /// Own groups whose awaited answers are all in (a peer died) or whose wait ran out.
    fn awaited_answers(&mut self, eng: &mut Engine) {
        let now = eng.now_ms;
        let dead = self.takers.dead.clone();
        let mut ready = Vec::new();
        self.takers.awaiting.retain_mut(|a| {
            a.peers.retain(|p| !dead.contains(p));
            let go = a.peers.is_empty() || a.deadline.is_some_and(|d| d <= now);
            if go {
                ready.push(a.group);
            }
            !go
        });
        for a in self
            .takers
            .awaiting
            .iter_mut()
            .filter(|a| a.ask_again_at <= now)
        {
            a.ask_again_at = now + ASK_AGAIN_MS;
            let key = eng.key(a.group);
            let due: Vec<&str> = a.peers.iter().map(String::as_str).collect();
            eng.info(format!(
                "No answer to ip-request for {key} from {}: asking again",
                due.join(", ")
            ));
            send_request(eng, a.group);
        }
        for g in ready {
            // Still ours to take: our own group, or a dead node's whose taker we still are.
            let owner = eng.groups[g].owner().to_string();
            if owner == eng.me
                || (self.takers.dead.contains(&owner)
                    && self.takers.taker_of(eng, &owner) == eng.me)
            {
                eng.enqueue(Task::Take(g));
            }
        }
    }

    /// Three or more nodes, a node heard again: it may have taken the same dead node's groups
    /// as we did while we could not hear each other. Ask for each such group we hold: a holder
    /// other than us gives it up (and says so), which leaves it on one node.
    fn claim_taken_groups(&mut self, eng: &mut Engine) {
        if eng.nodes.len() < 3 || eng.stopping {
            return;
        }
        for g in 0..eng.groups.len() {
            let owner = eng.groups[g].owner();
            if owner != eng.me && self.takers.dead.contains(owner) && eng.groups[g].held {
                let m = IpRequest {
                    ipaddr: some(eng.groups[g].key()),
                };
                eng.send(m);
            }
        }
    }

    /// Three or more nodes, a node we had declared dead heard again: our own groups we run or
    /// are taking may have been taken by force (we were the last one standing), and the node
    /// heard again may have taken them over while it thought us dead. Our `active`, which
    /// makes it give them back, can be far off (our comm-up waits for every node's status), so
    /// we say at once that we run them: a grant to ourselves, what a lone node sends at
    /// comm-up, makes any other holder give them up (`on_ip_request_resp`).
    fn announce_own_groups(&self, eng: &mut Engine) {
        if eng.nodes.len() < 3 || eng.stopping {
            return;
        }
        for g in eng.groups_of(&eng.me.clone()) {
            if eng.taking_or_held(g) {
                eng.grant_to_self(g);
            }
        }
    }

    /// Legacy takeover after `node` died or stopped: the groups of every dead node that we
    /// are now the taker of (a taker that died passes its charge on).
    fn take_over_dead(&mut self, eng: &mut Engine, node: &str) {
        self.takers.dead.insert(node.to_string());
        self.awaited_answers(eng);
        let dead: Vec<String> = self.takers.dead.iter().cloned().collect();
        for d in dead {
            let taker = self.takers.taker_of(eng, &d);
            if taker == eng.me && eng.nodes.len() > 2 {
                self.request_groups_of(eng, &d);
            } else if taker == eng.me {
                take_groups_of(eng, &d);
            } else if d == node {
                eng.info(format!("Resources of {d} are taken over by {taker}."));
            }
        }
    }

    /// Our own groups too, should any be missing (forced acquire, 4.4 step 4).
    fn take_own_missing(&mut self, eng: &mut Engine) {
        // With three or more nodes a live peer may run them (ours were away): we ask for
        // them at comm-up instead; only the last node standing takes them by force.
        if eng.nodes.len() > 2 && !self.takers.live_peers(eng).is_empty() {
            return;
        }
        for g in eng.groups_of(&eng.me.clone()) {
            if !eng.groups[g].held {
                eng.enqueue(Task::Take(g));
            }
        }
    }
}

fn take_groups_of(eng: &mut Engine, node: &str) {
    let theirs = eng.groups_of(node);
    if theirs.is_empty() {
        return;
    }
    eng.info(format!("Resources being acquired from {node}."));
    for g in theirs {
        if !eng.groups[g].held {
            let key = eng.key(g);
            eng.info(format!("Taking over resource group {key}"));
            eng.enqueue(Task::Take(g));
        }
    }
}

/// rc.d/hb_takeover of 3.0.6 (both managers): the other node runs hb_standby with the
/// mirrored set.
pub(super) fn mirror_takeover(eng: &mut Engine, req: &crate::wire::messages::HbTakeover) {
    let mirrored = match req.rsc_hold.as_deref() {
        Some("local") => "foreign",
        Some("foreign") => "local",
        _ => "all",
    };
    eng.send(AskResources {
        rsc_hold: some(mirrored),
        info: some("me"),
    });
}
