//! `workerpodautoscaler run`: the controller. The loop lives in
//! `wpa-controller`; this module only connects the queue adapters.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;

use wpa_beanstalkd::{BeanstalkQueue, BeanstalkUri};
use wpa_controller::SourceFactory;
use wpa_controller::cli::RunArgs;
use wpa_poller::{PollerConfig, Registry, Subscription};

/// The queue adapters enabled by `--queue-services`.
struct Queues {
    beanstalk: Option<PollerConfig>,
    sqs: Option<(wpa_sqs::SqsClients, PollerConfig)>,
}

fn is_sqs(uri: &str) -> bool {
    uri.starts_with("https://") || uri.starts_with("http://")
}

impl SourceFactory for Queues {
    fn subscribe(&self, registry: &Registry, uri: &str) -> Result<Subscription, String> {
        if uri.starts_with("beanstalk://") {
            let config = self
                .beanstalk
                .ok_or("beanstalkd is not enabled (--queue-services)")?;
            let address: BeanstalkUri = uri
                .parse()
                .map_err(|e: wpa_beanstalkd::Error| e.to_string())?;
            return registry
                .subscribe(uri, config, None, || {
                    Ok::<_, Infallible>(BeanstalkQueue::new(address))
                })
                .map_err(|never| match never {});
        }
        if is_sqs(uri) {
            let (clients, config) = self
                .sqs
                .as_ref()
                .ok_or("SQS is not enabled (--queue-services)")?;
            return registry
                .subscribe(uri, *config, None, || clients.queue(uri))
                .map_err(|e| e.to_string());
        }
        Err("unsupported queue URI: expected https://sqs.<region>.amazonaws.com/<account>/<queue> or beanstalk://host:port/tube".to_owned())
    }
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("workerpodautoscaler run: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let metrics = Arc::new(wpa_controller::Metrics::default());
    wpa_controller::cli::init_logging(args, &metrics);
    let result = runtime.block_on(async {
        let services = args.queue_services();
        let unknown: Vec<&String> = services
            .iter()
            .filter(|s| !matches!(s.as_str(), "sqs" | "beanstalkd"))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "--queue-services: unknown service(s) {unknown:?}: use sqs, beanstalkd"
            ));
        }
        let sqs = if services.iter().any(|s| s == "sqs") {
            let options = wpa_sqs::SqsOptions {
                regions: args.aws_regions(),
                // The arrival rate is measured (CloudWatch, cached 60 s per
                // queue) only while a WPA with secondsToProcessOneJob
                // watches the queue: the controller asks for it per poll.
                arrival_rate: false,
                ..wpa_sqs::SqsOptions::default()
            };
            Some((wpa_sqs::SqsClients::new(options).await, args.sqs_poller()))
        } else {
            None
        };
        let queues = Queues {
            beanstalk: services
                .iter()
                .any(|s| s == "beanstalkd")
                .then(|| args.beanstalk_poller()),
            sqs,
        };
        wpa_controller::cli::run(args.clone(), Arc::new(queues), metrics)
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("workerpodautoscaler run: {error}");
            ExitCode::FAILURE
        }
    }
}
