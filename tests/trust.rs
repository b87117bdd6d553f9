//! heat cannot be wedged, fooled into signalling a stranger, or made to run
//! someone else's code; and it loses or misattributes nothing of its own.
//! Each test stages what an attacker or an unlucky operator would, against the
//! real binary, as root (the tests run as root here).

mod util;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use util::*;

const CONF: &str = "heat.toml";

/// `heat -c heat.toml ARGS...`, once it has said it started.
fn service<'a>(fx: &'a Fixture, args: &[&str]) -> Heat<'a> {
    let mut all = vec!["-c", CONF];
    all.extend_from_slice(args);
    let h = fx.heat(&all);
    h.wait_event("started heat ");
    h
}

/// Texts of a probe's own events (`[probe] heat`), with their types.
fn probe_events(entries: &[Entry], probe: &str) -> Vec<(String, String)> {
    let name = format!("[{probe}] heat");
    entries
        .iter()
        .filter(|e| e.name == name)
        .map(|e| (e.kind.clone(), e.text().to_string()))
        .collect()
}

fn has_probe_event(entries: &[Entry], probe: &str, prefix: &str) -> bool {
    probe_events(entries, probe).iter().any(|(_, t)| t.starts_with(prefix))
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
}

/// A fixture whose directory heat trusts as root (0755).
fn fixture(name: &str) -> Fixture {
    let fx = Fixture::new(name);
    fs::set_permissions(&fx.dir, fs::Permissions::from_mode(0o755)).unwrap();
    fx
}

