//! `decide`: the core's decision on each line of JSON read from stdin.
//!
//! One output line per input line, in order, written as soon as the line
//! is read (a co-process can wait for each answer). A bad line yields
//! `{"error": "..."}` naming the field, and processing goes on; the exit
//! status is 1 if any line was refused.

use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use wpa_core::{
    History, Idleness, MaxDisruption, Observation, QueueSnapshot, RawWpaSpec, ScaleOperation,
    TargetReplicas, plan_with_history,
};

use crate::cli::DefaultsArgs;

/// Arguments of `decide`: the defaults of the fields a line leaves out
/// (the input carries everything else).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Input fields (camelCase, one JSON object per line; others are ignored):
  queueMessages            visible + in-flight messages (required)
  messagesSentPerMinute    arrival rate (absent = 0)
  secondsToProcessOneJob   (absent = 0: the rate floor is off)
  targetMessagesPerWorker  (required, >= 1)
  currentReplicas          (required)
  idleWorkers              idle workers: a count, \"all\" (every worker idle,
                           however many run), or absent, null or -1 = unknown
  minReplicas, maxReplicas (required)
  maxDisruption            (default --wpa-default-max-disruption, \"100%\")
  lastScaleTimeSecondsAgo  (absent = never scaled)
  scaleDownDelaySeconds    (default --scale-down-delay-after-last-scale-activity, 600)
  idlePods                 idle-first scale down: the pods the busy probe
                           found idle (absent, null or -1 = no probe; with a
                           wait target and jobs longer than the start-up,
                           the pool tracks inFlightMessages)
Wait-target policy (selected by targetWaitSeconds; needs secondsToProcessOneJob):
  targetWaitSeconds        the wait 99% of messages should stay under
  workerStartupSeconds     scale up until a new pod takes jobs (absent = 30)
  inFlightMessages         messages held by workers (absent or -1 = unknown,
                           within queueMessages; \"uncounted\" = not in
                           queueMessages and not counted: a plain Redis list)
  oldestMessageAgeSeconds  age of the oldest waiting message (absent = unknown)
  arrivalRateWindowSeconds seconds of arrivals messagesSentPerMinute counts
                           (SQS: 300); its noise sets the scale-down band
                           (absent or 0 = 30)
  availableReplicas        ready replicas (absent = currentReplicas)
  previousQueueMessages, previousQueueMessagesSecondsAgo
                           the last poll's queueMessages and its age: the
                           backlog's growth (absent = unknown)
Output: {\"desiredReplicas\":N,\"scaleOperation\":\"scale-up|scale-down|none\",\"reason\":\"...\"}
     or {\"error\":\"...\"}; exit status 1 if any line was an error.")]
pub(crate) struct DecideArgs {
    #[command(flatten)]
    defaults: DefaultsArgs,
}

/// Why one input line was refused.
#[derive(Debug, thiserror::Error)]
enum LineError {
    #[error("not a JSON object: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("{field} must be {expected}, got {value}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        value: Value,
    },
    #[error("{field} must be a finite number, got {value}")]
    NotFinite { field: &'static str, value: f64 },
    #[error("{field} must be a finite number >= 0, got {value}")]
    InvalidDelay { field: &'static str, value: f64 },
    #[error("{0}")]
    Invalid(#[from] wpa_core::Error),
}

/// One input line. Unknown fields are ignored, and `null` is the same as
/// absent. A field of the wrong type does not fail the parse: it is kept
/// ([`Field::Wrong`]) so that the error names it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Input {
    queue_messages: Field<i64>,
    messages_sent_per_minute: Field<f64>,
    seconds_to_process_one_job: Field<f64>,
    target_messages_per_worker: Field<i64>,
    current_replicas: Field<i64>,
    idle_workers: Field<IdleWorkers>,
    min_replicas: Field<i64>,
    max_replicas: Field<i64>,
    max_disruption: Field<String>,
    last_scale_time_seconds_ago: Field<f64>,
    scale_down_delay_seconds: Field<f64>,
    target_wait_seconds: Field<f64>,
    worker_startup_seconds: Field<f64>,
    in_flight_messages: Field<InFlight>,
    oldest_message_age_seconds: Field<f64>,
    arrival_rate_window_seconds: Field<f64>,
    available_replicas: Field<i64>,
    previous_queue_messages: Field<i64>,
    previous_queue_messages_seconds_ago: Field<f64>,
    idle_pods: Field<i64>,
}

/// One field of a line: absent (or `null`), a value of its type, or the
/// JSON value given instead.
#[derive(Debug, Default)]
enum Field<T> {
    #[default]
    Absent,
    Given(T),
    Wrong(Value),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Null => Field::Absent,
            value => match T::deserialize(&value) {
                Ok(given) => Field::Given(given),
                Err(_) => Field::Wrong(value),
            },
        })
    }
}

