//! Option values, parsed where they enter heat: one parser per kind serves
//! the command line (as clap's value parser) and heat.toml (as its serde
//! deserializer), so `--interval 0` and `interval = 0` are refused alike.

use std::ffi::OsStr;
use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Arg, Command, ValueHint};
use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::error::Reason;
use crate::signal::Signal;

/// The shortest interval: below it a probe would be due all the time.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The most output kept per run; the log's queue always has room for one such entry.
pub const MAX_OUTPUT: usize = 16 << 20;
/// No duration is longer: far beyond any sane setting, far below where deadline
/// arithmetic (`t0 + k·interval`) could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 31_557_600);

/// A kind of option value.
pub trait Value: Sized + Clone + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// What completions offer: no file names unless the value is a path.
    const HINT: ValueHint = ValueHint::Other;
    /// What heat.toml must hold, for serde's type errors.
    const EXPECTING: &'static str = "a string or an integer";
    /// Whether heat.toml may write it as an integer, and as a string.
    const TAKES_INT: bool = true;
    const TAKES_STR: bool = true;

    /// A flag's text, or a string in heat.toml.
    fn parse(text: &str) -> Result<Self, Reason>;

    /// A flag's bytes: text unless the value is a path.
    fn parse_os(os: &OsStr) -> Result<Self, Reason> {
        Self::parse(os.to_str().ok_or(Reason::NotUtf8)?)
    }

    /// An integer in heat.toml.
    fn from_int(n: i64) -> Result<Self, Reason> {
        Self::parse(&n.to_string())
    }

    /// A string in heat.toml; by default read as a flag's text.
    fn from_toml_str(text: &str) -> Result<Self, Reason> {
        Self::parse(text)
    }

    /// Names completions offer (signal names).
    fn candidates() -> Vec<&'static str> {
        Vec::new()
    }

    /// A table in heat.toml, for the options that are one (`env`).
    fn from_toml_table(_: Vec<(String, String)>) -> Option<Self> {
        None
    }

    /// Whether the flag may be repeated (its values then [`Value::join`]ed).
    const MULTI: bool = false;

    /// The values of a repeated flag, as one.
    fn join(all: Vec<Self>) -> Self {
        all.into_iter().last().expect("clap gives a repeated flag's values, one at least")
    }
}

/// A duration: a bare integer is seconds, otherwise humantime (`500ms`,
/// `1m30s`). Zero is a value; the options that refuse it use [`Timeout`].
impl Value for Duration {
    fn parse(text: &str) -> Result<Duration, Reason> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            let secs: u64 = text.parse().map_err(|_| Reason::TooLong)?;
            return bounded(Duration::from_secs(secs));
        }
        if text.trim_start().starts_with('-') {
            return Err(Reason::Negative);
        }
        bounded(humantime::parse_duration(text).map_err(|_| Reason::NotADuration)?)
    }

    fn from_int(n: i64) -> Result<Duration, Reason> {
        let secs = u64::try_from(n).map_err(|_| Reason::Negative)?;
        bounded(Duration::from_secs(secs.min(MAX_DURATION.as_secs() + 1)))
    }

    fn from_toml_str(text: &str) -> Result<Duration, Reason> {
        if text.bytes().all(|b| b.is_ascii_digit()) || text.trim_start().starts_with('-') {
            return Duration::parse(text);
        }
        let text = de::value::StrDeserializer::<de::value::Error>::new(text);
        bounded(humantime_serde::deserialize(text).map_err(|_| Reason::NotADuration)?)
    }
}

fn bounded(d: Duration) -> Result<Duration, Reason> {
    if d > MAX_DURATION { Err(Reason::TooLong) } else { Ok(d) }
}

