//! The decision never panics and stays within its bounds.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_fuzz_targets::decision(data));
