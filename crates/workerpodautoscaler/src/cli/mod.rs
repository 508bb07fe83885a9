//! The command-line vocabulary of every subcommand, in one place: a flag
//! that two subcommands take is defined once here, so it has the same
//! name, default, environment variable (`WORKERPODAUTOSCALER_<FLAG>`),
//! value syntax and meaning in both.
//!
//! | piece | flags | used by |
//! | --- | --- | --- |
//! | [`LogArgs`] | `-v`, `--log-format` (stderr; colour only on a terminal) | `run`, `watch` |
//! | [`PollArgs`] | the four `--*-poll-interval`s | `run`, `watch` (in [`QueueArgs`]), `simulate` |
//! | [`QueueArgs`] | [`PollArgs`], `--aws-regions`, `--sqs-endpoint`, `--nats-nkey-seed-file`, `--nats-credentials-file` | `run`, `watch` |
//! | [`SpecArgs`] | `--min-replicas`, `--max-replicas`, `--target-messages-per-worker`, `--seconds-to-process-one-job`, `--max-disruption` | `watch`, `simulate` |
//! | [`DefaultsArgs`] | `--wpa-default-max-disruption`, `--scale-down-delay-after-last-scale-activity` | `run`, `watch`, `simulate`, `decide` |
//! | [`signal`] | SIGTERM and Ctrl-C | `run`, `watch` |
//! | [`values`] | durations (plain seconds or humantime), the interval rule, maxDisruption | all |
//!
//! The process around the controller (kube client, metrics port) is
//! `run`'s alone (`crate::run`). `LogArgs`, `QueueArgs` and `signal`
//! exist only with the `controller` feature, as `run` and `watch` do.

#[cfg(feature = "controller")]
mod logging;
mod queue;
#[cfg(feature = "controller")]
pub(crate) mod signal;
mod spec;
pub(crate) mod values;

#[cfg(feature = "controller")]
pub(crate) use logging::LogArgs;
#[cfg(all(test, feature = "controller"))]
pub(crate) use logging::LogFormat;
pub(crate) use queue::PollArgs;
#[cfg(feature = "controller")]
pub(crate) use queue::QueueArgs;
pub(crate) use spec::{DefaultsArgs, SpecArgs};

/// `a, b,,c` as `["a", "b", "c"]`.
#[cfg(feature = "controller")]
pub(crate) fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
