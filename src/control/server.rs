//! The control socket's server: binds the socket at start (replacing a stale
//! one, refusing a live one), answers each connection's one request, and
//! removes the socket when heat ends. A connection gets at most
//! [`MAX_REQUEST`] bytes and [`CONNECTION_TIME`] of heat's attention; the
//! probes never wait on it.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::{Answer, Ask, Command, Request, VERSION, error_reply, status_document};
use crate::board::Directory;
use crate::text::show_path;

/// The longest request line read.
pub const MAX_REQUEST: usize = 64 * 1024;
/// A connection is closed when its request and reply took this long.
pub const CONNECTION_TIME: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 32;
/// The longest pause asked for: ten years.
const MAX_PAUSE: f64 = 10.0 * 365.0 * 86_400.0;

/// The bound socket; its file goes away with it.
pub struct Socket {
    /// Until [`Socket::listener`] hands it to the runtime: one fd, not a dup.
    listener: Option<std::os::unix::net::UnixListener>,
    path: PathBuf,
    ino: u64,
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Only our own: a heat started after us may have replaced it.
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Socket {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listener for [`serve`], on the runtime; the socket stays here.
    pub fn listener(&mut self) -> io::Result<tokio::net::UnixListener> {
        let l = self.listener.take().ok_or_else(|| io::Error::other("already served"))?;
        tokio::net::UnixListener::from_std(l)
    }
}

/// Binds the control socket at `path`, mode 0660, owned by root and heat's
/// group; its directory is created (0755) if only it is missing. A socket
/// left by a heat that died is replaced; one a live heat answers on is an
/// error, as is any other file there.
pub fn bind(path: &Path) -> Result<Socket, String> {
    let shown = show_path(path);
    let culprit = |what: String| format!("control socket {shown}: {what}");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new().mode(0o755).create(dir).map_err(|e| {
            culprit(format!("cannot create {}: {e} (or set control_socket)", show_path(dir)))
        })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(culprit(
                        "a running heat answers there; stop it, or give this one another control_socket"
                            .to_string(),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %shown, "replacing a stale control socket");
                    std::fs::remove_file(path)
                        .map_err(|e| culprit(format!("cannot remove the stale socket: {e}")))?;
                }
                Err(e) => return Err(culprit(format!("cannot tell whether it is in use: {e}"))),
            }
        }
        Ok(_) => {
            return Err(culprit(
                "exists and is not a socket; remove it or set control_socket elsewhere".to_string(),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(culprit(e.to_string())),
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| culprit(format!("cannot bind: {e}")))?;
    let ino = std::fs::symlink_metadata(path).map(|m| m.ino()).unwrap_or(0);
    let mut socket = Socket { listener: None, path: path.to_path_buf(), ino };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| culprit(format!("cannot set its mode: {e}")))?;
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), Some(nix::unistd::getegid()))
            .map_err(|e| culprit(format!("cannot set its owner: {e}")))?;
    }
    listener.set_nonblocking(true).map_err(|e| culprit(e.to_string()))?;
    socket.listener = Some(listener);
    Ok(socket)
}

/// Answers connections until heat ends (the task is dropped).
pub async fn serve(listener: tokio::net::UnixListener, dir: Rc<Directory>) {
    let open = Rc::new(std::cell::Cell::new(0usize));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if open.get() >= MAX_CONNECTIONS {
            continue;
        }
        open.set(open.get() + 1);
        let (dir, open) = (dir.clone(), open.clone());
        tokio::task::spawn_local(async move {
            let _ = tokio::time::timeout(CONNECTION_TIME, connection(stream, &dir)).await;
            open.set(open.get() - 1);
        });
    }
}

/// Who is on the other end, from the socket's peer credentials.
#[derive(Clone, Copy, Debug)]
struct Peer {
    uid: u32,
    pid: Option<i32>,
    may_change: bool,
}

impl Peer {
    fn of(stream: &UnixStream) -> Option<Peer> {
        let cred = stream.peer_cred().ok()?;
        let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid());
        let egid = nix::unistd::getegid().as_raw();
        let may_change = uid == 0
            || uid == nix::unistd::geteuid().as_raw()
            || gid == egid
            || pid.is_some_and(|pid| groups_of(pid).contains(&egid));
        Some(Peer { uid, pid, may_change })
    }

    fn name(&self) -> String {
        match self.pid {
            Some(pid) => format!("uid {} (pid {pid})", self.uid),
            None => format!("uid {}", self.uid),
        }
    }
}

/// The supplementary groups of process `pid` (its `Groups:` line): what the
/// peer holds now, which the group database may not say.
fn groups_of(pid: i32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default()
}

