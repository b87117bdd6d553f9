//! One probe, driven: the schedule's timer, the running check or hook, the
//! target and heat's requests become events for the [`Probe`] state machine,
//! and its actions are carried out here, in one `match`.
//!
//! A probe never runs two things at once (a check or a hook), so there is at
//! most one child per supervisor.

use std::cell::{Cell, RefCell};
use std::ffi::OsString;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::board::{Board, Output, Pause};
use crate::cgroup;
use crate::config::{Check, Hook, Mode, ProbeConfig, TargetSpec};
use crate::control::{Answer, Ask};
use crate::exec::{self, Kind, Outcome, Report, Spec, Stop};
use crate::log::{Level, Log};
use crate::metrics::{HookKind, HookResult, Metrics, ProbeMetrics};
use crate::probe::{Action, Busy, CheckResult, Dest, Event, HookEnv, NotNow, Note, Probe};
use crate::signal::Signal;
use crate::spawn::{Env, Prepared};
use crate::target::{self, Target};
use crate::timer;

/// Environment variables meant for heat alone, never passed on.
const PRIVATE_ENV: [&str; 6] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

/// heat's environment, cleaned of what is meant for heat alone. Shared by
/// every child; a probe's own variables replace entries of it at the spawn.
pub fn child_env() -> Arc<Env> {
    Arc::new(Env::new(std::env::vars_os().filter(|(k, _)| {
        let name = k.to_string_lossy();
        !name.starts_with("HEAT_") && !PRIVATE_ENV.contains(&name.as_ref())
    })))
}

/// The per-check line on stdout (command-line mode), queued (see `diag`): a
/// stdout nobody reads, or a broken one, never blocks or ends heat.
pub struct Stdout {
    log_display: String,
}

impl Stdout {
    pub fn new(log_display: String) -> Stdout {
        Stdout { log_display }
    }

    fn line(&self, unix: u64, code: i32) {
        let line = if code == 0 {
            format!("{unix}: OK\n")
        } else {
            format!("{unix}: Failed: Exit Code {code}, details in {}\n", self.log_display)
        };
        crate::diag::stdout_line(line.as_bytes());
    }
}

/// What all supervisors share.
pub struct Shared {
    pub log: Log,
    /// heat's environment as checks and hooks get it, shared by every probe.
    pub env: Arc<Env>,
    /// Command-line mode: per-check lines on stdout (unless quiet).
    pub stdout: Option<Stdout>,
    /// Service mode (`-c`): entries are named `[probe] …`. What trouble does
    /// follows from it ([`OnTrouble::of`]).
    pub mode: Mode,
    /// Probes failing now, and those in recovery (systemd's STATUS line).
    pub failing: Cell<usize>,
    pub recovering: Cell<usize>,
    /// Where checks and hooks come from.
    pub children: Children,
    /// Runs that may hold file descriptors at once (see [`RunSlots`]).
    pub slots: RunSlots,
    /// Where checks and hooks get cgroups of their own; `None`: process groups.
    pub cgroups: Option<crate::cgroup::Tree>,
    /// Probes publish their state here when a control socket or the
    /// metrics server reads it.
    pub boards: bool,
    pub metrics: Option<Rc<Metrics>>,
}

/// The checks and hooks that may run at once, as heat's open-file limit
/// allows: each holds a few fds while it runs (its pipe, its pidfd, its
/// cgroup). A run that finds none free waits for one (an INFO entry, counted)
/// rather than failing: it is heat's shortage, never the probe's.
pub struct RunSlots {
    free: tokio::sync::Semaphore,
    total: Cell<usize>,
    /// Runs that had to wait, since start.
    pub delayed: Cell<u64>,
}

impl RunSlots {
    pub fn new(total: usize) -> RunSlots {
        RunSlots {
            free: tokio::sync::Semaphore::new(total),
            total: Cell::new(total),
            delayed: Cell::new(0),
        }
    }

    /// After a reload: more slots at once, fewer as runs give theirs back.
    pub fn resize(&self, total: usize) {
        let old = self.total.replace(total);
        if total > old {
            self.free.add_permits(total - old);
        } else {
            // Slots held now come back: until those runs end a few more may
            // run than the new limit says, and a spawn that then finds no fd
            // is heat's ERR entry, as any shortage.
            self.free.forget_permits(old - total);
        }
    }
}

impl Default for RunSlots {
    fn default() -> RunSlots {
        RunSlots::new(tokio::sync::Semaphore::MAX_PERMITS)
    }
}

/// Where a probe's children come from: exec.rs, or in unit tests a script
/// played on tokio's clock, so the supervisor's timing is tested paused.
/// An enum rather than a trait object: outside tests it has one variant, so
/// the real path costs nothing more than the direct call.
#[derive(Clone, Default)]
pub enum Children {
    #[default]
    Exec,
    #[cfg(test)]
    Scripted(Rc<fake::Script>),
}

impl Children {
    async fn run(
        &self,
        ready: &Ready,
        cgroup: Option<std::os::fd::BorrowedFd<'_>>,
        stop: watch::Receiver<Stop>,
        on_start: impl FnOnce(u32),
    ) -> Report {
        match self {
            Children::Exec => match &ready.prepared {
                Ok(prepared) => {
                    exec::run_prepared(ready.bounds, prepared, cgroup, stop, on_start).await
                }
                Err(not_started) => not_started.clone(),
            },
            #[cfg(test)]
            Children::Scripted(script) => {
                let _ = cgroup;
                script.play(ready, stop, on_start).await
            }
        }
    }
}

/// This probe's part in the shared counts, withdrawn when it ends.
struct Tally {
    shared: Rc<Shared>,
    failing: bool,
    recovering: bool,
}

impl Tally {
    fn set(&mut self, failing: bool, recovering: bool) {
        let adjust = |cell: &Cell<usize>, was: bool, now: bool| {
            if was != now {
                cell.set(if now { cell.get() + 1 } else { cell.get().saturating_sub(1) });
            }
        };
        adjust(&self.shared.failing, self.failing, failing);
        adjust(&self.shared.recovering, self.recovering, recovering);
        self.failing = failing;
        self.recovering = recovering;
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.set(false, false);
    }
}

/// heat's requests to a supervisor.
#[derive(Debug)]
pub enum Control {
    /// End the running child as asked and return.
    Stop(Stop),
    /// Write the probe's state to the log (USR1).
    Status,
    /// A reload changed or removed the probe: a running hook finishes (within
    /// its hook timeout), a running check is ended, then the supervisor returns.
    Retire,
    /// From the control socket: answered at once.
    /// Boxed: it keeps every other message, and each probe's task, small.
    Ask(Box<(Ask, tokio::sync::oneshot::Sender<Answer>)>),
}

/// The service's line to one supervisor: a mailbox of a few words instead of
/// a channel (tokio's unbounded channel preallocates a block of slots, about
/// 700 bytes per probe, which 10,000 probes feel). Messages are rare and
/// handled in order; `recv` checks the queue before it waits, so a wake-up
/// lost to a `select!` that chose another branch loses no message.
pub fn control_channel() -> (ControlTx, ControlRx) {
    let mailbox = Rc::new(Mailbox {
        queue: RefCell::new(std::collections::VecDeque::new()),
        closed: Cell::new(false),
        waker: Cell::new(None),
    });
    (ControlTx(mailbox.clone()), ControlRx(mailbox))
}

struct Mailbox {
    queue: RefCell<std::collections::VecDeque<Control>>,
    closed: Cell<bool>,
    /// The receiver's, while it waits: one reader, one thread, so a plain
    /// slot (tokio's `Notify` would take 80 more bytes of every probe's task).
    waker: Cell<Option<std::task::Waker>>,
}

impl Mailbox {
    fn wake(&self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

pub struct ControlTx(Rc<Mailbox>);

impl ControlTx {
    /// Fails with the message when the supervisor has returned.
    pub fn send(&self, c: Control) -> Result<(), Control> {
        if Rc::strong_count(&self.0) == 1 {
            return Err(c);
        }
        self.0.queue.borrow_mut().push_back(c);
        self.0.wake();
        Ok(())
    }
}

impl Drop for ControlTx {
    fn drop(&mut self) {
        self.0.closed.set(true);
        self.0.wake();
    }
}

pub struct ControlRx(Rc<Mailbox>);

/// The control socket's line to a supervisor: it does not keep the mailbox
/// open (only the service's [`ControlTx`] does).
#[derive(Clone)]
pub struct Asker(std::rc::Weak<Mailbox>);

impl Asker {
    pub fn of(rx: &ControlRx) -> Asker {
        Asker(Rc::downgrade(&rx.0))
    }

    /// The supervisor's answer; [`Answer::Stopping`] once it has returned.
    pub async fn ask(&self, ask: Ask) -> Answer {
        let Some(mailbox) = self.0.upgrade().filter(|m| !m.closed.get()) else {
            return Answer::Stopping;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        mailbox.queue.borrow_mut().push_back(Control::Ask(Box::new((ask, tx))));
        mailbox.wake();
        drop(mailbox);
        rx.await.unwrap_or(Answer::Stopping)
    }
}

impl ControlRx {
    /// The next message; `None` once the service dropped its end and every
    /// message is read.
    pub async fn recv(&mut self) -> Option<Control> {
        std::future::poll_fn(|cx| {
            if let Some(c) = self.try_recv() {
                return std::task::Poll::Ready(Some(c));
            }
            if self.0.closed.get() {
                return std::task::Poll::Ready(None);
            }
            self.0.waker.set(Some(cx.waker().clone()));
            std::task::Poll::Pending
        })
        .await
    }

    pub fn try_recv(&mut self) -> Option<Control> {
        self.0.queue.borrow_mut().pop_front()
    }
}

impl Shared {
    pub fn on_trouble(&self) -> OnTrouble {
        OnTrouble::of(self.mode)
    }
}

/// What trouble does: a target lost, or a check or hook killed or stopped by
/// a signal heat did not send. Decided here once; every site asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnTrouble {
    /// The command line: heat is one process's companion, so trouble ends it
    /// (README "Fatal conditions").
    Exit,
    /// Service mode: the probe's trouble, an ERR entry; the probe goes on.
    Log,
}

impl OnTrouble {
    pub fn of(mode: Mode) -> OnTrouble {
        match mode {
            Mode::CommandLine => OnTrouble::Exit,
            Mode::Service => OnTrouble::Log,
        }
    }
}

/// Which of a probe's children something is about, as messages name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Run {
    Check,
    /// A hook, by its path as given.
    Hook(String),
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Run::Check => f.write_str("check"),
            Run::Hook(display) => write!(f, "hook {display}"),
        }
    }
}

