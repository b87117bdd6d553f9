//! The man page and shell completions under packaging/generated/ are committed so
//! that the Debian package ships them without a build step; this test regenerates
//! them from the clap definitions and fails when a committed copy has drifted.
//! `HEAT_UPDATE_ASSETS=1 cargo test --test assets` rewrites them instead.
//! The man page is clap_mangen's, followed by the sections written by hand in
//! packaging/man/heat.sections.md.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use clap::{Command, CommandFactory};
use clap_complete::Shell;
use heat::cli::Cli;

const UPDATE_VAR: &str = "HEAT_UPDATE_ASSETS";

/// The man page's sections after the generated ones, in the markup its header describes.
const SECTIONS: &str = include_str!("../packaging/man/heat.sections.md");

/// The sections SECTIONS must give, in this order.
const SECTION_NAMES: [&str; 8] = [
    "HEAT.TOML",
    "SIGNALS",
    "LOG FORMAT",
    "FILES",
    "ENVIRONMENT",
    "EXIT STATUS",
    "EXAMPLES",
    "SEE ALSO",
];

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
    out.extend_from_slice(roff(SECTIONS).as_bytes());
    out
}

/// The block of text being gathered, and the macro that opens it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Paragraph,
    Bullet,
    /// Its `.TP` and term are written already.
    Definition,
}

/// The markup of packaging/man/heat.sections.md as roff (man macros). What it
/// does not know is a panic, so a slip cannot reach the page unseen.
fn roff(markup: &str) -> String {
    let mut out = String::new();
    let mut open: Option<(Block, Vec<&str>)> = None;
    // A last blank line ends the last block.
    let mut lines = markup.lines().chain([""]).map(str::trim_end);
    while let Some(line) = lines.next() {
        if let Some((Block::Paragraph, text)) = &open
            && let Some(definition) = line.strip_prefix(": ")
        {
            assert!(text.len() == 1, "the term of {definition:?} is not one line");
            out.push_str(&format!(".TP\n{}\n", inline(text[0])));
            open = Some((Block::Definition, vec![definition]));
            continue;
        }
        if let Some((_, text)) = &mut open
            && !line.is_empty()
            && (line.starts_with("  ") || !is_block_start(line))
        {
            text.push(line.trim_start());
            continue;
        }
        if let Some((block, text)) = open.take() {
            out.push_str(match block {
                Block::Paragraph => ".PP\n",
                Block::Bullet => ".IP \\(bu 2\n",
                Block::Definition => "",
            });
            out.push_str(&inline(&text.join("\n")));
            out.push('\n');
        }
        if line.starts_with("<!--") {
            if !line.contains("-->") {
                lines.by_ref().find(|l| l.contains("-->")).expect("a comment is closed");
            }
        } else if line == "```" {
            out.push_str(".PP\n.RS 4\n.nf\n");
            loop {
                let code = lines.next().expect("a literal block is closed");
                if code == "```" {
                    break;
                }
                out.push_str(&line_start(&escape(code)));
                out.push('\n');
            }
            out.push_str(".fi\n.RE\n");
        } else if let Some(name) = line.strip_prefix("## ") {
            out.push_str(&format!(".SS {}\n", escape(name)));
        } else if let Some(name) = line.strip_prefix("# ") {
            out.push_str(&format!(".SH {}\n", escape(name)));
        } else if let Some(item) = line.strip_prefix("- ") {
            open = Some((Block::Bullet, vec![item]));
        } else if !line.is_empty() {
            assert!(!line.starts_with(": "), "{line:?} follows no term");
            open = Some((Block::Paragraph, vec![line]));
        }
    }
    out
}

fn is_block_start(line: &str) -> bool {
    ["<!--", "```", "#", "- ", ": "].iter().any(|p| line.starts_with(p))
}

/// `code` in bold, *word* in italic, the rest roman.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(['`', '*']) {
        out.push_str(&escape(&rest[..at]));
        let mark = &rest[at..=at];
        let (inside, after) = rest[at + 1..]
            .split_once(mark)
            .unwrap_or_else(|| panic!("an unclosed {mark} in {text:?}"));
        let font = if mark == "`" { 'B' } else { 'I' };
        out.push_str(&format!("\\f{font}{}\\fR", escape(inside)));
        rest = after;
    }
    out.push_str(&escape(rest));
    out.lines().map(line_start).collect::<Vec<_>>().join("\n")
}

