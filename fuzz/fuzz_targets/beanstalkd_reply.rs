//! The beanstalkd reply parser never panics on any bytes, and bytes split
//! anywhere decode exactly as the whole (same replies, same failure).
#![no_main]

use wpa_beanstalkd::{Reply, ReplyDecoder, Stats, parse_reply};

/// Replies decoded from `data` pushed in two pieces cut at `cut`, and
/// whether an error stopped decoding.
fn decode(data: &[u8], cut: usize) -> (Vec<Reply>, bool) {
    let mut decoder = ReplyDecoder::default();
    let mut replies = Vec::new();
    for piece in [&data[..cut], &data[cut..]] {
        decoder.push(piece);
        loop {
            match decoder.next_reply() {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => break,
                Err(_) => return (replies, true),
            }
        }
    }
    (replies, false)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = parse_reply(data) {
        assert!(used <= data.len());
    }
    let whole = decode(data, data.len());
    let cut = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    assert_eq!(decode(data, cut), whole);
    let _ = Stats::parse(data);
});
