//! Fail and recovery hooks: their environment, the cleaned environment of
//! checks, and the fail-hook overlap rule.

mod util;

use util::*;

/// A hook body that saves its environment once, atomically.
const SAVE_ENV: &str = "[ -e hook.env ] || { env > hook.env.tmp; mv hook.env.tmp hook.env; }";

fn hook_env(h: &Heat) -> Vec<(String, String)> {
    h.wait_for("the hook's environment file", || h.fx.exists("hook.env"));
    parse_env(&h.fx.read("hook.env"))
}

fn ensure_var(h: &Heat, env: &[(String, String)], key: &str, want: &str) {
    let got = env_get(env, key);
    h.ensure(got == Some(want), format!("{key}: expected {want:?}, got {got:?}"));
}

#[test]
fn fail_hook_gets_the_failure() {
    let fx = Fixture::new("hooks-failenv");
    fx.write_script("check.sh", "echo $$ >> check.pids; exit 7");
    fx.write_script("fail.sh", SAVE_ENV);
    let mut h = fx.heat(&["-i", "200ms", "-s", "./check.sh", "--fail", "./fail.sh"]);
    let env = hook_env(&h);
    h.wait_named("./fail.sh", 1);
    h.wait_for("a stdout line", || !h.stdout_lines().is_empty());
    h.stop();

    ensure_var(&h, &env, "HEAT_FAIL_CODE", "7");
    ensure_var(&h, &env, "HEAT_FAIL_INTERVAL", "0.2");
    ensure_var(&h, &env, "HEAT_PROBE", "cli");
    let first_pid = fx.lines("check.pids")[0].clone();
    ensure_var(&h, &env, "HEAT_FAIL_PID", &first_pid);
    let (ended, _) = split_stdout_line(&h.stdout_lines()[0]).unwrap();
    ensure_var(&h, &env, "HEAT_FAIL_TIME", &ended.to_string());
    h.ensure(
        env_get(&env, "HEAT_TARGET_PID").is_none(),
        "no target: HEAT_TARGET_PID must be unset",
    );
    h.ensure(
        named(&h.entries(), "./fail.sh")[0].kind == "INFO",
        "a hook exiting 0 is an INFO entry",
    );
}

#[test]
fn fail_hook_gets_whole_second_interval_and_target() {
    let fx = Fixture::new("hooks-failenv-1s");
    fx.write_script("fail.sh", SAVE_ENV);
    let target = fx.sleep_target();
    let mut h = fx.heat(&[
        "-i",
        "1",
        "--pid",
        &target.to_string(),
        "--signal",
        "CONT",
        "--fail",
        "./fail.sh",
        "false",
    ]);
    let env = hook_env(&h);
    h.stop();
    ensure_var(&h, &env, "HEAT_FAIL_INTERVAL", "1");
    ensure_var(&h, &env, "HEAT_FAIL_CODE", "1");
    ensure_var(&h, &env, "HEAT_TARGET_PID", &target.to_string());
}

#[test]
fn recovery_hook_gets_the_streak() {
    let fx = Fixture::new("hooks-recenv");
    // Runs fail with 4, 5, 6; 600 ms apart so the first and third end in different seconds.
    fx.write_script(
        "check.sh",
        "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo $$ >> check.pids; exit $((n+3))",
    );
    fx.write_script("rec.sh", SAVE_ENV);
    let mut h =
        fx.heat(&["-i", "600ms", "--threshold", "3", "-s", "./check.sh", "--recovery", "./rec.sh"]);
    let env = hook_env(&h);
    h.wait_for("3 stdout lines", || h.stdout_lines().len() >= 3);
    h.stop();

    let times: Vec<u64> =
        h.stdout_lines().iter().map(|l| split_stdout_line(l).unwrap().0).collect();
    ensure_var(&h, &env, "HEAT_FAIL_CNT", "3");
    ensure_var(&h, &env, "HEAT_FAIL_CODE", "6");
    ensure_var(&h, &env, "HEAT_FAIL_TIME", &times[0].to_string());
    ensure_var(&h, &env, "HEAT_FAIL_TIME_LAST", &times[2].to_string());
    ensure_var(&h, &env, "HEAT_FAIL_INTERVAL", "0.6");
    ensure_var(&h, &env, "HEAT_PROBE", "cli");
    ensure_var(&h, &env, "HEAT_FAIL_PID", &fx.lines("check.pids")[2]);
}

