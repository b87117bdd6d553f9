//! The probe state machine: every decision heat makes about one probe.
//!
//! # Theory of operation
//!
//! A probe is fed events — a tick of its schedule, a check that finished, a hook
//! that finished — each with the time it happened, and answers with actions for
//! the supervisor to carry out: start a check, send a signal, run a hook, note
//! something in the log. It does no IO and reads no clock, so every rule below
//! is unit-tested exactly, with simulated time.
//!
//! **Schedule.** Check `k` is due at `t0 + k·interval`. The supervisor sleeps
//! until [`Probe::next_wakeup`] and sends [`Event::Tick`]. A tick that finds the
//! probe busy (a check or a hook running) starts nothing and is remembered; when
//! the probe is free again exactly one check runs at once, however many ticks
//! passed, and the schedule keeps its phase.
//!
//! **Normal mode.** A success resets the failure count. A failure counts, sends
//! the per-failure signal (when there is a target and the rules say
//! so), then either enters recovery (`fails ≥ threshold` with a recovery hook or
//! a fault signal) or runs the fail hook.
//!
//! **Recovery.** Each round sends the fault signal, runs the recovery hook and,
//! when it ends, opens a window: a check at once, then on every tick. A success
//! ends recovery (success signal, count reset). The window closes after
//! `recovery_timeout` (checks started inside it still count) or after
//! `threshold` checks; the next round then starts at the next tick.
//!
//! ```text
//!            failure, fails ≥ threshold
//!   Normal ─────────────────────────────▶ Recovery::Hook ──hook done──▶ Recovery::Open
//!     ▲                                        ▲                            │    │
//!     │               success                  │ tick                       │    │
//!     └────────────────────────────────────────┼────────────────────────────┘    │
//!                                              └──── Recovery::Closed ◀──────────┘
//!                                                          window over, no success
//! ```
//!
//! **Maintenance.** A paused probe starts no check and no hook and sends no
//! signal; its schedule keeps its phase. Pausing ends recovery (a target the
//! fault signal froze is resumed) and forgets the failure count; a run
//! already under way finishes and counts for nothing. A pause with an end
//! resumes by itself at the first wakeup after it. A check asked for now
//! ([`Probe::run_now`]) runs at once when the probe is idle and not paused,
//! outside the schedule, which keeps its phase.
//!
//! **Start period.** Until the first success, a failure of a check started less
//! than `start_period` after `t0` is noted and otherwise ignored.
//!
//! **Target.** A probe with a target asks the supervisor to find it
//! ([`Action::FindTarget`]) and hears back ([`Event::TargetFound`] or
//! [`Event::TargetNotFound`]); the supervisor holds the pidfd, the probe decides.
//! When the target exits its pid is remembered as dead (never followed again)
//! and, with a pidfile, heat looks for its successor every 100 ms, for one
//! interval or until the recovery window closes, whichever is later, and never
//! while the recovery hook runs (it may be restarting the target). Without a
//! successor the target is lost: fatal on the command line; in service mode
//! the probe goes on, looking again before every check. A signal meant for a
//! target that is not live waits for one more look at the pidfile, and is
//! skipped (noted) only if that finds nothing.

use std::time::{Duration, Instant};

use crate::signal::Signal;

/// How often a pidfile is read while a restarted target is sought.
pub const PIDFILE_POLL: Duration = Duration::from_millis(100);

/// Dead target pids a probe remembers (never to follow them again).
const DEAD_KEPT: usize = 64;

/// What kind of target a probe has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    None,
    /// A fixed pid: once it exits it is gone (until a reload names another).
    Pid,
    /// A pidfile: followed across restarts.
    Pidfile,
}

/// The parts of a probe's configuration its decisions depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub interval: Duration,
    pub threshold: u32,
    pub start_period: Duration,
    pub recovery_timeout: Option<Duration>,
    pub target: TargetKind,
    /// Service mode: a lost target is the probe's trouble, not heat's end.
    pub service: bool,
    pub signal: Option<Signal>,
    pub fault_signal: Option<Signal>,
    pub success_signal: Option<Signal>,
    pub fail_hook: bool,
    pub recovery_hook: bool,
}

impl Rules {
    /// A target (pid or pidfile) is configured.
    pub fn has_target(&self) -> bool {
        self.target != TargetKind::None
    }

    /// The signal sent on every failure in normal mode, if any (step 2 of a failure).
    pub fn failure_signal(&self) -> Option<Signal> {
        let implicit = self.fault_signal.is_none() && self.success_signal.is_none();
        match self.signal {
            Some(s) if self.has_target() => Some(s),
            None if self.has_target() && implicit => Some(Signal::HUP),
            _ => None,
        }
    }

    /// Whether reaching the threshold starts recovery.
    pub fn recovers(&self) -> bool {
        self.recovery_hook || self.fault_signal.is_some()
    }
}

/// How a finished check ended, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// Exit code; 0 is success (124 timeout, 126/127 not started, 128+N signal).
    pub code: i32,
    /// The check's pid; `None` when it never started.
    pub pid: Option<u32>,
    /// Unix seconds of the check's end.
    pub ended_unix: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The time returned by [`Probe::next_wakeup`] was reached.
    Tick,
    CheckDone(CheckResult),
    /// The check could not be run for heat's own reasons (no fds, no memory):
    /// it counts for nothing, and the next tick tries again.
    CheckNotRun,
    /// The fail or recovery hook that was running ended (whatever its status).
    HookDone,
    /// The live target exited.
    TargetExited,
    /// The answer to [`Action::FindTarget`]: this pid is the target now.
    TargetFound(u32),
    /// The answer to [`Action::FindTarget`]: nothing to follow, and why.
    TargetNotFound(String),
}

/// Where a signal goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    Target,
    /// No target: fault and success signals are raised on heat itself.
    Heat,
}

/// Something heat notes in the log on the probe's behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A failure inside the start period, not counted.
    StartPeriod,
    RecoveryRound {
        round: u32,
        fails: u32,
    },
    WindowClosed,
    Recovered {
        fails: u32,
    },
    /// A target found: after `dead` exited, or again after it was lost.
    Following {
        dead: Option<u32>,
        pid: u32,
        /// Lost before: found again at a check.
        again: bool,
    },
    /// A pause's time is up: checks run again.
    PauseOver,
    /// The target exited and no successor came (ERR).
    TargetLost {
        dead: u32,
    },
    /// No target to follow when the probe started (ERR).
    NoTarget {
        reason: String,
    },
    /// A signal for the target that was not sent.
    SignalSkipped {
        signal: Signal,
        /// The pid whose successor is sought, if one is.
        seeking: Option<u32>,
    },
}

impl Note {
    /// A failure heat cannot handle (an ERR entry), rather than information.
    pub fn is_error(&self) -> bool {
        matches!(self, Note::TargetLost { .. } | Note::NoTarget { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    StartCheck,
    /// Sent only to a live target (or heat); the probe has checked.
    Signal {
        signal: Signal,
        dest: Dest,
    },
    RunFailHook(HookEnv),
    RunRecoveryHook(HookEnv),
    Note(Note),
    /// Look for the target (open the pid, or read the pidfile, not adopting
    /// any of [`Probe::dead`]) and answer with `TargetFound` or `TargetNotFound`.
    FindTarget,
    /// Command line: heat ends (the note says why).
    Fatal(Note),
}

/// The `HEAT_FAIL_*` values a hook gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookEnv {
    pub code: i32,
    /// This failure (fail hook) or the streak's first (recovery hook).
    pub time: u64,
    /// The latest failure: recovery hook only.
    pub time_last: Option<u64>,
    pub interval: Duration,
    pub pid: Option<u32>,
    /// Consecutive failures so far: recovery hook only.
    pub count: Option<u32>,
}

impl HookEnv {
    /// The variables, names and values, as the hook sees them. An absent
    /// value is absent from the list (the caller leaves it unset).
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("HEAT_FAIL_CODE", self.code.to_string()),
            ("HEAT_FAIL_TIME", self.time.to_string()),
            ("HEAT_FAIL_INTERVAL", seconds(self.interval)),
        ];
        if let Some(t) = self.time_last {
            v.push(("HEAT_FAIL_TIME_LAST", t.to_string()));
        }
        if let Some(p) = self.pid {
            v.push(("HEAT_FAIL_PID", p.to_string()));
        }
        if let Some(c) = self.count {
            v.push(("HEAT_FAIL_CNT", c.to_string()));
        }
        v
    }
}

