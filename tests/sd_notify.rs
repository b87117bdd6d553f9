//! systemd's notify protocol as the real binary speaks it: the test owns the
//! datagram socket `NOTIFY_SOCKET` names and plays the service manager.

mod util;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use util::*;

/// A one-probe heat.toml: `true` every 200 ms.
const CONFIG: &str = "[probe.ok]\ncommand = [\"true\"]\ninterval = \"200ms\"\n";

/// The service manager's end of `NOTIFY_SOCKET`.
struct Manager {
    sock: UnixDatagram,
    path: String,
    /// Every datagram received so far, for failure messages.
    seen: Vec<String>,
}

impl Manager {
    fn bind(fx: &Fixture) -> Manager {
        let path = fx.path("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        Manager { sock, path: path_str(&path), seen: Vec::new() }
    }

    /// The next datagram before `deadline`, if one comes.
    fn recv_until(&mut self, deadline: Instant) -> Option<String> {
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
            self.sock.set_read_timeout(Some(left)).expect("set_read_timeout");
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.seen.push(msg.clone());
                    return Some(msg);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(e) => panic!("recv on the notify socket: {e}"),
            }
        }
    }

    /// Skips datagrams until one has the line `line`; fails after the deadline.
    fn expect(&mut self, heat: &Heat, line: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        while let Some(msg) = self.recv_until(deadline) {
            if has_line(&msg, line) {
                return msg;
            }
        }
        heat.fail(format!("no {line:?} from heat; datagrams so far: {:?}", self.seen))
    }

    /// Counts `WATCHDOG=1` datagrams arriving within `window`.
    fn pings_within(&mut self, window: Duration) -> usize {
        let deadline = Instant::now() + window;
        let mut n = 0;
        while let Some(msg) = self.recv_until(deadline) {
            n += usize::from(has_line(&msg, "WATCHDOG=1"));
        }
        n
    }
}

fn has_line(msg: &str, line: &str) -> bool {
    msg.lines().any(|l| l == line)
}

fn field<'m>(msg: &'m str, key: &str) -> Option<&'m str> {
    msg.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

fn monotonic_usec() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000
}

/// Starts `heat -c heat.toml --log <abs>` with exactly the notify variables given.
fn start<'a>(fx: &'a Fixture, vars: &[(&str, &str)]) -> Heat<'a> {
    let config = path_str(&fx.path("heat.toml"));
    let log = path_str(&fx.path(LOG));
    let vars: Vec<(String, String)> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Heat::start_with(fx, &["-c", &config, "--log", &log], move |cmd| {
        for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(k);
        }
        cmd.envs(vars);
    })
}

#[test]
fn ready_reloading_ready_then_stopping() {
    let fx = Fixture::new("notify-cycle");
    fx.write_file("heat.toml", CONFIG);
    let mut mgr = Manager::bind(&fx);
    let mut heat = start(&fx, &[("NOTIFY_SOCKET", &mgr.path.clone())]);

    let ready = mgr.expect(&heat, "READY=1");
    let status = field(&ready, "STATUS").unwrap_or_default();
    heat.ensure(status.starts_with("1 probe:"), format!("STATUS with READY: {ready:?}"));

    let before = monotonic_usec();
    heat.kill(Signal::SIGHUP);
    let reloading = mgr.expect(&heat, "RELOADING=1");
    let after = monotonic_usec();
    let stamp = field(&reloading, "MONOTONIC_USEC").and_then(|v| v.parse::<u64>().ok());
    heat.ensure(
        stamp.is_some_and(|t| (before..=after).contains(&t)),
        format!("MONOTONIC_USEC in {before}..={after} expected: {reloading:?}"),
    );
    mgr.expect(&heat, "READY=1");

    // A change on disk is a reload too, and READY's STATUS tells the new count.
    fx.replace_file("heat.toml", &format!("{CONFIG}[probe.two]\ncommand = [\"true\"]\n"), 0o644);
    mgr.expect(&heat, "RELOADING=1");
    let ready = mgr.expect(&heat, "READY=1");
    let status = field(&ready, "STATUS").unwrap_or_default();
    heat.ensure(status.starts_with("2 probes:"), format!("STATUS after the edit: {ready:?}"));

    heat.kill(Signal::SIGTERM);
    mgr.expect(&heat, "STOPPING=1");
    let code = heat.wait_code(DEADLINE);
    heat.ensure(code == 0, format!("exit code after SIGTERM: expected 0, got {code}"));
}

