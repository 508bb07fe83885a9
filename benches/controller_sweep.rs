#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
//! One `run` controller holding 10,000 WorkerPodAutoScalers (and their
//! 10,000 Deployments) against the Kubernetes API double (a plain program:
//! `cargo bench -p wpa-benches --bench controller_sweep`).
//!
//! The double runs in a child process (this program, re-executed with
//! `WPA_BENCH_API_DOUBLE=<count>`), so this process's memory is the
//! controller's own: its reflector caches, one task and one queue
//! subscription per WPA, the pollers, the kube client, the metrics.
//!
//! 1. Peak RSS: `VmHWM` of this process once every WPA has been reconciled
//!    (each has a status written by the controller) and a resync pass over
//!    all of them has run, next to `VmRSS` before the controller started.
//! 2. Sweep: [`wpa_controller::DecisionSweep::run`] over all WPAs: the code
//!    a reconcile runs before any write (validate the spec, read the
//!    Deployment from the controller's reflector cache, take the queue's
//!    latest snapshot, call the core's `reconcile` with a dry-run target).
//!    No network: the WPA objects are listed once beforehand, the queues
//!    are fake sources whose pollers have published. Timed over repeated
//!    sweeps; min, median and max.
//!
//! The WPAs share 8 queues (`fake://q0` .. `fake://q7`, 0 to 14 messages)
//! and every Deployment already runs what its queue needs, so a pass
//! decides "no scale" everywhere (writes are the status only). Objects are
//! shaped like `kubectl apply`'d ones (last-applied annotation, a pod
//! template with one container, a status): the controller's reflectors
//! keep only what a reconcile reads, and the double lists in pages of 500
//! as the API server does, so their size should not show in the peak
//! (`WPA_BENCH_OBJECTS=slim` checks that). `--k8s-api-qps 0`
//! (unlimited): at the default 5 QPS the first 10,000 status writes alone
//! would take over half an hour.
//!
//! Env: `WPA_BENCH_WPAS` (default 10,000), `WPA_BENCH_SWEEPS` (default 50),
//! `WPA_BENCH_OBJECTS=slim` (Deployments with only name, replicas and
//! selector: how much of the memory is the cached objects' size).
//! Run without `--bench` (as `cargo test --all-targets` does), it is a
//! smoke run with 100 WPAs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::sync::watch;
use wpa_benches::{RunMode, env_number, ms};
use wpa_controller::{Controller, ControllerConfig, Health, Metrics, SourceFactory};
use wpa_core::QueueSnapshot;
use wpa_kube::WorkerPodAutoScaler;
use wpa_poller::{PollRequest, PollerConfig, QueueSource, Registry, Subscription};

const QUEUES: usize = 8;
const ROLE: &str = "WPA_BENCH_API_DOUBLE";
const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    let mode = RunMode::from_args();
    if mode == RunMode::List {
        return;
    }
    if let Ok(count) = std::env::var(ROLE) {
        api_double(count.parse().expect("a WPA count"));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // program without it: then a smoke run.
    let full = mode == RunMode::Full;
    let (wpas, sweeps) = if full {
        (
            env_number("WPA_BENCH_WPAS", 10_000),
            env_number("WPA_BENCH_SWEEPS", 50),
        )
    } else {
        (100, 3)
    };
    let count = |n: u64| usize::try_from(n).expect("a count that fits in memory");
    bench(count(wpas), count(sweeps).max(1), full);
}

// ---- the API double, in a child process -------------------------------

fn queue_of(i: usize) -> usize {
    i % QUEUES
}

/// Queue k holds 2k messages; at 2 per worker its Deployment needs k.
fn messages_of(queue: usize) -> u32 {
    u32::try_from(2 * queue).unwrap()
}

fn namespace_of(i: usize) -> String {
    format!("team-{:02}", i % 20)
}

