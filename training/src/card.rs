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
