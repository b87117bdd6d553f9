//! The watched target process: chosen once by pid, held through a pidfd, so
//! its exit is seen at once and a recycled pid is never signalled.
//!
//! A pidfd works for any process, not only heat's children: it becomes readable
//! when the process exits (a zombie counts as exited), and signals sent through
//! it reach exactly the process it was opened for.
//!
//! A pidfile is a claim, not a fact: the pid it names may have died and been
//! reused by an unrelated process. [`inspect_pidfile`] adopts a pid only if heat
//! did not see it die, the process started before the file was last written
//! (a service writes its pidfile after it starts), and, as root, the file's
//! owner may vouch for it. Everything about the process is read after its pidfd
//! is open and checked against it afterwards, so a reuse cannot slip in between.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::signal::Signal;

/// Longest first line of a pidfile worth reading; a pid needs 7 digits.
const PIDFILE_LINE_MAX: u64 = 128;

/// How much later than its pidfile's mtime a process may seem to have started
/// and still be the one the file names: file times come from a coarse clock
/// (up to a jiffy behind), start times are cut to clock ticks. Measured here:
/// 0.04 ms at worst over 300 restarts.
const START_SLACK: Duration = Duration::from_millis(50);

/// A live target process.
#[derive(Debug)]
pub struct Target {
    pid: u32,
    pidfd: AsyncFd<OwnedFd>,
}

impl Target {
    /// Opens a pidfd for `pid`. Refuses pid ≤ 0, pid 1 and heat's own pid.
    ///
    /// Must be called inside a tokio runtime with IO enabled. A pid with no
    /// process gives `ErrorKind::NotFound`, a refused one `InvalidInput`.
    pub fn open(pid: u32) -> io::Result<Target> {
        Target::adopt(Candidate { pid, fd: Pidfd::open(pid)? })
    }

    /// Watches a process found by [`inspect_pidfile`] (or [`Pidfd::open`]).
    pub fn adopt(found: Candidate) -> io::Result<Target> {
        // SAFETY: the fd is an open pidfd owned by the `AsyncFd` from here on,
        // and an `OwnedFd` always returns that same fd.
        let pidfd = unsafe { AsyncFd::register_with_interest(found.fd.0, Interest::READABLE) }?;
        Ok(Target { pid: found.pid, pidfd })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `sig` through the pidfd. The error is the system's (`ESRCH`: the
    /// process has exited); the caller names the signal and the target.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        Ok(rustix::process::pidfd_send_signal(self.pidfd.get_ref(), sig.to_rustix())?)
    }

    /// Resolves when the process has exited; at once if it already has.
    /// Cancel-safe: it may be dropped and called again, as in `select!`.
    pub async fn exited(&self) {
        // A pidfd polls readable (and hung up, once reaped) only when its process
        // has exited, so readiness is never cleared: it stays exited.
        if self.pidfd.readable().await.is_err() {
            // The runtime is shutting down: report nothing rather than a false exit.
            std::future::pending::<()>().await;
        }
    }

    /// Whether the process is still running, without waiting.
    pub fn alive(&self) -> bool {
        pidfd_alive(self.pidfd.get_ref())
    }
}

/// A pidfd of a process heat may signal, not yet watched by the runtime.
#[derive(Debug)]
pub struct Pidfd(OwnedFd);

impl Pidfd {
    /// Refuses pid ≤ 0, pid 1 and heat's own pid, and a process that has
    /// already exited (a zombie).
    pub fn open(pid: u32) -> io::Result<Pidfd> {
        check_pid(pid)?;
        let fd = Pidfd(pidfd_open(pid).map_err(why_no_pidfd)?);
        if !fd.alive() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the process has exited (a zombie not yet reaped)",
            ));
        }
        Ok(fd)
    }

    pub fn alive(&self) -> bool {
        pidfd_alive(&self.0)
    }
}

/// A live process a pidfile names, its pidfd open: what [`Target::adopt`] takes.
#[derive(Debug)]
pub struct Candidate {
    pub pid: u32,
    fd: Pidfd,
}

/// Why a pidfile's pid is not adopted.
#[derive(Debug)]
pub enum PidfileError {
    /// The file cannot be read or holds no pid.
    Read(io::Error),
    /// As root: others could write the file, and so name any process.
    Writable { mode: u32 },
    /// The pid is one heat saw die.
    Dead { pid: u32 },
    /// The pid is not a process heat may signal (gone, init, heat).
    Pid { pid: u32, error: io::Error },
    /// The process started after the file was last written: a reused pid.
    Younger { pid: u32 },
    /// As root: a file owned by a user vouches only for that user's processes.
    Owner { owner: u32, pid: u32, uid: u32 },
    /// As root: the process's owner cannot be read.
    OwnerUnknown { pid: u32, error: io::Error },
}

