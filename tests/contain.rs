//! Containment and the execution context, on real processes and real cgroups:
//! nothing a check forks outlives it, a heat killed with -9 ends its previous
//! life's checks when it starts again, and a probe's user, groups, HOME, env
//! and workdir are what its check sees. As root with cgroup v2 writable only:
//! elsewhere each test says why on stderr and checks the fallback.

mod util;

use std::fs;

use util::*;

/// Where heat puts its checks' cgroups, or why it cannot here.
fn contained() -> Result<(), String> {
    if !is_root() {
        return Err("not root".into());
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !mounts.lines().any(|l| l.contains(" - cgroup2 ")) {
        return Err("no cgroup v2 mounted".into());
    }
    Ok(())
}

/// Processes whose command line holds `token` (a test's own sleep).
fn with_token(token: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let state = proc_state(pid);
        if String::from_utf8_lossy(&cmdline).contains(token) && state.is_some_and(|s| s != 'Z') {
            found.push(pid);
        }
    }
    found
}

/// A script that double-forks a `sleep` into a new session and leaves a
/// plain background one, then exits (or, with `hang`, waits to be killed).
fn escaping_script(fx: &Fixture, token: &str, hang: bool) {
    let tail = if hang { "sleep 60" } else { "exit 0" };
    fx.write_script("escape.sh", &format!("( setsid sleep {token} & )\nsleep {token} &\n{tail}\n"));
}

#[test]
fn nothing_a_check_forks_outlives_it() {
    if let Err(why) = contained() {
        eprintln!("contain: {why}; containment is process groups here, not tested");
        return;
    }
    for (hang, args) in [(false, ["-i", "200ms"]), (true, ["-i", "300ms"])] {
        let fx = Fixture::new(if hang { "contain-timeout" } else { "contain-exit" });
        let token = if hang { "1001.25" } else { "1001.5" };
        escaping_script(&fx, token, hang);
        let mut argv = args.to_vec();
        argv.extend(["--timeout", "200ms", "-s", "./escape.sh"]);
        let mut h = fx.heat(&argv);
        h.wait_named("./escape.sh", 3);
        // Each run's leftovers are ended with it; at most the running one's live.
        h.ensure(with_token(token).len() <= 2, format!("leftovers: {:?}", with_token(token)));
        h.stop();
        let left = with_token(token);
        h.ensure(left.is_empty(), format!("{} of the escapes outlived heat: {left:?}", left.len()));
        let log = fx.log();
        h.ensure(log.contains("containment: cgroup v2 at "), "the start says what contains");
    }
}

#[test]
fn a_heat_killed_with_9_ends_its_checks_when_it_starts_again() {
    if let Err(why) = contained() {
        eprintln!("contain: {why}; containment is process groups here, not tested");
        return;
    }
    let fx = Fixture::new("contain-kill9");
    let token = "1002.5";
    escaping_script(&fx, token, true);
    let mut h = fx.heat(&["-i", "10s", "-s", "./escape.sh"]);
    h.wait_for("the check's processes", || with_token(token).len() == 2);
    h.kill(nix::sys::signal::Signal::SIGKILL);
    h.wait_exit(DEADLINE);
    h.ensure(with_token(token).len() == 2, "a SIGKILLed heat ends nothing itself");
    let mut again = fx.heat(&["-i", "10s", "true"]);
    again.wait_event("ended ");
    let left = with_token(token);
    again.ensure(left.is_empty(), format!("leftovers of the previous life: {left:?}"));
    let ended = heat_events(&again.entries())
        .into_iter()
        .find(|t| t.starts_with("ended "))
        .unwrap_or_default();
    // The hanging script, its `sleep 60` and the two escapes.
    again.ensure(
        ended == "ended 4 leftover check processes of a previous heat",
        format!("the sweep's entry: {ended:?}"),
    );
    again.stop();
}

