//! Property tests of configuration: any heat.toml and any command line give
//! settings or a one-line error, never a panic or a hang.
//!
//! Library level (many cases): generated files and argv through
//! `Cli::try_parse_from` and `settings_from_cli`; an error is heat's own
//! `ConfigError`, one non-empty line of bounded length. Binary level (fewer):
//! the real `heat -t`, bounded in time, exits 0 or 2, and on 2 prints exactly
//! one `heat: ` line on stderr.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use heat::cli::Cli;
use heat::cli::CliError;
use heat::config::{Env, settings_from_cli};
use heat::text::chain;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// An error line longer than this is not a readable one-line error.
const ERROR_MAX: usize = 600;
/// How long one `heat -t` may take.
const RUN_MAX: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// A directory of things a config can name

/// A temp dir (0755, as root heat refuses others' writable dirs) holding
/// scripts, odd files and a heat.toml; removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("heat-props-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        let d = Dir(dir);
        d.mode("", 0o755);
        for (name, text, mode) in [
            ("check.sh", "#!/bin/sh\nexit 0\n", 0o755),
            ("hook.sh", "#!/bin/sh\nexit 0\n", 0o755),
            ("noexec.sh", "#!/bin/sh\nexit 0\n", 0o644),
            ("writable.sh", "#!/bin/sh\nexit 0\n", 0o777),
            ("empty.pid", "", 0o644),
            ("garbage.pid", "12\r34 x\n", 0o644),
            ("init.pid", "1\n", 0o644),
            ("writable.pid", "1\n", 0o666),
            ("writable.toml", "", 0o666),
            ("heat.toml", "", 0o644),
        ] {
            fs::write(d.0.join(name), text).unwrap();
            d.mode(name, mode);
        }
        // A live process that started before its pidfile was written.
        fs::write(d.0.join("live.pid"), format!("{}\n", std::os::unix::process::parent_id()))
            .unwrap();
        d.mode("live.pid", 0o644);
        fs::create_dir(d.0.join("sub")).unwrap();
        d.mode("sub", 0o755);
        nix::unistd::mkfifo(&d.0.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644))
            .unwrap();
        symlink("loop", d.0.join("loop")).unwrap();
        symlink("check.sh", d.0.join("link.sh")).unwrap();
        d
    }

    fn mode(&self, name: &str, mode: u32) {
        let path = if name.is_empty() { self.0.clone() } else { self.0.join(name) };
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes a config file of its own (0644) for one case.
    fn config(&self, bytes: &[u8]) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = self.0.join(format!("case-{}.toml", N.fetch_add(1, Ordering::Relaxed)));
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Paths worth naming, relative to the dir (config paths are relative to the
/// file's directory; the command line's to the cwd, which is the dir for
/// the binary).
const PATHS: &[&str] = &[
    "check.sh",
    "./hook.sh",
    "link.sh",
    "noexec.sh",
    "writable.sh",
    "fifo",
    "loop",
    "sub",
    "sub/",
    "sub/x.log",
    "nope/x.log",
    "missing.sh",
    "empty.pid",
    "garbage.pid",
    "init.pid",
    "live.pid",
    "writable.pid",
    "heat.toml",
    "x.log",
    "/dev/null",
    "/nonexistent/x",
    "/",
    "",
    ".",
    "..",
];

// ---------------------------------------------------------------------------
// Values

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text of the kinds heat's values take, and odd ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "30",
            "0",
            "10ms",
            "9ms",
            "500ms",
            "1m30s",
            "-1",
            " -5",
            "1 year",
            "11 years",
            "99999999999999999999",
            "18446744073709551616",
            "1e3",
            "30s ",
            " ",
            "",
            "\n",
            "1\n2",
            "HUP",
            "SIGUSR1",
            "usr1",
            "10",
            "RTMIN+1",
            "RTMAX-1",
            "RTMIN+99",
            "65",
            "KILL",
            "STOP",
            "TSTP",
            "CONT",
            "SIGBOGUS",
            "64KiB",
            "16MiB",
            "17MiB",
            "1GiB",
            "64 KiB",
            "0B",
            "1",
            "2",
            "5",
            "4194305",
            "2147483648",
            "abc",
            "true",
            "/bin/true",
            "héat",
            "日本",
            "\u{202e}rtl",
            "a\tb",
            "a\rb",
            "\u{7}",
        ])
        .prop_map(String::from),
        proptest::sample::select(PATHS.to_vec()).prop_map(String::from),
        any::<String>().prop_map(|s| s.chars().take(40).collect()),
        (1usize..3000).prop_map(|n| "x".repeat(n)),
        Just(std::process::id().to_string()),
        Just(std::os::unix::process::parent_id().to_string()),
    ]
}

