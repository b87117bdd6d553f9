//! heat beside Monit on the same workloads, one tool at a time, in one run.
//!
//! A supervisor is judged by how exactly it keeps time, how fast it reacts and
//! what it costs the host: this harness measures all three from outside the
//! tool (the check's own start times, /proc), so both tools are measured the
//! same way. Run it with
//!
//! ```text
//! cargo bench --bench compare -- [--quick] [--out BENCHMARKS.md] [--no-install] [--no-monit]
//! ```
//!
//! cargo's bench profile builds the heat binary it measures (target/release/heat).
//! Built here, with `cc`: the check (benches/check.c) and the plain C scheduler
//! heat is held against at 10,000 probes (benches/spawner.c).
//! Definitions of every figure are in the report's "How it is measured" section.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A run whose CPU use outside the benchmark's process tree exceeds this share
/// of all cores is repeated, and marked noisy if every try was.
const NOISY_PCT: f64 = 10.0;
const SECOND: Duration = Duration::from_secs(1);
const SHORT: Duration = Duration::from_millis(10);
/// The spawn micro-benchmark: this many `/bin/true` probes at `SHORT` ask for
/// far more checks a second than two cores can start.
const SPAWN_PROBES: usize = 200;

static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// A progress line on stderr, stamped with the seconds since the harness started.
macro_rules! say {
    ($($arg:tt)*) => {{
        let t = STARTED.get_or_init(Instant::now).elapsed().as_secs_f64();
        eprintln!("compare [{t:5.1} s]: {}", format_args!($($arg)*));
    }};
}

/// Where the hand-written part of the report begins.
const NOTES_MARKER: &str = "<!-- notes: kept across runs -->";

fn main() -> ExitCode {
    STARTED.get_or_init(Instant::now);
    close_inherited_fds_on_exec();
    let opts = match Opts::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            say!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Whatever opened the harness may have left fds open (a shell's, cargo's
/// jobserver); the tools must not inherit them, or every fd count would
/// include them.
fn close_inherited_fds_on_exec() {
    let Ok(dir) = fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on an fd number has no memory effects; one that is
        // not open (the directory's own, now closed) just fails.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

struct Opts {
    quick: bool,
    out: Option<PathBuf>,
    no_install: bool,
    no_monit: bool,
    keep: bool,
    heat: Option<PathBuf>,
    warmup: Duration,
    window: Duration,
}

impl Opts {
    fn parse(args: impl Iterator<Item = String>) -> Result<Opts, String> {
        let mut o = Opts {
            quick: false,
            out: None,
            no_install: false,
            no_monit: false,
            keep: false,
            heat: None,
            warmup: Duration::from_secs(3),
            window: Duration::from_secs(20),
        };
        let mut window = None;
        let mut warmup = None;
        let mut args = args.peekable();
        while let Some(a) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match a.as_str() {
                "--quick" => o.quick = true,
                "--out" => o.out = Some(PathBuf::from(value("--out")?)),
                "--no-install" => o.no_install = true,
                "--no-monit" => o.no_monit = true,
                "--keep" => o.keep = true,
                "--heat" => o.heat = Some(PathBuf::from(value("--heat")?)),
                "--window" => window = Some(secs(&value("--window")?)?),
                "--warmup" => warmup = Some(secs(&value("--warmup")?)?),
                // cargo bench passes --bench to every bench target
                "--bench" => {}
                other => {
                    return Err(format!(
                        "unknown argument {other:?}: use --quick, --out FILE, --no-install, \
                         --no-monit, --keep, --heat PATH, --window SECS, --warmup SECS"
                    ));
                }
            }
        }
        if o.quick {
            o.warmup = SECOND;
            o.window = Duration::from_secs(3);
        }
        o.warmup = warmup.unwrap_or(o.warmup);
        o.window = window.unwrap_or(o.window);
        Ok(o)
    }

    fn sizes(&self) -> &'static [usize] {
        if self.quick { &[1, 100] } else { &[1, 100, 1000] }
    }

    fn tries(&self) -> usize {
        if self.quick { 1 } else { 3 }
    }

    /// The size at which heat also runs its other containment and user
    /// variants, and which: all three in a full run; under `--quick` one, at
    /// 100 probes, so CI still sees env and user handling. A user needs root.
    fn variants(&self, root: bool) -> (usize, Vec<Variant>) {
        if self.quick {
            let quick = Variant { process_groups: true, nobody: root, metrics: false };
            (100, vec![quick, Variant::METRICS])
        } else {
            (1000, Variant::ALL[1..].iter().copied().filter(|v| root || !v.nobody).collect())
        }
    }
}

/// The large workload: 10,000 probes at 10 s, heat beside the C spawner.
const BIG: usize = 10_000;
const BIG_TEXT: &str = "10,000";
const BIG_INTERVAL: Duration = Duration::from_secs(10);

fn secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or(format!("{s:?} is not a positive number of seconds"))
}

/// How heat contains and runs its children in one run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Variant {
    /// `HEAT_CONTAINMENT=process-groups` in heat's environment (else its
    /// default: a cgroup per check, as root).
    process_groups: bool,
    /// `user = "nobody"` on every probe (checks and hook run as nobody).
    nobody: bool,
    /// `metrics_listen` on, and `/metrics` scraped every second.
    metrics: bool,
}

impl Variant {
    const DEFAULT: Variant = Variant { process_groups: false, nobody: false, metrics: false };
    const METRICS: Variant = Variant { metrics: true, ..Variant::DEFAULT };
    const ALL: [Variant; 5] = [
        Variant::DEFAULT,
        Variant { process_groups: true, ..Variant::DEFAULT },
        Variant { nobody: true, ..Variant::DEFAULT },
        Variant { process_groups: true, nobody: true, metrics: false },
        Variant::METRICS,
    ];
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Heat(Variant),
    Monit,
    /// benches/spawner.c: the plain absolute-deadline scheduler.
    Spawner,
}

const HEAT: Tool = Tool::Heat(Variant::DEFAULT);

impl Tool {
    /// How the report names the tool, and its output file's name (no spaces).
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Tool::Heat(v) if v.metrics => ("heat (metrics scraped every 1 s)", "heat-metrics"),
            Tool::Heat(v) => match (v.process_groups, v.nobody) {
                (false, false) => ("heat", "heat"),
                (true, false) => ("heat (process groups)", "heat-pg"),
                (false, true) => ("heat (cgroups, user nobody)", "heat-cg-nobody"),
                (true, true) => ("heat (process groups, user nobody)", "heat-pg-nobody"),
            },
            Tool::Monit => ("Monit", "monit"),
            Tool::Spawner => ("C spawner", "spawner"),
        }
    }

    fn name(self) -> &'static str {
        self.labels().0
    }

    fn slug(self) -> &'static str {
        self.labels().1
    }

    fn is_heat(self) -> bool {
        matches!(self, Tool::Heat(_))
    }

    /// Whether every probe runs as nobody.
    fn nobody(self) -> bool {
        matches!(self, Tool::Heat(Variant { nobody: true, .. }))
    }
}

/// N probes running the check at `interval`, plus (with `flip`) the probe that
/// fails every other run and has a reaction hook.
#[derive(Clone, Copy, Debug)]
struct Workload {
    n: usize,
    interval: Duration,
    flip: bool,
}

impl Workload {
    fn new(n: usize, interval: Duration) -> Workload {
        Workload { n, interval, flip: true }
    }

    fn label(&self) -> String {
        let s = if self.n == 1 { "" } else { "s" };
        let flip = if self.flip { " (+ flip)" } else { "" };
        format!("{} probe{s} @ {}{flip}", self.n, dur(self.interval))
    }

    fn span(&self, opts: &Opts) -> (Duration, Duration) {
        span(self.interval, opts.warmup, opts.window)
    }
}

/// Warm-up and window for an interval. One longer than the warm-up gets one
/// interval and 2 s of warm-up (every probe has started once) and a window of
/// at least three intervals.
fn span(interval: Duration, warmup: Duration, window: Duration) -> (Duration, Duration) {
    if interval > warmup {
        (interval + 2 * SECOND, window.max(3 * interval))
    } else {
        (warmup, window)
    }
}

/// Everything a run needs on disk, in one temporary directory.
struct Bench {
    dir: PathBuf,
    heat: PathBuf,
    monit: Option<PathBuf>,
    monit_note: String,
    check: PathBuf,
    hook: PathBuf,
    spawner: PathBuf,
    starts: PathBuf,
    state: PathBuf,
    /// nobody's uid, when the harness is root (user variants need both).
    nobody: Option<u32>,
    /// The metrics variant's port.
    metrics_port: u16,
    tick: f64,
    cores: usize,
}

