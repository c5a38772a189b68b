//! Feedback rows: what a user said about a verdict, kept for retraining.
//!
//! Each row gets its id from an atomic `increment` of `feedback:seq` and is then written with one
//! `set` under its own key, so concurrent writers never overwrite each other and a row is either
//! fully stored or absent. Export turns the rows into the training format, `label<TAB>url`, with
//! the label corrected where the user disagreed.

use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// The counter that numbers rows.
pub const SEQ_KEY: &str = "feedback:seq";
/// Prefix of row keys.
pub const ROW_PREFIX: &str = "feedback:row:";

/// One stored piece of feedback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Sequence number (1-based).
    pub id: i64,
    /// The URL the verdict was about.
    pub url: String,
    /// The verdict the user saw: `phishing` or `legitimate`.
    pub label: String,
    /// Whether the user agreed with it.
    pub agree: bool,
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The deployment that served the verdict (`deployment_version`).
    #[serde(default)]
    pub version: String,
    /// The score the user was shown, if the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The reason codes the user was shown, in order (empty if the client sent none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// What the user was shown with the verdict, kept with the row so that disagreements can be
/// analysed per score and per reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shown {
    /// The score.
    pub score: Option<f64>,
    /// The reason codes.
    pub reasons: Vec<String>,
}

impl Row {
    /// The label the user says is right.
    pub fn corrected_label(&self) -> &str {
        match (self.agree, self.label.as_str()) {
            (true, l) => l,
            (false, "phishing") => "legitimate",
            (false, _) => "phishing",
        }
    }
}

/// The key of row `id` (zero-padded so keys sort by id).
pub fn row_key(id: i64) -> String {
    format!("{ROW_PREFIX}{id:012}")
}

/// Stores a row (its `id` is assigned here) and returns the id.
pub fn store(
    store: &dyn Store,
    url: &str,
    label: &str,
    agree: bool,
    time_ms: u64,
    version: &str,
    shown: Shown,
) -> Result<i64, StoreError> {
    let id = store.increment(SEQ_KEY, 1)?;
    let row = Row {
        id,
        url: url.to_string(),
        label: label.to_string(),
        agree,
        time_ms,
        version: version.to_string(),
        score: shown.score,
        reasons: shown.reasons,
    };
    let bytes = serde_json::to_vec(&row).map_err(|e| e.to_string())?;
    store.set(&row_key(id), &bytes)?;
    Ok(id)
}

/// Every stored row, by id. Rows that cannot be read are reported, not skipped silently.
pub fn rows(store: &dyn Store) -> Result<Vec<Row>, StoreError> {
    let mut keys: Vec<String> = store
        .keys()?
        .into_iter()
        .filter(|k| k.starts_with(ROW_PREFIX))
        .collect();
    keys.sort();
    let mut out = Vec::with_capacity(keys.len());
    // Batches keep each call to the store small.
    for chunk in keys.chunks(256) {
        for (key, value) in chunk.iter().zip(store.get_many(chunk)?) {
            let Some(bytes) = value else { continue };
            let row: Row = serde_json::from_slice(&bytes)
                .map_err(|e| format!("feedback row `{key}` is unreadable: {e}"))?;
            out.push(row);
        }
    }
    Ok(out)
}

/// The rows as JSON lines: every field, the score and reasons shown included.
pub fn export_jsonl(rows: &[Row]) -> String {
    rows.iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .map(|l| l + "\n")
        .collect()
}

/// The rows as a `label<TAB>url` dataset (the format of the training data), one per line.
pub fn export(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(row.corrected_label());
        out.push('\t');
        out.push_str(&row.url);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    #[test]
    fn rows_round_trip_and_disagreement_flips_the_label() {
        let s = MemStore::default();
        assert_eq!(
            store(
                &s,
                "http://a.tk/login",
                "phishing",
                true,
                1,
                "v1",
                Shown::default()
            )
            .unwrap(),
            1
        );
        assert_eq!(
            store(
                &s,
                "https://example.com/",
                "phishing",
                false,
                2,
                "v1",
                Shown::default()
            )
            .unwrap(),
            2
        );
        assert_eq!(
            store(
                &s,
                "http://b.ml/",
                "legitimate",
                false,
                3,
                "v1",
                Shown::default()
            )
            .unwrap(),
            3
        );
        let shown = Shown {
            score: Some(0.97),
            reasons: vec!["domain_mismatch".into()],
        };
        store(&s, "http://c.tk/", "phishing", false, 4, "v2", shown).unwrap();
        let mut rows = rows(&s).unwrap();
        let last = rows.pop().unwrap();
        assert_eq!(
            (last.score, last.reasons.as_slice()),
            (Some(0.97), &["domain_mismatch".to_string()][..])
        );
        assert!(export_jsonl(&[last]).contains("\"reasons\":[\"domain_mismatch\"]"));
        assert_eq!(rows.len(), 3);
        assert_eq!(
            export(&rows),
            "phishing\thttp://a.tk/login\nlegitimate\thttps://example.com/\nphishing\thttp://b.ml/\n"
        );
    }

    #[test]
    fn ids_sort_numerically() {
        assert!(row_key(9) < row_key(10));
        assert!(row_key(99_999) < row_key(100_000));
    }

    #[test]
    fn unreadable_row_is_an_error() {
        let s = MemStore::default();
        s.set(&row_key(1), b"not json").unwrap();
        let e = rows(&s).unwrap_err();
        assert!(e.contains("feedback:row:000000000001"), "{e}");
    }
}
