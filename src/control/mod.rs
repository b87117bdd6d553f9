//! heat's control socket: `heat status`, `pause`, `resume` and `run` talk to
//! a running heat over a unix socket, one JSON request and one JSON reply per
//! line (docs/control.md). The server lives in [`server`], the commands in
//! [`client`]; this module holds what both speak.

pub mod client;
pub mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::board::{Directory, View};
use crate::probe::Busy;

/// The protocol's version: requests and replies carry it as `"v"`.
pub const VERSION: u32 = 1;

/// The socket heat uses in service mode unless told otherwise: as root
/// /run/heat/heat.sock, otherwise $XDG_RUNTIME_DIR/heat.sock; without a
/// runtime directory there is none.
pub fn default_socket() -> Option<PathBuf> {
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/run/heat/heat.sock"));
    }
    let dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    Some(PathBuf::from(dir).join("heat.sock"))
}

/// A request, as the line on the socket holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    /// The named probes' state (all without names), with their last runs'
    /// output if asked.
    Status {
        #[serde(default)]
        probes: Vec<String>,
        #[serde(default)]
        output: bool,
    },
    Pause {
        probes: Vec<String>,
        /// Seconds until the pause ends by itself; absent: until resumed.
        #[serde(default)]
        for_seconds: Option<f64>,
        #[serde(default)]
        reason: Option<String>,
    },
    Resume {
        probes: Vec<String>,
    },
    /// One check now, outside the schedule.
    Run {
        probe: String,
    },
    /// What SIGHUP does (reopen the log, re-read heat.toml), answered once done.
    Reload {},
}

impl Command {
    /// Whether the command changes what heat does (root or heat's group only).
    pub fn changes(&self) -> bool {
        !matches!(self, Command::Status { .. })
    }
}

/// A reload asked over the socket, for heat's main loop: `reply` gets the
/// reload's log entries, or why the file was refused.
pub struct ReloadAsk {
    pub by: String,
    pub reply: tokio::sync::oneshot::Sender<Result<Vec<String>, String>>,
}

/// What a supervisor is asked from the socket; `by` names who asked.
#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    Pause { until: Option<Duration>, reason: String, by: String },
    Resume { by: String },
    RunNow { by: String },
}

/// A supervisor's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Paused,
    Resumed,
    NotPaused,
    /// The check started; the probe had finished `checks` checks before it.
    Started {
        checks: u64,
    },
    /// A check or hook runs: which.
    Busy(&'static str),
    /// Run-now of a paused probe.
    IsPaused,
    /// The supervisor is stopping or being replaced by a reload.
    Stopping,
}

impl Answer {
    /// The reply's word for it.
    pub fn word(self) -> &'static str {
        match self {
            Answer::Paused => "paused",
            Answer::Resumed => "resumed",
            Answer::NotPaused => "not paused",
            Answer::Started { .. } => "started",
            Answer::Busy(_) => "busy",
            Answer::IsPaused => "paused",
            Answer::Stopping => "stopping",
        }
    }
}

/// An error reply: `kind` for programs, `error` for people.
pub fn error_reply(kind: &str, error: &str) -> Value {
    json!({ "v": VERSION, "ok": false, "kind": kind, "error": error })
}

/// `heat status --json`'s document: the named probes (all when `names` is
/// empty), or an error naming the unknown ones.
pub fn status_document(dir: &Directory, names: &[String], output: bool) -> Value {
    let unknown: Vec<&String> = names.iter().filter(|n| dir.get(n).is_none()).collect();
    if !unknown.is_empty() {
        let list: Vec<&str> = unknown.iter().map(|n| n.as_str()).collect();
        let mut reply = error_reply("unknown_probe", &format!("no probe {}", list.join(", ")));
        reply["unknown"] = json!(list);
        return reply;
    }
    let names = if names.is_empty() { dir.names() } else { names.to_vec() };
    let (now, now_unix) = (Instant::now(), unix_now());
    let probes: Vec<Value> = names
        .iter()
        .filter_map(|name| {
            let entry = dir.get(name)?;
            let view = entry.board.view();
            Some(probe_json(name, &view, entry.board.checks.get(), now, now_unix, output))
        })
        .collect();
    json!({
        "v": VERSION,
        "ok": true,
        "heat": {
            "version": env!("CARGO_PKG_VERSION"),
            "pid": dir.pid,
            "started_unix": dir.started_unix,
            "config": dir.config.as_ref().map(|p| p.display().to_string()),
            "now_unix": now_unix,
        },
        "probes": probes,
    })
}

