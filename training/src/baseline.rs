//! The baseline every released model must beat: logistic regression on hashed character n-grams.
//!
//! Each URL (lower-cased, framed by `^` and `$` so the ends are features of their own) becomes the
//! counts of its character 1- to 5-grams, hashed into 2^`bits` buckets (the hashing trick) and
//! scaled to unit length. Weights are fitted with AdaGrad on the log loss with balanced class
//! weights and a little L2; the epoch with the lowest validation log loss is kept. A minute or
//! less on 2 cores for the training split. Deterministic: same data, same weights.

use anyhow::{bail, Result};
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

/// The sparse, unit-length n-gram vector of `url` (`lib_ml::ngrams`, the whole URL).
pub fn features(url: &str, p: &BaselineParams) -> Vec<(u32, f32)> {
    let spec = lib_ml::ngrams::NgramSpec {
        bits: p.bits,
        min_n: p.min_n,
        max_n: p.max_n,
        max_chars: 0,
    };
    lib_ml::ngrams::ngram_features(url, &spec)
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
        let fp = crate::ngram::FitParams {
            epochs: p.epochs,
            learning_rate: p.learning_rate,
            l2: p.l2,
            seed: p.seed,
        };
        let fitted = crate::ngram::fit(
            &fp,
            1usize << p.bits,
            &train,
            train_targets,
            &val,
            val_targets,
            &mut |_| {},
        )?;
        Ok(NgramBaseline {
            params: p,
            weights: fitted.weights.into_iter().map(|x| x as f32).collect(),
            bias: fitted.bias as f32,
            epochs_run: fitted.history.len(),
            best_epoch: fitted.best_epoch,
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
