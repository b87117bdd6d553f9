//! Running checks and hooks: one child at a time per call, in its own process
//! group, stdin from /dev/null, stdout and stderr merged into one pipe, output
//! capped, ended on timeout or on request, always reaped.
//!
//! Exits are learnt through a pidfd (no thread per child): each wakes its own
//! run alone. For a check the exit is first seen without reaping
//! (`waitid(P_PIDFD, WEXITED | WNOWAIT)`), the leftovers of its group are
//! killed, and only then is it reaped, so the group id cannot have been
//! reused. Stops (SIGSTOP, SIGTSTP, …), which do not make a pidfd readable,
//! are seen through SIGCHLD by one watcher for all runs ([`install_stop_watch`]):
//! a SIGCHLD costs one `waitid(P_ALL, WSTOPPED)`, not a wake-up of every
//! running child's task (which, with a thousand running, made each exit cost a
//! thousand). The group of a stopped child is killed and the stop reported.
//!
//! Children are started by `spawn::Prepared` (clone3 with a vfork, the pidfd
//! from the clone itself), with argv, envp and the working directory prepared
//! once per probe (the program comes as a path, so a `PATH` in the child's
//! environment is harmless), in the cgroup and as the user given to it with
//! `Prepared::with_cgroup` / `with_creds`, if any.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal as NixSignal, killpg};
use nix::unistd::Pid;
use rustix::io::Errno;
use rustix::pipe::PipeFlags;
use rustix::process::{WaitId, WaitIdOptions, WaitOptions};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::signal::Signal;
use crate::spawn::{self, Env, Prepared};

/// Time between TERM and KILL when a child is ended gracefully.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// How long output is still read after the child exited: whatever escaped its
/// group (a `setsid` daemon) may hold the pipe open forever.
pub(crate) const OUTPUT_TAIL: Duration = Duration::from_millis(100);

/// Size of the buffer the pipes are read through (one per thread, shared by all runs).
const READ_CHUNK: usize = 16 * 1024;

/// Reads per wake-up, so that a flood of output cannot starve the exit watch.
const READS_PER_WAKE: usize = 16;

/// What is started: `program` with `args`; a script without `#!` (ENOEXEC)
/// is retried as `/bin/sh program args`.
#[derive(Clone, Debug)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The child's environment: `env`, shared by every run (heat's own,
    /// cleaned by the caller), then `env_extra`, this run's own variables.
    pub env: Arc<Env>,
    pub env_extra: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    pub kind: Kind,
    pub timeout: Duration,
    /// Output bytes kept; the rest is read and dropped (never close the pipe early).
    pub max_output: usize,
}

/// What a run is held to: all a started child's watch needs of its spec
/// (a probe keeps this beside its prepared program, not the whole spec).
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub kind: Kind,
    pub timeout: Duration,
    pub max_output: usize,
}

impl Spec {
    pub fn bounds(&self) -> Bounds {
        Bounds { kind: self.kind, timeout: self.timeout, max_output: self.max_output }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// At `timeout`: KILL on the group at once. On exit: leftovers in the group killed.
    Check,
    /// At `timeout`: TERM then CONT on the group, KILL 5 s later. Leftovers are kept.
    /// Output is read until exit and at most 100 ms more.
    Hook,
}

/// A request to end the child, sent by the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Stop {
    #[default]
    No,
    /// TERM then CONT on the group, KILL after the grace (5 s).
    Graceful,
    /// KILL on the group now (a second TERM during the grace).
    Now,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status (0 is success).
    Exited(i32),
    /// A check killed at its timeout (counts as code 124); a hook ended at its hook timeout.
    TimedOut,
    /// Killed by a signal heat did not send.
    Signaled(Signal),
    /// Stopped by a signal (SIGSTOP, SIGTSTP, …); heat then killed its group.
    Stopped(Signal),
    /// Ended by heat on a `Stop` request: counts for nothing.
    Ended,
    /// Could not be started: 127 not found, 126 not executable, as a shell reports.
    NotStarted { code: i32, error: String },
    /// heat itself could not run it (out of fds, memory or processes): heat's
    /// trouble, never the run's failure.
    NotRun(String),
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The child's pid; `None` when it never started.
    pub pid: Option<u32>,
    pub outcome: Outcome,
    /// Output, stdout and stderr merged in order, at most `max_output` bytes.
    pub output: Vec<u8>,
    /// Bytes read beyond `max_output` and dropped.
    pub dropped: u64,
    /// When the run ended (wall clock, for the log and HEAT_FAIL_TIME).
    pub ended: SystemTime,
}

impl Report {
    fn without_child(outcome: Outcome) -> Report {
        Report { pid: None, outcome, output: Vec::new(), dropped: 0, ended: SystemTime::now() }
    }

    /// Ended by heat before it started (asked to stop before its spawn).
    pub fn ended_unstarted() -> Report {
        Report::without_child(Outcome::Ended)
    }

