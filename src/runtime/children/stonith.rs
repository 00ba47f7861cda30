//! The runtime side of STONITH (`cluster::stonith` decides): where cluster-glue's `stonith`
//! command is, the device's description for the log lines, and the child run of a reset or
//! status check.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cluster::stonith::{Device, StonithOp};
use crate::config::Stonith as StonithConfig;
use crate::runtime::children::scripts::Job;

/// cluster-glue's command-line tool (Debian: /usr/sbin/stonith); else found on PATH.
pub fn program() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/stonith");
    if p.exists() {
        p
    } else {
        PathBuf::from("stonith")
    }
}

/// The configured device, described as its plugin describes itself (`stonith -t T -m`,
/// the first `shortdesc`, e.g. `NULL STONITH device`): 3.0.6 logs that name.
pub fn device(c: Option<&StonithConfig>) -> Option<Device> {
    let c = c?;
    let device_type = match c {
        StonithConfig::File { device_type, .. } | StonithConfig::Host { device_type, .. } => {
            device_type
        }
    };
    let out = Command::new(program())
        .args(["-t", device_type, "-m"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok();
    let description = out.and_then(|o| shortdesc(&String::from_utf8_lossy(&o.stdout)));
    Some(Device::from_config(c, description))
}

/// The text of the first `<shortdesc ...>...</shortdesc>` of a plugin's meta-data.
fn shortdesc(meta: &str) -> Option<String> {
    let start = meta.find("<shortdesc")?;
    let rest = &meta[start..];
    let open_end = rest.find('>')? + 1;
    let close = rest.find("</shortdesc>")?;
    (open_end <= close).then(|| rest[open_end..close].trim().to_string())
}

/// The child run of a reset or status check.
pub fn job(id: u64, op: &StonithOp, args: Vec<String>, time_limit_ms: u64) -> Job {
    let label = match op {
        StonithOp::Reset(node) => format!("STONITH {node}"),
        StonithOp::Status => "STONITH-stat".to_string(),
    };
    Job {
        id,
        program: program(),
        args,
        env: Vec::new(),
        timeout: Duration::from_millis(time_limit_ms),
        label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_description_of_a_plugins_meta_data() {
        let meta = "<resource-agent name=\"null\">\n<longdesc lang=\"en\">\nDummy\n</longdesc>\n\
                    <shortdesc lang=\"en\">NULL STONITH device</shortdesc>\n<parameters>\
                    <shortdesc lang=\"en\">\nHostlist</shortdesc>";
        assert_eq!(shortdesc(meta).as_deref(), Some("NULL STONITH device"));
        assert_eq!(shortdesc("no meta-data"), None);
    }
}
