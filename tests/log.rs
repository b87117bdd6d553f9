//! The verbose log and the per-check stdout lines.

mod util;

use std::os::unix::fs::PermissionsExt;

use util::*;

const HELLO: &str = "sh -c 'echo hello; echo world'";

#[test]
fn entries_have_the_documented_format() {
    let fx = Fixture::new("log-format");
    let before = unix_now();
    let mut h = fx.heat(&["-i", "200ms", "sh", "-c", "echo hello; echo world"]);
    let entries = h.wait_named(HELLO, 2);
    let after = unix_now();
    h.stop();

    let started = format!("started heat {} (pid {})", env!("CARGO_PKG_VERSION"), h.pid());
    h.ensure(
        entries[0].is_heat() && entries[0].kind == "INFO",
        "first entry should be heat's INFO",
    );
    h.ensure(entries[0].lines == [started.clone()], format!("first entry should be {started:?}"));
    for e in named(&entries, HELLO) {
        h.ensure(e.kind == "INFO", "a check exiting 0 is INFO");
        h.ensure(e.lines == ["hello", "world"], "body = the check's output lines");
        h.ensure(
            e.unix >= before && e.unix <= after,
            "entry time should be the current unix second",
        );
    }
    // The raw text, byte for byte, for one check entry.
    let raw = h.log();
    let header = format!(" : INFO : {HELLO} :\n> hello\n> world\n");
    h.ensure(raw.contains(&header), format!("raw log should contain {header:?}"));
    h.ensure(
        raw.lines().next().is_some_and(|l| l.ends_with(" : INFO : heat :")),
        "first header line",
    );
}

#[test]
fn stopping_is_logged() {
    let fx = Fixture::new("log-stopping");
    let mut h = fx.heat(&["-i", "200ms", "true"]);
    h.wait_named("true", 1);
    h.stop();
    let events = heat_events(&h.entries());
    h.ensure(events.iter().any(|t| t == "stopping on SIGTERM"), "expected `stopping on SIGTERM`");
}

#[test]
fn log_is_appended_not_truncated() {
    let fx = Fixture::new("log-append");
    let mut first = fx.heat(&["-i", "200ms", "true"]);
    first.wait_named("true", 2);
    first.stop();
    let old = fx.log();
    drop(first);

    let mut second = fx.heat(&["-i", "200ms", "echo", "two"]);
    second.wait_named("echo two", 1);
    second.stop();
    let now = fx.log();
    second.ensure(now.starts_with(&old), "the second run must append to the first run's log");
    let starts =
        heat_events(&second.entries()).iter().filter(|t| t.starts_with("started heat ")).count();
    second.ensure(starts == 2, format!("expected two `started heat` entries, got {starts}"));
}

#[test]
fn failures_are_fail_entries_and_stdout_lines() {
    let fx = Fixture::new("log-infofail");
    // Odd runs fail with 5 and say why; even runs succeed.
    fx.write_script(
        "check.sh",
        "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count\n\
         if [ $((n % 2)) -eq 1 ]; then echo \"bad $n\"; exit 5; fi\necho \"good $n\"",
    );
    let mut h = fx.heat(&["-i", "200ms", "-s", "./check.sh"]);
    let entries = h.wait_named("./check.sh", 4);
    h.wait_for("4 stdout lines", || h.stdout_lines().len() >= 4);
    h.stop();

    for (i, e) in named(&entries, "./check.sh").iter().take(4).enumerate() {
        let n = i + 1;
        let (kind, line) =
            if n % 2 == 1 { ("FAIL", format!("bad {n}")) } else { ("INFO", format!("good {n}")) };
        h.ensure(
            e.kind == kind && e.lines == [line.clone()],
            format!("run {n}: expected {kind} with {line:?}"),
        );
    }
    let lines = h.stdout_lines();
    for (i, l) in lines.iter().take(4).enumerate() {
        let want =
            if i % 2 == 0 { "Failed: Exit Code 5, details in heat.verbose.log" } else { "OK" };
        h.ensure(
            split_stdout_line(l).is_some_and(|(_, r)| r == want),
            format!("stdout line {i}: want {want:?}"),
        );
    }
}

#[test]
fn empty_output_still_writes_an_entry() {
    let fx = Fixture::new("log-empty");
    let mut h = fx.heat(&["-i", "200ms", "true"]);
    let entries = h.wait_named("true", 2);
    h.stop();
    for e in named(&entries, "true") {
        h.ensure(
            e.kind == "INFO" && e.lines.is_empty(),
            "an empty-output check is an INFO entry with no body",
        );
    }
}