    fn not_started(code: i32, error: String) -> Report {
        Report::without_child(Outcome::NotStarted { code, error })
    }

    fn not_run(error: String) -> Report {
        Report::without_child(Outcome::NotRun(error))
    }
}

/// Runs `spec` to its end. `stop` asks for an early end; the run still
/// returns a full report (with `Outcome::Ended` if it was ended by the request).
/// `on_start` receives the pid as soon as the child exists.
///
/// A closed `stop` channel means no more requests. Dropping the returned
/// future before it completes kills the child's group and reaps it on a
/// short-lived thread, so even an abandoned run leaves no zombie.
#[cfg(test)]
pub async fn run(spec: &Spec, stop: watch::Receiver<Stop>, on_start: impl FnOnce(u32)) -> Report {
    match prepare(spec) {
        Ok(prepared) => run_prepared(spec.bounds(), &prepared, None, stop, on_start).await,
        Err(report) => report,
    }
}

/// `spec`'s program as `posix_spawn` takes it; build it once to run it often.
pub fn prepare(spec: &Spec) -> Result<Prepared, Report> {
    Prepared::new(&spec.program, &spec.args, spec.env.clone(), &spec.env_extra, spec.cwd.as_deref())
        .map_err(|e| Report::not_started(126, e.to_string()))
}

/// `run` of a program prepared beforehand (by [`prepare`]), held to `bounds`, started in
/// `cgroup` when one is given (this run's own).
pub async fn run_prepared(
    bounds: Bounds,
    prepared: &Prepared,
    cgroup: Option<BorrowedFd<'_>>,
    stop: watch::Receiver<Stop>,
    on_start: impl FnOnce(u32),
) -> Report {
    run_with_grace(bounds, prepared, cgroup, stop, on_start, GRACE).await
}

/// `run` with the TERM-to-KILL grace as a parameter, so tests need not wait 5 s.
async fn run_with_grace(
    bounds: Bounds,
    prepared: &Prepared,
    cgroup: Option<BorrowedFd<'_>>,
    mut stop: watch::Receiver<Stop>,
    on_start: impl FnOnce(u32),
    grace: Duration,
) -> Report {
    if *stop.borrow_and_update() != Stop::No {
        return Report::ended_unstarted();
    }
    let mut context = prepared.context();
    if cgroup.is_some() {
        context.cgroup = cgroup;
    }
    let mut child = match Child::start(prepared, &context) {
        Ok(child) => child,
        Err(report) => return report,
    };
    on_start(child.pid);
    child.supervise(bounds, stop, grace).await
}

/// A started child and everything needed to watch it.
struct Child {
    /// Also its process group id (`process_group(0)`).
    pid: u32,
    /// Readable once the child has exited.
    pidfd: AsyncFd<OwnedFd>,
    /// Where its stops are learnt.
    stops: Stops,
    output: pipe::Receiver,
    /// When it was spawned: its timeout runs from there.
    spawned: Instant,
    reaped: bool,
}

/// Why heat ended the child, if it did; decides the outcome over the exit status.
#[derive(Default)]
struct Ending {
    requested: bool,
    timed_out: bool,
    stopped: Option<i32>,
    /// When the KILL that follows a TERM is due.
    kill_at: Option<Instant>,
}

impl Child {
    fn start(prepared: &Prepared, context: &spawn::Context<'_>) -> Result<Child, Report> {
        // Before the spawn, so that a stop right after exec is not missed.
        let mut stops =
            Stops::new().map_err(|e| Report::not_run(format!("cannot listen for SIGCHLD: {e}")))?;
        let (read, write) = output_pipe()
            .map_err(|e| Report::not_run(format!("cannot create the output pipe: {e}")))?;
        // The parent's write end closes when `write` drops, right after the spawn.
        // A child that failed before its program ran has been reaped by the
        // spawn; its error names the step (`spawn::SpawnError`).
        let spawn::Child { pid, pidfd } =
            prepared.spawn(write.as_fd(), context).map_err(|e| match heat_fault(&e) {
                true => Report::not_run(format!("cannot start a process: {e}")),
                false => Report::not_started(exec_failure_code(&e), e.to_string()),
            })?;
        drop(write);
        let spawned = Instant::now();
        // Before any await: the watcher cannot look for stops in between.
        stops.watch(pid);
        let pidfd = match watch_pidfd(pidfd) {
            Ok(fd) => fd,
            Err(e) => {
                abandon(pid);
                let mut report = Report::not_run(format!("cannot watch child {pid}: {e}"));
                report.pid = Some(pid);
                return Err(report);
            }
        };
        Ok(Child { pid, pidfd, stops, output: read, spawned, reaped: false })
    }

