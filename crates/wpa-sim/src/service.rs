//! How long one job takes, and how a batch of jobs started in the same tick
//! is spread over the completion calendar.

use rand::Rng;
use serde::Serialize;

use crate::error::{SimError, invalid};
use crate::random::{normal_cdf, normal_quantile};

/// Equal-probability strata a random service time is split into.
const STRATA: usize = 32;

/// The top strata (the slowest 1/16 of jobs) are drawn job by job from the
/// distribution instead of taking their stratum's mean: a heavy tail keeps
/// its spread (the longest jobs are the ones a scale down interrupts).
const TAIL_STRATA: usize = 2;

/// The distribution of one job's service time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ServiceTime {
    /// Every job takes exactly `seconds`.
    Fixed {
        /// Seconds per job.
        seconds: f64,
    },
    /// Exponentially distributed with this mean.
    Exponential {
        /// Mean seconds per job.
        mean: f64,
    },
    /// Log-normal with this mean and shape `sigma` (the standard deviation
    /// of the logarithm); heavy-tailed for `sigma` near 1 and above.
    LogNormal {
        /// Mean seconds per job.
        mean: f64,
        /// Standard deviation of ln(service time).
        sigma: f64,
    },
}

impl ServiceTime {
    /// Mean seconds per job.
    #[must_use]
    pub fn mean(&self) -> f64 {
        match *self {
            ServiceTime::Fixed { seconds } => seconds,
            ServiceTime::Exponential { mean } | ServiceTime::LogNormal { mean, .. } => mean,
        }
    }

    /// Checks the parameters: means from 1 ms to a day; sigma in (0, 3].
    pub fn validate(&self) -> Result<(), SimError> {
        let mean = self.mean();
        if !(mean.is_finite() && (0.001..=86_400.0).contains(&mean)) {
            return Err(invalid(
                "service time",
                format!("mean must be between 0.001 and 86400 seconds, got {mean}"),
            ));
        }
        if let ServiceTime::LogNormal { sigma, .. } = *self
            && !(sigma > 0.0 && sigma <= 3.0)
        {
            return Err(invalid(
                "service time",
                format!("log-normal sigma must be in (0, 3], got {sigma}"),
            ));
        }
        Ok(())
    }

    /// Parses `fixed:SECONDS`, `exp:MEAN` or `lognormal:MEAN,SIGMA` (a bare
    /// number is fixed).
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let number = |value: &str| {
            value.trim().parse::<f64>().map_err(|_| {
                invalid(
                    "--service",
                    format!("{value:?} is not a number (expected fixed:S, exp:MEAN or lognormal:MEAN,SIGMA)"),
                )
            })
        };
        let (kind, rest) = text.split_once(':').unwrap_or(("fixed", text));
        let service = match kind {
            "fixed" => ServiceTime::Fixed {
                seconds: number(rest)?,
            },
            "exp" | "exponential" => ServiceTime::Exponential {
                mean: number(rest)?,
            },
            "lognormal" | "log-normal" => {
                let (mean, sigma) = rest.split_once(',').ok_or_else(|| {
                    invalid(
                        "--service",
                        "lognormal needs MEAN,SIGMA, e.g. lognormal:240,0.8",
                    )
                })?;
                ServiceTime::LogNormal {
                    mean: number(mean)?,
                    sigma: number(sigma)?,
                }
            }
            other => {
                return Err(invalid(
                    "--service",
                    format!("unknown distribution {other:?} (fixed, exp, lognormal)"),
                ));
            }
        };
        service.validate()?;
        Ok(service)
    }

    /// The service time below which a fraction `p` of jobs fall (`p` in
    /// [0, 1); seconds).
    #[must_use]
    pub fn quantile(&self, p: f64) -> f64 {
        let p = p.clamp(0.0, 1.0 - f64::EPSILON);
        match *self {
            ServiceTime::Fixed { seconds } => seconds,
            ServiceTime::Exponential { mean } => -mean * (1.0 - p).ln(),
            ServiceTime::LogNormal { mean, sigma } => {
                let mu = mean.ln() - sigma * sigma / 2.0;
                (mu + sigma * normal_quantile(p.max(f64::MIN_POSITIVE))).exp()
            }
        }
    }

    /// The tick length the simulator uses for this distribution, as ticks
    /// per second: 1 s when jobs are whole seconds, finer when they are
    /// short, so that every job lasts several ticks (see the README).
    #[must_use]
    pub fn ticks_per_second(&self) -> u64 {
        const CHOICES: [u64; 11] = [1, 2, 4, 5, 10, 20, 50, 100, 200, 500, 1000];
        if let ServiceTime::Fixed { seconds } = *self {
            for tps in CHOICES {
                let ticks = seconds * tps as f64;
                if ticks >= 1.0 - 1e-9 && (ticks - ticks.round()).abs() < 1e-6 {
                    return tps;
                }
            }
        }
        let mean = self.mean();
        CHOICES
            .into_iter()
            .find(|&tps| mean * tps as f64 >= 8.0)
            .unwrap_or(1000)
    }
}

