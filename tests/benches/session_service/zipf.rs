//! Zipf-distributed picks without a table: Hörmann and Derflinger's rejection-inversion
//! sampler ("Rejection-inversion to generate variates from monotone discrete distributions",
//! 1996, as in Apache Commons RNG), constant time and memory for any number of elements, fed
//! by a SplitMix64 stream seeded from (stage, worker, call) so that workers need no state.

/// Ranks 1..=n with P(k) proportional to 1 / k^exponent.
#[derive(Debug, Clone, Copy)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

impl Zipf {
    pub fn new(n: usize, exponent: f64) -> Self {
        let mut zipf = Self {
            n: n.max(1) as f64,
            exponent,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            s: 0.0,
        };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(zipf.n + 0.5);
        zipf.s = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        zipf
    }

    /// A rank in 1..=n.
    pub fn sample(&self, random: &mut SplitMix) -> u64 {
        loop {
            let u = self.h_integral_n + random.unit() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.exponent) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (ln1p_over_x(t) * x).exp()
    }
}

fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// SplitMix64.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A stream for one call: a hash of its coordinates.
    pub fn at(seed: u64, worker: usize, call: u64) -> Self {
        let mut mix = Self(seed ^ (worker as u64).rotate_left(40));
        mix.0 ^= mix.next() ^ call;
        mix
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Rank `k` of `n` as an element index in 0..n, spread by a fixed permutation so that the
/// popular elements are not neighbours (2,654,435,761 is prime, so coprime with any n it
/// does not divide).
pub fn spread(rank: u64, n: usize) -> u64 {
    let n = n.max(1) as u128;
    ((u128::from(rank - 1) * 2_654_435_761) % n) as u64
}