/// A fatal condition: why heat ends (command line only). The text is what
/// stderr and the ERR entry say.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fatal {
    /// The target exited without a successor, or none was found at start;
    /// `note` is the probe's note as the log has it.
    #[error("{note}")]
    Target { note: String },
    #[error("{run} pid {pid} was killed by {signal}, not sent by heat")]
    Killed { run: Run, pid: u32, signal: Signal },
    #[error("{run} pid {pid} was stopped by {signal}")]
    Stopped { run: Run, pid: u32, signal: Signal },
}

/// How a supervisor ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Stopped,
    /// A fatal condition (command-line mode); already printed and logged.
    Fatal(Fatal),
}

/// How long a hook waits for a stopping fault signal to take effect: the
/// target stops only when it next runs, which a busy host can delay.
const STOP_TAKES_EFFECT: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    Check,
    FailHook,
    RecoveryHook,
}

struct Running {
    job: Job,
    /// When it was asked for (diagnostics).
    started: Instant,
    stop: watch::Sender<Stop>,
    report: Pin<Box<dyn Future<Output = Report>>>,
}

/// Names used in the log, computed once, in one allocation: `heat` then
/// `check` (`[web] heat[web] curl …`), `probe` the prefix of both.
struct Names {
    text: String,
    heat_end: usize,
    probe_end: usize,
}

impl Names {
    /// `name`'s names in service mode; on the command line (`name` `None`)
    /// the check is its command and heat is `heat`.
    fn new(name: Option<&str>, display: &str) -> Names {
        let prefix = name.map(|n| format!("[{n}] ")).unwrap_or_default();
        let text = format!("{prefix}heat{prefix}{display}");
        Names { heat_end: prefix.len() + "heat".len(), probe_end: prefix.len(), text }
    }

    /// heat's own entries about the probe: `[web] heat`.
    fn heat(&self) -> &str {
        &self.text[..self.heat_end]
    }

    /// The check's entries: `[web] curl …`.
    fn check(&self) -> &str {
        &self.text[self.heat_end..]
    }

    /// What a hook's name starts with: `[web] `.
    fn probe(&self) -> &str {
        &self.text[..self.probe_end]
    }
}

/// What a supervisor leaves for the one that replaces it when a reload changes
/// its probe but not its target: the target's pidfd (so the pid is never
/// reopened by number) and the pids it saw die.
#[derive(Debug, Default)]
pub struct Handover {
    target: Option<TargetSpec>,
    live: Option<Target>,
    dead: Vec<u32>,
    /// heat asked for a state entry (USR1) that this supervisor did not write.
    pub owes_status: bool,
    /// A maintenance pause outlives a reload.
    pause: Option<Box<Pause>>,
    /// The last outputs and the count of checks go on across a reload.
    board: Option<Rc<Board>>,
    /// Counters go on across a reload.
    metrics: Option<Box<ProbeMetrics>>,
}

pub struct Supervisor {
    cfg: Arc<ProbeConfig>,
    /// Built once: every check of the probe is started the same way.
    check_spec: Rc<Ready>,
    tally: Tally,
    shared: Rc<Shared>,
    probe: Probe,
    names: Names,
    /// The live target's pidfd; the probe knows whether there is one.
    target: Option<Target>,
    /// A live target handed over by the supervisor this one replaces.
    inherited: Option<Target>,
    running: Option<Running>,
    /// A target sent a stopping signal in this turn: a hook started after
    /// it waits for the stop to take effect, so it sees the target frozen.
    freezing: Option<u32>,
    /// Published for the control socket and the metrics server.
    board: Option<Rc<Board>>,
    metrics: Option<Box<ProbeMetrics>>,
    /// The maintenance pause in force (the probe knows only its end).
    pause: Option<Box<Pause>>,
}

impl Supervisor {
    /// A supervisor whose first check is due at `t0`; `prior` is what the
    /// supervisor it replaces handed over.
    pub fn new(
        cfg: Arc<ProbeConfig>,
        shared: Rc<Shared>,
        t0: Instant,
        prior: Option<Handover>,
    ) -> Supervisor {
        let service = shared.mode == Mode::Service;
        let names = Names::new(service.then_some(cfg.name.as_str()), &cfg.display);
        let check_spec = Rc::new(Ready::new(check_spec(&cfg, &shared), creds(&cfg.user)));
        let mut rules = cfg.rules();
        rules.service = shared.on_trouble() == OnTrouble::Log;
        let mut probe = Probe::new(rules, t0);
        let mut inherited = None;
        let (mut pause, mut board, mut metrics) = (None, None, None);
        if let Some(mut prior) = prior {
            if prior.target.is_some() && prior.target == cfg.target {
                probe.inherit_dead(&prior.dead);
                inherited = prior.live.take();
            }
            pause = prior.pause.take();
            board = prior.board.take();
            metrics = prior.metrics.take();
        }
        if let Some(p) = &pause {
            probe.pause(p.until);
        }
        let board = shared.boards.then(|| match board {
            Some(board) => {
                board.update(|v| {
                    v.status = probe.status();
                    v.last_duration = None;
                    v.pause.clone_from(&pause);
                });
                board
            }
            None => {
                let board = Board::new(probe.status());
                board.update(|v| v.pause = pause.clone());
                Rc::new(board)
            }
        });
        let metrics = match (metrics, &shared.metrics) {
            (Some(m), _) => Some(m),
            (None, Some(families)) => Some(families.probe(&cfg.name)),
            (None, None) => None,
        };
        Supervisor {
            check_spec,
            tally: Tally { shared: shared.clone(), failing: false, recovering: false },
            probe,
            cfg,
            shared,
            names,
            target: None,
            inherited,
            running: None,
            freezing: None,
            board,
            metrics,
            pause,
        }
    }

    /// What the control socket reads; `None` when nothing reads it.
    pub fn board(&self) -> Option<Rc<Board>> {
        self.board.clone()
    }

    /// Makes the probe's state visible: the failing and recovering counts,
    /// the board, the metrics' gauges.
    fn publish(&mut self) {
        let s = self.probe.status();
        let paused = s.paused.is_some();
        self.tally.set(s.fails > 0 && !paused, s.recovery);
        if let Some(m) = &self.metrics {
            m.state(s.fails, s.recovery, paused);
        }
        if let Some(board) = &self.board {
            let target_pid = self.target.as_ref().map(Target::pid);
            board.update(|v| {
                v.status = s;
                v.target_pid = target_pid;
                v.pause.clone_from(&self.pause);
            });
        }
    }

    /// A request from the control socket.
    fn ask(&mut self, ask: Ask) -> Result<Answer, Fatal> {
        let now = now();
        let unix_now = unix(SystemTime::now());
        match ask {
            Ask::Pause { until, reason, by } => {
                let actions = self.probe.pause(until.map(|d| now + d));
                let length = match until {
                    Some(d) => format!("for {}", humantime::format_duration(d)),
                    None => "until resumed".to_string(),
                };
                let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
                tracing::info!(probe = %self.cfg.name, %by, %length, %reason, "paused");
                self.event(Level::Info, &format!("paused by {by} {length}{why}"));
                self.pause = Some(Box::new(Pause {
                    reason,
                    by,
                    since_unix: unix_now,
                    until: until.map(|d| now + d),
                    until_unix: until.map(|d| unix_now + d.as_secs()),
                }));
                self.execute(actions, " (paused)")?;
                Ok(Answer::Paused)
            }
            Ask::Resume { by } => {
                if !self.probe.resume() {
                    return Ok(Answer::NotPaused);
                }
                let since = self.pause.take().map_or(unix_now, |p| p.since_unix);
                let length =
                    humantime::format_duration(Duration::from_secs(unix_now.saturating_sub(since)));
                tracing::info!(probe = %self.cfg.name, %by, "resumed");
                self.event(Level::Info, &format!("resumed by {by} (paused {length})"));
                Ok(Answer::Resumed)
            }
            Ask::RunNow { by } => match self.probe.run_now(now) {
                Ok(actions) => {
                    let checks = self.board.as_ref().map_or(0, |b| b.checks.get());
                    tracing::info!(probe = %self.cfg.name, %by, "check run now");
                    self.event(Level::Info, &format!("check run now, asked by {by}"));
                    self.execute(actions, "")?;
                    Ok(Answer::Started { checks })
                }
                Err(NotNow::Paused) => Ok(Answer::IsPaused),
                Err(NotNow::Busy) => Ok(Answer::Busy(match self.probe.busy() {
                    Busy::FailHook => "fail hook",
                    Busy::RecoveryHook => "recovery hook",
                    _ => "check",
                })),
            },
        }
    }

