//! Redis queue URI parsing never panics; what it accepts prints back to the
//! same URI without its password, and what it refuses says why on one line.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_redis::fuzzing::uri(data));
