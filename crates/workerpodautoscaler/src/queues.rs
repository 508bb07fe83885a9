//! The queue services `run` and `watch` poll, told apart by the queue
//! URI's scheme, and the adapters of the three that need no client setup
//! beyond their URI (Redis, RabbitMQ, NATS JetStream).

use wpa_poller::{PollerConfig, Registry, Subscription};

/// A queue service, as `--queue-services` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Service {
    Sqs,
    Beanstalkd,
    Redis,
    Rabbitmq,
    Nats,
}

impl Service {
    /// Every service, in `--queue-services` order.
    pub(crate) const ALL: [Service; 5] = [
        Service::Sqs,
        Service::Beanstalkd,
        Service::Redis,
        Service::Rabbitmq,
        Service::Nats,
    ];

    /// Its `--queue-services` name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Service::Sqs => "sqs",
            Service::Beanstalkd => "beanstalkd",
            Service::Redis => "redis",
            Service::Rabbitmq => "rabbitmq",
            Service::Nats => "nats",
        }
    }

    /// The service of a `--queue-services` name.
    pub(crate) fn named(name: &str) -> Option<Self> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The service a queue URI's scheme selects.
    pub(crate) fn of_uri(uri: &str) -> Option<Self> {
        let scheme = uri.split_once("://")?.0.to_ascii_lowercase();
        Some(match scheme.as_str() {
            "https" | "http" => Service::Sqs,
            "beanstalk" => Service::Beanstalkd,
            "redis" | "rediss" => Service::Redis,
            "amqp" | "amqps" => Service::Rabbitmq,
            "nats" | "tls" => Service::Nats,
            _ => return None,
        })
    }
}

/// The URI forms, for errors.
pub(crate) const URI_FORMS: &str = "https://sqs.<region>.amazonaws.com/<account>/<queue>, \
beanstalk://host:port/tube, redis://host:port/[db/]list|stream|celery|sidekiq|rq|bullmq/..., \
amqp://host:port/vhost/queue or nats://host:port/stream/consumer";

/// The URI with any password replaced, for logs and errors.
pub(crate) fn redact(uri: &str) -> String {
    wpa_poller::redact_queue_uri(uri).into_owned()
}

/// The options of the Redis, RabbitMQ and NATS adapters that flags set
/// (`QueueArgs::adapters`); the rest comes from each queue URI.
#[derive(Debug, Clone)]
pub(crate) struct Adapters {
    pub(crate) nats: wpa_nats::QueueConfig,
}

/// Subscribes `uri` of a Redis, RabbitMQ or NATS queue in `registry`.
pub(crate) fn subscribe_other(
    service: Service,
    adapters: &Adapters,
    registry: &Registry,
    uri: &str,
    config: PollerConfig,
    replicas: Option<u32>,
) -> Result<Subscription, String> {
    match service {
        Service::Redis => {
            let parsed: wpa_redis::RedisUri =
                uri.parse().map_err(|e: wpa_redis::Error| e.to_string())?;
            registry
                .subscribe(uri, config, replicas, || {
                    Ok::<_, std::convert::Infallible>(wpa_redis::RedisQueue::new(parsed))
                })
                .map_err(|never| match never {})
        }
        Service::Nats => {
            let parsed: wpa_nats::NatsUri =
                uri.parse().map_err(|e: wpa_nats::Error| e.to_string())?;
            registry
                .subscribe(uri, config, replicas, || {
                    Ok::<_, std::convert::Infallible>(wpa_nats::NatsQueue::with_config(
                        parsed,
                        adapters.nats.clone(),
                    ))
                })
                .map_err(|never| match never {})
        }
        Service::Rabbitmq => {
            let parsed: wpa_rabbitmq::RabbitUri = uri
                .parse()
                .map_err(|e: wpa_rabbitmq::Error| e.to_string())?;
            registry
                .subscribe(uri, config, replicas, || {
                    Ok::<_, std::convert::Infallible>(wpa_rabbitmq::RabbitQueue::new(parsed))
                })
                .map_err(|never| match never {})
        }
        Service::Sqs | Service::Beanstalkd => Err(format!(
            "{} queues are not handled here: a bug",
            service.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_select_services() {
        let cases = [
            (
                "https://sqs.ap-south-1.amazonaws.com/1/q",
                Some(Service::Sqs),
            ),
            ("beanstalk://h:11300/t", Some(Service::Beanstalkd)),
            ("rediss://h/0/list/q", Some(Service::Redis)),
            ("AMQP://h/%2F/q", Some(Service::Rabbitmq)),
            ("tls://h/S/C", Some(Service::Nats)),
            ("kafka://h/t", None),
            ("no scheme", None),
        ];
        for (uri, service) in cases {
            assert_eq!(Service::of_uri(uri), service, "{uri}");
        }
        for service in Service::ALL {
            assert_eq!(Service::named(service.name()), Some(service));
        }
        assert_eq!(
            redact("redis://u:secret@h/0/list/q"),
            "redis://u:***@h/0/list/q"
        );
    }

    /// Every example WPA in deploy/ names a queue an adapter accepts.
    #[test]
    fn the_shipped_examples_parse() {
        let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
        let mut seen = 0;
        for entry in std::fs::read_dir(deploy).unwrap_or_else(|e| panic!("{deploy}: {e}")) {
            let path = entry.map(|e| e.path()).unwrap_or_default();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.starts_with("example-wpa") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let Some(uri) = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("queueURI: "))
            else {
                panic!("{name}: no queueURI");
            };
            match Service::of_uri(uri) {
                Some(Service::Redis) => {
                    assert!(uri.parse::<wpa_redis::RedisUri>().is_ok(), "{name}: {uri}");
                }
                Some(Service::Nats) => {
                    assert!(uri.parse::<wpa_nats::NatsUri>().is_ok(), "{name}: {uri}");
                }
                Some(Service::Rabbitmq) => {
                    assert!(
                        uri.parse::<wpa_rabbitmq::RabbitUri>().is_ok(),
                        "{name}: {uri}"
                    );
                }
                Some(_) => {}
                None => panic!("{name}: {uri}: no service"),
            }
            seen += 1;
        }
        assert!(seen >= 5, "{seen} examples");
    }
}