fn run(opts: &Opts) -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let heat = opts.heat.clone().unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_heat")));
    let dir = std::env::temp_dir().join(format!("heat-bench-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // As root heat runs nothing from a directory others may write; nobody must
    // reach the check.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot chmod {}: {e}", dir.display()))?;
    let result = run_in(opts, &root, heat, &dir);
    if opts.keep {
        say!("files kept in {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(opts: &Opts, root: &Path, heat: PathBuf, dir: &Path) -> Result<(), String> {
    let started = Instant::now();
    let (check, hook, starts, check_build) = build_check(root, dir)?;
    let spawner = build_spawner(root, dir)?;
    let (monit, monit_note) = find_monit(opts);
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // SAFETY: geteuid has no preconditions.
    let root_user = unsafe { libc::geteuid() } == 0;
    let b = Bench {
        dir: dir.to_path_buf(),
        heat,
        monit,
        monit_note,
        check,
        hook,
        spawner,
        starts,
        state: dir.join("state"),
        nobody: if root_user { nobody_uid() } else { None },
        metrics_port: std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free port for the metrics variant: {e}"))?,
        tick,
        cores,
    };
    let mut report = Report::new(opts, &b);
    report.check_build = check_build;
    report.check_cpu_us = check_cpu_us(&b);

    let (variant_n, variants) = opts.variants(b.nobody.is_some());
    if b.nobody.is_none() {
        report.notes.push(if root_user {
            "heat with `user = \"nobody\"` skipped: no user nobody here.".into()
        } else {
            "heat with `user = \"nobody\"` skipped: the harness is not root.".into()
        });
    }
    for &n in opts.sizes() {
        let wl = Workload::new(n, SECOND);
        let mut tools = vec![HEAT];
        if n == variant_n {
            tools.extend(variants.iter().map(|&v| Tool::Heat(v)));
        }
        if b.monit.is_some() {
            tools.push(Tool::Monit);
        }
        for tool in tools {
            match measure_row(&b, opts, tool, wl, &mut report) {
                Err(e) if tool.is_heat() => return Err(e),
                Err(e) => {
                    say!("  {} failed: {e}", tool.name());
                    report.notes.push(format!("{} on {}: {e}", tool.name(), wl.label()));
                }
                Ok(()) => {}
            }
        }
    }
    measure_row(&b, opts, HEAT, Workload::new(1, SHORT), &mut report)?;

    // Too long for --quick: a warm-up of one 10 s interval, a 30 s window.
    // A failure here is a finding about heat at 10,000 probes, not a broken
    // harness, so it goes in the report.
    if !opts.quick {
        let big = Workload { n: BIG, interval: BIG_INTERVAL, flip: false };
        for tool in [HEAT, Tool::Spawner] {
            if let Err(e) = measure_row(&b, opts, tool, big, &mut report) {
                say!("  {} failed: {e}", tool.name());
                report.notes.push(format!("{} on {}: {e}", tool.name(), big.label()));
            }
        }
    }

    say!("the machine's timer floor: clock_nanosleep(TIMER_ABSTIME) every 10 ms ...");
    report.floor = timer_floor(opts.window.min(Duration::from_secs(10)));
    if let Some([p50, p99, max]) = report.floor {
        say!("  late p50 {} / p99 {} / max {}", ms(p50), ms(p99), ms(max));
    }
    say!("spawn ceiling and heat with {SPAWN_PROBES} x /bin/true @ 10ms ...");
    report.spawn = Some(spawn_bench(&b, opts)?);
    say!("heat -c with 1000 probes: start to first check, -t ...");
    report.startups.push(startup(&b, opts, Workload::new(1000, SECOND))?);
    if !opts.quick {
        let big = Workload { n: BIG, interval: BIG_INTERVAL, flip: false };
        say!("heat -c with {BIG} probes: start to first check, -t ...");
        match startup(&b, opts, big) {
            Ok(s) => report.startups.push(s),
            Err(e) => report.notes.push(format!("start-up with {BIG} probes: {e}")),
        }
    }
    report.elapsed = started.elapsed();

    let text = report.render();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    if let Some(path) = &opts.out {
        // The analysis written by hand below the marker outlives the figures.
        let kept = fs::read_to_string(path)
            .ok()
            .and_then(|old| old.find(NOTES_MARKER).map(|at| old[at..].to_string()));
        let text = match kept {
            Some(notes) => format!("{}\n\n{notes}", text.trim_end()),
            None => text,
        };
        fs::write(path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        say!("wrote {}", path.display());
    }
    Ok(())
}

/// How the check is built, cheapest first: without libc (x86-64 only), static,
/// then plain.
const CHECK_BUILDS: [&[&str]; 3] = [
    &[
        "-static",
        "-nostdlib",
        "-fno-stack-protector",
        "-fno-tree-loop-distribute-patterns",
        "-DNOLIBC",
    ],
    &["-static"],
    &[],
];

/// Compiles the check with the path of its output file baked in, keeping the
/// first build that compiles and works; the hook is the same program under
/// another name. Returns the check, the hook, the output file and the cc flags.
fn build_check(root: &Path, dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf, String), String> {
    let src = root.join("benches/check.c");
    let check = dir.join("check");
    let hook = dir.join("hook");
    let starts = dir.join("starts.log");
    let define = format!("-DSTARTS_PATH=\"{}\"", starts.display());
    let mut errors = Vec::new();
    for extra in CHECK_BUILDS {
        let out = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&check)
            .arg(&define)
            .args(extra)
            .arg(&src)
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run cc: {e}; install gcc or clang"))?;
        if !out.status.success() {
            errors.push(
                String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").to_string(),
            );
            continue;
        }
        let _ = fs::remove_file(&starts);
        let ran = Command::new(&check).arg("selftest").status().is_ok_and(|s| s.success());
        let wrote = read_starts(&starts).iter().any(|l| l.0 == "selftest" && l.2 == 'S');
        let _ = fs::remove_file(&starts);
        if ran && wrote {
            // Root's, and not writable by others: heat runs it as root and as nobody.
            fs::set_permissions(&check, fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("cannot chmod {}: {e}", check.display()))?;
            fs::hard_link(&check, &hook)
                .map_err(|e| format!("cannot link {}: {e}", hook.display()))?;
            return Ok((check, hook, starts, format!("cc -O2 {}", extra.join(" "))));
        }
        errors.push(format!("the build with {extra:?} did not record its start"));
    }
    Err(format!("cannot build {}: {}", src.display(), errors.join("; ")))
}

/// Compiles benches/spawner.c, the plain scheduler heat is held against at
/// 10,000 probes.
fn build_spawner(root: &Path, dir: &Path) -> Result<PathBuf, String> {
    let src = root.join("benches/spawner.c");
    let out = dir.join("spawner");
    let built = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run cc: {e}; install gcc or clang"))?;
    if !built.status.success() {
        let err = String::from_utf8_lossy(&built.stderr);
        return Err(format!(
            "cannot build {}: {}",
            src.display(),
            err.lines().next().unwrap_or("")
        ));
    }
    Ok(out)
}

fn nobody_uid() -> Option<u32> {
    // SAFETY: the name is NUL-terminated; the entry is read before any other
    // call could reuse it.
    let pw = unsafe { libc::getpwnam(c"nobody".as_ptr()) };
    // SAFETY: checked non-null just here.
    (!pw.is_null()).then(|| unsafe { (*pw).pw_uid })
}

fn find_monit(opts: &Opts) -> (Option<PathBuf>, String) {
    if opts.no_monit {
        return (None, "Monit skipped (--no-monit).".into());
    }
    if let Some(p) = which("monit") {
        return (Some(p), String::new());
    }
    if opts.no_install {
        return (None, "Monit skipped: not installed and --no-install was given.".into());
    }
    say!("monit missing: apt-get install -y monit ...");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    // A fresh machine's package lists may be empty: update once, then retry.
    let ok = apt(&["install", "-y", "monit"])
        || (apt(&["update", "-qq"]) && apt(&["install", "-y", "monit"]));
    match which("monit") {
        Some(p) if ok => (Some(p), String::new()),
        _ => (None, "Monit skipped: not installed, and `apt-get install -y monit` failed.".into()),
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/bin", "/usr/sbin", "/sbin", "/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).map(|m| m.is_file()).unwrap_or(false))
}

/// The check's CPU per run (its own and the exec), from RUSAGE_CHILDREN.
fn check_cpu_us(b: &Bench) -> f64 {
    let runs = 200;
    let before = children_cpu_us();
    for _ in 0..runs {
        let _ = Command::new(&b.check).arg("calibrate").status();
    }
    let _ = fs::remove_file(&b.starts);
    (children_cpu_us() - before) / runs as f64
}

fn children_cpu_us() -> f64 {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

// ---------------------------------------------------------------------------
// One run of one tool on one workload.

/// What /proc says at one instant.
#[derive(Clone, Default)]
struct Snap {
    /// Busy ticks of the whole machine.
    busy: u64,
    /// Ticks the hypervisor gave to others (inside `busy`).
    steal: u64,
    /// The tool's own threads (utime + stime, exited threads included).
    own: u64,
    /// The tool plus its reaped descendants (adds cutime + cstime).
    tree: u64,
    /// This harness.
    me: u64,
    /// The tool's live threads, CPU in ns (precise, where the thread set is stable).
    threads: BTreeMap<u32, f64>,
}

impl Snap {
    fn take(pid: u32) -> Snap {
        let f = stat_fields(&format!("/proc/{pid}/stat"));
        let me = stat_fields("/proc/self/stat");
        let (busy, steal) = machine_busy();
        let field = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
        Snap {
            busy,
            steal,
            own: field(&f, 10) + field(&f, 11),
            tree: field(&f, 10) + field(&f, 11) + field(&f, 12) + field(&f, 13),
            me: field(&me, 10) + field(&me, 11),
            threads: thread_cpu_ns(pid),
        }
    }
}

/// The numeric fields after the command name of a /proc stat file: index 0 is
/// field 4 (ppid); utime, stime, cutime, cstime (fields 14..=17) are 10..=13.
fn stat_fields(path: &str) -> Vec<u64> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace().skip(1).map(|s| s.parse().unwrap_or(0)).collect()
}

/// Busy and stolen ticks of the whole machine.
fn machine_busy() -> (u64, u64) {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = text.lines().next().unwrap_or("");
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|s| s.parse().unwrap_or(0)).collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest is inside user)
    ([0, 1, 2, 5, 6, 7].iter().map(|&i| at(i)).sum(), at(7))
}

