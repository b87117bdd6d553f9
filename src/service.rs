//! The set of supervisors, and heat's own signals: one loop for both modes.
//!
//! On the command line there is one probe and trouble is fatal. In service
//! mode (`-c`) the probes come from heat.toml, each with its own supervisor,
//! and the file is reloaded on SIGHUP or when it changes on disk: probes are
//! matched by name, unchanged ones keep running untouched, changed ones are
//! retired (a running hook may finish) and started anew, removed ones retired.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::signal::unix::{Signal as Stream, SignalKind, signal};
use tokio::task::JoinSet;

use crate::board::{Directory, Entry};
use crate::config::{self, Env, Mode, ProbeConfig, Settings, TargetSpec};
use crate::control::server::Socket;
use crate::exec::Stop;
use crate::log::{Level, Log};
use crate::metrics::Metrics;
use crate::reload::{self, Plan};
use crate::sd_notify::Notifier;
use crate::supervisor::{
    Asker, Children, Control, ControlTx, Exit, Handover, RunSlots, Shared, Stdout, Supervisor,
};
use crate::watch::ConfigWatch;

/// How often systemd's STATUS line is refreshed (when it changed).
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Changes to the config file are acted on once they have been quiet this long.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// heat's own signals, installed before anything else so that a HUP or USR1
/// during start-up never kills it.
pub struct Signals {
    term: Stream,
    int: Stream,
    hup: Stream,
    usr1: Stream,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }
}

/// How heat ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Stopped,
    Fatal,
}

struct Handle {
    control: ControlTx,
    retiring: bool,
}

struct Service {
    cli: config::Args,
    log: Log,
    log_path: PathBuf,
    shared: Rc<Shared>,
    /// The configuration in force, by name (what a reload compares against).
    desired: BTreeMap<String, Arc<ProbeConfig>>,
    /// Running supervisors, by name; a retiring one may still be finishing a hook.
    running: BTreeMap<String, Handle>,
    tasks: JoinSet<(String, (Exit, Handover))>,
    stopping: bool,
    notifier: Notifier,
    /// The STATUS line systemd last got.
    status: String,
    /// Probes whose state entry (USR1) their next supervisor must write.
    owed_status: BTreeSet<String>,
    /// The last reload was refused: the next good one says the error is over.
    reload_failed: bool,
    /// What the control socket and the metrics server read.
    directory: Option<Rc<Directory>>,
    /// Where they listen: changes take effect at the next start.
    listening: (Option<PathBuf>, Option<std::net::SocketAddr>),
}

/// What heat listens on besides signals, bound before the log is opened so
/// that a socket in use is a start error.
#[derive(Default)]
pub struct Listeners {
    pub control: Option<Socket>,
    pub metrics: Option<std::net::TcpListener>,
}

impl Listeners {
    /// Binds what `settings` asks for; the error is one line naming it.
    pub fn bind(settings: &Settings) -> Result<Listeners, String> {
        let control = match &settings.control_socket {
            Some(path) => Some(crate::control::server::bind(path)?),
            None => None,
        };
        let metrics = match settings.metrics_listen {
            Some(addr) => {
                let l = std::net::TcpListener::bind(addr).map_err(|e| {
                    format!("metrics_listen {addr}: cannot listen: {e} (is the port in use?)")
                })?;
                l.set_nonblocking(true).map_err(|e| format!("metrics_listen {addr}: {e}"))?;
                Some(l)
            }
            None => None,
        };
        Ok(Listeners { control, metrics })
    }
}

