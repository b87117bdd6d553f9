//! heat.toml: the file's layers (`[defaults]`, `[probe.NAME]`) read strictly,
//! with every value remembering its line so that errors can point at it.
//! Validation itself is the command line's, per probe (`validate_probe`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use super::{
    ConfigError, Env, Mode, Origin, Raw, RawCheck, RawProbe, RawTarget, Settings, check_log_dir,
    io_reason, refuse_untrusted_config, show_path, shown, validate_probe,
};
use crate::cli::Cli;

/// The name of the probe a command line adds beside the file's.
pub const CLI_PROBE: &str = "cli";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    log: Option<Spanned<String>>,
    defaults: Option<RawTable>,
    #[serde(default)]
    probe: BTreeMap<Spanned<String>, Spanned<RawTable>>,
}

/// A probe table or `[defaults]`: the probe keys, each with its span.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTable {
    command: Option<Spanned<Command>>,
    script: Option<Spanned<String>>,
    interval: Option<Spanned<Scalar>>,
    timeout: Option<Spanned<Scalar>>,
    pid: Option<Spanned<Scalar>>,
    pidfile: Option<Spanned<String>>,
    signal: Option<Spanned<Scalar>>,
    fail: Option<Spanned<String>>,
    recovery: Option<Spanned<String>>,
    threshold: Option<Spanned<Scalar>>,
    start_period: Option<Spanned<Scalar>>,
    recovery_timeout: Option<Spanned<Scalar>>,
    fault_signal: Option<Spanned<Scalar>>,
    success_signal: Option<Spanned<Scalar>>,
    hook_timeout: Option<Spanned<Scalar>>,
    max_output: Option<Spanned<Scalar>>,
}

/// `command = ["prog", "arg"]` (exec form) or `command = "shell words"`.
enum Command {
    Argv(Vec<String>),
    Shell(String),
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Command, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings (exec form) or a string (run by /bin/sh -c)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Command, E> {
                Ok(Command::Shell(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Command, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(Command::Argv(argv))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or an integer, kept as text for the shared validators
/// (`30` is seconds, a size in bytes, a signal number, a pid).
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where values of one file come from.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    /// Where each line after the first starts: a span's line is a search away.
    newlines: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(path: &'a Path, text: &'a str) -> Source<'a> {
        let newlines =
            text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i).collect();
        Source { path, text, newlines }
    }

    fn line(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&nl| nl < offset) + 1
    }

    fn origin(&self, span: std::ops::Range<usize>, key: &str) -> Origin {
        Origin::Key { file: self.path.to_path_buf(), line: self.line(span.start), key: key.into() }
    }

    fn text(&self, v: &Option<Spanned<Scalar>>, key: &str) -> Option<Raw<String>> {
        v.as_ref().map(|s| Raw { value: s.get_ref().0.clone(), origin: self.origin(s.span(), key) })
    }

    fn path(&self, v: &Option<Spanned<String>>, key: &str) -> Option<Raw<PathBuf>> {
        v.as_ref()
            .map(|s| Raw { value: PathBuf::from(s.get_ref()), origin: self.origin(s.span(), key) })
    }

