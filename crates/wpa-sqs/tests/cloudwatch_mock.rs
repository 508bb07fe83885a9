#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CloudWatch `GetMetricData` requests and responses, and the adapter's
//! logic around them, with the SDK's own `aws-smithy-mocks` (moto does not
//! serve the Rust SDK's CloudWatch protocol, RPC v2 CBOR).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::Client as CloudWatch;
use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataInput, GetMetricDataOutput};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::error::ErrorMetadata;
use aws_sdk_sqs::operation::get_queue_attributes::{
    GetQueueAttributesError, GetQueueAttributesOutput,
};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use wpa_poller::{PollRequest, QueueSource};
use wpa_sqs::{CloudWatchMetrics, Error, Idleness, MetricWindow, QueueUrl, SqsOptions, SqsQueue};

const URL: &str = "https://sqs.ap-south-1.amazonaws.com/123456789012/jobs.fifo";

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn output(values: &[f64]) -> GetMetricDataOutput {
    let mut result = MetricDataResult::builder().id("m1");
    for v in values {
        result = result.values(*v);
    }
    GetMetricDataOutput::builder()
        .metric_data_results(result.build())
        .build()
}

/// A rule answering `values` and recording each request.
fn recording(
    values: &'static [f64],
) -> (aws_smithy_mocks::Rule, Arc<Mutex<Vec<GetMetricDataInput>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let rule = mock!(CloudWatch::get_metric_data).then_compute_output(move |req| {
        log.lock().unwrap().push(req.clone());
        output(values)
    });
    (rule, seen)
}

fn metrics(client: CloudWatch) -> CloudWatchMetrics {
    CloudWatchMetrics::new(
        client,
        URL,
        "jobs.fifo",
        MetricWindow::ARRIVAL_RATE,
        MetricWindow::IDLE,
        Duration::from_secs(60),
    )
}

fn check_request(req: &GetMetricDataInput, metric: &str, start_ago: u64, end_ago: u64) {
    let secs = |d: Option<&DateTime>| d.map(DateTime::secs).unwrap();
    let now = 1_700_000_000i64;
    assert_eq!(secs(req.start_time()), now - start_ago as i64);
    assert_eq!(secs(req.end_time()), now - end_ago as i64);
    let queries = req.metric_data_queries();
    assert_eq!(queries.len(), 1);
    let stat = queries[0].metric_stat().unwrap();
    assert_eq!(stat.period(), Some(60));
    assert_eq!(stat.stat(), Some("Sum"));
    let m = stat.metric().unwrap();
    assert_eq!(m.namespace(), Some("AWS/SQS"));
    assert_eq!(m.metric_name(), Some(metric));
    let dims = m.dimensions();
    assert_eq!(dims.len(), 1);
    assert_eq!(dims[0].name(), Some("QueueName"));
    assert_eq!(dims[0].value(), Some("jobs.fifo"));
}

