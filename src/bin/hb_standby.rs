//! `hb_standby [all|foreign|local|failback]`: move resource groups away from this node.
fn main() -> std::process::ExitCode {
    heartbeat::runtime::control::admin::main(heartbeat::runtime::control::admin::Command::Standby)
}
