//! The one place a probe sleeps: until an absolute deadline, so a schedule
//! computed as t0 + k·interval never drifts.
//!
//! tokio's timer wheel rounds every deadline up to the next millisecond and
//! epoll's timeout rounds again: a tokio sleep wakes about 1.5 ms late p50 on
//! this kind of machine. heat's probes instead share one timerfd armed with
//! `TFD_TIMER_ABSTIME` at the earliest deadline, to the nanosecond: a sleep to
//! an absolute deadline wakes about 0.1 ms late p50, for one fd however many
//! probes there are. Where no such wheel is installed on the thread (unit
//! tests), tokio's clock is used, so paused-time tests work.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

thread_local! {
    static WHEEL: RefCell<Option<Rc<Wheel>>> = const { RefCell::new(None) };
}

/// Installs the precise timer on this thread and spawns its driver on the
/// current `LocalSet`. Without it, `sleep_until` uses tokio's timer.
pub fn install() -> std::io::Result<()> {
    let fd =
        TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)
            .map_err(std::io::Error::from)?;
    // SAFETY: the TimerFd owns its fd, which stays open and the same until it
    // is dropped with the AsyncFd.
    let fd = unsafe { AsyncFd::register(Tfd(fd)) }.map_err(std::io::Error::from)?;
    let wheel = Rc::new(Wheel {
        fd,
        queue: RefCell::new(BinaryHeap::new()),
        slots: RefCell::new(Vec::new()),
        free: RefCell::new(Vec::new()),
        armed: Cell::new(None),
        origin: (Instant::now(), monotonic_now()),
    });
    WHEEL.with(|w| *w.borrow_mut() = Some(wheel.clone()));
    tokio::task::spawn_local(drive(wheel));
    Ok(())
}

/// Resolves at `deadline`.
pub async fn sleep_until(deadline: Instant) {
    Timer::new(deadline).await
}

/// A sleep that moves to another deadline without being made again: a probe
/// keeps one, so each turn of its loop is not a new registration (and a
/// stale entry in the wheel's queue until the old deadline passes).
pub struct Timer(Inner);

enum Inner {
    Wheel(Sleep),
    // Boxed: only tests go without the wheel, and tokio's sleep inline would
    // double the size of every probe's task.
    Tokio(Pin<Box<tokio::time::Sleep>>),
}

impl Timer {
    pub fn new(deadline: Instant) -> Timer {
        match WHEEL.with(|w| w.borrow().clone()) {
            Some(wheel) => Timer(Inner::Wheel(Sleep { wheel, deadline, slot: None })),
            None => Timer(Inner::Tokio(Box::pin(tokio::time::sleep_until(
                tokio::time::Instant::from_std(deadline),
            )))),
        }
    }

    /// When it resolves.
    pub fn deadline(&self) -> Instant {
        match &self.0 {
            Inner::Wheel(sleep) => sleep.deadline,
            Inner::Tokio(sleep) => sleep.deadline().into_std(),
        }
    }

    /// Resolves at `deadline` from now on; the same deadline changes nothing.
    pub fn reset(&mut self, deadline: Instant) {
        match &mut self.0 {
            Inner::Wheel(sleep) if sleep.deadline != deadline => {
                if let Some((slot, _)) = sleep.slot.take() {
                    sleep.wheel.release(slot);
                }
                sleep.deadline = deadline;
            }
            Inner::Wheel(_) => {}
            Inner::Tokio(sleep) => sleep.as_mut().reset(tokio::time::Instant::from_std(deadline)),
        }
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Inner::Wheel(sleep) => Pin::new(sleep).poll(cx),
            Inner::Tokio(sleep) => sleep.as_mut().poll(cx),
        }
    }
}

struct Tfd(TimerFd);

impl AsRawFd for Tfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A waiting sleeper: its waker, and a generation so a reused slot is not
/// woken by a stale queue entry.
struct Slot {
    generation: u64,
    waker: Option<Waker>,
}

