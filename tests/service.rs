//! Service mode (`heat -c heat.toml`) against the real binary: layering, the
//! file's forms and paths, start-up errors, `-t`, independent schedules,
//! reloads (signal, rename-over, symlink swap, invalid, hooks finishing first),
//! state kept across a reload, pidfile following, trouble that is not fatal,
//! a thousand probes, and heat's own signals.
//!
//! Each test has its own temp dir and heat.toml. Timing is measured from
//! what the checks themselves write (milliseconds since the epoch) or from
//! the order of log entries, never from when the test happened to look.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use util::*;

// ---------------------------------------------------------------------------
// 1. Layering
// ---------------------------------------------------------------------------

const LAYERS: &str = r#"
[defaults]
interval = "7s"
timeout = "3s"
threshold = 2

[probe.a]
command = ["true"]
threshold = 4

[probe.b]
command = ["true"]
interval = "9s"
"#;

#[test]
fn layering_defaults_then_probe_then_command_line() {
    let fx = Fixture::new("svc-layers");
    write_conf(&fx, LAYERS);

    let (code, out, err) = check_config(&fx, &["-c", CONF, "-t"]);
    assert_eq!(code, 0, "-t exit code; stderr:\n{err}");
    let p = blocks(&out);
    let key = |probe: &str, k: &str| p[probe][k].clone();
    assert_eq!(key("a", "interval"), "7s", "[defaults] interval reaches a:\n{out}");
    assert_eq!(key("a", "threshold"), "4", "a's own threshold beats [defaults]:\n{out}");
    assert_eq!(key("b", "interval"), "9s", "b's own interval beats [defaults]:\n{out}");
    assert_eq!(key("b", "threshold"), "2", "[defaults] threshold reaches b:\n{out}");
    assert_eq!(key("a", "timeout"), "3s", "{out}");

    let (code, out, err) =
        check_config(&fx, &["-c", CONF, "--threshold", "6", "--timeout", "1s", "-t"]);
    assert_eq!(code, 0, "-t exit code; stderr:\n{err}");
    let p = blocks(&out);
    for name in ["a", "b"] {
        assert_eq!(p[name]["threshold"], "6", "--threshold applies to {name}:\n{out}");
        assert_eq!(p[name]["timeout"], "1s", "--timeout applies to {name}:\n{out}");
    }
    assert_eq!((p["a"]["interval"].as_str(), p["b"]["interval"].as_str()), ("7s", "9s"));
}

#[test]
fn a_command_line_threshold_beats_the_files_in_a_running_probe() {
    let _g = light();
    let fx = Fixture::new("svc-layers-run");
    fx.write_script("rec.sh", "true");
    write_conf(
        &fx,
        "[defaults]\ninterval = \"100ms\"\nthreshold = 1\n\n\
         [probe.x]\ncommand = [\"false\"]\nrecovery = \"rec.sh\"\nthreshold = 2\n",
    );
    let mut h = service(&fx, &["--threshold", "3"]);
    let entries = wait_probe_event(&h, "x", "recovery round 1:");
    let round = probe_events(&entries, "x").into_iter().find(|t| t.starts_with("recovery round"));
    h.ensure(
        round.as_deref() == Some("recovery round 1: 3 consecutive failures"),
        format!("--threshold 3 beats the file's 2 and 1: {round:?}"),
    );
    h.stop();
}

// ---------------------------------------------------------------------------
// 2. Check forms and the file's directory
// ---------------------------------------------------------------------------

#[test]
fn exec_shell_and_script_forms_run_in_the_files_directory() {
    let _g = light();
    let fx = Fixture::new("svc-forms");
    fs::create_dir(fx.path("etc")).unwrap();
    fx.write_script("etc/check.sh", "pwd -P > script.pwd");
    fx.write_script("etc/fail.sh", "echo \"$HEAT_PROBE $HEAT_FAIL_CODE\" >> codes");
    fx.write_file(
        "etc/heat.toml",
        r#"
[defaults]
interval = "150ms"
fail = "fail.sh"

[probe.exec]
command = ["sh", "-c", "pwd -P > exec.pwd; exit 3"]

[probe.shell]
command = "test -e ok || exit 4"

[probe.script]
script = "check.sh"
"#,
    );
    let mut h = fx.heat(&["-c", "etc/heat.toml"]);
    let etc = fs::canonicalize(fx.path("etc")).unwrap();
    let etc = path_str(&etc);
    h.wait_for("exec.pwd and script.pwd in etc/", || {
        fx.read("etc/exec.pwd").trim() == etc && fx.read("etc/script.pwd").trim() == etc
    });
    h.wait_for("fail codes 3 (exec) and 4 (shell) in etc/codes", || {
        let codes = fx.lines("etc/codes");
        codes.contains(&"exec 3".to_string()) && codes.contains(&"shell 4".to_string())
    });
    h.ensure(!fx.exists("exec.pwd") && !fx.exists("codes"), "checks ran in heat's cwd, not etc/");
    // The shell form's `test -e ok` looks in the file's directory too.
    fx.write_file("etc/ok", "");
    let entries = h.wait_entries("[shell] passing once etc/ok exists", |e| {
        named(e, "[shell] test -e ok || exit 4").iter().any(|e| e.kind == "INFO")
    });
    for name in ["[exec] sh -c 'pwd -P > exec.pwd; exit 3'", "[script] check.sh"] {
        h.ensure(!named(&entries, name).is_empty(), format!("entries named {name:?}"));
    }
    h.ensure(
        named(&entries, "[script] check.sh").iter().all(|e| e.kind == "INFO"),
        "the script passes",
    );
    h.ensure(h.stdout().is_empty(), "service mode prints nothing on stdout");
    h.stop();
}

// ---------------------------------------------------------------------------
// 3. Errors at start
// ---------------------------------------------------------------------------

