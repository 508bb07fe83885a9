//! The decision of the policy the spec selects (wait target included)
//! never panics and stays within its bounds.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_fuzz_targets::policy_decision(data));
