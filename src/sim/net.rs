//! The simulated network: one channel per medium of ha.cf, each carrying a node's messages in
//! that medium's own form, and faults laid over it (loss, duplication, delay, cuts), per medium
//! and per direction.

use crate::config::MediumKind;

/// How a medium carries messages (what the runtime's media do with a `Transmit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediumForm {
    /// UDP (`bcast`, `mcast`, `ucast`): the signed netstring datagram, to every other node.
    Udp,
    /// A serial line: the classic form (`Cluster::encode_classic`), to every other node.
    Serial,
    /// A ping node: each status message becomes an echo request the ping node answers with
    /// the signed `NS_st` naming it; nothing reaches other nodes.
    Ping,
}

impl MediumForm {
    pub fn of(kind: &MediumKind) -> MediumForm {
        match kind {
            MediumKind::Serial { .. } => MediumForm::Serial,
            MediumKind::Ping { .. } | MediumKind::Ping6 { .. } | MediumKind::PingGroup { .. } => {
                MediumForm::Ping
            }
            _ => MediumForm::Udp,
        }
    }
}

/// What a fault does to the packets it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing gets through.
    Cut,
    /// Each copy is lost with `loss_pct`, sent twice with `dup_pct`, delayed up to
    /// `delay_ms` (so packets reorder).
    Lossy {
        loss_pct: u64,
        dup_pct: u64,
        delay_ms: u64,
    },
}

/// A fault on part of the network: `None` fields mean "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The medium (index in ha.cf order).
    pub medium: Option<usize>,
    /// Directed pairs of hosts (from, to) it applies to; empty: every pair.
    pub pairs: Vec<(usize, usize)>,
    pub effect: Effect,
}

impl Fault {
    /// `a` and `b` cannot hear each other, on every medium.
    pub fn partition(side_a: &[usize], side_b: &[usize]) -> Fault {
        let mut pairs = Vec::new();
        for &a in side_a {
            for &b in side_b {
                pairs.push((a, b));
                pairs.push((b, a));
            }
        }
        Fault {
            medium: None,
            pairs,
            effect: Effect::Cut,
        }
    }

    /// Nothing from `from` reaches `to` (one way), on every medium.
    pub fn one_way(from: &[usize], to: &[usize]) -> Fault {
        let pairs = from
            .iter()
            .flat_map(|&a| to.iter().map(move |&b| (a, b)))
            .collect();
        Fault {
            medium: None,
            pairs,
            effect: Effect::Cut,
        }
    }

    /// Every packet everywhere suffers `effect`.
    pub fn everywhere(effect: Effect) -> Fault {
        Fault {
            medium: None,
            pairs: Vec::new(),
            effect,
        }
    }

    /// This medium carries nothing at all.
    pub fn medium_down(medium: usize) -> Fault {
        Fault {
            medium: Some(medium),
            pairs: Vec::new(),
            effect: Effect::Cut,
        }
    }

    fn applies(&self, medium: usize, from: usize, to: usize) -> bool {
        self.medium.is_none_or(|m| m == medium)
            && (self.pairs.is_empty() || self.pairs.contains(&(from, to)))
    }
}

/// An identifier for a fault, to heal it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FaultId(pub u64);

/// The fate of a packet on one medium from one host to another, before randomness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conditions {
    pub cut: bool,
    pub loss_pct: u64,
    pub dup_pct: u64,
    /// A copy arrives `delay_min_ms..=delay_max_ms` after it was sent.
    pub delay_min_ms: u64,
    pub delay_max_ms: u64,
}

/// The media and the faults now in force.
#[derive(Debug, Clone)]
pub struct Network {
    pub media: Vec<MediumForm>,
    /// The delay of every packet without a fault, in ms (inclusive range).
    pub base_delay_ms: (u64, u64),
    /// A host hears its own UDP packets (as on a broadcast medium).
    pub hear_own: bool,
    faults: Vec<(FaultId, Fault)>,
    next_id: u64,
}

