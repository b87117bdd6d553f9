//! Containment: every check and hook runs in a cgroup v2 of its own, so nothing
//! it forks escapes. A `setsid` daemon leaves its process group; it cannot
//! leave its cgroup. When a check ends, everything in its cgroup is killed
//! (`cgroup.kill`) and the cgroup removed; a hook's cgroup is kept while
//! anything in it runs (what a recovery hook starts is meant to stay), and
//! visible per probe.
//!
//! Layout, under heat's own cgroup `C` (the `0::` line of /proc/self/cgroup):
//!
//! ```text
//! C/heat-<pid>/self                  heat itself, so C/heat-<pid> holds no process
//! C/heat-<pid>/check-<probe>-<seq>   one per check run, killed and removed at its end
//! C/heat-<pid>/hook-<probe>-<seq>    one per hook run, removed once it is empty
//! ```
//!
//! The instance directory is heat's own, so two heats sharing `C` (two command
//! lines in one shell's scope) never touch each other's children. A sibling
//! `C/heat-*` whose `self` is empty is a previous life of some heat (killed
//! with -9): [`Containment::set_up`] kills and removes its check cgroups, keeps
//! its populated hook cgroups and reports both ([`Sweep`]).
//!
//! Where no cgroup v2 is writable (not root and not delegated, a v1-only host)
//! heat falls back to process groups; [`Containment::describe`] says which is in
//! force. File IO on cgroupfs is fast; the waits here (for a cgroup to freeze
//! or empty) are bounded, and [`Cgroup::end`] waits on tokio's clock.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, Signal};

use crate::text;

/// The controllers a probe's limits use, in the order `describe` lists them.
const LIMIT_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];
/// How long the sweep of previous lives waits for their killed checks to go.
const SWEEP_WAIT: Duration = Duration::from_millis(500);
/// How long the kill without `cgroup.kill` waits for the cgroup to freeze.
const FREEZE_WAIT: Duration = Duration::from_millis(100);
/// How long [`Cgroup::end`] waits for a killed cgroup to empty before it gives up
/// (a process in uninterruptible sleep); [`Tree::tidy`] takes over from there.
const END_WAIT: Duration = Duration::from_secs(5);
/// Longest single sleep in a bounded wait on `cgroup.events`.
const POLL_STEP: Duration = Duration::from_millis(10);

/// What a cgroup is for: its name's prefix and what happens at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Killed and removed when the check ends.
    Check,
    /// Kept while populated after the hook ends.
    Hook,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Check => "check",
            Kind::Hook => "hook",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// A probe's resource limits, each written to its controller's file in the
/// check's and hook's cgroups where that controller is enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// `memory.max`, bytes.
    pub memory_max: Option<u64>,
    /// `pids.max`.
    pub pids_max: Option<u64>,
    /// `cpu.max`: (quota_us, period_us).
    pub cpu_max: Option<(u64, u64)>,
}

impl Limits {
    /// A probe's limits as its cgroups' files take them.
    pub fn of(l: &crate::config::Limits) -> Limits {
        Limits {
            memory_max: l.memory_max,
            pids_max: l.pids_max,
            cpu_max: l.cpu_max.map(|q| (q.quota_us(), crate::config::CpuQuota::PERIOD_US)),
        }
    }

    /// (controller, file, value) for each limit set.
    fn files(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut out = Vec::new();
        if let Some((quota, period)) = self.cpu_max {
            out.push(("cpu", "cpu.max", format!("{quota} {period}")));
        }
        if let Some(bytes) = self.memory_max {
            out.push(("memory", "memory.max", bytes.to_string()));
        }
        if let Some(n) = self.pids_max {
            out.push(("pids", "pids.max", n.to_string()));
        }
        out
    }

