//! `heat status`, `heat pause`, `heat resume`, `heat run`: the commands that
//! ask a running heat through its control socket.
//!
//! Exit codes follow supervisorctl's: 0 all healthy (or done), 1 some probe
//! failing or in recovery (or the check `heat run` ran failed), 2 the request
//! could not be made (bad arguments, refused), 3 heat is not running, 4 an
//! unknown probe name.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use super::{VERSION, default_socket, short_duration};

/// The words that make heat a client rather than a supervisor.
pub const COMMANDS: [&str; 5] = ["status", "pause", "resume", "run", "reload"];

/// How long a reply may take (a run-now's wait is longer, in steps; a
/// reload of a large file may take a while).
const REPLY_TIME: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(name = "heat", about = "Ask a running heat through its control socket")]
struct Client {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Debug)]
struct Where {
    /// The control socket [default: /run/heat/heat.sock as root]
    #[arg(long, value_name = "PATH", global = true)]
    socket: Option<PathBuf>,
    /// The heat.toml whose control_socket to use
    #[arg(short, long, value_name = "PATH", global = true, conflicts_with = "socket")]
    config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Show the probes' state (exit 0 all healthy, 1 some failing, 3 heat not running, 4 unknown probe)
    Status {
        /// Only these probes
        names: Vec<String>,
        /// The documented JSON document instead of a table
        #[arg(long)]
        json: bool,
        /// The last 5 runs' output of each probe shown
        #[arg(long)]
        output: bool,
        #[command(flatten)]
        at: Where,
    },
    /// Maintenance: the probes run no checks, hooks or signals until resumed
    Pause {
        #[arg(required = true)]
        names: Vec<String>,
        /// End the pause by itself after this long (30m, 2h)
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Why, for the log and `heat status`
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        at: Where,
    },
    /// End the probes' pause: checks resume at their next scheduled time
    Resume {
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        at: Where,
    },
    /// Run one check of the probe now, outside its schedule, and show its result
    Run {
        name: String,
        /// Return once the check started, without waiting for its result
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        at: Where,
    },
    /// Reopen the log and re-read heat.toml, as SIGHUP does, and return once done (exit 1: the file was refused and the running configuration kept)
    Reload {
        /// Where no control socket answers, send SIGHUP to this heat instead (then there is no waiting)
        #[arg(long, value_name = "PID")]
        pid: Option<i32>,
        #[command(flatten)]
        at: Where,
    },
}

/// Why a command ended early: the message and the exit code.
struct Failure(String, u8);

/// Runs the client command in `args` (the program name first); the exit code.
pub fn main(args: Vec<std::ffi::OsString>) -> u8 {
    let client = match Client::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(client.command) {
        Ok(code) => code,
        Err(Failure(msg, code)) => {
            eprintln!("heat: {msg}");
            code
        }
    }
}

fn run(cmd: Cmd) -> Result<u8, Failure> {
    match cmd {
        Cmd::Status { names, json, output, at } => {
            let socket = socket_of(&at)?;
            let reply = ask(
                &socket,
                &json!({"v": VERSION, "cmd": "status", "probes": names, "output": output}),
            )?;
            let reply = ok(reply)?;
            let code = status_code(&reply);
            let mut out = std::io::stdout().lock();
            let text = if json {
                format!("{reply}\n")
            } else {
                let colour =
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                let mut t = table(&reply, colour);
                if output {
                    t.push_str(&outputs(&reply));
                }
                t
            };
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            Ok(code)
        }
        Cmd::Pause { names, duration, reason, at } => {
            let socket = socket_of(&at)?;
            let request = json!({
                "v": VERSION, "cmd": "pause", "probes": names,
                "for_seconds": duration.map(|d| d.as_secs_f64()), "reason": reason,
            });
            let reply = ok(ask(&socket, &request)?)?;
            let until = match duration {
                Some(d) => format!(" for {}", humantime::format_duration(d)),
                None => " until resumed".to_string(),
            };
            for p in reply["probes"].as_array().into_iter().flatten() {
                println!("{}: {}{until}", p["name"].as_str().unwrap_or("?"), word(&p["result"]));
            }
            Ok(0)
        }
        Cmd::Resume { names, at } => {
            let socket = socket_of(&at)?;
            let reply =
                ok(ask(&socket, &json!({"v": VERSION, "cmd": "resume", "probes": names}))?)?;
            for p in reply["probes"].as_array().into_iter().flatten() {
                println!("{}: {}", p["name"].as_str().unwrap_or("?"), word(&p["result"]));
            }
            Ok(0)
        }
        Cmd::Run { name, no_wait, at } => {
            let socket = socket_of(&at)?;
            let reply = ask(&socket, &json!({"v": VERSION, "cmd": "run", "probe": name}))?;
            let reply = ok(reply)?;
            println!("{name}: check started");
            if no_wait {
                return Ok(0);
            }
            let before = reply["checks"].as_u64().unwrap_or(0);
            wait_for_check(&socket, &name, before)
        }
        Cmd::Reload { pid, at } => {
            let asked = socket_of(&at)
                .and_then(|socket| ask(&socket, &json!({"v": VERSION, "cmd": "reload"})));
            let reply = match (asked, pid) {
                (Ok(reply), _) => reply,
                // Only where nothing answers: a refusal is the answer.
                (Err(Failure(why, 3)), Some(pid)) => return hangup(pid, &why),
                (Err(f), _) => return Err(f),
            };
            if reply["ok"].as_bool() != Some(true) && reply["kind"] == "refused" {
                let why = word(&reply["error"]);
                return Err(Failure(
                    format!("reload refused, heat keeps its running configuration: {why}"),
                    1,
                ));
            }
            let reply = ok(reply)?;
            for entry in reply["entries"].as_array().into_iter().flatten() {
                println!("{}", word(entry));
            }
            Ok(0)
        }
    }
}