/// A probe that would leave a trace if anything ran.
const TRACE: &str = "\n[probe.z]\ncommand = \"touch ran\"\n";

#[test]
fn start_errors_name_file_line_and_key_and_start_nothing() {
    let fx = Fixture::new("svc-errors");
    let conf = path_str(&fx.path(CONF));
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "unknown key",
            "[probe.a]\ncommand = [\"true\"]\nintervall = 5\n",
            &[],
            &[":3:", "unknown field `intervall`"],
        ),
        (
            "bad value",
            "[probe.a]\ncommand = [\"true\"]\ninterval = \"0s\"\n",
            &[],
            &[":3", "probe a", "interval 0s", "greater than zero"],
        ),
        (
            "bad signal",
            "[probe.a]\ncommand = [\"true\"]\n\nsignal = \"FOO\"\n",
            &[],
            &[":4", "probe a", "signal FOO"],
        ),
        (
            "command and script",
            "[probe.a]\ncommand = [\"true\"]\nscript = \"x.sh\"\n",
            &[],
            &[":2", "command and script"],
        ),
        ("bad probe name", "\n[probe.\"a b\"]\ncommand = [\"true\"]\n", &[], &[":2", "\"a b\""]),
        ("cli taken", "[probe.cli]\ncommand = [\"true\"]\n", &["true"], &[":1", "probe.cli"]),
        ("invalid toml", "[probe.a\ncommand = [\"true\"]\n", &[], &[":1:"]),
    ];
    for (what, text, extra, want) in cases {
        fx.write_file(CONF, &format!("{text}{TRACE}"));
        let mut args = vec!["-c", conf.as_str()];
        args.extend_from_slice(extra);
        let mut h = fx.heat_run(&args);
        let code = h.wait_code(DEADLINE);
        h.ensure(code == 2, format!("{what}: exit code {code}, expected 2"));
        let err = h.stderr();
        h.ensure(err.lines().count() == 1, format!("{what}: one line on stderr"));
        let found = err.find(&conf).map(|i| &err[i + conf.len()..]).unwrap_or("");
        h.ensure(
            err.starts_with("heat: ") && !found.is_empty(),
            format!("{what}: `heat: ` and the file {conf}"),
        );
        for w in *want {
            h.ensure(err.contains(w), format!("{what}: stderr should contain {w:?}"));
        }
        h.ensure(found.starts_with(want[0]), format!("{what}: line right after the path"));
        h.ensure(!fx.exists(LOG), format!("{what}: no log may be created"));
        h.ensure(!fx.exists("ran"), format!("{what}: nothing may run"));
    }
}

#[test]
fn a_wrong_type_names_the_key() {
    let fx = Fixture::new("svc-wrongtype");
    write_conf(&fx, &format!("[probe.a]\ncommand = [\"true\"]\ninterval = true\n{TRACE}"));
    let mut h = fx.heat_run(&["-c", CONF]);
    let code = h.wait_code(DEADLINE);
    h.ensure(code == 2, format!("exit code {code}, expected 2"));
    let err = h.stderr();
    h.ensure(err.starts_with("heat: heat.toml:3"), "file and line");
    h.ensure(err.contains("interval"), "wrong types name the key (`interval`)");
    h.ensure(!fx.exists(LOG) && !fx.exists("ran"), "nothing started");
}

// ---------------------------------------------------------------------------
// 4. -t
// ---------------------------------------------------------------------------