#[tokio::test]
async fn arrival_rate_request_window_and_mean_per_minute() {
    let (rule, seen) = recording(&[3.0, 6.0, 0.0, 9.0, 12.0]);
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    let mut m = metrics(client);
    let rate = m.messages_sent_per_minute(now()).await.unwrap();
    assert_eq!(rate, 6.0, "mean of the per-minute sums");
    check_request(&seen.lock().unwrap()[0], "NumberOfMessagesSent", 600, 300);

    // Cached for 60 s.
    let later = now() + Duration::from_secs(59);
    assert_eq!(m.messages_sent_per_minute(later).await.unwrap(), 6.0);
    assert_eq!(rule.num_calls(), 1);
    let expired = now() + Duration::from_secs(60);
    m.messages_sent_per_minute(expired).await.unwrap();
    assert_eq!(rule.num_calls(), 2);
    // A clock that went backwards refetches rather than trusting the cache.
    m.messages_sent_per_minute(now() - Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn no_data_points_is_a_rate_of_zero() {
    let (rule, _) = recording(&[]);
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    assert_eq!(
        metrics(client)
            .messages_sent_per_minute(now())
            .await
            .unwrap(),
        0.0
    );
}

#[tokio::test]
async fn idleness_request_window_and_sum() {
    let (rule, seen) = recording(&[0.0, 2.0, 5.0]);
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    let mut m = metrics(client);
    assert_eq!(m.messages_received(now()).await.unwrap(), 7.0);
    check_request(
        &seen.lock().unwrap()[0],
        "NumberOfMessagesReceived",
        1200,
        600,
    );
    assert_eq!(
        m.messages_received(now() + Duration::from_secs(30))
            .await
            .unwrap(),
        7.0
    );
    assert_eq!(rule.num_calls(), 1);
    m.clear_cache();
    m.messages_received(now()).await.unwrap();
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn configured_windows_and_periods() {
    let (rule, seen) = recording(&[10.0, 20.0]);
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    let window = MetricWindow {
        start_ago: Duration::from_secs(900),
        end_ago: Duration::from_secs(120),
        period: Duration::from_secs(300),
    };
    let mut m = CloudWatchMetrics::new(client, URL, "jobs.fifo", window, window, Duration::ZERO);
    // Mean 15 per 300 s = 3 per minute.
    assert_eq!(m.messages_sent_per_minute(now()).await.unwrap(), 3.0);
    {
        let requests = seen.lock().unwrap();
        let req = &requests[0];
        assert_eq!(req.start_time().unwrap().secs(), 1_700_000_000 - 900);
        assert_eq!(req.end_time().unwrap().secs(), 1_700_000_000 - 120);
        assert_eq!(
            req.metric_data_queries()[0].metric_stat().unwrap().period(),
            Some(300)
        );
    }
    // TTL 0: no caching.
    m.messages_sent_per_minute(now()).await.unwrap();
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn bad_responses_are_typed() {
    let two = mock!(CloudWatch::get_metric_data).then_output(|| {
        GetMetricDataOutput::builder()
            .metric_data_results(MetricDataResult::builder().id("a").build())
            .metric_data_results(MetricDataResult::builder().id("b").build())
            .build()
    });
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&two]);
    let err = metrics(client).messages_received(now()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");

    let negative = mock!(CloudWatch::get_metric_data).then_output(|| output(&[-1.0]));
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&negative]);
    let err = metrics(client)
        .messages_sent_per_minute(now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
}

// ---- the whole adapter, with mocked SQS and CloudWatch ----

fn attributes(visible: u32, not_visible: u32, delayed: u32) -> GetQueueAttributesOutput {
    GetQueueAttributesOutput::builder()
        .attributes(
            QueueAttributeName::ApproximateNumberOfMessages,
            visible.to_string(),
        )
        .attributes(
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            not_visible.to_string(),
        )
        .attributes(
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            delayed.to_string(),
        )
        .build()
}

fn queue(sqs: Sqs, cloudwatch: CloudWatch, options: &SqsOptions) -> SqsQueue {
    let url = QueueUrl::parse(URL, false).unwrap();
    SqsQueue::from_parts(url, "ap-south-1".into(), sqs, cloudwatch, options)
}

const SHORT: PollRequest = PollRequest {
    wake_up: false,
    long_poll: Duration::from_secs(20),
    short_poll: Duration::from_secs(20),
    arrival_rate: false,
    oldest_age: false,
};

#[tokio::test]
async fn one_attributes_call_per_poll_and_all_idle_from_cloudwatch() {
    let attrs = mock!(Sqs::get_queue_attributes)
        .match_requests(|req| {
            req.queue_url() == Some(URL)
                && req.attribute_names().len() == 4
                && req
                    .attribute_names()
                    .contains(&QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        })
        .then_output(|| attributes(0, 0, 4));
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&attrs]);
    let (received, seen) = recording(&[0.0, 0.0]);
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&received]);
    let mut q = queue(sqs, cloudwatch, &SqsOptions::default());

    let obs = q.observe(SHORT, now()).await.unwrap();
    assert_eq!(attrs.num_calls(), 1, "one GetQueueAttributes call per poll");
    assert_eq!(obs.messages, 0);
    assert_eq!(obs.counts.unwrap().delayed, 4);
    assert_eq!(obs.idle, Idleness::AllIdle);
    assert_eq!(obs.messages_sent_per_minute, None, "rate is opt-in");
    check_request(
        &seen.lock().unwrap()[0],
        "NumberOfMessagesReceived",
        1200,
        600,
    );
    assert_eq!(obs.snapshot().idleness(), Idleness::AllIdle);

    // Through the driver's trait: "all" as data, resolved by each decision
    // against its own replicas.
    let snapshot = q.poll(SHORT).await.unwrap();
    assert_eq!(snapshot.idleness(), Idleness::AllIdle);
    assert_eq!(snapshot.idle_workers(5), Some(5));
    assert_eq!(snapshot.idle_workers(3), Some(3));
    assert_eq!(attrs.num_calls(), 2);
}

