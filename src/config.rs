//! What the user asked for, validated once into types.
//!
//! A `Settings` that exists is valid: paths resolved and executable, signals
//! known, durations non-zero, the target alive. Nothing downstream re-checks.
//!
//! Every source of settings is a layer of raw values ([`RawProbe`]), each value
//! carrying where it was written ([`Origin`]) so that an error can point at it.
//! The command line is one layer today; heat.toml's `[defaults]` and
//! `[probe.NAME]` become two more, stacked with [`RawProbe::over`] (README "Service mode":
//! defaults < `[defaults]` < probe < command line). [`validate_probe`] is the one
//! place values are checked, whatever layer they came from.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io;
use std::num::NonZeroU32;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::unistd::{AccessFlags, Pid};

use crate::cli::Cli;
use crate::signal::Signal;

mod file;
mod trust;

pub use file::CLI_PROBE;

/// How a check is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Exec form, no shell: `program` was resolved through PATH once, at start.
    /// `args` are the arguments after the program (argv[1..]).
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
    /// Service mode: the heat.toml the probes came from.
    pub config: Option<PathBuf>,
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

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024;
pub const DEFAULT_LOG: &str = "heat.verbose.log";
/// The shortest interval: below it a probe would be due all the time.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The most output kept per run; the log's queue always has room for one such entry.
pub const MAX_OUTPUT: usize = 16 << 20;

/// No duration is longer: far beyond any sane setting, far below where deadline
/// arithmetic (`t0 + k·interval`) could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 31_557_600);
/// glibc's search path when PATH is unset (`confstr(_CS_PATH)`).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// A duration: a bare integer is seconds, otherwise humantime (`500ms`, `1m30s`).
/// Zero is accepted here; callers refuse it where it is invalid.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let too_long = || "too long (at most 10 years)".to_string();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().map_err(|_| too_long())?;
        return Some(Duration::from_secs(secs)).filter(|d| *d <= MAX_DURATION).ok_or_else(too_long);
    }
    if s.trim_start().starts_with('-') {
        return Err("must not be negative".to_string());
    }
    let d = humantime::parse_duration(s)
        .map_err(|_| "not a duration (use seconds, or 500ms, 30s, 1m30s)".to_string())?;
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// A size: `65536`, `64KiB`, `1MiB` (also `KB`/`MB` as 1000s, `K`/`M` as 1024s).
/// Units are case-insensitive; zero is refused.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let garbage = || "not a size (use 65536, 64KiB or 1MiB)".to_string();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(garbage());
    }
    let multiplier: usize = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(garbage()),
    };
    let too_large = || "too large".to_string();
    let n: usize = digits.parse().map_err(|_| too_large())?;
    match n.checked_mul(multiplier) {
        Some(0) => Err("must be greater than zero".to_string()),
        Some(size) => Ok(size),
        None => Err(too_large()),
    }
}

/// Shell-quotes `arg` where a shell would need it.
pub fn shell_quote(arg: &str) -> String {
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b);
    if !arg.is_empty() && arg.bytes().all(safe) {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

pub use crate::text::{show_path, shown};

// ---------------------------------------------------------------------------
// Layers

/// Where a raw value was written, so that an error can point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line option, by its long name: `--interval`.
    Flag(&'static str),
    /// A key of a config file.
    Key { file: PathBuf, line: usize, key: String },
}

impl Origin {
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

/// One value as written, with where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Raw<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Raw<T> {
    pub fn flag(flag: &'static str, value: T) -> Raw<T> {
        Raw { value, origin: Origin::Flag(flag) }
    }
}

impl Raw<String> {
    fn error(&self, reason: impl fmt::Display) -> ConfigError {
        ConfigError(format!("{}: {reason}", self.origin.culprit(&self.value)))
    }
}

impl Raw<PathBuf> {
    fn error(&self, reason: impl fmt::Display) -> ConfigError {
        ConfigError(format!("{}: {reason}", self.origin.culprit(show_path(&self.value))))
    }
}

/// `command` and `script` are one slot: a layer that sets one replaces the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawCheck {
    Exec(Vec<OsString>),
    Shell(String),
    Script(PathBuf),
}

/// `pid` and `pidfile` are one slot, like the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawTarget {
    Pid(String),
    Pidfile(PathBuf),
}

/// One layer of a probe's settings, as written; `None` is "not set here".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawProbe {
    pub check: Option<Raw<RawCheck>>,
    pub interval: Option<Raw<String>>,
    pub timeout: Option<Raw<String>>,
    pub target: Option<Raw<RawTarget>>,
    pub signal: Option<Raw<String>>,
    pub fail: Option<Raw<PathBuf>>,
    pub recovery: Option<Raw<PathBuf>>,
    pub threshold: Option<Raw<String>>,
    pub start_period: Option<Raw<String>>,
    pub recovery_timeout: Option<Raw<String>>,
    pub fault_signal: Option<Raw<String>>,
    pub success_signal: Option<Raw<String>>,
    pub hook_timeout: Option<Raw<String>>,
    pub max_output: Option<Raw<String>>,
}

impl RawProbe {
    /// This layer stacked over `lower`: every value set here wins.
    pub fn over(self, lower: RawProbe) -> RawProbe {
        RawProbe {
            check: self.check.or(lower.check),
            interval: self.interval.or(lower.interval),
            timeout: self.timeout.or(lower.timeout),
            target: self.target.or(lower.target),
            signal: self.signal.or(lower.signal),
            fail: self.fail.or(lower.fail),
            recovery: self.recovery.or(lower.recovery),
            threshold: self.threshold.or(lower.threshold),
            start_period: self.start_period.or(lower.start_period),
            recovery_timeout: self.recovery_timeout.or(lower.recovery_timeout),
            fault_signal: self.fault_signal.or(lower.fault_signal),
            success_signal: self.success_signal.or(lower.success_signal),
            hook_timeout: self.hook_timeout.or(lower.hook_timeout),
            max_output: self.max_output.or(lower.max_output),
        }
    }

    /// The command line's layer. Refuses what one layer cannot hold: a command
    /// and `-s`, or `--pid` and `--pidfile`.
    pub fn from_cli(cli: &Cli) -> Result<RawProbe, ConfigError> {
        let s = |flag, v: &Option<String>| v.clone().map(|v| Raw::flag(flag, v));
        let p = |flag, v: &Option<PathBuf>| v.clone().map(|v| Raw::flag(flag, v));
        Ok(RawProbe {
            check: cli_check(cli)?,
            interval: s("--interval", &cli.interval),
            timeout: s("--timeout", &cli.timeout),
            target: cli_target(cli)?,
            signal: s("--signal", &cli.signal),
            fail: p("--fail", &cli.fail),
            recovery: p("--recovery", &cli.recovery),
            threshold: s("--threshold", &cli.threshold),
            start_period: s("--start-period", &cli.start_period),
            recovery_timeout: s("--recovery-timeout", &cli.recovery_timeout),
            fault_signal: s("--fault-signal", &cli.fault_signal),
            success_signal: s("--success-signal", &cli.success_signal),
            hook_timeout: s("--hook-timeout", &cli.hook_timeout),
            max_output: s("--max-output", &cli.max_output),
        })
    }
}

fn cli_check(cli: &Cli) -> Result<Option<Raw<RawCheck>>, ConfigError> {
    match (&cli.script, cli.command.first()) {
        (Some(script), Some(program)) => Err(ConfigError(format!(
            "--script {} and a command ({}): give one check, not both",
            show_path(script),
            shown(&program.to_string_lossy())
        ))),
        (Some(script), None) => Ok(Some(Raw::flag("--script", RawCheck::Script(script.clone())))),
        (None, Some(_)) => Ok(Some(Raw::flag("COMMAND", RawCheck::Exec(cli.command.clone())))),
        (None, None) => Ok(None),
    }
}

fn cli_target(cli: &Cli) -> Result<Option<Raw<RawTarget>>, ConfigError> {
    match (&cli.pid, &cli.pidfile) {
        (Some(pid), Some(file)) => Err(ConfigError(format!(
            "--pid {} and --pidfile {}: give one target, not both",
            shown(pid),
            show_path(file)
        ))),
        (Some(pid), None) => Ok(Some(Raw::flag("--pid", RawTarget::Pid(pid.clone())))),
        (None, Some(file)) => Ok(Some(Raw::flag("--pidfile", RawTarget::Pidfile(file.clone())))),
        (None, None) => Ok(None),
    }
}

// ---------------------------------------------------------------------------
// Validation

/// Which rules apply: the command line is stricter about the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    CommandLine,
    Service,
}

/// What validation depends on besides the values, captured once.
#[derive(Clone, Debug)]
pub struct Env {
    pub mode: Mode,
    /// Root gets the ownership and mode checks (see `trust`).
    pub euid: u32,
    /// Never a target.
    pub own_pid: u32,
    /// PATH for exec-form programs; `None` is unset.
    pub path: Option<OsString>,
    /// Relative paths are relative to this (the config file's directory in
    /// service mode); `None` is heat's own directory.
    pub workdir: Option<PathBuf>,
    /// Target pids the running configuration already has: a reload that keeps
    /// one is not refused because it has exited since.
    pub known_pids: Vec<u32>,
    /// A reload of the running configuration: an empty file is refused.
    pub reload: bool,
}

