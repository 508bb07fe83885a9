//! The fuzz targets' bodies, driven by proptest's random bytes, so that
//! `cargo test` runs what `cargo fuzz` runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::collection::vec;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn spec_validation(data in vec(any::<u8>(), 0..128)) {
        wpa_fuzz_targets::spec_validation(&data);
    }

    #[test]
    fn decision(data in vec(any::<u8>(), 0..160)) {
        wpa_fuzz_targets::decision(&data);
    }

    #[test]
    fn policy_decision(data in vec(any::<u8>(), 0..200)) {
        wpa_fuzz_targets::policy_decision(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn beanstalkd_reply(data in vec(any::<u8>(), 0..512)) {
        wpa_fuzz_targets::beanstalkd_reply(&data);
    }

    /// Bytes shaped like replies, so the split check meets real replies.
    #[test]
    fn beanstalkd_reply_like(
        lines in vec(
            "(OK [0-9]{1,3}|RESERVED [0-9]{1,4} [0-9]{1,2}|INSERTED [0-9]{1,5}|TIMED_OUT|DEADLINE_SOON)\r\n[a-z]{0,12}\r\n",
            0..6,
        ),
        cut in any::<u8>(),
    ) {
        let mut data = vec![cut];
        data.extend(lines.concat().into_bytes());
        wpa_fuzz_targets::beanstalkd_reply(&data);
    }

    #[test]
    fn sqs_queue_url(data in vec(any::<u8>(), 0..200)) {
        wpa_fuzz_targets::sqs_queue_url(&data);
    }

    /// Text shaped like queue URLs, so that some parse.
    #[test]
    fn sqs_queue_url_like(
        scheme in "https?://",
        host in "(sqs\\.[a-z]{2}-[a-z]{4,9}-[0-9]|queue|vpce-[a-z0-9]{4}\\.sqs\\.us-east-1\\.vpce|localhost:4566)\\.amazonaws\\.com(\\.cn)?",
        account in "[0-9]{12}",
        name in "[A-Za-z0-9_-]{1,12}(\\.fifo)?",
    ) {
        let text = format!("{scheme}{host}/{account}/{name}");
        wpa_fuzz_targets::sqs_queue_url(text.as_bytes());
    }
}
