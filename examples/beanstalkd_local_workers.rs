//! A custom controller loop on the beanstalkd adapter: the workers are
//! local tasks, each a beanstalkd connection that reserves, "processes"
//! (sleeps) and deletes jobs. The autoscaler starts and stops them.
//!
//! `cargo run -p wpa-examples --example beanstalkd_local_workers`
//!
//! It starts its own beanstalkd (the `beanstalkd` binary must be
//! installed), or uses `WPA_EXAMPLE_URI=beanstalk://host:port/tube`, puts a
//! burst of 40 jobs, and prints each decision until the queue is drained
//! and the workers are scaled back to zero.

use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use wpa_beanstalkd::testing::BeanstalkdServer;
use wpa_beanstalkd::{BeanstalkQueue, BeanstalkUri, Client, ClientConfig, TubeName};
use wpa_core::{MaxDisruption, ScaleTarget, TargetReplicas, WpaSpec, reconcile};
use wpa_poller::{PollerConfig, Registry};

/// A pool of local worker tasks as a scale target. Scaling down asks the
/// newest workers to stop after their current job: no job is cut short.
struct LocalWorkers {
    address: String,
    tube: TubeName,
    job_time: Duration,
    workers: Vec<(watch::Sender<bool>, JoinHandle<u64>)>,
}

impl ScaleTarget for LocalWorkers {
    type Error = Infallible;

    fn replicas(&mut self) -> impl Future<Output = Result<TargetReplicas, Infallible>> + Send {
        let current = u32::try_from(self.workers.len()).unwrap_or(u32::MAX);
        std::future::ready(Ok(TargetReplicas::new(current, current)))
    }

    fn apply(&mut self, replicas: u32) -> impl Future<Output = Result<(), Infallible>> + Send {
        let wanted = usize::try_from(replicas).unwrap_or(usize::MAX);
        while self.workers.len() < wanted {
            let (stop, stopped) = watch::channel(false);
            let worker = tokio::spawn(work(
                self.address.clone(),
                self.tube.clone(),
                self.job_time,
                stopped,
            ));
            self.workers.push((stop, worker));
        }
        while self.workers.len() > wanted {
            if let Some((stop, _finishing)) = self.workers.pop() {
                let _ = stop.send(true);
            }
        }
        std::future::ready(Ok(()))
    }
}

/// One worker: reserve, process, delete, until asked to stop. Returns the
/// number of jobs it did.
async fn work(
    address: String,
    tube: TubeName,
    job_time: Duration,
    stop: watch::Receiver<bool>,
) -> u64 {
    let mut client = Client::new(address, ClientConfig::default());
    if let Err(error) = client.set_watched_tube(tube).await {
        eprintln!("worker cannot start: {error}");
        return 0;
    }
    let mut done = 0;
    while !*stop.borrow() {
        match client.reserve_with_timeout(1).await {
            Ok(Some(job)) => {
                tokio::time::sleep(job_time).await;
                if client.delete(job.id).await.unwrap_or(false) {
                    done += 1;
                }
            }
            Ok(None) => {}
            Err(error) => {
                eprintln!("worker: {error}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    done
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // A server of our own unless one is given.
    let (_server, uri) = match std::env::var("WPA_EXAMPLE_URI") {
        Ok(uri) => (None, uri),
        Err(_) => {
            let server = BeanstalkdServer::start()?;
            let uri = server.uri("example");
            (Some(server), uri)
        }
    };
    let address: BeanstalkUri = uri.parse()?;

    // Up to 8 workers, 5 jobs each; scale down 5 s after the last change.
    let spec = WpaSpec::new(0, 8, 5, 0.0, MaxDisruption::DEFAULT)?;
    let scale_down_delay = Duration::from_secs(5);
    let mut workers = LocalWorkers {
        address: address.address(),
        tube: address.tube().clone(),
        job_time: Duration::from_millis(250),
        workers: Vec::new(),
    };

    // One poller for the tube; 1 s polls for a quick demo.
    let registry = Registry::new();
    let config = PollerConfig::new(Duration::from_secs(1), Duration::from_secs(5));
    let queue = BeanstalkQueue::new(address.clone());
    let mut subscription = registry.subscribe(&uri, config, Some(0), || {
        Ok::<_, wpa_beanstalkd::Error>(queue)
    })?;

    let mut producer = Client::new(address.address(), ClientConfig::default());
    producer.set_used_tube(address.tube().clone()).await?;
    for i in 0..40_u32 {
        producer.put(1024, 0, 60, &i.to_be_bytes()).await?;
    }
    println!("put 40 jobs on {uri}");

    let mut last_scale_time = None;
    let mut scaled_up = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        tokio::select! {
            changed = subscription.changed() => changed?,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let plan = match reconcile(
            &mut subscription,
            &mut workers,
            &spec,
            scale_down_delay,
            last_scale_time,
            SystemTime::now(),
        )
        .await
        {
            Ok(plan) => plan,
            Err(error) => {
                eprintln!("no decision: {error}");
                continue;
            }
        };
        last_scale_time = plan.status.last_scale_time;
        subscription.set_replicas(u32::try_from(workers.workers.len()).unwrap_or(u32::MAX));
        println!(
            "{:>3} messages, {}: {} -> {} ({}): {}",
            plan.snapshot.messages(),
            plan.snapshot.idleness(),
            plan.replicas.current,
            plan.decision.desired_replicas,
            plan.operation,
            plan.decision
        );
        scaled_up |= plan.operation == wpa_core::ScaleOperation::ScaleUp;
        if scaled_up && workers.workers.is_empty() {
            println!("queue drained and workers scaled back to zero");
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the demo did not finish within 90 s".into());
        }
    }
}
