//! The baseline every released model must beat: logistic regression on hashed character n-grams.
//!
//! Each URL (lower-cased, framed by `^` and `$` so the ends are features of their own) becomes the
//! counts of its character 1- to 5-grams, hashed into 2^`bits` buckets (the hashing trick) and
//! scaled to unit length. Weights are fitted with AdaGrad on the log loss with balanced class
//! weights and a little L2; the epoch with the lowest validation log loss is kept. A minute or
//! less on 2 cores for the training split. Deterministic: same data, same weights.

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

/// How the baseline is trained.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineParams {
    /// log2 of the number of hashed features.
    pub bits: u32,
    /// Shortest n-gram.
    pub min_n: usize,
    /// Longest n-gram.
    pub max_n: usize,
    /// Passes over the training data at most.
    pub epochs: usize,
    /// AdaGrad's base learning rate.
    pub learning_rate: f64,
    /// L2 penalty per step.
    pub l2: f64,
    /// Shuffling seed.
    pub seed: u64,
}

impl Default for BaselineParams {
    fn default() -> Self {
        BaselineParams {
            bits: 20,
            min_n: 1,
            max_n: 5,
            epochs: 30,
            learning_rate: 0.2,
            l2: 1e-7,
            seed: 42,
        }
    }
}

/// A trained n-gram model.
pub struct NgramBaseline {
    params: BaselineParams,
    weights: Vec<f32>,
    bias: f32,
    /// Epochs run and the one kept.
    pub epochs_run: usize,
    /// The kept epoch (1-based).
    pub best_epoch: usize,
}

