//! The time a `Cluster` is given with every input.

/// The two clocks the protocol needs: a monotonic one for timers and the wall clock for the
/// `ts` field. Supplied by the caller (the runtime, or a simulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Now {
    pub mono_ms: u64,
    pub unix_secs: u64,
}