    async fn supervise(
        &mut self,
        spec: Bounds,
        mut stop: watch::Receiver<Stop>,
        grace: Duration,
    ) -> Report {
        let mut out = Output::new(spec.max_output);
        let mut ending = Ending::default();
        let mut pipe_open = true;
        let mut stop_open = true;
        let deadline = self.spawned.checked_add(spec.timeout);
        let timeout = sleep_until(deadline.unwrap_or(self.spawned));
        tokio::pin!(timeout);
        let mut timeout_armed = deadline.is_some();
        let kill_timer = sleep_until(self.spawned);
        tokio::pin!(kill_timer);

        let status = loop {
            let kill_was_due = ending.kill_at;
            tokio::select! {
                biased;
                ready = self.pidfd.readable() => {
                    match ready {
                        Ok(mut guard) => match self.exit_status() {
                            Some(status) => break status,
                            None => guard.clear_ready(),
                        },
                        // Only when the runtime shuts down, which drops this
                        // future: the drop guard then ends and reaps the child.
                        Err(_) => std::future::pending::<()>().await,
                    }
                }
                sig = self.stops.stopped(self.pidfd.get_ref().as_fd()) => {
                    self.on_stop(sig, &mut ending);
                }
                changed = stop.changed(), if stop_open => match changed {
                    Ok(()) => {
                        let request = *stop.borrow_and_update();
                        self.on_request(request, &mut ending, grace);
                    }
                    Err(_) => stop_open = false,
                },
                () = &mut timeout, if timeout_armed => {
                    timeout_armed = false;
                    self.on_timeout(spec.kind, &mut ending, grace);
                }
                () = &mut kill_timer, if ending.kill_at.is_some() => {
                    ending.kill_at = None;
                    signal_group(self.pid, NixSignal::SIGKILL);
                }
                ready = self.output.readable(), if pipe_open => {
                    pipe_open = ready.is_ok() && !read_available(&self.output, &mut out);
                }
            }
            if let Some(at) = ending.kill_at.filter(|_| ending.kill_at != kill_was_due) {
                kill_timer.as_mut().reset(at);
            }
        };
        let ended = SystemTime::now();
        self.finish(spec.kind);
        if pipe_open {
            self.read_tail(&mut out).await;
        }
        Report {
            pid: Some(self.pid),
            outcome: ending.outcome(status),
            output: out.kept,
            dropped: out.dropped,
            ended,
        }
    }

    /// The exit status, read without reaping; `None` while the child lives.
    fn exit_status(&self) -> Option<Change> {
        let flags = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
        match wait_pidfd(self.pidfd.get_ref().as_fd(), flags) {
            Ok(Change::None) => None,
            Ok(change) => Some(change),
            Err(e) => {
                // Only a bug elsewhere in heat (a wait on any child) gets here.
                tracing::error!(pid = self.pid, error = %e, "child reaped behind heat's back");
                Some(Change::Unknown)
            }
        }
    }

    fn on_stop(&self, sig: i32, ending: &mut Ending) {
        signal_group(self.pid, NixSignal::SIGKILL);
        // KILL acts on a stopped process, CONT is for good measure.
        signal_group(self.pid, NixSignal::SIGCONT);
        ending.stopped.get_or_insert(sig);
    }

    fn on_request(&self, request: Stop, ending: &mut Ending, grace: Duration) {
        match request {
            Stop::No => {}
            Stop::Graceful => {
                ending.requested = true;
                self.terminate(ending, grace);
            }
            Stop::Now => {
                ending.requested = true;
                signal_group(self.pid, NixSignal::SIGKILL);
            }
        }
    }

    fn on_timeout(&self, kind: Kind, ending: &mut Ending, grace: Duration) {
        ending.timed_out = true;
        match kind {
            Kind::Check => signal_group(self.pid, NixSignal::SIGKILL),
            Kind::Hook => self.terminate(ending, grace),
        }
    }

    /// TERM then CONT on the group (a stopped process acts on TERM only once
    /// continued), and KILL after the grace unless one is already due sooner.
    fn terminate(&self, ending: &mut Ending, grace: Duration) {
        signal_group(self.pid, NixSignal::SIGTERM);
        signal_group(self.pid, NixSignal::SIGCONT);
        let at = Instant::now() + grace;
        ending.kill_at = Some(ending.kill_at.map_or(at, |due| due.min(at)));
    }

    /// Kills a check's leftovers while the leader is a zombie (its group id
    /// cannot be reused yet), then reaps.
    fn finish(&mut self, kind: Kind) {
        if kind == Kind::Check {
            signal_group(self.pid, NixSignal::SIGKILL);
        }
        let flags = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
        if let Err(e) = wait_pidfd(self.pidfd.get_ref().as_fd(), flags) {
            tracing::debug!(pid = self.pid, error = %e, "reaping the child failed");
        }
        self.reaped = true;
    }

