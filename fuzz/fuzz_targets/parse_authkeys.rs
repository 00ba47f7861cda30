//! authkeys parsing must never panic; a parsed result always has its active key.
#![no_main]

use std::path::Path;

use heartbeat::config::authkeys;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(keys) = authkeys::parse(&text, Path::new("/etc/ha.d//authkeys")) {
        assert!(keys.keys.contains_key(&keys.active));
        let _ = keys.active_key();
    }
});