/// `30` for whole seconds, `0.5` otherwise.
pub fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        let s = format!("{:.9}", d.as_secs_f64());
        s.trim_end_matches('0').to_string()
    }
}

/// What the probe is doing right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    Idle,
    Check { started: Instant },
    FailHook,
    RecoveryHook,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Window {
    /// The recovery hook runs (or there is none and the window opens at once).
    Hook,
    /// Checks decide; the window lasts until a time or for a number of checks.
    Open(Until),
    /// Over without a success: the next round starts at the next tick.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Until {
    Time(Instant),
    Checks(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Normal,
    Recovery { round: u32, window: Window },
}

/// The current failure streak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Streak {
    first: u64,
    last: CheckResult,
}

/// A summary for heat's USR1 state entry and its status reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub recovery: bool,
    /// The recovery round, counted from 1, while in recovery.
    pub round: u32,
    pub fails: u32,
    pub last: Option<CheckResult>,
    pub next: Instant,
    pub busy: Busy,
    /// Paused, until a time or until resumed (`Some(None)`).
    pub paused: Option<Option<Instant>>,
    /// Until when a failure does not count: no check has succeeded yet and
    /// the start period lasts until then.
    pub start_period_end: Option<Instant>,
}

/// Why a check cannot run now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotNow {
    /// A check or hook is running.
    Busy,
    Paused,
}

/// The target as the probe knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// None is configured.
    None,
    /// Configured, not looked for yet ([`Probe::start`] asks).
    Unknown,
    Live(u32),
    /// `dead` exited at `since`; its successor is sought through the pidfile.
    Seeking {
        dead: u32,
        since: Instant,
        next_look: Instant,
    },
    /// Gone for now (service mode); `dead` is the pid that exited, if one did.
    Lost {
        dead: Option<u32>,
    },
}

/// One probe's state. See the module documentation.
#[derive(Clone, Debug)]
pub struct Probe {
    rules: Rules,
    t0: Instant,
    next_tick: Instant,
    busy: Busy,
    /// A tick passed while busy.
    missed: bool,
    mode: Mode,
    fails: u32,
    streak: Option<Streak>,
    succeeded: bool,
    /// A stopping fault signal was sent to the target in this recovery.
    target_frozen: bool,
    last: Option<CheckResult>,
    target: Target,
    /// Target pids seen to exit, oldest first: never followed again.
    dead: Vec<u32>,
    /// Signals for the target, waiting for the answer to a `FindTarget`, and
    /// whether each freezes it (a stopping fault signal in recovery).
    pending: Vec<(Signal, bool)>,
    /// A `FindTarget` is out.
    asked: bool,
    /// Paused: until a time, or until resumed (`Some(None)`).
    paused: Option<Option<Instant>>,
}

impl Probe {
    /// A probe whose first check is due at `t0`.
    pub fn new(rules: Rules, t0: Instant) -> Probe {
        let target = if rules.has_target() { Target::Unknown } else { Target::None };
        Probe {
            rules,
            t0,
            next_tick: t0,
            busy: Busy::Idle,
            missed: false,
            mode: Mode::Normal,
            fails: 0,
            streak: None,
            succeeded: false,
            target_frozen: false,
            last: None,
            target,
            dead: Vec::new(),
            pending: Vec::new(),
            asked: false,
            paused: None,
        }
    }

    /// What to do first: find the target, if there is one.
    pub fn start(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.target == Target::Unknown {
            self.ask(&mut out);
        }
        out
    }

    /// Pids a previous supervisor of this probe saw die (a reload kept the target).
    pub fn inherit_dead(&mut self, dead: &[u32]) {
        for &pid in dead {
            self.remember_dead(pid);
        }
    }

    /// Target pids seen to exit: `FindTarget` must not adopt one of them.
    pub fn dead(&self) -> &[u32] {
        &self.dead
    }

    pub fn target(&self) -> Target {
        self.target
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// When the supervisor must send the next [`Event::Tick`]: the next check,
    /// or the next look at the pidfile while a restarted target is sought.
    pub fn next_wakeup(&self) -> Instant {
        let at = match self.target {
            Target::Seeking { next_look, .. } => self.next_tick.min(next_look),
            _ => self.next_tick,
        };
        match self.paused {
            Some(Some(until)) => at.min(until),
            _ => at,
        }
    }

    pub fn busy(&self) -> Busy {
        self.busy
    }

    pub fn in_recovery(&self) -> bool {
        matches!(self.mode, Mode::Recovery { .. })
    }

    /// When the current recovery window closes: its end time, or for a window
    /// of `n` more checks, the tick of the last of them.
    pub fn window_end(&self) -> Option<Instant> {
        match self.mode {
            Mode::Recovery { window: Window::Open(Until::Time(t)), .. } => Some(t),
            Mode::Recovery { window: Window::Open(Until::Checks(n)), .. } => {
                let running = u32::from(matches!(self.busy, Busy::Check { .. }));
                Some(self.next_tick + self.rules.interval * n.saturating_sub(1 + running))
            }
            _ => None,
        }
    }

    pub fn status(&self) -> Status {
        let round = match self.mode {
            Mode::Recovery { round, .. } => round,
            Mode::Normal => 0,
        };
        Status {
            recovery: self.in_recovery(),
            round,
            fails: self.fails,
            last: self.last,
            next: self.next_tick,
            busy: self.busy,
            paused: self.paused,
            start_period_end: (!self.succeeded && !self.rules.start_period.is_zero())
                .then(|| self.t0 + self.rules.start_period),
        }
    }

    /// Maintenance: no checks, hooks or signals until `until` (or until
    /// resumed). Recovery ends, resuming a target its fault signal froze.
    pub fn pause(&mut self, until: Option<Instant>) -> Vec<Action> {
        let out = self.on_stop();
        self.mode = Mode::Normal;
        self.fails = 0;
        self.streak = None;
        self.missed = false;
        self.pending.clear();
        self.paused = Some(until);
        out
    }

    /// Ends a pause (whether there was one); the next check is the
    /// schedule's next tick.
    pub fn resume(&mut self) -> bool {
        self.missed = false;
        self.paused.take().is_some()
    }

    /// One check now, outside the schedule (whose phase is kept).
    pub fn run_now(&mut self, now: Instant) -> Result<Vec<Action>, NotNow> {
        if self.paused.is_some() {
            return Err(NotNow::Paused);
        }
        if self.busy != Busy::Idle {
            return Err(NotNow::Busy);
        }
        let mut out = Vec::new();
        self.start_check(now, &mut out);
        Ok(out)
    }

    /// Feeds one event that happened at `now`.
    pub fn on(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Tick => {
                self.look_if_due(now, &mut out);
                self.tick(now, &mut out);
            }
            Event::CheckDone(result) => self.check_done(result, now, &mut out),
            Event::CheckNotRun => self.check_not_run(now, &mut out),
            Event::HookDone => self.hook_done(now, &mut out),
            Event::TargetExited => self.target_exited(now, &mut out),
            Event::TargetFound(pid) => self.found(pid, &mut out),
            Event::TargetNotFound(reason) => self.not_found(reason, now, &mut out),
        }
        out
    }

    /// What to do on the way out (heat stops, exits, or the probe is dropped):
    /// a target frozen by the fault signal is resumed.
    pub fn on_stop(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.in_recovery() && self.target_frozen {
            self.target_frozen = false;
            self.signal_target(Signal::CONT, &mut out);
        }
        out
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Some(Some(until)) = self.paused
            && now >= until
        {
            self.resume();
            out.push(Action::Note(Note::PauseOver));
        }
        if now < self.next_tick {
            return;
        }
        self.advance_schedule(now);
        if self.paused.is_some() {
            return;
        }
        if self.busy == Busy::Idle {
            self.due(now, out);
        } else {
            self.missed = true;
        }
    }

