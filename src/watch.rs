//! The config file's directory, watched with `notify` so that rename-over
//! writes (editors, Ansible) and symlink swaps (Kubernetes ConfigMaps) are
//! seen as well as in-place writes.
//!
//! The watcher's thread only classifies events and raises flags; the service
//! loop takes them. Nothing queues, so a busy directory costs no memory, and
//! any number of events between two looks is one reload.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// How often a directory that cannot be watched is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The file may have changed: read it again.
const CHANGED: u8 = 1;
/// The watch is gone or unreliable (queue overflow, error, the directory
/// itself removed or moved): add it again.
const LOST: u8 = 2;

/// Flags raised by the watcher's thread.
#[derive(Default)]
struct Seen {
    flags: AtomicU8,
    wake: Notify,
}

impl Seen {
    fn raise(&self, flags: u8) {
        if flags != 0 {
            self.flags.fetch_or(flags, Ordering::AcqRel);
            self.wake.notify_one();
        }
    }
}

pub struct ConfigWatch {
    dir: PathBuf,
    name: OsString,
    seen: Arc<Seen>,
    watcher: Option<RecommendedWatcher>,
    /// The last failure to watch was said (it is said once until it works).
    said: bool,
}

impl ConfigWatch {
    /// Watches the directory of `path`; when that fails, says so and keeps
    /// trying (SIGHUP still reloads meanwhile).
    pub fn new(path: &Path) -> Option<ConfigWatch> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // As notify reports it: events on the directory itself carry this path.
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(dir)
        };
        let name = path.file_name()?.to_os_string();
        let mut watch = ConfigWatch { dir, name, seen: Arc::default(), watcher: None, said: false };
        watch.rewatch();
        Some(watch)
    }

    /// A fresh watcher on the directory (the old one, if any, is dropped).
    /// A new inotify instance rather than a re-added watch: after an
    /// overflow or a replaced directory nothing of the old one is trusted.
    fn rewatch(&mut self) -> bool {
        self.watcher = None;
        let seen = self.seen.clone();
        let (dir, name) = (self.dir.clone(), self.name.clone());
        let handler = move |event: notify::Result<Event>| seen.raise(classify(&event, &dir, &name));
        let made = notify::recommended_watcher(handler)
            .and_then(|mut w| w.watch(&self.dir, RecursiveMode::NonRecursive).map(|()| w));
        match made {
            Ok(w) => {
                if self.said {
                    tracing::warn!("watching {} for changes again", self.dir.display());
                }
                self.watcher = Some(w);
                self.said = false;
                true
            }
            Err(e) => {
                if !self.said {
                    tracing::warn!(
                        "cannot watch {} for changes ({e}); trying again every {}s, reload with SIGHUP",
                        self.dir.display(),
                        RETRY_EVERY.as_secs()
                    );
                    self.said = true;
                }
                false
            }
        }
    }

    /// Waits until the config file may have changed. A lost watch is added
    /// again first; what happened while it was away counts as a change.
    pub async fn changed(&mut self) {
        loop {
            if self.watcher.is_none() {
                tokio::time::sleep(RETRY_EVERY).await;
                if self.rewatch() {
                    return;
                }
                continue;
            }
            self.seen.wake.notified().await;
            let flags = self.seen.flags.swap(0, Ordering::AcqRel);
            if flags & LOST != 0 {
                self.rewatch();
            }
            if flags & (CHANGED | LOST) != 0 {
                return;
            }
        }
    }
}

/// What one event from notify means for the file `name` in `dir`.
fn classify(event: &notify::Result<Event>, dir: &Path, name: &OsStr) -> u8 {
    let event = match event {
        Ok(e) => e,
        Err(_) => return CHANGED | LOST,
    };
    if event.need_rescan() {
        return CHANGED | LOST;
    }
    // The directory itself removed or moved away: its watch is gone.
    let on_dir = event.paths.iter().any(|p| p == dir);
    if on_dir && matches!(event.kind, EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)))
    {
        return CHANGED | LOST;
    }
    // A writer done: closed after writing, or renamed into place. Not a
    // create or a write: a file re-created and still being filled must not
    // be read half way. Metadata: a chmod may make the file acceptable (or
    // not) without a write.
    let done = matches!(
        event.kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
            | EventKind::Modify(ModifyKind::Metadata(_))
    );
    // For a rename the last path is where it went.
    let concerns = event
        .paths
        .last()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == name || n.as_encoded_bytes().starts_with(b".."));
    if done && concerns { CHANGED } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, Flag, MetadataKind, RemoveKind};

    fn ev(kind: EventKind, paths: &[&str]) -> notify::Result<Event> {
        let mut e = Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        Ok(e)
    }

    fn seen(e: notify::Result<Event>) -> u8 {
        classify(&e, Path::new("/etc/heat"), OsStr::new("heat.toml"))
    }

    #[test]
    fn a_finished_write_or_rename_into_place_is_a_change() {
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(seen(ev(close, &["/etc/heat/heat.toml"])), CHANGED);
        let to = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert_eq!(seen(ev(to, &["/etc/heat/heat.toml"])), CHANGED);
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert_eq!(seen(ev(both, &["/etc/heat/.heat.toml.swp", "/etc/heat/heat.toml"])), CHANGED);
        let chmod = EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any));
        assert_eq!(seen(ev(chmod, &["/etc/heat/heat.toml"])), CHANGED);
        // A ConfigMap swaps `..data`.
        assert_eq!(seen(ev(to, &["/etc/heat/..data"])), CHANGED);
    }

    #[test]
    fn a_file_still_being_written_or_another_file_is_not() {
        let file = &["/etc/heat/heat.toml"];
        assert_eq!(seen(ev(EventKind::Create(CreateKind::File), file)), 0);
        assert_eq!(seen(ev(EventKind::Modify(ModifyKind::Data(DataChange::Any)), file)), 0);
        assert_eq!(seen(ev(EventKind::Access(AccessKind::Open(AccessMode::Any)), file)), 0);
        assert_eq!(seen(ev(EventKind::Remove(RemoveKind::File), file)), 0);
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(seen(ev(close, &["/etc/heat/other.toml"])), 0);
        // Renamed away from the name is not a new file at it.
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert_eq!(seen(ev(both, &["/etc/heat/heat.toml", "/etc/heat/heat.toml.bak"])), 0);
    }

    #[test]
    fn an_overflow_an_error_or_a_lost_directory_rereads_and_rewatches() {
        let overflow = Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan));
        assert_eq!(seen(overflow), CHANGED | LOST);
        assert_eq!(seen(Err(notify::Error::generic("boom"))), CHANGED | LOST);
        let gone = EventKind::Remove(RemoveKind::Folder);
        assert_eq!(seen(ev(gone, &["/etc/heat"])), CHANGED | LOST);
        let moved = EventKind::Modify(ModifyKind::Name(RenameMode::From));
        assert_eq!(seen(ev(moved, &["/etc/heat"])), CHANGED | LOST);
    }
}
