//! Signals by name or number, as operators write them.
//!
//! `USR1`, `SIGUSR1`, `usr1` and `10` are one signal; `RTMIN+N` / `RTMAX-N` use
//! glibc's `SIGRTMIN()` (34 here), not the kernel's 32.

use std::fmt;
use std::str::FromStr;

/// A valid signal number (1..=SIGRTMAX).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Signal(i32);

impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const CONT: Signal = Signal(libc::SIGCONT);
    pub const STOP: Signal = Signal(libc::SIGSTOP);

    /// The signal with this number, if it is one.
    pub fn from_number(n: i32) -> Option<Signal> {
        todo!("{n}")
    }

    pub fn number(self) -> i32 {
        self.0
    }

    /// STOP, TSTP, TTIN, TTOU: signals that freeze the receiver.
    pub fn is_stopping(self) -> bool {
        todo!()
    }
}

/// Why a signal name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSignalError(pub String);

impl fmt::Display for ParseSignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown signal '{}'", self.0)
    }
}

impl std::error::Error for ParseSignalError {}

impl FromStr for Signal {
    type Err = ParseSignalError;
    fn from_str(s: &str) -> Result<Signal, ParseSignalError> {
        todo!("{s}")
    }
}

/// `SIGUSR1`, `SIGRTMIN+3`.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}
