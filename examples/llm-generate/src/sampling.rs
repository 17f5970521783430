//! Choosing the next token from the logits: greedy (temperature 0), or a
//! draw from the top-p nucleus with a seeded generator. All of it runs in
//! the guest, where every float operation gives the same bits on every
//! node, so a verifier re-running the job draws the same tokens.

/// How to choose.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    /// 0: the most likely token; above 0: divides the logits before the softmax.
    pub temperature: f32,
    /// The smallest set of most likely tokens whose probabilities add up to
    /// at least this is drawn from (1: all).
    pub top_p: f32,
}

/// xoshiro256** seeded by splitmix64: small, fast and fully specified, so
/// the same seed gives the same draws in any implementation.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole state comes from `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The index of the largest logit, the first on ties; NaN never wins
/// (a NaN logit means the model is broken, and it is then not chosen).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best
}

/// The next token under `sampling`, drawing from `rng` when it samples.
pub fn choose(logits: &[f32], sampling: Sampling, rng: &mut Rng) -> usize {
    if sampling.temperature <= 0.0 || logits.is_empty() {
        return argmax(logits);
    }
    // Probabilities in f64 from the logits over the temperature; the
    // order is fixed (by probability, then by index) before anything is
    // summed, so the nucleus and the draw do not depend on a sort's
    // stability.
    let t = f64::from(sampling.temperature);
    let finite = |v: f32| {
        if v.is_nan() {
            f64::NEG_INFINITY
        } else {
            f64::from(v)
        }
    };
    let max = logits
        .iter()
        .map(|&v| finite(v))
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return argmax(logits);
    }
    let mut order: Vec<(usize, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &v)| (i, ((finite(v) - max) / t).exp()))
        .collect();
    let total: f64 = order.iter().map(|&(_, p)| p).sum();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top_p = f64::from(sampling.top_p.clamp(0.0, 1.0));
    let mut kept = 0usize;
    let mut mass = 0.0f64;
    for &(_, p) in &order {
        kept += 1;
        mass += p;
        if mass >= top_p * total {
            break;
        }
    }
    let draw = rng.unit() * mass;
    let mut acc = 0.0f64;
    for &(i, p) in &order[..kept] {
        acc += p;
        if draw < acc {
            return i;
        }
    }
    order[kept - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_largest() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5]), 1);
        let mut rng = Rng::new(1);
        let greedy = Sampling {
            temperature: 0.0,
            top_p: 1.0,
        };
        assert_eq!(choose(&[0.1, 0.2, -1.0], greedy, &mut rng), 1);
    }

    #[test]
    fn top_p_draws_only_from_the_nucleus_and_repeats_with_the_seed() {
        // Two tokens hold almost all the mass; top_p 0.9 keeps only them.
        let logits = [10.0, 9.5, 0.0, -1.0, 0.5];
        let s = Sampling {
            temperature: 1.0,
            top_p: 0.9,
        };
        let draws = |seed| {
            let mut rng = Rng::new(seed);
            (0..200)
                .map(|_| choose(&logits, s, &mut rng))
                .collect::<Vec<_>>()
        };
        let a = draws(7);
        assert!(a.iter().all(|&i| i < 2), "{a:?}");
        assert!(a.contains(&0) && a.contains(&1));
        assert_eq!(a, draws(7));
        assert_ne!(a, draws(8));
        // top_p 1 can draw any token at a high temperature.
        let hot = Sampling {
            temperature: 100.0,
            top_p: 1.0,
        };
        let mut rng = Rng::new(3);
        let all: std::collections::BTreeSet<usize> =
            (0..500).map(|_| choose(&logits, hot, &mut rng)).collect();
        assert_eq!(all.len(), logits.len());
    }
}