/// A TOML value of any type.
fn value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        6 => text().prop_map(|s| toml_string(&s)),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        2 => (-3i64..70).prop_map(|n| n.to_string()),
        1 => Just("99999999999999999999".to_string()),
        1 => any::<f64>().prop_map(|f| format!("{f:?}")),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        1 => Just("1979-05-27T07:32:00Z".to_string()),
        1 => Just("nan".to_string()),
        1 => text().prop_map(|s| format!("'{}'", s.replace(['\'', '\n', '\r'], ""))),
    ];
    scalar.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec(inner, 0..3).prop_map(|v| {
                let kv: Vec<String> =
                    v.iter().enumerate().map(|(i, x)| format!("k{i} = {x}")).collect();
                format!("{{ {} }}", kv.join(", "))
            }),
        ]
    })
}

const KEYS: &[&str] = &[
    "command",
    "script",
    "interval",
    "timeout",
    "pid",
    "pidfile",
    "signal",
    "fail",
    "recovery",
    "threshold",
    "start_period",
    "recovery_timeout",
    "fault_signal",
    "success_signal",
    "hook_timeout",
    "max_output",
];

/// A value the key means to take, mostly; any value sometimes.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let typed: BoxedStrategy<String> = match key {
        "command" => prop_oneof![
            proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(vec![
                        "true",
                        "/bin/true",
                        "./check.sh",
                        "check.sh",
                        "sh",
                        "-c",
                        "exit 0",
                        "nonexistent-xyz",
                        "",
                        "sub",
                        "/dev/null",
                    ])
                    .prop_map(String::from),
                    text(),
                ],
                0..4
            )
            .prop_map(|v| {
                let v: Vec<String> = v.iter().map(|s| toml_string(s)).collect();
                format!("[{}]", v.join(", "))
            }),
            text().prop_map(|s| toml_string(&s)),
        ]
        .boxed(),
        "script" | "fail" | "recovery" | "pidfile" => {
            proptest::sample::select(PATHS.to_vec()).prop_map(toml_string).boxed()
        }
        _ => prop_oneof![
            text().prop_map(|s| toml_string(&s)),
            (-3i64..100).prop_map(|n| n.to_string()),
        ]
        .boxed(),
    };
    prop_oneof![9 => typed, 1 => value()].boxed()
}

fn probe_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z][a-z0-9_-]{0,8}",
        1 => Just("cli".to_string()),
        1 => Just("\"a b\"".to_string()),
        1 => Just("\"\"".to_string()),
        1 => Just("\"é\"".to_string()),
        1 => (1usize..400).prop_map(|n| "p".repeat(n)),
        1 => any::<String>().prop_map(|s| toml_string(&s.chars().take(20).collect::<String>())),
    ]
}

