//! The fuzz targets' bodies, driven by proptest's random bytes, so that
//! `cargo test` runs what `cargo fuzz` runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::collection::vec;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn spec_validation(data in vec(any::<u8>(), 0..128)) {
        wpa_fuzz_targets::spec_validation(&data);
    }

    #[test]
    fn decision(data in vec(any::<u8>(), 0..160)) {
        wpa_fuzz_targets::decision(&data);
    }
}
