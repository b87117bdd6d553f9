//! What the user asked for, validated once into types.
//!
//! A `Settings` that exists is valid: paths resolved and executable, signals
//! known, durations non-zero, the target alive. Nothing downstream re-checks.
//!
//! Every source of settings is a [`Layer`] of values, each parsed where it
//! entered (`value`) and carrying where it was written ([`Origin`]) so that an
//! error can point at it. Layers stack with [`Layer::over`] (README "Service
//! mode": defaults < `[defaults]` < probe < command line), and
//! [`validate_probe`] turns the stack into a [`ProbeConfig`].
//!
//! The files, one job each: `args` lists the command line's options,
//! `options` defines the probe options (flag, key, layer, `-t` line), `value`
//! parses their values, `env` is what validation depends on besides them,
//! `validate` resolves a probe, `paths` finds and vets what heat runs and
//! writes, `trust` is the root-safety rule, `file` reads heat.toml, `error`
//! says what is wrong.

use std::ffi::OsString;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::probe::{Rules, TargetKind};
use crate::signal::Signal;

mod accounts;
mod args;
mod env;
mod error;
mod file;
mod options;
mod paths;
mod trust;
mod validate;
mod value;

pub use args::Args;
pub use env::{Env, Mode};
pub use error::{ConfigError, Io, Reason};
pub use file::CLI_PROBE;
pub use options::{Layer, Origin, ProbeFlags, Raw, RawCheck, RawTarget, format_size};
pub use validate::validate_probe;
pub use value::{
    Account, CpuQuota, Given, MAX_DURATION, MAX_OUTPUT, MIN_INTERVAL, Parser, Pid, Value,
};

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
    /// Who checks run as; `None` is heat's own user. Shared with `hook_user`
    /// when that is the same, and boxed: most probes have none.
    pub user: Option<Arc<Credentials>>,
    /// Who hooks run as (the probe's user unless `hook_user` says otherwise).
    pub hook_user: Option<Arc<Credentials>>,
    /// Variables added to the cleaned environment, in order.
    pub env: Vec<(String, String)>,
    pub limits: Limits,
}

/// A user a child runs as, resolved at start from the user and group databases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, as initgroups would set them (the primary among them).
    pub groups: Vec<u32>,
    pub home: PathBuf,
    pub shell: PathBuf,
}

impl Credentials {
    /// `nobody (uid 65534)`.
    pub fn user_text(&self) -> String {
        format!("{} (uid {})", self.name, self.uid)
    }

    /// `gid 65534, groups 65534 100`.
    pub fn groups_text(&self) -> String {
        let groups: Vec<String> = self.groups.iter().map(u32::to_string).collect();
        format!("gid {}, groups {}", self.gid, groups.join(" "))
    }
}

/// Per-run cgroup limits; applied where heat runs checks in cgroups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_max: Option<u64>,
    pub pids_max: Option<u64>,
    pub cpu_max: Option<CpuQuota>,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.memory_max.is_some() || self.pids_max.is_some() || self.cpu_max.is_some()
    }
}

