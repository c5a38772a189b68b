//! The params file that drives a run.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything a training run depends on, as read from the params file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Where the data comes from.
    pub data: DataParams,
    /// The network.
    pub model: ModelParams,
    /// The optimisation.
    pub train: TrainParams,
    /// The `ngram-url` architecture's settings (`[ngram]`); required by it, ignored otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ngram: Option<NgramParams>,
}

/// `[ngram]`: the `ngram-url` architecture (see `ngram.rs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NgramParams {
    /// log2 of the n-gram buckets.
    pub bits: u32,
    /// Shortest n-gram.
    pub min_n: usize,
    /// Longest n-gram.
    pub max_n: usize,
    /// Characters of a URL read, from its start.
    pub max_chars: usize,
    /// URL analysis signals as inputs (false: n-grams only, the ablation).
    pub signals: bool,
    /// N-grams of URLs on known domains in a namespace of their own (see `lib_ml::encoder`).
    #[serde(default)]
    pub known_namespace: bool,
    /// A known site's URL that passes you on to an unknown site is read from the onward address
    /// on (see `lib_ml::encoder`).
    #[serde(default)]
    pub read_onward: bool,
    /// The URL's shape (lengths and counts, binned, alone and with known-or-not) as tokens
    /// (see `lib_ml::encoder::EncoderSpec::shape`).
    #[serde(default)]
    pub shape: bool,
    /// Share of training URLs added once more inside a link wrapper or open redirect of a
    /// known site, with their own label (`augment::WRAPPERS`; 0, the default: none).
    #[serde(default)]
    pub wrap: f64,
    /// Ranked domain list (Tranco) for known domains and the brand pool (relative paths resolve
    /// against the params file).
    pub known_domains: PathBuf,
    /// Ranks at which the known-domain tiers end.
    pub known_tiers: Vec<u32>,
    /// Brands are looked for among this many top domains.
    pub brand_pool: usize,
    /// ... and kept when at least this many phishing training rows use them out of place.
    pub brand_min_rows: usize,
    /// Passes over the data at most.
    pub epochs: usize,
    /// AdaGrad's base rate.
    pub learning_rate: f64,
    /// L2 per step.
    pub l2: f64,
    /// Fit Platt scaling on validation and fold it into the weights.
    pub calibrate: bool,
    /// How the exported weights are stored: `f32`, or `codebook8` (one byte a weight, an index
    /// into 256 values fitted to the weights: a quarter of the bytes; the model is quantized
    /// after calibration and evaluated as quantized, so every figure is the shipped model's).
    #[serde(default = "f32_weights")]
    pub weights: String,
}

fn f32_weights() -> String {
    "f32".into()
}

/// `[data]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataParams {
    /// Folder holding train.txt, val.txt, test.txt (relative paths resolve against the params file).
    pub dir: PathBuf,
    /// A split with more malformed rows than this fails the run.
    pub max_bad_rows: usize,
    /// Use at most this many rows per split (0 = all).
    pub limit: usize,
    /// More training sources beside `dir`'s splits (`[[data.sources]]`); none by default.
    #[serde(default)]
    pub sources: Vec<SourceParams>,
}

/// `[[data.sources]]`: one more file of training data. Its rows are split by a hash of their
/// host into training (90%) and validation (10%), so a site is never on both sides; the test
/// split and the held-out sources of the evaluation protocol stay untouched.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceParams {
    /// The file (relative paths resolve against the params file).
    pub file: PathBuf,
    /// `urls` (`label<TAB>url` rows) or `domains` (one bare domain a line, read as the
    /// legitimate URL `https://<domain>/`).
    #[serde(default = "urls_kind")]
    pub kind: String,
    /// Keep at most this many rows, evenly spaced through the file (0 = all).
    #[serde(default)]
    pub max_rows: usize,
    /// Leave out rows on a hosting service (a Public Suffix List private-section suffix such
    /// as `github.io`, or `lib_ml::analysis::FREE_HOSTING`): for a source that holds one
    /// label only, whose hosted rows would teach that a hosting service means that label.
    #[serde(default)]
    pub skip_hosted: bool,
}

/// The original char-CNN's sizes, the defaults of `[model]`.
mod cnn_defaults {
    pub fn sequence_length() -> usize {
        200
    }
    pub fn embedding_dim() -> usize {
        50
    }
    pub fn filters() -> usize {
        128
    }
    pub fn dropout() -> f32 {
        0.2
    }
}

fn urls_kind() -> String {
    "urls".into()
}

