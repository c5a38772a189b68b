//! The NNEF form of the released model (`model/model.nnef.tar`, what the model-service builds in)
//! is exactly what the export makes of `model/model.onnx`, and scores like it.

use lib_ml::encoder::UrlEncoder;
use lib_ml::{read_dataset, ReadMode};
use model_training::onnx::{to_nnef, tract_ngram_scores};
use std::path::PathBuf;

fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model")
}

#[test]
fn committed_nnef_is_the_conversion_of_the_committed_onnx() -> anyhow::Result<()> {
    let dir = model_dir();
    let fresh = to_nnef(&std::fs::read(dir.join("model.onnx"))?)?;
    let committed = std::fs::read(dir.join("model.nnef.tar"))?;
    assert!(
        fresh == committed,
        "model/model.nnef.tar is stale ({} bytes; a fresh conversion has {}): run \
         `cargo run --release -p model-training -- --out model nnef` and commit it",
        committed.len(),
        fresh.len()
    );
    Ok(())
}

#[test]
fn nnef_scores_like_onnx_on_test_urls() -> anyhow::Result<()> {
    let dir = model_dir();
    let read = |f: &str| std::fs::read(dir.join(f));
    let encoder = UrlEncoder::from_parts(
        &String::from_utf8(read("features.json")?)?,
        &read("known-domains.bin")?,
        &String::from_utf8(read("brands.txt")?)?,
    )?;
    let owned: Vec<String> = match test_support::shared_path("PHISHING_DATA_DIR", "data/phishing") {
        Some(data) => read_dataset(data.join("test.txt"), ReadMode::Strict)?
            .samples
            .into_iter()
            .take(1024)
            .map(|s| s.url)
            .collect(),
        None => return Ok(()),
    };
    let urls: Vec<&str> = owned.iter().map(String::as_str).collect();
    let onnx = tract_ngram_scores(&dir.join("model.onnx"), false, &encoder, &urls)?;
    let nnef = tract_ngram_scores(&dir.join("model.nnef.tar"), true, &encoder, &urls)?;
    let max = onnx
        .iter()
        .zip(&nnef)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "ONNX vs NNEF on {} test URLs: max |diff| = {max:.2e}",
        urls.len()
    );
    assert!(max <= 1e-6, "max |diff| {max:.2e}");
    Ok(())
}
