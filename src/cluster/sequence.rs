//! Per-sender receive bookkeeping (wire-protocol.md 9.3): last in-order sequence number,
//! missing numbers waiting for retransmission, and when to acknowledge.

use std::collections::BTreeMap;

/// Largest gap handled by retransmission; beyond it 3.0.6 resets its state for the sender.
pub const MAX_GAP: u64 = 250;

/// What the receive rule decided for one sequenced message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqVerdict {
    /// In sequence (or the first one seen): process it.
    InOrder,
    /// Ahead of the last one: process it; these numbers are now missing.
    Gap {
        first_missing: u64,
        last_missing: u64,
    },
    /// A missing number arrived: process it.
    Filled { none_left: bool },
    /// Too far ahead: state was reset, process it.
    Reset,
    /// Same number as the last one: a duplicate (refreshes the link only).
    Duplicate,
    /// Older and not missing: an old duplicate or a replay; drop silently.
    Old,
}

#[derive(Debug, Clone, Default)]
pub struct SeqWindow {
    /// Last in-order sequence number; None after a reset.
    pub last_seq: Option<u64>,
    /// Missing number -> monotonic ms when the next retransmission request is due.
    pub missing: BTreeMap<u64, u64>,
    /// Highest sequence number acknowledged to the sender so far.
    pub acked: u64,
}

impl SeqWindow {
    pub fn reset(&mut self) {
        *self = SeqWindow::default();
    }

    /// Apply the receive rule to sequence number `s`. `request_at` gives the due time of the
    /// first retransmission request for each newly missing number.
    pub fn accept(&mut self, s: u64, mut request_at: impl FnMut() -> u64) -> SeqVerdict {
        let last = match self.last_seq {
            None => {
                self.last_seq = Some(s);
                return SeqVerdict::InOrder;
            }
            Some(l) => l,
        };
        if s == last.wrapping_add(1) {
            self.last_seq = Some(s);
            SeqVerdict::InOrder
        } else if s == last {
            SeqVerdict::Duplicate
        } else if s > last {
            if s - last > MAX_GAP {
                self.reset();
                self.last_seq = Some(s);
                return SeqVerdict::Reset;
            }
            for n in last + 1..s {
                self.missing.insert(n, request_at());
            }
            self.last_seq = Some(s);
            SeqVerdict::Gap {
                first_missing: last + 1,
                last_missing: s - 1,
            }
        } else if self.missing.remove(&s).is_some() {
            SeqVerdict::Filled {
                none_left: self.missing.is_empty(),
            }
        } else {
            SeqVerdict::Old
        }
    }

    /// Highest number up to which everything has arrived.
    pub fn contiguous(&self) -> Option<u64> {
        match self.missing.keys().next() {
            Some(&first_hole) => Some(first_hole.saturating_sub(1)),
            None => self.last_seq,
        }
    }

    /// Stop asking for a number (the sender cannot retransmit it).
    pub fn give_up(&mut self, s: u64) -> bool {
        self.missing.remove(&s).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_gap_fill_duplicate_old() {
        let mut w = SeqWindow::default();
        assert_eq!(w.accept(5, || 0), SeqVerdict::InOrder);
        assert_eq!(w.accept(6, || 0), SeqVerdict::InOrder);
        assert_eq!(w.accept(6, || 0), SeqVerdict::Duplicate);
        assert_eq!(
            w.accept(9, || 7),
            SeqVerdict::Gap {
                first_missing: 7,
                last_missing: 8
            }
        );
        assert_eq!(w.contiguous(), Some(6));
        assert_eq!(w.accept(8, || 0), SeqVerdict::Filled { none_left: false });
        assert_eq!(w.accept(8, || 0), SeqVerdict::Old);
        assert_eq!(w.accept(7, || 0), SeqVerdict::Filled { none_left: true });
        assert_eq!(w.contiguous(), Some(9));
        assert_eq!(w.accept(3, || 0), SeqVerdict::Old);
    }

    #[test]
    fn huge_gap_resets() {
        let mut w = SeqWindow::default();
        w.accept(1, || 0);
        assert_eq!(w.accept(1 + MAX_GAP + 1, || 0), SeqVerdict::Reset);
        assert!(w.missing.is_empty());
        assert_eq!(w.accept(MAX_GAP + 3, || 0), SeqVerdict::InOrder);
    }
}
