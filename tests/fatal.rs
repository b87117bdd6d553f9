//! Fatal conditions of the command line : exit 1, at once.

mod util;

use std::time::{Duration, Instant};

use util::*;

/// Expects exit 1 within ~2 s of `since`, `heat: <text>` on stderr and an
/// ERR `heat` entry with `<text>`.
fn ensure_fatal(h: &mut Heat, since: Instant, text: &str) {
    let code = h.wait_code(DEADLINE);
    let took = since.elapsed();
    h.ensure(code == 1, format!("expected exit 1, got {code}"));
    h.ensure(
        took < Duration::from_secs(3),
        format!("the fatal exit should be immediate, took {took:?}"),
    );
    let line = format!("heat: {text}");
    h.ensure(
        h.stderr().lines().any(|l| l == line),
        format!("stderr should have the line {line:?}"),
    );
    let entries = h.entries();
    let err = entries.iter().any(|e| e.is_heat() && e.kind == "ERR" && e.lines == [text]);
    h.ensure(err, format!("the log should have an ERR heat entry {text:?}"));
}

#[test]
fn target_exit_is_fatal() {
    let fx = Fixture::new("fatal-target");
    let target = fx.sleep_target();
    let mut h = fx.heat(&["-i", "200ms", "--pid", &target.to_string(), "--signal", "CONT", "true"]);
    h.wait_named("true", 1);
    let since = Instant::now();
    fx.kill_helper(target);
    ensure_fatal(&mut h, since, &format!("target pid {target} exited"));
}

