//! heat — a health-check supervisor for Linux hosts.
//!
//! See `docs/Architecture.md` and `probe.rs` ("theory of operation"). The
//! public modules are what heat's binary, tests and benchmarks use; the rest
//! is heat's own.

pub mod board;
mod cgroup;
pub mod cli;
pub mod config;
pub mod control;
pub mod diag;
mod exec;
pub mod log;
mod metrics;
pub mod probe;
mod reload;
pub mod report;
mod sd_notify;
pub mod service;
pub mod signal;
mod spawn;
pub mod supervisor;
mod target;
#[cfg(test)]
mod testutil;
pub mod text;
mod timer;
mod watch;
