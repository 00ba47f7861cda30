//! Reading the three configuration files from disk and handing their text to the pure
//! parsers; also the local node name.

use std::fs;
use std::os::unix::fs::MetadataExt;

use super::paths::Paths;
use crate::config::{self, Config, Diagnostic, Severity};

/// The local node name: `--node`, else the first line of `nodeinfo`, else `uname -n`;
/// lowercased like everything in 3.0.6.
pub fn node_name(cli: Option<&str>, paths: &Paths) -> String {
    if let Some(n) = cli {
        return n.trim().to_ascii_lowercase();
    }
    if let Ok(text) = fs::read_to_string(paths.nodeinfo()) {
        if let Some(first) = text.lines().next().map(str::trim).filter(|l| !l.is_empty()) {
            return first.to_ascii_lowercase();
        }
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
        .to_ascii_lowercase()
}

fn error(file: &std::path::Path, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_path_buf(),
        line: 0,
        message,
    }
}

/// Read and check everything. `manage_resources` false (`-M`) skips haresources.
/// `local_ifaces` lists the interfaces that exist (None: do not check).
pub fn load(
    paths: &Paths,
    node: &str,
    manage_resources: bool,
    local_ifaces: Option<&[String]>,
) -> (Option<Config>, Vec<Diagnostic>) {
    let hacf_path = paths.hacf();
    let hacf_text = match fs::read_to_string(paths.confdir.join("ha.cf")) {
        Ok(t) => t,
        Err(e) => {
            return (
                None,
                vec![error(
                    &hacf_path,
                    format!("Cannot open config file [{}]: {e}", hacf_path.display()),
                )],
            );
        }
    };
    let ak_path = paths.authkeys();
    let ak_file = paths.confdir.join("authkeys");
    let (ak_text, ak_meta) = match (fs::read_to_string(&ak_file), fs::metadata(&ak_file)) {
        (Ok(t), Ok(m)) => (
            t,
            Some((m.mode(), m.uid(), nix::unistd::geteuid().as_raw())),
        ),
        (Err(e), _) | (_, Err(e)) => {
            let mut diags = Vec::new();
            // Still check ha.cf so --check reports every problem.
            let (_, d) = config::hacf::parse(&hacf_text, &hacf_path, node, local_ifaces);
            diags.extend(d);
            diags.push(error(
                &ak_path,
                format!("Cannot open keyfile [{}]: {e}.  Stop.", ak_path.display()),
            ));
            return (None, diags);
        }
    };
    let hr_path = paths.haresources();
    let hr_text = if manage_resources {
        fs::read_to_string(paths.confdir.join("haresources")).ok()
    } else {
        None
    };
    config::check(
        &hacf_text,
        &hacf_path,
        &ak_text,
        &ak_path,
        ak_meta,
        hr_text.as_deref(),
        &hr_path,
        node,
        local_ifaces,
        manage_resources,
    )
}