#[tokio::test]
async fn cloudwatch_is_not_asked_about_idleness_under_a_backlog() {
    for (visible, not_visible) in [(2, 0), (0, 1)] {
        let attrs = mock!(Sqs::get_queue_attributes)
            .then_output(move || attributes(visible, not_visible, 0));
        let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&attrs]);
        let (received, _) = recording(&[0.0]);
        let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&received]);
        let mut q = queue(sqs, cloudwatch, &SqsOptions::default());
        let obs = q.observe(SHORT, now()).await.unwrap();
        assert_eq!(obs.idle, Idleness::Unknown);
        assert_eq!(obs.messages, visible + not_visible);
        assert_eq!(received.num_calls(), 0);
    }
}

#[tokio::test]
async fn the_rate_is_measured_for_the_polls_that_ask_for_it() {
    let attrs = mock!(Sqs::get_queue_attributes).then_output(|| attributes(5, 0, 0));
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&attrs]);
    let sent = mock!(CloudWatch::get_metric_data)
        .match_requests(|r| metric_name(r) == "NumberOfMessagesSent")
        .then_output(|| output(&[12.0]));
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&sent]);
    // The controller's setting: the rate only on request.
    let mut q = queue(sqs, cloudwatch, &SqsOptions::default());
    let obs = q.observe(SHORT, now()).await.unwrap();
    assert_eq!(obs.messages_sent_per_minute, None);
    assert_eq!(
        sent.num_calls(),
        0,
        "nobody needs the rate: no CloudWatch call"
    );
    let asking = PollRequest {
        arrival_rate: true,
        oldest_age: false,
        ..SHORT
    };
    let obs = q.observe(asking, now()).await.unwrap();
    assert_eq!(obs.messages_sent_per_minute, Some(12.0));
    assert_eq!(sent.num_calls(), 1);
    // Nobody asks any more: no rate reported, none fetched.
    let obs = q
        .observe(SHORT, now() + Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(obs.messages_sent_per_minute, None);
    assert_eq!(sent.num_calls(), 1);
}

#[tokio::test]
async fn received_messages_mean_no_idle_worker_and_the_rate_is_measured() {
    let attrs = mock!(Sqs::get_queue_attributes).then_output(|| attributes(0, 0, 0));
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&attrs]);
    let sent = mock!(CloudWatch::get_metric_data)
        .match_requests(|r| metric_name(r) == "NumberOfMessagesSent")
        .then_output(|| output(&[30.0, 30.0]));
    let received = mock!(CloudWatch::get_metric_data)
        .match_requests(|r| metric_name(r) == "NumberOfMessagesReceived")
        .then_output(|| output(&[1.0]));
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&sent, &received]);
    let options = SqsOptions {
        arrival_rate: true,
        ..SqsOptions::default()
    };
    let mut q = queue(sqs, cloudwatch, &options);
    let obs = q.observe(SHORT, now()).await.unwrap();
    assert_eq!(obs.idle, Idleness::NotAllIdle);
    assert_eq!(obs.idle.idle_workers(4), Some(0));
    assert_eq!(obs.messages_sent_per_minute, Some(30.0));
    let snapshot = obs.snapshot();
    assert_eq!(snapshot.idleness(), Idleness::NotAllIdle);
    assert_eq!(snapshot.messages_sent_per_minute(), Some(30.0));
    // Within the TTL both answers come from the cache.
    q.observe(SHORT, now() + Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        (sent.num_calls(), received.num_calls(), attrs.num_calls()),
        (1, 1, 2)
    );
}

fn metric_name(req: &GetMetricDataInput) -> String {
    req.metric_data_queries()
        .first()
        .and_then(|q| q.metric_stat())
        .and_then(|s| s.metric())
        .and_then(|m| m.metric_name())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_cloudwatch_failure_does_not_fail_the_poll() {
    let attrs = mock!(Sqs::get_queue_attributes).then_output(|| attributes(0, 0, 0));
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&attrs]);
    let sent_ok = mock!(CloudWatch::get_metric_data)
        .match_requests(|r| metric_name(r) == "NumberOfMessagesSent")
        .sequence()
        .output(|| output(&[12.0]))
        .http_status(500, None)
        .repeatedly()
        .build();
    let received_fails = mock!(CloudWatch::get_metric_data)
        .match_requests(|r| metric_name(r) == "NumberOfMessagesReceived")
        .sequence()
        .http_status(403, None)
        .repeatedly()
        .build();
    let cloudwatch = mock_client!(
        aws_sdk_cloudwatch,
        RuleMode::MatchAny,
        [&sent_ok, &received_fails]
    );
    let options = SqsOptions {
        arrival_rate: true,
        ..SqsOptions::default()
    };
    let mut q = queue(sqs, cloudwatch, &options);
    let obs = q.observe(SHORT, now()).await.unwrap();
    assert_eq!(obs.messages_sent_per_minute, Some(12.0));
    assert_eq!(obs.idle, Idleness::Unknown);
    assert!(obs.cloudwatch_error.is_some());
    // The rate fails later: its last value is kept, the poll still succeeds.
    let obs = q
        .observe(SHORT, now() + Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(obs.messages_sent_per_minute, Some(12.0));
    assert!(obs.cloudwatch_error.is_some());
}