impl std::error::Error for PidfileError {}

impl PidfileError {
    /// A refusal for safety (as opposed to a file that names nothing usable).
    pub fn is_refusal(&self) -> bool {
        matches!(self, PidfileError::Writable { .. } | PidfileError::Owner { .. })
    }
}

impl fmt::Display for PidfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidfileError::Read(e) => write!(f, "{e}"),
            PidfileError::Writable { mode } => {
                write!(f, "mode {mode:04o} is group- or world-writable; chmod go-w it")
            }
            PidfileError::Dead { pid } => write!(f, "still names pid {pid}, which exited"),
            PidfileError::Pid { pid, error } => write!(f, "names pid {pid}: {error}"),
            PidfileError::Younger { pid } => write!(
                f,
                "names pid {pid}, which started after the file was written: not the process it \
                 was written for (a reused pid)"
            ),
            PidfileError::Owner { owner, pid, uid } => {
                write!(f, "owned by uid {owner} but pid {pid} runs as uid {uid}")
            }
            PidfileError::OwnerUnknown { pid, error } => {
                write!(f, "names pid {pid}, whose owner cannot be read: {error}")
            }
        }
    }
}

/// The process `path` names now, if heat may adopt it: not in `dead`, alive,
/// started before the file was last written, and (`as_root`) vouched for by
/// the file's owner. See the module documentation.
pub fn inspect_pidfile(
    path: &Path,
    dead: &[u32],
    as_root: bool,
) -> Result<Candidate, PidfileError> {
    let (pid, meta) = read_pidfile_meta(path).map_err(PidfileError::Read)?;
    let mode = meta.permissions().mode() & 0o7777;
    if as_root && mode & 0o022 != 0 {
        return Err(PidfileError::Writable { mode });
    }
    if dead.contains(&pid) {
        return Err(PidfileError::Dead { pid });
    }
    let fd = Pidfd::open(pid).map_err(|error| PidfileError::Pid { pid, error })?;
    let gone = || PidfileError::Pid {
        pid,
        error: io::Error::new(io::ErrorKind::NotFound, "the process has exited"),
    };
    // Read while the pidfd holds the process; valid only if it is still alive after.
    let started = start_time(pid).map_err(|error| PidfileError::Pid { pid, error })?;
    let owner = meta.uid();
    let uids = if as_root && owner != 0 {
        Some(uids_of(pid).map_err(|error| PidfileError::OwnerUnknown { pid, error })?)
    } else {
        None
    };
    if !fd.alive() {
        return Err(gone());
    }
    let written = meta.modified().ok().and_then(on_boot_clock);
    if written.is_some_and(|w| started > w + START_SLACK) {
        return Err(PidfileError::Younger { pid });
    }
    // Real, effective and saved: a process that could become root is not the user's.
    if let Some([uid, ..]) = uids.filter(|ids| ids.iter().any(|&id| id != owner)) {
        return Err(PidfileError::Owner { owner, pid, uid });
    }
    Ok(Candidate { pid, fd })
}

/// Waits, at most `limit`, until process `pid` is stopped (or gone):
/// a stopping signal takes effect only once the receiver next runs.
pub async fn stopped(pid: u32, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) if !matches!(parse_state(&stat), Some('T' | 't')) => {}
            _ => return,
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether a pid names a process heat could adopt, as seen at start.
#[derive(Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Gone,
    Zombie,
}

/// `kill(pid, 0)`, then the state letter: a zombie has exited already.
pub fn liveness(pid: i32) -> Result<Liveness, nix::errno::Errno> {
    let signalled = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
    Ok(match kill_says_exists(signalled)? {
        false => Liveness::Gone,
        true if process_state(pid) == Some('Z') => Liveness::Zombie,
        true => Liveness::Alive,
    })
}

