//! Starting a child: heat's own spawn, on `clone3`, with everything prepared
//! once per probe (argv, envp and the working directory as C strings), so a
//! check costs no allocation and no environment merge.
//!
//! Why not glibc's `posix_spawn`: it cannot start a child in a cgroup (glibc
//! 2.36 has no `posix_spawnattr_setcgroup_np`) nor as another user, and
//! `std::process::Command` falls back to fork+exec for a user. So heat
//! clones itself with `CLONE_VM | CLONE_VFORK | CLONE_PIDFD` (and
//! `CLONE_INTO_CGROUP` when given a cgroup): no copy of heat's memory, the
//! pidfd comes with the child, and heat's thread sleeps until the child has
//! exec'd or died. The child runs on a stack of its own, mapped once per
//! thread (one suffices: the vfork suspends the only thread that uses it),
//! entered through a few lines of assembly, since a call that returns on
//! another stack cannot be written in Rust. Where that assembly is not
//! written (any architecture but x86-64), the same child code runs after a
//! clone3 *without* `CLONE_VM`: fork semantics, a copy of heat's memory,
//! slower but the same behaviour.
//!
//! Between the clone and the exec the child shares heat's memory: it may
//! only make raw system calls (no lock, no allocation, no panic, no glibc
//! wrapper that talks to other threads — glibc's setuid broadcasts to every
//! thread). In this order it:
//! 1. makes its own process group;
//! 2. sets every signal but KILL and STOP to its default (heat ignores
//!    SIGPIPE; its checks must not; and no handler of heat's may run in it);
//! 3. takes /dev/null as stdin, the output pipe as stdout and stderr;
//! 4. closes every other fd (`close_range`; on kernels without it, the
//!    close-on-exec flag that every fd of heat's carries does it at exec);
//! 5. changes to the working directory, if one is given;
//! 6. takes the credentials, if given: groups, then gid, then uid;
//! 7. unblocks every signal (heat blocks them all around the clone);
//! 8. execs the program, and `/bin/sh program args…` on ENOEXEC (a script
//!    without `#!`), as a shell does.
//!
//! A failed step writes the step and errno into a slot heat reads once the
//! clone returns, and exits 127 (ENOENT, ENOTDIR) or 126, as a shell does.
//! heat then reaps the child and returns the error (see [`SpawnError`]).

use std::ffi::{CString, OsStr, OsString, c_char, c_int, c_long, c_void};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
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

/// Whom the child runs as, resolved by the caller before the spawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    /// The supplementary groups (all of them: the child gets exactly these).
    pub groups: Vec<u32>,
}

/// Where and as whom one spawn runs; the default is heat's own cgroup and user.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// A cgroup v2 directory (an `O_DIRECTORY` or `O_PATH` fd): the child starts in it.
    pub cgroup: Option<BorrowedFd<'a>>,
    pub creds: Option<&'a Creds>,
}

/// A started child. Its pid is also its process group id.
#[derive(Debug)]
pub struct Child {
    pub pid: u32,
    /// Close-on-exec, from the clone itself: no pid-reuse race, no `pidfd_open`.
    pub pidfd: OwnedFd,
}

/// One program, ready to be started any number of times.
///
/// Its strings are kept back to back in one buffer and its pointers in one
/// array (two allocations a probe rather than one per string: 10,000 probes
/// feel each allocation's overhead). The buffer's heap never moves, so the
/// pointers into it stay valid wherever the `Prepared` goes.
#[derive(Debug)]
pub struct Prepared {
    /// NUL-terminated: the program, its arguments, the extra environment
    /// entries, the working directory.
    _strings: Box<[u8]>,
    /// `/bin/sh`, the program, its arguments, NULL, then the extra entries:
    /// `ptrs[1..]` up to the NULL is the program's argv, from 0 the argv of
    /// the ENOEXEC retry (`/bin/sh program args…`).
    ptrs: Box<[*const c_char]>,
    /// Where the extra entries start in `ptrs`.
    extra_at: usize,
    /// The entries of `env` an extra one replaces, by index: left out, so the
    /// child sees the probe's value alone. Empty (no allocation) for most
    /// probes; the shared environment is never copied per probe.
    hidden: Box<[u32]>,
    cwd: *const c_char,
    env: Arc<Env>,
    creds: Option<Creds>,
}

const SH: &std::ffi::CStr = c"/bin/sh";