/// What a field's type is called in an error, and the error for a value
/// of another type.
trait Expected {
    const EXPECTED: &'static str;

    fn wrong(field: &'static str, value: Value) -> LineError {
        LineError::WrongType {
            field,
            expected: Self::EXPECTED,
            value,
        }
    }
}

impl Expected for i64 {
    const EXPECTED: &'static str = "a whole number";

    fn wrong(field: &'static str, value: Value) -> LineError {
        if value.is_u64() {
            // A whole number beyond 64 bits is still an integer: too large.
            return wpa_core::Error::TooLarge {
                field,
                value: i64::MAX,
                max: i64::from(i32::MAX),
            }
            .into();
        }
        LineError::WrongType {
            field,
            expected: Self::EXPECTED,
            value,
        }
    }
}

impl Expected for f64 {
    const EXPECTED: &'static str = "a number";
}

impl Expected for String {
    const EXPECTED: &'static str = "a string such as \"25%\" or \"2\"";
}

impl Expected for IdleWorkers {
    const EXPECTED: &'static str = "a whole number, -1 or \"all\"";

    fn wrong(field: &'static str, value: Value) -> LineError {
        count_or_word_wrong(field, Self::EXPECTED, value)
    }
}

/// A count-or-word field's error: a wrong word names the words, anything
/// else is a count's error.
fn count_or_word_wrong(field: &'static str, expected: &'static str, value: Value) -> LineError {
    if value.is_string() {
        LineError::WrongType {
            field,
            expected,
            value,
        }
    } else {
        i64::wrong(field, value)
    }
}

impl Expected for InFlight {
    const EXPECTED: &'static str = "a whole number, -1 or \"uncounted\"";

    fn wrong(field: &'static str, value: Value) -> LineError {
        count_or_word_wrong(field, Self::EXPECTED, value)
    }
}

impl<T: Expected> Field<T> {
    /// The value, `None` when absent.
    fn get(self, field: &'static str) -> Result<Option<T>, LineError> {
        match self {
            Field::Absent => Ok(None),
            Field::Given(value) => Ok(Some(value)),
            Field::Wrong(value) => Err(T::wrong(field, value)),
        }
    }

    /// The value of a required field.
    fn required(self, field: &'static str) -> Result<T, LineError> {
        self.get(field)?
            .ok_or(wpa_core::Error::Missing { field }.into())
    }
}

/// `idleWorkers`: a count (-1: unknown) or `"all"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IdleWorkers {
    Count(i64),
    Every(All),
}

/// `inFlightMessages`: a count (-1: unknown, taken to be within
/// `queueMessages`) or `"uncounted"`: outside it and not counted (a plain
/// Redis list).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum InFlight {
    Count(i64),
    Outside(Uncounted),
}

/// The string `"uncounted"`.
#[derive(Debug, Deserialize)]
enum Uncounted {
    #[serde(rename = "uncounted")]
    Uncounted,
}

/// The string `"all"`.
#[derive(Debug, Deserialize)]
enum All {
    #[serde(rename = "all")]
    All,
}

/// A line must be a JSON object (a struct would also take an array).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Visit(std::marker::PhantomData))
            .map(Object)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DecisionLine<'a> {
    desired_replicas: u32,
    scale_operation: &'static str,
    reason: &'a str,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    error: &'a str,
}

/// The defaults of the fields a line may leave out.
#[derive(Debug, Clone, Copy)]
struct Defaults {
    max_disruption: MaxDisruption,
    scale_down_delay: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            max_disruption: MaxDisruption::DEFAULT,
            scale_down_delay: wpa_core::DEFAULT_SCALE_DOWN_DELAY,
        }
    }
}