/// EPERM means the process exists but is not ours to signal.
fn kill_says_exists(result: nix::Result<()>) -> Result<bool, nix::errno::Errno> {
    use nix::errno::Errno;
    match result {
        Ok(()) | Err(Errno::EPERM) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The state letter of /proc/PID/stat (`R`, `S`, `Z`, …), if readable.
fn process_state(pid: i32) -> Option<char> {
    parse_state(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 3 of a `/proc/PID/stat` line: the process state.
fn parse_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// When process `pid` started, as time since boot: `/proc/PID/stat` field 22
/// counts clock ticks on the boot-time clock.
pub fn start_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_start_ticks(&stat).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("no start time in /proc/{pid}/stat"))
    })?;
    let hz = Some(rustix::param::clock_ticks_per_second()).filter(|&hz| hz > 0).unwrap_or(100);
    Ok(Duration::from_nanos(ticks.saturating_mul(1_000_000_000 / hz)))
}

/// Field 22 of a `/proc/PID/stat` line; the command name (field 2) may hold
/// spaces and parentheses, so counting starts after its last `)`.
fn parse_start_ticks(stat: &str) -> Option<u64> {
    // After the name come field 3 (the state) on: field 22 is the 20th.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// A wall-clock time as time since boot, as process start times are kept.
fn on_boot_clock(t: SystemTime) -> Option<Duration> {
    let boot = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    let boot = Duration::from(boot);
    let ago = SystemTime::now().duration_since(t).unwrap_or(Duration::ZERO);
    Some(boot.saturating_sub(ago))
}

fn pidfd_alive(fd: &OwnedFd) -> bool {
    let now = Timespec { tv_sec: 0, tv_nsec: 0 };
    loop {
        match poll(&mut [PollFd::new(fd, PollFlags::IN)], Some(&now)) {
            // A pidfd polls readable once its process has exited.
            Ok(n) => return n == 0,
            Err(Errno::INTR) => {}
            Err(_) => return true,
        }
    }
}

/// pid 0 and -1 would mean process groups to kill(); pid 1 and heat itself are
/// never what an operator means to signal.
fn check_pid(pid: u32) -> io::Result<()> {
    let refuse = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    if pid == 0 || pid > i32::MAX as u32 {
        return refuse("not a process id: give the target's pid (a positive number)");
    }
    if pid == 1 {
        return refuse("pid 1 (init) is never a target: give the service's own pid");
    }
    if pid == std::process::id() {
        return refuse("that is heat's own pid, never a target: give the service's pid");
    }
    Ok(())
}

/// A pidfd for `pid` (close-on-exec, as pidfds always are); the error is the
/// system's. Targets and heat's own children are both opened here.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // 0 and pids beyond pid_t name no process: EINVAL, as the kernel says for them.
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw).ok_or(Errno::INVAL)?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// What a failed `pidfd_open` means for a target.
fn why_no_pidfd(e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::ESRCH) => return no_process(),
        Some(libc::EINVAL) => "not a process (a thread id?): give the process's pid".into(),
        Some(libc::ENOSYS) => "cannot watch it: heat needs pidfd_open (Linux 5.3 or newer)".into(),
        _ => format!("cannot watch it: {e}"),
    };
    io::Error::new(e.kind(), why)
}

/// Callers name the pid; this says what is wrong with it.
fn no_process() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such process: is the target running?")
}

/// The pid a pidfile names (its first line).
#[cfg(test)]
fn read_pidfile(path: &Path) -> io::Result<u32> {
    read_pidfile_meta(path).map(|(pid, _)| pid)
}

/// The pid a pidfile names, and the file's metadata, from one open.
fn read_pidfile_meta(path: &Path) -> io::Result<(u32, std::fs::Metadata)> {
    let cannot = |e: io::Error| io::Error::new(e.kind(), format!("cannot read it: {e}"));
    // Non-blocking, so that a FIFO at the path cannot hang heat.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "is not a regular file".to_string(),
        ));
    }
    let mut line = Vec::new();
    BufReader::new(file.take(PIDFILE_LINE_MAX)).read_until(b'\n', &mut line).map_err(cannot)?;
    Ok((parse_pidfile(&line)?, meta))
}

/// Reads a pid from a pidfile's first line: a positive decimal number, with
/// surrounding whitespace allowed.
fn parse_pidfile(line: &[u8]) -> io::Result<u32> {
    let bad = |why: String| Err(io::Error::new(io::ErrorKind::InvalidData, why));
    if line.is_empty() {
        return bad("is empty: the service has not written its pid".to_string());
    }
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    let pid = match text.parse::<u32>() {
        Ok(pid)
            if text.bytes().all(|b| b.is_ascii_digit()) && (1..=i32::MAX as u32).contains(&pid) =>
        {
            pid
        }
        _ => {
            let first: String = text.chars().take(40).collect();
            return bad(format!("first line '{}' is not a pid", crate::text::shown(&first)));
        }
    };
    Ok(pid)
}