/// Text as roff prints it: backslashes, hyphens (a bare `-` may print as a
/// typographic hyphen, which breaks copied options) and apostrophes escaped.
fn escape(text: &str) -> String {
    // `Aq` is defined by clap_mangen's preamble, at the top of the page.
    text.replace('\\', "\\e").replace('-', "\\-").replace('\'', "\\*(Aq")
}

/// A text line starting with `.` or `'` would be read as a request.
fn line_start(line: &str) -> String {
    if line.starts_with(['.', '\'']) { format!("\\&{line}") } else { line.to_string() }
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

#[test]
fn the_man_page_ends_with_every_section_in_order() {
    // Plain groff and nroff, without man-db's preconv, read no UTF-8.
    assert!(SECTIONS.is_ascii(), "keep packaging/man/heat.sections.md ASCII");
    let page = String::from_utf8(man_page(Cli::command())).expect("the page is UTF-8");
    let headings: Vec<&str> = page.lines().filter_map(|l| l.strip_prefix(".SH ")).collect();
    let ours: Vec<&str> = headings.iter().copied().skip_while(|h| *h != SECTION_NAMES[0]).collect();
    assert_eq!(ours, SECTION_NAMES, "the man page's sections: {headings:?}");
    assert!(headings.contains(&"OPTIONS"), "{headings:?}");
}

#[test]
fn the_man_page_renders_without_warnings() {
    for tool in ["man", "groff"] {
        if Process::new(tool).arg("--version").output().is_err() {
            eprintln!("skipped: {tool} is not installed (apt-get install man-db groff-base)");
            return;
        }
    }
    // The fresh page, not the committed one: an update may be rewriting that.
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("heat.1");
    std::fs::write(&path, man_page(Cli::command())).expect("writing the page");
    let out = Process::new("man")
        .args(["--warnings=w", "-l"])
        .arg(&path)
        // A fixed width and locale: groff's line-breaking warnings depend on both.
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C")
        .output()
        .expect("running man");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "man -l heat.1: {}\n{stderr}", out.status);
    assert!(String::from_utf8_lossy(&out.stdout).contains("EXIT STATUS"), "nothing rendered");
}

#[test]
fn roff_of_each_markup() {
    let markup = "<!--\nnot shown\n-->\n# A B\n## C\n\nSome `co-de` and *it*\n.next line.\n\n\
                  `term`\n: its text,\n  continued\n\n- an item\n\n```\n'x' \\\n  -y\n```\n";
    assert_eq!(
        roff(markup),
        ".SH A B\n.SS C\n.PP\nSome \\fBco\\-de\\fR and \\fIit\\fR\n\\&.next line.\n\
         .TP\n\\fBterm\\fR\nits text,\ncontinued\n.IP \\(bu 2\nan item\n\
         .PP\n.RS 4\n.nf\n\\*(Aqx\\*(Aq \\e\n  \\-y\n.fi\n.RE\n"
    );
    for bad in ["an `unclosed span\n", "`a`\n`b`\n: two lines\n", ": no term\n", "```\nopen\n"] {
        assert!(std::panic::catch_unwind(|| roff(bad)).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn completions_offer_signal_names_and_no_files_for_values() {
    let bash = String::from_utf8(completion(Shell::Bash, Cli::command())).unwrap();
    let case = |flag: &str| -> String {
        let at = bash.find(&format!("                {flag})")).unwrap_or_else(|| panic!("{flag}"));
        bash[at..].split(";;").next().unwrap().to_string()
    };
    for flag in ["--signal", "--fault-signal", "--success-signal"] {
        let c = case(flag);
        assert!(c.contains("compgen -W") && c.contains(" USR1 ") && c.contains(" TERM "), "{c}");
    }
    for flag in ["--interval", "--timeout", "--max-output", "--pid", "--threshold"] {
        let c = case(flag);
        assert!(!c.contains("compgen -f"), "{flag} offers file names: {c}");
    }
    assert!(case("--fail").contains("compgen -f"), "a hook is a file");
}