/// A key = value line: a probe key (its own kind of value, or any), `log`,
/// or an unknown key.
fn key_line() -> impl Strategy<Value = String> {
    let known = proptest::sample::select(KEYS.to_vec())
        .prop_flat_map(|k| value_for(k).prop_map(move |v| format!("{k} = {v}")));
    prop_oneof![
        8 => known,
        1 => value().prop_map(|v| format!("log = {v}")),
        1 => ("[a-z_]{1,12}", value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => (any::<String>(), value())
            .prop_map(|(k, v)| format!("{} = {v}", toml_string(&k.chars().take(30).collect::<String>()))),
        1 => (1usize..2000, value()).prop_map(|(n, v)| format!("{} = {v}", "k".repeat(n))),
    ]
}

/// One line of TOML-ish text.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => key_line(),
        2 => probe_name().prop_map(|n| format!("[probe.{n}]")),
        1 => Just("[defaults]".to_string()),
        1 => proptest::sample::select(vec![
            "[probe]", "[[probe.a]]", "[probe.a.b]", "[log]", "[defaults.x]", "[", "]", "[]",
            "probe = 1", "defaults = []", "= 1", "a =", "\"", "'''", "\"\"\"",
        ])
        .prop_map(String::from),
        1 => Just(String::new()),
        1 => any::<String>().prop_map(|s| format!("# {}", s.replace(['\n', '\r'], ""))),
        1 => any::<String>().prop_map(|s| s.chars().take(60).collect()),
    ]
}