    /// Runs the probe until heat asks it to stop or a fatal condition ends it.
    /// Boxed: an async fn holds its arguments apart from its body's state, so
    /// a supervisor passed by value would sit twice in every probe's task.
    pub async fn run(mut self: Box<Self>, mut control: ControlRx) -> (Exit, Handover) {
        let first = self.probe.start();
        if let Err(fatal) = self.execute(first, "") {
            return Box::pin(self.fatal(fatal)).await;
        }
        // The ways out are rare: boxed, they keep every probe's task small.
        let mut timer = timer::Timer::new(self.probe.next_wakeup());
        self.publish();
        loop {
            // A probe that is always due must still let the other probes, heat's
            // signals and the watchdog run: yield once the task's budget is spent.
            tokio::task::consume_budget().await;
            timer.reset(self.probe.next_wakeup());
            let event = tokio::select! {
                () = &mut timer => Some(Event::Tick),
                report = poll_running(&mut self.running) => {
                    match self.finished(report) {
                        Ok(event) => event,
                        Err(fatal) => return Box::pin(self.fatal(fatal)).await,
                    }
                }
                () = target_exited(&self.target) => {
                    let pid = self.target.take().map(|t| t.pid());
                    tracing::info!(probe = %self.cfg.name, pid, "target exited");
                    Some(Event::TargetExited)
                }
                msg = control.recv() => match msg {
                    Some(Control::Status) => {
                        self.status();
                        None
                    }
                    Some(Control::Ask(asked)) => {
                        let (ask, reply) = *asked;
                        match self.ask(ask) {
                            Ok(answer) => {
                                let _ = reply.send(answer);
                            }
                            Err(fatal) => return Box::pin(self.fatal(fatal)).await,
                        }
                        self.publish();
                        None
                    }
                    Some(Control::Stop(how)) => {
                        Box::pin(self.stop(Some(how), &mut control)).await;
                        return (Exit::Stopped, self.handover(&mut control));
                    }
                    Some(Control::Retire) => {
                        tracing::info!(probe = %self.cfg.name, "retiring (reload)");
                        Box::pin(self.stop(None, &mut control)).await;
                        return (Exit::Stopped, self.handover(&mut control));
                    }
                    None => {
                        Box::pin(self.stop(Some(Stop::Graceful), &mut control)).await;
                        return (Exit::Stopped, self.handover(&mut control));
                    }
                },
            };
            if let Some(event) = event {
                let tick = event == Event::Tick;
                let busy = self.probe.busy() != Busy::Idle;
                let at = now();
                let actions = self.probe.on(event, at);
                if tick
                    && let Some(m) = &self.metrics
                    && actions.contains(&Action::StartCheck)
                {
                    m.late(at.saturating_duration_since(timer.deadline()));
                }
                if tick {
                    // Fields are only evaluated when DEBUG is on.
                    tracing::debug!(
                        probe = %self.cfg.name,
                        starts_check = actions.contains(&Action::StartCheck),
                        busy,
                        "tick"
                    );
                }
                if let Err(fatal) = self.execute(actions, "") {
                    return Box::pin(self.fatal(fatal)).await;
                }
                self.publish();
            }
        }
    }

    fn handover(&mut self, control: &mut ControlRx) -> Handover {
        // A state entry asked for after the child ended is the replacement's
        // to write: the receiver is dropped with this supervisor.
        let mut owes_status = false;
        while let Some(c) = control.try_recv() {
            match c {
                Control::Status => owes_status = true,
                Control::Ask(asked) => {
                    let _ = asked.1.send(Answer::Stopping);
                }
                Control::Stop(_) | Control::Retire => {}
            }
        }
        Handover {
            target: self.cfg.target.clone(),
            live: self.target.take(),
            dead: self.probe.dead().to_vec(),
            owes_status,
            pause: self.pause.take(),
            board: self.board.take(),
            metrics: self.metrics.take(),
        }
    }

    /// Carries out the probe's actions in order; `why` is appended to the log
    /// entry of a signal. `Err` is a fatal condition (command line).
    fn execute(&mut self, actions: Vec<Action>, why: &str) -> Result<(), Fatal> {
        let done = self.execute_all(actions, why);
        self.freezing = None;
        done
    }

    fn execute_all(&mut self, actions: Vec<Action>, why: &str) -> Result<(), Fatal> {
        for action in actions {
            match action {
                Action::StartCheck => self.start_check(),
                Action::Signal { signal, dest } => self.signal(signal, dest, why),
                Action::RunFailHook(env) => {
                    let hook = self.cfg.fail.clone().expect("a fail hook is configured");
                    self.start_hook(Job::FailHook, &hook, &env);
                }
                Action::RunRecoveryHook(env) => {
                    let hook = self.cfg.recovery.clone().expect("a recovery hook is configured");
                    self.start_hook(Job::RecoveryHook, &hook, &env);
                }
                Action::Note(note) => self.note(&note),
                Action::FindTarget => {
                    let answer = self.find_target();
                    let more = self.probe.on(answer, now());
                    self.execute_all(more, why)?;
                }
                // The probe asked `OnTrouble` through its rules.
                Action::Fatal(note) => return Err(Fatal::Target { note: self.note_text(&note) }),
            }
        }
        Ok(())
    }

    fn note_text(&self, note: &Note) -> String {
        let pidfile = || match &self.cfg.target {
            Some(TargetSpec::Pidfile(path)) => path.display().to_string(),
            _ => "its pidfile".to_string(),
        };
        match note {
            Note::StartPeriod => "check failed in the start period: not counted".to_string(),
            Note::RecoveryRound { round, fails } => {
                format!("recovery round {round}: {fails} consecutive failures")
            }
            Note::WindowClosed => "recovery window closed without a success".to_string(),
            Note::Recovered { fails } => format!("recovered after {fails} consecutive failures"),
            Note::Following { dead: Some(dead), pid, again: false } => {
                format!("target pid {dead} exited; following pid {pid} from {}", pidfile())
            }
            Note::Following { pid, .. } => format!("following pid {pid} from {}", pidfile()),
            Note::TargetLost { dead } => format!("target pid {dead} exited"),
            Note::NoTarget { reason } => reason.clone(),
            Note::SignalSkipped { signal, seeking: Some(dead) } => {
                format!("skipped {signal}: target pid {dead} exited, waiting for its pidfile")
            }
            Note::SignalSkipped { signal, seeking: None } => format!("skipped {signal}: no target"),
            Note::PauseOver => "pause over: checks run again".to_string(),
        }
    }

    fn note(&mut self, note: &Note) {
        match note {
            Note::PauseOver => self.pause = None,
            Note::RecoveryRound { .. } => {
                if let Some(m) = &self.metrics {
                    m.round();
                }
            }
            _ => {}
        }
        let probe = &self.cfg.name;
        match note {
            Note::StartPeriod => tracing::info!(%probe, "failure in the start period, not counted"),
            Note::RecoveryRound { round, fails } => {
                tracing::info!(%probe, round, fails, "recovery round")
            }
            Note::WindowClosed => tracing::info!(%probe, "recovery window closed, no success"),
            Note::Recovered { fails } => tracing::info!(%probe, fails, "recovered"),
            // Said by `find_target`, which every look goes through.
            Note::Following { .. } => {}
            Note::TargetLost { dead } => tracing::info!(%probe, pid = dead, "target lost"),
            Note::NoTarget { reason } => tracing::info!(%probe, %reason, "no target"),
            Note::SignalSkipped { signal, .. } => {
                tracing::info!(%probe, %signal, "signal skipped: no live target")
            }
            Note::PauseOver => tracing::info!(%probe, "pause over"),
        }
        let level = if note.is_error() { Level::Err } else { Level::Info };
        self.event(level, &self.note_text(note));
    }

    fn event(&self, level: Level, text: &str) {
        self.write(SystemTime::now(), level, self.names.heat(), text.as_bytes(), 0);
    }

    /// Every entry of the probe's goes through here.
    fn write(&self, time: SystemTime, level: Level, name: &str, body: &[u8], dropped: u64) {
        #[cfg(test)]
        if let Children::Scripted(script) = &self.shared.children {
            script.saw(level, name, body);
        }
        self.shared.log.write(time, level, name, body, dropped);
    }

