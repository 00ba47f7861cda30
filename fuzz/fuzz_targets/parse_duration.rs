//! Time values must never panic.
#![no_main]

use heartbeat::config::duration::parse_ms;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_ms(&String::from_utf8_lossy(data));
});
