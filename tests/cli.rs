//! The command line: start-up errors, argv handling, `-t` and warnings.

mod util;

use util::*;

/// Runs heat with `args` (its check is `touch ran` unless the args say
/// otherwise) and expects a start-up error: exit 2, one `heat: ` line on
/// stderr mentioning every word of `culprit`, nothing run, no log.
fn usage_error(fx: &Fixture, args: &[&str], culprit: &[&str]) {
    let mut h = fx.heat_run(args);
    let code = h.wait_code(DEADLINE);
    h.ensure(code == 2, format!("expected exit 2, got {code}"));
    let err = h.stderr();
    let lines: Vec<&str> = err.lines().collect();
    h.ensure(
        lines.len() == 1 && lines[0].starts_with("heat: "),
        "stderr should be exactly one line starting with `heat: `",
    );
    for word in culprit {
        h.ensure(lines[0].contains(word), format!("stderr should name {word:?}"));
    }
    h.ensure(h.stdout().is_empty(), "stdout should be empty");
    h.ensure(!fx.exists(LOG), "no log should be created");
    h.ensure(!fx.exists("ran"), "nothing should have run");
}

#[test]
fn unknown_signal_is_refused() {
    let fx = Fixture::new("cli-badsig");
    let target = fx.sleep_target().to_string();
    usage_error(
        &fx,
        &["-i", "200ms", "--pid", &target, "--signal", "NOSUCHSIG", "touch", "ran"],
        &["NOSUCHSIG"],
    );
    usage_error(&fx, &["-i", "200ms", "--fault-signal", "SIGBOGUS", "touch", "ran"], &["SIGBOGUS"]);
}

#[test]
fn zero_interval_is_refused() {
    let fx = Fixture::new("cli-interval0");
    usage_error(&fx, &["--interval", "0", "touch", "ran"], &["--interval"]);
    usage_error(&fx, &["-i", "0s", "touch", "ran"], &["interval"]);
}

#[test]
fn bad_durations_are_refused() {
    let fx = Fixture::new("cli-baddur");
    usage_error(&fx, &["-i", "5x", "touch", "ran"], &["5x"]);
    usage_error(&fx, &["-i", "200ms", "--timeout", "0", "touch", "ran"], &["timeout"]);
}

#[test]
fn zero_and_negative_pids_are_refused() {
    let fx = Fixture::new("cli-pid0");
    usage_error(&fx, &["-i", "200ms", "--pid", "0", "touch", "ran"], &["pid"]);
    usage_error(&fx, &["-i", "200ms", "--pid=-5", "touch", "ran"], &["pid"]);
}

#[test]
fn dead_pid_is_refused() {
    let fx = Fixture::new("cli-deadpid");
    let pid = fx.spawn_helper("true", &[]);
    fx.kill_helper(pid); // reaped: the pid names no process now
    usage_error(
        &fx,
        &["-i", "200ms", "--pid", &pid.to_string(), "touch", "ran"],
        &[&pid.to_string()],
    );
}

#[test]
fn pid_1_is_never_a_target() {
    let fx = Fixture::new("cli-pid1");
    usage_error(&fx, &["-i", "200ms", "--pid", "1", "touch", "ran"], &["pid", "1"]);
}

#[test]
fn command_and_script_together_are_refused() {
    let fx = Fixture::new("cli-both");
    fx.write_script("check.sh", "touch ran");
    usage_error(&fx, &["-i", "200ms", "-s", "./check.sh", "touch", "ran"], &[]);
}

#[test]
fn neither_command_nor_script_is_refused() {
    let fx = Fixture::new("cli-neither");
    usage_error(&fx, &["-i", "200ms"], &[]);
}

#[test]
fn zero_threshold_is_refused() {
    let fx = Fixture::new("cli-threshold0");
    usage_error(&fx, &["-i", "200ms", "--threshold", "0", "touch", "ran"], &["threshold"]);
}

#[test]
fn missing_or_non_executable_script_is_refused() {
    let fx = Fixture::new("cli-script");
    usage_error(&fx, &["-i", "200ms", "-s", "./nope.sh"], &["nope.sh"]);
    fx.write_file("plain.sh", "#!/bin/sh\ntouch ran\n");
    fx.chmod("plain.sh", 0o644);
    usage_error(&fx, &["-i", "200ms", "-s", "./plain.sh"], &["plain.sh"]);
}

#[test]
fn missing_or_non_executable_hook_is_refused() {
    let fx = Fixture::new("cli-hook");
    usage_error(&fx, &["-i", "200ms", "--fail", "./nofail.sh", "touch", "ran"], &["nofail.sh"]);
    fx.write_file("rec.sh", "#!/bin/sh\ntrue\n");
    fx.chmod("rec.sh", 0o644);
    usage_error(&fx, &["-i", "200ms", "--recovery", "./rec.sh", "touch", "ran"], &["rec.sh"]);
}

