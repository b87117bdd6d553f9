//! The command line and layers, validated: every rule of `validate` and
//! `paths`, seen from the options a user writes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Instant;

use super::*;
use crate::cli::Cli;
use crate::text::chain;

use crate::testutil::TempDir;
use value::Interval;

const SEC: Duration = Duration::from_secs(1);

/// A live process, killed and reaped on drop.
struct Live(Child);

impl Live {
    fn sleep() -> Live {
        Live(Command::new("sleep").arg("30").spawn().unwrap())
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A pid that was just used and reaped: no such process.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn parsed(args: &[&str]) -> Result<Args, String> {
    match Cli::parse_args(std::iter::once("heat").chain(args.iter().copied())) {
        Ok(cli) => Ok(cli.args),
        Err(crate::cli::CliError::Value(msg)) => Err(msg),
        Err(crate::cli::CliError::Usage(msg)) => Err(format!("usage: {msg}")),
        Err(e) => panic!("{args:?}: {e}"),
    }
}

fn args(args: &[&str]) -> Args {
    parsed(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn root_env() -> Env {
    Env { euid: 0, ..Env::current() }
}

fn user_env() -> Env {
    Env { euid: 1000, ..Env::current() }
}

fn ok_in(cli: &[&str], env: &Env) -> Settings {
    settings_from_cli(&args(cli), env).unwrap_or_else(|e| panic!("{cli:?}: {e}"))
}

fn ok(cli: &[&str]) -> Settings {
    ok_in(cli, &Env::current())
}

fn probe(cli: &[&str]) -> ProbeConfig {
    ok(cli).probes.remove(0)
}

fn err_in(cli: &[&str], env: &Env) -> String {
    let parsed = match parsed(cli) {
        Ok(parsed) => parsed,
        Err(usage) => return usage,
    };
    match settings_from_cli(&parsed, env) {
        Ok(s) => panic!("{cli:?} was accepted: {s:?}"),
        Err(e) => chain(&e),
    }
}

fn err(cli: &[&str]) -> String {
    err_in(cli, &Env::current())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn format_size_round_trips() {
    for n in [1, 1000, 65536, 1 << 20, 3 << 30, 65537] {
        assert_eq!(super::value::parse_size(&format_size(n)), Ok(n), "{n}");
    }
    assert_eq!(format_size(65536), "64KiB");
    assert_eq!(format_size(1 << 20), "1MiB");
    assert_eq!(format_size(1000), "1000");
}

#[test]
fn quoting() {
    for safe in ["curl", "-sf", "localhost/health_check", "a=b", "x@y:1,2%+", "/usr/bin/x"] {
        assert_eq!(shell_quote(safe), safe);
    }
    assert_eq!(shell_quote(""), "''");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote("$HOME"), "'$HOME'");
    assert_eq!(shell_quote("*"), "'*'");
    assert_eq!(shell_quote("~x"), "'~x'");
    assert_eq!(shell_quote("a;b"), "'a;b'");
    assert_eq!(shell_quote("é"), "'é'");
}

#[test]
fn quoted_display_survives_the_shell() {
    let arg = "it's a $test\nnew line";
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("printf %s {}", shell_quote(arg)))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), arg);
}

#[test]
fn origins_name_the_culprit() {
    assert_eq!(Origin::flag("--interval").culprit("0"), "--interval 0");
    let key = Origin::Key { file: "heat.toml".into(), line: 12, key: "interval".into() };
    assert_eq!(key.culprit("0"), "heat.toml:12: interval 0");
    assert_eq!(key.location(), "heat.toml:12: ");
}

// -- layers -------------------------------------------------------------

/// A value as a heat.toml key at line 1 would hold it.
fn key<T>(name: &str, text: &str, value: T) -> Option<Raw<T>> {
    let origin = Origin::Key { file: "heat.toml".into(), line: 1, key: name.into() };
    Some(Raw { value, text: text.into(), origin })
}

fn shell(command: &str) -> Option<Raw<RawCheck>> {
    key("command", "", RawCheck::Shell(command.into()))
}

#[test]
fn a_higher_layer_wins_and_pairs_are_one_slot() {
    let lower = Layer {
        check: shell("true"),
        interval: key("interval", "10", Interval(10 * SEC)),
        target: key("pid", "5", RawTarget::Pid(Pid(5))),
        threshold: key("threshold", "3", NonZeroU32::new(3).unwrap()),
        ..Layer::default()
    };
    let higher = Layer {
        check: key("script", "./c.sh", RawCheck::Script("./c.sh".into())),
        target: key("pidfile", "/run/x.pid", RawTarget::Pidfile("/run/x.pid".into())),
        threshold: key("threshold", "4", NonZeroU32::new(4).unwrap()),
        ..Layer::default()
    };
    let stacked = higher.over(lower);
    assert_eq!(stacked.check.unwrap().value, RawCheck::Script("./c.sh".into()));
    assert_eq!(stacked.target.unwrap().value, RawTarget::Pidfile("/run/x.pid".into()));
    assert_eq!(stacked.threshold.unwrap().value.get(), 4);
    assert_eq!(stacked.interval.unwrap().value, Interval(10 * SEC));
    assert_eq!(stacked.timeout, None);
}

#[test]
fn service_mode_errors_and_warnings_name_the_probe() {
    let env = Env { mode: Mode::Service, ..Env::current() };
    let table = Origin::Key { file: "heat.toml".into(), line: 7, key: "web".into() };
    let e = validate_probe("web", Some(&table), &Layer::default(), &env, &mut Vec::new());
    let e = e.unwrap_err();
    assert_eq!(chain(&e), "probe web: heat.toml:7: no check: set command or script");
    assert!(matches!(e.root(), ConfigError::NoCheck { command_line: false, .. }), "{e:?}");
    let layer = Layer {
        check: shell("true"),
        signal: key("signal", "usr1", Signal::USR1),
        ..Layer::default()
    };
    let mut warnings = Vec::new();
    let p = validate_probe("web", None, &layer, &env, &mut warnings).unwrap();
    assert_eq!(p.check, Check::Shell { command: "true".into() });
    assert_eq!(p.display, "true");
    assert_eq!(
        warnings,
        ["probe web: heat.toml:1: signal usr1 has no effect without a target (pid or pidfile)"]
    );
}

#[test]
fn a_dead_fixed_pid_is_refused_when_new_and_kept_when_a_reload_keeps_it() {
    let dead = dead_pid();
    let layer = Layer {
        check: shell("true"),
        target: key("pid", &dead.to_string(), RawTarget::Pid(Pid(dead as i32))),
        ..Layer::default()
    };
    let new = Env { mode: Mode::Service, ..Env::current() };
    let e = validate_probe("t", None, &layer, &new, &mut Vec::new()).unwrap_err();
    assert_eq!(e.reason(), Some(&Reason::NoSuchProcess));
    assert_eq!(chain(&e), format!("probe t: heat.toml:1: pid {dead}: no such process"));
    let reload = Env { known_pids: vec![dead], ..new };
    let p = validate_probe("t", None, &layer, &reload, &mut Vec::new()).unwrap();
    assert_eq!(p.target, Some(TargetSpec::Pid(dead)));
}

#[test]
fn service_mode_refuses_term_raised_on_heat() {
    let env = Env { mode: Mode::Service, ..Env::current() };
    let layer = Layer {
        check: shell("true"),
        fault_signal: key("fault_signal", "TERM", Signal::TERM),
        ..Layer::default()
    };
    let e = validate_probe("q", None, &layer, &env, &mut Vec::new()).unwrap_err();
    assert!(matches!(e.reason(), Some(Reason::RaisedOnHeat { .. })), "{e:?}");
    let e = chain(&e);
    assert!(e.starts_with("probe q: heat.toml:1: fault_signal TERM: without a target"), "{e}");
    assert!(e.contains("use HUP, USR1, CONT, CHLD, WINCH or URG"), "{e}");
}

#[test]
fn service_mode_relative_paths_use_the_workdir() {
    let dir = TempDir::new("config");
    dir.script("check.sh");
    let env = Env { mode: Mode::Service, workdir: Some(dir.0.clone()), ..Env::current() };
    let layer = Layer {
        check: key("script", "check.sh", RawCheck::Script("check.sh".into())),
        target: key("pidfile", "missing.pid", RawTarget::Pidfile("missing.pid".into())),
        ..Layer::default()
    };
    let p = validate_probe("disk", None, &layer, &env, &mut Vec::new()).unwrap();
    assert_eq!(p.check, Check::Script { path: dir.0.join("check.sh") });
    assert_eq!(p.display, "check.sh");
    // A pidfile naming no live process is followed later in service mode.
    assert_eq!(p.target, Some(TargetSpec::Pidfile(dir.0.join("missing.pid"))));
    assert_eq!(p.workdir, Some(dir.0.clone()));
}

// -- the command line ---------------------------------------------------

#[test]
fn defaults() {
    let settings = ok(&["true"]);
    assert_eq!(settings.log, PathBuf::from("heat.verbose.log"));
    assert!(!settings.quiet && !settings.check_only);
    assert_eq!(settings.verbose, 0);
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
    let p = &settings.probes[0];
    assert_eq!(p.name, "cli");
    assert_eq!(p.display, "true");
    assert_eq!(p.interval, Duration::from_secs(30));
    assert_eq!(p.timeout, Duration::from_secs(30));
    assert_eq!(p.threshold.get(), 1);
    assert_eq!(p.start_period, Duration::ZERO);
    assert_eq!(p.recovery_timeout, None);
    assert_eq!(p.hook_timeout, Duration::from_secs(300));
    assert_eq!(p.max_output, 65536);
    assert_eq!(
        (p.target.as_ref(), p.signal, p.fault_signal, p.success_signal),
        (None, None, None, None)
    );
    assert_eq!((p.fail.as_ref(), p.recovery.as_ref(), p.workdir.as_ref()), (None, None, None));
}

#[test]
fn every_value_is_carried() {
    let dir = TempDir::new("config");
    let (fail, rec) = (dir.script("fail.sh"), dir.script("rec.sh"));
    let log = dir.0.join("h.log");
    let target = Live::sleep();
    let pid = target.pid().to_string();
    let p = ok(&[
        "-i",
        "10s",
        "--timeout",
        "5",
        "--pid",
        &pid,
        "--signal",
        "usr1",
        "--fail",
        s(&fail),
        "--recovery",
        s(&rec),
        "--threshold",
        "3",
        "--start-period",
        "1m",
        "--recovery-timeout",
        "2m",
        "--fault-signal",
        "STOP",
        "--success-signal",
        "CONT",
        "--log",
        s(&log),
        "-t",
        "--hook-timeout",
        "30s",
        "--max-output",
        "1MiB",
        "-q",
        "-vv",
        "true",
    ]);
    assert_eq!(p.log, log);
    assert!(p.quiet && p.check_only);
    assert_eq!(p.verbose, 2);
    let p = &p.probes[0];
    assert_eq!(p.interval, Duration::from_secs(10));
    assert_eq!(p.timeout, Duration::from_secs(5));
    assert_eq!(p.target, Some(TargetSpec::Pid(target.pid())));
    assert_eq!(p.signal, Some(Signal::USR1));
    assert_eq!(p.fail, Some(Hook { path: fail.clone(), display: s(&fail).into() }));
    assert_eq!(p.recovery, Some(Hook { path: rec.clone(), display: s(&rec).into() }));
    assert_eq!(p.threshold.get(), 3);
    assert_eq!(p.start_period, Duration::from_secs(60));
    assert_eq!(p.recovery_timeout, Some(Duration::from_secs(120)));
    assert_eq!(p.fault_signal, Some(Signal::STOP));
    assert_eq!(p.success_signal, Some(Signal::CONT));
    assert_eq!(p.hook_timeout, Duration::from_secs(30));
    assert_eq!(p.max_output, 1 << 20);
}

#[test]
fn timeout_defaults_to_the_interval() {
    let p = probe(&["-i", "1m30s", "true"]);
    assert_eq!(p.timeout, Duration::from_secs(90));
}

#[test]
fn a_missing_config_file_is_named() {
    assert_eq!(
        err(&["-c", "/nonexistent/heat.toml"]),
        "cannot read config /nonexistent/heat.toml: no such file or directory"
    );
}

#[test]
fn exactly_one_check() {
    assert_eq!(err(&[]), "no check: put a command after the options, or use -s SCRIPT");
    assert_eq!(err(&["-q"]), "no check: put a command after the options, or use -s SCRIPT");
    assert_eq!(
        err(&["-s", "./check.sh", "curl", "-sf", "x"]),
        "--script ./check.sh and a command (curl): give one check, not both"
    );
}

#[test]
fn zero_durations_are_refused_but_start_period() {
    for opt in ["--interval", "--timeout", "--recovery-timeout", "--hook-timeout"] {
        assert_eq!(err(&[opt, "0", "true"]), format!("{opt} 0: must be greater than zero"));
        assert_eq!(err(&[opt, "0ms", "true"]), format!("{opt} 0ms: must be greater than zero"));
        assert_eq!(err(&[opt, "-5", "true"]), format!("{opt} -5: must not be negative"));
        assert!(err(&[opt, "soon", "true"]).starts_with(&format!("{opt} soon: not a duration")));
    }
    assert_eq!(probe(&["--start-period", "0", "true"]).start_period, Duration::ZERO);
    assert_eq!(err(&["--start-period", "-1", "true"]), "--start-period -1: must not be negative");
}

#[test]
fn threshold_is_at_least_one() {
    assert_eq!(err(&["--threshold", "0", "true"]), "--threshold 0: must be at least 1");
    assert_eq!(err(&["--threshold", "-2", "true"]), "--threshold -2: must be at least 1");
    assert_eq!(err(&["--threshold", "two", "true"]), "--threshold two: not a whole number");
    assert_eq!(err(&["--threshold", "1.5", "true"]), "--threshold 1.5: not a whole number");
    assert_eq!(
        err(&["--threshold", "99999999999", "true"]),
        "--threshold 99999999999: must be at least 1"
    );
}

#[test]
fn max_output_is_a_positive_size() {
    assert_eq!(err(&["--max-output", "0", "true"]), "--max-output 0: must be greater than zero");
    assert!(err(&["--max-output", "lots", "true"]).starts_with("--max-output lots: not a size"));
    assert_eq!(probe(&["--max-output", "64KB", "true"]).max_output, 64_000);
    assert_eq!(probe(&["--max-output", "16MiB", "true"]).max_output, MAX_OUTPUT);
    assert_eq!(
        err(&["--max-output", "16GiB", "true"]),
        "--max-output 16GiB: too large (at most 16MiB)"
    );
    assert_eq!(
        err(&["--max-output", "16777217", "true"]),
        "--max-output 16777217: too large (at most 16MiB)"
    );
}

#[test]
fn intervals_below_ten_milliseconds_are_refused() {
    for short in ["1ns", "9ms", "9999us"] {
        assert_eq!(
            err(&["-i", short, "true"]),
            format!("--interval {short}: too short: the interval is at least 10ms")
        );
    }
    assert_eq!(probe(&["-i", "10ms", "true"]).interval, MIN_INTERVAL);
    // Only the interval: a short timeout kills a check, which is harmless.
    assert_eq!(probe(&["--timeout", "1ms", "true"]).timeout, Duration::from_millis(1));
}

#[test]
fn error_values_are_one_line_and_cut() {
    let long = "x".repeat(500);
    let e = err(&["-s", "/no/such\ndir/check.sh"]);
    assert_eq!(e, "--script /no/such\\ndir/check.sh: no such file");
    let e = err(&["-i", &long, "true"]);
    assert!(e.starts_with(&format!("--interval {}…: not a duration", "x".repeat(200))), "{e}");
    assert!(e.len() < 300, "{e}");
}

#[test]
fn a_config_that_is_not_a_regular_file_is_refused_without_blocking() {
    let dir = TempDir::new("config");
    let fifo = dir.0.join("heat.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    // Opening a FIFO for reading blocks until a writer comes: it must not.
    let (tx, rx) = std::sync::mpsc::channel();
    let path = s(&fifo).to_string();
    std::thread::spawn(move || {
        let _ = tx.send(err(&["-c", &path, "-t"]));
    });
    let e = rx.recv_timeout(Duration::from_secs(5)).expect("validation hung on a FIFO");
    assert_eq!(
        e,
        format!(
            "config {}: not a regular file; heat reads its configuration from a file",
            s(&fifo)
        )
    );
    assert_eq!(
        err(&["-c", "/dev/null"]),
        "config /dev/null: not a regular file; heat reads its configuration from a file"
    );
}

#[test]
fn an_empty_config_is_refused_on_reload_only() {
    let dir = TempDir::new("config");
    let conf = dir.file("heat.toml", "", 0o644);
    let start = ok(&["-c", s(&conf)]);
    assert!(start.probes.is_empty());
    let reload = Env { mode: Mode::Service, reload: true, ..Env::current() };
    let e = err_in(&["-c", s(&conf)], &reload);
    assert!(e.starts_with(&format!("config {} is empty (0 bytes)", s(&conf))), "{e}");
    fs::write(&conf, "# no probes on purpose\n").unwrap();
    assert!(ok_in(&["-c", s(&conf)], &reload).probes.is_empty());
}

#[test]
fn unknown_signals_are_refused() {
    assert_eq!(
        err(&["--signal", "FOO", "true"]),
        "--signal FOO: unknown signal (try HUP, USR1, TERM, RTMIN+1 or a number)"
    );
    assert!(
        err(&["--fault-signal", "32", "true"])
            .starts_with("--fault-signal 32: no such signal number")
    );
    assert!(
        err(&["--success-signal", "0", "true"])
            .starts_with("--success-signal 0: no such signal number")
    );
    assert_eq!(probe(&["--signal", "RTMIN+2", "true"]).signal, Some("36".parse().unwrap()));
}

#[test]
fn exec_program_is_resolved_through_path() {
    let p = probe(&["-i", "30", "sh", "-c", "exit 1"]);
    let Check::Exec { program, args } = &p.check else { panic!("{:?}", p.check) };
    assert!(program.is_absolute() && program.ends_with("sh"), "{program:?}");
    assert!(nix::unistd::access(program, nix::unistd::AccessFlags::X_OK).is_ok());
    assert_eq!(args, &[OsString::from("-c"), OsString::from("exit 1")]);
    assert_eq!(p.display, "sh -c 'exit 1'");
}

#[test]
fn path_lookup_skips_what_cannot_run() {
    let dir = TempDir::new("config");
    for sub in ["a", "b", "c"] {
        fs::create_dir(dir.0.join(sub)).unwrap();
    }
    dir.file("a/prog", "#!/bin/sh\n", 0o644);
    fs::create_dir(dir.0.join("b/prog")).unwrap();
    let good = dir.file("c/prog", "#!/bin/sh\n", 0o755);
    let path = std::env::join_paths([
        "relative",
        s(&dir.0.join("a")),
        s(&dir.0.join("b")),
        s(&dir.0.join("c")),
    ]);
    let env = Env { path: Some(path.unwrap()), ..user_env() };
    let p = ok_in(&["prog", "x y"], &env).probes.remove(0);
    assert_eq!(p.check, Check::Exec { program: good, args: vec!["x y".into()] });
    assert_eq!(p.display, "prog 'x y'");

    let env = Env { path: Some(dir.0.join("a").into()), ..user_env() };
    let e = err_in(&["prog"], &env);
    assert_eq!(
        e,
        format!("prog: found {} but it is not executable", dir.0.join("a/prog").display())
    );
}

#[test]
fn unknown_programs_are_refused() {
    assert_eq!(
        err(&["heat-no-such-program", "-x"]),
        "heat-no-such-program: command not found in PATH"
    );
    let env = Env { path: Some("".into()), ..Env::current() };
    assert_eq!(err_in(&["ls"], &env), "ls: command not found in PATH");
    assert_eq!(err(&["--", ""]), "command '': empty program name");
}

#[test]
fn a_program_with_a_slash_is_used_as_given() {
    let dir = TempDir::new("config");
    let prog = dir.script("check");
    let p = probe(&[s(&prog), "--flag"]);
    assert_eq!(p.check, Check::Exec { program: prog.clone(), args: vec!["--flag".into()] });
    assert_eq!(p.display, format!("{} --flag", s(&prog)));

    let missing = dir.0.join("nope");
    assert_eq!(err(&[s(&missing)]), format!("{}: no such file", s(&missing)));
    let plain = dir.file("plain", "data", 0o644);
    assert_eq!(err(&[s(&plain)]), format!("{}: not executable; chmod +x it", s(&plain)));
    assert_eq!(err(&[s(&dir.0)]), format!("{}: not a regular file", s(&dir.0)));
}

#[test]
fn scripts_must_be_executable_files() {
    let dir = TempDir::new("config");
    let good = dir.script("check.sh");
    let p = probe(&["-s", s(&good)]);
    assert_eq!(p.check, Check::Script { path: good.clone() });
    assert_eq!(p.display, s(&good));

    let missing = dir.0.join("missing.sh");
    assert_eq!(err(&["-s", s(&missing)]), format!("--script {}: no such file", s(&missing)));
    let plain = dir.file("plain.sh", "exit 0\n", 0o644);
    assert_eq!(
        err(&["-s", s(&plain)]),
        format!("--script {}: not executable; chmod +x it", s(&plain))
    );
    assert_eq!(err(&["-s", s(&dir.0)]), format!("--script {}: not a regular file", s(&dir.0)));
}

#[test]
fn hooks_must_be_executable_files() {
    let dir = TempDir::new("config");
    let good = dir.script("hook.sh");
    let p = probe(&["--fail", s(&good), "--recovery", s(&good), "--threshold", "2", "true"]);
    assert_eq!(p.fail.unwrap().display, s(&good));
    assert_eq!(p.recovery.unwrap().path, good);
    let missing = dir.0.join("missing.sh");
    let plain = dir.file("plain.sh", "exit 0\n", 0o600);
    for opt in ["--fail", "--recovery"] {
        assert_eq!(
            err(&[opt, s(&missing), "true"]),
            format!("{opt} {}: no such file", s(&missing))
        );
        assert_eq!(
            err(&[opt, s(&plain), "true"]),
            format!("{opt} {}: not executable; chmod +x it", s(&plain))
        );
        assert_eq!(
            err(&[opt, s(&dir.0), "true"]),
            format!("{opt} {}: not a regular file", s(&dir.0))
        );
    }
}

#[test]
fn root_refuses_writable_scripts_for_real() {
    let dir = TempDir::new("config");
    let script = dir.file("check.sh", "#!/bin/sh\n", 0o777);
    let result = from_cli(&args(&["-s", s(&script)]));
    if nix::unistd::geteuid().is_root() {
        assert_eq!(
            chain(&result.unwrap_err()),
            format!(
                "refusing script {}: mode 0777 is group- or world-writable; chmod go-w it",
                s(&script)
            )
        );
    } else {
        assert!(result.is_ok(), "{result:?}");
    }
}

#[test]
fn root_refuses_a_0666_script() {
    let dir = TempDir::new("config");
    let script = dir.file("check.sh", "#!/bin/sh\n", 0o666);
    let writable = format!(
        "refusing script {}: mode 0666 is group- or world-writable; chmod go-w it",
        s(&script)
    );
    // Writability is judged before the missing execute bit.
    assert_eq!(err_in(&["-s", s(&script)], &root_env()), writable);
    let not_executable = format!("--script {}: not executable; chmod +x it", s(&script));
    assert_eq!(err_in(&["-s", s(&script)], &user_env()), not_executable);
    let real = chain(&from_cli(&args(&["-s", s(&script)])).unwrap_err());
    let is_root = nix::unistd::geteuid().is_root();
    assert_eq!(real, if is_root { writable } else { not_executable });

    fs::set_permissions(&script, fs::Permissions::from_mode(0o766)).unwrap();
    assert!(err_in(&["-s", s(&script)], &root_env()).contains("mode 0766"));
    assert!(settings_from_cli(&args(&["-s", s(&script)]), &user_env()).is_ok());
}

#[test]
fn root_refuses_writable_hooks_and_programs() {
    let dir = TempDir::new("config");
    let hook = dir.file("hook.sh", "#!/bin/sh\n", 0o775);
    for (opt, what) in [("--fail", "fail hook"), ("--recovery", "recovery hook")] {
        assert_eq!(
            err_in(&[opt, s(&hook), "--threshold", "2", "true"], &root_env()),
            format!(
                "refusing {what} {}: mode 0775 is group- or world-writable; chmod go-w it",
                s(&hook)
            )
        );
    }
    assert_eq!(
        err_in(&[s(&hook)], &root_env()),
        format!(
            "refusing command {}: mode 0775 is group- or world-writable; chmod go-w it",
            s(&hook)
        )
    );
    let env = Env { path: Some(dir.0.clone().into()), ..root_env() };
    assert_eq!(
        err_in(&["hook.sh"], &env),
        "refusing command hook.sh: mode 0775 is group- or world-writable; chmod go-w it"
    );
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(settings_from_cli(&args(&["--fail", s(&hook), "true"]), &root_env()).is_ok());
}

#[test]
fn pid_must_be_a_live_process_other_than_init_and_heat() {
    let live = Live::sleep();
    let pid = live.pid().to_string();
    assert_eq!(probe(&["--pid", &pid, "true"]).target, Some(TargetSpec::Pid(live.pid())));

    let positive = "must be a positive integer (0 and negative pids name process groups)";
    assert_eq!(err(&["--pid", "0", "true"]), format!("--pid 0: {positive}"));
    assert_eq!(err(&["--pid", "-5", "true"]), format!("--pid -5: {positive}"));
    assert_eq!(err(&["--pid", "abc", "true"]), "--pid abc: not a pid (a positive integer)");
    assert_eq!(err(&["--pid", "1", "true"]), "--pid 1: pid 1 (init) is never a target");
    let own = std::process::id().to_string();
    assert_eq!(err(&["--pid", &own, "true"]), format!("--pid {own}: that is heat's own pid"));
    let dead = dead_pid().to_string();
    assert_eq!(err(&["--pid", &dead, "true"]), format!("--pid {dead}: no such process"));
    assert_eq!(err(&["--pid", "4294967296", "true"]), "--pid 4294967296: no such process");
}

#[test]
fn a_zombie_is_not_a_live_target() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(5);
    let state = || fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    while !state().contains(") Z ") {
        assert!(Instant::now() < deadline, "pid {pid} never became a zombie");
        std::thread::sleep(Duration::from_millis(1));
    }
    let e = err(&["--pid", &pid.to_string(), "true"]);
    child.wait().unwrap();
    assert_eq!(e, format!("--pid {pid}: the process has exited (a zombie not yet reaped)"));
}

#[test]
fn pid_and_pidfile_are_exclusive() {
    assert_eq!(
        err(&["--pid", "5", "--pidfile", "/run/x.pid", "true"]),
        "--pid 5 and --pidfile /run/x.pid: give one target, not both"
    );
}

#[test]
fn pidfile_must_name_a_live_process() {
    let dir = TempDir::new("config");
    let live = Live::sleep();
    let good = dir.file("good.pid", &format!("{}\n", live.pid()), 0o644);
    assert_eq!(
        probe(&["--pidfile", s(&good), "true"]).target,
        Some(TargetSpec::Pidfile(good.clone()))
    );

    let cases = [
        ("missing.pid", None, "no such file".to_string()),
        ("empty.pid", Some(""), "is empty: the service has not written its pid".to_string()),
        ("junk.pid", Some("nginx\n"), "first line 'nginx' is not a pid".to_string()),
        (
            "init.pid",
            Some("1\n"),
            "names pid 1: pid 1 (init) is never a target: give the service's own pid".to_string(),
        ),
    ];
    for (name, text, reason) in cases {
        let path = dir.0.join(name);
        if let Some(text) = text {
            dir.file(name, text, 0o644);
        }
        assert_eq!(
            err(&["--pidfile", s(&path), "true"]),
            format!("--pidfile {}: {reason}", s(&path))
        );
    }
    let dead = dead_pid();
    let path = dir.file("dead.pid", &format!("{dead}\n"), 0o644);
    assert_eq!(
        err(&["--pidfile", s(&path), "true"]),
        format!(
            "--pidfile {}: names pid {dead}: no such process: is the target running?",
            s(&path)
        )
    );
    let own = dir.file("own.pid", &format!("{}\n", std::process::id()), 0o644);
    assert!(err(&["--pidfile", s(&own), "true"]).ends_with("that is heat's own pid"));
}

#[test]
fn root_refuses_a_writable_pidfile() {
    let dir = TempDir::new("config");
    let live = Live::sleep();
    let path = dir.file("x.pid", &format!("{}\n", live.pid()), 0o664);
    assert_eq!(
        err_in(&["--pidfile", s(&path), "true"], &root_env()),
        format!(
            "refusing pidfile {}: mode 0664 is group- or world-writable; chmod go-w it",
            s(&path)
        )
    );
    assert!(settings_from_cli(&args(&["--pidfile", s(&path), "true"]), &user_env()).is_ok());
}

#[test]
fn root_trusts_a_users_pidfile_only_for_that_users_process() {
    let dir = TempDir::new("config");
    let root_proc = Live::sleep();
    let path = dir.file("x.pid", &format!("{}\n", root_proc.pid()), 0o644);
    if let Err(e) = std::os::unix::fs::chown(&path, Some(65534), Some(65534)) {
        // Only root can give a file away; these tests run as root.
        assert!(!nix::unistd::geteuid().is_root(), "chown as root failed: {e}");
        return;
    }
    let owner_of_root_proc = nix::unistd::getuid().as_raw();
    assert_eq!(
        err(&["--pidfile", s(&path), "true"]),
        format!(
            "refusing pidfile {}: owned by uid 65534 but pid {} runs as uid {owner_of_root_proc}",
            s(&path),
            root_proc.pid()
        )
    );
    let nobody = Live(Command::new("sleep").arg("30").uid(65534).gid(65534).spawn().unwrap());
    fs::write(&path, format!("{}\n", nobody.pid())).unwrap();
    assert_eq!(
        probe(&["--pidfile", s(&path), "true"]).target,
        Some(TargetSpec::Pidfile(path.clone()))
    );
}

#[test]
fn signals_raised_on_heat_must_be_harmless() {
    for opt in ["--fault-signal", "--success-signal"] {
        for bad in ["STOP", "KILL", "TSTP", "USR2", "ALRM", "QUIT", "RTMIN"] {
            let e = err(&[opt, bad, "--recovery", "/bin/true", "true"]);
            assert_eq!(
                e,
                format!(
                    "{opt} {bad}: without a target it is raised on heat itself, which it would \
                     stop or kill; use HUP, USR1, TERM, INT, CONT, CHLD, WINCH or URG, or give a target"
                )
            );
        }
        for good in ["HUP", "usr1", "SIGTERM", "2", "CONT", "CHLD", "WINCH", "URG"] {
            ok(&[opt, good, "--recovery", "/bin/true", "true"]);
        }
    }
    let live = Live::sleep();
    let p = probe(&["--pid", &live.pid().to_string(), "--fault-signal", "STOP", "true"]);
    assert_eq!(p.fault_signal, Some(Signal::STOP));
}

#[test]
fn the_log_directory_must_exist() {
    let dir = TempDir::new("config");
    let log = dir.0.join("no-dir/heat.log");
    assert_eq!(
        err(&["--log", s(&log), "true"]),
        format!(
            "--log {}: directory {} does not exist; create it first",
            s(&log),
            s(&dir.0.join("no-dir"))
        )
    );
    assert_eq!(
        err(&["--log", s(&dir.0), "true"]),
        format!("--log {}: is a directory; name a file in it", s(&dir.0))
    );
    let file = dir.file("file", "", 0o644);
    let under_file = file.join("heat.log");
    assert_eq!(
        err(&["--log", s(&under_file), "true"]),
        format!("--log {}: {} is not a directory", s(&under_file), s(&file))
    );
    assert_eq!(ok(&["--log", "x.log", "true"]).log, PathBuf::from("x.log"));
    assert!(!dir.0.join("h.log").exists());
    ok(&["--log", s(&dir.0.join("h.log")), "true"]);
    assert!(!dir.0.join("h.log").exists(), "validation must not create the log");
    let fifo = dir.0.join("fifo.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    assert_eq!(
        err(&["--log", s(&fifo), "true"]),
        format!("--log {}: not a regular file; heat appends to a regular file only", s(&fifo))
    );
    assert_eq!(
        err(&["--log", "/dev/null", "true"]),
        "--log /dev/null: not a regular file; heat appends to a regular file only"
    );
}

#[test]
fn root_refuses_what_another_user_controls() {
    use std::os::unix::fs::chown;
    let dir = TempDir::new("config");
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.file("check.sh", "#!/bin/sh\n", 0o755);
    let conf = dir.file("heat.toml", "[probe.a]\nscript = \"check.sh\"\n", 0o644);
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    ok(&["-s", s(&script)]);
    ok(&["-c", s(&conf)]);
    chown(&script, Some(1000), None).unwrap();
    let e = err(&["-s", s(&script)]);
    assert!(e.starts_with(&format!("refusing script {}: owned by uid 1000", s(&script))), "{e}");
    assert!(e.contains("mode 0755") && e.ends_with("chown root it"), "{e}");
    let e = err(&["-c", s(&conf)]);
    assert!(e.starts_with("probe a: ") && e.contains("refusing script"), "{e}");
    chown(&script, Some(0), None).unwrap();
    chown(&conf, Some(1000), None).unwrap();
    let e = err(&["-c", s(&conf)]);
    assert!(e.starts_with(&format!("refusing config {}: owned by uid 1000", s(&conf))), "{e}");
    chown(&conf, Some(0), None).unwrap();
    // A directory others can write: they could rename their own file over it.
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
    let e = err(&["-c", s(&conf)]);
    assert!(
        e.starts_with(&format!(
            "refusing config {}: directory {} (mode 0777)",
            s(&conf),
            s(&dir.0)
        )),
        "{e}"
    );
    let e = err(&["--fail", s(&script), "true"]);
    assert!(e.starts_with("refusing fail hook"), "{e}");
    let e = err(&[s(&script)]);
    assert!(e.starts_with("refusing command"), "{e}");
    let e = err(&["--log", s(&dir.0.join("x.log")), "true"]);
    assert!(e.starts_with("refusing log"), "{e}");
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
    ok(&["-c", s(&conf)]);
}

// -- warnings -----------------------------------------------------------

fn warnings(cli: &[&str]) -> Vec<String> {
    ok(cli).warnings
}

#[test]
fn a_fail_hook_that_never_runs_is_warned_about() {
    let w = warnings(&["--fail", "/bin/true", "--recovery", "/bin/true", "true"]);
    assert_eq!(
        w,
        ["--fail /bin/true never runs: with threshold 1 every failure starts recovery instead \
          (raise the threshold or drop the fail hook)"]
    );
    let live = Live::sleep();
    let pid = live.pid().to_string();
    let w = warnings(&["--pid", &pid, "--fail", "/bin/true", "--fault-signal", "USR1", "true"]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("--fail /bin/true never runs"));
    let none =
        warnings(&["--fail", "/bin/true", "--recovery", "/bin/true", "--threshold", "2", "true"]);
    assert!(none.is_empty(), "{none:?}");
    assert!(warnings(&["--fail", "/bin/true", "true"]).is_empty());
}

#[test]
fn a_signal_without_target_is_warned_about() {
    assert_eq!(
        warnings(&["--signal", "USR1", "true"]),
        ["--signal USR1 has no effect without a target (pid or pidfile)"]
    );
    let live = Live::sleep();
    assert!(warnings(&["--pid", &live.pid().to_string(), "--signal", "USR1", "true"]).is_empty());
}

#[test]
fn a_success_signal_alone_is_warned_about() {
    let live = Live::sleep();
    let pid = live.pid().to_string();
    let w =
        warnings(&["--pid", &pid, "--recovery", "/bin/true", "--success-signal", "CONT", "true"]);
    assert_eq!(
        w,
        ["--success-signal CONT without a fault signal turns off the HUP sent on each failure; \
             add --signal HUP to keep it"]
    );
    let w = warnings(&["--pid", &pid, "--success-signal", "CONT", "true"]);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].ends_with(
            "is never sent: without a recovery hook or fault signal recovery never starts"
        )
    );
    let both = ["--pid", &pid, "--fault-signal", "STOP", "--success-signal", "CONT", "true"];
    assert!(warnings(&both).is_empty());
    let explicit = [
        "--pid",
        &pid,
        "--signal",
        "HUP",
        "--recovery",
        "/bin/true",
        "--success-signal",
        "CONT",
        "true",
    ];
    assert!(warnings(&explicit).is_empty());
}