impl Prepared {
    pub fn new(
        program: &Path,
        args: &[OsString],
        env: Arc<Env>,
        extra: &[(OsString, OsString)],
        cwd: Option<&Path>,
    ) -> io::Result<Prepared> {
        let mut strings = Vec::new();
        let mut starts = Vec::with_capacity(2 + args.len() + extra.len());
        // Adds one string made of `parts`, or nothing if one holds a NUL.
        let mut push = |parts: &[&OsStr]| -> io::Result<()> {
            if let Some(part) = parts.iter().find(|p| p.as_bytes().contains(&0)) {
                let e = format!("{part:?} holds a NUL byte");
                return Err(io::Error::new(io::ErrorKind::InvalidInput, e));
            }
            starts.push(strings.len());
            for part in parts {
                strings.extend_from_slice(part.as_bytes());
            }
            strings.push(0);
            Ok(())
        };
        push(&[program.as_os_str()])?;
        for a in args {
            push(&[a])?;
        }
        let mut kept = 0;
        for (k, v) in extra {
            // An entry with a NUL byte cannot be passed; it is left out.
            if push(&[k, OsStr::new("="), v]).is_ok() {
                kept += 1;
            }
        }
        if let Some(d) = cwd {
            push(&[d.as_os_str()])?;
        }
        let strings: Box<[u8]> = strings.into_boxed_slice();
        let base = strings.as_ptr().cast::<c_char>();
        // SAFETY: every start is an offset inside `strings`.
        let at = |i: usize| unsafe { base.add(starts[i]) };
        let argc = 1 + args.len();
        let mut ptrs = Vec::with_capacity(argc + kept + 2);
        ptrs.push(SH.as_ptr());
        ptrs.extend((0..argc).map(at));
        ptrs.push(std::ptr::null());
        let extra_at = ptrs.len();
        ptrs.extend((argc..argc + kept).map(at));
        let cwd = if cwd.is_some() { at(argc + kept) } else { std::ptr::null() };
        let replaced = |entry: &CString| {
            let key = entry.as_bytes().split(|&b| b == b'=').next().unwrap_or_default();
            extra.iter().any(|(k, _)| k.as_bytes() == key)
        };
        let hidden: Vec<u32> =
            (0..).zip(&env.0).filter(|(_, entry)| replaced(entry)).map(|(i, _)| i).collect();
        Ok(Prepared {
            _strings: strings,
            ptrs: ptrs.into_boxed_slice(),
            extra_at,
            hidden: hidden.into_boxed_slice(),
            cwd,
            env,
            creds: None,
        })
    }

    /// The program, as exec'd (what the tests' scripted children go by).
    #[cfg(test)]
    pub fn program(&self) -> &std::ffi::CStr {
        // SAFETY: ptrs[1] points at the program's NUL-terminated string in
        // `_strings`, which lives as long as `self`.
        unsafe { std::ffi::CStr::from_ptr(self.ptrs[1]) }
    }

    /// The variables given beside the shared environment, `K=V`.
    #[cfg(test)]
    pub fn extra(&self) -> impl Iterator<Item = &std::ffi::CStr> {
        // SAFETY: every pointer from `extra_at` on is a NUL-terminated string
        // in `_strings`, which lives as long as `self`.
        self.ptrs[self.extra_at..].iter().map(|&p| unsafe { std::ffi::CStr::from_ptr(p) })
    }

    /// Every run of this program runs as `creds`.
    pub fn with_creds(mut self, creds: Option<Creds>) -> Prepared {
        self.creds = creds;
        self
    }

    /// The context given with `with_creds`, in heat's own cgroup (each run
    /// passes its own cgroup to `spawn`).
    pub fn context(&self) -> Context<'_> {
        Context { cgroup: None, creds: self.creds.as_ref() }
    }

    /// Starts the program with stdout and stderr on `out`. ENOEXEC (no `#!`)
    /// is retried with /bin/sh. A child that failed before or at its exec
    /// has been reaped when this returns. Errors are [`SpawnError`]s, but for
    /// want of /dev/null or of the thread's child stack.
    pub fn spawn(&self, out: BorrowedFd<'_>, ctx: &Context<'_>) -> io::Result<Child> {
        self.spawn_as(out, ctx, Mode::BEST)
    }

    fn spawn_as(&self, out: BorrowedFd<'_>, ctx: &Context<'_>, mode: Mode) -> io::Result<Child> {
        let null = dev_null()?;
        // envp is assembled per spawn in a buffer the thread reuses: a probe
        // keeps no pointer array of its own.
        thread_local! {
            static ENVP: std::cell::RefCell<Vec<*const c_char>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        ENVP.with_borrow_mut(|envp| {
            envp.clear();
            let shown = (0..).zip(&self.env.0).filter(|(i, _)| !self.hidden.contains(i));
            envp.extend(shown.map(|(_, s)| s.as_ptr()));
            envp.extend_from_slice(&self.ptrs[self.extra_at..]);
            envp.push(std::ptr::null());
            let (uid, gid, groups) = match ctx.creds {
                Some(c) => (c.uid, c.gid, c.groups.as_slice()),
                None => (0, 0, &[][..]),
            };
            let request = Request {
                program: self.ptrs[1],
                argv: self.ptrs[1..].as_ptr(),
                sh_argv: self.ptrs.as_ptr(),
                envp: envp.as_ptr(),
                cwd: self.cwd,
                null: null.as_raw_fd(),
                out: out.as_raw_fd(),
                creds: ctx.creds.is_some(),
                uid,
                gid,
                groups: groups.as_ptr(),
                ngroups: groups.len(),
                slot: std::ptr::null(),
            };
            let started = clone_child(request, ctx.cgroup, mode)?;
            match started {
                Ok(child) => Ok(child),
                Err(failed) => Err(self.explain(failed, ctx)),
            }
        })
    }

    /// The error for a child that failed at `step`, with what it was doing.
    fn explain(&self, failed: Failed, ctx: &Context<'_>) -> io::Error {
        let Failed { pid, step, errno } = failed;
        let what = match step {
            STEP_GROUP => "cannot make a process group".into(),
            STEP_STDIO => "cannot set up stdin, stdout and stderr".into(),
            STEP_CHDIR if !self.cwd.is_null() => {
                // SAFETY: a non-null `cwd` points at a NUL-terminated string
                // in `_strings`, which lives as long as `self`.
                let cwd = unsafe { std::ffi::CStr::from_ptr(self.cwd) };
                format!("cannot change directory to {}", cwd.to_string_lossy())
            }
            STEP_CHDIR => "cannot change directory".into(),
            STEP_GROUPS => match ctx.creds {
                Some(c) => format!("cannot set the supplementary groups to {:?}", c.groups),
                None => "cannot set the supplementary groups".into(),
            },
            STEP_GID => format!("cannot set group id {}", ctx.creds.map_or(0, |c| c.gid)),
            STEP_UID => format!("cannot set user id {}", ctx.creds.map_or(0, |c| c.uid)),
            STEP_MASK => "cannot unblock signals".into(),
            _ => String::new(),
        };
        SpawnError { pid: Some(pid), what, errno }.into_io()
    }
}

