//! The adapter against a real `redis-server` (started by this test binary
//! on a free port), driven by redis-rs' own client as a user's producer and
//! workers would. A missing `redis-server` binary fails these tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use wpa_core::{Idleness, QueueMetrics};
use wpa_poller::{PollRequest, PollerConfig, QueueSource, Registry};
use wpa_redis::{Error, RedisQueue};

/// Stream entries as redis-rs decodes them: `(id, [(field, value)])`.
type Entries = Vec<(String, Vec<(String, String)>)>;

#[tokio::test]
async fn missing_keys_are_empty_queues() {
    let server = server();
    for layout in [
        "list/never",
        "list/never?processing=never:processing",
        "stream/never?group=g",
        "celery",
        "sidekiq",
        "rq",
        "bullmq/never",
    ] {
        let snapshot = queue(&server, layout).snapshot().await.unwrap();
        assert_eq!(snapshot.messages(), 0, "{layout}");
        assert!(!snapshot.is_stale());
    }
    // A missing stream has no consumer: 0 idle, as beanstalkd's missing tube.
    let snapshot = queue(&server, "stream/never?group=g")
        .snapshot()
        .await
        .unwrap();
    assert_eq!(snapshot.idleness(), Idleness::Idle(0));
    assert_eq!(snapshot.in_flight(), Some(0));
    // A plain list cannot see its workers.
    let snapshot = queue(&server, "list/never").snapshot().await.unwrap();
    assert_eq!(
        (snapshot.idleness(), snapshot.in_flight()),
        (Idleness::Unknown, None)
    );
}

#[tokio::test]
async fn a_key_of_another_type_is_a_typed_error() {
    let server = server();
    let mut conn = client(&server).await;
    let () = run(&mut conn, &["SET", "jobs", "x"]).await;
    let error = queue(&server, "list/jobs").snapshot().await.unwrap_err();
    assert!(
        matches!(&error, Error::WrongType { key, expected: "list", .. } if key == "jobs"),
        "{error:?}"
    );
    let error = queue(&server, "stream/jobs?group=g")
        .snapshot()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::WrongType {
                expected: "stream",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("WRONGTYPE"), "{error}");
}

#[tokio::test]
async fn a_list_counts_waiting_and_processing_messages() {
    let server = server();
    let mut producer = client(&server).await;
    let mut worker = client(&server).await;
    for job in ["a", "b", "c", "d"] {
        let _: i64 = run(&mut producer, &["LPUSH", "jobs", job]).await;
    }
    // Another list is not counted.
    let _: i64 = run(&mut producer, &["LPUSH", "other", "x"]).await;
    let mut queue = queue(&server, "list/jobs?processing=jobs:processing");
    let mut plain = self::queue(&server, "list/jobs");
    let s = queue.poll(SHORT).await.unwrap();
    assert_eq!(
        (s.messages(), s.in_flight(), s.idleness()),
        (4, Some(0), Idleness::Unknown)
    );

    // The reliable-queue pattern: a worker moves one into its processing list.
    let taken: String = run(
        &mut worker,
        &["BLMOVE", "jobs", "jobs:processing", "RIGHT", "LEFT", "1"],
    )
    .await;
    assert_eq!(taken, "a");
    let s = queue.poll(SHORT).await.unwrap();
    assert_eq!(
        (s.messages(), s.in_flight()),
        (4, Some(1)),
        "3 waiting + 1 processing"
    );
    let s = plain.poll(SHORT).await.unwrap();
    assert_eq!(
        (s.messages(), s.in_flight()),
        (3, None),
        "without the processing list it is invisible"
    );

    // Done with everything: nothing waits, nothing is held, every worker idle.
    let _: i64 = run(&mut worker, &["LREM", "jobs:processing", "1", "a"]).await;
    for _ in 0..3 {
        let _: String = run(&mut worker, &["RPOP", "jobs"]).await;
    }
    let s = queue.poll(SHORT).await.unwrap();
    assert_eq!((s.messages(), s.idleness()), (0, Idleness::AllIdle));
}

