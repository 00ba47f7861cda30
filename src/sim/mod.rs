//! One deterministic simulation harness for whole clusters: a simulated clock, a network of
//! the configuration's media (each carrying messages in its own form: netstring datagrams,
//! the classic form on serial lines, echoes from ping nodes) with loss, delay, duplication and
//! partitions (one-way too, per medium), hosts each running a real [`Cluster`] built from a
//! real [`Config`], simulated resource scripts that record every call with its simulated
//! times, the operator's `hb_standby` / `hb_takeover`, crashes, restarts and graceful stops,
//! and the invariants (a group never runs on two nodes that hear each other; every group runs
//! somewhere once things are quiet; a node runs what it says it holds).
//!
//! Everything random comes from one seed ([`Rng`]), so a run replays exactly. Like
//! `cluster`, it reads no clock, file or socket: `heartbeat --simulate`, the simulation test
//! suites and anything else drive it by scheduling [`Event`]s and stepping the [`World`].
//!
//! [`Cluster`]: crate::cluster::Cluster

pub mod net;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod scripts;
pub mod world;

pub use net::{Effect, Fault, FaultId, MediumForm, Network};
pub use rng::Rng;
pub use scripts::{Outcome, ScriptCall, ScriptModel, ScriptTimes};
pub use world::{Event, Host, HostEvent, LogLine, Violation, ViolationKind, World, EPOCH_SECS};

use std::path::Path;

use crate::config::{self, Config, Diagnostic};

/// The configuration of a whole cluster from the texts of its three files, with the real
/// parsers. The local node's name does not matter to a simulation of every node: the first
/// `node` of ha.cf stands for it. Interfaces and the key file's permissions are not checked
/// (they are facts of one machine). Errors are the parsers' diagnostics, with file and line.
pub fn config_from_texts(
    hacf: &[u8],
    authkeys: &[u8],
    haresources: &[u8],
    dir: &Path,
) -> Result<Config, Vec<Diagnostic>> {
    let hacf_path = dir.join("ha.cf");
    let mut diags = Vec::new();
    let text = config::decode_file(hacf, &hacf_path, &mut diags);
    let (first, _) = config::hacf::parse_partial(&text, &hacf_path, "", None, true);
    let Some(me) = first.nodes.first().cloned() else {
        return Err(vec![Diagnostic::error(
            &hacf_path,
            0,
            "no `node` line: there is no cluster to simulate",
        )]);
    };
    let (cfg, diags) = config::check(
        hacf,
        &hacf_path,
        authkeys,
        &dir.join("authkeys"),
        None,
        Ok(haresources),
        &dir.join("haresources"),
        &me,
        None,
        true,
    );
    cfg.ok_or(diags)
}

#[cfg(test)]
mod tests;
