//! What the user asked for, validated once into types.
//!
//! A `Settings` that exists is valid: paths resolved and executable, signals
//! known, durations non-zero, the target alive. Nothing downstream re-checks.

use std::ffi::OsString;
use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Cli;
use crate::signal::Signal;

/// How a check is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Exec form, no shell: `program` was resolved through PATH once, at start.
    Exec { program: PathBuf, args: Vec<OsString> },
    /// Shell form: `/bin/sh -c command`.
    Shell { command: String },
    /// An executable script; one without `#!` runs with /bin/sh.
    Script { path: PathBuf },
}

/// A fail or recovery hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// Absolute (or cwd-relative) path that is executed.
    pub path: PathBuf,
    /// The path as the user wrote it: how the log names the hook.
    pub display: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    Pid(u32),
    Pidfile(PathBuf),
}

/// One probe's effective settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// `cli` on the command line.
    pub name: String,
    pub check: Check,
    /// How the log names the check: the command line (args shell-quoted where
    /// needed) or the script path as given.
    pub display: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub target: Option<TargetSpec>,
    /// `--signal` as given; the default HUP is decided by the probe rules.
    pub signal: Option<Signal>,
    pub fail: Option<Hook>,
    pub recovery: Option<Hook>,
    pub threshold: NonZeroU32,
    pub start_period: Duration,
    pub recovery_timeout: Option<Duration>,
    pub fault_signal: Option<Signal>,
    pub success_signal: Option<Signal>,
    pub hook_timeout: Duration,
    pub max_output: usize,
    /// Where checks and hooks run; `None` is heat's own directory.
    pub workdir: Option<PathBuf>,
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The verbose log path as given (the stdout line names it so).
    pub log: PathBuf,
    pub quiet: bool,
    pub verbose: u8,
    pub check_only: bool,
    pub probes: Vec<ProbeConfig>,
    /// Valid but useless combinations, printed on stderr at start and by `-t`.
    pub warnings: Vec<String>,
}

/// A bad argument: one line naming the culprit and, where it helps, the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A duration: a bare integer is seconds, otherwise humantime (`500ms`, `1m30s`).
/// Zero is accepted here; callers refuse it where it is invalid.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    todo!("{s}")
}

/// A size: `65536`, `64KiB`, `1MiB` (also `KB`/`MB` as 1000s, `K`/`M` as 1024s).
pub fn parse_size(s: &str) -> Result<usize, String> {
    todo!("{s}")
}

/// Validates the command line into settings for one probe named `cli`.
pub fn from_cli(cli: &Cli) -> Result<Settings, ConfigError> {
    todo!("{cli:?}")
}

/// The `-t` report: one block per probe with its effective settings.
pub fn describe(settings: &Settings) -> String {
    todo!("{settings:?}")
}

/// Shell-quotes `arg` where a shell would need it.
pub fn shell_quote(arg: &str) -> String {
    todo!("{arg}")
}
