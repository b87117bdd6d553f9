//! Why a configuration is refused. Each error's own text names the culprit
//! (`--interval 0`, `heat.toml:4: interval 0s`, `probe web`); what is wrong
//! with it is its source, so that [`crate::text::chain`] prints
//! `probe web: heat.toml:4: interval 0s: must be greater than zero`.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::Origin;
use super::trust::Untrusted;
use crate::signal::ParseSignalError;
use crate::target::PidfileError;
use crate::text::{io_reason, show_path, shown};

/// A bad argument or configuration: one line naming the culprit and, where it
/// helps, the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value its option cannot take.
    #[error(transparent)]
    Value(Box<BadValue>),
    /// As root, a file others control.
    #[error("{location}refusing {what} {shown}")]
    Untrusted {
        location: String,
        what: &'static str,
        shown: String,
        #[source]
        why: Untrusted,
    },
    /// As root, a pidfile that could name any process.
    #[error("{location}refusing pidfile {shown}")]
    UntrustedPidfile {
        location: String,
        shown: String,
        #[source]
        why: PidfileError,
    },
    /// Both halves of a one-slot pair in one layer: a command and a script, a
    /// pid and a pidfile.
    #[error("{location}{both}: give one {slot}, not both")]
    Both { location: String, both: String, slot: &'static str },
    #[error("{location}no check: {}", if *command_line {
        "put a command after the options, or use -s SCRIPT"
    } else {
        "set command or script"
    })]
    NoCheck { location: String, command_line: bool },
    #[error("{location}command: empty (give the program and its arguments)")]
    EmptyArgv { location: String },
    #[error("{location}command '': empty program name")]
    EmptyProgram { location: String },
    /// An exec-form program given with a `/`, named as written.
    #[error("{location}{program}")]
    Program {
        location: String,
        program: String,
        #[source]
        reason: Reason,
    },
    #[error("{location}{program}: command not found in PATH")]
    NotInPath { location: String, program: String },
    #[error("{location}{program}: found {} but it is not executable", show_path(found))]
    FoundNotExecutable { location: String, program: String, found: PathBuf },
    /// One probe of a heat.toml.
    #[error("probe {}", shown(name))]
    Probe {
        name: String,
        #[source]
        source: Box<ConfigError>,
    },
    #[error("cannot read config {}", show_path(path))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "config {}: not a regular file; heat reads its configuration from a file",
        show_path(path)
    )]
    NotRegular { path: PathBuf },
    #[error("config {}: {len} bytes is too large (at most 16MiB)", show_path(path))]
    TooLarge { path: PathBuf, len: u64 },
    #[error(
        "config {} is empty (0 bytes), as a file caught while it is rewritten reads; to run no \
         probes on purpose, leave a comment in it",
        show_path(path)
    )]
    Empty { path: PathBuf },
    #[error("config {}: not UTF-8 text (invalid byte at offset {offset})", show_path(path))]
    NotUtf8 { path: PathBuf, offset: usize },
    /// TOML that does not parse, or a key or type heat.toml does not take.
    #[error("{location}{message}")]
    Syntax { location: String, message: String },
    #[error("{location}probe name \"{}\": use letters, digits, '_' and '-' only", shown(name))]
    ProbeName { location: String, name: String },
    #[error(
        "{location}[probe.cli] is taken by the check given on the command line; rename the table"
    )]
    CliProbeTaken { location: String },
}

/// A value, where it was written, and why it cannot be taken.
#[derive(Debug, thiserror::Error)]
#[error("{}", origin.culprit(text))]
pub struct BadValue {
    pub origin: Origin,
    pub text: String,
    #[source]
    pub reason: Reason,
}

impl ConfigError {
    pub fn value(origin: Origin, text: impl Into<String>, reason: Reason) -> ConfigError {
        ConfigError::Value(Box::new(BadValue { origin, text: text.into(), reason }))
    }

    /// The same error, said of probe `name`.
    pub fn in_probe(self, name: &str) -> ConfigError {
        ConfigError::Probe { name: name.to_string(), source: Box::new(self) }
    }

    /// The innermost error: what tests match on.
    pub fn root(&self) -> &ConfigError {
        match self {
            ConfigError::Probe { source, .. } => source.root(),
            other => other,
        }
    }