    fn missing(&self, enabled: &[&'static str]) -> Vec<&'static str> {
        self.files().into_iter().map(|(c, _, _)| c).filter(|c| !enabled.contains(c)).collect()
    }
}

/// A cgroup operation that failed, with the cgroup's path; kept as the inner
/// error of an `io::Error` so the kind and the system's reason survive.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}", text::show_path(path))]
pub struct CgroupError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

fn ctx(op: &'static str, path: &Path, source: io::Error) -> io::Error {
    io::Error::new(source.kind(), CgroupError { op, path: path.to_owned(), source })
}

/// Which containment is in force.
#[derive(Debug)]
pub enum Containment {
    /// heat runs in its instance's `self`; checks and hooks get cgroups.
    Cgroups(Tree),
    /// A writable cgroup v2 was found and nothing was created (`-t`).
    Detected(Site),
    /// Process groups only; why.
    ProcessGroups { reason: String },
}

impl Containment {
    /// Finds heat's cgroup, ends the checks of previous lives, creates heat's
    /// instance and moves heat into its `self`. Falls back to process groups
    /// (with the reason) where that cannot be done. The [`Sweep`] says what
    /// was found of previous lives, to be logged.
    pub fn set_up() -> (Containment, Sweep) {
        contain(detect(), std::process::id())
    }

    /// What [`set_up`](Self::set_up) would use, found without moving heat or
    /// creating anything.
    pub fn detect_only() -> Containment {
        match detect() {
            Ok(site) => Containment::Detected(site),
            Err(reason) => Containment::ProcessGroups { reason },
        }
    }

    /// One line for `-t` and the start log.
    pub fn describe(&self) -> String {
        match self {
            Containment::Cgroups(tree) => format!(
                "cgroup v2 at {}{}",
                text::show_path(&tree.inner.instance),
                controllers_note(&tree.inner.enabled)
            ),
            Containment::Detected(site) => format!(
                "cgroup v2 at {}{}",
                text::show_path(&site.own),
                controllers_note(&site.controllers)
            ),
            Containment::ProcessGroups { reason } => {
                format!("process groups (no cgroup v2 writable here: {reason})")
            }
        }
    }

    #[cfg(test)]
    pub fn tree(&self) -> Option<&Tree> {
        match self {
            Containment::Cgroups(tree) => Some(tree),
            _ => None,
        }
    }

    /// The controllers `limits` needs that checks and hooks will not have: the
    /// caller warns and runs the probe without them.
    pub fn missing_controllers(&self, limits: &Limits) -> Vec<&'static str> {
        match self {
            Containment::Cgroups(tree) => tree.missing_controllers(limits),
            Containment::Detected(site) => limits.missing(&site.controllers),
            Containment::ProcessGroups { .. } => limits.missing(&[]),
        }
    }
}

fn controllers_note(enabled: &[&'static str]) -> String {
    if enabled.is_empty() {
        " (no controllers for limits)".to_owned()
    } else {
        format!(" (limits: {})", enabled.join(", "))
    }
}

fn contain(site: Result<Site, String>, member: u32) -> (Containment, Sweep) {
    let site = match site {
        Ok(site) => site,
        Err(reason) => return (Containment::ProcessGroups { reason }, Sweep::default()),
    };
    let sweep = sweep(&site.own);
    match Tree::create(&site, member) {
        Ok(tree) => (Containment::Cgroups(tree), sweep),
        Err(e) => (Containment::ProcessGroups { reason: text::chain(&e) }, sweep),
    }
}

/// heat's own cgroup on the v2 hierarchy, found writable.
#[derive(Debug, Clone)]
pub struct Site {
    /// heat's cgroup `C`.
    own: PathBuf,
    /// `C` is the hierarchy's root (it has no `cgroup.type`): heat then leaves its
    /// `cgroup.subtree_control`, which is the whole system's, as it is.
    true_root: bool,
    /// The limit controllers checks could get.
    controllers: Vec<&'static str>,
}

/// Set to `process-groups` in heat's environment, heat leaves cgroups alone
/// (to compare the two, or where something else owns heat's cgroup).
const OFF_VAR: &str = "HEAT_CONTAINMENT";

fn detect() -> Result<Site, String> {
    if std::env::var_os(OFF_VAR).is_some_and(|v| v == "process-groups") {
        return Err(format!("{OFF_VAR}=process-groups"));
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {}", text::io_reason(&e)))?;
    let Some(mount) = parse_mountinfo(&mountinfo) else {
        return Err("no cgroup2 file system is mounted".to_owned());
    };
    let cgroup = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {}", text::io_reason(&e)))?;
    let Some(own) = parse_own_cgroup(&cgroup) else {
        return Err("heat is in no cgroup v2 (/proc/self/cgroup has no 0:: line)".to_owned());
    };
    let Some(dir) = cgroup_dir(&mount, own) else {
        return Err(format!(
            "heat's cgroup {} is outside the cgroup2 mount at {}",
            text::shown(own),
            text::show_path(&mount.point)
        ));
    };
    if mount.read_only {
        return Err(format!("the cgroup2 mount at {} is read-only", text::show_path(&mount.point)));
    }
    let euid = rustix::process::geteuid();
    if !euid.is_root() {
        for path in [dir.clone(), dir.join("cgroup.procs")] {
            if writable(&path).is_err() {
                return Err(format!(
                    "{} is not writable by uid {} (not root, and not delegated)",
                    text::show_path(&path),
                    euid.as_raw()
                ));
            }
        }
    }
    let true_root = !dir.join("cgroup.type").exists();
    // At the true root only what the system already enabled can be used.
    let offered = read_words(&dir.join(if true_root {
        "cgroup.subtree_control"
    } else {
        "cgroup.controllers"
    }));
    let controllers = LIMIT_CONTROLLERS.into_iter().filter(|c| offered.iter().any(|o| o == c));
    Ok(Site { own: dir, true_root, controllers: controllers.collect() })
}

/// Whether heat's effective uid may write `path` (delegation is by ownership).
fn writable(path: &Path) -> nix::Result<()> {
    use nix::fcntl::AT_FDCWD;
    use nix::unistd::{AccessFlags, faccessat};
    faccessat(AT_FDCWD, path, AccessFlags::W_OK, nix::fcntl::AtFlags::AT_EACCESS)
}

/// The cgroup2 entry of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    /// The path inside the hierarchy that is mounted there (`/` but for bind mounts).
    root: PathBuf,
    read_only: bool,
}

/// The first cgroup2 mount: `id parent dev root point options [tags…] - fstype …`.
fn parse_mountinfo(text: &str) -> Option<Mount> {
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = left.split(' ').collect();
        Some(Mount {
            root: unescape(fields.get(3)?),
            point: unescape(fields.get(4)?),
            read_only: fields.get(5)?.split(',').any(|o| o == "ro"),
        })
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8) + (b - b'0')));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The `0::/path` line of /proc/self/cgroup.
fn parse_own_cgroup(text: &str) -> Option<&str> {
    text.lines().find_map(|line| line.strip_prefix("0::"))
}

/// Where heat's cgroup is in the file system.
fn cgroup_dir(mount: &Mount, own: &str) -> Option<PathBuf> {
    let rel = Path::new(own).strip_prefix(&mount.root).ok()?;
    // Joining "" would add a trailing slash.
    Some(if rel.as_os_str().is_empty() { mount.point.clone() } else { mount.point.join(rel) })
}

/// The keys of `cgroup.events` heat reads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Events {
    populated: bool,
    frozen: bool,
}

fn parse_events(text: &str) -> Events {
    let mut events = Events::default();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("populated", v)) => events.populated = v.trim() == "1",
            Some(("frozen", v)) => events.frozen = v.trim() == "1",
            _ => {}
        }
    }
    events
}

