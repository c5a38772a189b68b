//! The training sources kept in this repository (`training/data/`) keep the evaluation honest:
//! no site that the validation split, the test split or a held-out source holds is among them.

use model_training::data::host_of;
use model_training::holdout::{HELD_OUT, REMLA_SAMPLES};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn hosts_of(file: &Path) -> HashSet<String> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", file.display()));
    text.lines()
        .filter_map(|l| l.rsplit('\t').next())
        .map(host_of)
        .filter(|h| !h.is_empty())
        .collect()
}

fn debian_urls() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/debian-urls.txt")
}

#[test]
fn debian_urls_share_no_host_with_the_evaluation_data() {
    let Some(data) = test_support::shared_path("PHISHING_DATA_DIR", "data/phishing") else {
        return;
    };
    let Some(extra) = test_support::shared_path("PHISHING_EXTRA_DIR", "data/phishing-extra") else {
        return;
    };
    let mut evaluation: Vec<PathBuf> = vec![data.join("val.txt"), data.join("test.txt")];
    evaluation.extend(HELD_OUT.iter().map(|(f, _)| extra.join(f)));
    for team in REMLA_SAMPLES {
        let mut files: Vec<PathBuf> = std::fs::read_dir(data.join(team))
            .unwrap_or_else(|e| panic!("cannot list `{team}`: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no rows in {team}");
        evaluation.extend(files);
    }
    let ours = hosts_of(&debian_urls());
    assert!(ours.len() > 5_000, "only {} hosts", ours.len());
    for file in &evaluation {
        let theirs = hosts_of(file);
        let mut shared: Vec<&String> = ours.intersection(&theirs).collect();
        shared.sort();
        assert!(
            shared.is_empty(),
            "{} hosts of `{}` are in debian-urls.txt, e.g. {:?}",
            shared.len(),
            file.display(),
            &shared[..shared.len().min(5)]
        );
    }
}

#[test]
fn debian_urls_are_legitimate_rows_that_parse() {
    // Strict: one malformed row fails.
    let rows = lib_ml::read_dataset(debian_urls(), lib_ml::ReadMode::Strict).unwrap();
    assert!(rows.samples.len() > 9_000, "{} rows", rows.samples.len());
    assert!(rows
        .samples
        .iter()
        .all(|s| s.label == lib_ml::Label::Legitimate));
}