#[test]
fn command_not_in_path_is_refused() {
    let fx = Fixture::new("cli-nopath");
    usage_error(
        &fx,
        &["-i", "200ms", "nosuchprog-heat-test", "x"],
        &["nosuchprog-heat-test", "not found"],
    );
}

#[test]
fn missing_log_dir_is_refused() {
    let fx = Fixture::new("cli-logdir");
    usage_error(&fx, &["-i", "200ms", "--log", "./nodir/heat.log", "touch", "ran"], &["nodir"]);
    assert!(!fx.exists("nodir"), "heat must not create the log's directory");
}

#[test]
fn stopping_fault_signal_without_target_is_refused() {
    let fx = Fixture::new("cli-stopnotarget");
    fx.write_script("rec.sh", "true");
    usage_error(
        &fx,
        &["-i", "200ms", "--recovery", "./rec.sh", "--fault-signal", "STOP", "touch", "ran"],
        &["STOP"],
    );
}

#[test]
fn exec_form_reports_the_exit_code() {
    let fx = Fixture::new("cli-exit3");
    let mut h = fx.heat(&["-i", "200ms", "sh", "-c", "exit 3"]);
    h.wait_for("a stdout line", || !h.stdout_lines().is_empty());
    let line = h.stdout_lines()[0].clone();
    let (unix, rest) =
        split_stdout_line(&line).unwrap_or_else(|| h.fail("stdout line is not `<unix>: ...`"));
    h.ensure(
        rest == "Failed: Exit Code 3, details in heat.verbose.log",
        format!("stdout line: {line:?}"),
    );
    h.ensure(unix.abs_diff(unix_now()) <= 5, "stdout time is not now");
    let entries = h.wait_named("sh -c 'exit 3'", 1);
    h.ensure(named(&entries, "sh -c 'exit 3'")[0].kind == "FAIL", "check entry should be FAIL");
    h.stop();
}

#[test]
fn with_vv_each_check_end_is_said_on_stderr_with_its_probe_and_code() {
    let fx = Fixture::new("cli-vv");
    let mut h = fx.heat(&["-vv", "-i", "200ms", "sh", "-c", "exit 3"]);
    let ended = |err: &str| {
        err.lines()
            .filter(|l| {
                l.starts_with("heat: debug: check ended ")
                    && l.contains(" probe=cli ")
                    && l.contains(" code=3 ")
            })
            .count()
    };
    h.wait_for("two check-end lines on stderr", || ended(&h.stderr()) >= 2);
    let err = h.stderr();
    h.ensure(err.contains("heat: debug: check started probe=cli pid="), "a check-start line");
    h.ensure(err.contains("heat: debug: tick probe=cli starts_check=true"), "a tick line");
    h.stop();
    // Every diagnostic is one line with heat's prefix, tracing's included.
    let err = h.stderr();
    let stray: Vec<&str> = err.lines().filter(|l| !l.starts_with("heat: ")).collect();
    h.ensure(stray.is_empty(), format!("lines without the prefix: {stray:?}"));
}

#[test]
fn options_after_the_command_belong_to_it() {
    let fx = Fixture::new("cli-argv");
    let args = [
        "-i",
        "200ms",
        "sh",
        "-c",
        "printf '%s\\n' \"$@\" > argv",
        "sh",
        "-q",
        "--log",
        "x.log",
        "-i",
        "5",
    ];
    let mut h = fx.heat(&args);
    h.wait_for("the argv file", || fx.lines("argv").len() == 5);
    h.ensure(fx.lines("argv") == ["-q", "--log", "x.log", "-i", "5"], "argv handed to the check");
    // -q and --log were the check's: heat prints to stdout and logs to the default.
    h.wait_for("an OK line on stdout", || h.stdout_lines().iter().any(|l| l.ends_with(": OK")));
    h.ensure(fx.exists(LOG) && !fx.exists("x.log"), "log should be the default heat.verbose.log");
    h.stop();
}

#[test]
fn check_config_prints_and_exits_without_log() {
    let fx = Fixture::new("cli-t");
    let mut h = fx.heat_run(&["-t", "-i", "200ms", "--threshold", "3", "touch", "ran"]);
    let code = h.wait_code(DEADLINE);
    h.ensure(code == 0, format!("-t should exit 0, got {code}"));
    let out = h.stdout();
    h.ensure(out.contains("touch"), "-t output should show the check");
    h.ensure(out.contains("interval"), "-t output should show the interval");
    h.ensure(out.contains("threshold"), "-t output should show the threshold");
    h.ensure(!fx.exists(LOG), "-t must not create the log");
    h.ensure(!fx.exists("ran"), "-t must not run the check");
}

