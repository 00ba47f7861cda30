//! The environment the original gives resource scripts, rc.d hooks and its helpers
//! (resources.md 7.3): every ha.cf value as written as `HA_<directive>`, the fixed paths, the
//! log destinations, and, for a run caused by a message, its string fields as `HA_<field>`.

use crate::config::HaCf;
use crate::runtime::os::paths::Paths;
use crate::wire::{Msg, Value};

/// What every child of the daemon gets.
pub fn base(cfg: &HaCf, paths: &Paths, node: &str, debug: u32) -> Vec<(String, String)> {
    let confdir = paths.confdir.display().to_string();
    let mut env = vec![
        ("HA_CURHOST".to_string(), node.to_string()),
        ("HA_DIR".to_string(), confdir.clone()),
        ("HA_FUNCS".to_string(), format!("{confdir}/shellfuncs")),
        ("HA_DATEFMT".to_string(), "%Y/%m/%d_%T\t".to_string()),
        ("OCF_ROOT".to_string(), "/usr/lib/ocf".to_string()),
        ("HA_RCDIR".to_string(), format!("{confdir}/rc.d")),
        (
            "HA_RESOURCEDIR".to_string(),
            format!("{confdir}/resource.d"),
        ),
        (
            "HA_FIFO".to_string(),
            paths.statedir.join("fifo").display().to_string(),
        ),
        (
            "HA_VARLIB".to_string(),
            paths.statedir.display().to_string(),
        ),
        (
            "HA_RSCTMP".to_string(),
            paths.hb_rundir().join("rsctmp").display().to_string(),
        ),
        ("HA_LOGD".to_string(), "no".to_string()),
        (
            "HA_COMPRESSION".to_string(),
            cfg.parameters
                .get("compression")
                .cloned()
                .unwrap_or_else(|| "zlib".into()),
        ),
    ];
    let file = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    if let Some(f) = file(&cfg.logfile) {
        env.push(("HA_LOGFILE".into(), f));
    }
    if let Some(f) = file(&cfg.debugfile) {
        env.push(("HA_DEBUGLOG".into(), f));
    }
    if let Some(fac) = &cfg.logfacility {
        env.push(("HA_LOGFACILITY".into(), fac.clone()));
    }
    if debug > 0 {
        env.push(("HA_debug".into(), debug.to_string()));
    }
    for (name, value) in &cfg.parameters {
        // Names are ha.cf directives (letters, digits, `_`): safe as variable names.
        if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            env.push((format!("HA_{name}"), value.clone()));
        }
    }
    for (name, value) in &cfg.env {
        env.push((format!("HA_{name}"), value.clone()));
    }
    env
}

/// A run caused by a message also gets its string fields (binary ones are left out).
pub fn message(msg: &Msg) -> Vec<(String, String)> {
    msg.fields
        .iter()
        .filter_map(|f| match &f.value {
            Value::Str(v) => {
                let name = std::str::from_utf8(&f.name).ok()?;
                let ok_name =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                // Any bytes (a Latin-1 node name): the runner passes them on unchanged.
                let value = crate::wire::message::text_of(v);
                (ok_name && !value.contains('\0'))
                    .then(|| (format!("HA_{name}"), value.into_owned()))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_paths_and_message_fields() {
        let mut cfg = HaCf::default();
        cfg.parameters.insert("keepalive".into(), "1".into());
        cfg.parameters.insert("deadtime".into(), "8".into());
        cfg.logfile = Some("/var/log/ha-log".into());
        let env = base(&cfg, &Paths::default(), "alice", 0);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("HA_CURHOST"), Some("alice"));
        assert_eq!(get("HA_keepalive"), Some("1"));
        assert_eq!(get("HA_deadtime"), Some("8"));
        assert_eq!(get("HA_DIR"), Some("/etc/ha.d"));
        assert_eq!(get("HA_LOGFILE"), Some("/var/log/ha-log"));
        assert_eq!(get("HA_DATEFMT"), Some("%Y/%m/%d_%T\t"));
        assert_eq!(get("HA_debug"), None);

        let mut m = Msg::new();
        m.add_str("t", "ip-request-resp")
            .add_str("ipaddr", "Marker::svcA")
            .add_bin("srcuuid", &[1; 16]);
        let me = message(&m);
        assert_eq!(
            me,
            vec![
                ("HA_t".into(), "ip-request-resp".into()),
                ("HA_ipaddr".into(), "Marker::svcA".into())
            ]
        );
        // A Latin-1 sender's name reaches the script as its bytes.
        let mut m = Msg::new();
        m.add("src", crate::wire::Value::Str(b"caf\xe9".to_vec()));
        let me = message(&m);
        assert_eq!(me.len(), 1);
        assert_eq!(crate::config::bytes::encode(&me[0].1), b"caf\xe9");
    }
}
