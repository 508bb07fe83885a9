//! The one error type of this crate.

/// Why a simulation could not be set up or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A workload or simulation parameter out of range (named, with the value).
    #[error("{what} {problem}")]
    InvalidParameter {
        /// The parameter, as the command line spells it.
        what: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A trace file line that is not `timestamp,count`.
    #[error("trace line {line}: {problem}")]
    Trace {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A trace file could not be read.
    #[error("reading trace {path}: {source}")]
    TraceIo {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The WPA spec was refused by the core.
    #[error("WPA spec: {0}")]
    Spec(#[from] wpa_core::Error),
    /// The core's reconcile step failed (it cannot with the simulated
    /// adapters; kept so that a future change surfaces instead of panicking).
    #[error("reconcile: {0}")]
    Reconcile(String),
    /// A simulated adapter returned a pending future (they are always ready).
    #[error("a simulated adapter future was not ready")]
    NotReady,
    /// The plot could not be drawn or written.
    #[error("plot: {0}")]
    Plot(String),
}

pub(crate) fn invalid(what: &'static str, problem: impl Into<String>) -> SimError {
    SimError::InvalidParameter {
        what,
        problem: problem.into(),
    }
}