    /// Moves the next tick to the first `t0 + k·interval` after `now`.
    fn advance_schedule(&mut self, now: Instant) {
        let interval = self.rules.interval.as_nanos();
        let elapsed = now.duration_since(self.t0).as_nanos();
        let k = elapsed / interval + 1;
        let offset = interval * k;
        self.next_tick = self.t0 + nanos(offset);
    }

    /// The probe is free and something is due: a check, or the next recovery round.
    fn due(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Mode::Recovery { window, .. } = self.mode {
            let closed = match window {
                Window::Closed => true,
                Window::Open(Until::Time(end)) if now >= end => {
                    out.push(Action::Note(Note::WindowClosed));
                    true
                }
                _ => false,
            };
            if closed {
                self.enter_round(now, out);
                return;
            }
        }
        self.start_check(now, out);
    }

    fn start_check(&mut self, now: Instant, out: &mut Vec<Action>) {
        // A lost target's pidfile is read again before every check.
        if matches!(self.target, Target::Lost { .. }) && self.rules.target == TargetKind::Pidfile {
            self.ask(out);
        }
        self.busy = Busy::Check { started: now };
        out.push(Action::StartCheck);
    }

    /// heat could not run the check: nothing counts, the next tick tries again.
    fn check_not_run(&mut self, _now: Instant, _out: &mut [Action]) {
        if let Busy::Check { .. } = self.busy {
            self.busy = Busy::Idle;
            self.missed = false;
        }
    }

    /// The probe became free: one check at once if a tick was missed.
    fn free(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.busy = Busy::Idle;
        if std::mem::take(&mut self.missed) {
            self.due(now, out);
        }
    }

    fn check_done(&mut self, result: CheckResult, now: Instant, out: &mut Vec<Action>) {
        let Busy::Check { started } = self.busy else {
            return;
        };
        if self.paused.is_some() {
            self.busy = Busy::Idle;
            return;
        }
        self.last = Some(result);
        if result.code == 0 {
            let fails = std::mem::take(&mut self.fails);
            self.succeeded = true;
            self.streak = None;
            if self.in_recovery() {
                self.mode = Mode::Normal;
                self.target_frozen = false;
                if let Some(signal) = self.rules.success_signal {
                    self.send(signal, out);
                }
                out.push(Action::Note(Note::Recovered { fails }));
            }
            self.free(now, out);
            return;
        }
        if !self.succeeded && started < self.t0 + self.rules.start_period {
            out.push(Action::Note(Note::StartPeriod));
            self.free(now, out);
            return;
        }
        self.fails = self.fails.saturating_add(1);
        let first = self.streak.map_or(result.ended_unix, |s| s.first);
        self.streak = Some(Streak { first, last: result });
        match self.mode {
            Mode::Normal => self.failed_in_normal(result, now, out),
            Mode::Recovery { round, window } => self.failed_in_window(round, window, now, out),
        }
    }

    fn failed_in_normal(&mut self, result: CheckResult, now: Instant, out: &mut Vec<Action>) {
        if let Some(signal) = self.rules.failure_signal() {
            self.signal_target(signal, out);
        }
        if self.fails >= self.rules.threshold && self.rules.recovers() {
            self.mode = Mode::Recovery { round: 0, window: Window::Hook };
            self.enter_round(now, out);
        } else if self.rules.fail_hook {
            self.busy = Busy::FailHook;
            out.push(Action::RunFailHook(HookEnv {
                code: result.code,
                time: result.ended_unix,
                time_last: None,
                interval: self.rules.interval,
                pid: result.pid,
                count: None,
            }));
        } else {
            self.free(now, out);
        }
    }

    fn failed_in_window(
        &mut self,
        round: u32,
        window: Window,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let window = match window {
            Window::Open(Until::Checks(n)) if n > 1 => Window::Open(Until::Checks(n - 1)),
            Window::Open(Until::Time(end)) if now < end => window,
            _ => Window::Closed,
        };
        self.mode = Mode::Recovery { round, window };
        if window == Window::Closed {
            out.push(Action::Note(Note::WindowClosed));
            // Rounds never follow each other back to back: wait for a real tick.
            self.missed = false;
        }
        self.free(now, out);
    }

    /// Starts the next recovery round (from normal mode or a closed window).
    fn enter_round(&mut self, now: Instant, out: &mut Vec<Action>) {
        let round = match self.mode {
            Mode::Recovery { round, .. } => round + 1,
            Mode::Normal => 1,
        };
        self.mode = Mode::Recovery { round, window: Window::Hook };
        out.push(Action::Note(Note::RecoveryRound { round, fails: self.fails }));
        if let Some(signal) = self.rules.fault_signal {
            self.send(signal, out);
        }
        if self.rules.recovery_hook {
            let streak = self.streak.expect("recovery follows a counted failure");
            self.busy = Busy::RecoveryHook;
            out.push(Action::RunRecoveryHook(HookEnv {
                code: streak.last.code,
                time: streak.first,
                time_last: Some(streak.last.ended_unix),
                interval: self.rules.interval,
                pid: streak.last.pid,
                count: Some(self.fails),
            }));
        } else {
            self.open_window(now, out);
        }
    }

    fn open_window(&mut self, now: Instant, out: &mut Vec<Action>) {
        let until = match self.rules.recovery_timeout {
            Some(d) => Until::Time(now + d),
            None => Until::Checks(self.rules.threshold),
        };
        if let Mode::Recovery { round, .. } = self.mode {
            self.mode = Mode::Recovery { round, window: Window::Open(until) };
        }
        self.missed = false;
        self.start_check(now, out);
    }

    fn hook_done(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.paused.is_some() {
            self.busy = Busy::Idle;
            return;
        }
        match self.busy {
            Busy::FailHook => self.free(now, out),
            Busy::RecoveryHook => self.open_window(now, out),
            Busy::Idle | Busy::Check { .. } => {}
        }
    }

    /// A fault or success signal: to the target, or raised on heat without one.
    fn send(&mut self, signal: Signal, out: &mut Vec<Action>) {
        if self.rules.has_target() {
            self.signal_target(signal, out);
        } else {
            out.push(Action::Signal { signal, dest: Dest::Heat });
        }
    }

    /// Signals the live target; otherwise looks at the pidfile once more and
    /// lets the answer decide, or notes the signal as skipped.
    fn signal_target(&mut self, signal: Signal, out: &mut Vec<Action>) {
        // Judged now: by the time a look answers, the mode may have moved on.
        let freezes = self.in_recovery() && signal.is_stopping();
        match self.target {
            Target::Live(_) => self.emit(signal, freezes, out),
            Target::Seeking { .. } | Target::Lost { .. }
                if self.rules.target == TargetKind::Pidfile =>
            {
                self.pending.push((signal, freezes));
                self.ask(out);
            }
            _ => out.push(Action::Note(Note::SignalSkipped { signal, seeking: None })),
        }
    }

    fn emit(&mut self, signal: Signal, freezes: bool, out: &mut Vec<Action>) {
        if freezes {
            self.target_frozen = true;
        }
        out.push(Action::Signal { signal, dest: Dest::Target });
    }

    fn ask(&mut self, out: &mut Vec<Action>) {
        if !std::mem::replace(&mut self.asked, true) {
            out.push(Action::FindTarget);
        }
    }

    fn remember_dead(&mut self, pid: u32) {
        if self.dead.contains(&pid) {
            return;
        }
        if self.dead.len() == DEAD_KEPT {
            self.dead.remove(0);
        }
        self.dead.push(pid);
    }

    fn look_if_due(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Target::Seeking { dead, since, next_look } = self.target
            && now >= next_look
        {
            self.target = Target::Seeking { dead, since, next_look: now + PIDFILE_POLL };
            self.ask(out);
        }
    }

    fn target_exited(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Target::Live(pid) = self.target else {
            return;
        };
        self.remember_dead(pid);
        if self.rules.target == TargetKind::Pidfile {
            let next_look = now + PIDFILE_POLL;
            self.target = Target::Seeking { dead: pid, since: now, next_look };
            self.ask(out);
        } else {
            self.lose(pid, out);
        }
    }

