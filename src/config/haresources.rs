//! `haresources`: one resource group per line, first word the preferred node.

use std::path::Path;

use super::Diagnostic;

/// One resource: a script name and its `::`-separated arguments (`IPaddr::10.0.0.1/24`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub script: String,
    pub args: Vec<String>,
    /// The word as written in haresources (`10.0.0.1` for an implied IPaddr).
    pub spec: String,
}

/// One haresources line. Its key (first resource, as written) names the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGroup {
    pub line: usize,
    /// Preferred node, lowercased.
    pub node: String,
    pub resources: Vec<Resource>,
}

impl ResourceGroup {
    pub fn key(&self) -> &str {
        &self.resources[0].spec
    }
}

/// Parse haresources. `nodes` are the declared (lowercased) node names.
pub fn parse(
    text: &str,
    path: &Path,
    nodes: &[String],
) -> Result<Vec<ResourceGroup>, Vec<Diagnostic>> {
    let _ = (text, path, nodes);
    unimplemented!("haresources parser")
}