    /// One table as a layer; `command` and `script` together are refused.
    fn layer(&self, t: &RawTable) -> Result<RawProbe, ConfigError> {
        let check = match (&t.command, &t.script) {
            (Some(c), Some(_)) => {
                return Err(ConfigError(format!(
                    "{}command and script: give one check, not both",
                    self.origin(c.span(), "command").location()
                )));
            }
            (Some(c), None) => Some(Raw {
                value: match c.get_ref() {
                    Command::Argv(argv) => {
                        RawCheck::Exec(argv.iter().map(OsString::from).collect())
                    }
                    Command::Shell(cmd) => RawCheck::Shell(cmd.clone()),
                },
                origin: self.origin(c.span(), "command"),
            }),
            (None, Some(s)) => Some(Raw {
                value: RawCheck::Script(PathBuf::from(s.get_ref())),
                origin: self.origin(s.span(), "script"),
            }),
            (None, None) => None,
        };
        let target = match (&t.pid, &t.pidfile) {
            (Some(p), Some(_)) => {
                return Err(ConfigError(format!(
                    "{}pid and pidfile: give one target, not both",
                    self.origin(p.span(), "pid").location()
                )));
            }
            (Some(p), None) => Some(Raw {
                value: RawTarget::Pid(p.get_ref().0.clone()),
                origin: self.origin(p.span(), "pid"),
            }),
            (None, Some(f)) => Some(Raw {
                value: RawTarget::Pidfile(PathBuf::from(f.get_ref())),
                origin: self.origin(f.span(), "pidfile"),
            }),
            (None, None) => None,
        };
        Ok(RawProbe {
            check,
            interval: self.text(&t.interval, "interval"),
            timeout: self.text(&t.timeout, "timeout"),
            target,
            signal: self.text(&t.signal, "signal"),
            fail: self.path(&t.fail, "fail"),
            recovery: self.path(&t.recovery, "recovery"),
            threshold: self.text(&t.threshold, "threshold"),
            start_period: self.text(&t.start_period, "start_period"),
            recovery_timeout: self.text(&t.recovery_timeout, "recovery_timeout"),
            fault_signal: self.text(&t.fault_signal, "fault_signal"),
            success_signal: self.text(&t.success_signal, "success_signal"),
            hook_timeout: self.text(&t.hook_timeout, "hook_timeout"),
            max_output: self.text(&t.max_output, "max_output"),
        })
    }
}

/// Longest config file heat reads: far beyond any real one.
const MAX_CONFIG: u64 = 16 << 20;

