//! The watched target process: chosen once by pid, held through a pidfd, so
//! its exit is seen at once and a recycled pid is never signalled.

use std::io;
use std::path::Path;

use crate::signal::Signal;

/// A live target process.
pub struct Target {
    pid: u32,
}

impl Target {
    /// Opens a pidfd for `pid`. Refuses pid ≤ 0, pid 1 and heat's own pid.
    pub fn open(pid: u32) -> io::Result<Target> {
        todo!("{pid}")
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `sig` through the pidfd.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        todo!("{sig:?}")
    }

    /// Resolves when the process has exited.
    pub async fn exited(&self) {
        todo!()
    }
}

/// The pid a pidfile names (its first line).
pub fn read_pidfile(path: &Path) -> io::Result<u32> {
    todo!("{path:?}")
}