#[test]
fn a_check_runs_as_its_user_with_its_environment_and_workdir() {
    if !is_root() {
        eprintln!("contain: not root; another user cannot be tested here");
        return;
    }
    let fx = Fixture::new("contain-user");
    fs::create_dir(fx.path("work")).unwrap();
    let script = "id -u; id -g; id -G; echo \"HOME=$HOME USER=$USER LOGNAME=$LOGNAME\"; \
                  echo \"LANG=$LANG EXTRA=$EXTRA\"; pwd";
    fx.write_file(
        "heat.toml",
        &format!(
            "[probe.n]\ncommand = [\"sh\", \"-c\", {script:?}]\ninterval = \"10s\"\n\
             user = \"nobody\"\nworkdir = \"work\"\nenv = {{ LANG = \"C\", EXTRA = \"a b\" }}\n"
        ),
    );
    let mut h = fx.heat(&["-c", "heat.toml"]);
    let entries =
        h.wait_entries("the check's entry", |e| e.iter().any(|e| e.name.starts_with("[n] sh")));
    let e = entries.iter().find(|e| e.name.starts_with("[n] sh")).unwrap();
    let home = nix::unistd::User::from_name("nobody").unwrap().unwrap().dir;
    let work = fs::canonicalize(fx.path("work")).unwrap();
    let expected = [
        "65534".to_string(),
        nix::unistd::User::from_name("nobody").unwrap().unwrap().gid.to_string(),
        e.lines.get(2).cloned().unwrap_or_default(),
        format!("HOME={} USER=nobody LOGNAME=nobody", home.display()),
        "LANG=C EXTRA=a b".to_string(),
        work.display().to_string(),
    ];
    h.ensure(
        e.lines[..] == expected[..],
        format!("the check saw {:?}, expected {expected:?}", e.lines),
    );
    h.ensure(e.lines[2].split(' ').all(|g| !g.is_empty() && g != "0"), "no root group");
    h.stop();
    let (code, out, _) = {
        let mut t = fx.heat_run(&["-c", "heat.toml", "-t"]);
        let code = t.wait_code(DEADLINE);
        (code, t.stdout(), t.stderr())
    };
    h.ensure(code == 0, "-t accepts it");
    h.ensure(out.contains("\nuser = nobody (uid 65534)\n"), format!("-t names the user: {out}"));
    h.ensure(
        out.contains("\nenv = LANG, EXTRA\n") || out.contains("\nenv = EXTRA, LANG\n"),
        format!("-t names the env keys: {out}"),
    );
    h.ensure(out.contains("\ncontainment = "), "-t names the containment");
}

#[test]
fn what_a_hook_starts_is_kept_and_shown_per_probe() {
    if let Err(why) = contained() {
        eprintln!("contain: {why}; containment is process groups here, not tested");
        return;
    }
    let fx = Fixture::new("contain-hook");
    let token = "1003.5";
    fx.write_script("repair.sh", &format!("( setsid sleep {token} & )\nexit 0\n"));
    let mut h = fx.heat(&["-i", "10s", "--recovery", "./repair.sh", "false"]);
    h.wait_named("./repair.sh", 1);
    h.wait_for("the hook's daemon", || with_token(token).len() == 1);
    h.kill(nix::sys::signal::Signal::SIGUSR1);
    let entries = h.wait_event("state: ");
    let state = heat_events(&entries).into_iter().find(|t| t.starts_with("state: ")).unwrap();
    h.ensure(
        state.contains(", hooks left 1 processes running (hook-cli-"),
        format!("the state names the hook's leftovers: {state:?}"),
    );
    h.stop();
    let left = with_token(token);
    h.ensure(left.len() == 1, "what the hook started outlives heat");
    h.ensure(fx.log().contains("kept 1 processes of a hook in "), "heat's exit says so");
    for pid in left {
        send(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

#[test]
fn a_limit_is_applied_where_its_controller_is_and_warned_about_where_not() {
    if let Err(why) = contained() {
        eprintln!("contain: {why}; containment is process groups here, not tested");
        return;
    }
    let fx = Fixture::new("contain-limits");
    // The check prints its own cgroup's memory.max, if it has one.
    fx.write_script(
        "limits.sh",
        "m=$(awk -F: '$1 == 0 { print $3 }' /proc/self/cgroup)\n\
         for root in /sys/fs/cgroup/unified /sys/fs/cgroup; do\n\
         [ -f \"$root$m/cgroup.procs\" ] && { cat \"$root$m/memory.max\" 2>/dev/null || echo none; break; }\n\
         done\n",
    );
    let mut h = fx.heat(&["-i", "10s", "--memory-max", "64MiB", "-s", "./limits.sh"]);
    let entries = h.wait_named("./limits.sh", 1);
    let said = named(&entries, "./limits.sh")[0].text().to_string();
    let warned = heat_events(&entries)
        .iter()
        .any(|t| t.contains("no memory controller for its limits here: ignored"));
    h.ensure(
        (said == "67108864" && !warned) || (said == "none" && warned),
        format!(
            "either memory.max is 64 MiB or heat said it is ignored: {said:?}, warned {warned}"
        ),
    );
    h.stop();
}