#[tokio::test]
async fn sqs_errors_are_typed() {
    type Check = fn(&Error) -> bool;
    let cases: Vec<(&str, Check)> = vec![
        ("AWS.SimpleQueueService.NonExistentQueue", |e| {
            matches!(e, Error::QueueDoesNotExist { .. })
        }),
        ("AccessDenied", |e| matches!(e, Error::AccessDenied { .. })),
        ("RequestThrottled", |e| matches!(e, Error::Throttled { .. })),
        ("InternalError", |e| matches!(e, Error::Service { .. })),
    ];
    for (code, check) in cases {
        let rule = mock!(Sqs::get_queue_attributes).then_error(move || {
            GetQueueAttributesError::generic(
                ErrorMetadata::builder().code(code).message("m").build(),
            )
        });
        let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&rule]);
        let (cw, _) = recording(&[]);
        let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&cw]);
        let mut q = queue(sqs, cloudwatch, &SqsOptions::default());
        let err = q.poll(SHORT).await.unwrap_err();
        assert!(check(&err), "{code}: {err:?}");
        assert!(err.to_string().contains(URL), "{err}");
    }
}

#[tokio::test]
async fn malformed_counts_are_typed() {
    let rule = mock!(Sqs::get_queue_attributes).then_output(|| {
        GetQueueAttributesOutput::builder()
            .attributes(QueueAttributeName::ApproximateNumberOfMessages, "-3")
            .build()
    });
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&rule]);
    let (cw, _) = recording(&[]);
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&cw]);
    let mut q = queue(sqs, cloudwatch, &SqsOptions::default());
    let err = q.poll(SHORT).await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_guarded_wake_up_never_receives_and_never_asks_cloudwatch() {
    let attrs = mock!(Sqs::get_queue_attributes).then_output(|| {
        let mut out = attributes(0, 0, 0);
        out = GetQueueAttributesOutput::builder()
            .set_attributes(out.attributes().cloned())
            .attributes(
                QueueAttributeName::RedrivePolicy,
                r#"{"deadLetterTargetArn":"arn:aws:sqs:ap-south-1:123456789012:dlq","maxReceiveCount":"3"}"#,
            )
            .build();
        out
    });
    let receive = mock!(Sqs::receive_message).then_output(|| {
        aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput::builder().build()
    });
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&attrs, &receive]);
    let (cw, _) = recording(&[0.0]);
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&cw]);
    let options = SqsOptions {
        arrival_rate: true,
        ..SqsOptions::default()
    };
    let mut q = queue(sqs, cloudwatch, &options);
    let wake = PollRequest {
        wake_up: true,
        long_poll: Duration::from_millis(20),
        short_poll: Duration::from_millis(20),
        arrival_rate: false,
        oldest_age: false,
    };
    for _ in 0..3 {
        let obs = q.observe(wake, now()).await.unwrap();
        assert_eq!(obs.idle, Idleness::Unknown);
    }
    assert_eq!(
        q.redrive_policy(),
        Some(&wpa_sqs::RedrivePolicy::MaxReceiveCount(3))
    );
    assert_eq!(attrs.num_calls(), 3);
    assert_eq!(receive.num_calls(), 0, "guarded: no ReceiveMessage");
    assert_eq!(cw.num_calls(), 0, "no CloudWatch in wake-up mode");
}

/// The CloudWatch windows of a poll through the driver's trait follow the
/// clock the queue is given, not the system's.
#[tokio::test]
async fn the_windows_follow_the_injected_clock() {
    let attrs = mock!(Sqs::get_queue_attributes).then_output(|| attributes(0, 0, 0));
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&attrs]);
    let (received, seen) = recording(&[0.0]);
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&received]);
    let mut q =
        queue(sqs, cloudwatch, &SqsOptions::default()).with_clock(wpa_poller::Clock::from_fn(now));
    let snapshot = q.poll(SHORT).await.unwrap();
    assert_eq!(snapshot.idleness(), Idleness::AllIdle);
    check_request(
        &seen.lock().unwrap()[0],
        "NumberOfMessagesReceived",
        1200,
        600,
    );
}