/// A start that failed: the clone was refused (`pid` is `None`: no child
/// exists), or the child failed before its program ran or at its exec,
/// exited [`code`](SpawnError::code) and was reaped.
///
/// Its text is the system's for a failed exec or clone (`No such file or
/// directory (os error 2)`), as `posix_spawn` reported them, and names the
/// step otherwise (`cannot set user id 1000: Operation not permitted (os
/// error 1)`).
#[derive(Debug)]
pub struct SpawnError {
    pub pid: Option<u32>,
    what: String,
    pub errno: i32,
}

impl SpawnError {
    /// The exit code a shell would give: the child's own (127 for a missing
    /// file, else 126), or 126 when no child was made.
    pub fn code(&self) -> i32 {
        if self.pid.is_some() { exit_code(self.errno) } else { 126 }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = io::Error::from_raw_os_error(self.errno);
        if self.what.is_empty() { write!(f, "{os}") } else { write!(f, "{}: {os}", self.what) }
    }
}

impl std::error::Error for SpawnError {}

impl SpawnError {
    fn into_io(self) -> io::Error {
        io::Error::new(io::Error::from_raw_os_error(self.errno).kind(), self)
    }

    fn of(e: &io::Error) -> Option<&SpawnError> {
        e.get_ref()?.downcast_ref::<SpawnError>()
    }
}

/// The errno behind a spawn error, whether heat's clone or the child failed.
pub fn errno(e: &io::Error) -> Option<i32> {
    SpawnError::of(e).map(|f| f.errno).or_else(|| e.raw_os_error())
}

/// The exit code a shell would give for a spawn error (see [`SpawnError::code`]).
pub fn error_code(e: &io::Error) -> i32 {
    SpawnError::of(e).map_or(126, SpawnError::code)
}

/// 127 for a program (or directory) that does not exist, 126 for any other
/// failure to start, as a shell reports them.
pub fn exit_code(errno: i32) -> i32 {
    if errno == libc::ENOENT || errno == libc::ENOTDIR { 127 } else { 126 }
}

/// /dev/null, opened once (close-on-exec; the child gets a dup on fd 0).
fn dev_null() -> io::Result<BorrowedFd<'static>> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if NULL.get().is_none() {
        let _ = NULL.set(std::fs::File::open("/dev/null")?.into());
    }
    Ok(NULL.get().expect("set above").as_fd())
}

/// How the child shares heat's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `CLONE_VM` on the thread's child stack: no copy of heat's memory.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Shared,
    /// Fork semantics (no `CLONE_VM`, no stack): a copy of heat's memory.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    Copied,
}

impl Mode {
    #[cfg(target_arch = "x86_64")]
    const BEST: Mode = Mode::Shared;
    #[cfg(not(target_arch = "x86_64"))]
    const BEST: Mode = Mode::Copied;
}

/// Everything the child reads: raw pointers into memory the spawning frame
/// keeps alive (and, with `CLONE_VFORK`, unchanged) until the child has
/// exec'd or exited.
struct Request {
    program: *const c_char,
    argv: *const *const c_char,
    sh_argv: *const *const c_char,
    envp: *const *const c_char,
    /// NULL: stay in heat's directory.
    cwd: *const c_char,
    null: c_int,
    out: c_int,
    creds: bool,
    uid: u32,
    gid: u32,
    groups: *const u32,
    ngroups: usize,
    /// Where a failure is written: memory the child shares with heat in
    /// either mode (see [`Area`]).
    slot: *const Slot,
}

/// What the child writes when a step fails; zero while all goes well.
#[repr(C)]
struct Slot {
    step: AtomicI32,
    errno: AtomicI32,
}

const STEP_GROUP: i32 = 1;
const STEP_STDIO: i32 = 2;
const STEP_CHDIR: i32 = 3;
const STEP_GROUPS: i32 = 4;
const STEP_GID: i32 = 5;
const STEP_UID: i32 = 6;
const STEP_MASK: i32 = 7;
const STEP_EXEC: i32 = 8;

/// A child that failed at `step` with `errno` and has been reaped.
struct Failed {
    pid: u32,
    step: i32,
    errno: i32,
}

/// The kernel's `struct clone_args` (version 2, with `cgroup`: Linux 5.7).
#[repr(C, align(8))]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_VM: u64 = 0x100;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The size of the kernel's signal set (64 signals on every port heat
/// builds on but MIPS).
const SIGSET_SIZE: usize = 8;