#[test]
fn variables_meant_for_heat_are_not_passed_on() {
    let fx = Fixture::new("hooks-cleanenv");
    fx.write_script(
        "check.sh",
        "[ -e check.env ] || { env > check.env.tmp; mv check.env.tmp check.env; }; exit 1",
    );
    fx.write_script("fail.sh", SAVE_ENV);
    let mut h =
        Heat::start_with(&fx, &["-i", "200ms", "-s", "./check.sh", "--fail", "./fail.sh"], |cmd| {
            cmd.env("NOTIFY_SOCKET", "/nonexistent/notify")
                .env("WATCHDOG_USEC", "1000000")
                .env("WATCHDOG_PID", "1")
                .env("LISTEN_FDS", "1")
                .env("LISTEN_PID", "1")
                .env("LISTEN_FDNAMES", "x")
                .env("HEAT_FOO", "bar")
                .env("HEAT_PROBE", "spoofed")
                .env("KEEP_ME", "yes");
        });
    let hook = hook_env(&h);
    h.wait_for("the check's environment file", || fx.exists("check.env"));
    h.stop();
    let check = parse_env(&fx.read("check.env"));
    for (who, env) in [("check", &check), ("hook", &hook)] {
        for key in [
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
            "HEAT_FOO",
        ] {
            h.ensure(env_get(env, key).is_none(), format!("the {who} must not see {key}"));
        }
        h.ensure(
            env_get(env, "KEEP_ME") == Some("yes"),
            format!("the {who} should see heat's other variables"),
        );
        h.ensure(
            env_get(env, "HEAT_PROBE") == Some("cli"),
            format!("the {who} should see HEAT_PROBE=cli"),
        );
    }
}

/// `date +%s.%N` as seconds.
fn times(fx: &Fixture, file: &str) -> Vec<f64> {
    fx.lines(file).iter().map(|l| l.parse().unwrap()).collect()
}

#[test]
fn missed_ticks_during_a_fail_hook_run_one_check() {
    let fx = Fixture::new("hooks-overlap");
    // The first run fails; the hook then spans about three intervals.
    fx.write_script(
        "check.sh",
        "date +%s.%N >> runs\n[ -e failed-once ] && exit 0\ntouch failed-once; exit 1",
    );
    fx.write_script("fail.sh", "date +%s.%N >> hook\nsleep 1\ndate +%s.%N >> hook");
    let mut h = fx.heat(&["-i", "300ms", "-s", "./check.sh", "--fail", "./fail.sh"]);
    h.wait_for("5 check runs", || fx.lines("runs").len() >= 5);
    h.stop();

    let runs = times(&fx, "runs");
    let hook = times(&fx, "hook");
    h.ensure(hook.len() == 2, "the fail hook should run once (the later checks succeed)");
    let (hook_start, hook_end) = (hook[0], hook[1]);
    let during = runs.iter().filter(|&&t| t > hook_start && t < hook_end).count();
    h.ensure(during == 0, format!("{during} checks started while the fail hook ran"));
    let catch_up = runs[1] - hook_end;
    h.ensure(
        (-0.01..0.15).contains(&catch_up),
        format!("the missed-tick check should run at once ({catch_up:.3}s)"),
    );
    let gap = runs[2] - runs[1];
    h.ensure(
        gap > 0.08,
        format!("exactly one check after the hook, then the schedule ({gap:.3}s gap)"),
    );
    // The schedule keeps its original phase: later starts sit on t0 + k·300ms.
    for &t in &runs[2..] {
        let k = ((t - runs[0]) / 0.3).round();
        let off = (t - runs[0]) - k * 0.3;
        h.ensure(off.abs() < 0.08, format!("a check started {off:.3}s off the original phase"));
    }
}