impl Env {
    /// The running process's view, for the command line.
    pub fn current() -> Env {
        Env {
            mode: Mode::CommandLine,
            euid: nix::unistd::geteuid().as_raw(),
            own_pid: std::process::id(),
            path: std::env::var_os("PATH"),
            workdir: None,
            known_pids: Vec::new(),
            reload: false,
        }
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        match &self.workdir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    fn is_root(&self) -> bool {
        self.euid == 0
    }
}

/// Validates the command line into settings for one probe named `cli`.
pub fn from_cli(cli: &Cli) -> Result<Settings, ConfigError> {
    settings_from_cli(cli, &Env::current())
}

/// Validates the command line (and the config file it names) against `env`.
pub fn settings_from_cli(cli: &Cli, env: &Env) -> Result<Settings, ConfigError> {
    if let Some(path) = &cli.config {
        return file::load(path, cli, env);
    }
    let raw = RawProbe::from_cli(cli)?;
    let mut warnings = Vec::new();
    let probe = validate_probe("cli", &raw, env, &mut warnings)?;
    let log = Raw::flag("--log", cli.log.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_LOG)));
    check_log_dir(&log, env)?;
    Ok(Settings {
        log: log.value,
        quiet: cli.quiet,
        verbose: cli.verbose,
        check_only: cli.check_config,
        probes: vec![probe],
        warnings,
        config: None,
    })
}

/// Turns a probe's stacked layers into its effective settings; built-in
/// defaults fill what no layer set. Warnings go to `warnings`.
pub fn validate_probe(
    name: &str,
    raw: &RawProbe,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<ProbeConfig, ConfigError> {
    let in_service = |e: ConfigError| match env.mode {
        Mode::CommandLine => e,
        Mode::Service => ConfigError(format!("probe {}: {}", shown(name), e.0)),
    };
    let probe = build_probe(name, raw, env).map_err(in_service)?;
    let mut found = probe_warnings(raw, &probe);
    if env.mode == Mode::Service {
        found = found.into_iter().map(|w| format!("probe {}: {w}", shown(name))).collect();
    }
    warnings.extend(found);
    Ok(probe)
}

fn build_probe(name: &str, raw: &RawProbe, env: &Env) -> Result<ProbeConfig, ConfigError> {
    let interval = interval(&raw.interval)?;
    let (check, display) = check(raw.check.as_ref(), env)?;
    let target = raw.target.as_ref().map(|t| target(t, env)).transpose()?;
    let fault_signal = signal_without_target(&raw.fault_signal, target.is_some(), env)?;
    let success_signal = signal_without_target(&raw.success_signal, target.is_some(), env)?;
    Ok(ProbeConfig {
        name: name.to_string(),
        check,
        display,
        interval,
        timeout: nonzero_duration(&raw.timeout)?.unwrap_or(interval),
        target,
        signal: signal(&raw.signal)?,
        fail: raw.fail.as_ref().map(|h| hook(h, "fail hook", env)).transpose()?,
        recovery: raw.recovery.as_ref().map(|h| hook(h, "recovery hook", env)).transpose()?,
        threshold: threshold(&raw.threshold)?,
        start_period: duration(&raw.start_period)?.unwrap_or(Duration::ZERO),
        recovery_timeout: nonzero_duration(&raw.recovery_timeout)?,
        fault_signal,
        success_signal,
        hook_timeout: nonzero_duration(&raw.hook_timeout)?.unwrap_or(DEFAULT_HOOK_TIMEOUT),
        max_output: max_output(&raw.max_output)?,
        workdir: env.workdir.clone(),
    })
}

fn duration(raw: &Option<Raw<String>>) -> Result<Option<Duration>, ConfigError> {
    raw.as_ref().map(|r| parse_duration(&r.value).map_err(|e| r.error(e))).transpose()
}

fn nonzero_duration(raw: &Option<Raw<String>>) -> Result<Option<Duration>, ConfigError> {
    let d = duration(raw)?;
    match (raw, d) {
        (Some(r), Some(Duration::ZERO)) => Err(r.error("must be greater than zero")),
        _ => Ok(d),
    }
}

fn threshold(raw: &Option<Raw<String>>) -> Result<NonZeroU32, ConfigError> {
    let Some(r) = raw else {
        return Ok(NonZeroU32::MIN);
    };
    let n: i64 = r.value.parse().map_err(|_| r.error("not a whole number"))?;
    let n = u32::try_from(n).map_err(|_| r.error("must be at least 1"))?;
    NonZeroU32::new(n).ok_or_else(|| r.error("must be at least 1"))
}

/// At least 10 ms: a shorter interval would keep a probe due all the time.
fn interval(raw: &Option<Raw<String>>) -> Result<Duration, ConfigError> {
    match (raw, nonzero_duration(raw)?) {
        (Some(r), Some(d)) if d < MIN_INTERVAL => {
            Err(r.error("too short: the interval is at least 10ms"))
        }
        (_, d) => Ok(d.unwrap_or(DEFAULT_INTERVAL)),
    }
}

/// At most 16 MiB: output is held in memory until its entry is written.
fn max_output(raw: &Option<Raw<String>>) -> Result<usize, ConfigError> {
    let Some(r) = raw else {
        return Ok(DEFAULT_MAX_OUTPUT);
    };
    match parse_size(&r.value).map_err(|e| r.error(e))? {
        n if n > MAX_OUTPUT => Err(r.error("too large (at most 16MiB)")),
        n => Ok(n),
    }
}

fn signal(raw: &Option<Raw<String>>) -> Result<Option<Signal>, ConfigError> {
    raw.as_ref().map(|r| r.value.parse::<Signal>().map_err(|e| r.error(e.reason()))).transpose()
}

/// Signals heat may raise on itself: their effect on heat is harmless.
fn self_signals(mode: Mode) -> &'static [Signal] {
    const SERVICE: &[Signal] =
        &[Signal::HUP, Signal::USR1, Signal::CONT, Signal::CHLD, Signal::WINCH, Signal::URG];
    const COMMAND_LINE: &[Signal] = &[
        Signal::HUP,
        Signal::USR1,
        Signal::TERM,
        Signal::INT,
        Signal::CONT,
        Signal::CHLD,
        Signal::WINCH,
        Signal::URG,
    ];
    match mode {
        Mode::CommandLine => COMMAND_LINE,
        Mode::Service => SERVICE,
    }
}

/// `fault_signal` / `success_signal`: without a target they are raised on heat.
fn signal_without_target(
    raw: &Option<Raw<String>>,
    has_target: bool,
    env: &Env,
) -> Result<Option<Signal>, ConfigError> {
    let sig = signal(raw)?;
    let (Some(r), Some(s)) = (raw, sig) else {
        return Ok(sig);
    };
    let allowed = self_signals(env.mode);
    if has_target || allowed.contains(&s) {
        return Ok(sig);
    }
    let names: Vec<String> =
        allowed.iter().map(|a| a.to_string().trim_start_matches("SIG").to_string()).collect();
    let (last, rest) = names.split_last().expect("the allowed list is not empty");
    Err(r.error(format!(
        "without a target it is raised on heat itself, which it would stop or kill; use {} or \
         {last}, or give a target",
        rest.join(", ")
    )))
}

// ---------------------------------------------------------------------------
// Checks and hooks

fn check(raw: Option<&Raw<RawCheck>>, env: &Env) -> Result<(Check, String), ConfigError> {
    let Some(raw) = raw else {
        return Err(ConfigError(
            match env.mode {
                Mode::CommandLine => "no check: put a command after the options, or use -s SCRIPT",
                Mode::Service => "no check: set command or script",
            }
            .to_string(),
        ));
    };
    match &raw.value {
        RawCheck::Exec(argv) => exec_check(argv, &raw.origin, env),
        RawCheck::Shell(command) if command.trim().is_empty() => {
            Err(ConfigError(format!("{}: empty command", raw.origin.culprit("\"\""))))
        }
        RawCheck::Shell(command) => {
            Ok((Check::Shell { command: command.clone() }, command.clone()))
        }
        RawCheck::Script(path) => {
            let raw_path = Raw { value: path.clone(), origin: raw.origin.clone() };
            let resolved = executable_file(&raw_path, "script", env)?;
            Ok((Check::Script { path: resolved }, path.to_string_lossy().into_owned()))
        }
    }
}

fn exec_check(
    argv: &[OsString],
    origin: &Origin,
    env: &Env,
) -> Result<(Check, String), ConfigError> {
    let (name, args) = argv.split_first().ok_or_else(|| {
        ConfigError(format!(
            "{}command: empty (give the program and its arguments)",
            origin.location()
        ))
    })?;
    let program = find_program(name, origin, env)?;
    let display = argv.iter().map(|a| shell_quote(&a.to_string_lossy())).collect::<Vec<_>>();
    Ok((Check::Exec { program, args: args.to_vec() }, display.join(" ")))
}