    /// Reads until end of file, for at most `OUTPUT_TAIL`.
    async fn read_tail(&self, out: &mut Output) {
        let drain = async {
            while self.output.readable().await.is_ok() {
                if read_available(&self.output, out) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(OUTPUT_TAIL, drain).await;
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            abandon(self.pid);
        }
    }
}

impl Ending {
    fn outcome(&self, status: Change) -> Outcome {
        if self.requested {
            return Outcome::Ended;
        }
        if self.timed_out {
            return Outcome::TimedOut;
        }
        if let Some(sig) = self.stopped {
            return signal_outcome(sig, Outcome::Stopped);
        }
        match status {
            Change::Exited(code) => Outcome::Exited(code),
            Change::Killed(sig) => signal_outcome(sig, Outcome::Signaled),
            // The status was lost (reaped elsewhere): -1 is no real exit code.
            Change::None | Change::Stopped(_) | Change::Unknown => Outcome::Exited(-1),
        }
    }
}

/// A signal number as an outcome; one `Signal` cannot name is reported as
/// the shell's 128 + N.
fn signal_outcome(number: i32, outcome: fn(Signal) -> Outcome) -> Outcome {
    Signal::from_number(number).map_or(Outcome::Exited(128 + number), outcome)
}

/// Output kept up to a cap, and the count of bytes beyond it.
struct Output {
    kept: Vec<u8>,
    max: usize,
    dropped: u64,
}

impl Output {
    fn new(max: usize) -> Output {
        Output { kept: Vec::new(), max, dropped: 0 }
    }

    fn push(&mut self, chunk: &[u8]) {
        let take = chunk.len().min(self.max - self.kept.len());
        self.kept.extend_from_slice(&chunk[..take]);
        self.dropped += (chunk.len() - take) as u64;
    }
}

/// Reads what the pipe holds now; true at end of file (or on a read error,
/// after which the pipe is still kept open until the run ends).
fn read_available(pipe: &pipe::Receiver, out: &mut Output) -> bool {
    thread_local! {
        // Not in each run's future: a thousand running checks would hold 16 KiB each.
        static BUF: std::cell::RefCell<Box<[u8]>> =
            std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
    }
    BUF.with_borrow_mut(|buf| {
        for _ in 0..READS_PER_WAKE {
            match pipe.try_read(buf) {
                Ok(0) => return true,
                Ok(n) => out.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(error = %e, "reading a child's output failed");
                    return true;
                }
            }
        }
        false
    })
}

/// A pipe whose read end is heat's (non-blocking) and write end the child's
/// (blocking, as programs expect). Both are close-on-exec: the spawn dup2s the
/// write end onto 1 and 2, which clears the flag there only.
fn output_pipe() -> io::Result<(pipe::Receiver, OwnedFd)> {
    let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    rustix::io::ioctl_fionbio(&read, true)?;
    // The read end of a fresh pipe, non-blocking: what the unchecked form needs.
    Ok((pipe::Receiver::from_owned_fd_unchecked(read)?, write))
}

/// Whether a spawn failed for want of heat's own resources (fds, memory,
/// processes) rather than because of the program.
fn heat_fault(e: &io::Error) -> bool {
    matches!(spawn::errno(e), Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN))
}

/// 127 for a program that does not exist, 126 for any other failure, as a shell reports.
fn exec_failure_code(e: &io::Error) -> i32 {
    spawn::error_code(e)
}

fn watch_pidfd(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd's raw fd stays open and the same until it is dropped with the AsyncFd.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(io::Error::from)
}

thread_local! {
    static STOP_WATCH: RefCell<Option<Rc<StopWatch>>> = const { RefCell::new(None) };
}

/// Starts the one watcher of this thread's children's stops, on the current
/// `LocalSet`. Without it (unit tests) each run listens for SIGCHLD itself.
pub fn install_stop_watch() -> io::Result<()> {
    let mut sigchld = signal(SignalKind::child())?;
    let watch = Rc::new(StopWatch::default());
    STOP_WATCH.with(|w| *w.borrow_mut() = Some(watch.clone()));
    tokio::task::spawn_local(async move {
        while sigchld.recv().await.is_some() {
            watch.collect();
        }
    });
    Ok(())
}

/// The running children by pid, and what the watcher saw of each.
#[derive(Default)]
struct StopWatch {
    runs: RefCell<HashMap<u32, Seen>>,
}

#[derive(Default)]
struct Seen {
    stopped: Option<i32>,
    waker: Option<Waker>,
}

impl StopWatch {
    /// Takes every stop the kernel has to report and tells its run.
    /// `WSTOPPED` without `WEXITED`: exits are left to each run's pidfd, and
    /// a stop reported here is not reported again.
    fn collect(&self) {
        loop {
            // SAFETY: an all-zero siginfo_t is valid, and waitid only writes it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let flags = libc::WSTOPPED | libc::WNOHANG | libc::__WALL;
            // SAFETY: `info` is a live siginfo_t for waitid to fill.
            if unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) } != 0 {
                return; // ECHILD: no child at all
            }
            // SAFETY: waitid filled `info` for a child state change, or left it zero.
            let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
            if pid <= 0 {
                return; // no child is stopped
            }
            match self.runs.borrow_mut().get_mut(&(pid as u32)) {
                Some(seen) => {
                    seen.stopped = Some(status);
                    if let Some(w) = seen.waker.take() {
                        w.wake();
                    }
                }
                None => tracing::debug!(pid, "a stopped child no run watches"),
            }
        }
    }
}

