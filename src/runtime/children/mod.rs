//! The daemon's child processes: resource scripts and their environment, rc.d hooks,
//! respawned clients, and the runs of `stonith` and `drbdadm` that cluster decisions ask for.

pub mod clients;
pub mod hooks;
pub mod outdate;
pub mod script_env;
pub mod scripts;
pub mod stonith;
