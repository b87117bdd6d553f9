//! The control socket and the metrics server against the real binary:
//! `heat status` (table, JSON, exit codes, output ring), `pause` (with its
//! end, its reason, across a reload), `resume`, `run` (busy, paused), who
//! may do what, a stale or live socket at start, clients that stall or
//! flood, the command line's one probe, and `/metrics` and `/status.json`.

mod util;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

const CONF: &str = "heat.toml";
const SOCK: &str = "ctl.sock";

/// Runs a client command to its end: (exit code, stdout, stderr).
fn client(fx: &Fixture, args: &[&str]) -> (i32, String, String) {
    client_as(fx, None, args)
}

/// Like `client`, as another user through setpriv (`--reuid … --regid …`).
fn client_as(fx: &Fixture, setpriv: Option<&[&str]>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = match setpriv {
        Some(how) => {
            let mut c = Command::new("setpriv");
            c.args(how).arg(heat_bin());
            c
        }
        None => Command::new(heat_bin()),
    };
    let out = cmd.args(args).current_dir(&fx.dir).output().expect("run heat client");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// A service heat whose file names its control socket `ctl.sock`.
fn service<'a>(fx: &'a Fixture, probes: &str) -> Heat<'a> {
    fx.write_file(CONF, &format!("control_socket = \"{SOCK}\"\n{probes}"));
    let h = Heat::start_raw(fx, &["-c", CONF], |_| {});
    h.wait_for("the control socket", || UnixStream::connect(fx.path(SOCK)).is_ok());
    h
}

fn status(h: &Heat, names: &[&str]) -> Value {
    let mut args = vec!["status", "--json", "-c", CONF];
    args.extend_from_slice(names);
    let (code, out, err) = client(h.fx, &args);
    h.ensure(code == 0 || code == 1, format!("status --json exit {code}: {err}"));
    serde_json::from_str(&out).unwrap_or_else(|e| h.fail(format!("not JSON ({e}): {out}")))
}