/// A fixed "now": only differences from it matter.
const NOW_SECONDS: u64 = 4_000_000_000;

/// Longer ages and delays (about 31 million years) all behave alike.
const MAX_SECONDS: f64 = 1e15;

pub(crate) fn run(args: &DecideArgs) -> ExitCode {
    let defaults = Defaults {
        max_disruption: args.defaults.wpa_default_max_disruption,
        scale_down_delay: args.defaults.scale_down_delay_after_last_scale_activity,
    };
    let stdin = io::stdin().lock();
    let mut stdout = BufWriter::new(io::stdout().lock());
    match decide_lines(stdin, &mut stdout, defaults) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(1),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("workerpodautoscaler decide: {error}");
            ExitCode::from(2)
        }
    }
}

/// Decides every line of `input` into `output`; returns whether any line
/// was an error.
fn decide_lines(
    input: impl BufRead,
    output: &mut impl Write,
    defaults: Defaults,
) -> io::Result<bool> {
    let mut any_error = false;
    let mut reason = String::new();
    for line in input.lines() {
        let line = line?;
        reason.clear();
        match decide_line(&line, defaults, &mut reason) {
            Ok((desired_replicas, operation)) => serde_json::to_writer(
                &mut *output,
                &DecisionLine {
                    desired_replicas,
                    scale_operation: operation.as_str(),
                    reason: &reason,
                },
            )?,
            Err(error) => {
                any_error = true;
                serde_json::to_writer(
                    &mut *output,
                    &ErrorLine {
                        error: &error.to_string(),
                    },
                )?;
            }
        }
        output.write_all(b"\n")?;
        // Each answer goes out as soon as its line is read, so a program
        // can drive `decide` as a co-process, one line at a time.
        output.flush()?;
    }
    Ok(any_error)
}

