//! The command line as typed. Option docs are the `--help` text.
//!
//! Values stay raw here (strings and paths): `config.rs` validates them, so that
//! every bad value gets heat's own one-line error naming the option, and so that
//! the same checks serve `heat.toml`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Parser};

const AFTER_HELP: &str = "\
Options come before the command: everything from the first non-option on is the
check's own argv. Durations are seconds (30) or 500ms, 30s, 1m30s. Signals are
names or numbers: HUP, SIGUSR1, usr1, 10, RTMIN+1.

Examples:
  heat -i 30 curl -sf http://localhost/health_check
  heat -i 10s --pidfile /run/nginx.pid --signal USR1 --recovery ./restart.sh -- nc -z localhost 80
  heat -s ./check.sh --fail ./notify.sh --threshold 3 --recovery ./repair.sh

Exit status: 0 stopped by TERM/INT, 1 fatal (the target or a check died), 2 bad usage.";

#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "heat",
    version,
    about = "A health-check supervisor for Linux hosts",
    long_about = "A health-check supervisor for Linux hosts.\n\n\
        Runs a check (a command or an executable script) at a fixed interval; exit 0 is \
        success. On failure it can signal a target process and run a fail hook; after \
        --threshold consecutive failures it runs a recovery hook. Everything it runs is \
        appended to the verbose log.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Time between check starts [default: 30s]
    ///
    /// A bare number is seconds; otherwise 500ms, 30s, 1m30s; at least 10ms. Checks start
    /// at a fixed rate and never overlap.
    #[arg(short, long, value_name = "D", allow_hyphen_values = true)]
    pub interval: Option<String>,

    /// Executable check script, instead of a command
    ///
    /// A script without a `#!` line runs with /bin/sh.
    #[arg(short, long, value_name = "PATH")]
    pub script: Option<PathBuf>,

    /// Kill a check running longer; it fails with code 124 [default: the interval]
    ///
    /// The check's whole process group is killed.
    #[arg(long, value_name = "D", allow_hyphen_values = true)]
    pub timeout: Option<String>,

    /// Target process, signalled on failure; heat exits when it does
    ///
    /// Must be alive at start; pid 1 and heat itself are refused.
    #[arg(long, value_name = "PID", allow_hyphen_values = true)]
    pub pid: Option<String>,

    /// Target = the live process this file names; followed across restarts
    ///
    /// The pid is the file's first line. When the target exits, heat re-reads the file
    /// and follows a new live pid, waiting up to one interval.
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,

    /// Sent to the target on every failure in normal mode [default: HUP]
    ///
    /// Without --signal, HUP is sent only when neither --fault-signal nor --success-signal
    /// is given.
    #[arg(long, value_name = "SIG")]
    pub signal: Option<String>,

    /// Fail hook, run on each failure in normal mode
    #[arg(long, value_name = "PATH")]
    pub fail: Option<PathBuf>,

    /// Recovery hook, run when --threshold consecutive failures are reached
    ///
    /// After it ends, checks decide: a success ends recovery, and if none comes within
    /// --recovery-timeout the next round starts at the next tick.
    #[arg(long, value_name = "PATH")]
    pub recovery: Option<PathBuf>,

    /// Consecutive failures that start recovery, at least 1 [default: 1]
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub threshold: Option<String>,

    /// Grace after start: failures are logged but not counted [default: 0]
    ///
    /// Applies to checks started within this time after heat starts; the first success
    /// ends it early.
    #[arg(long, value_name = "D", allow_hyphen_values = true)]
    pub start_period: Option<String>,

    /// Time checks may keep failing after a recovery hook [default: threshold checks]
    ///
    /// When it passes without a success, the next recovery round starts at the next tick.
    #[arg(long, value_name = "D", allow_hyphen_values = true)]
    pub recovery_timeout: Option<String>,

    /// Sent to the target on entering each recovery round
    ///
    /// Without a target it is raised on heat itself, so only HUP, USR1, TERM, INT, CONT,
    /// CHLD, WINCH and URG are accepted then. A stopped target gets CONT when heat stops.
    #[arg(long, value_name = "SIG")]
    pub fault_signal: Option<String>,

    /// Sent to the target when a recovery succeeds
    ///
    /// Without a target it is raised on heat itself, so only HUP, USR1, TERM, INT, CONT,
    /// CHLD, WINCH and URG are accepted then.
    #[arg(long, value_name = "SIG")]
    pub success_signal: Option<String>,

    /// The verbose log, appended to [default: heat.verbose.log]
    ///
    /// Created with mode 0640 if missing; its directory must exist.
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,

    /// Service mode: run the probes of this heat.toml
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Validate, print the effective settings and exit (0 valid, 2 not)
    ///
    /// Checks exactly what a start would, without creating the log or running anything.
    #[arg(short = 't', long)]
    pub check_config: bool,

    /// A hook running longer is ended and logged as FAIL [default: 5m]
    ///
    /// Its process group gets TERM, then KILL 5 s later.
    #[arg(long, value_name = "D", allow_hyphen_values = true)]
    pub hook_timeout: Option<String>,

    /// Output kept per check or hook run [default: 64KiB]
    ///
    /// 65536, 64KiB, 1MiB (also 64K, 1M; 64KB and 1MB are powers of 1000); at most 16MiB.
    /// The rest is read and dropped, and the log entry says how many bytes.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub max_output: Option<String>,

    /// No per-check line on stdout
    #[arg(short, long)]
    pub quiet: bool,

    /// More diagnostics on stderr (repeat for more)
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// The check command and its arguments, exec'd directly (no shell)
    ///
    /// The program is looked up in PATH once, at start. Everything from the first
    /// non-option on belongs to the command; `--` before it is also accepted.
    #[arg(value_name = "COMMAND", trailing_var_arg = true)]
    pub command: Vec<OsString>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("heat").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn refuse(args: &[&str]) -> clap::Error {
        match Cli::try_parse_from(std::iter::once("heat").chain(args.iter().copied())) {
            Ok(cli) => panic!("{args:?} parsed as {cli:?}"),
            Err(e) => e,
        }
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_command_keeps_its_own_options() {
        let cli = parse(&["-i", "30", "curl", "-sf", "localhost/health_check"]);
        assert_eq!(cli.interval.as_deref(), Some("30"));
        assert_eq!(cli.command, os(&["curl", "-sf", "localhost/health_check"]));
    }

    #[test]
    fn options_after_the_command_belong_to_it() {
        let cli = parse(&["ls", "-i", "5", "--pid", "1", "--", "x"]);
        assert_eq!(cli.interval, None);
        assert_eq!(cli.pid, None);
        assert_eq!(cli.command, os(&["ls", "-i", "5", "--pid", "1", "--", "x"]));
    }

    #[test]
    fn double_dash_starts_the_command() {
        let cli = parse(&["-i", "1", "--", "ls", "-l"]);
        assert_eq!(cli.interval.as_deref(), Some("1"));
        assert_eq!(cli.command, os(&["ls", "-l"]));
        let cli = parse(&["--", "--looks-like-an-option"]);
        assert_eq!(cli.command, os(&["--looks-like-an-option"]));
    }

    #[test]
    fn unknown_option_before_the_command_is_a_usage_error() {
        let err = refuse(&["--bogus", "ls"]);
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
        assert_eq!(err.exit_code(), 2);
        let err = refuse(&["-i", "3", "-Z", "ls"]);
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
    }

    #[test]
    fn missing_value_is_a_usage_error() {
        assert_eq!(refuse(&["--pid"]).exit_code(), 2);
        assert_eq!(refuse(&["-s"]).exit_code(), 2);
    }

    #[test]
    fn negative_values_reach_validation() {
        let cli = parse(&["--pid", "-5", "--interval", "-1", "--threshold", "-2", "ls"]);
        assert_eq!(cli.pid.as_deref(), Some("-5"));
        assert_eq!(cli.interval.as_deref(), Some("-1"));
        assert_eq!(cli.threshold.as_deref(), Some("-2"));
        assert_eq!(cli.command, os(&["ls"]));
    }

    #[test]
    fn every_option_parses() {
        let cli = parse(&[
            "-i",
            "10s",
            "-s",
            "./check.sh",
            "--timeout",
            "5",
            "--pid",
            "42",
            "--pidfile",
            "/run/x.pid",
            "--signal",
            "USR1",
            "--fail",
            "./fail.sh",
            "--recovery",
            "./rec.sh",
            "--threshold",
            "3",
            "--start-period",
            "1m",
            "--recovery-timeout",
            "2m",
            "--fault-signal",
            "STOP",
            "--success-signal",
            "CONT",
            "--log",
            "/tmp/h.log",
            "-c",
            "/etc/heat.toml",
            "-t",
            "--hook-timeout",
            "30s",
            "--max-output",
            "1MiB",
            "-q",
            "-vv",
        ]);
        assert_eq!(cli.interval.as_deref(), Some("10s"));
        assert_eq!(cli.script, Some(PathBuf::from("./check.sh")));
        assert_eq!(cli.timeout.as_deref(), Some("5"));
        assert_eq!(cli.pid.as_deref(), Some("42"));
        assert_eq!(cli.pidfile, Some(PathBuf::from("/run/x.pid")));
        assert_eq!(cli.signal.as_deref(), Some("USR1"));
        assert_eq!(cli.fail, Some(PathBuf::from("./fail.sh")));
        assert_eq!(cli.recovery, Some(PathBuf::from("./rec.sh")));
        assert_eq!(cli.threshold.as_deref(), Some("3"));
        assert_eq!(cli.start_period.as_deref(), Some("1m"));
        assert_eq!(cli.recovery_timeout.as_deref(), Some("2m"));
        assert_eq!(cli.fault_signal.as_deref(), Some("STOP"));
        assert_eq!(cli.success_signal.as_deref(), Some("CONT"));
        assert_eq!(cli.log, Some(PathBuf::from("/tmp/h.log")));
        assert_eq!(cli.config, Some(PathBuf::from("/etc/heat.toml")));
        assert!(cli.check_config);
        assert_eq!(cli.hook_timeout.as_deref(), Some("30s"));
        assert_eq!(cli.max_output.as_deref(), Some("1MiB"));
        assert!(cli.quiet);
        assert_eq!(cli.verbose, 2);
        assert!(cli.command.is_empty());
    }

    #[test]
    fn long_forms_of_short_options() {
        let cli = parse(&[
            "--interval",
            "1",
            "--script",
            "x",
            "--config",
            "c",
            "--check-config",
            "--quiet",
            "--verbose",
        ]);
        assert_eq!(cli.interval.as_deref(), Some("1"));
        assert_eq!(cli.script, Some(PathBuf::from("x")));
        assert_eq!(cli.config, Some(PathBuf::from("c")));
        assert!(cli.check_config && cli.quiet);
        assert_eq!(cli.verbose, 1);
    }

    #[test]
    fn nothing_given_is_left_to_validation() {
        let cli = parse(&[]);
        assert!(cli.command.is_empty() && cli.script.is_none());
    }

    #[test]
    fn help_describes_the_options() {
        let help = Cli::command().render_long_help().to_string();
        for needle in ["--interval", "--recovery-timeout", "--max-output", "COMMAND", "Examples"] {
            assert!(help.contains(needle), "help lacks {needle}:\n{help}");
        }
    }
}
