//! Reading the three configuration files from disk and handing their bytes (any encoding,
//! as 3.0.6 reads them) to the pure parsers; also the local node name.

use std::fs;
use std::os::unix::fs::MetadataExt;

use super::os::paths::Paths;
use crate::config::{self, bytes, Checked, Config, Diagnostic, Severity};

/// The local node name: `--node`, else the first line of `nodeinfo`, else `uname -n`;
/// lowercased like everything in 3.0.6.
/// Any bytes are taken, as 3.0.6 takes them (a Latin-1 host name), in the lossless form of
/// `config::bytes`.
pub fn node_name(cli: Option<&str>, paths: &Paths) -> String {
    use std::os::unix::ffi::OsStrExt;
    if let Some(n) = cli {
        return bytes::canonical(n.trim()).to_ascii_lowercase();
    }
    if let Ok(raw) = fs::read(paths.nodeinfo()) {
        let text = bytes::decode(&raw);
        if let Some(first) = text.lines().next().map(str::trim).filter(|l| !l.is_empty()) {
            return bytes::canonical(first).to_ascii_lowercase();
        }
    }
    nix::unistd::gethostname()
        .ok()
        .map(|h| bytes::decode(h.as_bytes()))
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
    match load_partial(paths, node, manage_resources, local_ifaces) {
        Ok(checked) => checked.config(),
        Err(diags) => (None, diags),
    }
}

/// Like [`load`], keeping what was read even with errors (for `--check`'s machine checks).
/// `Err` when ha.cf or authkeys cannot be read at all.
pub fn load_partial(
    paths: &Paths,
    node: &str,
    manage_resources: bool,
    local_ifaces: Option<&[String]>,
) -> Result<Checked, Vec<Diagnostic>> {
    let hacf_path = paths.hacf();
    let hacf_data = match fs::read(paths.confdir.join("ha.cf")) {
        Ok(t) => t,
        Err(e) => {
            return Err(vec![error(
                &hacf_path,
                format!("Cannot open config file [{}]: {e}", hacf_path.display()),
            )]);
        }
    };
    let ak_path = paths.authkeys();
    let ak_file = paths.confdir.join("authkeys");
    let (ak_data, ak_meta) = match (fs::read(&ak_file), fs::metadata(&ak_file)) {
        (Ok(t), Ok(m)) => (
            t,
            Some((m.mode(), m.uid(), nix::unistd::geteuid().as_raw())),
        ),
        (Err(e), _) | (_, Err(e)) => {
            let mut diags = Vec::new();
            // Still check ha.cf so --check reports every problem.
            let hacf_text = config::decode_file(&hacf_data, &hacf_path, &mut diags);
            let (_, d) = config::hacf::parse(&hacf_text, &hacf_path, node, local_ifaces);
            diags.extend(d);
            diags.push(error(
                &ak_path,
                format!("Cannot open keyfile [{}]: {e}.  Stop.", ak_path.display()),
            ));
            return Err(diags);
        }
    };
    let hr_path = paths.haresources();
    let hr_read = if manage_resources {
        fs::read(paths.confdir.join("haresources"))
    } else {
        Ok(Vec::new())
    };
    let hr_why;
    let hr_data = match &hr_read {
        Ok(data) => Ok(data.as_slice()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(config::Missing::NotFound),
        Err(e) => {
            hr_why = e.to_string();
            Err(config::Missing::Unreadable(&hr_why))
        }
    };
    Ok(config::check_partial(
        &hacf_data,
        &hacf_path,
        &ak_data,
        &ak_path,
        ak_meta,
        hr_data,
        &hr_path,
        node,
        local_ifaces,
        manage_resources,
    ))
}
