//! Benchmarks live in this package's bench targets; `cargo bench --bench
//! <name>` from the workspace root runs one. This library is empty.
