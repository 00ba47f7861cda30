//! ha.cf parsing must never panic, whatever the bytes (lossily decoded, as the daemon reads).
#![no_main]

use std::path::Path;

use heartbeat::config::hacf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ifaces = vec!["hb0".to_string(), "eth0".to_string()];
    let _ = hacf::parse(&text, Path::new("/etc/ha.d//ha.cf"), "alice", None);
    let _ = hacf::parse(&text, Path::new("/etc/ha.d//ha.cf"), "alice", Some(&ifaces));
    let _ = hacf::parse_partial(&text, Path::new("/etc/ha.d//ha.cf"), "bob", None, false);
});