/// A duration with a rule of its own (`$t::new`): read every way a
/// duration is, then held to the rule.
macro_rules! duration_value {
    ($t:ident) => {
        impl Value for $t {
            fn parse(text: &str) -> Result<$t, Reason> {
                $t::new(Duration::parse(text)?)
            }
            fn from_int(n: i64) -> Result<$t, Reason> {
                $t::new(Duration::from_int(n)?)
            }
            fn from_toml_str(text: &str) -> Result<$t, Reason> {
                $t::new(Duration::from_toml_str(text)?)
            }
        }
    };
}

/// A duration that must not be zero: timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl Timeout {
    fn new(d: Duration) -> Result<Timeout, Reason> {
        nonzero(d).map(Timeout)
    }
}

duration_value!(Timeout);

fn nonzero(d: Duration) -> Result<Duration, Reason> {
    if d.is_zero() { Err(Reason::Zero) } else { Ok(d) }
}

/// The time between check starts: at least [`MIN_INTERVAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl Interval {
    fn new(d: Duration) -> Result<Interval, Reason> {
        match nonzero(d)? {
            d if d < MIN_INTERVAL => Err(Reason::IntervalTooShort),
            d => Ok(Interval(d)),
        }
    }
}

duration_value!(Interval);

/// Consecutive failures: a whole number, at least 1; heat.toml takes it
/// unquoted only, as TOML has a type for numbers.
impl Value for NonZeroU32 {
    const EXPECTING: &'static str = "an integer";
    const TAKES_STR: bool = false;

    fn parse(text: &str) -> Result<NonZeroU32, Reason> {
        let n: i64 = text.parse().map_err(|_| Reason::NotWhole)?;
        NonZeroU32::from_int(n)
    }
    fn from_int(n: i64) -> Result<NonZeroU32, Reason> {
        u32::try_from(n).ok().and_then(NonZeroU32::new).ok_or(Reason::BelowOne)
    }
}

/// Output kept per run: `65536`, `64KiB`, `1MiB` (also `KB`/`MB` as 1000s,
/// `K`/`M` as 1024s), case-insensitive; more than zero, at most [`MAX_OUTPUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputSize(pub usize);

impl Value for OutputSize {
    fn parse(text: &str) -> Result<OutputSize, Reason> {
        match parse_size(text)? {
            n if n > MAX_OUTPUT => Err(Reason::TooLarge { most: "16MiB" }),
            n => Ok(OutputSize(n)),
        }
    }
}

/// A size in bytes with an optional unit; zero is refused.
pub fn parse_size(text: &str) -> Result<usize, Reason> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(Reason::NotASize);
    }
    let multiplier: usize = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(Reason::NotASize),
    };
    let n: usize = digits.parse().map_err(|_| Reason::TooLarge { most: "" })?;
    match n.checked_mul(multiplier) {
        Some(0) => Err(Reason::Zero),
        Some(size) => Ok(size),
        None => Err(Reason::TooLarge { most: "" }),
    }
}

impl Value for Signal {
    fn parse(text: &str) -> Result<Signal, Reason> {
        text.parse().map_err(Reason::Signal)
    }
    fn candidates() -> Vec<&'static str> {
        crate::signal::names().chain(["RTMIN", "RTMAX"]).collect()
    }
}

/// A target pid as written: a positive integer that fits a pid_t. Whether
/// heat may signal it is decided with the rest of the probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pid(pub i32);

impl Value for Pid {
    fn parse(text: &str) -> Result<Pid, Reason> {
        let n: i64 = text.trim().parse().map_err(|_| Reason::NotAPid)?;
        if n <= 0 {
            return Err(Reason::ProcessGroup);
        }
        i32::try_from(n).map(Pid).map_err(|_| Reason::NoSuchProcess)
    }
}

/// A file: scripts, hooks, pidfiles, the log.
impl Value for PathBuf {
    const HINT: ValueHint = ValueHint::FilePath;
    const EXPECTING: &'static str = "a string (a path)";
    const TAKES_INT: bool = false;

    fn parse(text: &str) -> Result<PathBuf, Reason> {
        Ok(PathBuf::from(text))
    }
    fn parse_os(os: &OsStr) -> Result<PathBuf, Reason> {
        Ok(PathBuf::from(os))
    }
}