#[tokio::test]
async fn a_stream_counts_lag_and_pending_and_measures_arrivals() {
    let server = server();
    let mut conn = client(&server).await;
    let mut queue = queue(&server, "stream/events?group=workers");
    let _: () = run(
        &mut conn,
        &["XGROUP", "CREATE", "events", "workers", "$", "MKSTREAM"],
    )
    .await;
    let s = queue.poll(SHORT).await.unwrap();
    assert_eq!((s.messages(), s.idleness()), (0, Idleness::AllIdle));
    assert_eq!(
        s.messages_sent_per_minute(),
        None,
        "one sample: no rate yet"
    );
    for i in 0..5 {
        let _: String = run(&mut conn, &["XADD", "events", "*", "n", &i.to_string()]).await;
    }
    // A consumer takes two and has not acknowledged them.
    let _: redis::Value = run(
        &mut conn,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "c1",
            "COUNT",
            "2",
            "STREAMS",
            "events",
            ">",
        ],
    )
    .await;
    let s = queue.poll(SHORT).await.unwrap();
    assert_eq!(
        (s.messages(), s.in_flight()),
        (5, Some(2)),
        "3 undelivered + 2 pending"
    );
    // Redis 7.0 cannot tell a live consumer waiting from a dead one.
    assert_eq!(s.idleness(), Idleness::Unknown);
    // 5 entries added since the first poll, less than a window ago: 5 per
    // minute (no extrapolation).
    assert_eq!(s.messages_sent_per_minute(), Some(5.0));

    // Everything delivered and acknowledged: every worker idle.
    let reply: redis::Value = run(
        &mut conn,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "c1",
            "COUNT",
            "10",
            "STREAMS",
            "events",
            "0",
        ],
    )
    .await;
    let _ = reply;
    let _: redis::Value = run(
        &mut conn,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "c1",
            "COUNT",
            "10",
            "STREAMS",
            "events",
            ">",
        ],
    )
    .await;
    let ids: Vec<(String, Vec<(String, String)>)> =
        run(&mut conn, &["XRANGE", "events", "-", "+"]).await;
    for (id, _) in &ids {
        let _: i64 = run(&mut conn, &["XACK", "events", "workers", id]).await;
    }
    let s = queue.poll(SHORT).await.unwrap();
    assert_eq!(
        (s.messages(), s.in_flight(), s.idleness()),
        (0, Some(0), Idleness::AllIdle)
    );
}

#[tokio::test]
async fn a_stream_without_a_lag_is_counted_by_hand() {
    let server = server();
    let mut conn = client(&server).await;
    let _: () = run(&mut conn, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let id: String = run(&mut conn, &["XADD", "s", "*", "n", &i.to_string()]).await;
        ids.push(id);
    }
    // Deleting an undelivered entry leaves Redis unable to compute the lag.
    let _: i64 = run(&mut conn, &["XDEL", "s", &ids[1]]).await;
    let groups: redis::Value = run(&mut conn, &["XINFO", "GROUPS", "s"]).await;
    let group = &wpa_redis::reply::groups(&groups).unwrap()[0];
    assert_eq!(group.lag, None, "the server reports no lag");
    let s = queue(&server, "stream/s?group=g").snapshot().await.unwrap();
    assert_eq!(
        s.messages(),
        3,
        "3 entries after the group's last-delivered ID"
    );
    // The scan is capped by lag-scan.
    let s = queue(&server, "stream/s?group=g&lag-scan=2")
        .snapshot()
        .await
        .unwrap();
    assert_eq!(s.messages(), 2);
}

#[tokio::test]
async fn a_stream_without_its_group_counts_every_entry() {
    let server = server();
    let mut conn = client(&server).await;
    for i in 0..3 {
        let _: String = run(&mut conn, &["XADD", "s", "*", "n", &i.to_string()]).await;
    }
    let s = queue(&server, "stream/s?group=later")
        .snapshot()
        .await
        .unwrap();
    assert_eq!(
        (s.messages(), s.in_flight(), s.idleness()),
        (3, Some(0), Idleness::Unknown)
    );
}

#[tokio::test]
async fn a_stream_reports_the_age_of_the_first_undelivered_entry_when_asked() {
    let server = server();
    let mut conn = client(&server).await;
    let (seconds, _micros): (u64, u64) = run(&mut conn, &["TIME"]).await;
    let _: () = run(&mut conn, &["XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"]).await;
    let old = format!("{}-0", (seconds - 10) * 1000);
    let newer = format!("{}-0", (seconds - 4) * 1000);
    let _: String = run(&mut conn, &["XADD", "s", &old, "n", "1"]).await;
    let _: String = run(&mut conn, &["XADD", "s", &newer, "n", "2"]).await;
    // The first one is delivered: the age is the second's.
    let _: redis::Value = run(
        &mut conn,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
    )
    .await;
    let mut queue = queue(&server, "stream/s?group=g");
    let asking = PollRequest {
        oldest_age: true,
        ..SHORT
    };
    let age = queue.poll(asking).await.unwrap().oldest_age().unwrap();
    assert!(
        age >= Duration::from_millis(3_500) && age < Duration::from_secs(6),
        "{age:?}"
    );
    assert_eq!(
        queue.poll(SHORT).await.unwrap().oldest_age(),
        None,
        "not asked"
    );
}

