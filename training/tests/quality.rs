//! ML tests of the released model in `model/` (the original project's test suite, done properly):
//! data checks, accuracy per slice of the test split, robustness to meaning-preserving rewrites.
//! The model runs through tract on the exported ONNX, exactly as the service runs it.

use lib_ml::encoder::UrlEncoder;
use lib_ml::{read_dataset, ReadMode, Sample};
use model_training::data;
use model_training::onnx::tract_ngram_scores;
use std::path::PathBuf;

fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model")
}

/// The released ONNX graph, run by tract, and the encoder that feeds it.
struct Released {
    onnx: PathBuf,
    encoder: UrlEncoder,
}

impl Released {
    fn scores(&self, urls: &[&str]) -> anyhow::Result<Vec<f32>> {
        tract_ngram_scores(&self.onnx, false, &self.encoder, urls)
    }
}

fn released() -> anyhow::Result<Released> {
    let dir = model_dir();
    let read = |f: &str| std::fs::read(dir.join(f));
    Ok(Released {
        onnx: dir.join("model.onnx"),
        encoder: UrlEncoder::from_parts(
            &String::from_utf8(read("features.json")?)?,
            &read("known-domains.bin")?,
            &String::from_utf8(read("brands.txt")?)?,
        )?,
    })
}

fn test_split() -> Option<Vec<Sample>> {
    let dir = test_support::shared_path("PHISHING_DATA_DIR", "data/phishing")?;
    Some(
        read_dataset(dir.join("test.txt"), ReadMode::Strict)
            .unwrap()
            .samples,
    )
}

fn accuracy(model: &Released, rows: &[&Sample]) -> anyhow::Result<f64> {
    let urls: Vec<&str> = rows.iter().map(|s| s.url.as_str()).collect();
    let scores = model.scores(&urls)?;
    let ok = scores
        .iter()
        .zip(rows)
        .filter(|(s, r)| (**s >= 0.5) == (r.label.index() == 1))
        .count();
    Ok(ok as f64 / rows.len() as f64)
}

#[test]
fn data_labels_are_valid_urls_non_empty_and_no_test_url_is_in_train() -> anyhow::Result<()> {
    let Some(dir) = test_support::shared_path("PHISHING_DATA_DIR", "data/phishing") else {
        return Ok(());
    };
    // Strict reading fails on any unknown label, empty URL or wrong field count.
    let splits = data::load_all(&dir, 0, 0)?;
    let report = data::check(&splits)?;
    assert_eq!(report.train_test_overlap, 0);
    for s in &report.splits {
        eprintln!(
            "class balance {}: {:.1}% phishing of {}",
            s.name,
            s.phishing_share * 100.0,
            s.rows
        );
        // Neither class may be rare: both sit between 40% and 60% in the prepared data.
        assert!(
            (0.4..0.6).contains(&s.phishing_share),
            "{} is unbalanced",
            s.name
        );
    }
    Ok(())
}

fn is_ip_host(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':', '?'])
        .next()
        .unwrap_or("");
    host.split('.').count() == 4 && host.split('.').all(|p| p.parse::<u8>().is_ok())
}

/// Accuracy per slice of the test split, each against a floor with its reason.
#[test]
fn accuracy_per_slice_stays_above_its_floor() -> anyhow::Result<()> {
    let Some(test) = test_split() else {
        return Ok(());
    };
    let model = released()?;
    type Pred = Box<dyn Fn(&Sample) -> bool>;
    let slices: Vec<(&str, f64, &str, Pred)> = vec![
        ("all", 0.96, "the release target", Box::new(|_| true)),
        (
            "http://",
            0.95,
            "most phishing is plain http: the model must not just flag every http URL",
            Box::new(|s| s.url.starts_with("http://")),
        ),
        (
            "https://",
            0.97,
            "few phishing URLs use https, so this slice is mostly legitimate",
            Box::new(|s| s.url.starts_with("https://")),
        ),
        (
            "ip-host",
            0.80,
            "IP hosts are rare (tens of rows), so the floor allows noise",
            Box::new(|s| is_ip_host(&s.url)),
        ),
        (
            "len<40",
            0.89,
            "short URLs carry little signal",
            Box::new(|s| s.url.len() < 40),
        ),
        (
            "len 40-99",
            0.96,
            "the bulk of the data",
            Box::new(|s| (40..100).contains(&s.url.len())),
        ),
        (
            "len 100-200",
            0.95,
            "long URLs, still read whole (the model reads 400 characters)",
            Box::new(|s| (100..=200).contains(&s.url.len())),
        ),
        (
            ">200 chars",
            0.95,
            "very long URLs: long paths are a strong cue here",
            Box::new(|s| s.url.len() > 200),
        ),
    ];
    let mut failures = Vec::new();
    for (name, floor, why, pred) in &slices {
        let rows: Vec<&Sample> = test.iter().filter(|s| pred(s)).collect();
        if rows.is_empty() {
            continue;
        }
        let acc = accuracy(&model, &rows)?;
        eprintln!(
            "slice {name:<12} {:>5} rows accuracy {acc:.4} (floor {floor}: {why})",
            rows.len()
        );
        if acc < *floor {
            failures.push(format!("{name}: {acc:.4} < {floor}"));
        }
    }
    assert!(
        failures.is_empty(),
        "slices below their floor: {failures:?}"
    );
    Ok(())
}