/// A user or group: a name from the system's database, or a numeric id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Account {
    Name(String),
    Id(u32),
}

impl Value for Account {
    fn parse(text: &str) -> Result<Account, Reason> {
        if text.is_empty() {
            return Err(Reason::NoName);
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().map(Account::Id).map_err(|_| Reason::NoName);
        }
        Ok(Account::Name(text.to_string()))
    }
}

/// Variables added to a child's environment: `K=V` on the command line (the
/// flag repeated), a table of strings in heat.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvVars(pub Vec<(String, String)>);

impl Value for EnvVars {
    const EXPECTING: &'static str = "a table of strings: env = { NAME = \"value\" }";
    const TAKES_INT: bool = false;
    const TAKES_STR: bool = false;

    fn parse(text: &str) -> Result<EnvVars, Reason> {
        let (k, v) = text.split_once('=').ok_or(Reason::NotAnAssignment)?;
        env_name(k)?;
        Ok(EnvVars(vec![(k.to_string(), v.to_string())]))
    }
    fn from_toml_table(pairs: Vec<(String, String)>) -> Option<EnvVars> {
        Some(EnvVars(pairs))
    }
    const MULTI: bool = true;

    fn join(all: Vec<EnvVars>) -> EnvVars {
        EnvVars(all.into_iter().flat_map(|e| e.0).collect())
    }
}

/// A variable name a child may be given: not empty, no `=` or NUL, and not
/// one heat sets itself.
pub fn env_name(name: &str) -> Result<(), Reason> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(Reason::BadEnvName);
    }
    if name.starts_with("HEAT_") {
        return Err(Reason::HeatsEnv);
    }
    Ok(())
}

/// A byte count for a cgroup limit: the sizes of `max_output`, without its cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl Value for Bytes {
    fn parse(text: &str) -> Result<Bytes, Reason> {
        Ok(Bytes(parse_size(text)? as u64))
    }
}

/// A count of at least 1 (`pids_max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub u64);

impl Value for Count {
    const EXPECTING: &'static str = "an integer";
    const TAKES_STR: bool = false;

    fn parse(text: &str) -> Result<Count, Reason> {
        let n: i64 = text.parse().map_err(|_| Reason::NotWhole)?;
        Count::from_int(n)
    }
    fn from_int(n: i64) -> Result<Count, Reason> {
        u64::try_from(n).ok().filter(|&n| n > 0).map(Count).ok_or(Reason::BelowOne)
    }
}

/// CPU time per period, as systemd's CPUQuota: `50%` of one CPU, `200%` of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuQuota {
    pub percent: u32,
}

impl CpuQuota {
    /// The period cpu.max is written with, in microseconds (the kernel's default).
    pub const PERIOD_US: u64 = 100_000;

    pub fn quota_us(self) -> u64 {
        u64::from(self.percent) * Self::PERIOD_US / 100
    }
}

impl Value for CpuQuota {
    fn parse(text: &str) -> Result<CpuQuota, Reason> {
        let digits = text.strip_suffix('%').ok_or(Reason::NotAPercentage)?;
        let percent: u32 = digits.parse().map_err(|_| Reason::NotAPercentage)?;
        if percent == 0 {
            return Err(Reason::Zero);
        }
        Ok(CpuQuota { percent })
    }
    fn from_int(_: i64) -> Result<CpuQuota, Reason> {
        Err(Reason::NotAPercentage)
    }
}

// ---------------------------------------------------------------------------
// The two edges

/// A flag's value: parsed, and as typed (an error or warning quotes it so).
#[derive(Clone, Debug, PartialEq)]
pub struct Given<T> {
    pub value: T,
    pub text: String,
}

/// clap's side: the flag's value parsed by `T`'s parser; a refusal reads
/// `--interval 0: must be greater than zero`, as heat.toml's do.
#[derive(Clone)]
pub struct Parser<T>(PhantomData<fn() -> T>);