/// A service-time distribution turned into calendar offsets (in ticks).
#[derive(Debug, Clone)]
pub(crate) enum ServiceSampler {
    /// Every job takes this many ticks.
    Fixed(u32),
    /// The conditional mean, in ticks, of each of [`STRATA`] equal-probability
    /// strata of the distribution; the top [`TAIL_STRATA`] are drawn per job
    /// from `service`.
    Strata {
        means: Vec<f64>,
        service: ServiceTime,
        ticks_per_second: f64,
    },
}

impl ServiceSampler {
    pub(crate) fn new(service: &ServiceTime, ticks_per_second: u64) -> Self {
        let tps = ticks_per_second as f64;
        let n = STRATA as f64;
        match *service {
            ServiceTime::Fixed { seconds } => {
                ServiceSampler::Fixed(((seconds * tps).round() as u32).max(1))
            }
            ServiceTime::Exponential { mean } => {
                let strata = (0..STRATA)
                    .map(|i| {
                        // E[X | a < X < b] for an exponential of mean m.
                        let a = -mean * (1.0 - i as f64 / n).ln();
                        let conditional = if i + 1 == STRATA {
                            mean + a
                        } else {
                            let b = -mean * (1.0 - (i + 1) as f64 / n).ln();
                            let (ea, eb) = ((-a / mean).exp(), (-b / mean).exp());
                            mean + (a * ea - b * eb) / (ea - eb)
                        };
                        conditional * tps
                    })
                    .collect();
                ServiceSampler::Strata {
                    means: strata,
                    service: *service,
                    ticks_per_second: tps,
                }
            }
            ServiceTime::LogNormal { mean, sigma } => {
                // E[X; z_i < Z < z_{i+1}] = mean * (Phi(z_{i+1} - sigma) - Phi(z_i - sigma)).
                let z = |p: f64| normal_quantile(p);
                let strata = (0..STRATA)
                    .map(|i| {
                        let low = if i == 0 {
                            0.0
                        } else {
                            normal_cdf(z(i as f64 / n) - sigma)
                        };
                        let high = if i + 1 == STRATA {
                            1.0
                        } else {
                            normal_cdf(z((i + 1) as f64 / n) - sigma)
                        };
                        mean * n * (high - low) * tps
                    })
                    .collect();
                ServiceSampler::Strata {
                    means: strata,
                    service: *service,
                    ticks_per_second: tps,
                }
            }
        }
    }