/// `[model]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    /// The architecture: `original` (the REMLA char-CNN) or `ngram-url` (hashed n-grams and URL
    /// analysis signals, see `[ngram]`).
    pub architecture: String,
    /// Ids per URL (char-CNN).
    #[serde(default = "cnn_defaults::sequence_length")]
    pub sequence_length: usize,
    /// Embedding width (char-CNN).
    #[serde(default = "cnn_defaults::embedding_dim")]
    pub embedding_dim: usize,
    /// Filters per convolution (char-CNN).
    #[serde(default = "cnn_defaults::filters")]
    pub filters: usize,
    /// Dropout rate after each convolution block (char-CNN, training only).
    #[serde(default = "cnn_defaults::dropout")]
    pub dropout: f32,
    /// The version the exported model is released as.
    pub version: String,
}

/// `[train]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// Upper bound on epochs.
    pub epochs: usize,
    /// Samples per optimiser step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Early-stopping patience in epochs, on validation loss.
    pub patience: usize,
    /// After an epoch whose validation loss did not improve, the learning rate is multiplied by
    /// this (Keras' `ReduceLROnPlateau` with patience 1). 1 keeps it constant, as the original did.
    #[serde(default = "no_decay")]
    pub lr_plateau_factor: f64,
    /// Probability that a training URL is replaced, for one epoch, by a meaning-preserving
    /// rewrite of itself (http<->https, www., trailing slash; see `augment`). 0, the default, is
    /// the original training.
    #[serde(default)]
    pub augment: f64,
    /// Seed for initialisation, shuffling and dropout.
    pub seed: u64,
    /// Score at or above which a URL is called phishing.
    pub threshold: f32,
}

fn no_decay() -> f64 {
    1.0
}

