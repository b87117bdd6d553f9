//! The verbose log: one writer thread, whole entries, appended.
//!
//! Producers never wait for the disk: formatted entries go to a queue bounded
//! at 1 MiB; past that they are dropped and counted. When a write fails the
//! writer says so once on stderr, keeps retrying (reopening the path), and the
//! first entry that gets through is preceded by one saying how many were lost.
//!
//! The writer checks before each write that the path still names the file it
//! holds open: a log whose directory was removed, or that was moved away, is
//! reopened by path (an outage if that fails) instead of being written into a
//! file nobody can see.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bytes of formatted entries held in memory before new ones are dropped,
/// beyond the room kept for one entry of the largest output (see
/// [`Log::fit_output`]).
const QUEUE_BASE: usize = 1 << 20;

/// The most a run's entry can take beyond its output's three bytes per byte
/// (each output byte a line of its own: `> ` and the newline): the header,
/// heat's marker and the dropped-bytes line.
const ENTRY_OVERHEAD: usize = 64 << 10;

/// How often an unwritable log is reopened and retried.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// The entry type, as the log spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Fail,
    Err,
}

impl Level {
    /// `INFO`, `FAIL` or `ERR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Fail => "FAIL",
            Level::Err => "ERR",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats one entry: `UNIX : TYPE : NAME :` then each output line prefixed by
/// `> `; a last line without newline gets one; `dropped > 0` adds
/// `> [heat: N bytes dropped]`.
pub fn format_entry(
    out: &mut Vec<u8>,
    unix: u64,
    level: Level,
    name: &str,
    body: &[u8],
    dropped: u64,
) {
    out.reserve(name.len() + body.len() + 48);
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{unix} : {level} : ");
    push_name(out, name);
    out.extend_from_slice(b" :\n");
    for line in body.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(b"> ");
        out.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    if dropped > 0 {
        let _ = writeln!(out, "> [heat: {dropped} bytes dropped]");
    }
}

/// A line break in a name would split the header line, so it is escaped.
fn push_name(out: &mut Vec<u8>, name: &str) {
    if !name.bytes().any(|b| b == b'\n' || b == b'\r') {
        out.extend_from_slice(name.as_bytes());
        return;
    }
    for b in name.bytes() {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// A handle to the writer; cheap to clone.
#[derive(Clone)]
pub struct Log {
    handle: Arc<Handle>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log").field("path", &self.handle.shared.path).finish()
    }
}

/// Lets the writer end once every `Log` is gone.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_one();
    }
}

