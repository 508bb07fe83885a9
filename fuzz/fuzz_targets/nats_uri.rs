//! NATS queue URI parsing never panics; an accepted URI prints (its secret
//! as `***`) to a string that parses back to it, and a refusal is one line.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_nats::fuzz::uri(data));
