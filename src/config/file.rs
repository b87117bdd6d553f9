//! heat.toml: the file's layers (`[defaults]`, `[probe.NAME]`) read strictly,
//! with every value remembering its line so that errors can point at it.
//! Validation itself is the command line's, per probe (`validate_probe`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::env::{Env, Mode};
use super::options::{Command, Layer, Locate, Origin, Raw, RawCheck, RawTarget, Table};
use super::paths::{check_log, vet_config};
use super::validate::validate_probe;
use super::{Args, ConfigError, DEFAULT_LOG, Reason, Settings, cli_layer};
use crate::text::show_path;

/// The name of the probe a command line adds beside the file's.
pub const CLI_PROBE: &str = "cli";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    log: Option<Spanned<String>>,
    control_socket: Option<Spanned<SocketKey>>,
    metrics_listen: Option<Spanned<String>>,
    defaults: Option<Table>,
    #[serde(default)]
    probe: BTreeMap<Spanned<String>, Spanned<Table>>,
}

/// `control_socket = "/run/heat/heat.sock"` or `false`.
#[derive(Deserialize)]
#[serde(untagged)]
enum SocketKey {
    Path(String),
    On(bool),
}

/// Where values of one file come from.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    /// Where each line after the first starts: a span's line is a search away.
    newlines: Vec<usize>,
}

impl Locate for Source<'_> {
    fn origin(&self, span: std::ops::Range<usize>, key: &str) -> Origin {
        Origin::Key { file: self.path.to_path_buf(), line: self.line(span.start), key: key.into() }
    }
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

    /// One table as a layer; `command` and `script` together are refused.
    fn layer(&self, t: &Table) -> Result<Layer, ConfigError> {
        let both = |span, first: &str, second: &str, slot| ConfigError::Both {
            location: self.origin(span, first).location(),
            both: format!("{first} and {second}"),
            slot,
        };
        let check = match (&t.command, self.raw(&t.script, "script")?) {
            (Some(c), Some(_)) => return Err(both(c.span(), "command", "script", "check")),
            (Some(c), None) => Some(Raw {
                value: match c.get_ref() {
                    Command::Argv(argv) => {
                        RawCheck::Exec(argv.iter().map(OsString::from).collect())
                    }
                    Command::Shell(cmd) => RawCheck::Shell(cmd.clone()),
                },
                text: String::new(),
                origin: self.origin(c.span(), "command"),
            }),
            (None, Some(s)) => Some(s.with(RawCheck::Script(s.value.clone()))),
            (None, None) => None,
        };
        let target = match (self.raw(&t.pid, "pid")?, self.raw(&t.pidfile, "pidfile")?) {
            (Some(_), Some(_)) => {
                let span = t.pid.as_ref().map_or(0..0, Spanned::span);
                return Err(both(span, "pid", "pidfile", "target"));
            }
            (Some(p), None) => Some(p.with(RawTarget::Pid(p.value))),
            (None, Some(f)) => Some(f.with(RawTarget::Pidfile(f.value.clone()))),
            (None, None) => None,
        };
        Ok(Layer { check, target, ..Layer::from_table(t, self)? })
    }
}

/// Longest config file heat reads: far beyond any real one.
const MAX_CONFIG: u64 = 16 << 20;

