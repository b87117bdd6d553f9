//! Shared fixture for the integration tests: a temp dir per test, real shell
//! scripts, the real `heat` binary, and a log parser. Every process a test
//! starts carries a tag in its environment, so that everything it leaves behind
//! (heat, its checks and hooks, their children, helper targets) can be found in
//! /proc and killed when the test ends, even on panic.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use nix::sys::signal::Signal;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// How long any awaited event may take: the machine has 2 noisy cores.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// The default log name, relative to the test dir (heat's cwd).
pub const LOG: &str = "heat.verbose.log";

const TAG_VAR: &str = "HEATTEST_TAG";
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The binary under test: cargo's, or `HEAT_TEST_BIN` (to run a test against
/// another build, e.g. to see a new test fail on the code before a fix).
pub fn heat_bin() -> PathBuf {
    std::env::var_os("HEAT_TEST_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_heat")), PathBuf::from)
}

/// Polls `cond` every 15 ms until it holds or `within` passes.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(15));
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// One verbose-log entry: `UNIX : TYPE : NAME :` then `> line`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub unix: u64,
    pub kind: String,
    pub name: String,
    pub lines: Vec<String>,
}

impl Entry {
    /// The first body line (heat's own events have exactly one).
    pub fn text(&self) -> &str {
        self.lines.first().map(String::as_str).unwrap_or("")
    }
    pub fn is_heat(&self) -> bool {
        self.name == "heat"
    }
}

/// Parses a verbose log. A trailing line without its newline (a write in
/// progress) is ignored; a line that is neither a header nor a body line
/// panics, since the format is the contract.
pub fn parse_entries(text: &str) -> Vec<Entry> {
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let mut entries: Vec<Entry> = Vec::new();
    for line in complete.lines() {
        if let Some(body) = line.strip_prefix("> ") {
            entries.last_mut().expect("body line before any header").lines.push(body.to_string());
        } else if line == ">" {
            entries.last_mut().expect("body line before any header").lines.push(String::new());
        } else {
            entries.push(parse_header(line));
        }
    }
    entries
}

fn parse_header(line: &str) -> Entry {
    let bad = || -> ! { panic!("not a log header line: {line:?}") };
    let rest = line.strip_suffix(" :").unwrap_or_else(|| bad());
    let (unix, rest) = rest.split_once(" : ").unwrap_or_else(|| bad());
    let (kind, name) = rest.split_once(" : ").unwrap_or_else(|| bad());
    if !matches!(kind, "INFO" | "FAIL" | "ERR") {
        bad();
    }
    Entry {
        unix: unix.parse().unwrap_or_else(|_| bad()),
        kind: kind.to_string(),
        name: name.to_string(),
        lines: Vec::new(),
    }
}

/// First body lines of heat's own entries, in order.
pub fn heat_events(entries: &[Entry]) -> Vec<String> {
    entries.iter().filter(|e| e.is_heat()).map(|e| e.text().to_string()).collect()
}

/// Entries named `name` (a check's command line or a hook's path).
pub fn named<'e>(entries: &'e [Entry], name: &str) -> Vec<&'e Entry> {
    entries.iter().filter(|e| e.name == name).collect()
}

/// A process's state letter from /proc/PID/stat (`None` once it is gone).
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Alive = exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// (pid, state) of every process whose parent is `ppid`.
pub fn children_of(ppid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for pid in all_pids() {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next());
        let parent = fields.next().and_then(|p| p.parse::<i32>().ok());
        if let (Some(state), Some(parent)) = (state, parent)
            && parent == ppid
        {
            out.push((pid, state));
        }
    }
    out
}

/// Whether `pid` has a handler installed for every one of `sigs`
/// (from the SigCgt mask in /proc/PID/status).
pub fn catches(pid: i32, sigs: &[Signal]) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let Some(mask) = status.lines().find_map(|l| l.strip_prefix("SigCgt:")) else { return false };
    let Ok(mask) = u64::from_str_radix(mask.trim(), 16) else { return false };
    sigs.iter().all(|&s| mask & (1u64 << (s as i32 - 1)) != 0)
}

