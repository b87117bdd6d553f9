//! The command line as typed. Option docs are the `--help` text.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser, Debug, Clone, Default)]
#[command(name = "heat", version, about = "A health-check supervisor for Linux hosts")]
pub struct Cli {
    /// Time between check starts (`30`, `500ms`, `1m30s`)
    #[arg(short, long, value_name = "D")]
    pub interval: Option<String>,
    /// Executable check script
    #[arg(short, long, value_name = "PATH")]
    pub script: Option<PathBuf>,
    /// The check command and its arguments (exec'd directly, no shell)
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<std::ffi::OsString>,
    /// More diagnostics on stderr (repeat for more)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}
