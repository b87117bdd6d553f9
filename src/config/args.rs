//! The command line's options. The probe options are [`ProbeFlags`], defined
//! once with their heat.toml keys; the rest belong to the command line alone.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, ValueHint};

use super::options::ProbeFlags;
use super::value::{Given, Parser, Pid};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct Args {
    /// Executable check script, instead of a command
    ///
    /// A script without a `#!` line runs with /bin/sh.
    #[arg(short, long, value_name = "PATH", value_hint = ValueHint::ExecutablePath)]
    pub script: Option<PathBuf>,

    /// Target process, signalled on failure; heat exits when it does
    ///
    /// Must be alive at start; pid 1 and heat itself are refused.
    #[arg(
        long,
        value_name = "PID",
        allow_hyphen_values = true,
        value_parser = Parser::<Pid>::new(),
        value_hint = ValueHint::Other
    )]
    pub pid: Option<Given<Pid>>,

    /// Target = the live process this file names; followed across restarts
    ///
    /// The pid is the file's first line. When the target exits, heat re-reads the file
    /// and follows a new live pid, waiting at least one interval (a whole recovery round
    /// while one runs).
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub pidfile: Option<PathBuf>,

    #[command(flatten)]
    pub probe: ProbeFlags,

    /// The verbose log, appended to [default: heat.verbose.log]
    ///
    /// Created with mode 0640 if missing; its directory must exist.
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub log: Option<PathBuf>,

    /// The control socket for `heat status`, `pause`, `resume` and `run`
    ///
    /// Service mode uses /run/heat/heat.sock by default (as root; otherwise
    /// $XDG_RUNTIME_DIR/heat.sock), or the file's control_socket; on the command line
    /// there is none unless this is given.
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub control_socket: Option<PathBuf>,

    /// Serve Prometheus metrics on this address (GET /metrics, /status.json)
    ///
    /// Off unless given here or as the file's metrics_listen; for example 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,

    /// Service mode: run the probes of this heat.toml
    #[arg(short, long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub config: Option<PathBuf>,

    /// Validate, print the effective settings and exit (0 valid, 2 not)
    ///
    /// Checks exactly what a start would, without creating the log or running anything.
    #[arg(short = 't', long)]
    pub check_config: bool,

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
    #[arg(value_name = "COMMAND", trailing_var_arg = true, value_hint = ValueHint::CommandWithArguments)]
    pub command: Vec<OsString>,
}
