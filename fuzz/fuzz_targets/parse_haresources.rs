//! haresources parsing must never panic; every parsed group has a key, keys are unique.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;

use heartbeat::config::haresources;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let nodes = vec!["alice".to_string(), "bob".to_string()];
    if let Ok(groups) = haresources::parse(&text, Path::new("/etc/ha.d//haresources"), &nodes) {
        let mut keys = BTreeSet::new();
        for g in &groups {
            assert!(keys.insert(g.key().to_string()), "duplicate key accepted");
        }
    }
});