/// A table of mostly valid keys among `keys`, each once.
fn table(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(keys.to_vec(), 0..=5)
        .prop_flat_map(|keys| {
            keys.into_iter()
                .map(|k| value_for(k).prop_map(move |v| format!("{k} = {v}")))
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

/// A file that is likely to parse: optional log, defaults, a few probes with
/// a check each, and sometimes a stray line.
fn structured() -> impl Strategy<Value = String> {
    let check = prop_oneof![
        2 => Just("command = [\"true\"]".to_string()),
        2 => Just("script = \"check.sh\"".to_string()),
        1 => Just("command = \"exit 0\"".to_string()),
        2 => value_for("command").prop_map(|v| format!("command = {v}")),
        1 => value_for("script").prop_map(|v| format!("script = {v}")),
        1 => Just(String::new()),
    ];
    // The check is set above: the other keys.
    let probe = (probe_name(), check, table(&KEYS[2..]))
        .prop_map(|(n, c, t)| format!("[probe.{n}]\n{c}\n{}\n", t.join("\n")));
    (
        proptest::option::of(
            proptest::sample::select(vec!["x.log", "sub/x.log", "nope/x.log", "sub", "fifo", ""])
                .prop_map(|l| format!("log = {}\n", toml_string(l))),
        ),
        proptest::option::of(table(KEYS).prop_map(|t| format!("[defaults]\n{}\n", t.join("\n")))),
        proptest::collection::vec(probe, 0..4),
        proptest::option::weighted(0.2, line()),
    )
        .prop_map(|(log, defaults, probes, stray)| {
            let mut text = log.unwrap_or_default();
            text.push_str(&defaults.unwrap_or_default());
            text.push_str(&probes.concat());
            if let Some(l) = stray {
                text.push_str(&l);
                text.push('\n');
            }
            text
        })
}

/// The bytes of a heat.toml: structured, a soup of lines, or raw bytes.
fn file() -> impl Strategy<Value = Vec<u8>> {
    let soup = (
        proptest::collection::vec(line(), 0..20),
        prop_oneof![8 => Just("\n"), 3 => Just("\r\n"), 1 => Just("\r")],
    )
        .prop_map(|(lines, nl)| lines.join(nl));
    prop_oneof![
        6 => structured().prop_map(String::into_bytes),
        3 => soup.prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => (structured(), any::<u8>(), any::<prop::sample::Index>()).prop_map(|(t, b, i)| {
            let mut bytes = t.into_bytes();
            let at = i.index(bytes.len() + 1);
            bytes.insert(at, b);
            bytes
        }),
    ]
}

// ---------------------------------------------------------------------------
// Command lines

/// The options that take a value (`-c` last: flags over a file leave it out).
const VALUE_OPTS: &[&str] = &[
    "-i",
    "--interval",
    "-s",
    "--script",
    "--timeout",
    "--pid",
    "--pidfile",
    "--signal",
    "--fail",
    "--recovery",
    "--threshold",
    "--start-period",
    "--recovery-timeout",
    "--fault-signal",
    "--success-signal",
    "--log",
    "--hook-timeout",
    "--max-output",
    "-c",
];

fn arg_value() -> impl Strategy<Value = OsString> {
    prop_oneof![
        8 => text().prop_map(OsString::from),
        3 => proptest::sample::select(PATHS.to_vec()).prop_map(OsString::from),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(OsString::from_vec),
    ]
    // An argv string cannot hold a NUL.
    .prop_map(|v| OsString::from_vec(v.into_vec().into_iter().filter(|&b| b != 0).collect()))
}

/// One piece of a command line: an option and its value, a flag, a stray
/// word (from there on, the check's argv), `--`, or an unknown option.
fn arg() -> impl Strategy<Value = Vec<OsString>> {
    let os = |s: &str| OsString::from(s);
    prop_oneof![
        8 => (proptest::sample::select(VALUE_OPTS.to_vec()), arg_value())
            .prop_map(move |(o, v)| vec![os(o), v]),
        1 => (proptest::sample::select(VALUE_OPTS.to_vec()), arg_value())
            .prop_map(move |(o, v)| {
                let mut joined = os(o);
                joined.push(if o.starts_with("--") { "=" } else { "" });
                joined.push(v);
                vec![joined]
            }),
        2 => proptest::sample::select(vec!["-q", "-v", "-vv", "-vvv", "--quiet", "--verbose"])
            .prop_map(move |f| vec![os(f)]),
        2 => proptest::sample::select(vec![
            "true", "/bin/true", "./check.sh", "nonexistent-xyz", "", "sh", "-c", "exit 0", "-x",
        ])
        .prop_map(move |w| vec![os(w)]),
        1 => arg_value().prop_map(|v| vec![v]),
        1 => Just(vec![os("--")]),
        1 => proptest::sample::select(vec!["--bogus", "-Z", "--interval", "--pid", "-"])
            .prop_map(move |o| vec![os(o)]),
        1 => Just(vec![os("--help")]),
    ]
}

/// Options, then mostly a check command (without one, most lines stop at
/// "no check").
fn argv() -> impl Strategy<Value = Vec<OsString>> {
    let command = proptest::sample::select(vec![
        vec!["true"],
        vec!["/bin/true"],
        vec!["sh", "-c", "exit 0"],
        vec!["--", "true", "-x"],
        vec!["nonexistent-xyz"],
    ])
    .prop_map(|words| words.into_iter().map(OsString::from).collect::<Vec<_>>());
    (proptest::collection::vec(arg(), 0..8), proptest::option::weighted(0.7, command)).prop_map(
        |(args, command)| {
            let mut v = args.concat();
            v.extend(command.unwrap_or_default());
            v
        },
    )
}

/// `-c` with a value outside the dir could name anything on the machine (a
/// device that blocks, /proc): every `-c` value is made a name in the dir,
/// and anything else that clap could read as `-c` (`-qc`, `--config=`) goes.
fn tame(argv: Vec<OsString>, dir: &Path) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        if a == "-c" || a == "--config" {
            out.push(a);
            if let Some(v) = it.next() {
                out.push(dir.join(Path::new(&v).file_name().unwrap_or_default()).into());
            }
            continue;
        }
        let s = a.to_string_lossy();
        let short_c = s.starts_with('-') && !s.starts_with("--") && s.contains('c');
        if short_c || s.starts_with("--config") {
            continue;
        }
        out.push(a);
    }
    out
}

/// The dir's files by relative name become absolute (the library's cwd is
/// not the dir).
fn rebase(argv: Vec<OsString>, dir: &Path) -> Vec<OsString> {
    argv.into_iter()
        .map(|a| match a.to_str() {
            Some(s) if PATHS.contains(&s) && !s.is_empty() && !s.starts_with('/') => {
                dir.join(s).into()
            }
            _ => a,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The checks

fn check_error(what: &str, e: &str) -> Result<(), TestCaseError> {
    prop_assert!(!e.is_empty(), "{what}: empty error");
    prop_assert!(!e.contains('\n'), "{what}: error of more than one line: {e:?}");
    let n = e.chars().count();
    prop_assert!(n <= ERROR_MAX, "{what}: error of {n} characters: {e:?}");
    Ok(())
}

fn library(cli_args: Vec<OsString>) -> Result<(), TestCaseError> {
    let what = format!("{cli_args:?}");
    let argv = std::iter::once(OsString::from("heat")).chain(cli_args);
    let cli = match Cli::parse_args(argv) {
        Ok(cli) => cli,
        Err(CliError::Info(_)) => return Ok(()),
        Err(e) => return check_error(&what, &e.to_string()),
    };
    match settings_from_cli(&cli.args, &Env::current()) {
        Ok(_) => Ok(()),
        Err(e) => check_error(&what, &chain(&e)),
    }
}

/// Runs `heat -t ARGS` in `dir`, bounded in time, and checks how it ends.
fn binary(dir: &Path, args: &[OsString]) -> Result<(), TestCaseError> {
    let what = format!("heat -t {args:?}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_heat"))
        .arg("-t")
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("heat starts");
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let end = Instant::now() + RUN_MAX;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestCaseError::fail(format!("{what}: still running after {RUN_MAX:?}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = out.join().unwrap();
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    prop_assert!(status.signal().is_none(), "{what}: killed by signal {:?}", status.signal());
    let code = status.code();
    prop_assert!(matches!(code, Some(0 | 2)), "{what}: exit {code:?}, stderr {stderr:?}");
    if code == Some(2) {
        let lines: Vec<&str> = stderr.lines().collect();
        prop_assert!(
            lines.len() == 1 && lines[0].starts_with("heat: ") && stderr.ends_with('\n'),
            "{what}: exit 2, stderr not one `heat: ` line: {stderr:?}"
        );
    }
    Ok(())
}

fn config_args(path: &Path, extra: Vec<OsString>) -> Vec<OsString> {
    let mut args = vec![OsString::from("-c"), path.into()];
    args.extend(extra);
    args
}

/// Flags layered over a file: a few options, never a command (the `cli`
/// probe is the command line's business).
fn flags() -> impl Strategy<Value = Vec<OsString>> {
    proptest::collection::vec(
        (proptest::sample::select(VALUE_OPTS[..VALUE_OPTS.len() - 1].to_vec()), arg_value())
            .prop_map(|(o, v)| vec![OsString::from(o), v]),
        0..2,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 768,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_config_file_gives_settings_or_one_line(bytes in file(), extra in flags()) {
        let dir = dir("lib-file");
        let path = dir.config(&bytes);
        let r = library(config_args(&path, extra));
        let _ = fs::remove_file(&path);
        r?;
    }

    #[test]
    fn any_command_line_gives_settings_or_one_line(args in argv()) {
        let dir = dir("lib-argv");
        library(rebase(tame(args, &dir.0), &dir.0))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn heat_t_on_any_config_file_exits_0_or_2(bytes in file()) {
        let dir = dir("bin-file");
        let path = dir.config(&bytes);
        let r = binary(&dir.0, &config_args(&path, Vec::new()));
        let _ = fs::remove_file(&path);
        r?;
    }

    #[test]
    fn heat_t_on_any_command_line_exits_0_or_2(args in argv()) {
        let dir = dir("bin-argv");
        binary(&dir.0, &tame(args, &dir.0))?;
    }
}

/// One dir per test (and thread), made once: making it per case would cost
/// more than the case.
fn dir(tag: &'static str) -> std::rc::Rc<Dir> {
    thread_local! {
        static DIRS: std::cell::RefCell<Vec<(&'static str, std::rc::Rc<Dir>)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    DIRS.with(|dirs| {
        let mut dirs = dirs.borrow_mut();
        if let Some((_, d)) = dirs.iter().find(|(t, _)| *t == tag) {
            return d.clone();
        }
        let d = std::rc::Rc::new(Dir::new(tag));
        dirs.push((tag, d.clone()));
        d
    })
}

// ---------------------------------------------------------------------------
// Found by the properties above (src/ left as it is): the smallest inputs.

/// heat's error for `text` as a heat.toml.
fn file_error(text: &str) -> String {
    let dir = dir("regress");
    let path = dir.config(text.as_bytes());
    let cli =
        Cli::try_parse_from([OsString::from("heat"), "-c".into(), path.clone().into()]).unwrap();
    let e = settings_from_cli(&cli.args, &Env::current()).expect_err(text);
    let _ = fs::remove_file(&path);
    chain(&e)
}

/// toml's message names an unknown key whole: a long key makes a long line
/// (values are cut at 200 characters with `shown`, keys are not).
#[test]
fn an_unknown_key_is_cut_in_the_error() {
    let e = file_error(&format!("{} = 1\n", "k".repeat(600)));
    assert!(e.chars().count() <= ERROR_MAX, "{} characters: {e}", e.chars().count());
}

/// The same through a value toml quotes whole (`invalid type: string "…"`).
#[test]
fn a_long_value_of_the_wrong_type_is_cut_in_the_error() {
    let e = file_error(&format!("probe = \"{}\"\n", "x".repeat(600)));
    assert!(e.chars().count() <= ERROR_MAX, "{} characters: {e}", e.chars().count());
}

/// A probe name is not cut either: `probe NAME: …` and `probe name "NAME": …`.
#[test]
fn a_long_probe_name_is_cut_in_the_error() {
    let name = "p".repeat(600);
    let e = file_error(&format!("[probe.{name}]\ncommand = [\"true\"]\ninterval = 0\n"));
    assert!(e.chars().count() <= ERROR_MAX, "{} characters: {e}", e.chars().count());
    let e = file_error(&format!("[probe.\"{name} \"]\ncommand = [\"true\"]\n"));
    assert!(e.chars().count() <= ERROR_MAX, "{} characters: {e}", e.chars().count());
}

/// Control characters a file holds reach the error line raw: a quoted key's
/// CR or ESC (toml's message), a pidfile's first line (target.rs), where
/// `shown` escapes them in values. A CR rewrites the terminal line; ESC
/// starts a terminal escape sequence.
#[test]
fn control_characters_from_files_are_escaped_in_errors() {
    for key in ["a\\rb", "a\\u001b[31mred"] {
        let e = file_error(&format!("\"{key}\" = 1\n"));
        assert!(!e.chars().any(char::is_control), "{e:?}");
    }
    let dir = dir("regress");
    let pidfile = dir.0.join("cr.pid");
    fs::write(&pidfile, "12\r34\x1b[31mx\n").unwrap();
    let cli = Cli::try_parse_from([
        OsString::from("heat"),
        "--pidfile".into(),
        pidfile.into(),
        "true".into(),
    ])
    .unwrap();
    let e = chain(&settings_from_cli(&cli.args, &Env::current()).expect_err("not a pid"));
    assert!(!e.chars().any(char::is_control), "{e:?}");
}

/// `--pid P and --pidfile F: give one target` shows P as typed (config.rs
/// `cli_target`): neither escaped nor cut, so a newline in it splits the line.
#[test]
fn both_targets_error_shows_the_pid_escaped_and_cut() {
    for pid in ["1\n2".to_string(), "x".repeat(600)] {
        let e = Cli::parse_args(["heat", "--pid", &pid, "--pidfile", "x.pid", "true"])
            .expect_err("not a pid")
            .to_string();
        assert!(!e.contains('\n'), "{e:?}");
        assert!(e.chars().count() <= ERROR_MAX, "{} characters", e.chars().count());
    }
}
