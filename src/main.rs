//! heat's entry point: signals first, then the command line, then the probes.
//! The only place that exits.

use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::signal::unix::{Signal as Stream, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use heat::cli::Cli;
use heat::config::{self, Settings};
use heat::exec::Stop;
use heat::log::{Level, Log};
use heat::supervisor::{self, Control, Exit, Shared, Stdout, Supervisor};

/// How long heat waits for the log to drain on the way out.
const FLUSH: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    mark_inherited_fds_cloexec();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("heat: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, start())
}

/// heat's own signals, installed before anything else so that a HUP or USR1
/// during start-up never kills it.
struct Signals {
    term: Stream,
    int: Stream,
    hup: Stream,
    usr1: Stream,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }
}

async fn start() -> ExitCode {
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("heat: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_tracing(cli.verbose);
    let settings = match config::from_cli(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("heat: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &settings.warnings {
        eprintln!("heat: warning: {w}");
    }
    if settings.check_only {
        print!("{}", config::describe(&settings));
        return ExitCode::SUCCESS;
    }
    if let Err(e) = raise_nofile_limit(settings.probes.len()) {
        eprintln!("heat: {e}");
        return ExitCode::from(2);
    }
    let log = match Log::open(&settings.log) {
        Ok(log) => log,
        Err(e) => {
            eprintln!(
                "heat: cannot open log {}: {e} (its directory must exist and be writable)",
                settings.log.display()
            );
            return ExitCode::from(2);
        }
    };
    let code = serve(settings, log.clone(), signals).await;
    log.flush(FLUSH);
    code
}

/// Runs the probes until TERM/INT (exit 0) or a fatal condition (exit 1).
async fn serve(settings: Settings, log: Log, mut signals: Signals) -> ExitCode {
    let version = env!("CARGO_PKG_VERSION");
    let text = format!("started heat {version} (pid {})", std::process::id());
    log.write(std::time::SystemTime::now(), Level::Info, "heat", text.as_bytes(), 0);
    let shared = Rc::new(Shared {
        log: log.clone(),
        env: supervisor::child_env(),
        stdout: (!settings.quiet).then(|| Stdout::new(settings.log.display().to_string())),
        fatal_trouble: true,
        prefix_names: false,
    });
    let mut tasks = JoinSet::new();
    let mut controls = Vec::new();
    let t0 = tokio::time::Instant::now().into_std();
    for cfg in settings.probes {
        let (tx, rx) = mpsc::unbounded_channel();
        let sup = Supervisor::new(Arc::new(cfg), shared.clone(), t0);
        tasks.spawn_local(sup.run(rx));
        controls.push(tx);
    }
    let send = |c: Control| {
        controls.iter().for_each(|tx| {
            let _ = tx.send(c);
        })
    };
    let mut stopping = false;
    let mut fatal = false;
    loop {
        tokio::select! {
            Some(done) = tasks.join_next() => {
                if let Ok(Exit::Fatal(_)) = done {
                    fatal = true;
                    send(Control::Stop(Stop::Graceful));
                }
                if tasks.is_empty() {
                    break;
                }
            }
            Some(()) = signals.term.recv() => stop(&log, "SIGTERM", &mut stopping, &send),
            Some(()) = signals.int.recv() => stop(&log, "SIGINT", &mut stopping, &send),
            Some(()) = signals.hup.recv() => {
                log.reopen();
                log.write(std::time::SystemTime::now(), Level::Info, "heat", b"reopened the log", 0);
            }
            Some(()) = signals.usr1.recv() => send(Control::Status),
            else => break,
        }
    }
    if fatal { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// TERM/INT: a graceful stop; a second one during the grace ends everything at once.
fn stop(log: &Log, name: &str, stopping: &mut bool, send: &impl Fn(Control)) {
    let how = if *stopping { Stop::Now } else { Stop::Graceful };
    if !*stopping {
        let text = format!("stopping on {name}");
        log.write(std::time::SystemTime::now(), Level::Info, "heat", text.as_bytes(), 0);
    }
    *stopping = true;
    send(Control::Stop(how));
}

fn init_tracing(verbose: u8) {
    use tracing::level_filters::LevelFilter;
    let level = match std::env::var("RUST_LOG").ok().and_then(|v| v.parse::<LevelFilter>().ok()) {
        Some(l) if verbose == 0 => l,
        _ => match verbose {
            0 => LevelFilter::WARN,
            1 => LevelFilter::INFO,
            2 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        },
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .init();
}

/// No check or hook may inherit what heat inherited.
fn mark_inherited_fds_cloexec() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on fds;
    // it touches no memory. Failure (kernel < 5.11) leaves inherited fds as
    // they were, which only matters if heat was started with stray fds.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
    }
}

/// Raises the soft open-file limit toward the hard one, as far as the probes
/// need: a few fds per running probe (pipe, pidfd, target pidfd).
fn raise_nofile_limit(probes: usize) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let need = 64 + 4 * probes as u64;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    if soft >= need {
        return Ok(());
    }
    if hard < need {
        return Err(format!(
            "the hard limit on open files ({hard}) is too low for {probes} probes (need {need}); raise LimitNOFILE or ulimit -Hn"
        ));
    }
    setrlimit(Resource::RLIMIT_NOFILE, need, hard)
        .map_err(|e| format!("cannot raise the open-file limit: {e}"))
}
