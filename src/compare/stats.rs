//! The noise tests of the gate: a bootstrap of percentile changes resampled from two
//! HDR histograms, and a two-proportion z-test for error rates.
//!
//! The bootstrap redraws each histogram's whole sample as one multinomial draw over its
//! buckets (a chain of binomial draws, one per non-empty bucket), so a resample costs the
//! number of buckets, not the number of requests: a run of ten million requests costs
//! what one of ten thousand does. It is seeded from the figure's name, so the same two
//! runs always give the same interval.

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};

/// Resamples per bootstrap: the 0.5 % and 99.5 % quantiles sit 5 draws from each end.
pub const RESAMPLES: usize = 1000;
/// Each resample draws at most this many requests (an m-out-of-n bootstrap). The
/// requests of one run are not independent: a stall of the machine slows many in a row,
/// so a run of n requests holds fewer than n independent samples, and an n-out-of-n
/// bootstrap gave intervals too narrow for tail percentiles (measured: two equal 4 s
/// runs on a shared machine, p99 +192 % with an interval of [+17 %, +600 %]). Drawing
/// fewer widens the interval as if the run held at most this many independent samples.
pub const MAX_DRAWS: u64 = 1000;
/// Two-sided confidence of the bootstrap interval.
pub const CONFIDENCE: f64 = 0.99;
/// One-sided significance of the error-rate test.
pub const ALPHA: f64 = 0.01;

/// A histogram's non-empty buckets: (highest value of the bucket, count).
struct Buckets {
    values: Vec<u64>,
    counts: Vec<u64>,
    total: u64,
}

impl Buckets {
    fn of(h: &Histogram<u64>) -> Buckets {
        let (mut values, mut counts) = (Vec::new(), Vec::new());
        for v in h.iter_recorded() {
            values.push(v.value_iterated_to());
            counts.push(v.count_at_value());
        }
        let total = counts.iter().sum();
        Buckets {
            values,
            counts,
            total,
        }
    }

    /// How many samples a resample draws.
    fn draws(&self) -> u64 {
        self.total.min(MAX_DRAWS)
    }

    /// One multinomial redraw of [`Self::draws`] samples over the buckets into `out`.
    fn resample(&self, rng: &mut ChaCha8Rng, out: &mut Vec<u64>) {
        out.clear();
        let mut left = self.draws();
        let mut weight_left = self.total;
        for (i, &c) in self.counts.iter().enumerate() {
            if left == 0 || i + 1 == self.counts.len() {
                out.push(left);
                left = 0;
                continue;
            }
            let p = (c as f64 / weight_left as f64).clamp(0.0, 1.0);
            let x = Binomial::new(left, p).map(|b| b.sample(rng)).unwrap_or(0);
            out.push(x);
            left -= x;
            weight_left -= c;
        }
    }
}

/// The value at quantile `q` of buckets with these counts (HdrHistogram's rule: the
/// first bucket whose cumulative count reaches `q` of the total).
fn quantile(values: &[u64], counts: &[u64], total: u64, q: f64) -> u64 {
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total.max(1));
    let mut seen = 0;
    for (v, c) in values.iter().zip(counts) {
        seen += c;
        if seen >= rank {
            return *v;
        }
    }
    values.last().copied().unwrap_or(0)
}

/// A percentile's change from a baseline histogram to a current one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentileChange {
    pub baseline_us: f64,
    pub current_us: f64,
    /// Confidence interval of the absolute change (µs).
    pub abs_ci: (f64, f64),
    /// Confidence interval of the relative change (0.1 = +10 %).
    pub rel_ci: (f64, f64),
}

/// Bootstrap the change of each quantile in `qs` between two histograms. None when
/// either is empty.
pub fn bootstrap(
    base: &Histogram<u64>,
    cur: &Histogram<u64>,
    qs: &[f64],
    seed: u64,
) -> Option<Vec<PercentileChange>> {
    if base.is_empty() || cur.is_empty() {
        return None;
    }
    let (b, c) = (Buckets::of(base), Buckets::of(cur));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut bc, mut cc) = (Vec::new(), Vec::new());
    let mut abs: Vec<Vec<f64>> = vec![Vec::with_capacity(RESAMPLES); qs.len()];
    let mut rel: Vec<Vec<f64>> = vec![Vec::with_capacity(RESAMPLES); qs.len()];
    for _ in 0..RESAMPLES {
        b.resample(&mut rng, &mut bc);
        c.resample(&mut rng, &mut cc);
        for (i, &q) in qs.iter().enumerate() {
            let x = quantile(&b.values, &bc, b.draws(), q) as f64;
            let y = quantile(&c.values, &cc, c.draws(), q) as f64;
            abs[i].push(y - x);
            rel[i].push((y - x) / x.max(1.0));
        }
    }
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let ci = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
        (at(tail), at(1.0 - tail))
    };
    Some(
        qs.iter()
            .enumerate()
            .map(|(i, &q)| PercentileChange {
                baseline_us: quantile(&b.values, &b.counts, b.total, q) as f64,
                current_us: quantile(&c.values, &c.counts, c.total, q) as f64,
                abs_ci: ci(&mut abs[i]),
                rel_ci: ci(&mut rel[i]),
            })
            .collect(),
    )
}