/// Meaning-preserving rewrites should rarely flip the verdict.
#[test]
fn mutamorphic_rewrites_rarely_flip_the_label() -> anyhow::Result<()> {
    let Some(test) = test_split() else {
        return Ok(());
    };
    let model = released()?;
    let urls: Vec<&str> = test.iter().map(|s| s.url.as_str()).collect();
    let base = model.scores(&urls)?;
    type Rewrite = fn(&str) -> Option<String>;
    let rewrites: [(&str, f64, Rewrite); 4] = [
        // The data's legitimate URLs often end in `/` (7.2% flipped for the char-CNN 1.0.0,
        // trained without augmentation; 3.0% for 1.1.0, trained with it; 1.3% for 2.0.0, 1.5% for 2.1.0; 1.1% for 2.2.0,
        // which reads an empty path as `/`, so only URLs with a path can still flip; 0.8% for 2.3.0 to 2.5.0).
        ("toggle trailing slash", 0.05, |u| {
            Some(u.strip_suffix('/').map_or(format!("{u}/"), str::to_string))
        }),
        // 3.4% for 1.0.0, 1.5% for 1.1.0; 3.8% for 2.0.0, 3.1% for 2.1.0, 3.2% for 2.2.0, 2.6% for 2.3.0 to 2.4.1 and 2.5% for 2.5.0, whose n-grams see `www.`: reading URLs
        // without it was tried and cost 0.007 ROC-AUC on the development source (PhishStorm),
        // where legitimate sites carry `www.` far more often than phishing hosts do.
        ("add www.", 0.045, |u| {
            let (scheme, rest) = u.split_once("://")?;
            (!rest.starts_with("www.")).then(|| format!("{scheme}://www.{rest}"))
        }),
        // 3.8% for 1.0.0, 2.5% for 1.1.0, 3.2% for 2.0.0, 3.1% for 2.1.0, 3.0% for 2.2.0, 2.5% for 2.3.0, 2.4% for 2.4.0 to 2.5.0.
        ("remove www.", 0.04, |u| {
            u.replacen("://www.", "://", 1)
                .ne(u)
                .then(|| u.replacen("://www.", "://", 1))
        }),
        // The data's known bias (36% of legitimate vs 2% of phishing URLs use https) makes the
        // scheme a cue: 6.0% flipped for 1.0.0, 9.1% for a run without augmentation that was
        // more accurate otherwise, 1.6% for 1.1.0 (the char-CNN), 2.0% for 2.0.0, 1.0% for 2.1.0,
        // 1.0% for 2.2.0, 0.9% for 2.3.0, 1.0% for 2.4.0, 0.9% for 2.4.1 and 2.5.0.
        ("toggle http/https", 0.04, |u| {
            if let Some(r) = u.strip_prefix("https://") {
                Some(format!("http://{r}"))
            } else {
                u.strip_prefix("http://").map(|r| format!("https://{r}"))
            }
        }),
    ];
    let mut failures = Vec::new();
    for (name, ceiling, f) in rewrites {
        let (idx, changed): (Vec<usize>, Vec<String>) = urls
            .iter()
            .enumerate()
            .filter_map(|(i, u)| f(u).map(|c| (i, c)))
            .unzip();
        let refs: Vec<&str> = changed.iter().map(String::as_str).collect();
        let scores = model.scores(&refs)?;
        let flips = idx
            .iter()
            .zip(&scores)
            .filter(|(&i, &s)| (base[i] >= 0.5) != (s >= 0.5))
            .count();
        let rate = flips as f64 / idx.len().max(1) as f64;
        eprintln!(
            "rewrite {name:<20} {:>5} URLs, flip rate {rate:.4} (ceiling {ceiling})",
            idx.len()
        );
        if rate > ceiling {
            failures.push(format!("{name}: {rate:.4} > {ceiling}"));
        }
    }
    assert!(
        failures.is_empty(),
        "rewrites flipping too many labels: {failures:?}"
    );
    Ok(())
}