    /// The value's reason, if a value is what is wrong.
    pub fn reason(&self) -> Option<&Reason> {
        match self.root() {
            ConfigError::Value(bad) => Some(&bad.reason),
            _ => None,
        }
    }
}

/// What is wrong with a value; the error around it names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("not UTF-8 text")]
    NotUtf8,
    #[error("not a duration (use seconds, or 500ms, 30s, 1m30s)")]
    NotADuration,
    #[error("must not be negative")]
    Negative,
    #[error("too long (at most 10 years)")]
    TooLong,
    #[error("must be greater than zero")]
    Zero,
    #[error("too short: the interval is at least 10ms")]
    IntervalTooShort,
    #[error("not a whole number")]
    NotWhole,
    #[error("must be at least 1")]
    BelowOne,
    #[error("not a size (use 65536, 64KiB or 1MiB)")]
    NotASize,
    #[error("too large{}", if most.is_empty() { String::new() } else { format!(" (at most {most})") })]
    TooLarge { most: &'static str },
    #[error("{}", .0.reason())]
    Signal(ParseSignalError),
    #[error(
        "without a target it is raised on heat itself, which it would stop or kill; use {allowed}, \
         or give a target"
    )]
    RaisedOnHeat { allowed: String },
    #[error("empty: give a name or a number")]
    NoName,
    #[error("not NAME=VALUE")]
    NotAnAssignment,
    #[error("not a variable name (no '=' or NUL, not empty)")]
    BadEnvName,
    #[error("HEAT_* variables are heat's own")]
    HeatsEnv,
    #[error("not a percentage of one CPU (50%, 200%)")]
    NotAPercentage,
    #[error("not an address: give host:port, such as 127.0.0.1:9464")]
    NotAnAddress,
    #[error("give the socket's path, or false for none")]
    SocketOn,
    #[error("no such user")]
    NoSuchUser,
    #[error("no such group")]
    NoSuchGroup,
    #[error("cannot read the user database: {0}")]
    UserDatabase(Io),
    #[error("running as another user needs root (heat runs as uid {0})")]
    NotRoot(u32),
    #[error("not a directory")]
    NotADir,
    #[error("not a pid (a positive integer)")]
    NotAPid,
    #[error("must be a positive integer (0 and negative pids name process groups)")]
    ProcessGroup,
    #[error("no such process")]
    NoSuchProcess,
    #[error("pid 1 (init) is never a target")]
    Init,
    #[error("that is heat's own pid")]
    HeatsOwnPid,
    #[error("the process has exited (a zombie not yet reaped)")]
    Zombie,
    #[error("cannot check it: {0}")]
    CannotCheck(Io),
    #[error("names pid {0}: that is heat's own pid")]
    NamesHeat(u32),
    #[error("{0}")]
    Pidfile(String),
    #[error("no such file")]
    NoSuchFile,
    #[error("cannot access it: {0}")]
    CannotAccess(Io),
    #[error("cannot read it: {0}")]
    CannotRead(Io),
    #[error("not a regular file")]
    NotRegular,
    #[error("not executable; chmod +x it")]
    NotExecutable,
    #[error("empty command")]
    EmptyCommand,
    #[error("is a directory; name a file in it")]
    LogIsDirectory,
    #[error("not a regular file; heat appends to a regular file only")]
    LogNotRegular,
    #[error("{} is not a directory", show_path(.0))]
    NotADirectory(PathBuf),
    #[error("directory {} does not exist; create it first", show_path(.0))]
    NoDirectory(PathBuf),
    #[error("cannot access {}: {io}", show_path(dir))]
    CannotAccessDir { dir: PathBuf, io: Io },
}

/// An io error as an error line says it (`permission denied`), comparable
/// by what it says so that reasons can be matched in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Io(String);

impl From<&io::Error> for Io {
    fn from(e: &io::Error) -> Io {
        Io(io_reason(e))
    }
}

impl From<nix::errno::Errno> for Io {
    fn from(e: nix::errno::Errno) -> Io {
        Io(e.desc().to_lowercase())
    }
}

impl fmt::Display for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