/// Reads and validates `path` with the command line's flags layered on top.
pub fn load(path: &Path, cli: &Args, env: &Env) -> Result<Settings, ConfigError> {
    let cannot = |source| ConfigError::Read { path: path.to_path_buf(), source };
    // Non-blocking: a FIFO or a device put in the file's place must not hang
    // heat in open(); it is refused below.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    vet_config(path, &meta, env)?;
    if meta.len() > MAX_CONFIG {
        return Err(ConfigError::TooLarge { path: path.to_path_buf(), len: meta.len() });
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG).read_to_end(&mut bytes).map_err(cannot)?;
    if env.reload && bytes.is_empty() {
        // An in-place rewrite caught half way reads as empty: applying it would
        // drop every probe and its state.
        return Err(ConfigError::Empty { path: path.to_path_buf() });
    }
    let text = String::from_utf8(bytes).map_err(|e| ConfigError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    parse(&text, path, cli, env)
}

/// Validates the text of a config file found at `path`.
pub fn parse(text: &str, path: &Path, cli: &Args, env: &Env) -> Result<Settings, ConfigError> {
    let src = Source::new(path, text);
    let file: RawFile = toml::from_str(text).map_err(|e| parse_error(&src, &e))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let file_env = Env { mode: Mode::Service, workdir: Some(dir.clone()), ..env.clone() };
    let cwd_env = Env { mode: Mode::Service, workdir: None, ..env.clone() };

    let defaults = src.layer(&file.defaults.unwrap_or_default())?;
    let cli_layer = absolute_paths(cli_layer(cli)?);
    let (cli_check, flags) = (cli_layer.check.clone(), Layer { check: None, ..cli_layer });

    let mut warnings = Vec::new();
    let mut probes = Vec::new();
    for (name, table) in &file.probe {
        let origin = src.origin(name.span(), name.get_ref());
        check_name(name.get_ref(), &origin)?;
        if name.get_ref() == CLI_PROBE && cli_check.is_some() {
            return Err(ConfigError::CliProbeTaken { location: origin.location() });
        }
        let own = src.layer(table.get_ref()).map_err(|e| e.in_probe(name.get_ref()))?;
        let layer = flags.clone().over(own.over(defaults.clone()));
        probes.push(validate_probe(
            name.get_ref(),
            Some(&origin),
            &layer,
            &file_env,
            &mut warnings,
        )?);
    }
    if let Some(check) = cli_check {
        let layer = Layer { check: Some(check), ..flags.clone() }.over(defaults.clone());
        probes.push(validate_probe(CLI_PROBE, None, &layer, &cwd_env, &mut warnings)?);
    }
    if probes.is_empty() {
        warnings.push(format!("{}: no probes; heat runs idle", path.display()));
    }

    let log = match (&cli.log, &file.log) {
        (Some(flag), _) => Raw {
            value: flag.clone(),
            text: flag.to_string_lossy().into_owned(),
            origin: Origin::flag("--log"),
        },
        (None, Some(key)) => Raw {
            value: dir.join(key.get_ref()),
            text: key.get_ref().clone(),
            origin: src.origin(key.span(), "log"),
        },
        (None, None) => Raw {
            value: PathBuf::from(DEFAULT_LOG),
            text: DEFAULT_LOG.to_string(),
            origin: Origin::flag("--log"),
        },
    };
    check_log(&log, &cwd_env)?;
    let control_socket = match (&cli.control_socket, &file.control_socket) {
        (Some(flag), _) => Some(cwd_env.resolve(flag)),
        (None, Some(key)) => match key.get_ref() {
            SocketKey::Path(p) => Some(dir.join(p)),
            SocketKey::On(false) => None,
            SocketKey::On(true) => {
                let origin = src.origin(key.span(), "control_socket");
                return Err(ConfigError::value(origin, "true", Reason::SocketOn));
            }
        },
        (None, None) => crate::control::default_socket(),
    };
    let metrics_listen = match (&cli.metrics_listen, &file.metrics_listen) {
        (Some(_), _) => super::metrics_flag(cli)?,
        (None, Some(key)) => Some(super::listen_address(&Raw {
            value: key.get_ref().clone(),
            text: key.get_ref().clone(),
            origin: src.origin(key.span(), "metrics_listen"),
        })?),
        (None, None) => None,
    };
    Ok(Settings {
        log: log.value,
        quiet: cli.quiet,
        verbose: cli.verbose,
        check_only: cli.check_config,
        probes,
        warnings,
        config: Some(path.to_path_buf()),
        control_socket,
        metrics_listen,
    })
}

/// `heat.toml:3:12: interval: invalid type: …`: where, the key when the span
/// is a value, and toml's reason (its first line); an unknown key gets the
/// nearest known one as a suggestion.
fn parse_error(src: &Source, e: &toml::de::Error) -> ConfigError {
    // A quoted key may hold a line break or a terminal escape: one line, cut.
    let message = crate::text::one_line(&suggest(e.message().trim()));
    let path = show_path(src.path);
    let Some(span) = e.span() else {
        return ConfigError::Syntax { location: format!("{path}: "), message };
    };
    let start = span.start.min(src.text.len());
    let line_start = src.text[..start].rfind('\n').map_or(0, |i| i + 1);
    let (line, col) = (src.line(start), start - line_start + 1);
    let before = src.text[line_start..start].trim_end();
    let key = before
        .strip_suffix('=')
        .map(|k| k.trim().trim_matches('"'))
        .filter(|k| !k.is_empty() && !message.contains(&format!("`{k}`")));
    let location = match key {
        Some(key) => format!("{path}:{line}:{col}: {}: ", crate::text::shown(key)),
        None => format!("{path}:{line}:{col}: "),
    };
    ConfigError::Syntax { location, message }
}

/// serde's ``unknown field `intervall`, expected one of `command`, …`` with
/// the nearest known key, when one is near: ``unknown field `intervall`; did
/// you mean `interval`?``
fn suggest(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let known = expected.split('`').skip(1).step_by(2);
    let nearest = known
        .map(|k| (strsim::jaro_winkler(unknown, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match nearest {
        Some((_, k)) => format!("unknown field `{unknown}`; did you mean `{k}`?"),
        None => message.to_string(),
    }
}

/// Probe names appear in the log and in `HEAT_PROBE`.
fn check_name(name: &str, origin: &Origin) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        return Ok(());
    }
    Err(ConfigError::ProbeName { location: origin.location(), name: name.to_string() })
}

/// Command-line paths are relative to heat's own directory, whatever the file's is.
fn absolute_paths(mut layer: Layer) -> Layer {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if let Some(r) = &mut layer.fail {
        r.value = abs(&r.value);
    }
    if let Some(r) = &mut layer.recovery {
        r.value = abs(&r.value);
    }
    if let Some(Raw { value: RawTarget::Pidfile(p), .. }) = &mut layer.target {
        *p = abs(p);
    }
    layer
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
            let cli = crate::cli::Cli::try_parse_from(argv).unwrap().args;
            parse(text, &conf, &cli, &Env::current())
        }
        fn ok(&self, text: &str, args: &[&str]) -> Settings {
            self.parse(text, args).unwrap_or_else(|e| panic!("{text}\n-> {e}"))
        }
        fn err(&self, text: &str) -> String {
            match self.parse(text, &[]) {
                Ok(s) => panic!("{text}\n-> accepted: {:?}", s.probes),
                Err(e) => {
                    crate::text::chain(&e).replace(self.conf().to_str().unwrap(), "heat.toml")
                }
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
            "heat.toml:3:1: unknown field `intervall`; did you mean `interval`?"
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
        // A string where TOML has a type for numbers.
        let e = d.err("[probe.a]\ncommand = [\"true\"]\nthreshold = \"3\"\n");
        assert!(
            e.starts_with(
                "heat.toml:3:13: threshold: invalid type: string \"3\", expected an integer"
            ),
            "{e}"
        );
        // Nothing near enough: the list of keys instead.
        let e = d.err("[probe.a]\ncommand = [\"true\"]\nzzz = 1\n");
        assert!(
            e.starts_with("heat.toml:3:1: unknown field `zzz`, expected one of `command`"),
            "{e}"
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
            "probe a: heat.toml:2: command and script: give one check, not both"
        );
        // The table is named by its line, as a key would be.
        assert_eq!(
            d.err("[defaults]\ninterval = 5\n[probe.a]\ninterval = 5\n"),
            "probe a: heat.toml:3: no check: set command or script"
        );
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
            crate::text::chain(&e).ends_with(
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
    fn heat_toml_takes_the_execution_context() {
        let d = Dir::new();
        std::fs::create_dir_all(d.0.join("work")).unwrap();
        let s = d.ok(
            "[probe.a]\ncommand = [\"true\"]\nuser = \"nobody\"\nworkdir = \"work\"\n\
             env = { LANG = \"C\", TZ = \"UTC\" }\npids_max = 16\ncpu_max = \"150%\"\n",
            &[],
        );
        let p = &s.probes[0];
        assert_eq!(p.user.as_ref().map(|c| c.uid), Some(65534));
        assert_eq!(p.workdir.as_deref(), Some(d.0.join("work").as_path()), "relative to the file");
        assert_eq!(p.env, [("LANG".into(), "C".into()), ("TZ".into(), "UTC".into())]);
        assert_eq!(p.limits.pids_max, Some(16));
        assert_eq!(p.limits.cpu_max.map(|q| q.quota_us()), Some(150_000));
        let e = d.err("[probe.a]\ncommand = [\"true\"]\nenv = { HEAT_X = \"1\" }\n");
        assert_eq!(e, "probe a: heat.toml:3: env {HEAT_X}: HEAT_* variables are heat's own");
        let e = d.err("[probe.a]\ncommand = [\"true\"]\nenv = \"LANG=C\"\n");
        assert!(e.starts_with("heat.toml:3:7: env: invalid type: string"), "{e}");
        let e = d.err("[probe.a]\ncommand = [\"true\"]\nuser = \"no-such-user-x\"\n");
        assert_eq!(e, "probe a: heat.toml:3: user no-such-user-x: no such user");
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
        let cli = crate::cli::Cli::try_parse_from(["heat", "-c", d.conf().to_str().unwrap()])
            .unwrap()
            .args;
        let root = Env { euid: 0, ..Env::current() };
        let e = load(&d.conf(), &cli, &root).unwrap_err();
        assert!(crate::text::chain(&e).contains("mode 0666 is group- or world-writable"), "{e}");
        let user = Env { euid: 1000, ..Env::current() };
        assert!(load(&d.conf(), &cli, &user).is_ok());
    }
}