/// What producers, flushers and the writer share.
struct Shared {
    path: PathBuf,
    state: Mutex<State>,
    /// The writer waits on it for entries, a reopen or the close.
    work: Condvar,
    /// Flushers wait on it for the writer to be done.
    idle: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct State {
    /// Formatted entries the writer has not taken yet, back to back.
    buf: Vec<u8>,
    /// Where each entry in `buf` ends.
    ends: Vec<usize>,
    /// Queued bytes: `buf` plus what the writer holds unwritten.
    bytes: usize,
    /// Entries dropped that the writer has not taken the count of yet.
    lost: u64,
    /// Entries dropped since the log was opened (the metrics' count).
    lost_total: u64,
    reopen: bool,
    /// A reload named another log path: the writer moves there at the reopen.
    moved_to: Option<PathBuf>,
    closed: bool,
    /// The writer holds something unwritten (entries or a lost-entries note).
    busy: bool,
    /// The writer sleeps until entries come: only then is it worth waking.
    writer_idle: bool,
    /// The last write failed; the writer is retrying.
    outage: bool,
    /// Queued bytes past which entries are dropped.
    limit: usize,
}

impl Log {
    /// Opens (creating with mode 0640) `path` append-only and close-on-exec,
    /// not through a symlink when running as root, and starts the writer.
    pub fn open(path: &Path) -> io::Result<Log> {
        // The caller names the path: it says where the log was to be.
        let file = open_append(path)?;
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            state: Mutex::new(State { limit: QUEUE_BASE, ..State::default() }),
            work: Condvar::new(),
            idle: Condvar::new(),
        });
        let writer = Writer::new(Arc::clone(&shared), file)?;
        std::thread::Builder::new().name("heat-log".into()).spawn(move || writer.run())?;
        Ok(Log { handle: Arc::new(Handle { shared }) })
    }

    /// Queues one entry; never blocks on IO.
    pub fn write(&self, time: SystemTime, level: Level, name: &str, body: &[u8], dropped: u64) {
        let unix = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let shared = &self.handle.shared;
        let mut st = shared.lock();
        // The entry is at least this long: no need to format it to know it will not fit.
        let limit = st.limit;
        if st.bytes + name.len() + body.len() > limit {
            st.lost += 1;
            st.lost_total += 1;
            return;
        }
        let start = st.buf.len();
        format_entry(&mut st.buf, unix, level, name, body, dropped);
        let len = st.buf.len() - start;
        if st.bytes + len > limit {
            st.buf.truncate(start);
            st.lost += 1;
            st.lost_total += 1;
            return;
        }
        st.bytes += len;
        let end = st.buf.len();
        st.ends.push(end);
        let wake = std::mem::take(&mut st.writer_idle);
        drop(st);
        if wake {
            shared.work.notify_one();
        }
    }

    /// Entries dropped since the log was opened, because the queue was full.
    pub fn lost_total(&self) -> u64 {
        self.handle.shared.lock().lost_total
    }

    /// Sizes the queue so that one entry of a run that kept `max_output`
    /// bytes always fits beside 1 MiB of others: a check's big output is never
    /// dropped for want of room while the log is writable.
    pub fn fit_output(&self, max_output: usize) {
        let limit = QUEUE_BASE + 3 * max_output + ENTRY_OVERHEAD;
        self.handle.shared.lock().limit = limit;
    }

    /// Queues one entry of heat's own, stamped now.
    pub fn event(&self, level: Level, name: &str, text: &str) {
        self.write(SystemTime::now(), level, name, text.as_bytes(), 0);
    }

    /// Reopens the path (logrotate's HUP).
    pub fn reopen(&self) {
        let shared = &self.handle.shared;
        shared.lock().reopen = true;
        shared.work.notify_one();
    }

    /// Writes to `path` from now on (a reload changed the log's path). What
    /// was queued before goes to whichever file is open when it is written.
    pub fn reopen_at(&self, path: &Path) {
        let shared = &self.handle.shared;
        let mut st = shared.lock();
        st.reopen = true;
        st.moved_to = Some(path.to_path_buf());
        drop(st);
        shared.work.notify_one();
    }

    /// Waits until everything queued is written, or `timeout` passes.
    pub fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let shared = &self.handle.shared;
        let mut st = shared.lock();
        while st.bytes > 0 || st.lost > 0 || st.busy {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            st = shared
                .idle
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Opens the log for appending: created 0640 if missing, close-on-exec, as
/// root not through a symlink. Non-blocking, so that a FIFO put at the path
/// cannot hang heat in open(); anything but a regular file is refused.
fn open_append(path: &Path) -> io::Result<File> {
    let mut flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
    if nix::unistd::geteuid().is_root() {
        flags |= libc::O_NOFOLLOW;
    }
    let file =
        OpenOptions::new().append(true).create(true).mode(0o640).custom_flags(flags).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

/// An error's text without Rust's `(os error N)` suffix.
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// A file's identity, to see whether the path still names it.
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// The writer thread's own state: the batch it is writing and the open file.
struct Writer {
    shared: Arc<Shared>,
    /// The log's path: `Shared::path` until a reload moves it.
    path: PathBuf,
    file: Option<File>,
    /// Identity of `file`.
    id: (u64, u64),
    /// Entries taken from the queue, back to back; written from `done` on.
    batch: Vec<u8>,
    /// Where each entry in `batch` ends.
    ends: Vec<usize>,
    done: usize,
    /// Queue bytes `batch` holds (lost-entries notes excluded).
    counted: usize,
    /// Entries dropped, not yet reported in the log.
    lost: u64,
    /// The file that holds the head of the entry cut at `done`, if one was cut.
    cut_in: Option<(u64, u64)>,
    /// The last write failed and stderr was told.
    outage: bool,
    retry_at: Option<Instant>,
}

impl Writer {
    fn new(shared: Arc<Shared>, file: File) -> io::Result<Writer> {
        let id = identity(&file.metadata()?);
        Ok(Writer {
            path: shared.path.clone(),
            shared,
            file: Some(file),
            id,
            batch: Vec::new(),
            ends: Vec::new(),
            done: 0,
            counted: 0,
            lost: 0,
            cut_in: None,
            outage: false,
            retry_at: None,
        })
    }

    fn run(mut self) {
        while let Some(reopen) = self.take_work() {
            if reopen {
                self.file = None;
            }
            match self.write_batch() {
                Ok(()) => self.finish_batch(),
                Err(e) => self.fail(&e),
            }
        }
    }

    /// Waits for something to do and takes the queue into the batch. `None`:
    /// every `Log` is gone and nothing more can be written.
    fn take_work(&mut self) -> Option<bool> {
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        loop {
            if st.closed && (self.outage || (st.buf.is_empty() && st.lost == 0 && self.lost == 0)) {
                // Dropping what an outage holds: no one is left to flush it.
                st.busy = false;
                shared.idle.notify_all();
                return None;
            }
            if st.reopen {
                break;
            }
            match self.retry_at {
                Some(at) => {
                    let now = Instant::now();
                    if now >= at {
                        break;
                    }
                    st = shared
                        .work
                        .wait_timeout(st, at - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None if !st.buf.is_empty() || st.lost > 0 => break,
                None => {
                    st.writer_idle = true;
                    st = shared.work.wait(st).unwrap_or_else(PoisonError::into_inner);
                    st.writer_idle = false;
                }
            }
        }
        self.take_queue(&mut st);
        self.lost += std::mem::take(&mut st.lost);
        st.busy = !self.batch.is_empty() || self.lost > 0;
        if let Some(path) = st.moved_to.take() {
            self.path = path;
        }
        Some(std::mem::take(&mut st.reopen))
    }

    fn take_queue(&mut self, st: &mut State) {
        let moved = st.buf.len();
        if self.batch.is_empty() {
            // Swapping keeps both buffers' capacity: no allocation in the steady state.
            std::mem::swap(&mut self.batch, &mut st.buf);
            std::mem::swap(&mut self.ends, &mut st.ends);
            self.done = 0;
        } else {
            let base = self.batch.len();
            self.batch.extend_from_slice(&st.buf);
            self.ends.extend(st.ends.iter().map(|end| end + base));
        }
        st.buf.clear();
        st.ends.clear();
        self.counted += moved;
    }

    /// Writes the batch, preceded by a note of lost entries if there are any.
    fn write_batch(&mut self) -> io::Result<()> {
        self.ensure_open()?;
        if self.cut_in.take().is_some_and(|cut| cut != self.id) {
            // The head of the cut entry is in a file no longer at the path.
            self.done = self.entry_start(self.done);
        }
        if self.lost > 0 {
            self.insert_lost_note();
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("log not open"));
        };
        while self.done < self.batch.len() {
            match file.write(&self.batch[self.done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if self.entry_start(self.done) != self.done {
                        self.cut_in = Some(self.id);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Keeps the open file if the path still names it, else opens the path.
    fn ensure_open(&mut self) -> io::Result<()> {
        if self.file.is_some() {
            match std::fs::metadata(&self.path) {
                Ok(meta) if identity(&meta) == self.id => return Ok(()),
                _ => self.file = None,
            }
        }
        let file = open_append(&self.path)?;
        self.id = identity(&file.metadata()?);
        self.file = Some(file);
        Ok(())
    }

    /// Where the entry holding byte `at` starts (`at` itself on a boundary).
    fn entry_start(&self, at: usize) -> usize {
        match self.ends.binary_search(&at) {
            Ok(_) => at,
            Err(0) => 0,
            Err(i) => self.ends[i - 1],
        }
    }

    /// Puts the note at the first entry boundary not yet written.
    fn insert_lost_note(&mut self) {
        let at = match self.ends.binary_search(&self.done) {
            _ if self.done == 0 => 0,
            Ok(_) => self.done,
            Err(i) => self.ends[i],
        };
        let lost = std::mem::take(&mut self.lost);
        let text = match lost {
            1 => "1 log entry was lost while the log could not be written".to_string(),
            n => format!("{n} log entries were lost while the log could not be written"),
        };
        let mut note = Vec::new();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format_entry(&mut note, now, Level::Err, "heat", text.as_bytes(), 0);
        let len = note.len();
        self.batch.splice(at..at, note);
        let i = self.ends.partition_point(|&end| end <= at);
        for end in &mut self.ends[i..] {
            *end += len;
        }
        self.ends.insert(i, at + len);
    }

    fn finish_batch(&mut self) {
        self.batch.clear();
        self.ends.clear();
        self.done = 0;
        self.outage = false;
        self.retry_at = None;
        let mut st = self.shared.lock();
        st.outage = false;
        st.bytes -= std::mem::take(&mut self.counted);
        st.busy = self.lost > 0;
        if st.bytes == 0 && st.lost == 0 && !st.busy {
            self.shared.idle.notify_all();
        }
    }

    /// Keeps the batch, tells stderr once per outage, and retries soon.
    fn fail(&mut self, e: &io::Error) {
        if !self.outage {
            self.outage = true;
            let path = self.path.display();
            // stderr may be gone (a restarted journal); the log goes on regardless.
            let _ =
                writeln!(io::stderr(), "heat: cannot write log {path}: {}; retrying", describe(e));
        }
        self.file = None;
        self.retry_at = Some(Instant::now() + RETRY_EVERY);
        self.shared.lock().outage = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::TempDir;

    fn entry(unix: u64, level: Level, name: &str, body: &[u8], dropped: u64) -> String {
        let mut out = Vec::new();
        format_entry(&mut out, unix, level, name, body, dropped);
        String::from_utf8(out).unwrap()
    }

    fn read(path: &Path) -> String {
        String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
    }

    /// Polls `path` until `done` holds for its text, or panics with the text.
    fn wait_for(path: &Path, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = read(path);
            if done(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} in {}:\n{text}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Polls until the writer has met a failure and keeps what it holds.
    fn wait_for_outage(log: &Log) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !log.handle.shared.lock().outage {
            assert!(Instant::now() < deadline, "the writer never saw the outage");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn headers(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with("> ")).collect()
    }

    #[test]
    fn formats_header_and_prefixed_lines() {
        assert_eq!(
            entry(1732406400, Level::Info, "./check.sh", b"status ok\n", 0),
            "1732406400 : INFO : ./check.sh :\n> status ok\n"
        );
        assert_eq!(
            entry(1732406430, Level::Fail, "[web] curl -sf x", b"a\nb\n", 0),
            "1732406430 : FAIL : [web] curl -sf x :\n> a\n> b\n"
        );
    }

    #[test]
    fn formats_last_line_without_newline_and_empty_body() {
        assert_eq!(
            entry(5, Level::Err, "heat", b"one\ntwo", 0),
            "5 : ERR : heat :\n> one\n> two\n"
        );
        assert_eq!(entry(5, Level::Info, "x", b"", 0), "5 : INFO : x :\n");
    }

    #[test]
    fn formats_empty_lines_crlf_and_raw_bytes() {
        assert_eq!(entry(1, Level::Info, "x", b"\n\nz\r\n", 0), "1 : INFO : x :\n> \n> \n> z\r\n");
        let mut out = Vec::new();
        format_entry(&mut out, 1, Level::Info, "x", b"\xff\xfe\n", 0);
        assert_eq!(out, b"1 : INFO : x :\n> \xff\xfe\n");
    }

    #[test]
    fn formats_dropped_bytes_note() {
        assert_eq!(
            entry(7, Level::Fail, "c", b"out", 4096),
            "7 : FAIL : c :\n> out\n> [heat: 4096 bytes dropped]\n"
        );
        assert_eq!(
            entry(7, Level::Fail, "c", b"", 1),
            "7 : FAIL : c :\n> [heat: 1 bytes dropped]\n"
        );
    }

    #[test]
    fn escapes_line_breaks_in_names() {
        assert_eq!(entry(1, Level::Info, "a\nb\r", b"", 0), "1 : INFO : a\\nb\\r :\n");
    }

    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }

    #[test]
    fn creates_with_mode_0640() {
        let dir = TempDir::new("log");
        let path = dir.0.join("heat.verbose.log");
        let _log = Log::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o640 & !umask(), "mode {mode:o}");
    }

    #[test]
    fn appends_to_an_existing_file() {
        let dir = TempDir::new("log");
        let path = dir.0.join("log");
        std::fs::write(&path, "old line\n").unwrap();
        let log = Log::open(&path).unwrap();
        log.write(UNIX_EPOCH + Duration::from_secs(9), Level::Info, "x", b"new", 0);
        log.flush(Duration::from_secs(5));
        assert_eq!(read(&path), "old line\n9 : INFO : x :\n> new\n");
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = TempDir::new("log");
        let path = dir.0.join("nope").join("log");
        let err = Log::open(&path).expect_err("open must fail");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    }

    #[test]
    fn symlink_is_refused_only_as_root() {
        let dir = TempDir::new("log");
        let real = dir.0.join("real");
        let link = dir.0.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let opened = Log::open(&link);
        if nix::unistd::geteuid().is_root() {
            let err = opened.expect_err("root opened the log through a symlink");
            assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
            assert!(!real.exists(), "the symlink's target was created");
        } else {
            assert!(opened.is_ok(), "{:?}", opened.err());
        }
    }

    #[test]
    fn reopen_after_rename_loses_nothing() {
        let dir = TempDir::new("log");
        let path = dir.0.join("log");
        let rotated = dir.0.join("log.1");
        let log = Log::open(&path).unwrap();
        log.event(Level::Info, "heat", "A");
        log.flush(Duration::from_secs(5));
        std::fs::rename(&path, &rotated).unwrap();
        log.reopen();
        log.event(Level::Info, "heat", "B");
        log.flush(Duration::from_secs(5));
        let old = read(&rotated);
        let new = read(&path);
        assert!(old.contains("> A\n") && !old.contains("> B\n"), "old file:\n{old}");
        assert!(new.contains("> B\n") && !new.contains("> A\n"), "new file:\n{new}");
    }

    #[test]
    fn reopen_between_bursts_keeps_every_entry_whole() {
        let dir = TempDir::new("log");
        let path = dir.0.join("log");
        let log = Log::open(&path).unwrap();
        for round in 0..5 {
            for i in 0..50 {
                log.event(Level::Info, "heat", &format!("{round}-{i}\nsecond line"));
            }
            // The writer may not have recreated the file since the last round.
            let _ = std::fs::rename(&path, dir.0.join(format!("log.{round}")));
            log.reopen();
        }
        log.flush(Duration::from_secs(5));
        let mut all = String::new();
        for file in std::fs::read_dir(&dir.0).unwrap() {
            all += &read(&file.unwrap().path());
        }
        assert_eq!(headers(&all).len(), 250, "{all}");
        for round in 0..5 {
            for i in 0..50 {
                let whole = format!("> {round}-{i}\n> second line\n");
                assert!(all.contains(&whole), "{round}-{i} missing:\n{all}");
            }
        }
    }

    #[test]
    fn concurrent_writers_never_interleave() {
        let dir = TempDir::new("log");
        let path = dir.0.join("log");
        let log = Log::open(&path).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let body = format!("t{t} {i} a\nt{t} {i} b\nt{t} {i} c");
                        log.write(
                            SystemTime::now(),
                            Level::Fail,
                            &format!("t{t}"),
                            body.as_bytes(),
                            0,
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        log.flush(Duration::from_secs(5));
        let text = read(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 200 * 4 * 4, "{text}");
        for chunk in lines.chunks(4) {
            let name = chunk[0].split(" : ").nth(2).unwrap().trim_end_matches(" :");
            let i = chunk[1].split(' ').nth(2).unwrap();
            assert_eq!(chunk[1], format!("> {name} {i} a"));
            assert_eq!(chunk[2], format!("> {name} {i} b"));
            assert_eq!(chunk[3], format!("> {name} {i} c"));
        }
    }

    #[test]
    fn outage_keeps_entries_until_the_directory_returns() {
        let dir = TempDir::new("log");
        let logdir = dir.0.join("logs");
        std::fs::create_dir(&logdir).unwrap();
        let path = logdir.join("log");
        let log = Log::open(&path).unwrap();
        log.event(Level::Info, "heat", "before");
        log.flush(Duration::from_secs(5));
        std::fs::remove_dir_all(&logdir).unwrap();
        for i in 0..3 {
            log.event(Level::Info, "heat", &format!("during {i}"));
        }
        wait_for_outage(&log);
        assert!(!path.exists());
        std::fs::create_dir(&logdir).unwrap();
        let text =
            wait_for(&path, "the entries queued during the outage", |t| headers(t).len() == 3);
        assert_eq!(text.lines().filter(|l| l.starts_with("> during ")).count(), 3, "{text}");
        assert!(!text.contains("lost"), "{text}");
        assert!(!text.contains("before"), "{text}");
    }

    #[test]
    fn overflow_is_counted_and_reported_first() {
        let dir = TempDir::new("log");
        let logdir = dir.0.join("logs");
        std::fs::create_dir(&logdir).unwrap();
        let path = logdir.join("log");
        let log = Log::open(&path).unwrap();
        std::fs::remove_dir_all(&logdir).unwrap();
        log.event(Level::Info, "heat", "first");
        wait_for_outage(&log);
        // 100 KiB bodies: ten fit in 1 MiB beside "first", the other five are dropped.
        let body = vec![b'x'; 100_000];
        for i in 0..15 {
            log.write(SystemTime::now(), Level::Info, &format!("e{i}"), &body, 0);
        }
        std::fs::create_dir(&logdir).unwrap();
        let text = wait_for(&path, "the kept entries", |t| headers(t).len() == 12);
        let heads = headers(&text);
        assert!(heads[0].ends_with(" : ERR : heat :"), "{}", heads[0]);
        let note = text.lines().nth(1).unwrap();
        assert_eq!(note, "> 5 log entries were lost while the log could not be written");
        assert_eq!(text.lines().nth(3), Some("> first"));
        for (i, head) in heads[2..].iter().enumerate() {
            assert!(head.ends_with(&format!(" : INFO : e{i} :")), "{head}");
        }
        log.flush(Duration::from_secs(5));
        // Once reported, the count starts again from zero.
        log.event(Level::Info, "heat", "after");
        log.flush(Duration::from_secs(5));
        assert_eq!(read(&path).matches("were lost").count(), 1);
    }

    #[test]
    fn one_entry_of_the_largest_output_always_fits() {
        let dir = TempDir::new("log");
        let logdir = dir.0.join("logs");
        std::fs::create_dir(&logdir).unwrap();
        let path = logdir.join("log");
        let log = Log::open(&path).unwrap();
        let max = crate::config::MAX_OUTPUT;
        log.fit_output(max);
        // An outage holds everything in the queue: 1 MiB of others, then the big one.
        std::fs::remove_dir_all(&logdir).unwrap();
        log.event(Level::Info, "heat", "first");
        wait_for_outage(&log);
        for i in 0..10 {
            log.write(SystemTime::now(), Level::Info, &format!("small{i}"), &[b'y'; 100_000], 0);
        }
        // The worst case: every byte a line of its own, so three bytes each.
        let body = vec![b'\n'; max];
        log.write(SystemTime::now(), Level::Info, "big", &body, 0);
        std::fs::create_dir(&logdir).unwrap();
        log.flush(Duration::from_secs(20));
        let text = read(&path);
        assert!(!text.contains("lost"), "an entry was dropped");
        assert_eq!(text.lines().filter(|l| *l == "> ").count(), max, "the big entry is whole");
    }

    #[test]
    fn a_fifo_at_the_path_never_blocks_the_writer() {
        let dir = TempDir::new("log");
        let fifo = dir.0.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let err = open_append(&fifo).expect_err("a FIFO was opened as the log");
        assert!(
            err.raw_os_error() == Some(libc::ENXIO) || err.kind() == io::ErrorKind::InvalidInput,
            "{err}"
        );
        // With a reader on the FIFO the open succeeds, and is refused after.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let err = open_append(&fifo).expect_err("a FIFO with a reader was opened as the log");
        assert_eq!(err.to_string(), "not a regular file");
        drop(reader);
        // A running log moved to a FIFO keeps going once moved to a file.
        let good = dir.0.join("good.log");
        let log = Log::open(&dir.0.join("first.log")).unwrap();
        log.reopen_at(&fifo);
        log.event(Level::Info, "heat", "while on the fifo");
        wait_for_outage(&log);
        log.reopen_at(&good);
        let text = wait_for(&good, "the entry queued during the outage", |t| {
            t.contains("> while on the fifo")
        });
        assert!(!text.contains("lost"), "{text}");
    }
}
