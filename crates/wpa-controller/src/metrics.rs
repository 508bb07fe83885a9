//! The reference's Prometheus metrics, rendered in the text format.
//!
//! Names and labels are the Go controller's, so dashboards keep working:
//! `wpa_controller_loop_count_success`, `wpa_controller_loop_duration_seconds`
//! (labels `workerpodautoscaler`, `namespace`), `wpa_queue_messages`,
//! `wpa_queue_messages_sent_per_minute`, `wpa_worker_current`,
//! `wpa_worker_desired`, `wpa_worker_idle`, `wpa_worker_available` (plus
//! `queueName`) and `wpa_log_messages_total{severity}`. The series of a
//! deleted WorkerPodAutoScaler are removed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

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

#[derive(Debug, Default)]
struct Inner {
    /// By (name, namespace): the reference's label order, and the order the
    /// series are rendered in.
    wpas: BTreeMap<(String, String), WpaSeries>,
    logs: BTreeMap<&'static str, u64>,
}

impl Inner {
    fn series(&mut self, name: &str, namespace: &str) -> &mut WpaSeries {
        let key = (name.to_owned(), namespace.to_owned());
        self.wpas.entry(key).or_default()
    }
}

/// The controller's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one successful reconcile and its duration.
    pub fn loop_success(&self, namespace: &str, name: &str, seconds: f64) {
        let mut inner = self.lock();
        let series = inner.series(name, namespace);
        let count = series.loops.map_or(0, |(count, _)| count);
        series.loops = Some((count + 1, seconds));
    }

    /// Sets the queue and worker gauges of one WPA.
    pub fn observe(&self, labels: WpaLabels, sample: WpaSample) {
        let mut inner = self.lock();
        // One gauge set per WPA: a queue change replaces the old series.
        inner.series(&labels.name, &labels.namespace).gauges = Some((labels.queue_name, sample));
    }

    /// Removes every series of a deleted WPA.
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = (name.to_owned(), namespace.to_owned());
        self.lock().wpas.remove(&key);
    }

    /// Counts one log message of `severity` (`info`, `warning`, `error`).
    pub fn log_message(&self, severity: &'static str) {
        *self.lock().logs.entry(severity).or_default() += 1;
    }

    /// The metrics in the Prometheus text format (0.0.4).
    #[must_use]
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        let wpa = |name: &str, namespace: &str| {
            format!(
                "namespace=\"{}\",workerpodautoscaler=\"{}\"",
                escape(namespace),
                escape(name)
            )
        };
        let _ = writeln!(
            out,
            "# HELP wpa_controller_loop_count_success Number of successful reconcile loops.\n# TYPE wpa_controller_loop_count_success counter"
        );
        let loops = inner
            .wpas
            .iter()
            .filter_map(|(key, series)| Some((key, series.loops?)));
        for ((name, namespace), (count, _)) in loops.clone() {
            let _ = writeln!(
                out,
                "wpa_controller_loop_count_success{{{}}} {count}",
                wpa(name, namespace)
            );
        }
        let _ = writeln!(
            out,
            "# HELP wpa_controller_loop_duration_seconds Duration of the last reconcile loop.\n# TYPE wpa_controller_loop_duration_seconds gauge"
        );
        for ((name, namespace), (_, seconds)) in loops {
            let _ = writeln!(
                out,
                "wpa_controller_loop_duration_seconds{{{}}} {seconds}",
                wpa(name, namespace)
            );
        }
        type Gauge = (&'static str, &'static str, fn(&WpaSample) -> f64);
        let gauges: [Gauge; 6] = [
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
        for (metric, help, value) in gauges {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
            let gauges = inner
                .wpas
                .iter()
                .filter_map(|(key, series)| Some((key, series.gauges.as_ref()?)));
            for ((name, namespace), (queue_name, sample)) in gauges {
                let _ = writeln!(
                    out,
                    "{metric}{{{},queueName=\"{}\"}} {}",
                    wpa(name, namespace),
                    escape(queue_name),
                    value(sample)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP wpa_log_messages_total Log messages by severity.\n# TYPE wpa_log_messages_total counter"
        );
        for (severity, count) in &inner.logs {
            let _ = writeln!(
                out,
                "wpa_log_messages_total{{severity=\"{severity}\"}} {count}"
            );
        }
        out
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
