//! What validation depends on besides the values: the mode, who heat runs
//! as, PATH, where relative paths start.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::rc::Rc;

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
    /// As root, files owned by this uid (the probe's user) are trusted too.
    pub owner: Option<u32>,
    /// Programs found in PATH during this validation: 10,000 probes running
    /// `curl` look it up once. Shared by clones; a new `Env` starts empty,
    /// so a reload looks again.
    pub found: Rc<RefCell<Found>>,
    /// Files found runnable during this validation, by path and the owners
    /// they were vetted for: 10,000 probes running one script check it (a
    /// `statx` per directory up to /) once. A new `Env` starts empty.
    pub vetted: Rc<RefCell<Vetted>>,
}

/// Paths found runnable and the owners they were vetted for.
pub type Vetted = std::collections::HashSet<(PathBuf, Vec<u32>)>;

/// Programs by name and the owners they were vetted for.
pub type Found = HashMap<(OsString, Vec<u32>), PathBuf>;

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
            owner: None,
            found: Rc::default(),
            vetted: Rc::default(),
        }
    }

    pub(super) fn resolve(&self, path: &Path) -> PathBuf {
        match &self.workdir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// Who may own what heat runs: root, heat itself, the probe's user.
    pub(super) fn owners(&self) -> Vec<u32> {
        let mut owners = vec![self.euid];
        owners.extend(self.owner.filter(|&o| o != self.euid));
        owners
    }

    pub(super) fn is_root(&self) -> bool {
        self.euid == 0
    }
}
