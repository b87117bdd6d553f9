//! heat's entry point: signals first, then the command line, then the probes.
//! The only place that exits.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use heat::cli::{Cli, CliError};
use heat::config;
use heat::log::Log;
use heat::service::{self, Ending, Signals};
use heat::supervisor::say;

/// How long heat waits for the log to drain on the way out.
const FLUSH: Duration = Duration::from_secs(5);
/// How long heat waits for its last diagnostics to reach stderr.
const FLUSH_STDERR: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    // `heat status …` asks a running heat: no runtime, no signal handlers.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if heat::control::client::is_client(&args) {
        return ExitCode::from(heat::control::client::main(args));
    }
    mark_inherited_fds_cloexec();
    let code = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => tokio::task::LocalSet::new().block_on(&rt, start()),
        Err(e) => {
            say(&format!("cannot start the runtime: {e}"));
            ExitCode::from(1)
        }
    };
    heat::diag::flush(FLUSH_STDERR);
    code
}

async fn start() -> ExitCode {
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            say(&format!("cannot install signal handlers: {e}"));
            return ExitCode::from(1);
        }
    };
    let cli = match Cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(CliError::Info(e)) => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            say(&e.to_string());
            return ExitCode::from(2);
        }
    };
    init_tracing(cli.args.verbose);
    let settings = match config::from_cli(&cli.args) {
        Ok(s) => s,
        Err(e) => {
            say(&heat::text::chain(&e));
            return ExitCode::from(2);
        }
    };
    for w in &settings.warnings {
        say(&format!("warning: {w}"));
    }
    if settings.check_only {
        let mut out = std::io::stdout().lock();
        let _ =
            out.write_all(heat::report::describe(&settings).as_bytes()).and_then(|()| out.flush());
        return ExitCode::SUCCESS;
    }
    let slots = match service::raise_nofile_limit(&settings.probes) {
        Ok(slots) => slots,
        Err(e) => {
            say(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let listeners = match service::Listeners::bind(&settings) {
        Ok(l) => l,
        Err(e) => {
            say(&e);
            return ExitCode::from(2);
        }
    };
    let log = match Log::open(&settings.log) {
        Ok(log) => log,
        Err(e) => {
            say(&format!(
                "cannot open log {}: {e} (its directory must exist and be writable)",
                settings.log.display()
            ));
            return ExitCode::from(2);
        }
    };
    let ending = service::run(cli.args, settings, slots, log.clone(), signals, listeners).await;
    log.flush(FLUSH);
    match ending {
        Ending::Stopped => ExitCode::SUCCESS,
        Ending::Fatal => ExitCode::from(1),
    }
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
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(heat::diag::Writer::default)
        .with_max_level(level)
        // A journal or a file gets no escape codes.
        .with_ansi(std::io::stderr().is_terminal())
        .event_format(Prefixed)
        .init();
}

/// `heat: warning: …`, as start-up messages read, and nothing else around
/// it (no time: the journal and the verbose log keep their own).
struct Prefixed;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Prefixed
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut w: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing::Level;
        let (word, colour) = match *event.metadata().level() {
            Level::ERROR => ("error", "31"),
            Level::WARN => ("warning", "33"),
            Level::INFO => ("info", "32"),
            Level::DEBUG => ("debug", "34"),
            Level::TRACE => ("trace", "35"),
        };
        if w.has_ansi_escapes() {
            write!(w, "heat: \x1b[{colour}m{word}\x1b[0m: ")?;
        } else {
            write!(w, "heat: {word}: ")?;
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// No check or hook may inherit what heat inherited.
fn mark_inherited_fds_cloexec() {
    // Raw: neither rustix nor nix wraps close_range.
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on fds;
    // it touches no memory. Failure (kernel < 5.11) leaves inherited fds as
    // they were, which only matters if heat was started with stray fds.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
    }
}
