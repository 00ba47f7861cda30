//! `hb_standby [all|foreign|local|failback]`: move resource groups away from this node.
fn main() -> std::process::ExitCode {
    heartbeat::runtime::admin::main(heartbeat::runtime::admin::Command::Standby)
}
