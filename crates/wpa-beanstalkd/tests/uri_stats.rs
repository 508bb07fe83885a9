//! Queue URIs, tube names and stats documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wpa_beanstalkd::{BeanstalkUri, Error, JobStats, Stats, TubeName, TubeStats};

#[test]
fn uri_defaults_and_forms() {
    let cases = [
        (
            "beanstalk://localhost:11300/emails",
            "localhost:11300",
            "emails",
        ),
        ("beanstalk:///emails", "localhost:11300", "emails"),
        ("beanstalk://:11301/emails", "localhost:11301", "emails"),
        (
            "beanstalk://queue.example/emails",
            "queue.example:11300",
            "emails",
        ),
        ("beanstalk://10.0.0.1:/a/b", "10.0.0.1:11300", "a/b"),
        ("beanstalk://[::1]:1234/t", "[::1]:1234", "t"),
        ("beanstalk://[::1]/t", "[::1]:11300", "t"),
    ];
    for (text, address, tube) in cases {
        let uri: BeanstalkUri = text.parse().unwrap();
        assert_eq!(uri.address(), address, "{text}");
        assert_eq!(uri.tube().as_str(), tube, "{text}");
    }
    let uri: BeanstalkUri = "beanstalk://h:5/t".parse().unwrap();
    assert_eq!(uri.to_string(), "beanstalk://h:5/t");
}

#[test]
fn malformed_uris_are_typed_errors() {
    for text in [
        "",
        "beanstalk://",
        "beanstalk://host",
        "beanstalk://host/",
        "beanstalkd://host/t",
        "https://sqs.eu-west-1.amazonaws.com/1/q",
        "beanstalk://host:0/t",
        "beanstalk://host:65536/t",
        "beanstalk://host:-1/t",
        "beanstalk://host:port/t",
        "beanstalk://user@host/t",
        "beanstalk://host/t?x=1",
        "beanstalk://host/t#f",
        "beanstalk://host/with space",
        "beanstalk://host/-dash",
        "beanstalk://[::1/t",
        "beanstalk://[zz]/t",
        "beanstalk://ho st/t",
    ] {
        let error = text.parse::<BeanstalkUri>().unwrap_err();
        assert!(
            matches!(error, Error::InvalidUri { .. } | Error::InvalidTube { .. }),
            "{text}: {error:?}"
        );
        assert!(!error.to_string().contains('\n'));
    }
    let long = format!("beanstalk://h/{}", "a".repeat(201));
    assert!(long.parse::<BeanstalkUri>().is_err());
    assert!(
        format!("beanstalk://h/{}", "a".repeat(200))
            .parse::<BeanstalkUri>()
            .is_ok()
    );
}

#[test]
fn tube_names() {
    for good in ["default", "a", "A-b+c/d;e.f$g_h(i)", "0"] {
        assert!(good.parse::<TubeName>().is_ok(), "{good}");
    }
    for bad in ["", "-a", "a b", "a\r\n", "é", "a:b"] {
        assert!(bad.parse::<TubeName>().is_err(), "{bad:?}");
    }
}

const TUBE: &[u8] = b"---\nname: default\ncurrent-jobs-urgent: 0\ncurrent-jobs-ready: 3\ncurrent-jobs-reserved: 2\ncurrent-jobs-delayed: 1\ncurrent-jobs-buried: 0\ntotal-jobs: 42\ncurrent-using: 1\ncurrent-watching: 4\ncurrent-waiting: 1\ncmd-delete: 0\ncmd-pause-tube: 0\npause: 0\npause-time-left: 0\n";

#[test]
fn tube_stats_parse() {
    let stats = TubeStats::from_stats(&Stats::parse(TUBE).unwrap()).unwrap();
    assert_eq!(
        stats,
        TubeStats {
            ready: 3,
            reserved: 2,
            delayed: 1,
            buried: 0,
            waiting: 1,
            watching: 4,
            total_jobs: 42,
        }
    );
}

#[test]
fn job_stats_parse() {
    let body =
        b"---\nid: 7\ntube: \"emails\"\nstate: ready\npri: 4294967295\nage: 0\ndelay: 0\nttr: 60\n";
    let job = JobStats::from_stats(&Stats::parse(body).unwrap()).unwrap();
    assert_eq!(
        (job.id, job.tube.as_str(), job.priority, job.ttr),
        (7, "emails", u32::MAX, 60)
    );
    let body = b"---\nid: 7\ntube: t\nstate: ready\npri: 4294967296\nttr: 60\n";
    assert!(matches!(
        JobStats::from_stats(&Stats::parse(body).unwrap()),
        Err(Error::InvalidStat { field: "pri", .. })
    ));
}

#[test]
fn stats_errors() {
    assert!(matches!(
        Stats::parse(b"\xff"),
        Err(Error::MalformedStats { .. })
    ));
    assert!(matches!(
        Stats::parse(b"---\n- a\n"),
        Err(Error::MalformedStats { .. })
    ));
    let stats = Stats::parse(b"a: x\n").unwrap();
    assert!(matches!(stats.number("a"), Err(Error::InvalidStat { .. })));
    assert!(matches!(stats.number("b"), Err(Error::MissingStat { .. })));
}
