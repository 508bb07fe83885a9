//! Decoding any bytes as a JetStream CONSUMER.INFO (and STREAM.INFO,
//! STREAM.MSG.GET) reply never panics; an accepted reply makes a snapshot
//! of num_pending + num_ack_pending messages, num_ack_pending in flight,
//! or a typed "too large" error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_nats::fuzz::consumer_info(data));