    /// The answer to the probe's `FindTarget`: the pid, or the pidfile's
    /// process, never one the probe saw die; the pidfd is kept here.
    fn find_target(&mut self) -> Event {
        if let Some(t) = self.inherited.take().filter(Target::alive) {
            let pid = t.pid();
            tracing::info!(probe = %self.cfg.name, pid, "target handed over");
            self.target = Some(t);
            return Event::TargetFound(pid);
        }
        let opened = match &self.cfg.target {
            None => return Event::TargetNotFound("no target".to_string()),
            Some(TargetSpec::Pid(pid)) if self.probe.dead().contains(pid) => {
                Err(format!("target pid {pid} exited"))
            }
            Some(TargetSpec::Pid(pid)) => {
                Target::open(*pid).map_err(|e| format!("target pid {pid}: {e}"))
            }
            Some(TargetSpec::Pidfile(path)) => {
                let as_root = nix::unistd::geteuid().is_root();
                target::inspect_pidfile(path, self.probe.dead(), as_root)
                    .map_err(|e| format!("pidfile {}: {e}", path.display()))
                    .and_then(|found| {
                        let pid = found.pid;
                        Target::adopt(found)
                            .map_err(|e| format!("pidfile {} names pid {pid}: {e}", path.display()))
                    })
            }
        };
        match opened {
            Ok(t) => {
                let pid = t.pid();
                tracing::info!(probe = %self.cfg.name, pid, "target found");
                self.target = Some(t);
                Event::TargetFound(pid)
            }
            Err(reason) => {
                tracing::debug!(probe = %self.cfg.name, %reason, "target not found");
                Event::TargetNotFound(reason)
            }
        }
    }

    fn start_check(&mut self) {
        let spec = self.check_spec.clone();
        self.spawn(Job::Check, spec);
    }

    fn start_hook(&mut self, job: Job, hook: &Hook, env: &HookEnv) {
        let env_extra = self.env(env);
        let spec = Spec {
            program: hook.path.clone(),
            args: Vec::new(),
            env: self.shared.env.clone(),
            env_extra,
            cwd: self.cfg.workdir.clone(),
            kind: Kind::Hook,
            timeout: self.cfg.hook_timeout,
            max_output: self.cfg.max_output,
        };
        self.spawn(job, Rc::new(Ready::new(spec, creds(&self.cfg.hook_user))));
    }

    /// A hook's own variables.
    fn env(&self, hook: &HookEnv) -> Vec<(OsString, OsString)> {
        let mut env = probe_env(&self.cfg, true);
        env.extend(hook.vars().into_iter().map(|(k, v)| (k.into(), v.into())));
        if let Some(t) = &self.target {
            env.push(("HEAT_TARGET_PID".into(), t.pid().to_string().into()));
        }
        env
    }

    fn spawn(&mut self, job: Job, ready: Rc<Ready>) {
        let (stop, rx) = watch::channel(Stop::No);
        let frozen = self.freezing.filter(|_| job != Job::Check);
        let children = self.shared.children.clone();
        let cfg = self.cfg.clone();
        let shared = self.shared.clone();
        let (heat, what) = (self.names.heat().to_string(), self.run_of(job));
        let mut stopped = rx.clone();
        let report = Box::pin(async move {
            let Some(_slot) = run_slot(&shared, &heat, &what, &cfg.name, &mut stopped).await else {
                return Report::ended_unstarted();
            };
            if let Some(pid) = frozen {
                target::stopped(pid, STOP_TAKES_EFFECT).await;
            }
            let kind = if job == Job::Check { cgroup::Kind::Check } else { cgroup::Kind::Hook };
            let mut cg = run_cgroup(&shared, &ready.kept, kind, &cfg, &heat, &what);
            let fd = match cg.as_mut().map(cgroup::Cgroup::fd) {
                Some(Ok(fd)) => Some(fd),
                Some(Err(e)) => {
                    no_cgroup(&shared, &heat, &cfg.name, &what, &e);
                    None
                }
                None => None,
            };
            let report = children.run(&ready, fd, rx, |pid| trace_start(&cfg, job, pid)).await;
            if let Some(cg) = cg {
                after_run(cg, &ready.kept, &shared, &cfg).await;
            }
            report
        });
        self.running = Some(Running { job, started: now(), stop, report });
    }

    /// Logs a finished run and turns it into the probe's event.
    fn finished(&mut self, report: Report) -> Result<Option<Event>, Fatal> {
        let Running { job, started, .. } = self.running.take().expect("a run was polled");
        if let Outcome::NotRun(error) = &report.outcome {
            let what = self.run_of(job);
            // heat's own trouble (no fds, no memory): an ERR of heat's, never
            // the probe's failure: nothing is counted, signalled or hooked.
            let next = if job == Job::Check { "; tried again at the next tick" } else { "" };
            tracing::info!(probe = %self.cfg.name, run = %what, %error, "could not run");
            self.event(Level::Err, &format!("could not run the {what}: {error}{next}"));
            return Ok(Some(if job == Job::Check { Event::CheckNotRun } else { Event::HookDone }));
        }
        self.log_run(job, &report, started);
        self.count(job, &report, started);
        let pid = report.pid.unwrap_or(0);
        let trouble = match report.outcome {
            Outcome::Signaled(signal) => Some(Fatal::Killed { run: self.run_of(job), pid, signal }),
            Outcome::Stopped(signal) => Some(Fatal::Stopped { run: self.run_of(job), pid, signal }),
            _ => None,
        };
        if let Some(trouble) = trouble {
            match self.shared.on_trouble() {
                OnTrouble::Exit => return Err(trouble),
                OnTrouble::Log => {
                    tracing::info!(probe = %self.cfg.name, %trouble, "the probe's trouble, logged");
                    self.event(Level::Err, &trouble.to_string());
                }
            }
        }
        let Some(code) = code_of(&report.outcome) else {
            return Ok(None);
        };
        if job != Job::Check {
            return Ok(Some(Event::HookDone));
        }
        let ended_unix = unix(report.ended);
        if let Some(out) = &self.shared.stdout {
            out.line(ended_unix, code);
        }
        Ok(Some(Event::CheckDone(CheckResult { code, pid: report.pid, ended_unix })))
    }

    /// A finished run in the metrics and on the board.
    fn count(&self, job: Job, report: &Report, started: Instant) {
        let ran = now().saturating_duration_since(started);
        let kind = match job {
            Job::Check => {
                let Some(code) = code_of(&report.outcome) else {
                    return;
                };
                if let Some(m) = &self.metrics {
                    m.check(code, ran);
                }
                if let Some(board) = &self.board {
                    board.checks.set(board.checks.get() + 1);
                    board.update(|v| v.last_duration = Some(ran));
                }
                return;
            }
            Job::FailHook => HookKind::Fail,
            Job::RecoveryHook => HookKind::Recovery,
        };
        let result = match report.outcome {
            Outcome::Exited(0) => HookResult::Success,
            Outcome::TimedOut => HookResult::Timeout,
            _ => HookResult::Failure,
        };
        if let Some(m) = &self.metrics {
            m.hook(kind, result);
        }
    }

    fn run_of(&self, job: Job) -> Run {
        match self.hook_of(job) {
            Some(h) => Run::Hook(h.display.clone()),
            None => Run::Check,
        }
    }

    fn hook_of(&self, job: Job) -> Option<&Hook> {
        match job {
            Job::Check => None,
            Job::FailHook => self.cfg.fail.as_ref(),
            Job::RecoveryHook => self.cfg.recovery.as_ref(),
        }
    }

    /// The run's entry: named by the check or the hook, with heat's marker.
    fn log_run(&self, job: Job, report: &Report, started: Instant) {
        let probe = &self.cfg.name;
        let (pid, code) = (report.pid, code_of(&report.outcome));
        let elapsed_ms = || now().saturating_duration_since(started).as_millis() as u64;
        match self.hook_of(job) {
            None => tracing::debug!(%probe, pid, code, elapsed_ms = elapsed_ms(), "check ended"),
            Some(h) => {
                let hook = &h.display;
                tracing::info!(%probe, %hook, pid, code, elapsed_ms = elapsed_ms(), "hook ended");
            }
        }
        // Borrowed for a check: no allocation on the path every check takes.
        let (name, timeout): (std::borrow::Cow<str>, _) = match self.hook_of(job) {
            Some(h) => {
                (format!("{}{}", self.names.probe(), h.display).into(), self.cfg.hook_timeout)
            }
            None => (self.names.check().into(), self.cfg.timeout),
        };
        let marker = match &report.outcome {
            Outcome::Exited(_) => None,
            Outcome::TimedOut if job == Job::Check => {
                Some(format!("timed out after {}, killed", humantime::format_duration(timeout)))
            }
            Outcome::TimedOut => {
                Some(format!("timed out after {}, terminated", humantime::format_duration(timeout)))
            }
            Outcome::Signaled(sig) => Some(format!("killed by {sig}")),
            Outcome::Stopped(sig) => Some(format!("stopped by {sig}, killed")),
            Outcome::Ended => Some("ended by heat".to_string()),
            Outcome::NotStarted { error, .. } => Some(format!("cannot start: {error}")),
            Outcome::NotRun(error) => Some(format!("not run: {error}")),
        };
        let level = match report.outcome {
            Outcome::Exited(0) | Outcome::Ended => Level::Info,
            _ => Level::Fail,
        };
        let body = match marker {
            None => std::borrow::Cow::Borrowed(&report.output[..]),
            Some(m) => {
                let mut body = Vec::with_capacity(report.output.len() + m.len() + 10);
                body.extend_from_slice(&report.output);
                if !body.is_empty() && !body.ends_with(b"\n") {
                    body.push(b'\n');
                }
                body.extend_from_slice(format!("[heat: {m}]\n").as_bytes());
                body.into()
            }
        };
        self.write(report.ended, level, &name, &body, report.dropped);
        if job == Job::Check
            && let Some(board) = &self.board
        {
            board.keep_output(Output {
                ended_unix: unix(report.ended),
                code: code_of(&report.outcome),
                duration: now().saturating_duration_since(started),
                text: String::from_utf8_lossy(&body).into(),
            });
        }
    }

