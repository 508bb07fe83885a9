//! Sampling helpers on top of `rand`: Poisson counts per tick (so a tick of
//! 1,000 arrivals costs one draw, not 1,000) and the normal CDF and its
//! inverse used to split service-time distributions into strata.

use rand::Rng;

/// A Poisson(`mean`) count. Knuth's product method below a mean of 10,
/// Hörmann's PTRS transformed rejection (exact, O(1)) above.
pub(crate) fn poisson<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> u64 {
    // Kept over rand_distr::Poisson: its draws differ from a mean of 10 up, changing the README's figures.
    if mean <= 0.0 {
        return 0;
    }
    if mean < 10.0 {
        let limit = (-mean).exp();
        let mut count = 0;
        let mut product: f64 = rng.random();
        while product > limit {
            count += 1;
            product *= rng.random::<f64>();
        }
        return count;
    }
    let sqrt_mean = mean.sqrt();
    let log_mean = mean.ln();
    let b = 0.931 + 2.53 * sqrt_mean;
    let a = -0.059 + 0.024_83 * b;
    let inverse_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let v_r = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = rng.random::<f64>() - 0.5;
        let v: f64 = rng.random();
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + mean + 0.43).floor();
        if us >= 0.07 && v <= v_r {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        if v.ln() + inverse_alpha.ln() - (a / (us * us) + b).ln()
            <= -mean + k * log_mean - ln_factorial(k)
        {
            return k as u64;
        }
    }
}

/// ln(k!) for a non-negative integer-valued `k`: a table below 10, the
/// Stirling series above (error below 1e-10 there).
fn ln_factorial(k: f64) -> f64 {
    const TABLE: [f64; 10] = [
        0.0,
        0.0,
        std::f64::consts::LN_2,
        1.791_759_469_228_055,
        3.178_053_830_347_146,
        4.787_491_742_782_046,
        6.579_251_212_010_101,
        8.525_161_361_065_415,
        10.604_602_902_745_25,
        12.801_827_480_081_469,
    ];
    if k < 10.0 {
        return TABLE[k as usize];
    }
    let inverse = 1.0 / k;
    let inverse_squared = inverse * inverse;
    k * k.ln() - k
        + 0.5 * (2.0 * std::f64::consts::PI * k).ln()
        + inverse * (1.0 / 12.0 - inverse_squared * (1.0 / 360.0 - inverse_squared / 1260.0))
}

/// The standard normal CDF, via `erfc` (Numerical Recipes' Chebyshev fit,
/// relative error below 1.2e-7: ample for splitting a distribution).
pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let polynomial = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * polynomial.exp();
    if x >= 0.0 { value } else { 2.0 - value }
}

/// The inverse standard normal CDF (Acklam's rational approximation,
/// relative error below 1.2e-9) for `p` in (0, 1).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn mean_and_variance(mean: f64) -> (f64, f64) {
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<f64> = (0..200_000)
            .map(|_| poisson(&mut rng, mean) as f64)
            .collect();
        let m = draws.iter().sum::<f64>() / draws.len() as f64;
        let v = draws.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / draws.len() as f64;
        (m, v)
    }

    #[test]
    fn poisson_has_the_right_mean_and_variance() {
        for mean in [0.3, 4.0, 12.0, 250.0, 1000.0] {
            let (m, v) = mean_and_variance(mean);
            assert!(
                (m - mean).abs() < 0.02 * mean + 0.01,
                "mean {mean}: got {m}"
            );
            assert!(
                (v - mean).abs() < 0.05 * mean + 0.02,
                "variance {mean}: got {v}"
            );
        }
    }

    #[test]
    fn ln_factorial_matches_the_product() {
        let mut exact = 0.0;
        for k in 1..40 {
            exact += f64::from(k).ln();
            assert!((ln_factorial(f64::from(k)) - exact).abs() < 1e-9, "{k}");
        }
    }

    #[test]
    fn normal_quantile_inverts_the_cdf() {
        for p in [0.001, 0.02, 0.2, 0.5, 0.8, 0.99, 0.9999] {
            let x = normal_quantile(p);
            assert!((normal_cdf(x) - p).abs() < 1e-6, "{p}");
        }
    }
}
