//! Where messages come from: a rate over time and how arrivals scatter
//! around it. Arrivals depend only on the seed, never on the policy, so
//! every policy of a comparison sees the very same messages.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::{SimError, invalid};
use crate::random::poisson;
use crate::service::ServiceTime;

/// Arrival rate over time, in messages per second.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RateShape {
    /// The same rate throughout.
    Constant {
        /// Messages per second.
        per_second: f64,
    },
    /// `base`, then `burst` during `[start_s, start_s + duration_s)`.
    StepBurst {
        /// Messages per second outside the burst.
        base: f64,
        /// Messages per second during the burst.
        burst: f64,
        /// When the burst starts, seconds from the start.
        start_s: f64,
        /// How long it lasts, seconds.
        duration_s: f64,
    },
    /// A day-like sine: `mean * (1 + amplitude * cos(2 pi (t - peak_s) / period_s))`.
    Diurnal {
        /// Mean messages per second.
        mean: f64,
        /// Relative swing, 0 to 1.
        amplitude: f64,
        /// Period, seconds (a day: 86,400).
        period_s: f64,
        /// Time of the peak, seconds from the start.
        peak_s: f64,
    },
    /// `base`, plus spikes of `spike` messages per second lasting
    /// `duration_s`, starting as a Poisson process every `mean_gap_s` on
    /// average (the schedule comes from the seed).
    RandomSpikes {
        /// Messages per second between spikes.
        base: f64,
        /// Messages per second during a spike.
        spike: f64,
        /// Mean seconds between spike starts.
        mean_gap_s: f64,
        /// Seconds each spike lasts.
        duration_s: f64,
    },
    /// A recorded trace: each row's count spread evenly until the next row.
    Trace(Trace),
}

/// A recorded workload: rows of `timestamp,count`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// `(start_s, end_s, messages)` per row, from 0, sorted, contiguous.
    #[serde(skip)]
    pub rows: Vec<(f64, f64, f64)>,
    /// Messages in the whole trace.
    pub total_messages: f64,
    /// Seconds from the first row to the end of the last.
    pub duration_s: f64,
}

impl Trace {
    /// Parses CSV text: one `timestamp,count` per line, timestamps in
    /// seconds (any origin; epoch seconds are fine), increasing; an optional
    /// header line, blank lines and `#` comments are skipped. Each row's
    /// count arrives spread evenly until the next row's timestamp; the last
    /// row spans the previous gap (1 s for a single row).
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let mut points: Vec<(f64, f64)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem: String| SimError::Trace {
                line: line_number,
                problem,
            };
            let (time, count) = line
                .split_once(',')
                .ok_or_else(|| bad(format!("expected timestamp,count, got {line:?}")))?;
            let (Ok(time), Ok(count)) = (time.trim().parse::<f64>(), count.trim().parse::<f64>())
            else {
                if points.is_empty() && line_number == 1 {
                    continue; // a header
                }
                return Err(bad(format!("expected two numbers, got {line:?}")));
            };
            if !(time.is_finite() && count.is_finite() && count >= 0.0) {
                return Err(bad(format!(
                    "timestamp must be finite and count a number >= 0, got {line:?}"
                )));
            }
            if let Some(&(previous, _)) = points.last()
                && time <= previous
            {
                return Err(bad(format!(
                    "timestamps must increase ({time} after {previous})"
                )));
            }
            points.push((time, count));
        }
        let Some(&(origin, _)) = points.first() else {
            return Err(SimError::Trace {
                line: 0,
                problem: "no data rows".into(),
            });
        };
        let mut rows = Vec::with_capacity(points.len());
        let mut last_gap = 1.0;
        for (i, &(time, count)) in points.iter().enumerate() {
            let end = match points.get(i + 1) {
                Some(&(next, _)) => next,
                None => time + last_gap,
            };
            last_gap = end - time;
            rows.push((time - origin, end - origin, count));
        }
        let total_messages = rows.iter().map(|r| r.2).sum();
        let duration_s = rows.last().map_or(0.0, |r| r.1);
        Ok(Trace {
            rows,
            total_messages,
            duration_s,
        })
    }

    /// Reads and parses a trace file.
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::TraceIo {
            path: path.display().to_string(),
            source,
        })?;
        Trace::parse(&text)
    }
}

