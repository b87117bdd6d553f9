//! Soak: heat in service mode under everything at once, for a while.
//!
//! 200 probes at 50–500 ms, each a small /bin/sh check with a pseudo-random exit
//! code; a few flood their output past a small `max_output`; some have a fail
//! hook that hangs past its `hook_timeout`, some a recovery hook (threshold 2).
//! Meanwhile the test writes a new heat.toml every second (rename-over),
//! alternating a valid file (p0..p4 change interval each time; p3 and p4 have
//! hooks) and an invalid one (an unknown key, bad TOML, a zero interval, a
//! command and a script, a missing hook), sends SIGUSR1 every 2 s (250 ms
//! after a valid file, while the probes it changed are being replaced) and
//! rotates the log every 5 s (rename + SIGHUP, as logrotate does). Every
//! 250 ms it looks at heat: its fds, RSS and children.
//!
//! Afterwards, across the rotated files and the current one:
//! - no entry is torn: every line is a header or a `> ` body line, every file
//!   ends with a newline and starts with a header;
//! - every run of a check or a hook has exactly one entry. Each run prints a
//!   unique token (`p7-PID-CENTISECONDS-OF-UPTIME`) on stdout, *then* appends it
//!   to `runs/p7` (hooks: `hooks/p7`), so every token in a side file was printed
//!   before it was written down: it must be in exactly one entry of that probe's
//!   check (or hook), and no token may be in two entries;
//! - an entry's type matches the exit code the check printed, unless heat ended
//!   or killed the run (its marker says so); flood entries carry
//!   `[heat: N bytes dropped]`, hanging hooks their timeout marker;
//! - every SIGUSR1 gave one `state:` entry per probe; reloads were logged both
//!   ways, each HUP reopened the log; the only ERR entries are failed reloads;
//! - no child of heat stayed a zombie for 1 s (looked at every 250 ms while
//!   heat runs and while it stops), heat exits 0 on SIGTERM, and nothing the
//!   test started is alive 1 s after heat exits (zombies there are pid 1's to
//!   reap, not heat's);
//! - after a warm-up (the first 20 % of the run), heat's fds and RSS are flat,
//!   comparing the medians of the first and the last third of the samples. How
//!   many fds heat holds follows how many checks are in flight, which follows
//!   the machine's load, so fds are compared as two numbers that do not: the
//!   fds that are no run's own (the log, sockets, epoll: +1 at most), and a
//!   run's own (its pipe, pidfd and cgroup) beyond three per child of heat.
//!
//! Short mode (CI): `cargo test --test soak` runs 45 s. Long mode, for
//! BENCHMARKS.md: `HEAT_SOAK_SECS=600 cargo test --release --test soak -- --nocapture`.
//! The layout (intervals, which probes flood or hang, the invalid files) comes
//! from a seeded PRNG; the seed is printed, `HEAT_SOAK_SEED=N` replays it (the
//! checks' exit codes come from their pid and the clock, not from the seed).
//! The summary line (`soak: ...`) is printed with `--nocapture`;
//! `HEAT_SOAK_TRACE=1` prints every sample of heat too.

mod util;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use util::*;

const CONF: &str = "heat.toml";
const PROBES: usize = 200;
/// p0..p4 alternate between two intervals on every valid reload.
const CHANGED: usize = 5;
const FLOODS: usize = 6;
const HANGS: usize = 20;
const RECOVERIES: usize = 20;
const HANG_AND_RECOVERY: usize = 10;
const FLOOD_BYTES: u64 = 200_000;
const MAX_OUTPUT: u64 = 4096;
const HOOK_TIMEOUT: &str = "300ms";
/// How long a zombie child of heat may be seen before it counts as leaked.
const ZOMBIE_GRACE: Duration = Duration::from_secs(1);
/// The environment variable that tags every process of this soak.
const TAG_VAR: &str = "SOAKTEST_TAG";