impl ProbeConfig {
    /// The parts the probe's decisions depend on (service mode is the
    /// supervisor's to set).
    pub fn rules(&self) -> Rules {
        Rules {
            interval: self.interval,
            threshold: self.threshold.get(),
            start_period: self.start_period,
            recovery_timeout: self.recovery_timeout,
            target: match self.target {
                None => TargetKind::None,
                Some(TargetSpec::Pid(_)) => TargetKind::Pid,
                Some(TargetSpec::Pidfile(_)) => TargetKind::Pidfile,
            },
            service: false,
            signal: self.signal,
            fault_signal: self.fault_signal,
            success_signal: self.success_signal,
            fail_hook: self.fail.is_some(),
            recovery_hook: self.recovery.is_some(),
        }
    }
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
    /// Where `heat status` and friends reach this heat; `None`: nowhere.
    pub control_socket: Option<PathBuf>,
    /// Where Prometheus scrapes heat; `None`: no port is opened.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024;
pub const DEFAULT_LOG: &str = "heat.verbose.log";

/// Shell-quotes `arg` where a shell would need it.
pub fn shell_quote(arg: &str) -> String {
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b);
    if !arg.is_empty() && arg.bytes().all(safe) {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// Validates the command line into settings for one probe named `cli`.
pub fn from_cli(cli: &Args) -> Result<Settings, ConfigError> {
    settings_from_cli(cli, &Env::current())
}

/// Validates the command line (and the config file it names) against `env`.
pub fn settings_from_cli(cli: &Args, env: &Env) -> Result<Settings, ConfigError> {
    if let Some(path) = &cli.config {
        return file::load(path, cli, env);
    }
    let layer = cli_layer(cli)?;
    let mut warnings = Vec::new();
    let probe = validate_probe("cli", None, &layer, env, &mut warnings)?;
    let log = cli.log.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_LOG));
    let log = Raw { text: log.to_string_lossy().into_owned(), value: log, origin: flag("--log") };
    paths::check_log(&log, env)?;
    Ok(Settings {
        log: log.value,
        quiet: cli.quiet,
        verbose: cli.verbose,
        check_only: cli.check_config,
        probes: vec![probe],
        warnings,
        config: None,
        control_socket: cli.control_socket.as_ref().map(|p| env.resolve(p)),
        metrics_listen: metrics_flag(cli)?,
    })
}

/// `--metrics-listen`, when given.
pub(super) fn metrics_flag(cli: &Args) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    let Some(text) = &cli.metrics_listen else {
        return Ok(None);
    };
    let raw = Raw { value: text.clone(), text: text.clone(), origin: flag("--metrics-listen") };
    listen_address(&raw).map(Some)
}

/// `host:port` (an IP literal, or `localhost`) for the metrics server.
pub(crate) fn listen_address(raw: &Raw<String>) -> Result<std::net::SocketAddr, ConfigError> {
    use std::net::{Ipv4Addr, SocketAddr};
    if let Ok(addr) = raw.value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // `localhost` is the one name taken: no resolver is asked at start.
    match raw.value.rsplit_once(':') {
        Some(("localhost", port)) => port
            .parse::<u16>()
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .map_err(|_| raw.error(Reason::NotAnAddress)),
        _ => Err(raw.error(Reason::NotAnAddress)),
    }
}

fn flag(name: &str) -> Origin {
    Origin::flag(name)
}

/// The command line's layer. Refuses what one layer cannot hold: a command
/// and `-s`, or `--pid` and `--pidfile`.
pub fn cli_layer(cli: &Args) -> Result<Layer, ConfigError> {
    let path = |p: &PathBuf, name: &str| Raw {
        value: p.clone(),
        text: p.to_string_lossy().into_owned(),
        origin: flag(name),
    };
    let check = match (&cli.script, cli.command.first()) {
        (Some(script), Some(program)) => {
            return Err(ConfigError::Both {
                location: String::new(),
                both: format!(
                    "--script {} and a command ({})",
                    crate::text::show_path(script),
                    crate::text::shown(&program.to_string_lossy())
                ),
                slot: "check",
            });
        }
        (Some(script), None) => {
            Some(path(script, "--script").with(RawCheck::Script(script.clone())))
        }
        (None, Some(program)) => Some(Raw {
            value: RawCheck::Exec(cli.command.clone()),
            text: program.to_string_lossy().into_owned(),
            origin: flag("COMMAND"),
        }),
        (None, None) => None,
    };
    let target = match (&cli.pid, &cli.pidfile) {
        (Some(pid), Some(file)) => {
            return Err(ConfigError::Both {
                location: String::new(),
                both: format!(
                    "--pid {} and --pidfile {}",
                    crate::text::shown(&pid.text),
                    crate::text::show_path(file)
                ),
                slot: "target",
            });
        }
        (Some(pid), None) => Some(Raw {
            value: RawTarget::Pid(pid.value),
            text: pid.text.clone(),
            origin: flag("--pid"),
        }),
        (None, Some(file)) => Some(path(file, "--pidfile").with(RawTarget::Pidfile(file.clone()))),
        (None, None) => None,
    };
    Ok(Layer { check, target, ..Layer::from_flags(&cli.probe) })
}

#[cfg(test)]
mod tests;