fn thread_cpu_ns(pid: u32) -> BTreeMap<u32, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for t in tasks.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) else { continue };
        let sched = fs::read_to_string(t.path().join("sched")).unwrap_or_default();
        let ms = sched
            .lines()
            .find(|l| l.starts_with("se.sum_exec_runtime"))
            .and_then(|l| l.rsplit(':').next())
            .and_then(|v| v.trim().parse::<f64>().ok());
        if let Some(ms) = ms {
            out.insert(tid, ms * 1e6);
        }
    }
    out
}

/// The tool's own CPU between two snapshots, in ns, and whether it is precise:
/// the threads' sched times when the thread set did not change, else ticks.
fn own_cpu_ns(s0: &Snap, s1: &Snap, tick: f64) -> (f64, bool) {
    if !s0.threads.is_empty() && s0.threads.keys().eq(s1.threads.keys()) {
        (s1.threads.values().sum::<f64>() - s0.threads.values().sum::<f64>(), true)
    } else {
        ((s1.own - s0.own) as f64 / tick * 1e9, false)
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// The raw material of one run.
struct Raw {
    w0: i64,
    w1: i64,
    cpu_ns: f64,
    cpu_precise: bool,
    rss: Vec<u64>,
    fds: usize,
    fds_min: usize,
    outside_pct: f64,
    steal_pct: f64,
    lines: Vec<(String, i64, char)>,
    log: Option<LogStats>,
}

/// What heat's log of one run says beyond the check runs.
#[derive(Clone, Default)]
struct LogStats {
    /// FAIL and ERR entries other than the `flip` probe's own failures.
    trouble: usize,
    /// The first of those, its header and first line.
    first_trouble: Option<String>,
    /// `… delayed: all N run slots are in use …` entries.
    delayed: usize,
    /// The start entry's `containment: …`.
    containment: Option<String>,
}

/// Reads heat's log: an entry is a header `UNIX : TYPE : NAME :` followed by
/// its lines, each prefixed with `> `.
fn read_log(path: &Path) -> LogStats {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut st = LogStats::default();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(body) = line.strip_prefix("> ") {
            if body.contains(" delayed: all ") && body.contains("run slots are in use") {
                st.delayed += 1;
            }
            if let Some(c) = body.strip_prefix("containment: ") {
                st.containment.get_or_insert_with(|| c.to_string());
            }
            continue;
        }
        let mut f = line.splitn(3, " : ");
        let (Some(unix), Some(level), Some(name)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if unix.parse::<u64>().is_err() {
            continue;
        }
        let flip_failed = level == "FAIL" && name.starts_with("[flip] ");
        if (level == "FAIL" || level == "ERR") && !flip_failed {
            st.trouble += 1;
            if st.first_trouble.is_none() {
                let next = lines.peek().filter(|l| l.starts_with("> ")).copied().unwrap_or("");
                st.first_trouble = Some(format!("{line} {next}").trim().to_string());
            }
        }
    }
    st
}

/// Measures one tool on one workload and adds the row to the report, with a
/// note when heat's log disagrees with the variant or reports trouble.
fn measure_row(
    b: &Bench,
    opts: &Opts,
    tool: Tool,
    wl: Workload,
    report: &mut Report,
) -> Result<(), String> {
    say!("{} on {} ...", tool.name(), wl.label());
    let m = measure(b, opts, tool, wl)?;
    say!("  {}", m.summary());
    if let (Tool::Heat(v), Some(log)) = (tool, &m.log) {
        let seen = log.containment.as_deref().unwrap_or("not logged");
        if seen.starts_with("process groups") != v.process_groups {
            report.notes.push(format!(
                "{} on {}: heat's log says `containment: {seen}`",
                tool.name(),
                wl.label()
            ));
        }
        if let Some(first) = &log.first_trouble {
            report.notes.push(format!(
                "{} on {}: heat logged {} FAIL/ERR entries besides flip's failures; the first: `{first}`",
                tool.name(),
                wl.label(),
                log.trouble
            ));
        }
    }
    report.rows.push(m);
    Ok(())
}

/// Repeats a run while the machine is loaded, and keeps the quietest.
fn measure(b: &Bench, opts: &Opts, tool: Tool, wl: Workload) -> Result<Metrics, String> {
    let mut best: Option<Metrics> = None;
    // The large workload's runs last 42 s each: fewer tries.
    let tries = if wl.n >= BIG { opts.tries().min(2) } else { opts.tries() };
    for attempt in 1..=tries {
        let raw = run_once(b, opts, tool, wl)?;
        let mut m = Metrics::compute(tool, wl, &raw);
        m.tries = attempt;
        let quiet = m.outside_pct <= NOISY_PCT;
        if best.as_ref().is_none_or(|b| m.outside_pct < b.outside_pct) {
            best = Some(m);
        }
        if quiet {
            break;
        }
        if attempt < tries {
            say!("  outside load {:.0} %, repeating", raw.outside_pct);
        }
    }
    let mut m = best.ok_or("no run was made")?;
    m.tries = m.tries.max(1);
    m.noisy = m.outside_pct > NOISY_PCT;
    if tool != Tool::Monit && m.executed == 0 {
        return Err(format!(
            "{} recorded no check runs on {}: the harness is broken",
            tool.name(),
            wl.label()
        ));
    }
    if tool == Tool::Monit && m.all_starts == 0 {
        return Err(format!("recorded no check runs on {}", wl.label()));
    }
    Ok(m)
}

fn run_once(b: &Bench, opts: &Opts, tool: Tool, wl: Workload) -> Result<Raw, String> {
    let _ = fs::remove_file(&b.starts);
    let _ = fs::remove_file(&b.state);
    let log = b.dir.join("heat.log");
    let _ = fs::remove_file(&log);
    fs::write(&b.state, "0").map_err(|e| format!("cannot write the state file: {e}"))?;
    if tool.nobody() {
        // nobody's checks append to the starts file and flip the state file,
        // but may not create files in the directory.
        let uid = b.nobody.ok_or("no user nobody to run checks as")?;
        fs::File::create(&b.starts).map_err(|e| format!("cannot create the starts file: {e}"))?;
        for f in [&b.starts, &b.state] {
            std::os::unix::fs::chown(f, Some(uid), None)
                .map_err(|e| format!("cannot chown {}: {e}", f.display()))?;
        }
    }
    let mut child = spawn_tool(b, tool, wl)?;
    let scraper =
        matches!(tool, Tool::Heat(Variant { metrics: true, .. })).then(|| Scraper::start(b));
    let result = observe(b, wl.span(opts), tool, &mut child);
    let scrapes = scraper.map(Scraper::stop);
    stop(&mut child);
    if let Some((ok, failed)) = scrapes
        && (ok == 0 || failed > 0)
    {
        return Err(format!("{}: {ok} scrapes of /metrics answered, {failed} failed", tool.name()));
    }
    let mut raw = result?;
    // a check or hook started just before the stop may still be writing its line
    std::thread::sleep(Duration::from_millis(100));
    raw.lines = read_starts(&b.starts);
    if tool.is_heat() {
        raw.log = Some(read_log(&log));
    }
    Ok(raw)
}

/// Where the metrics variant listens: a port free now, of the run's own.
fn metrics_addr(b: &Bench) -> String {
    format!("127.0.0.1:{}", b.metrics_port)
}

/// Prometheus's part: `GET /metrics` every second, as a scrape would.
struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(u64, u64)>,
}

impl Scraper {
    fn start(b: &Bench) -> Scraper {
        use std::io::{Read, Write};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (addr, done) = (metrics_addr(b), stop.clone());
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed, mut listening) = (0, 0, false);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let got = std::net::TcpStream::connect(&addr).and_then(|mut s| {
                    s.set_read_timeout(Some(Duration::from_secs(5)))?;
                    write!(s, "GET /metrics HTTP/1.1\r\nHost: heat\r\nConnection: close\r\n\r\n")?;
                    let mut body = String::new();
                    s.read_to_string(&mut body)?;
                    Ok(body)
                });
                match got {
                    Ok(b) if b.starts_with("HTTP/1.1 200") && b.contains("heat_check_success") => {
                        listening = true;
                        ok += 1;
                    }
                    // Before heat has started listening, or before its first result.
                    _ if !listening => {}
                    _ => failed += 1,
                }
                std::thread::sleep(SECOND);
            }
            (ok, failed)
        });
        Scraper { stop, thread }
    }

    /// (answered, failed after the first answer).
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or((0, 1))
    }
}

