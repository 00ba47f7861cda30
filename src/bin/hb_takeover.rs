//! `hb_takeover [all|foreign|local|failback]`: take resource groups over to this node.
fn main() -> std::process::ExitCode {
    heartbeat::runtime::admin::main(heartbeat::runtime::admin::Command::Takeover)
}