fn deployment(i: usize) -> Value {
    let namespace = namespace_of(i);
    let name = format!("worker-{i:05}");
    let replicas = queue_of(i);
    if std::env::var("WPA_BENCH_OBJECTS").is_ok_and(|v| v == "slim") {
        return json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": {}},
            "status": {"replicas": replicas, "availableReplicas": replicas},
        });
    }
    let container = json!({
        "name": "worker",
        "image": format!("registry.example.com/{namespace}/worker:1.{}.{}", i % 7, i % 13),
        "args": ["--queue", format!("q{}", queue_of(i)), "--concurrency", "1"],
        "env": [
            {"name": "QUEUE_URI", "value": format!("fake://q{}", queue_of(i))},
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "readinessProbe": {"exec": {"command": ["/bin/healthcheck"]}, "periodSeconds": 10},
    });
    let spec = json!({
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": name, "team": namespace}},
            "spec": {
                "containers": [container],
                "terminationGracePeriodSeconds": 30,
                "serviceAccountName": "worker",
            },
        },
    });
    let applied = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": spec,
    });
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": {"app": name, "team": namespace, "app.kubernetes.io/managed-by": "kubectl"},
            "annotations": {
                "deployment.kubernetes.io/revision": "3",
                "kubectl.kubernetes.io/last-applied-configuration": applied.to_string(),
            },
        },
        "spec": spec,
        "status": {
            "replicas": replicas, "readyReplicas": replicas,
            "availableReplicas": replicas, "updatedReplicas": replicas,
            "observedGeneration": 3,
        },
    })
}

fn wpa(i: usize) -> Value {
    json!({
        "apiVersion": "k8s.practo.dev/v1", "kind": "WorkerPodAutoScaler",
        "metadata": {"name": format!("wpa-{i:05}"), "namespace": namespace_of(i)},
        "spec": {
            "minReplicas": 0, "maxReplicas": 10,
            "deploymentName": format!("worker-{i:05}"),
            "queueURI": format!("fake://q{}", queue_of(i)),
            "targetMessagesPerWorker": 2,
            "maxDisruption": "25%",
        }
    })
}

/// Seeds the double, prints its URL and the mean object sizes, then
/// answers `reconciled` (WPAs with a status) on stdin until EOF.
fn api_double(count: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime
        .block_on(wpa_kube_testing::ApiServer::start())
        .unwrap();
    server.set_auto_ready(true);
    let (mut dep_bytes, mut wpa_bytes) = (0, 0);
    for i in 0..count {
        let (d, w) = (deployment(i), wpa(i));
        dep_bytes += d.to_string().len();
        wpa_bytes += w.to_string().len();
        server.insert(d).unwrap();
        server.insert(w).unwrap();
    }
    println!(
        "{} {} {}",
        server.url(),
        dep_bytes / count.max(1),
        wpa_bytes / count.max(1)
    );
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "reconciled" {
            let n = server
                .list("k8s.practo.dev/v1", "workerpodautoscalers", None)
                .iter()
                .filter(|w| w["status"]["Conditions"].is_array())
                .count();
            println!("{n}");
        }
    }
    drop(server);
    drop(runtime);
}

struct Double {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Double {
    fn start(count: usize) -> (Self, String, usize, usize) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut double = Double {
            child,
            stdin,
            stdout,
        };
        let line = double.line();
        let mut parts = line.split_whitespace();
        let url = parts.next().unwrap().to_owned();
        let dep = parts.next().unwrap().parse().unwrap();
        let wpa = parts.next().unwrap().parse().unwrap();
        (double, url, dep, wpa)
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the API double exited");
        line.trim().to_owned()
    }

    fn reconciled(&mut self) -> usize {
        writeln!(self.stdin, "reconciled").unwrap();
        self.line().parse().unwrap()
    }

    fn stop(self) {
        let Double {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let _ = child.wait();
    }
}

// ---- fake queues ---------------------------------------------------------

/// `fake://qK` holds `messages_of(K)` messages.
#[derive(Default)]
struct FakeQueues {
    lengths: Mutex<HashMap<String, Arc<AtomicU32>>>,
}

struct FakeSource(Arc<AtomicU32>);

impl QueueSource for FakeSource {
    type Error = Infallible;
    async fn poll(&mut self, request: PollRequest) -> Result<QueueSnapshot, Infallible> {
        let messages = self.0.load(Ordering::Relaxed);
        if request.wake_up && messages == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(QueueSnapshot::new(messages))
    }
}

impl SourceFactory for FakeQueues {
    fn subscribe(&self, registry: &Registry, uri: &str) -> Result<Subscription, String> {
        let queue: usize = uri
            .strip_prefix("fake://q")
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| format!("not a bench queue: {uri}"))?;
        let length = Arc::clone(
            self.lengths
                .lock()
                .unwrap()
                .entry(uri.to_owned())
                .or_insert_with(|| Arc::new(AtomicU32::new(messages_of(queue)))),
        );
        let config = PollerConfig::new(Duration::from_secs(1), Duration::from_secs(1));
        registry
            .subscribe(uri, config, None, || {
                Ok::<_, Infallible>(FakeSource(length))
            })
            .map_err(|e| e.to_string())
    }
}