/// Where one run learns of its child's stops.
enum Stops {
    /// The thread's watcher; the pid once the child exists.
    Watched(Rc<StopWatch>, Option<u32>),
    /// No watcher on this thread: SIGCHLD itself, then its own pidfd.
    Own(tokio::signal::unix::Signal),
}

impl Stops {
    fn new() -> io::Result<Stops> {
        match STOP_WATCH.with(|w| w.borrow().clone()) {
            Some(watch) => Ok(Stops::Watched(watch, None)),
            None => Ok(Stops::Own(signal(SignalKind::child())?)),
        }
    }

    fn watch(&mut self, pid: u32) {
        if let Stops::Watched(watch, watched) = self {
            watch.runs.borrow_mut().insert(pid, Seen::default());
            *watched = Some(pid);
        }
    }

    /// Resolves with the signal that stopped the child (`pidfd`'s).
    async fn stopped(&mut self, pidfd: BorrowedFd<'_>) -> i32 {
        match self {
            Stops::Watched(watch, pid) => {
                std::future::poll_fn(|cx| {
                    let mut runs = watch.runs.borrow_mut();
                    let Some(seen) = pid.and_then(|p| runs.get_mut(&p)) else {
                        return Poll::Pending;
                    };
                    match seen.stopped.take() {
                        Some(sig) => Poll::Ready(sig),
                        None => {
                            seen.waker = Some(cx.waker().clone());
                            Poll::Pending
                        }
                    }
                })
                .await
            }
            Stops::Own(sigchld) => loop {
                if sigchld.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
                let flags = WaitIdOptions::STOPPED | WaitIdOptions::NOHANG;
                if let Ok(Change::Stopped(sig)) = wait_pidfd(pidfd, flags) {
                    return sig;
                }
            },
        }
    }
}

impl Drop for Stops {
    fn drop(&mut self) {
        if let Stops::Watched(watch, Some(pid)) = self {
            watch.runs.borrow_mut().remove(pid);
        }
    }
}

/// Kills the group of a child that can no longer be watched and reaps it off
/// the runtime: after KILL the wait is short, but never block the runtime on it.
fn abandon(pid: u32) {
    signal_group(pid, NixSignal::SIGKILL);
    signal_group(pid, NixSignal::SIGCONT);
    let reap = move || {
        // Never `None`, which would reap any child: the pid is a spawned child's.
        if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
        }
    };
    if let Err(e) = std::thread::Builder::new().name("heat-reap".into()).spawn(reap) {
        tracing::error!(pid, error = %e, "cannot start a thread to reap an abandoned child");
    }
}

/// Signals the group led by `pid`. ESRCH (the group is already gone) is the
/// normal end of a race with the exit.
fn signal_group(pid: u32, sig: NixSignal) {
    match killpg(Pid::from_raw(pid as libc::pid_t), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => {
            tracing::debug!(pid, signal = %sig, error = %e, "signalling a child's group failed")
        }
    }
}

/// A state change reported by `waitid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    None,
    Exited(i32),
    Killed(i32),
    Stopped(i32),
    /// Reaped elsewhere: the status is lost.
    Unknown,
}