/// The wake-up on a list: `BLMOVE key key RIGHT RIGHT` returns within 1 s
/// of the push, and the list is exactly as the producer left it, several
/// elements pushed at once included: a worker then gets them in order.
#[tokio::test]
async fn the_list_wake_up_sees_the_first_push_and_keeps_the_order() {
    let server = server();
    let mut producer = client(&server).await;
    let mut observer = client(&server).await;
    let mut queue = queue(&server, "list/jobs");
    let poll = tokio::spawn(async move {
        let snapshot = queue.poll(wake(Duration::from_secs(20))).await;
        (snapshot, Instant::now(), queue)
    });
    wait_blocked(&mut observer, 1).await;
    let pushed_at = Instant::now();
    let _: i64 = run(
        &mut producer,
        &["LPUSH", "jobs", "first", "second", "third"],
    )
    .await;
    let (snapshot, woke_at, mut queue) = poll.await.unwrap();
    assert!(woke_at.duration_since(pushed_at) < Duration::from_secs(1));
    assert_eq!(snapshot.unwrap().messages(), 3);
    let contents: Vec<String> = run(&mut producer, &["LRANGE", "jobs", "0", "-1"]).await;
    assert_eq!(
        contents,
        ["third", "second", "first"],
        "the list as LPUSH left it"
    );
    // A worker (BRPOP, the consuming end) gets them in the order pushed.
    let mut worker = client(&server).await;
    for expected in ["first", "second", "third"] {
        let (_, job): (String, String) = run(&mut worker, &["BRPOP", "jobs", "1"]).await;
        assert_eq!(job, expected, "order changed by the wake-up");
    }
    // Messages already there: the wake-up returns at once.
    let _: i64 = run(&mut producer, &["LPUSH", "jobs", "x", "y"]).await;
    let started = Instant::now();
    assert_eq!(
        queue
            .poll(wake(Duration::from_secs(20)))
            .await
            .unwrap()
            .messages(),
        2
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    let contents: Vec<String> = run(&mut producer, &["LRANGE", "jobs", "0", "-1"]).await;
    assert_eq!(contents, ["y", "x"]);
}

/// The wake-up on a stream: `XREAD BLOCK` from the group's last-delivered
/// ID returns within 1 s of the first entry, and the group is untouched: a
/// worker then gets every entry, in order.
#[tokio::test]
async fn the_stream_wake_up_sees_the_first_entry_and_leaves_the_group_alone() {
    let server = server();
    let mut producer = client(&server).await;
    let mut observer = client(&server).await;
    let _: () = run(
        &mut producer,
        &["XGROUP", "CREATE", "events", "g", "$", "MKSTREAM"],
    )
    .await;
    let mut queue = queue(&server, "stream/events?group=g");
    let poll = tokio::spawn(async move {
        let snapshot = queue.poll(wake(Duration::from_secs(20))).await;
        (snapshot, Instant::now())
    });
    wait_blocked(&mut observer, 1).await;
    let added_at = Instant::now();
    let first: String = run(&mut producer, &["XADD", "events", "*", "n", "1"]).await;
    let second: String = run(&mut producer, &["XADD", "events", "*", "n", "2"]).await;
    let (snapshot, woke_at) = poll.await.unwrap();
    assert!(woke_at.duration_since(added_at) < Duration::from_secs(1));
    assert!(snapshot.unwrap().messages() >= 1);
    let groups: redis::Value = run(&mut producer, &["XINFO", "GROUPS", "events"]).await;
    let group = &wpa_redis::reply::groups(&groups).unwrap()[0];
    assert_eq!(
        (group.pending, group.consumers),
        (0, 0),
        "the group was not read"
    );
    let reply: Vec<(String, Entries)> = run(
        &mut producer,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "worker",
            "COUNT",
            "10",
            "STREAMS",
            "events",
            ">",
        ],
    )
    .await;
    let ids: Vec<&str> = reply[0].1.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
}

