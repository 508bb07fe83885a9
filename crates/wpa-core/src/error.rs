//! The one error type of this crate: every way a raw input can be refused.

/// Why a raw spec or queue snapshot was refused.
///
/// Every variant names the field it is about, with the CRD's spelling, so
/// that a message can go straight into a Kubernetes Event or a status
/// condition and tell the user what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required field was absent.
    #[error("{field} is required")]
    Missing {
        /// The field, as spelled in the CRD.
        field: &'static str,
    },

    /// A count or bound below zero.
    #[error("{field} must not be negative, got {value}")]
    Negative {
        /// The field, as spelled in the CRD.
        field: &'static str,
        /// The value given.
        value: i64,
    },

    /// A count or bound above what a Kubernetes int32 field holds.
    #[error("{field} must be at most {max}, got {value}")]
    TooLarge {
        /// The field, as spelled in the CRD.
        field: &'static str,
        /// The value given.
        value: i64,
        /// The largest value accepted.
        max: i64,
    },

    /// `targetMessagesPerWorker` below 1 (the reference divides by it).
    #[error("targetMessagesPerWorker must be at least 1, got {value}")]
    TargetMessagesPerWorkerTooSmall {
        /// The value given.
        value: i64,
    },

    /// A rate or a time that is NaN, infinite or negative.
    #[error("{field} must be a finite number >= 0, got {value}")]
    InvalidNumber {
        /// The field, as spelled in the CRD.
        field: &'static str,
        /// The value given.
        value: f64,
    },

    /// A time outside the range its field accepts.
    #[error("{field} must be {range} seconds, got {value}")]
    OutOfRange {
        /// The field, as spelled in the CRD.
        field: &'static str,
        /// The value given.
        value: f64,
        /// The range accepted, in words.
        range: &'static str,
    },

    /// `targetWaitSeconds` without `secondsToProcessOneJob`.
    #[error(
        "targetWaitSeconds needs secondsToProcessOneJob (> 0): the wait-target policy sizes the pool from how long a job takes"
    )]
    WaitTargetNeedsJobTime,

    /// A `maxDisruption` that is neither a count nor a percentage.
    #[error(
        "maxDisruption {value:?} is not a whole number of pods (\"2\") or a whole percentage (\"25%\")"
    )]
    UnparsableMaxDisruption {
        /// The string given.
        value: String,
    },

    /// A `maxDisruption` below zero (the reference turns it into a scale up).
    #[error("maxDisruption {value:?} must not be negative")]
    NegativeMaxDisruption {
        /// The string given.
        value: String,
    },

    /// A `maxDisruption` above what a Kubernetes int32 holds.
    #[error("maxDisruption {value:?} must be at most 2147483647 (pods or percent)")]
    MaxDisruptionTooLarge {
        /// The string given.
        value: String,
    },

    /// `queueMessages` of -1: the reference's "not polled yet" marker.
    #[error("queueMessages is -1: the queue has not been polled yet, so no decision is taken")]
    QueueNotSynced,
}