/// Runs until TERM/INT or, on the command line, a fatal condition.
/// `slots`: the runs that fit under the open-file limit, as main raised it
/// before the log was opened.
pub async fn run(
    cli: config::Args,
    settings: Settings,
    slots: usize,
    log: Log,
    mut signals: Signals,
    mut listeners: Listeners,
) -> Ending {
    let mode = if settings.config.is_some() { Mode::Service } else { Mode::CommandLine };
    let service_mode = mode == Mode::Service;
    if let Err(e) = crate::timer::install() {
        tracing::warn!("no precise timer ({e}); using tokio's, to the millisecond");
    }
    if let Err(e) = crate::exec::install_stop_watch() {
        // Each run then listens for SIGCHLD itself, as before.
        tracing::warn!("no shared watch of stopped children ({e}); each run watches its own");
    }
    let version = env!("CARGO_PKG_VERSION");
    let text = format!("started heat {version} (pid {})", std::process::id());
    log.write(SystemTime::now(), Level::Info, "heat", text.as_bytes(), 0);
    let cgroups = contain(&log, &settings.probes);
    let metrics = listeners.metrics.is_some().then(Metrics::new);
    let (reloads, mut reload_asks) = tokio::sync::mpsc::unbounded_channel();
    let reloads = service_mode.then_some(reloads);
    let directory = (listeners.control.is_some() || metrics.is_some())
        .then(|| Rc::new(Directory::new(settings.config.clone(), reloads)));
    let mut servers = Vec::new();
    if let Some(socket) = &mut listeners.control {
        let dir = directory.clone().expect("a directory for the socket");
        match socket.listener() {
            Ok(l) => {
                let text = format!("control socket {}", socket.path().display());
                log.write(SystemTime::now(), Level::Info, "heat", text.as_bytes(), 0);
                servers.push(tokio::task::spawn_local(crate::control::server::serve(l, dir)));
            }
            Err(e) => tracing::error!("control socket {}: {e}", socket.path().display()),
        }
    }
    if let (Some(l), Some(m)) = (listeners.metrics, &metrics) {
        let dir = directory.clone().expect("a directory for the metrics");
        match tokio::net::TcpListener::from_std(l) {
            Ok(l) => {
                let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                let text = format!("metrics on http://{addr}/metrics");
                log.write(SystemTime::now(), Level::Info, "heat", text.as_bytes(), 0);
                let serve = crate::metrics::serve(l, m.clone(), dir, log.clone());
                servers.push(tokio::task::spawn_local(serve));
            }
            Err(e) => tracing::error!("metrics_listen: {e}"),
        }
    }
    if let Some(m) = &metrics {
        m.reloaded(true, unix_now());
    }
    let shared = Rc::new(Shared {
        log: log.clone(),
        env: crate::supervisor::child_env(),
        stdout: (!settings.quiet && !service_mode)
            .then(|| Stdout::new(settings.log.display().to_string())),
        mode,
        failing: Cell::new(0),
        recovering: Cell::new(0),
        children: Children::Exec,
        slots: RunSlots::new(slots),
        cgroups: cgroups.clone(),
        boards: directory.is_some(),
        metrics,
    });
    let mut svc = Service {
        cli,
        log,
        log_path: settings.log.clone(),
        shared,
        desired: BTreeMap::new(),
        running: BTreeMap::new(),
        tasks: JoinSet::new(),
        stopping: false,
        notifier: Notifier::from_env(),
        status: String::new(),
        owed_status: BTreeSet::new(),
        reload_failed: false,
        directory,
        listening: (settings.control_socket.clone(), settings.metrics_listen),
    };
    let mut watch = match &settings.config {
        Some(path) => ConfigWatch::new(path),
        None => None,
    };
    svc.apply(settings.probes);
    svc.status = svc.status_line();
    svc.notifier.ready(&svc.status);
    let mut pulse = svc.notifier.enabled().then(|| {
        let every = svc.notifier.watchdog_every().unwrap_or(STATUS_EVERY).min(STATUS_EVERY);
        tokio::time::interval(every)
    });

    let mut ending = Ending::Stopped;
    let mut debounce: Option<Instant> = None;
    // Hook cgroups that emptied are removed now and then.
    let mut tidy = tokio::time::interval(TIDY_EVERY);
    loop {
        if svc.stopping && svc.tasks.is_empty() {
            break;
        }
        tokio::select! {
            Some(done) = svc.tasks.join_next() => {
                if let Ok((name, (exit, handover))) = done {
                    if let Exit::Fatal(_) = exit {
                        ending = Ending::Fatal;
                        svc.stop(Stop::Graceful, None);
                    }
                    svc.finished(&name, handover);
                }
                if !service_mode && svc.tasks.is_empty() {
                    break;
                }
            }
            _ = tidy.tick(), if cgroups.is_some() => {
                if let Some(tree) = &cgroups {
                    tree.tidy();
                }
            }
            Some(()) = signals.term.recv() => svc.stop_signal("SIGTERM"),
            Some(()) = signals.int.recv() => svc.stop_signal("SIGINT"),
            Some(()) = signals.hup.recv() => {
                svc.log.reopen();
                svc.event(Level::Info, "reopened the log");
                if service_mode && !svc.stopping {
                    let _ = svc.reload(true);
                }
            }
            Some(ask) = reload_asks.recv() => {
                let by = ask.by;
                svc.log.reopen();
                svc.event(Level::Info, &format!("reopened the log (reload asked by {by})"));
                let outcome = if svc.stopping {
                    Err("heat is stopping".to_string())
                } else {
                    svc.reload(true)
                };
                let _ = ask.reply.send(outcome);
            }
            Some(()) = signals.usr1.recv() => svc.send(|| Control::Status),
            () = watched(&mut watch), if watch.is_some() => {
                debounce = Some(Instant::now() + DEBOUNCE);
            }
            _ = tick(&mut pulse) => {
                svc.notifier.watchdog();
                let line = svc.status_line();
                if line != svc.status {
                    svc.notifier.status(&line);
                    svc.status = line;
                }
            }
            () = quiet(debounce) => {
                debounce = None;
                if !svc.stopping {
                    let _ = svc.reload(false);
                }
            }
        }
    }
    for server in servers {
        server.abort();
    }
    drop(listeners.control);
    if let Some(tree) = cgroups {
        let log = svc.log.clone();
        drop(svc);
        for left in tree.close() {
            let text = format!(
                "kept {} processes of a hook in {} (they outlive heat)",
                left.procs.len(),
                left.path.display()
            );
            log.write(SystemTime::now(), Level::Info, "heat", text.as_bytes(), 0);
        }
    }
    ending
}