/// `heat reload --pid` where no socket answers: the signal, without a wait.
fn hangup(pid: i32, why: &str) -> Result<u8, Failure> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if pid <= 1 {
        return Err(Failure(format!("--pid {pid}: give heat's process id"), 2));
    }
    kill(Pid::from_raw(pid), Signal::SIGHUP)
        .map_err(|e| Failure(format!("{why}; and cannot send SIGHUP to pid {pid}: {e}"), 3))?;
    eprintln!("heat: {why}; sent SIGHUP to pid {pid} instead (not waiting for the reload)");
    Ok(0)
}

fn word(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// Polls the probe until it has finished a check more than `before`.
fn wait_for_check(socket: &Path, name: &str, before: u64) -> Result<u8, Failure> {
    let request = json!({"v": VERSION, "cmd": "status", "probes": [name]});
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let reply = ok(ask(socket, &request)?)?;
        let probe = &reply["probes"][0];
        if probe["checks"].as_u64().unwrap_or(0) > before {
            let last = &probe["last"];
            let code = last["code"].as_i64().unwrap_or(-1);
            let took = last["duration_seconds"].as_f64().map(Duration::from_secs_f64);
            let took = took.map(|d| format!(" in {}", short_duration(d))).unwrap_or_default();
            let verdict = if code == 0 { "ok" } else { "failed" };
            println!("{name}: {verdict} (exit {code}{took})");
            return Ok(u8::from(code != 0));
        }
    }
}

/// The socket: `--socket`, the file's `control_socket`, or the default.
fn socket_of(at: &Where) -> Result<PathBuf, Failure> {
    if let Some(s) = &at.socket {
        return Ok(s.clone());
    }
    let Some(file) = &at.config else {
        return default_socket().ok_or_else(|| {
            Failure("no control socket known: give --socket PATH or -c FILE".to_string(), 2)
        });
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure(format!("cannot read config {}: {e}", file.display()), 2))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| Failure(format!("config {}: {}", file.display(), e.message()), 2))?;
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match table.get("control_socket") {
        None => default_socket().ok_or_else(|| {
            Failure(
                format!("{}: no control_socket and no default here; give --socket", file.display()),
                2,
            )
        }),
        Some(toml::Value::String(p)) => Ok(dir.join(p)),
        Some(toml::Value::Boolean(false)) => Err(Failure(
            format!("{} turns the control socket off (control_socket = false)", file.display()),
            3,
        )),
        Some(_) => Err(Failure(
            format!(
                "{}: control_socket: give the socket's path, or false for none",
                file.display()
            ),
            2,
        )),
    }
}

/// One request, one reply.
fn ask(socket: &Path, request: &Value) -> Result<Value, Failure> {
    let shown = socket.display();
    let mut stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            Failure(format!("heat is not running (nothing answers on {shown})"), 3)
        }
        std::io::ErrorKind::PermissionDenied => Failure(
            format!("cannot reach {shown}: permission denied (root or heat's group may)"),
            2,
        ),
        _ => Failure(format!("cannot reach {shown}: {e}"), 3),
    })?;
    let _ = stream.set_read_timeout(Some(REPLY_TIME));
    let _ = stream.set_write_timeout(Some(REPLY_TIME));
    let mut line = request.to_string();
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| Failure(format!("{shown}: cannot send the request: {e}"), 3))?;
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .map_err(|e| Failure(format!("{shown}: no reply: {e}"), 3))?;
    if reply.is_empty() {
        return Err(Failure(format!("{shown}: heat closed the connection without a reply"), 3));
    }
    serde_json::from_str(&reply).map_err(|e| Failure(format!("{shown}: not a reply: {e}"), 2))
}