/// Clones, lets the child run `child_main`, and returns once it has exec'd
/// (`Ok(Ok)`) or failed and been reaped (`Ok(Err)`). `Err` is heat's own
/// failure: no child exists.
fn clone_child(
    mut request: Request,
    cgroup: Option<BorrowedFd<'_>>,
    mode: Mode,
) -> io::Result<Result<Child, Failed>> {
    AREA.with(|area| {
        let area = area.get_or_try_init()?;
        let slot = area.slot();
        slot.step.store(0, Ordering::Relaxed);
        slot.errno.store(0, Ordering::Relaxed);
        request.slot = slot;

        let mut pidfd: c_int = -1;
        let mut args = CloneArgs {
            flags: CLONE_VFORK | CLONE_PIDFD,
            pidfd: &raw mut pidfd as u64,
            exit_signal: libc::SIGCHLD as u64,
            ..CloneArgs::default()
        };
        if mode == Mode::Shared {
            args.flags |= CLONE_VM;
            (args.stack, args.stack_size) = area.stack();
        }
        if let Some(fd) = cgroup {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = fd.as_raw_fd() as u64;
        }

        // Every signal blocked (glibc's own two included, which
        // pthread_sigmask would leave open), so that no handler of heat's
        // runs in the child before it has reset them all.
        let all: u64 = !0;
        let mut old: u64 = 0;
        // SAFETY: rt_sigprocmask reads and writes the two 8-byte sets, which
        // live on this frame.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK as c_long,
                &raw const all,
                &raw mut old,
                SIGSET_SIZE,
            )
        };
        // SAFETY: `args` is a valid clone_args whose pidfd pointer and
        // (shared mode) stack are live; `request` and every pointer in it
        // stay valid and unchanged while the child runs, because this thread
        // is suspended (CLONE_VFORK) until it has exec'd or exited.
        let ret = unsafe { clone3(&args, &request, mode) };
        // SAFETY: as above; restores the mask this thread had.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK as c_long,
                &raw const old,
                std::ptr::null_mut::<u64>(),
                SIGSET_SIZE,
            )
        };
        let pid = match ret {
            Ok(pid) => pid,
            Err(errno) => {
                let what = match cgroup {
                    Some(_) => "cannot start a process in its cgroup".into(),
                    None => String::new(),
                };
                return Err(SpawnError { pid: None, what, errno }.into_io());
            }
        };
        // SAFETY: the clone succeeded, so the kernel wrote a new fd, ours alone.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        let errno = slot.errno.load(Ordering::Acquire);
        if errno == 0 {
            return Ok(Ok(Child { pid, pidfd }));
        }
        let step = slot.step.load(Ordering::Relaxed);
        // The child is past its last use of heat's memory and exiting: the
        // wait is short. Reaped here, so a failed start leaves no zombie.
        reap(pidfd.as_fd());
        Ok(Err(Failed { pid, step, errno }))
    })
}

fn reap(pidfd: BorrowedFd<'_>) {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    loop {
        match waitid(WaitId::PidFd(pidfd), WaitIdOptions::EXITED) {
            Err(rustix::io::Errno::INTR) => {}
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "reaping a child that failed to start failed");
                return;
            }
        }
    }
}

/// `clone3`, the child entering [`child_main`] on the area's stack (shared
/// mode) or on its copy of this one (copied mode). Returns the child's pid.
///
/// # Safety
/// `args` must be a valid `clone_args` with `CLONE_VFORK`, and with
/// `CLONE_VM` only in shared mode with a stack the child may use alone;
/// `request` must be valid for the child until it execs or exits.
unsafe fn clone3(args: &CloneArgs, request: &Request, mode: Mode) -> Result<u32, i32> {
    let ret: c_long = match mode {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: see the function's contract.
        Mode::Shared => unsafe { clone3_shared(args, request) },
        #[cfg(not(target_arch = "x86_64"))]
        Mode::Shared => -(libc::ENOSYS as c_long),
        Mode::Copied => {
            // SAFETY: a fork: the child has its own copy of this frame and
            // returns here with 0 exactly once.
            let ret = unsafe {
                libc::syscall(libc::SYS_clone3, args as *const CloneArgs, size_of::<CloneArgs>())
            };
            if ret == 0 {
                // SAFETY: in the child, on its copy of heat's memory.
                unsafe { child_main(request) }
            }
            if ret < 0 { -(last_errno() as c_long) } else { ret }
        }
    };
    if ret < 0 { Err(-ret as i32) } else { Ok(ret as u32) }
}

