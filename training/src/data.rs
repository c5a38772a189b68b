//! Loading and checking the three splits.

use anyhow::{bail, Context, Result};
use lib_ml::{read_dataset, BadRow, ReadMode, Sample};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The split names, in order.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// One split as loaded.
#[derive(Debug, Clone)]
pub struct Split {
    /// `train`, `val` or `test`.
    pub name: &'static str,
    /// The file it came from.
    pub path: PathBuf,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The rows (after the row limit).
    pub samples: Vec<Sample>,
    /// Malformed rows that were skipped.
    pub skipped: Vec<BadRow>,
}

impl Split {
    /// The URLs, in order.
    pub fn urls(&self) -> Vec<&str> {
        self.samples.iter().map(|s| s.url.as_str()).collect()
    }
    /// The 0/1 targets, in order.
    pub fn targets(&self) -> Vec<f32> {
        self.samples
            .iter()
            .map(|s| s.label.index() as f32)
            .collect()
    }
    /// `[legitimate, phishing]` counts.
    pub fn class_counts(&self) -> [usize; 2] {
        lib_ml::class_counts(&self.samples)
    }
}

/// The data summary written to `data-report.json` by the check stage.
#[derive(Debug, Serialize)]
pub struct DataReport {
    /// Per split: file, hash, counts, skipped rows.
    pub splits: Vec<SplitReport>,
    /// URLs found in both train and test (must be 0).
    pub train_test_overlap: usize,
}

/// One split in the [`DataReport`].
#[derive(Debug, Serialize)]
pub struct SplitReport {
    /// Split name.
    pub name: String,
    /// The file.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Rows used.
    pub rows: usize,
    /// Legitimate rows.
    pub legitimate: usize,
    /// Phishing rows.
    pub phishing: usize,
    /// Share of phishing rows.
    pub phishing_share: f64,
    /// Skipped malformed rows, as `line N ...` messages.
    pub skipped: Vec<String>,
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Loads one split, skipping up to `max_bad_rows` malformed rows and keeping at most `limit` rows
/// (0 = all). The kept rows are evenly spaced through the file, so a small limit still sees both
/// classes of a file sorted by label.
pub fn load_split(
    dir: &Path,
    name: &'static str,
    max_bad_rows: usize,
    limit: usize,
) -> Result<Split> {
    if !dir.is_dir() {
        bail!(
            "data directory `{}` does not exist; set [data] dir in the params file or pass --data-dir",
            dir.display()
        );
    }
    let path = dir.join(format!("{name}.txt"));
    if !path.is_file() {
        bail!("missing {name} split: `{}` does not exist", path.display());
    }
    let ds = read_dataset(&path, ReadMode::SkipBadRows)?;
    if ds.skipped.len() > max_bad_rows {
        let first: Vec<String> = ds.skipped.iter().take(5).map(|b| b.to_string()).collect();
        bail!(
            "`{}` has {} malformed rows, more than max_bad_rows = {}; first ones:\n  {}",
            path.display(),
            ds.skipped.len(),
            max_bad_rows,
            first.join("\n  ")
        );
    }
    let mut samples = ds.samples;
    if limit > 0 && limit < samples.len() {
        let n = samples.len();
        samples = (0..limit).map(|i| samples[i * n / limit].clone()).collect();
    }
    if samples.is_empty() {
        bail!("the {name} split `{}` has no rows", path.display());
    }
    Ok(Split {
        name,
        sha256: sha256_file(&path)?,
        path,
        samples,
        skipped: ds.skipped,
    })
}

/// Loads train, val and test.
pub fn load_all(dir: &Path, max_bad_rows: usize, limit: usize) -> Result<[Split; 3]> {
    Ok([
        load_split(dir, SPLITS[0], max_bad_rows, limit)?,
        load_split(dir, SPLITS[1], max_bad_rows, limit)?,
        load_split(dir, SPLITS[2], max_bad_rows, limit)?,
    ])
}

/// Checks the splits and summarises them; fails when a test URL also occurs in training.
pub fn check(splits: &[Split; 3]) -> Result<DataReport> {
    let train: HashSet<&str> = splits[0].samples.iter().map(|s| s.url.as_str()).collect();
    let overlap = splits[2]
        .samples
        .iter()
        .filter(|s| train.contains(s.url.as_str()))
        .count();
    let report = DataReport {
        splits: splits
            .iter()
            .map(|s| {
                let [l, p] = s.class_counts();
                SplitReport {
                    name: s.name.into(),
                    path: s
                        .path
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    sha256: s.sha256.clone(),
                    rows: s.samples.len(),
                    legitimate: l,
                    phishing: p,
                    phishing_share: p as f64 / s.samples.len() as f64,
                    skipped: s.skipped.iter().map(|b| b.to_string()).collect(),
                }
            })
            .collect(),
        train_test_overlap: overlap,
    };
    if overlap > 0 {
        bail!("{overlap} test URLs also occur in the training split: the test metrics would be inflated");
    }
    Ok(report)
}
