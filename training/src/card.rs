//! The model card: what the released model is, what it was trained on and how well it does.

use crate::metrics::Metrics;
use crate::params::Params;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `model-card.json`, shipped beside `model.onnx`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    /// `phishing-url-ngram` or `phishing-char-cnn`.
    pub name: String,
    /// The released version.
    pub version: String,
    /// RFC 3339 UTC time of the export.
    pub created: String,
    /// What the model does, in one sentence.
    pub description: String,
    /// Model inputs.
    pub inputs: Vec<TensorSpec>,
    /// Model output.
    pub output: TensorSpec,
    /// Class index → label name.
    pub labels: BTreeMap<String, String>,
    /// Score at or above which the verdict is phishing.
    pub threshold: f32,
    /// The files beside the model that turn a URL into its inputs.
    pub preprocessing: Vec<String>,
    /// The URL analysis the n-gram model reads: list versions and sizes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_signals: Option<UrlSignalsFacts>,
    /// Data files and their SHA-256.
    pub data: BTreeMap<String, DataFile>,
    /// The params the model was trained with.
    pub params: Params,
    /// Metrics per split.
    pub metrics: BTreeMap<String, Metrics>,
    /// Training facts: epochs run, best epoch, time, throughput.
    pub training: TrainingFacts,
    /// Framework versions.
    pub frameworks: BTreeMap<String, String>,
    /// Export check: largest |tract - candle| score difference over `parity_urls` test URLs.
    pub export_parity: Parity,
    /// The three verdict bands the UI shows, chosen on the validation split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bands: Option<Bands>,
}

/// Scores below `likely_safe_below` are "likely safe", at or above `likely_phishing_from`
/// "likely phishing", between them "suspicious".
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Bands {
    /// The largest score below which at least 99% of validation URLs are legitimate.
    pub likely_safe_below: f32,
    /// The smallest score from which at least 99% of validation URLs are phishing.
    pub likely_phishing_from: f32,
}

impl Bands {
    /// The bands of `scores` (with `targets`, 1 = phishing) at `purity` (0.99 for the card).
    pub fn from_validation(scores: &[f32], targets: &[f32], purity: f64) -> Bands {
        let mut rows: Vec<(f32, bool)> = scores
            .iter()
            .zip(targets)
            .map(|(&s, &t)| (s, t >= 0.5))
            .collect();
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Walking up from the lowest score: the last cut where everything below is pure enough.
        let (mut legit, mut safe_below) = (0usize, 0.0f32);
        for (i, &(s, phishing)) in rows.iter().enumerate() {
            let below = i;
            if below > 0 && legit as f64 >= purity * below as f64 && (i == 0 || rows[i - 1].0 < s) {
                safe_below = s;
            }
            legit += usize::from(!phishing);
        }
        // Walking down from the highest score, likewise for phishing.
        let (mut phish, mut phishing_from) = (0usize, 1.0f32);
        for (k, &(s, phishing)) in rows.iter().enumerate().rev() {
            phish += usize::from(phishing);
            let at_or_above = rows.len() - k;
            if phish as f64 >= purity * at_or_above as f64 && (k == 0 || rows[k - 1].0 < s) {
                phishing_from = s;
            }
        }
        Bands {
            likely_safe_below: safe_below.min(phishing_from),
            likely_phishing_from: phishing_from.max(safe_below),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_are_pure_on_the_data_they_come_from() {
        // Legitimate rows score 0.0..0.5, phishing 0.3..1.0: the overlap is the middle band.
        let mut scores = Vec::new();
        let mut targets = Vec::new();
        for i in 0..500 {
            scores.push(i as f32 / 1000.0);
            targets.push(0.0);
            scores.push(0.3 + i as f32 * 0.7 / 500.0);
            targets.push(1.0);
        }
        let b = Bands::from_validation(&scores, &targets, 0.99);
        assert!(
            b.likely_safe_below > 0.25 && b.likely_safe_below <= 0.31,
            "{b:?}"
        );
        assert!(
            b.likely_phishing_from >= 0.49 && b.likely_phishing_from < 0.55,
            "{b:?}"
        );
        let pure = |lo: f32, hi: f32, want: f32| {
            let rows: Vec<f32> = scores
                .iter()
                .zip(&targets)
                .filter(|(s, _)| (lo..hi).contains(*s))
                .map(|(_, t)| *t)
                .collect();
            rows.iter().filter(|&&t| t == want).count() as f64 / rows.len() as f64
        };
        assert!(pure(0.0, b.likely_safe_below, 0.0) >= 0.99);
        assert!(pure(b.likely_phishing_from, 2.0, 1.0) >= 0.99);
    }
}

/// The URL analysis' lists, as built into the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UrlSignalsFacts {
    /// The Public Suffix List's version.
    pub public_suffix_list: String,
    /// Known (Tranco) registrable domains.
    pub known_domains: usize,
    /// Their size in `known-domains.bin`.
    pub known_domains_bytes: usize,
    /// The ranks the tiers end at.
    pub known_domain_tiers: Vec<u32>,
    /// Brands learned from the training split.
    pub brands: usize,
    /// The signal codes, in input order.
    pub signals: Vec<String>,
}

/// A tensor's name, type and shape (`batch` is dynamic).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Name in the ONNX graph.
    pub name: String,
    /// Element type.
    pub dtype: String,
    /// Dimensions; strings are symbolic.
    pub shape: Vec<serde_json::Value>,
}

/// One data file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataFile {
    /// Path as given.
    pub path: String,
    /// SHA-256 of the whole file.
    pub sha256: String,
    /// Rows used.
    pub rows: usize,
}

/// How training went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingFacts {
    /// Epochs run.
    pub epochs_run: usize,
    /// Epoch whose weights were kept.
    pub best_epoch: usize,
    /// Wall time of training including validation, seconds.
    pub seconds: f64,
    /// Mean training throughput.
    pub samples_per_second: f64,
    /// Platt scaling (a, c) fitted on validation and folded into the weights, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<(f64, f64)>,
    /// The weights stored as one-byte codes, and what that changed, if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<crate::ngram::Quantization>,
    /// Peak resident memory of the training process, bytes.
    pub peak_memory_bytes: Option<u64>,
}

/// The export check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Parity {
    /// URLs compared.
    pub urls: usize,
    /// Largest absolute score difference.
    pub max_abs_diff: f64,
}
