//! The examples are this package's example targets: `cargo run -p
//! wpa-examples --example <name>`. This library is empty.
