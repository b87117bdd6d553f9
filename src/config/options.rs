//! The probe options, each defined once: [`probe_options!`] turns one entry
//! (doc, type, how `-t` shows it) into the command-line flag, the heat.toml
//! key, the field of a [`Layer`] and its line in the `-t` report. Adding an
//! option is one entry here plus the line of `validate.rs` that resolves it.
//!
//! A check (`COMMAND`/`--script`, `command`/`script`) and a target (`--pid`/
//! `--pidfile`) are one-slot pairs: a layer that sets one half replaces the
//! other, so they are written out here rather than generated.

use std::ffi::OsString;
use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgAction;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use super::value::{
    Account, Bytes, Count, CpuQuota, EnvVars, Given, Interval, OutputSize, Parser, Pid, Timeout,
    Value, Written,
};
use super::{Credentials, Hook, ProbeConfig};
use crate::signal::Signal;
use crate::text::{show_path, shown};

/// Where a raw value was written, so that an error can point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line option, by its long name: `--interval`.
    Flag(String),
    /// A key of a config file.
    Key { file: PathBuf, line: usize, key: String },
}

impl Origin {
    pub fn flag(name: &str) -> Origin {
        Origin::Flag(name.to_string())
    }

    /// `""` for a flag, `heat.toml:12: ` for a key.
    pub fn location(&self) -> String {
        match self {
            Origin::Flag(_) => String::new(),
            Origin::Key { file, line, .. } => format!("{}:{line}: ", show_path(file)),
        }
    }

    /// The option or key name: `--interval`, `interval`.
    pub fn name(&self) -> &str {
        match self {
            Origin::Flag(flag) => flag,
            Origin::Key { key, .. } => key,
        }
    }

    /// `--interval 0`, `heat.toml:12: interval 0`: the start of an error line.
    pub fn culprit(&self, value: impl fmt::Display) -> String {
        format!("{}{} {}", self.location(), shown(self.name()), shown(&value.to_string()))
    }
}

/// One value of a layer: what it is, how it was written, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Raw<T> {
    pub value: T,
    pub text: String,
    pub origin: Origin,
}

impl<T> Raw<T> {
    /// The value refused for `reason`.
    pub fn error(&self, reason: super::Reason) -> super::ConfigError {
        super::ConfigError::value(self.origin.clone(), self.text.clone(), reason)
    }

    /// The same origin and text with another value.
    pub fn with<U>(&self, value: U) -> Raw<U> {
        Raw { value, text: self.text.clone(), origin: self.origin.clone() }
    }
}

/// The check slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawCheck {
    Exec(Vec<OsString>),
    Shell(String),
    Script(PathBuf),
}

/// The target slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawTarget {
    Pid(Pid),
    Pidfile(PathBuf),
}

/// `command = ["prog", "arg"]` (exec form) or `command = "shell words"`.
#[derive(Clone, Debug)]
pub enum Command {
    Argv(Vec<String>),
    Shell(String),
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Command, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings (exec form) or a string (run by /bin/sh -c)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Command, E> {
                Ok(Command::Shell(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Command, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(Command::Argv(argv))
            }
        }
        d.deserialize_any(V)
    }
}

/// How a file's values find their lines; implemented by `file::Source`.
pub trait Locate {
    fn origin(&self, span: std::ops::Range<usize>, key: &str) -> Origin;

    /// A key's value as a layer holds it; a value its parser refused is the
    /// error, named by key and line.
    fn raw<T: Value>(
        &self,
        v: &Option<Spanned<Written<T>>>,
        key: &str,
    ) -> Result<Option<Raw<T>>, super::ConfigError> {
        let Some(s) = v else { return Ok(None) };
        let origin = self.origin(s.span(), key);
        let written = s.get_ref();
        match &written.value {
            Ok(value) => Ok(Some(Raw { value: value.clone(), text: written.text.clone(), origin })),
            Err(reason) => {
                Err(super::ConfigError::value(origin, written.text.clone(), reason.clone()))
            }
        }
    }
}

/// A flag's values as one layer value (repeats joined, see `Value::join`).
fn flag<T: Value>(given: &[Given<T>], field: &str) -> Option<Raw<T>> {
    if given.is_empty() {
        return None;
    }
    let text = given.iter().map(|g| g.text.as_str()).collect::<Vec<_>>().join(" ");
    let value = T::join(given.iter().map(|g| g.value.clone()).collect());
    Some(Raw { value, text, origin: Origin::Flag(format!("--{}", field.replace('_', "-"))) })
}