    /// Sends a signal the probe decided on. `why` is appended to the log entry.
    fn signal(&mut self, signal: Signal, dest: Dest, why: &str) {
        match dest {
            Dest::Heat => {
                tracing::info!(probe = %self.cfg.name, %signal, "signal raised on heat");
                self.event(Level::Info, &format!("raised {signal} on heat (no target)"));
                // The signals allowed here are standard ones heat handles or
                // ignores (config), all of which nix names.
                if let Ok(sig) = nix::sys::signal::Signal::try_from(signal.number())
                    && nix::sys::signal::raise(sig).is_ok()
                    && let Some(m) = &self.metrics
                {
                    m.signal(signal);
                }
            }
            Dest::Target => match &self.target {
                Some(t) => match t.signal(signal) {
                    Ok(()) => {
                        if let Some(m) = &self.metrics {
                            m.signal(signal);
                        }
                        tracing::info!(probe = %self.cfg.name, %signal, pid = t.pid(), "signal sent");
                        if signal.is_stopping() {
                            self.freezing = Some(t.pid());
                        }
                        self.event(Level::Info, &format!("sent {signal} to pid {}{why}", t.pid()))
                    }
                    Err(e) => {
                        let pid = t.pid();
                        tracing::info!(probe = %self.cfg.name, %signal, pid, error = %e, "signal failed");
                        self.event(
                            Level::Err,
                            &format!("could not send {signal} to pid {pid}: {e}"),
                        )
                    }
                },
                // The probe sends only to a live target: its pidfd is here.
                None => self.event(Level::Info, &format!("skipped {signal}: no target")),
            },
        }
    }

    fn status(&self) {
        let s = self.probe.status();
        let mode = if s.recovery { "recovery" } else { "normal" };
        let last = match s.last {
            None => "none".to_string(),
            Some(r) => {
                let word = if r.code == 0 { "OK" } else { "FAIL" };
                format!("{word} (exit {}) at {}", r.code, r.ended_unix)
            }
        };
        let next = s.next.saturating_duration_since(now());
        let next = humantime::format_duration(Duration::from_millis(next.as_millis() as u64));
        let mut text =
            format!("state: mode {mode}, fails {}, last {last}, next check in {next}", s.fails);
        // What this probe's hooks left running, kept in their cgroups.
        let left = self.shared.cgroups.as_ref().map(|t| t.hooks_left(&self.cfg.name));
        if let Some(left) = left.filter(|l| !l.is_empty()) {
            let n: usize = left.iter().map(|l| l.procs.len()).sum();
            let names: Vec<String> = left
                .iter()
                .map(|l| l.path.file_name().unwrap_or_default().to_string_lossy().into_owned())
                .collect();
            text.push_str(&format!(", hooks left {n} processes running ({})", names.join(", ")));
        }
        self.event(Level::Info, &text);
    }

    /// Ends the running child (its result counts for nothing) and resumes a
    /// target frozen by the fault signal. `how` is heat's stop; `None` is a
    /// reload's retirement, which lets a running hook finish on its own.
    async fn stop(&mut self, how: Option<Stop>, control: &mut ControlRx) {
        if let Some(mut running) = self.running.take() {
            let first = match how {
                Some(how) => Some(how),
                None if running.job == Job::Check => Some(Stop::Graceful),
                None => None,
            };
            if let Some(how) = first {
                let _ = running.stop.send(how);
            }
            let mut listening = true;
            let report = loop {
                tokio::select! {
                    report = &mut running.report => break report,
                    msg = control.recv(), if listening => {
                        let how = match msg {
                            Some(Control::Stop(how)) => how,
                            // Retiring, it is still the probe until it returns.
                            Some(Control::Status) => {
                                self.status();
                                continue;
                            }
                            Some(Control::Retire) => continue,
                            Some(Control::Ask(asked)) => {
                                let _ = asked.1.send(Answer::Stopping);
                                continue;
                            }
                            // heat is going away: do not wait on a hook any longer.
                            None => {
                                listening = false;
                                Stop::Graceful
                            }
                        };
                        let _ = running.stop.send(how);
                    }
                }
            };
            if !matches!(report.outcome, Outcome::NotRun(_)) {
                self.log_run(running.job, &report, running.started);
            }
        }
        let last = self.probe.on_stop();
        // On the way out nothing is fatal any more.
        let _ = self.execute(last, " (recovery interrupted)");
    }

    /// A fatal condition: said at once, on stderr and in the log; then the
    /// running child is ended as in a stop.
    async fn fatal(&mut self, fatal: Fatal) -> (Exit, Handover) {
        let msg = fatal.to_string();
        self.event(Level::Err, &msg);
        say(&msg);
        let (_tx, mut rx) = control_channel();
        self.stop(Some(Stop::Graceful), &mut rx).await;
        (Exit::Fatal(fatal), Handover::default())
    }
}

/// A spec and its program prepared for `posix_spawn`: built once per probe
/// for its checks.
struct Ready {
    bounds: exec::Bounds,
    prepared: Result<Prepared, Report>,
    /// A check's cgroup between runs (killed and removed with it).
    kept: RefCell<Option<cgroup::Cgroup>>,
}

/// A probe checking more often than this keeps its check cgroup between
/// runs: a mkdir and an rmdir per check cost heat ~40 µs of CPU, but an idle
/// cgroup costs the kernel ~10 KB, which 10,000 slow probes would feel more.
const KEEP_CGROUP_BELOW: Duration = Duration::from_secs(5);

/// A run slot (see [`RunSlots`]); waits for one, saying so, when all are in
/// use. `None`: heat asked the run to stop while it waited.
async fn run_slot<'a>(
    shared: &'a Shared,
    heat: &str,
    what: &Run,
    probe: &str,
    stopped: &mut watch::Receiver<Stop>,
) -> Option<tokio::sync::SemaphorePermit<'a>> {
    if let Ok(slot) = shared.slots.free.try_acquire() {
        return Some(slot);
    }
    let waiting = shared.slots.delayed.get() + 1;
    shared.slots.delayed.set(waiting);
    let text = format!(
        "{what} delayed: all {} run slots are in use (heat's open-file limit); it starts when \
         one is free ({waiting} delayed since start)",
        shared.slots.total.get()
    );
    tracing::info!(%probe, run = %what, "delayed: no run slot free");
    shared.log.write(SystemTime::now(), Level::Info, heat, text.as_bytes(), 0);
    tokio::select! {
        slot = shared.slots.free.acquire() => Some(slot.expect("the slots are never closed")),
        _ = stopped.wait_for(|s| *s != Stop::No) => None,
    }
}

/// The cgroup a run starts in: a probe's checks run one at a time and share
/// the one `kept` from the last run; each hook gets its own. `None` where
/// heat runs children in process groups (or could not make one).
fn run_cgroup(
    shared: &Shared,
    kept: &RefCell<Option<cgroup::Cgroup>>,
    kind: cgroup::Kind,
    cfg: &ProbeConfig,
    heat: &str,
    what: &Run,
) -> Option<cgroup::Cgroup> {
    let kept = if kind == cgroup::Kind::Check { kept.borrow_mut().take() } else { None };
    kept.or_else(|| {
        let tree = shared.cgroups.as_ref()?;
        let made = match kind {
            cgroup::Kind::Check if shares_cgroup(cfg) => tree.shared_check(),
            _ => tree.new_cgroup(kind, &cfg.name, &cgroup::Limits::of(&cfg.limits)),
        };
        match made {
            Ok(cg) => Some(cg),
            Err(e) => {
                no_cgroup(shared, heat, &cfg.name, what, &e);
                None
            }
        }
    })
}

/// A check's cgroup ends with it (whatever the check left, however it hid),
/// or is kept for the next run when empty and the probe is fast; what a hook
/// started is kept, its cgroup removed once empty.
async fn after_run(
    mut cg: cgroup::Cgroup,
    kept: &RefCell<Option<cgroup::Cgroup>>,
    shared: &Shared,
    cfg: &ProbeConfig,
) {
    if cg.kind() == cgroup::Kind::Hook {
        cg.release();
        return;
    }
    let left = match cg.settle() {
        Ok(true) if cfg.interval < KEEP_CGROUP_BELOW => {
            *kept.borrow_mut() = Some(cg);
            return;
        }
        Ok(true) => match shared.cgroups.as_ref() {
            Some(tree) => tree.give_back(cg),
            None => Some(cg),
        },
        _ => Some(cg),
    };
    if let Some(cg) = left
        && let Err(e) = cg.end().await
    {
        tracing::warn!(probe = %cfg.name, "{e}");
    }
}

/// A probe checking seldom, with no limits of its own, runs its checks in
/// cgroups shared by all such probes (see `cgroup::Tree::shared_check`).
fn shares_cgroup(cfg: &ProbeConfig) -> bool {
    cfg.interval >= KEEP_CGROUP_BELOW && !cfg.limits.any()
}

