//! The released model on pages it was never trained on: real sign-in pages of widely used
//! services must score legitimate, the classic tricks phishing (`model/checks/`, written before
//! model 2.0.0 was trained). A floor, not a list of exceptions: 90% of each list.

use model_service::model::Classifier;

fn urls(file: &str) -> Vec<String> {
    let path = format!("{}/../../model/checks/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Scores `file`'s URLs; returns the ones on the wrong side of the threshold, with scores.
fn misses(c: &Classifier, file: &str, phishing: bool) -> (usize, Vec<String>) {
    let list = urls(file);
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    let scores = c.scores(&refs).unwrap();
    let wrong = list
        .iter()
        .zip(&scores)
        .filter(|(_, &s)| (s >= c.threshold) != phishing)
        .map(|(u, s)| format!("{s:.3} {u}"))
        .collect();
    (list.len(), wrong)
}

#[test]
fn real_sign_in_pages_score_legitimate() {
    let c = Classifier::load().unwrap();
    let (n, wrong) = misses(&c, "login-pages.txt", false);
    assert!(n >= 50, "the list must hold at least 50 pages, holds {n}");
    eprintln!(
        "{} of {n} sign-in pages scored phishing: {wrong:#?}",
        wrong.len()
    );
    assert!(
        wrong.len() * 10 <= n,
        "more than 10% of real sign-in pages score phishing: {wrong:#?}"
    );
}

#[test]
fn classic_tricks_score_phishing() {
    let c = Classifier::load().unwrap();
    let (n, wrong) = misses(&c, "tricks.txt", true);
    eprintln!(
        "{} of {n} tricks scored legitimate: {wrong:#?}",
        wrong.len()
    );
    assert!(
        wrong.len() * 10 <= n,
        "more than 10% of the classic tricks score legitimate: {wrong:#?}"
    );
}

#[test]
fn the_analysis_behind_a_score_names_the_real_site() {
    let c = Classifier::load().unwrap();
    let out = c
        .scores_with_analysis(&["https://appleid.apple.com.secure-id-check.com/"])
        .unwrap();
    let (score, a) = &out[0];
    assert!(*score >= c.threshold, "{score}");
    assert_eq!(a.registrable_domain.as_deref(), Some("secure-id-check.com"));
    assert_eq!(a.brand_in_subdomain.as_deref(), Some("apple.com"));
}