/// FNV-1a over the n-gram's bytes; stable across platforms and runs.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The sparse, unit-length feature vector of `url`: (index, value) pairs, indices sorted and
/// distinct.
pub fn features(url: &str, p: &BaselineParams) -> Vec<(u32, f32)> {
    let framed: Vec<u8> = std::iter::once(b'^')
        .chain(url.trim().to_lowercase().bytes())
        .chain(std::iter::once(b'$'))
        .collect();
    let mask = (1u64 << p.bits) - 1;
    let mut idx: Vec<u32> = Vec::with_capacity(framed.len() * (p.max_n - p.min_n + 1));
    for n in p.min_n..=p.max_n {
        for w in framed.windows(n) {
            // The length goes into the hash so a 2-gram and a 3-gram never share a bucket by design.
            idx.push(((hash(w) ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) & mask) as u32);
        }
    }
    idx.sort_unstable();
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(idx.len());
    for i in idx {
        match out.last_mut() {
            Some((j, c)) if *j == i => *c += 1.0,
            _ => out.push((i, 1.0)),
        }
    }
    let norm = out
        .iter()
        .map(|(_, c)| c * c)
        .sum::<f32>()
        .sqrt()
        .max(1e-12);
    for (_, c) in &mut out {
        *c /= norm;
    }
    out
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl NgramBaseline {
    /// Fits on (`train_urls`, `train_targets`), keeping the epoch with the lowest log loss on the
    /// validation data.
    pub fn train(
        p: BaselineParams,
        train_urls: &[&str],
        train_targets: &[f32],
        val_urls: &[&str],
        val_targets: &[f32],
    ) -> Result<NgramBaseline> {
        if !(8..=26).contains(&p.bits) || p.min_n == 0 || p.min_n > p.max_n {
            bail!(
                "baseline: bits {} (8..=26) or n-gram range {}..={} is invalid",
                p.bits,
                p.min_n,
                p.max_n
            );
        }
        if train_urls.is_empty() || train_urls.len() != train_targets.len() {
            bail!("baseline: no training data or mismatched targets");
        }
        let train: Vec<Vec<(u32, f32)>> = train_urls.iter().map(|u| features(u, &p)).collect();
        let val: Vec<Vec<(u32, f32)>> = val_urls.iter().map(|u| features(u, &p)).collect();
        let positives = train_targets.iter().filter(|&&t| t >= 0.5).count();
        let negatives = train_targets.len() - positives;
        if positives == 0 || negatives == 0 {
            bail!("baseline: the training data has one class only");
        }
        // Balanced: each class weighs half of the total.
        let n = train_targets.len() as f64;
        let class_weight = [n / (2.0 * negatives as f64), n / (2.0 * positives as f64)];
        let dim = 1usize << p.bits;
        let mut w = vec![0f64; dim];
        let mut g2 = vec![1e-8f64; dim];
        let (mut b, mut b_g2) = (0f64, 1e-8f64);
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
        let mut best: Option<(f64, Vec<f64>, f64, usize)> = None;
        let mut epochs_run = 0;
        for epoch in 1..=p.epochs {
            epochs_run = epoch;
            order.shuffle(&mut rng);
            for &i in &order {
                let x = &train[i];
                let y = f64::from(train_targets[i] >= 0.5);
                let z = b + x
                    .iter()
                    .map(|&(j, v)| w[j as usize] * f64::from(v))
                    .sum::<f64>();
                let grad = (sigmoid(z) - y) * class_weight[y as usize];
                for &(j, v) in x {
                    let j = j as usize;
                    let gj = grad * f64::from(v) + p.l2 * w[j];
                    g2[j] += gj * gj;
                    w[j] -= p.learning_rate * gj / g2[j].sqrt();
                }
                b_g2 += grad * grad;
                b -= p.learning_rate * grad / b_g2.sqrt();
            }
            let loss = log_loss(&val, val_targets, &w, b);
            if best.as_ref().is_none_or(|(l, ..)| loss < *l) {
                best = Some((loss, w.clone(), b, epoch));
            } else {
                // Past the best epoch: AdaGrad's steps only shrink, so later epochs rarely recover.
                break;
            }
        }
        let (_, w, b, best_epoch) = best.expect("at least one epoch");
        Ok(NgramBaseline {
            params: p,
            weights: w.into_iter().map(|x| x as f32).collect(),
            bias: b as f32,
            epochs_run,
            best_epoch,
        })
    }

    /// The probability-like score of each URL (before calibration).
    pub fn scores(&self, urls: &[&str]) -> Vec<f32> {
        urls.iter()
            .map(|u| {
                let z = f64::from(self.bias)
                    + features(u, &self.params)
                        .iter()
                        .map(|&(j, v)| f64::from(self.weights[j as usize]) * f64::from(v))
                        .sum::<f64>();
                sigmoid(z) as f32
            })
            .collect()
    }

    /// The parameters it was trained with.
    pub fn params(&self) -> &BaselineParams {
        &self.params
    }
}

fn log_loss(xs: &[Vec<(u32, f32)>], ys: &[f32], w: &[f64], b: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let total: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, &y)| {
            let z = b + x
                .iter()
                .map(|&(j, v)| w[j as usize] * f64::from(v))
                .sum::<f64>();
            let p = sigmoid(z).clamp(1e-7, 1.0 - 1e-7);
            if y >= 0.5 {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    total / xs.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_sorted_distinct_and_unit_length() {
        let p = BaselineParams::default();
        let f = features("http://a.com/aa", &p);
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
        let norm: f32 = f.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5, "found {norm} vs expected 1");
        assert_eq!(features("HTTP://A.com/aa", &p), f, "case does not matter");
    }

    #[test]
    fn a_separable_toy_set_is_learnt_and_the_best_epoch_kept() -> Result<()> {
        let urls = [
            "http://bank.com/login",
            "http://shop.org/cart",
            "http://paypal.verify-x.tk/x",
            "http://apple.verify-y.tk/y",
        ];
        let targets = [0.0, 0.0, 1.0, 1.0];
        let m = NgramBaseline::train(BaselineParams::default(), &urls, &targets, &urls, &targets)?;
        let s = m.scores(&["http://amazon.verify-z.tk/z", "http://news.com/today"]);
        assert!(s[0] > s[1], "found {} <= {}", s[0], s[1]);
        assert!(m.best_epoch >= 1 && m.best_epoch <= m.epochs_run);
        Ok(())
    }

    #[test]
    fn one_class_or_bad_params_are_refused() {
        let urls = ["http://a.com"];
        assert!(
            NgramBaseline::train(BaselineParams::default(), &urls, &[1.0], &urls, &[1.0]).is_err()
        );
        let bad = BaselineParams {
            bits: 40,
            ..BaselineParams::default()
        };
        assert!(NgramBaseline::train(bad, &urls, &[1.0], &urls, &[1.0]).is_err());
    }
}