#[test]
fn check_config_refuses_what_a_start_would() {
    let fx = Fixture::new("cli-t-bad");
    usage_error(&fx, &["-t", "-i", "200ms", "--threshold", "0", "touch", "ran"], &["threshold"]);
}

#[test]
fn signal_spellings_are_equivalent() {
    let fx = Fixture::new("cli-sigspell");
    let target = fx.sleep_target().to_string();
    for sig in ["USR1", "SIGUSR1", "usr1", "10", "RTMIN+2"] {
        let mut h = fx.heat_run(&["-t", "-i", "200ms", "--pid", &target, "--signal", sig, "true"]);
        let code = h.wait_code(DEADLINE);
        h.ensure(code == 0, format!("--signal {sig} should be accepted, got exit {code}"));
    }
}

/// Runs `-t` and expects exit 0 with a `heat: warning:` line naming `word`.
fn warns(fx: &Fixture, args: &[&str], word: &str) {
    let mut h = fx.heat_run(args);
    let code = h.wait_code(DEADLINE);
    h.ensure(code == 0, format!("a warning must not fail -t, got exit {code}"));
    let err = h.stderr();
    let warning = err.lines().find(|l| l.starts_with("heat: warning: "));
    h.ensure(
        warning.is_some_and(|w| w.contains(word)),
        format!("expected a warning mentioning {word:?}"),
    );
}

#[test]
fn useless_combinations_are_warned_about() {
    let fx = Fixture::new("cli-warn");
    fx.write_script("fail.sh", "true");
    fx.write_script("rec.sh", "true");
    let target = fx.sleep_target().to_string();
    warns(&fx, &["-t", "-i", "200ms", "--signal", "USR1", "true"], "signal");
    warns(
        &fx,
        &[
            "-t",
            "-i",
            "200ms",
            "--threshold",
            "1",
            "--fail",
            "./fail.sh",
            "--recovery",
            "./rec.sh",
            "true",
        ],
        "fail",
    );
    warns(
        &fx,
        &["-t", "-i", "200ms", "--pid", &target, "--success-signal", "CONT", "true"],
        "success",
    );
}

#[test]
fn warnings_at_start_do_not_stop_heat() {
    let fx = Fixture::new("cli-warn-start");
    let mut h = fx.heat(&["-i", "200ms", "--signal", "USR1", "true"]);
    h.wait_for("two OK lines", || h.stdout_lines().len() >= 2);
    h.ensure(
        h.stderr().lines().any(|l| l.starts_with("heat: warning: ")),
        "expected a `heat: warning:` line",
    );
    h.stop();
}

#[test]
fn term_right_after_spawn_exits_0() {
    let fx = Fixture::new("cli-earlyterm");
    let mut h = fx.heat(&["-i", "200ms", "true"]);
    let caught = spin_until_caught(h.pid(), &[Signal::SIGTERM]);
    h.ensure(caught, "heat never installed a TERM handler");
    h.kill(Signal::SIGTERM);
    let code = h.wait_code(DEADLINE);
    h.ensure(code == 0, format!("TERM during start-up should exit 0, got {code}"));
}

#[test]
fn unknown_option_is_a_one_line_error() {
    let fx = Fixture::new("cli-badopt");
    usage_error(&fx, &["--bogus-option", "touch", "ran"], &["--bogus-option"]);
    usage_error(&fx, &["-i"], &["--interval"]);
}

#[test]
fn a_misspelt_option_gets_the_nearest_one_suggested() {
    let fx = Fixture::new("cli-suggest");
    usage_error(
        &fx,
        &["--intervall", "1", "touch", "ran"],
        &["--intervall", "did you mean '--interval'"],
    );
}

#[test]
fn a_long_option_with_one_dash_is_not_read_as_short_ones() {
    let fx = Fixture::new("cli-one-dash");
    usage_error(&fx, &["-interval", "1", "touch", "ran"], &["-interval", "two dashes: --interval"]);
}

#[test]
fn heat_toml_mistakes_are_named_with_their_fix() {
    let fx = Fixture::new("cli-toml-mistakes");
    let refused = |text: &str, words: &[&str]| {
        fx.write_file("heat.toml", text);
        usage_error(&fx, &["-c", "heat.toml"], words);
    };
    refused(
        "[probe.a]\ncommand = [\"touch\", \"ran\"]\nintervall = 1\n",
        &["heat.toml:3:1", "did you mean `interval`?"],
    );
    refused(
        "[probe.a]\ncommand = [\"touch\", \"ran\"]\nthreshold = \"3\"\n",
        &["heat.toml:3:13", "threshold", "expected an integer"],
    );
    refused(
        "[defaults]\ninterval = 1\n\n[probe.b]\ninterval = 1\n",
        &["probe b", "heat.toml:4", "no check"],
    );
}
