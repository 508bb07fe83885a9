//! The Redis reply decoders (XINFO, XRANGE, TIME, Sidekiq's heartbeat and
//! work hashes, RQ and Sidekiq timestamps) never panic on any reply
//! redis-rs' parser accepts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wpa_redis::fuzzing::reply(data));