/// The real uid of process `pid`.
#[cfg(test)]
fn uid_of(pid: u32) -> io::Result<u32> {
    uids_of(pid).map(|[real, ..]| real)
}

/// Real, effective and saved uid of process `pid`, from `/proc/PID/status`.
fn uids_of(pid: u32) -> io::Result<[u32; 3]> {
    let status = match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => status,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(io::Error::new(e.kind(), format!("no process with pid {pid}")));
        }
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot read the owner of pid {pid}: {e}"),
            ));
        }
    };
    parse_uids(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot read the owner of pid {pid}: no Uid line in /proc/{pid}/status"),
        )
    })
}

/// Real, effective and saved uid: the first three numbers of the `Uid:` line.
fn parse_uids(status: &str) -> Option<[u32; 3]> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(|f| f.parse::<u32>().ok());
    Some([ids.next()??, ids.next()??, ids.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_means_the_process_exists() {
        use nix::errno::Errno;
        assert_eq!(kill_says_exists(Ok(())), Ok(true));
        assert_eq!(kill_says_exists(Err(Errno::EPERM)), Ok(true));
        assert_eq!(kill_says_exists(Err(Errno::ESRCH)), Ok(false));
        assert_eq!(kill_says_exists(Err(Errno::EINVAL)), Err(Errno::EINVAL));
    }

    #[test]
    fn heat_itself_is_alive_and_init_exists() {
        assert_eq!(liveness(std::process::id() as i32), Ok(Liveness::Alive));
        assert_eq!(liveness(1), Ok(Liveness::Alive));
    }
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    const DEADLINE: Duration = Duration::from_secs(5);

    /// A child that is killed and reaped however the test ends.
    struct Reaped(Child);

    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Kills the watched process however the test ends (through the pidfd: safe).
    struct KillOnDrop(Target);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.signal(Signal::KILL);
        }
    }

    fn sleeper() -> Reaped {
        Reaped(Command::new("sleep").arg("30").spawn().expect("spawn sleep 30"))
    }

    async fn assert_exits(target: &Target) {
        tokio::time::timeout(DEADLINE, target.exited())
            .await
            .unwrap_or_else(|_| panic!("pid {} did not exit within {DEADLINE:?}", target.pid()));
        assert!(!target.alive());
    }

    #[tokio::test]
    async fn child_exit_is_seen_after_term() {
        let mut child = sleeper();
        let target = Target::open(child.0.id()).unwrap();
        assert_eq!(target.pid(), child.0.id());
        assert!(target.alive());
        target.signal(Signal::TERM).unwrap();
        assert_exits(&target).await;
        // Seen before reaping; it stays seen, and the child died of our TERM.
        assert_exits(&target).await;
        let status = child.0.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGTERM));
    }

    #[tokio::test]
    async fn a_real_time_signal_reaches_the_target() {
        let mut child = sleeper();
        let target = Target::open(child.0.id()).unwrap();
        let rt = Signal::from_number(crate::signal::rtmin() + 3).unwrap();
        target.signal(rt).unwrap();
        assert_exits(&target).await;
        let status = child.0.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(rt.number()));
    }

    #[tokio::test]
    async fn a_zombie_has_exited_already() {
        let mut child = Reaped(Command::new("true").spawn().unwrap());
        let pid = child.0.id();
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            // The state follows the parenthesised command name.
            if stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z')) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "pid {pid} never exited: {stat}");
            std::thread::sleep(Duration::from_millis(2));
        }
        // Exited, though not reaped: not a process to watch or signal.
        let err = Target::open(pid).expect_err("a zombie was opened as a target");
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert_eq!(err.to_string(), "the process has exited (a zombie not yet reaped)");
        assert!(child.0.try_wait().unwrap().is_some_and(|s| s.success()));
    }

    #[tokio::test]
    async fn exited_is_cancel_safe_and_waits_for_a_real_exit() {
        let child = sleeper();
        let target = Target::open(child.0.id()).unwrap();
        for _ in 0..3 {
            tokio::select! {
                () = target.exited() => panic!("exited() resolved while pid {} runs", target.pid()),
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
        target.signal(Signal::KILL).unwrap();
        assert_exits(&target).await;
    }

    #[tokio::test]
    async fn refuses_zero_init_and_itself() {
        for pid in [0, 1, std::process::id(), u32::MAX] {
            let err = Target::open(pid).err().unwrap_or_else(|| panic!("pid {pid} was accepted"));
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "pid {pid}: {err}");
        }
    }

    #[tokio::test]
    async fn refuses_a_dead_pid() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let err = Target::open(pid).expect_err("a reaped pid was accepted");
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert_eq!(err.to_string(), "no such process: is the target running?");
    }

    #[tokio::test]
    async fn watches_a_process_that_is_not_a_child() {
        let out = Command::new("sh")
            .args(["-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let target = KillOnDrop(Target::open(pid).unwrap());
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:")).unwrap().trim();
        assert_ne!(ppid, std::process::id().to_string(), "the grandchild is heat's child");
        assert!(target.0.alive());
        target.0.signal(Signal::TERM).unwrap();
        assert_exits(&target.0).await;
    }

    #[tokio::test]
    async fn signal_after_exit_is_an_error() {
        let mut child = sleeper();
        let target = Target::open(child.0.id()).unwrap();
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let err = target.signal(Signal::TERM).expect_err("signalled a reaped process");
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "{err}");
    }

    use crate::testutil::TempDir;

    #[test]
    fn reads_the_state_after_any_command_name() {
        assert_eq!(parse_state("42 (a) b) T 1 2"), Some('T'));
        assert_eq!(parse_state("42 (sleep) S 1 2"), Some('S'));
        assert_eq!(parse_state("42 (sleep"), None);
    }

    #[tokio::test]
    async fn waits_until_a_stopped_process_shows_it() {
        let child = sleeper();
        let pid = child.0.id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGSTOP)
            .unwrap();
        stopped(pid, Duration::from_secs(10)).await;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        assert_eq!(parse_state(&stat), Some('T'));
    }

    #[test]
    fn reads_good_pidfiles() {
        let dir = TempDir::new("target");
        let path = dir.0.join("x.pid");
        for (text, pid) in
            [("1234\n", 1234), (" 42 \n", 42), ("77", 77), ("5\nextra\n", 5), ("9\r\n", 9)]
        {
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_pidfile(&path).unwrap(), pid, "{text:?}");
        }
    }

    #[test]
    fn refuses_bad_pidfiles() {
        let cases: [(&[u8], &str); 9] = [
            (b"abc\n", "first line 'abc' is not a pid"),
            (b"", "is empty: the service has not written its pid"),
            (b"\n12\n", "first line '' is not a pid"),
            (b"0\n", "first line '0' is not a pid"),
            (b"-5\n", "first line '-5' is not a pid"),
            (b"+5\n", "first line '+5' is not a pid"),
            (b"12 34\n", "first line '12 34' is not a pid"),
            (b"2147483648\n", "first line '2147483648' is not a pid"),
            (b"12ab", "first line '12ab' is not a pid"),
        ];
        for (line, want) in cases {
            let first = line.split_inclusive(|&b| b == b'\n').next().unwrap_or(b"");
            let err = parse_pidfile(first).err().unwrap_or_else(|| panic!("{line:?} accepted"));
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn pidfile_errors_say_what_is_wrong() {
        let dir = TempDir::new("target");
        let missing = dir.0.join("missing.pid");
        let err = read_pidfile(&missing).expect_err("a missing pidfile was read");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().starts_with("cannot read it: "), "{err}");
        let err = read_pidfile(&dir.0).expect_err("a directory was read as a pidfile");
        assert_eq!(err.to_string(), "is not a regular file");
        let long = dir.0.join("long.pid");
        std::fs::write(&long, "7".repeat(1000)).unwrap();
        let err = read_pidfile(&long).expect_err("a long line was read as a pid");
        assert_eq!(err.to_string(), format!("first line '{}' is not a pid", "7".repeat(40)));
    }

    #[test]
    fn reads_the_real_uid() {
        let status = "Name:\tx\nUid:\t1000\t0\t7\t0\nGid:\t5\t5\t5\t5\n";
        assert_eq!(parse_uids(status), Some([1000, 0, 7]));
        assert_eq!(parse_uids("Name:\tx\n"), None);
        assert_eq!(parse_uids("Uid:\t1\tx\t3\t4\n"), None);
        assert_eq!(uid_of(std::process::id()).unwrap(), nix::unistd::getuid().as_raw());
    }

    #[test]
    fn uid_of_a_missing_pid_is_not_found() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let err = uid_of(pid).expect_err("uid of a reaped pid");
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert_eq!(err.to_string(), format!("no process with pid {pid}"));
    }
}
