//! The man page and shell completions under packaging/generated/ are committed so
//! that the Debian package ships them without a build step; this test regenerates
//! them from the clap definitions and fails when a committed copy has drifted.
//! `HEAT_UPDATE_ASSETS=1 cargo test --test assets` rewrites them instead.

use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};
use clap_complete::Shell;
use heat::cli::Cli;

const UPDATE_VAR: &str = "HEAT_UPDATE_ASSETS";

/// One generated file: its name under packaging/generated/ and its contents.
struct Asset {
    name: &'static str,
    text: Vec<u8>,
}

fn generated_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/generated")
}

fn man_page(cmd: Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out).expect("rendering the man page");
    out
}

fn completion(shell: Shell, mut cmd: Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "heat", &mut out);
    out
}

fn assets() -> Vec<Asset> {
    vec![
        Asset { name: "heat.1", text: man_page(Cli::command()) },
        Asset { name: "heat.bash", text: completion(Shell::Bash, Cli::command()) },
        Asset { name: "_heat", text: completion(Shell::Zsh, Cli::command()) },
        Asset { name: "heat.fish", text: completion(Shell::Fish, Cli::command()) },
    ]
}

/// Why `committed` is not `fresh`, naming the first differing line; None when equal.
fn drift(name: &str, committed: Option<&[u8]>, fresh: &[u8]) -> Option<String> {
    let Some(committed) = committed else {
        return Some(format!("packaging/generated/{name} is missing"));
    };
    if committed == fresh {
        return None;
    }
    let old = String::from_utf8_lossy(committed);
    let new = String::from_utf8_lossy(fresh);
    let (mut a, mut b) = (old.lines(), new.lines());
    let mut n = 1;
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (x, y) => {
                return Some(format!(
                    "packaging/generated/{name} is stale at line {n}: committed {:?}, generated {:?}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                ));
            }
        }
    }
}

fn update(dir: &Path, assets: &[Asset]) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    for a in assets {
        let path = dir.join(a.name);
        if std::fs::read(&path).ok().as_deref() != Some(&a.text[..]) {
            std::fs::write(&path, &a.text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
    }
}

#[test]
fn committed_assets_match_the_cli() {
    let dir = generated_dir();
    let assets = assets();
    if std::env::var_os(UPDATE_VAR).is_some_and(|v| v == "1") {
        update(&dir, &assets);
    }
    let stale: Vec<String> = assets
        .iter()
        .filter_map(|a| drift(a.name, std::fs::read(dir.join(a.name)).ok().as_deref(), &a.text))
        .collect();
    assert!(
        stale.is_empty(),
        "{}\nrun `{UPDATE_VAR}=1 cargo test --test assets` and commit packaging/generated/",
        stale.join("\n")
    );
}

#[test]
fn every_long_option_is_in_every_asset() {
    let cmd = Cli::command();
    let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    assert!(longs.contains(&"check-config"), "no long options found: {longs:?}");
    for a in assets() {
        // roff escapes every hyphen.
        let text = String::from_utf8_lossy(&a.text).replace("\\-", "-");
        for long in &longs {
            let needle =
                if a.name == "heat.fish" { format!("-l {long} ") } else { format!("--{long}") };
            assert!(text.contains(&needle), "{} does not mention --{long}", a.name);
        }
    }
}

#[test]
fn drift_names_the_first_differing_line() {
    assert_eq!(drift("x", Some(b"a\nb\n"), b"a\nb\n"), None);
    let why = drift("x", Some(b"a\nb\n"), b"a\nc\n").expect("a change is drift");
    assert!(why.contains("line 2") && why.contains("\"b\"") && why.contains("\"c\""), "{why}");
    let why = drift("x", Some(b"a\n"), b"a\nb\n").expect("an added line is drift");
    assert!(why.contains("line 2") && why.contains("<end>"), "{why}");
    assert!(drift("x", None, b"a").expect("absence is drift").contains("missing"));
}
