//! The beanstalkd reply parser never panics on any bytes, and bytes split
//! anywhere decode exactly as the whole (same replies, same failure).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_fuzz_targets::beanstalkd_reply(data));
