//! Text from outside (paths, values, names, a parser's messages) as one line
//! of an error: control characters escaped, so a newline cannot split the line
//! or a terminal escape reach the reader, and overlong runs cut.

use std::error::Error;
use std::io;
use std::path::Path;

/// Longest value an error line shows before cutting it.
const SHOWN_MAX: usize = 200;

/// A value as an error line shows it: control characters escaped and cut at
/// 200 characters with `…`.
pub fn shown(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == SHOWN_MAX {
            out.push('…');
            break;
        }
        escape(c, &mut out);
    }
    out
}

/// A path as an error line shows it (see [`shown`]).
pub fn show_path(path: &Path) -> String {
    shown(&path.to_string_lossy())
}

/// A message that may quote values of its own (a parser's): control
/// characters escaped, and each run of more than 200 characters without a
/// space cut with `…`, so the message's own words survive.
pub fn one_line(message: &str) -> String {
    let mut out = String::new();
    let mut run = 0;
    for c in message.chars() {
        if c == ' ' {
            run = 0;
        } else {
            run += 1;
            if run > SHOWN_MAX {
                if run == SHOWN_MAX + 1 {
                    out.push('…');
                }
                continue;
            }
        }
        escape(c, &mut out);
    }
    out
}

/// `No such file or directory (os error 2)` → `no such file or directory`.
pub fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

/// An error and its sources as one line: `probe web: heat.toml:4: interval
/// 0s: must be greater than zero`. Each error says only its own part.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        match cause.downcast_ref::<io::Error>() {
            Some(io) => out.push_str(&io_reason(io)),
            None => out.push_str(&cause.to_string()),
        }
        next = cause.source();
    }
    out
}

fn escape(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => out.extend(c.escape_default()),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_cut() {
        assert_eq!(shown("a\nb\r\tc\u{1b}"), "a\\nb\\r\\tc\\u{1b}");
        assert_eq!(shown(&"x".repeat(500)), format!("{}…", "x".repeat(200)));
        assert_eq!(shown(&"é".repeat(200)), "é".repeat(200), "characters, not bytes");
    }

    #[test]
    fn io_errors_read_lowercase() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_reason(&e), "no such file or directory");
    }

    #[test]
    fn a_chain_is_said_once_from_the_outside_in() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read x")]
        struct Outer(#[source] io::Error);
        let e = Outer(io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(chain(&e), "cannot read x: permission denied");
    }

    #[test]
    fn messages_keep_their_words_and_cut_long_runs() {
        let long = "k".repeat(300);
        assert_eq!(
            one_line(&format!("unknown field `{long}`, expected one of `a`")),
            format!("unknown field `{}… expected one of `a`", "k".repeat(199))
        );
        assert_eq!(one_line("a\rb \u{1b}[31m"), "a\\rb \\u{1b}[31m");
    }
}