/// One-sided p-values of a two-proportion z-test: (that the current rate is higher, that
/// it is lower). (1, 1) when there is nothing to test (no errors in either run).
pub fn proportion_test(base_err: u64, base_n: u64, cur_err: u64, cur_n: u64) -> (f64, f64) {
    if base_n == 0 || cur_n == 0 {
        return (1.0, 1.0);
    }
    let (n1, n2) = (base_n as f64, cur_n as f64);
    let (p1, p2) = (base_err as f64 / n1, cur_err as f64 / n2);
    let p = (base_err + cur_err) as f64 / (n1 + n2);
    let se = (p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return (1.0, 1.0);
    }
    let z = (p2 - p1) / se;
    (upper_tail(z), upper_tail(-z))
}

/// P(Z > z) for a standard normal Z.
fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// A stable seed for a figure, from its name (FNV-1a).
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn hist(seed: u64, n: usize, shift_us: u64) -> Histogram<u64> {
        // A long-tailed latency: 1ms plus an exponential with a 2ms mean, at 2 significant
        // digits (as a plan with many requests keeps them): fewer buckets, a quicker test.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut h = crate::record::histogram(2);
        for _ in 0..n {
            let u: f64 = rng.random::<f64>().max(1e-12);
            let v = 1000.0 + (-u.ln()) * 2000.0;
            h.record(v as u64 + shift_us).unwrap();
        }
        h
    }

    #[test]
    fn quantile_matches_hdrhistogram() {
        let h = hist(1, 10_000, 0);
        let b = Buckets::of(&h);
        for q in [0.5, 0.95, 0.99] {
            let ours = quantile(&b.values, &b.counts, b.total, q);
            assert_eq!(ours, h.highest_equivalent(h.value_at_quantile(q)), "q {q}");
        }
    }

    #[test]
    fn resampling_keeps_the_total() {
        let h = hist(2, 5_000, 0);
        let b = Buckets::of(&h);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut out = Vec::new();
        b.resample(&mut rng, &mut out);
        assert_eq!(out.iter().sum::<u64>(), MAX_DRAWS);
    }

    #[test]
    fn equal_distributions_give_intervals_around_zero() {
        // 20 pairs from the same distribution, different seeds: the interval of the
        // relative change must hold 0 or stay inside ±10 % (the default tolerance) in
        // every one, for every percentile the gate compares.
        for i in 0..20 {
            let (a, b) = (hist(100 + i, 3_000, 0), hist(200 + i, 3_000, 0));
            let r = bootstrap(&a, &b, &[0.5, 0.95, 0.99], seed_of("t")).unwrap();
            for c in r {
                assert!(c.rel_ci.0 <= 0.10, "pair {i}: {c:?}");
                assert!(c.rel_ci.1 >= -0.10, "pair {i}: {c:?}");
            }
        }
    }

    #[test]
    fn a_shift_is_found() {
        let (a, b) = (hist(5, 3_000, 0), hist(6, 3_000, 5_000));
        let r = bootstrap(&a, &b, &[0.5, 0.99], 1).unwrap();
        assert!(r[0].rel_ci.0 > 1.0, "{:?}", r[0]);
        assert!(r[1].abs_ci.0 > 2_000.0, "{:?}", r[1]);
    }

    #[test]
    fn bootstrap_is_deterministic() {
        let (a, b) = (hist(7, 2_000, 0), hist(8, 2_000, 100));
        assert_eq!(
            bootstrap(&a, &b, &[0.95], 42),
            bootstrap(&a, &b, &[0.95], 42)
        );
    }

    #[test]
    fn proportions() {
        let (worse, _) = proportion_test(10, 10_000, 60, 10_000);
        assert!(worse < 1e-6, "{worse}");
        let (worse, better) = proportion_test(10, 10_000, 12, 10_000);
        assert!(worse > 0.1 && better > 0.1);
        assert_eq!(proportion_test(0, 100, 0, 100), (1.0, 1.0));
        assert!((upper_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((upper_tail(2.326_348) - 0.01).abs() < 1e-5);
    }
}
