//! RabbitMQ queue URI parsing never panics, and what it accepts is
//! consistent: names of 1 to 255 bytes, the URI printed with its password
//! parses back to itself, the one printed for logs hides the password.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_rabbitmq::fuzzing::uri(data));
