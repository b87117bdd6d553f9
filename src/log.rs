//! The verbose log: one writer thread, whole entries, appended.
//!
//! Producers never wait for the disk: formatted entries go to a queue bounded
//! at 1 MiB; past that they are dropped and counted. When a write fails the
//! writer says so once on stderr, keeps retrying (reopening the path), and the
//! first entry that gets through is preceded by one saying how many were lost.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The entry type, as the log spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Fail,
    Err,
}

/// Formats one entry: `UNIX : TYPE : NAME :` then each output line prefixed by
/// `> `; a last line without newline gets one; `dropped > 0` adds
/// `> [heat: N bytes dropped]`.
pub fn format_entry(
    out: &mut Vec<u8>,
    unix: u64,
    level: Level,
    name: &str,
    body: &[u8],
    dropped: u64,
) {
    let _ = (out, unix, level, name, body, dropped);
    todo!()
}

/// A handle to the writer; cheap to clone.
#[derive(Clone)]
pub struct Log {}

impl Log {
    /// Opens (creating with mode 0640) `path` append-only and close-on-exec,
    /// not through a symlink when running as root, and starts the writer.
    pub fn open(path: &Path) -> io::Result<Log> {
        todo!("{path:?}")
    }

    /// Queues one entry; never blocks on IO.
    pub fn write(&self, time: SystemTime, level: Level, name: &str, body: &[u8], dropped: u64) {
        let _ = (time, level, name, body, dropped);
        todo!()
    }

    /// Reopens the path (logrotate's HUP).
    pub fn reopen(&self) {
        todo!()
    }

    /// Waits until everything queued is written, or `timeout` passes.
    pub fn flush(&self, timeout: Duration) {
        let _ = timeout;
        todo!()
    }
}
