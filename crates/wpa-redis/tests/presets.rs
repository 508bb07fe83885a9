//! The framework layouts against a real `redis-server`: each fixture
//! writes the keys the way the framework does (the commands are the ones
//! in its source, cited per fixture), then the adapter reads them. Also
//! the documented ACL rules and the documented calls per poll.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use redis::aio::MultiplexedConnection;
use wpa_core::{Idleness, QueueMetrics};
use wpa_poller::{PollRequest, QueueSource};
use wpa_redis::Error;
use wpa_redis::testing::RedisServer;

const AGED: PollRequest = PollRequest {
    oldest_age: true,
    ..SHORT
};

/// kombu's `Channel._put`: `LPUSH <queue>[\x06\x16<step>] <message>`;
/// `QoS.append` on delivery: `ZADD unacked_index <now> <tag>` and `HSET
/// unacked <tag> <[message, exchange, routing_key]>` (all keys behind
/// `global_keyprefix`).
async fn celery_fixture(conn: &mut MultiplexedConnection, prefix: &str) {
    let message = r#"{"body": "e30=", "headers": {"task": "tasks.add"}, "properties": {"priority": 0, "delivery_tag": "t1"}}"#;
    let _: i64 = run(conn, &["LPUSH", &format!("{prefix}celery"), message]).await;
    let _: i64 = run(conn, &["LPUSH", &format!("{prefix}celery"), message]).await;
    let _: i64 = run(
        conn,
        &["LPUSH", &format!("{prefix}celery\x06\x163"), message],
    )
    .await;
    let _: i64 = run(
        conn,
        &["LPUSH", &format!("{prefix}celery\x06\x169"), message],
    )
    .await;
    // A worker's BRPOP takes one (priority 0 first) and QoS records it.
    let (_, taken): (String, String) = run(
        conn,
        &[
            "BRPOP",
            &format!("{prefix}celery"),
            &format!("{prefix}celery\x06\x163"),
            "1",
        ],
    )
    .await;
    let _: i64 = run(
        conn,
        &[
            "ZADD",
            &format!("{prefix}unacked_index"),
            "1700000000.5",
            "t1",
        ],
    )
    .await;
    let record = format!(r#"[{taken}, "celery", "celery"]"#);
    let _: i64 = run(conn, &["HSET", &format!("{prefix}unacked"), "t1", &record]).await;
    // Another queue's message is not counted as waiting.
    let _: i64 = run(conn, &["LPUSH", &format!("{prefix}other"), message]).await;
}

#[tokio::test]
async fn celery_counts_every_priority_list_and_the_unacked_hash() {
    let server = server();
    let mut conn = client(&server).await;
    celery_fixture(&mut conn, "").await;
    let s = queue(&server, "celery").poll(SHORT).await.unwrap();
    assert_eq!(
        (s.messages(), s.in_flight(), s.idleness()),
        (4, Some(1), Idleness::Unknown)
    );
    let s = queue(&server, "celery/celery?unacked=false")
        .poll(SHORT)
        .await
        .unwrap();
    assert_eq!((s.messages(), s.in_flight()), (3, None));
    let s = queue(&server, "celery?priority-steps=0")
        .poll(SHORT)
        .await
        .unwrap();
    assert_eq!(s.messages(), 2, "the base list and the unacked hash only");
    // kombu's global_keyprefix.
    celery_fixture(&mut conn, "app1:").await;
    let s = queue(&server, "celery?prefix=app1:")
        .poll(SHORT)
        .await
        .unwrap();
    assert_eq!((s.messages(), s.in_flight()), (4, Some(1)));
}

/// Sidekiq 8: `Client#raw_push` does `SADD queues <q>` and `LPUSH
/// queue:<q> <job>` (`enqueued_at` in integer ms); `Launcher#❤` every 10 s
/// does, in one MULTI, `UNLINK <identity>:work`, `HSET <identity>:work <tid>
/// {"queue","payload","run_at"}`, `EXPIRE .. 60`, then `SADD processes
/// <identity>`, `HSET <identity> info <json> concurrency busy beat rtt_us
/// quiet rss`, `EXPIRE <identity> 60`.
async fn sidekiq_heartbeat(
    conn: &mut MultiplexedConnection,
    identity: &str,
    queues: &[&str],
    running: &[(&str, &str)],
    beat: f64,
) {
    let info = serde_json::json!({
        "hostname": "worker-0", "started_at": beat, "pid": 1, "tag": "", "concurrency": 5,
        "queues": queues, "weights": [{}], "labels": [], "identity": identity, "version": "8.1.7", "embedded": false,
    })
    .to_string();
    let work = format!("{identity}:work");
    let _: i64 = run(conn, &["UNLINK", &work]).await;
    for (tid, queue) in running {
        let entry = serde_json::json!({"queue": queue, "payload": r#"{"class":"HardJob","args":[]}"#, "run_at": 1}).to_string();
        let _: i64 = run(conn, &["HSET", &work, tid, &entry]).await;
        let _: i64 = run(conn, &["EXPIRE", &work, "60"]).await;
    }
    let _: i64 = run(conn, &["SADD", "processes", identity]).await;
    let busy = running.len().to_string();
    let beat = beat.to_string();
    let _: i64 = run(
        conn,
        &[
            "HSET",
            identity,
            "info",
            &info,
            "concurrency",
            "5",
            "busy",
            &busy,
            "beat",
            &beat,
            "rtt_us",
            "100",
            "quiet",
            "false",
            "rss",
            "1000",
        ],
    )
    .await;
    let _: i64 = run(conn, &["EXPIRE", identity, "60"]).await;
}

#[tokio::test]
async fn sidekiq_counts_the_queue_its_running_jobs_and_idle_processes() {
    let server = server();
    let mut conn = client(&server).await;
    let now = now_ms();
    for i in 0..3_u64 {
        let job = serde_json::json!({
            "class": "HardJob", "args": [i], "queue": "default", "jid": format!("j{i}"),
            "created_at": now - 9000, "enqueued_at": now - 9000 + i * 1000, "retry": true,
        })
        .to_string();
        let _: i64 = run(&mut conn, &["SADD", "queues", "default"]).await;
        let _: i64 = run(&mut conn, &["LPUSH", "queue:default", &job]).await;
    }
    #[allow(clippy::cast_precision_loss)]
    let beat = now as f64 / 1000.0;
    // Busy with one job of this queue and one of another.
    sidekiq_heartbeat(
        &mut conn,
        "worker-0:1:aaa",
        &["default", "mail"],
        &[("t1", "default"), ("t2", "mail")],
        beat,
    )
    .await;
    // Idle, fetching from this queue.
    sidekiq_heartbeat(&mut conn, "worker-1:1:bbb", &["default"], &[], beat).await;
    // Idle, another queue only.
    sidekiq_heartbeat(&mut conn, "worker-2:1:ccc", &["mail"], &[], beat).await;
    // Crashed 40 s ago: its hash lingers, it is not counted idle.
    sidekiq_heartbeat(&mut conn, "worker-3:1:ddd", &["default"], &[], beat - 40.0).await;
    // Gone: still in the set, its hash expired.
    let _: i64 = run(&mut conn, &["SADD", "processes", "worker-4:1:eee"]).await;

    let mut queue = queue(&server, "sidekiq");
    let s = queue.poll(AGED).await.unwrap();
    assert_eq!(
        (s.messages(), s.in_flight(), s.idleness()),
        (4, Some(1), Idleness::Idle(1))
    );
    // Sidekiq's latency: the job at the tail (BRPOP's end), enqueued 9 s ago.
    let age = s.oldest_age().unwrap();
    assert!(
        age >= Duration::from_millis(8_500) && age < Duration::from_secs(11),
        "{age:?}"
    );
    let s = self::queue(&server, "sidekiq/mail")
        .poll(SHORT)
        .await
        .unwrap();
    assert_eq!(
        (s.messages(), s.in_flight(), s.idleness()),
        (1, Some(1), Idleness::Idle(1))
    );
    // Sidekiq 7 and earlier stamp float seconds.
    let old =
        serde_json::json!({"class": "J", "queue": "legacy", "enqueued_at": beat - 5.0}).to_string();
    let _: i64 = run(&mut conn, &["LPUSH", "queue:legacy", &old]).await;
    let age = self::queue(&server, "sidekiq/legacy")
        .poll(AGED)
        .await
        .unwrap()
        .oldest_age()
        .unwrap();
    assert!(
        age >= Duration::from_millis(4_500) && age < Duration::from_secs(7),
        "{age:?}"
    );
}

/// RQ 2.x: `Queue.enqueue_job` writes `HSET rq:job:<id>` (`enqueued_at`
/// as `%Y-%m-%dT%H:%M:%S.%fZ`) and `RPUSH rq:queue:<q> <id>`; a worker
/// registers with `SADD rq:workers:<q> rq:worker:<name>` and `HSET
/// rq:worker:<name> state idle`, takes a job with `BLMOVE rq:queue:<q>
/// rq:queue:<q>:intermediate LEFT RIGHT`, then `ZADD rq:wip:<q> <expiry>
/// <id>:<execution>`, `LREM` from the intermediate list and `state busy`.
#[tokio::test]
async fn rq_counts_the_queue_the_started_registry_and_idle_workers() {
    let server = server();
    let mut conn = client(&server).await;
    let now = now_ms() / 1000;
    for (id, age) in [("j1", 12), ("j2", 6), ("j3", 1)] {
        let stamp = rq_stamp(now - age);
        let _: i64 = run(
            &mut conn,
            &[
                "HSET",
                &format!("rq:job:{id}"),
                "status",
                "queued",
                "enqueued_at",
                &stamp,
            ],
        )
        .await;
        let _: i64 = run(&mut conn, &["RPUSH", "rq:queue:default", id]).await;
    }
    for (worker, state) in [
        ("w1", "idle"),
        ("w2", "busy"),
        ("w3", "busy"),
        ("w4", "suspended"),
    ] {
        let key = format!("rq:worker:{worker}");
        let _: i64 = run(&mut conn, &["SADD", "rq:workers", &key]).await;
        let _: i64 = run(&mut conn, &["SADD", "rq:workers:default", &key]).await;
        let _: i64 = run(
            &mut conn,
            &["HSET", &key, "state", state, "queues", "default"],
        )
        .await;
    }
    // A dead worker still registered, its hash expired.
    let _: i64 = run(&mut conn, &["SADD", "rq:workers:default", "rq:worker:gone"]).await;
    // w2 took j1 and started it; w3 moved j2 and has not registered it yet.
    let taken: String = run(
        &mut conn,
        &[
            "BLMOVE",
            "rq:queue:default",
            "rq:queue:default:intermediate",
            "LEFT",
            "RIGHT",
            "1",
        ],
    )
    .await;
    assert_eq!(taken, "j1");
    let _: i64 = run(
        &mut conn,
        &["ZADD", "rq:wip:default", &(now + 480).to_string(), "j1:e1"],
    )
    .await;
    let _: i64 = run(
        &mut conn,
        &["LREM", "rq:queue:default:intermediate", "1", "j1"],
    )
    .await;
    let _: String = run(
        &mut conn,
        &[
            "BLMOVE",
            "rq:queue:default",
            "rq:queue:default:intermediate",
            "LEFT",
            "RIGHT",
            "1",
        ],
    )
    .await;
    // An abandoned entry (expired score): RQ's cleanup would remove it.
    let _: i64 = run(
        &mut conn,
        &["ZADD", "rq:wip:default", &(now - 100).to_string(), "j0:e0"],
    )
    .await;
    // A job with no timeout (score +inf).
    let _: i64 = run(&mut conn, &["ZADD", "rq:wip:default", "+inf", "j9:e9"]).await;

    let s = queue(&server, "rq").poll(AGED).await.unwrap();
    assert_eq!(
        (s.messages(), s.in_flight(), s.idleness()),
        (4, Some(3), Idleness::Idle(2)),
        "1 queued + 1 moving + 2 started; w1 idle, w4 suspended"
    );
    // j3 (1 s old), not j2 (6 s) or j1 (12 s). Half a second of slack
    // below: a fresh CI machine's clock may be stepped between the stamp
    // and the poll (seen: 919 ms).
    let age = s.oldest_age().unwrap();
    assert!(
        age >= Duration::from_millis(500) && age < Duration::from_secs(3),
        "j3 is next: {age:?}"
    );
}

fn rq_stamp(unix_s: u64) -> String {
    // Civil date from days (Howard Hinnant's civil_from_days).
    let days = unix_s / 86_400;
    let secs = unix_s % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.123456Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// BullMQ 5/6: `addStandardJob` does `INCR <p>:<q>:id`, `HMSET <p>:<q>:<id>
/// name data opts timestamp delay priority`, `LPUSH <p>:<q>:wait <id>` and
/// `ZADD <p>:<q>:marker 0 0`; `addPrioritizedJob` `ZADD <p>:<q>:prioritized`,
/// `addDelayedJob` `ZADD <p>:<q>:delayed`; a worker's `moveToActive` does
/// `RPOPLPUSH <p>:<q>:wait <p>:<q>:active`.
async fn bullmq_add(
    conn: &mut MultiplexedConnection,
    prefix: &str,
    queue: &str,
    list: &str,
    timestamp: u64,
) -> String {
    let id: i64 = run(conn, &["INCR", &format!("{prefix}:{queue}:id")]).await;
    let id = id.to_string();
    let stamp = timestamp.to_string();
    let _: () = run(
        conn,
        &[
            "HMSET",
            &format!("{prefix}:{queue}:{id}"),
            "name",
            "email",
            "data",
            "{}",
            "opts",
            "{}",
            "timestamp",
            &stamp,
            "delay",
            "0",
            "priority",
            "0",
        ],
    )
    .await;
    match list {
        "wait" => {
            let _: i64 = run(conn, &["LPUSH", &format!("{prefix}:{queue}:wait"), &id]).await;
            let _: i64 = run(
                conn,
                &["ZADD", &format!("{prefix}:{queue}:marker"), "0", "0"],
            )
            .await;
        }
        "prioritized" | "delayed" => {
            let _: i64 = run(
                conn,
                &["ZADD", &format!("{prefix}:{queue}:{list}"), "5", &id],
            )
            .await;
        }
        _ => unreachable!(),
    }
    id
}

#[tokio::test]
async fn bullmq_counts_wait_prioritized_and_active_and_the_id_counter() {
    let server = server();
    let mut conn = client(&server).await;
    let mut queue = queue(&server, "bullmq/emails");
    let s = queue.poll(SHORT).await.unwrap();
    assert_eq!(
        (s.messages(), s.idleness(), s.messages_sent_per_minute()),
        (0, Idleness::AllIdle, None)
    );
    let now = now_ms();
    let first = bullmq_add(&mut conn, "bull", "emails", "wait", now - 8000).await;
    bullmq_add(&mut conn, "bull", "emails", "wait", now - 3000).await;
    bullmq_add(&mut conn, "bull", "emails", "wait", now - 1000).await;
    bullmq_add(&mut conn, "bull", "emails", "prioritized", now).await;
    bullmq_add(&mut conn, "bull", "emails", "delayed", now).await;
    let active: String = run(
        &mut conn,
        &["RPOPLPUSH", "bull:emails:wait", "bull:emails:active"],
    )
    .await;
    assert_eq!(active, first);
    let s = queue.poll(AGED).await.unwrap();
    assert_eq!(
        (s.messages(), s.in_flight(), s.idleness()),
        (4, Some(1), Idleness::Unknown),
        "2 wait + 1 prioritized + 1 active; the delayed one is not ready"
    );
    // 5 jobs added (the id counter) since the first poll.
    assert_eq!(s.messages_sent_per_minute(), Some(5.0));
    let age = s.oldest_age().unwrap();
    assert!(
        age >= Duration::from_millis(2_500) && age < Duration::from_secs(5),
        "the next job is the second: {age:?}"
    );
    // Another prefix.
    bullmq_add(&mut conn, "myapp", "emails", "wait", now).await;
    assert_eq!(
        self::queue(&server, "bullmq/emails?prefix=myapp")
            .snapshot()
            .await
            .unwrap()
            .messages(),
        1
    );
}

/// A wake-up on each framework's list leaves it as the framework wrote it.
#[tokio::test]
async fn framework_wake_ups_leave_the_lists_alone() {
    let server = server();
    let mut conn = client(&server).await;
    for (layout, list, push) in [
        ("sidekiq", "queue:default", "LPUSH"),
        ("rq", "rq:queue:default", "RPUSH"),
        ("celery?priority-steps=0", "celery", "LPUSH"),
        ("celery", "celery\x06\x166", "LPUSH"),
    ] {
        let mut queue = queue(&server, layout);
        let poll = tokio::spawn(async move { queue.poll(wake(Duration::from_secs(10))).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _: i64 = run(&mut conn, &[push, list, "a", "b", "c"]).await;
        let snapshot = tokio::time::timeout(Duration::from_secs(1), poll)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(snapshot.messages(), 3, "{layout}");
        let contents: Vec<String> = run(&mut conn, &["LRANGE", list, "0", "-1"]).await;
        let expected: Vec<&str> = if push == "LPUSH" {
            vec!["c", "b", "a"]
        } else {
            vec!["a", "b", "c"]
        };
        assert_eq!(contents, expected, "{layout}");
        let _: i64 = run(&mut conn, &["DEL", list]).await;
    }
}

/// The ACL rules the README lists are enough for every poll of a layout
/// (short, with the age, wake-up); without `+blmove` a blocking wake-up is
/// a permission error that names the command.
#[tokio::test]
async fn the_documented_acl_rules_are_enough() {
    let server = server();
    let mut conn = client(&server).await;
    celery_fixture(&mut conn, "").await;
    let _: i64 = run(&mut conn, &["LPUSH", "jobs", "a"]).await;
    let _: () = run(
        &mut conn,
        &["XGROUP", "CREATE", "events", "g", "$", "MKSTREAM"],
    )
    .await;
    let _: String = run(&mut conn, &["XADD", "events", "*", "n", "1"]).await;
    sidekiq_heartbeat(&mut conn, "worker-0:1:aaa", &["default"], &[], 1.0).await;
    let _: i64 = run(
        &mut conn,
        &["LPUSH", "queue:default", r#"{"enqueued_at":1}"#],
    )
    .await;
    let _: i64 = run(&mut conn, &["SADD", "rq:workers:default", "rq:worker:w1"]).await;
    let _: i64 = run(&mut conn, &["HSET", "rq:worker:w1", "state", "idle"]).await;
    let _: i64 = run(&mut conn, &["RPUSH", "rq:queue:default", "j1"]).await;
    bullmq_add(&mut conn, "bull", "emails", "wait", 1).await;
    // The rules of the README, per layout.
    let cases: [(&str, &str); 6] = [
        (
            "list/jobs?processing=jobs:processing",
            "+llen +blmove %RW~jobs %R~jobs:processing",
        ),
        (
            "stream/events?group=g",
            "+xinfo|stream +xinfo|groups +xinfo|consumers +xrange +xread +time %R~events",
        ),
        ("celery", "+llen +hlen %R~celery* %R~unacked"),
        (
            "sidekiq",
            "+llen +smembers +hmget +hvals +lindex +blmove %RW~queue:default %R~processes %R~*",
        ),
        (
            "rq",
            "+llen +zcount +smembers +hget +lindex +blmove %RW~rq:queue:default %R~rq:queue:default:intermediate %R~rq:wip:default %R~rq:workers:default %R~rq:worker:* %R~rq:job:*",
        ),
        (
            "bullmq/emails",
            "+llen +zcard +get +lindex +hget %R~bull:emails:*",
        ),
    ];
    for (i, (layout, rules)) in cases.iter().enumerate() {
        let user = format!("wpa{i}");
        let mut args = vec!["ACL", "SETUSER", user.as_str(), "reset", "on", ">pw"];
        args.extend(rules.split(' '));
        let () = run(&mut conn, &args).await;
        let uri = format!("redis://{user}:pw@127.0.0.1:{}/{layout}", server.port());
        let mut queue = queue_at(&uri);
        queue
            .poll(AGED)
            .await
            .unwrap_or_else(|e| panic!("{layout}: {e}"));
        queue
            .poll(SHORT)
            .await
            .unwrap_or_else(|e| panic!("{layout}: {e}"));
        queue
            .poll(wake(Duration::from_millis(300)))
            .await
            .unwrap_or_else(|e| panic!("{layout} wake-up: {e}"));
    }
    // Read-only: a blocking wake-up is refused, wakeup=poll is not.
    let () = run(
        &mut conn,
        &[
            "ACL", "SETUSER", "reader", "reset", "on", ">pw", "+llen", "%R~empty",
        ],
    )
    .await;
    let uri = format!("redis://reader:pw@127.0.0.1:{}/list/empty", server.port());
    let error = queue_at(&uri)
        .poll(wake(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Permission {
                command: "BLMOVE",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("README"), "{error}");
    let uri = format!(
        "redis://reader:pw@127.0.0.1:{}/list/empty?wakeup=poll",
        server.port()
    );
    queue_at(&uri)
        .poll(wake(Duration::from_millis(300)))
        .await
        .unwrap();
}

async fn calls_of(
    server: &RedisServer,
    conn: &mut MultiplexedConnection,
    layout: &str,
    request: PollRequest,
) -> Vec<(String, u64)> {
    let mut queue = queue(server, layout);
    // Connect first, so that the handshake is not counted.
    queue.poll(SHORT).await.unwrap();
    let before = command_calls(conn).await;
    queue.poll(request).await.unwrap();
    let after = command_calls(conn).await;
    calls_between(&before, &after).into_iter().collect()
}

fn calls(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    let mut calls: Vec<(String, u64)> = expected
        .iter()
        .map(|(c, n)| ((*c).to_owned(), *n))
        .collect();
    calls.sort();
    calls
}

/// The calls per poll the README lists, counted by the server itself.
#[tokio::test]
async fn calls_per_poll_are_as_documented() {
    let server = server();
    let mut conn = client(&server).await;
    let _: () = run(
        &mut conn,
        &["XGROUP", "CREATE", "events", "g", "$", "MKSTREAM"],
    )
    .await;
    let xinfo = [
        ("xinfo|stream", 1),
        ("xinfo|groups", 1),
        ("xinfo|consumers", 1),
    ];
    assert_eq!(
        calls_of(&server, &mut conn, "list/jobs", SHORT).await,
        calls(&[("llen", 1)])
    );
    assert_eq!(
        calls_of(
            &server,
            &mut conn,
            "list/jobs?processing=a&processing=b",
            SHORT
        )
        .await,
        calls(&[("llen", 3)])
    );
    assert_eq!(
        calls_of(&server, &mut conn, "stream/events?group=g", SHORT).await,
        calls(&xinfo)
    );
    assert_eq!(
        calls_of(&server, &mut conn, "celery", SHORT).await,
        calls(&[("llen", 4), ("hlen", 1)])
    );
    assert_eq!(
        calls_of(&server, &mut conn, "sidekiq", SHORT).await,
        calls(&[("llen", 1), ("smembers", 1)])
    );
    assert_eq!(
        calls_of(&server, &mut conn, "rq", SHORT).await,
        calls(&[("llen", 2), ("zcount", 1), ("smembers", 1)])
    );
    assert_eq!(
        calls_of(&server, &mut conn, "bullmq/emails", SHORT).await,
        calls(&[("llen", 3), ("zcard", 1), ("get", 1)])
    );
    // Wake-ups that time out: the blocking command and one read after it
    // (a stream reads before too); polling reads every 200 ms.
    let short_wake = wake(Duration::from_millis(300));
    assert_eq!(
        calls_of(&server, &mut conn, "list/jobs", short_wake).await,
        calls(&[("blmove", 1), ("llen", 1)])
    );
    assert_eq!(
        calls_of(&server, &mut conn, "stream/events?group=g", short_wake).await,
        calls(&[
            ("xinfo|stream", 2),
            ("xinfo|groups", 2),
            ("xinfo|consumers", 2),
            ("xread", 1)
        ])
    );
    // Probes of wait, paused and prioritized at 0, 200 and 300 ms (the
    // deadline; two if the machine is slow), then one read.
    let bullmq: std::collections::BTreeMap<String, u64> =
        calls_of(&server, &mut conn, "bullmq/emails", short_wake)
            .await
            .into_iter()
            .collect();
    let probes = bullmq["zcard"] - 1;
    assert!((2..=3).contains(&probes), "{bullmq:?}");
    assert_eq!(bullmq["llen"], 2 * probes + 3, "{bullmq:?}");
    assert_eq!((bullmq["get"], bullmq.len()), (1, 3), "{bullmq:?}");
    // Busy: per-worker reads for Sidekiq and RQ.
    sidekiq_heartbeat(&mut conn, "w0:1:a", &["default"], &[], 1.0).await;
    sidekiq_heartbeat(&mut conn, "w1:1:b", &["default"], &[("t", "default")], 1.0).await;
    assert_eq!(
        calls_of(&server, &mut conn, "sidekiq", SHORT).await,
        calls(&[("llen", 1), ("smembers", 1), ("hmget", 2), ("hvals", 2)])
    );
    let _: i64 = run(
        &mut conn,
        &["SADD", "rq:workers:default", "rq:worker:w1", "rq:worker:w2"],
    )
    .await;
    assert_eq!(
        calls_of(&server, &mut conn, "rq", SHORT).await,
        calls(&[("llen", 2), ("zcount", 1), ("smembers", 1), ("hget", 2)])
    );
    // The age, when asked and messages wait.
    let _: String = run(&mut conn, &["XADD", "events", "*", "n", "1"]).await;
    assert_eq!(
        calls_of(&server, &mut conn, "stream/events?group=g", AGED).await,
        calls(&[
            ("xinfo|stream", 1),
            ("xinfo|groups", 1),
            ("xinfo|consumers", 1),
            ("time", 1),
            ("xrange", 1)
        ])
    );
}
