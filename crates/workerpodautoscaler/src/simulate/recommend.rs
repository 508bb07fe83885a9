//! `simulate --recommend`: per scenario, the cheapest setting of each
//! policy that keeps the p99 wait within the target, printed as objects to
//! apply ([`wpa_sim::recommend`] does the search).

use std::io::Write;

use serde_norway::Value;
use wpa_sim::{Backend, Policy, Recommendation, Scenario};

use super::{DEFAULT_TARGET_WAIT_S, SimulateError, SimulateOptions, format_seconds};

pub(super) fn run(args: &SimulateOptions, scenarios: &[Scenario]) -> Result<(), SimulateError> {
    let target = args
        .spec
        .target_wait_seconds
        .unwrap_or(DEFAULT_TARGET_WAIT_S);
    if !(target.is_finite() && target > 0.0) {
        return Err(SimulateError::Usage(format!(
            "--target-wait-seconds must be a number > 0, got {target}"
        )));
    }
    let template = args.wpa.as_deref().map(read_object).transpose()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for scenario in scenarios {
        let startup = args
            .spec
            .worker_startup_seconds
            .unwrap_or(scenario.config.startup_delay_s);
        let found = wpa_sim::recommend(&scenario.config, &scenario.spec, target, startup)?;
        writeln!(
            out,
            "# {}: {} | p99 wait target {}",
            scenario.name,
            scenario.description,
            format_seconds(target)
        )?;
        writeln!(
            out,
            "# {:<5} {:<44} {:>7} {:>9} {:>7}",
            "policy", "best setting", "wait99", "worker-h", "killed"
        )?;
        for recommendation in &found {
            writeln!(
                out,
                "# {:<5} {:<44} {:>7} {:>9.1} {:>7}{}",
                recommendation.policy.name(),
                setting(&recommendation.policy),
                format_seconds(recommendation.outcome.wait_p99_s),
                recommendation.outcome.worker_seconds / 3_600.0,
                recommendation.outcome.interrupted_jobs,
                if recommendation.meets_target {
                    String::new()
                } else {
                    format!(
                        "  (none of {} settings meets the target: the fastest)",
                        recommendation.candidates
                    )
                }
            )?;
        }
        for recommendation in &found {
            writeln!(out, "---")?;
            write_object(&mut out, scenario, recommendation, template.as_ref())?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The knob the search turned, in words.
fn setting(policy: &Policy) -> String {
    match policy {
        Policy::Wpa { spec, .. } => match spec.wait_target() {
            Some(wait) => format!(
                "targetWaitSeconds {} secondsToProcessOneJob {}",
                wait.target_wait_seconds(),
                spec.seconds_to_process_one_job()
            ),
            None => format!(
                "targetMessagesPerWorker {} secondsToProcessOneJob {}",
                spec.target_messages_per_worker(),
                spec.seconds_to_process_one_job()
            ),
        },
        Policy::Hpa(hpa) => format!("AverageValue {} per pod", hpa.target_per_pod),
        Policy::Keda(keda) => format!("queueLength {} per pod", keda.hpa.target_per_pod),
        Policy::Ideal { .. } => String::from("-"),
    }
}

fn read_object(path: &std::path::Path) -> Result<Value, SimulateError> {
    let text = std::fs::read_to_string(path).map_err(|e| SimulateError::WpaFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    serde_norway::from_str(&text).map_err(|e| SimulateError::WpaFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// A policy's setting as a manifest: a WorkerPodAutoScaler for the WPA and
/// the wait target (the user's object with its spec replaced, when given),
/// an HPA or a KEDA ScaledObject for the baselines.
fn write_object(
    out: &mut impl Write,
    scenario: &Scenario,
    recommendation: &Recommendation,
    template: Option<&Value>,
) -> Result<(), SimulateError> {
    let name = format!("{}-workers", scenario.name);
    let queue = match scenario.config.backend {
        Backend::Sqs => format!(
            "https://sqs.us-east-1.amazonaws.com/123456789012/{}",
            scenario.name
        ),
        Backend::Beanstalkd => format!("beanstalk://beanstalkd:11300/{}", scenario.name),
        Backend::RedisList => format!("redis://redis:6379/0/list/{}", scenario.name),
        Backend::Rabbitmq => format!("amqp://rabbitmq:5672/%2F/{}", scenario.name),
        Backend::Nats => format!("nats://nats:4222/{}/workers", scenario.name.to_uppercase()),
    };
    let text = match &recommendation.policy {
        Policy::Wpa { spec, .. } => {
            let mut object = template.cloned().unwrap_or_else(|| {
                let mut object = serde_norway::Mapping::new();
                object.insert("apiVersion".into(), "k8s.practo.dev/v1".into());
                object.insert("kind".into(), "WorkerPodAutoScaler".into());
                let mut metadata = serde_norway::Mapping::new();
                metadata.insert("name".into(), name.clone().into());
                object.insert("metadata".into(), metadata.into());
                let mut fields = serde_norway::Mapping::new();
                fields.insert("deploymentName".into(), name.clone().into());
                fields.insert("queueURI".into(), queue.clone().into());
                object.insert("spec".into(), fields.into());
                Value::Mapping(object)
            });
            let raw = serde_norway::to_value(spec.to_raw())
                .map_err(|e| SimulateError::Usage(e.to_string()))?;
            if let (Some(Value::Mapping(fields)), Value::Mapping(raw)) =
                (object.get_mut("spec"), raw)
            {
                for (key, value) in raw {
                    fields.insert(key, value);
                }
            }
            serde_norway::to_string(&object).map_err(|e| SimulateError::Usage(e.to_string()))?
        }
        Policy::Hpa(hpa) => format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {name}\nspec:\n  \
             scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}\n  \
             minReplicas: {}\n  maxReplicas: {}\n  metrics:\n  - type: External\n    external:\n      \
             metric: {{name: queue_messages}}\n      target: {{type: AverageValue, averageValue: \"{}\"}}\n",
            hpa.min_replicas, hpa.max_replicas, hpa.target_per_pod
        ),
        Policy::Keda(keda) => format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {name}\nspec:\n  \
             scaleTargetRef: {{name: {name}}}\n  minReplicaCount: {}\n  maxReplicaCount: {}\n  \
             pollingInterval: {}\n  cooldownPeriod: {}\n  triggers:\n  - type: aws-sqs-queue\n    \
             metadata: {{queueURL: \"{queue}\", queueLength: \"{}\", activationQueueLength: \"{}\"}}\n",
            keda.min_replica_count,
            keda.hpa.max_replicas,
            keda.polling_s,
            keda.cooldown_s,
            keda.hpa.target_per_pod,
            keda.activation_threshold
        ),
        Policy::Ideal { .. } => String::new(),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wpa_core::{MaxDisruption, WpaSpec};

    #[test]
    fn the_wait_target_object_carries_its_fields() {
        let Some(scenario) = wpa_sim::builtin(1).ok().and_then(|s| s.into_iter().next()) else {
            panic!("no scenario");
        };
        let spec = WpaSpec::new(0, 10, 2, 1.0, MaxDisruption::DEFAULT)
            .and_then(|spec| spec.with_wait_target(15.0, 30.0))
            .unwrap();
        let outcome =
            wpa_sim::simulate(&scenario.config, &Policy::Ideal { max_replicas: 1 }, None).unwrap();
        let recommendation = Recommendation {
            policy: Policy::Wpa {
                spec,
                scale_down_delay: wpa_core::DEFAULT_SCALE_DOWN_DELAY,
                idle_first: false,
            },
            outcome,
            meets_target: true,
            candidates: 1,
        };
        let mut out = Vec::new();
        write_object(&mut out, &scenario, &recommendation, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("targetWaitSeconds: 15.0"), "{text}");
        assert!(text.contains("workerStartupSeconds: 30.0"), "{text}");
        assert!(text.contains("kind: WorkerPodAutoScaler"), "{text}");
    }
}