/// The reply, or its error as a failure with the documented exit code.
fn ok(reply: Value) -> Result<Value, Failure> {
    if reply["ok"].as_bool() == Some(true) {
        return Ok(reply);
    }
    let code = match reply["kind"].as_str() {
        Some("unknown_probe") => 4,
        Some("busy") | Some("paused") => 1,
        _ => 2,
    };
    Err(Failure(reply["error"].as_str().unwrap_or("heat refused the request").to_string(), code))
}

/// 0 when every probe shown is healthy, 1 when one fails or recovers.
fn status_code(reply: &Value) -> u8 {
    let bad = reply["probes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| matches!(p["state"].as_str(), Some("failing") | Some("recovery")));
    u8::from(bad)
}

/// The table `heat status` prints.
fn table(reply: &Value, colour: bool) -> String {
    let mut rows = vec![["PROBE", "STATE", "LAST", "NEXT", "TARGET", "RUNNING"].map(String::from)];
    let mut states = vec![String::new()];
    for p in reply["probes"].as_array().into_iter().flatten() {
        let state = p["state"].as_str().unwrap_or("?").to_string();
        let shown_state = match state.as_str() {
            "failing" => format!("failing {}", p["fails"]),
            "recovery" => format!("recovery round {}", p["recovery_round"]),
            "paused" => {
                let pause = &p["pause"];
                let left = pause["remaining_seconds"]
                    .as_f64()
                    .map(|s| format!(", {} left", short_duration(Duration::from_secs_f64(s))))
                    .unwrap_or_default();
                match pause["reason"].as_str().filter(|r| !r.is_empty()) {
                    Some(r) => format!("paused ({r}{left})"),
                    None if left.is_empty() => "paused".to_string(),
                    None => format!("paused ({})", &left[2..]),
                }
            }
            s => s.to_string(),
        };
        let last = &p["last"];
        let last = if last.is_null() {
            "-".to_string()
        } else {
            let took = last["duration_seconds"]
                .as_f64()
                .map(|d| format!(" in {}", short_duration(Duration::from_secs_f64(d))))
                .unwrap_or_default();
            let age = ago(last["age_seconds"].as_u64().unwrap_or(0));
            format!("exit {}{took}, {age}", last["code"])
        };
        let next = p["next_check_in_seconds"]
            .as_f64()
            .map(|s| format!("in {}", short_duration(Duration::from_secs_f64(s))))
            .unwrap_or_else(|| "-".to_string());
        let target = p["target_pid"].as_u64().map_or("-".to_string(), |t| t.to_string());
        let running = p["running"].as_str().unwrap_or("-").to_string();
        let name = p["name"].as_str().unwrap_or("?").to_string();
        rows.push([name, shown_state, last, next, target, running]);
        states.push(state);
    }
    let widths: Vec<usize> =
        (0..6).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (row, state) in rows.iter().zip(&states) {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            let painted = match (colour && c == 1, state.as_str()) {
                (true, "ok") => format!("\x1b[32m{cell}\x1b[0m"),
                (true, "failing" | "recovery") => format!("\x1b[31m{cell}\x1b[0m"),
                (true, "paused") => format!("\x1b[33m{cell}\x1b[0m"),
                _ => cell.clone(),
            };
            line.push_str(&painted);
            if c < 5 {
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `12s ago`, `just now`: ages are whole seconds.
fn ago(secs: u64) -> String {
    match secs {
        0 => "just now".to_string(),
        s => format!("{} ago", short_duration(Duration::from_secs(s))),
    }
}

/// The last runs' output of each probe, oldest first.
fn outputs(reply: &Value) -> String {
    let mut out = String::new();
    let now = reply["heat"]["now_unix"].as_u64().unwrap_or(0);
    for p in reply["probes"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or("?");
        let runs = p["output"].as_array().map(Vec::as_slice).unwrap_or_default();
        out.push_str(&format!("\n{name}: the last {} runs\n", runs.len()));
        for r in runs {
            let age = ago(now.saturating_sub(r["ended_unix"].as_u64().unwrap_or(0)));
            let code = match r["code"].as_i64() {
                Some(c) => format!("exit {c}"),
                None => "did not exit".to_string(),
            };
            let took = short_duration(Duration::from_secs_f64(
                r["duration_seconds"].as_f64().unwrap_or(0.0),
            ));
            out.push_str(&format!("--- {age}: {code} in {took}\n"));
            let text = r["output"].as_str().unwrap_or("");
            out.push_str(text);
            if !text.is_empty() && !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

/// Whether heat's arguments name a client command (`heat status …`).
pub fn is_client(args: &[std::ffi::OsString]) -> bool {
    args.get(1).and_then(|a| a.to_str()).is_some_and(|a| COMMANDS.contains(&a))
}