use crate::testutil::curl_probe as sample;

#[test]
fn failure_signal_follows_the_probe_rules() {
    let p = sample();
    assert_eq!(p.rules().failure_signal(), None, "no target, nothing sent");
    let p = ProbeConfig { target: Some(TargetSpec::Pid(5)), ..sample() };
    assert_eq!(p.rules().failure_signal(), Some(Signal::HUP));
    let p = ProbeConfig { signal: Some(Signal::USR1), ..p };
    assert_eq!(p.rules().failure_signal(), Some(Signal::USR1));
    let p = ProbeConfig { signal: None, fault_signal: Some(Signal::STOP), ..p };
    assert_eq!(p.rules().failure_signal(), None);
    let p = ProbeConfig { fault_signal: None, success_signal: Some(Signal::CONT), ..p };
    assert_eq!(p.rules().failure_signal(), None);
    let p = ProbeConfig { signal: Some(Signal::INT), ..p };
    assert_eq!(p.rules().failure_signal(), Some(Signal::INT));
}

#[test]
fn describe_the_command_line_as_parsed() {
    let live = Live::sleep();
    let settings = ok(&["--pid", &live.pid().to_string(), "-i", "10", "sh", "-c", "exit 0"]);
    let text = crate::report::describe(&settings);
    assert!(text.starts_with("log = heat.verbose.log\ncontainment = "), "{text}");
    assert!(
        text.contains("\n\n[probe.cli]\ncheck = sh -c 'exit 0'\nform = exec\nprogram = /"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\ntarget = pid {}\ninterval = 10s\ntimeout = 10s\nsignal = SIGHUP\n",
            live.pid()
        )),
        "{text}"
    );
    assert!(text.contains("\ninterval = 10s\ntimeout = 10s\n"), "{text}");
}