/// How often emptied hook cgroups are removed.
const TIDY_EVERY: Duration = Duration::from_secs(10);

/// Sets up containment once at start and says what is in force: cgroups of
/// heat's own (ending a previous life's checks first), or process groups.
fn contain(log: &Log, probes: &[ProbeConfig]) -> Option<crate::cgroup::Tree> {
    use crate::cgroup::Containment;
    let say = |level, text: &str| log.write(SystemTime::now(), level, "heat", text.as_bytes(), 0);
    let (containment, sweep) = Containment::set_up();
    say(Level::Info, &format!("containment: {}", containment.describe()));
    for text in sweep.messages() {
        say(Level::Info, &text);
    }
    if let Containment::ProcessGroups { reason } = &containment {
        tracing::warn!("checks and hooks run in process groups, not cgroups: {reason}");
    }
    for p in probes {
        let missing = containment.missing_controllers(&crate::cgroup::Limits::of(&p.limits));
        if !missing.is_empty() {
            let text = format!(
                "probe {}: no {} controller for its limits here: ignored",
                p.name,
                missing.join(", ")
            );
            tracing::warn!("{text}");
            say(Level::Info, &text);
        }
    }
    match containment {
        Containment::Cgroups(tree) => Some(tree),
        _ => None,
    }
}

impl Service {
    fn event(&self, level: Level, text: &str) {
        self.log.write(SystemTime::now(), level, "heat", text.as_bytes(), 0);
    }

    /// A refused reload, on stderr and in the log; the running configuration stays.
    fn reload_failed(&mut self, reason: &str) {
        let text = format!("reload failed, keeping the running configuration: {reason}");
        tracing::error!("{text}");
        self.event(Level::Err, &text);
        self.reload_failed = true;
        if let Some(m) = &self.shared.metrics {
            m.reloaded(false, unix_now());
        }
    }

    fn send(&mut self, c: impl Fn() -> Control) {
        for (name, h) in &self.running {
            // A supervisor that has just returned cannot answer; its
            // replacement will, as soon as it starts.
            if let Err(Control::Status) = h.control.send(c()) {
                self.owed_status.insert(name.clone());
            }
        }
    }

    /// TERM/INT: a graceful stop; a second one during the grace ends everything at once.
    fn stop_signal(&mut self, name: &str) {
        if self.stopping {
            self.stop(Stop::Now, None);
        } else {
            self.stop(Stop::Graceful, Some(name));
        }
    }

