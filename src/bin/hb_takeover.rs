//! `hb_takeover [all|foreign|local|failback]`: take resource groups over to this node.
fn main() -> std::process::ExitCode {
    heartbeat::runtime::control::admin::main(heartbeat::runtime::control::admin::Command::Takeover)
}
