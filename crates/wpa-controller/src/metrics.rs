//! The reference's Prometheus metrics, exposed with the `prometheus` crate.
//!
//! Names and labels are the Go controller's, so dashboards keep working:
//! `wpa_controller_loop_count_success`, `wpa_controller_loop_duration_seconds`
//! (labels `workerpodautoscaler`, `namespace`), `wpa_queue_messages`,
//! `wpa_queue_messages_sent_per_minute`, `wpa_worker_current`,
//! `wpa_worker_desired`, `wpa_worker_idle`, `wpa_worker_available` (plus
//! `queueName`) and `wpa_log_messages_total{severity}`. The series of a
//! deleted WorkerPodAutoScaler are removed. Ours: idle-first scale down's
//! `wpa_busy_probe_answers_total{answer}` and
//! `wpa_pod_deletion_cost_writes_total`.
//!
//! The crate's [`Registry`] gathers and its [`TextEncoder`] writes the text
//! format; the log counter is an [`IntCounterVec`]. The per-WPA series are
//! one [`Collector`] over a map by WPA instead of the crate's metric
//! vectors, for two reasons: a vector's child sorts its labels by name
//! (`namespace, queueName, workerpodautoscaler`), which would change the
//! order these series have always been exposed in; and each child keeps a
//! copy of its descriptor (several hundred bytes per series, 8 series per
//! WPA, tens of MiB at 10,000 WPAs). In the map a WPA is one entry, so
//! `observe`, `loop_success` and `forget` are one O(log n) lookup, and the
//! label pairs only exist while a scrape is being answered.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

/// Which WorkerPodAutoScaler a series is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WpaLabels {
    /// `workerpodautoscaler`: the object's name.
    pub name: String,
    /// `namespace`.
    pub namespace: String,
    /// `queueName`: the queue's name (last path segment of its URI).
    pub queue_name: String,
}

/// The per-WPA values of one reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WpaSample {
    /// Queue messages.
    pub messages: f64,
    /// Messages sent per minute (`-1` when unknown, as the reference).
    pub sent_per_minute: f64,
    /// Current replicas.
    pub current: f64,
    /// Desired replicas.
    pub desired: f64,
    /// Idle workers (`-1` when unknown).
    pub idle: f64,
    /// Available replicas.
    pub available: f64,
}

/// Every series of one WPA, so that an update or a removal is one lookup.
#[derive(Debug, Default)]
struct WpaSeries {
    /// Successful reconciles and the last one's duration (`None`: none yet).
    loops: Option<(u64, f64)>,
    /// The queue name label and the gauges (`None`: not observed yet).
    gauges: Option<(String, WpaSample)>,
}

/// The series by (name, namespace).
type Wpas = BTreeMap<(String, String), WpaSeries>;

const LOOP_COUNT: (&str, &str) = (
    "wpa_controller_loop_count_success",
    "Number of successful reconcile loops.",
);
const LOOP_DURATION: (&str, &str) = (
    "wpa_controller_loop_duration_seconds",
    "Duration of the last reconcile loop.",
);

/// A gauge of a [`WpaSample`]: name, help, value.
type Gauge = (&'static str, &'static str, fn(&WpaSample) -> f64);

const GAUGES: [Gauge; 6] = [
    (
        "wpa_queue_messages",
        "Messages in the queue (visible and in flight).",
        |s| s.messages,
    ),
    (
        "wpa_queue_messages_sent_per_minute",
        "Messages sent to the queue per minute.",
        |s| s.sent_per_minute,
    ),
    ("wpa_worker_current", "Current workers.", |s| s.current),
    ("wpa_worker_desired", "Desired workers.", |s| s.desired),
    ("wpa_worker_idle", "Idle workers.", |s| s.idle),
    ("wpa_worker_available", "Available workers.", |s| {
        s.available
    }),
];

/// The per-WPA series, as a collector the registry gathers from.
struct WpaCollector {
    wpas: Arc<Mutex<Wpas>>,
    /// The loop count, the loop duration, then [`GAUGES`].
    descs: Vec<Desc>,
}