/// The trampoline: the system call, and in the child (it returns 0 there,
/// with the stack pointer at the top of its stack) a call of `child_main`,
/// which never returns. The parent's registers and stack are untouched:
/// `syscall` preserves everything but rax, rcx and r11.
///
/// # Safety
/// As [`clone3`].
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_shared(args: &CloneArgs, request: &Request) -> c_long {
    let ret: c_long;
    // SAFETY: the caller's contract; the child never comes back into this
    // frame (it runs on another stack and ends in exec or exit_group).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            // The child: its stack top is page-aligned, as `call` needs.
            "xor ebp, ebp",
            "mov rdi, rdx",
            "call {entry}",
            "ud2",
            "2:",
            entry = sym child_main,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *const CloneArgs,
            in("rsi") size_of::<CloneArgs>(),
            in("rdx") request as *const Request,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn last_errno() -> i32 {
    // SAFETY: glibc's errno location is always valid for this thread.
    unsafe { *libc::__errno_location() }
}

/// A raw system call's result: the value, or the errno.
fn sys(ret: c_long) -> Result<c_long, i32> {
    if ret < 0 { Err(last_errno()) } else { Ok(ret) }
}

/// The errno of a call that cannot succeed and return (an exec).
fn last_errno_of(ret: c_long) -> i32 {
    match sys(ret) {
        Err(errno) => errno,
        Ok(_) => libc::EINVAL,
    }
}

/// The child, from the clone to the exec. Raw system calls only: it shares
/// heat's memory and thread-local storage, and heat's other threads go on.
///
/// # Safety
/// `request` is valid (see [`Request`]); only the child of a clone3 with
/// `CLONE_VFORK` may run this.
unsafe extern "C" fn child_main(request: *const Request) -> ! {
    // SAFETY: valid for as long as the child runs (the caller's contract).
    let r = unsafe { &*request };
    // SAFETY: each call is a plain system call on values and on memory the
    // request points to; none allocates, locks or signals another thread.
    let failed = unsafe { child_steps(r) };
    let (step, errno) = match failed {
        Err(failure) => failure,
        Ok(never) => match never {},
    };
    // SAFETY: the slot is live shared memory (see `Area`).
    let slot = unsafe { &*r.slot };
    slot.step.store(step, Ordering::Relaxed);
    slot.errno.store(errno, Ordering::Release);
    // SAFETY: ends the child; exit_group never returns.
    unsafe { libc::syscall(libc::SYS_exit_group, exit_code(errno) as c_long) };
    // exit_group does not return; should it, spin rather than run on.
    loop {
        std::hint::spin_loop();
    }
}

/// The steps of the child; returns only on failure, with the step and errno.
///
/// # Safety
/// As [`child_main`].
unsafe fn child_steps(r: &Request) -> Result<std::convert::Infallible, (i32, i32)> {
    use libc::{SYS_close_range, SYS_dup3, SYS_fcntl, SYS_rt_sigaction, SYS_rt_sigprocmask};
    let at = |step: i32| move |errno: i32| (step, errno);
    // SAFETY (all blocks below): raw system calls with valid arguments; see `child_main`.
    unsafe {
        // 1. Its own process group.
        sys(libc::syscall(libc::SYS_setpgid, 0 as c_long, 0 as c_long)).map_err(at(STEP_GROUP))?;

        // 2. Every disposition to its default: setting one already default
        //    costs one call, as reading it first would. Zeroed memory is
        //    SIG_DFL with no flags in every port's kernel sigaction.
        let dfl = [0u64; 8];
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                // EINVAL (a signal the kernel keeps for itself) is the only
                // failure, and leaves nothing to reset.
                libc::syscall(
                    SYS_rt_sigaction,
                    sig as c_long,
                    dfl.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    SIGSET_SIZE,
                );
            }
        }

        // 3. stdin, stdout, stderr. A source below 3 (heat started with a
        //    standard fd closed) is first moved up, out of the way.
        let mut null = r.null;
        let mut out = r.out;
        if null < 3 {
            null =
                sys(libc::syscall(SYS_fcntl, null as c_long, libc::F_DUPFD as c_long, 3 as c_long))
                    .map_err(at(STEP_STDIO))? as c_int;
        }
        if out < 3 {
            out = sys(libc::syscall(SYS_fcntl, out as c_long, libc::F_DUPFD as c_long, 3 as c_long))
                .map_err(at(STEP_STDIO))? as c_int;
        }
        sys(libc::syscall(SYS_dup3, null as c_long, 0 as c_long, 0 as c_long))
            .map_err(at(STEP_STDIO))?;
        sys(libc::syscall(SYS_dup3, out as c_long, 1 as c_long, 0 as c_long))
            .map_err(at(STEP_STDIO))?;
        sys(libc::syscall(SYS_dup3, out as c_long, 2 as c_long, 0 as c_long))
            .map_err(at(STEP_STDIO))?;

        // 4. Nothing else. Before Linux 5.9 this fails, and close-on-exec
        //    (set on every fd heat holds) closes them at the exec instead.
        libc::syscall(SYS_close_range, 3 as c_long, u32::MAX as c_long, 0 as c_long);

        // 5. The working directory.
        if !r.cwd.is_null() {
            sys(libc::syscall(libc::SYS_chdir, r.cwd)).map_err(at(STEP_CHDIR))?;
        }

        // 6. The credentials, uid last: after it, the others may be refused.
        if r.creds {
            sys(libc::syscall(SYS_SETGROUPS, r.ngroups, r.groups)).map_err(at(STEP_GROUPS))?;
            sys(libc::syscall(SYS_SETRESGID, r.gid as c_long, r.gid as c_long, r.gid as c_long))
                .map_err(at(STEP_GID))?;
            sys(libc::syscall(SYS_SETRESUID, r.uid as c_long, r.uid as c_long, r.uid as c_long))
                .map_err(at(STEP_UID))?;
        }

        // 7. No signal blocked: dispositions are all default by now.
        let empty: u64 = 0;
        sys(libc::syscall(
            SYS_rt_sigprocmask,
            libc::SIG_SETMASK as c_long,
            &raw const empty,
            std::ptr::null_mut::<u64>(),
            SIGSET_SIZE,
        ))
        .map_err(at(STEP_MASK))?;

        // 8. The program; a script without `#!` under /bin/sh.
        // An exec that returns has failed: its errno is never 0.
        let e = last_errno_of(libc::syscall(libc::SYS_execve, r.program, r.argv, r.envp));
        if e != libc::ENOEXEC {
            return Err((STEP_EXEC, e));
        }
        let e = last_errno_of(libc::syscall(libc::SYS_execve, SH.as_ptr(), r.sh_argv, r.envp));
        Err((STEP_EXEC, e))
    }
}

// The 32-bit-id calls: on the 32-bit ports the plain ones take 16-bit ids.
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
use libc::{
    SYS_setgroups as SYS_SETGROUPS, SYS_setresgid as SYS_SETRESGID, SYS_setresuid as SYS_SETRESUID,
};
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
use libc::{
    SYS_setgroups32 as SYS_SETGROUPS, SYS_setresgid32 as SYS_SETRESGID,
    SYS_setresuid32 as SYS_SETRESUID,
};

