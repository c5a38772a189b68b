//! The evaluation protocol: the in-distribution test split and sources that training and model
//! selection never see (other collectors, a later year, the original course's rows), each scored
//! by the released model and by the n-gram baseline, with the figures a release is judged on.
//!
//! Per set: accuracy, ROC-AUC, PR-AUC (average precision), false-positive rate and detection rate
//! at the operating threshold, detection rate at the threshold that gives 1% false positives on
//! the test split (so two models compare at the same cost in false alarms), expected calibration
//! error (15 equal-width bins) and the reliability curve behind it. A set with one label only
//! (JPCERT/CC, PhishTank) gets the detection rates; ranking and calibration figures need both.

use crate::metrics;
use anyhow::{bail, Context, Result};
use lib_ml::{read_dataset, ReadMode, Sample};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One evaluation set: where it comes from and its rows.
#[derive(Debug, Clone)]
pub struct EvalSet {
    /// Short name (`hannousse-2021`, `jpcert-2025`...).
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// What it is, for the report.
    pub note: &'static str,
    /// Its rows.
    pub samples: Vec<Sample>,
}

/// The held-out sources the protocol reads from the extra-data directory, with what each stands
/// for. None of them is read by training, early stopping, threshold or calibration.
pub const HELD_OUT: [(&str, &str); 3] = [
    (
        "hannousse-2021.txt",
        "other collectors (PhishTank/OpenPhish vs Alexa + crawl), 2020-21",
    ),
    (
        "jpcert-2025.txt",
        "a later year: JPCERT/CC confirmed phishing, Jan-Oct 2025 (phishing only)",
    ),
    (
        "phishtank-2020-2021.txt",
        "PhishTank dumps 2020-21 (phishing only)",
    ),
];

/// The rows of the original course dataset (two teams' 100-row slices), relative to the training
/// data directory.
pub const REMLA_SAMPLES: [&str; 2] = ["remla-samples/team10", "remla-samples/team3"];

fn read_set(path: &Path, name: String, note: &'static str) -> Result<EvalSet> {
    let ds = read_dataset(path, ReadMode::SkipBadRows)
        .with_context(|| format!("failed to read evaluation set `{}`", path.display()))?;
    if ds.samples.is_empty() {
        bail!("evaluation set `{}` has no rows", path.display());
    }
    Ok(EvalSet {
        name,
        path: path.to_path_buf(),
        note,
        samples: ds.samples,
    })
}

/// Reads the held-out sets: those in [`HELD_OUT`] from `extra_dir`, and the REMLA samples under
/// `data_dir` (every `.txt` of a team folder as one set). A missing file is an error naming it.
pub fn load_held_out(data_dir: &Path, extra_dir: &Path) -> Result<Vec<EvalSet>> {
    let mut sets = Vec::new();
    for (file, note) in HELD_OUT {
        let path = extra_dir.join(file);
        if !path.is_file() {
            bail!(
                "held-out set `{}` does not exist; set [evaluation] extra_dir in the params file (see ../shared/data/phishing-extra/README.md)",
                path.display()
            );
        }
        sets.push(read_set(
            &path,
            file.trim_end_matches(".txt").to_string(),
            note,
        )?);
    }
    let mut remla = Vec::new();
    for team in REMLA_SAMPLES {
        let dir = data_dir.join(team);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("failed to list `{}`", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        for f in files {
            remla.extend(read_set(&f, String::new(), "")?.samples);
        }
    }
    if remla.is_empty() {
        bail!(
            "no REMLA sample rows under `{}`",
            data_dir.join("remla-samples").display()
        );
    }
    sets.push(EvalSet {
        name: "remla-samples".into(),
        path: data_dir.join("remla-samples"),
        note: "rows of the original course dataset (teams 10 and 3), 2024",
        samples: remla,
    });
    Ok(sets)
}

/// One bin of a reliability curve.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReliabilityBin {
    /// Lower edge of the score bin.
    pub from: f64,
    /// Rows whose score fell in it.
    pub count: usize,
    /// Their mean score.
    pub mean_score: f64,
    /// Their share of phishing rows.
    pub phishing_share: f64,
}

/// The protocol's figures for one model on one set.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SetMetrics {
    /// Rows.
    pub count: usize,
    /// Phishing rows.
    pub phishing: usize,
    /// Share of correct verdicts at the operating threshold.
    pub accuracy: f64,
    /// Share of phishing rows called phishing at the operating threshold.
    pub detection_rate: f64,
    /// Share of phishing rows called phishing at the threshold that gives 1% false positives on
    /// the test split.
    pub detection_rate_at_test_fpr_1pct: f64,
    /// Share of legitimate rows called phishing at the operating threshold (`None`: no
    /// legitimate rows).
    pub false_positive_rate: Option<f64>,
    /// Area under the ROC curve (`None` with one label only).
    pub roc_auc: Option<f64>,
    /// Average precision, the area under the precision-recall curve (`None` with one label only).
    pub pr_auc: Option<f64>,
    /// Expected calibration error over 15 equal-width bins (`None` with one label only: the
    /// share of phishing in every bin would be 1).
    pub ece: Option<f64>,
    /// The reliability curve behind the ECE (empty with one label only).
    pub reliability: Vec<ReliabilityBin>,
}

/// Bins of the reliability curve and the ECE.
pub const CALIBRATION_BINS: usize = 15;

