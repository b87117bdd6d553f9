//! A probe's stacked layers resolved into its effective settings: built-in
//! defaults for what no layer set, and the rules that tie options together
//! (a signal raised on heat itself, a target heat may signal, a check).

use std::sync::Arc;
use std::time::Duration;

use super::env::{Env, Mode};
use super::options::{Layer, Origin, Raw, RawCheck, RawTarget};
use super::{
    Check, ConfigError, DEFAULT_HOOK_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_MAX_OUTPUT, Limits,
    ProbeConfig, Reason, TargetSpec,
};
use super::{accounts, paths};
use crate::signal::Signal;
use crate::target::{Liveness, liveness};
use crate::text::{show_path, shown};

/// Turns a probe's stacked layers into its effective settings. `table` is
/// where a heat.toml probe was declared (errors without a value of their own
/// point there). Warnings go to `warnings`.
pub fn validate_probe(
    name: &str,
    table: Option<&Origin>,
    layer: &Layer,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<ProbeConfig, ConfigError> {
    let probe = build(name, table, layer, env);
    let probe = match env.mode {
        Mode::CommandLine => probe?,
        Mode::Service => probe.map_err(|e| e.in_probe(name))?,
    };
    let found = warnings_of(layer, &probe);
    match env.mode {
        Mode::CommandLine => warnings.extend(found),
        Mode::Service => {
            warnings.extend(found.iter().map(|w| format!("probe {}: {w}", shown(name))))
        }
    }
    Ok(probe)
}

fn build(
    name: &str,
    table: Option<&Origin>,
    layer: &Layer,
    env: &Env,
) -> Result<ProbeConfig, ConfigError> {
    let interval = layer.interval.as_ref().map_or(DEFAULT_INTERVAL, |r| r.value.0);
    let user = accounts::resolve(layer.user.as_ref(), layer.group.as_ref(), env)?.map(Arc::new);
    let hook_user = match &layer.hook_user {
        Some(h) => accounts::resolve(Some(h), None, env)?.map(Arc::new),
        None => user.clone(),
    };
    // As root, a script may be owned by the user it runs as, a hook by its own.
    let check_env = Env { owner: user.as_ref().map(|c| c.uid), ..env.clone() };
    let hook_env = Env { owner: hook_user.as_ref().map(|c| c.uid), ..env.clone() };
    let (check, display) = check(layer.check.as_ref(), table, &check_env)?;
    let target = layer.target.as_ref().map(|t| target(t, env)).transpose()?;
    let has_target = target.is_some();
    Ok(ProbeConfig {
        name: name.to_string(),
        check,
        display,
        interval,
        timeout: layer.timeout.as_ref().map_or(interval, |r| r.value.0),
        target,
        signal: layer.signal.as_ref().map(|r| r.value),
        fail: layer.fail.as_ref().map(|h| paths::hook(h, "fail hook", &hook_env)).transpose()?,
        recovery: layer
            .recovery
            .as_ref()
            .map(|h| paths::hook(h, "recovery hook", &hook_env))
            .transpose()?,
        threshold: layer.threshold.as_ref().map_or(std::num::NonZeroU32::MIN, |r| r.value),
        start_period: layer.start_period.as_ref().map_or(Duration::ZERO, |r| r.value),
        recovery_timeout: layer.recovery_timeout.as_ref().map(|r| r.value.0),
        fault_signal: raised(&layer.fault_signal, has_target, env)?,
        success_signal: raised(&layer.success_signal, has_target, env)?,
        hook_timeout: layer.hook_timeout.as_ref().map_or(DEFAULT_HOOK_TIMEOUT, |r| r.value.0),
        max_output: layer.max_output.as_ref().map_or(DEFAULT_MAX_OUTPUT, |r| r.value.0),
        workdir: match &layer.workdir {
            Some(dir) => Some(paths::directory(dir, env)?),
            None => env.workdir.clone(),
        },
        user,
        hook_user,
        env: layer.env.as_ref().map(|r| r.value.0.clone()).unwrap_or_default(),
        limits: Limits {
            memory_max: layer.memory_max.as_ref().map(|r| r.value.0),
            pids_max: layer.pids_max.as_ref().map(|r| r.value.0),
            cpu_max: layer.cpu_max.as_ref().map(|r| r.value),
        },
    })
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
fn raised(
    raw: &Option<Raw<Signal>>,
    has_target: bool,
    env: &Env,
) -> Result<Option<Signal>, ConfigError> {
    let Some(r) = raw else { return Ok(None) };
    let allowed = self_signals(env.mode);
    if has_target || allowed.contains(&r.value) {
        return Ok(Some(r.value));
    }
    let names: Vec<String> =
        allowed.iter().map(|a| a.to_string().trim_start_matches("SIG").to_string()).collect();
    let (last, rest) = names.split_last().expect("the allowed list is not empty");
    Err(r.error(Reason::RaisedOnHeat { allowed: format!("{} or {last}", rest.join(", ")) }))
}

fn check(
    raw: Option<&Raw<RawCheck>>,
    table: Option<&Origin>,
    env: &Env,
) -> Result<(Check, String), ConfigError> {
    let Some(raw) = raw else {
        return Err(ConfigError::NoCheck {
            location: table.map(Origin::location).unwrap_or_default(),
            command_line: env.mode == Mode::CommandLine,
        });
    };
    match &raw.value {
        RawCheck::Exec(argv) => paths::exec_check(argv, &raw.origin, env),
        RawCheck::Shell(command) if command.trim().is_empty() => {
            Err(ConfigError::value(raw.origin.clone(), "\"\"", Reason::EmptyCommand))
        }
        RawCheck::Shell(command) => {
            Ok((Check::Shell { command: command.clone() }, command.clone()))
        }
        RawCheck::Script(path) => {
            let resolved = paths::executable_file(&raw.with(path.clone()), "script", env)?;
            Ok((Check::Script { path: resolved }, path.to_string_lossy().into_owned()))
        }
    }
}

fn target(raw: &Raw<RawTarget>, env: &Env) -> Result<TargetSpec, ConfigError> {
    match &raw.value {
        RawTarget::Pid(pid) => {
            target_pid(pid.0, env).map_err(|reason| raw.error(reason))?;
            Ok(TargetSpec::Pid(pid.0 as u32))
        }
        RawTarget::Pidfile(path) => {
            paths::pidfile(&raw.with(path.clone()), env)?;
            Ok(TargetSpec::Pidfile(env.resolve(path)))
        }
    }
}

/// A pid heat may target now: not init, not heat, alive.
fn target_pid(pid: i32, env: &Env) -> Result<(), Reason> {
    if pid == 1 {
        return Err(Reason::Init);
    }
    if pid as u32 == env.own_pid {
        return Err(Reason::HeatsOwnPid);
    }
    if env.mode == Mode::Service && env.known_pids.contains(&(pid as u32)) {
        return Ok(());
    }
    match liveness(pid).map_err(|e| Reason::CannotCheck(e.into()))? {
        Liveness::Alive => Ok(()),
        Liveness::Gone => Err(Reason::NoSuchProcess),
        Liveness::Zombie => Err(Reason::Zombie),
    }
}

/// Valid but useless combinations, warned about at start and by `-t`.
fn warnings_of(layer: &Layer, probe: &ProbeConfig) -> Vec<String> {
    let mut found = Vec::new();
    let starts_recovery = probe.recovery.is_some() || probe.fault_signal.is_some();
    if let (Some(fail), true) = (&layer.fail, probe.threshold.get() == 1 && starts_recovery) {
        found.push(format!(
            "{} never runs: with threshold 1 every failure starts recovery instead (raise the \
             threshold or drop the fail hook)",
            fail.origin.culprit(show_path(&fail.value))
        ));
    }
    if let (Some(sig), None) = (&layer.signal, &probe.target) {
        found.push(format!(
            "{} has no effect without a target (pid or pidfile)",
            sig.origin.culprit(&sig.text)
        ));
    }
    if let Some(success) = &layer.success_signal {
        let culprit = success.origin.culprit(&success.text);
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
