//! Fuzz target bodies: each takes raw bytes, turns them into inputs with
//! [`arbitrary`], and panics only when an invariant breaks.
//!
//! `fuzz/` (cargo-fuzz, libFuzzer) and this crate's proptest suite call the
//! same functions, so `cargo test` exercises the very generators the fuzzer
//! uses.

use std::time::{Duration, SystemTime};

use arbitrary::{Result, Unstructured};
use wpa_beanstalkd::{Reply, ReplyDecoder, Stats, parse_reply};
use wpa_core::{
    MaxDisruption, QueueSnapshot, RawWpaSpec, WpaSpec, desired_replicas, scale_operation,
};
use wpa_sqs::{QueueUrl, UrlForm};

/// A raw spec as a user or a controller might send it: any integers, any
/// float, any string (often a plausible `maxDisruption`).
fn raw_spec(input: &mut Unstructured<'_>) -> Result<RawWpaSpec> {
    let max_disruption = match input.int_in_range(0..=3u8)? {
        0 => None,
        1 => Some(format!("{}%", input.arbitrary::<i64>()?)),
        2 => Some(input.arbitrary::<i32>()?.to_string()),
        _ => Some(input.arbitrary::<String>()?),
    };
    Ok(RawWpaSpec {
        min_replicas: count(input)?,
        max_replicas: count(input)?,
        target_messages_per_worker: count(input)?,
        seconds_to_process_one_job: input.arbitrary()?,
        max_disruption,
        target_wait_seconds: seconds(input)?,
        worker_startup_seconds: seconds(input)?,
    })
}

/// Mostly absent or a plausible time, sometimes any float.
fn seconds(input: &mut Unstructured<'_>) -> Result<Option<f64>> {
    Ok(match input.int_in_range(0..=3u8)? {
        0 => None,
        1 => Some(input.arbitrary()?),
        _ => Some(f64::from(input.int_in_range(0..=900u16)?) / 2.0),
    })
}

/// Mostly small counts (so that most inputs get past validation and reach
/// the decision), sometimes absent, sometimes any 64-bit value.
fn count(input: &mut Unstructured<'_>) -> Result<Option<i64>> {
    Ok(match input.int_in_range(0..=7u8)? {
        0 => None,
        1 => Some(input.arbitrary()?),
        _ => Some(input.int_in_range(-2..=300)?),
    })
}

/// Spec validation: never panics, and what it accepts upholds the spec's
/// invariants.
pub fn spec_validation(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(raw) = raw_spec(&mut input) else {
        return;
    };
    if let Some(text) = &raw.max_disruption {
        let _ = text.parse::<MaxDisruption>();
    }
    if let Ok(spec) = raw.validate(MaxDisruption::DEFAULT) {
        check_spec(&spec);
    }
}

fn check_spec(spec: &WpaSpec) {
    assert!(spec.target_messages_per_worker() >= 1);
    assert!(spec.max_replicas() <= wpa_core::MAX_REPLICAS);
    assert!(spec.min_replicas() <= wpa_core::MAX_REPLICAS);
    let seconds = spec.seconds_to_process_one_job();
    assert!(seconds.is_finite() && seconds >= 0.0);
}

/// The decision and the scale operation: never panic, always within bounds,
/// and a scale down beyond the budget only when all workers are idle or the
/// count exceeds maxReplicas.
pub fn decision(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let _ = decide(&mut input);
}

fn decide(input: &mut Unstructured<'_>) -> Result<()> {
    let raw = raw_spec(input)?;
    let Ok(spec) = raw.validate(MaxDisruption::DEFAULT) else {
        return Ok(());
    };
    let Ok(snapshot) =
        QueueSnapshot::from_signed(input.arbitrary()?, input.arbitrary()?, input.arbitrary()?)
    else {
        return Ok(());
    };
    // Sometimes "every worker idle" (SQS with CloudWatch) instead of the
    // count or unknown from the signed encoding.
    let snapshot = if input.arbitrary::<u8>()? % 4 == 0 {
        snapshot.with_idleness(wpa_core::Idleness::AllIdle)
    } else {
        snapshot
    };
    let current = match count(input)? {
        Some(value) => u32::try_from(value).unwrap_or(u32::MAX),
        None => 0,
    };
    let decision = desired_replicas(&spec, &snapshot, current);
    let desired = decision.desired_replicas;
    assert!(desired <= spec.max_replicas(), "{decision:?}");
    if decision.inputs.floor < spec.max_replicas() {
        assert!(desired >= decision.inputs.floor, "{decision:?}");
    }
    let removed = u64::from(current.saturating_sub(desired));
    if removed > decision.inputs.disruption_budget() {
        assert!(
            decision.rule == wpa_core::Rule::AllIdle || desired == spec.max_replicas(),
            "{decision:?}"
        );
    }
    assert!(!decision.to_string().is_empty());

    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(input.arbitrary::<u32>()?.into());
    let last = input
        .arbitrary::<Option<u32>>()?
        .map(|seconds| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.into()));
    let delay = Duration::from_secs(input.arbitrary::<u64>()?);
    let operation = scale_operation(desired, current, last, delay, now);
    assert_eq!(
        operation == wpa_core::ScaleOperation::ScaleUp,
        desired > current
    );
    let _ = operation.to_string();
    Ok(())
}