#[test]
fn watchdog_pings_follow_watchdog_usec() {
    let fx = Fixture::new("notify-watchdog");
    fx.write_file("heat.toml", CONFIG);
    let mut mgr = Manager::bind(&fx);
    let vars = [("NOTIFY_SOCKET", mgr.path.clone()), ("WATCHDOG_USEC", "400000".to_string())];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut heat = start(&fx, &vars);
    mgr.expect(&heat, "READY=1");
    // Half of 400 ms: about 5 a second, and they keep coming.
    for second in 1..=2 {
        let n = mgr.pings_within(Duration::from_secs(1));
        heat.ensure(n >= 3, format!("{n} WATCHDOG=1 in second {second}; seen {:?}", mgr.seen));
    }
    heat.stop();
}

#[test]
fn a_watchdog_meant_for_another_pid_is_not_heats() {
    let fx = Fixture::new("notify-watchdog-pid");
    fx.write_file("heat.toml", CONFIG);
    let mut mgr = Manager::bind(&fx);
    let vars = [
        ("NOTIFY_SOCKET", mgr.path.clone()),
        ("WATCHDOG_USEC", "400000".to_string()),
        ("WATCHDOG_PID", "1".to_string()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut heat = start(&fx, &vars);
    mgr.expect(&heat, "READY=1");
    // Heat's own once-a-second pulse only: never 3 within 1.5 s.
    let n = mgr.pings_within(Duration::from_millis(1500));
    heat.ensure(n <= 2, format!("{n} WATCHDOG=1 in 1.5 s for another pid's watchdog"));
    heat.stop();
}

#[test]
fn without_a_listening_manager_heat_runs_as_usual() {
    for (case, socket) in [("unset", None), ("nobody listening", Some("/nonexistent/notify"))] {
        let fx = Fixture::new("notify-absent");
        fx.write_file("heat.toml", CONFIG);
        let vars: Vec<(&str, &str)> = socket.map(|s| ("NOTIFY_SOCKET", s)).into_iter().collect();
        let mut heat = start(&fx, &vars);
        heat.wait_named("[ok] true", 2);
        heat.kill(Signal::SIGHUP);
        heat.wait_event("reloaded:");
        heat.wait_named("[ok] true", 4);
        heat.ensure_running(case);
        heat.stop();
    }
}

#[test]
fn checks_and_hooks_never_see_the_notify_variables() {
    let fx = Fixture::new("notify-env");
    // Each run dumps to its own temp file and renames it into place: the check
    // reruns every 200 ms, and `env > check.env` would let the test read a
    // file truncated, half written or cut short by heat's stop.
    fx.write_script("fail.sh", "env > fail.env.$$ && mv fail.env.$$ fail.env");
    fx.write_script("recover.sh", "env > recovery.env.$$ && mv recovery.env.$$ recovery.env");
    fx.write_file(
        "heat.toml",
        "[probe.dump]\n\
         command = [\"sh\", \"-c\", \"env > check.env.$$ && mv check.env.$$ check.env; exit 1\"]\n\
         interval = \"200ms\"\nfail = \"fail.sh\"\nrecovery = \"recover.sh\"\nthreshold = 2\n",
    );
    let mgr = Manager::bind(&fx);
    let vars = [
        ("NOTIFY_SOCKET", mgr.path.clone()),
        ("WATCHDOG_USEC", "30000000".to_string()),
        ("WATCHDOG_PID", "1".to_string()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut heat = start(&fx, &vars);
    let dumps = ["check.env", "fail.env", "recovery.env"];
    heat.wait_for("every env dump", || dumps.iter().all(|f| fx.lines(f).len() > 1));
    heat.stop();
    for dump in dumps {
        let env = parse_env(&fx.read(dump));
        // The dump is real: the test's own tag made it through.
        heat.ensure(env_get(&env, "HEATTEST_TAG").is_some(), format!("{dump}: no HEATTEST_TAG"));
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            heat.ensure(env_get(&env, var).is_none(), format!("{dump} has {var}"));
        }
    }
}