fn decide_line(
    line: &str,
    defaults: Defaults,
    reason: &mut String,
) -> Result<(u32, ScaleOperation), LineError> {
    use std::fmt::Write as _;

    let Object(input) = serde_json::from_str::<Object<Input>>(line)?;
    let spec = RawWpaSpec {
        min_replicas: Some(input.min_replicas.required("minReplicas")?),
        max_replicas: Some(input.max_replicas.required("maxReplicas")?),
        target_messages_per_worker: Some(
            input
                .target_messages_per_worker
                .required("targetMessagesPerWorker")?,
        ),
        seconds_to_process_one_job: input
            .seconds_to_process_one_job
            .get("secondsToProcessOneJob")?,
        max_disruption: input.max_disruption.get("maxDisruption")?,
        target_wait_seconds: input.target_wait_seconds.get("targetWaitSeconds")?,
        worker_startup_seconds: input.worker_startup_seconds.get("workerStartupSeconds")?,
    }
    .validate(defaults.max_disruption)?;
    let snapshot = QueueSnapshot::from_signed(
        input.queue_messages.required("queueMessages")?,
        input
            .messages_sent_per_minute
            .get("messagesSentPerMinute")?,
        None,
    )?
    .with_idleness(idleness(input.idle_workers)?);
    let snapshot = match input.in_flight_messages.get("inFlightMessages")? {
        None | Some(InFlight::Count(-1)) => snapshot,
        Some(InFlight::Count(count)) => {
            snapshot.with_in_flight(count_field("inFlightMessages", count)?)
        }
        Some(InFlight::Outside(Uncounted::Uncounted)) => snapshot.with_in_flight_uncounted(),
    };
    let snapshot = match input
        .oldest_message_age_seconds
        .get("oldestMessageAgeSeconds")?
    {
        None => snapshot,
        Some(age) if age.is_finite() && age >= 0.0 => {
            snapshot.with_oldest_age(Duration::from_secs_f64(age.min(MAX_SECONDS)))
        }
        Some(age) => {
            return Err(LineError::InvalidDelay {
                field: "oldestMessageAgeSeconds",
                value: age,
            });
        }
    };
    let snapshot = match input
        .arrival_rate_window_seconds
        .get("arrivalRateWindowSeconds")?
    {
        None => snapshot,
        Some(window) if window.is_finite() && window >= 0.0 => {
            snapshot.with_arrival_rate_window(Duration::from_secs_f64(window.min(MAX_SECONDS)))
        }
        Some(window) => {
            return Err(LineError::InvalidDelay {
                field: "arrivalRateWindowSeconds",
                value: window,
            });
        }
    };
    let current = input.current_replicas.required("currentReplicas")?;
    let available = input
        .available_replicas
        .get("availableReplicas")?
        .unwrap_or(current);
    let replicas = TargetReplicas::from_signed(current, available)?;
    let replicas = match input.idle_pods.get("idlePods")? {
        None | Some(-1) => replicas,
        Some(count) => replicas.with_idle_pods(count_field("idlePods", count)?),
    };

    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECONDS);
    let last_scale_time = match input
        .last_scale_time_seconds_ago
        .get("lastScaleTimeSecondsAgo")?
    {
        None => None,
        Some(ago) if !ago.is_finite() => {
            return Err(LineError::NotFinite {
                field: "lastScaleTimeSecondsAgo",
                value: ago,
            });
        }
        // A negative age is a LastScaleTime in the future (clock skew).
        Some(ago) => {
            // Ages beyond a billion years all mean "long ago" (or "far ahead").
            let offset = Duration::from_secs_f64(ago.abs().min(MAX_SECONDS));
            if ago >= 0.0 {
                now.checked_sub(offset)
            } else {
                now.checked_add(offset)
            }
        }
    };
    let delay = match input
        .scale_down_delay_seconds
        .get("scaleDownDelaySeconds")?
    {
        None => defaults.scale_down_delay,
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Duration::from_secs_f64(seconds.min(MAX_SECONDS))
        }
        Some(seconds) => {
            return Err(LineError::InvalidDelay {
                field: "scaleDownDelaySeconds",
                value: seconds,
            });
        }
    };

    let last_observation = match (
        input.previous_queue_messages.get("previousQueueMessages")?,
        input
            .previous_queue_messages_seconds_ago
            .get("previousQueueMessagesSecondsAgo")?,
    ) {
        (Some(messages), Some(ago)) if ago.is_finite() && ago >= 0.0 => {
            let messages = count_field("previousQueueMessages", messages)?;
            now.checked_sub(Duration::from_secs_f64(ago.min(MAX_SECONDS)))
                .map(|at| Observation { messages, at })
        }
        (Some(_), Some(ago)) => {
            return Err(LineError::InvalidDelay {
                field: "previousQueueMessagesSecondsAgo",
                value: ago,
            });
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(wpa_core::Error::Missing {
                field: "previousQueueMessagesSecondsAgo",
            }
            .into());
        }
        (None, Some(_)) => {
            return Err(wpa_core::Error::Missing {
                field: "previousQueueMessages",
            }
            .into());
        }
    };
    let history = History {
        last_scale_time,
        last_observation,
    };
    let step = plan_with_history(&spec, snapshot, replicas, delay, history, now);
    // Writing to a String cannot fail.
    let _ = write!(reason, "{}", step.decision);
    if let ScaleOperation::ScaleDownHeld(_) = step.operation {
        let _ = write!(reason, "; {}", step.operation);
    }
    Ok((step.decision.desired_replicas, step.operation))
}

/// A message count: not negative, within 32 bits.
fn count_field(field: &'static str, value: i64) -> Result<u32, LineError> {
    u32::try_from(value).map_err(|_| {
        if value < 0 {
            wpa_core::Error::Negative { field, value }.into()
        } else {
            wpa_core::Error::TooLarge {
                field,
                value,
                max: i64::from(u32::MAX),
            }
            .into()
        }
    })
}

