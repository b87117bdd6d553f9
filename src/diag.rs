//! stderr and stdout that never block heat.
//!
//! Either may be a pipe nobody reads (a wedged journal, `heat 2>fifo`, a
//! stalled consumer of the per-check lines): a plain write(2) there blocks once
//! the pipe is full, and with it the probes and the handling of TERM. So lines
//! go to a queue bounded at 64 KiB per stream, written by a thread of its own
//! (started with the stream's first line); past the bound they are dropped and
//! counted, and once writing goes on heat says on stderr how many were lost,
//! as the verbose log does. Write errors (a closed pipe) are dropped: heat must
//! outlive its stdout and stderr.

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Bytes of diagnostics held before new lines are dropped.
const QUEUE_LIMIT: usize = 64 << 10;

struct Queue {
    stream: Stream,
    state: Mutex<State>,
    /// The writer waits on it for lines.
    work: Condvar,
    /// Flushers wait on it for the writer to be done.
    idle: Condvar,
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// Lines dropped and not yet reported.
    lost: u64,
    /// The writer holds bytes it has not written yet.
    busy: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

static STDERR: OnceLock<&'static Queue> = OnceLock::new();
static STDOUT: OnceLock<&'static Queue> = OnceLock::new();

fn queue(stream: Stream) -> &'static Queue {
    let cell = match stream {
        Stream::Stdout => &STDOUT,
        Stream::Stderr => &STDERR,
    };
    cell.get_or_init(|| {
        let q: &'static Queue = Box::leak(Box::new(Queue {
            stream,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            idle: Condvar::new(),
        }));
        let started =
            std::thread::Builder::new().name("heat-output".into()).spawn(move || writer(q));
        if started.is_err() {
            // No thread, no diagnostics: they must never cost heat its probes.
            q.lock().lost = 1;
        }
        q
    })
}

/// Queues `line` for stderr (a newline is added if missing); never blocks.
pub fn line(line: &[u8]) {
    push(Stream::Stderr, line);
}

/// Queues `line` for stdout (a newline is added if missing); never blocks.
pub fn stdout_line(line: &[u8]) {
    push(Stream::Stdout, line);
}

fn push(stream: Stream, line: &[u8]) {
    let q = queue(stream);
    let mut st = q.lock();
    let newline = !line.ends_with(b"\n");
    if st.buf.len() + line.len() + usize::from(newline) > QUEUE_LIMIT {
        st.lost += 1;
        return;
    }
    st.buf.extend_from_slice(line);
    if newline {
        st.buf.push(b'\n');
    }
    drop(st);
    q.work.notify_one();
}

/// Waits until what was queued is written, or `timeout` passes (an exit must
/// not hang on a stderr nobody reads either).
pub fn flush(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for q in [STDOUT.get(), STDERR.get()].into_iter().flatten() {
        flush_queue(q, deadline);
    }
}

fn flush_queue(q: &Queue, deadline: Instant) {
    let mut st = q.lock();
    while !st.buf.is_empty() || st.busy {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        st = q.idle.wait_timeout(st, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
    }
}

fn writer(q: &'static Queue) {
    let mut batch = Vec::new();
    loop {
        let mut st = q.lock();
        while st.buf.is_empty() {
            st.busy = false;
            q.idle.notify_all();
            st = q.work.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        std::mem::swap(&mut batch, &mut st.buf);
        let lost = std::mem::take(&mut st.lost);
        st.busy = true;
        drop(st);
        // A broken stream drops the lines; heat goes on.
        let _ = match q.stream {
            Stream::Stdout => std::io::stdout().lock().write_all(&batch),
            Stream::Stderr => std::io::stderr().lock().write_all(&batch),
        };
        if lost > 0 {
            // Lines are dropped only once the queue is full, after those written.
            let what = match q.stream {
                Stream::Stdout => "lines of stdout",
                Stream::Stderr => "diagnostic lines",
            };
            line(format!("heat: {lost} {what} were lost (it was not being read)").as_bytes());
        }
        batch.clear();
    }
}

/// A `tracing` writer: one event's bytes, queued as one piece when dropped.
#[derive(Default)]
pub struct Writer(Vec<u8>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            line(&self.0);
        }
    }
}