impl Params {
    /// Reads and validates a params file; a relative data dir becomes relative to the file.
    pub fn load(path: &Path) -> Result<Params> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read params file `{}`", path.display()))?;
        let mut params: Params = toml::from_str(&text)
            .with_context(|| format!("invalid params file `{}`", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        if params.data.dir.is_relative() {
            params.data.dir = base.join(&params.data.dir);
        }
        for s in &mut params.data.sources {
            if s.file.is_relative() {
                s.file = base.join(&s.file);
            }
        }
        if let Some(n) = &mut params.ngram {
            if n.known_domains.is_relative() {
                n.known_domains = base.join(&n.known_domains);
            }
        }
        params
            .validate()
            .with_context(|| format!("invalid params file `{}`", path.display()))?;
        Ok(params)
    }

    /// Checks values a run cannot work with.
    pub fn validate(&self) -> Result<()> {
        let (m, t) = (&self.model, &self.train);
        match (m.architecture.as_str(), &self.ngram) {
            ("original", _) => {}
            ("ngram-url", Some(n)) => {
                lib_ml::ngrams::NgramSpec {
                    bits: n.bits,
                    min_n: n.min_n,
                    max_n: n.max_n,
                    max_chars: n.max_chars,
                }
                .validate()
                .map_err(anyhow::Error::msg)?;
                if n.max_chars == 0
                    || n.epochs == 0
                    || n.learning_rate.is_nan()
                    || n.learning_rate <= 0.0
                    || n.l2 < 0.0
                {
                    bail!("[ngram] max_chars, epochs and learning_rate must be positive, l2 not negative");
                }
                if !(0.0..=1.0).contains(&n.wrap) {
                    bail!("[ngram] wrap {} must be in [0, 1]", n.wrap);
                }
                if !matches!(n.weights.as_str(), "f32" | "codebook8") {
                    bail!(
                        "[ngram] weights `{}`: expected `f32` or `codebook8`",
                        n.weights
                    );
                }
                if n.known_tiers.is_empty()
                    || n.known_tiers.len() > 3
                    || n.known_tiers.windows(2).any(|w| w[0] >= w[1])
                {
                    bail!("[ngram] known_tiers must be 1 to 3 ascending ranks");
                }
            }
            ("ngram-url", None) => bail!("architecture `ngram-url` needs an [ngram] section"),
            (other, _) => {
                bail!("unknown architecture `{other}`, expected `original` or `ngram-url`")
            }
        }
        // The three valid-padded pools need at least 3^4 positions after the first convolution.
        if m.sequence_length < 83 {
            bail!(
                "sequence_length {} is too short for the architecture (minimum 83)",
                m.sequence_length
            );
        }
        if !(0.0..1.0).contains(&m.dropout) {
            bail!("dropout {} must be in [0, 1)", m.dropout);
        }
        if m.embedding_dim == 0 || m.filters == 0 || t.batch_size == 0 || t.epochs == 0 {
            bail!("embedding_dim, filters, batch_size and epochs must be positive");
        }
        if t.learning_rate.is_nan() || t.learning_rate <= 0.0 {
            bail!("learning_rate {} must be positive", t.learning_rate);
        }
        if !(t.lr_plateau_factor > 0.0 && t.lr_plateau_factor <= 1.0) {
            bail!(
                "lr_plateau_factor {} must be in (0, 1]",
                t.lr_plateau_factor
            );
        }
        if !(0.0..=1.0).contains(&t.augment) {
            bail!("augment {} must be in [0, 1]", t.augment);
        }
        for s in &self.data.sources {
            if s.kind != "urls" && s.kind != "domains" {
                bail!(
                    "source `{}` has kind `{}`, expected `urls` or `domains`",
                    s.file.display(),
                    s.kind
                );
            }
            let name = s.file.file_name().unwrap_or_default().to_string_lossy();
            if crate::holdout::HELD_OUT
                .iter()
                .any(|(held, _)| *held == name)
            {
                bail!(
                    "source `{}` is a held-out set of the evaluation protocol; training on it would make its figures meaningless",
                    s.file.display()
                );
            }
        }
        if !(0.0..=1.0).contains(&t.threshold) {
            bail!("threshold {} must be in [0, 1]", t.threshold);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_params_files_are_valid() -> Result<()> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        for f in [
            "params.toml",
            "params-char-cnn.toml",
            "params-tiny.toml",
            "params-mixed.toml",
        ] {
            let p = Params::load(&dir.join(f))?;
            assert_eq!(p.model.sequence_length, 200, "{f}");
            assert!(p.data.dir.ends_with("shared/data/phishing"), "{f}");
        }
        let release = Params::load(&dir.join("params.toml"))?;
        assert_eq!(release.model.architecture, "ngram-url");
        assert!(release.ngram.is_some_and(|n| n.known_domains.is_relative()
            || n.known_domains.ends_with("tranco-top100k-domains.txt")));
        Ok(())
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() -> Result<()> {
        let good = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("params-char-cnn.toml"),
        )?;
        for (bad, what) in [
            (
                good.replace("seed = 42", "seed = 42\nsed = 1"),
                "unknown field",
            ),
            (
                good.replace("dropout = 0.2", "dropout = 1.5"),
                "dropout 1.5",
            ),
            (good.replace("\"original\"", "\"lstm\""), "`lstm`"),
            (
                good.replace("lr_plateau_factor = 0.5", "lr_plateau_factor = 0"),
                "lr_plateau_factor 0 must be",
            ),
            (
                good.replace("augment = 0.5", "augment = 2"),
                "augment 2 must be",
            ),
            (
                good.replace(
                    "limit = 0",
                    "limit = 0\n[[data.sources]]\nfile = \"x/hannousse-2021.txt\"",
                ),
                "is a held-out set of the evaluation protocol",
            ),
            (
                good.replace(
                    "limit = 0",
                    "limit = 0\n[[data.sources]]\nfile = \"x.txt\"\nkind = \"csv\"",
                ),
                "has kind `csv`, expected `urls` or `domains`",
            ),
        ] {
            let err = toml::from_str::<Params>(&bad)
                .map_err(anyhow::Error::from)
                .and_then(|p| p.validate())
                .unwrap_err();
            assert!(format!("{err:#}").contains(what), "{err:#}");
        }
        let ngram =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("params.toml"))?;
        for (bad, what) in [
            (ngram.replace("bits = 20", "bits = 30"), "bits 30"),
            (
                ngram.replace(
                    "known_tiers = [1000, 10000, 100000]",
                    "known_tiers = [10, 5]",
                ),
                "known_tiers",
            ),
            (
                ngram.replace("[ngram]", "[unused]"),
                "unknown field `unused`",
            ),
            (
                ngram.replace("weights = \"codebook8\"", "weights = \"int4\""),
                "weights `int4`",
            ),
            (
                ngram.replace("wrap = 0.0", "wrap = 1.5"),
                "wrap 1.5 must be",
            ),
        ] {
            let err = toml::from_str::<Params>(&bad)
                .map_err(anyhow::Error::from)
                .and_then(|p| p.validate())
                .unwrap_err();
            assert!(format!("{err:#}").contains(what), "{err:#}");
        }
        Ok(())
    }
}
