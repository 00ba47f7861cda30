//! The built-in dopd's runs of `drbdadm outdate <resource>` (found on PATH, as the original's
//! `system()` finds it), reaped on SIGCHLD; their ends go back to `Cluster::outdate_done`.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};

use crate::cluster::clients::dopd::{CommandEnd, OUTDATE_ARG, OUTDATE_PROGRAM};

#[derive(Default)]
pub struct OutdateRuns {
    runs: Vec<(u64, Child)>,
}

impl OutdateRuns {
    /// Start `drbdadm outdate <resource>` for `job`; its end at once if it cannot start.
    pub fn start(&mut self, job: u64, resource: &str) -> Option<CommandEnd> {
        match Command::new(OUTDATE_PROGRAM)
            .arg(OUTDATE_ARG)
            .arg(resource)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(child) => {
                self.runs.push((job, child));
                None
            }
            // The shell the original runs it through says 127 when the command is missing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(CommandEnd::Exited(127)),
            Err(_) => Some(CommandEnd::Failed),
        }
    }

    /// The runs that ended.
    pub fn reap(&mut self) -> Vec<(u64, CommandEnd)> {
        let mut done = Vec::new();
        self.runs.retain_mut(|(job, child)| match child.try_wait() {
            Ok(Some(st)) => {
                let end = match (st.code(), st.signal()) {
                    (Some(c), _) => CommandEnd::Exited(c),
                    (None, Some(s)) => CommandEnd::Signalled(s),
                    _ => CommandEnd::Failed,
                };
                done.push((*job, end));
                false
            }
            Ok(None) => true,
            Err(_) => {
                done.push((*job, CommandEnd::Failed));
                false
            }
        });
        done
    }
}