/// Runs `heat ARGS` to its end within `within`, outside the fixture's
/// process tag: (exit code, stderr); `None` if it did not end in time.
fn run_bounded(fx: &Fixture, args: &[&str], within: Duration) -> Option<(i32, String)> {
    let mut child = Command::new(heat_bin())
        .args(args)
        .current_dir(&fx.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn heat");
    let ended = wait_until(within, || child.try_wait().unwrap().is_some());
    if !ended {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let out = child.wait_with_output().unwrap();
    Some((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned()))
}

fn one_line_exit_2(fx: &Fixture, args: &[&str], want: &str) {
    let (code, err) = run_bounded(fx, args, DEADLINE)
        .unwrap_or_else(|| panic!("heat {args:?} did not end within {DEADLINE:?}: it hung"));
    assert_eq!(code, 2, "heat {args:?}: exit code; stderr:\n{err}");
    assert_eq!(err.lines().count(), 1, "heat {args:?}: one line on stderr:\n{err}");
    assert!(err.starts_with("heat: "), "{err}");
    assert!(err.contains(want), "heat {args:?}: stderr should contain {want:?}:\n{err}");
}

// ---------------------------------------------------------------------------
// Wedges
// ---------------------------------------------------------------------------

#[test]
fn intervals_below_ten_milliseconds_are_refused_everywhere() {
    let fx = fixture("trust-interval");
    one_line_exit_2(&fx, &["-i", "1ns", "true"], "--interval 1ns: too short");
    one_line_exit_2(&fx, &["-i", "1ns", "-t", "true"], "--interval 1ns: too short");
    fx.write_file(CONF, "[probe.a]\ncommand = [\"true\"]\ninterval = \"5ns\"\n");
    one_line_exit_2(&fx, &["-c", CONF], "interval 5ns: too short");
    one_line_exit_2(&fx, &["-c", CONF, "-t"], "interval 5ns: too short");
    assert!(!fx.exists(LOG), "nothing may start");
}

#[test]
fn a_config_that_is_a_fifo_or_a_device_is_refused_without_hanging() {
    let fx = fixture("trust-conf-fifo");
    mkfifo(&fx.path(CONF));
    one_line_exit_2(&fx, &["-c", CONF, "-t"], "not a regular file");
    one_line_exit_2(&fx, &["-c", CONF], "not a regular file");
    one_line_exit_2(&fx, &["-c", "/dev/zero", "-t"], "config /dev/zero: not a regular file");
}

#[test]
fn a_reload_of_a_config_replaced_by_a_fifo_keeps_the_old_one_and_heat_responsive() {
    let fx = fixture("trust-reload-fifo");
    fx.write_file(CONF, "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    mkfifo(&fx.path("new.fifo"));
    fs::rename(fx.path("new.fifo"), fx.path(CONF)).unwrap();
    h.kill(Signal::SIGHUP);
    h.wait_entries("the reload refused", |e| {
        heat_events(e).iter().any(|t| {
            t.starts_with("reload failed, keeping the running configuration:")
                && t.contains("not a regular file")
        })
    });
    // Still running its checks and answering signals.
    let before = named(&h.entries(), "[a] true").len();
    h.wait_named("[a] true", before + 3);
    h.stop();
}

#[test]
fn a_log_that_is_a_fifo_is_refused_at_start_and_on_reload() {
    let fx = fixture("trust-log-fifo");
    mkfifo(&fx.path("log.fifo"));
    one_line_exit_2(&fx, &["--log", "log.fifo", "true"], "--log log.fifo: not a regular file");
    fx.write_file(CONF, "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    // A reload that moves the log to a FIFO is refused; the log goes on.
    let abs = path_str(&fx.path("log.fifo"));
    fx.replace_file(
        CONF,
        &format!("log = \"{abs}\"\n[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n"),
        0o644,
    );
    h.kill(Signal::SIGHUP);
    h.wait_entries("the reload refused", |e| {
        heat_events(e).iter().any(|t| {
            t.starts_with("reload failed, keeping the running configuration:")
                && t.contains("log.fifo: not a regular file")
        })
    });
    let before = named(&h.entries(), "[a] true").len();
    h.wait_named("[a] true", before + 3);
    // A later reload to a good path moves the log there.
    let good = path_str(&fx.path("good.log"));
    fx.replace_file(
        CONF,
        &format!("log = \"{good}\"\n[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n"),
        0o644,
    );
    h.kill(Signal::SIGHUP);
    h.wait_for("entries in good.log", || {
        parse_entries(&fx.read("good.log")).iter().any(|e| e.name == "[a] true")
    });
    h.stop();
}

#[test]
fn a_stderr_nobody_reads_never_blocks_heat() {
    let fx = fixture("trust-stderr");
    // A long invalid value: every refused reload prints a long line on stderr.
    let bad = format!("[probe.a]\ncommand = [\"true\"]\ninterval = \"{}\"\n", "x".repeat(300));
    let good = "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n";
    fx.write_file(CONF, good);
    // stderr is a pipe whose read end the test holds and never reads.
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    let mut h = Heat::start_with(&fx, &["-c", CONF], |cmd| {
        cmd.stderr(Stdio::from(write_end));
    });
    h.wait_event("started heat ");
    fx.replace_file(CONF, &bad, 0o644);
    // Far more than a pipe holds (64 KiB): 400 diagnostics of ~300 bytes.
    let refused = |h: &Heat| {
        heat_events(&h.entries()).iter().filter(|t| t.starts_with("reload failed")).count()
    };
    let end = Instant::now() + 2 * DEADLINE;
    while refused(&h) < 400 {
        h.ensure(Instant::now() < end, format!("heat stopped reloading at {}", refused(&h)));
        for _ in 0..20 {
            h.kill(Signal::SIGHUP);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // The probe still runs and TERM is still acted on.
    let before = named(&h.entries(), "[a] true").len();
    h.wait_named("[a] true", before + 3);
    h.kill(Signal::SIGTERM);
    let code = h.wait_code(DEADLINE);
    h.ensure(code == 0, format!("exit code after TERM: {code}"));
    drop(read_end);
}

// ---------------------------------------------------------------------------
// Being fooled
// ---------------------------------------------------------------------------

/// A helper process that records the signals it gets (HUP, USR1, USR2) in
/// `sigfile`, started so that its pid is `pid` (a recycled pid): the kernel
/// hands out `ns_last_pid + 1` next, which root may set. Other processes may
/// take the pid first; then it tries again.
fn stranger_with_pid(fx: &Fixture, pid: i32, sigfile: &str) -> Option<i32> {
    fx.write_script(
        "stranger.sh",
        &format!(
            "for s in HUP USR1 USR2 TERM; do trap \"echo $s >> {sigfile}\" $s; done\n\
             touch stranger.ready\nwhile :; do sleep 1 & wait $!; done"
        ),
    );
    for _ in 0..200 {
        fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1)).ok()?;
        let got = fx.spawn_helper("./stranger.sh", &[]);
        if got == pid {
            assert!(wait_until(DEADLINE, || fx.exists("stranger.ready")), "stranger not ready");
            return Some(got);
        }
        fx.kill_helper(got);
    }
    None
}

/// Sets `path`'s modification time `ago` into the past: as if written then.
fn backdate(path: &Path, ago: Duration) {
    let when = SystemTime::now() - ago;
    fs::File::options().write(true).open(path).unwrap().set_modified(when).unwrap();
}

#[test]
fn a_stale_pidfile_naming_a_recycled_pid_is_never_followed() {
    let fx = fixture("trust-recycled");
    let target = fx.trap_target("target.sigs");
    fx.write_file("app.pid", &format!("{target}\n"));
    fx.write_file(
        CONF,
        "[probe.a]\ncommand = [\"false\"]\ninterval = \"100ms\"\npidfile = \"app.pid\"\n",
    );
    let mut h = service(&fx, &[]);
    h.wait_for("HUPs reach the target", || fx.lines("target.sigs").len() >= 2);
    // The service dies, its pidfile stays; the pid is reused by a stranger.
    fx.kill_helper(target);
    h.wait_entries("the target lost", |e| has_probe_event(e, "a", "target pid"));
    let Some(stranger) = stranger_with_pid(&fx, target, "stranger.sigs") else {
        panic!("could not get pid {target} reused (ns_last_pid)");
    };
    // Many checks, each re-reading the pidfile: none may signal the stranger.
    let seen = named(&h.entries(), "[a] false").len();
    h.wait_named("[a] false", seen + 10);
    let entries = h.entries();
    h.ensure(
        fx.lines("stranger.sigs").is_empty(),
        format!("the stranger (pid {stranger}) was signalled: {:?}", fx.lines("stranger.sigs")),
    );
    h.ensure(
        !has_probe_event(&entries, "a", &format!("following pid {stranger}"))
            && !probe_events(&entries, "a").iter().any(|(_, t)| t.contains("; following pid")),
        "the recycled pid was followed",
    );
    h.ensure(
        probe_events(&entries, "a").iter().any(|(_, t)| t.starts_with("skipped SIGHUP")),
        "signals are skipped",
    );
    h.stop();
}

#[test]
fn a_process_younger_than_its_pidfile_is_not_adopted() {
    let fx = fixture("trust-younger");
    // The pidfile was written an hour ago; the process it names started now.
    let stranger = fx.trap_target("stranger.sigs");
    fx.write_file("app.pid", &format!("{stranger}\n"));
    backdate(&fx.path("app.pid"), Duration::from_secs(3600));
    // The command line refuses it at start.
    one_line_exit_2(
        &fx,
        &["--pidfile", "app.pid", "-i", "100ms", "false"],
        "started after the file was written",
    );
    // Service mode runs the probe without a target.
    fx.write_file(
        CONF,
        "[probe.a]\ncommand = [\"false\"]\ninterval = \"100ms\"\npidfile = \"app.pid\"\n",
    );
    let mut h = service(&fx, &[]);
    let entries = h.wait_entries("the refusal", |e| {
        probe_events(e, "a")
            .iter()
            .any(|(k, t)| k == "ERR" && t.contains("started after the file was written"))
    });
    let _ = entries;
    h.wait_named("[a] false", 5);
    h.ensure(fx.lines("stranger.sigs").is_empty(), "the stranger was signalled");
    // Once the file names a fitting process, the probe follows it.
    let real = fx.trap_target("real.sigs");
    fx.replace_file("app.pid", &format!("{real}\n"), 0o644);
    h.wait_entries("following the real one", |e| {
        has_probe_event(e, "a", &format!("following pid {real} from "))
    });
    h.wait_for("HUP reaches the real target", || !fx.lines("real.sigs").is_empty());
    h.ensure(fx.lines("stranger.sigs").is_empty(), "the stranger was signalled");
    h.stop();
}

#[test]
fn a_fixed_pid_that_died_is_not_reopened_by_number_when_a_reload_changes_its_probe() {
    let fx = fixture("trust-fixed-pid");
    let target = fx.trap_target("target.sigs");
    let conf = |interval: &str| {
        format!("[probe.a]\ncommand = [\"false\"]\ninterval = \"{interval}\"\npid = {target}\n")
    };
    fx.write_file(CONF, &conf("100ms"));
    let mut h = service(&fx, &[]);
    h.wait_for("HUPs reach the target", || !fx.lines("target.sigs").is_empty());
    fx.kill_helper(target);
    h.wait_entries("the target lost", |e| {
        probe_events(e, "a")
            .iter()
            .any(|(k, t)| k == "ERR" && t == &format!("target pid {target} exited"))
    });
    let Some(stranger) = stranger_with_pid(&fx, target, "stranger.sigs") else {
        panic!("could not get pid {target} reused (ns_last_pid)");
    };
    // A reload that changes the probe but keeps its pid.
    fx.replace_file(CONF, &conf("150ms"), 0o644);
    h.kill(Signal::SIGHUP);
    h.wait_event("reloaded: added 0; removed 0; changed 1 (a)");
    let seen = named(&h.entries(), "[a] false").len();
    h.wait_named("[a] false", seen + 8);
    h.ensure(
        fx.lines("stranger.sigs").is_empty(),
        format!("pid {stranger} was reopened by number and signalled"),
    );
    h.stop();
}

#[test]
fn a_recovery_hook_that_restarts_the_target_slowly_is_followed_without_error() {
    let fx = fixture("trust-restart");
    let first = fx.trap_target("first.sigs");
    fx.write_file("app.pid", &format!("{first}\n"));
    // Fails until the hook has run; the hook stops the target, pauses for
    // several intervals, starts a new one and writes its pidfile.
    fx.write_script("check.sh", "test -e repaired");
    fx.write_script(
        "restart.sh",
        "kill \"$HEAT_TARGET_PID\"\nsleep 0.8\n\
         ./service.sh &\necho $! > app.pid.new && mv app.pid.new app.pid\n\
         while [ ! -e second.ready ]; do sleep 0.01; done\ntouch repaired",
    );
    fx.write_script(
        "service.sh",
        "for s in HUP USR1; do trap \"echo $s >> second.sigs\" $s; done\ntouch second.ready\n\
         while :; do sleep 1 & wait $!; done",
    );
    fx.write_file(
        CONF,
        "[probe.a]\nscript = \"check.sh\"\ninterval = \"150ms\"\npidfile = \"app.pid\"\n\
         recovery = \"restart.sh\"\nsuccess_signal = \"USR1\"\nsignal = \"HUP\"\n",
    );
    let mut h = service(&fx, &[]);
    let entries = h.wait_entries("recovered", |e| has_probe_event(e, "a", "recovered after"));
    let second = fx.read_pid("app.pid").expect("the new pid");
    let events = probe_events(&entries, "a");
    h.ensure(
        !events.iter().any(|(k, _)| k == "ERR"),
        format!("no ERR while the hook restarts the target: {events:?}"),
    );
    h.ensure(
        events.iter().any(|(_, t)| {
            t == &format!(
                "target pid {first} exited; following pid {second} from {}",
                path_str(&fx.path("app.pid"))
            )
        }),
        format!("the new target followed: {events:?}"),
    );
    h.wait_for("USR1 reaches the new target", || {
        fx.lines("second.sigs").contains(&"USR1".to_string())
    });
    h.ensure(
        !events.iter().any(|(_, t)| t.starts_with("skipped")),
        format!("no signal skipped: {events:?}"),
    );
    h.stop();
}

#[test]
fn a_success_while_the_new_pid_is_sought_reads_the_pidfile_once_more() {
    let fx = fixture("trust-success-seek");
    let first = fx.trap_target("first.sigs");
    fx.write_file("app.pid", &format!("{first}\n"));
    fx.write_script("check.sh", "test -e repaired");
    // The hook kills the target first (heat sees it die and finds the stale
    // pidfile), then starts the new one (its output elsewhere, so the hook
    // ends at once), writes its pidfile and ends: the window's first check
    // passes before heat's next 100 ms look.
    fx.write_script(
        "restart.sh",
        "kill \"$HEAT_TARGET_PID\"\nsleep 0.05\n./service.sh >/dev/null 2>&1 &\n\
         while [ ! -e second.ready ]; do sleep 0.005; done\n\
         echo $! > app.pid.new && mv app.pid.new app.pid\ntouch repaired",
    );
    fx.write_script(
        "service.sh",
        "for s in HUP USR1; do trap \"echo $s >> second.sigs\" $s; done\ntouch second.ready\n\
         while :; do sleep 1 & wait $!; done",
    );
    fx.write_file(
        CONF,
        "[probe.a]\nscript = \"check.sh\"\ninterval = \"5s\"\npidfile = \"app.pid\"\n\
         recovery = \"restart.sh\"\nsuccess_signal = \"USR1\"\n",
    );
    let mut h = service(&fx, &[]);
    let entries = h.wait_entries("recovered", |e| has_probe_event(e, "a", "recovered after"));
    let events = probe_events(&entries, "a");
    h.ensure(
        !events.iter().any(|(_, t)| t.starts_with("skipped SIGUSR1")),
        format!("the success signal was skipped: {events:?}"),
    );
    h.wait_for("USR1 reaches the new target", || {
        fx.lines("second.sigs").contains(&"USR1".to_string())
    });
    h.stop();
}

// ---------------------------------------------------------------------------
// Being subverted
// ---------------------------------------------------------------------------

#[test]
fn as_root_what_another_user_owns_is_refused_naming_owner_mode_and_fix() {
    assert!(is_root(), "these tests run as root");
    let fx = fixture("trust-owner");
    fx.write_script("check.sh", "true");
    chown(fx.path("check.sh"), Some(1000), None).unwrap();
    one_line_exit_2(&fx, &["-s", "check.sh"], "refusing script check.sh: owned by uid 1000");
    one_line_exit_2(&fx, &["-s", "check.sh"], "mode 0755");
    one_line_exit_2(&fx, &["-s", "check.sh"], "chown root it");
    chown(fx.path("check.sh"), Some(0), None).unwrap();
    fx.write_file(CONF, "[probe.a]\nscript = \"check.sh\"\n");
    chown(fx.path(CONF), Some(1000), None).unwrap();
    one_line_exit_2(&fx, &["-c", CONF, "-t"], "refusing config heat.toml: owned by uid 1000");
    chown(fx.path(CONF), Some(0), None).unwrap();
    // A directory on the way that others can write.
    fs::create_dir(fx.path("etc")).unwrap();
    fx.write_script("etc/hook.sh", "true");
    fs::set_permissions(fx.path("etc"), fs::Permissions::from_mode(0o777)).unwrap();
    one_line_exit_2(
        &fx,
        &["--fail", "etc/hook.sh", "true"],
        "refusing fail hook etc/hook.sh: directory ",
    );
    one_line_exit_2(&fx, &["--fail", "etc/hook.sh", "true"], "chmod go-w");
    assert!(!fx.exists(LOG), "nothing may start");
}

#[test]
fn a_users_file_renamed_over_the_config_is_never_run() {
    let fx = fixture("trust-rename-over");
    fx.write_file(CONF, "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    // An operator's mistake opens the directory; a user renames their own file in.
    fs::set_permissions(&fx.dir, fs::Permissions::from_mode(0o777)).unwrap();
    fx.write_file("evil.toml", "[probe.a]\ncommand = \"touch pwned\"\ninterval = \"100ms\"\n");
    chown(fx.path("evil.toml"), Some(1000), Some(1000)).unwrap();
    fs::rename(fx.path("evil.toml"), fx.path(CONF)).unwrap();
    let entries = h.wait_entries("the file refused", |e| {
        heat_events(e)
            .iter()
            .any(|t| t.starts_with("reload failed") && t.contains("refusing config"))
    });
    let _ = entries;
    // A SIGHUP does not take it either.
    h.kill(Signal::SIGHUP);
    let before = named(&h.entries(), "[a] true").len();
    h.wait_named("[a] true", before + 3);
    h.ensure(!fx.exists("pwned"), "the user's command ran as root");
    fs::set_permissions(&fx.dir, fs::Permissions::from_mode(0o755)).unwrap();
    h.stop();
}

// ---------------------------------------------------------------------------
// Nothing lost, nothing misattributed
// ---------------------------------------------------------------------------

#[test]
fn an_entry_of_the_largest_output_is_never_lost() {
    let fx = fixture("trust-big-output");
    one_line_exit_2(&fx, &["--max-output", "16GiB", "true"], "too large (at most 16MiB)");
    // 1.5 MiB of output with --max-output 1MiB, the README's own example.
    fx.write_script("big.sh", "head -c 1572864 /dev/zero | tr '\\0' x");
    let mut h = fx.heat(&["-i", "5s", "--max-output", "1MiB", "-s", "big.sh"]);
    h.wait_named("big.sh", 1);
    // Read once heat is gone: a poll can catch the 1 MiB write half done.
    h.stop();
    let entries = h.entries();
    let e = named(&entries, "big.sh")[0];
    let kept: usize = e.lines.iter().filter(|l| !l.starts_with("[heat:")).map(|l| l.len()).sum();
    h.ensure(kept == 1 << 20, format!("1 MiB kept, got {kept}"));
    h.ensure(
        e.lines.last().map(String::as_str) == Some("[heat: 524288 bytes dropped]"),
        format!("the dropped-bytes marker: {:?}", e.lines.last()),
    );
    h.ensure(!h.log().contains("were lost"), "an entry was lost");
}

#[test]
fn an_empty_config_is_never_applied_on_reload() {
    let fx = fixture("trust-empty-reload");
    let text = "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n";
    fx.write_file(CONF, text);
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    // An in-place rewrite caught by a SIGHUP at its start: the file is empty.
    fs::File::create(fx.path(CONF)).unwrap();
    h.kill(Signal::SIGHUP);
    h.wait_entries("the empty file refused", |e| {
        heat_events(e)
            .iter()
            .any(|t| t.starts_with("reload failed") && t.contains("is empty (0 bytes)"))
    });
    fx.write_file(CONF, text);
    let before = named(&h.entries(), "[a] true").len();
    h.wait_named("[a] true", before + 3);
    let entries = h.entries();
    h.ensure(
        !heat_events(&entries).iter().any(|t| t.contains("removed 1")),
        "the probe was removed",
    );
    h.stop();
}

#[test]
fn a_config_written_slowly_is_read_once_the_writer_is_done() {
    let fx = fixture("trust-slow-write");
    let part1 = "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n";
    let part2 = "[probe.b]\ncommand = [\"true\"]\ninterval = \"100ms\"\n";
    fx.write_file(CONF, &format!("{part1}{part2}"));
    let mut h = service(&fx, &[]);
    h.wait_named("[b] true", 1);
    // Re-created and filled over half a second, as a slow writer does.
    fs::remove_file(fx.path(CONF)).unwrap();
    let mut f = fs::File::create(fx.path(CONF)).unwrap();
    f.write_all(part1.as_bytes()).unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    f.write_all(part2.as_bytes()).unwrap();
    drop(f);
    // Give the watch its debounce, then look: nothing removed, no error.
    std::thread::sleep(Duration::from_millis(500));
    let before = named(&h.entries(), "[b] true").len();
    h.wait_named("[b] true", before + 3);
    let events = heat_events(&h.entries());
    h.ensure(
        !events.iter().any(|t| t.contains("removed 1") || t.starts_with("reload failed")),
        format!("a half-written file was read: {events:?}"),
    );
    h.stop();
}

/// Sets `pid`'s soft open-file limit (`None`: back to its hard limit).
fn set_nofile(pid: i32, soft: Option<u64>) {
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `old` is a valid rlimit for the kernel to fill; nothing is set.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    let new = libc::rlimit { rlim_cur: soft.unwrap_or(old.rlim_max), rlim_max: old.rlim_max };
    // SAFETY: `new` is a valid rlimit; the old value is not asked for.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn heats_own_fd_shortage_is_its_error_never_the_probes_failure() {
    let fx = fixture("trust-emfile");
    let target = fx.trap_target("target.sigs");
    fx.write_script("fail.sh", "echo ran >> fail.runs");
    fx.write_file(
        CONF,
        &format!(
            "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\npid = {target}\n\
             fail = \"fail.sh\"\nthreshold = 2\n"
        ),
    );
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 2);
    // No room for one more fd: a check needs a pipe and a pidfd.
    set_nofile(h.pid(), Some(3));
    let entries = h.wait_entries("heat's own errors", |e| {
        probe_events(e, "a")
            .iter()
            .filter(|(k, t)| k == "ERR" && t.starts_with("could not run the check:"))
            .count()
            >= 3
    });
    let fails: Vec<_> =
        named(&entries, "[a] true").into_iter().filter(|e| e.kind != "INFO").collect();
    h.ensure(fails.is_empty(), format!("heat's shortage was counted as the check's: {fails:?}"));
    h.ensure(fx.lines("target.sigs").is_empty(), "the target was signalled over heat's problem");
    h.ensure(!fx.exists("fail.runs"), "the fail hook ran over heat's problem");
    // With fds again, the checks run again.
    set_nofile(h.pid(), None);
    let before = named(&h.entries(), "[a] true").len();
    h.wait_named("[a] true", before + 2);
    h.stop();
}

#[test]
fn error_lines_stay_one_line_and_short() {
    let fx = fixture("trust-one-line");
    let weird = "a\nb.sh";
    one_line_exit_2(&fx, &["-s", weird], "--script a\\nb.sh: no such file");
    let long = "y".repeat(1000);
    let (code, err) = run_bounded(&fx, &["-i", &long, "true"], DEADLINE).expect("heat hung");
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{}…", "y".repeat(200))), "{err}");
    assert!(err.len() < 400, "{} bytes: {err}", err.len());
}

#[test]
fn a_reload_under_a_low_open_file_limit_waits_for_slots_and_one_too_low_is_refused() {
    let fx = fixture("trust-nofile-reload");
    fx.write_file(CONF, "[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    let mut h = service(&fx, &[]);
    h.wait_named("[a] true", 1);
    let limit = |n: u64| {
        let new = libc::rlimit { rlim_cur: n, rlim_max: n };
        // SAFETY: `new` is a valid rlimit; lowering a limit needs no privilege.
        let rc = unsafe { libc::prlimit(h.pid(), libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    };
    let mut text = String::from("[probe.a]\ncommand = [\"true\"]\ninterval = \"100ms\"\n");
    for i in 0..100 {
        text.push_str(&format!("[probe.p{i}]\ncommand = [\"true\"]\ninterval = \"1s\"\n"));
    }
    // 200 fds: not all 101 probes could run at once, but runs wait for a slot.
    limit(200);
    fx.replace_file(CONF, &text, 0o644);
    h.kill(Signal::SIGHUP);
    h.wait_event("reloaded: added 100");
    h.wait_for("every new probe ran", || {
        let log = fx.log();
        (0..100).all(|i| log.contains(&format!(" : INFO : [p{i}] true :")))
    });
    // Too low for a single run besides heat's own 64: refused whole.
    limit(66);
    text.push_str("[probe.late]\ncommand = [\"true\"]\ninterval = \"10s\"\n");
    fx.replace_file(CONF, &text, 0o644);
    h.kill(Signal::SIGHUP);
    let entries = h.wait_entries("the reload refused", |e| {
        heat_events(e).iter().any(|t| {
            t.starts_with("reload failed, keeping the running configuration:")
                && t.contains("hard limit on open files (66)")
        })
    });
    h.ensure(
        heat_events(&entries).iter().filter(|t| t.starts_with("reloaded:")).count() == 1,
        "the refused file's probes were started anyway",
    );
    h.ensure(
        !entries.iter().any(|e| e.name.starts_with("[late]")),
        "a probe of the refused file ran",
    );
    h.stop();
}
