//! heat — a health-check supervisor for Linux hosts.
//!
//! See `docs/Architecture.md` and `probe.rs` ("theory of operation").

pub mod cli;
pub mod config;
pub mod diag;
pub mod exec;
pub mod log;
pub mod probe;
pub mod reload;
pub mod report;
pub mod sd_notify;
pub mod service;
pub mod signal;
pub mod spawn;
pub mod supervisor;
pub mod target;
#[cfg(test)]
mod testutil;
pub mod text;
pub mod timer;
pub mod watch;