/// `waitid(P_PIDFD, …)`. rustix rather than nix: nix cannot represent a
/// real-time signal (a check killed by RTMIN+3) and would fail with EINVAL.
fn wait_pidfd(pidfd: BorrowedFd<'_>, flags: WaitIdOptions) -> io::Result<Change> {
    let status = loop {
        match rustix::process::waitid(WaitId::PidFd(pidfd), flags) {
            Ok(Some(status)) => break status,
            // WNOHANG and no change yet.
            Ok(None) => return Ok(Change::None),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    };
    let change = status
        .exit_status()
        .map(Change::Exited)
        .or_else(|| status.terminating_signal().map(Change::Killed))
        .or_else(|| status.stopping_signal().map(Change::Stopped));
    Ok(change.unwrap_or(Change::None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::fs;
    use tokio::sync::RwLock;

    /// Spawning tests share it; the fd-leak test takes it alone, so that no
    /// other test's pipes or pidfds are open while it counts.
    static FDS: RwLock<()> = RwLock::const_new(());

    const PATH: &str = "/usr/bin:/bin";

    fn sh(kind: Kind, script: &str) -> Spec {
        Spec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: Arc::new(Env::new([("PATH", PATH)])),
            env_extra: Vec::new(),
            cwd: None,
            kind,
            timeout: Duration::from_secs(10),
            max_output: 65536,
        }
    }

    /// `run` with a short grace.
    async fn graced(
        spec: &Spec,
        stop: watch::Receiver<Stop>,
        on_start: impl FnOnce(u32),
        grace: Duration,
    ) -> Report {
        let prepared = prepare(spec).unwrap();
        run_with_grace(spec.bounds(), &prepared, None, stop, on_start, grace).await
    }

    /// A run whose stop sender is already dropped: a closed channel is no request.
    async fn go(spec: &Spec) -> Report {
        run(spec, watch::channel(Stop::No).1, |_| {}).await
    }

    fn text(report: &Report) -> String {
        String::from_utf8_lossy(&report.output).into_owned()
    }

    fn printed_pid(report: &Report) -> i32 {
        let out = text(report);
        out.trim().parse().unwrap_or_else(|_| panic!("no pid in output {out:?} of {report:?}"))
    }

    /// Gone: no /proc entry, or a zombie left for init to reap.
    fn gone(pid: i32) -> bool {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => {
                stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z'))
            }
        }
    }

    async fn poll_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn kill(pid: i32) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), NixSignal::SIGKILL);
    }

    /// Whether `pid` ignores TERM (bit 15 of SigIgn in /proc/PID/status).
    fn ignores_term(pid: u32) -> bool {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            return false;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
    }

    use crate::testutil::TempDir;

    /// The pipes and pidfds this process holds.
    fn pipes_and_pidfds() -> Vec<String> {
        fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
            .map(|target| target.to_string_lossy().into_owned())
            .filter(|t| t.starts_with("pipe:") || t.contains("pidfd"))
            .collect()
    }

    #[tokio::test]
    async fn exit_codes_are_reported() {
        let _fds = FDS.read().await;
        for code in [0, 3, 255] {
            let report = go(&sh(Kind::Check, &format!("exit {code}"))).await;
            assert_eq!(report.outcome, Outcome::Exited(code), "{report:?}");
            assert!(report.pid.is_some());
        }
    }

    #[tokio::test]
    async fn stdout_and_stderr_are_merged_in_order() {
        let _fds = FDS.read().await;
        let report = go(&sh(Kind::Check, "echo a; echo b >&2; echo c; echo d >&2")).await;
        assert_eq!(report.outcome, Outcome::Exited(0));
        assert_eq!(text(&report), "a\nb\nc\nd\n");
        assert_eq!(report.dropped, 0);
    }

    #[tokio::test]
    async fn output_beyond_the_cap_is_counted_and_dropped() {
        let _fds = FDS.read().await;
        let mut spec = sh(Kind::Check, "printf 0123456789abcdef");
        spec.max_output = 10;
        let report = go(&spec).await;
        assert_eq!(text(&report), "0123456789");
        assert_eq!(report.dropped, 6);
    }

    #[tokio::test]
    async fn a_flood_of_output_is_read_to_the_end_without_sigpipe() {
        let _fds = FDS.read().await;
        let mut spec = sh(Kind::Check, "head -c 1048576 /dev/zero");
        spec.max_output = 1000;
        let report = go(&spec).await;
        assert_eq!(report.outcome, Outcome::Exited(0), "{report:?}");
        assert_eq!(report.output.len(), 1000);
        assert_eq!(report.dropped, 1_048_576 - 1000);
    }

    #[tokio::test]
    async fn a_check_at_its_timeout_is_killed_with_its_group() {
        let _fds = FDS.read().await;
        let mut spec = sh(Kind::Check, "sleep 30 & echo $!; sleep 30");
        spec.timeout = Duration::from_millis(200);
        let t0 = Instant::now();
        let report = go(&spec).await;
        assert_eq!(report.outcome, Outcome::TimedOut);
        assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
        let grandchild = printed_pid(&report);
        poll_until("the grandchild is gone", Duration::from_secs(2), || gone(grandchild)).await;
    }

    #[tokio::test]
    async fn a_checks_leftovers_are_killed_and_a_hooks_kept() {
        let _fds = FDS.read().await;
        let report = go(&sh(Kind::Check, "sleep 30 & echo $!")).await;
        assert_eq!(report.outcome, Outcome::Exited(0));
        let leftover = printed_pid(&report);
        poll_until("the check's leftover is gone", Duration::from_secs(2), || gone(leftover)).await;

        let report = go(&sh(Kind::Hook, "sleep 30 & echo $!")).await;
        assert_eq!(report.outcome, Outcome::Exited(0));
        let leftover = printed_pid(&report);
        let alive = !gone(leftover);
        kill(leftover);
        assert!(alive, "the hook's leftover {leftover} was killed");
        poll_until("the hook's leftover is gone", Duration::from_secs(2), || gone(leftover)).await;
    }

    #[tokio::test]
    async fn an_escapee_holding_the_pipe_does_not_hold_the_run() {
        let _fds = FDS.read().await;
        // Print the escapee's pid once it has its own session.
        let script = r#"setsid sleep 30 & p=$!
            until [ "$(cut -d' ' -f6 /proc/$p/stat)" = "$p" ]; do :; done; echo $p"#;
        for kind in [Kind::Check, Kind::Hook] {
            let t0 = Instant::now();
            let report = go(&sh(kind, script)).await;
            let elapsed = t0.elapsed();
            let escapee = printed_pid(&report);
            let alive = !gone(escapee);
            kill(escapee);
            assert_eq!(report.outcome, Outcome::Exited(0), "{kind:?}");
            assert!(
                alive,
                "{kind:?}: the escapee {escapee} did not escape, the test proves nothing"
            );
            assert!(elapsed < Duration::from_millis(1500), "{kind:?}: took {elapsed:?}");
            assert!(elapsed >= OUTPUT_TAIL, "{kind:?}: the tail was not waited for: {elapsed:?}");
        }
    }

    #[tokio::test]
    async fn a_child_killed_by_a_signal_is_signaled() {
        let _fds = FDS.read().await;
        let report = go(&sh(Kind::Check, "kill -KILL $$")).await;
        assert_eq!(report.outcome, Outcome::Signaled(Signal::KILL));
        // A real-time signal, which nix's wait status cannot represent.
        let rt = libc::SIGRTMIN() + 3;
        let report = go(&sh(Kind::Check, &format!("kill -{rt} $$"))).await;
        assert_eq!(report.outcome, Outcome::Signaled(Signal::from_number(rt).unwrap()));
    }

    #[tokio::test]
    async fn an_abandoned_run_kills_and_reaps_its_child() {
        let _fds = FDS.read().await;
        let pid = Cell::new(0);
        let spec = sh(Kind::Hook, "exec sleep 30");
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            run(&spec, watch::channel(Stop::No).1, |p| pid.set(p)),
        )
        .await;
        assert!(abandoned.is_err(), "the run ended by itself: {abandoned:?}");
        let proc_entry = format!("/proc/{}", pid.get());
        poll_until("the abandoned child is reaped", Duration::from_secs(2), || {
            !std::path::Path::new(&proc_entry).exists()
        })
        .await;
    }

    #[tokio::test]
    async fn a_stopped_child_is_killed_with_its_group() {
        let _fds = FDS.read().await;
        for kind in [Kind::Check, Kind::Hook] {
            let report = go(&sh(kind, "sleep 30 & echo $!; kill -STOP $$")).await;
            assert_eq!(report.outcome, Outcome::Stopped(Signal::STOP), "{kind:?}");
            let grandchild = printed_pid(&report);
            poll_until("the stopped child's group is gone", Duration::from_secs(2), || {
                gone(grandchild)
            })
            .await;
        }
    }

    #[tokio::test]
    async fn a_program_that_cannot_start_is_127_or_126() {
        let _fds = FDS.read().await;
        let dir = TempDir::new("exec");
        let mut spec = sh(Kind::Check, "");
        spec.program = dir.0.join("missing");
        let report = go(&spec).await;
        assert!(
            matches!(&report.outcome, Outcome::NotStarted { code: 127, error } if error.contains("No such file")),
            "{report:?}"
        );
        assert_eq!(report.pid, None);

        spec.program = dir.file("plain", "exit 0\n", 0o644);
        let report = go(&spec).await;
        assert!(
            matches!(&report.outcome, Outcome::NotStarted { code: 126, error } if error.contains("Permission denied")),
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn a_script_without_shebang_runs_with_sh() {
        let _fds = FDS.read().await;
        let dir = TempDir::new("exec");
        let mut spec = sh(Kind::Check, "");
        spec.program = dir.file("noshebang", "echo \"no shebang $1\"; exit 4\n", 0o755);
        spec.args = vec!["x".into()];
        let report = go(&spec).await;
        assert_eq!(report.outcome, Outcome::Exited(4), "{report:?}");
        assert_eq!(text(&report), "no shebang x\n");
    }

    #[tokio::test]
    async fn a_graceful_stop_ends_the_child() {
        let _fds = FDS.read().await;
        let (tx, rx) = watch::channel(Stop::No);
        let t0 = Instant::now();
        let report = run(&sh(Kind::Check, "exec sleep 30"), rx, |_| {
            tx.send(Stop::Graceful).unwrap();
        })
        .await;
        assert_eq!(report.outcome, Outcome::Ended);
        assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
    }

    #[tokio::test]
    async fn a_child_ignoring_term_is_killed_after_the_grace() {
        let _fds = FDS.read().await;
        let grace = Duration::from_millis(300);
        let (tx, rx) = watch::channel(Stop::No);
        let pid = Cell::new(0);
        let sent = Cell::new(None);
        let spec = sh(Kind::Hook, "trap '' TERM; exec sleep 30");
        let stopper = async {
            poll_until("the child ignores TERM", Duration::from_secs(2), || {
                pid.get() != 0 && ignores_term(pid.get())
            })
            .await;
            sent.set(Some(Instant::now()));
            tx.send(Stop::Graceful).unwrap();
        };
        let (report, ()) = tokio::join!(graced(&spec, rx, |p| pid.set(p), grace), stopper);
        let waited = sent.get().unwrap().elapsed();
        assert_eq!(report.outcome, Outcome::Ended);
        assert!(waited >= grace, "killed before the grace: {waited:?}");
        assert!(waited < Duration::from_secs(2), "took {waited:?}");
    }

    #[tokio::test]
    async fn stop_now_cuts_the_grace_short() {
        let _fds = FDS.read().await;
        let (tx, rx) = watch::channel(Stop::No);
        let pid = Cell::new(0);
        let spec = sh(Kind::Check, "trap '' TERM; exec sleep 30");
        let stopper = async {
            poll_until("the child ignores TERM", Duration::from_secs(2), || {
                pid.get() != 0 && ignores_term(pid.get())
            })
            .await;
            tx.send(Stop::Graceful).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(Stop::Now).unwrap();
        };
        let t0 = Instant::now();
        let (report, ()) =
            tokio::join!(graced(&spec, rx, |p| pid.set(p), Duration::from_secs(30)), stopper);
        assert_eq!(report.outcome, Outcome::Ended);
        assert!(t0.elapsed() < Duration::from_secs(3), "took {:?}", t0.elapsed());
    }

    #[tokio::test]
    async fn stop_now_kills_at_once() {
        let _fds = FDS.read().await;
        let (tx, rx) = watch::channel(Stop::No);
        let t0 = Instant::now();
        let spec = sh(Kind::Hook, "trap '' TERM; exec sleep 30");
        let report = run(&spec, rx, |_| {
            tx.send(Stop::Now).unwrap();
        })
        .await;
        assert_eq!(report.outcome, Outcome::Ended);
        assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
    }

    #[tokio::test]
    async fn a_stop_requested_before_the_run_spawns_nothing() {
        let _fds = FDS.read().await;
        let started = Cell::new(false);
        for request in [Stop::Graceful, Stop::Now] {
            let (_tx, rx) = watch::channel(request);
            let report = run(&sh(Kind::Check, "exit 0"), rx, |_| started.set(true)).await;
            assert_eq!(report.outcome, Outcome::Ended);
            assert_eq!(report.pid, None);
        }
        assert!(!started.get(), "a child was started");
    }

    #[tokio::test]
    async fn a_hook_at_its_timeout_gets_term_then_kill() {
        let _fds = FDS.read().await;
        let mut spec = sh(Kind::Hook, "exec sleep 30");
        spec.timeout = Duration::from_millis(100);
        let t0 = Instant::now();
        let report = go(&spec).await;
        assert_eq!(report.outcome, Outcome::TimedOut);
        assert!(t0.elapsed() < Duration::from_secs(2), "TERM did not end it: {:?}", t0.elapsed());

        let grace = Duration::from_millis(300);
        spec.args[1] = "trap '' TERM; exec sleep 30".into();
        let t0 = Instant::now();
        let report = graced(&spec, watch::channel(Stop::No).1, |_| {}, grace).await;
        assert_eq!(report.outcome, Outcome::TimedOut);
        let took = t0.elapsed();
        assert!(took >= spec.timeout + grace, "killed before the grace: {took:?}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }

    #[tokio::test]
    async fn the_environment_is_exactly_the_specs() {
        let _fds = FDS.read().await;
        let mut spec = sh(Kind::Check, "");
        spec.program = "/usr/bin/env".into();
        spec.args.clear();
        spec.env = Arc::new(Env::new([("A", "1")]));
        spec.env_extra = vec![("B".into(), "two words".into())];
        let report = go(&spec).await;
        assert_eq!(text(&report), "A=1\nB=two words\n");
    }

    #[tokio::test]
    async fn the_working_directory_is_honoured() {
        let _fds = FDS.read().await;
        let dir = TempDir::new("exec");
        let mut spec = sh(Kind::Check, "pwd -P");
        spec.cwd = Some(dir.0.clone());
        let report = go(&spec).await;
        assert_eq!(text(&report), format!("{}\n", dir.0.display()));
    }

    #[tokio::test]
    async fn no_fd_is_left_open_and_no_zombie_is_left() {
        let _fds = FDS.write().await;
        let mut spec = sh(Kind::Check, "");
        spec.program = "/usr/bin/true".into();
        spec.args.clear();
        go(&spec).await;
        let before = pipes_and_pidfds();
        for _ in 0..50 {
            let report = go(&spec).await;
            assert_eq!(report.outcome, Outcome::Exited(0));
            let pid = report.pid.unwrap();
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "child {pid} was not reaped"
            );
        }
        let dir = TempDir::new("exec");
        spec.program = dir.file("noshebang", "exit 0\n", 0o755);
        for _ in 0..5 {
            assert_eq!(go(&spec).await.outcome, Outcome::Exited(0));
        }
        spec.program = dir.0.join("missing");
        for _ in 0..5 {
            assert!(matches!(go(&spec).await.outcome, Outcome::NotStarted { code: 127, .. }));
        }
        assert_eq!(pipes_and_pidfds(), before);
    }
}
