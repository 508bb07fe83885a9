//! SQS queue URL parsing never panics, and what it accepts is consistent:
//! an AWS URL has a region, a custom one only passes with an endpoint
//! override, and an override never changes the region of an AWS URL.
#![no_main]

use wpa_sqs::{QueueUrl, UrlForm};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
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
        assert_eq!(lenient.as_ref().ok(), Some(url), "an override accepts every AWS URL unchanged");
    }
    if let Ok(url) = &lenient {
        assert_eq!(url.region().is_none(), url.form() == UrlForm::Custom);
        if url.form() == UrlForm::Custom {
            assert!(strict.is_err());
        }
    }
});
