//! `decide`: the core's decision on each line of JSON read from stdin.
//!
//! One output line per input line, in order, written as soon as the line
//! is read (a co-process can wait for each answer). A bad line yields
//! `{"error": "..."}` naming the field, and processing goes on; the exit
//! status is 1 if any line was refused.

use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};
use wpa_core::{
    Idleness, MaxDisruption, QueueSnapshot, RawWpaSpec, ScaleOperation, TargetReplicas, plan,
};

/// Arguments of `decide` (none yet: the input carries everything).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Input fields (camelCase, one JSON object per line):
  queueMessages            visible + in-flight messages (required)
  messagesSentPerMinute    arrival rate (absent = 0)
  secondsToProcessOneJob   (absent = 0: the rate floor is off)
  targetMessagesPerWorker  (required, >= 1)
  currentReplicas          (required)
  idleWorkers              idle workers: a count, \"all\" (every worker idle,
                           however many run), or absent, null or -1 = unknown
  minReplicas, maxReplicas (required)
  maxDisruption            (default \"100%\")
  lastScaleTimeSecondsAgo  (absent = never scaled)
  scaleDownDelaySeconds    (default 600)
Output: {\"desiredReplicas\":N,\"scaleOperation\":\"scale-up|scale-down|none\",\"reason\":\"...\"}
     or {\"error\":\"...\"}; exit status 1 if any line was an error.")]
pub(crate) struct DecideArgs {}

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

/// A fixed "now": only differences from it matter.
const NOW_SECONDS: u64 = 4_000_000_000;

/// Longer ages and delays (about 31 million years) all behave alike.
const MAX_SECONDS: f64 = 1e15;

pub(crate) fn run(_args: &DecideArgs) -> ExitCode {
    let stdin = io::stdin().lock();
    let mut stdout = BufWriter::new(io::stdout().lock());
    match decide_lines(stdin, &mut stdout) {
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
fn decide_lines(input: impl BufRead, output: &mut impl Write) -> io::Result<bool> {
    let mut any_error = false;
    let mut reason = String::new();
    for line in input.lines() {
        let line = line?;
        reason.clear();
        match decide_line(&line, &mut reason) {
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

fn decide_line(line: &str, reason: &mut String) -> Result<(u32, ScaleOperation), LineError> {
    use std::fmt::Write as _;

    let fields: Map<String, Value> = serde_json::from_str(line)?;
    let spec = RawWpaSpec {
        min_replicas: Some(integer(&fields, "minReplicas")?.ok_or(missing("minReplicas"))?),
        max_replicas: Some(integer(&fields, "maxReplicas")?.ok_or(missing("maxReplicas"))?),
        target_messages_per_worker: Some(
            integer(&fields, "targetMessagesPerWorker")?
                .ok_or(missing("targetMessagesPerWorker"))?,
        ),
        seconds_to_process_one_job: number(&fields, "secondsToProcessOneJob")?,
        max_disruption: string(&fields, "maxDisruption")?,
    }
    .validate(MaxDisruption::DEFAULT)?;
    let snapshot = QueueSnapshot::from_signed(
        integer(&fields, "queueMessages")?.ok_or(missing("queueMessages"))?,
        number(&fields, "messagesSentPerMinute")?,
        None,
    )?
    .with_idleness(idleness(&fields)?);
    let current = integer(&fields, "currentReplicas")?.ok_or(missing("currentReplicas"))?;
    let replicas = TargetReplicas::from_signed(current, current)?;

    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECONDS);
    let last_scale_time = match number(&fields, "lastScaleTimeSecondsAgo")? {
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
    let delay = match number(&fields, "scaleDownDelaySeconds")? {
        None => wpa_core::DEFAULT_SCALE_DOWN_DELAY,
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

    let step = plan(&spec, snapshot, replicas, delay, last_scale_time, now);
    // Writing to a String cannot fail.
    let _ = write!(reason, "{}", step.decision);
    if let ScaleOperation::ScaleDownHeld(_) = step.operation {
        let _ = write!(reason, "; {}", step.operation);
    }
    Ok((step.decision.desired_replicas, step.operation))
}

fn missing(field: &'static str) -> wpa_core::Error {
    wpa_core::Error::Missing { field }
}

/// An optional field; JSON `null` counts as absent.
fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|value| !value.is_null())
}

fn integer(fields: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, LineError> {
    let Some(value) = field(fields, name) else {
        return Ok(None);
    };
    match value.as_i64() {
        Some(integer) => Ok(Some(integer)),
        // A whole number beyond 64 bits is still an integer: too large.
        None if value.is_u64() => Err(wpa_core::Error::TooLarge {
            field: name,
            value: i64::MAX,
            max: i64::from(i32::MAX),
        }
        .into()),
        None => Err(LineError::WrongType {
            field: name,
            expected: "a whole number",
            value: value.clone(),
        }),
    }
}

fn number(fields: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, LineError> {
    let Some(value) = field(fields, name) else {
        return Ok(None);
    };
    value
        .as_f64()
        .map(Some)
        .ok_or_else(|| LineError::WrongType {
            field: name,
            expected: "a number",
            value: value.clone(),
        })
}

/// `idleWorkers`: a count, `"all"`, or unknown (absent, null, -1).
fn idleness(fields: &Map<String, Value>) -> Result<Idleness, LineError> {
    const NAME: &str = "idleWorkers";
    if let Some(Value::String(text)) = field(fields, NAME) {
        return if text == "all" {
            Ok(Idleness::AllIdle)
        } else {
            Err(LineError::WrongType {
                field: NAME,
                expected: "a whole number, -1 or \"all\"",
                value: Value::String(text.clone()),
            })
        };
    }
    let count = QueueSnapshot::from_signed(0, None, integer(fields, NAME)?)?;
    Ok(count.idleness())
}

fn string(fields: &Map<String, Value>, name: &'static str) -> Result<Option<String>, LineError> {
    let Some(value) = field(fields, name) else {
        return Ok(None);
    };
    match value {
        Value::String(text) => Ok(Some(text.clone())),
        other => Err(LineError::WrongType {
            field: name,
            expected: "a string such as \"25%\" or \"2\"",
            value: other.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(input: &str) -> (String, bool) {
        let mut output = Vec::new();
        let any_error = decide_lines(input.as_bytes(), &mut output).unwrap();
        (String::from_utf8(output).unwrap(), any_error)
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
}
