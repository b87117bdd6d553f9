//! Recovery rounds and windows, fault/success signals, the start period.

mod util;

use util::*;

#[test]
fn recovery_hook_that_repairs_ends_recovery() {
    let fx = Fixture::new("rec-repair");
    fx.write_script("check.sh", "[ -e repaired ]");
    fx.write_script("rec.sh", "touch repaired");
    let target = fx.trap_target("sigs");
    let t = target.to_string();
    let mut h = fx.heat(&[
        "-i",
        "200ms",
        "--threshold",
        "2",
        "--pid",
        &t,
        "--success-signal",
        "USR2",
        "--recovery",
        "./rec.sh",
        "-s",
        "./check.sh",
    ]);
    h.wait_event("recovered after 2 consecutive failures");
    h.wait_for("the target to get USR2", || fx.lines("sigs").contains(&"USR2".to_string()));
    let entries = h.wait_entries("an OK check after recovery", |e| {
        named(e, "./check.sh").iter().filter(|c| c.kind == "INFO").count() >= 2
    });
    h.stop();
    let events = heat_events(&entries);
    let sent = format!("sent SIGUSR2 to pid {target}");
    h.ensure(events.contains(&sent), format!("expected {sent:?}"));
    h.ensure(named(&entries, "./rec.sh").len() == 1, "the recovery hook should run once");
    h.ensure(fx.lines("sigs") == ["USR2"], "the target should get USR2 only (no per-failure HUP)");
}

/// Indices of entries named `name` in `entries`.
fn positions(entries: &[Entry], name: &str) -> Vec<usize> {
    entries.iter().enumerate().filter(|(_, e)| e.name == name).map(|(i, _)| i).collect()
}

#[test]
fn window_by_count_then_round_two() {
    let fx = Fixture::new("rec-count");
    fx.write_script("rec.sh", "true");
    let mut h = fx.heat(&["-i", "200ms", "--threshold", "2", "--recovery", "./rec.sh", "false"]);
    let entries = h.wait_named("./rec.sh", 2);
    h.stop();
    let events = heat_events(&entries);
    h.ensure(
        events.iter().any(|t| t == "recovery window closed without a success"),
        "expected the window to close",
    );
    h.ensure(
        events.iter().any(|t| t == "recovery round 2: 4 consecutive failures"),
        "expected round 2 at 4 failures",
    );
    let recs = positions(&entries, "./rec.sh");
    let between = entries[recs[0]..recs[1]].iter().filter(|e| e.name == "false").count();
    h.ensure(between == 2, format!("the window should hold threshold (2) checks, held {between}"));
    let before = entries[..recs[0]].iter().filter(|e| e.name == "false").count();
    h.ensure(before == 2, format!("round 1 should start after 2 failures, saw {before}"));
}

#[test]
fn window_by_time_then_round_two() {
    let fx = Fixture::new("rec-time");
    fx.write_script("rec.sh", "true");
    let mut h =
        fx.heat(&["-i", "200ms", "--recovery-timeout", "700ms", "--recovery", "./rec.sh", "false"]);
    let entries = h.wait_named("./rec.sh", 2);
    h.stop();
    let events = heat_events(&entries);
    h.ensure(
        events.iter().any(|t| t.starts_with("recovery round 2: ")),
        "expected `recovery round 2`",
    );
    let recs = positions(&entries, "./rec.sh");
    let between = entries[recs[0]..recs[1]].iter().filter(|e| e.name == "false").count();
    h.ensure(
        (3..=5).contains(&between),
        format!("a 700 ms window at 200 ms should hold about 4 checks, held {between}"),
    );
}

fn state(h: &Heat, pid: i32) -> char {
    proc_state(pid).unwrap_or_else(|| h.fail(format!("target {pid} vanished")))
}

