//! The model card: what the released model is, what it was trained on and how well it does.

use crate::metrics::Metrics;
use crate::params::Params;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `model-card.json`, shipped beside `model.onnx`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    /// Always `phishing-char-cnn`.
    pub name: String,
    /// The released version.
    pub version: String,
    /// RFC 3339 UTC time of the export.
    pub created: String,
    /// What the model does, in one sentence.
    pub description: String,
    /// Model input.
    pub input: TensorSpec,
    /// Model output.
    pub output: TensorSpec,
    /// Class index → label name.
    pub labels: BTreeMap<String, String>,
    /// Score at or above which the verdict is phishing.
    pub threshold: f32,
    /// The tokenizer file beside the model.
    pub tokenizer: String,
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
