//! Our send history: the last sequenced messages as sent (envelope and inner signature
//! included), so a retransmission is the original message again (wire-protocol.md 10.2, 11);
//! each medium encodes it as it encoded the original, byte for byte the same while the keys
//! are (a reload that changes them signs a retransmission with the new key).

use std::collections::VecDeque;

/// 3.0.6 keeps at most this many sequenced messages.
pub const MAX_HISTORY: usize = 500;

#[derive(Debug, Clone)]
struct Sent<T> {
    seq: u64,
    item: T,
    /// Monotonic ms of the last (re)transmission.
    last_sent: u64,
}

/// The history of `T`s (the cluster keeps `Msg`s).
#[derive(Debug)]
pub struct SendHistory<T> {
    sent: VecDeque<Sent<T>>,
}

impl<T> Default for SendHistory<T> {
    fn default() -> Self {
        SendHistory {
            sent: VecDeque::new(),
        }
    }
}

/// What to do with one retransmission request.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, T> {
    Resend(&'a T),
    /// Older than anything kept: answer with `NS_nak_rexmit` ("seqno too low").
    TooLow,
    /// Never sent: ignore with a warning.
    TooHigh,
    /// Re-sent very recently: ignore.
    RecentlySent,
    /// Inside the kept range but not stored: answer "seqno not found".
    NotFound,
}

impl<T> SendHistory<T> {
    pub fn push(&mut self, seq: u64, item: T, now: u64) {
        self.sent.push_back(Sent {
            seq,
            item,
            last_sent: now,
        });
        while self.sent.len() > MAX_HISTORY {
            self.sent.pop_front();
        }
    }

    /// Forget everything every live peer has acknowledged.
    pub fn trim_through(&mut self, acked: u64) {
        while self.sent.front().is_some_and(|s| s.seq <= acked) {
            self.sent.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    pub fn lowest(&self) -> Option<u64> {
        self.sent.front().map(|s| s.seq)
    }

    /// Look a number up for a retransmission; marks it re-sent at `now` when returned.
    pub fn lookup(
        &mut self,
        seq: u64,
        highest_sent: u64,
        now: u64,
        min_interval: u64,
    ) -> Lookup<'_, T> {
        if seq > highest_sent {
            return Lookup::TooHigh;
        }
        match self.sent.front() {
            None => return Lookup::TooLow,
            Some(first) if seq < first.seq => return Lookup::TooLow,
            _ => {}
        }
        match self.sent.iter_mut().find(|s| s.seq == seq) {
            None => Lookup::NotFound,
            Some(s) if now.saturating_sub(s.last_sent) < min_interval => Lookup::RecentlySent,
            Some(s) => {
                s.last_sent = now;
                Lookup::Resend(&s.item)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_rules() {
        let mut h = SendHistory::<Vec<u8>>::default();
        for s in 1..=5 {
            h.push(s, vec![s as u8], 0);
        }
        h.trim_through(2);
        assert_eq!(h.lowest(), Some(3));
        assert_eq!(h.lookup(2, 5, 1000, 240), Lookup::TooLow);
        assert_eq!(h.lookup(6, 5, 1000, 240), Lookup::TooHigh);
        assert_eq!(h.lookup(4, 5, 1000, 240), Lookup::Resend(&vec![4]));
        assert_eq!(h.lookup(4, 5, 1100, 240), Lookup::RecentlySent);
        assert_eq!(h.lookup(4, 5, 1300, 240), Lookup::Resend(&vec![4]));
    }

    #[test]
    fn bounded() {
        let mut h = SendHistory::<Vec<u8>>::default();
        for s in 1..=(MAX_HISTORY as u64 + 20) {
            h.push(s, Vec::new(), 0);
        }
        assert_eq!(h.len(), MAX_HISTORY);
        assert_eq!(h.lowest(), Some(21));
    }
}