/// Reads and validates `path` with the command line's flags layered on top.
pub fn load(path: &Path, cli: &Cli, env: &Env) -> Result<Settings, ConfigError> {
    let cannot = |e: io::Error| {
        ConfigError(format!("cannot read config {}: {}", show_path(path), io_reason(&e)))
    };
    // Non-blocking: a FIFO or a device put in the file's place must not hang
    // heat in open(); it is refused below.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    refuse_untrusted_config(path, &meta, env)?;
    if meta.len() > MAX_CONFIG {
        return Err(ConfigError(format!(
            "config {}: {} bytes is too large (at most 16MiB)",
            show_path(path),
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG).read_to_end(&mut bytes).map_err(cannot)?;
    if env.reload && bytes.is_empty() {
        // An in-place rewrite caught half way reads as empty: applying it would
        // drop every probe and its state.
        return Err(ConfigError(format!(
            "config {} is empty (0 bytes), as a file caught while it is rewritten reads; to run \
             no probes on purpose, leave a comment in it",
            show_path(path)
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        ConfigError(format!(
            "config {}: not UTF-8 text (invalid byte at offset {})",
            show_path(path),
            e.utf8_error().valid_up_to()
        ))
    })?;
    parse(&text, path, cli, env)
}

/// Validates the text of a config file found at `path`.
pub fn parse(text: &str, path: &Path, cli: &Cli, env: &Env) -> Result<Settings, ConfigError> {
    let src = Source::new(path, text);
    let file: RawFile = toml::from_str(text).map_err(|e| parse_error(&src, &e))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let file_env = Env { mode: Mode::Service, workdir: Some(dir.clone()), ..env.clone() };
    let cwd_env = Env { mode: Mode::Service, workdir: None, ..env.clone() };

    let defaults = src.layer(&file.defaults.unwrap_or_default())?;
    let cli_layer = absolute_paths(RawProbe::from_cli(cli)?);
    let (cli_check, flags) = (cli_layer.check.clone(), RawProbe { check: None, ..cli_layer });

    let mut warnings = Vec::new();
    let mut probes = Vec::new();
    for (name, table) in &file.probe {
        let origin = src.origin(name.span(), name.get_ref());
        check_name(name.get_ref(), &origin)?;
        if name.get_ref() == CLI_PROBE && cli_check.is_some() {
            return Err(ConfigError(format!(
                "{}[probe.cli] is taken by the check given on the command line; rename the table",
                origin.location()
            )));
        }
        let raw = flags.clone().over(src.layer(table.get_ref())?.over(defaults.clone()));
        probes.push(validate_probe(name.get_ref(), &raw, &file_env, &mut warnings)?);
    }
    if let Some(check) = cli_check {
        let raw = RawProbe { check: Some(check), ..flags.clone() }.over(defaults.clone());
        probes.push(validate_probe(CLI_PROBE, &raw, &cwd_env, &mut warnings)?);
    }
    if probes.is_empty() {
        warnings.push(format!("{}: no probes; heat runs idle", path.display()));
    }

    let log = match (&cli.log, &file.log) {
        (Some(flag), _) => Raw::flag("--log", flag.clone()),
        (None, Some(key)) => {
            Raw { value: dir.join(key.get_ref()), origin: src.origin(key.span(), "log") }
        }
        (None, None) => Raw::flag("--log", PathBuf::from(super::DEFAULT_LOG)),
    };
    check_log_dir(&log, &cwd_env)?;
    Ok(Settings {
        log: log.value,
        quiet: cli.quiet,
        verbose: cli.verbose,
        check_only: cli.check_config,
        probes,
        warnings,
        config: Some(path.to_path_buf()),
    })
}

/// `heat.toml:3:12: interval: invalid type: …`: where, the key when the span
/// is a value, and toml's reason (its first line).
fn parse_error(src: &Source, e: &toml::de::Error) -> ConfigError {
    // A quoted key may hold a line break or a terminal escape: one line, cut.
    let msg = crate::text::one_line(e.message().trim());
    let Some(span) = e.span() else {
        return ConfigError(format!("{}: {msg}", show_path(src.path)));
    };
    let start = span.start.min(src.text.len());
    let line_start = src.text[..start].rfind('\n').map_or(0, |i| i + 1);
    let (line, col) = (src.line(start), start - line_start + 1);
    let before = src.text[line_start..start].trim_end();
    let key = before
        .strip_suffix('=')
        .map(|k| k.trim().trim_matches('"'))
        .filter(|k| !k.is_empty() && !msg.contains(&format!("`{k}`")));
    let path = show_path(src.path);
    match key {
        Some(key) => ConfigError(format!("{path}:{line}:{col}: {}: {msg}", shown(key))),
        None => ConfigError(format!("{path}:{line}:{col}: {msg}")),
    }
}

/// Probe names appear in the log and in `HEAT_PROBE`.
fn check_name(name: &str, origin: &Origin) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        return Ok(());
    }
    Err(ConfigError(format!(
        "{}probe name \"{}\": use letters, digits, '_' and '-' only",
        origin.location(),
        shown(name)
    )))
}

/// Command-line paths are relative to heat's own directory, whatever the file's is.
fn absolute_paths(mut raw: RawProbe) -> RawProbe {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if let Some(r) = &mut raw.fail {
        r.value = abs(&r.value);
    }
    if let Some(r) = &mut raw.recovery {
        r.value = abs(&r.value);
    }
    if let Some(Raw { value: RawTarget::Pidfile(p), .. }) = &mut raw.target {
        *p = abs(p);
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Check, TargetSpec};
    use clap::Parser;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    /// A temp dir with an executable `check.sh` and `hook.sh`, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Dir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("heat-file-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            for name in ["check.sh", "hook.sh"] {
                let p = dir.join(name);
                std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            Dir(dir)
        }
        fn conf(&self) -> PathBuf {
            self.0.join("heat.toml")
        }
        fn parse(&self, text: &str, args: &[&str]) -> Result<Settings, ConfigError> {
            let mut argv = vec!["heat", "-c"];
            let conf = self.conf();
            argv.push(conf.to_str().unwrap());
            argv.extend_from_slice(args);
            let cli = Cli::try_parse_from(argv).unwrap();
            parse(text, &conf, &cli, &Env::current())
        }
        fn ok(&self, text: &str, args: &[&str]) -> Settings {
            self.parse(text, args).unwrap_or_else(|e| panic!("{text}\n-> {e}"))
        }
        fn err(&self, text: &str) -> String {
            match self.parse(text, &[]) {
                Ok(s) => panic!("{text}\n-> accepted: {:?}", s.probes),
                Err(e) => e.0.replace(self.conf().to_str().unwrap(), "heat.toml"),
            }
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn layers_stack_defaults_then_probe_then_command_line() {
        let d = Dir::new();
        let text = r#"
            [defaults]
            interval = "10s"
            timeout = 3
            threshold = 2

            [probe.a]
            command = ["true"]
            interval = 20

            [probe.b]
            script = "check.sh"
        "#;
        let s = d.ok(text, &[]);
        let (a, b) = (&s.probes[0], &s.probes[1]);
        assert_eq!((a.name.as_str(), a.interval, a.timeout), ("a", 20 * S, 3 * S));
        assert_eq!((b.name.as_str(), b.interval, b.threshold.get()), ("b", 10 * S, 2));

        let s = d.ok(text, &["--threshold", "5", "-i", "1"]);
        assert!(s.probes.iter().all(|p| p.threshold.get() == 5 && p.interval == S));
        assert_eq!(s.config.as_deref(), Some(d.conf().as_path()));
    }

    #[test]
    fn exec_and_shell_forms() {
        let d = Dir::new();
        let s = d.ok(
            "[probe.x]\ncommand = [\"true\", \"a b\"]\n[probe.y]\ncommand = \"test 1 -lt 2\"\n",
            &[],
        );
        match &s.probes[0].check {
            Check::Exec { program, args } => {
                assert!(program.is_absolute(), "{program:?}");
                assert_eq!(args, &[OsString::from("a b")]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.probes[0].display, "true 'a b'");
        assert_eq!(s.probes[1].check, Check::Shell { command: "test 1 -lt 2".into() });
    }

    #[test]
    fn relative_paths_are_relative_to_the_file_and_checks_run_there() {
        let d = Dir::new();
        let s = d.ok(
            "log = \"x.log\"\n[probe.s]\nscript = \"check.sh\"\nfail = \"./hook.sh\"\npidfile = \"run/app.pid\"\n",
            &[],
        );
        let p = &s.probes[0];
        assert_eq!(p.check, Check::Script { path: d.0.join("check.sh") });
        assert_eq!(p.fail.as_ref().unwrap().path, d.0.join("./hook.sh"));
        assert_eq!(p.fail.as_ref().unwrap().display, "./hook.sh");
        assert_eq!(p.target, Some(TargetSpec::Pidfile(d.0.join("run/app.pid"))));
        assert_eq!(p.workdir.as_deref(), Some(d.0.as_path()));
        assert_eq!(s.log, d.0.join("x.log"));
    }

    #[test]
    fn unknown_keys_wrong_types_and_bad_values_name_file_line_and_key() {
        let d = Dir::new();
        assert_eq!(
            d.err("[probe.a]\ncommand = [\"true\"]\nintervall = 5\n"),
            "heat.toml:3:1: unknown field `intervall`, expected one of `command`, `script`, \
             `interval`, `timeout`, `pid`, `pidfile`, `signal`, `fail`, `recovery`, `threshold`, \
             `start_period`, `recovery_timeout`, `fault_signal`, `success_signal`, \
             `hook_timeout`, `max_output`"
        );
        let e = d.err("[probe.a]\ncommand = [\"true\"]\ninterval = true\n");
        assert!(e.starts_with("heat.toml:3:12: interval: invalid type: boolean `true`"), "{e}");
        assert_eq!(
            d.err("[probe.a]\ncommand = [\"true\"]\n\ninterval = \"0s\"\n"),
            "probe a: heat.toml:4: interval 0s: must be greater than zero"
        );
        assert_eq!(
            d.err("[probe.a]\ncommand = [\"true\"]\nsignal = \"FOO\"\n"),
            "probe a: heat.toml:3: signal FOO: unknown signal (try HUP, USR1, TERM, RTMIN+1 or a number)"
        );
        let e = d.err("nope = 1\n");
        assert!(e.starts_with("heat.toml:1:1: unknown field `nope`"), "{e}");
        let e = d.err("[probe.a\n");
        assert!(e.starts_with("heat.toml:1:"), "{e}");
    }

    #[test]
    fn one_check_and_one_target_per_layer() {
        let d = Dir::new();
        assert_eq!(
            d.err("[probe.a]\ncommand = [\"true\"]\nscript = \"check.sh\"\n"),
            "heat.toml:2: command and script: give one check, not both"
        );
        assert_eq!(d.err("[probe.a]\ninterval = 5\n"), "probe a: no check: set command or script");
        // A more specific layer that sets one of a pair replaces the other.
        let s = d.ok("[defaults]\nscript = \"check.sh\"\n[probe.a]\ncommand = [\"true\"]\n", &[]);
        assert!(matches!(s.probes[0].check, Check::Exec { .. }));
    }

    #[test]
    fn a_command_line_check_adds_the_cli_probe() {
        let d = Dir::new();
        let s = d.ok("[defaults]\ninterval = 7\n[probe.a]\ncommand = [\"true\"]\n", &["false"]);
        let names: Vec<_> = s.probes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "cli"]);
        assert_eq!(s.probes[1].interval, 7 * S, "[defaults] applies to cli too");
        assert_eq!(s.probes[1].workdir, None, "cli runs in heat's own directory");
        let e = d.parse("[probe.cli]\ncommand = [\"true\"]\n", &["false"]).unwrap_err();
        assert!(
            e.0.ends_with(
                "[probe.cli] is taken by the check given on the command line; rename the table"
            ),
            "{e}"
        );
    }

    #[test]
    fn an_empty_file_is_valid_and_warned_about() {
        let d = Dir::new();
        let s = d.ok("# nothing yet\n", &[]);
        assert!(s.probes.is_empty());
        assert!(s.warnings[0].ends_with("no probes; heat runs idle"), "{:?}", s.warnings);
    }

    #[test]
    fn probe_names_are_checked() {
        let d = Dir::new();
        assert_eq!(
            d.err("[probe.\"a b\"]\ncommand = [\"true\"]\n"),
            "heat.toml:1: probe name \"a b\": use letters, digits, '_' and '-' only"
        );
    }

    #[test]
    fn a_pidfile_naming_no_live_process_is_not_an_error_in_service_mode() {
        let d = Dir::new();
        let s = d.ok("[probe.a]\ncommand = [\"true\"]\npidfile = \"none.pid\"\n", &[]);
        assert!(matches!(s.probes[0].target, Some(TargetSpec::Pidfile(_))));
    }

    #[test]
    fn load_refuses_a_world_writable_config_as_root() {
        let d = Dir::new();
        std::fs::write(d.conf(), "").unwrap();
        std::fs::set_permissions(d.conf(), std::fs::Permissions::from_mode(0o666)).unwrap();
        let cli = Cli::try_parse_from(["heat", "-c", d.conf().to_str().unwrap()]).unwrap();
        let root = Env { euid: 0, ..Env::current() };
        let e = load(&d.conf(), &cli, &root).unwrap_err();
        assert!(e.0.contains("mode 0666 is group- or world-writable"), "{e}");
        let user = Env { euid: 1000, ..Env::current() };
        assert!(load(&d.conf(), &cli, &user).is_ok());
    }
}