// -- the execution context -----------------------------------------------

#[test]
fn a_probe_user_may_own_its_scripts_as_root() {
    let dir = TempDir::new("config");
    let script = dir.script("check.sh");
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&script, Some(65534), Some(65534)).unwrap();
        let refused = err_in(&["-s", s(&script)], &root_env());
        assert!(refused.contains("owned by uid 65534 (nobody)"), "{refused}");
    } else {
        eprintln!("not root: the script cannot be given to nobody; checking the user alone");
    }
    let p = ok_in(&["--user", "nobody", "-s", s(&script)], &root_env()).probes.remove(0);
    let nobody = p.user.clone().expect("a user");
    assert_eq!((nobody.name.as_str(), nobody.uid), ("nobody", 65534));
    assert_eq!(p.hook_user, p.user, "hooks run as the probe's user by default");
    let p = ok_in(&["--user", "nobody", "--hook-user", "0", "-s", s(&script)], &root_env())
        .probes
        .remove(0);
    assert_eq!(p.hook_user.map(|c| c.uid), Some(0));
}

#[test]
fn users_and_groups_are_checked_at_start() {
    assert_eq!(
        err_in(&["--user", "no-such-user-x", "true"], &root_env()),
        "--user no-such-user-x: no such user"
    );
    assert_eq!(
        err_in(&["--group", "no-such-group-x", "true"], &root_env()),
        "--group no-such-group-x: no such group"
    );
    assert_eq!(
        err_in(&["--user", "nobody", "true"], &user_env()),
        "--user nobody: running as another user needs root (heat runs as uid 1000)"
    );
}