impl<T> Parser<T> {
    pub fn new() -> Parser<T> {
        Parser(PhantomData)
    }
}

impl<T> Default for Parser<T> {
    fn default() -> Parser<T> {
        Parser::new()
    }
}

impl<T: Value> TypedValueParser for Parser<T> {
    type Value = Given<T>;

    fn parse_ref(
        &self,
        cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Given<T>, clap::Error> {
        let text = value.to_string_lossy().into_owned();
        match T::parse_os(value) {
            Ok(value) => Ok(Given { value, text }),
            Err(reason) => {
                let flag =
                    arg.and_then(Arg::get_long).map_or("value".to_string(), |l| format!("--{l}"));
                let culprit = super::Origin::Flag(flag).culprit(&text);
                let kind = clap::error::ErrorKind::ValueValidation;
                Err(clap::Error::raw(kind, format!("{culprit}: {reason}\n")).with_cmd(cmd))
            }
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        let names = T::candidates();
        if names.is_empty() {
            return None;
        }
        Some(Box::new(names.into_iter().map(PossibleValue::new)))
    }
}

/// heat.toml's side: a value as written and what `T`'s parser made of it.
/// A refused value is kept, not failed, so that its error can name the probe
/// and line the way the command line's names the flag.
#[derive(Clone, Debug, PartialEq)]
pub struct Written<T> {
    pub text: String,
    pub value: Result<T, Reason>,
}

impl<'de, T: Value> Deserialize<'de> for Written<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Written<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Value> Visitor<'de> for V<T> {
            type Value = Written<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Written<T>, E> {
                if !T::TAKES_STR {
                    return Err(E::invalid_type(de::Unexpected::Str(v), &self));
                }
                Ok(Written { text: v.to_string(), value: T::from_toml_str(v) })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Written<T>, E> {
                if !T::TAKES_INT {
                    return Err(E::invalid_type(de::Unexpected::Signed(v), &self));
                }
                Ok(Written { text: v.to_string(), value: T::from_int(v) })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Written<T>, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Written<T>, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    pairs.push((k, v));
                }
                let text = pairs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ");
                let names = pairs.iter().try_for_each(|(k, _)| env_name(k));
                match T::from_toml_table(pairs) {
                    None => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
                    Some(v) => {
                        Ok(Written { text: format!("{{{text}}}"), value: names.map(|()| v) })
                    }
                }
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written<T: Value>(toml_value: &str) -> Result<T, String> {
        #[derive(serde::Deserialize)]
        #[serde(bound = "T: Value")]
        struct One<T: Value> {
            v: Written<T>,
        }
        let one: One<T> =
            toml::from_str(&format!("v = {toml_value}")).map_err(|e| e.to_string())?;
        one.v.value.map_err(|r| r.to_string())
    }

    #[test]
    fn durations() {
        let p = Duration::parse;
        assert_eq!(p("30"), Ok(Duration::from_secs(30)));
        assert_eq!(p("0"), Ok(Duration::ZERO));
        assert_eq!(p("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(p("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(p("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(p("-5"), Err(Reason::Negative));
        assert_eq!(p("-5s"), Err(Reason::Negative));
        for bad in ["", "abc", "5x", "1.5", "s", "30 s x"] {
            assert_eq!(p(bad), Err(Reason::NotADuration), "{bad:?}");
        }
        for huge in ["99999999999999999999", "315576001", "11years", "1000000000000h"] {
            assert_eq!(p(huge), Err(Reason::TooLong), "{huge}");
        }
        assert_eq!(p("10years"), Ok(MAX_DURATION));
    }

    #[test]
    fn heat_toml_durations_are_integer_seconds_or_humantime_strings() {
        assert_eq!(written::<Duration>("30"), Ok(Duration::from_secs(30)));
        assert_eq!(written::<Duration>("\"30\""), Ok(Duration::from_secs(30)));
        assert_eq!(written::<Duration>("\"1m30s\""), Ok(Duration::from_secs(90)));
        assert_eq!(written::<Duration>("-1"), Err(Reason::Negative.to_string()));
        assert_eq!(written::<Duration>("\"-1s\""), Err(Reason::Negative.to_string()));
        assert_eq!(written::<Duration>("\"soon\""), Err(Reason::NotADuration.to_string()));
        assert_eq!(written::<Duration>("315576001"), Err(Reason::TooLong.to_string()));
        assert_eq!(written::<Duration>("9223372036854775807"), Err(Reason::TooLong.to_string()));
        let e = written::<Duration>("true").unwrap_err();
        assert!(e.contains("expected a string or an integer"), "{e}");
    }

    #[test]
    fn intervals_and_timeouts_refuse_what_cannot_run() {
        assert_eq!(Interval::parse("10ms"), Ok(Interval(MIN_INTERVAL)));
        assert_eq!(Interval::parse("9ms"), Err(Reason::IntervalTooShort));
        assert_eq!(Interval::parse("1ns"), Err(Reason::IntervalTooShort));
        assert_eq!(Interval::parse("0"), Err(Reason::Zero));
        assert_eq!(written::<Interval>("0"), Err(Reason::Zero.to_string()));
        assert_eq!(Timeout::parse("0s"), Err(Reason::Zero));
        assert_eq!(Timeout::parse("1ns"), Ok(Timeout(Duration::from_nanos(1))));
    }

    #[test]
    fn thresholds_are_whole_numbers_written_as_numbers() {
        assert_eq!(NonZeroU32::parse("3").map(NonZeroU32::get), Ok(3));
        assert_eq!(NonZeroU32::parse("0"), Err(Reason::BelowOne));
        assert_eq!(NonZeroU32::parse("-2"), Err(Reason::BelowOne));
        assert_eq!(NonZeroU32::parse("99999999999"), Err(Reason::BelowOne));
        assert_eq!(NonZeroU32::parse("2.5"), Err(Reason::NotWhole));
        assert_eq!(written::<NonZeroU32>("3").map(NonZeroU32::get), Ok(3));
        let e = written::<NonZeroU32>("\"3\"").unwrap_err();
        assert!(e.contains("invalid type: string \"3\", expected an integer"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("1mb"), Ok(1_000_000));
        assert_eq!(parse_size("0"), Err(Reason::Zero));
        for bad in ["", "KiB", "1.5M", "12 parsecs", "-1"] {
            assert_eq!(parse_size(bad), Err(Reason::NotASize), "{bad:?}");
        }
        assert_eq!(OutputSize::parse("16MiB"), Ok(OutputSize(MAX_OUTPUT)));
        assert_eq!(OutputSize::parse("16GiB"), Err(Reason::TooLarge { most: "16MiB" }));
        assert_eq!(written::<OutputSize>("1024"), Ok(OutputSize(1024)));
    }

    #[test]
    fn pids_are_positive_and_fit_a_pid_t() {
        assert_eq!(Pid::parse("42"), Ok(Pid(42)));
        assert_eq!(Pid::parse(" 42 "), Ok(Pid(42)));
        assert_eq!(Pid::parse("0"), Err(Reason::ProcessGroup));
        assert_eq!(Pid::parse("-1"), Err(Reason::ProcessGroup));
        assert_eq!(Pid::parse("x"), Err(Reason::NotAPid));
        assert_eq!(Pid::parse("4294967296"), Err(Reason::NoSuchProcess));
    }

    #[test]
    fn signals_offer_their_names_to_completions() {
        let names = Signal::candidates();
        for name in ["HUP", "USR1", "TERM", "RTMIN"] {
            assert!(names.contains(&name), "{name}: {names:?}");
        }
        assert!(!names.contains(&"CLD"), "one name per signal: {names:?}");
        assert_eq!(written::<Signal>("10"), Ok(Signal::USR1));
        assert_eq!(written::<Signal>("\"usr1\""), Ok(Signal::USR1));
    }
}
