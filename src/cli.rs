//! The command line as typed. Option docs are the `--help` text.
//!
//! The options themselves are `config::Args` (the probe options among them
//! defined once with their heat.toml keys); this is the command around them:
//! about, examples, and errors as one line.

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::config::Args;

const AFTER_HELP: &str = "\
Options come before the command: everything from the first non-option on is the
check's own argv. Durations are seconds (30) or 500ms, 30s, 1m30s. Signals are
names or numbers: HUP, SIGUSR1, usr1, 10, RTMIN+1.

Examples:
  heat -i 30 curl -sSf http://localhost/health_check
  heat -i 10s --pidfile /run/nginx.pid --signal USR1 --recovery ./restart.sh -- nc -z localhost 80
  heat -s ./check.sh --fail ./notify.sh --threshold 3 --recovery ./repair.sh

Ask a running heat through its control socket (see heat status --help):
  heat status [NAME...] [--json] [--output]   0 healthy, 1 failing, 3 not running, 4 unknown
  heat pause NAME... [--for 30m] [--reason TEXT]
  heat resume NAME...
  heat run NAME
A check program of one of these names is given after --: heat -i 5 -- status.

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
    #[command(flatten)]
    pub args: Args,
}

/// Why the command line is not a run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--help` or `--version`: printed on stdout, exit 0.
    #[error("{0}")]
    Info(clap::Error),
    /// A usage error, as one line.
    #[error("{0} (see heat --help)")]
    Usage(String),
    /// A value its option cannot take: the line says the fix.
    #[error("{0}")]
    Value(String),
}

impl Cli {
    /// Parses heat's arguments (`args` without the program name is not
    /// accepted: the first is the program, as `std::env::args_os` gives).
    pub fn parse_args<I, T>(args: I) -> Result<Cli, CliError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut cmd = Cli::command();
        if let Some(msg) = single_dash_long(&cmd, &args) {
            return Err(CliError::Usage(msg));
        }
        let parsed =
            cmd.try_get_matches_from_mut(&args).and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
        parsed.map_err(|e| match e.kind() {
            _ if !e.use_stderr() => CliError::Info(e),
            clap::error::ErrorKind::ValueValidation => CliError::Value(one_line(&e)),
            _ => CliError::Usage(one_line(&e)),
        })
    }
}

/// clap's error as one line: its first, without the `error: ` prefix, and
/// its suggestion, if it has one.
fn one_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    let mut line = first.trim_start_matches("error: ").trim().to_string();
    let suggested = match e.get(ContextKind::SuggestedArg) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        Some(ContextValue::Strings(s)) => s.first().map(String::as_str),
        _ => None,
    };
    if let Some(s) = suggested {
        line.push_str(&format!("; did you mean '{s}'?"));
    }
    line
}