fn spawn_tool(b: &Bench, tool: Tool, wl: Workload) -> Result<Child, String> {
    let (prog, args) = match tool {
        Tool::Heat(v) => {
            let cfg = b.dir.join("heat.toml");
            write_heat_config(b, &cfg, wl, None, v.nobody)?;
            if v.metrics {
                let mut t = fs::read_to_string(&cfg).map_err(|e| format!("cannot read {e}"))?;
                t.insert_str(0, &format!("metrics_listen = \"{}\"\n", metrics_addr(b)));
                fs::write(&cfg, t).map_err(|e| format!("cannot write {}: {e}", cfg.display()))?;
            }
            if v.nobody {
                expect_nobody(b, &cfg, wl)?;
            }
            (b.heat.clone(), vec!["-c".into(), cfg.display().to_string()])
        }
        Tool::Spawner => {
            let args = [wl.n.to_string(), wl.interval.as_millis().to_string()];
            (b.spawner.clone(), [&args[..], &[b.check.display().to_string()]].concat())
        }
        Tool::Monit => {
            let cfg = b.dir.join("monitrc");
            write_monitrc(b, &cfg, wl)?;
            let monit = b.monit.clone().ok_or("monit is not installed")?;
            (monit, vec!["-c".into(), cfg.display().to_string(), "-I".into()])
        }
    };
    let out = fs::File::create(b.dir.join(format!("{}.out", tool.slug())))
        .map_err(|e| format!("cannot create the tool's output file: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("cannot dup the output file: {e}"))?;
    let mut cmd = Command::new(&prog);
    match tool {
        Tool::Heat(Variant { process_groups: true, .. }) => {
            cmd.env("HEAT_CONTAINMENT", "process-groups");
        }
        _ => {
            cmd.env_remove("HEAT_CONTAINMENT");
        }
    }
    cmd.args(&args)
        .current_dir(&b.dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", prog.display()))
}

/// `heat -t` must show every probe running as nobody: the key took effect.
fn expect_nobody(b: &Bench, cfg: &Path, wl: Workload) -> Result<(), String> {
    let out = Command::new(&b.heat)
        .arg("-c")
        .arg(cfg)
        .arg("-t")
        .output()
        .map_err(|e| format!("cannot run heat -t: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let seen = text.lines().filter(|l| l.starts_with("user = nobody")).count();
    let want = wl.n + usize::from(wl.flip);
    if !out.status.success() || seen != want {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "heat -t shows {seen} of {want} probes as user nobody ({}): {}",
            out.status,
            err.trim()
        ));
    }
    Ok(())
}

/// Waits out the warm-up, then samples the tool over the window.
fn observe(
    b: &Bench,
    (warmup, window): (Duration, Duration),
    tool: Tool,
    child: &mut Child,
) -> Result<Raw, String> {
    let pid = child.id();
    let until = Instant::now() + warmup;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        alive(b, tool, child)?;
    }
    let w0 = now_ns();
    let s0 = Snap::take(pid);
    let t0 = Instant::now();
    let mut rss = Vec::new();
    let mut fds_min = usize::MAX;
    while t0.elapsed() < window {
        std::thread::sleep(Duration::from_millis(250).min(window.saturating_sub(t0.elapsed())));
        rss.extend(rss_kb(pid));
        fds_min = fds_min.min(fd_count(pid));
    }
    let s1 = Snap::take(pid);
    let w1 = now_ns();
    let fds = fd_count(pid);
    let fds_min = fds_min.min(fds);
    alive(b, tool, child)?;

    let span = t0.elapsed().as_secs_f64();
    let ticks = |v: u64| v as f64 / b.tick;
    let outside = ticks(s1.busy - s0.busy) - ticks(s1.tree - s0.tree) - ticks(s1.me - s0.me);
    let outside_pct = (outside / (span * b.cores as f64) * 100.0).max(0.0);
    let steal_pct = ticks(s1.steal - s0.steal) / (span * b.cores as f64) * 100.0;
    let (cpu_ns, stable) = own_cpu_ns(&s0, &s1, b.tick);
    let lines = Vec::new();
    Ok(Raw {
        w0,
        w1,
        cpu_ns,
        cpu_precise: stable,
        rss,
        fds,
        fds_min,
        outside_pct,
        steal_pct,
        lines,
        log: None,
    })
}

fn alive(b: &Bench, tool: Tool, child: &mut Child) -> Result<(), String> {
    match child.try_wait() {
        Ok(None) => Ok(()),
        Ok(Some(status)) => {
            let out =
                fs::read_to_string(b.dir.join(format!("{}.out", tool.slug()))).unwrap_or_default();
            let tail: Vec<&str> = out.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(format!("{} exited early ({status}): {}", tool.name(), tail.join(" | ")))
        }
        Err(e) => Err(format!("cannot wait for {}: {e}", tool.name())),
    }
}

/// TERM, then KILL to the tool's group after 15 s.
fn stop(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill has no memory preconditions; pid is our unreaped child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: as above; the group is the tool's own (process_group(0)).
    unsafe { libc::killpg(pid, libc::SIGKILL) };
    let _ = child.wait();
}

fn read_starts(path: &Path) -> Vec<(String, i64, char)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let name = it.next()?.to_string();
            let ns = it.next()?.parse().ok()?;
            let kind = it.next()?.chars().next()?;
            Some((name, ns, kind))
        })
        .collect()
}

fn probe_names(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("p{i}"))
}

