//! The classifier on the released model in `model/`.

use inference::{Card, Classifier, Preprocessing};
use std::path::PathBuf;

fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../model")
}

struct Files {
    nnef: Vec<u8>,
    features: String,
    known: Vec<u8>,
    brands: String,
    card: String,
}

fn files() -> Files {
    let d = model_dir();
    let read = |n: &str| std::fs::read(d.join(n)).unwrap();
    let text = |n: &str| String::from_utf8(read(n)).unwrap();
    Files {
        nnef: read("model.nnef.tar"),
        features: text("features.json"),
        known: read("known-domains.bin"),
        brands: text("brands.txt"),
        card: text("model-card.json"),
    }
}

fn error_of(nnef: &[u8], pre: Preprocessing<'_>, card: &str) -> String {
    match Classifier::from_parts(nnef, pre, card) {
        Ok(_) => panic!("a broken model must not load"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_corrupt_or_missing_part_is_a_clear_error() {
    let f = files();
    let pre = Preprocessing {
        features_json: &f.features,
        known_domains: &f.known,
        brands: &f.brands,
    };
    let e = error_of(&f.nnef[..f.nnef.len() / 2], pre, &f.card);
    assert!(e.contains("NNEF model is invalid"), "{e}");
    let e = error_of(b"", pre, &f.card);
    assert!(e.contains("NNEF model is invalid"), "{e}");
    let bad = Preprocessing {
        features_json: "{\"format\": \"nope\"}",
        ..pre
    };
    let e = error_of(&f.nnef, bad, &f.card);
    assert!(
        e.contains("preprocessing") && e.contains("features spec"),
        "{e}"
    );
    let bad = Preprocessing {
        known_domains: &f.known[..f.known.len() - 2],
        ..pre
    };
    let e = error_of(&f.nnef, bad, &f.card);
    assert!(e.contains("known-domains"), "{e}");
    let e = error_of(&f.nnef, pre, "");
    assert!(e.contains("model card is invalid"), "{e}");
    let e = match Classifier::from_dir(&model_dir().join("no-such-dir")) {
        Ok(_) => panic!("a missing directory must not load"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("cannot read") && e.contains("no-such-dir"),
        "{e}"
    );
}

#[test]
fn reads_the_card_and_scores_in_order() {
    let c = Classifier::from_dir(&model_dir()).unwrap();
    let card = Card::parse(&files().card).unwrap();
    assert_eq!(
        (c.version.as_str(), c.threshold),
        (card.version.as_str(), card.threshold)
    );
    let urls = [
        "https://www.wikipedia.org/",
        "http://paypal.com.verify-account.tk/webscr.php?cmd=_login-run",
        "https://appleid.apple.com.secure-id-check.com/",
    ];
    let batch = c.scores(&urls).unwrap();
    for (url, s) in urls.iter().zip(&batch) {
        assert!((0.0..=1.0).contains(s), "{url}: {s}");
        // A batch runs the plan once per URL: each score is the URL's own.
        assert_eq!(c.scores(&[url]).unwrap(), vec![*s], "{url}");
    }
    assert!(
        batch[0] < c.threshold && batch[1] >= c.threshold,
        "{batch:?}"
    );
    assert!(c.scores(&[]).is_err());
    let too_many = vec!["http://a.com/"; inference::MAX_BATCH + 1];
    assert!(c.scores(&too_many).is_err());
}

#[test]
fn an_explanation_is_of_the_same_run() {
    let c = Classifier::from_dir(&model_dir()).unwrap();
    let url = "http://secure-login.example.tk/paypal/signin.php";
    let (score, analysis, e) = c.explain(&[url]).unwrap().remove(0);
    assert_eq!(score, c.scores(&[url]).unwrap()[0]);
    assert_eq!(analysis.registrable_domain.as_deref(), Some("example.tk"));
    let text: String = e.parts.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(text, url);
    assert!(e.parts.iter().any(|p| p.contribution != 0.0), "{e:?}");
    assert!(e.reasons.iter().any(|r| r.code == "plain_http"), "{e:?}");
}
