//! Value parsers shared by the flags of every subcommand, so that a value
//! means the same wherever it is given (clap reports their errors with the
//! flag's name, exit status 2).
//!
//! Durations are plain seconds, as the reference's integer flags take them
//! (`20`), or [`humantime`] durations (`20s`, `1m`, `1h 30m`).

use std::time::Duration;

use wpa_core::MaxDisruption;

/// A poll interval or the resync period: whole seconds, at least 1.
///
/// One rule for `--resync-period` and the four `--*-poll-interval` flags of
/// `run` and `watch`: 0, a negative value or less than a second is refused
/// (0 would poll, or wake-up poll, back to back: the reference sleeps 0 and
/// spins). Whole seconds, because SQS's `WaitTimeSeconds` and beanstalkd's
/// `reserve-with-timeout` count in seconds.
pub(crate) fn interval(text: &str) -> Result<Duration, String> {
    let duration = duration(text)?;
    if duration < Duration::from_secs(1) {
        return Err(format!(
            "must be at least 1 second, got {text:?} (0 would poll without a pause)"
        ));
    }
    if duration.subsec_nanos() != 0 {
        return Err(format!("must be whole seconds, got {text:?}"));
    }
    Ok(duration)
}

/// A delay (`--scale-down-delay-after-last-scale-activity`, simulated
/// times): 0 or more, fractions of a second allowed (`0.5`, `1500ms`).
pub(crate) fn delay(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.parse::<u64>().is_err()
        && let Ok(seconds) = trimmed.parse::<f64>()
    {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("must be a number of seconds >= 0, got {text:?}"));
    }
    duration(text)
}

/// A positive span of time (simulate's `--horizon`).
pub(crate) fn positive_delay(text: &str) -> Result<Duration, String> {
    match delay(text)? {
        Duration::ZERO => Err(format!("must be more than 0, got {text:?}")),
        duration => Ok(duration),
    }
}

/// Plain whole seconds or a humantime duration.
fn duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if let Ok(seconds) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    if trimmed.starts_with('-') {
        return Err(format!("must not be negative, got {text:?}"));
    }
    humantime::parse_duration(trimmed).map_err(|error| {
        format!("expected seconds (20) or a duration (20s, 1m, 1h 30m), got {text:?}: {error}")
    })
}

/// `--wpa-default-max-disruption`: pods (`"2"`) or a percentage (`"25%"`).
pub(crate) fn max_disruption(text: &str) -> Result<MaxDisruption, String> {
    text.parse()
        .map_err(|error: wpa_core::Error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_whole_seconds_of_at_least_one() {
        assert_eq!(interval("20"), Ok(Duration::from_secs(20)));
        assert_eq!(interval(" 1 "), Ok(Duration::from_secs(1)));
        assert_eq!(interval("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(interval("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(interval("1h 30m"), Ok(Duration::from_secs(5_400)));
        for zero in ["0", "0s", "500ms"] {
            let error = interval(zero).unwrap_err();
            assert!(error.contains("at least 1 second"), "{zero}: {error}");
        }
        for negative in ["-1", "-20s"] {
            let error = interval(negative).unwrap_err();
            assert!(
                error.contains("must not be negative"),
                "{negative}: {error}"
            );
        }
        assert!(interval("1500ms").unwrap_err().contains("whole seconds"));
        for bad in ["", "soon", "1.5", "20x", "nan"] {
            assert!(interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn delays_may_be_zero_or_fractional() {
        assert_eq!(delay("600"), Ok(Duration::from_secs(600)));
        assert_eq!(delay("0"), Ok(Duration::ZERO));
        assert_eq!(delay("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(delay("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(delay("1500ms"), Ok(Duration::from_millis(1_500)));
        for bad in ["-1", "-0.5", "nan", "inf", "soon", ""] {
            assert!(delay(bad).is_err(), "{bad}");
        }
        assert_eq!(positive_delay("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(positive_delay("1d 12h"), Ok(Duration::from_secs(129_600)));
        assert!(positive_delay("0").is_err());
    }

    #[test]
    fn max_disruption_errors_name_the_field() {
        assert_eq!(max_disruption("25%"), Ok(MaxDisruption::Percent(25)));
        assert!(
            max_disruption("abc")
                .unwrap_err()
                .contains("maxDisruption \"abc\"")
        );
    }
}