/// The policy the spec selects (often the wait-target one, with in-flight
/// counts, ready replicas, a backlog growth and sometimes a per-pod idle
/// count): never panics, stays within maxReplicas (and minReplicas below
/// it), never removes more pods than may be free, and explains itself.
pub fn policy_decision(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let _ = decide_with_policy(&mut input);
}

fn decide_with_policy(input: &mut Unstructured<'_>) -> Result<()> {
    let Ok(spec) = raw_spec(input)?.validate(MaxDisruption::DEFAULT) else {
        return Ok(());
    };
    let Ok(mut snapshot) =
        QueueSnapshot::from_signed(input.arbitrary()?, input.arbitrary()?, input.arbitrary()?)
    else {
        return Ok(());
    };
    if input.arbitrary::<bool>()? {
        snapshot = snapshot.with_in_flight(input.arbitrary()?);
    }
    if input.arbitrary::<bool>()? {
        snapshot = snapshot.with_in_flight_uncounted();
    }
    if input.arbitrary::<bool>()? {
        snapshot = snapshot.with_oldest_age(Duration::from_millis(input.arbitrary()?));
    }
    if input.arbitrary::<bool>()? {
        snapshot = snapshot.with_arrival_rate_window(Duration::from_millis(input.arbitrary()?));
    }
    let current = u32::try_from(count(input)?.unwrap_or(0)).unwrap_or(u32::MAX);
    let available = u32::try_from(count(input)?.unwrap_or(0)).unwrap_or(u32::MAX);
    let growth: Option<(f64, f64)> = input.arbitrary()?;
    let growth = growth.map(|(per_second, over_seconds)| wpa_core::BacklogGrowth {
        per_second,
        over_seconds,
    });
    let mut replicas = wpa_core::TargetReplicas::new(current, available);
    let idle_pods: Option<u32> = input.arbitrary()?;
    if let Some(idle_pods) = idle_pods {
        replicas = replicas.with_idle_pods(idle_pods);
    }
    let decision = wpa_core::decide(&spec, &snapshot, replicas, growth);
    let desired = decision.desired_replicas;
    assert!(desired <= spec.max_replicas(), "{decision:?}");
    if spec.min_replicas() < spec.max_replicas() {
        assert!(desired >= spec.min_replicas(), "{decision:?}");
    }
    if let Some(idle_pods) = idle_pods {
        // Idle-first: no busy pod removed, unless maxReplicas cut the pool.
        let removable = wpa_core::idle_first::removable(&snapshot, current, idle_pods);
        assert!(
            current.saturating_sub(desired) <= removable || desired == spec.max_replicas(),
            "{decision:?}"
        );
    }
    if let Some(wait) = decision.inputs.wait {
        let removed = current.saturating_sub(desired);
        assert!(
            removed <= wait.removable || desired == spec.max_replicas(),
            "{decision:?}"
        );
    }
    assert!(!decision.to_string().is_empty());
    Ok(())
}

/// The beanstalkd reply parser: never panics on any bytes, and bytes split
/// anywhere (at a point taken from the first byte) decode exactly as the
/// whole: same replies, same failure.
pub fn beanstalkd_reply(data: &[u8]) {
    if let Ok(Some((_, used))) = parse_reply(data) {
        assert!(used <= data.len());
    }
    let whole = decode_in_pieces(data, &[]);
    let cut = data.first().map_or(0, |&b| usize::from(b));
    assert_eq!(decode_in_pieces(data, &[cut]), whole);
    let _ = Stats::parse(data);
}

/// Decodes `bytes` pushed into one [`ReplyDecoder`] in pieces cut at
/// `cuts` (each taken modulo `bytes.len() + 1`, in any order): the replies
/// decoded, and whether an error stopped decoding. Split anywhere, a
/// stream must decode as the whole.
#[must_use]
pub fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> (Vec<Reply>, bool) {
    let mut decoder = ReplyDecoder::default();
    let mut replies = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort_unstable();
    let mut start = 0;
    for point in points {
        decoder.push(&bytes[start..point]);
        start = point;
        loop {
            match decoder.next_reply() {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => break,
                Err(_) => return (replies, true),
            }
        }
    }
    (replies, false)
}

/// SQS queue URL parsing: never panics, and what it accepts is consistent.
/// An AWS URL has a region, a custom one only passes with an endpoint
/// override, and an override never changes how an AWS URL reads.
pub fn sqs_queue_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let strict = QueueUrl::parse(text, false);
    let lenient = QueueUrl::parse(text, true);
    if let Ok(url) = &strict {
        assert_ne!(url.form(), UrlForm::Custom);
        assert!(url.region().is_some());
        assert_eq!(url.as_str(), text);
        assert!(!url.name().is_empty() && url.name().len() <= 80);
        assert_eq!(
            lenient.as_ref().ok(),
            Some(url),
            "an override accepts every AWS URL unchanged"
        );
    }
    if let Ok(url) = &lenient {
        assert_eq!(url.region().is_none(), url.form() == UrlForm::Custom);
        if url.form() == UrlForm::Custom {
            assert!(strict.is_err());
        }
    }
}
