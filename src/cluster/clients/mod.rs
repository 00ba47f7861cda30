//! Built-in replacements for 3.0.6's API clients, each a pure policy fed by `Cluster`.
pub mod dopd;
pub mod ipfail;
pub mod status_query;
#[cfg(test)]
mod wire_golden;