#[test]
fn check_killed_from_outside_is_fatal() {
    let fx = Fixture::new("fatal-checkkill");
    fx.write_script("check.sh", "echo $$ > check.pid\nexec sleep 30");
    let mut h = fx.heat(&["-i", "30", "-s", "./check.sh"]);
    h.wait_for("the check's pid", || fx.read_pid("check.pid").is_some());
    let pid = fx.read_pid("check.pid").unwrap();
    h.wait_for("the check to exec sleep", || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    let since = Instant::now();
    send(pid, Signal::SIGKILL);
    ensure_fatal(
        &mut h,
        since,
        &format!("check pid {pid} was killed by SIGKILL, not sent by heat"),
    );
}

#[test]
fn check_that_stops_itself_is_fatal() {
    let fx = Fixture::new("fatal-checkstop");
    fx.write_script("check.sh", "echo $$ > check.pid\nkill -STOP $$\nexit 0");
    let mut h = fx.heat(&["-i", "30", "-s", "./check.sh"]);
    let since = Instant::now();
    h.wait_for("the check's pid", || fx.read_pid("check.pid").is_some());
    let pid = fx.read_pid("check.pid").unwrap();
    ensure_fatal(&mut h, since, &format!("check pid {pid} was stopped by SIGSTOP"));
    h.ensure(wait_until(DEADLINE, || !alive(pid)), "the stopped check should be ended");
}

#[test]
fn hook_killed_from_outside_is_fatal() {
    let fx = Fixture::new("fatal-hookkill");
    fx.write_script("fail.sh", "echo $$ > hook.pid\nexec sleep 30");
    let mut h = fx.heat(&["-i", "30", "--fail", "./fail.sh", "false"]);
    h.wait_for("the hook's pid", || fx.read_pid("hook.pid").is_some());
    let pid = fx.read_pid("hook.pid").unwrap();
    h.wait_for("the hook to exec sleep", || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    let since = Instant::now();
    send(pid, Signal::SIGKILL);
    ensure_fatal(
        &mut h,
        since,
        &format!("hook ./fail.sh pid {pid} was killed by SIGKILL, not sent by heat"),
    );
}

#[test]
fn hook_that_stops_itself_is_fatal() {
    let fx = Fixture::new("fatal-hookstop");
    fx.write_script("fail.sh", "echo $$ > hook.pid\nkill -STOP $$\nexit 0");
    let mut h = fx.heat(&["-i", "30", "--fail", "./fail.sh", "false"]);
    let since = Instant::now();
    h.wait_for("the hook's pid", || fx.read_pid("hook.pid").is_some());
    let pid = fx.read_pid("hook.pid").unwrap();
    ensure_fatal(&mut h, since, &format!("hook ./fail.sh pid {pid} was stopped by SIGSTOP"));
    h.ensure(wait_until(DEADLINE, || !alive(pid)), "the stopped hook should be ended");
}

#[test]
fn pidfile_target_is_followed_across_a_restart() {
    let fx = Fixture::new("fatal-pidfile");
    let first = fx.sleep_target();
    fx.replace_file("t.pid", &format!("{first}\n"), 0o644);
    let mut h = fx.heat(&["-i", "1", "--pidfile", "./t.pid", "--signal", "CONT", "true"]);
    h.wait_named("true", 1);
    // The target "restarts": it exits, then the file names its successor.
    fx.kill_helper(first);
    let second = fx.sleep_target();
    fx.replace_file("t.pid", &format!("{second}\n"), 0o644);
    let prefix = format!("target pid {first} exited; following pid {second} from ");
    let entries = h.wait_event(&prefix);
    let event = heat_events(&entries).into_iter().find(|t| t.starts_with(&prefix)).unwrap();
    h.ensure(event.ends_with("t.pid"), format!("the event should name the pidfile: {event:?}"));
    let checks = named(&entries, "true").len();
    h.wait_named("true", checks + 1);
    h.ensure_running("a followed target is not fatal");
    // Now the successor dies and nothing replaces it: fatal after the wait.
    let since = Instant::now();
    fx.kill_helper(second);
    let code = h.wait_code(DEADLINE);
    h.ensure(code == 1, format!("expected exit 1 once no live pid appears, got {code}"));
    h.ensure(since.elapsed() < Duration::from_secs(4), "the wait for a new pid is one interval");
    let text = format!("target pid {second} exited");
    h.ensure(
        h.stderr().lines().any(|l| l == format!("heat: {text}")),
        format!("stderr should say {text:?}"),
    );
}

#[test]
fn pidfile_naming_no_live_process_is_refused() {
    let fx = Fixture::new("fatal-pidfile-dead");
    let pid = fx.spawn_helper("true", &[]);
    fx.kill_helper(pid);
    fx.replace_file("t.pid", &format!("{pid}\n"), 0o644);
    let mut h = fx.heat_run(&["-i", "200ms", "--pidfile", "./t.pid", "touch", "ran"]);
    let code = h.wait_code(DEADLINE);
    h.ensure(code == 2, format!("expected exit 2, got {code}"));
    h.ensure(h.stderr().starts_with("heat: "), "a one-line `heat: ` error expected");
    h.ensure(!fx.exists("ran") && !fx.exists(LOG), "nothing should run");
}

#[test]
fn fatal_exit_ends_the_running_check() {
    let fx = Fixture::new("fatal-endcheck");
    let target = fx.sleep_target();
    fx.write_script("check.sh", "echo $$ > check.pid\nsleep 30 & wait $!");
    let mut h = fx.heat(&[
        "-i",
        "30",
        "--pid",
        &target.to_string(),
        "--signal",
        "CONT",
        "-s",
        "./check.sh",
    ]);
    h.wait_for("the check's pid", || fx.read_pid("check.pid").is_some());
    let check = fx.read_pid("check.pid").unwrap();
    let since = Instant::now();
    fx.kill_helper(target);
    ensure_fatal(&mut h, since, &format!("target pid {target} exited"));
    h.ensure(wait_until(DEADLINE, || !alive(check)), "the running check should be ended");
    let entries = h.entries();
    let e = named(&entries, "./check.sh");
    let ended = e.len() == 1
        && e[0].kind == "INFO"
        && e[0].lines.last().map(String::as_str) == Some("[heat: ended by heat]");
    h.ensure(ended, "the ended check is one INFO entry ending `[heat: ended by heat]`");
    h.ensure(h.stdout().is_empty(), "a check ended by heat prints no stdout line");
}
