//! How checks run: timeouts, leftovers, floods, reaping, fds, script rules.

mod util;

use util::*;

#[test]
fn timeout_kills_the_whole_group_with_code_124() {
    let fx = Fixture::new("exec-timeout");
    fx.write_script("check.sh", "sleep 30 & echo $! > gc.pid\nwait");
    let mut h = fx.heat(&["-i", "5", "--timeout", "200ms", "-s", "./check.sh"]);
    let entries = h.wait_named("./check.sh", 1);
    let e = named(&entries, "./check.sh")[0].clone();
    h.wait_for("a stdout line", || !h.stdout_lines().is_empty());
    let gc = fx.read_pid("gc.pid").unwrap_or_else(|| h.fail("no gc.pid"));
    h.ensure(wait_until(DEADLINE, || !alive(gc)), "the check's grandchild should be killed");
    h.stop();
    h.ensure(e.kind == "FAIL", "a timed-out check is FAIL");
    h.ensure(
        e.lines.last().map(String::as_str) == Some("[heat: timed out after 200ms, killed]"),
        "expected the timeout marker",
    );
    let line = h.stdout_lines()[0].clone();
    let want = "Failed: Exit Code 124, details in heat.verbose.log";
    h.ensure(
        split_stdout_line(&line).is_some_and(|(_, r)| r == want),
        format!("stdout should say {want:?}"),
    );
}

#[test]
fn leftovers_of_a_successful_check_are_killed() {
    let fx = Fixture::new("exec-leftover");
    fx.write_script("check.sh", "sleep 30 & echo $! > left.pid\nexit 0");
    let mut h = fx.heat(&["-i", "5", "-s", "./check.sh"]);
    let entries = h.wait_named("./check.sh", 1);
    let left = fx.read_pid("left.pid").unwrap_or_else(|| h.fail("no left.pid"));
    h.ensure(
        wait_until(DEADLINE, || !alive(left)),
        "a check's leftover should be killed when it exits",
    );
    h.ensure(named(&entries, "./check.sh")[0].kind == "INFO", "the check itself succeeded");
    h.stop();
}

#[test]
fn output_flood_is_capped_and_counts_as_ok() {
    let fx = Fixture::new("exec-flood");
    let mut h = fx.heat(&["-i", "5", "sh", "-c", "yes | head -c 5000000"]);
    let name = "sh -c 'yes | head -c 5000000'";
    h.wait_named(name, 1);
    h.wait_for("a stdout line", || !h.stdout_lines().is_empty());
    // Read once heat is gone: a poll can catch a large entry half written.
    h.stop();
    let entries = h.entries();
    let e = named(&entries, name)[0];
    h.ensure(e.kind == "INFO", "exit 0 despite the flood: INFO");
    let marker = format!("[heat: {} bytes dropped]", 5_000_000 - 65_536);
    h.ensure(e.lines.last() == Some(&marker), format!("expected {marker:?}"));
    h.ensure(split_stdout_line(&h.stdout_lines()[0]).is_some_and(|(_, r)| r == "OK"), "stdout: OK");
}

#[test]
fn no_zombies_are_left() {
    let fx = Fixture::new("exec-zombies");
    // Leftovers, a double fork into a new session, and a plain exit.
    fx.write_script("check.sh", "sleep 5 &\n( setsid sleep 0.05 & ) \nexit 0");
    let mut h = fx.heat(&["-i", "100ms", "-s", "./check.sh"]);
    h.wait_named("./check.sh", 5);
    let zombies = |h: &Heat| -> Vec<i32> {
        children_of(h.pid()).into_iter().filter(|&(_, s)| s == 'Z').map(|(p, _)| p).collect()
    };
    let before = zombies(&h);
    let n = named(&h.entries(), "./check.sh").len();
    h.wait_named("./check.sh", n + 3); // any zombie still here by now was never reaped
    let after = zombies(&h);
    let leaked: Vec<i32> = before.iter().copied().filter(|p| after.contains(p)).collect();
    h.ensure(leaked.is_empty(), format!("zombie children of heat: {leaked:?}"));
    h.stop();
}

/// The fewest fds heat holds over a few samples: a check in flight holds a
/// pipe and a pidfd for a moment, a leak holds them for good.
fn idle_fds(pid: i32) -> usize {
    (0..20)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(3));
            fd_count(pid)
        })
        .min()
        .unwrap()
}

#[test]
fn no_file_descriptors_leak() {
    let fx = Fixture::new("exec-fds");
    let mut h = fx.heat(&["-i", "20ms", "-q", "true"]);
    h.wait_named("true", 10);
    let first = idle_fds(h.pid());
    h.wait_named("true", 70);
    let second = idle_fds(h.pid());
    h.ensure(first > 0, "cannot read heat's fds");
    h.ensure(
        second <= first + 1,
        format!("heat's fds grew from {first} to {second} over 60 checks"),
    );
    h.stop();
}

