//! SQS queue URL parsing never panics, and what it accepts is consistent:
//! an AWS URL has a region, a custom one only passes with an endpoint
//! override, and an override never changes the region of an AWS URL.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_fuzz_targets::sqs_queue_url(data));