fn probe<'v>(doc: &'v Value, name: &str) -> &'v Value {
    doc["probes"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

/// Waits until probe `name` has finished at least `n` checks.
fn wait_checks(h: &Heat, name: &str, n: u64) -> Value {
    let mut doc = Value::Null;
    h.wait_for(&format!("{n} checks of {name}"), || {
        doc = status(h, &[name]);
        probe(&doc, name)["checks"].as_u64().unwrap_or(0) >= n
    });
    doc
}

/// The probe's entries of heat's own (`[name] heat`).
fn probe_events(h: &Heat, name: &str) -> Vec<String> {
    let me = format!("[{name}] heat");
    h.entries().iter().filter(|e| e.name == me).map(|e| e.text().to_string()).collect()
}

fn wait_probe_event(h: &Heat, name: &str, prefix: &str) -> String {
    let mut found = String::new();
    h.wait_for(&format!("[{name}] heat entry {prefix:?}"), || {
        match probe_events(h, name).into_iter().find(|t| t.starts_with(prefix)) {
            Some(t) => {
                found = t;
                true
            }
            None => false,
        }
    });
    found
}

const TWO: &str = r#"
[probe.good]
command = ["true"]
interval = "100ms"

[probe.bad]
command = ["sh", "-c", "echo bad output; exit 3"]
interval = "100ms"
threshold = 1000
"#;

#[test]
fn status_shows_a_table_a_documented_json_and_supervisorctl_exit_codes() {
    let fx = Fixture::new("ctl-status");
    let mut h = service(&fx, TWO);
    wait_checks(&h, "good", 2);
    wait_checks(&h, "bad", 5);

    let (code, out, err) = client(&fx, &["status", "-c", CONF]);
    h.ensure(code == 1, format!("a failing probe: exit 1, got {code}: {err}"));
    let lines: Vec<&str> = out.lines().collect();
    h.ensure(
        lines[0].starts_with("PROBE") && lines[0].contains("STATE"),
        format!("header:\n{out}"),
    );
    let row = |name: &str| lines.iter().find(|l| l.starts_with(name)).copied().unwrap_or("");
    h.ensure(row("good").contains(" ok "), format!("good is ok:\n{out}"));
    h.ensure(row("bad").contains("failing "), format!("bad is failing N:\n{out}"));
    h.ensure(row("bad").contains("exit 3 in "), format!("bad's last result:\n{out}"));
    h.ensure(!out.contains('\x1b'), format!("no colour off a terminal:\n{out:?}"));

    let (code, _, err) = client(&fx, &["status", "good", "-c", CONF]);
    h.ensure(code == 0, format!("all shown healthy: exit 0, got {code}: {err}"));
    let (code, _, err) = client(&fx, &["status", "good", "nope", "-c", CONF]);
    h.ensure(
        code == 4 && err.contains("no probe nope"),
        format!("unknown probe: 4, got {code}: {err}"),
    );
    let (code, _, err) = client(&fx, &["status", "--socket", SOCK, "good"]);
    h.ensure(code == 0, format!("--socket: exit {code}: {err}"));

    let doc = status(&h, &[]);
    h.ensure(doc["v"] == 1 && doc["ok"] == true, format!("versioned reply: {doc}"));
    h.ensure(doc["heat"]["pid"] == h.pid(), format!("heat's pid: {doc}"));
    h.ensure(
        doc["heat"]["version"].is_string() && doc["heat"]["started_unix"].is_u64(),
        format!("{doc}"),
    );
    let bad = probe(&doc, "bad");
    h.ensure(bad["state"] == "failing" && bad["fails"].as_u64() >= Some(2), format!("bad: {bad}"));
    h.ensure(bad["last"]["code"] == 3, format!("bad's code: {bad}"));
    h.ensure(
        bad["last"]["duration_seconds"].as_f64().is_some_and(|d| d > 0.0 && d < 5.0),
        format!("{bad}"),
    );
    h.ensure(bad["last"]["age_seconds"].as_u64().is_some_and(|a| a < 5), format!("{bad}"));
    h.ensure(
        bad["last"]["ended_unix"].as_u64().is_some_and(|t| t.abs_diff(unix_now()) < 5),
        format!("{bad}"),
    );
    h.ensure(
        bad["next_check_in_seconds"].as_f64().is_some_and(|n| n <= 0.1),
        format!("next: {bad}"),
    );
    for key in ["target_pid", "running", "pause", "recovery_round"] {
        h.ensure(bad.get(key).is_some(), format!("bad has {key}: {bad}"));
    }
    h.ensure(bad["target_pid"].is_null() && bad["pause"].is_null(), format!("{bad}"));
    h.ensure(probe(&doc, "good")["state"] == "ok", format!("{doc}"));
    h.ensure(bad.get("output").is_none(), "no output unless asked");

    // The output ring: the last five runs, each with what it printed.
    let (_, out, _) = client(&fx, &["status", "bad", "--json", "--output", "-c", CONF]);
    let doc: Value = serde_json::from_str(&out).expect("json");
    let runs = probe(&doc, "bad")["output"].as_array().cloned().unwrap_or_default();
    h.ensure(runs.len() == 5, format!("five runs kept: {out}"));
    h.ensure(runs.iter().all(|r| r["output"] == "bad output\n" && r["code"] == 3), out.to_string());
    let (_, out, _) = client(&fx, &["status", "bad", "--output", "-c", CONF]);
    h.ensure(out.matches("bad output").count() == 5, format!("table --output:\n{out}"));
    h.stop();
}

#[test]
fn a_pause_stops_checks_hooks_and_signals_and_ends_by_itself() {
    let fx = Fixture::new("ctl-pause");
    let target = fx.trap_target("sigs");
    fx.write_script("hook.sh", "echo hook >> hooks");
    let mut h = service(
        &fx,
        &format!(
            r#"
[probe.p]
command = ["sh", "-c", "echo run >> runs; exit 1"]
interval = "100ms"
pid = {target}
signal = "USR1"
fail = "./hook.sh"
threshold = 1000
"#
        ),
    );
    wait_checks(&h, "p", 2);
    let (code, out, err) =
        client(&fx, &["pause", "p", "--for", "1500ms", "--reason", "db migration", "-c", CONF]);
    h.ensure(
        code == 0 && out.contains("p: paused for 1s 500ms"),
        format!("pause: {code} {out} {err}"),
    );
    let entry = wait_probe_event(&h, "p", "paused by uid 0");
    h.ensure(entry.contains("for 1s 500ms: db migration"), format!("the pause entry: {entry}"));

    let doc = status(&h, &["p"]);
    let p = probe(&doc, "p");
    h.ensure(p["state"] == "paused" && p["fails"] == 0, format!("paused, count forgotten: {p}"));
    h.ensure(p["pause"]["reason"] == "db migration", format!("{p}"));
    h.ensure(
        p["pause"]["remaining_seconds"].as_f64().is_some_and(|s| s > 0.5 && s <= 1.5),
        format!("{p}"),
    );
    h.ensure(p["next_check_in_seconds"].is_null(), format!("no next check while paused: {p}"));
    let (code, out, _) = client(&fx, &["status", "-c", CONF]);
    h.ensure(
        code == 0 && out.contains("paused (db migration, "),
        format!("paused is not failing: {code}\n{out}"),
    );

    // A run under way when the pause came ends; then nothing runs.
    std::thread::sleep(Duration::from_millis(200));
    let counts = || (fx.lines("runs").len(), fx.lines("hooks").len(), fx.lines("sigs").len());
    let held = counts();
    std::thread::sleep(Duration::from_millis(600));
    h.ensure(counts() == held, format!("nothing ran while paused: {held:?} then {:?}", counts()));

    wait_probe_event(&h, "p", "pause over: checks run again");
    h.wait_for("checks, hooks and signals again", || {
        let now = counts();
        now.0 > held.0 && now.1 > held.1 && now.2 > held.2
    });
    h.ensure(
        probe(&status(&h, &["p"]), "p")["state"] == "failing",
        "failing again after the pause",
    );
    h.stop();
}

#[test]
fn a_pause_survives_a_reload_and_resume_ends_it() {
    let fx = Fixture::new("ctl-reload");
    let probes =
        "[probe.p]\ncommand = [\"sh\", \"-c\", \"echo run >> runs\"]\ninterval = \"100ms\"\n";
    let mut h = service(&fx, probes);
    wait_checks(&h, "p", 1);
    let (code, _, err) = client(&fx, &["pause", "p", "-c", CONF]);
    h.ensure(code == 0, format!("pause: {err}"));
    // A changed probe is retired and started anew: the pause goes with it.
    fx.write_file(
        CONF,
        &format!("control_socket = \"{SOCK}\"\n{}", probes.replace("100ms", "150ms")),
    );
    h.kill(nix::sys::signal::Signal::SIGHUP);
    h.wait_for("the reload", || h.log().contains("changed 1 (p)"));
    h.wait_for("the new supervisor", || probe(&status(&h, &["p"]), "p")["state"] == "paused");
    let held = fx.lines("runs").len();
    std::thread::sleep(Duration::from_millis(500));
    h.ensure(fx.lines("runs").len() <= held + 1, "still paused after the reload");

    let (code, out, _) = client(&fx, &["resume", "p", "-c", CONF]);
    h.ensure(code == 0 && out.contains("p: resumed"), format!("resume: {out}"));
    wait_probe_event(&h, "p", "resumed by uid 0");
    let n = fx.lines("runs").len();
    h.wait_for("checks again", || fx.lines("runs").len() > n + 1);
    let (code, out, _) = client(&fx, &["resume", "p", "-c", CONF]);
    h.ensure(code == 0 && out.contains("p: not paused"), format!("resume twice: {out}"));
    h.stop();
}

#[test]
fn run_now_runs_one_check_outside_the_schedule_or_says_why_not() {
    let fx = Fixture::new("ctl-run");
    let mut h = service(
        &fx,
        r#"
[probe.slow]
command = ["sh", "-c", "echo run >> runs; exit 0"]
interval = "1h"

[probe.bad]
command = ["false"]
interval = "1h"
threshold = 1000

[probe.busy]
command = ["sleep", "30"]
interval = "1h"
"#,
    );
    let doc = wait_checks(&h, "slow", 1);
    let next = probe(&doc, "slow")["next_check_in_seconds"].as_f64().unwrap_or(0.0);
    h.ensure(fx.lines("runs").len() == 1, "one check at start");

    let (code, out, err) = client(&fx, &["run", "slow", "-c", CONF]);
    h.ensure(code == 0 && out.contains("slow: ok (exit 0"), format!("run: {code} {out} {err}"));
    h.ensure(fx.lines("runs").len() == 2, "exactly one more check");
    let after =
        probe(&status(&h, &["slow"]), "slow")["next_check_in_seconds"].as_f64().unwrap_or(0.0);
    h.ensure(
        (next - after).abs() < 30.0 && after > 3000.0,
        format!("the phase is kept: {next} then {after}"),
    );
    h.ensure(h.log().contains("check run now, asked by uid 0"), "logged with who asked");

    wait_checks(&h, "bad", 1);
    let (code, out, _) = client(&fx, &["run", "bad", "-c", CONF]);
    h.ensure(
        code == 1 && out.contains("bad: failed (exit 1"),
        format!("a failing run: {code} {out}"),
    );

    h.wait_for("busy's check running", || {
        probe(&status(&h, &["busy"]), "busy")["running"] == "check"
    });
    let (code, _, err) = client(&fx, &["run", "busy", "-c", CONF]);
    h.ensure(
        code == 1 && err.contains("busy: its check is running"),
        format!("busy: {code} {err}"),
    );

    client(&fx, &["pause", "slow", "-c", CONF]);
    let (code, _, err) = client(&fx, &["run", "slow", "-c", CONF]);
    h.ensure(code == 1 && err.contains("slow is paused"), format!("paused: {code} {err}"));
    let (code, _, err) = client(&fx, &["run", "nope", "-c", CONF]);
    h.ensure(code == 4, format!("unknown: {code} {err}"));
    h.stop();
}

#[test]
fn reload_returns_once_heat_has_reloaded_and_says_why_a_file_is_refused() {
    let fx = Fixture::new("ctl-reload-cmd");
    let mut h = service(&fx, TWO);
    wait_checks(&h, "good", 1);
    let more = format!(
        "control_socket = \"{SOCK}\"\n{TWO}\n[probe.new]\ncommand = [\"true\"]\ninterval = \"100ms\"\n"
    );
    fx.write_file(CONF, &more);
    let (code, out, err) = client(&fx, &["reload", "--socket", SOCK]);
    h.ensure(code == 0, format!("reload: exit {code}: {err}"));
    h.ensure(out.contains("reloaded: added 1 (new)"), format!("reload prints the entries: {out}"));
    // Done when it returns: the new probe is there without a wait.
    h.ensure(probe(&status(&h, &["new"]), "new")["name"] == "new", "the new probe runs at once");
    h.ensure(h.log().contains("reload asked by uid 0"), "the log names who asked");

    fx.write_file(CONF, &format!("{more}bogus = [\n"));
    let (code, out, err) = client(&fx, &["reload", "--socket", SOCK]);
    h.ensure(
        code == 1 && err.contains("reload refused") && err.contains("heat.toml:"),
        format!("a refused file: exit {code}: {out} {err}"),
    );
    h.ensure(h.log().contains("reload failed, keeping the running configuration"), "an ERR entry");
    let (code, out, err) = client(&fx, &["status", "--socket", SOCK, "new"]);
    h.ensure(
        code == 0 && out.contains("new"),
        format!("the running configuration stays: {code} {err}"),
    );

    // No socket answers: with --pid the signal goes instead, without a wait.
    fx.write_file(CONF, &more);
    let reloads = h.log().matches("reloaded: ").count();
    let pid = h.pid().to_string();
    let (code, _, err) = client(&fx, &["reload", "--socket", "nothing.sock", "--pid", &pid]);
    h.ensure(code == 0 && err.contains("sent SIGHUP to pid"), format!("--pid: exit {code}: {err}"));
    h.wait_for("the reload on SIGHUP", || h.log().matches("reloaded: ").count() > reloads);
    let (code, _, err) = client(&fx, &["reload", "--socket", "nothing.sock"]);
    h.ensure(
        code == 3 && err.contains("heat is not running"),
        format!("no --pid: exit {code}: {err}"),
    );
    h.stop();
}

#[test]
fn only_root_or_heats_group_may_change_anyone_with_access_may_read() {
    let fx = Fixture::new("ctl-perm");
    let mut h = service(&fx, TWO);
    wait_checks(&h, "good", 1);
    let meta = std::fs::metadata(fx.path(SOCK)).expect("socket");
    h.ensure(meta.permissions().mode() & 0o777 == 0o660, format!("mode {:o}", meta.mode()));
    h.ensure(
        meta.uid() == 0 && meta.gid() == nix::unistd::getegid().as_raw(),
        "root and heat's group",
    );
    let nobody: &[&str] = &["--reuid", "65534", "--regid", "65534", "--clear-groups"];
    // The fixture dir must let nobody reach the socket at all.
    std::fs::set_permissions(&fx.dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let (code, _, err) = client_as(&fx, Some(nobody), &["status", "--socket", SOCK]);
    h.ensure(
        code == 2 && err.contains("permission denied"),
        format!("0660 keeps nobody out: {code} {err}"),
    );

    // An operator who opens the socket to all: reading yes, changing no.
    std::fs::set_permissions(fx.path(SOCK), std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, _, err) = client_as(&fx, Some(nobody), &["status", "--socket", SOCK, "good"]);
    h.ensure(code == 0, format!("nobody reads status: {code} {err}"));
    for args in [&["pause", "good"][..], &["resume", "good"], &["run", "good"], &["reload"]] {
        let mut a = args.to_vec();
        a.extend(["--socket", SOCK]);
        let (code, _, err) = client_as(&fx, Some(nobody), &a);
        h.ensure(
            code == 2 && err.contains("only root or members of heat's group"),
            format!("{args:?} as nobody: {code} {err}"),
        );
    }
    h.ensure(probe(&status(&h, &["good"]), "good")["state"] == "ok", "nothing changed");

    // A member of heat's group may.
    let gid = nix::unistd::getegid().as_raw().to_string();
    let member: &[&str] = &["--reuid", "65534", "--regid", "65534", "--groups", &gid];
    let (code, out, err) = client_as(&fx, Some(member), &["pause", "good", "--socket", SOCK]);
    h.ensure(
        code == 0 && out.contains("good: paused"),
        format!("a member pauses: {code} {out} {err}"),
    );
    h.ensure(h.log().contains("paused by uid 65534"), "the log names who");
    h.stop();
}

#[test]
fn a_stale_socket_is_replaced_a_live_one_or_another_file_refused() {
    let fx = Fixture::new("ctl-stale");
    // What a heat killed -9 leaves: a socket nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(fx.path(SOCK)).unwrap());
    let (code, _, err) = client(&fx, &["status", "--socket", SOCK]);
    assert_eq!(code, 3, "a stale socket: heat is not running ({err})");
    let (code, _, err) = client(&fx, &["status", "--socket", "no-such.sock"]);
    assert!(code == 3 && err.contains("heat is not running"), "{code} {err}");

    let mut h = service(&fx, TWO);
    wait_checks(&h, "good", 1);

    // A second heat on the same socket: refused at start, the first untouched.
    let conf2 = fx
        .write_file("two.toml", &format!("control_socket = \"{SOCK}\"\nlog = \"two.log\"\n{TWO}"));
    let mut second = Heat::start_raw(&fx, &["-c", conf2.to_str().unwrap()], |_| {});
    let code = second.wait_code(DEADLINE);
    let err = second.stderr();
    h.ensure(
        code == 2 && err.contains("a running heat answers there"),
        format!("live socket: {code} {err}"),
    );
    h.ensure(err.lines().count() == 1, format!("one line: {err}"));
    h.ensure(!fx.exists("two.log"), "nothing half-done: no log of the refused heat");
    h.ensure(client(&fx, &["status", "-c", CONF]).0 == 1, "the first heat still answers");

    // A file that is no socket.
    fx.write_file("plain", "x");
    let conf3 = fx.write_file("three.toml", &format!("control_socket = \"plain\"\n{TWO}"));
    let mut third = Heat::start_raw(&fx, &["-c", conf3.to_str().unwrap()], |_| {});
    let code = third.wait_code(DEADLINE);
    h.ensure(
        code == 2 && third.stderr().contains("is not a socket"),
        format!("{code} {}", third.stderr()),
    );
    h.ensure(fx.read("plain") == "x", "the file is left alone");

    h.stop();
    h.ensure(!fx.exists(SOCK), "heat removes its socket on the way out");
}

#[test]
fn a_silent_or_flooding_client_never_blocks_the_probes() {
    let fx = Fixture::new("ctl-slow");
    let mut h = service(
        &fx,
        "[probe.p]\ncommand = [\"sh\", \"-c\", \"echo run >> runs\"]\ninterval = \"50ms\"\n",
    );
    wait_checks(&h, "p", 1);

    // Silent clients: connected, sending nothing.
    let silent: Vec<UnixStream> =
        (0..8).map(|_| UnixStream::connect(fx.path(SOCK)).unwrap()).collect();
    let n = fx.lines("runs").len();
    h.wait_for("checks go on beside silent clients", || fx.lines("runs").len() >= n + 5);
    h.ensure(client(&fx, &["status", "-c", CONF]).0 == 0, "status answers beside them");

    // A client sending 100 MB in one line: refused after 64 KiB, the connection closed.
    let mut flood = UnixStream::connect(fx.path(SOCK)).unwrap();
    flood.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0usize;
    let started = Instant::now();
    while sent < 100 << 20 {
        match flood.write(&chunk) {
            Ok(k) => sent += k,
            Err(_) => break,
        }
    }
    h.ensure(sent < 100 << 20, format!("heat stopped reading: {sent} bytes taken"));
    h.ensure(started.elapsed() < Duration::from_secs(10), "refused at once, not after a stall");
    let n = fx.lines("runs").len();
    h.wait_for("checks go on after the flood", || fx.lines("runs").len() >= n + 3);

    // A silent client is let go after its time (5 s).
    let mut s = silent.into_iter().next().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let waited = Instant::now();
    let mut buf = [0u8; 16];
    let got = s.read(&mut buf);
    h.ensure(matches!(got, Ok(0)), format!("closed by heat: {got:?}"));
    h.ensure(waited.elapsed() < Duration::from_secs(14), "within the connection's time");

    // Garbage and a future version get one-line errors.
    let reply = raw_request(&fx.path(SOCK), "not json\n");
    h.ensure(reply["ok"] == false && reply["kind"] == "bad_request", format!("{reply}"));
    let reply = raw_request(&fx.path(SOCK), "{\"v\":2,\"cmd\":\"status\"}\n");
    h.ensure(reply["kind"] == "bad_version", format!("{reply}"));
    h.stop();
}

fn raw_request(socket: &Path, line: &str) -> Value {
    let mut s = UnixStream::connect(socket).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    serde_json::from_str(&out).unwrap_or(Value::Null)
}

#[test]
fn the_command_line_probe_answers_on_a_socket_when_given_one() {
    let fx = Fixture::new("ctl-cli");
    let mut h =
        Heat::start_raw(&fx, &["-q", "--control-socket", SOCK, "-i", "100ms", "true"], |_| {});
    h.wait_for("the socket", || fx.exists(SOCK));
    let (code, out, err) = client(&fx, &["status", "--socket", SOCK]);
    h.ensure(
        code == 0 && out.lines().any(|l| l.starts_with("cli ")),
        format!("{code}\n{out}{err}"),
    );
    let (code, _, err) = client(&fx, &["pause", "cli", "--socket", SOCK]);
    h.ensure(code == 0, format!("pause the command line's probe: {err}"));
    h.stop();
    h.ensure(!fx.exists(SOCK), "removed on the way out");

    // Without the flag the command line opens no socket.
    let h = Heat::start_raw(&fx, &["-q", "-t", "-i", "100ms", "true"], |_| {});
    let mut h = h;
    h.wait_exit(DEADLINE);
    h.ensure(h.stdout().contains("control_socket = none\nmetrics_listen = off"), h.stdout());
}

/// GET `path` from heat's metrics server: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: heat\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

/// The port heat says it listens on (`metrics on http://ADDR/metrics`).
fn metrics_addr(h: &Heat) -> String {
    let mut addr = String::new();
    h.wait_for("the metrics entry", || {
        let log = h.log();
        match log.split("metrics on http://").nth(1).and_then(|r| r.split("/metrics").next()) {
            Some(a) => {
                addr = a.to_string();
                true
            }
            None => false,
        }
    });
    addr
}

#[test]
fn metrics_follow_the_probes_and_status_json_is_the_status_document() {
    let fx = Fixture::new("ctl-metrics");
    fx.write_file(
        CONF,
        &format!("control_socket = \"{SOCK}\"\nmetrics_listen = \"127.0.0.1:0\"\n{TWO}"),
    );
    let mut h = Heat::start_raw(&fx, &["-c", CONF], |_| {});
    let addr = metrics_addr(&h);
    wait_checks(&h, "bad", 2);
    wait_checks(&h, "good", 2);

    let (line, body) = http_get(&addr, "/metrics");
    h.ensure(line.contains("200"), line.to_string());
    for want in [
        "heat_check_success{probe=\"good\"} 1",
        "heat_check_success{probe=\"bad\"} 0",
        "heat_build_info{version=\"",
        "heat_config_reload_success 1",
        "heat_log_entries_lost_total 0",
        "# TYPE heat_check_duration_seconds histogram",
        "# TYPE heat_schedule_lateness_seconds histogram",
        "heat_in_recovery{probe=\"bad\"} 0",
        "heat_paused{probe=\"good\"} 0",
        "heat_recovery_rounds_total{probe=\"bad\"} 0",
    ] {
        h.ensure(body.contains(want), format!("{want} in:\n{body}"));
    }
    let sample = |name: &str| -> f64 {
        body.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    h.ensure(sample("heat_checks_total{probe=\"bad\",result=\"failure\"}") >= 2.0, &body);
    h.ensure(sample("heat_consecutive_failures{probe=\"bad\"}") >= 2.0, &body);
    h.ensure(
        sample("heat_config_last_reload_timestamp_seconds").abs() - unix_now() as f64 <= 10.0,
        &body,
    );

    // A pause shows; a refused reload shows.
    client(&fx, &["pause", "good", "-c", CONF]);
    h.ensure(
        http_get(&addr, "/metrics").1.contains("heat_paused{probe=\"good\"} 1"),
        "paused gauge",
    );
    fx.write_file(CONF, "control_socket = \"ctl.sock\"\n[probe.x]\ninterval = \"0s\"\n");
    h.kill(nix::sys::signal::Signal::SIGHUP);
    h.wait_for("the refused reload", || h.log().contains("reload failed"));
    h.ensure(
        http_get(&addr, "/metrics").1.contains("heat_config_reload_success 0"),
        "reload gauge",
    );

    let (line, body) = http_get(&addr, "/status.json");
    h.ensure(line.contains("200"), &line);
    let doc: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    h.ensure(doc["v"] == 1 && probe(&doc, "good")["state"] == "paused", body.to_string());
    h.ensure(http_get(&addr, "/nope").0.contains("404"), "404 elsewhere");
    h.stop();
}

#[test]
fn with_metrics_off_heat_listens_on_no_port() {
    let fx = Fixture::new("ctl-noport");
    let mut h = service(&fx, TWO);
    wait_checks(&h, "good", 1);
    let listening = tcp_listen_inodes();
    let fds = std::fs::read_dir(format!("/proc/{}/fd", h.pid())).unwrap();
    let sockets: Vec<String> = fds
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|l| l.display().to_string())
        .filter_map(|l| l.strip_prefix("socket:[").map(|s| s.trim_end_matches(']').to_string()))
        .collect();
    h.ensure(!sockets.is_empty(), "the control socket is one");
    h.ensure(
        sockets.iter().all(|s| !listening.contains(s)),
        format!("no TCP listener: {sockets:?}"),
    );
    h.stop();
}

/// Inodes of listening TCP sockets (state 0A), v4 and v6.
fn tcp_listen_inodes() -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" {
                found.push(f[9].to_string());
            }
        }
    }
    found
}