/// heat's trouble: the run goes on in a process group.
fn no_cgroup(shared: &Shared, heat: &str, probe: &str, what: &Run, e: &std::io::Error) {
    let text = format!("no cgroup for the {what}: {e}; it runs in a process group");
    tracing::warn!(%probe, "{text}");
    shared.log.write(SystemTime::now(), Level::Err, heat, text.as_bytes(), 0);
}

/// The user a child runs as, as the spawn applies it.
fn creds(user: &Option<Arc<crate::config::Credentials>>) -> Option<crate::spawn::Creds> {
    user.as_ref().map(|c| crate::spawn::Creds { uid: c.uid, gid: c.gid, groups: c.groups.clone() })
}

impl Ready {
    fn new(spec: Spec, creds: Option<crate::spawn::Creds>) -> Ready {
        let prepared = exec::prepare(&spec).map(|p| p.with_creds(creds));
        // The spec itself is not kept: its strings live on in `prepared`.
        Ready { bounds: spec.bounds(), prepared, kept: RefCell::new(None) }
    }
}

/// How every check of a probe is started.
fn check_spec(cfg: &ProbeConfig, shared: &Shared) -> Spec {
    let (program, args) = match &cfg.check {
        Check::Exec { program, args } => (program.clone(), args.clone()),
        Check::Shell { command } => ("/bin/sh".into(), vec!["-c".into(), command.into()]),
        Check::Script { path } => (path.clone(), Vec::new()),
    };
    let env_extra = probe_env(cfg, false);
    Spec {
        program,
        args,
        env: shared.env.clone(),
        env_extra,
        cwd: cfg.workdir.clone(),
        kind: Kind::Check,
        timeout: cfg.timeout,
        max_output: cfg.max_output,
    }
}

/// What a probe's checks (or, with `hook`, its hooks) get beside heat's
/// cleaned environment: the user's own variables, as systemd's `User=` sets
/// them, the probe's `env`, then `HEAT_PROBE`.
fn probe_env(cfg: &ProbeConfig, hook: bool) -> Vec<(OsString, OsString)> {
    let user = if hook { &cfg.hook_user } else { &cfg.user };
    let mut env: Vec<(OsString, OsString)> =
        Vec::with_capacity(1 + cfg.env.len() + if user.is_some() { 4 } else { 0 });
    if let Some(c) = user {
        env.push(("HOME".into(), c.home.clone().into()));
        env.push(("USER".into(), c.name.clone().into()));
        env.push(("LOGNAME".into(), c.name.clone().into()));
        env.push(("SHELL".into(), c.shell.clone().into()));
    }
    env.extend(cfg.env.iter().map(|(k, v)| (k.into(), v.into())));
    env.push(("HEAT_PROBE".into(), cfg.name.clone().into()));
    env
}

/// One line on stderr, queued (see `diag`): a stderr nobody reads or a broken
/// one never blocks or ends heat. A line break in `msg` is escaped.
pub fn say(msg: &str) {
    crate::diag::line(format!("heat: {}", msg.replace('\n', "\\n")).as_bytes());
}

/// The code a run counts as: 124 at a timeout, 128+N for a signal; none for
/// a run heat ended or could not start.
fn code_of(outcome: &Outcome) -> Option<i32> {
    match outcome {
        Outcome::Exited(code) | Outcome::NotStarted { code, .. } => Some(*code),
        Outcome::TimedOut => Some(124),
        Outcome::Signaled(sig) | Outcome::Stopped(sig) => Some(128 + sig.number()),
        Outcome::Ended | Outcome::NotRun(_) => None,
    }
}

/// A child started: a check at DEBUG (one per interval), a hook at INFO.
fn trace_start(cfg: &ProbeConfig, job: Job, pid: u32) {
    let probe = &cfg.name;
    match job {
        Job::Check => tracing::debug!(%probe, pid, "check started"),
        Job::FailHook | Job::RecoveryHook => {
            let hook = if job == Job::FailHook { &cfg.fail } else { &cfg.recovery };
            let hook = hook.as_ref().map_or("", |h| h.display.as_str());
            tracing::info!(%probe, %hook, pid, "hook started");
        }
    }
}

async fn poll_running(running: &mut Option<Running>) -> Report {
    match running {
        Some(r) => (&mut r.report).await,
        None => std::future::pending().await,
    }
}