/// Resolves an exec-form program once: through PATH, or as given if it has a `/`.
fn find_program(name: &OsStr, origin: &Origin, env: &Env) -> Result<PathBuf, ConfigError> {
    let shown = shown(&name.to_string_lossy());
    let fail = |reason: &str| ConfigError(format!("{}{shown}: {reason}", origin.location()));
    if name.is_empty() {
        return Err(ConfigError(format!("{}command '': empty program name", origin.location())));
    }
    if name.as_bytes().contains(&b'/') {
        let path = env.resolve(Path::new(name));
        let culprit = format!("{}{shown}", origin.location());
        runnable(&path, &culprit, "command", &shown, origin, env)?;
        return Ok(path);
    }
    let path = env.path.clone().unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    let mut not_executable = None;
    // Relative PATH entries are skipped: the result must not depend on the cwd.
    for dir in std::env::split_paths(&path).filter(|d| d.is_absolute()) {
        let candidate = dir.join(name);
        match fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() && is_executable(&candidate) => {
                refuse_untrusted(&candidate, "command", &shown, origin, env)?;
                return Ok(candidate);
            }
            Ok(meta) if meta.is_file() => not_executable = not_executable.or(Some(candidate)),
            _ => {}
        }
    }
    Err(match not_executable {
        Some(found) => fail(&format!("found {} but it is not executable", show_path(&found))),
        None => fail("command not found in PATH"),
    })
}

fn hook(raw: &Raw<PathBuf>, what: &str, env: &Env) -> Result<Hook, ConfigError> {
    let path = executable_file(raw, what, env)?;
    Ok(Hook { path, display: raw.value.to_string_lossy().into_owned() })
}

/// An existing, regular, executable file; as root, not writable by others.
fn executable_file(raw: &Raw<PathBuf>, what: &str, env: &Env) -> Result<PathBuf, ConfigError> {
    let path = env.resolve(&raw.value);
    let culprit = raw.origin.culprit(show_path(&raw.value));
    let shown = shown(&raw.value.to_string_lossy());
    runnable(&path, &culprit, what, &shown, &raw.origin, env)?;
    Ok(path)
}

/// Checks that `path` can be run; errors start with `culprit`. As root,
/// writability is checked before the execute bits: a file others can rewrite
/// is refused even before it is made executable.
fn runnable(
    path: &Path,
    culprit: &str,
    what: &str,
    shown: &str,
    origin: &Origin,
    env: &Env,
) -> Result<(), ConfigError> {
    let problem = |reason: &str| ConfigError(format!("{culprit}: {reason}"));
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => problem("no such file"),
        _ => problem(&format!("cannot access it: {}", io_reason(&e))),
    })?;
    if !meta.is_file() {
        return Err(problem("not a regular file"));
    }
    refuse_untrusted(path, what, shown, origin, env)?;
    if !is_executable(path) {
        return Err(problem("not executable; chmod +x it"));
    }
    Ok(())
}

fn is_executable(path: &Path) -> bool {
    nix::unistd::access(path, AccessFlags::X_OK).is_ok()
}

/// As root, heat runs and reads only what root controls (see `trust`): a file
/// owned by another user, or one that others could replace through its
/// directory, is refused, as sshd's StrictModes does.
fn refuse_untrusted(
    path: &Path,
    what: &str,
    shown: &str,
    origin: &Origin,
    env: &Env,
) -> Result<(), ConfigError> {
    if !env.is_root() {
        return Ok(());
    }
    trust::check(path, &[env.euid]).map_err(|why| {
        ConfigError(format!("{}refusing {what} {shown}: {}", origin.location(), why.reason()))
    })
}

/// The config file: regular (a FIFO or device would hang a read) and, as root,
/// trusted.
fn refuse_untrusted_config(path: &Path, meta: &fs::Metadata, env: &Env) -> Result<(), ConfigError> {
    let shown = show_path(path);
    if !meta.is_file() {
        return Err(ConfigError(format!(
            "config {shown}: not a regular file; heat reads its configuration from a file"
        )));
    }
    refuse_untrusted(path, "config", &shown, &Origin::Flag("--config"), env)
}

fn check_log_dir(log: &Raw<PathBuf>, env: &Env) -> Result<(), ConfigError> {
    let path = env.resolve(&log.value);
    match fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => return Err(log.error("is a directory; name a file in it")),
        // A FIFO would block the writer (or the start) forever, a device is no log.
        Ok(meta) if !meta.is_file() => {
            return Err(log.error("not a regular file; heat appends to a regular file only"));
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(log.error(format!("{} is not a directory", show_path(&dir)))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(
                log.error(format!("directory {} does not exist; create it first", show_path(&dir)))
            );
        }
        Err(e) => {
            return Err(log.error(format!("cannot access {}: {}", show_path(&dir), io_reason(&e))));
        }
    }
    let shown = show_path(&log.value);
    refuse_untrusted(&path, "log", &shown, &log.origin, env)
}

// ---------------------------------------------------------------------------
// The target

fn target(raw: &Raw<RawTarget>, env: &Env) -> Result<TargetSpec, ConfigError> {
    match &raw.value {
        RawTarget::Pid(text) => {
            let r = Raw { value: text.clone(), origin: raw.origin.clone() };
            let pid = parse_pid(text).map_err(|e| r.error(e))?;
            target_pid(pid, env).map_err(|e| r.error(e))?;
            Ok(TargetSpec::Pid(pid as u32))
        }
        RawTarget::Pidfile(path) => {
            let r = Raw { value: path.clone(), origin: raw.origin.clone() };
            pidfile(&r, env)?;
            Ok(TargetSpec::Pidfile(env.resolve(path)))
        }
    }
}

/// A pid as written: a positive integer that fits a pid_t.
fn parse_pid(text: &str) -> Result<i32, String> {
    let n: i64 = text.trim().parse().map_err(|_| "not a pid (a positive integer)".to_string())?;
    if n <= 0 {
        return Err("must be a positive integer (0 and negative pids name process groups)".into());
    }
    i32::try_from(n).map_err(|_| "no such process".to_string())
}