fn lock(wpas: &Mutex<Wpas>) -> MutexGuard<'_, Wpas> {
    wpas.lock().unwrap_or_else(PoisonError::into_inner)
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

/// The label pairs of a WPA's series, in the reference's order.
fn labels(name: &str, namespace: &str, queue_name: Option<&str>) -> Vec<LabelPair> {
    let mut pairs = vec![
        label("namespace", namespace),
        label("workerpodautoscaler", name),
    ];
    pairs.extend(queue_name.map(|queue| label("queueName", queue)));
    pairs
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut gauge = proto::Gauge::default();
    gauge.set_value(value);
    let mut metric = Metric::from_gauge(gauge);
    metric.set_label(labels);
    metric
}

fn counter(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut counter = proto::Counter::default();
    counter.set_value(value);
    let mut metric = Metric::from_label(labels);
    metric.set_counter(counter);
    metric
}

impl WpaCollector {
    fn new(wpas: Arc<Mutex<Wpas>>) -> prometheus::Result<Self> {
        let wpa = ["namespace", "workerpodautoscaler"];
        let with_queue = ["namespace", "workerpodautoscaler", "queueName"];
        let desc = |name: &str, help: &str, labels: &[&str]| {
            let labels = labels.iter().map(|l| (*l).to_owned()).collect();
            Desc::new(name.to_owned(), help.to_owned(), labels, HashMap::new())
        };
        let mut descs = vec![
            desc(LOOP_COUNT.0, LOOP_COUNT.1, &wpa)?,
            desc(LOOP_DURATION.0, LOOP_DURATION.1, &wpa)?,
        ];
        for (name, help, _) in GAUGES {
            descs.push(desc(name, help, &with_queue)?);
        }
        Ok(WpaCollector { wpas, descs })
    }
}

impl Collector for WpaCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut metrics: Vec<Vec<Metric>> = vec![Vec::new(); self.descs.len()];
        for ((name, namespace), series) in lock(&self.wpas).iter() {
            if let Some((count, seconds)) = series.loops {
                #[allow(clippy::cast_precision_loss)] // exact below 2^53 loops
                let count = count as f64;
                metrics[0].push(counter(labels(name, namespace, None), count));
                metrics[1].push(gauge(labels(name, namespace, None), seconds));
            }
            if let Some((queue_name, sample)) = &series.gauges {
                for (i, (_, _, value)) in GAUGES.iter().enumerate() {
                    let labels = labels(name, namespace, Some(queue_name));
                    metrics[2 + i].push(gauge(labels, value(sample)));
                }
            }
        }
        self.descs
            .iter()
            .zip(metrics)
            .enumerate()
            .map(|(i, (desc, metrics))| {
                let mut family = MetricFamily::default();
                family.set_name(desc.fq_name.clone());
                family.set_help(desc.help.clone());
                family.set_field_type(if i == 0 {
                    MetricType::COUNTER
                } else {
                    MetricType::GAUGE
                });
                family.set_metric(metrics);
                family
            })
            .collect()
    }
}

/// The controller's metrics.
pub struct Metrics {
    registry: Registry,
    wpas: Arc<Mutex<Wpas>>,
    logs: IntCounterVec,
    probes: IntCounterVec,
    cost_writes: IntCounter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("wpas", &lock(&self.wpas).len())
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        #[allow(clippy::expect_used)] // fixed, valid names: a bug if it fails
        Metrics::new().expect("the metric definitions are valid")
    }
}