/// heat.toml for a workload; `cmd` replaces the check (and drops `flip`);
/// `nobody` runs every probe's check and hook as nobody.
fn write_heat_config(
    b: &Bench,
    path: &Path,
    wl: Workload,
    cmd: Option<&str>,
    nobody: bool,
) -> Result<(), String> {
    let mut t = String::new();
    let _ = writeln!(t, "log = \"{}\"", b.dir.join("heat.log").display());
    // The default's cost (boards published), at a path of the run's own.
    let _ = writeln!(t, "control_socket = \"{}\"\n", b.dir.join("heat.sock").display());
    let interval = toml_dur(wl.interval);
    let check = b.check.display();
    let user = if nobody { "user = \"nobody\"\n" } else { "" };
    for name in probe_names(wl.n) {
        let command = match cmd {
            Some(c) => format!("[\"{c}\"]"),
            None => format!("[\"{check}\", \"{name}\"]"),
        };
        let _ = writeln!(t, "[probe.{name}]\ncommand = {command}\ninterval = {interval}\n{user}");
    }
    if cmd.is_none() && wl.flip {
        let _ = writeln!(
            t,
            "[probe.flip]\ncommand = [\"{check}\", \"flip\", \"{}\"]\ninterval = {interval}\n\
             fail = \"{}\"\n{user}",
            b.state.display(),
            b.hook.display()
        );
    }
    fs::write(path, t).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_monitrc(b: &Bench, path: &Path, wl: Workload) -> Result<(), String> {
    if wl.interval != SECOND {
        return Err("Monit's shortest cycle is 1 s".into());
    }
    let d = b.dir.display();
    let mut t = format!(
        "set daemon 1\nset logfile {d}/monit.log\nset idfile {d}/monit.id\n\
         set statefile {d}/monit.state\nset pidfile {d}/monit.pid\n\n"
    );
    let check = b.check.display();
    for name in probe_names(wl.n) {
        // Monit refuses a program check without a test; this one never fires.
        let _ = writeln!(
            t,
            "check program {name} with path \"{check} {name}\"\n  if status != 0 then alert"
        );
    }
    if wl.flip {
        let _ = writeln!(
            t,
            "check program flip with path \"{check} flip {}\"\n  if status != 0 then exec \"{}\"",
            b.state.display(),
            b.hook.display()
        );
    }
    fs::write(path, t).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // Monit refuses a control file others can read.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))
}

fn toml_dur(d: Duration) -> String {
    if d.subsec_nanos() == 0 { d.as_secs().to_string() } else { format!("\"{}ms\"", d.as_millis()) }
}

fn dur(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

// ---------------------------------------------------------------------------
// Figures.

struct Metrics {
    tool: Tool,
    wl: Workload,
    executed: usize,
    expected: f64,
    all_starts: usize,
    dev_ms: Option<[f64; 3]>,
    jitter_ms: Option<[f64; 3]>,
    react_ms: Option<[f64; 2]>,
    reactions: usize,
    failures: usize,
    cpu_per_check_us: Option<f64>,
    cpu_precise: bool,
    cpu_pct: f64,
    rss_mb: f64,
    fds: usize,
    fds_min: usize,
    outside_pct: f64,
    steal_pct: f64,
    tries: usize,
    noisy: bool,
    log: Option<LogStats>,
}

impl Metrics {
    fn compute(tool: Tool, wl: Workload, raw: &Raw) -> Metrics {
        let iv = wl.interval.as_nanos() as i64;
        let in_window = |ns: i64| ns >= raw.w0 && ns < raw.w1;
        let mut by_probe: HashMap<&str, Vec<i64>> = HashMap::new();
        for (name, ns, kind) in &raw.lines {
            if *kind != 'H' && name != "flip" && in_window(*ns) {
                by_probe.entry(name).or_default().push(*ns);
            }
        }
        let window_s = (raw.w1 - raw.w0) as f64 / 1e9;
        let executed = by_probe.values().map(Vec::len).sum();
        let all_starts = raw.lines.iter().filter(|l| l.2 != 'H').count();
        let checks_in_window = raw.lines.iter().filter(|l| l.2 != 'H' && in_window(l.1)).count();

        let (mut devs, mut jitter) = (Vec::new(), Vec::new());
        for starts in by_probe.values_mut() {
            starts.sort_unstable();
            deviations(starts, iv, &mut devs, &mut jitter);
        }
        let dev_ms = percentiles(&mut devs);
        let jitter_ms = percentiles(&mut jitter);

        let (react, failures) = reactions(&raw.lines, &in_window);
        let mut react = react;
        let reactions = react.len();
        let react_ms = percentiles(&mut react).map(|[p50, p99, _]| [p50, p99]);

        let mut rss = raw.rss.clone();
        rss.sort_unstable();
        Metrics {
            tool,
            wl,
            executed,
            expected: wl.n as f64 * window_s / wl.interval.as_secs_f64(),
            all_starts,
            dev_ms,
            jitter_ms,
            react_ms,
            reactions,
            failures,
            cpu_per_check_us: (checks_in_window > 0)
                .then(|| raw.cpu_ns / 1e3 / checks_in_window as f64),
            cpu_precise: raw.cpu_precise,
            cpu_pct: raw.cpu_ns / 1e9 / window_s * 100.0,
            rss_mb: rss.get(rss.len() / 2).copied().unwrap_or(0) as f64 / 1024.0,
            fds: raw.fds,
            fds_min: raw.fds_min,
            outside_pct: raw.outside_pct,
            steal_pct: raw.steal_pct,
            tries: 0,
            noisy: false,
            log: raw.log.clone(),
        }
    }

    fn runs_pct(&self) -> f64 {
        self.executed as f64 / self.expected * 100.0
    }

    fn summary(&self) -> String {
        format!(
            "runs {}/{:.0} ({:.1} %), deviation p50/p99/max {}, to nearest slot p99/max {}, \
             reaction p50/p99 {}, \
             CPU/check {}, RSS {:.1} MB, fds {} (fewest {}), outside load {:.0} % (steal {:.0} %){}",
            self.executed,
            self.expected,
            self.runs_pct(),
            self.dev_text(),
            self.jitter_text(),
            self.react_text(),
            self.cpu_text(),
            self.rss_mb,
            self.fds,
            self.fds_min,
            self.outside_pct,
            self.steal_pct,
            if self.noisy { " (noisy)" } else { "" }
        )
    }

    fn dev_text(&self) -> String {
        match self.dev_ms {
            Some([a, b, c]) => format!("{} / {} / {}", ms(a), ms(b), ms(c)),
            None => "—".into(),
        }
    }

    fn jitter_text(&self) -> String {
        match self.jitter_ms {
            Some([_, b, c]) => format!("{} / {}", ms(b), ms(c)),
            None => "—".into(),
        }
    }

    fn react_text(&self) -> String {
        match self.react_ms {
            Some([a, b]) => format!("{} / {} ({}/{})", ms(a), ms(b), self.reactions, self.failures),
            None => format!("— (0/{})", self.failures),
        }
    }

    fn tries_text(&self) -> String {
        if self.tries > 1 { format!(" (try {})", self.tries) } else { String::new() }
    }

    fn load_text(&self) -> String {
        format!(
            "{:.0} % ({:.0} %){}{}",
            self.outside_pct,
            self.steal_pct,
            if self.noisy { " **noisy**" } else { "" },
            self.tries_text()
        )
    }

    fn cpu_text(&self) -> String {
        match self.cpu_per_check_us {
            Some(v) => format!("{v:.0} µs{}", if self.cpu_precise { "" } else { " (ticks)" }),
            None => "—".into(),
        }
    }
}

/// |start − ideal| in ms for a probe's starts (those inside the window, sorted).
/// The ideal of run k (counted from the probe's first run in the window) is
/// A + k·interval, where A is the point of the probe's phase grid nearest its
/// first start, and the phase is the circular median of (start mod interval)
/// over its starts. A run that came late, or not at all, moves every later
/// run off its ideal: drift and missed runs show as deviation. `jitter` gets each
/// start's distance to the nearest point of the grid instead, which a skipped
/// run does not move (runs executed / expected counts those).
fn deviations(starts: &[i64], iv: i64, out: &mut Vec<f64>, jitter: &mut Vec<f64>) {
    let Some(&first) = starts.first() else { return };
    let anchor = first.rem_euclid(iv);
    let mut unwrapped: Vec<i64> = starts
        .iter()
        .map(|s| {
            let r = s.rem_euclid(iv);
            let d = r - anchor;
            if d > iv / 2 {
                r - iv
            } else if d < -iv / 2 {
                r + iv
            } else {
                r
            }
        })
        .collect();
    unwrapped.sort_unstable();
    let phase = unwrapped[unwrapped.len() / 2].rem_euclid(iv);
    let mut a = first - (first - phase).rem_euclid(iv);
    if first - a > iv / 2 {
        a += iv;
    }
    for (k, &s) in starts.iter().enumerate() {
        out.push((s - (a + k as i64 * iv)).abs() as f64 / 1e6);
        let r = (s - phase).rem_euclid(iv);
        jitter.push(r.min(iv - r) as f64 / 1e6);
    }
}

/// Failure → reaction: for each failing run of `flip` that started in the
/// window, the start of the first hook after it (and before flip's next
/// failure) minus the failing run's start. Returns the delays (ms) and the
/// number of failures.
fn reactions(lines: &[(String, i64, char)], in_window: &dyn Fn(i64) -> bool) -> (Vec<f64>, usize) {
    let mut fails: Vec<i64> =
        lines.iter().filter(|l| l.0 == "flip" && l.2 == 'F').map(|l| l.1).collect();
    let mut hooks: Vec<i64> = lines.iter().filter(|l| l.2 == 'H').map(|l| l.1).collect();
    fails.sort_unstable();
    hooks.sort_unstable();
    let mut delays = Vec::new();
    let mut counted = 0;
    for (i, &f) in fails.iter().enumerate() {
        if !in_window(f) {
            continue;
        }
        counted += 1;
        let next = fails.get(i + 1).copied().unwrap_or(i64::MAX);
        let h = hooks.partition_point(|&h| h < f);
        if let Some(&h) = hooks.get(h).filter(|&&h| h < next) {
            delays.push((h - f) as f64 / 1e6);
        }
    }
    (delays, counted)
}

/// p50, p99, max by nearest rank.
fn percentiles(v: &mut [f64]) -> Option<[f64; 3]> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some([at(50.0), at(99.0), v[v.len() - 1]])
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

// ---------------------------------------------------------------------------
// Spawning as fast as possible, and heat's start-up.

struct Spawn {
    ceiling_1: f64,
    ceiling_n: f64,
    heat_rate: f64,
    heat_cpu_pct: f64,
    outside_pct: f64,
    steal_pct: f64,
}

/// How late one thread wakes when it sleeps to absolute deadlines every 10 ms
/// for `d`: p50, p99, max in ms. The best any scheduler can do on this machine.
fn timer_floor(d: Duration) -> Option<[f64; 3]> {
    let step = SHORT.as_nanos() as i64;
    let mono = || {
        // SAFETY: ts is a valid out pointer.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64
    };
    let mut deadline = mono();
    let mut late = Vec::new();
    for _ in 0..(d.as_nanos() as i64 / step) {
        deadline += step;
        let ts = libc::timespec {
            tv_sec: (deadline / 1_000_000_000) as libc::time_t,
            tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: ts is valid; a null remainder is allowed with TIMER_ABSTIME.
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        late.push((mono() - deadline) as f64 / 1e6);
    }
    percentiles(&mut late)
}

/// `threads` loops of spawn + wait of /bin/true (process_group(0), as heat
/// spawns) for `d`: starts per second.
fn ceiling(threads: usize, d: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = Command::new("/bin/true")
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .process_group(0)
                        .status()
                        .is_ok();
                    if ok {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(d);
    stop.store(true, Ordering::Relaxed);
    let n = count.load(Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    for h in handles {
        let _ = h.join();
    }
    n as f64 / secs
}

fn spawn_bench(b: &Bench, opts: &Opts) -> Result<Spawn, String> {
    let d = if opts.quick { SECOND } else { Duration::from_secs(5) };
    let ceiling_1 = ceiling(1, d);
    let ceiling_n = ceiling(b.cores.max(2), d);

    let cfg = b.dir.join("spawn.toml");
    let log = b.dir.join("heat.log");
    let _ = fs::remove_file(&log);
    let wl = Workload { n: SPAWN_PROBES, interval: SHORT, flip: false };
    write_heat_config(b, &cfg, wl, Some("/bin/true"), false)?;
    let mut child = Command::new(&b.heat)
        .arg("-c")
        .arg(&cfg)
        .env_remove("HEAT_CONTAINMENT")
        .current_dir(&b.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", b.heat.display()))?;
    let pid = child.id();
    let result = (|| -> Result<Spawn, String> {
        std::thread::sleep(SECOND);
        alive(b, HEAT, &mut child)?;
        let c0 = count_entries(&log);
        let s0 = Snap::take(pid);
        let t0 = Instant::now();
        std::thread::sleep(d);
        let s1 = Snap::take(pid);
        let c1 = count_entries(&log);
        let secs = t0.elapsed().as_secs_f64();
        alive(b, HEAT, &mut child)?;
        let ticks = |v: u64| v as f64 / b.tick;
        let outside = ticks(s1.busy - s0.busy) - ticks(s1.tree - s0.tree) - ticks(s1.me - s0.me);
        Ok(Spawn {
            ceiling_1,
            ceiling_n,
            heat_rate: c1.saturating_sub(c0) as f64 / secs,
            heat_cpu_pct: own_cpu_ns(&s0, &s1, b.tick).0 / 1e9 / secs * 100.0,
            outside_pct: (outside / (secs * b.cores as f64) * 100.0).max(0.0),
            steal_pct: ticks(s1.steal - s0.steal) / (secs * b.cores as f64) * 100.0,
        })
    })();
    stop(&mut child);
    let s = result?;
    if s.heat_rate <= 0.0 {
        return Err("heat logged no /bin/true runs in the spawn benchmark".into());
    }
    say!(
        "  ceiling {:.0}/s (1 thread {:.0}/s), heat {:.0}/s = {:.0} %",
        s.ceiling_n.max(s.ceiling_1),
        s.ceiling_1,
        s.heat_rate,
        s.heat_rate / s.ceiling_n.max(s.ceiling_1) * 100.0
    );
    Ok(s)
}

/// Entries heat logged for /bin/true runs so far (one per finished check).
fn count_entries(log: &Path) -> usize {
    fs::read_to_string(log).map(|t| t.matches("] /bin/true :").count()).unwrap_or(0)
}

struct Startup {
    n: usize,
    first_check_ms: f64,
    validate_ms: f64,
}

impl Startup {
    fn text(&self) -> String {
        format!("{:.1} ms / {:.1} ms", self.first_check_ms, self.validate_ms)
    }
}

/// heat -c with the workload's probes: spawn to the first check's own start,
/// and the wall time of `-t` (median of several).
fn startup(b: &Bench, opts: &Opts, wl: Workload) -> Result<Startup, String> {
    let cfg = b.dir.join("heat.toml");
    write_heat_config(b, &cfg, wl, None, false)?;
    let mut firsts = Vec::new();
    for _ in 0..if opts.quick { 2 } else { 5 } {
        let _ = fs::remove_file(&b.starts);
        let t0 = now_ns();
        let mut child = spawn_tool_raw(b, &cfg)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut first = None;
        while Instant::now() < deadline && first.is_none() {
            std::thread::sleep(Duration::from_millis(1));
            first = read_starts(&b.starts).iter().filter(|l| l.2 != 'H').map(|l| l.1).min();
        }
        stop(&mut child);
        let first = first.ok_or(format!("heat -c with {} probes ran no check within 5 s", wl.n))?;
        firsts.push((first - t0) as f64 / 1e6);
    }
    let mut walls = Vec::new();
    for _ in 0..if opts.quick { 3 } else { 5 } {
        let t0 = Instant::now();
        let status = Command::new(&b.heat)
            .arg("-c")
            .arg(&cfg)
            .arg("-t")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run heat -t: {e}"))?;
        if !status.success() {
            return Err(format!("heat -c {} -t failed: {status}", cfg.display()));
        }
        walls.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let s =
        Startup { n: wl.n, first_check_ms: median(&mut firsts), validate_ms: median(&mut walls) };
    say!("  first check after {:.1} ms, -t in {:.1} ms", s.first_check_ms, s.validate_ms);
    Ok(s)
}

fn spawn_tool_raw(b: &Bench, cfg: &Path) -> Result<Child, String> {
    Command::new(&b.heat)
        .arg("-c")
        .arg(cfg)
        .env_remove("HEAT_CONTAINMENT")
        .current_dir(&b.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", b.heat.display()))
}

// ---------------------------------------------------------------------------
// The report.

struct Report {
    quick: bool,
    command: String,
    date: String,
    machine: String,
    versions: String,
    monit_note: String,
    warmup: Duration,
    window: Duration,
    check_cpu_us: f64,
    check_build: String,
    rows: Vec<Metrics>,
    spawn: Option<Spawn>,
    floor: Option<[f64; 3]>,
    startups: Vec<Startup>,
    notes: Vec<String>,
    elapsed: Duration,
}

impl Report {
    fn new(opts: &Opts, b: &Bench) -> Report {
        let mut command = String::from("cargo bench --bench compare --");
        if opts.quick {
            command.push_str(" --quick");
        }
        command.push_str(" --out BENCHMARKS.md");
        let out = |prog: &Path, arg: &str| {
            Command::new(prog)
                .arg(arg)
                .output()
                .ok()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string()
                })
                .unwrap_or_else(|| "unknown".into())
        };
        let model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mem = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
            })
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB RAM", kb / 1024.0 / 1024.0))
            .unwrap_or_default();
        let monit = match &b.monit {
            Some(m) => out(m, "-V"),
            None => "not measured".into(),
        };
        Report {
            quick: opts.quick,
            command,
            date: out(Path::new("date"), "-u").trim().to_string(),
            machine: format!("{} cores ({model}), {mem}, Linux {}", b.cores, kernel.trim()),
            versions: format!(
                "{}; {}; {}",
                out(&b.heat, "--version"),
                monit,
                out(Path::new("rustc"), "--version")
            ),
            monit_note: b.monit_note.clone(),
            warmup: opts.warmup,
            window: opts.window,
            check_cpu_us: 0.0,
            check_build: String::new(),
            rows: Vec::new(),
            spawn: None,
            floor: None,
            startups: Vec::new(),
            notes: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    fn row(&self, tool: Tool, n: usize, interval: Duration) -> Option<&Metrics> {
        self.rows.iter().find(|m| m.tool == tool && m.wl.n == n && m.wl.interval == interval)
    }

    fn render(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "# heat benchmarks\n");
        if self.quick {
            let _ = writeln!(
                t,
                "**A `--quick` run (short window, N ≤ 100, one heat variant, no 10,000-probe \
                 run): it proves the harness works; its figures are not the figures of record.**\n"
            );
        }
        let noisy = self.rows.iter().filter(|m| m.noisy).count();
        if noisy > 0 {
            let _ = writeln!(
                t,
                "**{noisy} of {} runs stayed noisy (outside load > {NOISY_PCT:.0} % on every \
                 try): the machine was busy; repeat on a quiet machine before quoting them.**\n",
                self.rows.len()
            );
        }
        let _ = writeln!(t, "- Date: {}", self.date);
        let _ = writeln!(t, "- Machine: {}", self.machine);
        let _ = writeln!(t, "- Versions: {}", self.versions);
        let _ = writeln!(
            t,
            "- Reproduce: `{}` (took {:.0} s)",
            self.command,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            t,
            "- Each run: {} warm-up, then a {} window. The check (`{}`) costs {:.0} µs of CPU \
             per run, exec included (RUSAGE_CHILDREN over 200 runs).",
            dur(self.warmup),
            dur(self.window),
            self.check_build,
            self.check_cpu_us
        );
        if self.rows.iter().any(|m| m.wl.n == BIG) {
            let (warmup, window) = span(BIG_INTERVAL, self.warmup, self.window);
            let _ = writeln!(
                t,
                "- {BIG_TEXT} probes @ {}: {} warm-up (one interval and 2 s), then a {} window.",
                dur(BIG_INTERVAL),
                dur(warmup),
                dur(window)
            );
        }
        if !self.monit_note.is_empty() {
            let _ = writeln!(t, "- **{}**", self.monit_note);
        }
        for n in &self.notes {
            let _ = writeln!(t, "- **{n}**");
        }
        let _ = writeln!(t, "\n## Targets of issue 6\n");
        self.render_targets(&mut t);
        if self.quick {
            let _ = writeln!(
                t,
                "\n## {BIG_TEXT} probes\n\nSkipped under `--quick`: a run needs one 10 s interval of \
                 warm-up and a 30 s window, for heat and for the C spawner."
            );
        } else {
            let _ = writeln!(t, "\n## Targets at {BIG_TEXT} probes\n");
            self.render_big_targets(&mut t);
        }
        let _ = writeln!(t, "\n## Every run\n");
        let _ = writeln!(
            t,
            "| workload | tool | runs executed / expected | start deviation p50 / p99 / max | \
             to nearest slot p99 / max | failure → hook p50 / p99 (hooks/failures) | CPU per check | CPU | RSS median | \
             fds fewest / at end | outside load (steal) |"
        );
        let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|");
        for m in &self.rows {
            let _ = writeln!(
                t,
                "| {} | {} | {} / {:.0} ({:.1} %) | {} | {} | {} | {} | {:.1} % | {:.1} MB \
                 | {} / {} | {:.0} % ({:.0} %){}{} |",
                m.wl.label(),
                m.tool.name(),
                m.executed,
                m.expected,
                m.runs_pct(),
                m.dev_text(),
                m.jitter_text(),
                m.react_text(),
                m.cpu_text(),
                m.cpu_pct,
                m.rss_mb,
                m.fds_min,
                m.fds,
                m.outside_pct,
                m.steal_pct,
                if m.noisy { " **noisy**" } else { "" },
                m.tries_text(),
            );
        }
        self.render_variants(&mut t);
        self.render_big(&mut t);
        if let Some(s) = &self.spawn {
            let ceiling = s.ceiling_n.max(s.ceiling_1);
            let _ = writeln!(t, "\n## Spawn micro-benchmark\n");
            let _ = writeln!(
                t,
                "| | `/bin/true` starts per second | |\n|---|---|---|\n\
                 | spawn + wait loop, 1 thread | {:.0} | |\n\
                 | spawn + wait loops, one per core (the ceiling) | {:.0} | |\n\
                 | heat, {SPAWN_PROBES} probes @ 10 ms | {:.0} | {:.0} % of the ceiling; heat's own \
                 CPU {:.0} %; outside load {:.0} % (steal {:.0} %) |",
                s.ceiling_1,
                s.ceiling_n,
                s.heat_rate,
                s.heat_rate / ceiling * 100.0,
                s.heat_cpu_pct,
                s.outside_pct,
                s.steal_pct
            );
        }
        if let Some([p50, p99, max]) = self.floor {
            let _ = writeln!(
                t,
                "\n## The machine's own timer floor\n\n\
                 One thread sleeping to absolute deadlines (`clock_nanosleep(TIMER_ABSTIME)`) every \
                 10 ms, alone on the machine, is late by p50 {} / p99 {} / max {}: no \
                 supervisor can keep time better than this here.",
                ms(p50),
                ms(p99),
                ms(max)
            );
        }
        let _ = writeln!(t, "\n{}", METHOD.trim());
        t
    }

    fn render_targets(&self, t: &mut String) {
        let _ = writeln!(t, "| | Monit (this run) | heat (this run) | heat must reach | met |");
        let _ = writeln!(t, "|---|---|---|---|---|");
        let heat = |n| self.row(HEAT, n, SECOND);
        let monit = |n| self.row(Tool::Monit, n, SECOND);
        let runs = |m: Option<&Metrics>| m.map(|m| format!("{:.1} %", m.runs_pct()));
        let p99 = |m: Option<&Metrics>| m.and_then(|m| m.dev_ms).map(|d| ms(d[1]));
        let mut line =
            |what: &str, mon: Option<String>, h: Option<String>, goal: &str, met: Option<bool>| {
                let na = || "not measured".to_string();
                let met = match met {
                    Some(true) => "met",
                    Some(false) => "**not met**",
                    None => "—",
                };
                let _ = writeln!(
                    t,
                    "| {what} | {} | {} | {goal} | {met} |",
                    mon.unwrap_or_else(na),
                    h.unwrap_or_else(na)
                );
            };
        line(
            "1000 probes at 1 s: runs executed / expected",
            runs(monit(1000)),
            runs(heat(1000)),
            "≥ 99.9 %",
            heat(1000).map(|m| m.runs_pct() >= 99.9),
        );
        for (n, goal, lim) in [(1000, "≤ 5 ms", 5.0), (100, "≤ 2 ms", 2.0), (1, "≤ 1 ms", 1.0)]
        {
            line(
                &format!("{n} probe{} at 1 s: start deviation p99", if n == 1 { "" } else { "s" }),
                p99(monit(n)),
                p99(heat(n)),
                goal,
                heat(n).and_then(|m| m.dev_ms).map(|d| d[1] <= lim),
            );
        }
        let worst_react = |tool| {
            self.rows
                .iter()
                .filter(|m| m.tool == tool && m.wl.interval == SECOND)
                .filter_map(|m| m.react_ms.map(|r| r[1]))
                .reduce(f64::max)
        };
        line(
            "failure → reaction hook started, p99 (worst workload)",
            worst_react(Tool::Monit).map(ms),
            worst_react(HEAT).map(ms),
            "≤ 3 ms",
            worst_react(HEAT).map(|v| v <= 3.0),
        );
        let largest = |tool| {
            self.rows
                .iter()
                .filter(|m| m.tool == tool && m.wl.interval == SECOND)
                .max_by_key(|m| m.wl.n)
        };
        let cpu = |m: Option<&Metrics>| {
            m.and_then(|m| m.cpu_per_check_us.map(|c| format!("{c:.0} µs ({} probes)", m.wl.n)))
        };
        line(
            "supervisor CPU per executed check",
            cpu(largest(Tool::Monit)),
            cpu(largest(HEAT)),
            "≤ 60 µs",
            largest(HEAT).and_then(|m| m.cpu_per_check_us).map(|c| c <= 60.0),
        );
        let rss = |m1: Option<&Metrics>, m2: Option<&Metrics>| {
            let f = |m: Option<&Metrics>| {
                m.map(|m| format!("{:.1} MB", m.rss_mb)).unwrap_or("—".into())
            };
            (m1.is_some() || m2.is_some()).then(|| format!("{} / {}", f(m1), f(m2)))
        };
        let rss_met = match (heat(1), heat(1000)) {
            (Some(a), Some(b)) => Some(a.rss_mb <= 4.0 && b.rss_mb <= 8.0),
            (Some(a), None) => (a.rss_mb > 4.0).then_some(false),
            _ => None,
        };
        line(
            "RSS, 1 probe / 1000 probes",
            rss(monit(1), monit(1000)),
            rss(heat(1), heat(1000)),
            "≤ 4 MB / ≤ 8 MB",
            rss_met,
        );
        line(
            "fds held at 1000 probes (fewest seen in the window)",
            monit(1000).map(|m| m.fds_min.to_string()),
            heat(1000).map(|m| m.fds_min.to_string()),
            "≤ 16",
            heat(1000).map(|m| m.fds_min <= 16),
        );
        let fast = self.row(HEAT, 1, SHORT);
        line(
            "shortest interval: 1 probe at 10 ms, runs / deviation p99",
            Some("1 s is its shortest cycle".into()),
            fast.map(|m| {
                format!(
                    "{:.1} % / {}",
                    m.runs_pct(),
                    m.dev_ms.map(|d| ms(d[1])).unwrap_or("—".into())
                )
            }),
            "10 ms, kept exactly (≥ 99.9 %, p99 ≤ 1 ms)",
            fast.map(|m| m.runs_pct() >= 99.9 && m.dev_ms.is_some_and(|d| d[1] <= 1.0)),
        );
        let ratio = self.spawn.as_ref().map(|s| s.heat_rate / s.ceiling_n.max(s.ceiling_1) * 100.0);
        line(
            "trivial checks per second",
            None,
            self.spawn
                .as_ref()
                .zip(ratio)
                .map(|(s, r)| format!("{:.0}/s = {r:.0} % of the ceiling", s.heat_rate)),
            "≥ 70 % of the posix_spawn ceiling",
            ratio.map(|r| r >= 70.0),
        );
        let start = self.startup(1000);
        line(
            "`heat -c` with 1000 probes: start to first check / `-t`",
            None,
            start.map(Startup::text),
            "≤ 100 ms",
            start.map(|s| s.first_check_ms <= 100.0 && s.validate_ms <= 100.0),
        );
    }

    fn startup(&self, n: usize) -> Option<&Startup> {
        self.startups.iter().find(|s| s.n == n)
    }

    /// heat at 10,000 probes against the C spawner.
    fn render_big_targets(&self, t: &mut String) {
        let _ = writeln!(t, "| | C spawner (this run) | heat (this run) | heat must reach | met |");
        let _ = writeln!(t, "|---|---|---|---|---|");
        let heat = self.row(HEAT, BIG, BIG_INTERVAL);
        let base = self.row(Tool::Spawner, BIG, BIG_INTERVAL);
        let na = || "not measured".to_string();
        let mut line =
            |what: &str, b: Option<String>, h: Option<String>, goal: &str, met: Option<bool>| {
                let met = match met {
                    Some(true) => "met",
                    Some(false) => "**not met**",
                    None => "—",
                };
                let (b, h) = (b.unwrap_or_else(na), h.unwrap_or_else(na));
                let _ = writeln!(t, "| {what} | {b} | {h} | {goal} | {met} |");
            };
        let runs = |m: Option<&Metrics>| m.map(|m| format!("{:.1} %", m.runs_pct()));
        let p99 = |m: Option<&Metrics>| m.and_then(|m| m.dev_ms).map(|d| d[1]);
        line(
            &format!("{BIG_TEXT} probes at 10 s: runs executed / expected"),
            runs(base),
            runs(heat),
            "≥ 99.9 %",
            heat.map(|m| m.runs_pct() >= 99.9),
        );
        let ratio = p99(heat).zip(p99(base)).map(|(h, b)| h / b);
        line(
            &format!("{BIG_TEXT} probes at 10 s: start deviation p99"),
            p99(base).map(ms),
            p99(heat).map(|h| match ratio {
                Some(r) => format!("{} = {r:.2}× the spawner's", ms(h)),
                None => ms(h),
            }),
            "≤ 1.2× the C spawner's",
            ratio.map(|r| r <= 1.2),
        );
        line(
            &format!("RSS at {BIG_TEXT} probes"),
            base.map(|m| format!("{:.1} MB", m.rss_mb)),
            heat.map(|m| format!("{:.1} MB", m.rss_mb)),
            "≤ 32 MB",
            heat.map(|m| m.rss_mb <= 32.0),
        );
        line(
            &format!("fds held at {BIG_TEXT} probes (fewest seen in the window)"),
            base.map(|m| m.fds_min.to_string()),
            heat.map(|m| m.fds_min.to_string()),
            "≤ 16",
            heat.map(|m| m.fds_min <= 16),
        );
        let start = self.startup(BIG);
        line(
            &format!("`heat -c` with {BIG_TEXT} probes: start to first check / `-t`"),
            None,
            start.map(Startup::text),
            "< 200 ms",
            start.map(|s| s.first_check_ms < 200.0 && s.validate_ms < 200.0),
        );
        let log = heat.and_then(|m| m.log.as_ref());
        line(
            &format!("heat's log at {BIG_TEXT} probes: FAIL / ERR entries (runs delayed)"),
            Some("—".into()),
            log.map(|l| format!("{} ({} delayed)", l.trouble, l.delayed)),
            "none",
            log.map(|l| l.trouble == 0),
        );
    }

    /// heat's containment, user and metrics variants beside the default and Monit.
    fn render_variants(&self, t: &mut String) {
        let Some(n) = self
            .rows
            .iter()
            .find(|m| matches!(m.tool, Tool::Heat(v) if v != Variant::DEFAULT))
            .map(|m| m.wl.n)
        else {
            return;
        };
        let _ = writeln!(
            t,
            "\n## Containment, users and metrics\n\n{} probes @ 1 s (+ flip), heat as root; with \
             `user = \"nobody\"` every probe's check and the flip hook run as nobody; with \
             metrics, heat has `metrics_listen` and the harness GETs `/metrics` every second, as \
             a Prometheus scrape would.\n",
            n
        );
        let _ = writeln!(
            t,
            "| tool | containment (heat's log) | runs executed / expected | start deviation p99 \
             | CPU per check | RSS median | outside load (steal) |"
        );
        let _ = writeln!(t, "|---|---|---|---|---|---|---|");
        let tools = Variant::ALL.iter().map(|&v| Tool::Heat(v)).chain([Tool::Monit]);
        for m in tools.filter_map(|tool| self.row(tool, n, SECOND)) {
            let seen = m.log.as_ref().and_then(|l| l.containment.as_deref()).map(|c| {
                if c.starts_with("cgroup v2") {
                    "cgroups"
                } else if c.starts_with("process groups") {
                    "process groups"
                } else {
                    c
                }
            });
            let _ = writeln!(
                t,
                "| {} | {} | {} / {:.0} ({:.1} %) | {} | {} | {:.1} MB | {} |",
                m.tool.name(),
                seen.unwrap_or("—"),
                m.executed,
                m.expected,
                m.runs_pct(),
                m.dev_ms.map(|d| ms(d[1])).unwrap_or("—".into()),
                m.cpu_text(),
                m.rss_mb,
                m.load_text()
            );
        }
    }

    /// The 10,000-probe rows in full, with heat's log.
    fn render_big(&self, t: &mut String) {
        let rows: Vec<&Metrics> = self.rows.iter().filter(|m| m.wl.n == BIG).collect();
        let Some(first) = rows.first() else { return };
        let _ = writeln!(
            t,
            "\n## {}\n\nThe same check, no flip probe: heat (a cgroup per run, as root) beside \
             benches/spawner.c, one thread starting each probe at absolute deadlines.\n",
            first.wl.label()
        );
        let _ = writeln!(
            t,
            "| tool | runs executed / expected | start deviation p50 / p99 / max | to nearest \
             slot p99 / max | CPU per check | CPU | RSS median | fds fewest / at end | FAIL / ERR \
             in heat's log (runs delayed) | outside load (steal) |"
        );
        let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|");
        for m in rows {
            let log = m
                .log
                .as_ref()
                .map(|l| format!("{} ({} delayed)", l.trouble, l.delayed))
                .unwrap_or("—".into());
            let _ = writeln!(
                t,
                "| {} | {} / {:.0} ({:.1} %) | {} | {} | {} | {:.1} % | {:.1} MB | {} / {} | {log} | {} |",
                m.tool.name(),
                m.executed,
                m.expected,
                m.runs_pct(),
                m.dev_text(),
                m.jitter_text(),
                m.cpu_text(),
                m.cpu_pct,
                m.rss_mb,
                m.fds_min,
                m.fds,
                m.load_text()
            );
        }
    }
}

const METHOD: &str = r#"
## How it is measured

- **Command**: `cargo bench --bench compare -- [--quick] [--out FILE] [--no-install]
  [--no-monit] [--keep] [--window S] [--warmup S] [--heat PATH]`. cargo's bench profile
  (the release profile) builds the heat it measures, target/release/heat. Monit is
  installed with `apt-get install -y monit` when missing (`--no-install`: skipped, with
  a note). `--quick` (1 s warm-up, 3 s window, N ≤ 100, one try, one heat variant: process
  groups with `user = "nobody"` at 100 probes, or process groups alone when not root; no
  10,000-probe run or start-up, though the C spawner is built) is what CI runs: it
  exits 0 whatever the figures, non-zero when the harness breaks (heat does not start,
  exits early, or records no runs). The harness marks the fds it inherited close-on-exec,
  so the tools hold only their own.
- **The check** (benches/check.c, built by the harness with `cc`: without libc on
  x86-64, else static, else plain; the flags used are above) reads CLOCK_REALTIME
  first thing and appends `NAME NS KIND` to one file with O_APPEND in a single write. Every tool runs the same binary with the same arguments. The `flip` probe
  passes a state file: each run flips it, and every other run fails (exit 1). The
  reaction hook is the same program under the name `hook`; it records its own start.
  The temporary directory and the check are root's and mode 0755 (heat runs nothing as
  root that others could replace); for a `user = "nobody"` run the harness creates the
  starts file and makes it and the state file nobody's (chown) before heat starts.
- **Workloads**: N probes (`p0` … `pN-1`) at 1 s, plus `flip` at 1 s with the hook
  (heat: `fail = hook`; Monit: `if status != 0 then exec hook`). heat gets
  `heat -c heat.toml` (it spreads the probes' phases itself); Monit gets `set daemon 1`,
  one `check program pN with path "check pN"` each (with `if status != 0 then alert`,
  which never fires: Monit refuses a program check without a test),
  `monit -c monitrc -I` (no httpd, no mail server: an alert would only be logged).
  One tool at a time; each gets a warm-up, then the window; then TERM.
- **heat's variants** (1000 probes at 1 s only; `--quick`: see above): `heat` is heat's
  default as root, a cgroup per check; `heat (process groups)` has
  `HEAT_CONTAINMENT=process-groups` in its environment; `heat (cgroups, user nobody)` and
  `heat (process groups, user nobody)` add `user = "nobody"` to every probe (`p*` and
  `flip`), so checks and the flip hook (`hook_user` defaults to `user`) run as nobody;
  `heat -c … -t` must show every probe as nobody first. The other runs have
  `HEAT_CONTAINMENT` removed. The containment column is the start entry
  `containment: …` of heat's log; a variant whose log says otherwise gets a note.
- **10,000 probes @ 10 s**: `p0` … `p9999` at 10 s, no `flip` (reactions are measured
  at the other sizes), once with heat (default variant) and once with the C spawner, on
  the same check. The warm-up is one interval and 2 s (12 s: every probe has started
  once), the window three intervals (30 s), two tries (the rest: three). Any workload
  whose interval is longer than the warm-up gets this rule; the others keep `--warmup`
  and `--window`.
- **The C spawner** (benches/spawner.c, `cc -O2`): `spawner N INTERVAL_MS CHECK`, one
  thread; probe i runs `CHECK pi`, first at start + heat's phase for `pi` (FNV-1a of
  the name modulo min(interval, 10 s), in ms), so both face the same bunching of
  deadlines. The deadlines are a binary min-heap; it sleeps to the earliest with
  `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`, starts every due probe with plain
  `posix_spawn` (stdio inherited, no attributes), sets the next deadline to the previous
  plus the interval, and reaps with `waitpid(-1, WNOHANG)` after each wake. It is the best
  a plain scheduler does here: what heat adds (a pipe, a pidfd, a cgroup, a log entry
  per run) is what the ratio in the targets costs.
- **Runs executed / expected**: starts of `p*` inside the window / (N × window / interval).
- **heat's log** (every heat run; shown for 10,000 probes): FAIL and ERR entries other
  than `flip`'s own failing checks (any of them gets a note with the first), and the
  `… delayed: all N run slots are in use …` INFO entries ("runs delayed"). The log is
  removed before each run.
- **Start deviation**: per probe, its phase φ is the circular median of (start mod
  interval) over its starts in the window; the ideal of its k-th run (k counted from
  its first run in the window: what happened in the warm-up does not count) is
  A + k·interval, A being the point of φ's grid nearest that first start.
  Deviation = |start − ideal| over the runs inside the window, pooled over
  all `p*` probes (p50 / p99 / max, nearest rank). A late run, a drifting cycle or a
  skipped run moves every later run off its ideal, so drift and missed runs show here.
  **To nearest slot** is each start's distance to the nearest point of its grid
  (φ + m·interval): the jitter alone, which one skipped run does not move (runs
  executed / expected counts those). Because φ is estimated from the starts, a
  constant lag (a tool that always starts 1 ms after its slot) is not in either figure.
- **Failure → hook**: for each failing `flip` run inside the window, the hook's own start
  minus the failing check's own start (the first hook after it, before the next
  failure); (hooks/failures) counts failures that got a hook.
- **CPU per check**: the supervisor's own CPU over the window — the sum of
  `se.sum_exec_runtime` of its threads (/proc/PID/task/*/sched, ns precision) when the
  thread set did not change, otherwise utime + stime of /proc/PID/stat (10 ms ticks,
  marked "(ticks)"); children are not in either (nor what a child does between fork and
  exec, such as closing every fd: that counts with the children, in the tree) —
  divided by all check starts inside the window (`flip` included). The C spawner's is
  its one thread's. **CPU** is the same time as a share of one core.
- **RSS**: median of VmRSS sampled every 250 ms over the window. **fds**: entries of
  /proc/PID/fd, the fewest seen in those samples (what the tool holds between checks:
  the target's "idle" figure) and at the window's end (running checks' pipes and pidfds
  included).
- **Outside load**: busy ticks of the machine (/proc/stat, steal included) minus the
  tool's own and reaped children's CPU (utime + stime + cutime + cstime) minus the
  harness's own, as a share of all cores over the window; (steal) is the part the
  hypervisor gave to other guests. Above 10 % the run is repeated (3 tries;
  `--quick`: 1) and the quietest try is kept, marked **noisy** if still loaded.
- **Spawn micro-benchmark**: the ceiling is Rust `Command` (`posix_spawn`,
  `process_group(0)`) + wait of `/bin/true` in a loop, on one thread and on one thread
  per core (the higher is the ceiling). heat runs 200 exec-form `/bin/true` probes at
  10 ms (20,000 starts a second asked); its rate is the entries its log gained in the
  window.
- **Start-up**: `heat -c` with 1000 probes (at 1 s, with `flip`) and with 10,000 (the
  workload above; not under `--quick`), from spawn to the first check's own start
  (median of 5; `--quick`: 2); `heat -c … -t` wall time (median of 5; `--quick`: 3).
- **Targets at 10,000 probes**: heat's start deviation p99 divided by the C spawner's,
  both from the 10,000-probe runs of this invocation (met at ≤ 1.2); RSS median ≤ 32 MB;
  fds fewest ≤ 16; start to first check and `-t` each < 200 ms; no FAIL or ERR entry in
  heat's log.
"#;