/// Average precision: the mean of the precision at each phishing row, rows ranked by score
/// (ties broken against the model: legitimate rows first among equal scores).
pub fn average_precision(scores: &[f32], targets: &[f32]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| {
        scores[b]
            .total_cmp(&scores[a])
            .then((targets[a] >= 0.5).cmp(&(targets[b] >= 0.5)))
    });
    let (mut tp, mut sum) = (0usize, 0f64);
    for (rank, &i) in idx.iter().enumerate() {
        if targets[i] >= 0.5 {
            tp += 1;
            sum += tp as f64 / (rank + 1) as f64;
        }
    }
    if tp == 0 {
        0.0
    } else {
        sum / tp as f64
    }
}

/// The reliability curve and the expected calibration error (row-weighted mean |score - share|).
pub fn calibration(scores: &[f32], targets: &[f32]) -> (Vec<ReliabilityBin>, f64) {
    let mut sums = vec![(0usize, 0f64, 0usize); CALIBRATION_BINS];
    for (&s, &t) in scores.iter().zip(targets) {
        let b = ((f64::from(s) * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        sums[b].0 += 1;
        sums[b].1 += f64::from(s);
        sums[b].2 += usize::from(t >= 0.5);
    }
    let n = scores.len().max(1) as f64;
    let mut ece = 0.0;
    let bins = sums
        .iter()
        .enumerate()
        .filter(|(_, (c, ..))| *c > 0)
        .map(|(i, &(c, s, p))| {
            let (mean, share) = (s / c as f64, p as f64 / c as f64);
            ece += c as f64 / n * (mean - share).abs();
            ReliabilityBin {
                from: i as f64 / CALIBRATION_BINS as f64,
                count: c,
                mean_score: mean,
                phishing_share: share,
            }
        })
        .collect();
    (bins, ece)
}

/// The lowest score at or above which at most a share `fpr` of `legit_scores` is called phishing
/// (the reference threshold for comparing detection rates at equal false alarms).
pub fn threshold_at_fpr(legit_scores: &[f32], fpr: f64) -> f32 {
    if legit_scores.is_empty() {
        return 0.5;
    }
    let mut s = legit_scores.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let k = ((fpr * s.len() as f64).floor() as usize).min(s.len() - 1);
    // Strictly above the (k+1)-th highest legitimate score: at most k false positives.
    f32::from_bits(s[k].to_bits() + 1).max(s[k])
}

/// The protocol's figures for `scores` against `targets`.
pub fn evaluate(scores: &[f32], targets: &[f32], threshold: f32, fpr_threshold: f32) -> SetMetrics {
    let phishing = targets.iter().filter(|&&t| t >= 0.5).count();
    let legit = targets.len() - phishing;
    let called = |t: f32, want: bool| {
        scores
            .iter()
            .zip(targets)
            .filter(|(&s, &y)| (y >= 0.5) == want && s >= t)
            .count()
    };
    let both = phishing > 0 && legit > 0;
    let m = metrics::compute(scores, targets, threshold);
    let (reliability, ece) = if both {
        calibration(scores, targets)
    } else {
        (Vec::new(), f64::NAN)
    };
    let rate = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    SetMetrics {
        count: targets.len(),
        phishing,
        accuracy: m.accuracy,
        detection_rate: rate(called(threshold, true), phishing),
        detection_rate_at_test_fpr_1pct: rate(called(fpr_threshold, true), phishing),
        false_positive_rate: (legit > 0).then(|| rate(called(threshold, false), legit)),
        roc_auc: both.then_some(m.roc_auc),
        pr_auc: both.then(|| average_precision(scores, targets)),
        ece: both.then_some(ece),
        reliability,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_is_one_for_a_perfect_ranking_and_counts_ties_against_the_model() {
        assert_eq!(average_precision(&[0.9, 0.8, 0.1], &[1.0, 1.0, 0.0]), 1.0);
        // A legitimate row ranked first: precisions 1/2 and 2/3.
        let ap = average_precision(&[0.9, 0.8, 0.7], &[0.0, 1.0, 1.0]);
        assert!((ap - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12, "found {ap}");
        let tied = average_precision(&[0.5, 0.5], &[1.0, 0.0]);
        assert_eq!(tied, 0.5);
    }

    #[test]
    fn a_calibrated_model_has_zero_ece_and_an_overconfident_one_does_not() {
        // Score 0.25 on four rows of which one is phishing: calibrated.
        let (bins, ece) = calibration(&[0.25; 4], &[1.0, 0.0, 0.0, 0.0]);
        assert_eq!(bins.len(), 1);
        assert!(ece.abs() < 1e-6, "found {ece}");
        let (_, ece) = calibration(&[0.99; 4], &[1.0, 0.0, 0.0, 0.0]);
        assert!((ece - 0.74).abs() < 1e-6, "found {ece} vs expected 0.74");
    }

    #[test]
    fn the_fpr_threshold_lets_through_at_most_that_share_of_legitimate_rows() {
        let legit: Vec<f32> = (0..200).map(|i| i as f32 / 200.0).collect();
        let t = threshold_at_fpr(&legit, 0.01);
        let fp = legit.iter().filter(|&&s| s >= t).count();
        assert_eq!(fp, 2, "threshold {t}");
    }

    #[test]
    fn a_phishing_only_set_gets_detection_rates_and_no_ranking_figures() {
        let m = evaluate(&[0.9, 0.2, 0.6], &[1.0, 1.0, 1.0], 0.5, 0.7);
        assert!((m.detection_rate - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.detection_rate_at_test_fpr_1pct - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            (m.roc_auc, m.pr_auc, m.false_positive_rate),
            (None, None, None)
        );
        assert!(m.ece.is_none() && m.reliability.is_empty());
    }
}