/// A pid heat may target now: not init, not heat, alive.
fn target_pid(pid: i32, env: &Env) -> Result<(), String> {
    if pid == 1 {
        return Err("pid 1 (init) is never a target".to_string());
    }
    if pid as u32 == env.own_pid {
        return Err("that is heat's own pid".to_string());
    }
    if env.mode == Mode::Service && env.known_pids.contains(&(pid as u32)) {
        return Ok(());
    }
    match liveness(pid)? {
        Liveness::Alive => Ok(()),
        Liveness::Gone => Err("no such process".to_string()),
        Liveness::Zombie => Err("the process has exited (a zombie not yet reaped)".to_string()),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Liveness {
    Alive,
    Gone,
    Zombie,
}

fn liveness(pid: i32) -> Result<Liveness, String> {
    let exists = kill_says_exists(nix::sys::signal::kill(Pid::from_raw(pid), None))
        .map_err(|e| format!("cannot check it: {}", e.desc().to_lowercase()))?;
    Ok(match exists {
        false => Liveness::Gone,
        true if process_state(pid) == Some('Z') => Liveness::Zombie,
        true => Liveness::Alive,
    })
}

/// `kill(pid, 0)`: EPERM means the process exists but is not ours to signal.
fn kill_says_exists(result: nix::Result<()>) -> Result<bool, Errno> {
    match result {
        Ok(()) | Err(Errno::EPERM) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The state letter of /proc/PID/stat (`R`, `S`, `Z`, …), if readable.
fn process_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A pidfile on the command line must name a live process now, one heat may
/// adopt (see `target::inspect_pidfile`); in service mode one naming none is
/// followed later, but as root one others can write is refused.
fn pidfile(raw: &Raw<PathBuf>, env: &Env) -> Result<(), ConfigError> {
    use crate::target::{PidfileError, inspect_pidfile};
    let path = env.resolve(&raw.value);
    match fs::metadata(&path) {
        Ok(_) => {}
        Err(_) if env.mode == Mode::Service => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(raw.error("no such file")),
        Err(e) => return Err(raw.error(format!("cannot read it: {}", io_reason(&e)))),
    }
    match inspect_pidfile(&path, &[], env.is_root()) {
        Ok(_) => Ok(()),
        Err(e) if e.is_refusal() => Err(ConfigError(format!(
            "{}refusing pidfile {}: {e}",
            raw.origin.location(),
            show_path(&raw.value)
        ))),
        Err(_) if env.mode == Mode::Service => Ok(()),
        Err(PidfileError::Pid { pid, .. }) if pid == env.own_pid => {
            Err(raw.error(format!("names pid {pid}: that is heat's own pid")))
        }
        Err(e) => Err(raw.error(e)),
    }
}

/// `No such file or directory (os error 2)` → `no such file or directory`.
fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

// ---------------------------------------------------------------------------
// Warnings

/// Valid but useless combinations, warned about at start and by `-t`.
fn probe_warnings(raw: &RawProbe, probe: &ProbeConfig) -> Vec<String> {
    let mut found = Vec::new();
    let starts_recovery = probe.recovery.is_some() || probe.fault_signal.is_some();
    if let (Some(fail), true) = (&raw.fail, probe.threshold.get() == 1 && starts_recovery) {
        found.push(format!(
            "{} never runs: with threshold 1 every failure starts recovery instead (raise the \
             threshold or drop the fail hook)",
            fail.origin.culprit(show_path(&fail.value))
        ));
    }
    if let (Some(sig), None) = (&raw.signal, &probe.target) {
        found.push(format!(
            "{} has no effect without a target (pid or pidfile)",
            sig.origin.culprit(&sig.value)
        ));
    }
    if let Some(success) = &raw.success_signal {
        let culprit = success.origin.culprit(&success.value);
        if !starts_recovery {
            found.push(format!(
                "{culprit} is never sent: without a recovery hook or fault signal recovery never starts"
            ));
        }
        if probe.target.is_some() && probe.signal.is_none() && probe.fault_signal.is_none() {
            found.push(format!(
                "{culprit} without a fault signal turns off the HUP sent on each failure; add {} \
                 to keep it",
                match success.origin {
                    Origin::Flag(_) => "--signal HUP",
                    Origin::Key { .. } => "signal = \"HUP\"",
                }
            ));
        }
    }
    found
}

// ---------------------------------------------------------------------------
// The -t report

/// The `-t` report: one block per probe with its effective settings.
pub fn describe(settings: &Settings) -> String {
    let mut out = format!("log = {}\n", settings.log.display());
    let one = settings.probes.len() == 1;
    for probe in &settings.probes {
        out.push('\n');
        let phase =
            if one { Duration::ZERO } else { crate::reload::phase(&probe.name, probe.interval) };
        out.push_str(&format!("[probe.{}]\n", probe.name));
        for (key, value) in describe_probe(probe, phase) {
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
    out
}

fn describe_probe(p: &ProbeConfig, phase: Duration) -> Vec<(&'static str, String)> {
    let dur = |d: Duration| humantime::format_duration(d).to_string();
    let sig = |s: Option<Signal>| s.map_or("-".to_string(), |s| s.to_string());
    let hook = |h: &Option<Hook>| h.as_ref().map_or("-".to_string(), |h| h.display.clone());
    let (form, program) = match &p.check {
        Check::Exec { program, .. } => ("exec", Some(program.display().to_string())),
        Check::Shell { .. } => ("shell", None),
        Check::Script { .. } => ("script", None),
    };
    let target = match &p.target {
        None => "-".to_string(),
        Some(TargetSpec::Pid(pid)) => format!("pid {pid}"),
        Some(TargetSpec::Pidfile(path)) => format!("pidfile {}", path.display()),
    };
    let mut lines = vec![("check", p.display.clone()), ("form", form.to_string())];
    lines.extend(program.map(|prog| ("program", prog)));
    lines.extend([
        ("interval", dur(p.interval)),
        ("timeout", dur(p.timeout)),
        ("target", target),
        ("signal", sig(crate::probe::Rules::from_config(p).failure_signal())),
        ("fail", hook(&p.fail)),
        ("recovery", hook(&p.recovery)),
        ("threshold", p.threshold.to_string()),
        ("start_period", dur(p.start_period)),
        ("recovery_timeout", p.recovery_timeout.map_or("-".to_string(), dur)),
        ("fault_signal", sig(p.fault_signal)),
        ("success_signal", sig(p.success_signal)),
        ("hook_timeout", dur(p.hook_timeout)),
        ("max_output", format_size(p.max_output)),
    ]);
    lines.extend(p.workdir.as_ref().map(|w| ("workdir", w.display().to_string())));
    lines.push(("phase", dur(phase)));
    lines
}

/// The largest binary unit that divides `n`: `64KiB`, `1MiB`, `1000`.
fn format_size(n: usize) -> String {
    [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        .iter()
        .find(|(unit, _)| n.is_multiple_of(*unit))
        .map_or(n.to_string(), |(unit, name)| format!("{}{name}", n / unit))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};
    use std::time::Instant;

    use super::*;

    use crate::testutil::TempDir;

    /// A live process, killed and reaped on drop.
    struct Live(Child);

    impl Live {
        fn sleep() -> Live {
            Live(Command::new("sleep").arg("30").spawn().unwrap())
        }

        fn pid(&self) -> u32 {
            self.0.id()
        }
    }

    impl Drop for Live {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A pid that was just used and reaped: no such process.
    fn dead_pid() -> u32 {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn args(args: &[&str]) -> Cli {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("heat").chain(args.iter().copied())).unwrap()
    }

    fn root_env() -> Env {
        Env { euid: 0, ..Env::current() }
    }

    fn user_env() -> Env {
        Env { euid: 1000, ..Env::current() }
    }

    fn ok_in(cli: &[&str], env: &Env) -> Settings {
        settings_from_cli(&args(cli), env).unwrap_or_else(|e| panic!("{cli:?}: {e}"))
    }

    fn ok(cli: &[&str]) -> Settings {
        ok_in(cli, &Env::current())
    }

    fn probe(cli: &[&str]) -> ProbeConfig {
        ok(cli).probes.remove(0)
    }

    fn err_in(cli: &[&str], env: &Env) -> String {
        match settings_from_cli(&args(cli), env) {
            Ok(s) => panic!("{cli:?} was accepted: {s:?}"),
            Err(e) => e.0,
        }
    }

    fn err(cli: &[&str]) -> String {
        err_in(cli, &Env::current())
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    // -- parsers ------------------------------------------------------------

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("-5"), Err("must not be negative".into()));
        assert_eq!(parse_duration("-5s"), Err("must not be negative".into()));
        for bad in ["", "abc", "5x", "1.5", "s", "30 s x"] {
            assert!(parse_duration(bad).unwrap_err().starts_with("not a duration"), "{bad:?}");
        }
        for huge in ["99999999999999999999", "315576001", "11years", "1000000000000h"] {
            assert!(parse_duration(huge).unwrap_err().starts_with("too long"), "{huge}");
        }
        assert_eq!(parse_duration("10years"), Ok(MAX_DURATION));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("64 KiB"), Ok(65536));
        assert_eq!(parse_size("100B"), Ok(100));
        for zero in ["0", "0KiB", "0M"] {
            assert_eq!(parse_size(zero), Err("must be greater than zero".into()), "{zero}");
        }
        for bad in ["", "KiB", "-1", "1.5MiB", "64KiBs", "64 XB", "1T", " 64"] {
            assert!(parse_size(bad).unwrap_err().starts_with("not a size"), "{bad:?}");
        }
        assert_eq!(parse_size("99999999999999999999"), Err("too large".into()));
        assert_eq!(parse_size("18446744073709551615GiB"), Err("too large".into()));
    }

    #[test]
    fn format_size_round_trips() {
        for n in [1, 1000, 65536, 1 << 20, 3 << 30, 65537] {
            assert_eq!(parse_size(&format_size(n)), Ok(n), "{n}");
        }
        assert_eq!(format_size(65536), "64KiB");
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(1000), "1000");
    }

    #[test]
    fn quoting() {
        for safe in ["curl", "-sf", "localhost/health_check", "a=b", "x@y:1,2%+", "/usr/bin/x"] {
            assert_eq!(shell_quote(safe), safe);
        }
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote("*"), "'*'");
        assert_eq!(shell_quote("~x"), "'~x'");
        assert_eq!(shell_quote("a;b"), "'a;b'");
        assert_eq!(shell_quote("é"), "'é'");
    }

    #[test]
    fn quoted_display_survives_the_shell() {
        let arg = "it's a $test\nnew line";
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote(arg)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), arg);
    }

    #[test]
    fn eperm_means_the_process_exists() {
        assert_eq!(kill_says_exists(Ok(())), Ok(true));
        assert_eq!(kill_says_exists(Err(Errno::EPERM)), Ok(true));
        assert_eq!(kill_says_exists(Err(Errno::ESRCH)), Ok(false));
        assert_eq!(kill_says_exists(Err(Errno::EINVAL)), Err(Errno::EINVAL));
    }

    #[test]
    fn io_errors_read_lowercase() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_reason(&e), "no such file or directory");
    }

    #[test]
    fn origins_name_the_culprit() {
        assert_eq!(Origin::Flag("--interval").culprit("0"), "--interval 0");
        let key = Origin::Key { file: "heat.toml".into(), line: 12, key: "interval".into() };
        assert_eq!(key.culprit("0"), "heat.toml:12: interval 0");
        assert_eq!(key.location(), "heat.toml:12: ");
    }

    // -- layers -------------------------------------------------------------

    #[test]
    fn a_higher_layer_wins_and_pairs_are_one_slot() {
        let lower = RawProbe {
            check: Some(Raw::flag("command", RawCheck::Shell("true".into()))),
            interval: Some(Raw::flag("interval", "10".into())),
            target: Some(Raw::flag("pid", RawTarget::Pid("5".into()))),
            threshold: Some(Raw::flag("threshold", "3".into())),
            ..RawProbe::default()
        };
        let higher = RawProbe {
            check: Some(Raw::flag("script", RawCheck::Script("./c.sh".into()))),
            target: Some(Raw::flag("pidfile", RawTarget::Pidfile("/run/x.pid".into()))),
            threshold: Some(Raw::flag("threshold", "4".into())),
            ..RawProbe::default()
        };
        let stacked = higher.over(lower);
        assert_eq!(stacked.check.unwrap().value, RawCheck::Script("./c.sh".into()));
        assert_eq!(stacked.target.unwrap().value, RawTarget::Pidfile("/run/x.pid".into()));
        assert_eq!(stacked.threshold.unwrap().value, "4");
        assert_eq!(stacked.interval.unwrap().value, "10");
        assert_eq!(stacked.timeout, None);
    }

    #[test]
    fn service_mode_errors_and_warnings_name_the_probe() {
        let env = Env { mode: Mode::Service, ..Env::current() };
        let raw = RawProbe {
            check: Some(Raw::flag("command", RawCheck::Shell("true".into()))),
            interval: Some(Raw::flag("interval", "0".into())),
            ..RawProbe::default()
        };
        let e = validate_probe("web", &raw, &env, &mut Vec::new()).unwrap_err();
        assert_eq!(e.0, "probe web: interval 0: must be greater than zero");
        let raw =
            RawProbe { interval: None, signal: Some(Raw::flag("signal", "USR1".into())), ..raw };
        let mut warnings = Vec::new();
        let p = validate_probe("web", &raw, &env, &mut warnings).unwrap();
        assert_eq!(p.check, Check::Shell { command: "true".into() });
        assert_eq!(p.display, "true");
        assert_eq!(
            warnings,
            ["probe web: signal USR1 has no effect without a target (pid or pidfile)"]
        );
    }

    #[test]
    fn a_dead_fixed_pid_is_refused_when_new_and_kept_when_a_reload_keeps_it() {
        let dead = dead_pid();
        let raw = RawProbe {
            check: Some(Raw::flag("command", RawCheck::Shell("true".into()))),
            target: Some(Raw::flag("pid", RawTarget::Pid(dead.to_string()))),
            ..RawProbe::default()
        };
        let new = Env { mode: Mode::Service, ..Env::current() };
        let e = validate_probe("t", &raw, &new, &mut Vec::new()).unwrap_err().0;
        assert_eq!(e, format!("probe t: pid {dead}: no such process"));
        let reload = Env { known_pids: vec![dead], ..new };
        let p = validate_probe("t", &raw, &reload, &mut Vec::new()).unwrap();
        assert_eq!(p.target, Some(TargetSpec::Pid(dead)));
    }

    #[test]
    fn service_mode_refuses_term_raised_on_heat() {
        let env = Env { mode: Mode::Service, ..Env::current() };
        let raw = RawProbe {
            check: Some(Raw::flag("command", RawCheck::Shell("true".into()))),
            fault_signal: Some(Raw::flag("fault_signal", "TERM".into())),
            ..RawProbe::default()
        };
        let e = validate_probe("q", &raw, &env, &mut Vec::new()).unwrap_err().0;
        assert!(e.starts_with("probe q: fault_signal TERM: without a target"), "{e}");
        assert!(e.contains("use HUP, USR1, CONT, CHLD, WINCH or URG"), "{e}");
    }

    #[test]
    fn service_mode_relative_paths_use_the_workdir() {
        let dir = TempDir::new("config");
        dir.script("check.sh");
        let env = Env { mode: Mode::Service, workdir: Some(dir.0.clone()), ..Env::current() };
        let raw = RawProbe {
            check: Some(Raw::flag("script", RawCheck::Script("check.sh".into()))),
            target: Some(Raw::flag("pidfile", RawTarget::Pidfile("missing.pid".into()))),
            ..RawProbe::default()
        };
        let p = validate_probe("disk", &raw, &env, &mut Vec::new()).unwrap();
        assert_eq!(p.check, Check::Script { path: dir.0.join("check.sh") });
        assert_eq!(p.display, "check.sh");
        // A pidfile naming no live process is followed later in service mode.
        assert_eq!(p.target, Some(TargetSpec::Pidfile(dir.0.join("missing.pid"))));
        assert_eq!(p.workdir, Some(dir.0.clone()));
    }

    // -- the command line ---------------------------------------------------

    #[test]
    fn defaults() {
        let settings = ok(&["true"]);
        assert_eq!(settings.log, PathBuf::from("heat.verbose.log"));
        assert!(!settings.quiet && !settings.check_only);
        assert_eq!(settings.verbose, 0);
        assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
        let p = &settings.probes[0];
        assert_eq!(p.name, "cli");
        assert_eq!(p.display, "true");
        assert_eq!(p.interval, Duration::from_secs(30));
        assert_eq!(p.timeout, Duration::from_secs(30));
        assert_eq!(p.threshold.get(), 1);
        assert_eq!(p.start_period, Duration::ZERO);
        assert_eq!(p.recovery_timeout, None);
        assert_eq!(p.hook_timeout, Duration::from_secs(300));
        assert_eq!(p.max_output, 65536);
        assert_eq!(
            (p.target.as_ref(), p.signal, p.fault_signal, p.success_signal),
            (None, None, None, None)
        );
        assert_eq!((p.fail.as_ref(), p.recovery.as_ref(), p.workdir.as_ref()), (None, None, None));
    }

    #[test]
    fn every_value_is_carried() {
        let dir = TempDir::new("config");
        let (fail, rec) = (dir.script("fail.sh"), dir.script("rec.sh"));
        let log = dir.0.join("h.log");
        let target = Live::sleep();
        let pid = target.pid().to_string();
        let p = ok(&[
            "-i",
            "10s",
            "--timeout",
            "5",
            "--pid",
            &pid,
            "--signal",
            "usr1",
            "--fail",
            s(&fail),
            "--recovery",
            s(&rec),
            "--threshold",
            "3",
            "--start-period",
            "1m",
            "--recovery-timeout",
            "2m",
            "--fault-signal",
            "STOP",
            "--success-signal",
            "CONT",
            "--log",
            s(&log),
            "-t",
            "--hook-timeout",
            "30s",
            "--max-output",
            "1MiB",
            "-q",
            "-vv",
            "true",
        ]);
        assert_eq!(p.log, log);
        assert!(p.quiet && p.check_only);
        assert_eq!(p.verbose, 2);
        let p = &p.probes[0];
        assert_eq!(p.interval, Duration::from_secs(10));
        assert_eq!(p.timeout, Duration::from_secs(5));
        assert_eq!(p.target, Some(TargetSpec::Pid(target.pid())));
        assert_eq!(p.signal, Some(Signal::USR1));
        assert_eq!(p.fail, Some(Hook { path: fail.clone(), display: s(&fail).into() }));
        assert_eq!(p.recovery, Some(Hook { path: rec.clone(), display: s(&rec).into() }));
        assert_eq!(p.threshold.get(), 3);
        assert_eq!(p.start_period, Duration::from_secs(60));
        assert_eq!(p.recovery_timeout, Some(Duration::from_secs(120)));
        assert_eq!(p.fault_signal, Some(Signal::STOP));
        assert_eq!(p.success_signal, Some(Signal::CONT));
        assert_eq!(p.hook_timeout, Duration::from_secs(30));
        assert_eq!(p.max_output, 1 << 20);
    }

    #[test]
    fn timeout_defaults_to_the_interval() {
        let p = probe(&["-i", "1m30s", "true"]);
        assert_eq!(p.timeout, Duration::from_secs(90));
    }

    #[test]
    fn a_missing_config_file_is_named() {
        assert_eq!(
            err(&["-c", "/nonexistent/heat.toml"]),
            "cannot read config /nonexistent/heat.toml: no such file or directory"
        );
    }

    #[test]
    fn exactly_one_check() {
        assert_eq!(err(&[]), "no check: put a command after the options, or use -s SCRIPT");
        assert_eq!(err(&["-q"]), "no check: put a command after the options, or use -s SCRIPT");
        assert_eq!(
            err(&["-s", "./check.sh", "curl", "-sf", "x"]),
            "--script ./check.sh and a command (curl): give one check, not both"
        );
    }

    #[test]
    fn zero_durations_are_refused_but_start_period() {
        for opt in ["--interval", "--timeout", "--recovery-timeout", "--hook-timeout"] {
            assert_eq!(err(&[opt, "0", "true"]), format!("{opt} 0: must be greater than zero"));
            assert_eq!(err(&[opt, "0ms", "true"]), format!("{opt} 0ms: must be greater than zero"));
            assert_eq!(err(&[opt, "-5", "true"]), format!("{opt} -5: must not be negative"));
            assert!(
                err(&[opt, "soon", "true"]).starts_with(&format!("{opt} soon: not a duration"))
            );
        }
        assert_eq!(probe(&["--start-period", "0", "true"]).start_period, Duration::ZERO);
        assert_eq!(
            err(&["--start-period", "-1", "true"]),
            "--start-period -1: must not be negative"
        );
    }

    #[test]
    fn threshold_is_at_least_one() {
        assert_eq!(err(&["--threshold", "0", "true"]), "--threshold 0: must be at least 1");
        assert_eq!(err(&["--threshold", "-2", "true"]), "--threshold -2: must be at least 1");
        assert_eq!(err(&["--threshold", "two", "true"]), "--threshold two: not a whole number");
        assert_eq!(err(&["--threshold", "1.5", "true"]), "--threshold 1.5: not a whole number");
        assert_eq!(
            err(&["--threshold", "99999999999", "true"]),
            "--threshold 99999999999: must be at least 1"
        );
    }

    #[test]
    fn max_output_is_a_positive_size() {
        assert_eq!(
            err(&["--max-output", "0", "true"]),
            "--max-output 0: must be greater than zero"
        );
        assert!(
            err(&["--max-output", "lots", "true"]).starts_with("--max-output lots: not a size")
        );
        assert_eq!(probe(&["--max-output", "64KB", "true"]).max_output, 64_000);
        assert_eq!(probe(&["--max-output", "16MiB", "true"]).max_output, MAX_OUTPUT);
        assert_eq!(
            err(&["--max-output", "16GiB", "true"]),
            "--max-output 16GiB: too large (at most 16MiB)"
        );
        assert_eq!(
            err(&["--max-output", "16777217", "true"]),
            "--max-output 16777217: too large (at most 16MiB)"
        );
    }

    #[test]
    fn intervals_below_ten_milliseconds_are_refused() {
        for short in ["1ns", "9ms", "9999us"] {
            assert_eq!(
                err(&["-i", short, "true"]),
                format!("--interval {short}: too short: the interval is at least 10ms")
            );
        }
        assert_eq!(probe(&["-i", "10ms", "true"]).interval, MIN_INTERVAL);
        // Only the interval: a short timeout kills a check, which is harmless.
        assert_eq!(probe(&["--timeout", "1ms", "true"]).timeout, Duration::from_millis(1));
    }

    #[test]
    fn error_values_are_one_line_and_cut() {
        assert_eq!(shown("a\nb\r\tc\u{1b}"), "a\\nb\\r\\tc\\u{1b}");
        let long = "x".repeat(500);
        assert_eq!(shown(&long), format!("{}…", "x".repeat(200)));
        assert_eq!(shown(&"é".repeat(200)), "é".repeat(200), "characters, not bytes");
        let e = err(&["-s", "/no/such\ndir/check.sh"]);
        assert_eq!(e, "--script /no/such\\ndir/check.sh: no such file");
        let e = err(&["-i", &long, "true"]);
        assert!(e.starts_with(&format!("--interval {}…: not a duration", "x".repeat(200))), "{e}");
        assert!(e.len() < 300, "{e}");
    }

    #[test]
    fn a_config_that_is_not_a_regular_file_is_refused_without_blocking() {
        let dir = TempDir::new("config");
        let fifo = dir.0.join("heat.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        // Opening a FIFO for reading blocks until a writer comes: it must not.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = s(&fifo).to_string();
        std::thread::spawn(move || {
            let _ = tx.send(err(&["-c", &path, "-t"]));
        });
        let e = rx.recv_timeout(Duration::from_secs(5)).expect("validation hung on a FIFO");
        assert_eq!(
            e,
            format!(
                "config {}: not a regular file; heat reads its configuration from a file",
                s(&fifo)
            )
        );
        assert_eq!(
            err(&["-c", "/dev/null"]),
            "config /dev/null: not a regular file; heat reads its configuration from a file"
        );
    }

    #[test]
    fn an_empty_config_is_refused_on_reload_only() {
        let dir = TempDir::new("config");
        let conf = dir.file("heat.toml", "", 0o644);
        let start = ok(&["-c", s(&conf)]);
        assert!(start.probes.is_empty());
        let reload = Env { mode: Mode::Service, reload: true, ..Env::current() };
        let e = err_in(&["-c", s(&conf)], &reload);
        assert!(e.starts_with(&format!("config {} is empty (0 bytes)", s(&conf))), "{e}");
        fs::write(&conf, "# no probes on purpose\n").unwrap();
        assert!(ok_in(&["-c", s(&conf)], &reload).probes.is_empty());
    }

    #[test]
    fn unknown_signals_are_refused() {
        assert_eq!(
            err(&["--signal", "FOO", "true"]),
            "--signal FOO: unknown signal (try HUP, USR1, TERM, RTMIN+1 or a number)"
        );
        assert!(
            err(&["--fault-signal", "32", "true"])
                .starts_with("--fault-signal 32: no such signal number")
        );
        assert!(
            err(&["--success-signal", "0", "true"])
                .starts_with("--success-signal 0: no such signal number")
        );
        assert_eq!(probe(&["--signal", "RTMIN+2", "true"]).signal, Some("36".parse().unwrap()));
    }

    #[test]
    fn exec_program_is_resolved_through_path() {
        let p = probe(&["-i", "30", "sh", "-c", "exit 1"]);
        let Check::Exec { program, args } = &p.check else { panic!("{:?}", p.check) };
        assert!(program.is_absolute() && program.ends_with("sh"), "{program:?}");
        assert!(is_executable(program));
        assert_eq!(args, &[OsString::from("-c"), OsString::from("exit 1")]);
        assert_eq!(p.display, "sh -c 'exit 1'");
    }

    #[test]
    fn path_lookup_skips_what_cannot_run() {
        let dir = TempDir::new("config");
        for sub in ["a", "b", "c"] {
            fs::create_dir(dir.0.join(sub)).unwrap();
        }
        dir.file("a/prog", "#!/bin/sh\n", 0o644);
        fs::create_dir(dir.0.join("b/prog")).unwrap();
        let good = dir.file("c/prog", "#!/bin/sh\n", 0o755);
        let path = std::env::join_paths([
            "relative",
            s(&dir.0.join("a")),
            s(&dir.0.join("b")),
            s(&dir.0.join("c")),
        ]);
        let env = Env { path: Some(path.unwrap()), ..user_env() };
        let p = ok_in(&["prog", "x y"], &env).probes.remove(0);
        assert_eq!(p.check, Check::Exec { program: good, args: vec!["x y".into()] });
        assert_eq!(p.display, "prog 'x y'");

        let env = Env { path: Some(dir.0.join("a").into()), ..user_env() };
        let e = err_in(&["prog"], &env);
        assert_eq!(
            e,
            format!("prog: found {} but it is not executable", dir.0.join("a/prog").display())
        );
    }

    #[test]
    fn unknown_programs_are_refused() {
        assert_eq!(
            err(&["heat-no-such-program", "-x"]),
            "heat-no-such-program: command not found in PATH"
        );
        let env = Env { path: Some("".into()), ..Env::current() };
        assert_eq!(err_in(&["ls"], &env), "ls: command not found in PATH");
        assert_eq!(err(&["--", ""]), "command '': empty program name");
    }

    #[test]
    fn a_program_with_a_slash_is_used_as_given() {
        let dir = TempDir::new("config");
        let prog = dir.script("check");
        let p = probe(&[s(&prog), "--flag"]);
        assert_eq!(p.check, Check::Exec { program: prog.clone(), args: vec!["--flag".into()] });
        assert_eq!(p.display, format!("{} --flag", s(&prog)));

        let missing = dir.0.join("nope");
        assert_eq!(err(&[s(&missing)]), format!("{}: no such file", s(&missing)));
        let plain = dir.file("plain", "data", 0o644);
        assert_eq!(err(&[s(&plain)]), format!("{}: not executable; chmod +x it", s(&plain)));
        assert_eq!(err(&[s(&dir.0)]), format!("{}: not a regular file", s(&dir.0)));
    }

    #[test]
    fn scripts_must_be_executable_files() {
        let dir = TempDir::new("config");
        let good = dir.script("check.sh");
        let p = probe(&["-s", s(&good)]);
        assert_eq!(p.check, Check::Script { path: good.clone() });
        assert_eq!(p.display, s(&good));

        let missing = dir.0.join("missing.sh");
        assert_eq!(err(&["-s", s(&missing)]), format!("--script {}: no such file", s(&missing)));
        let plain = dir.file("plain.sh", "exit 0\n", 0o644);
        assert_eq!(
            err(&["-s", s(&plain)]),
            format!("--script {}: not executable; chmod +x it", s(&plain))
        );
        assert_eq!(err(&["-s", s(&dir.0)]), format!("--script {}: not a regular file", s(&dir.0)));
    }

    #[test]
    fn hooks_must_be_executable_files() {
        let dir = TempDir::new("config");
        let good = dir.script("hook.sh");
        let p = probe(&["--fail", s(&good), "--recovery", s(&good), "--threshold", "2", "true"]);
        assert_eq!(p.fail.unwrap().display, s(&good));
        assert_eq!(p.recovery.unwrap().path, good);
        let missing = dir.0.join("missing.sh");
        let plain = dir.file("plain.sh", "exit 0\n", 0o600);
        for opt in ["--fail", "--recovery"] {
            assert_eq!(
                err(&[opt, s(&missing), "true"]),
                format!("{opt} {}: no such file", s(&missing))
            );
            assert_eq!(
                err(&[opt, s(&plain), "true"]),
                format!("{opt} {}: not executable; chmod +x it", s(&plain))
            );
            assert_eq!(
                err(&[opt, s(&dir.0), "true"]),
                format!("{opt} {}: not a regular file", s(&dir.0))
            );
        }
    }

    #[test]
    fn root_refuses_writable_scripts_for_real() {
        let dir = TempDir::new("config");
        let script = dir.file("check.sh", "#!/bin/sh\n", 0o777);
        let result = from_cli(&args(&["-s", s(&script)]));
        if nix::unistd::geteuid().is_root() {
            assert_eq!(
                result.unwrap_err().0,
                format!(
                    "refusing script {}: mode 0777 is group- or world-writable; chmod go-w it",
                    s(&script)
                )
            );
        } else {
            assert!(result.is_ok(), "{result:?}");
        }
    }

    #[test]
    fn root_refuses_a_0666_script() {
        let dir = TempDir::new("config");
        let script = dir.file("check.sh", "#!/bin/sh\n", 0o666);
        let writable = format!(
            "refusing script {}: mode 0666 is group- or world-writable; chmod go-w it",
            s(&script)
        );
        // Writability is judged before the missing execute bit.
        assert_eq!(err_in(&["-s", s(&script)], &root_env()), writable);
        let not_executable = format!("--script {}: not executable; chmod +x it", s(&script));
        assert_eq!(err_in(&["-s", s(&script)], &user_env()), not_executable);
        let real = from_cli(&args(&["-s", s(&script)])).unwrap_err().0;
        let is_root = nix::unistd::geteuid().is_root();
        assert_eq!(real, if is_root { writable } else { not_executable });

        fs::set_permissions(&script, fs::Permissions::from_mode(0o766)).unwrap();
        assert!(err_in(&["-s", s(&script)], &root_env()).contains("mode 0766"));
        assert!(settings_from_cli(&args(&["-s", s(&script)]), &user_env()).is_ok());
    }

    #[test]
    fn root_refuses_writable_hooks_and_programs() {
        let dir = TempDir::new("config");
        let hook = dir.file("hook.sh", "#!/bin/sh\n", 0o775);
        for (opt, what) in [("--fail", "fail hook"), ("--recovery", "recovery hook")] {
            assert_eq!(
                err_in(&[opt, s(&hook), "--threshold", "2", "true"], &root_env()),
                format!(
                    "refusing {what} {}: mode 0775 is group- or world-writable; chmod go-w it",
                    s(&hook)
                )
            );
        }
        assert_eq!(
            err_in(&[s(&hook)], &root_env()),
            format!(
                "refusing command {}: mode 0775 is group- or world-writable; chmod go-w it",
                s(&hook)
            )
        );
        let env = Env { path: Some(dir.0.clone().into()), ..root_env() };
        assert_eq!(
            err_in(&["hook.sh"], &env),
            "refusing command hook.sh: mode 0775 is group- or world-writable; chmod go-w it"
        );
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(settings_from_cli(&args(&["--fail", s(&hook), "true"]), &root_env()).is_ok());
    }

    #[test]
    fn pid_must_be_a_live_process_other_than_init_and_heat() {
        let live = Live::sleep();
        let pid = live.pid().to_string();
        assert_eq!(probe(&["--pid", &pid, "true"]).target, Some(TargetSpec::Pid(live.pid())));

        let positive = "must be a positive integer (0 and negative pids name process groups)";
        assert_eq!(err(&["--pid", "0", "true"]), format!("--pid 0: {positive}"));
        assert_eq!(err(&["--pid", "-5", "true"]), format!("--pid -5: {positive}"));
        assert_eq!(err(&["--pid", "abc", "true"]), "--pid abc: not a pid (a positive integer)");
        assert_eq!(err(&["--pid", "1", "true"]), "--pid 1: pid 1 (init) is never a target");
        let own = std::process::id().to_string();
        assert_eq!(err(&["--pid", &own, "true"]), format!("--pid {own}: that is heat's own pid"));
        let dead = dead_pid().to_string();
        assert_eq!(err(&["--pid", &dead, "true"]), format!("--pid {dead}: no such process"));
        assert_eq!(err(&["--pid", "4294967296", "true"]), "--pid 4294967296: no such process");
    }

    #[test]
    fn a_zombie_is_not_a_live_target() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while process_state(pid) != Some('Z') {
            assert!(Instant::now() < deadline, "pid {pid} never became a zombie");
            std::thread::sleep(Duration::from_millis(1));
        }
        let e = err(&["--pid", &pid.to_string(), "true"]);
        child.wait().unwrap();
        assert_eq!(e, format!("--pid {pid}: the process has exited (a zombie not yet reaped)"));
    }

    #[test]
    fn pid_and_pidfile_are_exclusive() {
        assert_eq!(
            err(&["--pid", "5", "--pidfile", "/run/x.pid", "true"]),
            "--pid 5 and --pidfile /run/x.pid: give one target, not both"
        );
    }

    #[test]
    fn pidfile_must_name_a_live_process() {
        let dir = TempDir::new("config");
        let live = Live::sleep();
        let good = dir.file("good.pid", &format!("{}\n", live.pid()), 0o644);
        assert_eq!(
            probe(&["--pidfile", s(&good), "true"]).target,
            Some(TargetSpec::Pidfile(good.clone()))
        );

        let cases = [
            ("missing.pid", None, "no such file".to_string()),
            ("empty.pid", Some(""), "is empty: the service has not written its pid".to_string()),
            ("junk.pid", Some("nginx\n"), "first line 'nginx' is not a pid".to_string()),
            (
                "init.pid",
                Some("1\n"),
                "names pid 1: pid 1 (init) is never a target: give the service's own pid"
                    .to_string(),
            ),
        ];
        for (name, text, reason) in cases {
            let path = dir.0.join(name);
            if let Some(text) = text {
                dir.file(name, text, 0o644);
            }
            assert_eq!(
                err(&["--pidfile", s(&path), "true"]),
                format!("--pidfile {}: {reason}", s(&path))
            );
        }
        let dead = dead_pid();
        let path = dir.file("dead.pid", &format!("{dead}\n"), 0o644);
        assert_eq!(
            err(&["--pidfile", s(&path), "true"]),
            format!(
                "--pidfile {}: names pid {dead}: no such process: is the target running?",
                s(&path)
            )
        );
        let own = dir.file("own.pid", &format!("{}\n", std::process::id()), 0o644);
        assert!(err(&["--pidfile", s(&own), "true"]).ends_with("that is heat's own pid"));
    }

    #[test]
    fn root_refuses_a_writable_pidfile() {
        let dir = TempDir::new("config");
        let live = Live::sleep();
        let path = dir.file("x.pid", &format!("{}\n", live.pid()), 0o664);
        assert_eq!(
            err_in(&["--pidfile", s(&path), "true"], &root_env()),
            format!(
                "refusing pidfile {}: mode 0664 is group- or world-writable; chmod go-w it",
                s(&path)
            )
        );
        assert!(settings_from_cli(&args(&["--pidfile", s(&path), "true"]), &user_env()).is_ok());
    }

    #[test]
    fn root_trusts_a_users_pidfile_only_for_that_users_process() {
        let dir = TempDir::new("config");
        let root_proc = Live::sleep();
        let path = dir.file("x.pid", &format!("{}\n", root_proc.pid()), 0o644);
        if let Err(e) = std::os::unix::fs::chown(&path, Some(65534), Some(65534)) {
            // Only root can give a file away; these tests run as root.
            assert!(!nix::unistd::geteuid().is_root(), "chown as root failed: {e}");
            return;
        }
        let owner_of_root_proc = nix::unistd::getuid().as_raw();
        assert_eq!(
            err(&["--pidfile", s(&path), "true"]),
            format!(
                "refusing pidfile {}: owned by uid 65534 but pid {} runs as uid {owner_of_root_proc}",
                s(&path),
                root_proc.pid()
            )
        );
        let nobody = Live(Command::new("sleep").arg("30").uid(65534).gid(65534).spawn().unwrap());
        fs::write(&path, format!("{}\n", nobody.pid())).unwrap();
        assert_eq!(
            probe(&["--pidfile", s(&path), "true"]).target,
            Some(TargetSpec::Pidfile(path.clone()))
        );
    }

    #[test]
    fn signals_raised_on_heat_must_be_harmless() {
        for opt in ["--fault-signal", "--success-signal"] {
            for bad in ["STOP", "KILL", "TSTP", "USR2", "ALRM", "QUIT", "RTMIN"] {
                let e = err(&[opt, bad, "--recovery", "/bin/true", "true"]);
                assert_eq!(
                    e,
                    format!(
                        "{opt} {bad}: without a target it is raised on heat itself, which it would \
                         stop or kill; use HUP, USR1, TERM, INT, CONT, CHLD, WINCH or URG, or give a target"
                    )
                );
            }
            for good in ["HUP", "usr1", "SIGTERM", "2", "CONT", "CHLD", "WINCH", "URG"] {
                ok(&[opt, good, "--recovery", "/bin/true", "true"]);
            }
        }
        let live = Live::sleep();
        let p = probe(&["--pid", &live.pid().to_string(), "--fault-signal", "STOP", "true"]);
        assert_eq!(p.fault_signal, Some(Signal::STOP));
    }

    #[test]
    fn the_log_directory_must_exist() {
        let dir = TempDir::new("config");
        let log = dir.0.join("no-dir/heat.log");
        assert_eq!(
            err(&["--log", s(&log), "true"]),
            format!(
                "--log {}: directory {} does not exist; create it first",
                s(&log),
                s(&dir.0.join("no-dir"))
            )
        );
        assert_eq!(
            err(&["--log", s(&dir.0), "true"]),
            format!("--log {}: is a directory; name a file in it", s(&dir.0))
        );
        let file = dir.file("file", "", 0o644);
        let under_file = file.join("heat.log");
        assert_eq!(
            err(&["--log", s(&under_file), "true"]),
            format!("--log {}: {} is not a directory", s(&under_file), s(&file))
        );
        assert_eq!(ok(&["--log", "x.log", "true"]).log, PathBuf::from("x.log"));
        assert!(!dir.0.join("h.log").exists());
        ok(&["--log", s(&dir.0.join("h.log")), "true"]);
        assert!(!dir.0.join("h.log").exists(), "validation must not create the log");
        let fifo = dir.0.join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        assert_eq!(
            err(&["--log", s(&fifo), "true"]),
            format!("--log {}: not a regular file; heat appends to a regular file only", s(&fifo))
        );
        assert_eq!(
            err(&["--log", "/dev/null", "true"]),
            "--log /dev/null: not a regular file; heat appends to a regular file only"
        );
    }

    #[test]
    fn root_refuses_what_another_user_controls() {
        use std::os::unix::fs::chown;
        let dir = TempDir::new("config");
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
        let script = dir.file("check.sh", "#!/bin/sh\n", 0o755);
        let conf = dir.file("heat.toml", "[probe.a]\nscript = \"check.sh\"\n", 0o644);
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        ok(&["-s", s(&script)]);
        ok(&["-c", s(&conf)]);
        chown(&script, Some(1000), None).unwrap();
        let e = err(&["-s", s(&script)]);
        assert!(
            e.starts_with(&format!("refusing script {}: owned by uid 1000", s(&script))),
            "{e}"
        );
        assert!(e.contains("mode 0755") && e.ends_with("chown root it"), "{e}");
        let e = err(&["-c", s(&conf)]);
        assert!(e.starts_with("probe a: ") && e.contains("refusing script"), "{e}");
        chown(&script, Some(0), None).unwrap();
        chown(&conf, Some(1000), None).unwrap();
        let e = err(&["-c", s(&conf)]);
        assert!(e.starts_with(&format!("refusing config {}: owned by uid 1000", s(&conf))), "{e}");
        chown(&conf, Some(0), None).unwrap();
        // A directory others can write: they could rename their own file over it.
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
        let e = err(&["-c", s(&conf)]);
        assert!(
            e.starts_with(&format!(
                "refusing config {}: directory {} (mode 0777)",
                s(&conf),
                s(&dir.0)
            )),
            "{e}"
        );
        let e = err(&["--fail", s(&script), "true"]);
        assert!(e.starts_with("refusing fail hook"), "{e}");
        let e = err(&[s(&script)]);
        assert!(e.starts_with("refusing command"), "{e}");
        let e = err(&["--log", s(&dir.0.join("x.log")), "true"]);
        assert!(e.starts_with("refusing log"), "{e}");
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
        ok(&["-c", s(&conf)]);
    }

    // -- warnings -----------------------------------------------------------

    fn warnings(cli: &[&str]) -> Vec<String> {
        ok(cli).warnings
    }

    #[test]
    fn a_fail_hook_that_never_runs_is_warned_about() {
        let w = warnings(&["--fail", "/bin/true", "--recovery", "/bin/true", "true"]);
        assert_eq!(
            w,
            [
                "--fail /bin/true never runs: with threshold 1 every failure starts recovery instead \
              (raise the threshold or drop the fail hook)"
            ]
        );
        let live = Live::sleep();
        let pid = live.pid().to_string();
        let w = warnings(&["--pid", &pid, "--fail", "/bin/true", "--fault-signal", "USR1", "true"]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("--fail /bin/true never runs"));
        let none = warnings(&[
            "--fail",
            "/bin/true",
            "--recovery",
            "/bin/true",
            "--threshold",
            "2",
            "true",
        ]);
        assert!(none.is_empty(), "{none:?}");
        assert!(warnings(&["--fail", "/bin/true", "true"]).is_empty());
    }

    #[test]
    fn a_signal_without_target_is_warned_about() {
        assert_eq!(
            warnings(&["--signal", "USR1", "true"]),
            ["--signal USR1 has no effect without a target (pid or pidfile)"]
        );
        let live = Live::sleep();
        assert!(
            warnings(&["--pid", &live.pid().to_string(), "--signal", "USR1", "true"]).is_empty()
        );
    }

    #[test]
    fn a_success_signal_alone_is_warned_about() {
        let live = Live::sleep();
        let pid = live.pid().to_string();
        let w = warnings(&[
            "--pid",
            &pid,
            "--recovery",
            "/bin/true",
            "--success-signal",
            "CONT",
            "true",
        ]);
        assert_eq!(
            w,
            [
                "--success-signal CONT without a fault signal turns off the HUP sent on each failure; \
                 add --signal HUP to keep it"
            ]
        );
        let w = warnings(&["--pid", &pid, "--success-signal", "CONT", "true"]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].ends_with(
            "is never sent: without a recovery hook or fault signal recovery never starts"
        ));
        let both = ["--pid", &pid, "--fault-signal", "STOP", "--success-signal", "CONT", "true"];
        assert!(warnings(&both).is_empty());
        let explicit = [
            "--pid",
            &pid,
            "--signal",
            "HUP",
            "--recovery",
            "/bin/true",
            "--success-signal",
            "CONT",
            "true",
        ];
        assert!(warnings(&explicit).is_empty());
    }

    // -- what is sent on failure, and the report ----------------------------

    fn sample() -> ProbeConfig {
        ProbeConfig {
            check: Check::Exec {
                program: "/usr/bin/curl".into(),
                args: vec!["-sf".into(), "localhost/health_check".into()],
            },
            display: "curl -sf localhost/health_check".into(),
            ..crate::testutil::probe_config("cli")
        }
    }

    #[test]
    fn failure_signal_follows_the_probe_rules() {
        let p = sample();
        assert_eq!(
            crate::probe::Rules::from_config(&p).failure_signal(),
            None,
            "no target, nothing sent"
        );
        let p = ProbeConfig { target: Some(TargetSpec::Pid(5)), ..sample() };
        assert_eq!(crate::probe::Rules::from_config(&p).failure_signal(), Some(Signal::HUP));
        let p = ProbeConfig { signal: Some(Signal::USR1), ..p };
        assert_eq!(crate::probe::Rules::from_config(&p).failure_signal(), Some(Signal::USR1));
        let p = ProbeConfig { signal: None, fault_signal: Some(Signal::STOP), ..p };
        assert_eq!(crate::probe::Rules::from_config(&p).failure_signal(), None);
        let p = ProbeConfig { fault_signal: None, success_signal: Some(Signal::CONT), ..p };
        assert_eq!(crate::probe::Rules::from_config(&p).failure_signal(), None);
        let p = ProbeConfig { signal: Some(Signal::INT), ..p };
        assert_eq!(crate::probe::Rules::from_config(&p).failure_signal(), Some(Signal::INT));
    }

    fn settings_of(probes: Vec<ProbeConfig>) -> Settings {
        Settings {
            log: DEFAULT_LOG.into(),
            quiet: false,
            verbose: 0,
            check_only: true,
            probes,
            warnings: Vec::new(),
            config: None,
        }
    }

    #[test]
    fn describe_defaults() {
        assert_eq!(
            describe(&settings_of(vec![sample()])),
            "log = heat.verbose.log\n\
             \n\
             [probe.cli]\n\
             check = curl -sf localhost/health_check\n\
             form = exec\n\
             program = /usr/bin/curl\n\
             interval = 30s\n\
             timeout = 30s\n\
             target = -\n\
             signal = -\n\
             fail = -\n\
             recovery = -\n\
             threshold = 1\n\
             start_period = 0s\n\
             recovery_timeout = -\n\
             fault_signal = -\n\
             success_signal = -\n\
             hook_timeout = 5m\n\
             max_output = 64KiB\n\
             phase = 0s\n"
        );
    }

    #[test]
    fn describe_everything_set() {
        let hook = |p: &str| Some(Hook { path: p.into(), display: p.into() });
        let probe = ProbeConfig {
            check: Check::Script { path: "/etc/heat/check.sh".into() },
            display: "./check.sh".into(),
            interval: Duration::from_millis(1500),
            timeout: Duration::from_secs(1),
            target: Some(TargetSpec::Pidfile("/run/nginx.pid".into())),
            signal: Some(Signal::USR1),
            fail: hook("./notify.sh"),
            recovery: hook("./restart.sh"),
            threshold: NonZeroU32::new(3).unwrap(),
            start_period: Duration::from_secs(60),
            recovery_timeout: Some(Duration::from_secs(120)),
            fault_signal: Some(Signal::STOP),
            success_signal: Some("RTMIN+1".parse().unwrap()),
            hook_timeout: Duration::from_secs(30),
            max_output: 1000,
            workdir: Some("/etc/heat".into()),
            ..sample()
        };
        let text = describe(&settings_of(vec![probe]));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "log = heat.verbose.log",
                "",
                "[probe.cli]",
                "check = ./check.sh",
                "form = script",
                "interval = 1s 500ms",
                "timeout = 1s",
                "target = pidfile /run/nginx.pid",
                "signal = SIGUSR1",
                "fail = ./notify.sh",
                "recovery = ./restart.sh",
                "threshold = 3",
                "start_period = 1m",
                "recovery_timeout = 2m",
                "fault_signal = SIGSTOP",
                "success_signal = SIGRTMIN+1",
                "hook_timeout = 30s",
                "max_output = 1000",
                "workdir = /etc/heat",
                "phase = 0s",
            ]
        );
    }

    #[test]
    fn describe_many_probes_shows_their_phases() {
        let a = ProbeConfig { name: "a".into(), ..sample() };
        let web = ProbeConfig {
            name: "web".into(),
            check: Check::Shell { command: "true".into() },
            display: "true".into(),
            ..sample()
        };
        let text = describe(&settings_of(vec![a, web]));
        let phase_a =
            humantime::format_duration(crate::reload::phase("a", DEFAULT_INTERVAL)).to_string();
        assert!(text.contains("[probe.a]\ncheck = curl"), "{text}");
        assert!(
            text.contains(&format!(
                "phase = {phase_a}\n\n[probe.web]\ncheck = true\nform = shell\ninterval"
            )),
            "{text}"
        );
    }

    #[test]
    fn describe_the_command_line_as_parsed() {
        let live = Live::sleep();
        let settings = ok(&["--pid", &live.pid().to_string(), "-i", "10", "sh", "-c", "exit 0"]);
        let text = describe(&settings);
        assert!(text.starts_with("log = heat.verbose.log\n\n[probe.cli]\ncheck = sh -c 'exit 0'\nform = exec\nprogram = /"), "{text}");
        assert!(
            text.contains(&format!("\ntarget = pid {}\nsignal = SIGHUP\n", live.pid())),
            "{text}"
        );
        assert!(text.contains("\ninterval = 10s\ntimeout = 10s\n"), "{text}");
    }
}
