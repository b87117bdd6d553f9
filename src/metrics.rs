//! Prometheus metrics: the families (prometheus-client), each probe's handles
//! into them, and the HTTP server that serves them (hyper, http1 only) on
//! heat's one thread.
//!
//! A probe's handles are fetched once, when its supervisor starts, so a check
//! costs a few atomic adds and no lookup; they pass to the supervisor that
//! replaces it on a reload (its counters go on), and its series leave the
//! families when the probe goes away.

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::board::Directory;
use crate::log::Log;
use crate::signal::Signal;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabel {
    probe: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    probe: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabels {
    probe: String,
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    probe: String,
    signal: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

type Histograms = Family<ProbeLabel, Histogram, fn() -> Histogram>;

/// Check durations: 1 ms to about 65 s.
fn duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// How late a check started: 100 µs to about 3 s.
fn lateness_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

/// Which hook ran, and how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    Fail,
    Recovery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookResult {
    Success,
    Failure,
    Timeout,
}

const HOOK_KINDS: [(HookKind, &str); 2] =
    [(HookKind::Fail, "fail"), (HookKind::Recovery, "recovery")];
const HOOK_RESULTS: [(HookResult, &str); 3] = [
    (HookResult::Success, "success"),
    (HookResult::Failure, "failure"),
    (HookResult::Timeout, "timeout"),
];

/// Every family heat exports.
pub struct Metrics {
    registry: Registry,
    success: Family<ProbeLabel, Gauge>,
    duration: Histograms,
    checks: Family<CheckLabels, Counter>,
    consecutive: Family<ProbeLabel, Gauge>,
    rounds: Family<ProbeLabel, Counter>,
    in_recovery: Family<ProbeLabel, Gauge>,
    paused: Family<ProbeLabel, Gauge>,
    hooks: Family<HookLabels, Counter>,
    signals: Family<SignalLabels, Counter>,
    lateness: Histograms,
    reload_success: Gauge,
    last_reload: Gauge<f64, AtomicU64>,
    lost: Counter,
}

impl Metrics {
    pub fn new() -> Rc<Metrics> {
        let mut registry = Registry::with_prefix("heat");
        let m = Metrics {
            success: Family::default(),
            duration: Family::new_with_constructor(duration_buckets),
            checks: Family::default(),
            consecutive: Family::default(),
            rounds: Family::default(),
            in_recovery: Family::default(),
            paused: Family::default(),
            hooks: Family::default(),
            signals: Family::default(),
            lateness: Family::new_with_constructor(lateness_buckets),
            reload_success: Gauge::default(),
            last_reload: Gauge::default(),
            lost: Counter::default(),
            registry: Registry::default(),
        };
        let build: Family<VersionLabel, Gauge> = Family::default();
        build.get_or_create(&VersionLabel { version: env!("CARGO_PKG_VERSION") }).set(1);
        registry.register("build_info", "heat's version (always 1)", build);
        registry.register(
            "check_success",
            "Whether the probe's last check succeeded (1) or failed (0)",
            m.success.clone(),
        );
        registry.register(
            "check_duration_seconds",
            "How long the probe's checks ran",
            m.duration.clone(),
        );
        registry.register("checks", "Checks that ended, by result", m.checks.clone());
        registry.register(
            "consecutive_failures",
            "Failures counted since the probe's last success",
            m.consecutive.clone(),
        );
        registry.register("recovery_rounds", "Recovery rounds started", m.rounds.clone());
        registry.register(
            "in_recovery",
            "Whether the probe is in recovery (1) or not (0)",
            m.in_recovery.clone(),
        );
        registry.register(
            "paused",
            "Whether the probe is paused for maintenance (1) or not (0)",
            m.paused.clone(),
        );
        registry.register("hooks", "Hooks that ended, by kind and result", m.hooks.clone());
        registry.register("signals_sent", "Signals heat sent, by signal", m.signals.clone());
        registry.register(
            "schedule_lateness_seconds",
            "How long after its scheduled time each check started",
            m.lateness.clone(),
        );
        registry.register(
            "config_reload_success",
            "Whether the last reload of the configuration succeeded (1) or was refused (0)",
            m.reload_success.clone(),
        );
        registry.register(
            "config_last_reload_timestamp_seconds",
            "When the configuration was last loaded, in Unix seconds",
            m.last_reload.clone(),
        );
        registry.register(
            "log_entries_lost",
            "Log entries dropped because the verbose log could not keep up",
            m.lost.clone(),
        );
        m.reload_success.set(1);
        Rc::new(Metrics { registry, ..m })
    }

    /// A reload was applied (`true`) or refused; `unix` is its time.
    pub fn reloaded(&self, ok: bool, unix: f64) {
        self.reload_success.set(i64::from(ok));
        if ok {
            self.last_reload.set(unix);
        }
    }

    /// The text Prometheus scrapes; `lost` is the log's count of dropped entries.
    pub fn encode(&self, lost: u64) -> String {
        let seen = self.lost.get();
        if lost > seen {
            self.lost.inc_by(lost - seen);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The handles of probe `name`, its series created as they are needed.
    /// Boxed: a probe without metrics pays one word for them.
    pub fn probe(self: &Rc<Metrics>, name: &str) -> Box<ProbeMetrics> {
        let label = ProbeLabel { probe: name.to_string() };
        let counter =
            |result| self.checks.get_or_create_owned(&CheckLabels { probe: name.into(), result });
        Box::new(ProbeMetrics {
            duration: self.duration.get_or_create_owned(&label),
            ok: counter("success"),
            failed: counter("failure"),
            consecutive: self.consecutive.get_or_create_owned(&label),
            rounds: self.rounds.get_or_create_owned(&label),
            in_recovery: self.in_recovery.get_or_create_owned(&label),
            paused: self.paused.get_or_create_owned(&label),
            lateness: self.lateness.get_or_create_owned(&label),
            success: RefCell::new(None),
            signals: RefCell::new(Vec::new()),
            label,
            families: self.clone(),
        })
    }
}

/// One probe's handles into the families; its series are removed with it.
pub struct ProbeMetrics {
    families: Rc<Metrics>,
    label: ProbeLabel,
    /// Created at the first result: no series claims a success not yet known.
    success: RefCell<Option<Gauge>>,
    duration: Histogram,
    ok: Counter,
    failed: Counter,
    consecutive: Gauge,
    rounds: Counter,
    in_recovery: Gauge,
    paused: Gauge,
    lateness: Histogram,
    /// The signal names with a series of this probe's.
    signals: RefCell<Vec<String>>,
}

impl std::fmt::Debug for ProbeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeMetrics").field("probe", &self.label.probe).finish()
    }
}

impl ProbeMetrics {
    /// A check ended with `code` after `ran`.
    pub fn check(&self, code: i32, ran: Duration) {
        self.duration.observe(ran.as_secs_f64());
        if code == 0 { &self.ok } else { &self.failed }.inc();
        let mut success = self.success.borrow_mut();
        let gauge =
            success.get_or_insert_with(|| self.families.success.get_or_create_owned(&self.label));
        gauge.set(i64::from(code == 0));
    }

    /// The probe's state after an event.
    pub fn state(&self, fails: u32, recovery: bool, paused: bool) {
        self.consecutive.set(i64::from(fails));
        self.in_recovery.set(i64::from(recovery));
        self.paused.set(i64::from(paused));
    }

    pub fn round(&self) {
        self.rounds.inc();
    }

    pub fn late(&self, by: Duration) {
        self.lateness.observe(by.as_secs_f64());
    }

    pub fn hook(&self, kind: HookKind, result: HookResult) {
        let kind = HOOK_KINDS.iter().find(|k| k.0 == kind).map_or("fail", |k| k.1);
        let result = HOOK_RESULTS.iter().find(|r| r.0 == result).map_or("failure", |r| r.1);
        let labels = HookLabels { probe: self.label.probe.clone(), kind, result };
        self.families.hooks.get_or_create(&labels).inc();
    }

    pub fn signal(&self, signal: Signal) {
        let name = signal.to_string();
        let labels = SignalLabels { probe: self.label.probe.clone(), signal: name.clone() };
        self.families.signals.get_or_create(&labels).inc();
        let mut seen = self.signals.borrow_mut();
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
}

impl Drop for ProbeMetrics {
    fn drop(&mut self) {
        let f = &self.families;
        let probe = &self.label.probe;
        for family in [&f.success, &f.consecutive, &f.in_recovery, &f.paused] {
            family.remove(&self.label);
        }
        f.rounds.remove(&self.label);
        f.duration.remove(&self.label);
        f.lateness.remove(&self.label);
        for result in ["success", "failure"] {
            f.checks.remove(&CheckLabels { probe: probe.clone(), result });
        }
        for (_, kind) in HOOK_KINDS {
            for (_, result) in HOOK_RESULTS {
                f.hooks.remove(&HookLabels { probe: probe.clone(), kind, result });
            }
        }
        for signal in self.signals.take() {
            f.signals.remove(&SignalLabels { probe: probe.clone(), signal });
        }
    }
}

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;
/// A connection that has not finished its request in this time is closed.
const CONNECTION_TIME: Duration = Duration::from_secs(10);

/// Serves `/metrics` and `/status.json` until heat ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Rc<Metrics>,
    directory: Rc<Directory>,
    log: Log,
) {
    let open = Rc::new(std::cell::Cell::new(0usize));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of fds, most likely: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if open.get() >= MAX_CONNECTIONS {
            drop(stream);
            continue;
        }
        open.set(open.get() + 1);
        let (metrics, directory, log, open) =
            (metrics.clone(), directory.clone(), log.clone(), open.clone());
        tokio::task::spawn_local(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |req| {
                let page = answer(&req, &metrics, &directory, &log);
                async move { Ok::<_, Infallible>(page) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .max_buf_size(16 * 1024)
                .serve_connection(io, service);
            let _ = tokio::time::timeout(CONNECTION_TIME, conn).await;
            open.set(open.get() - 1);
        });
    }
}

type Page = hyper::Response<http_body_util::Full<hyper::body::Bytes>>;

fn answer<B>(req: &hyper::Request<B>, metrics: &Metrics, directory: &Directory, log: &Log) -> Page {
    use hyper::{Method, StatusCode};
    let (status, kind, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(log.lost_total()),
        ),
        (&Method::GET, "/status.json") => {
            let doc = crate::control::status_document(directory, &[], false);
            (StatusCode::OK, "application/json", doc.to_string())
        }
        (&Method::GET, "/") => (
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "heat: /metrics (Prometheus), /status.json\n".to_string(),
        ),
        (&Method::GET, _) => {
            (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found\n".to_string())
        }
        _ => {
            (StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "only GET\n".to_string())
        }
    };
    let mut page = hyper::Response::new(http_body_util::Full::new(body.into()));
    *page.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(kind) {
        page.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    page
}