impl Network {
    pub fn new(media: Vec<MediumForm>) -> Network {
        Network {
            media,
            base_delay_ms: (1, 5),
            hear_own: false,
            faults: Vec::new(),
            next_id: 1,
        }
    }

    pub fn add(&mut self, fault: Fault) -> FaultId {
        let id = FaultId(self.next_id);
        self.next_id += 1;
        self.faults.push((id, fault));
        id
    }

    /// Put a fault in force under an id the caller chose (scheduled faults name their heal).
    pub fn insert(&mut self, id: FaultId, fault: Fault) {
        self.next_id = self.next_id.max(id.0 + 1);
        self.faults.push((id, fault));
    }

    /// Remove one fault; false if it was not in force.
    pub fn heal(&mut self, id: FaultId) -> bool {
        let before = self.faults.len();
        self.faults.retain(|(f, _)| *f != id);
        self.faults.len() != before
    }

    pub fn heal_all(&mut self) {
        self.faults.clear();
    }

    pub fn faults(&self) -> impl Iterator<Item = &(FaultId, Fault)> {
        self.faults.iter()
    }

    pub fn conditions(&self, medium: usize, from: usize, to: usize) -> Conditions {
        let mut c = Conditions {
            cut: false,
            loss_pct: 0,
            dup_pct: 0,
            delay_min_ms: self.base_delay_ms.0,
            delay_max_ms: self.base_delay_ms.1,
        };
        for (_, f) in self
            .faults
            .iter()
            .filter(|(_, f)| f.applies(medium, from, to))
        {
            match f.effect {
                Effect::Cut => c.cut = true,
                Effect::Lossy {
                    loss_pct,
                    dup_pct,
                    delay_ms,
                } => {
                    c.loss_pct = c.loss_pct.max(loss_pct);
                    c.dup_pct = c.dup_pct.max(dup_pct);
                    c.delay_max_ms = c.delay_max_ms.max(delay_ms);
                }
            }
        }
        c
    }

    /// Some medium between nodes carries `from` → `to` with no fault at all.
    pub fn clean(&self, from: usize, to: usize) -> bool {
        let lossy = self
            .faults
            .iter()
            .any(|(_, f)| matches!(f.effect, Effect::Lossy { .. }) && f.pairs.is_empty());
        !lossy
            && self
                .media
                .iter()
                .enumerate()
                .filter(|(_, m)| **m != MediumForm::Ping)
                .any(|(i, _)| self.faults.iter().all(|(_, f)| !f.applies(i, from, to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_per_medium_and_direction_and_heal() {
        let mut n = Network::new(vec![MediumForm::Udp, MediumForm::Serial]);
        assert!(n.clean(0, 1));
        let one_way = n.add(Fault::one_way(&[0], &[1]));
        assert!(n.conditions(0, 0, 1).cut);
        assert!(n.conditions(1, 0, 1).cut);
        assert!(!n.conditions(0, 1, 0).cut);
        assert!(!n.clean(0, 1));
        assert!(n.clean(1, 0));
        assert!(n.heal(one_way));
        assert!(!n.heal(one_way));
        // One medium down: the other still carries, so the pair is clean.
        let down = n.add(Fault::medium_down(0));
        assert!(n.conditions(0, 1, 0).cut);
        assert!(!n.conditions(1, 1, 0).cut);
        assert!(n.clean(1, 0));
        n.heal(down);
        n.add(Fault::everywhere(Effect::Lossy {
            loss_pct: 10,
            dup_pct: 5,
            delay_ms: 40,
        }));
        let c = n.conditions(1, 0, 1);
        assert_eq!((c.loss_pct, c.dup_pct, c.delay_max_ms), (10, 5, 40));
        assert!(!n.clean(0, 1));
        n.heal_all();
        assert!(n.clean(0, 1));
    }
}