/// `idleWorkers`: a count, `"all"`, or unknown (absent, null, -1).
fn idleness(field: Field<IdleWorkers>) -> Result<Idleness, LineError> {
    const NAME: &str = "idleWorkers";
    let count = match field.get(NAME)? {
        Some(IdleWorkers::Every(All::All)) => return Ok(Idleness::AllIdle),
        Some(IdleWorkers::Count(count)) => Some(count),
        None => None,
    };
    Ok(QueueSnapshot::from_signed(0, None, count)?.idleness())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(input: &str) -> (String, bool) {
        let mut output = Vec::new();
        let any_error = decide_lines(input.as_bytes(), &mut output, Defaults::default()).unwrap();
        (String::from_utf8(output).unwrap(), any_error)
    }

    /// The README's `decide` examples, run: a changed decision or reason
    /// must change the README too.
    #[test]
    fn the_readme_examples_are_what_decide_answers() {
        let readme = include_str!("../../../README.md");
        let mut lines = readme.lines();
        let mut examples = 0;
        while let Some(line) = lines.next() {
            let Some(input) = line
                .strip_prefix("$ echo '")
                .and_then(|rest| rest.strip_suffix("' \\"))
            else {
                continue;
            };
            let command = lines.next().unwrap_or_default();
            if !command
                .trim_start()
                .starts_with("| workerpodautoscaler decide")
            {
                continue;
            }
            let expected = lines.next().unwrap_or_default();
            let (output, _) = decide(&format!("{input}\n"));
            assert_eq!(output.trim_end(), expected, "README example {input}");
            examples += 1;
        }
        assert!(examples >= 7, "found {examples} README examples of decide");
    }

    #[test]
    fn one_output_line_per_input_line_in_order() {
        let input = concat!(
            r#"{"queueMessages":15,"targetMessagesPerWorker":2,"currentReplicas":1,"minReplicas":0,"maxReplicas":10}"#,
            "\n",
            "not json\n",
            r#"{"queueMessages":0,"targetMessagesPerWorker":2,"currentReplicas":8,"idleWorkers":8,"minReplicas":0,"maxReplicas":10}"#,
            "\n"
        );
        let (output, any_error) = decide(input);
        let lines: Vec<Value> = output
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["desiredReplicas"], 8);
        assert_eq!(lines[0]["scaleOperation"], "scale-up");
        assert!(
            lines[1]["error"]
                .as_str()
                .unwrap()
                .contains("not a JSON object")
        );
        assert_eq!(lines[2]["desiredReplicas"], 0);
        assert_eq!(lines[2]["scaleOperation"], "scale-down");
        assert!(any_error);
    }

    #[test]
    fn idle_pods_replace_the_budget() {
        let line = |idle: &str| {
            let (output, _) = decide(&format!(
                r#"{{"queueMessages":0,"targetMessagesPerWorker":2,"currentReplicas":10,"minReplicas":0,"maxReplicas":20,"maxDisruption":"10%"{idle}}}"#
            ));
            serde_json::from_str::<Value>(output.trim()).unwrap()
        };
        // Without the probe: the 10% budget, one pod.
        assert_eq!(line("")["desiredReplicas"], 9);
        assert_eq!(line(r#","idlePods":-1"#)["desiredReplicas"], 9);
        // Four pods known idle: those four.
        let probed = line(r#","idlePods":4"#);
        assert_eq!(probed["desiredReplicas"], 6);
        assert!(
            probed["reason"].as_str().unwrap().ends_with(
                "only 4 of the 10 pods are known idle (the pods' busy signal): down to 6"
            ),
            "{probed}"
        );
        assert!(
            line(r#","idlePods":-2"#)["error"]
                .as_str()
                .unwrap()
                .contains("idlePods")
        );
    }

    #[test]
    fn idle_pods_track_long_jobs_under_a_wait_target() {
        let line = |idle: &str| {
            let (output, _) = decide(&format!(
                r#"{{"queueMessages":24,"inFlightMessages":24,"messagesSentPerMinute":6,"arrivalRateWindowSeconds":300,"targetMessagesPerWorker":1,"secondsToProcessOneJob":240,"targetWaitSeconds":20,"workerStartupSeconds":30,"currentReplicas":20,"minReplicas":0,"maxReplicas":400{idle}}}"#
            ));
            serde_json::from_str::<Value>(output.trim()).unwrap()
        };
        // Erlang C on the load: 30. Tracking the 24 in flight: 28.
        assert_eq!(line("")["desiredReplicas"], 30);
        let tracked = line(r#","idlePods":0"#);
        assert_eq!(tracked["desiredReplicas"], 28);
        assert!(
            tracked["reason"].as_str().unwrap().contains(
                "of the 24 in flight and the arrivals 24.0 will run when a pod started now is \
                 ready, which 28 hold (tracked: idle pods can go)"
            ),
            "{tracked}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":0,"currentReplicas":1,"minReplicas":0,"maxReplicas":1}"#,
                "targetMessagesPerWorker",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1,"maxDisruption":"abc"}"#,
                "maxDisruption",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1,"maxDisruption":"-1"}"#,
                "maxDisruption",
            ),
            (
                r#"{"queueMessages":-5,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1}"#,
                "queueMessages",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":-1}"#,
                "maxReplicas",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":-1,"maxReplicas":1}"#,
                "minReplicas",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1,"messagesSentPerMinute":-3}"#,
                "messagesSentPerMinute",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1,"secondsToProcessOneJob":-0.5}"#,
                "secondsToProcessOneJob",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":-2,"minReplicas":0,"maxReplicas":1}"#,
                "currentReplicas",
            ),
            (
                r#"{"queueMessages":1.5,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1}"#,
                "queueMessages",
            ),
            (
                r#"{"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1}"#,
                "queueMessages",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1,"idleWorkers":-4}"#,
                "idleWorkers",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1,"idleWorkers":"some"}"#,
                "idleWorkers",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1,"idleWorkers":true}"#,
                "idleWorkers",
            ),
            (
                r#"{"queueMessages":1,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":1,"scaleDownDelaySeconds":-1}"#,
                "scaleDownDelaySeconds",
            ),
        ];
        for (input, field) in cases {
            let (output, any_error) = decide(input);
            let line: Value = serde_json::from_str(output.trim_end()).unwrap();
            let message = line["error"]
                .as_str()
                .unwrap_or_else(|| panic!("no error for {input}"));
            assert!(message.contains(field), "{message:?} should name {field}");
            assert!(any_error);
        }
    }

    #[test]
    fn scale_down_delay_holds_and_releases() {
        let base = r#""queueMessages":0,"targetMessagesPerWorker":1,"currentReplicas":4,"idleWorkers":4,"minReplicas":0,"maxReplicas":10"#;
        let (held, _) = decide(&format!("{{{base},\"lastScaleTimeSecondsAgo\":600}}"));
        let held: Value = serde_json::from_str(held.trim_end()).unwrap();
        assert_eq!(held["desiredReplicas"], 0);
        assert_eq!(held["scaleOperation"], "none");
        assert!(held["reason"].as_str().unwrap().contains("held"));

        let (released, any_error) =
            decide(&format!("{{{base},\"lastScaleTimeSecondsAgo\":600.5}}"));
        let released: Value = serde_json::from_str(released.trim_end()).unwrap();
        assert_eq!(released["scaleOperation"], "scale-down");
        assert!(!any_error);
    }

    #[test]
    fn enormous_ages_and_delays_are_long_not_errors() {
        let base = r#""queueMessages":0,"targetMessagesPerWorker":1,"currentReplicas":4,"idleWorkers":4,"minReplicas":0,"maxReplicas":10"#;
        let (long_ago, _) = decide(&format!("{{{base},\"lastScaleTimeSecondsAgo\":1e300}}"));
        let long_ago: Value = serde_json::from_str(long_ago.trim_end()).unwrap();
        assert_eq!(long_ago["scaleOperation"], "scale-down");

        let (ahead, _) = decide(&format!("{{{base},\"lastScaleTimeSecondsAgo\":-1e300}}"));
        let ahead: Value = serde_json::from_str(ahead.trim_end()).unwrap();
        assert_eq!(ahead["scaleOperation"], "none");

        let (forever, any_error) = decide(&format!(
            "{{{base},\"lastScaleTimeSecondsAgo\":5,\"scaleDownDelaySeconds\":1e300}}"
        ));
        let forever: Value = serde_json::from_str(forever.trim_end()).unwrap();
        assert_eq!(forever["scaleOperation"], "none");
        assert!(!any_error);
    }

    #[test]
    fn unknown_fields_are_ignored_and_repeated_ones_refused() {
        let base = r#""queueMessages":3,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":10"#;
        let (output, any_error) = decide(&format!("{{{base},\"comment\":[1,{{}}]}}"));
        assert!(!any_error, "{output}");
        let (output, any_error) = decide(&format!("{{{base},\"queueMessages\":4}}"));
        assert!(any_error);
        assert!(
            output.contains("duplicate field `queueMessages`"),
            "{output}"
        );
        for not_an_object in ["[3,0,0,1,1]", "3", "\"x\"", "null"] {
            let (output, any_error) = decide(not_an_object);
            assert!(any_error, "{not_an_object}");
            assert!(output.contains("not a JSON object"), "{output}");
        }
    }

    #[test]
    fn null_idle_workers_is_unknown() {
        let line = r#"{"queueMessages":0,"targetMessagesPerWorker":1,"currentReplicas":4,"idleWorkers":null,"minReplicas":1,"maxReplicas":10,"maxDisruption":"1"}"#;
        let (output, _) = decide(line);
        let output: Value = serde_json::from_str(output.trim_end()).unwrap();
        assert_eq!(output["desiredReplicas"], 3);
    }

    #[test]
    fn idle_workers_takes_a_count_all_or_unknown() {
        let line = |idle: &str| {
            format!(
                r#"{{"queueMessages":0,"targetMessagesPerWorker":1,"currentReplicas":10,"idleWorkers":{idle},"minReplicas":0,"maxReplicas":10,"maxDisruption":"10%"}}"#
            )
        };
        let answer = |idle: &str| -> Value {
            let (output, any_error) = decide(&line(idle));
            assert!(!any_error, "{output}");
            serde_json::from_str(output.trim_end()).unwrap()
        };
        // Every worker idle: straight to the floor, maxDisruption ignored.
        let all = answer(r#""all""#);
        assert_eq!(all["desiredReplicas"], 0);
        assert!(
            all["reason"]
                .as_str()
                .unwrap()
                .contains("the queue reports every worker idle"),
            "{all}"
        );
        assert_eq!(answer("10")["desiredReplicas"], 0);
        // A count below current, or unknown: one step within the budget,
        // and the reason says which.
        let some = answer("4");
        assert_eq!(some["desiredReplicas"], 9);
        assert!(
            some["reason"]
                .as_str()
                .unwrap()
                .contains("4 of the 10 workers idle")
        );
        for unknown in ["-1", "null"] {
            let answer = answer(unknown);
            assert_eq!(answer["desiredReplicas"], 9);
            assert!(answer["reason"].as_str().unwrap().contains("not known"));
        }
    }

    /// The wait-target policy's fields reach it, each answered line says
    /// why, and bad values name their field.
    /// The rate's window sets the scale-down band: a rate counted over
    /// CloudWatch's five minutes is trusted closer to its value than one of
    /// the 30 s assumed without it.
    #[test]
    fn the_rate_window_narrows_the_band() {
        let line = |window: &str| {
            format!(
                r#"{{"queueMessages":24,"inFlightMessages":24,"messagesSentPerMinute":6,"targetMessagesPerWorker":1,"currentReplicas":60,"minReplicas":0,"maxReplicas":400,"secondsToProcessOneJob":240,"targetWaitSeconds":20{window}}}"#
            )
        };
        let (output, any_error) = decide(&format!(
            "{}\n{}\n{}\n",
            line(""),
            line(r#","arrivalRateWindowSeconds":300"#),
            line(r#","arrivalRateWindowSeconds":-5"#)
        ));
        assert!(any_error);
        let answers: Vec<Value> = output
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // 24 busy need 35; 30 s of 0.1 msg/s is 3 messages, too few to
        // shrink 60 on.
        assert_eq!(answers[0]["desiredReplicas"], 60, "{}", answers[0]);
        assert_eq!(answers[0]["scaleOperation"], "none");
        // 300 s is 30 messages: the band is 55%, and 60 is past it.
        let narrowed = answers[1]["desiredReplicas"].as_u64().unwrap();
        assert!((35..60).contains(&narrowed), "{}", answers[1]);
        assert_eq!(answers[1]["scaleOperation"], "scale-down");
        assert!(
            answers[2]["error"]
                .as_str()
                .unwrap()
                .contains("arrivalRateWindowSeconds must be a finite number >= 0, got -5"),
            "{}",
            answers[2]
        );
    }

    #[test]
    fn wait_target_fields() {
        let line = |extra: &str| {
            format!(
                r#"{{"queueMessages":1010,"inFlightMessages":10,"targetMessagesPerWorker":10,"currentReplicas":30,"availableReplicas":10,"minReplicas":0,"maxReplicas":500,"secondsToProcessOneJob":1,"targetWaitSeconds":20{extra}}}"#
            )
        };
        let (output, any_error) = decide(&format!(
            "{}\n{}\n",
            line(""),
            line(r#","workerStartupSeconds":0"#)
        ));
        assert!(!any_error, "{output}");
        let answers: Vec<Value> = output
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // 20 pods still starting count from when they are ready (30 s).
        assert_eq!(answers[0]["desiredReplicas"], 65);
        assert_eq!(answers[0]["scaleOperation"], "scale-up");
        assert!(
            answers[0]["reason"]
                .as_str()
                .unwrap()
                .starts_with("99% of waits under 20 s need 65 workers"),
            "{}",
            answers[0]
        );
        // Pods that start at once need fewer.
        assert!(answers[1]["desiredReplicas"].as_u64().unwrap() < 65);
        // A backlog that grew by 1,000 in 10 s: 100 msg/s more arrive.
        let (grown, _) = decide(&format!(
            "{}\n",
            line(r#","previousQueueMessages":10,"previousQueueMessagesSecondsAgo":10"#)
        ));
        let grown: Value = serde_json::from_str(grown.trim()).unwrap();
        assert!(grown["desiredReplicas"].as_u64().unwrap() > 65, "{grown}");
        let (half, any_error) = decide(&format!("{}\n", line(r#","previousQueueMessages":10"#)));
        assert!(any_error);
        assert!(
            half.contains("previousQueueMessagesSecondsAgo is required"),
            "{half}"
        );

        // A plain Redis list: nothing says which of the 30 pods is idle.
        let plain = r#"{"queueMessages":0,"inFlightMessages":"uncounted","targetMessagesPerWorker":10,"currentReplicas":30,"minReplicas":0,"maxReplicas":500,"secondsToProcessOneJob":1,"targetWaitSeconds":20}"#;
        let (held, any_error) = decide(&format!(
            "{plain}\n{}\n",
            plain.replace(r#""uncounted""#, "-1")
        ));
        assert!(!any_error, "{held}");
        let held: Vec<Value> = held
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            (
                held[0]["desiredReplicas"].as_u64(),
                held[0]["scaleOperation"].as_str()
            ),
            (Some(30), Some("none"))
        );
        assert!(
            held[0]["reason"]
                .as_str()
                .unwrap()
                .contains("does not count what its workers hold"),
            "{}",
            held[0]
        );
        // Unknown (-1) is within queueMessages: an empty queue holds none.
        assert_eq!(held[1]["scaleOperation"], "scale-down", "{}", held[1]);

        for (fields, message) in [
            (
                r#""inFlightMessages":-3,"secondsToProcessOneJob":1"#,
                "inFlightMessages must not be negative, got -3",
            ),
            (
                r#""inFlightMessages":"some","secondsToProcessOneJob":1"#,
                r#"inFlightMessages must be a whole number, -1 or \"uncounted\", got \"some\""#,
            ),
            (
                r#""oldestMessageAgeSeconds":-1,"secondsToProcessOneJob":1"#,
                "oldestMessageAgeSeconds must be a finite number >= 0, got -1",
            ),
            (
                r#""workerStartupSeconds":"soon","secondsToProcessOneJob":1"#,
                "workerStartupSeconds must be a number, got",
            ),
            (
                r#""secondsToProcessOneJob":0"#,
                "targetWaitSeconds needs secondsToProcessOneJob (> 0)",
            ),
        ] {
            let bad = format!(
                r#"{{"queueMessages":5,"targetMessagesPerWorker":10,"currentReplicas":3,"minReplicas":0,"maxReplicas":50,"targetWaitSeconds":20,{fields}}}"#
            );
            let (output, any_error) = decide(&format!("{bad}\n"));
            assert!(any_error);
            assert!(output.contains(message), "{fields}: {output}");
        }
    }
}