    /// Spreads `count` jobs started now over completion offsets (>= 1 tick),
    /// calling `schedule(offset, jobs)`.
    ///
    /// The batch is split evenly over the strata; the `count % STRATA` left
    /// over go to a run of strata starting at a random one, so each stratum
    /// is equally likely. A stratum's non-integer duration is rounded up for
    /// a random fraction of its jobs equal to its fractional part, so the
    /// mean is kept exactly.
    #[inline]
    pub(crate) fn schedule<R: Rng + ?Sized>(
        &self,
        count: u64,
        rng: &mut R,
        mut schedule: impl FnMut(u32, u64),
    ) {
        match self {
            ServiceSampler::Fixed(ticks) => schedule(*ticks, count),
            ServiceSampler::Strata {
                means: strata,
                service,
                ticks_per_second,
            } => {
                let each = count / STRATA as u64;
                let extra = (count % STRATA as u64) as usize;
                let first_extra = if extra == 0 {
                    0
                } else {
                    rng.random_range(0..STRATA)
                };
                for (i, &ticks) in strata.iter().enumerate() {
                    let gets_extra = (i + STRATA - first_extra) % STRATA < extra;
                    let jobs = each + u64::from(gets_extra);
                    if jobs == 0 {
                        continue;
                    }
                    if i >= STRATA - TAIL_STRATA {
                        for _ in 0..jobs {
                            let u = (i as f64 + rng.random::<f64>()) / STRATA as f64;
                            let ticks = service.quantile(u) * ticks_per_second;
                            let whole = ticks.floor();
                            let up = rng.random::<f64>() < ticks - whole;
                            let offset = (whole + f64::from(u8::from(up)))
                                .clamp(1.0, f64::from(u32::MAX - 1));
                            schedule(offset as u32, 1);
                        }
                        continue;
                    }
                    if ticks <= 1.0 {
                        schedule(1, jobs);
                        continue;
                    }
                    let whole = ticks.floor();
                    let rounded_up = ((jobs as f64 * (ticks - whole) + rng.random::<f64>()).floor()
                        as u64)
                        .min(jobs);
                    let whole = whole.min(f64::from(u32::MAX - 1)) as u32;
                    if rounded_up > 0 {
                        schedule(whole + 1, rounded_up);
                    }
                    if jobs > rounded_up {
                        schedule(whole, jobs - rounded_up);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn sampled_mean(service: ServiceTime) -> (f64, f64) {
        let tps = service.ticks_per_second();
        let sampler = ServiceSampler::new(&service, tps);
        let mut rng = StdRng::seed_from_u64(3);
        let (mut jobs, mut ticks) = (0u64, 0u64);
        for batch in [1u64, 7, 33, 1000, 5] {
            for _ in 0..200 {
                sampler.schedule(batch, &mut rng, |offset, n| {
                    jobs += n;
                    ticks += u64::from(offset) * n;
                });
            }
        }
        (ticks as f64 / jobs as f64 / tps as f64, service.mean())
    }

    #[test]
    fn strata_keep_the_mean() {
        for service in [
            ServiceTime::Fixed { seconds: 1.0 },
            ServiceTime::Fixed { seconds: 0.03 },
            ServiceTime::Exponential { mean: 1.0 },
            ServiceTime::Exponential { mean: 30.0 },
            ServiceTime::LogNormal {
                mean: 240.0,
                sigma: 0.8,
            },
        ] {
            let (got, want) = sampled_mean(service);
            assert!(
                (got - want).abs() / want < 0.03,
                "{service:?}: {got} vs {want}"
            );
        }
    }

    /// The slowest jobs keep their spread: with sigma 1.5 the top 3% of a
    /// log-normal are not all one duration, and the longest reach far
    /// beyond the top stratum's mean.
    #[test]
    fn the_tail_is_drawn_job_by_job() {
        let service = ServiceTime::LogNormal {
            mean: 60.0,
            sigma: 1.5,
        };
        let sampler = ServiceSampler::new(&service, 1);
        let mut rng = StdRng::seed_from_u64(5);
        let mut offsets = Vec::new();
        for _ in 0..200 {
            sampler.schedule(64, &mut rng, |offset, n| {
                offsets.extend(std::iter::repeat_n(offset, n as usize));
            });
        }
        offsets.sort_unstable();
        let top = &offsets[offsets.len() * 97 / 100..];
        let distinct = top.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(
            distinct > 100,
            "{distinct} distinct durations in the top 3%"
        );
        let longest = f64::from(*top.last().unwrap_or(&0));
        assert!(longest > 3.0 * service.quantile(0.985), "{longest}");
        // The quantile function and the median agree.
        let median = service.quantile(0.5);
        let expected = (60.0f64.ln() - 1.125).exp();
        assert!((median - expected).abs() < 1e-6 * expected, "{median}");
    }

    #[test]
    fn tick_length_fits_the_jobs() {
        assert_eq!(ServiceTime::Fixed { seconds: 1.0 }.ticks_per_second(), 1);
        assert_eq!(ServiceTime::Fixed { seconds: 240.0 }.ticks_per_second(), 1);
        assert_eq!(ServiceTime::Fixed { seconds: 0.03 }.ticks_per_second(), 100);
        assert_eq!(ServiceTime::Fixed { seconds: 1.5 }.ticks_per_second(), 2);
        assert_eq!(
            ServiceTime::Exponential { mean: 1.0 }.ticks_per_second(),
            10
        );
        assert_eq!(
            ServiceTime::Exponential { mean: 60.0 }.ticks_per_second(),
            1
        );
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            ServiceTime::parse("2").ok(),
            Some(ServiceTime::Fixed { seconds: 2.0 })
        );
        assert_eq!(
            ServiceTime::parse("exp:3").ok(),
            Some(ServiceTime::Exponential { mean: 3.0 })
        );
        assert_eq!(
            ServiceTime::parse("lognormal:240,0.8").ok(),
            Some(ServiceTime::LogNormal {
                mean: 240.0,
                sigma: 0.8
            })
        );
        assert!(ServiceTime::parse("gamma:1").is_err());
        assert!(ServiceTime::parse("fixed:0").is_err());
    }
}
