//! Where the daemon keeps things. Defaults are the original's; `--confdir`, `--statedir`,
//! `--rundir` move them for tests and demos.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `/etc/ha.d`
    pub confdir: PathBuf,
    /// `/var/lib/heartbeat`
    pub statedir: PathBuf,
    /// `/run` (the pid file is `<rundir>/heartbeat.pid`, sockets live in `<rundir>/heartbeat/`)
    pub rundir: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            confdir: PathBuf::from("/etc/ha.d"),
            statedir: PathBuf::from("/var/lib/heartbeat"),
            rundir: PathBuf::from("/run"),
        }
    }
}

impl Paths {
    /// A config file as 3.0.6 names it in messages: the directory, a doubled slash, the name
    /// (`/etc/ha.d//ha.cf`). Operators have grepped for that spelling for years.
    pub fn conf_file(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("{}//{}", self.confdir.display(), name))
    }
    pub fn hacf(&self) -> PathBuf {
        self.conf_file("ha.cf")
    }
    pub fn authkeys(&self) -> PathBuf {
        self.conf_file("authkeys")
    }
    pub fn haresources(&self) -> PathBuf {
        self.conf_file("haresources")
    }
    pub fn nodeinfo(&self) -> PathBuf {
        self.confdir.join("nodeinfo")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.rundir.join("heartbeat.pid")
    }
    /// `/run/heartbeat`
    pub fn hb_rundir(&self) -> PathBuf {
        self.rundir.join("heartbeat")
    }
    /// The control socket of `cl_status`, `hb_standby`, `hb_takeover`.
    pub fn control_socket(&self) -> PathBuf {
        self.hb_rundir().join("control")
    }
    pub fn resource_dir(&self) -> PathBuf {
        self.confdir.join("resource.d")
    }
    pub fn state_file(&self, name: &str) -> PathBuf {
        self.statedir.join(name)
    }
    pub fn under_confdir(&self, p: &Path) -> PathBuf {
        self.confdir.join(p)
    }
}