// ---- the bench -----------------------------------------------------------

/// A `Vm*` line of /proc/self/status, in bytes.
fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let bytes = bytes as f64;
    bytes / MIB
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
    started.elapsed()
}

fn bench(count: usize, sweeps: usize, full: bool) {
    let started = Instant::now();
    let (mut double, url, dep_bytes, wpa_bytes) = Double::start(count);
    println!(
        "controller_sweep: {count} WPAs, {count} Deployments ({dep_bytes} B and {wpa_bytes} B of JSON each), {QUEUES} queues; API double in child process {} at {url} (seeded in {:.1} s)",
        double.child.id(),
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let _context = runtime.enter();
    let mut kube_config = kube::Config::new(url.parse().unwrap());
    kube_config.default_namespace = "default".to_owned();
    kube_config.read_timeout = Some(Duration::from_secs(60));
    let client = kube::Client::try_from(kube_config).unwrap();
    let resync = Duration::from_secs(if full { 10 } else { 2 });
    let config = ControllerConfig {
        resync_period: resync,
        api_qps: 0.0,
        ..ControllerConfig::default()
    };
    let rss_before = proc_status("VmRSS");
    let hwm_before = proc_status("VmHWM");

    let (controller, reflectors) = Controller::new(
        client.clone(),
        config,
        Arc::new(FakeQueues::default()),
        Arc::new(Metrics::default()),
        Arc::new(Health::default()),
    );
    let mut sweep = controller.decision_sweep();
    let (stop, shutdown) = watch::channel(false);
    let running = runtime.spawn(controller.run(shutdown));

    // Synced: every WPA has a status the controller wrote (its first
    // reconcile), then a full resync pass.
    let synced = wait_until("every WPA reconciled", Duration::from_secs(150), || {
        double.reconciled() >= count
    });
    std::thread::sleep(resync + resync / 5);
    let rss_synced = proc_status("VmRSS");
    let hwm_synced = proc_status("VmHWM");

    // The sweep: the WPA objects as the controller's watch has them.
    let wpas: Vec<WorkerPodAutoScaler> = runtime
        .block_on(kube::Api::<WorkerPodAutoScaler>::all(client).list(&Default::default()))
        .unwrap()
        .items;
    assert_eq!(wpas.len(), count);
    let now = SystemTime::now();
    let warm = sweep.run(&wpas, now); // subscribes each WPA, as its task did
    assert_eq!(warm.decided, count, "{warm:?}");
    assert_eq!(warm.scales, 0, "{warm:?}");
    let mut times = Vec::with_capacity(sweeps);
    for _ in 0..sweeps {
        let t = Instant::now();
        let summary = std::hint::black_box(sweep.run(std::hint::black_box(&wpas), now));
        times.push(t.elapsed());
        assert_eq!(summary.decided, count, "{summary:?}");
    }
    times.sort();
    let hwm_end = proc_status("VmHWM");

    stop.send_replace(true);
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), running).await })
        .expect("the controller stops")
        .unwrap()
        .unwrap();
    reflectors.iter().for_each(tokio::task::JoinHandle::abort);
    double.stop();

    println!(
        "  synced: every WPA reconciled {:.1} s after start; then waited one resync pass ({} s)",
        synced.as_secs_f64(),
        resync.as_secs()
    );
    println!(
        "  peak RSS (VmHWM) of the controller process: {:.1} MiB   goal <= 100 MiB   [{}]",
        mib(hwm_synced),
        if mib(hwm_synced) <= 100.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "    before the controller: VmRSS {:.1} MiB (VmHWM {:.1}); after sync: VmRSS {:.1} MiB; controller's share of the peak: {:.1} MiB",
        mib(rss_before),
        mib(hwm_before),
        mib(rss_synced),
        mib(hwm_synced.saturating_sub(rss_before))
    );
    println!(
        "    (VmHWM at the end, with the bench's own list of {count} WPAs and the sweep's {} subscriptions: {:.1} MiB)",
        sweep.len(),
        mib(hwm_end)
    );
    let median = times[times.len() / 2];
    println!(
        "  decision sweep over {count} WPAs (no I/O): median {:.2} ms, min {:.2} ms, max {:.2} ms over {sweeps} sweeps   goal <= 50 ms   [{}]",
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        if ms(median) <= 50.0 { "met" } else { "MISSED" }
    );
    #[allow(clippy::cast_precision_loss)]
    let per_wpa = median.as_secs_f64() * 1e9 / count as f64;
    println!(
        "    {per_wpa:.0} ns per WPA; total run {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
