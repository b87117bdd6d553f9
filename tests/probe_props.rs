//! Property tests of the probe state machine (`src/probe.rs`): random rules and
//! random event sequences, fed the way the supervisor feeds them, against the
//! promises of the module doc and the README ("What a probe does").
//!
//! The driver plays the supervisor: it sends `Tick` only once `next_wakeup()`
//! has passed, `CheckDone`/`CheckNotRun` only for a running check, `HookDone`
//! only for a running hook, `TargetExited` only for a live target; it carries
//! out actions in order and answers every `FindTarget` at once, executing what
//! the answer returns before going on, and stops at the first `Fatal`. Beside
//! the probe it keeps its own small model (the failure count and streak, the
//! start period, ticks missed while busy) to check the probe against.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use heat::probe::{
    Action, Busy, CheckResult, Dest, Event, HookEnv, Note, Probe, Rules, Target, TargetKind,
};
use heat::signal::Signal;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------
// Inputs

/// One step of a run: what to feed, and the random bits it needs. Each field
/// is raw; the driver maps it onto what is possible in the probe's state, so
/// shrinking works on plain numbers.
#[derive(Clone, Debug)]
struct Step {
    /// 0 tick, 1 check done, 2 check not run, 3 hook done, 4 target exited;
    /// one that is not possible now is a tick.
    kind: u8,
    /// How far time moves first: 0 none, 1 up to 150 ms (pidfile polls),
    /// 2 up to an interval, 3 up to three, 4 up to 40 s.
    delay_class: u8,
    delay: u32,
    /// A check's exit code, 0 is success.
    code: i32,
    /// Answers to `FindTarget` during this step, one bit each (1 = found).
    answers: u8,
}

fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        5 => Just(0u8),
        4 => Just(1u8),
        1 => Just(2u8),
        2 => Just(3u8),
        1 => Just(4u8),
    ];
    (kind, 0u8..5, any::<u32>(), 0i32..4, any::<u8>()).prop_map(
        |(kind, delay_class, delay, code, answers)| Step {
            kind,
            delay_class,
            delay,
            code,
            answers,
        },
    )
}

fn signal() -> impl Strategy<Value = Option<Signal>> {
    proptest::option::of(proptest::sample::select(vec![
        Signal::HUP,
        Signal::USR1,
        Signal::TERM,
        Signal::CONT,
        Signal::STOP,
        Signal::TSTP,
    ]))
}

fn ms(range: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_millis)
}

fn rules() -> impl Strategy<Value = Rules> {
    let interval = prop_oneof![ms(10..=200), ms(200..=2_000), ms(2_000..=10_000)];
    let start_period = prop_oneof![2 => Just(Duration::ZERO), 1 => ms(1..=60_000)];
    let target =
        proptest::sample::select(vec![TargetKind::None, TargetKind::Pid, TargetKind::Pidfile]);
    (
        (interval, 1u32..=5, start_period, proptest::option::of(ms(1..=30_000))),
        (target, any::<bool>()),
        (signal(), signal(), signal()),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (interval, threshold, start_period, recovery_timeout),
                (target, service),
                (signal, fault_signal, success_signal),
                (fail_hook, recovery_hook),
            )| Rules {
                interval,
                threshold,
                start_period,
                recovery_timeout,
                target,
                service,
                signal,
                fault_signal,
                success_signal,
                fail_hook,
                recovery_hook,
            },
        )
}

// ---------------------------------------------------------------------------
// The driver

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    Fail,
    Recovery,
}

/// The model's recovery window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Window {
    /// Not in recovery.
    Normal,
    /// The recovery hook runs.
    Hook,
    /// Checks decide, until `end` or for `left` more failed checks.
    Open { end: Option<Instant>, left: u32 },
    /// Over without a success: the next round starts at the next tick.
    Closed,
}

/// What was carried out for one event, in the order the supervisor would.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Done {
    Action(Action),
    Answer(Event),
}

/// The state just before an event.
#[derive(Clone, Copy, Debug)]
struct Before {
    recovery: bool,
    next: Instant,
    wakeup: Instant,
    busy: Busy,
    target: Target,
    /// The hook a `HookDone` reports.
    ended: Option<Hook>,
    missed: bool,
    fails: u32,
}