/// How arrivals scatter around the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArrivalProcess {
    /// Exactly the rate: fractions carry over to the next tick.
    Fluid,
    /// A Poisson process with the rate as its intensity (one Poisson draw
    /// per tick).
    Poisson,
}

/// A workload: arrivals and the work each message needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// Arrival rate over time.
    pub rate: RateShape,
    /// How arrivals scatter around the rate.
    pub process: ArrivalProcess,
    /// Service time of one job.
    pub service: ServiceTime,
}

impl Workload {
    /// Checks the rates and times.
    pub fn validate(&self) -> Result<(), SimError> {
        self.service.validate()?;
        let rate_ok = |what: &'static str, value: f64| {
            if value.is_finite() && (0.0..=1e7).contains(&value) {
                Ok(())
            } else {
                Err(invalid(
                    what,
                    format!("must be between 0 and 1e7, got {value}"),
                ))
            }
        };
        match &self.rate {
            RateShape::Constant { per_second } => rate_ok("rate", *per_second),
            RateShape::StepBurst {
                base,
                burst,
                start_s,
                duration_s,
            } => {
                rate_ok("rate", *base)?;
                rate_ok("burst rate", *burst)?;
                rate_ok("burst start", *start_s)?;
                rate_ok("burst duration", *duration_s)
            }
            RateShape::Diurnal {
                mean,
                amplitude,
                period_s,
                peak_s,
            } => {
                rate_ok("rate", *mean)?;
                if !(0.0..=1.0).contains(amplitude) {
                    return Err(invalid(
                        "amplitude",
                        format!("must be in [0, 1], got {amplitude}"),
                    ));
                }
                if !(period_s.is_finite() && *period_s > 0.0) {
                    return Err(invalid("period", format!("must be > 0, got {period_s}")));
                }
                rate_ok("peak time", *peak_s)
            }
            RateShape::RandomSpikes {
                base,
                spike,
                mean_gap_s,
                duration_s,
            } => {
                rate_ok("rate", *base)?;
                rate_ok("spike rate", *spike)?;
                if !(mean_gap_s.is_finite() && *mean_gap_s >= 1.0) {
                    return Err(invalid(
                        "spike gap",
                        format!("must be >= 1 s, got {mean_gap_s}"),
                    ));
                }
                rate_ok("spike duration", *duration_s)
            }
            RateShape::Trace(_) => Ok(()),
        }
    }

    /// The arrival rate at `t` seconds, ignoring random spikes.
    #[must_use]
    pub fn base_rate_at(&self, t: f64) -> f64 {
        match &self.rate {
            RateShape::Constant { per_second } => *per_second,
            RateShape::StepBurst {
                base,
                burst,
                start_s,
                duration_s,
            } => {
                if t >= *start_s && t < start_s + duration_s {
                    *burst
                } else {
                    *base
                }
            }
            RateShape::Diurnal {
                mean,
                amplitude,
                period_s,
                peak_s,
            } => {
                let phase = 2.0 * std::f64::consts::PI * (t - peak_s) / period_s;
                (mean * (1.0 + amplitude * phase.cos())).max(0.0)
            }
            RateShape::RandomSpikes { base, .. } => *base,
            RateShape::Trace(trace) => trace
                .rows
                .iter()
                .find(|r| t >= r.0 && t < r.1)
                .map_or(0.0, |r| r.2 / (r.1 - r.0)),
        }
    }

    /// Spike windows `(start_s, end_s)` within `horizon_s` for this seed.
    fn spike_windows(&self, seed: u64, horizon_s: f64) -> Vec<(f64, f64)> {
        let RateShape::RandomSpikes {
            mean_gap_s,
            duration_s,
            ..
        } = self.rate
        else {
            return Vec::new();
        };
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5350_494b_4553);
        let mut windows = Vec::new();
        let mut t = 0.0;
        loop {
            // Inversion kept over rand_distr::Exp (a ziggurat, other draws): each seed keeps its spikes.
            let gap = -mean_gap_s * (1.0 - rng.random::<f64>()).ln();
            t += gap;
            if t >= horizon_s {
                return windows;
            }
            windows.push((t, t + duration_s));
        }
    }

    /// The bursts whose drain time is measured: `(start_s, end_s)`.
    #[must_use]
    pub fn bursts(&self, seed: u64, horizon_s: f64) -> Vec<(f64, f64)> {
        match self.rate {
            RateShape::StepBurst {
                start_s,
                duration_s,
                ..
            } => {
                vec![(start_s, start_s + duration_s)]
            }
            RateShape::RandomSpikes { .. } => self.spike_windows(seed, horizon_s),
            _ => Vec::new(),
        }
    }
}