/// The child's stack and the failure slot, mapped once per thread:
/// `[guard page][stack …][slot page]`. The mapping is shared (`MAP_SHARED`),
/// so that the slot reaches heat from a copied child too.
struct Area {
    base: *mut c_void,
    len: usize,
    page: usize,
}

/// Ample for `child_main` (a few hundred bytes of frames, debug builds included).
const STACK_SIZE: usize = 64 * 1024;

thread_local! {
    static AREA: LazyArea = const { LazyArea(std::cell::OnceCell::new()) };
}

struct LazyArea(std::cell::OnceCell<Area>);

impl LazyArea {
    fn get_or_try_init(&self) -> io::Result<&Area> {
        if let Some(area) = self.0.get() {
            return Ok(area);
        }
        let area = Area::new()?;
        Ok(self.0.get_or_init(|| area))
    }
}

impl Area {
    fn new() -> io::Result<Area> {
        let page = rustix::param::page_size();
        let len = page + STACK_SIZE + page;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let area = Area { base, len, page };
        // SAFETY: the first page of the mapping made above.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(area)
    }

    /// The stack's lowest address and size (its top is the slot page: page-aligned).
    fn stack(&self) -> (u64, u64) {
        (self.base as u64 + self.page as u64, STACK_SIZE as u64)
    }

    fn slot(&self) -> &Slot {
        // SAFETY: the slot page is mapped, writable, zero-filled at first and
        // aligned, and lives as long as `self`; Slot is two atomics, valid
        // for any bit pattern.
        unsafe { &*(self.base.cast::<u8>().add(self.page + STACK_SIZE).cast::<Slot>()) }
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once, when the thread
        // ends (no spawn can be running on it then).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    use crate::testutil::TempDir;

    const PATH: &[(&str, &str)] = &[("PATH", "/usr/bin:/bin")];

    /// Both ways of starting a child this machine can run.
    #[cfg(target_arch = "x86_64")]
    const MODES: [Mode; 2] = [Mode::Shared, Mode::Copied];
    #[cfg(not(target_arch = "x86_64"))]
    const MODES: [Mode; 1] = [Mode::Copied];

    fn prepared(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        cwd: Option<&Path>,
    ) -> Prepared {
        let env = Arc::new(Env::new(env.iter().copied()));
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        Prepared::new(Path::new(program), &args, env, &[], cwd).unwrap()
    }

    /// What a run printed and its exit code.
    struct Ran {
        text: String,
        code: i32,
    }

    /// Starts `p`, reads what it prints, reaps it through its pidfd.
    fn start(p: &Prepared, ctx: &Context<'_>, mode: Mode) -> io::Result<Ran> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let child = p.spawn_as(write.as_fd(), ctx, mode)?;
        drop(write);
        let mut text = String::new();
        std::fs::File::from(read).read_to_string(&mut text).unwrap();
        let code = wait(&child);
        Ok(Ran { text, code })
    }

    /// Reaps `child`: its exit code (128 + N for a signal).
    fn wait(child: &Child) -> i32 {
        use rustix::process::{WaitId, WaitIdOptions, waitid};
        let status = waitid(WaitId::PidFd(child.pidfd.as_fd()), WaitIdOptions::EXITED)
            .unwrap()
            .expect("a blocking wait reports");
        let code = status.exit_status().or_else(|| status.terminating_signal().map(|s| 128 + s));
        code.unwrap_or_else(|| panic!("child {} neither exited nor was killed", child.pid))
    }

    /// Runs `program args` in every mode and returns what it printed, the
    /// same in all of them.
    fn run(program: &str, args: &[&str], env: &[(&str, &str)], cwd: Option<&Path>) -> String {
        run_with(&prepared(program, args, env, cwd), &Context::default())
    }

    fn run_with(p: &Prepared, ctx: &Context<'_>) -> String {
        let mut texts = MODES.iter().map(|&mode| {
            let ran = start(p, ctx, mode).unwrap_or_else(|e| panic!("{p:?} in {mode:?}: {e}"));
            (mode, ran.text)
        });
        let (first_mode, first) = texts.next().unwrap();
        for (mode, text) in texts {
            assert_eq!(text, first, "{mode:?} printed otherwise than {first_mode:?} for {p:?}");
        }
        first
    }

    /// Runs `sh -c script` and returns what it printed.
    fn output(script: &str, env: &[(&str, &str)], cwd: Option<&Path>) -> String {
        run("/bin/sh", &["-c", script], env, cwd)
    }

    #[test]
    fn the_child_has_its_own_group_and_no_stdin() {
        let script = "ps -o pgid= -p $$ | tr -d ' '; echo $$; cat; echo end";
        let p = prepared("/bin/sh", &["-c", script], PATH, None);
        for mode in MODES {
            let text = start(&p, &Context::default(), mode).unwrap().text;
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[0], lines[1], "{mode:?}: process group = own pid: {text}");
            assert_eq!(lines[2], "end", "{mode:?}: stdin is empty: {text}");
        }
    }