struct Sim {
    p: Probe,
    rules: Rules,
    t0: Instant,
    now: Instant,
    /// What the supervisor runs, tracked from the actions alone.
    check: bool,
    hook: Option<Hook>,
    /// The hook that just ended, for its `HookDone`.
    ended: Option<Hook>,
    /// When the running (or last) check started.
    check_started: Instant,
    /// The schedule's last value seen.
    last_next: Instant,
    /// Answer bits for the current step, and how many were used.
    answers: u8,
    answered: u32,
    next_pid: u32,
    check_pid: u32,
    /// A `Fatal` ended the run.
    fatal: bool,
    // The model.
    /// A check succeeded: the start period is over.
    succeeded: bool,
    /// Consecutive counted failures.
    fails: u32,
    /// The streak's first failure time, and its latest failure.
    streak: Option<(u64, CheckResult)>,
    /// A due tick came while the probe was busy and no check has run since.
    missed: bool,
    /// The round of the current recovery (0 in normal mode).
    round: u32,
    /// The recovery window as the rules describe it.
    window: Window,
    /// A stopping signal reached the target since the current recovery began.
    stopped_in_recovery: bool,
    /// The check result being fed, while it is.
    result: Option<CheckResult>,
    trace: Vec<String>,
}

macro_rules! ensure {
    ($sim:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($sim.fail(format!($($fmt)+)));
        }
    };
}

impl Sim {
    fn new(rules: Rules) -> Sim {
        let t0 = Instant::now();
        Sim {
            p: Probe::new(rules.clone(), t0),
            rules,
            t0,
            now: t0,
            check: false,
            hook: None,
            ended: None,
            check_started: t0,
            last_next: t0,
            answers: 0,
            answered: 0,
            next_pid: 1000,
            check_pid: 50_000,
            fatal: false,
            succeeded: false,
            fails: 0,
            streak: None,
            missed: false,
            round: 0,
            window: Window::Normal,
            stopped_in_recovery: false,
            result: None,
            trace: Vec::new(),
        }
    }

    fn fail(&self, msg: String) -> TestCaseError {
        let start = self.trace.len().saturating_sub(40);
        let trace = self.trace[start..].join("\n  ");
        TestCaseError::fail(format!("{msg}\nrules: {:?}\nlast events:\n  {trace}", self.rules))
    }

    fn ms(&self, t: Instant) -> String {
        format!("{}ms", t.saturating_duration_since(self.t0).as_millis())
    }

    fn before(&mut self) -> Before {
        let s = self.p.status();
        Before {
            recovery: s.recovery,
            next: s.next,
            wakeup: self.p.next_wakeup(),
            busy: self.p.busy(),
            target: self.p.target(),
            ended: self.ended.take(),
            missed: self.missed,
            fails: self.fails,
        }
    }

    /// The answer the supervisor gives to `FindTarget`.
    fn answer(&mut self) -> Event {
        let found = self.answers >> (self.answered % 8) & 1 == 1;
        self.answered += 1;
        if !found {
            return Event::TargetNotFound("pidfile x.pid: no such file".into());
        }
        match self.rules.target {
            // A fixed pid is looked for once, at start.
            TargetKind::Pid => Event::TargetFound(500),
            _ => {
                // Never one of `dead()`: the supervisor refuses those.
                self.next_pid += 1;
                Event::TargetFound(self.next_pid)
            }
        }
    }

    fn check_hook_env(&self, action: &Action) -> Result<(), TestCaseError> {
        let interval = self.rules.interval;
        match action {
            Action::RunFailHook(env) => {
                let Some(r) = self.result else {
                    return Err(self.fail("fail hook run, not after a failed check".into()));
                };
                let want = HookEnv {
                    code: r.code,
                    time: r.ended_unix,
                    time_last: None,
                    interval,
                    pid: r.pid,
                    count: None,
                };
                ensure!(self, *env == want, "fail hook env {env:?}, want {want:?}");
            }
            Action::RunRecoveryHook(env) => {
                let Some((first, last)) = self.streak else {
                    return Err(self.fail("recovery hook run without a failure streak".into()));
                };
                let want = HookEnv {
                    code: last.code,
                    time: first,
                    time_last: Some(last.ended_unix),
                    interval,
                    pid: last.pid,
                    count: Some(self.fails),
                };
                ensure!(self, *env == want, "recovery hook env {env:?}, want {want:?}");
            }
            _ => {}
        }
        Ok(())
    }

