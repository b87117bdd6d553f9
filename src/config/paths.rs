//! The files a probe names, found and vetted at start: programs through
//! PATH, scripts and hooks that can run, the log's directory, the pidfile;
//! as root, each only if root controls it (`trust`).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::AccessFlags;

use super::env::{Env, Mode};
use super::options::{Origin, Raw};
use super::{Check, ConfigError, Hook, Reason, shell_quote, trust};
use crate::target::{PidfileError, inspect_pidfile};
use crate::text::{show_path, shown};

/// glibc's search path when PATH is unset (`confstr(_CS_PATH)`).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

pub(super) fn exec_check(
    argv: &[OsString],
    origin: &Origin,
    env: &Env,
) -> Result<(Check, String), ConfigError> {
    let (name, args) =
        argv.split_first().ok_or_else(|| ConfigError::EmptyArgv { location: origin.location() })?;
    let program = find_program(name, origin, env)?;
    let display = argv.iter().map(|a| shell_quote(&a.to_string_lossy())).collect::<Vec<_>>();
    Ok((Check::Exec { program, args: args.to_vec() }, display.join(" ")))
}

/// Resolves an exec-form program once: through PATH, or as given if it has a `/`.
fn find_program(name: &OsStr, origin: &Origin, env: &Env) -> Result<PathBuf, ConfigError> {
    let program = shown(&name.to_string_lossy());
    if name.is_empty() {
        return Err(ConfigError::EmptyProgram { location: origin.location() });
    }
    if name.as_bytes().contains(&b'/') {
        let path = env.resolve(Path::new(name));
        runnable(&path, "command", &program, origin, env).map_err(|e| match e {
            Vetted::Reason(reason) => ConfigError::Program {
                location: origin.location(),
                program: program.clone(),
                reason,
            },
            Vetted::Refused(e) => e,
        })?;
        return Ok(path);
    }
    let key = (name.to_os_string(), if env.is_root() { env.owners() } else { Vec::new() });
    if let Some(found) = env.found.borrow().get(&key) {
        return Ok(found.clone());
    }
    let path = env.path.clone().unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    let mut not_executable = None;
    // Relative PATH entries are skipped: the result must not depend on the cwd.
    for dir in std::env::split_paths(&path).filter(|d| d.is_absolute()) {
        let candidate = dir.join(name);
        match fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() && is_executable(&candidate) => {
                refuse_untrusted(&candidate, "command", &program, origin, env)?;
                env.found.borrow_mut().insert(key, candidate.clone());
                return Ok(candidate);
            }
            Ok(meta) if meta.is_file() => not_executable = not_executable.or(Some(candidate)),
            _ => {}
        }
    }
    let location = origin.location();
    Err(match not_executable {
        Some(found) => ConfigError::FoundNotExecutable { location, program, found },
        None => ConfigError::NotInPath { location, program },
    })
}

pub(super) fn hook(raw: &Raw<PathBuf>, what: &'static str, env: &Env) -> Result<Hook, ConfigError> {
    let path = executable_file(raw, what, env)?;
    Ok(Hook { path, display: raw.value.to_string_lossy().into_owned() })
}

/// An existing, regular, executable file; as root, not writable by others.
pub(super) fn executable_file(
    raw: &Raw<PathBuf>,
    what: &'static str,
    env: &Env,
) -> Result<PathBuf, ConfigError> {
    let path = env.resolve(&raw.value);
    let shown = shown(&raw.value.to_string_lossy());
    runnable(&path, what, &shown, &raw.origin, env).map_err(|e| match e {
        Vetted::Reason(r) => raw.error(r),
        Vetted::Refused(e) => e,
    })?;
    Ok(path)
}

/// Why a file cannot be run: a reason about the value, or a refusal that
/// names the file itself.
enum Vetted {
    Reason(Reason),
    Refused(ConfigError),
}

