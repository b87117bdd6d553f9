//! Running checks and hooks: one child at a time per call, in its own process
//! group, stdin from /dev/null, stdout and stderr merged into one pipe, output
//! capped, ended on timeout or on request, always reaped.
//!
//! Exits are learnt through a pidfd (no thread per child). For a check the exit
//! is first seen without reaping (`waitid(P_PIDFD, WEXITED | WNOWAIT)`), the
//! leftovers of its group are killed, and only then is it reaped, so the group
//! id cannot have been reused. Stops (SIGSTOP, SIGTSTP, …) are seen through
//! SIGCHLD and `waitid(WSTOPPED)`: the group is killed and the stop reported.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::signal::Signal;

/// What is started: `program` with `args`; a script without `#!` (ENOEXEC)
/// is retried as `/bin/sh program args`.
#[derive(Clone, Debug)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The full environment of the child (already cleaned by the caller).
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    pub kind: Kind,
    pub timeout: Duration,
    /// Output bytes kept; the rest is read and dropped (never close the pipe early).
    pub max_output: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// At `timeout`: KILL on the group at once. On exit: leftovers in the group killed.
    Check,
    /// At `timeout`: TERM then CONT on the group, KILL 5 s later. Leftovers are kept.
    /// Output is read until exit and at most 100 ms more.
    Hook,
}

/// A request to end the child, sent by the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Stop {
    #[default]
    No,
    /// TERM then CONT on the group, KILL after the grace (5 s).
    Graceful,
    /// KILL on the group now (a second TERM during the grace).
    Now,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status (0 is success).
    Exited(i32),
    /// A check killed at its timeout (counts as code 124); a hook ended at its hook timeout.
    TimedOut,
    /// Killed by a signal heat did not send.
    Signaled(Signal),
    /// Stopped by a signal (SIGSTOP, SIGTSTP, …); heat then killed its group.
    Stopped(Signal),
    /// Ended by heat on a `Stop` request: counts for nothing.
    Ended,
    /// Could not be started: 127 not found, 126 not executable, as a shell reports.
    NotStarted { code: i32, error: String },
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The child's pid; `None` when it never started.
    pub pid: Option<u32>,
    pub outcome: Outcome,
    /// Output, stdout and stderr merged in order, at most `max_output` bytes.
    pub output: Vec<u8>,
    /// Bytes read beyond `max_output` and dropped.
    pub dropped: u64,
    /// When the run ended (wall clock, for the log and HEAT_FAIL_TIME).
    pub ended: SystemTime,
}

/// Runs `spec` to its end. `stop` asks for an early end; the run still
/// returns a full report (with `Outcome::Ended` if it was ended by the request).
/// `on_start` receives the pid as soon as the child exists.
pub async fn run(spec: &Spec, stop: watch::Receiver<Stop>, on_start: impl FnOnce(u32)) -> Report {
    let _ = (spec, stop, on_start);
    todo!()
}