async fn target_exited(target: &Option<Target>) {
    match target {
        // Boxed: most probes have no target, and a pidfd's readiness future
        // inline would take 192 bytes of every probe's task.
        Some(t) => Box::pin(t.exited()).await,
        None => std::future::pending().await,
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Scripted children for unit tests, after watchexec's `TestChild`: each run
/// plays what the test said ("exits 1 after 30 ms", "hangs", "ignores TERM")
/// on tokio's clock, answering timeouts and stop requests as exec.rs does, and
/// the script keeps a journal of what happened when, beside the entries the
/// supervisor wrote.
#[cfg(test)]
pub mod fake {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::time::{Duration, SystemTime};

    use tokio::sync::watch;
    use tokio::time::Instant;

    use super::Ready;
    use crate::exec::{GRACE, Kind, Outcome, Report, Stop};
    use crate::log::Level;
    use crate::signal::Signal;

    /// What one scripted child does.
    #[derive(Clone, Debug)]
    pub struct Child {
        /// When it ends by itself, and how; `None`: never.
        end: Option<(Duration, Outcome)>,
        ignores_term: bool,
    }

    impl Child {
        /// Exits with `code` at once (see [`Child::after`]).
        pub fn exits(code: i32) -> Child {
            Child { end: Some((Duration::ZERO, Outcome::Exited(code))), ignores_term: false }
        }
        /// Killed by `signal` from outside.
        pub fn killed_by(signal: Signal) -> Child {
            Child { end: Some((Duration::ZERO, Outcome::Signaled(signal))), ignores_term: false }
        }
        /// Stopped by `signal` from outside (exec.rs then kills it).
        pub fn stopped_by(signal: Signal) -> Child {
            Child { end: Some((Duration::ZERO, Outcome::Stopped(signal))), ignores_term: false }
        }
        /// heat cannot start it (no fds, no memory).
        pub fn not_run() -> Child {
            Child {
                end: Some((Duration::ZERO, Outcome::NotRun("no fds".into()))),
                ignores_term: false,
            }
        }
        pub fn hangs() -> Child {
            Child { end: None, ignores_term: false }
        }
        /// Ends `ms` after it started.
        pub fn after(mut self, ms: u64) -> Child {
            if let Some((at, _)) = &mut self.end {
                *at = Duration::from_millis(ms);
            }
            self
        }
        /// TERM does nothing: only KILL, after the grace, ends it.
        pub fn ignoring_term(mut self) -> Child {
            self.ignores_term = true;
            self
        }
    }

    type Plan = Box<dyn Fn(&str, usize) -> Child>;

    pub struct Script {
        t0: Instant,
        /// What the `n`th run (from 0) of a program does.
        plan: Plan,
        runs: RefCell<BTreeMap<String, usize>>,
        next_pid: Cell<u32>,
        journal: RefCell<Vec<String>>,
    }

    impl Script {
        /// Times in the journal are milliseconds since now.
        pub fn new(plan: impl Fn(&str, usize) -> Child + 'static) -> Script {
            Script {
                t0: Instant::now(),
                plan: Box::new(plan),
                runs: RefCell::new(BTreeMap::new()),
                next_pid: Cell::new(1001),
                journal: RefCell::new(Vec::new()),
            }
        }

        /// `"30 start fail.sh 1002"`, …, in order.
        pub fn journal(&self) -> Vec<String> {
            self.journal.borrow().clone()
        }

        pub fn note(&self, what: impl std::fmt::Display) {
            let ms = Instant::now().duration_since(self.t0).as_millis();
            self.journal.borrow_mut().push(format!("{ms} {what}"));
        }

        /// An entry the supervisor wrote: type, name and its last line.
        pub fn saw(&self, level: Level, name: &str, body: &[u8]) {
            let body = String::from_utf8_lossy(body);
            match body.lines().last() {
                Some(last) => self.note(format_args!("{level} {name}: {last}")),
                None => self.note(format_args!("{level} {name}")),
            }
        }

        pub(super) async fn play(
            &self,
            ready: &Ready,
            mut stop: watch::Receiver<Stop>,
            on_start: impl FnOnce(u32),
        ) -> Report {
            let report = |pid, outcome| Report {
                pid,
                outcome,
                output: Vec::new(),
                dropped: 0,
                ended: SystemTime::now(),
            };
            if *stop.borrow_and_update() != Stop::No {
                return report(None, Outcome::Ended);
            }
            let prepared = ready.prepared.as_ref().expect("a scripted program is always prepared");
            let spec = ready.bounds;
            let name = prepared.program().to_string_lossy().into_owned();
            let n = {
                let mut runs = self.runs.borrow_mut();
                let n = runs.entry(name.clone()).or_default();
                *n += 1;
                *n - 1
            };
            let child = (self.plan)(&name, n);
            if let Some((_, Outcome::NotRun(e))) = &child.end {
                self.note(format_args!("not run {name}"));
                return report(None, Outcome::NotRun(e.clone()));
            }
            let pid = self.next_pid.get();
            self.next_pid.set(pid + 1);
            on_start(pid);
            let code = prepared.extra().find_map(|e| e.to_bytes().strip_prefix(b"HEAT_FAIL_CODE="));
            match code {
                Some(c) => self
                    .note(format_args!("start {name} {pid} code {}", String::from_utf8_lossy(c))),
                None => self.note(format_args!("start {name} {pid}")),
            }

            let started = Instant::now();
            let ends_at = child.end.as_ref().map(|(after, _)| started + *after);
            let timeout_at = started + spec.timeout;
            let (mut requested, mut timed_out, mut stop_open) = (false, false, true);
            let mut kill_at: Option<Instant> = None;
            // TERM: the end at once, or KILL after the grace for a child that ignores it.
            let term = |kill_at: &mut Option<Instant>| {
                self.note(format_args!("TERM {pid}"));
                if !child.ignores_term {
                    return true;
                }
                let at = Instant::now() + GRACE;
                *kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                false
            };
            let natural = loop {
                tokio::select! {
                    biased;
                    () = at(ends_at) => break child.end.clone().map(|(_, o)| o),
                    () = tokio::time::sleep_until(timeout_at), if !timed_out => {
                        timed_out = true;
                        match spec.kind {
                            Kind::Check => {
                                self.note(format_args!("KILL {pid}"));
                                break None;
                            }
                            Kind::Hook if term(&mut kill_at) => break None,
                            Kind::Hook => {}
                        }
                    }
                    () = at(kill_at) => {
                        self.note(format_args!("KILL {pid}"));
                        break None;
                    }
                    changed = stop.changed(), if stop_open => match changed {
                        Err(_) => stop_open = false,
                        Ok(()) => match *stop.borrow_and_update() {
                            Stop::No => {}
                            Stop::Graceful => {
                                requested = true;
                                if term(&mut kill_at) {
                                    break None;
                                }
                            }
                            Stop::Now => {
                                requested = true;
                                self.note(format_args!("KILL {pid}"));
                                break None;
                            }
                        },
                    },
                }
            };
            // As exec.rs decides: heat's request, then the timeout, then the child.
            let outcome = match natural {
                _ if requested => Outcome::Ended,
                _ if timed_out => Outcome::TimedOut,
                Some(o) => o,
                None => unreachable!("a child ends by itself, a timeout or a request"),
            };
            self.note(format_args!("end {pid} {outcome:?}"));
            report(Some(pid), outcome)
        }
    }

    async fn at(deadline: Option<Instant>) {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{Child, Script};
    use super::*;
    use crate::config::Check;
    use crate::testutil::{TempDir, probe_config};
    use tokio::time::sleep;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Probe `p`: its check is the program `check`, scripted by the test.
    fn scripted(interval_ms: u64) -> ProbeConfig {
        ProbeConfig {
            check: Check::Exec { program: "check".into(), args: Vec::new() },
            display: "check".into(),
            interval: ms(interval_ms),
            timeout: ms(interval_ms),
            ..probe_config("p")
        }
    }

    fn hook(name: &str) -> Option<Hook> {
        Some(Hook { path: name.into(), display: name.into() })
    }

    /// A supervisor's world on tokio's paused clock: scripted children, a
    /// log in a temp dir, and the journal of both.
    struct Bench {
        script: Rc<Script>,
        shared: Rc<Shared>,
        _dir: TempDir,
    }

    impl Bench {
        fn new(mode: Mode, plan: impl Fn(&str, usize) -> Child + 'static) -> Bench {
            let dir = TempDir::new("supervisor-paused");
            let script = Rc::new(Script::new(plan));
            let shared = Rc::new(Shared {
                log: Log::open(&dir.0.join("log")).unwrap(),
                env: Arc::new(Env::new(Vec::<(&str, &str)>::new())),
                stdout: None,
                mode,
                failing: Cell::new(0),
                recovering: Cell::new(0),
                children: Children::Scripted(script.clone()),
                slots: RunSlots::default(),
                cgroups: None,
                boards: false,
                metrics: None,
            });
            Bench { script, shared, _dir: dir }
        }

        /// Runs a supervisor of `cfg` from now until it returns (at most 60 s
        /// of simulated time), with `drive` beside it sending heat's requests;
        /// the journal notes the return.
        async fn run(&self, cfg: ProbeConfig, drive: impl AsyncFnOnce(&ControlTx)) -> Exit {
            let (control, rx) = control_channel();
            let sup = Box::new(Supervisor::new(Arc::new(cfg), self.shared.clone(), now(), None));
            let driver = async {
                drive(&control).await;
                // The sender stays open: a closed channel is a stop of its own.
                std::future::pending::<()>().await
            };
            // A supervisor that never returns fails the test; paused, this is instant.
            let bound = tokio::time::sleep(Duration::from_secs(60));
            tokio::select! {
                (exit, _) = sup.run(rx) => {
                    self.script.note("returned");
                    exit
                }
                () = driver => unreachable!(),
                () = bound => panic!("the supervisor did not return within 60 s: {:?}", self.journal()),
            }
        }

        fn journal(&self) -> Vec<String> {
            self.script.journal()
        }

        /// When each check started, in ms.
        fn check_starts(&self) -> Vec<u64> {
            self.journal()
                .iter()
                .filter(|l| l.contains(" start check "))
                .map(|l| l.split(' ').next().unwrap().parse().unwrap())
                .collect()
        }
    }

    impl Drop for Bench {
        fn drop(&mut self) {
            // Before the temp dir goes: the writer thread must be done with it.
            self.shared.log.flush(Duration::from_secs(5));
        }
    }

    /// Sends `c` at `at_ms` (from the start).
    async fn at(at_ms: u64, control: &ControlTx, c: Control) {
        sleep(ms(at_ms)).await;
        control.send(c).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn checks_start_at_t0_plus_k_intervals() {
        let b = Bench::new(Mode::Service, |_, _| Child::exits(0).after(30));
        let stop = Control::Stop(Stop::Graceful);
        let exit = b.run(scripted(100), async |c| at(450, c, stop).await).await;
        assert_eq!(exit, Exit::Stopped);
        assert_eq!(b.check_starts(), [0, 100, 200, 300, 400]);
        let ends: Vec<String> =
            b.journal().into_iter().filter(|l| l.ends_with("INFO [p] check")).collect();
        assert_eq!(
            ends,
            [
                "30 INFO [p] check",
                "130 INFO [p] check",
                "230 INFO [p] check",
                "330 INFO [p] check",
                "430 INFO [p] check"
            ]
        );
        assert_eq!(b.journal().last().unwrap(), "450 returned");
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_at_its_timeout_is_killed_then_and_fails() {
        let b =
            Bench::new(Mode::Service, |_, n| if n == 0 { Child::hangs() } else { Child::exits(0) });
        let cfg = ProbeConfig { timeout: ms(250), ..scripted(1000) };
        let exit = b.run(cfg, async |c| at(1100, c, Control::Stop(Stop::Graceful)).await).await;
        assert_eq!(exit, Exit::Stopped);
        assert_eq!(
            b.journal(),
            [
                "0 start check 1001",
                "250 KILL 1001",
                "250 end 1001 TimedOut",
                "250 FAIL [p] check: [heat: timed out after 250ms, killed]",
                "1000 start check 1002",
                "1000 end 1002 Exited(0)",
                "1000 INFO [p] check",
                "1100 returned",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_check_runs_the_fail_hook_at_once() {
        let b = Bench::new(Mode::Service, |program, n| match (program, n) {
            ("check", 0) => Child::exits(1).after(30),
            ("check", _) => Child::exits(0).after(10),
            _ => Child::exits(0).after(20),
        });
        let cfg = ProbeConfig { fail: hook("fail.sh"), ..scripted(100) };
        b.run(cfg, async |c| at(150, c, Control::Stop(Stop::Graceful)).await).await;
        assert_eq!(
            b.journal(),
            [
                "0 start check 1001",
                "30 end 1001 Exited(1)",
                "30 FAIL [p] check",
                "30 start fail.sh 1002 code 1",
                "50 end 1002 Exited(0)",
                "50 INFO [p] fail.sh",
                "100 start check 1003",
                "110 end 1003 Exited(0)",
                "110 INFO [p] check",
                "150 returned",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_threshold_reached_runs_the_recovery_hook_then_a_check_at_once() {
        let b = Bench::new(Mode::Service, |program, n| match (program, n) {
            ("check", 0..3) => Child::exits(2).after(10),
            ("check", _) => Child::exits(0).after(10),
            _ => Child::exits(0).after(50),
        });
        let threshold = std::num::NonZeroU32::new(3).unwrap();
        let cfg = ProbeConfig { threshold, recovery: hook("recover.sh"), ..scripted(100) };
        b.run(cfg, async |c| at(350, c, Control::Stop(Stop::Graceful)).await).await;
        assert_eq!(
            b.journal(),
            [
                "0 start check 1001",
                "10 end 1001 Exited(2)",
                "10 FAIL [p] check",
                "100 start check 1002",
                "110 end 1002 Exited(2)",
                "110 FAIL [p] check",
                "200 start check 1003",
                "210 end 1003 Exited(2)",
                "210 FAIL [p] check",
                "210 INFO [p] heat: recovery round 1: 3 consecutive failures",
                "210 start recover.sh 1004 code 2",
                "260 end 1004 Exited(0)",
                "260 INFO [p] recover.sh",
                "260 start check 1005",
                "270 end 1005 Exited(0)",
                "270 INFO [p] check",
                "270 INFO [p] heat: recovered after 3 consecutive failures",
                "300 start check 1006",
                "310 end 1006 Exited(0)",
                "310 INFO [p] check",
                "350 returned",
            ]
        );
    }

    /// A supervisor of `cfg` on heat's own runtime (current thread, precise
    /// timer), run on a thread of its own so that a wedged runtime fails the
    /// test instead of hanging it. `body` runs beside the supervisor and says
    /// what it saw on `tx`.
    fn beside_a_supervisor(
        cfg: ProbeConfig,
        body: impl AsyncFnOnce(&ControlTx) + Send + 'static,
    ) -> std::sync::mpsc::Receiver<&'static str> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            tokio::task::LocalSet::new().block_on(&rt, async move {
                timer::install().unwrap();
                let dir = TempDir::new("supervisor");
                let shared = Rc::new(Shared {
                    log: Log::open(&dir.0.join("log")).unwrap(),
                    env: child_env(),
                    stdout: None,
                    mode: Mode::Service,
                    failing: Cell::new(0),
                    recovering: Cell::new(0),
                    children: Children::Exec,
                    slots: RunSlots::default(),
                    cgroups: None,
                    boards: false,
                    metrics: None,
                });
                let (control, rx) = control_channel();
                let sup = Box::new(Supervisor::new(Arc::new(cfg), shared, now(), None));
                let task = tokio::task::spawn_local(sup.run(rx));
                body(&control).await;
                let _ = tx.send("body done");
                let _ = control.send(Control::Stop(Stop::Now));
                let _ = task.await;
                let _ = tx.send("stopped");
            });
        });
        rx
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_while_a_check_runs_start_nothing_then_one_check_at_once() {
        let b =
            Bench::new(Mode::Service, |_, n| Child::exits(0).after(if n < 2 { 230 } else { 10 }));
        let cfg = ProbeConfig { timeout: ms(1000), ..scripted(100) };
        b.run(cfg, async |c| at(650, c, Control::Stop(Stop::Graceful)).await).await;
        // 100 and 200 pass during the first check, 300 and 400 during the
        // second; the third runs when it ends, and the grid is kept.
        assert_eq!(b.check_starts(), [0, 230, 460, 500, 600]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retired_probe_lets_its_hook_finish_within_the_hook_timeout() {
        let plan = |hook: fn() -> Child| {
            move |program: &str, _| match program {
                "check" => Child::exits(1).after(10),
                _ => hook(),
            }
        };
        let cfg = ProbeConfig { fail: hook("fail.sh"), hook_timeout: ms(1000), ..scripted(100) };
        // A hook that ends by itself is not touched: no TERM.
        let b = Bench::new(Mode::Service, plan(|| Child::exits(0).after(200)));
        let exit = b.run(cfg.clone(), async |c| at(50, c, Control::Retire).await).await;
        assert_eq!(exit, Exit::Stopped);
        assert_eq!(
            b.journal()[3..],
            [
                "10 start fail.sh 1002 code 1",
                "210 end 1002 Exited(0)",
                "210 INFO [p] fail.sh",
                "210 returned",
            ]
        );
        // A hook that hangs is ended at its hook timeout, from its start.
        let b = Bench::new(Mode::Service, plan(Child::hangs));
        b.run(cfg, async |c| at(50, c, Control::Retire).await).await;
        assert_eq!(
            b.journal()[3..],
            [
                "10 start fail.sh 1002 code 1",
                "1010 TERM 1002",
                "1010 end 1002 TimedOut",
                "1010 FAIL [p] fail.sh: [heat: timed out after 1s, terminated]",
                "1010 returned",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_ignoring_term_is_killed_after_the_grace_or_at_a_second_stop() {
        let b = Bench::new(Mode::Service, |_, _| Child::hangs().ignoring_term());
        let cfg = ProbeConfig { timeout: ms(60_000), ..scripted(60_000) };
        b.run(cfg.clone(), async |c| at(50, c, Control::Stop(Stop::Graceful)).await).await;
        assert_eq!(
            b.journal(),
            [
                "0 start check 1001",
                "50 TERM 1001",
                "5050 KILL 1001",
                "5050 end 1001 Ended",
                "5050 INFO [p] check: [heat: ended by heat]",
                "5050 returned",
            ]
        );
        let b = Bench::new(Mode::Service, |_, _| Child::hangs().ignoring_term());
        b.run(cfg, async |c| {
            at(50, c, Control::Stop(Stop::Graceful)).await;
            at(1000, c, Control::Stop(Stop::Now)).await;
        })
        .await;
        assert_eq!(b.journal()[2..4], ["1050 KILL 1001", "1050 end 1001 Ended"]);
        assert_eq!(b.journal().last().unwrap(), "1050 returned");
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_killed_from_outside_ends_heat_on_the_command_line_only() {
        let plan = |_: &str, n| {
            if n == 0 { Child::killed_by(Signal::KILL).after(20) } else { Child::exits(0) }
        };
        let msg = "check pid 1001 was killed by SIGKILL, not sent by heat";

        let b = Bench::new(Mode::CommandLine, plan);
        let exit = b.run(scripted(100), async |_| {}).await;
        let fatal = Fatal::Killed { run: Run::Check, pid: 1001, signal: Signal::KILL };
        assert_eq!(fatal.to_string(), msg);
        assert_eq!(exit, Exit::Fatal(fatal));
        assert_eq!(
            b.journal(),
            [
                "0 start check 1001",
                "20 end 1001 Signaled(Signal(9))",
                "20 FAIL check: [heat: killed by SIGKILL]",
                &format!("20 ERR heat: {msg}"),
                "20 returned",
            ]
        );

        let b = Bench::new(Mode::Service, plan);
        let exit =
            b.run(scripted(100), async |c| at(150, c, Control::Stop(Stop::Graceful)).await).await;
        assert_eq!(exit, Exit::Stopped);
        assert_eq!(
            b.journal(),
            [
                "0 start check 1001",
                "20 end 1001 Signaled(Signal(9))",
                "20 FAIL [p] check: [heat: killed by SIGKILL]",
                &format!("20 ERR [p] heat: {msg}"),
                "100 start check 1002",
                "100 end 1002 Exited(0)",
                "100 INFO [p] check",
                "150 returned",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_hook_ends_heat_on_the_command_line_only() {
        let plan = |program: &str, _| match program {
            "check" => Child::exits(1),
            _ => Child::stopped_by(Signal::STOP).after(5),
        };
        let cfg = ProbeConfig { fail: hook("fail.sh"), ..scripted(100) };
        let b = Bench::new(Mode::CommandLine, plan);
        let exit = b.run(cfg.clone(), async |_| {}).await;
        let run = Run::Hook("fail.sh".into());
        assert_eq!(exit, Exit::Fatal(Fatal::Stopped { run, pid: 1002, signal: Signal::STOP }));
        assert_eq!(b.journal().last().unwrap(), "5 returned");
        let said = "5 ERR heat: hook fail.sh pid 1002 was stopped by SIGSTOP";
        assert!(b.journal().iter().any(|l| l == said), "{:?}", b.journal());

        let b = Bench::new(Mode::Service, plan);
        let exit = b.run(cfg, async |c| at(150, c, Control::Stop(Stop::Graceful)).await).await;
        assert_eq!(exit, Exit::Stopped);
        let said = "5 ERR [p] heat: hook fail.sh pid 1002 was stopped by SIGSTOP";
        assert!(b.journal().iter().any(|l| l == said), "{:?}", b.journal());
        assert_eq!(b.check_starts(), [0, 100]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_heat_could_not_run_counts_for_nothing_and_is_tried_at_the_next_tick() {
        let b =
            Bench::new(
                Mode::CommandLine,
                |_, n| if n == 0 { Child::not_run() } else { Child::exits(0) },
            );
        let cfg = ProbeConfig { fail: hook("fail.sh"), ..scripted(100) };
        b.run(cfg, async |c| at(150, c, Control::Stop(Stop::Graceful)).await).await;
        assert_eq!(
            b.journal(),
            [
                "0 not run check",
                "0 ERR heat: could not run the check: no fds; tried again at the next tick",
                "100 start check 1001",
                "100 end 1001 Exited(0)",
                "100 INFO check",
                "150 returned",
            ]
        );
    }

    #[test]
    fn a_probe_that_is_always_due_never_starves_the_runtime() {
        // 1 ns is refused by the configuration; the driver must survive it anyway.
        let cfg = ProbeConfig {
            interval: Duration::from_nanos(1),
            timeout: Duration::from_secs(30),
            check: Check::Shell { command: "sleep 30".into() },
            ..probe_config("busy")
        };
        let rx = beside_a_supervisor(cfg, async |_| {
            // Another task on the same thread must get its turns.
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let wait = Duration::from_secs(10);
        assert_eq!(rx.recv_timeout(wait), Ok("body done"), "the other task was starved");
        assert_eq!(rx.recv_timeout(wait), Ok("stopped"), "the probe did not stop");
    }
}