    /// No successor to `dead`: the end on the command line, the probe's
    /// trouble in service mode.
    fn lose(&mut self, dead: u32, out: &mut Vec<Action>) {
        self.target = Target::Lost { dead: Some(dead) };
        self.trouble(Note::TargetLost { dead }, out);
    }

    fn trouble(&mut self, note: Note, out: &mut Vec<Action>) {
        if self.rules.service {
            out.push(Action::Note(note));
        } else {
            out.push(Action::Fatal(note));
        }
    }

    /// Whether the wait for a successor of a target lost at `since` is over:
    /// one interval, or until the recovery window closes, whichever is later,
    /// and never while the recovery hook runs (it may be restarting the target).
    fn seek_over(&self, since: Instant, now: Instant) -> bool {
        if let Mode::Recovery { window: Window::Hook, .. } = self.mode {
            return false;
        }
        let mut until = since + self.rules.interval;
        if let Some(end) = self.window_end() {
            until = until.max(end);
        }
        now >= until
    }

    fn found(&mut self, pid: u32, out: &mut Vec<Action>) {
        self.asked = false;
        let note = match self.target {
            Target::Seeking { dead, .. } => {
                Some(Note::Following { dead: Some(dead), pid, again: false })
            }
            Target::Lost { dead } => Some(Note::Following { dead, pid, again: true }),
            Target::Live(_) | Target::Unknown | Target::None => None,
        };
        self.target = Target::Live(pid);
        out.extend(note.map(Action::Note));
        for (signal, freezes) in std::mem::take(&mut self.pending) {
            self.emit(signal, freezes, out);
        }
    }

    fn not_found(&mut self, reason: String, now: Instant, out: &mut Vec<Action>) {
        self.asked = false;
        match self.target {
            Target::Unknown => {
                self.target = Target::Lost { dead: None };
                self.trouble(Note::NoTarget { reason }, out);
            }
            Target::Seeking { dead, since, .. } if self.seek_over(since, now) => {
                self.lose(dead, out)
            }
            _ => {}
        }
        let seeking = match self.target {
            Target::Seeking { dead, .. } => Some(dead),
            _ => None,
        };
        for (signal, _) in std::mem::take(&mut self.pending) {
            out.push(Action::Note(Note::SignalSkipped { signal, seeking }));
        }
    }
}