async fn connection(mut stream: UnixStream, dir: &Directory) {
    let Some(peer) = Peer::of(&stream) else {
        return;
    };
    let reply = match read_request(&mut stream).await {
        Ok(Some(line)) => answer(&line, peer, dir).await,
        Ok(None) => return,
        Err(()) => error_reply(
            "too_large",
            &format!("request longer than {} KiB; one JSON line is expected", MAX_REQUEST / 1024),
        ),
    };
    let mut text = reply.to_string();
    text.push('\n');
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request line, without reading past [`MAX_REQUEST`] bytes; `None` when
/// the client closed first, `Err` when it sent too much.
async fn read_request(stream: &mut UnixStream) -> Result<Option<Vec<u8>>, ()> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok((!buf.is_empty()).then_some(buf)),
            Ok(n) => n,
        };
        if let Some(end) = chunk[..n].iter().position(|&b| b == b'\n') {
            buf.extend_from_slice(&chunk[..end]);
            return if buf.len() > MAX_REQUEST { Err(()) } else { Ok(Some(buf)) };
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return Err(());
        }
    }
}

async fn answer(line: &[u8], peer: Peer, dir: &Directory) -> Value {
    let request: Request = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => return error_reply("bad_request", &format!("not a request: {e}")),
    };
    if request.v != VERSION {
        return error_reply(
            "bad_version",
            &format!(
                "protocol version {} is not spoken here (this heat speaks {VERSION})",
                request.v
            ),
        );
    }
    let command = request.command;
    if command.changes() && !peer.may_change {
        return error_reply(
            "denied",
            &format!(
                "only root or members of heat's group (gid {}) may pause, resume, run or reload; you are uid {}",
                nix::unistd::getegid(),
                peer.uid
            ),
        );
    }
    let by = peer.name();
    match command {
        Command::Status { probes, output } => status_document(dir, &probes, output),
        Command::Pause { probes, for_seconds, reason } => {
            let until = match for_seconds {
                None => None,
                Some(s) if s.is_finite() && s > 0.0 && s <= MAX_PAUSE => {
                    Some(Duration::from_secs_f64(s))
                }
                Some(s) => {
                    return error_reply(
                        "bad_request",
                        &format!(
                            "for_seconds {s}: give a number of seconds above 0 and at most ten years"
                        ),
                    );
                }
            };
            let reason = reason.unwrap_or_default();
            let ask = |_: &str| Ask::Pause { until, reason: reason.clone(), by: by.clone() };
            ask_each(dir, &probes, ask).await
        }
        Command::Resume { probes } => {
            ask_each(dir, &probes, |_| Ask::Resume { by: by.clone() }).await
        }
        Command::Run { probe } => run_now(dir, &probe, by).await,
        Command::Reload {} => reload(dir, by).await,
    }
}

async fn reload(dir: &Directory, by: String) -> Value {
    let Some(reloads) = &dir.reloads else {
        return error_reply(
            "no_config",
            "this heat runs one probe from its command line: no heat.toml to reload",
        );
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if reloads.send(crate::control::ReloadAsk { by, reply }).is_err() {
        return error_reply("stopping", "heat is stopping");
    }
    match answer.await {
        Ok(Ok(entries)) => json!({ "v": VERSION, "ok": true, "entries": entries }),
        Ok(Err(reason)) => error_reply("refused", &reason),
        Err(_) => error_reply("stopping", "heat is stopping"),
    }
}

fn unknown(names: &[&str]) -> Value {
    let mut reply = error_reply("unknown_probe", &format!("no probe {}", names.join(", ")));
    reply["unknown"] = json!(names);
    reply
}

/// Asks each named probe in turn; all must exist, or none is asked.
async fn ask_each(dir: &Directory, names: &[String], ask: impl Fn(&str) -> Ask) -> Value {
    if names.is_empty() {
        return error_reply("bad_request", "name the probes (\"probes\": [...])");
    }
    let missing: Vec<&str> =
        names.iter().filter(|n| dir.get(n).is_none()).map(|n| n.as_str()).collect();
    if !missing.is_empty() {
        return unknown(&missing);
    }
    let mut results = Vec::new();
    for name in names {
        let answer = match dir.get(name) {
            Some(entry) => entry.asker.ask(ask(name)).await,
            None => Answer::Stopping,
        };
        results.push(json!({ "name": name, "result": answer.word() }));
    }
    json!({ "v": VERSION, "ok": true, "probes": results })
}

async fn run_now(dir: &Directory, name: &str, by: String) -> Value {
    let Some(entry) = dir.get(name) else {
        return unknown(&[name]);
    };
    match entry.asker.ask(Ask::RunNow { by }).await {
        Answer::Started { checks } => {
            json!({ "v": VERSION, "ok": true, "probe": name, "result": "started", "checks": checks })
        }
        Answer::Busy(what) => {
            error_reply("busy", &format!("{name} is busy: its {what} is running"))
        }
        Answer::IsPaused => error_reply("paused", &format!("{name} is paused; resume it first")),
        _ => error_reply("stopping", &format!("{name} is stopping or reloading; try again")),
    }
}
