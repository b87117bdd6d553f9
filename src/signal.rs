//! Signals by name or number, as operators write them.
//!
//! `USR1`, `SIGUSR1`, `usr1` and `10` are one signal; `RTMIN+N` / `RTMAX-N` use
//! glibc's `SIGRTMIN()` (34 here), not the kernel's 32: glibc keeps 32 and 33 for
//! its threads, so they are refused like 0 and anything above `SIGRTMAX()`.

use std::fmt;
use std::str::FromStr;

/// A valid signal number (1..=31 or SIGRTMIN..=SIGRTMAX).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Signal(i32);

/// The standard signals by name; the first name of a number is how it is shown.
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The standard signals' names, one per number, as completions offer them.
pub fn names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().enumerate().filter_map(|(i, &(name, n))| {
        let first = NAMES[..i].iter().all(|&(_, earlier)| earlier != n);
        first.then_some(name)
    })
}

/// Highest standard (non-real-time) signal number.
const LAST_STANDARD: i32 = 31;

/// glibc's first real-time signal (34 here; the kernel's 32 and 33 are glibc's own).
pub fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

/// glibc's last real-time signal (64 here).
pub fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    pub const ABRT: Signal = Signal(libc::SIGABRT);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    pub const SEGV: Signal = Signal(libc::SIGSEGV);
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    pub const CONT: Signal = Signal(libc::SIGCONT);
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    pub const TTOU: Signal = Signal(libc::SIGTTOU);
    pub const URG: Signal = Signal(libc::SIGURG);
    pub const WINCH: Signal = Signal(libc::SIGWINCH);

    /// The signal with this number, if it is one (not 0, 32, 33 or above SIGRTMAX).
    pub fn from_number(n: i32) -> Option<Signal> {
        let standard = (1..=LAST_STANDARD).contains(&n);
        let realtime = (rtmin()..=rtmax()).contains(&n);
        (standard || realtime).then_some(Signal(n))
    }

    pub fn number(self) -> i32 {
        self.0
    }

    /// The same signal as rustix takes it; real-time ones included.
    pub(crate) fn to_rustix(self) -> rustix::process::Signal {
        // SAFETY: a `Signal` holds 1..=31 or glibc's SIGRTMIN..=SIGRTMAX: never 0,
        // and never 32 or 33, the ones glibc keeps for its own use.
        unsafe { rustix::process::Signal::from_raw_unchecked(self.0) }
    }

    /// STOP, TSTP, TTIN, TTOU: signals that freeze the receiver.
    pub fn is_stopping(self) -> bool {
        matches!(self, Signal::STOP | Signal::TSTP | Signal::TTIN | Signal::TTOU)
    }

    /// A real-time signal (RTMIN..=RTMAX).
    pub fn is_realtime(self) -> bool {
        self.0 >= rtmin()
    }
}

/// Why a signal was refused; holds the text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSignalError(pub String);

impl ParseSignalError {
    /// What is wrong and what to write instead, without the text itself:
    /// callers put the option or key in front (`--signal FOO: ...`).
    pub fn reason(&self) -> String {
        let numeric = self.0.trim_start_matches(['-', '+']).bytes().all(|b| b.is_ascii_digit())
            && !self.0.is_empty();
        if numeric {
            format!(
                "no such signal number (use 1-{LAST_STANDARD} or {}-{}; 32 and 33 are reserved)",
                rtmin(),
                rtmax()
            )
        } else {
            "unknown signal (try HUP, USR1, TERM, RTMIN+1 or a number)".to_string()
        }
    }
}

impl fmt::Display for ParseSignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0, self.reason())
    }
}

impl std::error::Error for ParseSignalError {}

impl FromStr for Signal {
    type Err = ParseSignalError;
    fn from_str(s: &str) -> Result<Signal, ParseSignalError> {
        parse_number(s)
            .or_else(|| parse_name(s))
            .and_then(Signal::from_number)
            .ok_or_else(|| ParseSignalError(s.to_string()))
    }
}

/// `10`: decimal digits only (no sign, no spaces).
fn parse_number(s: &str) -> Option<i32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // An overlong number is out of range, like 65.
    Some(s.parse().unwrap_or(i32::MAX))
}

/// `usr1`, `SIGUSR1`, `RTMIN+2`, `SIGRTMAX-1`: case-insensitive.
fn parse_name(s: &str) -> Option<i32> {
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(known, _)| *known == name) {
        return Some(n);
    }
    parse_realtime(name)
}

/// `RTMIN`, `RTMIN+N`, `RTMAX`, `RTMAX-N`; the result may be out of range.
fn parse_realtime(name: &str) -> Option<i32> {
    let offset = |rest: &str, sign: char| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        parse_number(rest.strip_prefix(sign)?)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rtmin().checked_add(offset(rest, '+')?);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rtmax().checked_sub(offset(rest, '-')?);
    }
    None
}

