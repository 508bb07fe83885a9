//! `-v` and `--log-format`: one meaning for every subcommand that logs.
//!
//! Logs go to stderr, as the reference's (klog's) do; stdout is left to
//! each subcommand's output.

use std::ffi::OsString;
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use wpa_controller::LogCounter;

/// Crates whose own debug output is noise below `-v 4`: the Kubernetes
/// and AWS clients and the HTTP and TLS stacks under them. `EnvFilter`
/// matches a target by prefix, so `kube` covers `kube_client`,
/// `kube_runtime` and `kube_lease_manager`, `hyper` covers `hyper_util`.
const NOISY: [&str; 8] = [
    "hyper",
    "h2",
    "tower",
    "rustls",
    "kube",
    "aws_config",
    "aws_sdk",
    "aws_smithy",
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines, coloured only when stderr is a terminal (and
    /// `NO_COLOR` is unset).
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`),
    /// for log pipelines.
    Json,
}

/// The logging flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct LogArgs {
    /// Log verbosity, as klog's -v: 0-1 info, 2-3 debug, 4 and up trace;
    /// the Kubernetes, AWS and HTTP clients' own output stays at info
    /// below 4. RUST_LOG, when set, overrides.
    #[arg(
        short = 'v',
        long = "v",
        value_name = "N",
        env = "WORKERPODAUTOSCALER_V",
        default_value_t = 0
    )]
    pub(crate) verbosity: u8,
    /// Log format on stderr: text, or json (one object per line).
    #[arg(
        long,
        value_name = "FORMAT",
        env = "WORKERPODAUTOSCALER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub(crate) log_format: LogFormat,
}

impl LogArgs {
    /// The tracing filter for `-v` (used unless `RUST_LOG` is set).
    #[must_use]
    pub(crate) fn filter(&self) -> String {
        let level = match self.verbosity {
            0 | 1 => "info",
            2 | 3 => "debug",
            _ => "trace",
        };
        let mut filter = level.to_owned();
        if self.verbosity < 4 {
            for target in NOISY {
                filter.push(',');
                filter.push_str(target);
                filter.push_str("=info");
            }
        }
        filter
    }

    /// Installs the process's logger on stderr; `counter`, when given,
    /// counts each line by severity (`run`'s `wpa_log_messages_total`).
    pub(crate) fn init(&self, counter: Option<LogCounter>) {
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(self.filter()));
        let output = match self.log_format {
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour(
                    std::io::stderr().is_terminal(),
                    std::env::var_os("NO_COLOR"),
                ))
                .boxed(),
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .boxed(),
        };
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(output)
            .with(counter)
            .try_init();
    }
}

/// ANSI colour only on a terminal, and not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
fn colour(stderr_is_terminal: bool, no_color: Option<OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(verbosity: u8) -> LogArgs {
        LogArgs {
            verbosity,
            log_format: LogFormat::Text,
        }
    }

    #[test]
    fn verbosity_is_klogs() {
        for (verbosity, level) in [(0, "info"), (1, "info"), (2, "debug"), (3, "debug")] {
            let filter = at(verbosity).filter();
            assert!(filter.starts_with(&format!("{level},")), "{filter}");
            for noisy in ["hyper=info", "kube=info", "aws_smithy=info", "tower=info"] {
                assert!(filter.contains(noisy), "-v {verbosity}: {filter}");
            }
            EnvFilter::try_new(&filter).unwrap();
        }
        assert_eq!(at(4).filter(), "trace");
        assert_eq!(at(9).filter(), "trace");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsString::new())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