fn parse_procs(text: &str) -> Vec<u32> {
    text.split_ascii_whitespace().filter_map(|p| p.parse().ok()).collect()
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `heat-<pid>` or `heat-<pid>-<n>`: a heat's instance directory.
fn is_instance(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("heat-") else {
        return false;
    };
    let (pid, n) = rest.split_once('-').unwrap_or((rest, "0"));
    digits(pid) && digits(n)
}

/// `check-<probe>-<seq>` or `hook-<probe>-<seq>`: (kind, probe); a shared
/// check cgroup, `check-<seq>`, has no probe (`""`).
fn parse_member(name: &str) -> Option<(Kind, &str)> {
    if name.strip_prefix("check-").is_some_and(digits) {
        return Some((Kind::Check, ""));
    }
    [Kind::Check, Kind::Hook].into_iter().find_map(|kind| {
        let rest = name.strip_prefix(kind.prefix())?.strip_prefix('-')?;
        let (probe, seq) = rest.rsplit_once('-')?;
        (valid_probe(probe) && digits(seq)).then_some((kind, probe))
    })
}

fn valid_probe(probe: &str) -> bool {
    !probe.is_empty() && probe.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn read_words(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|t| t.split_ascii_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Writes `value` in one write(2), as cgroupfs wants; never creates the file.
fn write_file(path: &Path, value: &str) -> io::Result<()> {
    OpenOptions::new().write(true).open(path)?.write_all(value.as_bytes())
}

fn events(cgroup: &Path) -> io::Result<Events> {
    read_events(File::open(cgroup.join("cgroup.events"))?)
}

/// Opens the directory `path` (relative to `at`, if given) for `*at` calls
/// and `CLONE_INTO_CGROUP`.
fn open_dir(at: Option<&OwnedFd>, path: &Path) -> io::Result<OwnedFd> {
    use nix::fcntl::{AT_FDCWD, OFlag, openat};
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mode = nix::sys::stat::Mode::empty();
    Ok(match at {
        Some(dir) => openat(dir, path, flags, mode)?,
        None => openat(AT_FDCWD, path, flags, mode)?,
    })
}

/// `cgroup.events` of the cgroup open as `dir`.
fn events_at(dir: BorrowedFd<'_>) -> io::Result<Events> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    let fd = openat(dir, "cgroup.events", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    read_events(File::from(fd))
}

/// Reads an open `cgroup.events` in one read of a small buffer: the kernel
/// hands a seq file's text whole, and read_to_string would stat, seek and
/// read again for nothing.
fn read_events(mut file: File) -> io::Result<Events> {
    let mut buf = [0u8; 256];
    let mut len = 0;
    while len < buf.len() && !complete_events(&buf[..len]) {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(parse_events(&String::from_utf8_lossy(&buf[..len])))
}

/// `cgroup.events` text that holds both of its lines whole.
fn complete_events(text: &[u8]) -> bool {
    let has =
        |key: &[u8]| text.split(|&b| b == b'\n').rev().skip(1).any(|line| line.starts_with(key));
    has(b"populated ") && has(b"frozen ")
}

fn move_into(cgroup: &Path, pid: u32) -> io::Result<()> {
    write_file(&cgroup.join("cgroup.procs"), &pid.to_string())
}

/// The cgroup's child cgroups. A cgroup removed meanwhile has none.
fn subdirs(cgroup: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(cgroup) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// The processes of the cgroup and of the cgroups under it.
fn procs(cgroup: &Path) -> io::Result<Vec<u32>> {
    let mut out = match fs::read_to_string(cgroup.join("cgroup.procs")) {
        Ok(t) => parse_procs(&t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for child in subdirs(cgroup)? {
        out.extend(procs(&child)?);
    }
    Ok(out)
}

/// SIGKILL to every process in the cgroup and under it. `cgroup.kill` (Linux
/// ≥ 5.14) does it atomically, forks racing the kill included.
fn kill(cgroup: &Path) -> io::Result<()> {
    match write_file(&cgroup.join("cgroup.kill"), "1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound && cgroup.exists() => kill_frozen(cgroup),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        done => done,
    }
}

/// The kill without `cgroup.kill`: freeze (Linux ≥ 5.2) so nothing forks or
/// exits while the pids are read, SIGKILL each (a frozen process still dies of
/// it), thaw. Without a freezer the kill is repeated by the caller's waits.
fn kill_frozen(cgroup: &Path) -> io::Result<()> {
    let freeze = cgroup.join("cgroup.freeze");
    let frozen = write_file(&freeze, "1").is_ok();
    if frozen {
        wait_events(cgroup, Instant::now() + FREEZE_WAIT, |e| e.frozen || !e.populated)?;
    }
    for pid in procs(cgroup)? {
        let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else { continue };
        match rustix::process::kill_process(pid, Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if frozen {
        write_file(&freeze, "0")?;
    }
    Ok(())
}

/// Waits until `done(cgroup.events)` or `until`: true if it came. The file is
/// polled for `POLLPRI`, which kernfs raises on a change, but the kernel sends
/// a cgroup file's notifications at most every 10 ms (the first change after a
/// quiet spell at once, later ones when that timer fires), so it is also
/// re-read after 0.25, 0.5, 1, … ms, at least every 10 ms.
fn wait_events(cgroup: &Path, until: Instant, done: impl Fn(Events) -> bool) -> io::Result<bool> {
    let mut file = match File::open(cgroup.join("cgroup.events")) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(done(Events::default())),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    let mut step = Duration::from_micros(250);
    loop {
        text.clear();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_string(&mut text)?;
        if done(parse_events(&text)) {
            return Ok(true);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let timeout = Timespec::try_from(left.min(step)).unwrap_or_default();
        step = (step * 2).min(POLL_STEP);
        let mut fds = [PollFd::new(&file, PollFlags::PRI)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Removes the cgroup and any cgroups under it: true when gone, false while
/// something still runs in it (EBUSY).
fn remove(cgroup: &Path) -> io::Result<bool> {
    match fs::remove_dir(cgroup) {
        Ok(()) => return Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) if e.kind() != io::ErrorKind::ResourceBusy => return Err(e),
        Err(_) => {}
    }
    // Busy: populated, or holding cgroups its processes made.
    if events(cgroup).is_ok_and(|e| e.populated) {
        return Ok(false);
    }
    let mut emptied = true;
    for child in subdirs(cgroup)? {
        emptied &= remove(&child)?;
    }
    if !emptied {
        return Ok(false);
    }
    match fs::remove_dir(cgroup) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::ResourceBusy => Ok(false),
        Err(e) => Err(e),
    }
}

/// A cgroup of a previous heat's hook, or of this heat's, still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub path: PathBuf,
    pub procs: Vec<u32>,
}

/// What set-up found of previous lives.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Processes in previous lives' check cgroups, killed.
    pub checks_ended: usize,
    /// Previous lives' hook cgroups with processes, kept.
    pub hooks_kept: Vec<Leftover>,
    /// What could not be done, one line each.
    pub trouble: Vec<String>,
}

impl Sweep {
    /// The lines to log, empty when nothing was found.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.checks_ended > 0 {
            out.push(format!(
                "ended {} leftover check processes of a previous heat",
                self.checks_ended
            ));
        }
        for hook in &self.hooks_kept {
            out.push(format!(
                "kept {} processes of a previous heat's hook in {}",
                hook.procs.len(),
                text::show_path(&hook.path)
            ));
        }
        out.extend(self.trouble.iter().cloned());
        out
    }
}

/// Ends the previous lives found in `own`: each `heat-*` whose `self` is empty
/// or missing (a live heat is always in its `self`).
fn sweep(own: &Path) -> Sweep {
    let mut sweep = Sweep::default();
    let instances = match subdirs(own) {
        Ok(dirs) => dirs,
        Err(e) => {
            sweep.trouble.push(text::chain(&ctx("list", own, e)));
            return sweep;
        }
    };
    let until = Instant::now() + SWEEP_WAIT;
    let mut to_remove = Vec::new();
    let mut dead = Vec::new();
    for instance in instances {
        let name = instance.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let alive = match events(&instance.join("self")) {
            Ok(events) => events.populated,
            Err(e) => e.kind() != io::ErrorKind::NotFound, // unreadable: leave it alone
        };
        if !is_instance(name) || alive {
            continue;
        }
        for member in subdirs(&instance).unwrap_or_default() {
            let name = member.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            match parse_member(name).map(|(kind, _)| kind) {
                Some(Kind::Check) => {
                    sweep.checks_ended += procs(&member).map_or(0, |p| p.len());
                    match kill(&member) {
                        Ok(()) => to_remove.push(member),
                        Err(e) => sweep.trouble.push(text::chain(&ctx("kill", &member, e))),
                    }
                }
                Some(Kind::Hook) => match procs(&member) {
                    Ok(procs) if procs.is_empty() => to_remove.push(member),
                    Ok(procs) => sweep.hooks_kept.push(Leftover { path: member, procs }),
                    Err(e) => sweep.trouble.push(text::chain(&ctx("read", &member, e))),
                },
                None if name == "self" => to_remove.push(member),
                None => {} // not heat's
            }
        }
        dead.push(instance);
    }
    for cgroup in to_remove {
        let gone = wait_events(&cgroup, until, |e| !e.populated).and_then(|_| remove(&cgroup));
        match gone {
            Ok(true) => {}
            Ok(false) => {
                sweep.trouble.push(format!("{} did not empty in time", text::show_path(&cgroup)))
            }
            Err(e) => sweep.trouble.push(text::chain(&ctx("remove", &cgroup, e))),
        }
    }
    for instance in dead {
        let _ = fs::remove_dir(instance); // kept while a hook cgroup is
    }
    sweep
}

/// heat's instance: where its checks' and hooks' cgroups are made.
#[derive(Debug)]
/// The instance's cgroups; clones share it (each supervisor holds one).
#[derive(Clone)]
pub struct Tree {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// heat's cgroup `C`.
    own: PathBuf,
    /// `C/heat-<pid>`.
    instance: PathBuf,
    /// `instance`, open: a run's cgroup is made, opened and removed relative
    /// to it, not through the cgroup's long path each time.
    dir: OwnedFd,
    /// The process moved into `self` (heat; a stand-in in tests).
    member: u32,
    /// The limit controllers enabled for the instance's cgroups.
    enabled: Vec<&'static str>,
    seq: AtomicU64,
    /// Names with a live [`Cgroup`]: [`Tree::tidy`] leaves them alone.
    held: Mutex<HashSet<String>>,
    /// Empty shared check cgroups (`check-<seq>`), held, for the next run
    /// that takes one (see [`Tree::shared_check`]).
    pool: Mutex<Vec<String>>,
}

/// Empty shared check cgroups kept for reuse: a few checks run at once, so a
/// few suffice, and each costs the kernel about 10 KB.
const POOL_MAX: usize = 16;

impl Tree {
    fn create(site: &Site, member: u32) -> io::Result<Tree> {
        let instance = make_instance(&site.own, member)?;
        if !site.true_root {
            enable_controllers(&site.own);
        }
        enable_controllers(&instance);
        let on = read_words(&instance.join("cgroup.subtree_control"));
        let enabled = LIMIT_CONTROLLERS.into_iter().filter(|c| on.iter().any(|o| o == c)).collect();
        let dir = open_dir(None, &instance).map_err(|e| ctx("open", &instance, e))?;
        Ok(Tree {
            inner: Arc::new(Inner {
                own: site.own.clone(),
                dir,
                instance,
                member,
                enabled,
                seq: AtomicU64::new(0),
                held: Mutex::new(HashSet::new()),
                pool: Mutex::new(Vec::new()),
            }),
        })
    }

    /// `C/heat-<pid>`.
    pub fn path(&self) -> &Path {
        &self.inner.instance
    }

    /// The limit controllers enabled for checks and hooks.
    pub fn controllers(&self) -> &[&'static str] {
        &self.inner.enabled
    }

    /// The controllers `limits` needs that are not enabled here.
    pub fn missing_controllers(&self, limits: &Limits) -> Vec<&'static str> {
        limits.missing(&self.inner.enabled)
    }

    /// Makes the next `<kind>-<probe>-<seq>` cgroup with the probe's limits
    /// (those whose controller is enabled; see
    /// [`missing_controllers`](Self::missing_controllers)), opened for
    /// `clone3`'s `CLONE_INTO_CGROUP`.
    pub fn new_cgroup(&self, kind: Kind, probe: &str, limits: &Limits) -> io::Result<Cgroup> {
        if !valid_probe(probe) {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a probe name");
            return Err(ctx("name a cgroup after", Path::new(probe), e));
        }
        self.make(kind, |seq| format!("{kind}-{probe}-{seq}"), limits)
    }

    /// A check cgroup of any probe's (one without limits): an empty one from
    /// the pool, else a new `check-<seq>`. Probes that check seldom share
    /// these instead of making and removing a cgroup per run (a mkdir, an
    /// rmdir and a new css_set each: about a third of heat's cost per check
    /// at 10,000 probes), and without keeping one per probe.
    pub fn shared_check(&self) -> io::Result<Cgroup> {
        let inner = &self.inner;
        match inner.pool.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            Some(name) => Ok(Cgroup {
                tree: Arc::clone(inner),
                path: inner.instance.join(&name),
                name,
                dir: None,
                kind: Kind::Check,
                done: false,
            }),
            None => self.make(Kind::Check, |seq| format!("check-{seq}"), &Limits::default()),
        }
    }

    /// Takes back a shared check cgroup its run left empty (see
    /// [`Cgroup::settle`]); `Some` when it is not one or the pool is full:
    /// the caller ends it.
    pub fn give_back(&self, mut cg: Cgroup) -> Option<Cgroup> {
        if parse_member(&cg.name) != Some((Kind::Check, "")) {
            return Some(cg);
        }
        let mut pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() >= POOL_MAX {
            return Some(cg);
        }
        // Still held (tidy leaves it alone); the Cgroup itself is done with.
        cg.done = true;
        pool.push(std::mem::take(&mut cg.name));
        None
    }

    fn make(
        &self,
        kind: Kind,
        name_of: impl Fn(u64) -> String,
        limits: &Limits,
    ) -> io::Result<Cgroup> {
        let inner = &self.inner;
        let (name, path) = loop {
            let seq = inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
            let name = name_of(seq);
            let path = inner.instance.join(&name);
            match nix::sys::stat::mkdirat(
                &inner.dir,
                name.as_str(),
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) => break (name, path),
                Err(nix::errno::Errno::EEXIST) => continue,
                Err(e) => return Err(ctx("create", &path, e.into())),
            }
        };
        let dir = match open_dir(Some(&inner.dir), Path::new(&name)) {
            Ok(dir) => dir,
            Err(e) => {
                let _ = nix::unistd::unlinkat(
                    &inner.dir,
                    name.as_str(),
                    nix::unistd::UnlinkatFlags::RemoveDir,
                );
                return Err(ctx("open", &path, e));
            }
        };
        inner.held.lock().unwrap_or_else(|e| e.into_inner()).insert(name.clone());
        let cgroup =
            Cgroup { tree: Arc::clone(inner), name, path, dir: Some(dir), kind, done: false };
        for (controller, file, value) in limits.files() {
            if inner.enabled.contains(&controller) {
                let at = cgroup.path.join(file);
                write_file(&at, &value).map_err(|e| ctx("write", &at, e))?;
            }
        }
        Ok(cgroup)
    }

    /// The probe's released hook cgroups that still hold processes.
    pub fn hooks_left(&self, probe: &str) -> Vec<Leftover> {
        self.released()
            .into_iter()
            .filter(|(kind, p, _)| *kind == Kind::Hook && p == probe)
            .filter_map(|(_, _, path)| {
                let procs = procs(&path).ok()?;
                (!procs.is_empty()).then_some(Leftover { path, procs })
            })
            .collect()
    }

    /// Removes released hook cgroups that emptied, and check cgroups whose
    /// [`Cgroup::end`] gave up (killed again first). Returns how many went.
    pub fn tidy(&self) -> usize {
        let mut removed = 0;
        for (kind, _, path) in self.released() {
            if kind == Kind::Check {
                let _ = kill(&path);
            } else if events(&path).is_ok_and(|e| e.populated) {
                continue;
            }
            if remove(&path).unwrap_or(false) {
                removed += 1;
            }
        }
        removed
    }

    /// At heat's exit: tidies, moves heat back to `C` and removes `self` and,
    /// if no hook cgroup is left, the instance. Returns the hook cgroups left.
    /// Where heat cannot go back (`C` has controllers enabled, so it may hold
    /// no process) the instance stays, and the next start removes it.
    pub fn close(self) -> Vec<Leftover> {
        let until = Instant::now() + SWEEP_WAIT;
        // The pool's empty cgroups are released: removed below with the rest.
        let pooled =
            std::mem::take(&mut *self.inner.pool.lock().unwrap_or_else(|e| e.into_inner()));
        let mut held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
        for name in &pooled {
            held.remove(name);
        }
        drop(held);
        for (kind, _, path) in self.released() {
            if kind == Kind::Check && kill(&path).is_ok() {
                let _ = wait_events(&path, until, |e| !e.populated);
            }
        }
        self.tidy();
        let mut left = Vec::new();
        for (kind, _, path) in self.released() {
            if kind == Kind::Hook {
                left.extend(procs(&path).ok().map(|procs| Leftover { path, procs }));
            }
        }
        if move_into(&self.inner.own, self.inner.member).is_ok() {
            let _ = fs::remove_dir(self.inner.instance.join("self"));
            let _ = fs::remove_dir(&self.inner.instance);
        }
        left
    }

    /// The instance's check and hook cgroups no [`Cgroup`] holds.
    fn released(&self) -> Vec<(Kind, String, PathBuf)> {
        let held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = Vec::new();
        for path in subdirs(&self.inner.instance).unwrap_or_default() {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if held.contains(name) {
                continue;
            }
            if let Some((kind, probe)) = parse_member(name) {
                out.push((kind, probe.to_owned(), path.clone()));
            }
        }
        out
    }
}

/// Creates `C/heat-<pid>` (`heat-<pid>-<n>` if that is taken: a previous life
/// with heat's pid whose hooks still run, or a heat in another pid namespace)
/// and moves `member` into its `self`. A heat starting at the same moment may
/// sweep the directory between the two steps (its `self` is empty then): then
/// it is made again.
fn make_instance(own: &Path, member: u32) -> io::Result<PathBuf> {
    let mut n = 0;
    let mut raced = 0;
    loop {
        let name = if n == 0 { format!("heat-{member}") } else { format!("heat-{member}-{n}") };
        let instance = own.join(name);
        match fs::create_dir(&instance) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 16 => {
                n += 1;
                continue;
            }
            Err(e) => return Err(ctx("create", &instance, e)),
        }
        let me = instance.join("self");
        let moved = fs::create_dir(&me).and_then(|()| move_into(&me, member));
        match moved {
            Ok(()) => return Ok(instance),
            Err(e) if e.kind() == io::ErrorKind::NotFound && raced < 3 => raced += 1,
            Err(e) => {
                let _ = fs::remove_dir(&me);
                let _ = fs::remove_dir(&instance);
                return Err(ctx("move heat into", &me, e));
            }
        }
    }
}

/// Enables the limit controllers `cgroup` is offered for its children, each on
/// its own (one refused leaves the others), best effort: a cgroup that holds
/// processes refuses them all.
fn enable_controllers(cgroup: &Path) {
    let offered = read_words(&cgroup.join("cgroup.controllers"));
    let on = read_words(&cgroup.join("cgroup.subtree_control"));
    let control = cgroup.join("cgroup.subtree_control");
    for c in LIMIT_CONTROLLERS {
        if offered.iter().any(|o| o == c) && !on.iter().any(|o| o == c) {
            let _ = write_file(&control, &format!("+{c}"));
        }
    }
}

/// One check's or hook's cgroup. Dropping it without [`end`](Self::end) or
/// [`release`](Self::release) kills a check's processes and removes what it can;
/// [`Tree::tidy`] removes the rest later.
#[derive(Debug)]
pub struct Cgroup {
    tree: Arc<Inner>,
    name: String,
    path: PathBuf,
    /// `O_RDONLY | O_DIRECTORY | O_CLOEXEC`; closed between the runs of a
    /// check cgroup kept for the next run (see [`Cgroup::settle`]).
    dir: Option<OwnedFd>,
    kind: Kind,
    /// Removed or released.
    done: bool,
}

impl Cgroup {
    /// The directory fd `clone3` takes as `cgroup` with `CLONE_INTO_CGROUP`,
    /// opened again if [`settle`](Self::settle) closed it.
    pub fn fd(&mut self) -> io::Result<BorrowedFd<'_>> {
        if self.dir.is_none() {
            let dir = open_dir(Some(&self.tree.dir), Path::new(&self.name))
                .map_err(|e| ctx("open", &self.path, e))?;
            self.dir = Some(dir);
        }
        Ok(self.dir.as_ref().expect("opened above").as_fd())
    }

    /// After a check's run: true when nothing is left in the cgroup, which is
    /// then kept for the probe's next run with its fd closed (an idle probe
    /// holds none; a mkdir and an rmdir per check cost more). When the run
    /// left something, the caller ends the cgroup instead ([`end`](Self::end)):
    /// a next run's child placed in a cgroup just killed was seen killed too.
    pub fn settle(&mut self) -> io::Result<bool> {
        let populated = match self.dir.take() {
            // Through the open directory: no walk of the cgroup's long path.
            Some(dir) => events_at(dir.as_fd()).map_err(|e| ctx("read", &self.path, e))?.populated,
            None => self.populated()?,
        };
        Ok(!populated)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// SIGKILL to everything in the cgroup.
    pub fn kill(&self) -> io::Result<()> {
        kill(&self.path).map_err(|e| ctx("kill", &self.path, e))
    }

    /// The processes in the cgroup (and in cgroups they made under it).
    pub fn procs(&self) -> io::Result<Vec<u32>> {
        procs(&self.path).map_err(|e| ctx("read the processes of", &self.path, e))
    }

    /// Whether any process is in it (a zombie is not).
    pub fn populated(&self) -> io::Result<bool> {
        events(&self.path).map(|e| e.populated).map_err(|e| ctx("read", &self.path, e))
    }

    /// Removes the cgroup if nothing runs in it: true when it is gone.
    pub fn try_remove(&mut self) -> io::Result<bool> {
        if self.done {
            return Ok(true);
        }
        // The common case, an empty cgroup, without a walk of its path.
        let rmdir = nix::unistd::unlinkat(
            &self.tree.dir,
            self.name.as_str(),
            nix::unistd::UnlinkatFlags::RemoveDir,
        );
        let gone = match rmdir {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => true,
            Err(_) => remove(&self.path).map_err(|e| ctx("remove", &self.path, e))?,
        };
        if gone {
            self.finish();
        }
        Ok(gone)
    }

    /// The end of a check: kills what is left in the cgroup, waits (on
    /// tokio's clock, at most 5 s) for it to empty, and removes it.
    pub async fn end(mut self) -> io::Result<()> {
        if self.try_remove()? {
            return Ok(());
        }
        let until = tokio::time::Instant::now() + END_WAIT;
        let mut pause = Duration::from_micros(250);
        loop {
            self.kill()?;
            if self.try_remove()? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                let n = procs(&self.path).map_or(0, |p| p.len());
                let e = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{n} processes still in it {} s after SIGKILL", END_WAIT.as_secs()),
                );
                return Err(ctx("end", &self.path, e));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// The end of a hook: the cgroup is removed if empty, else kept with what
    /// runs in it ([`Tree::hooks_left`], [`Tree::tidy`]). True if kept.
    pub fn release(mut self) -> bool {
        let kept = !self.try_remove().unwrap_or(false);
        self.finish();
        kept
    }

    fn finish(&mut self) {
        self.done = true;
        self.tree.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.name);
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.kind == Kind::Check {
            let _ = kill(&self.path);
        }
        let _ = self.try_remove();
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::AtomicUsize;

    const DEADLINE: Duration = Duration::from_secs(5);

    /// Straight to stderr: libtest captures `eprintln!` of passing tests, and a
    /// test that could not do its real work must not pass silently.
    fn say(line: std::fmt::Arguments<'_>) {
        let _ = writeln!(io::stderr(), "{line}");
    }

    /// A cgroup of the test's own standing in for heat's `C`, with the
    /// processes the test started; on drop everything in it is killed, reaped
    /// and removed, whatever the test's outcome.
    struct Scratch {
        site: Site,
        children: Vec<Child>,
    }

    impl Scratch {
        /// None, said on stderr, where this host has no writable cgroup v2.
        fn new(test: &str) -> Option<Scratch> {
            let site = match detect() {
                Ok(site) => site,
                Err(reason) => {
                    say(format_args!(
                        "{test}: no writable cgroup v2 here ({reason}); testing the fallback"
                    ));
                    let (containment, sweep) = contain(Err(reason.clone()), std::process::id());
                    let fell_back = matches!(&containment,
                        Containment::ProcessGroups { reason: r } if *r == reason);
                    assert!(fell_back, "{containment:?}");
                    assert!(containment.tree().is_none() && sweep.messages().is_empty());
                    return None;
                }
            };
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            // Not `heat-…`: a real heat's sweep must not take it for a previous life.
            let own = site.own.join(format!("heat_test-{}-{n}", std::process::id()));
            fs::create_dir(&own).unwrap();
            Some(Scratch { site: Site { own, true_root: false, ..site }, children: Vec::new() })
        }

        fn dir(&self, rel: &str) -> PathBuf {
            let dir = self.site.own.join(rel);
            fs::create_dir_all(&dir).unwrap();
            dir
        }

        /// Starts `sh -c script` held at a `read` until it is in `cgroup`, so
        /// all it forks is there too. Returns the shell's pid.
        fn spawn_in(&mut self, cgroup: &Path, script: &str) -> u32 {
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(format!("read _; {script}"))
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let pid = child.id();
            move_into(cgroup, pid).unwrap();
            child.stdin.take().unwrap().write_all(b"\n").unwrap();
            self.children.push(child);
            pid
        }

        /// A stand-in for heat, to be moved into an instance's `self`.
        fn stand_in(&mut self) -> u32 {
            let child = Command::new("sleep").arg("60").spawn().unwrap();
            let pid = child.id();
            self.children.push(child);
            pid
        }

        fn child(&mut self, pid: u32) -> &mut Child {
            self.children.iter_mut().find(|c| c.id() == pid).unwrap()
        }

        fn set_up(&mut self) -> (Tree, Sweep) {
            let member = self.stand_in();
            match contain(Ok(self.site.clone()), member) {
                (Containment::Cgroups(tree), sweep) => (tree, sweep),
                (other, _) => panic!("set-up fell back: {}", other.describe()),
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let own = &self.site.own;
            let _ = kill(own);
            for child in &mut self.children {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = wait_events(own, Instant::now() + DEADLINE, |e| !e.populated);
            if !remove(own).unwrap_or(false) {
                say(format_args!("could not remove {}", own.display()));
            }
        }
    }

    /// Polls `f` until it gives Some, up to the deadline.
    fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Alive and not a zombie.
    fn alive(pid: u32) -> bool {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
    }

    fn session(pid: u32) -> u32 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = stat.rsplit_once(") ").unwrap().1;
        rest.split(' ').nth(3).unwrap().parse().unwrap()
    }

    #[test]
    fn parses_the_cgroup2_mount_of_a_hybrid_host() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
";
        let mount = parse_mountinfo(text).unwrap();
        assert_eq!(mount.point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(mount.root, Path::new("/"));
        assert!(!mount.read_only);
        assert_eq!(cgroup_dir(&mount, "/"), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let own = cgroup_dir(&mount, "/user.slice/a b").unwrap();
        assert_eq!(own, Path::new("/sys/fs/cgroup/unified/user.slice/a b"));
    }

    #[test]
    fn parses_escapes_bind_mounts_read_only_and_v1_hosts() {
        let text = "29 1 0:26 /lxc/c1 /sys/fs/cgroup\\040x ro,nosuid - cgroup2 cgroup2 ro\n";
        let mount = parse_mountinfo(text).unwrap();
        assert_eq!(mount.point, Path::new("/sys/fs/cgroup x"));
        assert!(mount.read_only);
        assert_eq!(cgroup_dir(&mount, "/lxc/c1/app"), Some(PathBuf::from("/sys/fs/cgroup x/app")));
        assert_eq!(cgroup_dir(&mount, "/lxc/c2"), None);
        assert_eq!(
            parse_mountinfo("32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"),
            None
        );
        let own = parse_own_cgroup("4:memory:/x\n0::/system.slice/heat.service\n");
        assert_eq!(own, Some("/system.slice/heat.service"));
        assert_eq!(parse_own_cgroup("4:memory:/x\n1:name=systemd:/\n"), None);
    }

    #[test]
    fn parses_events_and_names() {
        assert_eq!(
            parse_events("populated 1\nfrozen 0\n"),
            Events { populated: true, frozen: false }
        );
        assert_eq!(
            parse_events("populated 0\nfrozen 1\n"),
            Events { populated: false, frozen: true }
        );
        assert!(is_instance("heat-123") && is_instance("heat-123-2"));
        assert!(!is_instance("heat-") && !is_instance("heat-x") && !is_instance("heat_test-1-0"));
        assert_eq!(parse_member("check-web-db-7"), Some((Kind::Check, "web-db")));
        assert_eq!(parse_member("hook-a_b-12"), Some((Kind::Hook, "a_b")));
        assert_eq!(parse_member("check-web"), None);
        assert_eq!(parse_member("self"), None);
        assert_eq!(parse_member("check-12"), Some((Kind::Check, "")), "a shared check cgroup");
        assert_eq!(parse_member("hook-12"), None);
    }

    #[test]
    fn describes_the_fallback_and_the_missing_controllers() {
        let c = Containment::ProcessGroups { reason: "no cgroup2 file system is mounted".into() };
        assert_eq!(
            c.describe(),
            "process groups (no cgroup v2 writable here: no cgroup2 file system is mounted)"
        );
        let limits = Limits { memory_max: Some(1 << 20), pids_max: Some(10), cpu_max: None };
        assert_eq!(c.missing_controllers(&limits), ["memory", "pids"]);
        assert!(c.missing_controllers(&Limits::default()).is_empty());
    }

    #[test]
    fn detect_only_creates_nothing() {
        let before_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap();
        let list = |dir: &Path| -> Vec<String> {
            let mut names: Vec<String> = subdirs(dir)
                .unwrap()
                .iter()
                .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
                .filter(|n| !n.starts_with("heat_test-"))
                .collect();
            names.sort();
            names
        };
        let site = detect();
        let before = site.as_ref().map(|s| list(&s.own));
        let c = Containment::detect_only();
        match (&c, &site) {
            (Containment::Detected(found), Ok(site)) => {
                assert_eq!(found.own, site.own);
                assert!(c.describe().starts_with("cgroup v2 at "), "{}", c.describe());
                assert!(c.describe().contains(&*site.own.to_string_lossy()), "{}", c.describe());
                assert_eq!(list(&site.own), *before.as_ref().unwrap());
            }
            (Containment::ProcessGroups { reason }, Err(why)) => {
                say(format_args!(
                    "detect_only_creates_nothing: no writable cgroup v2 here ({why})"
                ));
                assert_eq!(reason, why);
                assert!(c.describe().starts_with("process groups (no cgroup v2 writable here: "));
            }
            _ => panic!("detect_only gave {c:?} where detect gave {site:?}"),
        }
        assert_eq!(fs::read_to_string("/proc/self/cgroup").unwrap(), before_cgroup);
    }

    #[test]
    fn set_up_moves_heat_into_its_instance_and_describes_it() {
        let Some(mut scratch) = Scratch::new("set_up_moves_heat_into_its_instance") else { return };
        let (tree, sweep) = scratch.set_up();
        let member = tree.inner.member;
        assert!(sweep.messages().is_empty(), "{:?}", sweep.messages());
        assert_eq!(tree.path(), scratch.site.own.join(format!("heat-{member}")));
        assert_eq!(procs(&tree.path().join("self")).unwrap(), [member]);
        let described = Containment::Cgroups(tree).describe();
        assert!(described.starts_with("cgroup v2 at "), "{described}");
        assert!(described.contains(&*scratch.site.own.to_string_lossy()), "{described}");
    }

    #[test]
    fn kill_ends_a_double_forked_setsid_child() {
        let Some(mut scratch) = Scratch::new("kill_ends_a_double_forked_setsid_child") else {
            return;
        };
        let (tree, _) = scratch.set_up();
        let mut cgroup = tree.new_cgroup(Kind::Check, "web", &Limits::default()).unwrap();
        assert!(cgroup.path().starts_with(tree.path()));
        let leader = scratch.spawn_in(cgroup.path(), "setsid sh -c 'sleep 30 &'; exec sleep 30");
        let procs = eventually("the daemon to start", || {
            let procs = cgroup.procs().unwrap();
            (procs.len() == 2
                && procs.iter().all(|p| {
                    fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "sleep\n")
                }))
            .then_some(procs)
        });
        let daemon = *procs.iter().find(|&&p| p != leader).unwrap();
        assert_ne!(session(daemon), session(leader), "the daemon has a session of its own");
        cgroup.kill().unwrap();
        eventually("the cgroup to empty", || (!cgroup.populated().unwrap()).then_some(()));
        assert!(cgroup.procs().unwrap().is_empty());
        assert!(!alive(daemon), "the setsid daemon survived the kill");
        let status = scratch.child(leader).wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
        assert!(cgroup.try_remove().unwrap());
        assert!(!cgroup.path().exists());
    }

    #[test]
    fn a_check_cgroup_is_kept_for_the_next_run_only_if_nothing_is_left() {
        let Some(mut scratch) = Scratch::new("settle") else { return };
        let (tree, _) = scratch.set_up();
        let mut cgroup = tree.new_cgroup(Kind::Check, "web", &Limits::default()).unwrap();
        assert!(cgroup.settle().unwrap(), "an empty cgroup is kept");
        assert!(cgroup.path().exists());
        cgroup.fd().expect("the fd is opened again for the next run");
        let leader = scratch.spawn_in(cgroup.path(), "exec sleep 30");
        eventually("the process in it", || cgroup.populated().unwrap().then_some(()));
        assert!(!cgroup.settle().unwrap(), "one with a process left is not");
        cgroup.kill().unwrap();
        let _ = scratch.child(leader).wait();
        eventually("the cgroup to empty", || (!cgroup.populated().unwrap()).then_some(()));
        assert!(cgroup.try_remove().unwrap());
    }

    #[test]
    fn kill_without_cgroup_kill_freezes_and_ends_all() {
        let Some(mut scratch) = Scratch::new("kill_without_cgroup_kill_freezes_and_ends_all")
        else {
            return;
        };
        let dir = scratch.dir("frozen");
        let leader = scratch.spawn_in(&dir, "setsid sh -c 'sleep 30 &'; exec sleep 30");
        eventually("the daemon to start", || (procs(&dir).unwrap().len() == 2).then_some(()));
        kill_frozen(&dir).unwrap();
        assert!(wait_events(&dir, Instant::now() + DEADLINE, |e| !e.populated).unwrap());
        assert!(!events(&dir).unwrap().frozen, "left frozen");
        scratch.child(leader).wait().unwrap();
        assert!(remove(&dir).unwrap());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn end_kills_waits_and_removes() {
        let Some(mut scratch) = Scratch::new("end_kills_waits_and_removes") else { return };
        let (tree, _) = scratch.set_up();
        let cgroup = tree.new_cgroup(Kind::Check, "web", &Limits::default()).unwrap();
        let path = cgroup.path().to_owned();
        let pid = scratch.spawn_in(&path, "sleep 30 & exec sleep 30");
        eventually("both sleeps", || (procs(&path).unwrap().len() == 2).then_some(()));
        cgroup.end().await.unwrap();
        assert!(!path.exists());
        scratch.child(pid).wait().unwrap();
        // An empty check cgroup goes at once, without a kill.
        let cgroup = tree.new_cgroup(Kind::Check, "web", &Limits::default()).unwrap();
        let path = cgroup.path().to_owned();
        cgroup.end().await.unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_released_hook_cgroup_is_kept_and_not_killed() {
        let Some(mut scratch) = Scratch::new("a_released_hook_cgroup_is_kept_and_not_killed")
        else {
            return;
        };
        let (tree, _) = scratch.set_up();
        let hook = tree.new_cgroup(Kind::Hook, "web", &Limits::default()).unwrap();
        let path = hook.path().to_owned();
        let shell = scratch.spawn_in(&path, "setsid sh -c 'exec sleep 30' & wait");
        let kept = eventually("the hook's daemon", || {
            procs(&path).unwrap().into_iter().find(|&p| p != shell)
        });
        assert!(tree.hooks_left("web").is_empty(), "a running hook is not a leftover");
        // The hook itself ends; what it started stays.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(shell as i32), nix::sys::signal::SIGKILL)
            .unwrap();
        scratch.child(shell).wait().unwrap();
        assert!(hook.release(), "released with a process in it, so kept");
        assert!(alive(kept));
        assert_eq!(tree.hooks_left("web"), [Leftover { path: path.clone(), procs: vec![kept] }]);
        assert!(tree.hooks_left("db").is_empty());
        assert_eq!(tree.tidy(), 0);
        assert!(alive(kept) && path.exists());
        // Once it is empty, tidy removes it.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(kept as i32), nix::sys::signal::SIGKILL)
            .unwrap();
        eventually("the daemon to go", || (!events(&path).unwrap().populated).then_some(()));
        assert_eq!(tree.tidy(), 1);
        assert!(!path.exists() && tree.hooks_left("web").is_empty());
        // An empty hook's cgroup goes at release.
        let hook = tree.new_cgroup(Kind::Hook, "web", &Limits::default()).unwrap();
        let path = hook.path().to_owned();
        assert!(!hook.release());
        assert!(!path.exists());
    }

    #[test]
    fn set_up_sweeps_a_previous_life_and_spares_a_live_heat() {
        let Some(mut scratch) = Scratch::new("set_up_sweeps_a_previous_life") else { return };
        // A previous life: heat gone, a check's process and a hook's left.
        let dead = scratch.dir("heat-999999");
        scratch.dir("heat-999999/self");
        let check = scratch.dir("heat-999999/check-web-1");
        let hook = scratch.dir("heat-999999/hook-web-2");
        scratch.dir("heat-999999/hook-web-3"); // empty: removed
        let check_pid = scratch.spawn_in(&check, "exec sleep 30");
        let hook_pid = scratch.spawn_in(&hook, "exec sleep 30");
        // A live heat sharing the cgroup: its `self` holds it.
        let live_self = scratch.dir("heat-999998/self");
        let live_check = scratch.dir("heat-999998/check-web-1");
        let live_heat = scratch.stand_in();
        move_into(&live_self, live_heat).unwrap();
        let live_pid = scratch.spawn_in(&live_check, "exec sleep 30");
        eventually("the processes to be placed", || {
            [&check, &hook, &live_check].iter().all(|d| procs(d).unwrap().len() == 1).then_some(())
        });

        let (tree, sweep) = scratch.set_up();

        assert_eq!(sweep.checks_ended, 1);
        assert_eq!(sweep.hooks_kept, [Leftover { path: hook.clone(), procs: vec![hook_pid] }]);
        assert!(sweep.trouble.is_empty(), "{:?}", sweep.trouble);
        let messages = sweep.messages();
        assert_eq!(messages[0], "ended 1 leftover check processes of a previous heat");
        assert!(messages[1].starts_with("kept 1 processes of a previous heat's hook in "));
        let status = scratch.child(check_pid).wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
        assert!(
            !check.exists() && !dead.join("self").exists() && !dead.join("hook-web-3").exists()
        );
        assert!(alive(hook_pid) && hook.exists(), "a previous life's hook is left running");
        assert!(
            alive(live_pid) && procs(&live_check).unwrap() == [live_pid],
            "a live heat's check"
        );
        assert!(tree.path() != dead && tree.path().exists());
    }

    #[test]
    fn set_up_after_a_previous_life_with_the_same_pid_takes_a_fresh_name() {
        let Some(mut scratch) = Scratch::new("set_up_same_pid") else { return };
        let member = scratch.stand_in();
        let hook = scratch.dir(&format!("heat-{member}/hook-web-1"));
        scratch.spawn_in(&hook, "exec sleep 30");
        eventually("the hook's process", || (procs(&hook).unwrap().len() == 1).then_some(()));
        let (Containment::Cgroups(tree), sweep) = contain(Ok(scratch.site.clone()), member) else {
            panic!("set-up fell back");
        };
        assert_eq!(sweep.hooks_kept.len(), 1);
        assert_eq!(tree.path(), scratch.site.own.join(format!("heat-{member}-1")));
        assert!(tree.hooks_left("web").is_empty(), "the previous life's hook is not this heat's");
    }

    #[test]
    fn limits_are_written_where_the_controller_is_and_reported_where_not() {
        let Some(mut scratch) = Scratch::new("limits") else { return };
        let (tree, _) = scratch.set_up();
        let limits = Limits {
            memory_max: Some(64 << 20),
            pids_max: Some(32),
            cpu_max: Some((50_000, 100_000)),
        };
        let missing = tree.missing_controllers(&limits);
        for c in LIMIT_CONTROLLERS {
            assert_eq!(missing.contains(&c), !tree.controllers().contains(&c), "{c}");
        }
        if !missing.is_empty() {
            say(format_args!("limits: controllers not enabled here: {missing:?}"));
        }
        let cgroup = tree.new_cgroup(Kind::Check, "web", &limits).unwrap();
        let read = |file: &str| fs::read_to_string(cgroup.path().join(file)).unwrap();
        if tree.controllers().contains(&"memory") {
            assert_eq!(read("memory.max"), "67108864\n");
        }
        if tree.controllers().contains(&"pids") {
            assert_eq!(read("pids.max"), "32\n");
        }
        if tree.controllers().contains(&"cpu") {
            assert_eq!(read("cpu.max"), "50000 100000\n");
        }
        assert!(tree.new_cgroup(Kind::Check, "../x", &limits).is_err());
    }

    #[test]
    fn shared_check_cgroups_are_reused_while_empty_and_removed_at_close() {
        let Some(mut scratch) = Scratch::new("pool") else { return };
        let (tree, _) = scratch.set_up();
        let mut first = tree.shared_check().unwrap();
        assert_eq!(
            parse_member(first.path().file_name().unwrap().to_str().unwrap()).unwrap().1,
            ""
        );
        let path = first.path().to_owned();
        first.fd().unwrap();
        assert!(first.settle().unwrap());
        assert!(tree.give_back(first).is_none(), "an empty one goes back to the pool");
        assert_eq!(tree.tidy(), 0, "a pooled cgroup is not tidied away");
        let mut again = tree.shared_check().unwrap();
        assert_eq!(again.path(), path, "the next run takes it again");
        again.fd().expect("opened again for that run");
        // A run that leaves a process does not settle: the caller ends it.
        let mut other = tree.shared_check().unwrap();
        assert_ne!(other.path(), path, "the pool was empty: a new one");
        let pid = scratch.spawn_in(other.path(), "exec sleep 30");
        eventually("the process in it", || other.populated().unwrap().then_some(()));
        assert!(!other.settle().unwrap());
        other.kill().unwrap();
        let _ = scratch.child(pid).wait();
        eventually("the cgroup to empty", || (!other.populated().unwrap()).then_some(()));
        assert!(other.try_remove().unwrap());
        // A hook's or a probe's own cgroup is never pooled.
        let own = tree.new_cgroup(Kind::Check, "web", &Limits::default()).unwrap();
        let own = tree.give_back(own).expect("not a shared one");
        drop(own);
        assert!(again.settle().unwrap());
        assert!(tree.give_back(again).is_none());
        assert!(tree.close().is_empty());
        assert!(!path.exists(), "the pooled cgroup is removed at close");
    }

    #[test]
    fn close_takes_heat_back_and_removes_its_instance() {
        let Some(mut scratch) = Scratch::new("close") else { return };
        let (tree, _) = scratch.set_up();
        let instance = tree.path().to_owned();
        let member = tree.inner.member;
        // A check cgroup dropped while its process runs (as when its end gave up).
        let check = tree.new_cgroup(Kind::Check, "web", &Limits::default()).unwrap();
        let path = check.path().to_owned();
        let pid = scratch.spawn_in(&path, "exec sleep 30");
        eventually("the check's process", || (procs(&path).unwrap() == [pid]).then_some(()));
        drop(check);
        assert!(tree.close().is_empty());
        assert!(!path.exists() && !instance.exists());
        assert!(procs(&scratch.site.own).unwrap().contains(&member));
    }
}