#[test]
fn fault_stop_and_success_cont_on_a_real_target() {
    let fx = Fixture::new("rec-stopcont");
    let target = fx.sleep_target();
    fx.write_script("check.sh", "[ -e repaired ]");
    fx.write_script(
        "rec.sh",
        "cut -d')' -f2 /proc/$HEAT_TARGET_PID/stat | cut -d' ' -f2 > state-in-hook\ntouch repaired",
    );
    let t = target.to_string();
    let mut h = fx.heat(&[
        "-i",
        "200ms",
        "--pid",
        &t,
        "--fault-signal",
        "STOP",
        "--success-signal",
        "CONT",
        "--recovery",
        "./rec.sh",
        "-s",
        "./check.sh",
    ]);
    h.wait_event("recovered after 1 consecutive failures");
    h.wait_for("the target to run again", || state(&h, target) != 'T');
    let events = heat_events(&h.entries());
    h.stop();
    h.ensure(
        fx.read("state-in-hook").trim() == "T",
        "the target should be stopped while the hook runs",
    );
    for want in [format!("sent SIGSTOP to pid {target}"), format!("sent SIGCONT to pid {target}")] {
        h.ensure(events.contains(&want), format!("expected {want:?}"));
    }
}

#[test]
fn term_during_recovery_continues_a_stopped_target() {
    let fx = Fixture::new("rec-termcont");
    let target = fx.sleep_target();
    fx.write_script("rec.sh", "true");
    let t = target.to_string();
    let mut h = fx.heat(&[
        "-i",
        "200ms",
        "--pid",
        &t,
        "--fault-signal",
        "STOP",
        "--success-signal",
        "CONT",
        "--recovery",
        "./rec.sh",
        "false",
    ]);
    h.wait_named("./rec.sh", 1);
    h.wait_for("the target to be stopped", || state(&h, target) == 'T');
    h.stop();
    h.ensure(wait_until(DEADLINE, || state(&h, target) != 'T'), "the target was left stopped");
    let events = heat_events(&h.entries());
    let want = format!("sent SIGCONT to pid {target} (recovery interrupted)");
    h.ensure(events.contains(&want), format!("expected {want:?}"));
}

#[test]
fn start_period_failures_are_not_counted() {
    let fx = Fixture::new("rec-startperiod");
    // Runs 1 and 2 fail, run 3 succeeds (ending the period), later runs fail.
    fx.write_script(
        "check.sh",
        "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -eq 3 ]",
    );
    fx.write_script("fail.sh", "true");
    let mut h = fx.heat(&[
        "-i",
        "200ms",
        "--start-period",
        "10s",
        "--fail",
        "./fail.sh",
        "-s",
        "./check.sh",
    ]);
    let entries = h.wait_named("./fail.sh", 1);
    h.stop();
    let order: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.name != "heat" || e.text().contains("start period"))
        .map(|e| (e.name.as_str(), e.kind.as_str()))
        .collect();
    let want = [
        ("./check.sh", "FAIL"),
        ("heat", "INFO"),
        ("./check.sh", "FAIL"),
        ("heat", "INFO"),
        ("./check.sh", "INFO"),
        ("./check.sh", "FAIL"),
        ("./fail.sh", "INFO"),
    ];
    h.ensure(
        order.len() >= want.len() && order[..want.len()] == want,
        format!("entry order {order:?}"),
    );
}

#[test]
fn start_period_expires() {
    let fx = Fixture::new("rec-startexpire");
    fx.write_script("fail.sh", "true");
    // Starts at 0, 0.3, 0.6 s fall in the 750 ms period; the one at 0.9 s counts.
    let mut h =
        fx.heat(&["-i", "300ms", "--start-period", "750ms", "--fail", "./fail.sh", "false"]);
    let entries = h.wait_named("./fail.sh", 1);
    h.stop();
    let first_hook = positions(&entries, "./fail.sh")[0];
    let before = &entries[..first_hook];
    let uncounted = heat_events(before).iter().filter(|t| t.contains("start period")).count();
    let checks = named(before, "false").len();
    h.ensure(
        uncounted == 3,
        format!("3 failures should fall in the start period, {uncounted} did"),
    );
    h.ensure(checks == 4, format!("the hook should follow the 4th check, followed the {checks}th"));
}