#[test]
fn writable_scripts_and_hooks_are_refused_as_root() {
    let fx = Fixture::new("exec-0666");
    fx.write_script("check.sh", "touch ran");
    fx.chmod("check.sh", 0o777);
    fx.write_script("plain.sh", "touch ran");
    fx.chmod("plain.sh", 0o666);
    fx.write_script("fail.sh", "true");
    fx.chmod("fail.sh", 0o775);
    fx.write_script("ok.sh", "touch ran");
    // (args, the file to name, the mode to name when the refusal is for it)
    for (args, culprit, mode) in [
        (vec!["-i", "200ms", "-s", "./check.sh"], "check.sh", Some("777")),
        (vec!["-i", "200ms", "-s", "./plain.sh"], "plain.sh", None),
        (vec!["-i", "200ms", "-s", "./ok.sh", "--fail", "./fail.sh"], "fail.sh", Some("775")),
    ] {
        let mut h = fx.heat_run(&args);
        let code = h.wait_code(DEADLINE);
        if !is_root() && mode.is_some() {
            h.ensure(code != 2, "not root: a writable script is allowed");
            continue;
        }
        h.ensure(code == 2, format!("a writable {culprit} must be refused, exit {code}"));
        let err = h.stderr();
        let named = err.starts_with("heat: ")
            && err.contains(culprit)
            && mode.is_none_or(|m| err.contains(m));
        h.ensure(named, format!("stderr should name {culprit} and its mode {mode:?}"));
        h.ensure(!fx.exists("ran"), "nothing should run");
    }
}

#[test]
fn script_that_vanishes_fails_with_127() {
    let fx = Fixture::new("exec-127");
    fx.write_script("check.sh", "rm -f \"$0\"\nexit 0");
    let mut h = fx.heat(&["-i", "200ms", "-s", "./check.sh"]);
    let entries = h.wait_named("./check.sh", 2);
    h.wait_for("2 stdout lines", || h.stdout_lines().len() >= 2);
    h.stop();
    let e = named(&entries, "./check.sh")[1];
    h.ensure(e.kind == "FAIL", "a check that cannot start is FAIL");
    h.ensure(
        e.lines.last().is_some_and(|l| l.starts_with("[heat: cannot start: ")),
        "expected a `[heat: cannot start: ...]` marker",
    );
    let want = "Failed: Exit Code 127, details in heat.verbose.log";
    h.ensure(
        split_stdout_line(&h.stdout_lines()[1]).is_some_and(|(_, r)| r == want),
        format!("want {want:?}"),
    );
}

#[test]
fn script_without_shebang_runs_with_sh() {
    let fx = Fixture::new("exec-noshebang");
    fx.write_file("check.sh", "echo $((6 * 7)) > ran\n");
    fx.chmod("check.sh", 0o755);
    let mut h = fx.heat(&["-i", "200ms", "-s", "./check.sh"]);
    let entries = h.wait_named("./check.sh", 1);
    h.stop();
    h.ensure(
        named(&entries, "./check.sh")[0].kind == "INFO",
        "a script without #! runs with /bin/sh",
    );
    h.ensure(fx.read("ran").trim() == "42", "the script's effect");
}

#[test]
fn check_stdin_is_dev_null() {
    let fx = Fixture::new("exec-stdin");
    fx.write_script("check.sh", "if read line; then echo \"read $line\"; else echo eof; fi");
    let mut h = fx.heat(&["-i", "200ms", "-s", "./check.sh"]);
    let entries = h.wait_named("./check.sh", 1);
    h.stop();
    h.ensure(named(&entries, "./check.sh")[0].lines == ["eof"], "stdin should be at EOF");
}

#[test]
fn check_runs_in_its_own_process_group() {
    let fx = Fixture::new("exec-pgrp");
    fx.write_script(
        "check.sh",
        "cut -d')' -f2 /proc/$$/stat | cut -d' ' -f4 > pgid\necho $$ > pid",
    );
    let mut h = fx.heat(&["-i", "5", "-s", "./check.sh"]);
    h.wait_named("./check.sh", 1);
    h.stop();
    let (pgid, pid) = (fx.read("pgid"), fx.read("pid"));
    h.ensure(
        !pgid.trim().is_empty() && pgid.trim() == pid.trim(),
        format!("pgid {pgid:?} should be the check's pid {pid:?}"),
    );
}

#[test]
fn script_that_loses_its_exec_bit_fails_with_126() {
    let fx = Fixture::new("exec-126");
    fx.write_script("check.sh", "chmod 644 \"$0\"\nexit 0");
    let mut h = fx.heat(&["-i", "200ms", "-s", "./check.sh"]);
    h.wait_for("2 stdout lines", || h.stdout_lines().len() >= 2);
    h.stop();
    let want = "Failed: Exit Code 126, details in heat.verbose.log";
    let line = h.stdout_lines()[1].clone();
    h.ensure(split_stdout_line(&line).is_some_and(|(_, r)| r == want), format!("want {want:?}"));
}