/// Checks that `path` can be run. As root, writability is checked before the
/// execute bits: a file others can rewrite is refused even before it is made
/// executable.
fn runnable(
    path: &Path,
    what: &'static str,
    shown: &str,
    origin: &Origin,
    env: &Env,
) -> Result<(), Vetted> {
    let key = (path.to_path_buf(), env.owners());
    if env.vetted.borrow().contains(&key) {
        return Ok(());
    }
    let meta = fs::metadata(path).map_err(|e| {
        Vetted::Reason(match e.kind() {
            io::ErrorKind::NotFound => Reason::NoSuchFile,
            _ => Reason::CannotAccess((&e).into()),
        })
    })?;
    if !meta.is_file() {
        return Err(Vetted::Reason(Reason::NotRegular));
    }
    refuse_untrusted(path, what, shown, origin, env).map_err(Vetted::Refused)?;
    if !is_executable(path) {
        return Err(Vetted::Reason(Reason::NotExecutable));
    }
    env.vetted.borrow_mut().insert(key);
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
    what: &'static str,
    shown: &str,
    origin: &Origin,
    env: &Env,
) -> Result<(), ConfigError> {
    if !env.is_root() {
        return Ok(());
    }
    trust::check(path, &env.owners()).map_err(|why| ConfigError::Untrusted {
        location: origin.location(),
        what,
        shown: shown.to_string(),
        why,
    })
}

/// A working directory: an existing directory.
pub(super) fn directory(raw: &Raw<PathBuf>, env: &Env) -> Result<PathBuf, ConfigError> {
    let path = env.resolve(&raw.value);
    match fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(std::path::absolute(&path).unwrap_or(path)),
        Ok(_) => Err(raw.error(Reason::NotADir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(raw.error(Reason::NoSuchFile)),
        Err(e) => Err(raw.error(Reason::CannotAccess((&e).into()))),
    }
}

/// The config file: regular (a FIFO or device would hang a read) and, as root,
/// trusted.
pub(super) fn vet_config(path: &Path, meta: &fs::Metadata, env: &Env) -> Result<(), ConfigError> {
    if !meta.is_file() {
        return Err(ConfigError::NotRegular { path: path.to_path_buf() });
    }
    refuse_untrusted(path, "config", &show_path(path), &Origin::flag("--config"), env)
}

/// The log: a regular file or none yet, in an existing directory; as root,
/// trusted.
pub(super) fn check_log(log: &Raw<PathBuf>, env: &Env) -> Result<(), ConfigError> {
    let path = env.resolve(&log.value);
    match fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => return Err(log.error(Reason::LogIsDirectory)),
        // A FIFO would block the writer (or the start) forever, a device is no log.
        Ok(meta) if !meta.is_file() => return Err(log.error(Reason::LogNotRegular)),
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(log.error(Reason::NotADirectory(dir))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(log.error(Reason::NoDirectory(dir)));
        }
        Err(e) => return Err(log.error(Reason::CannotAccessDir { dir, io: (&e).into() })),
    }
    refuse_untrusted(&path, "log", &show_path(&log.value), &log.origin, env)
}

/// A pidfile on the command line must name a live process now, one heat may
/// adopt (see `target::inspect_pidfile`); in service mode one naming none is
/// followed later, but as root one others can write is refused.
pub(super) fn pidfile(raw: &Raw<PathBuf>, env: &Env) -> Result<(), ConfigError> {
    let path = env.resolve(&raw.value);
    match fs::metadata(&path) {
        Ok(_) => {}
        Err(_) if env.mode == Mode::Service => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(raw.error(Reason::NoSuchFile)),
        Err(e) => return Err(raw.error(Reason::CannotRead((&e).into()))),
    }
    match inspect_pidfile(&path, &[], env.is_root()) {
        Ok(_) => Ok(()),
        Err(why) if why.is_refusal() => Err(ConfigError::UntrustedPidfile {
            location: raw.origin.location(),
            shown: show_path(&raw.value),
            why,
        }),
        Err(_) if env.mode == Mode::Service => Ok(()),
        Err(PidfileError::Pid { pid, .. }) if pid == env.own_pid => {
            Err(raw.error(Reason::NamesHeat(pid)))
        }
        Err(e) => Err(raw.error(Reason::Pidfile(e.to_string()))),
    }
}
