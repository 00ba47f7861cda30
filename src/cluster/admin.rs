//! Requests from this node's operator tools (`hb_standby`, `hb_takeover`, over the control
//! socket) as `Cluster` inputs. The cluster turns them into the messages 3.0.6's tools write
//! into its FIFO (`ask_resources`, `hb_takeover`) and handles them like its own messages.

use std::fmt;

/// The argument of `hb_standby` / `hb_takeover` (admin.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    All,
    Foreign,
    Local,
    Failback,
}

impl Which {
    pub fn parse(s: &str) -> Option<Which> {
        match s {
            "all" => Some(Which::All),
            "foreign" => Some(Which::Foreign),
            "local" => Some(Which::Local),
            "failback" => Some(Which::Failback),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Which::All => "all",
            Which::Foreign => "foreign",
            Which::Local => "local",
            Which::Failback => "failback",
        }
    }
}

/// An operator's request to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    /// `hb_standby [which]`: give these groups to the peer.
    Standby(Which),
    /// `hb_takeover [which]`: take these groups from the peer.
    Takeover(Which),
}

/// What an accepted request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOutcome {
    /// Sent; the groups move as the request asks.
    Sent,
    /// Sent, but in legacy mode it moves nothing: 3.0.6 accepts it too and only its log
    /// says why (`Standby mode only implemented when nice_failback on`).
    NoEffectInLegacyMode,
}

/// Why an operator's request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// The node was started with `-M`: it has no groups to give or take.
    NoResources,
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::NoResources => {
                f.write_str("this node manages no resources (started with -M)")
            }
        }
    }
}

impl std::error::Error for AdminError {}