/// `-interval 1` would be read as `-i nterval`: a single dash before a long
/// option's name (before the command starts) is refused with the fix.
fn single_dash_long(cmd: &clap::Command, args: &[OsString]) -> Option<String> {
    let takes_value = |a: &clap::Arg| a.get_action().takes_values();
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let arg = arg.to_str()?;
        if arg == "--" || !arg.starts_with('-') || arg == "-" {
            return None;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            let a = cmd.get_arguments().find(|a| a.get_long() == Some(name))?;
            if takes_value(a) && !long.contains('=') {
                rest.next();
            }
            continue;
        }
        let word = &arg[1..];
        let name = word.split('=').next().unwrap_or(word);
        if name.len() > 1 && cmd.get_arguments().any(|a| a.get_long() == Some(name)) {
            return Some(format!("-{name}: long options take two dashes: --{name}"));
        }
        // A cluster of short flags; the first that takes a value ends it.
        for (i, c) in word.char_indices() {
            let a = cmd.get_arguments().find(|a| a.get_short() == Some(c))?;
            if takes_value(a) {
                if i + c.len_utf8() == word.len() {
                    rest.next();
                }
                break;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use std::path::PathBuf;

    use super::*;
    use crate::config::Given;

    fn parse(args: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("heat").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .args
    }

    fn refuse(args: &[&str]) -> clap::Error {
        match Cli::try_parse_from(std::iter::once("heat").chain(args.iter().copied())) {
            Ok(cli) => panic!("{args:?} parsed as {cli:?}"),
            Err(e) => e,
        }
    }

    fn text<T>(given: &[Given<T>]) -> Option<&str> {
        given.last().map(|g| g.text.as_str())
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
        assert_eq!(text(&cli.probe.interval), Some("30"));
        assert_eq!(cli.command, os(&["curl", "-sf", "localhost/health_check"]));
    }

    #[test]
    fn options_after_the_command_belong_to_it() {
        let cli = parse(&["ls", "-i", "5", "--pid", "1", "--", "x"]);
        assert!(cli.probe.interval.is_empty());
        assert!(cli.pid.is_none());
        assert_eq!(cli.command, os(&["ls", "-i", "5", "--pid", "1", "--", "x"]));
    }

    #[test]
    fn double_dash_starts_the_command() {
        let cli = parse(&["-i", "1", "--", "ls", "-l"]);
        assert_eq!(text(&cli.probe.interval), Some("1"));
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
    fn negative_values_reach_their_parser() {
        for (args, said) in [
            (["--pid", "-5"], "--pid -5: must be a positive integer"),
            (["--interval", "-1"], "--interval -1: must not be negative"),
            (["--threshold", "-2"], "--threshold -2: must be at least 1"),
        ] {
            let argv = std::iter::once("heat").chain(args).chain(["ls"]);
            match Cli::parse_args(argv) {
                Err(CliError::Value(msg)) => assert!(msg.starts_with(said), "{msg}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_misspelt_option_gets_a_suggestion() {
        match Cli::parse_args(["heat", "--intervall", "5", "true"]) {
            Err(CliError::Usage(msg)) => assert_eq!(
                msg,
                "unexpected argument '--intervall' found; did you mean '--interval'?"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_long_option_with_one_dash_is_refused_with_the_fix() {
        match Cli::parse_args(["heat", "-interval", "1", "true"]) {
            Err(CliError::Usage(msg)) => {
                assert_eq!(msg, "-interval: long options take two dashes: --interval")
            }
            other => panic!("{other:?}"),
        }
        // Short clusters and values that look like long names are fine.
        let cli = parse(&["-qvv", "-i", "1", "-s", "interval"]);
        assert_eq!(cli.script, Some(PathBuf::from("interval")));
        let cli = parse(&["-i5", "ls", "-interval"]);
        assert_eq!(text(&cli.probe.interval), Some("5"));
        assert_eq!(cli.command, os(&["ls", "-interval"]));
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
        assert_eq!(text(&cli.probe.interval), Some("10s"));
        assert_eq!(cli.script, Some(PathBuf::from("./check.sh")));
        assert_eq!(text(&cli.probe.timeout), Some("5"));
        assert_eq!(cli.pid.as_ref().map(|g| g.text.as_str()), Some("42"));
        assert_eq!(cli.pidfile, Some(PathBuf::from("/run/x.pid")));
        assert_eq!(text(&cli.probe.signal), Some("USR1"));
        assert_eq!(
            cli.probe.fail.last().map(|g| g.value.clone()),
            Some(PathBuf::from("./fail.sh"))
        );
        assert_eq!(
            cli.probe.recovery.last().map(|g| g.value.clone()),
            Some(PathBuf::from("./rec.sh"))
        );
        assert_eq!(text(&cli.probe.threshold), Some("3"));
        assert_eq!(text(&cli.probe.start_period), Some("1m"));
        assert_eq!(text(&cli.probe.recovery_timeout), Some("2m"));
        assert_eq!(text(&cli.probe.fault_signal), Some("STOP"));
        assert_eq!(text(&cli.probe.success_signal), Some("CONT"));
        assert_eq!(cli.log, Some(PathBuf::from("/tmp/h.log")));
        assert_eq!(cli.config, Some(PathBuf::from("/etc/heat.toml")));
        assert!(cli.check_config);
        assert_eq!(text(&cli.probe.hook_timeout), Some("30s"));
        assert_eq!(text(&cli.probe.max_output), Some("1MiB"));
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
        assert_eq!(text(&cli.probe.interval), Some("1"));
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
