//! The sans-IO cluster state machine: membership, sequencing, retransmission, resource
//! management, and the node (`Cluster`) that joins them. It takes (time, input) and queues
//! actions; it never reads the clock, touches a socket or spawns a process.

pub mod admin;
pub mod clients;
pub mod history;
pub mod log_level;
pub mod membership;
pub mod node;
pub mod notifications;
pub mod now;
pub mod resources;
pub mod sequence;
pub mod stonith;
pub mod testopts;

pub use admin::{Admin, AdminError, AdminOutcome, Which};
pub use log_level::LogLevel;
pub use membership::{
    Action, Identity, Membership, NodeStatus, NodeTiming, Params, Transmit, TransmitKind,
};
pub use node::{Cluster, ClusterAction};
pub use now::Now;