/// A probe's state word: what `heat status` shows and its exit code follows.
pub fn state_of(view: &View, now: Instant) -> &'static str {
    let s = &view.status;
    let starting = s.start_period_end.is_some_and(|end| now < end);
    if view.pause.is_some() {
        "paused"
    } else if s.recovery {
        "recovery"
    } else if s.fails > 0 {
        "failing"
    } else if starting && s.last.is_none_or(|l| l.code != 0) {
        "start period"
    } else if s.last.is_none() {
        "pending"
    } else {
        "ok"
    }
}

fn probe_json(
    name: &str,
    view: &View,
    checks: u64,
    now: Instant,
    now_unix: u64,
    output: bool,
) -> Value {
    let s = &view.status;
    let running = match s.busy {
        Busy::Idle => None,
        Busy::Check { .. } => Some("check"),
        Busy::FailHook => Some("fail hook"),
        Busy::RecoveryHook => Some("recovery hook"),
    };
    let last = s.last.map(|l| {
        json!({
            "code": l.code,
            "ended_unix": l.ended_unix,
            "age_seconds": now_unix.saturating_sub(l.ended_unix),
            "duration_seconds": view.last_duration.map(|d| d.as_secs_f64()),
        })
    });
    let pause = view.pause.as_ref().map(|p| {
        json!({
            "reason": p.reason,
            "by": p.by,
            "since_unix": p.since_unix,
            "until_unix": p.until_unix,
            "remaining_seconds": p.until.map(|u| u.saturating_duration_since(now).as_secs_f64()),
        })
    });
    let next = (view.pause.is_none()).then(|| s.next.saturating_duration_since(now).as_secs_f64());
    let mut probe = json!({
        "name": name,
        "state": state_of(view, now),
        "fails": s.fails,
        "recovery_round": s.recovery.then_some(s.round),
        "last": last,
        "next_check_in_seconds": next,
        "target_pid": view.target_pid,
        "running": running,
        "pause": pause,
        "checks": checks,
    });
    if output {
        let runs: Vec<Value> = view
            .outputs
            .iter()
            .map(|o| {
                json!({
                    "ended_unix": o.ended_unix,
                    "code": o.code,
                    "duration_seconds": o.duration.as_secs_f64(),
                    "output": o.text,
                })
            })
            .collect();
        probe["output"] = json!(runs);
    }
    probe
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `12s`, `3m`, `1h5m`, `250ms`: short, for tables.
pub fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => match s % 60 {
            0 => format!("{}m", s / 60),
            r => format!("{}m{r}s", s / 60),
        },
        s if s < 86_400 => match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h{m}m", s / 3600),
        },
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_documented() {
        let r: Request = serde_json::from_str(r#"{"v":1,"cmd":"status"}"#).unwrap();
        assert_eq!(r.command, Command::Status { probes: vec![], output: false });
        let r: Request = serde_json::from_str(
            r#"{"v":1,"cmd":"pause","probes":["web"],"for_seconds":90,"reason":"deploy"}"#,
        )
        .unwrap();
        assert_eq!(
            r.command,
            Command::Pause {
                probes: vec!["web".into()],
                for_seconds: Some(90.0),
                reason: Some("deploy".into())
            }
        );
        assert!(r.command.changes());
        assert!(serde_json::from_str::<Request>(r#"{"v":1,"cmd":"reboot"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"v":1,"cmd":"run"}"#).is_err());
    }

    #[test]
    fn short_durations() {
        let d = Duration::from_secs;
        assert_eq!(short_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(short_duration(d(12)), "12s");
        assert_eq!(short_duration(d(180)), "3m");
        assert_eq!(short_duration(d(185)), "3m5s");
        assert_eq!(short_duration(d(3900)), "1h5m");
        assert_eq!(short_duration(d(90_000)), "1d1h");
    }
}
