//! The command-line options every mode of `heartbeat` and the event loop share.

use std::net::IpAddr;

use super::os::paths::Paths;
use super::startup;

#[derive(Debug, Clone)]
pub struct Options {
    pub paths: Paths,
    pub node: Option<String>,
    pub bind: Option<IpAddr>,
    pub foreground: bool,
    pub debug: u32,
    pub manage_resources: bool,
    pub realtime: bool,
    pub verbose: bool,
    /// `--metrics-file`: a node_exporter textfile-collector file, rewritten periodically.
    pub metrics_file: Option<std::path::PathBuf>,
}

/// How often `--metrics-file` is rewritten.
pub const METRICS_FILE_INTERVAL_MS: u64 = 15_000;

impl Options {
    pub fn node_name(&self) -> String {
        startup::node_name(self.node.as_deref(), &self.paths)
    }
}