#[test]
fn fail_hook_does_not_run_in_recovery() {
    let fx = Fixture::new("hooks-notinrec");
    fx.write_script("fail.sh", "true");
    fx.write_script("rec.sh", "true");
    let mut h = fx.heat(&[
        "-i",
        "200ms",
        "--threshold",
        "2",
        "--fail",
        "./fail.sh",
        "--recovery",
        "./rec.sh",
        "false",
    ]);
    // Round 1 after check 2, a window of 2 checks, round 2: then look back.
    let entries = h.wait_named("./rec.sh", 2);
    h.stop();
    let fails = named(&entries, "./fail.sh").len();
    h.ensure(
        fails == 1,
        format!("the fail hook should run only for the first failure, ran {fails} times"),
    );
    let checks = named(&entries, "false").len();
    h.ensure(checks >= 4, format!("expected at least 4 checks before round 2, saw {checks}"));
}

#[test]
fn failing_hook_is_a_fail_entry() {
    let fx = Fixture::new("hooks-failfail");
    fx.write_script("fail.sh", "echo hook says no; exit 3");
    let mut h = fx.heat(&["-i", "200ms", "--fail", "./fail.sh", "false"]);
    let entries = h.wait_named("./fail.sh", 1);
    h.stop();
    let e = named(&entries, "./fail.sh")[0];
    h.ensure(
        e.kind == "FAIL" && e.lines == ["hook says no"],
        "a hook exiting 3 is FAIL with its output",
    );
}

#[test]
fn hook_leftovers_are_not_killed() {
    let fx = Fixture::new("hooks-leftover");
    fx.write_script(
        "fail.sh",
        "[ -e kept.pid ] && exit 0\nsleep 30 >/dev/null 2>&1 &\necho $! > kept.pid",
    );
    let mut h = fx.heat(&["-i", "200ms", "--fail", "./fail.sh", "false"]);
    h.wait_named("./fail.sh", 2);
    let pid = fx.read_pid("kept.pid").unwrap_or_else(|| h.fail("no kept.pid"));
    h.ensure(alive(pid), "a process started by a hook must survive the hook");
    h.stop();
}

#[test]
fn hook_at_its_timeout_is_terminated() {
    let fx = Fixture::new("hooks-timeout");
    fx.write_script("fail.sh", "echo $$ > hook.pid\nexec sleep 30");
    let mut h = fx.heat(&["-i", "5", "--hook-timeout", "200ms", "--fail", "./fail.sh", "false"]);
    let entries = h.wait_named("./fail.sh", 1);
    h.ensure_running("a hook timeout is not fatal");
    let hook = fx.read_pid("hook.pid").unwrap_or_else(|| h.fail("no hook.pid"));
    h.ensure(wait_until(DEADLINE, || !alive(hook)), "the hook should be ended");
    h.stop();
    let e = named(&entries, "./fail.sh")[0];
    h.ensure(e.kind == "FAIL", "a hook ended at its timeout is FAIL");
    let marker = "[heat: timed out after 200ms, terminated]";
    h.ensure(e.lines.last().map(String::as_str) == Some(marker), format!("expected {marker:?}"));
}

#[test]
fn fail_hook_of_a_check_that_never_started_has_no_pid() {
    let fx = Fixture::new("hooks-nopid");
    fx.write_script("check.sh", "rm -f \"$0\"\nexit 0");
    fx.write_script("fail.sh", SAVE_ENV);
    let mut h = fx.heat(&["-i", "200ms", "-s", "./check.sh", "--fail", "./fail.sh"]);
    let env = hook_env(&h);
    h.stop();
    ensure_var(&h, &env, "HEAT_FAIL_CODE", "127");
    h.ensure(env_get(&env, "HEAT_FAIL_PID").is_none(), "a check that never started has no pid");
}