    #[test]
    fn the_child_starts_with_no_blocked_and_no_ignored_signals() {
        // The program itself reads its masks: a shell in between would show its own.
        let text = run("/bin/grep", &["-E", "^Sig(Blk|Ign)", "/proc/self/status"], PATH, None);
        assert_eq!(text, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
    }

    #[test]
    fn the_child_holds_fds_0_to_2_only() {
        // One fd heat would leak without close_range: not close-on-exec.
        let leaky = rustix::io::dup(dev_null().unwrap()).unwrap();
        let text = output("ls /proc/$$/fd", PATH, None);
        drop(leaky);
        assert_eq!(text, "0\n1\n2\n");
        let text = output("readlink /proc/$$/fd/0", PATH, None);
        assert_eq!(text, "/dev/null\n");
    }

    #[test]
    fn env_and_cwd_are_the_prepared_ones() {
        let text = output("env; pwd", &[("A", "1"), ("B", "two words")], Some(Path::new("/tmp")));
        assert_eq!(text, "A=1\nB=two words\nPWD=/tmp\n/tmp\n");
    }

    #[test]
    fn a_probe_variable_replaces_the_shared_one() {
        let env = Arc::new(Env::new([("HOME", "/root"), ("KEEP", "1"), ("USER", "root")]));
        let extra: Vec<(OsString, OsString)> =
            vec![("USER".into(), "nobody".into()), ("HOME".into(), "/nonexistent".into())];
        // env itself, not through a shell, which would fold duplicates away.
        let p = Prepared::new(Path::new("/usr/bin/env"), &[], env.clone(), &extra, None).unwrap();
        let text = run_with(&p, &Context::default());
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["HOME=/nonexistent", "KEEP=1", "USER=nobody"]);
        // The shared environment itself is untouched, for the other probes.
        assert_eq!(env.len(), 3);
    }

