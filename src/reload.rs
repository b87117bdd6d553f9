//! What a reload changes: probes matched by name and compared by their
//! effective settings after layering (comments, formatting and the contents of
//! scripts do not count).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::ProbeConfig;

/// The probes of a reload, by name, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Plan {
    /// Nothing to start or stop.
    pub fn is_noop(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// The one-line summary of the reload's log entry.
    pub fn summary(&self) -> String {
        let part = |what: &str, names: &[String]| {
            if names.is_empty() {
                format!("{what} 0")
            } else {
                format!("{what} {} ({})", names.len(), names.join(", "))
            }
        };
        format!(
            "reloaded: {}; {}; {}; unchanged {}",
            part("added", &self.added),
            part("removed", &self.removed),
            part("changed", &self.changed),
            self.unchanged.len()
        )
    }
}

/// The INFO entries a good reload writes: after a failed one, that the file
/// is valid again (even when nothing changed, so the operator sees the error
/// is gone); then the summary, when asked for (HUP) or when something changed.
pub fn entries(plan: &Plan, asked: bool, after_failure: bool) -> Vec<String> {
    let mut out = Vec::new();
    if after_failure {
        out.push("configuration valid again".to_string());
    }
    if asked || !plan.is_noop() {
        out.push(plan.summary());
    }
    out
}

/// Compares the running probes with the new ones.
pub fn plan(old: &[ProbeConfig], new: &[ProbeConfig]) -> Plan {
    let old: BTreeMap<&str, &ProbeConfig> = old.iter().map(|p| (p.name.as_str(), p)).collect();
    let new: BTreeMap<&str, &ProbeConfig> = new.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut plan = Plan::default();
    for (name, cfg) in &new {
        match old.get(name) {
            None => plan.added.push(name.to_string()),
            Some(prev) if prev != cfg => plan.changed.push(name.to_string()),
            Some(_) => plan.unchanged.push(name.to_string()),
        }
    }
    plan.removed = old.keys().filter(|n| !new.contains_key(*n)).map(|n| n.to_string()).collect();
    plan
}

/// A probe's stable phase in service mode: the 64-bit FNV-1a hash of its name,
/// modulo min(interval, 10 s), in milliseconds.
pub fn phase(name: &str, interval: Duration) -> Duration {
    let span = interval.min(Duration::from_secs(10)).as_millis() as u64;
    if span == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(fnv1a(name.as_bytes()) % span)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(name: &str, interval: u64) -> ProbeConfig {
        let interval = Duration::from_secs(interval);
        ProbeConfig { interval, timeout: interval, ..crate::testutil::probe_config(name) }
    }

    #[test]
    fn probes_are_matched_by_name_and_compared_by_settings() {
        let old = [probe("a", 10), probe("b", 10), probe("c", 10)];
        let new = [probe("a", 10), probe("b", 20), probe("d", 10)];
        let p = plan(&old, &new);
        assert_eq!(p.added, ["d"]);
        assert_eq!(p.removed, ["c"]);
        assert_eq!(p.changed, ["b"]);
        assert_eq!(p.unchanged, ["a"]);
        assert!(!p.is_noop());
        assert_eq!(p.summary(), "reloaded: added 1 (d); removed 1 (c); changed 1 (b); unchanged 1");
    }

    #[test]
    fn the_same_probes_are_a_noop() {
        let old = [probe("a", 10), probe("b", 10)];
        let p = plan(&old, &old.clone());
        assert!(p.is_noop());
        assert_eq!(p.unchanged, ["a", "b"]);
    }

    #[test]
    fn a_good_reload_after_a_failed_one_says_the_file_is_valid_again() {
        let same = [probe("a", 10)];
        let noop = plan(&same, &same);
        let changed = plan(&same, &[probe("a", 20)]);
        let valid = "configuration valid again";
        let summary = "reloaded: added 0; removed 0; changed 1 (a); unchanged 0";
        // A file change that changed nothing says nothing, unless it follows a failure.
        assert_eq!(entries(&noop, false, false), Vec::<String>::new());
        assert_eq!(entries(&noop, false, true), [valid]);
        assert_eq!(
            entries(&noop, true, true),
            [valid, "reloaded: added 0; removed 0; changed 0; unchanged 1"]
        );
        assert_eq!(entries(&changed, false, false), [summary]);
        assert_eq!(entries(&changed, false, true), [valid, summary]);
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn phase_is_stable_and_within_the_span() {
        let i = Duration::from_secs(30);
        // fnv1a("web") is 0x5ea0_e119_4872_1ef1; the span is capped at 10 s.
        assert_eq!(phase("web", i), Duration::from_millis(1521));
        assert!(phase("web", i) < Duration::from_secs(10));
        let short = Duration::from_millis(250);
        for n in 0..100 {
            assert!(phase(&format!("p{n}"), short) < short);
        }
        assert_eq!(
            phase("a", Duration::from_secs(60)),
            Duration::from_millis(0xaf63_dc4c_8601_ec8c % 10_000)
        );
        assert_eq!(
            phase("a", 2 * Duration::from_secs(1)),
            Duration::from_millis(0xaf63_dc4c_8601_ec8c % 2_000)
        );
        assert_eq!(phase("a", Duration::from_micros(10)), Duration::ZERO);
    }
}