    /// Carries out `actions` in order, checking each as it is carried out.
    fn execute(&mut self, actions: Vec<Action>, done: &mut Vec<Done>) -> Result<(), TestCaseError> {
        for action in actions {
            self.trace.push(format!("    -> {action:?}"));
            done.push(Done::Action(action.clone()));
            if let Action::Note(Note::TargetLost { dead })
            | Action::Fatal(Note::TargetLost { dead }) = &action
            {
                ensure!(
                    self,
                    self.p.dead().contains(dead),
                    "lost pid {dead} is not among the dead {:?}",
                    self.p.dead()
                );
            }
            match &action {
                Action::StartCheck => {
                    ensure!(self, !self.check, "StartCheck while a check runs");
                    ensure!(
                        self,
                        self.hook.is_none(),
                        "StartCheck while {:?} hook runs",
                        self.hook
                    );
                    if let Target::Lost { .. } = self.p.target()
                        && self.rules.target == TargetKind::Pidfile
                    {
                        let looked = done
                            .iter()
                            .any(|d| matches!(d, Done::Answer(Event::TargetNotFound(_))));
                        ensure!(self, looked, "a check with the target lost and no look for it");
                    }
                    self.check = true;
                    self.check_started = self.now;
                    self.missed = false;
                }
                Action::RunFailHook(_) | Action::RunRecoveryHook(_) => {
                    ensure!(self, !self.check, "{action:?} while a check runs");
                    ensure!(
                        self,
                        self.hook.is_none(),
                        "{action:?} while {:?} hook runs",
                        self.hook
                    );
                    self.check_hook_env(&action)?;
                    if let Action::RunFailHook(_) = action {
                        ensure!(self, self.rules.fail_hook, "fail hook without one configured");
                        ensure!(self, !self.p.in_recovery(), "fail hook run in recovery");
                        self.hook = Some(Hook::Fail);
                    } else {
                        ensure!(
                            self,
                            self.rules.recovery_hook,
                            "recovery hook without one configured"
                        );
                        self.hook = Some(Hook::Recovery);
                    }
                }
                Action::Signal { signal, dest: Dest::Target } => {
                    ensure!(self, self.rules.has_target(), "signal to a target with none");
                    let Target::Live(pid) = self.p.target() else {
                        return Err(self.fail(format!(
                            "{signal} sent while the target is {:?}",
                            self.p.target()
                        )));
                    };
                    ensure!(self, !self.p.dead().contains(&pid), "{signal} sent to dead pid {pid}");
                    if signal.is_stopping() && self.p.in_recovery() {
                        self.stopped_in_recovery = true;
                    }
                }
                Action::Signal { dest: Dest::Heat, .. } => {
                    ensure!(self, !self.rules.has_target(), "signal raised on heat with a target");
                }
                Action::Note(Note::RecoveryRound { round, fails }) => {
                    ensure!(self, self.rules.recovers(), "recovery without hook or fault signal");
                    ensure!(
                        self,
                        *round == self.round + 1 && *fails == self.fails,
                        "round {round} with {fails} failures after round {} with {}",
                        self.round,
                        self.fails
                    );
                    self.round = *round;
                }
                Action::Note(Note::SignalSkipped { signal, .. }) => {
                    ensure!(self, self.rules.has_target(), "{signal} skipped without a target");
                    if self.rules.target == TargetKind::Pidfile {
                        let looked = done
                            .iter()
                            .any(|d| matches!(d, Done::Answer(Event::TargetNotFound(_))));
                        ensure!(self, looked, "{signal} skipped without a look at the pidfile");
                    }
                }
                Action::Note(Note::WindowClosed) => {
                    ensure!(self, self.p.in_recovery(), "a window closed outside recovery");
                    self.missed = false;
                }
                Action::Note(_) => {}
                Action::FindTarget => {
                    ensure!(self, self.rules.has_target(), "FindTarget without a target");
                    let answer = self.answer();
                    self.trace.push(format!("    <- {answer:?}"));
                    done.push(Done::Answer(answer.clone()));
                    let seeking = self.p.target();
                    let more = self.p.on(answer, self.now);
                    let lost = more.iter().any(|a| {
                        matches!(
                            a,
                            Action::Note(Note::TargetLost { .. })
                                | Action::Fatal(Note::TargetLost { .. })
                        )
                    });
                    if lost {
                        self.check_gave_up(seeking)?;
                    }
                    self.execute(more, done)?;
                    if self.fatal {
                        return Ok(());
                    }
                }
                Action::Fatal(note) => {
                    ensure!(self, !self.rules.service, "Fatal({note:?}) in service mode");
                    self.fatal = true;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// A pidfile's successor is sought for one interval or until the recovery
    /// window closes, whichever is later, and through the whole recovery hook.
    fn check_gave_up(&self, seeking: Target) -> Result<(), TestCaseError> {
        let Target::Seeking { since, .. } = seeking else {
            return Err(self.fail(format!("target lost on a look while it was {seeking:?}")));
        };
        ensure!(
            self,
            self.now >= since + self.rules.interval,
            "gave up on the successor at {}, less than an interval after {}",
            self.ms(self.now),
            self.ms(since)
        );
        ensure!(
            self,
            self.p.busy() != Busy::RecoveryHook,
            "gave up on the successor while the recovery hook runs"
        );
        if let Some(end) = self.p.window_end() {
            ensure!(
                self,
                self.now >= end,
                "gave up on the successor at {}, before the window closes at {}",
                self.ms(self.now),
                self.ms(end)
            );
        }
        Ok(())
    }

    /// What the probe's state must be after every event (unless it ended).
    fn steady(&mut self) -> Result<(), TestCaseError> {
        let busy = self.p.busy();
        let tracked = match (self.check, self.hook) {
            (false, None) => matches!(busy, Busy::Idle),
            (true, None) => matches!(busy, Busy::Check { .. }),
            (false, Some(Hook::Fail)) => busy == Busy::FailHook,
            (false, Some(Hook::Recovery)) => busy == Busy::RecoveryHook,
            (true, Some(_)) => false,
        };
        ensure!(
            self,
            tracked,
            "probe busy {busy:?}, supervisor runs check {} hook {:?}",
            self.check,
            self.hook
        );
        ensure!(
            self,
            !(busy == Busy::Idle && self.missed),
            "free again after a missed tick, and no check ran"
        );
        let s = self.p.status();
        ensure!(
            self,
            s.fails == self.fails,
            "{} failures counted, {} happened",
            s.fails,
            self.fails
        );
        ensure!(
            self,
            self.rules.recovers() || !s.recovery,
            "in recovery without hook or fault signal"
        );
        // The schedule: t0 + k·interval, never backwards.
        let since = s.next.duration_since(self.t0).as_nanos();
        ensure!(
            self,
            s.next >= self.t0 && since.is_multiple_of(self.rules.interval.as_nanos()),
            "next check at {} is off the t0 + k·interval grid",
            self.ms(s.next)
        );
        ensure!(
            self,
            s.next >= self.last_next,
            "schedule moved back from {} to {}",
            self.ms(self.last_next),
            self.ms(s.next)
        );
        self.last_next = s.next;
        let wakeup = self.p.next_wakeup();
        match self.p.target() {
            Target::Seeking { .. } => {
                ensure!(self, wakeup <= s.next, "wakeup {} after the next check", self.ms(wakeup))
            }
            _ => {
                ensure!(self, wakeup == s.next, "wakeup {} is not the schedule's", self.ms(wakeup))
            }
        }
        if !s.recovery {
            self.stopped_in_recovery = false;
            self.round = 0;
            self.window = Window::Normal;
        }
        Ok(())
    }

    /// Updates the model for a check result about to be fed; returns whether
    /// the failure counts (false for a success, or inside the start period).
    fn model_check_done(&mut self, r: CheckResult) -> bool {
        if r.code == 0 {
            self.succeeded = true;
            self.fails = 0;
            self.streak = None;
            return false;
        }
        if !self.succeeded && self.check_started < self.t0 + self.rules.start_period {
            return false;
        }
        self.fails += 1;
        let first = self.streak.map_or(r.ended_unix, |(first, _)| first);
        self.streak = Some((first, r));
        true
    }

    /// Feeds `event` at the current time, carries out what it leads to, and
    /// checks the rules that concern one event and its consequences.
    fn feed(&mut self, event: Event) -> Result<(), TestCaseError> {
        let before = self.before();
        self.trace.push(format!("{} {event:?}", self.ms(self.now)));
        let counted = match &event {
            Event::CheckDone(r) => {
                self.result = Some(*r);
                self.model_check_done(*r)
            }
            Event::CheckNotRun => {
                self.missed = false;
                false
            }
            _ => false,
        };
        let actions = self.p.on(event.clone(), self.now);
        let mut done = Vec::new();
        let run = self.execute(actions, &mut done);
        self.result = None;
        run?;
        if let Event::Tick = event
            && before.busy != Busy::Idle
            && self.now >= before.next
        {
            self.missed = true;
        }
        if self.fatal {
            return Ok(());
        }
        let actions: Vec<&Action> = done
            .iter()
            .filter_map(|d| match d {
                Done::Action(a) => Some(a),
                Done::Answer(_) => None,
            })
            .collect();
        let has = |want: fn(&Action) -> bool| actions.iter().any(|a| want(a));
        let round = has(|a| matches!(a, Action::Note(Note::RecoveryRound { .. })));

        // The signals sent or skipped are exactly those the rules call for:
        // --signal for a counted failure in normal mode (never in recovery),
        // the fault signal per round, the success signal per recovery.
        let mut want: BTreeMap<i32, usize> = BTreeMap::new();
        let mut add = |s: Option<Signal>| {
            if let Some(s) = s {
                *want.entry(s.number()).or_default() += 1;
            }
        };
        if counted && !before.recovery {
            add(self.rules.failure_signal());
        }
        for a in &actions {
            match a {
                Action::Note(Note::RecoveryRound { .. }) => add(self.rules.fault_signal),
                Action::Note(Note::Recovered { .. }) => add(self.rules.success_signal),
                _ => {}
            }
        }
        let mut got: BTreeMap<i32, usize> = BTreeMap::new();
        for a in &actions {
            if let Action::Signal { signal, .. }
            | Action::Note(Note::SignalSkipped { signal, .. }) = a
            {
                *got.entry(signal.number()).or_default() += 1;
            }
        }
        ensure!(
            self,
            want == got,
            "signals (number: count) sent or skipped {got:?}, the rules call for {want:?}"
        );
        if before.recovery {
            ensure!(
                self,
                !has(|a| matches!(a, Action::RunFailHook(_))),
                "fail hook run in recovery"
            );
        }
        // Checks start on ticks; otherwise only for a tick missed while busy,
        // or to open a recovery window.
        if has(|a| matches!(a, Action::StartCheck)) && event != Event::Tick {
            let window =
                round || (event == Event::HookDone && before.ended == Some(Hook::Recovery));
            ensure!(self, before.missed || window, "a check started off the schedule");
        }

        match &event {
            Event::Tick => {
                if has(|a| matches!(a, Action::StartCheck)) {
                    ensure!(
                        self,
                        self.now >= before.wakeup && self.now >= before.next,
                        "a tick at {} started a check due at {}",
                        self.ms(self.now),
                        self.ms(before.next)
                    );
                }
                if self.now >= before.next {
                    // The tick moves the schedule to its first slot after now:
                    // late ticks neither drift it nor skip a slot.
                    let next = self.p.status().next;
                    ensure!(
                        self,
                        next > self.now && next - self.rules.interval <= self.now,
                        "a tick at {} moved the next check to {}",
                        self.ms(self.now),
                        self.ms(next)
                    );
                    // An idle probe whose check is due does something.
                    if before.busy == Busy::Idle {
                        ensure!(
                            self,
                            has(|a| matches!(a, Action::StartCheck | Action::RunRecoveryHook(_))),
                            "an idle probe's due tick started nothing"
                        );
                    }
                }
                // No busy loop: the next wakeup is ahead.
                let wakeup = self.p.next_wakeup();
                ensure!(
                    self,
                    wakeup > self.now,
                    "after a tick at {} the next wakeup is {}",
                    self.ms(self.now),
                    self.ms(wakeup)
                );
            }
            Event::CheckDone(r) => {
                let noted = has(|a| matches!(a, Action::Note(Note::StartPeriod)));
                ensure!(
                    self,
                    noted == (r.code != 0 && !counted),
                    "start period note {noted} for code {}, check started at {}",
                    r.code,
                    self.ms(self.check_started)
                );
                let s = self.p.status();
                if r.code == 0 {
                    // A success always returns to normal.
                    ensure!(self, !s.recovery && s.fails == 0, "after a success: {s:?}");
                    let recovered = actions
                        .iter()
                        .filter(|a| matches!(a, Action::Note(Note::Recovered { .. })))
                        .copied()
                        .collect::<Vec<_>>();
                    let want = Action::Note(Note::Recovered { fails: before.fails });
                    ensure!(
                        self,
                        recovered == if before.recovery { vec![&want] } else { vec![] },
                        "success in recovery {}: {recovered:?}",
                        before.recovery
                    );
                } else if counted && !before.recovery {
                    // At the threshold, recovery (with a hook or a fault
                    // signal); otherwise the fail hook.
                    if self.fails >= self.rules.threshold && self.rules.recovers() {
                        ensure!(self, round && s.recovery, "threshold reached, no recovery");
                    } else {
                        let hook = has(|a| matches!(a, Action::RunFailHook(_)));
                        ensure!(
                            self,
                            hook == self.rules.fail_hook && !round,
                            "failure {} of {}: fail hook {hook}, round {round}",
                            self.fails,
                            self.rules.threshold
                        );
                    }
                }
            }
            Event::TargetExited => {
                let Target::Live(pid) = before.target else { unreachable!() };
                ensure!(self, self.p.dead().contains(&pid), "exited pid {pid} not remembered");
                let lost = has(|a| matches!(a, Action::Note(Note::TargetLost { .. })));
                ensure!(
                    self,
                    lost == (self.rules.target == TargetKind::Pid),
                    "target exit, lost at once: {lost}"
                );
            }
            _ => {}
        }
        self.check_window(&event, &before, counted, &actions)?;
        self.steady()
    }

    /// Recovery windows: a round at the next due tick once one closed; a
    /// window closes after `recovery_timeout` from its opening, or else after
    /// `threshold` failed checks.
    fn check_window(
        &mut self,
        event: &Event,
        before: &Before,
        counted: bool,
        actions: &[&Action],
    ) -> Result<(), TestCaseError> {
        let count = |want: fn(&Action) -> bool| actions.iter().filter(|a| want(a)).count();
        let closed = count(|a| matches!(a, Action::Note(Note::WindowClosed)));
        let rounds = count(|a| matches!(a, Action::Note(Note::RecoveryRound { .. })));
        let now = self.now;
        let window = self.window;
        let (want_closed, want_round) = match (event, window) {
            (_, Window::Normal) => (0, rounds),
            (Event::Tick, Window::Closed) if before.busy == Busy::Idle && now >= before.next => {
                (0, 1)
            }
            (Event::Tick, Window::Open { end: Some(end), .. })
                if before.busy == Busy::Idle && now >= before.next && now >= end =>
            {
                (1, 1)
            }
            (Event::CheckDone(_), Window::Open { end, left }) if counted => {
                let over = match end {
                    Some(end) => now >= end,
                    None => left <= 1,
                };
                self.window = if over {
                    Window::Closed
                } else {
                    Window::Open { end, left: left.saturating_sub(1) }
                };
                (usize::from(over), 0)
            }
            _ => (0, 0),
        };
        ensure!(
            self,
            (closed, rounds) == (want_closed, want_round),
            "window {window:?} at {}: {closed} closed and {rounds} rounds, want \
             {want_closed} and {want_round}",
            self.ms(now)
        );
        let open = Window::Open {
            end: self.rules.recovery_timeout.map(|d| now + d),
            left: self.rules.threshold,
        };
        if rounds > 0 {
            self.window = if self.rules.recovery_hook { Window::Hook } else { open };
        }
        if *event == Event::HookDone && before.ended == Some(Hook::Recovery) {
            ensure!(self, self.window == Window::Hook, "recovery hook ended in {window:?}");
            self.window = open;
        }
        Ok(())
    }

    fn start(&mut self) -> Result<(), TestCaseError> {
        self.trace.push("start".into());
        let actions = self.p.start();
        ensure!(
            self,
            actions == if self.rules.has_target() { vec![Action::FindTarget] } else { vec![] },
            "start: {actions:?}"
        );
        let mut done = Vec::new();
        self.execute(actions, &mut done)?;
        if !self.fatal {
            self.steady()?;
        }
        Ok(())
    }

    fn delay(&self, step: &Step) -> Duration {
        let interval = self.rules.interval.as_millis() as u64;
        let d = u64::from(step.delay);
        Duration::from_millis(match step.delay_class {
            0 => 0,
            1 => d % 151,
            2 => d % (interval + 1),
            3 => d % (3 * interval + 1),
            _ => d % 40_001,
        })
    }

    fn run(&mut self, step: &Step) -> Result<(), TestCaseError> {
        self.answers = step.answers;
        self.answered = 0;
        let delay = self.delay(step);
        let live = matches!(self.p.target(), Target::Live(_));
        let event = match step.kind {
            1 if self.check => {
                self.now += delay;
                self.check = false;
                self.check_pid += 1;
                let pid = (!step.delay.is_multiple_of(5)).then_some(self.check_pid);
                let ended_unix = 1_700_000_000 + self.now.duration_since(self.t0).as_secs();
                Event::CheckDone(CheckResult { code: step.code, pid, ended_unix })
            }
            2 if self.check => {
                self.now += delay;
                self.check = false;
                Event::CheckNotRun
            }
            3 if self.hook.is_some() => {
                self.now += delay;
                self.ended = self.hook.take();
                Event::HookDone
            }
            4 if live => {
                self.now += delay;
                Event::TargetExited
            }
            // A tick, once the wakeup has come: on time or late.
            _ => {
                let late = if step.delay_class < 2 { delay } else { delay / 4 };
                self.now = self.now.max(self.p.next_wakeup()) + late;
                Event::Tick
            }
        };
        self.feed(event)
    }

    /// heat stops: a target stopped in this recovery is resumed, nothing else.
    fn stop(&mut self) -> Result<(), TestCaseError> {
        self.answers = 0xff;
        self.answered = 0;
        let recovery = self.p.in_recovery();
        self.trace.push(format!("{} on_stop", self.ms(self.now)));
        let actions = self.p.on_stop();
        let mut done = Vec::new();
        self.execute(actions, &mut done)?;
        let mut resumed = false;
        for d in &done {
            match d {
                Done::Action(Action::Signal { signal, .. })
                | Done::Action(Action::Note(Note::SignalSkipped { signal, .. })) => {
                    ensure!(self, *signal == Signal::CONT, "{signal} sent at stop");
                    ensure!(self, recovery, "CONT at stop outside recovery");
                    ensure!(self, self.stopped_in_recovery, "CONT at stop, nothing was stopped");
                    resumed = true;
                }
                Done::Action(Action::FindTarget)
                | Done::Action(Action::Note(Note::Following { .. }))
                | Done::Answer(_) => {}
                Done::Action(other) => return Err(self.fail(format!("{other:?} at stop"))),
            }
        }
        let fault_stops = self.rules.fault_signal.is_some_and(Signal::is_stopping);
        ensure!(
            self,
            resumed || !(recovery && self.stopped_in_recovery && fault_stops),
            "a target stopped by the fault signal is not resumed at stop"
        );
        Ok(())
    }
}

fn run_case(rules: Rules, start_found: u8, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(rules);
    // The target is found at start in 7 runs out of 8 (else most command-line
    // runs would end there).
    sim.answers = if start_found.is_multiple_of(8) { start_found } else { start_found | 1 };
    sim.start()?;
    for step in steps {
        if sim.fatal {
            return Ok(());
        }
        sim.run(step)?;
    }
    if sim.fatal {
        return Ok(());
    }
    sim.stop()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_event_sequences_keep_the_probe_rules(
        rules in rules(),
        start_found in any::<u8>(),
        steps in proptest::collection::vec(step(), 0..200),
    ) {
        run_case(rules, start_found, &steps)?;
    }
}

// Long runs with a short interval, where pidfile polls, windows and start
// periods all come round many times.
proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn long_runs_keep_the_probe_rules(
        rules in rules().prop_map(|mut r| {
            r.interval = Duration::from_millis(10 + r.interval.as_millis() as u64 % 300);
            r
        }),
        start_found in any::<u8>(),
        steps in proptest::collection::vec(step(), 500..1000),
    ) {
        run_case(rules, start_found, &steps)?;
    }
}