    fn stop(&mut self, how: Stop, why: Option<&str>) {
        if !self.stopping {
            self.notifier.stopping();
        }
        if let Some(name) = why {
            tracing::info!(signal = %name, "stopping");
            self.event(Level::Info, &format!("stopping on {name}"));
        }
        self.stopping = true;
        self.send(|| Control::Stop(how));
    }

    /// Makes `probes` the configuration in force: starts what is new, retires
    /// what changed or went away. Returns what changed.
    fn apply(&mut self, probes: Vec<ProbeConfig>) -> Plan {
        let old: Vec<ProbeConfig> = self.desired.values().map(|p| (**p).clone()).collect();
        let plan = reload::plan(&old, &probes);
        let spread = probes.len() > 1;
        self.desired = probes.into_iter().map(|p| (p.name.clone(), Arc::new(p))).collect();
        for name in plan.removed.iter().chain(&plan.changed) {
            if let Some(h) = self.running.get_mut(name)
                && !h.retiring
            {
                h.retiring = true;
                let _ = h.control.send(Control::Retire);
            }
        }
        for name in plan.added.iter().chain(&plan.changed) {
            if !self.running.contains_key(name) {
                self.start(name, spread, None);
            }
        }
        let max_output = self.desired.values().map(|p| p.max_output).max().unwrap_or(0);
        self.log.fit_output(max_output);
        release_freed_memory();
        plan
    }

    /// Starts the supervisor of the configured probe `name`, with what the
    /// supervisor it replaces handed over.
    fn start(&mut self, name: &str, spread: bool, prior: Option<Handover>) {
        let Some(cfg) = self.desired.get(name).cloned() else {
            return;
        };
        let phase = if spread { reload::phase(name, cfg.interval) } else { Duration::ZERO };
        tracing::debug!(probe = %name, phase_ms = phase.as_millis() as u64, "probe started");
        let t0 = tokio::time::Instant::now().into_std() + phase;
        let (control, rx) = crate::supervisor::control_channel();
        let sup = Box::new(Supervisor::new(cfg, self.shared.clone(), t0, prior));
        if let (Some(dir), Some(board)) = (&self.directory, sup.board()) {
            dir.insert(name, Entry { board, asker: Asker::of(&rx) });
        }
        let owned = name.to_string();
        if self.owed_status.remove(name) {
            let _ = control.send(Control::Status);
        }
        self.tasks.spawn_local(async move { (owned, sup.run(rx).await) });
        self.running.insert(name.to_string(), Handle { control, retiring: false });
    }

    /// A supervisor returned: a changed probe it was blocking starts now,
    /// taking over its target if that is unchanged.
    fn finished(&mut self, name: &str, handover: Handover) {
        tracing::debug!(probe = %name, "probe returned");
        self.running.remove(name);
        if let Some(dir) = &self.directory {
            dir.remove(name);
        }
        if handover.owes_status {
            self.owed_status.insert(name.to_string());
        }
        if !self.desired.contains_key(name) {
            self.owed_status.remove(name);
        }
        if !self.stopping && self.desired.contains_key(name) {
            self.start(name, self.desired.len() > 1, Some(handover));
        }
    }

    /// `3 probes: 1 failing, 0 in recovery`.
    fn status_line(&self) -> String {
        let n = self.desired.len();
        let probes = if n == 1 { "probe" } else { "probes" };
        let (failing, recovering) = (self.shared.failing.get(), self.shared.recovering.get());
        format!("{n} {probes}: {failing} failing, {recovering} in recovery")
    }

    /// Re-reads the config file (systemd hears of it); an invalid file changes
    /// nothing. The reload's log entries, or why the file was refused.
    fn reload(&mut self, asked: bool) -> Result<Vec<String>, String> {
        self.notifier.reloading();
        let outcome = self.reload_file(asked);
        if let Err(reason) = &outcome {
            self.reload_failed(reason);
        }
        self.status = self.status_line();
        self.notifier.ready(&self.status);
        outcome
    }