const CHECK_SH: &str = r#"# check.sh PROBE FAIL_PERCENT FLOOD_BYTES: one run of a soak probe (no fork
# unless it floods). The token is unique: a pid cannot come back within 10 ms.
read -r up _ < /proc/uptime
t="$1-$$-${up%.*}${up#*.}"
r=$(( ($$ * 7919 + 1${up#*.} * 104729 + ${up%.*}) % 100 ))
code=0
if [ "$r" -lt "$2" ]; then code=$(( r % 3 + 1 )); fi
# Printed before it is written down: every token in runs/ was printed.
echo "$t $code"
echo "$t" >> "runs/$1"
if [ "$3" -gt 0 ]; then
  yes "flood $1 ................................................................" | head -c "$3"
fi
exit "$code""#;

const HANG_SH: &str = r#"# The fail hook: hangs past its hook_timeout.
read -r up _ < /proc/uptime
t="$HEAT_PROBE-fail-$$-${up%.*}${up#*.}"
echo "$t"
echo "$t" >> "hooks/$HEAT_PROBE"
sleep 5"#;

const REC_SH: &str = r#"# The recovery hook: quick.
read -r up _ < /proc/uptime
t="$HEAT_PROBE-rec-$$-${up%.*}${up#*.}"
echo "$t"
echo "$t" >> "hooks/$HEAT_PROBE""#;

#[test]
fn soak() {
    let secs: u64 = env_num("HEAT_SOAK_SECS").unwrap_or(45).max(10);
    let seed = env_num("HEAT_SOAK_SEED")
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64);
    eprintln!("soak: {secs} s, seed {seed} (replay: HEAT_SOAK_SEED={seed} HEAT_SOAK_SECS={secs})");
    let mut rng = Rng::new(seed);
    let probes = layout(&mut rng);

    let fx = Fixture::new("soak");
    fx.chmod(".", 0o755);
    fs::create_dir(fx.path("runs")).unwrap();
    fs::create_dir(fx.path("hooks")).unwrap();
    fx.write_script("check.sh", CHECK_SH);
    fx.write_script("hang.sh", HANG_SH);
    fx.write_script("rec.sh", REC_SH);
    fx.replace_file(CONF, &render(&probes, 0, None), 0o644);

    let tag = format!("soak-{}-{seed}", std::process::id());
    let run = drive(&fx, &probes, &mut rng, secs, &tag, seed);
    let report = verify(&fx, &probes, &run);

    eprintln!("{}", report.summary);
    if !report.problems.is_empty() {
        panic!(
            "soak failed (seed {seed}; replay: HEAT_SOAK_SEED={seed} HEAT_SOAK_SECS={secs}):\n{}\n{}",
            report.problems.join("\n"),
            report.summary
        );
    }
}

// ---------------------------------------------------------------------------
// The layout and heat.toml
// ---------------------------------------------------------------------------

struct Probe {
    name: String,
    /// The interval in the two valid variants (differs for p0..p4 only).
    interval_ms: [u64; 2],
    fail_pct: u32,
    flood: bool,
    hang: bool,
    recovery: bool,
}

impl Probe {
    fn flood_bytes(&self) -> u64 {
        if self.flood { FLOOD_BYTES } else { 0 }
    }
    fn check_entry(&self) -> String {
        format!("[{0}] ./check.sh {0} {1} {2}", self.name, self.fail_pct, self.flood_bytes())
    }
}

fn layout(rng: &mut Rng) -> Vec<Probe> {
    let mut probes: Vec<Probe> = (0..PROBES)
        .map(|i| {
            let a = rng.range(5, 50) * 10;
            let b = if i < CHANGED { if a > 250 { a - 20 } else { a + 20 } } else { a };
            Probe {
                name: format!("p{i}"),
                interval_ms: [a, b],
                fail_pct: 10,
                flood: false,
                hang: false,
                recovery: false,
            }
        })
        .collect();
    let mut order: Vec<usize> = (CHANGED..PROBES).collect();
    rng.shuffle(&mut order);
    let mut take = order.into_iter();
    for i in take.by_ref().take(FLOODS) {
        let p = &mut probes[i];
        p.flood = true;
        // 200 KB a run: keep the floods at the slow end.
        p.interval_ms = [rng.range(30, 50) * 10; 2];
    }
    for i in take.by_ref().take(HANGS) {
        probes[i].hang = true;
        probes[i].fail_pct = 25;
    }
    for i in take.by_ref().take(RECOVERIES) {
        probes[i].recovery = true;
        probes[i].fail_pct = 40;
    }
    for i in take.by_ref().take(HANG_AND_RECOVERY) {
        probes[i].hang = true;
        probes[i].recovery = true;
        probes[i].fail_pct = 40;
    }
    // Two of the probes every valid reload changes have hooks: a changed
    // probe whose hook runs waits for it before its replacement starts.
    probes[CHANGED - 2].hang = true;
    probes[CHANGED - 2].fail_pct = 25;
    probes[CHANGED - 1].hang = true;
    probes[CHANGED - 1].recovery = true;
    probes[CHANGED - 1].fail_pct = 40;
    probes
}

/// What makes an invalid heat.toml, and on which probe.
#[derive(Clone, Copy, Debug)]
enum Bad {
    UnknownKey(usize),
    Syntax(usize),
    ZeroInterval(usize),
    CommandAndScript(usize),
    MissingHook(usize),
}

impl Bad {
    fn random(rng: &mut Rng) -> Bad {
        let i = rng.below(PROBES as u64) as usize;
        match rng.below(5) {
            0 => Bad::UnknownKey(i),
            1 => Bad::Syntax(i),
            2 => Bad::ZeroInterval(i),
            3 => Bad::CommandAndScript(i),
            _ => Bad::MissingHook(i),
        }
    }
    fn probe(self) -> usize {
        match self {
            Bad::UnknownKey(i)
            | Bad::Syntax(i)
            | Bad::ZeroInterval(i)
            | Bad::CommandAndScript(i)
            | Bad::MissingHook(i) => i,
        }
    }
}

fn render(probes: &[Probe], variant: usize, bad: Option<Bad>) -> String {
    let mut s = String::from("# generated by tests/soak.rs\n[defaults]\ntimeout = \"3s\"\n");
    for (i, p) in probes.iter().enumerate() {
        let bad = bad.filter(|b| b.probe() == i);
        let is = |f: fn(Bad) -> bool| bad.is_some_and(f);
        let close = if is(|b| matches!(b, Bad::Syntax(_))) { "" } else { "]" };
        writeln!(s, "\n[probe.{}{close}", p.name).unwrap();
        writeln!(
            s,
            "command = [\"./check.sh\", \"{}\", \"{}\", \"{}\"]",
            p.name,
            p.fail_pct,
            p.flood_bytes()
        )
        .unwrap();
        if is(|b| matches!(b, Bad::ZeroInterval(_))) {
            s.push_str("interval = \"0s\"\n");
        } else {
            writeln!(s, "interval = \"{}ms\"", p.interval_ms[variant]).unwrap();
        }
        if is(|b| matches!(b, Bad::UnknownKey(_))) {
            s.push_str("intervall = \"1s\"\n");
        }
        if is(|b| matches!(b, Bad::CommandAndScript(_))) {
            s.push_str("script = \"check.sh\"\n");
        }
        if p.flood {
            s.push_str("max_output = \"4KiB\"\n");
        }
        if is(|b| matches!(b, Bad::MissingHook(_))) {
            s.push_str("fail = \"missing.sh\"\n");
        } else if p.hang {
            s.push_str("fail = \"hang.sh\"\n");
        }
        if p.hang {
            writeln!(s, "hook_timeout = \"{HOOK_TIMEOUT}\"").unwrap();
        }
        if p.recovery {
            s.push_str("recovery = \"rec.sh\"\nthreshold = 2\n");
        }
    }
    s
}

// ---------------------------------------------------------------------------
// The soak itself
// ---------------------------------------------------------------------------

/// What happened while heat ran.
struct Run {
    secs: u64,
    seed: u64,
    elapsed: Duration,
    /// From heat's start to the SIGTERM: what its checks and CPU time span.
    ran: Duration,
    valid_writes: usize,
    invalid_writes: usize,
    rotations: usize,
    usr1s: usize,
    /// When each USR1 was sent (unix seconds, as in the log).
    usr1_at: Vec<u64>,
    /// heat every 250 ms.
    samples: Vec<Sample>,
    /// heat's CPU time (user + system) from its start to the SIGTERM.
    cpu: Duration,
    stop_took: Duration,
    /// The longest a zombie child of heat was seen for (a lower bound of its age).
    oldest_zombie: Duration,
    problems: Vec<String>,
}

fn drive(fx: &Fixture, probes: &[Probe], rng: &mut Rng, secs: u64, tag: &str, seed: u64) -> Run {
    let mut h = Heat::start_with(fx, &["-c", CONF], |cmd| {
        cmd.env(TAG_VAR, tag);
    });
    h.wait_event("started heat ");
    let pid = h.pid();
    let mut run = Run {
        secs,
        seed,
        elapsed: Duration::ZERO,
        ran: Duration::ZERO,
        valid_writes: 0,
        invalid_writes: 0,
        rotations: 0,
        usr1s: 0,
        usr1_at: Vec::new(),
        samples: Vec::new(),
        cpu: Duration::ZERO,
        stop_took: Duration::ZERO,
        oldest_zombie: Duration::ZERO,
        problems: Vec::new(),
    };
    let mut zombies = Zombies::default();
    let cpu0 = cpu_time(pid);
    let t0 = Instant::now();

    let rotate = |run: &mut Run| {
        let n = run.rotations + 1;
        match fs::rename(fx.path(LOG), fx.path(&format!("{LOG}.{n}"))) {
            Ok(()) => {
                run.rotations = n;
                send(pid, Signal::SIGHUP);
            }
            Err(e) => run.problems.push(format!(
                "rotation {n} at {:.1} s: cannot rename {LOG}: {e} (heat wrote no entry since the last rotation?)",
                t0.elapsed().as_secs_f64()
            )),
        }
    };

    // 250 ms slots: a sample (and zombies) every slot; on each second a new
    // heat.toml (odd seconds valid, even ones invalid), then USR1 on odd
    // seconds (250 ms after a valid file: while the probes it changed are
    // being replaced), then a rotation every 5 s.
    let mut children = 0;
    for k in 1..=secs * 4 {
        sleep_until(t0 + Duration::from_millis(250 * k));
        let sample = Sample::of(pid, k as f64 / 4.0, &mut zombies);
        children = sample.children;
        run.samples.push(sample);
        if let Some(status) = h.try_exit() {
            let err = h.stderr();
            drop(h);
            panic!(
                "heat exited ({status}) {:.1} s into the soak (seed {seed}); stderr:\n{err}\n\
                 --- last lines of {LOG}:\n{}",
                t0.elapsed().as_secs_f64(),
                tail(&fx.log(), 40)
            );
        }
        let s = k / 4;
        match k % 4 {
            0 => {
                if s % 2 == 1 {
                    run.valid_writes += 1;
                    fx.replace_file(CONF, &render(probes, run.valid_writes % 2, None), 0o644);
                } else {
                    run.invalid_writes += 1;
                    let bad = Bad::random(rng);
                    fx.replace_file(CONF, &render(probes, run.valid_writes % 2, Some(bad)), 0o644);
                }
            }
            1 if s % 2 == 1 => {
                run.usr1s += 1;
                run.usr1_at.push(unix_now());
                send(pid, Signal::SIGUSR1);
            }
            2 if s % 5 == 0 => rotate(&mut run),
            _ => {}
        }
    }
    run.elapsed = t0.elapsed();

    // The end: one more rotation and USR1, and every USR1 answered before the
    // TERM (a USR1 still pending when the TERM arrives may be dropped).
    rotate(&mut run);
    sleep_until(Instant::now() + Duration::from_millis(300));
    run.usr1s += 1;
    run.usr1_at.push(unix_now());
    send(pid, Signal::SIGUSR1);
    let want = PROBES * run.usr1s;
    let settled = static_states(fx, run.rotations);
    let mut states = 0;
    let answered = wait_until(Duration::from_secs(15), || {
        zombies.sample(pid);
        states = settled + count_states(fx, run.rotations);
        states >= want
    });
    if !answered || states != want {
        run.problems.push(format!(
            "USR1: {} sent, so {want} `state:` entries expected, {states} found",
            run.usr1s
        ));
    }

    run.cpu = cpu_time(pid).saturating_sub(cpu0);
    let stop = Instant::now();
    run.ran = stop - t0;
    h.kill(Signal::SIGTERM);
    let exited = wait_until(Duration::from_secs(20), || {
        zombies.sample(pid);
        h.try_exit().is_some()
    });
    run.stop_took = stop.elapsed();
    match h.try_exit() {
        None => run.problems.push(format!(
            "heat did not exit within 20 s of SIGTERM ({children} children at the last sample)"
        )),
        Some(status) if status.code() != Some(0) => run.problems.push(format!(
            "heat exited with {status} after SIGTERM, expected 0; stderr:\n{}",
            h.stderr()
        )),
        Some(_) => {}
    }
    if exited {
        // Its zombies go to pid 1; what is still alive a second later is a leak.
        let mut left = Vec::new();
        let gone = wait_until(ZOMBIE_GRACE, || {
            left = tagged_alive(tag);
            left.is_empty()
        });
        if !gone {
            run.problems.push(format!(
                "still alive 1 s after heat exited: {}",
                left.iter().take(20).cloned().collect::<Vec<_>>().join("; ")
            ));
        }
    }
    run.problems.append(&mut zombies.problems);
    run.oldest_zombie = zombies.oldest;
    // Failed reloads are said on stderr too; nothing else may be.
    let err = h.stderr();
    let other: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("reload failed, keeping the running configuration: "))
        .collect();
    if !other.is_empty() {
        run.problems.push(format!("heat wrote on stderr:\n{}", tail(&other.join("\n"), 20)));
    }
    drop(h);
    run
}

/// Zombie children of heat, by (pid, start time): when each was first seen.
#[derive(Default)]
struct Zombies {
    seen: HashMap<(i32, u64), (Instant, String)>,
    /// The longest any zombie was seen for.
    oldest: Duration,
    reported: HashSet<(i32, u64)>,
    problems: Vec<String>,
}

impl Zombies {
    /// One look at heat's children; returns how many there are, zombies included.
    fn sample(&mut self, heat: i32) -> usize {
        let now = Instant::now();
        let mut children = 0;
        let mut current = HashSet::new();
        for p in procs().into_iter().filter(|p| p.ppid == heat) {
            children += 1;
            if p.state != 'Z' {
                continue;
            }
            let key = (p.pid, p.start);
            current.insert(key);
            let (first, comm) = self.seen.entry(key).or_insert((now, p.comm.clone()));
            let age = now - *first;
            self.oldest = self.oldest.max(age);
            if age >= ZOMBIE_GRACE && self.reported.insert(key) {
                self.problems.push(format!(
                    "zombie: heat's child pid {} ({comm}) was still unreaped {} ms after it was first seen as a zombie",
                    p.pid,
                    age.as_millis()
                ));
            }
        }
        self.seen.retain(|k, _| current.contains(k));
        children
    }
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

struct Report {
    problems: Vec<String>,
    summary: String,
}

/// Problems by kind: how many, and the first few, explained.
#[derive(Default)]
struct Problems(BTreeMap<&'static str, (usize, Vec<String>)>);

impl Problems {
    fn add(&mut self, kind: &'static str, what: impl FnOnce() -> String) {
        let (n, first) = self.0.entry(kind).or_default();
        *n += 1;
        if first.len() < 6 {
            first.push(what());
        }
    }
    fn into_lines(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(kind, (n, first))| {
                format!("=== {kind}: {n} case(s); the first:\n{}", first.join("\n"))
            })
            .collect()
    }
}

/// What ran, as a token's second part says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Job {
    Check,
    Fail,
    Recovery,
}

/// `p7-123-4567` (check), `p7-fail-123-4567`, `p7-rec-123-4567`.
fn parse_token(word: &str) -> Option<(usize, Job)> {
    let parts: Vec<&str> = word.split('-').collect();
    let (probe, job, nums) = match parts.as_slice() {
        [p, a, b] => (p, Job::Check, [a, b]),
        [p, "fail", a, b] => (p, Job::Fail, [a, b]),
        [p, "rec", a, b] => (p, Job::Recovery, [a, b]),
        _ => return None,
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !nums.iter().all(|n| digits(n)) {
        return None;
    }
    let i = probe.strip_prefix('p').filter(|n| digits(n))?.parse().ok()?;
    Some((i, job))
}

/// Where an entry is: the file and the entry's header line number.
struct At {
    file: String,
    line: usize,
}

fn excerpt(at: &At, e: &Entry) -> String {
    let mut s = format!("  {}:{}: {} : {} : {} :", at.file, at.line, e.unix, e.kind, e.name);
    let n = e.lines.len();
    for (i, l) in e.lines.iter().enumerate() {
        if i < 3 || i + 2 >= n || l.starts_with("[heat: ") {
            let l = if l.len() > 120 { &l[..120] } else { l.as_str() };
            write!(s, "\n  > {l}").unwrap();
        } else if i == 3 {
            write!(s, "\n  > ... ({} lines)", n - 5).unwrap();
        }
    }
    s
}

fn header_ok(line: &str) -> bool {
    let Some(rest) = line.strip_suffix(" :") else { return false };
    let Some((unix, rest)) = rest.split_once(" : ") else { return false };
    let Some((kind, name)) = rest.split_once(" : ") else { return false };
    !unix.is_empty()
        && unix.bytes().all(|c| c.is_ascii_digit())
        && matches!(kind, "INFO" | "FAIL" | "ERR")
        && !name.is_empty()
}

fn verify(fx: &Fixture, probes: &[Probe], run: &Run) -> Report {
    let mut p = Problems::default();
    for msg in &run.problems {
        p.add("during the run", || format!("  {}", msg.replace('\n', "\n  ")));
    }

    // The files: LOG.1 .. LOG.N, then LOG; nothing else.
    let files: Vec<String> =
        (1..=run.rotations).map(|n| format!("{LOG}.{n}")).chain([LOG.to_string()]).collect();
    let mut on_disk: Vec<String> = fs::read_dir(&fx.dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(LOG))
        .collect();
    on_disk.sort();
    let mut expected = files.clone();
    expected.sort();
    if on_disk != expected {
        p.add("unexpected log files", || format!("  on disk {on_disk:?}, expected {expected:?}"));
    }

    // Torn entries, then the entries themselves.
    let mut all: Vec<(At, Entry)> = Vec::new();
    let mut log_bytes = 0;
    for file in &files {
        let text =
            String::from_utf8_lossy(&fs::read(fx.path(file)).unwrap_or_default()).into_owned();
        log_bytes += text.len();
        if !text.is_empty() && !text.ends_with('\n') {
            p.add("torn entry", || {
                format!("  {file} does not end with a newline: ...{:?}", tail(&text, 2))
            });
        }
        let lines: Vec<&str> = text.lines().collect();
        let mut clean = String::with_capacity(text.len());
        let mut headers = Vec::new();
        let mut in_entry = false;
        for (i, line) in lines.iter().enumerate() {
            let body = line.starts_with("> ") || *line == ">";
            let header = !body && header_ok(line);
            if header || (body && in_entry) {
                in_entry = true;
                if header {
                    headers.push(i + 1);
                }
                clean.push_str(line);
                clean.push('\n');
            } else {
                p.add("torn entry", || {
                    let from = i.saturating_sub(2);
                    let around: Vec<String> = (from..(i + 2).min(lines.len()))
                        .map(|j| format!("  {file}:{}: {:?}", j + 1, lines[j]))
                        .collect();
                    let why = if body { "a body line before any header" } else { "not a log line" };
                    format!("  {file}:{}: {why}:\n{}", i + 1, around.join("\n"))
                });
            }
        }
        let entries = parse_entries(&clean);
        assert_eq!(entries.len(), headers.len(), "parse_entries and the header count agree");
        for (e, line) in entries.into_iter().zip(headers) {
            all.push((At { file: file.clone(), line }, e));
        }
    }

    // Who is who.
    let mut by_name: HashMap<String, (usize, Job)> = HashMap::new();
    let mut probe_heat: HashMap<String, usize> = HashMap::new();
    for (i, pr) in probes.iter().enumerate() {
        by_name.insert(pr.check_entry(), (i, Job::Check));
        by_name.insert(format!("[{}] hang.sh", pr.name), (i, Job::Fail));
        by_name.insert(format!("[{}] rec.sh", pr.name), (i, Job::Recovery));
        probe_heat.insert(format!("[{}] heat", pr.name), i);
    }

    // Side files: every run written down.
    let mut side: HashMap<String, (usize, Job)> = HashMap::new();
    for (i, pr) in probes.iter().enumerate() {
        for (dir, hook) in [("runs", false), ("hooks", true)] {
            for tok in fx.lines(&format!("{dir}/{}", pr.name)) {
                match parse_token(&tok) {
                    Some((j, job)) if j == i && (job != Job::Check) == hook => {
                        if side.insert(tok.clone(), (i, job)).is_some() {
                            p.add("token written twice (test bug?)", || format!("  {dir}: {tok}"));
                        }
                    }
                    _ => p.add("bad side-file line (test bug?)", || format!("  {dir}: {tok:?}")),
                }
            }
        }
    }

    let mut seen: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut counts = Counts::default();
    let mut states: Vec<Vec<u64>> = vec![Vec::new(); probes.len()];
    // Whether the latest reload failed: only then is a good one "valid again".
    let mut last_reload_failed = false;
    for (idx, (at, e)) in all.iter().enumerate() {
        if e.is_heat() {
            let t = e.text();
            if t.starts_with("reloaded: ") {
                last_reload_failed = false;
                counts.reloaded += 1;
                let changed =
                    t.contains("; changed 0; ") || t.contains("; changed 5 (p0, p1, p2, p3, p4); ");
                if !t.starts_with("reloaded: added 0; removed 0; ") || !changed {
                    p.add("odd reload summary", || excerpt(at, e));
                }
            } else if t.starts_with("reload failed, keeping the running configuration") {
                last_reload_failed = true;
                counts.reload_failed += 1;
            } else if t == "configuration valid again" {
                if !last_reload_failed {
                    p.add("`configuration valid again` with no failed reload before it", || {
                        excerpt(at, e)
                    });
                }
                last_reload_failed = false;
            } else if t.starts_with("control socket ") {
                // Where `heat status` reaches this heat.
            } else if t.starts_with("containment: ") || t.starts_with("ended ") {
                // What contains checks, and a previous life's leftovers ended.
            } else if t.starts_with("started heat ") {
                counts.started += 1;
            } else if t == "stopping on SIGTERM" {
                counts.stopping += 1;
            } else if t == "reopened the log" {
                counts.reopened += 1;
            } else {
                p.add("unexpected heat entry", || excerpt(at, e));
            }
            if e.kind == "ERR" && !t.starts_with("reload failed") {
                p.add("unexpected ERR entry", || excerpt(at, e));
            }
            continue;
        }
        if let Some(&i) = probe_heat.get(&e.name) {
            let t = e.text();
            if t.starts_with("state: ") {
                states[i].push(e.unix);
            } else if t.starts_with("recovery round ") {
                counts.rounds += 1;
            } else if t.starts_with("recovered after ") {
                counts.recovered += 1;
            } else if t != "recovery window closed without a success" {
                p.add("unexpected probe event", || excerpt(at, e));
            }
            if e.kind == "ERR" {
                p.add("unexpected ERR entry", || excerpt(at, e));
            }
            continue;
        }
        let Some(&(i, job)) = by_name.get(&e.name) else {
            p.add("entry of no known name", || excerpt(at, e));
            continue;
        };
        let pr = &probes[i];
        let markers: Vec<&str> =
            e.lines.iter().filter_map(|l| l.strip_prefix("[heat: ")?.strip_suffix(']')).collect();
        let dropped = markers.iter().any(|m| m.ends_with(" bytes dropped"));
        let ended: Vec<&str> =
            markers.iter().copied().filter(|m| !m.ends_with(" bytes dropped")).collect();
        if e.kind == "ERR" {
            p.add("unexpected ERR entry", || excerpt(at, e));
        }
        let mut tokens = Vec::new();
        for l in &e.lines {
            let mut words = l.split(' ');
            let Some(word) = words.next() else { continue };
            let Some((j, tjob)) = parse_token(word) else { continue };
            if (j, tjob) != (i, job) {
                p.add("token in another probe's or job's entry", || {
                    format!("  token {word}:\n{}", excerpt(at, e))
                });
            }
            tokens.push((word, words.next()));
            seen.entry(word).or_default().push(idx);
        }
        match job {
            Job::Check => counts.checks += 1,
            Job::Fail => counts.fails += 1,
            Job::Recovery => counts.recoveries += 1,
        }
        if !ended.is_empty() {
            counts.ended += 1;
        }
        if tokens.len() > 1 {
            p.add("an entry with two runs' tokens", || excerpt(at, e));
        }
        if tokens.is_empty() && ended.is_empty() {
            p.add("an entry without its run's token, though heat did not end the run", || {
                excerpt(at, e)
            });
        }
        if job == Job::Check
            && ended.is_empty()
            && let Some(&(_, code)) = tokens.first()
        {
            let want = if code == Some("0") { "INFO" } else { "FAIL" };
            if e.kind != want {
                p.add("entry type does not match the exit code", || {
                    format!("  exit {code:?}, so {want}:\n{}", excerpt(at, e))
                });
            }
        }
        if job == Job::Check && pr.flood {
            let kept: usize = e.lines.iter().map(|l| l.len() + 1).sum();
            if dropped {
                counts.dropped += 1;
            } else if ended.is_empty() {
                p.add("a flood entry without `bytes dropped`", || excerpt(at, e));
            }
            // What heat kept, plus its markers and the `> ` it adds nothing to.
            if kept > MAX_OUTPUT as usize + 200 {
                p.add("a flood entry longer than max_output", || {
                    format!("  {kept} bytes kept:\n{}", excerpt(at, e))
                });
            }
        } else if dropped {
            p.add("`bytes dropped` on a run that does not flood", || excerpt(at, e));
        }
        if job == Job::Fail && ended.is_empty() {
            p.add("a hanging fail hook that did not time out", || excerpt(at, e));
        }
    }

    // Exactly one entry per run.
    let mut runs_checked = 0;
    for (tok, &(i, job)) in &side {
        runs_checked += 1;
        match seen.get(tok.as_str()).map(Vec::as_slice) {
            None | Some([]) => p.add("a run with no entry", || {
                format!(
                    "  {job:?} run {tok} of {} is in {}/{} but in no entry of any log file \
                     (entries of {} near it follow)\n{}",
                    probes[i].name,
                    if job == Job::Check { "runs" } else { "hooks" },
                    probes[i].name,
                    probes[i].name,
                    near(&all, tok, i, job, probes)
                )
            }),
            Some([_]) => {}
            Some(many) => p.add("a run with two entries", || {
                let ex: Vec<String> = many.iter().map(|&k| excerpt(&all[k].0, &all[k].1)).collect();
                format!("  run {tok} is in {} entries:\n{}", many.len(), ex.join("\n"))
            }),
        }
    }
    let mut printed_only = 0;
    for (tok, at) in &seen {
        if at.len() > 1 && !side.contains_key(*tok) {
            p.add("a run with two entries", || {
                let ex: Vec<String> = at.iter().map(|&k| excerpt(&all[k].0, &all[k].1)).collect();
                format!("  token {tok} is in {} entries:\n{}", at.len(), ex.join("\n"))
            });
        }
        if !side.contains_key(*tok) {
            printed_only += 1;
            let (a, e) = &all[at[0]];
            let ended =
                e.lines.iter().any(|l| l.starts_with("[heat: ") && !l.ends_with(" bytes dropped]"));
            if !ended {
                p.add("a token printed but never written down, in a run heat did not end", || {
                    excerpt(a, e)
                });
            }
        }
    }

    // Reloads, USR1, rotations, hooks: the soak did what it meant to.
    if counts.started != 1 || counts.stopping != 1 {
        p.add("start and stop", || {
            format!(
                "  `started heat` {} times, `stopping on SIGTERM` {} times (expected once each)",
                counts.started, counts.stopping
            )
        });
    }
    if counts.reloaded == 0 || counts.reloaded < run.valid_writes / 2 {
        p.add("too few reloads", || {
            format!(
                "  {} `reloaded:` entries for {} valid files",
                counts.reloaded, run.valid_writes
            )
        });
    }
    if counts.reload_failed == 0 || counts.reload_failed < run.invalid_writes / 2 {
        p.add("too few failed reloads", || {
            format!(
                "  {} `reload failed` entries for {} invalid files",
                counts.reload_failed, run.invalid_writes
            )
        });
    }
    if counts.reopened != run.rotations {
        p.add("reopen entries", || {
            format!(
                "  {} `reopened the log` for {} rotations (HUPs)",
                counts.reopened, run.rotations
            )
        });
    }
    let wrong_states: Vec<usize> =
        (0..probes.len()).filter(|&i| states[i].len() != run.usr1s).collect();
    if let Some(&w) = wrong_states.first() {
        p.add("state entries per probe", || {
            let counts: Vec<String> = wrong_states
                .iter()
                .take(20)
                .map(|&i| format!("p{i}: {}", states[i].len()))
                .collect();
            format!(
                "  {} USR1 sent, each should give one `state:` entry per probe; probes with \
                 another count ({}): {}\n  USR1 sent at (unix s) {:?}\n  p{w} answered at      \
                 {:?}\n  (USR1 goes 250 ms after each valid heat.toml, which changes p0..p{}: \
                 they are being replaced then)",
                run.usr1s,
                wrong_states.len(),
                counts.join(", "),
                run.usr1_at,
                states[w],
                CHANGED - 1
            )
        });
    }
    if counts.dropped == 0 {
        p.add("no flood entry", || "  no `[heat: N bytes dropped]` marker at all".to_string());
    }
    if counts.fails == 0 || counts.recoveries == 0 || counts.recovered == 0 {
        p.add("hooks never ran", || {
            format!(
                "  fail hooks {}, recovery hooks {}, recoveries {}",
                counts.fails, counts.recoveries, counts.recovered
            )
        });
    }

    // Flat fds and RSS after the warm-up.
    let warm = run.secs as f64 / 5.0;
    let steady: Vec<&Sample> = run.samples.iter().filter(|s| s.at > warm).collect();
    let third = (steady.len() / 3).max(1);
    let (first, last) = (&steady[..third], &steady[steady.len() - third..]);
    let get = |v: &[&Sample], f: fn(&Sample) -> u64| v.iter().map(|s| f(s)).collect::<Vec<u64>>();
    let fds = |v: &[&Sample]| get(v, |s| s.fds);
    let fixed = |v: &[&Sample]| get(v, |s| s.fixed);
    let rss = |v: &[&Sample]| get(v, |s| s.rss_kib);
    let trace = |f: fn(&Sample) -> u64| {
        let all: Vec<String> = steady.iter().map(|s| format!("{:.2}:{}", s.at, f(s))).collect();
        all.join(" ")
    };
    let (fixed_a, fixed_b) = (median(fixed(first)), median(fixed(last)));
    if fixed_b > fixed_a + FIXED_SLACK {
        p.add("fds grew", || {
            format!(
                "  fds no run holds: median {fixed_a} in the first third after the \
                 warm-up, {fixed_b} in the last (allowed +{FIXED_SLACK}); samples (s:fds): {}",
                trace(|s| s.fixed)
            )
        });
    }
    let excess = |v: &[&Sample]| v.iter().map(|s| s.excess).collect::<Vec<i64>>();
    let (ex_a, ex_b) = (median_i(excess(first)), median_i(excess(last)));
    if ex_b > ex_a + EXCESS_SLACK {
        p.add("fds grew", || {
            format!(
                "  fds of runs beyond three per child of heat: median {ex_a} in the first third \
                 after the warm-up, {ex_b} in the last (allowed +{EXCESS_SLACK}); samples \
                 (s:excess/fds/children): {}",
                steady
                    .iter()
                    .map(|s| format!("{:.2}:{}/{}/{}", s.at, s.excess, s.fds, s.children))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        });
    }
    let (rss_a, rss_b) = (median(rss(first)), median(rss(last)));
    if rss_b * 100 > rss_a * 120 {
        p.add("RSS grew", || {
            format!(
                "  median {rss_a} KiB in the first third after the warm-up, {rss_b} KiB in the \
                 last (allowed +20 %); samples (s:KiB): {}",
                trace(|s| s.rss_kib)
            )
        });
    }

    // The figures.
    if std::env::var_os("HEAT_SOAK_TRACE").is_some() {
        for s in &run.samples {
            eprintln!(
                "soak sample {:.2} s: fds {} (fixed {}, excess {}), children {}, RSS {} KiB",
                s.at, s.fds, s.fixed, s.excess, s.children, s.rss_kib
            );
        }
    }
    let all_fds = fds(&steady);
    let all_rss = rss(&steady);
    let kids = get(&steady, |s| s.children);
    let secs = run.ran.as_secs_f64();
    let scheduled: f64 = probes.iter().map(|pr| secs * 1000.0 / pr.interval_ms[0] as f64).sum();
    let plain: Vec<&Probe> =
        probes.iter().filter(|pr| !pr.flood && !pr.hang && !pr.recovery).collect();
    let plain_names: HashSet<String> = plain.iter().map(|pr| pr.check_entry()).collect();
    let plain_runs = all.iter().filter(|(_, e)| plain_names.contains(&e.name)).count();
    let plain_sched: f64 = plain.iter().map(|pr| secs * 1000.0 / pr.interval_ms[0] as f64).sum();
    let mb = |k: u64| k as f64 / 1024.0;
    let summary = format!(
        "soak: seed {}, {:.0} s, {PROBES} probes; runs checked {runs_checked} (+{printed_only} \
         printed, then ended by heat); entries {} (checks {}, {:.0}/s, {:.1} % of the ticks; \
         plain probes {:.1} %; ended by heat {}; floods cut {}; fail hooks {}; recovery hooks {}; \
         recoveries {}); reloads ok {} / failed {} (files {} valid, {} invalid); rotations {}; \
         USR1 {}; fds min/median/max {}/{}/{} (medians first/last third: excess {ex_a}/{ex_b}; \
         not pipes or pidfds {fixed_a}/{fixed_b}); RSS \
         min/median/max {:.1}/{:.1}/{:.1} MB; children min/median/max {}/{}/{}; zombie seen longest {} ms; heat CPU \
         {:.1} % of a core ({:.0} µs per check); stop {:.2} s; log {:.1} MB in {} files",
        run.seed,
        secs,
        all.len(),
        counts.checks,
        counts.checks as f64 / secs,
        100.0 * counts.checks as f64 / scheduled,
        100.0 * plain_runs as f64 / plain_sched,
        counts.ended,
        counts.dropped,
        counts.fails,
        counts.recoveries,
        counts.recovered,
        counts.reloaded,
        counts.reload_failed,
        run.valid_writes,
        run.invalid_writes,
        run.rotations,
        run.usr1s,
        min(all_fds.clone()),
        median(all_fds.clone()),
        max(all_fds),
        mb(min(all_rss.clone())),
        mb(median(all_rss.clone())),
        mb(max(all_rss)),
        min(kids.clone()),
        median(kids.clone()),
        max(kids),
        run.oldest_zombie.as_millis(),
        100.0 * run.cpu.as_secs_f64() / secs,
        run.cpu.as_secs_f64() * 1e6 / counts.checks.max(1) as f64,
        run.stop_took.as_secs_f64(),
        log_bytes as f64 / 1e6,
        files.len(),
    );
    Report { problems: p.into_lines(), summary }
}

/// How much the fds of runs beyond three per child of heat may rise
/// between the first and the last third after the warm-up (medians): heat
/// still reading a hook's output for 100 ms after it exits, a child that
/// came or went between the two looks. One fd leaked per check is
/// thousands, one per reload or USR1 dozens.
const EXCESS_SLACK: i64 = 10;
/// How much the fds that are neither pipes nor pidfds (nothing in flight
/// holds them) may rise: one more, a heat.toml being read. A log or heat.toml left open
/// on each rotation or reload shows at once.
const FIXED_SLACK: u64 = 1;

#[derive(Default)]
struct Counts {
    checks: usize,
    fails: usize,
    recoveries: usize,
    ended: usize,
    dropped: usize,
    reloaded: usize,
    reload_failed: usize,
    reopened: usize,
    started: usize,
    stopping: usize,
    rounds: usize,
    recovered: usize,
}

/// The entries of a probe's job around the time a token was written (its
/// uptime in centiseconds is no wall time, so: the last few of that name in
/// each file).
fn near(all: &[(At, Entry)], tok: &str, i: usize, job: Job, probes: &[Probe]) -> String {
    let name = match job {
        Job::Check => probes[i].check_entry(),
        Job::Fail => format!("[{}] hang.sh", probes[i].name),
        Job::Recovery => format!("[{}] rec.sh", probes[i].name),
    };
    // Tokens of one probe sort by uptime: show the entries with the nearest ones.
    let key = |t: &str| t.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    let want = key(tok);
    let mut near: Vec<(u64, usize)> = all
        .iter()
        .enumerate()
        .filter(|(_, (_, e))| e.name == name)
        .filter_map(|(k, (_, e))| {
            let w = e
                .lines
                .iter()
                .find_map(|l| l.split(' ').next().filter(|w| parse_token(w).is_some()))?;
            Some((key(w).abs_diff(want), k))
        })
        .collect();
    near.sort();
    near.iter().take(3).map(|&(_, k)| excerpt(&all[k].0, &all[k].1)).collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn env_num(var: &str) -> Option<u64> {
    let v = std::env::var(var).ok()?;
    Some(v.trim().parse().unwrap_or_else(|_| panic!("{var}={v:?}: not a number")))
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn median_i(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn min(v: Vec<u64>) -> u64 {
    v.into_iter().min().unwrap_or(0)
}

fn max(v: Vec<u64>) -> u64 {
    v.into_iter().max().unwrap_or(0)
}

/// `VmRSS` of `pid`, in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// heat at one moment.
struct Sample {
    /// Seconds into the soak.
    at: f64,
    fds: u64,
    /// fds that are no run's own (a check or hook holds its pipe, its pidfd
    /// and its cgroup while it runs): the log, heat.toml while read, sockets...
    fixed: u64,
    /// A run's own fds beyond three per child of heat (zombies included: heat
    /// holds a child's fds until it has reaped it and read its output).
    excess: i64,
    rss_kib: u64,
    children: u64,
}

impl Sample {
    /// Looks at heat's fds, then at its children (which `zombies` sees too).
    fn of(pid: i32, at: f64, zombies: &mut Zombies) -> Sample {
        let mut fds = 0;
        let mut fixed = 0;
        for e in fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
            // A link that vanished between the listing and the look: gone.
            let Ok(link) = fs::read_link(e.path()) else { continue };
            fds += 1;
            let link = link.to_string_lossy();
            // A run's own: its pipe, its pidfd, its cgroup (where contained).
            let per_run = link.starts_with("pipe:")
                || link == "anon_inode:[pidfd]"
                || link.starts_with("/sys/fs/cgroup/");
            if !per_run {
                fixed += 1;
            }
        }
        let children = zombies.sample(pid) as u64;
        Sample {
            at,
            fds,
            fixed,
            excess: (fds - fixed) as i64 - 3 * children as i64,
            rss_kib: rss_kib(pid),
            children,
        }
    }
}

struct Proc {
    pid: i32,
    ppid: i32,
    state: char,
    start: u64,
    comm: String,
}

/// Every process, from /proc/PID/stat.
fn procs() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_string();
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(Proc {
            pid,
            state: f.first()?.chars().next()?,
            ppid: f.get(1)?.parse().ok()?,
            start: f.get(19)?.parse().ok()?,
            comm,
        })
    })
    .collect()
}

/// utime + stime of `pid`.
fn cpu_time(pid: i32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, r)| {
            r.split_whitespace().skip(11).take(2).filter_map(|n| n.parse().ok()).collect()
        })
        .unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(f.iter().sum::<u64>() as f64 / hz)
}

/// Live (not zombie) processes whose environment carries the soak's tag.
fn tagged_alive(tag: &str) -> Vec<String> {
    let needle = format!("{TAG_VAR}={tag}\0").into_bytes();
    let me = std::process::id() as i32;
    procs()
        .into_iter()
        .filter(|p| p.pid != me && p.state != 'Z')
        .filter(|p| {
            fs::read(format!("/proc/{}/environ", p.pid))
                .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_slice()))
        })
        .map(|p| {
            let cmd = fs::read(format!("/proc/{}/cmdline", p.pid)).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            format!("pid {} ppid {} state {} ({})", p.pid, p.ppid, p.state, cmd.trim())
        })
        .collect()
}

/// `state:` entries in the files still being written: the last rotated one
/// and the current one.
fn count_states(fx: &Fixture, rotations: usize) -> usize {
    let mut files = vec![LOG.to_string()];
    if rotations > 0 {
        files.push(format!("{LOG}.{rotations}"));
    }
    files.iter().map(|f| states_in(&fx.path(f))).sum()
}

/// `state:` entries in the rotated files heat no longer writes to.
fn static_states(fx: &Fixture, rotations: usize) -> usize {
    (1..rotations).map(|n| states_in(&fx.path(&format!("{LOG}.{n}")))).sum()
}

fn states_in(path: &Path) -> usize {
    let text = fs::read(path).unwrap_or_default();
    text.split(|&b| b == b'\n').filter(|l| l.starts_with(b"> state: ")).count()
}

/// xorshift64*, seeded through splitmix64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}