fn nanos(n: u128) -> Duration {
    Duration::new((n / 1_000_000_000) as u64, (n % 1_000_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn rules() -> Rules {
        Rules {
            interval: 10 * S,
            threshold: 1,
            start_period: Duration::ZERO,
            recovery_timeout: None,
            target: TargetKind::None,
            service: false,
            signal: None,
            fault_signal: None,
            success_signal: None,
            fail_hook: false,
            recovery_hook: false,
        }
    }

    /// A probe driven on simulated time: `at(ms)` is t0 + ms milliseconds.
    struct Sim {
        p: Probe,
        t0: Instant,
        pid: u32,
    }

    impl Sim {
        /// A probe with its target (if any) found live as pid 500.
        fn new(rules: Rules) -> Sim {
            let mut s = Sim::unstarted(rules);
            if s.p.rules().has_target() {
                assert_eq!(s.p.start(), vec![Action::FindTarget]);
                assert_eq!(s.p.on(Event::TargetFound(500), s.t0), vec![]);
            }
            s
        }
        fn unstarted(rules: Rules) -> Sim {
            let t0 = Instant::now();
            Sim { p: Probe::new(rules, t0), t0, pid: 100 }
        }
        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }
        fn tick(&mut self, ms: u64) -> Vec<Action> {
            let now = self.at(ms);
            self.p.on(Event::Tick, now)
        }
        fn done(&mut self, ms: u64, code: i32) -> Vec<Action> {
            let now = self.at(ms);
            self.done_at(now, code)
        }
        /// A check ending at `now`; its wall-clock end is 1000 s + whole seconds since t0.
        fn done_at(&mut self, now: Instant, code: i32) -> Vec<Action> {
            self.pid += 1;
            let ended_unix = 1_000 + now.duration_since(self.t0).as_secs();
            let r = CheckResult { code, pid: Some(self.pid), ended_unix };
            self.p.on(Event::CheckDone(r), now)
        }
        fn hook_done(&mut self, ms: u64) -> Vec<Action> {
            let now = self.at(ms);
            self.p.on(Event::HookDone, now)
        }
        /// The next wakeup in milliseconds after t0, which must be whole.
        fn next(&self) -> u64 {
            whole_ms(self.p.next_wakeup().duration_since(self.t0))
        }
        /// Runs one check started by a tick at `ms` and ended `len` ms later.
        fn cycle(&mut self, ms: u64, len: u64, code: i32) -> Vec<Action> {
            assert_eq!(self.tick(ms), vec![Action::StartCheck], "tick at {ms} ms");
            self.done(ms + len, code)
        }
    }

    fn whole_ms(d: Duration) -> u64 {
        assert_eq!(d.subsec_nanos() % 1_000_000, 0, "{d:?} is not a whole number of ms");
        d.as_millis() as u64
    }

    fn sig(signal: Signal, dest: Dest) -> Action {
        Action::Signal { signal, dest }
    }

    fn usr1() -> Signal {
        Signal::USR1
    }

    fn hooks(actions: &[Action]) -> Vec<&HookEnv> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::RunFailHook(e) | Action::RunRecoveryHook(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn first_check_at_start_then_fixed_rate_without_drift() {
        let mut s = Sim::new(rules());
        assert_eq!(s.next(), 0);
        assert_eq!(s.cycle(0, 1_000, 0), vec![]);
        assert_eq!(s.next(), 10_000);
        // A late tick keeps the phase.
        assert_eq!(s.cycle(10_700, 100, 0), vec![]);
        assert_eq!(s.next(), 20_000);
        // A tick far behind (heat was frozen) runs one check, not a backlog.
        assert_eq!(s.cycle(55_000, 100, 0), vec![]);
        assert_eq!(s.next(), 60_000);
    }

    #[test]
    fn ten_thousand_late_ticks_never_move_the_schedule() {
        let mut r = rules();
        r.interval = Duration::from_millis(10);
        let mut s = Sim::new(r);
        for k in 0..10_000u32 {
            let due = s.p.next_wakeup();
            assert_eq!(due, s.at(10 * u64::from(k)), "tick {k}");
            // Late by up to 3 ms in steps of 0.5 ms, the check taking up to 4 ms more.
            let late = Duration::from_micros(500 * u64::from(k % 7));
            assert_eq!(s.p.on(Event::Tick, due + late), vec![Action::StartCheck], "tick {k}");
            s.done_at(due + late + Duration::from_millis(u64::from(k % 5)), 0);
        }
    }

    #[test]
    fn early_tick_is_ignored() {
        let mut s = Sim::new(rules());
        s.cycle(0, 1_000, 0);
        assert_eq!(s.tick(9_999), vec![]);
        assert_eq!(s.next(), 10_000);
    }

    #[test]
    fn a_long_check_starts_nothing_then_exactly_one_check_runs_at_once() {
        let mut s = Sim::new(rules());
        assert_eq!(s.tick(0), vec![Action::StartCheck]);
        for t in [10_000, 20_000, 30_000] {
            assert_eq!(s.tick(t), vec![], "no second check while one runs");
        }
        assert_eq!(s.done(35_000, 0), vec![Action::StartCheck]);
        assert_eq!(s.next(), 40_000);
        assert_eq!(s.done(36_000, 0), vec![], "one check, not three");
    }

    #[test]
    fn a_check_that_ends_before_the_next_tick_starts_nothing_more() {
        let mut s = Sim::new(rules());
        s.tick(0);
        assert_eq!(s.done(9_000, 0), vec![]);
        assert_eq!(s.p.busy(), Busy::Idle);
    }

    #[test]
    fn failures_count_and_a_success_resets_them() {
        let mut r = rules();
        r.threshold = 5;
        let mut s = Sim::new(r);
        s.cycle(0, 100, 1);
        s.cycle(10_000, 100, 2);
        assert_eq!(s.p.status().fails, 2);
        assert_eq!(s.p.status().last.unwrap().code, 2);
        s.cycle(20_000, 100, 0);
        assert_eq!(s.p.status().fails, 0);
        s.cycle(30_000, 100, 1);
        assert_eq!(s.p.status().fails, 1);
    }

    #[test]
    fn target_gets_hup_on_every_failure_by_default() {
        let mut r = rules();
        r.target = TargetKind::Pid;
        let mut s = Sim::new(r);
        assert_eq!(s.cycle(0, 100, 1), vec![sig(Signal::HUP, Dest::Target)]);
        assert_eq!(s.cycle(10_000, 100, 1), vec![sig(Signal::HUP, Dest::Target)]);
        assert_eq!(s.cycle(20_000, 100, 0), vec![]);
    }

    #[test]
    fn target_gets_the_given_signal() {
        let mut r = rules();
        r.target = TargetKind::Pid;
        r.signal = Some(usr1());
        let mut s = Sim::new(r);
        assert_eq!(s.cycle(0, 100, 1), vec![sig(usr1(), Dest::Target)]);
    }

    #[test]
    fn no_per_failure_hup_when_only_fault_or_success_signals_are_given() {
        for (fault, success) in [(Some(Signal::CONT), None), (None, Some(Signal::CONT))] {
            let mut r = rules();
            r.target = TargetKind::Pid;
            r.threshold = 3;
            r.fault_signal = fault;
            r.success_signal = success;
            let mut s = Sim::new(r);
            assert_eq!(s.cycle(0, 100, 1), vec![], "fault {fault:?} success {success:?}");
        }
    }

    #[test]
    fn explicit_signal_is_sent_alongside_fault_signal() {
        let mut r = rules();
        r.target = TargetKind::Pid;
        r.threshold = 2;
        r.signal = Some(usr1());
        r.fault_signal = Some(Signal::CONT);
        let mut s = Sim::new(r);
        assert_eq!(s.cycle(0, 100, 1), vec![sig(usr1(), Dest::Target)]);
    }

    #[test]
    fn no_signal_without_a_target() {
        let mut r = rules();
        r.signal = Some(usr1());
        let mut s = Sim::new(r);
        assert_eq!(s.cycle(0, 100, 1), vec![]);
    }

    #[test]
    fn fail_hook_gets_this_failure() {
        let mut r = rules();
        r.fail_hook = true;
        r.interval = Duration::from_millis(500);
        let mut s = Sim::new(r);
        let a = s.cycle(0, 200, 7);
        assert_eq!(
            a,
            vec![Action::RunFailHook(HookEnv {
                code: 7,
                time: 1_000,
                time_last: None,
                interval: Duration::from_millis(500),
                pid: Some(101),
                count: None,
            })]
        );
        assert_eq!(s.p.busy(), Busy::FailHook);
    }

    #[test]
    fn fail_hook_overlap_runs_exactly_one_check_when_it_ends() {
        let mut r = rules();
        r.fail_hook = true;
        let mut s = Sim::new(r);
        assert_eq!(hooks(&s.cycle(0, 1_000, 1)).len(), 1);
        for t in [10_000, 20_000, 30_000, 40_000] {
            assert_eq!(s.tick(t), vec![], "tick at {t} ms while the hook runs");
        }
        assert_eq!(s.hook_done(45_000), vec![Action::StartCheck]);
        assert_eq!(s.next(), 50_000, "the schedule keeps its phase");
        assert_eq!(s.done(46_000, 0), vec![]);
        assert_eq!(s.cycle(50_000, 100, 0), vec![]);
    }

    #[test]
    fn fail_hook_that_ends_before_the_next_tick_starts_nothing() {
        let mut r = rules();
        r.fail_hook = true;
        let mut s = Sim::new(r);
        s.cycle(0, 1_000, 1);
        assert_eq!(s.hook_done(2_000), vec![]);
        assert_eq!(s.p.busy(), Busy::Idle);
        assert_eq!(s.tick(10_000), vec![Action::StartCheck]);
    }

    #[test]
    fn fail_hook_runs_below_threshold_and_recovery_takes_over_at_it() {
        let mut r = rules();
        r.threshold = 3;
        r.fail_hook = true;
        r.recovery_hook = true;
        r.target = TargetKind::Pid;
        let mut s = Sim::new(r);
        let a = s.cycle(0, 1_000, 1);
        assert!(matches!(a[..], [Action::Signal { .. }, Action::RunFailHook(_)]), "{a:?}");
        s.hook_done(2_000);
        s.cycle(10_000, 1_000, 2);
        s.hook_done(12_000);
        let a = s.cycle(20_000, 1_000, 3);
        assert_eq!(
            a,
            vec![
                sig(Signal::HUP, Dest::Target),
                Action::Note(Note::RecoveryRound { round: 1, fails: 3 }),
                Action::RunRecoveryHook(HookEnv {
                    code: 3,
                    time: 1_001,
                    time_last: Some(1_021),
                    interval: 10 * S,
                    pid: Some(103),
                    count: Some(3),
                }),
            ]
        );
        assert!(s.p.in_recovery());
        assert_eq!(s.p.busy(), Busy::RecoveryHook);
    }

    #[test]
    fn without_recovery_the_fail_hook_runs_on_every_failure() {
        let mut r = rules();
        r.threshold = 2;
        r.fail_hook = true;
        let mut s = Sim::new(r);
        for k in 0..4 {
            let t = 10_000 * k;
            assert_eq!(hooks(&s.cycle(t, 1_000, 1)).len(), 1, "failure {k}");
            s.hook_done(t + 2_000);
        }
        assert!(!s.p.in_recovery());
    }

    /// Threshold 3, recovery hook, by-count window: enters round 1 at 21 s.
    fn in_recovery(mut r: Rules) -> Sim {
        r.threshold = 3;
        r.recovery_hook = true;
        r.fail_hook = true;
        let mut s = Sim::new(r);
        s.cycle(0, 1_000, 1);
        s.hook_done(1_500);
        s.cycle(10_000, 1_000, 1);
        s.hook_done(11_500);
        let a = s.cycle(20_000, 1_000, 1);
        assert!(matches!(a.last(), Some(Action::RunRecoveryHook(_))), "{a:?}");
        s
    }

    #[test]
    fn a_count_window_ends_at_the_tick_of_its_last_check() {
        let mut s = in_recovery(rules());
        assert_eq!(s.p.window_end(), None, "no window while the hook runs");
        s.tick(30_000);
        s.hook_done(33_000); // 3 checks: at 33 s, then the ticks at 40 s and 50 s
        assert_eq!(s.p.window_end(), Some(s.at(50_000)));
        s.done(34_000, 1);
        assert_eq!(s.p.window_end(), Some(s.at(50_000)));
    }

    #[test]
    fn recovery_window_opens_with_a_check_at_once_when_the_hook_ends() {
        let mut s = in_recovery(rules());
        assert_eq!(s.tick(30_000), vec![], "no check while the recovery hook runs");
        assert_eq!(s.hook_done(33_000), vec![Action::StartCheck]);
        assert_eq!(s.next(), 40_000);
        assert_eq!(s.hook_done(34_000), vec![], "a stray hook end changes nothing");
    }

    #[test]
    fn in_the_window_failures_count_on_without_signal_or_fail_hook() {
        let mut r = rules();
        r.target = TargetKind::Pid;
        r.signal = Some(usr1());
        let mut s = in_recovery(r);
        s.hook_done(22_000);
        assert_eq!(s.done(23_000, 4), vec![]);
        assert_eq!(s.p.status().fails, 4);
        assert_eq!(s.cycle(30_000, 1_000, 5), vec![]);
        assert_eq!(s.p.status().fails, 5);
    }

    #[test]
    fn count_window_closes_after_threshold_checks_and_next_round_waits_for_a_tick() {
        let mut s = in_recovery(rules());
        s.hook_done(22_000);
        assert_eq!(s.done(23_000, 1), vec![]);
        assert_eq!(s.cycle(30_000, 1_000, 1), vec![]);
        // The third check of the window runs past a tick; the window closes.
        assert_eq!(s.tick(40_000), vec![Action::StartCheck]);
        assert_eq!(s.tick(50_000), vec![]);
        assert_eq!(s.done(51_000, 1), vec![Action::Note(Note::WindowClosed)]);
        assert_eq!(s.p.busy(), Busy::Idle, "rounds are not back to back");
        let a = s.tick(60_000);
        assert_eq!(a[0], Action::Note(Note::RecoveryRound { round: 2, fails: 6 }));
        let env = hooks(&a)[0].clone();
        assert_eq!(env.time, 1_001, "HEAT_FAIL_TIME stays the streak's first failure");
        assert_eq!(env.time_last, Some(1_051));
        assert_eq!(env.count, Some(6));
    }

    #[test]
    fn time_window_counts_a_check_started_inside_it() {
        let mut r = rules();
        r.recovery_timeout = Some(25 * S);
        let mut s = in_recovery(r);
        s.hook_done(22_000); // window until 47 s
        s.done(23_000, 1);
        s.cycle(30_000, 1_000, 1);
        assert_eq!(s.tick(40_000), vec![Action::StartCheck]);
        // Started at 40 s < 47 s, ends at 48 s with a success: it counts.
        let a = s.done(48_000, 0);
        assert_eq!(a, vec![Action::Note(Note::Recovered { fails: 5 })]);
        assert!(!s.p.in_recovery());
    }

    #[test]
    fn time_window_closes_and_the_next_round_starts_at_the_next_tick() {
        let mut r = rules();
        r.recovery_timeout = Some(25 * S);
        let mut s = in_recovery(r);
        s.hook_done(22_000); // window until 47 s
        s.done(23_000, 1);
        s.cycle(30_000, 1_000, 1);
        s.cycle(40_000, 1_000, 1);
        assert_eq!(s.p.window_end(), Some(s.at(47_000)));
        let a = s.tick(50_000);
        assert_eq!(a[0], Action::Note(Note::WindowClosed));
        assert_eq!(a[1], Action::Note(Note::RecoveryRound { round: 2, fails: 6 }));
        assert!(matches!(a[2], Action::RunRecoveryHook(_)));
    }

    #[test]
    fn a_window_check_ending_after_the_deadline_with_a_failure_closes_it() {
        let mut r = rules();
        r.recovery_timeout = Some(25 * S);
        let mut s = in_recovery(r);
        s.hook_done(22_000);
        s.done(23_000, 1);
        s.cycle(30_000, 1_000, 1);
        assert_eq!(s.tick(40_000), vec![Action::StartCheck]);
        assert_eq!(s.tick(50_000), vec![]);
        assert_eq!(s.done(52_000, 1), vec![Action::Note(Note::WindowClosed)]);
        assert_eq!(s.p.busy(), Busy::Idle);
        assert!(matches!(s.tick(60_000)[0], Action::Note(Note::RecoveryRound { round: 2, .. })));
    }

    #[test]
    fn success_in_the_window_recovers_with_the_success_signal() {
        let mut r = rules();
        r.target = TargetKind::Pid;
        r.fault_signal = Some(Signal::CONT);
        r.success_signal = Some(usr1());
        let mut s = in_recovery(r);
        s.hook_done(22_000);
        let a = s.done(23_000, 0);
        assert_eq!(a, vec![sig(usr1(), Dest::Target), Action::Note(Note::Recovered { fails: 3 })]);
        assert_eq!(s.p.status().fails, 0);
        // Back in normal mode: the next failure runs the fail hook, counted from 1.
        let a = s.cycle(30_000, 1_000, 1);
        assert!(matches!(a[..], [Action::RunFailHook(_)]), "{a:?}");
        assert_eq!(s.p.status().fails, 1);
    }

    #[test]
    fn fault_and_success_signals_without_a_target_are_raised_on_heat() {
        let mut r = rules();
        r.fault_signal = Some(usr1());
        r.success_signal = Some(Signal::HUP);
        let mut s = Sim::new(r);
        let a = s.cycle(0, 1_000, 1);
        assert_eq!(
            a,
            vec![
                Action::Note(Note::RecoveryRound { round: 1, fails: 1 }),
                sig(usr1(), Dest::Heat),
                Action::StartCheck,
            ],
            "no recovery hook: the window opens at once"
        );
        let a = s.done(2_000, 0);
        assert_eq!(a[0], sig(Signal::HUP, Dest::Heat));
    }

    #[test]
    fn threshold_one_rounds_are_never_back_to_back() {
        let mut r = rules();
        r.fault_signal = Some(usr1());
        let mut s = Sim::new(r);
        s.cycle(0, 1_000, 1); // round 1, window check started at 1 s
        assert_eq!(s.done(2_000, 1), vec![Action::Note(Note::WindowClosed)]);
        assert_eq!(s.p.busy(), Busy::Idle);
        let a = s.tick(10_000);
        assert_eq!(a[0], Action::Note(Note::RecoveryRound { round: 2, fails: 2 }));
    }

    #[test]
    fn ticks_during_the_recovery_hook_give_one_check() {
        let mut s = in_recovery(rules());
        for t in [30_000, 40_000, 50_000] {
            assert_eq!(s.tick(t), vec![]);
        }
        assert_eq!(s.hook_done(55_000), vec![Action::StartCheck]);
        assert_eq!(s.done(56_000, 1), vec![], "one check only");
    }

    #[test]
    fn start_period_failures_are_noted_and_not_counted() {
        let mut r = rules();
        r.start_period = 25 * S;
        r.target = TargetKind::Pid;
        r.fail_hook = true;
        let mut s = Sim::new(r);
        assert_eq!(s.cycle(0, 1_000, 1), vec![Action::Note(Note::StartPeriod)]);
        assert_eq!(s.cycle(10_000, 1_000, 1), vec![Action::Note(Note::StartPeriod)]);
        assert_eq!(s.p.status().fails, 0);
        // Started at 30 s, after the start period: it counts.
        let a = s.cycle(30_000, 1_000, 1);
        assert!(matches!(a[..], [Action::Signal { .. }, Action::RunFailHook(_)]), "{a:?}");
    }

    #[test]
    fn a_check_started_inside_the_start_period_is_judged_by_its_start() {
        let mut r = rules();
        r.start_period = 25 * S;
        let mut s = Sim::new(r);
        s.cycle(0, 1_000, 1);
        s.tick(20_000);
        assert_eq!(s.done(28_000, 1), vec![Action::Note(Note::StartPeriod)]);
    }

    #[test]
    fn the_first_success_ends_the_start_period() {
        let mut r = rules();
        r.start_period = 60 * S;
        r.fail_hook = true;
        let mut s = Sim::new(r);
        s.cycle(0, 1_000, 0);
        let a = s.cycle(10_000, 1_000, 1);
        assert!(matches!(a[..], [Action::RunFailHook(_)]), "{a:?}");
        assert_eq!(s.p.status().fails, 1);
    }

    #[test]
    fn stop_in_recovery_resumes_a_target_frozen_by_the_fault_signal() {
        let mut r = rules();
        r.target = TargetKind::Pid;
        r.fault_signal = Some(Signal::STOP);
        let mut s = in_recovery(r);
        assert_eq!(s.p.on_stop(), vec![sig(Signal::CONT, Dest::Target)]);
        assert_eq!(s.p.on_stop(), vec![], "resumed once");
    }

    #[test]
    fn stop_after_a_recovery_or_without_a_stopping_signal_sends_nothing() {
        let mut r = rules();
        r.target = TargetKind::Pid;
        r.fault_signal = Some(Signal::STOP);
        let mut s = in_recovery(r.clone());
        s.hook_done(22_000);
        s.done(23_000, 0);
        assert_eq!(s.p.on_stop(), vec![]);

        r.fault_signal = Some(usr1());
        let mut s = in_recovery(r);
        assert_eq!(s.p.on_stop(), vec![]);
    }

    // -- maintenance and run-now -----------------------------------------

    #[test]
    fn a_paused_probe_runs_nothing_and_keeps_its_phase() {
        let mut s = Sim::new(rules());
        s.cycle(0, 100, 0);
        assert_eq!(s.p.pause(None), vec![]);
        for t in [10_000, 20_300, 30_000] {
            assert_eq!(s.tick(t), vec![], "tick at {t} ms while paused");
        }
        assert_eq!(s.next(), 40_000, "the schedule goes on while paused");
        assert!(s.p.resume());
        assert!(!s.p.resume(), "resumed once");
        assert_eq!(s.tick(39_000), vec![], "no check before the next tick");
        assert_eq!(s.cycle(40_000, 100, 0), vec![]);
        assert_eq!(s.next(), 50_000);
    }

    #[test]
    fn a_pause_with_an_end_wakes_at_it_and_resumes_by_itself() {
        let mut s = Sim::new(rules());
        s.cycle(0, 100, 0);
        s.p.pause(Some(s.at(25_000)));
        assert_eq!(s.tick(10_000), vec![]);
        assert_eq!(s.tick(20_000), vec![]);
        assert_eq!(s.next(), 25_000, "the pause's end is a wakeup");
        assert_eq!(s.tick(25_000), vec![Action::Note(Note::PauseOver)]);
        assert_eq!(s.p.status().paused, None);
        assert_eq!(s.next(), 30_000, "the next check is the schedule's");
        assert_eq!(s.cycle(30_000, 100, 0), vec![]);
    }

    #[test]
    fn a_pause_ending_on_a_tick_runs_that_tick_check() {
        let mut s = Sim::new(rules());
        s.cycle(0, 100, 0);
        s.p.pause(Some(s.at(20_000)));
        assert_eq!(s.tick(20_000), vec![Action::Note(Note::PauseOver), Action::StartCheck]);
    }

    #[test]
    fn pausing_in_recovery_ends_it_resumes_the_frozen_target_and_forgets_the_count() {
        let mut r = rules();
        r.target = TargetKind::Pid;
        r.fault_signal = Some(Signal::STOP);
        let mut s = in_recovery(r);
        assert_eq!(s.p.pause(None), vec![sig(Signal::CONT, Dest::Target)]);
        let st = s.p.status();
        assert!(!st.recovery);
        assert_eq!(st.fails, 0);
        // The recovery hook under way finishes; nothing follows it.
        assert_eq!(s.hook_done(22_000), vec![]);
        assert_eq!(s.p.busy(), Busy::Idle);
        assert_eq!(s.tick(30_000), vec![]);
        assert_eq!(s.p.on_stop(), vec![], "nothing frozen any more");
        s.p.resume();
        // A failure after the pause starts the count from one: a fail hook, no round.
        let a = s.cycle(40_000, 100, 1);
        assert!(matches!(a[..], [Action::RunFailHook(_)]), "{a:?}");
        assert_eq!(s.p.status().fails, 1);
    }

    #[test]
    fn a_check_running_when_paused_counts_for_nothing() {
        let mut r = rules();
        r.fail_hook = true;
        let mut s = Sim::new(r);
        assert_eq!(s.tick(0), vec![Action::StartCheck]);
        s.p.pause(None);
        assert_eq!(s.done(500, 1), vec![], "no hook, no count");
        assert_eq!(s.p.status().fails, 0);
        assert_eq!(s.p.status().last, None);
        assert_eq!(s.p.busy(), Busy::Idle);
    }

    #[test]
    fn run_now_starts_a_check_at_once_and_keeps_the_phase() {
        let mut s = Sim::new(rules());
        s.cycle(0, 100, 0);
        assert_eq!(s.p.run_now(s.at(3_000)), Ok(vec![Action::StartCheck]));
        assert_eq!(s.p.run_now(s.at(3_100)), Err(NotNow::Busy));
        assert_eq!(s.done(3_200, 0), vec![]);
        assert_eq!(s.next(), 10_000, "the phase is kept");
        assert_eq!(s.cycle(10_000, 100, 0), vec![]);
    }

    #[test]
    fn run_now_counts_like_any_check_and_answers_busy_during_a_hook() {
        let mut r = rules();
        r.threshold = 5;
        r.fail_hook = true;
        let mut s = Sim::new(r);
        s.p.run_now(s.at(0)).unwrap();
        let a = s.done(100, 1);
        assert!(matches!(a[..], [Action::RunFailHook(_)]), "{a:?}");
        assert_eq!(s.p.status().fails, 1);
        assert_eq!(s.p.run_now(s.at(200)), Err(NotNow::Busy), "the fail hook runs");
        s.hook_done(300);
        s.p.pause(None);
        assert_eq!(s.p.run_now(s.at(400)), Err(NotNow::Paused));
    }

    #[test]
    fn the_start_period_end_is_known_until_a_success() {
        let mut r = rules();
        r.start_period = 30 * S;
        let mut s = Sim::new(r);
        assert_eq!(s.p.status().start_period_end, Some(s.at(30_000)));
        s.cycle(0, 100, 0);
        assert_eq!(s.p.status().start_period_end, None);
        assert_eq!(Sim::new(rules()).p.status().start_period_end, None);
    }

    // -- the target --------------------------------------------------------

    fn pidfile_rules(service: bool) -> Rules {
        let mut r = rules();
        r.target = TargetKind::Pidfile;
        r.service = service;
        r
    }

    impl Sim {
        fn exited(&mut self, ms: u64) -> Vec<Action> {
            let now = self.at(ms);
            self.p.on(Event::TargetExited, now)
        }
        fn found(&mut self, ms: u64, pid: u32) -> Vec<Action> {
            let now = self.at(ms);
            self.p.on(Event::TargetFound(pid), now)
        }
        fn nothing(&mut self, ms: u64) -> Vec<Action> {
            let now = self.at(ms);
            self.p.on(Event::TargetNotFound("pidfile x.pid: still names pid 500".into()), now)
        }
        /// A tick at `ms` that looks at the pidfile and finds nothing; a check
        /// it starts passes. Returns what the empty answer led to.
        fn look(&mut self, ms: u64) -> Vec<Action> {
            let a = self.tick(ms);
            assert_eq!(a.first(), Some(&Action::FindTarget), "look at {ms} ms: {a:?}");
            let answer = self.nothing(ms);
            if a.contains(&Action::StartCheck) {
                self.done(ms, 0);
            }
            answer
        }
    }

    fn lost(dead: u32) -> Note {
        Note::TargetLost { dead }
    }

    #[test]
    fn a_probe_with_a_target_finds_it_first() {
        let mut s = Sim::unstarted(pidfile_rules(true));
        assert_eq!(s.p.target(), Target::Unknown);
        assert_eq!(s.p.start(), vec![Action::FindTarget]);
        assert_eq!(s.found(0, 42), vec![], "the first find is not a note");
        assert_eq!(s.p.target(), Target::Live(42));
        let mut s = Sim::unstarted(rules());
        assert_eq!(s.p.start(), vec![], "no target, nothing to find");
        assert_eq!(s.p.target(), Target::None);
    }

    #[test]
    fn no_target_at_start_is_fatal_on_the_command_line_and_an_error_in_service_mode() {
        let reason = "pidfile x.pid: still names pid 500".to_string();
        let mut s = Sim::unstarted(pidfile_rules(false));
        s.p.start();
        assert_eq!(s.nothing(0), vec![Action::Fatal(Note::NoTarget { reason: reason.clone() })]);
        let mut s = Sim::unstarted(pidfile_rules(true));
        s.p.start();
        let note = Note::NoTarget { reason };
        assert!(note.is_error());
        assert_eq!(s.nothing(0), vec![Action::Note(note)]);
        assert_eq!(s.p.target(), Target::Lost { dead: None });
        // Lost, a pidfile is read again before every check.
        assert_eq!(s.tick(0), vec![Action::FindTarget, Action::StartCheck]);
        assert_eq!(
            s.found(100, 77),
            vec![Action::Note(Note::Following { dead: None, pid: 77, again: true })]
        );
    }

    #[test]
    fn a_dead_target_is_remembered_and_its_successor_sought_every_100ms() {
        let mut s = Sim::new(pidfile_rules(true));
        s.cycle(0, 100, 0);
        assert_eq!(s.exited(3_000), vec![Action::FindTarget]);
        assert_eq!(s.p.dead(), &[500]);
        assert_eq!(s.nothing(3_000), vec![]);
        assert_eq!(s.next(), 3_100, "the next look");
        assert_eq!(s.tick(3_050), vec![], "not yet");
        assert_eq!(s.tick(3_100), vec![Action::FindTarget]);
        assert_eq!(s.nothing(3_100), vec![]);
        assert_eq!(s.tick(3_200), vec![Action::FindTarget]);
        assert_eq!(
            s.found(3_200, 501),
            vec![Action::Note(Note::Following { dead: Some(500), pid: 501, again: false })]
        );
        assert_eq!(s.p.target(), Target::Live(501));
        assert_eq!(s.next(), 10_000, "back to the schedule alone");
        // The next death adds to the list.
        s.exited(4_000);
        assert_eq!(s.p.dead(), &[500, 501]);
    }

    #[test]
    fn without_a_successor_the_target_is_lost_after_one_interval() {
        for service in [false, true] {
            let mut s = Sim::new(pidfile_rules(service));
            s.cycle(0, 100, 0);
            s.exited(3_000);
            assert_eq!(s.nothing(3_000), vec![]);
            for k in 1..100 {
                let t = 3_000 + 100 * k;
                assert_eq!(s.look(t), vec![], "still waiting at {t} ms");
            }
            let want = if service { Action::Note(lost(500)) } else { Action::Fatal(lost(500)) };
            assert_eq!(s.look(13_000), vec![want]);
            assert_eq!(s.p.target(), Target::Lost { dead: Some(500) });
        }
    }

    #[test]
    fn a_fixed_pid_that_exits_is_lost_at_once() {
        let mut r = rules();
        r.target = TargetKind::Pid;
        let mut s = Sim::new(r.clone());
        assert_eq!(s.exited(1_000), vec![Action::Fatal(lost(500))]);
        r.service = true;
        let mut s = Sim::new(r);
        assert_eq!(s.exited(1_000), vec![Action::Note(lost(500))]);
        // Its signals are skipped, with no look (a fixed pid is not sought).
        assert_eq!(
            s.cycle(10_000, 100, 1),
            vec![Action::Note(Note::SignalSkipped { signal: Signal::HUP, seeking: None })]
        );
    }

    #[test]
    fn the_wait_for_a_successor_covers_the_whole_recovery_hook() {
        let mut r = pidfile_rules(true);
        r.recovery_hook = true;
        let mut s = Sim::new(r);
        // The failure starts recovery; the hook stops the target and runs long.
        let a = s.cycle(0, 500, 1);
        assert!(matches!(a.last(), Some(Action::RunRecoveryHook(_))), "{a:?}");
        s.exited(1_000);
        s.nothing(1_000);
        // Far past one interval (10 s), the hook still runs: heat keeps looking.
        for k in 1..390 {
            let t = 1_000 + 100 * k;
            assert_eq!(s.look(t), vec![], "gave up at {t} ms while the hook runs");
        }
        // The hook writes the new pidfile and ends: found, no error on the way.
        assert_eq!(s.tick(40_000).first(), Some(&Action::FindTarget));
        let a = s.found(40_000, 900);
        assert_eq!(
            a,
            vec![Action::Note(Note::Following { dead: Some(500), pid: 900, again: false })]
        );
        assert_eq!(s.hook_done(40_100), vec![Action::StartCheck]);
    }

    #[test]
    fn after_the_hook_the_wait_lasts_until_the_window_closes() {
        let mut r = pidfile_rules(false);
        r.recovery_hook = true;
        r.recovery_timeout = Some(30 * S);
        let mut s = Sim::new(r);
        s.cycle(0, 500, 1);
        s.exited(1_000);
        s.nothing(1_000);
        let a = s.hook_done(2_000);
        assert_eq!(a, vec![Action::StartCheck]);
        s.done(2_500, 1);
        // The window is open until 32 s: later than one interval after the death.
        for t in [11_500, 20_000, 31_900] {
            let a = s.tick(t);
            assert_eq!(a.first(), Some(&Action::FindTarget), "{a:?}");
            assert_eq!(s.nothing(t), vec![], "gave up at {t} ms");
            if a.contains(&Action::StartCheck) {
                s.done(t, 1);
                s.nothing(t);
            }
        }
        s.tick(32_000);
        assert_eq!(s.nothing(32_000), vec![Action::Fatal(lost(500))]);
    }

    #[test]
    fn a_signal_while_seeking_waits_for_one_more_look() {
        let mut r = pidfile_rules(true);
        r.recovery_hook = true;
        r.success_signal = Some(usr1());
        let mut s = Sim::new(r);
        s.cycle(0, 500, 1);
        s.exited(1_000);
        s.nothing(1_000);
        s.hook_done(2_000);
        // The recovery succeeds while the successor is sought: look once more.
        let a = s.done(2_500, 0);
        assert_eq!(a[0], Action::FindTarget, "{a:?}");
        assert!(!a.iter().any(|a| matches!(a, Action::Signal { .. })), "{a:?}");
        // The pidfile now names the new process: it gets the signal.
        assert_eq!(
            s.found(2_500, 901),
            vec![
                Action::Note(Note::Following { dead: Some(500), pid: 901, again: false }),
                sig(usr1(), Dest::Target),
            ]
        );
    }

    #[test]
    fn a_signal_is_skipped_only_if_the_look_finds_nothing() {
        let mut s = Sim::new(pidfile_rules(true));
        s.cycle(0, 100, 0);
        s.exited(1_000);
        s.nothing(1_000);
        // A failure's HUP while seeking: one look, then skipped.
        assert_eq!(s.tick(10_000), vec![Action::FindTarget, Action::StartCheck]);
        assert_eq!(s.nothing(10_000), vec![]);
        assert_eq!(s.done(10_100, 1), vec![Action::FindTarget]);
        assert_eq!(
            s.nothing(10_100),
            vec![Action::Note(Note::SignalSkipped { signal: Signal::HUP, seeking: Some(500) })]
        );
    }

    #[test]
    fn a_frozen_target_sought_at_stop_is_looked_for_then_resumed() {
        let mut r = pidfile_rules(true);
        r.fault_signal = Some(Signal::STOP);
        r.recovery_hook = true;
        let mut s = Sim::new(r);
        let a = s.cycle(0, 500, 1);
        assert_eq!(a[1], sig(Signal::STOP, Dest::Target), "{a:?}");
        s.exited(1_000);
        s.nothing(1_000);
        assert_eq!(s.p.on_stop(), vec![Action::FindTarget]);
        assert_eq!(
            s.found(1_500, 600),
            vec![
                Action::Note(Note::Following { dead: Some(500), pid: 600, again: false }),
                sig(Signal::CONT, Dest::Target),
            ]
        );
    }

    #[test]
    fn dead_pids_are_inherited_and_bounded() {
        let mut s = Sim::unstarted(pidfile_rules(true));
        s.p.inherit_dead(&[7, 8, 7]);
        assert_eq!(s.p.dead(), &[7, 8]);
        s.p.inherit_dead(&(100..200).collect::<Vec<_>>());
        assert_eq!(s.p.dead().len(), DEAD_KEPT);
        assert_eq!(s.p.dead().last(), Some(&199));
    }

    #[test]
    fn a_check_heat_could_not_run_counts_for_nothing() {
        let mut r = rules();
        r.fail_hook = true;
        let mut s = Sim::new(r);
        assert_eq!(s.tick(0), vec![Action::StartCheck]);
        assert_eq!(s.p.on(Event::CheckNotRun, s.at(0)), vec![]);
        assert_eq!(s.p.status().fails, 0);
        assert_eq!(s.p.busy(), Busy::Idle);
        assert_eq!(s.next(), 10_000, "tried again at the next tick");
        assert_eq!(s.tick(10_000), vec![Action::StartCheck]);
    }

    #[test]
    fn hook_env_vars_leave_absent_values_unset() {
        let env = HookEnv {
            code: 124,
            time: 5,
            time_last: None,
            interval: Duration::from_millis(500),
            pid: None,
            count: None,
        };
        let names: Vec<_> = env.vars().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["HEAT_FAIL_CODE", "HEAT_FAIL_TIME", "HEAT_FAIL_INTERVAL"]);
        assert_eq!(env.vars()[2].1, "0.5");
    }

    #[test]
    fn interval_seconds_are_whole_or_decimal() {
        assert_eq!(seconds(30 * S), "30");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5");
        assert_eq!(seconds(Duration::from_millis(1250)), "1.25");
        assert_eq!(seconds(Duration::from_millis(10)), "0.01");
    }
}