/// Spins (no sleep) until `pid` catches `sigs`: the earliest moment a signal
/// can be survived at all, since no program handles one before its first
/// instruction.
pub fn spin_until_caught(pid: i32, sigs: &[Signal]) -> bool {
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        if catches(pid, sigs) {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

pub fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn all_pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

pub fn send(pid: i32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid), sig);
}

/// A test's temp dir (heat's cwd) and the helper processes it started.
pub struct Fixture {
    pub dir: PathBuf,
    tag: String,
    helpers: RefCell<Vec<Child>>,
    runs: Cell<usize>,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{name}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("heat-itest-{tag}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create test dir");
        Fixture { dir, tag, helpers: RefCell::new(Vec::new()), runs: Cell::new(0) }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// Lines of a file the scripts append to (complete lines only).
    pub fn lines(&self, rel: &str) -> Vec<String> {
        let text = self.read(rel);
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        complete.lines().map(str::to_string).collect()
    }

    /// A pid a script wrote to a file, once the file holds a whole line.
    pub fn read_pid(&self, rel: &str) -> Option<i32> {
        self.lines(rel).first()?.trim().parse().ok()
    }

    pub fn write_file(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.path(rel);
        fs::write(&path, contents).expect("write file");
        path
    }

    /// Writes an executable (0755) `#!/bin/sh` script.
    pub fn write_script(&self, rel: &str, body: &str) -> PathBuf {
        let path = self.write_file(rel, &format!("#!/bin/sh\n{body}\n"));
        self.chmod(rel, 0o755);
        path
    }

    pub fn chmod(&self, rel: &str, mode: u32) {
        fs::set_permissions(self.path(rel), fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Writes atomically (temp file + rename), for files heat polls.
    pub fn replace_file(&self, rel: &str, contents: &str, mode: u32) {
        let tmp = format!("{rel}.tmp");
        self.write_file(&tmp, contents);
        self.chmod(&tmp, mode);
        fs::rename(self.path(&tmp), self.path(rel)).expect("rename");
    }

    pub fn log(&self) -> String {
        self.read(LOG)
    }

    pub fn entries(&self) -> Vec<Entry> {
        parse_entries(&self.log())
    }

    /// Starts a helper (e.g. a target) in the test dir; returns its pid.
    pub fn spawn_helper(&self, program: &str, args: &[&str]) -> i32 {
        let mut tries = 0;
        let child = loop {
            let mut cmd = Command::new(program);
            cmd.args(args)
                .current_dir(&self.dir)
                .env(TAG_VAR, &self.tag)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // A signal ignored on entry cannot be trapped by a shell, and the
            // tests may run under nohup: helpers start with every disposition default.
            unsafe {
                cmd.pre_exec(|| {
                    for sig in 1..libc::SIGRTMIN() {
                        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                            libc::signal(sig, libc::SIG_DFL);
                        }
                    }
                    Ok(())
                });
            }
            let spawned = cmd.spawn();
            match spawned {
                // A script just written may still be open for writing in a
                // child another test thread is forking ("text file busy").
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => {
                    break other.unwrap_or_else(|e| panic!("cannot spawn helper {program}: {e}"));
                }
            }
        };
        let pid = child.id() as i32;
        self.helpers.borrow_mut().push(child);
        pid
    }

    /// A plain `sleep 300` target.
    pub fn sleep_target(&self) -> i32 {
        self.spawn_helper("sleep", &["300"])
    }

    /// A target that traps HUP, USR1 and USR2 and appends each one's name to
    /// `sigfile`; returns once its traps are installed.
    pub fn trap_target(&self, sigfile: &str) -> i32 {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let script = format!("target-{n}.sh");
        let ready = format!("target-{n}.ready");
        self.write_script(
            &script,
            &format!(
                "for s in HUP USR1 USR2; do trap \"echo $s >> {sigfile}\" $s; done\n\
                 touch {ready}\n\
                 while :; do sleep 1 & wait $!; done"
            ),
        );
        let pid = self.spawn_helper(&format!("./{script}"), &[]);
        assert!(wait_until(DEADLINE, || self.exists(&ready)), "trap target never became ready");
        pid
    }

    /// Kills a helper and reaps it, so that it is really gone.
    pub fn kill_helper(&self, pid: i32) {
        let mut helpers = self.helpers.borrow_mut();
        let i = helpers.iter().position(|c| c.id() as i32 == pid).expect("not a helper");
        let mut child = helpers.remove(i);
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn heat(&self, args: &[&str]) -> Heat<'_> {
        Heat::start(self, args)
    }

    /// Runs heat to its end (for start-up errors and `-t`).
    pub fn heat_run(&self, args: &[&str]) -> Heat<'_> {
        let mut h = Heat::start(self, args);
        h.wait_exit(DEADLINE);
        h
    }