struct Wheel {
    fd: AsyncFd<Tfd>,
    /// (deadline, slot, generation), earliest first; stale entries are skipped.
    queue: RefCell<BinaryHeap<Reverse<(Instant, usize, u64)>>>,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
    /// The deadline the timerfd is armed for.
    armed: Cell<Option<Instant>>,
    /// An `Instant` and the CLOCK_MONOTONIC reading of the same moment.
    origin: (Instant, Duration),
}

impl Wheel {
    fn register(&self, deadline: Instant, waker: &Waker) -> (usize, u64) {
        let mut slots = self.slots.borrow_mut();
        let slot = match self.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                slots.push(Slot { generation: 0, waker: None });
                slots.len() - 1
            }
        };
        let s = &mut slots[slot];
        s.generation += 1;
        s.waker = Some(waker.clone());
        let generation = s.generation;
        drop(slots);
        self.queue.borrow_mut().push(Reverse((deadline, slot, generation)));
        if self.armed.get().is_none_or(|a| deadline < a) {
            self.arm(deadline);
        }
        (slot, generation)
    }

    fn release(&self, slot: usize) {
        let mut slots = self.slots.borrow_mut();
        slots[slot].waker = None;
        slots[slot].generation += 1;
        self.free.borrow_mut().push(slot);
    }

    fn arm(&self, deadline: Instant) {
        let exp = Expiration::OneShot(TimeSpec::from_duration(expiry(self.origin, deadline)));
        match self.fd.get_ref().0.set(exp, TimerSetTimeFlags::TFD_TIMER_ABSTIME) {
            Ok(()) => self.armed.set(Some(deadline)),
            Err(e) => tracing::error!("cannot arm the timer: {e}"),
        }
    }

    /// Wakes every sleeper whose deadline has come and arms the next one.
    fn fire(&self, now: Instant) {
        self.armed.set(None);
        loop {
            let next = self.queue.borrow().peek().map(|Reverse(e)| *e);
            let Some((deadline, slot, generation)) = next else {
                return;
            };
            if deadline > now {
                self.arm(deadline);
                return;
            }
            self.queue.borrow_mut().pop();
            let waker = {
                let mut slots = self.slots.borrow_mut();
                let s = &mut slots[slot];
                if s.generation == generation { s.waker.take() } else { None }
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

async fn drive(wheel: Rc<Wheel>) {
    loop {
        let Ok(mut guard) = wheel.fd.readable().await else {
            return;
        };
        // Drain the expiration count; EAGAIN means it was already read.
        let _ = guard.try_io(|fd| match nix::unistd::read(fd.get_ref().0.as_fd(), &mut [0u8; 8]) {
            Ok(_) => Ok(()),
            Err(e) => Err(std::io::Error::from(e)),
        });
        guard.clear_ready();
        wheel.fire(Instant::now());
    }
}

struct Sleep {
    wheel: Rc<Wheel>,
    deadline: Instant,
    slot: Option<(usize, u64)>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some((slot, _)) = self.slot.take() {
                self.wheel.release(slot);
            }
            return Poll::Ready(());
        }
        match self.slot {
            Some((slot, generation)) => {
                let mut slots = self.wheel.slots.borrow_mut();
                let s = &mut slots[slot];
                if s.generation == generation {
                    s.waker = Some(cx.waker().clone());
                }
            }
            None => {
                let deadline = self.deadline;
                self.slot = Some(self.wheel.register(deadline, cx.waker()));
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((slot, _)) = self.slot.take() {
            self.wheel.release(slot);
        }
    }
}

/// The CLOCK_MONOTONIC reading at which `deadline` comes, to the nanosecond:
/// `origin` pairs an `Instant` with the reading of the same moment.
fn expiry(origin: (Instant, Duration), deadline: Instant) -> Duration {
    let at = origin.1 + deadline.saturating_duration_since(origin.0);
    // A zero expiry would disarm the timer; the origin is never at zero.
    at.max(Duration::from_nanos(1))
}

fn monotonic_now() -> Duration {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a fresh current-thread runtime and LocalSet, failing after
    /// 10 s rather than hanging.
    fn local<F: Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let bounded = async {
            tokio::time::timeout(Duration::from_secs(10), f).await.expect("timer test hung")
        };
        tokio::task::LocalSet::new().block_on(&rt, bounded)
    }

    /// Spawns one sleeper per offset from `start`; returns the offsets in the
    /// order they woke, having checked that none woke before its deadline.
    async fn wake_order(start: Instant, offsets: &[Duration]) -> Vec<Duration> {
        let order = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = offsets
            .iter()
            .map(|&off| {
                let order = order.clone();
                tokio::task::spawn_local(async move {
                    let at = start + off;
                    sleep_until(at).await;
                    let woke = Instant::now();
                    order.borrow_mut().push(off);
                    assert!(woke >= at, "woke {:?} early", at - woke);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        order.take()
    }

    #[test]
    fn sleepers_wake_at_their_deadlines_in_order() {
        local(async {
            install().unwrap();
            let ms = Duration::from_millis;
            let order = wake_order(Instant::now(), &[ms(30), ms(10), ms(20)]).await;
            assert_eq!(order, [ms(10), ms(20), ms(30)]);
        });
    }

    #[test]
    fn sleepers_a_fraction_of_a_millisecond_apart_wake_in_order() {
        local(async {
            install().unwrap();
            // Far enough out that every sleeper is registered before the first
            // deadline; spawned out of order, so a timer that lumps them into one
            // millisecond and wakes them by registration (either way round) fails.
            let at = |us| Duration::from_millis(100) + Duration::from_micros(us);
            let order = wake_order(Instant::now(), &[at(500), at(0), at(750), at(250)]).await;
            assert_eq!(order, [at(0), at(250), at(500), at(750)]);
        });
    }

    #[test]
    fn the_timerfd_expiry_keeps_every_nanosecond_of_the_deadline() {
        let t0 = Instant::now();
        let origin = (t0, Duration::from_secs(1000));
        let off = Duration::from_nanos(1_234_567);
        assert_eq!(expiry(origin, t0 + off), Duration::from_secs(1000) + off);
        assert_eq!(expiry(origin, t0 + Duration::from_nanos(1)), Duration::new(1000, 1));
        // A deadline before the origin is due at once, not in the far future.
        assert_eq!(expiry(origin, t0 - Duration::from_millis(3)), Duration::from_secs(1000));
        // Never zero, which would disarm the timerfd instead of firing it.
        assert_eq!(expiry((t0, Duration::ZERO), t0), Duration::from_nanos(1));
    }

    #[test]
    fn a_dropped_sleeper_frees_its_slot_and_others_still_wake() {
        local(async {
            install().unwrap();
            let start = Instant::now();
            let early = start + Duration::from_millis(5);
            let later = start + Duration::from_millis(15);
            // Lose the race to a short sleep: the long one is dropped mid-wait.
            tokio::select! {
                () = sleep_until(start + Duration::from_secs(60)) => panic!("woke a minute early"),
                () = sleep_until(early) => {}
            }
            sleep_until(later).await;
            assert!(Instant::now() >= later);
            let wheel = WHEEL.with(|w| w.borrow().clone()).unwrap();
            let live = wheel.slots.borrow().iter().filter(|s| s.waker.is_some()).count();
            assert_eq!(live, 0, "every slot released");
        });
    }

    #[test]
    fn a_past_deadline_is_ready_at_once() {
        local(async {
            install().unwrap();
            let sleep = std::pin::pin!(sleep_until(Instant::now() - Duration::from_millis(1)));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(sleep.poll(&mut cx).is_ready(), "a past deadline waited");
            let wheel = WHEEL.with(|w| w.borrow().clone()).unwrap();
            assert!(wheel.slots.borrow().is_empty(), "a past deadline took a slot");
        });
    }
}