#[test]
fn output_beyond_max_output_is_dropped_with_a_marker() {
    let fx = Fixture::new("log-cap");
    // 500 lines of 10 bytes = 5000 bytes; 1 KiB kept.
    let mut h = fx.heat(&[
        "-i",
        "200ms",
        "--max-output",
        "1KiB",
        "sh",
        "-c",
        "yes abcdefghi | head -n 500",
    ]);
    let name = "sh -c 'yes abcdefghi | head -n 500'";
    h.wait_named(name, 1);
    // Read once heat is gone: a poll can catch an entry half written.
    h.stop();
    let entries = h.entries();
    let e = named(&entries, name)[0];
    h.ensure(e.kind == "INFO", "a check exiting 0 is INFO even when its output is capped");
    h.ensure(
        e.lines.last().map(String::as_str) == Some("[heat: 3976 bytes dropped]"),
        "expected the drop marker",
    );
    let kept = e.lines.len() - 1;
    h.ensure(
        (100..=104).contains(&kept),
        format!("about 1 KiB of output should be kept, got {kept} lines"),
    );
    h.ensure(e.lines[0] == "abcdefghi", "kept output is the start of the output");
}

#[test]
fn log_is_created_with_mode_0640() {
    let fx = Fixture::new("log-mode");
    let mut h = fx.heat(&["-i", "200ms", "true"]);
    h.wait_named("true", 1);
    let mode = std::fs::metadata(fx.path(LOG)).unwrap().permissions().mode() & 0o777;
    h.stop();
    h.ensure(mode == 0o640, format!("log mode should be 0640, is {mode:o}"));
}

#[test]
fn stdout_names_the_log_as_given() {
    let fx = Fixture::new("log-named");
    let mut h = fx.heat(&["-i", "200ms", "--log", "./my.log", "false"]);
    h.wait_for("a stdout line", || !h.stdout_lines().is_empty());
    h.stop();
    let line = h.stdout_lines()[0].clone();
    let want = "Failed: Exit Code 1, details in ./my.log";
    h.ensure(
        split_stdout_line(&line).is_some_and(|(_, r)| r == want),
        format!("stdout line should end {want:?}"),
    );
    let mine = parse_entries(&fx.read("my.log"));
    h.ensure(
        named(&mine, "false").first().is_some_and(|e| e.kind == "FAIL"),
        "my.log should have the FAIL entry",
    );
    h.ensure(!fx.exists(LOG), "the default log must not be created");
}

#[test]
fn stdout_has_one_line_per_check() {
    let fx = Fixture::new("log-stdout");
    let mut h = fx.heat(&["-i", "200ms", "true"]);
    h.wait_named("true", 3);
    h.stop();
    let checks = named(&h.entries(), "true").len();
    let lines = h.stdout_lines();
    h.ensure(lines.len() == checks, format!("{checks} checks but {} stdout lines", lines.len()));
    for l in &lines {
        let ok =
            split_stdout_line(l).is_some_and(|(t, r)| r == "OK" && t.abs_diff(unix_now()) <= 10);
        h.ensure(ok, format!("bad stdout line {l:?}"));
    }
}

#[test]
fn quiet_prints_nothing_on_stdout() {
    let fx = Fixture::new("log-quiet");
    let mut h = fx.heat(&["-q", "-i", "200ms", "false"]);
    h.wait_named("false", 3);
    h.stop();
    h.ensure(h.stdout().is_empty(), "-q: stdout should be empty");
}

#[test]
fn closed_stdout_does_not_kill_heat() {
    let fx = Fixture::new("log-epipe");
    let mut h = Heat::start_with(&fx, &["-i", "100ms", "true"], |cmd| {
        cmd.stdout(std::process::Stdio::piped());
    });
    drop(h.child().stdout.take()); // the reader is gone before heat prints anything
    h.wait_named("true", 4);
    h.ensure_running("a closed stdout must not end heat");
    h.stop();
}

#[test]
fn output_order_is_kept_across_stdout_and_stderr() {
    let fx = Fixture::new("log-merge");
    fx.write_script("check.sh", "echo one; echo two >&2; echo three; echo four >&2");
    let mut h = fx.heat(&["-i", "200ms", "-s", "./check.sh"]);
    let entries = h.wait_named("./check.sh", 1);
    h.stop();
    let e = named(&entries, "./check.sh")[0];
    h.ensure(e.lines == ["one", "two", "three", "four"], "stdout and stderr merged in order");
}
