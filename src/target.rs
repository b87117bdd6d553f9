//! The watched target process: chosen once by pid, held through a pidfd, so
//! its exit is seen at once and a recycled pid is never signalled.
//!
//! A pidfd works for any process, not only heat's children: it becomes readable
//! when the process exits (a zombie counts as exited), and signals sent through
//! it reach exactly the process it was opened for.

use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::signal::Signal;

/// Longest first line of a pidfile worth reading; a pid needs 7 digits.
const PIDFILE_LINE_MAX: u64 = 128;

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
        check_pid(pid)?;
        let fd = pidfd_open(pid)?;
        // SAFETY: `fd` is an open pidfd owned by the `AsyncFd` from here on, and
        // an `OwnedFd` always returns that same fd.
        let pidfd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(Target { pid, pidfd })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `sig` through the pidfd. The error is the system's (`ESRCH`: the
    /// process has exited); the caller names the signal and the target.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        // SAFETY: the pidfd is open for as long as `self`; a null siginfo makes
        // the kernel fill it in as kill() does; no flags are defined for this use.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                sig.number(),
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
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
        let mut pfd = libc::pollfd { fd: self.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        loop {
            // SAFETY: `pfd` is one valid pollfd for the call; timeout 0 never blocks.
            let n = unsafe { libc::poll(&mut pfd, 1, 0) };
            if n >= 0 {
                // A pidfd polls readable once its process has exited.
                return n == 0;
            }
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return true;
            }
        }
    }

    /// The real uid the process runs as, read while it is known to be this
    /// process (it is still alive afterwards, so its pid was not reused).
    pub fn uid(&self) -> io::Result<u32> {
        let uid = uid_of(self.pid)?;
        if !self.alive() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "the process has exited"));
        }
        Ok(uid)
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

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; the
    // pid was checked to fit in pid_t.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        let why = match e.raw_os_error() {
            Some(libc::ESRCH) => return Err(no_process()),
            Some(libc::EINVAL) => "not a process (a thread id?): give the process's pid".into(),
            Some(libc::ENOSYS) => {
                "cannot watch it: heat needs pidfd_open (Linux 5.3 or newer)".into()
            }
            _ => format!("cannot watch it: {e}"),
        };
        return Err(io::Error::new(e.kind(), why));
    }
    // SAFETY: the syscall returned a new fd (close-on-exec, as pidfds always are)
    // that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Callers name the pid; this says what is wrong with it.
fn no_process() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such process: is the target running?")
}

/// The pid a pidfile names (its first line).
pub fn read_pidfile(path: &Path) -> io::Result<u32> {
    let cannot = |e: io::Error| io::Error::new(e.kind(), format!("cannot read it: {e}"));
    // Non-blocking, so that a FIFO at the path cannot hang heat.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "is not a regular file".to_string(),
        ));
    }
    let mut line = Vec::new();
    BufReader::new(file.take(PIDFILE_LINE_MAX)).read_until(b'\n', &mut line).map_err(cannot)?;
    parse_pidfile(&line)
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
            let shown: String = text.chars().take(40).collect();
            return bad(format!("first line '{shown}' is not a pid"));
        }
    };
    Ok(pid)
}

/// The real uid of process `pid`, from `/proc/PID/status`.
pub fn uid_of(pid: u32) -> io::Result<u32> {
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
    parse_uid(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot read the owner of pid {pid}: no Uid line in /proc/{pid}/status"),
        )
    })
}

/// The real uid: the first number of the `Uid:` line.
fn parse_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let target = Target::open(pid).unwrap();
        assert!(!target.alive());
        assert_exits(&target).await;
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
        assert_eq!(target.0.uid().unwrap(), nix::unistd::getuid().as_raw());
        target.0.signal(Signal::TERM).unwrap();
        assert_exits(&target.0).await;
        let err = target.0.uid().expect_err("uid of an exited target");
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
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
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t5\t5\t5\t5\n";
        assert_eq!(parse_uid(status), Some(1000));
        assert_eq!(parse_uid("Name:\tx\n"), None);
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