    fn next_run(&self) -> usize {
        let n = self.runs.get();
        self.runs.set(n + 1);
        n
    }

    /// SIGKILLs every process carrying this test's tag (not the test itself).
    pub fn sweep(&self) {
        self.sweep_but(&[]);
    }

    /// Like `sweep`, sparing the helpers (targets outlive one heat run).
    fn sweep_but_helpers(&self) {
        let helpers: Vec<i32> = self.helpers.borrow().iter().map(|c| c.id() as i32).collect();
        self.sweep_but(&helpers);
    }

    fn sweep_but(&self, spare: &[i32]) {
        let needle = format!("{TAG_VAR}={}\0", self.tag).into_bytes();
        let me = std::process::id() as i32;
        for _ in 0..50 {
            let tagged: Vec<i32> = all_pids()
                .into_iter()
                .filter(|&p| p != me && !spare.contains(&p))
                .filter(|p| {
                    fs::read(format!("/proc/{p}/environ"))
                        .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_slice()))
                })
                .collect();
            if tagged.is_empty() {
                return;
            }
            for p in tagged {
                send(p, Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.sweep();
        for mut child in self.helpers.borrow_mut().drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("test dir kept for inspection: {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running (or finished) heat, its stdout and stderr going to files in the
/// test dir so they can be read at any time.
pub struct Heat<'a> {
    pub fx: &'a Fixture,
    child: Child,
    args: Vec<String>,
    out: PathBuf,
    err: PathBuf,
    status: Option<ExitStatus>,
    dumped: Cell<bool>,
}

impl<'a> Heat<'a> {
    pub fn start(fx: &'a Fixture, args: &[&str]) -> Heat<'a> {
        Self::start_with(fx, args, |_| {})
    }

    /// Like `start`, letting the test adjust the command (env, a piped stdout).
    /// A service heat gets a control socket in the test dir unless the test
    /// names one: tests in parallel would meet at the default path.
    pub fn start_with(
        fx: &'a Fixture,
        args: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Heat<'a> {
        let service = args.iter().any(|a| *a == "-c" || *a == "--config");
        let named = args.iter().any(|a| a.starts_with("--control-socket"));
        if service && !named && !args.contains(&"-t") {
            let socket = fx.path("heat.sock").display().to_string();
            let mut with: Vec<&str> = vec!["--control-socket", &socket];
            with.extend_from_slice(args);
            return Self::start_raw(fx, &with, adjust);
        }
        Self::start_raw(fx, args, adjust)
    }

    /// Exactly these arguments.
    pub fn start_raw(
        fx: &'a Fixture,
        args: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Heat<'a> {
        let n = fx.next_run();
        let out = fx.path(&format!(".heat-{n}.stdout"));
        let err = fx.path(&format!(".heat-{n}.stderr"));
        let mut cmd = Command::new(heat_bin());
        cmd.args(args)
            .current_dir(&fx.dir)
            .env(TAG_VAR, &fx.tag)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("stdout file"))
            .stderr(fs::File::create(&err).expect("stderr file"));
        adjust(&mut cmd);
        let child = cmd.spawn().expect("spawn heat");
        Heat {
            fx,
            child,
            args: args.iter().map(|a| a.to_string()).collect(),
            out,
            err,
            status: None,
            dumped: Cell::new(false),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The child handle, e.g. to take a piped stdout.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    pub fn kill(&self, sig: Signal) {
        if self.status.is_none() {
            send(self.pid(), sig);
        }
    }

    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait heat");
        }
        self.status
    }

    /// Waits for heat to exit; fails the test if it does not within `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        if !wait_until(within, || self.try_exit().is_some()) {
            self.fail(format!("heat did not exit within {within:?}"));
        }
        self.status.unwrap()
    }

    /// Exit code (fails the test if heat was killed by a signal).
    pub fn wait_code(&mut self, within: Duration) -> i32 {
        let status = self.wait_exit(within);
        status.code().unwrap_or_else(|| self.fail(format!("heat died by a signal: {status}")))
    }

    /// SIGTERM, then expects exit 0.
    pub fn stop(&mut self) {
        self.kill(Signal::SIGTERM);
        let code = self.wait_code(DEADLINE);
        self.ensure(code == 0, format!("exit code after SIGTERM: expected 0, got {code}"));
    }

    /// Fails unless heat is still running.
    pub fn ensure_running(&mut self, why: &str) {
        if let Some(status) = self.try_exit() {
            self.fail(format!("heat exited ({status}) but should be running: {why}"));
        }
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Complete stdout lines.
    pub fn stdout_lines(&self) -> Vec<String> {
        let text = self.stdout();
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        complete.lines().map(str::to_string).collect()
    }

    pub fn log(&self) -> String {
        self.fx.log()
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.fx.entries()
    }

    /// Polls `cond` up to the deadline; fails the test naming `what`.
    pub fn wait_for(&self, what: &str, cond: impl FnMut() -> bool) {
        if !wait_until(DEADLINE, cond) {
            self.fail(format!("timed out waiting for: {what}"));
        }
    }

    /// Polls the log until `pred` holds on its entries; returns them.
    pub fn wait_entries(&self, what: &str, mut pred: impl FnMut(&[Entry]) -> bool) -> Vec<Entry> {
        let mut last = Vec::new();
        let ok = wait_until(DEADLINE, || {
            last = self.entries();
            pred(&last)
        });
        if !ok {
            self.fail(format!("timed out waiting for log: {what}"));
        }
        last
    }

    /// Waits until at least `n` entries are named `name`.
    pub fn wait_named(&self, name: &str, n: usize) -> Vec<Entry> {
        self.wait_entries(&format!("{n} entries named {name:?}"), |e| named(e, name).len() >= n)
    }

    /// Waits for a heat event whose text starts with `prefix`.
    pub fn wait_event(&self, prefix: &str) -> Vec<Entry> {
        self.wait_entries(&format!("heat event starting {prefix:?}"), |e| {
            heat_events(e).iter().any(|t| t.starts_with(prefix))
        })
    }

    pub fn ensure(&self, cond: bool, msg: impl Display) {
        if !cond {
            self.fail(msg);
        }
    }

    /// Panics with everything needed to understand a failure.
    pub fn fail(&self, msg: impl Display) -> ! {
        self.dumped.set(true);
        panic!("{msg}\n{}", self.context());
    }

    fn context(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "still running".to_string(),
        };
        format!(
            "--- command: {} {}\n--- cwd: {}\n--- status: {status}\n--- stdout:\n{}\n--- stderr:\n{}\n--- log ({LOG}):\n{}",
            heat_bin().display(),
            shell_words(&self.args),
            self.fx.dir.display(),
            self.stdout(),
            self.stderr(),
            self.log(),
        )
    }
}

impl Drop for Heat<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.dumped.get() {
            eprintln!("{}", self.context());
        }
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.fx.sweep_but_helpers();
    }
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a file of `KEY=VALUE` lines (as `env` prints them).
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn env_get<'e>(env: &'e [(String, String)], key: &str) -> Option<&'e str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Asserts that a stdout line is `<unix>: <rest>` with a plausible time.
pub fn split_stdout_line(line: &str) -> Option<(u64, &str)> {
    let (unix, rest) = line.split_once(": ")?;
    Some((unix.parse().ok()?, rest))
}

pub fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}