    fn reload_file(&mut self, asked: bool) -> Result<Vec<String>, String> {
        let known_pids = self
            .desired
            .values()
            .filter_map(|p| match p.target {
                Some(TargetSpec::Pid(pid)) => Some(pid),
                _ => None,
            })
            .collect();
        let env = Env { mode: Mode::Service, known_pids, reload: true, ..Env::current() };
        let settings = match config::settings_from_cli(&self.cli, &env) {
            Ok(s) => s,
            Err(e) => return Err(crate::text::chain(&e)),
        };
        for w in &settings.warnings {
            tracing::warn!("{w}");
        }
        // A file whose probes cannot all have their fds is refused as a whole.
        match raise_nofile_limit(&settings.probes) {
            Ok(slots) => self.shared.slots.resize(slots),
            Err(e) => return Err(e.to_string()),
        }
        if settings.log != self.log_path {
            self.log.reopen_at(&settings.log);
            self.log_path = settings.log.clone();
        }
        let listening = (settings.control_socket.clone(), settings.metrics_listen);
        if listening != self.listening {
            let text =
                "control_socket or metrics_listen changed: that takes effect when heat restarts";
            tracing::warn!("{text}");
            self.event(Level::Info, text);
            self.listening = listening;
        }
        let plan = self.apply(settings.probes);
        if let Some(m) = &self.shared.metrics {
            m.reloaded(true, unix_now());
        }
        let after_failure = std::mem::take(&mut self.reload_failed);
        tracing::info!(
            added = ?plan.added,
            removed = ?plan.removed,
            changed = ?plan.changed,
            unchanged = plan.unchanged.len(),
            valid_again = after_failure,
            "reloaded"
        );
        let entries = reload::entries(&plan, asked, after_failure);
        for text in &entries {
            self.event(Level::Info, text);
        }
        Ok(entries)
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Hands the heap freed after reading a configuration back to the system.
/// glibc keeps it otherwise: reading a file of 10,000 probes takes about
/// twice what heat then holds, and the rest would stay in heat's RSS.
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns glibc's own free pages; no pointer of
    // heat's is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Why the open-file limit cannot cover the probes. The errno is part of the
/// text rather than a source: callers print one line, and a chain printer
/// would say it twice.
#[derive(Debug, thiserror::Error)]
pub enum NofileError {
    #[error("{errno}")]
    Read { errno: nix::errno::Errno },
    #[error(
        "the hard limit on open files ({hard}) is too low for {probes} probes (need {need}); raise LimitNOFILE or ulimit -Hn"
    )]
    HardLimit { hard: u64, probes: usize, need: u64 },
    #[error("cannot raise the open-file limit: {errno}")]
    Raise { errno: nix::errno::Errno },
}

/// fds heat keeps for itself: the log, stderr and stdout, the timer, the
/// watch, signals, systemd's socket, the runtime.
const FDS_OWN: u64 = 64;
/// fds one running check or hook holds: its pipe (both ends while it starts),
/// its pidfd, its cgroup.
const FDS_PER_RUN: u64 = 4;

/// Raises the soft open-file limit toward the hard one, as far as the probes
/// could use, and says how many checks and hooks may run at once within it:
/// each probe with a target keeps its target's pidfd, each run holds a few
/// fds while it runs. A hard limit lower than all probes running at once is
/// fine (runs wait for a slot); one too low for a single run is an error.
pub fn raise_nofile_limit(probes: &[ProbeConfig]) -> Result<usize, NofileError> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let targets = probes.iter().filter(|p| p.target.is_some()).count() as u64;
    let reserved = FDS_OWN + targets;
    let want = reserved + FDS_PER_RUN * probes.len().max(1) as u64;
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|errno| NofileError::Read { errno })?;
    let need = reserved + FDS_PER_RUN;
    if hard < need {
        return Err(NofileError::HardLimit { hard, probes: probes.len(), need });
    }
    let limit = if soft >= want {
        soft
    } else {
        let raised = want.min(hard);
        setrlimit(Resource::RLIMIT_NOFILE, raised, hard)
            .map_err(|errno| NofileError::Raise { errno })?;
        raised
    };
    let slots = (limit.saturating_sub(reserved) / FDS_PER_RUN).min(probes.len().max(1) as u64);
    Ok(slots as usize)
}

/// Waits for the config file to change; never, without a watch.
async fn watched(watch: &mut Option<ConfigWatch>) {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

async fn tick(pulse: &mut Option<tokio::time::Interval>) {
    match pulse {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn quiet(deadline: Option<Instant>) {
    match deadline {
        Some(d) => crate::timer::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
