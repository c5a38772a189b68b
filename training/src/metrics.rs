//! Classification metrics from scores and 0/1 targets.

use serde::{Deserialize, Serialize};

/// The metrics of one split at one threshold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    /// Rows scored.
    pub count: usize,
    /// Share of correct verdicts.
    pub accuracy: f64,
    /// TP / (TP + FP), 0 when nothing was called phishing.
    pub precision: f64,
    /// TP / (TP + FN).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Area under the ROC curve (ties count half).
    pub roc_auc: f64,
    /// `[[TN, FP], [FN, TP]]`: rows are the true class, columns the verdict.
    pub confusion_matrix: [[usize; 2]; 2],
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Computes the metrics; a score `>= threshold` is a phishing verdict.
pub fn compute(scores: &[f32], targets: &[f32], threshold: f32) -> Metrics {
    assert_eq!(scores.len(), targets.len());
    let mut cm = [[0usize; 2]; 2];
    for (&s, &t) in scores.iter().zip(targets) {
        cm[(t >= 0.5) as usize][(s >= threshold) as usize] += 1;
    }
    let [[tn, fp], [fn_, tp]] = cm;
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    Metrics {
        count: scores.len(),
        accuracy: ratio(tp + tn, scores.len()),
        precision,
        recall,
        f1: if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        },
        roc_auc: roc_auc(scores, targets),
        confusion_matrix: cm,
    }
}

/// ROC AUC by the rank-sum (Mann-Whitney) formula with average ranks for ties; 0.5 when one class
/// is missing.
pub fn roc_auc(scores: &[f32], targets: &[f32]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut pos) = (0.0f64, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if targets[k] >= 0.5 {
                rank_sum += avg_rank;
                pos += 1;
            }
        }
        i = j + 1;
    }
    let neg = scores.len() - pos;
    if pos == 0 || neg == 0 {
        return 0.5;
    }
    (rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos * neg) as f64
}

/// Points `(false-positive rate, true-positive rate)` of the ROC curve, from (0,0) to (1,1).
pub fn roc_curve(scores: &[f32], targets: &[f32]) -> Vec<(f64, f64)> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let pos = targets.iter().filter(|&&t| t >= 0.5).count().max(1) as f64;
    let neg = (targets.len() as f64 - pos).max(1.0);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut points = vec![(0.0, 0.0)];
    for (n, &k) in idx.iter().enumerate() {
        if targets[k] >= 0.5 {
            tp += 1.0
        } else {
            fp += 1.0
        }
        let last = n + 1 == idx.len();
        if last || scores[idx[n + 1]] != scores[k] {
            points.push((fp / neg, tp / pos));
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_ranking_has_auc_one_and_reversed_zero() {
        let t = [0.0, 0.0, 1.0, 1.0];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &t), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &t), 0.0);
    }

    #[test]
    fn ties_count_half() {
        assert_eq!(roc_auc(&[0.5, 0.5], &[0.0, 1.0]), 0.5);
        // one positive above one negative, one tied: (1 + 0.5) / 2
        assert_eq!(roc_auc(&[0.2, 0.6, 0.6, 0.9], &[0.0, 0.0, 1.0, 1.0]), 0.875);
    }

    #[test]
    fn confusion_matrix_rows_are_truth_columns_are_verdicts() {
        let m = compute(&[0.9, 0.8, 0.1, 0.6], &[1.0, 0.0, 0.0, 1.0], 0.5);
        assert_eq!(m.confusion_matrix, [[1, 1], [0, 2]]);
        assert_eq!(m.accuracy, 0.75);
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.recall, 1.0);
        assert!((m.f1 - 0.8).abs() < 1e-12);
    }

    #[test]
    fn roc_curve_runs_from_origin_to_one_one() {
        let c = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]);
        assert_eq!(c.first(), Some(&(0.0, 0.0)));
        assert_eq!(c.last(), Some(&(1.0, 1.0)));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }
}