/// `SIGUSR1`, `SIGRTMIN+3`, `SIGRTMAX-2`: real-time signals are named from the
/// nearer end, as `kill -l` does.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if !self.is_realtime() {
            // Every number 1..=31 has a name, and Signal only holds valid numbers.
            let name = NAMES.iter().find(|&&(_, known)| known == n).map_or("?", |(name, _)| name);
            return write!(f, "SIG{name}");
        }
        let (from_min, to_max) = (n - rtmin(), rtmax() - n);
        match (from_min, to_max) {
            (0, _) => f.write_str("SIGRTMIN"),
            (_, 0) => f.write_str("SIGRTMAX"),
            _ if from_min <= to_max => write!(f, "SIGRTMIN+{from_min}"),
            _ => write!(f, "SIGRTMAX-{to_max}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<i32, ParseSignalError> {
        s.parse::<Signal>().map(Signal::number)
    }

    #[test]
    fn names_are_case_insensitive_with_optional_sig_prefix() {
        for s in ["USR1", "SIGUSR1", "usr1", "sigusr1", "SigUsr1", "10"] {
            assert_eq!(parse(s), Ok(10), "{s}");
        }
        assert_eq!(parse("hup"), Ok(1));
        assert_eq!(parse("SIGTERM"), Ok(15));
        assert_eq!(parse("kill"), Ok(9));
        assert_eq!(parse("STOP"), Ok(libc::SIGSTOP));
        assert_eq!(parse("iot"), Ok(libc::SIGABRT));
        assert_eq!(parse("POLL"), Ok(libc::SIGIO));
        assert_eq!(parse("cld"), Ok(libc::SIGCHLD));
        assert_eq!(parse("SYS"), Ok(31));
        assert_eq!(parse("007"), Ok(7));
    }

    #[test]
    fn every_standard_name_parses_to_its_number() {
        for &(name, n) in NAMES {
            assert_eq!(parse(name), Ok(n), "{name}");
            assert_eq!(parse(&format!("SIG{name}")), Ok(n), "SIG{name}");
        }
    }

    #[test]
    fn realtime_uses_glibc_bounds() {
        assert_eq!(rtmin(), 34);
        assert_eq!(rtmax(), 64);
        assert_eq!(parse("RTMIN"), Ok(34));
        assert_eq!(parse("rtmin+0"), Ok(34));
        assert_eq!(parse("RTMIN+1"), Ok(35));
        assert_eq!(parse("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse("RTMIN+30"), Ok(64));
        assert_eq!(parse("RTMAX"), Ok(64));
        assert_eq!(parse("sigrtmax-1"), Ok(63));
        assert_eq!(parse("RTMAX-30"), Ok(34));
        assert_eq!(parse("34"), Ok(34));
        assert_eq!(parse("64"), Ok(64));
    }

    #[test]
    fn refuses_what_is_not_a_usable_signal() {
        for s in [
            "",
            "0",
            "-1",
            "-9",
            "+9",
            "32",
            "33",
            "65",
            "99999999999",
            "FOO",
            "SIG",
            "SIGSIGHUP",
            "USR3",
            "RTMIN+31",
            "RTMAX-31",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+",
            "RTMAX-",
            "RTMIN+x",
            "RTMIN+-1",
            " HUP",
            "HUP ",
            "1.5",
            "HUP\n",
        ] {
            assert_eq!(parse(s), Err(ParseSignalError(s.to_string())), "{s:?}");
        }
    }

    #[test]
    fn from_number_refuses_gaps() {
        assert_eq!(Signal::from_number(0), None);
        assert_eq!(Signal::from_number(-15), None);
        assert_eq!(Signal::from_number(32), None);
        assert_eq!(Signal::from_number(33), None);
        assert_eq!(Signal::from_number(65), None);
        assert_eq!(Signal::from_number(10), Some(Signal::USR1));
        assert_eq!(Signal::from_number(31).map(Signal::number), Some(31));
    }

    #[test]
    fn display_names() {
        assert_eq!(Signal::USR1.to_string(), "SIGUSR1");
        assert_eq!(Signal::HUP.to_string(), "SIGHUP");
        assert_eq!(parse_sig("iot").to_string(), "SIGABRT");
        assert_eq!(parse_sig("poll").to_string(), "SIGIO");
        assert_eq!(parse_sig("cld").to_string(), "SIGCHLD");
        assert_eq!(parse_sig("RTMIN").to_string(), "SIGRTMIN");
        assert_eq!(parse_sig("RTMIN+3").to_string(), "SIGRTMIN+3");
        assert_eq!(parse_sig("RTMIN+15").to_string(), "SIGRTMIN+15");
        assert_eq!(parse_sig("RTMIN+16").to_string(), "SIGRTMAX-14");
        assert_eq!(parse_sig("RTMAX-1").to_string(), "SIGRTMAX-1");
        assert_eq!(parse_sig("RTMAX").to_string(), "SIGRTMAX");
    }

    fn parse_sig(s: &str) -> Signal {
        s.parse().unwrap()
    }

    #[test]
    fn every_signal_round_trips_through_its_name() {
        let all = (1..=LAST_STANDARD).chain(rtmin()..=rtmax());
        for n in all {
            let sig = Signal::from_number(n).unwrap();
            let shown = sig.to_string();
            assert!(shown.starts_with("SIG") && !shown.contains('?'), "{n}: {shown}");
            assert_eq!(shown.parse::<Signal>(), Ok(sig), "{n}: {shown}");
            assert_eq!(n.to_string().parse::<Signal>(), Ok(sig), "{n}");
        }
    }

    #[test]
    fn stopping_signals() {
        let stopping: Vec<i32> = (1..=LAST_STANDARD)
            .chain(rtmin()..=rtmax())
            .filter(|&n| Signal::from_number(n).unwrap().is_stopping())
            .collect();
        let mut want = vec![libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];
        want.sort();
        assert_eq!(stopping, want);
    }

    #[test]
    fn error_reasons_name_the_fix() {
        let unknown = "FOO".parse::<Signal>().unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "FOO: unknown signal (try HUP, USR1, TERM, RTMIN+1 or a number)"
        );
        let gap = "32".parse::<Signal>().unwrap_err();
        assert_eq!(
            gap.reason(),
            "no such signal number (use 1-31 or 34-64; 32 and 33 are reserved)"
        );
        assert!("-5".parse::<Signal>().unwrap_err().reason().starts_with("no such signal number"));
    }
}