macro_rules! probe_options {
    ($(
        $(#[$meta:meta])*
        $field:ident: $ty:ty => $show:expr;
    )*) => {
        /// The probe options of the command line (the check and target are
        /// `Cli`'s own).
        #[derive(clap::Args, Debug, Clone, Default)]
        pub struct ProbeFlags {
            $(
                #[arg(
                    long,
                    value_parser = Parser::<$ty>::new(),
                    value_hint = <$ty as Value>::HINT,
                    action = if <$ty as Value>::MULTI { ArgAction::Append } else { ArgAction::Set },
                    hide_possible_values = true,
                    allow_hyphen_values = true
                )]
                $(#[$meta])*
                pub $field: Vec<Given<$ty>>,
            )*
        }

        /// A probe table or `[defaults]` of heat.toml, each value with its span.
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        pub struct Table {
            pub command: Option<Spanned<Command>>,
            pub script: Option<Spanned<Written<PathBuf>>>,
            pub pid: Option<Spanned<Written<Pid>>>,
            pub pidfile: Option<Spanned<Written<PathBuf>>>,
            $(pub $field: Option<Spanned<Written<$ty>>>,)*
        }

        /// One layer of a probe's settings; `None` is "not set here".
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Layer {
            pub check: Option<Raw<RawCheck>>,
            pub target: Option<Raw<RawTarget>>,
            $(pub $field: Option<Raw<$ty>>,)*
        }

        impl Layer {
            /// This layer stacked over `lower`: every value set here wins.
            pub fn over(self, lower: Layer) -> Layer {
                Layer {
                    check: self.check.or(lower.check),
                    target: self.target.or(lower.target),
                    $($field: self.$field.or(lower.$field),)*
                }
            }

            /// The flags' values; the check and target are set by the caller.
            pub fn from_flags(flags: &ProbeFlags) -> Layer {
                Layer {
                    check: None,
                    target: None,
                    $($field: flag(&flags.$field, stringify!($field)),)*
                }
            }

            /// A table's values; the check and target are set by the caller.
            pub fn from_table(t: &Table, src: &impl Locate) -> Result<Layer, super::ConfigError> {
                Ok(Layer {
                    check: None,
                    target: None,
                    $($field: src.raw(&t.$field, stringify!($field))?,)*
                })
            }
        }

        impl ProbeConfig {
            /// The options' effective values as `-t` prints them, in order.
            pub fn option_lines(&self) -> Vec<(&'static str, String)> {
                let show: &[(&'static str, fn(&ProbeConfig) -> String)] =
                    &[$((stringify!($field), $show),)*];
                show.iter().map(|(key, f)| (*key, f(self))).collect()
            }
        }
    };
}

probe_options! {
    /// Time between check starts [default: 30s]
    ///
    /// A bare number is seconds; otherwise 500ms, 30s, 1m30s; at least 10ms. Checks start
    /// at a fixed rate and never overlap.
    #[arg(short, value_name = "D")]
    interval: Interval => |p| dur(p.interval);

    /// Kill a check running longer; it fails with code 124 [default: the interval]
    ///
    /// The check's whole process group is killed.
    #[arg(value_name = "D")]
    timeout: Timeout => |p| dur(p.timeout);

    /// Sent to the target on every failure in normal mode [default: HUP]
    ///
    /// Without --signal, HUP is sent only when neither --fault-signal nor --success-signal
    /// is given.
    #[arg(value_name = "SIG")]
    signal: Signal => |p| sig(p.rules().failure_signal());

    /// Fail hook, run on each failure in normal mode
    #[arg(value_name = "PATH", value_hint = clap::ValueHint::ExecutablePath)]
    fail: PathBuf => |p| hook(&p.fail);

    /// Recovery hook, run when --threshold consecutive failures are reached
    ///
    /// After it ends, checks decide: a success ends recovery, and if none comes within
    /// --recovery-timeout the next round starts at the next tick.
    #[arg(value_name = "PATH", value_hint = clap::ValueHint::ExecutablePath)]
    recovery: PathBuf => |p| hook(&p.recovery);

    /// Consecutive failures that start recovery, at least 1 [default: 1]
    #[arg(value_name = "N")]
    threshold: NonZeroU32 => |p| p.threshold.to_string();

    /// Grace after start: failures are logged but not counted [default: 0]
    ///
    /// Applies to checks started within this time after heat starts; the first success
    /// ends it early.
    #[arg(value_name = "D")]
    start_period: Duration => |p| dur(p.start_period);

    /// Time checks may keep failing after a recovery hook [default: threshold checks]
    ///
    /// When it passes without a success, the next recovery round starts at the next tick.
    #[arg(value_name = "D")]
    recovery_timeout: Timeout => |p| p.recovery_timeout.map_or("-".to_string(), dur);

    /// Sent to the target on entering each recovery round
    ///
    /// Without a target it is raised on heat itself, so only HUP, USR1, CONT, CHLD, WINCH
    /// and URG are accepted then (and on the command line TERM and INT, which stop heat).
    /// A stopped target gets CONT when heat stops.
    #[arg(value_name = "SIG")]
    fault_signal: Signal => |p| sig(p.fault_signal);

    /// Sent to the target when a recovery succeeds
    ///
    /// Without a target it is raised on heat itself, so only HUP, USR1, CONT, CHLD, WINCH
    /// and URG are accepted then (and on the command line TERM and INT, which stop heat).
    #[arg(value_name = "SIG")]
    success_signal: Signal => |p| sig(p.success_signal);

    /// A hook running longer is ended and logged as FAIL [default: 5m]
    ///
    /// Its process group gets TERM, then KILL 5 s later.
    #[arg(value_name = "D")]
    hook_timeout: Timeout => |p| dur(p.hook_timeout);

    /// Output kept per check or hook run [default: 64KiB]
    ///
    /// 65536, 64KiB, 1MiB (also 64K, 1M; 64KB and 1MB are powers of 1000); at most 16MiB.
    /// The rest is read and dropped, and the log entry says how many bytes.
    #[arg(value_name = "SIZE")]
    max_output: OutputSize => |p| format_size(p.max_output);

    /// Run checks and hooks as this user (a name or uid); needs root [default: heat's own]
    ///
    /// The child gets the user's HOME, USER, LOGNAME and SHELL, its primary group and its
    /// supplementary groups from the group database.
    #[arg(value_name = "USER")]
    user: Account => |p| account(&p.user);

    /// Run checks and hooks with this group (a name or gid) [default: the user's primary]
    #[arg(value_name = "GROUP")]
    group: Account => |p| p.user.as_deref().map_or("-".to_string(), Credentials::groups_text);

    /// Run hooks as this user instead [default: the probe's user]
    #[arg(value_name = "USER")]
    hook_user: Account => |p| account(&p.hook_user);

    /// Directory checks and hooks run in [default: heat.toml's directory, or heat's own]
    #[arg(value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    workdir: PathBuf => |p| p.workdir.as_ref().map_or("-".to_string(), |w| w.display().to_string());

    /// A variable added to the environment of checks and hooks (repeat for more)
    ///
    /// In heat.toml a table: env = { LANG = "C.UTF-8" }. HEAT_* names are heat's own.
    #[arg(value_name = "NAME=VALUE")]
    env: EnvVars => |p| {
        let keys: Vec<&str> = p.env.iter().map(|(k, _)| k.as_str()).collect();
        if keys.is_empty() { "-".to_string() } else { keys.join(", ") }
    };

    /// Memory limit of each check's and hook's cgroup (memory.max) [default: none]
    ///
    /// Sizes as --max-output. Ignored, with a warning, where the memory controller is absent.
    #[arg(value_name = "SIZE")]
    memory_max: Bytes => |p| p.limits.memory_max.map_or("-".to_string(), |b| format_size(b as usize));

    /// Most processes in each check's and hook's cgroup (pids.max) [default: none]
    #[arg(value_name = "N")]
    pids_max: Count => |p| p.limits.pids_max.map_or("-".to_string(), |n| n.to_string());

    /// CPU time of each check's and hook's cgroup, as 50% of one CPU (cpu.max) [default: none]
    #[arg(value_name = "PERCENT")]
    cpu_max: CpuQuota => |p| p.limits.cpu_max.map_or("-".to_string(), |q| format!("{}%", q.percent));
}

fn account(c: &Option<std::sync::Arc<Credentials>>) -> String {
    match c {
        Some(c) => c.user_text(),
        None => {
            static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
            let euid = EUID.get_or_init(|| nix::unistd::geteuid().as_raw());
            format!("heat's own (uid {euid})")
        }
    }
}

fn dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn sig(s: Option<Signal>) -> String {
    s.map_or("-".to_string(), |s| s.to_string())
}

fn hook(h: &Option<Hook>) -> String {
    h.as_ref().map_or("-".to_string(), |h| h.display.clone())
}

/// The largest binary unit that divides `n`: `64KiB`, `1MiB`, `1000`.
pub fn format_size(n: usize) -> String {
    [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        .iter()
        .find(|(unit, _)| n.is_multiple_of(*unit))
        .map_or(n.to_string(), |(unit, name)| format!("{}{name}", n / unit))
}
