//! Regressions a test catches cheaply: fds or memory that grow with the
//! number of checks run (no leaked fds, bounded memory).

mod util;

use std::time::Duration;

use util::*;

/// `VmRSS` of `pid`, in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn ten_thousand_checks_leave_no_fds_and_no_memory_behind() {
    let fx = Fixture::new("leaks");
    let mut conf = String::new();
    for i in 0..100 {
        conf.push_str(&format!("[probe.p{i}]\ncommand = [\"true\"]\ninterval = \"20ms\"\n"));
    }
    fx.write_file("heat.toml", &conf);
    let h = fx.heat(&["-c", "heat.toml", "--timeout", "10s"]);
    let count = |fx: &Fixture| {
        let text = fx.log();
        text.lines().filter(|l| l.contains(" : INFO : [p") && l.ends_with(" true :")).count()
    };
    let within = Duration::from_secs(90);
    let reached = |n: usize| wait_until(within, || count(&fx) >= n);
    h.ensure(reached(1_000), "1,000 checks");
    let (fds_1k, rss_1k) = (idle_fds(h.pid()), rss_kib(h.pid()));
    h.ensure(reached(10_000), "10,000 checks");
    let (fds_10k, rss_10k) = (idle_fds(h.pid()), rss_kib(h.pid()));
    // A few checks may be in flight at every sample; a leak of one fd a check is 9,000.
    h.ensure(
        fds_10k <= fds_1k + 8,
        format!("fds grew from {fds_1k} after 1,000 checks to {fds_10k} after 10,000"),
    );
    // Allocator noise is a few hundred KiB; a leak of even 100 bytes a check is 900 KiB.
    h.ensure(
        rss_10k <= rss_1k + 768,
        format!("RSS grew from {rss_1k} KiB after 1,000 checks to {rss_10k} KiB after 10,000"),
    );
    let mut h = h;
    h.stop();
}

/// The fewest fds over a few samples: a check in flight holds a pipe and a
/// pidfd for a moment, a leak holds them for good.
fn idle_fds(pid: i32) -> usize {
    (0..30)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(2));
            fd_count(pid)
        })
        .min()
        .unwrap_or(usize::MAX)
}
