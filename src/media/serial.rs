//! Serial links (`serial <dev>` in ha.cf), as Heartbeat 3.0.6 drives them (links.md section 2).

pub mod framer;
pub mod lock;

pub use framer::{FramerStats, SerialFramer, MAXMSG};
pub use lock::{LineLock, LockError, DEFAULT_LOCK_DIR};
