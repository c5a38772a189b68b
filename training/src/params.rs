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
}

fn urls_kind() -> String {
    "urls".into()
}

/// `[model]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    /// The architecture: only `original` (the REMLA char-CNN) so far.
    pub architecture: String,
    /// Ids per URL.
    pub sequence_length: usize,
    /// Embedding width.
    pub embedding_dim: usize,
    /// Filters per convolution.
    pub filters: usize,
    /// Dropout rate after each convolution block (training only).
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
        params
            .validate()
            .with_context(|| format!("invalid params file `{}`", path.display()))?;
        Ok(params)
    }

    /// Checks values a run cannot work with.
    pub fn validate(&self) -> Result<()> {
        let (m, t) = (&self.model, &self.train);
        if m.architecture != "original" {
            bail!(
                "unknown architecture `{}`, expected `original`",
                m.architecture
            );
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
        for f in ["params.toml", "params-tiny.toml", "params-mixed.toml"] {
            let p = Params::load(&dir.join(f))?;
            assert_eq!(p.model.sequence_length, 200, "{f}");
            assert!(p.data.dir.ends_with("shared/data/phishing"), "{f}");
        }
        Ok(())
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() -> Result<()> {
        let good =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("params.toml"))?;
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
        Ok(())
    }
}
