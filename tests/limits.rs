//! Inherited fds never reach a check; the open-file limit follows the
//! probes; a new log path in a reload takes effect.

mod util;

use std::os::unix::process::CommandExt;

use util::*;

fn probes(n: usize) -> String {
    (0..n).map(|i| format!("[probe.p{i}]\ncommand = [\"true\"]\ninterval = 1\n")).collect()
}

/// The soft and hard open-file limits of `pid`, from /proc.
fn nofile(pid: i32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default();
    let nums: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (nums.first().copied().unwrap_or(0), nums.get(1).copied().unwrap_or(0))
}

/// Runs heat with the open-file limits set to `soft`/`hard` before it starts.
fn with_nofile<'a>(fx: &'a Fixture, args: &[&str], soft: u64, hard: u64) -> Heat<'a> {
    Heat::start_with(fx, args, move |cmd| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    })
}

#[test]
fn the_soft_open_file_limit_is_raised_as_far_as_the_probes_need() {
    let fx = Fixture::new("limits-raise");
    fx.write_file("heat.toml", &probes(200));
    let mut h = with_nofile(&fx, &["-c", "heat.toml"], 64, 4096);
    h.wait_for("200 probes started", || fx.log().matches(" : INFO : [p").count() >= 200);
    let (soft, hard) = nofile(h.pid());
    h.ensure(hard == 4096, format!("the hard limit stays: {hard}"));
    h.ensure(soft > 64 + 200 && soft <= 4096, format!("soft limit {soft} for 200 probes"));
    h.stop();
}

#[test]
fn a_hard_limit_too_low_for_one_run_is_a_start_up_error() {
    let fx = Fixture::new("limits-low");
    fx.write_file("heat.toml", &probes(200));
    let mut h = with_nofile(&fx, &["-c", "heat.toml"], 60, 60);
    let code = h.wait_code(DEADLINE);
    h.ensure(code == 2, format!("exit {code}, expected 2"));
    let err = h.stderr();
    h.ensure(err.contains("hard limit on open files (60)"), "the error names the limit");
    h.ensure(!fx.exists(LOG), "nothing started");
}

/// More probes than the limit lets run at once: checks wait for a slot
/// (INFO, counted), none fails, and no more run at once than the slots.
#[test]
fn checks_beyond_the_open_file_limit_wait_instead_of_failing() {
    let fx = Fixture::new("limits-slots");
    let text: String = (0..40)
        .map(|i| format!("[probe.p{i}]\ncommand = [\"sleep\", \"0.2\"]\ninterval = \"1s\"\n"))
        .collect();
    fx.write_file("heat.toml", &text);
    // 64 of heat's own and 4 per run: 5 runs at once.
    let mut h = with_nofile(&fx, &["-c", "heat.toml"], 84, 84);
    let mut most = 0;
    h.wait_for("every probe ran once", || {
        most = most.max(children_of(h.pid()).len());
        let log = fx.log();
        (0..40).all(|i| log.contains(&format!(" : INFO : [p{i}] sleep 0.2 :")))
    });
    let entries = h.entries();
    let delayed = entries
        .iter()
        .filter(|e| e.name.ends_with("] heat") && e.text().starts_with("check delayed: "))
        .count();
    h.ensure(delayed > 0, "some checks waited for a slot");
    h.ensure(!entries.iter().any(|e| e.kind != "INFO"), "no FAIL or ERR entry");
    h.ensure(most <= 5, format!("{most} checks ran at once with 5 slots"));
    h.stop();
}

#[test]
fn an_inherited_fd_never_reaches_a_check() {
    let fx = Fixture::new("limits-fds");
    fx.write_script("check.sh", "if [ -e /proc/self/fd/7 ]; then echo leaked; else echo clean; fi");
    let file = std::fs::File::open("/dev/null").unwrap();
    let mut h = Heat::start_with(&fx, &["-i", "200ms", "-s", "./check.sh"], move |cmd| {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: dup2 is async-signal-safe; it gives heat an fd 7 without
        // close-on-exec, as a careless parent would.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 7) == 7 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
            });
        }
    });
    let entries = h.wait_named("./check.sh", 1);
    h.ensure(
        std::fs::read_link(format!("/proc/{}/fd/7", h.pid())).is_ok(),
        "heat itself was given fd 7",
    );
    let e = named(&entries, "./check.sh")[0];
    h.ensure(e.lines == ["clean"], format!("the check saw fd 7: {:?}", e.lines));
    h.stop();
}

#[test]
fn a_reload_that_moves_the_log_takes_effect() {
    let fx = Fixture::new("limits-logmove");
    fx.write_file(
        "heat.toml",
        "log = \"a.log\"\n[probe.p]\ncommand = [\"true\"]\ninterval = \"100ms\"\n",
    );
    let mut h = fx.heat(&["-c", "heat.toml"]);
    h.wait_for("entries in a.log", || fx.read("a.log").contains("[p] true"));
    fx.replace_file(
        "heat.toml",
        "log = \"b.log\"\n[probe.p]\ncommand = [\"true\"]\ninterval = \"100ms\"\n",
        0o644,
    );
    h.kill(Signal::SIGHUP);
    h.wait_for("entries in b.log", || fx.read("b.log").contains("[p] true"));
    let before = fx.read("a.log").len();
    h.wait_for("more entries in b.log", || fx.read("b.log").matches("[p] true").count() >= 3);
    h.ensure(fx.read("a.log").len() == before, "a.log no longer grows");
    h.stop();
}