/// Generates the arrivals of each tick, in order.
pub(crate) struct ArrivalGenerator<'a> {
    workload: &'a Workload,
    rng: StdRng,
    seconds_per_tick: f64,
    carry: f64,
    spikes: Vec<(f64, f64)>,
    spike_cursor: usize,
    trace_cursor: usize,
}

impl<'a> ArrivalGenerator<'a> {
    pub(crate) fn new(
        workload: &'a Workload,
        seed: u64,
        ticks_per_second: u64,
        horizon_s: f64,
    ) -> Self {
        ArrivalGenerator {
            workload,
            rng: StdRng::seed_from_u64(seed ^ 0x4152_5249_5641_4c53),
            seconds_per_tick: 1.0 / ticks_per_second as f64,
            carry: 0.0,
            spikes: workload.spike_windows(seed, horizon_s),
            spike_cursor: 0,
            trace_cursor: 0,
        }
    }

    /// Rate (messages per second) at `t`, with cursors for the
    /// time-ordered shapes (spikes, traces) so a tick costs O(1).
    #[inline]
    fn rate_at(&mut self, t: f64) -> f64 {
        match &self.workload.rate {
            RateShape::RandomSpikes { base, spike, .. } => {
                while self.spike_cursor < self.spikes.len() && self.spikes[self.spike_cursor].1 <= t
                {
                    self.spike_cursor += 1;
                }
                match self.spikes.get(self.spike_cursor) {
                    Some(&(start, _)) if t >= start => *spike,
                    _ => *base,
                }
            }
            RateShape::Trace(trace) => {
                while self.trace_cursor < trace.rows.len() && trace.rows[self.trace_cursor].1 <= t {
                    self.trace_cursor += 1;
                }
                match trace.rows.get(self.trace_cursor) {
                    Some(&(start, end, count)) if t >= start => count / (end - start),
                    _ => 0.0,
                }
            }
            _ => self.workload.base_rate_at(t),
        }
    }

    /// Messages arriving during tick `tick`.
    #[inline]
    pub(crate) fn arrivals(&mut self, tick: u64) -> u64 {
        let t = tick as f64 * self.seconds_per_tick;
        let expected = self.rate_at(t) * self.seconds_per_tick;
        match self.workload.process {
            ArrivalProcess::Fluid => {
                self.carry += expected;
                // Rounding guard: 0.1 * 10 must give 1, not 0.999...
                let whole = (self.carry + 1e-9).floor();
                self.carry -= whole;
                whole as u64
            }
            ArrivalProcess::Poisson => poisson(&mut self.rng, expected),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_spreads_each_count_until_the_next_row() {
        let trace = Trace::parse("timestamp,count\n100,60\n160,0\n# pause\n220,30\n").ok();
        let Some(trace) = trace else {
            panic!("trace did not parse");
        };
        assert_eq!(
            trace.rows,
            vec![(0.0, 60.0, 60.0), (60.0, 120.0, 0.0), (120.0, 180.0, 30.0)]
        );
        let workload = Workload {
            rate: RateShape::Trace(trace),
            process: ArrivalProcess::Fluid,
            service: ServiceTime::Fixed { seconds: 1.0 },
        };
        let mut generator = ArrivalGenerator::new(&workload, 1, 1, 200.0);
        let per_tick: Vec<u64> = (0..200).map(|t| generator.arrivals(t)).collect();
        assert_eq!(per_tick[..60].iter().sum::<u64>(), 60);
        assert_eq!(per_tick[60..120].iter().sum::<u64>(), 0);
        assert_eq!(per_tick[120..].iter().sum::<u64>(), 30);
    }

    #[test]
    fn trace_errors_name_the_line() {
        let error = Trace::parse("0,1\n5,x\n").err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("trace line 2: expected two numbers, got \"5,x\"")
        );
        assert!(Trace::parse("5,1\n5,2\n").is_err());
        assert!(Trace::parse("").is_err());
    }
}
