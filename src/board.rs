//! What a probe shows heat's control socket: its supervisor publishes a view
//! after every event, and `heat status` reads it without asking the
//! supervisor (a slow client never waits on a probe, nor a probe on it).
//! Kept only while a control socket or the metrics server is on.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::probe::Status;
use crate::supervisor::Asker;

/// Runs whose output `heat status NAME --output` shows.
pub const OUTPUTS_KEPT: usize = 5;

/// One probe's published state.
#[derive(Debug)]
pub struct Board {
    view: RefCell<View>,
    /// Checks finished since the probe started (`heat run` waits for the next).
    pub checks: Cell<u64>,
}

#[derive(Clone, Debug)]
pub struct View {
    pub status: Status,
    /// How long the last check ran.
    pub last_duration: Option<Duration>,
    pub target_pid: Option<u32>,
    pub pause: Option<Box<Pause>>,
    /// The last runs' output, oldest first.
    pub outputs: VecDeque<Output>,
}

/// A maintenance pause: why, since when, until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pause {
    pub reason: String,
    /// Who asked: `uid 0` (peer credentials of the socket).
    pub by: String,
    pub since_unix: u64,
    /// `None`: until resumed.
    pub until: Option<Instant>,
    pub until_unix: Option<u64>,
}

/// A finished run of the check, as `--output` shows it.
#[derive(Clone, Debug)]
pub struct Output {
    pub ended_unix: u64,
    /// `None`: it did not exit (timed out, killed, not started).
    pub code: Option<i32>,
    pub duration: Duration,
    /// What it printed, with heat's marker when it did not simply exit;
    /// bounded by the probe's max_output.
    pub text: String,
}

impl Board {
    pub fn new(status: Status) -> Board {
        Board {
            view: RefCell::new(View {
                status,
                last_duration: None,
                target_pid: None,
                pause: None,
                outputs: VecDeque::new(),
            }),
            checks: Cell::new(0),
        }
    }

    pub fn view(&self) -> std::cell::Ref<'_, View> {
        self.view.borrow()
    }

    pub fn update(&self, f: impl FnOnce(&mut View)) {
        f(&mut self.view.borrow_mut());
    }

    /// Keeps one more run's output, dropping the oldest beyond [`OUTPUTS_KEPT`].
    pub fn keep_output(&self, output: Output) {
        let mut v = self.view.borrow_mut();
        if v.outputs.len() == OUTPUTS_KEPT {
            v.outputs.pop_front();
        } else {
            // Exactly the ring, not the doubling growth's eight.
            let kept = v.outputs.len();
            v.outputs.reserve_exact(OUTPUTS_KEPT - kept);
        }
        v.outputs.push_back(output);
    }
}

/// Every running probe's board and the way to ask its supervisor, by name:
/// what the control socket and the metrics server read.
pub struct Directory {
    pub pid: u32,
    pub started_unix: u64,
    /// Service mode: the heat.toml in force.
    pub config: Option<std::path::PathBuf>,
    probes: RefCell<std::collections::BTreeMap<String, Entry>>,
    /// Service mode: where `heat reload` asks heat's main loop.
    pub reloads: Option<tokio::sync::mpsc::UnboundedSender<crate::control::ReloadAsk>>,
}

#[derive(Clone)]
pub struct Entry {
    pub board: Rc<Board>,
    pub asker: Asker,
}

impl Directory {
    pub fn new(
        config: Option<std::path::PathBuf>,
        reloads: Option<tokio::sync::mpsc::UnboundedSender<crate::control::ReloadAsk>>,
    ) -> Directory {
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Directory {
            pid: std::process::id(),
            started_unix,
            config,
            probes: RefCell::default(),
            reloads,
        }
    }

    /// `name` runs under this supervisor now (replacing one that returned).
    pub fn insert(&self, name: &str, entry: Entry) {
        self.probes.borrow_mut().insert(name.to_string(), entry);
    }

    pub fn remove(&self, name: &str) {
        self.probes.borrow_mut().remove(name);
    }

    pub fn get(&self, name: &str) -> Option<Entry> {
        self.probes.borrow().get(name).cloned()
    }

    /// The probes' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.probes.borrow().keys().cloned().collect()
    }
}