#[test]
fn env_workdir_and_limits_are_carried() {
    let dir = TempDir::new("config");
    let p = probe(&[
        "--env",
        "LANG=C",
        "--env",
        "EMPTY=",
        "--workdir",
        s(&dir.0),
        "--memory-max",
        "64MiB",
        "--pids-max",
        "32",
        "--cpu-max",
        "50%",
        "true",
    ]);
    assert_eq!(p.env, [("LANG".to_string(), "C".to_string()), ("EMPTY".into(), "".into())]);
    assert_eq!(p.workdir.as_deref(), Some(dir.0.as_path()));
    assert_eq!(
        p.limits,
        Limits {
            memory_max: Some(64 << 20),
            pids_max: Some(32),
            cpu_max: Some(CpuQuota { percent: 50 })
        }
    );
    assert_eq!(err(&["--env", "NOEQUALS", "true"]), "--env NOEQUALS: not NAME=VALUE");
    assert_eq!(
        err(&["--env", "HEAT_PROBE=x", "true"]),
        "--env HEAT_PROBE=x: HEAT_* variables are heat's own"
    );
    assert_eq!(err(&["--pids-max", "0", "true"]), "--pids-max 0: must be at least 1");
    assert_eq!(
        err(&["--cpu-max", "50", "true"]),
        "--cpu-max 50: not a percentage of one CPU (50%, 200%)"
    );
    let missing = dir.0.join("nope");
    assert_eq!(
        err(&["--workdir", s(&missing), "true"]),
        format!("--workdir {}: no such file", s(&missing))
    );
    let file = dir.script("f.sh");
    assert_eq!(
        err(&["--workdir", s(&file), "true"]),
        format!("--workdir {}: not a directory", s(&file))
    );
}