    #[test]
    fn nul_bytes_are_refused_when_prepared() {
        let env = Arc::new(Env::default());
        let err =
            Prepared::new(Path::new("/bin/echo"), &["a\0b".into()], env, &[], None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_script_without_shebang_runs_under_sh() {
        let dir = TempDir::new("spawn");
        let script = dir.file("plain", "echo \"sh runs $0 with $1\"\n", 0o755);
        let p = prepared(script.to_str().unwrap(), &["x"], PATH, None);
        let text = run_with(&p, &Context::default());
        assert_eq!(text, format!("sh runs {} with x\n", script.display()));
    }

    /// The error of a start that failed, after checking the child is reaped.
    fn failure(p: &Prepared, ctx: &Context<'_>, mode: Mode) -> (io::Error, i32, u32) {
        let e = match start(p, ctx, mode) {
            Ok(ran) => panic!("{p:?} started in {mode:?} and exited {}: {}", ran.code, ran.text),
            Err(e) => e,
        };
        let failed = SpawnError::of(&e).unwrap_or_else(|| panic!("not a spawn error: {e:?}"));
        let pid = failed.pid.unwrap_or_else(|| panic!("no child was made: {e}"));
        let code = failed.code();
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "child {pid} was not reaped");
        (e, code, pid)
    }

    #[test]
    fn a_program_that_cannot_start_is_a_child_failure_of_127_or_126() {
        let dir = TempDir::new("spawn");
        let plain = dir.file("plain", "exit 0\n", 0o644);
        let cases = [
            (dir.0.join("missing"), 127, libc::ENOENT, "No such file or directory (os error 2)"),
            (plain.join("sub"), 127, libc::ENOTDIR, "Not a directory (os error 20)"),
            (plain.clone(), 126, libc::EACCES, "Permission denied (os error 13)"),
            (dir.0.clone(), 126, libc::EACCES, "Permission denied (os error 13)"),
        ];
        for (program, code, errno, text) in cases {
            let p = prepared(program.to_str().unwrap(), &[], PATH, None);
            for mode in MODES {
                let (e, got, _) = failure(&p, &Context::default(), mode);
                assert_eq!((got, super::errno(&e)), (code, Some(errno)), "{program:?}: {e}");
                assert_eq!(e.to_string(), text, "{program:?}");
            }
        }
    }

    #[test]
    fn a_directory_that_cannot_be_entered_is_a_child_failure_naming_it() {
        let dir = TempDir::new("spawn");
        let missing = dir.0.join("gone");
        let p = prepared("/bin/true", &[], PATH, Some(&missing));
        for mode in MODES {
            let (e, code, _) = failure(&p, &Context::default(), mode);
            assert_eq!(code, 127);
            assert_eq!(
                e.to_string(),
                format!(
                    "cannot change directory to {}: No such file or directory (os error 2)",
                    missing.display()
                )
            );
        }
    }

    /// Counted by name: /proc/self/fd of this process.
    fn fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn ten_thousand_starts_leave_no_zombie_and_no_fd() {
        let dir = TempDir::new("spawn");
        let ok = prepared("/bin/true", &[], PATH, None);
        let missing = prepared(dir.0.join("missing").to_str().unwrap(), &[], PATH, None);
        // Warm up: /dev/null, the thread's area, the pipe's first use.
        start(&ok, &Context::default(), Mode::BEST).unwrap();
        let before = fds();
        for i in 0..10_000 {
            let mode = MODES[i % MODES.len()];
            if i % 100 == 99 {
                failure(&missing, &Context::default(), mode);
                continue;
            }
            let ran = start(&ok, &Context::default(), mode).unwrap();
            assert_eq!(ran.code, 0);
        }
        let after = fds();
        // Other tests run alongside and hold a few fds of their own; one
        // leaked per start would be thousands.
        assert!(after <= before + 16, "fds: {before} before, {after} after");
    }

    fn is_root() -> bool {
        if rustix::process::geteuid().is_root() {
            return true;
        }
        eprintln!("skipped: changing credentials needs root");
        false
    }

    #[test]
    fn the_child_takes_the_credentials() {
        if !is_root() {
            return;
        }
        let nobody = Creds { uid: 65534, gid: 65534, groups: vec![65534] };
        let ctx = Context { cgroup: None, creds: Some(&nobody) };
        let p = prepared("/bin/sh", &["-c", "id -u; id -g; id -G"], PATH, None);
        assert_eq!(run_with(&p, &ctx), "65534\n65534\n65534\n");

        let several = Creds { uid: 65534, gid: 65534, groups: vec![65534, 4, 0] };
        let ctx = Context { cgroup: None, creds: Some(&several) };
        let p = prepared("/bin/sh", &["-c", "id -G"], PATH, None);
        assert_eq!(run_with(&p, &ctx), "65534 0 4\n");
    }

    #[test]
    fn credentials_are_taken_after_the_directory_and_before_the_exec() {
        if !is_root() {
            return;
        }
        let dir = TempDir::new("spawn");
        let private = dir.0.join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let script = dir.file("root-only", "#!/bin/sh\necho ran\n", 0o700);
        let nobody = Creds { uid: 65534, gid: 65534, groups: vec![] };
        let ctx = Context { cgroup: None, creds: Some(&nobody) };
        // heat enters the directory as root, then the program cannot be run as nobody.
        let p = prepared(script.to_str().unwrap(), &[], PATH, Some(&private));
        for mode in MODES {
            let (e, code, _) = failure(&p, &ctx, mode);
            assert_eq!(code, 126);
            assert_eq!(e.to_string(), "Permission denied (os error 13)");
        }
    }

    #[test]
    fn a_refused_credential_is_a_child_failure_naming_it() {
        if rustix::process::geteuid().is_root() {
            eprintln!("skipped: root may take any credentials");
            return;
        }
        let root = Creds { uid: 0, gid: 0, groups: vec![] };
        let ctx = Context { cgroup: None, creds: Some(&root) };
        let p = prepared("/bin/true", &[], PATH, None);
        let (e, code, _) = failure(&p, &ctx, Mode::BEST);
        assert_eq!(code, 126);
        assert!(e.to_string().starts_with("cannot set the supplementary groups to []"), "{e}");
    }

    /// A cgroup of this test's own under the cgroup v2 mount, removed on drop.
    struct Cgroup {
        path: std::path::PathBuf,
        fd: OwnedFd,
    }

    impl Cgroup {
        fn new(tag: &str) -> Option<Cgroup> {
            if !rustix::process::geteuid().is_root() {
                eprintln!("skipped: creating a cgroup needs root");
                return None;
            }
            let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
            let Some(root) = mounts.lines().find_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_owned())
            }) else {
                eprintln!("skipped: no cgroup v2 mount");
                return None;
            };
            let path = Path::new(&root).join(format!("heat-{tag}-{}", std::process::id()));
            if let Err(e) = std::fs::create_dir(&path) {
                eprintln!("skipped: cannot create {}: {e}", path.display());
                return None;
            }
            let fd = std::fs::File::open(&path).unwrap().into();
            Some(Cgroup { path, fd })
        }

        /// The cgroup as /proc/PID/cgroup names it (`0::/heat-…`).
        fn line(&self) -> String {
            let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
            let base = ours.lines().find_map(|l| l.strip_prefix("0::")).unwrap().to_owned();
            let name = self.path.file_name().unwrap().to_string_lossy();
            format!("0::{}/{name}", base.trim_end_matches('/'))
        }
    }

    impl Drop for Cgroup {
        fn drop(&mut self) {
            if let Err(e) = std::fs::remove_dir(&self.path) {
                eprintln!("cannot remove {}: {e}", self.path.display());
            }
        }
    }

    #[test]
    fn the_child_and_what_it_forks_start_in_the_cgroup() {
        let Some(cgroup) = Cgroup::new("spawn") else { return };
        let ctx = Context { cgroup: Some(cgroup.fd.as_fd()), creds: None };
        // The shell's own line, then its child's (grep forked at once).
        let script = "grep ^0:: /proc/$$/cgroup; grep ^0:: /proc/self/cgroup";
        let p = prepared("/bin/sh", &["-c", script], PATH, None);
        let line = cgroup.line();
        assert_eq!(run_with(&p, &ctx), format!("{line}\n{line}\n"));
        let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        assert!(!ours.contains(&line), "heat itself moved: {ours}");
    }

    #[test]
    fn a_cgroup_that_cannot_be_entered_is_heats_error() {
        let Some(cgroup) = Cgroup::new("spawn-gone") else { return };
        let ctx = Context { cgroup: Some(cgroup.fd.as_fd()), creds: None };
        std::fs::remove_dir(&cgroup.path).unwrap();
        let p = prepared("/bin/true", &[], PATH, None);
        for mode in MODES {
            let e = start(&p, &ctx, mode).map(|r| r.code).unwrap_err();
            // No child: the clone itself was refused.
            let failed = SpawnError::of(&e).unwrap_or_else(|| panic!("not a spawn error: {e:?}"));
            assert_eq!((failed.pid, failed.code()), (None, 126), "{e}");
            assert!(e.to_string().starts_with("cannot start a process in its cgroup: "), "{e}");
        }
        std::fs::create_dir(&cgroup.path).unwrap();
    }

    #[test]
    fn the_prepared_context_is_the_one_given() {
        let p = prepared("/bin/true", &[], PATH, None);
        assert!(p.context().cgroup.is_none() && p.context().creds.is_none());
        let creds = Creds { uid: 1, gid: 2, groups: vec![3] };
        let p = p.with_creds(Some(creds.clone()));
        assert_eq!(p.context().creds, Some(&creds));
        assert!(p.context().cgroup.is_none());
    }
}