#[test]
fn check_config_prints_every_probe_with_its_phase_and_runs_nothing() {
    let fx = Fixture::new("svc-t");
    write_conf(
        &fx,
        "[defaults]\ninterval = \"900ms\"\ncommand = \"touch ran\"\n\
         [probe.alpha]\n[probe.beta]\ntimeout = \"200ms\"\n",
    );
    let mut h = fx.heat_run(&["-c", CONF, "-t"]);
    let code = h.wait_code(DEADLINE);
    h.ensure(code == 0, format!("-t exit code {code}, expected 0"));
    let p = blocks(&h.stdout());
    h.ensure(p.keys().eq(["alpha", "beta"].iter()), "one block per probe, alpha and beta");
    for (name, timeout) in [("alpha", "900ms"), ("beta", "200ms")] {
        let b = &p[name];
        let phase = fmt_ms(phase_ms(name, 900));
        h.ensure(b.get("phase") == Some(&phase), format!("{name}: phase = {phase}"));
        h.ensure(b.get("interval").map(String::as_str) == Some("900ms"), "interval");
        h.ensure(b.get("timeout").map(String::as_str) == Some(timeout), "timeout");
        h.ensure(b.get("check").map(String::as_str) == Some("touch ran"), "check");
        h.ensure(b.get("form").map(String::as_str) == Some("shell"), "form");
    }
    h.ensure(!fx.exists(LOG), "-t creates no log");
    h.ensure(!fx.exists("ran"), "-t runs nothing");
    drop(h);

    // One probe starts at once: phase 0.
    write_conf(&fx, "[probe.solo]\ncommand = [\"true\"]\ninterval = \"900ms\"\n");
    let (code, out, err) = check_config(&fx, &["-c", CONF, "-t"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(blocks(&out)["solo"]["phase"], "0s", "{out}");

    write_conf(&fx, "[probe.solo]\ncommand = [\"true\"]\ninterval = \"nope\"\n");
    let (code, out, err) = check_config(&fx, &["-c", CONF, "-t"]);
    assert_eq!(code, 2, "invalid -t exit code; stdout:\n{out}\nstderr:\n{err}");
    assert!(out.is_empty(), "nothing on stdout when invalid:\n{out}");
    assert!(err.starts_with("heat: ") && err.contains("interval"), "{err}");
    assert!(!fx.exists(LOG), "no log");
}

// ---------------------------------------------------------------------------
// 5. The cli probe
// ---------------------------------------------------------------------------

#[test]
fn a_command_line_check_adds_the_cli_probe_beside_the_files() {
    let _g = light();
    let fx = Fixture::new("svc-cli");
    fs::create_dir(fx.path("etc")).unwrap();
    fx.write_file(
        "etc/heat.toml",
        "[probe.f]\ncommand = \"echo $HEAT_PROBE > probe.f\"\ninterval = \"5s\"\n",
    );
    let mut h = fx.heat(&[
        "-c",
        "etc/heat.toml",
        "-i",
        "200ms",
        "sh",
        "-c",
        "echo $HEAT_PROBE > probe.cli",
    ]);
    h.wait_for("both probes ran", || {
        fx.lines("etc/probe.f") == ["f"] && fx.lines("probe.cli") == ["cli"]
    });
    let entries = h.wait_entries("two checks of each probe (-i applies to both)", |e| {
        named(e, "[f] echo $HEAT_PROBE > probe.f").len() >= 2
            && e.iter().filter(|e| e.name.starts_with("[cli] sh -c ")).count() >= 2
    });
    h.ensure(!fx.exists("etc/probe.cli"), "the cli probe runs in heat's own directory");
    h.ensure(heat_events(&entries).iter().all(|t| !t.starts_with("reload")), "no reloads");
    h.stop();
}

// ---------------------------------------------------------------------------
// 6, 7. Independent schedules
// ---------------------------------------------------------------------------

#[test]
fn two_probes_keep_their_own_intervals() {
    let _g = light();
    let fx = Fixture::new("svc-two");
    write_conf(
        &fx,
        "[probe.fast]\ncommand = [\"true\"]\ninterval = \"100ms\"\n\
         [probe.slow]\ncommand = [\"true\"]\ninterval = \"400ms\"\n",
    );
    let mut h = service(&fx, &[]);
    let entries = h.wait_named("[slow] true", 6);
    // Between slow's 2nd and 6th checks (4 of its intervals) fast runs ~16 times.
    let idx: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name == "[slow] true")
        .map(|(i, _)| i)
        .collect();
    let fast = entries[idx[1]..idx[5]].iter().filter(|e| e.name == "[fast] true").count();
    h.ensure(
        (10..=20).contains(&fast),
        format!("fast checks during 4 slow intervals: {fast}, expected about 16"),
    );
    h.stop();
}

#[test]
fn a_hung_probe_does_not_delay_another() {
    let _g = light();
    let fx = Fixture::new("svc-hung");
    write_conf(
        &fx,
        "[probe.hang]\ncommand = \"date +%s%3N > hang.start; exec sleep 30\"\n\
         interval = \"100ms\"\ntimeout = \"60s\"\n\
         [probe.fast]\ncommand = \"date +%s%3N >> fast.times\"\ninterval = \"100ms\"\n",
    );
    let mut h = service(&fx, &[]);
    let mut after = Vec::new();
    h.wait_for("10 fast checks while the hung one runs", || {
        let Ok(start) = fx.read("hang.start").trim().parse::<u64>() else { return false };
        after = ms_lines(&fx, "fast.times").into_iter().filter(|&t| t > start).collect();
        after.len() >= 10
    });
    let span = after[9] - after[0];
    h.ensure(span <= 2_700, format!("9 fast intervals of 100ms took {span}ms"));
    let entries = h.entries();
    h.ensure(named(&entries, "[hang] date +%s%3N > hang.start; exec sleep 30").is_empty(), "hung");
    h.stop();
}

// ---------------------------------------------------------------------------
// 8, 9. Reloads
// ---------------------------------------------------------------------------

#[test]
fn sighup_reloads_added_removed_and_changed_probes() {
    let _g = light();
    let fx = Fixture::new("svc-hup");
    let probe = |name: &str, cmd: &str| {
        format!("[probe.{name}]\ncommand = \"{cmd}\"\ninterval = \"100ms\"\n")
    };
    unwatched_conf(
        &fx,
        &[probe("keep", "true"), probe("gone", "true"), probe("chg", "echo old")].concat(),
    );
    let mut h = service(&fx, &[]);
    h.wait_entries("each probe ran", |e| {
        ["[keep] true", "[gone] true", "[chg] echo old"].iter().all(|n| !named(e, n).is_empty())
    });

    edit_unwatched(
        &fx,
        &[probe("keep", "true"), probe("chg", "echo new"), probe("new", "true")].concat(),
    );
    h.kill(Signal::SIGHUP);
    let want = "reloaded: added 1 (new); removed 1 (gone); changed 1 (chg); unchanged 1";
    let entries = h.wait_entries("new and changed probes running", |e| {
        named(e, "[new] true").len() >= 3 && named(e, "[chg] echo new").len() >= 3
    });
    let summaries = reloads(&entries);
    h.ensure(summaries == [want], format!("one summary {want:?}, got {summaries:?}"));
    let at = entries.iter().position(|e| e.is_heat() && e.text() == want).unwrap();
    let since = |name: &str| entries[at..].iter().filter(|e| e.name == name).count();
    h.ensure(since("[gone] true") <= 1, "the removed probe stops (one ended check at most)");
    h.ensure(since("[chg] echo old") <= 1, "the changed probe's old command stops");
    h.ensure(since("[keep] true") >= 2, "the unchanged probe goes on");
    let (gone, old) =
        (named(&entries, "[gone] true").len(), named(&entries, "[chg] echo old").len());

    // A HUP of an unchanged file still says so; then nothing more of gone or old.
    h.kill(Signal::SIGHUP);
    let noop = "reloaded: added 0; removed 0; changed 0; unchanged 3";
    let before = named(&entries, "[new] true").len();
    let entries = h.wait_entries("a no-op summary, then 3 more checks of new", |e| {
        reloads(e).last().map(String::as_str) == Some(noop)
            && named(e, "[new] true").len() >= before + 3
    });
    h.ensure(named(&entries, "[gone] true").len() == gone, "no check of the removed probe");
    h.ensure(named(&entries, "[chg] echo old").len() == old, "no check of the old command");
    h.ensure(
        heat_events(&entries).iter().filter(|t| *t == "reopened the log").count() == 2,
        "each HUP reopens the log",
    );
    h.stop();
}

#[test]
fn a_rename_over_reloads_without_a_signal() {
    let _g = light();
    let fx = Fixture::new("svc-rename");
    write_conf(&fx, "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    fx.replace_file(
        CONF,
        "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n\
         [probe.b]\ncommand = [\"true\", \"b\"]\ninterval = \"100ms\"\n",
        0o644,
    );
    let entries = h.wait_named("[b] true b", 2);
    let summaries = reloads(&entries);
    h.ensure(
        summaries == ["reloaded: added 1 (b); removed 0; changed 0; unchanged 1"],
        format!("one reload summary: {summaries:?}"),
    );
    h.ensure(!heat_events(&entries).contains(&"reopened the log".to_string()), "no HUP was sent");
    h.stop();
}

#[test]
fn a_replaced_config_directory_is_watched_again() {
    let _g = light();
    let fx = Fixture::new("svc-newdir");
    fs::create_dir(fx.path("conf")).unwrap();
    fx.write_file("conf/heat.toml", "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    let mut h = service_at(&fx, "conf/heat.toml");
    h.wait_named("[a] true", 1);
    // The directory itself replaced (a deploy that swaps directories): the
    // watch on the old one is gone with it.
    fs::rename(fx.path("conf"), fx.path("conf.old")).unwrap();
    fs::create_dir(fx.path("conf")).unwrap();
    fx.replace_file(
        "conf/heat.toml",
        "[probe.b]\ncommand = [\"true\", \"b\"]\ninterval = \"100ms\"\n",
        0o644,
    );
    h.wait_named("[b] true b", 2);
    h.stop();
}

#[test]
fn a_symlink_swap_reloads_without_a_signal() {
    let _g = light();
    let fx = Fixture::new("svc-symlink");
    fx.write_file("v1.toml", "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    fx.write_file("v2.toml", "[probe.a]\ncommand = [\"true\", \"2\"]\ninterval = \"100ms\"\n");
    std::os::unix::fs::symlink("v1.toml", fx.path(CONF)).unwrap();
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    // `ln -sfn v2.toml heat.toml`, atomically: a new link renamed over the old.
    std::os::unix::fs::symlink("v2.toml", fx.path("heat.toml.new")).unwrap();
    fs::rename(fx.path("heat.toml.new"), fx.path(CONF)).unwrap();
    let entries = h.wait_named("[a] true 2", 2);
    let summaries = reloads(&entries);
    h.ensure(
        summaries == ["reloaded: added 0; removed 0; changed 1 (a); unchanged 0"],
        format!("one reload summary: {summaries:?}"),
    );
    h.stop();
}

// ---------------------------------------------------------------------------
// 10. State and phase kept across a reload
// ---------------------------------------------------------------------------

#[test]
fn an_unchanged_probe_keeps_its_fail_count_and_its_phase() {
    let _g = light();
    let fx = Fixture::new("svc-keep");
    let d = path_str(&fx.dir);
    // Checks 1 and 2 fail; check 3 fails once `go` exists; the rest pass.
    fx.write_script(
        "check.sh",
        &format!(
            "n=$(cat {d}/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > {d}/count\n\
             case $n in 1|2) exit 1;; 3) while [ ! -e {d}/go ]; do sleep 0.05; done; exit 1;; esac"
        ),
    );
    fx.write_script("rec.sh", &format!("touch {d}/rec.ran"));
    const I: u64 = 600;
    let conf = |extra: &str| {
        format!(
            "[probe.p]\nscript = \"{d}/check.sh\"\ninterval = \"200ms\"\ntimeout = \"30s\"\n\
             threshold = 3\nrecovery = \"{d}/rec.sh\"\n\
             [probe.tick]\ncommand = \"date +%s%3N >> {d}/tick.times\"\ninterval = \"{I}ms\"\n{extra}"
        )
    };
    unwatched_conf(&fx, &conf(""));
    let mut h = service(&fx, &[]);
    h.wait_for("check 3 running and 3 ticks", || {
        fx.read("count").trim() == "3" && ms_lines(&fx, "tick.times").len() >= 3
    });
    let pre = ms_lines(&fx, "tick.times");
    let r0 = median(pre.iter().map(|t| t % I).collect());
    h.ensure(
        pre.iter().all(|t| circ(t % I, r0, I) <= 150),
        format!("ticks before the reload on one grid (residue {r0}): {pre:?}"),
    );

    edit_unwatched(&fx, &conf("# a comment\n[probe.other]\ncommand = [\"true\"]\n"));
    // HUP when a restarted tick would land half an interval off its grid.
    let target = (r0 + I + I / 2 - phase_ms("tick", I)) % I;
    while circ(now_ms() % I, target, I) > 20 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let hup_at = now_ms();
    h.kill(Signal::SIGHUP);
    h.wait_event("reloaded: added 1 (other); removed 0; changed 0; unchanged 2");

    fx.write_file("go", "");
    h.wait_for("the recovery hook (3rd failure counted after the reload)", || fx.exists("rec.ran"));
    let entries = h.entries();
    let round = probe_events(&entries, "p").into_iter().find(|t| t.starts_with("recovery round"));
    h.ensure(
        round.as_deref() == Some("recovery round 1: 3 consecutive failures"),
        format!("fails carried across the reload: {round:?}"),
    );

    let mut post = Vec::new();
    h.wait_for("3 ticks after the reload", || {
        post = ms_lines(&fx, "tick.times").into_iter().filter(|&t| t > hup_at).collect();
        post.len() >= 3
    });
    h.ensure(
        post.iter().all(|t| circ(t % I, r0, I) <= 150),
        format!("ticks after the reload keep residue {r0} mod {I}: {post:?} (HUP at {hup_at})"),
    );
    h.stop();
}

// ---------------------------------------------------------------------------
// 11. Invalid reload
// ---------------------------------------------------------------------------

#[test]
fn a_failed_reload_is_said_on_stderr_plainly() {
    let _g = light();
    let fx = Fixture::new("svc-invalid-stderr");
    write_conf(&fx, "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    fx.replace_file(CONF, "[probe.a\ncommand = [\"true\"]\n", 0o644);
    let said = "heat: error: reload failed, keeping the running configuration: ";
    h.wait_for("the reload error on stderr", || h.stderr().contains("reload failed"));
    let err = h.stderr();
    // stderr is a file here: no colour, and the prefix start-up errors have.
    h.ensure(!err.contains('\x1b'), format!("escape codes on stderr: {err:?}"));
    h.ensure(err.lines().any(|l| l.starts_with(said)), format!("expected {said:?}: {err:?}"));
    h.stop();
}

#[test]
fn an_invalid_reload_keeps_the_running_configuration() {
    let _g = light();
    let fx = Fixture::new("svc-invalid");
    let good = "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n";
    write_conf(&fx, good);
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    fx.replace_file(CONF, "[probe.a\ncommand = [\"true\"]\n", 0o644);
    let prefix = "reload failed, keeping the running configuration: ";
    let entries = h.wait_event(prefix);
    let at = entries.iter().position(|e| e.is_heat() && e.text().starts_with(prefix)).unwrap();
    h.ensure(entries[at].kind == "ERR", "a failed reload is an ERR entry");
    let reason = entries[at].text()[prefix.len()..].to_string();
    h.wait_entries("3 more checks after the failed reload", |e| {
        e[at..].iter().filter(|e| e.name == "[a] true").count() >= 3
    });
    h.ensure_running("an invalid reload is not fatal");

    let (code, _, err) = check_config(&fx, &["-c", CONF, "-t"]);
    h.ensure(
        code == 2 && err.trim_end() == format!("heat: {reason}"),
        format!("the ERR reason is what -t prints: -t said {err:?} ({code})"),
    );

    // A HUP with the file still broken fails the same way; a fixed file reloads
    // against the configuration that kept running.
    h.kill(Signal::SIGHUP);
    h.wait_entries("a second failed reload", |e| {
        heat_events(e).iter().filter(|t| t.starts_with(prefix)).count() == 2
    });
    fx.replace_file(CONF, &format!("{good}[probe.b]\ncommand = [\"true\"]\n"), 0o644);
    h.wait_event("reloaded: added 1 (b); removed 0; changed 0; unchanged 1");
    h.stop();
}

#[test]
fn a_good_file_after_a_failed_reload_says_it_is_valid_again_even_unchanged() {
    let _g = light();
    let fx = Fixture::new("svc-valid-again");
    let good = "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n";
    write_conf(&fx, good);
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    fx.replace_file(CONF, "[probe.a\ncommand = [\"true\"]\n", 0o644);
    h.wait_event("reload failed, keeping the running configuration: ");
    // The file as it was: nothing changes, but the error is over.
    fx.replace_file(CONF, good, 0o644);
    let entries = h.wait_event("configuration valid again");
    let e = entries.iter().find(|e| e.is_heat() && e.text() == "configuration valid again");
    h.ensure(e.is_some_and(|e| e.kind == "INFO"), "an INFO entry");
    let events = heat_events(&entries);
    h.ensure(reloads(&entries).is_empty(), format!("nothing changed, no summary: {events:?}"));
    // Said once: the next unchanged rewrite is silent again. The probe's checks
    // after it show the reload was done.
    fx.replace_file(CONF, good, 0o644);
    let n = named(&entries, "[a] true").len();
    h.wait_entries("checks after a second rewrite", |e| named(e, "[a] true").len() >= n + 5);
    let again =
        |e: &[Entry]| heat_events(e).iter().filter(|t| *t == "configuration valid again").count();
    h.ensure(again(&h.entries()) == 1, "said once");
    h.stop();
}

// ---------------------------------------------------------------------------
// 12. A changed probe's hook finishes first
// ---------------------------------------------------------------------------

#[test]
fn a_changed_probe_lets_its_fail_hook_finish_before_the_new_one_starts() {
    let _g = light();
    let fx = Fixture::new("svc-hookfirst");
    fx.write_script(
        "hook.sh",
        "echo hook-start >> order.log; sleep 0.8; echo hook-done >> order.log",
    );
    write_conf(&fx, "[probe.x]\ncommand = [\"false\"]\ninterval = \"100ms\"\nfail = \"hook.sh\"\n");
    let mut h = service(&fx, &[]);
    h.wait_for("the fail hook running", || {
        let l = fx.lines("order.log");
        count(&l, "hook-start") > count(&l, "hook-done")
    });
    fx.replace_file(
        CONF,
        "[probe.x]\ncommand = \"echo new >> order.log\"\ninterval = \"100ms\"\nfail = \"hook.sh\"\n",
        0o644,
    );
    h.wait_for("the new probe's check", || fx.lines("order.log").contains(&"new".to_string()));
    let lines = fx.lines("order.log");
    let first_new = lines.iter().position(|l| l == "new").unwrap();
    let before = &lines[..first_new];
    h.ensure(
        count(before, "hook-start") == count(before, "hook-done")
            && before.last().map(String::as_str) == Some("hook-done"),
        format!("the new check came while a hook ran: {lines:?}"),
    );
    let entries = h.entries();
    let summary = "reloaded: added 0; removed 0; changed 1 (x); unchanged 0";
    let at = entries.iter().position(|e| e.is_heat() && e.text() == summary);
    let last_hook = entries.iter().rposition(|e| e.name == "[x] hook.sh");
    h.ensure(
        matches!((at, last_hook), (Some(a), Some(k)) if a < k),
        "the reload came while the hook ran (its entry after the summary)",
    );
    h.stop();
}

// ---------------------------------------------------------------------------
// 13. Pidfiles
// ---------------------------------------------------------------------------

#[test]
fn a_restarted_target_is_followed_through_its_pidfile() {
    let _g = light();
    let fx = Fixture::new("svc-follow");
    let first = fx.trap_target("sigs1");
    fx.replace_file("app.pid", &format!("{first}\n"), 0o644);
    write_conf(
        &fx,
        "[probe.p]\ncommand = [\"false\"]\ninterval = \"200ms\"\npidfile = \"app.pid\"\nsignal = \"USR1\"\n",
    );
    let mut h = service(&fx, &[]);
    h.wait_for("USR1 at the first target", || fx.lines("sigs1").contains(&"USR1".into()));
    let second = fx.trap_target("sigs2");
    fx.replace_file("app.pid", &format!("{second}\n"), 0o644);
    fx.kill_helper(first);
    let pidfile = path_str(&fx.path("app.pid"));
    let followed = format!("target pid {first} exited; following pid {second} from {pidfile}");
    wait_probe_event(&h, "p", &followed);
    h.wait_for("USR1 at the second target", || fx.lines("sigs2").contains(&"USR1".into()));
    let entries = h.wait_entries("sent SIGUSR1 to the new pid", |e| {
        probe_events(e, "p").contains(&format!("sent SIGUSR1 to pid {second}"))
    });
    h.ensure(
        entries.iter().all(|e| e.kind != "ERR"),
        "following a restarted target is not an error",
    );
    h.stop();
}

#[test]
fn a_pidfile_naming_no_live_process_at_start_is_followed_once_it_does() {
    let _g = light();
    let fx = Fixture::new("svc-nopid");
    let dead = fx.sleep_target();
    fx.kill_helper(dead);
    fx.replace_file("app.pid", &format!("{dead}\n"), 0o644);
    write_conf(
        &fx,
        "[probe.p]\ncommand = [\"false\"]\ninterval = \"150ms\"\npidfile = \"app.pid\"\nsignal = \"USR1\"\n",
    );
    let mut h = service(&fx, &[]);
    let entries = h.wait_entries("an ERR entry of the probe", |e| {
        e.iter().any(|e| e.name == "[p] heat" && e.kind == "ERR")
    });
    let err = entries.iter().find(|e| e.name == "[p] heat" && e.kind == "ERR").unwrap();
    h.ensure(err.text().contains("app.pid"), format!("the ERR names the pidfile: {err:?}"));
    h.wait_entries("two more failing checks, signals skipped", |e| {
        named(e, "[p] false").len() >= 2
            && probe_events(e, "p").iter().any(|t| t == "skipped SIGUSR1: no target")
    });
    h.ensure_running("a pidfile naming no live process is not fatal in service mode");

    let target = fx.trap_target("sigs");
    fx.replace_file("app.pid", &format!("{target}\n"), 0o644);
    let pidfile = path_str(&fx.path("app.pid"));
    wait_probe_event(&h, "p", &format!("following pid {target} from {pidfile}"));
    h.wait_for("USR1 at the target", || fx.lines("sigs").contains(&"USR1".into()));
    h.stop();
}

// ---------------------------------------------------------------------------
// 14. Trouble is not fatal in service mode
// ---------------------------------------------------------------------------

#[test]
fn a_dead_target_is_an_err_entry_and_the_probe_goes_on() {
    let _g = light();
    let fx = Fixture::new("svc-deadtarget");
    let target = fx.sleep_target();
    write_conf(
        &fx,
        &format!("[probe.p]\ncommand = [\"true\"]\ninterval = \"100ms\"\npid = {target}\n"),
    );
    let mut h = service(&fx, &[]);
    h.wait_named("[p] true", 1);
    fx.kill_helper(target);
    let text = format!("target pid {target} exited");
    let entries = wait_probe_event(&h, "p", &text);
    let at = entries.iter().position(|e| e.name == "[p] heat" && e.text() == text).unwrap();
    h.ensure(entries[at].kind == "ERR", "a dead target is an ERR entry");
    h.wait_entries("3 more checks after the target died", |e| {
        e[at..].iter().filter(|e| e.name == "[p] true").count() >= 3
    });
    h.ensure_running("a dead target is not fatal in service mode");
    h.stop();
}

#[test]
fn a_check_killed_from_outside_is_a_failure_with_code_137() {
    let _g = light();
    let fx = Fixture::new("svc-killed");
    fx.write_script("fail.sh", "echo $HEAT_FAIL_CODE >> codes");
    write_conf(
        &fx,
        "[probe.k]\ncommand = \"echo $$ > check.pid; exec sleep 30\"\ninterval = \"200ms\"\n\
         timeout = \"60s\"\nfail = \"fail.sh\"\n",
    );
    let mut h = service(&fx, &[]);
    let mut pid = None;
    h.wait_for("the check's pid", || {
        pid = fx.read_pid("check.pid");
        pid.is_some()
    });
    let pid = pid.unwrap();
    send(pid, Signal::SIGKILL);
    let text = format!("check pid {pid} was killed by SIGKILL, not sent by heat");
    let entries = wait_probe_event(&h, "k", &text);
    let err = entries.iter().find(|e| e.name == "[k] heat" && e.text() == text).unwrap();
    h.ensure(err.kind == "ERR", "an ERR entry");
    h.wait_for("the fail hook saw code 137", || fx.lines("codes") == ["137"]);
    let entries = h.entries();
    let check = named(&entries, "[k] echo $$ > check.pid; exec sleep 30");
    h.ensure(
        check.first().is_some_and(|e| {
            e.kind == "FAIL" && e.lines.contains(&"[heat: killed by SIGKILL]".to_string())
        }),
        format!("the check's FAIL entry carries the marker: {check:?}"),
    );
    h.wait_for("the next check", || fx.read_pid("check.pid").is_some_and(|p| p != pid));
    h.ensure_running("a killed check is not fatal in service mode");
    h.stop();
}

#[test]
fn a_stopped_check_is_killed_and_fails_with_code_147() {
    let _g = light();
    let fx = Fixture::new("svc-stopped");
    fx.write_script("fail.sh", "echo $HEAT_FAIL_CODE >> codes");
    write_conf(
        &fx,
        "[probe.s]\ncommand = \"echo $$ > check.pid; kill -STOP $$; sleep 30\"\n\
         interval = \"200ms\"\ntimeout = \"60s\"\nfail = \"fail.sh\"\n",
    );
    let mut h = service(&fx, &[]);
    h.wait_for("the fail hook saw code 147", || {
        fx.lines("codes").first().map(String::as_str) == Some("147")
    });
    let pid = fx.read_pid("check.pid").unwrap();
    let text = format!("check pid {pid} was stopped by SIGSTOP");
    let entries = h.entries();
    h.ensure(
        entries.iter().any(|e| e.name == "[s] heat" && e.kind == "ERR" && e.text() == text),
        format!("an ERR entry {text:?}"),
    );
    h.ensure(proc_state(pid).is_none_or(|s| s == 'Z'), "the stopped check is gone");
    h.ensure_running("a stopped check is not fatal in service mode");
    h.stop();
}

#[test]
fn a_closed_stderr_does_not_stop_heat() {
    let _g = light();
    let fx = Fixture::new("svc-stderr");
    write_conf(&fx, "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    let (read, write) = std::io::pipe().unwrap();
    drop(read);
    let mut h = Heat::start_with(&fx, &["-c", CONF], move |cmd| {
        cmd.stderr(write);
    });
    h.wait_named("[a] true", 1);
    // An invalid reload is reported on stderr, which is a pipe nobody reads.
    fx.replace_file(CONF, "[probe.a\n", 0o644);
    h.kill(Signal::SIGHUP);
    h.wait_event("reload failed, keeping the running configuration: ");
    let n = named(&h.entries(), "[a] true").len();
    h.wait_named("[a] true", n + 2);
    h.ensure_running("a broken stderr must not end heat");
    h.stop();
}

// ---------------------------------------------------------------------------
// 15. A thousand probes
// ---------------------------------------------------------------------------

#[test]
fn a_thousand_probes_run_in_one_process() {
    let _g = HEAVY.write().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new("svc-1000");
    let mut text = String::from("[defaults]\ninterval = \"1s\"\ncommand = [\"true\"]\n");
    for n in 0..1000 {
        text.push_str(&format!("[probe.p{n}]\n"));
    }
    write_conf(&fx, &text);
    let start = Instant::now();
    let mut h = service(&fx, &[]);
    let mut seen: BTreeSet<String>;
    let mut errs: Vec<Entry>;
    let ok = loop {
        let entries = h.entries();
        seen = entries
            .iter()
            .filter_map(|e| e.name.strip_suffix("] true")?.strip_prefix("[p"))
            .map(str::to_string)
            .collect();
        errs = entries.into_iter().filter(|e| e.kind == "ERR").collect();
        let done = seen.len() == 1000 && start.elapsed() >= Duration::from_secs(3);
        if done || !errs.is_empty() || h.try_exit().is_some() {
            break done;
        }
        if start.elapsed() > Duration::from_secs(15) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    h.ensure(errs.is_empty(), format!("no ERR entries: {errs:?}"));
    h.ensure_running("heat runs 1000 probes");
    h.ensure(ok, format!("every probe ran within 15 s: {} of 1000", seen.len()));
    h.stop();
}

// ---------------------------------------------------------------------------
// 16. USR1 and TERM
// ---------------------------------------------------------------------------

#[test]
fn usr1_writes_one_state_entry_per_probe_and_term_stops() {
    let _g = light();
    let fx = Fixture::new("svc-usr1");
    write_conf(
        &fx,
        "[defaults]\ninterval = \"100ms\"\ncommand = [\"true\"]\n[probe.a]\n[probe.b]\n[probe.c]\n",
    );
    let mut h = service(&fx, &[]);
    h.wait_entries("each probe ran", |e| {
        ["a", "b", "c"].iter().all(|p| !named(e, &format!("[{p}] true")).is_empty())
    });
    h.kill(Signal::SIGUSR1);
    let states = |e: &[Entry], p: &str| {
        probe_events(e, p).into_iter().filter(|t| t.starts_with("state: ")).collect::<Vec<_>>()
    };
    let entries = h.wait_entries("a state entry per probe", |e| {
        ["a", "b", "c"].iter().all(|p| !states(e, p).is_empty())
    });
    let n = named(&entries, "[a] true").len();
    let entries = h.wait_entries("3 more checks of a", |e| named(e, "[a] true").len() >= n + 3);
    for p in ["a", "b", "c"] {
        let s = states(&entries, p);
        h.ensure(s.len() == 1, format!("one state entry for {p}: {s:?}"));
        h.ensure(
            s[0].starts_with("state: mode normal, fails 0, last OK (exit 0) at ")
                && s[0].contains(", next check in "),
            format!("state of {p}: {:?}", s[0]),
        );
    }
    h.ensure(!entries.iter().any(|e| e.kind == "ERR"), "no ERR entries");
    h.stop();
    let events = heat_events(&h.entries());
    h.ensure(events.contains(&"stopping on SIGTERM".to_string()), "stopping on SIGTERM");
    h.ensure(events.first().is_some_and(|t| t.starts_with("started heat ")), "started heat");
}

#[test]
fn usr1_gets_a_state_entry_from_a_probe_a_reload_is_replacing() {
    let _g = light();
    let fx = Fixture::new("svc-usr1-replacing");
    fx.write_script("hang.sh", "touch hanging; sleep 3");
    let conf = |i: &str| {
        format!(
            "[probe.a]\ncommand = [\"false\"]\ninterval = \"{i}\"\nfail = \"hang.sh\"\n\
             hook_timeout = \"10s\"\n[probe.b]\ncommand = [\"true\"]\ninterval = \"{i}\"\n"
        )
    };
    unwatched_conf(&fx, &conf("1s"));
    let mut h = service(&fx, &[]);
    h.wait_for("a's fail hook hangs", || fx.exists("hanging"));
    // Both change; a waits for its hook before its replacement starts.
    edit_unwatched(&fx, &conf("2s"));
    h.kill(Signal::SIGHUP);
    h.wait_event("reloaded: added 0; removed 0; changed 2 (a, b)");
    h.kill(Signal::SIGUSR1);
    let entries = h.wait_entries("a state entry from a and b", |e| {
        ["a", "b"].iter().all(|p| probe_events(e, p).iter().any(|t| t.starts_with("state: ")))
    });
    let hooks = named(&entries, "[a] hang.sh");
    h.ensure(hooks.is_empty(), format!("a answered while its hook ran: {hooks:?}"));
    h.stop();
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const CONF: &str = "heat.toml";

/// The thousand-probe test takes this for writing, every timing test for
/// reading, so that the load of the former never skews the latter.
static HEAVY: RwLock<()> = RwLock::new(());

fn light() -> std::sync::RwLockReadGuard<'static, ()> {
    HEAVY.read().unwrap_or_else(|e| e.into_inner())
}

fn write_conf(fx: &Fixture, text: &str) -> PathBuf {
    fx.write_file(CONF, text)
}

/// heat.toml as a symlink into `store/`, so that in-place edits of the real
/// file happen in a directory heat does not watch: only a SIGHUP reloads it.
/// The file's paths are absolute, since its directory is ambiguous.
fn unwatched_conf(fx: &Fixture, text: &str) {
    fs::create_dir_all(fx.path("store")).unwrap();
    fx.write_file("store/heat.toml", text);
    std::os::unix::fs::symlink("store/heat.toml", fx.path(CONF)).unwrap();
}

fn edit_unwatched(fx: &Fixture, text: &str) {
    fx.write_file("store/heat.toml", text);
}

/// `heat -c PATH`, once it has said it started.
fn service_at<'a>(fx: &'a Fixture, path: &str) -> Heat<'a> {
    let h = fx.heat(&["-c", path]);
    h.wait_event("started heat ");
    h
}

/// `heat -c heat.toml ARGS...`, once it has said it started.
fn service<'a>(fx: &'a Fixture, args: &[&str]) -> Heat<'a> {
    let mut all = vec!["-c", CONF];
    all.extend_from_slice(args);
    let h = fx.heat(&all);
    h.wait_event("started heat ");
    h
}

/// Runs heat to its end outside the fixture's process tag (so that it can run
/// beside a service heat of the same test): (exit code, stdout, stderr).
fn check_config(fx: &Fixture, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(heat_bin())
        .args(args)
        .current_dir(&fx.dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run heat");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// `-t` output as probe name → key → value.
fn blocks(out: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut all: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = None;
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("[probe.").and_then(|l| l.strip_suffix(']')) {
            all.insert(name.to_string(), BTreeMap::new());
            current = Some(name.to_string());
        } else if let (Some(name), Some((k, v))) = (&current, line.split_once(" = ")) {
            all.get_mut(name).unwrap().insert(k.to_string(), v.to_string());
        }
    }
    all
}

/// Texts of a probe's own events (`[probe] heat`).
fn probe_events(entries: &[Entry], probe: &str) -> Vec<String> {
    let name = format!("[{probe}] heat");
    entries.iter().filter(|e| e.name == name).map(|e| e.text().to_string()).collect()
}

fn wait_probe_event(h: &Heat, probe: &str, prefix: &str) -> Vec<Entry> {
    h.wait_entries(&format!("[{probe}] heat event starting {prefix:?}"), |e| {
        probe_events(e, probe).iter().any(|t| t.starts_with(prefix))
    })
}

/// The reload summaries, in order.
fn reloads(entries: &[Entry]) -> Vec<String> {
    heat_events(entries).into_iter().filter(|t| t.starts_with("reloaded: ")).collect()
}

fn count(lines: &[String], what: &str) -> usize {
    lines.iter().filter(|l| *l == what).count()
}

/// Millisecond timestamps a check appended (`date +%s%3N`).
fn ms_lines(fx: &Fixture, rel: &str) -> Vec<u64> {
    fx.lines(rel).iter().filter_map(|l| l.trim().parse().ok()).collect()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Distance between two residues modulo `m`.
fn circ(a: u64, b: u64, m: u64) -> u64 {
    let d = a.abs_diff(b) % m;
    d.min(m - d)
}

/// A probe's phase: FNV-1a-64 of its name mod min(interval, 10 s).
fn phase_ms(name: &str, interval_ms: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash % interval_ms.min(10_000)
}

/// A sub-second duration as `-t` prints it.
fn fmt_ms(ms: u64) -> String {
    assert!(ms < 1000);
    if ms == 0 { "0s".to_string() } else { format!("{ms}ms") }
}

#[test]
fn a_failed_reload_says_which_value_and_why() {
    let _g = light();
    let fx = Fixture::new("svc-invalid-value");
    write_conf(&fx, "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    fx.replace_file(CONF, "[probe.a]\ncommand = [\"true\"]\ninterval = 0\n", 0o644);
    let entries = h.wait_event("reload failed, keeping the running configuration: ");
    let said = heat_events(&entries)
        .into_iter()
        .find(|t| t.starts_with("reload failed"))
        .unwrap_or_default()
        .to_string();
    h.ensure(
        said.ends_with(&format!("probe a: {CONF}:3: interval 0: must be greater than zero")),
        format!("the probe, the line, the value and the reason: {said:?}"),
    );
    h.stop();
}