/// The queue name of a URI: its last non-empty path segment.
#[must_use]
pub fn queue_name(uri: &str) -> String {
    let without_query = uri.split(['?', '#']).next().unwrap_or(uri);
    without_query
        .rsplit('/')
        .find(|segment| !segment.is_empty())
        .unwrap_or(without_query)
        .to_owned()
}

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let wpas = Arc::default();
        registry.register(Box::new(WpaCollector::new(Arc::clone(&wpas))?))?;
        let logs = IntCounterVec::new(
            Opts::new("wpa_log_messages_total", "Log messages by severity."),
            &["severity"],
        )?;
        registry.register(Box::new(logs.clone()))?;
        let probes = IntCounterVec::new(
            Opts::new(
                "wpa_busy_probe_answers_total",
                "Busy-probe answers of pods before idle-first scale downs, by answer (idle, busy, unanswered).",
            ),
            &["answer"],
        )?;
        registry.register(Box::new(probes.clone()))?;
        let cost_writes = IntCounter::new(
            "wpa_pod_deletion_cost_writes_total",
            "controller.kubernetes.io/pod-deletion-cost annotations written before idle-first scale downs.",
        )?;
        registry.register(Box::new(cost_writes.clone()))?;
        Ok(Metrics {
            registry,
            wpas,
            logs,
            probes,
            cost_writes,
        })
    }

    fn series<'a>(wpas: &'a mut Wpas, name: &str, namespace: &str) -> &'a mut WpaSeries {
        wpas.entry((name.to_owned(), namespace.to_owned()))
            .or_default()
    }

    /// Records one successful reconcile and its duration.
    pub fn loop_success(&self, namespace: &str, name: &str, seconds: f64) {
        let mut wpas = lock(&self.wpas);
        let series = Self::series(&mut wpas, name, namespace);
        let count = series.loops.map_or(0, |(count, _)| count);
        series.loops = Some((count + 1, seconds));
    }

    /// Sets the queue and worker gauges of one WPA.
    pub fn observe(&self, labels: WpaLabels, sample: WpaSample) {
        let mut wpas = lock(&self.wpas);
        // One gauge set per WPA: a queue change replaces the old series.
        Self::series(&mut wpas, &labels.name, &labels.namespace).gauges =
            Some((labels.queue_name, sample));
    }

    /// Removes every series of a deleted WPA.
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = (name.to_owned(), namespace.to_owned());
        lock(&self.wpas).remove(&key);
    }

    /// Counts one log message of `severity` (`info`, `warning`, `error`).
    pub fn log_message(&self, severity: &'static str) {
        self.logs.with_label_values(&[severity]).inc();
    }

    /// Counts the answers of one round of busy probes.
    pub fn busy_probe_answers(&self, idle: u32, busy: u32, unanswered: u32) {
        for (answer, count) in [("idle", idle), ("busy", busy), ("unanswered", unanswered)] {
            self.probes
                .with_label_values(&[answer])
                .inc_by(u64::from(count));
        }
    }

    /// Counts `count` deletion-cost annotation writes.
    pub fn pod_deletion_cost_writes(&self, count: u32) {
        self.cost_writes.inc_by(u64::from(count));
    }

    /// The metrics in the Prometheus text format (0.0.4).
    #[must_use]
    pub fn render(&self) -> String {
        // Encoding fails only on a family without a name or without
        // metrics, which the registry never gathers.
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// A tracing layer counting log events by severity into [`Metrics`].
#[derive(Debug, Clone)]
pub struct LogCounter(pub std::sync::Arc<Metrics>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let severity = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            _ => return,
        };
        self.0.log_message(severity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names() {
        assert_eq!(
            queue_name("https://sqs.ap-south-1.amazonaws.com/123/jobs"),
            "jobs"
        );
        assert_eq!(queue_name("beanstalk://localhost:11300/emails"), "emails");
        assert_eq!(queue_name("beanstalk://localhost:11300/emails/"), "emails");
    }

    #[test]
    fn renders_and_forgets() {
        let metrics = Metrics::default();
        metrics.loop_success("ns", "a", 0.5);
        metrics.observe(
            WpaLabels {
                name: "a".into(),
                namespace: "ns".into(),
                queue_name: "q".into(),
            },
            WpaSample {
                messages: 3.0,
                desired: 2.0,
                ..WpaSample::default()
            },
        );
        metrics.log_message("warning");
        let text = metrics.render();
        assert!(text.contains(
            "wpa_controller_loop_count_success{namespace=\"ns\",workerpodautoscaler=\"a\"} 1"
        ));
        assert!(text.contains(
            "wpa_queue_messages{namespace=\"ns\",workerpodautoscaler=\"a\",queueName=\"q\"} 3"
        ));
        assert!(text.contains(
            "wpa_worker_desired{namespace=\"ns\",workerpodautoscaler=\"a\",queueName=\"q\"} 2"
        ));
        assert!(text.contains("wpa_log_messages_total{severity=\"warning\"} 1"));
        metrics.forget("ns", "a");
        let text = metrics.render();
        assert!(!text.contains("workerpodautoscaler=\"a\""));
    }

    #[test]
    fn exposition_is_the_reference_text_format() {
        let metrics = Metrics::default();
        metrics.loop_success("ns", "a", 0.5);
        metrics.loop_success("ns", "a", 0.25);
        metrics.observe(
            WpaLabels {
                name: "a".into(),
                namespace: "ns".into(),
                queue_name: "we\"ird\\q".into(),
            },
            WpaSample {
                messages: 3.0,
                sent_per_minute: -1.0,
                current: 1.0,
                desired: 2.0,
                idle: -1.0,
                available: 1.5,
            },
        );
        for severity in ["info", "error", "info"] {
            metrics.log_message(severity);
        }
        let text = metrics.render();
        let wpa = "namespace=\"ns\",workerpodautoscaler=\"a\"";
        let queue = format!("{wpa},queueName=\"we\\\"ird\\\\q\"");
        let family = |name: &str, help: &str, kind: &str, samples: &[(&str, &str)]| {
            let mut block = format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
            for (labels, value) in samples {
                block += &format!("{name}{{{labels}}} {value}\n");
            }
            block
        };
        let blocks = [
            family(LOOP_COUNT.0, LOOP_COUNT.1, "counter", &[(wpa, "2")]),
            family(LOOP_DURATION.0, LOOP_DURATION.1, "gauge", &[(wpa, "0.25")]),
            family(
                "wpa_log_messages_total",
                "Log messages by severity.",
                "counter",
                &[("severity=\"error\"", "1"), ("severity=\"info\"", "2")],
            ),
            // Without labels, and 0 until an idle-first scale down writes.
            "# HELP wpa_pod_deletion_cost_writes_total controller.kubernetes.io/pod-deletion-cost annotations written before idle-first scale downs.\n# TYPE wpa_pod_deletion_cost_writes_total counter\nwpa_pod_deletion_cost_writes_total 0\n".to_owned(),
            family(
                "wpa_queue_messages",
                "Messages in the queue (visible and in flight).",
                "gauge",
                &[(&queue, "3")],
            ),
            family(
                "wpa_queue_messages_sent_per_minute",
                "Messages sent to the queue per minute.",
                "gauge",
                &[(&queue, "-1")],
            ),
            family(
                "wpa_worker_available",
                "Available workers.",
                "gauge",
                &[(&queue, "1.5")],
            ),
            family(
                "wpa_worker_current",
                "Current workers.",
                "gauge",
                &[(&queue, "1")],
            ),
            family(
                "wpa_worker_desired",
                "Desired workers.",
                "gauge",
                &[(&queue, "2")],
            ),
            family(
                "wpa_worker_idle",
                "Idle workers.",
                "gauge",
                &[(&queue, "-1")],
            ),
        ];
        // Every family, in name order, and nothing else.
        assert_eq!(text, blocks.concat());
    }

    #[test]
    fn a_queue_change_replaces_the_series() {
        let metrics = Metrics::default();
        let labels = |name: &str, queue: &str| WpaLabels {
            name: name.into(),
            namespace: "ns".into(),
            queue_name: queue.into(),
        };
        metrics.observe(labels("a", "old"), WpaSample::default());
        metrics.observe(labels("b", "old"), WpaSample::default());
        metrics.observe(labels("a", "new"), WpaSample::default());
        let text = metrics.render();
        let current: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("wpa_worker_current{"))
            .collect();
        assert_eq!(
            current,
            [
                "wpa_worker_current{namespace=\"ns\",workerpodautoscaler=\"a\",queueName=\"new\"} 0",
                "wpa_worker_current{namespace=\"ns\",workerpodautoscaler=\"b\",queueName=\"old\"} 0",
            ]
        );
        // Gauges without a reconcile yet: no loop series.
        assert!(!text.contains("wpa_controller_loop_count_success{"));
    }
}
