//! Starting a child through glibc's `posix_spawn` (a vfork: no copy of heat's
//! memory) with everything prepared once per probe: argv, envp and the working
//! directory as C strings, so a check costs no allocation and no environment
//! merge. The child gets its own process group, stdin from /dev/null, stdout
//! and stderr on the given pipe, an empty signal mask and default dispositions
//! (heat ignores SIGPIPE; its checks must not).

use std::ffi::{CStr, CString, OsStr, OsString, c_char};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// An environment as `K=V` C strings, shared by every probe.
#[derive(Debug, Default)]
pub struct Env(Vec<CString>);

impl Env {
    /// Variables whose name or value holds a NUL byte cannot be passed and are left out.
    pub fn new<K: AsRef<OsStr>, V: AsRef<OsStr>>(vars: impl IntoIterator<Item = (K, V)>) -> Env {
        Env(vars.into_iter().filter_map(|(k, v)| entry(k.as_ref(), v.as_ref())).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn entry(k: &OsStr, v: &OsStr) -> Option<CString> {
    let mut bytes = Vec::with_capacity(k.len() + v.len() + 1);
    bytes.extend_from_slice(k.as_bytes());
    bytes.push(b'=');
    bytes.extend_from_slice(v.as_bytes());
    CString::new(bytes).ok()
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{s:?} holds a NUL byte")))
}

/// One program, ready to be started any number of times.
#[derive(Debug)]
pub struct Prepared {
    program: CString,
    argv: Argv,
    env: Arc<Env>,
    extra: Vec<CString>,
    cwd: Option<CString>,
}

/// C strings and the NULL-terminated pointer array into them.
#[derive(Debug)]
struct Argv {
    _strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl Argv {
    fn new(strings: Vec<CString>) -> Argv {
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Argv { _strings: strings, ptrs }
    }
}

impl Prepared {
    pub fn new(
        program: &Path,
        args: &[OsString],
        env: Arc<Env>,
        extra: &[(OsString, OsString)],
        cwd: Option<&Path>,
    ) -> io::Result<Prepared> {
        let program_c = c_string(program.as_os_str())?;
        let mut strings = vec![program_c.clone()];
        for a in args {
            strings.push(c_string(a)?);
        }
        let extra: Vec<CString> = extra.iter().filter_map(|(k, v)| entry(k, v)).collect();
        let cwd = cwd.map(|d| c_string(d.as_os_str())).transpose()?;
        Ok(Prepared { program: program_c, argv: Argv::new(strings), env, extra, cwd })
    }

    /// Starts the program with stdout and stderr on `out`; returns its pid.
    /// ENOEXEC (no `#!`) is retried with /bin/sh.
    pub fn spawn(&self, out: BorrowedFd<'_>) -> io::Result<u32> {
        match self.spawn_with(&self.program, &self.argv.ptrs, out) {
            Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => {
                // `/bin/sh program args…`, as a shell runs a script without `#!`.
                let mut sh = vec![c"/bin/sh".as_ptr()];
                sh.extend_from_slice(&self.argv.ptrs);
                self.spawn_with(c"/bin/sh", &sh, out)
            }
            other => other,
        }
    }

    fn spawn_with(
        &self,
        program: &CStr,
        argv: &[*const c_char],
        out: BorrowedFd<'_>,
    ) -> io::Result<u32> {
        let null = dev_null()?;
        let actions = FileActions::new()?;
        actions.dup2(null.as_raw_fd(), 0)?;
        actions.dup2(out.as_raw_fd(), 1)?;
        actions.dup2(out.as_raw_fd(), 2)?;
        if let Some(cwd) = &self.cwd {
            // SAFETY: the actions were initialised; cwd is a valid C string that
            // glibc copies.
            check(unsafe {
                libc::posix_spawn_file_actions_addchdir_np(actions.as_ptr(), cwd.as_ptr())
            })?;
        }
        let attr = Attr::new()?;
        // envp is assembled per spawn in a buffer the thread reuses: a probe
        // keeps no pointer array of its own.
        thread_local! {
            static ENVP: std::cell::RefCell<Vec<*const c_char>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        ENVP.with_borrow_mut(|envp| {
            envp.clear();
            envp.extend(self.env.0.iter().chain(&self.extra).map(|s| s.as_ptr()));
            envp.push(std::ptr::null());
            self.posix_spawn(program, argv, envp, &actions, &attr)
        })
    }

    fn posix_spawn(
        &self,
        program: &CStr,
        argv: &[*const c_char],
        envp: &[*const c_char],
        actions: &FileActions,
        attr: &Attr,
    ) -> io::Result<u32> {
        let mut pid: libc::pid_t = 0;
        // SAFETY: every pointer is valid for the call: argv and envp are
        // NULL-terminated arrays of pointers into C strings that `self` (or a
        // 'static literal) owns; the actions and attributes are initialised
        // and outlive the call.
        check(unsafe {
            libc::posix_spawn(
                &mut pid,
                program.as_ptr(),
                actions.as_ptr(),
                attr.as_ptr(),
                argv.as_ptr() as *const *mut c_char,
                envp.as_ptr() as *const *mut c_char,
            )
        })?;
        Ok(pid as u32)
    }
}

/// posix_spawn reports errors as its return value.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
}

/// /dev/null, opened once (close-on-exec; the child gets a dup on fd 0).
fn dev_null() -> io::Result<BorrowedFd<'static>> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if NULL.get().is_none() {
        let _ = NULL.set(std::fs::File::open("/dev/null")?.into());
    }
    Ok(NULL.get().expect("set above").as_fd())
}

struct FileActions(MaybeUninit<libc::posix_spawn_file_actions_t>);

impl FileActions {
    fn new() -> io::Result<FileActions> {
        let mut a = MaybeUninit::uninit();
        // SAFETY: init writes a valid value into the uninitialised storage.
        check(unsafe { libc::posix_spawn_file_actions_init(a.as_mut_ptr()) })?;
        Ok(FileActions(a))
    }

    fn as_ptr(&self) -> *mut libc::posix_spawn_file_actions_t {
        self.0.as_ptr() as *mut _
    }

    fn dup2(&self, fd: libc::c_int, to: libc::c_int) -> io::Result<()> {
        // SAFETY: the actions were initialised in `new`.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(self.as_ptr(), fd, to) })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(self.as_ptr()) };
    }
}

struct Attr(MaybeUninit<libc::posix_spawnattr_t>);

impl Attr {
    /// Own process group; empty signal mask; every signal at its default.
    fn new() -> io::Result<Attr> {
        let mut a = MaybeUninit::uninit();
        // SAFETY: init writes a valid value into the uninitialised storage.
        check(unsafe { libc::posix_spawnattr_init(a.as_mut_ptr()) })?;
        let attr = Attr(a);
        let p = attr.as_ptr();
        let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: the sets are initialised by sigemptyset/sigfillset before
        // use; the attributes were initialised above.
        unsafe {
            libc::sigemptyset(empty.as_mut_ptr());
            libc::sigfillset(all.as_mut_ptr());
            check(libc::posix_spawnattr_setpgroup(p, 0))?;
            check(libc::posix_spawnattr_setsigmask(p, empty.as_ptr()))?;
            check(libc::posix_spawnattr_setsigdefault(p, all.as_ptr()))?;
            let flags = libc::POSIX_SPAWN_SETPGROUP
                | libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF;
            check(libc::posix_spawnattr_setflags(p, flags as libc::c_short))?;
        }
        Ok(attr)
    }

    fn as_ptr(&self) -> *mut libc::posix_spawnattr_t {
        self.0.as_ptr() as *mut _
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawnattr_destroy(self.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const PATH: &[(&str, &str)] = &[("PATH", "/usr/bin:/bin")];

    /// Runs `sh -c script` and returns what it printed.
    fn output(script: &str, env: &[(&str, &str)], cwd: Option<&Path>) -> String {
        run("/bin/sh", &["-c", script], env, cwd)
    }

    /// Runs `program args` and returns what it printed.
    fn run(program: &str, args: &[&str], env: &[(&str, &str)], cwd: Option<&Path>) -> String {
        let env = Arc::new(Env::new(env.iter().copied()));
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let p = Prepared::new(Path::new(program), &args, env, &[], cwd).unwrap();
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let pid = p.spawn(write.as_fd()).unwrap();
        drop(write);
        let mut text = String::new();
        std::fs::File::from(read).read_to_string(&mut text).unwrap();
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        let reaped = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        assert_eq!(reaped.unwrap().map(|(p, _)| p), Some(pid));
        text
    }

    #[test]
    fn the_child_has_its_own_group_and_no_stdin() {
        let text = output("ps -o pgid= -p $$ | tr -d ' '; echo $$; cat; echo end", PATH, None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], lines[1], "process group = own pid: {text}");
        assert_eq!(lines[2], "end", "stdin is empty: {text}");
    }

    #[test]
    fn the_child_starts_with_no_blocked_and_no_ignored_signals() {
        // The program itself reads its masks: a shell in between would show its own.
        let text = run("/bin/grep", &["-E", "^Sig(Blk|Ign)", "/proc/self/status"], PATH, None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "SigBlk:\t0000000000000000", "{text}");
        // glibc keeps its own two real-time signals (32, 33) as they are.
        let ignored = u64::from_str_radix(lines[1].trim_start_matches("SigIgn:\t"), 16).unwrap();
        assert_eq!(ignored & !0x1_8000_0000, 0, "nothing heat ignores (SIGPIPE) is: {text}");
    }

    #[test]
    fn env_and_cwd_are_the_prepared_ones() {
        let text = output("env; pwd", &[("A", "1"), ("B", "two words")], Some(Path::new("/tmp")));
        assert_eq!(text, "A=1\nB=two words\nPWD=/tmp\n/tmp\n");
    }

    #[test]
    fn nul_bytes_are_refused_when_prepared() {
        let env = Arc::new(Env::default());
        let err =
            Prepared::new(Path::new("/bin/echo"), &["a\0b".into()], env, &[], None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
