//! Communication media: the sockets and devices heartbeats travel over (I/O).
pub mod ping;
pub mod serial;
pub mod udp;
