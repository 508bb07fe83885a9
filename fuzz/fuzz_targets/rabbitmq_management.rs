//! A RabbitMQ management queue reply (`GET /api/queues/{vhost}/{name}`)
//! never makes the parser or the snapshot panic, and a parsed reply gives
//! numbers that agree: in flight at most the messages, idle consumers only
//! when nothing is ready and never more than the consumers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_rabbitmq::fuzzing::management_reply(data));
