//! Spec validation never panics and what it accepts is consistent.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_fuzz_targets::spec_validation(data));