#[tokio::test]
async fn the_wake_up_times_out_on_an_empty_queue() {
    let server = server();
    for layout in [
        "list/empty",
        "stream/empty?group=g",
        "bullmq/empty",
        "list/empty?wakeup=poll",
    ] {
        let mut queue = queue(&server, layout);
        let started = Instant::now();
        let snapshot = queue.poll(wake(Duration::from_millis(700))).await.unwrap();
        let waited = started.elapsed();
        assert_eq!(snapshot.messages(), 0, "{layout}");
        assert!(
            waited >= Duration::from_millis(650) && waited < Duration::from_secs(2),
            "{layout}: {waited:?}"
        );
    }
}

/// Layouts on several keys poll the snapshot every 200 ms instead.
#[tokio::test]
async fn the_polling_wake_up_sees_a_bullmq_job_within_the_interval() {
    let server = server();
    let mut producer = client(&server).await;
    let mut queue = queue(&server, "bullmq/emails");
    let poll = tokio::spawn(async move {
        let snapshot = queue.poll(wake(Duration::from_secs(20))).await;
        (snapshot, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let added_at = Instant::now();
    // A prioritized job: in the sorted set, not in the wait list.
    let _: i64 = run(
        &mut producer,
        &["ZADD", "bull:emails:prioritized", "1", "1"],
    )
    .await;
    let (snapshot, woke_at) = poll.await.unwrap();
    assert!(woke_at.duration_since(added_at) < Duration::from_millis(500));
    assert_eq!(snapshot.unwrap().messages(), 1);
    let left: u64 = run(&mut producer, &["ZCARD", "bull:emails:prioritized"]).await;
    assert_eq!(left, 1);
}

/// The poller cancels a wake-up when the target scales up: the blocked
/// connection is dropped (the server stops blocking) and the next poll
/// works at once.
#[tokio::test]
async fn a_cancelled_wake_up_does_not_hold_the_next_poll() {
    let server = server();
    let mut observer = client(&server).await;
    let mut queue = queue(&server, "list/jobs");
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        queue.poll(wake(Duration::from_secs(20))),
    )
    .await;
    assert!(cancelled.is_err(), "the wake-up should still block");
    let mut producer = client(&server).await;
    let _: i64 = run(&mut producer, &["LPUSH", "jobs", "a"]).await;
    let started = Instant::now();
    assert_eq!(
        queue
            .poll(wake(Duration::from_secs(20)))
            .await
            .unwrap()
            .messages(),
        1
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    wait_blocked(&mut observer, 0).await;
    let contents: Vec<String> = run(&mut producer, &["LRANGE", "jobs", "0", "-1"]).await;
    assert_eq!(contents, ["a"]);
}

#[tokio::test]
async fn the_database_in_the_uri_is_selected() {
    let server = server();
    let mut conn = client(&server).await;
    let _: () = run(&mut conn, &["SELECT", "3"]).await;
    let _: i64 = run(&mut conn, &["LPUSH", "jobs", "a", "b"]).await;
    assert_eq!(
        queue(&server, "3/list/jobs")
            .snapshot()
            .await
            .unwrap()
            .messages(),
        2
    );
    assert_eq!(
        queue(&server, "list/jobs")
            .snapshot()
            .await
            .unwrap()
            .messages(),
        0
    );
}

#[tokio::test]
async fn wrong_credentials_are_an_auth_error() {
    let server = server();
    let mut conn = client(&server).await;
    let () = run(
        &mut conn,
        &["ACL", "SETUSER", "wpa", "on", ">right", "~*", "+@all"],
    )
    .await;
    let uri = format!("redis://wpa:wrong@127.0.0.1:{}/list/jobs", server.port());
    let started = Instant::now();
    let error = queue_at(&uri).snapshot().await.unwrap_err();
    assert!(matches!(error, Error::Auth { .. }), "{error:?}");
    assert!(!error.to_string().contains("wrong"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(1), "not retried");
    let uri = format!("redis://wpa:right@127.0.0.1:{}/list/jobs", server.port());
    assert_eq!(queue_at(&uri).snapshot().await.unwrap().messages(), 0);
}

#[tokio::test]
async fn recovers_from_a_server_restart() {
    let mut server = server();
    let mut queue = queue(&server, "list/restart");
    let mut stream = self::queue(&server, "stream/s?group=g");
    let mut producer = client(&server).await;
    let _: i64 = run(&mut producer, &["LPUSH", "restart", "a"]).await;
    assert_eq!(queue.poll(SHORT).await.unwrap().messages(), 1);
    assert_eq!(stream.poll(SHORT).await.unwrap().messages(), 0);

    server.stop();
    let started = Instant::now();
    let error = queue.poll(SHORT).await.unwrap_err();
    assert!(
        matches!(error, Error::Connect { .. } | Error::Connection { .. }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no hang while down"
    );
    let error = queue.poll(SHORT).await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    assert!(stream.poll(wake(Duration::from_secs(1))).await.is_err());

    server.restart().unwrap();
    // The server lost its data (no persistence): the list is empty again.
    assert_eq!(queue.poll(SHORT).await.unwrap().messages(), 0);
    let mut producer = client(&server).await;
    let _: i64 = run(&mut producer, &["LPUSH", "restart", "b"]).await;
    assert_eq!(queue.poll(SHORT).await.unwrap().messages(), 1);
    assert_eq!(queue.connects(), 2, "one connection, then one reconnect");
    // The wake-up connection recovers too.
    let _: String = run(&mut producer, &["XADD", "s", "*", "n", "1"]).await;
    let mut snapshot = Err(());
    for _ in 0..3 {
        snapshot = queue
            .poll(wake(Duration::from_secs(2)))
            .await
            .map_err(|_| ());
        if snapshot.is_ok() {
            break;
        }
    }
    assert_eq!(snapshot.unwrap().messages(), 1);
    assert_eq!(
        stream
            .poll(wake(Duration::from_secs(2)))
            .await
            .unwrap()
            .messages(),
        1
    );
}

#[tokio::test]
async fn the_poller_recovers_after_a_restart_and_marks_stale_while_down() {
    let mut server = server();
    let uri = server.uri("list/polled");
    let mut config = PollerConfig::new(Duration::from_millis(100), Duration::from_secs(1));
    config.stale_after = Duration::from_millis(300);
    let registry = Registry::new();
    let source: RedisQueue = queue_at(&uri);
    let mut subscription = registry
        .subscribe(&uri, config, Some(1), || Ok::<_, Error>(source))
        .unwrap();
    subscription.changed().await.unwrap();
    assert_eq!(subscription.latest().unwrap().messages(), 0);

    server.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !subscription.latest().unwrap().is_stale() {
        assert!(Instant::now() < deadline, "never marked stale");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(subscription.observation().last_error.is_some());

    server.restart().unwrap();
    let mut producer = client(&server).await;
    let _: i64 = run(&mut producer, &["LPUSH", "polled", "x"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let latest = subscription.latest().unwrap();
        if !latest.is_stale() && latest.messages() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "poller did not recover: {latest:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// End to end at zero replicas: the poller's wake-up poll publishes the
/// first message within 1 s.
#[tokio::test]
async fn the_poller_wakes_up_from_zero_within_a_second() {
    let server = server();
    let uri = server.uri("stream/jobs?group=g");
    let mut conn = client(&server).await;
    let _: () = run(
        &mut conn,
        &["XGROUP", "CREATE", "jobs", "g", "$", "MKSTREAM"],
    )
    .await;
    let registry = Registry::new();
    let source = queue_at(&uri);
    let mut subscription = registry
        .subscribe(&uri, PollerConfig::default(), Some(0), || {
            Ok::<_, Error>(source)
        })
        .unwrap();
    subscription.changed().await.unwrap();
    assert_eq!(subscription.latest().unwrap().messages(), 0);
    wait_blocked(&mut conn, 1).await;
    let added_at = Instant::now();
    let _: String = run(&mut conn, &["XADD", "jobs", "*", "n", "1"]).await;
    tokio::time::timeout(Duration::from_secs(1), subscription.changed())
        .await
        .expect("no snapshot within 1 s")
        .unwrap();
    assert!(added_at.elapsed() < Duration::from_secs(1));
    assert_eq!(subscription.latest().unwrap().messages(), 1);
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn rediss_without_the_tls_feature_says_so() {
    let error = queue_at("rediss://127.0.0.1:1/list/jobs")
        .snapshot()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::TlsUnavailable { .. }), "{error:?}");
    assert!(error.to_string().contains("`tls` feature"), "{error}");
}

/// Another listener on the port (another test's server, taken between the
/// pick of a free port and the bind) is not taken for this Redis: it fails
/// to bind and says so.
#[test]
fn a_port_held_by_another_listener_is_not_mistaken_for_the_server() {
    let mut server = server();
    server.stop();
    let holder = std::net::TcpListener::bind(("127.0.0.1", server.port())).unwrap();
    let error = server.restart().unwrap_err();
    assert!(error.to_string().contains("exited at start"), "{error}");
    drop(holder);
    server.restart().unwrap();
}
