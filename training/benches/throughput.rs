//! Training throughput on this machine, in samples per second: the released architecture (the
//! n-gram model: encoding URLs with the released model's encoder, and one AdaGrad epoch) and the
//! char-CNN of `params-char-cnn.toml`. `cargo bench -p model-training --bench throughput` prints
//! the figures and writes `target/bench-results/training-throughput.json`. Not a test: nothing
//! here asserts on time.

use candle_core::{Device, Tensor};
use lib_ml::encoder::UrlEncoder;
use model_training::model::{bce_with_logits, Adam, CharCnn};
use model_training::ngram::{fit, FitParams, SparseRow};
use model_training::params::Params;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::time::Instant;

/// `n` made-up URLs of varied shapes (hosts, paths, queries), the same on every run.
fn urls(n: usize, rng: &mut StdRng) -> Vec<String> {
    let word = |rng: &mut StdRng| -> String {
        let len = rng.gen_range(3..10);
        (0..len)
            .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
            .collect()
    };
    (0..n)
        .map(|i| {
            let scheme = if i % 3 == 0 { "http" } else { "https" };
            let (sub, host) = (word(rng), word(rng));
            let tld = ["com", "net", "org", "de", "tk", "co.jp"][i % 6];
            let path: Vec<String> = (0..rng.gen_range(0..5)).map(|_| word(rng)).collect();
            format!("{scheme}://{sub}.{host}.{tld}/{}?id={i}", path.join("/"))
        })
        .collect()
}

/// The n-gram model's encoding and fitting rates, with the released model's encoder.
fn ngram(dir: &std::path::Path, rng: &mut StdRng) -> anyhow::Result<serde_json::Value> {
    let model = dir.join("../model");
    let encoder = UrlEncoder::from_parts(
        &std::fs::read_to_string(model.join("features.json"))?,
        &std::fs::read(model.join("known-domains.bin"))?,
        &std::fs::read_to_string(model.join("brands.txt"))?,
    )?;
    let urls = urls(40_000, rng);
    let t = Instant::now();
    let xs: Vec<SparseRow> = urls.par_iter().map(|u| encoder.features(u)).collect();
    let encode = urls.len() as f64 / t.elapsed().as_secs_f64();
    let ts: Vec<f32> = (0..xs.len()).map(|i| (i % 2) as f32).collect();
    let (train, val) = xs.split_at(36_000);
    let (train_t, val_t) = ts.split_at(36_000);
    let p = FitParams {
        epochs: 3,
        learning_rate: 0.2,
        l2: 1e-7,
        seed: 1,
    };
    let t = Instant::now();
    fit(
        &p,
        encoder.vocab_size(),
        train,
        train_t,
        val,
        val_t,
        &mut |_| {},
    )?;
    // `fit` also scores the validation rows after each epoch; counted in, as a release run pays it.
    let per_epoch = t.elapsed().as_secs_f64() / p.epochs as f64;
    let fit_rate = train.len() as f64 / per_epoch;
    println!(
        "n-gram: encoding {encode:.0} URLs/s; fitting {fit_rate:.0} samples/s per epoch ({} rows)",
        train.len()
    );
    Ok(serde_json::json!({
        "encode_urls_per_second": encode,
        "fit_samples_per_second": fit_rate,
        "fit_epoch_seconds": per_epoch,
        "rows": train.len(),
    }))
}

fn main() -> anyhow::Result<()> {
    model_training::tune_allocator();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rng = StdRng::seed_from_u64(0);
    let ngram = ngram(dir, &mut rng)?;
    let params = Params::load(&dir.join("params-char-cnn.toml"))?;
    let (batch, len, steps) = (params.train.batch_size, params.model.sequence_length, 24);
    let net = CharCnn::new(72, &params.model, &mut rng)?;
    let mut opt = Adam::new(
        net.named_vars()
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect(),
        1e-3,
    )?;
    let ids: Vec<u32> = (0..batch * len).map(|_| rng.gen_range(0..72)).collect();
    let ys: Vec<f32> = (0..batch).map(|i| (i % 2) as f32).collect();
    let x = Tensor::from_vec(ids, (batch, len), &Device::Cpu)?;
    let y = Tensor::from_vec(ys, (batch, 1), &Device::Cpu)?;
    let mut times = Vec::new();
    for step in 0..steps {
        let t = Instant::now();
        let loss = bce_with_logits(&net.forward(&x, Some(&mut rng))?, &y)?;
        opt.backward_step(&loss)?;
        if step >= 2 {
            times.push(t.elapsed().as_secs_f64()); // the first steps warm caches and allocators
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let fwd = {
        let t = Instant::now();
        for _ in 0..3 {
            net.forward(&x, None)?;
        }
        t.elapsed().as_secs_f64() / 3.0
    };
    let result = serde_json::json!({
        "ngram": ngram,
        "char_cnn": {
            "batch_size": batch,
            "train_step_median_seconds": median,
            "train_samples_per_second": batch as f64 / median,
            "inference_samples_per_second": batch as f64 / fwd,
        },
        "threads": std::thread::available_parallelism().map_or(0, |n| n.get()),
    });
    println!(
        "char-CNN training: {:.1} samples/s (median step {:.0} ms for batch {batch})",
        batch as f64 / median,
        median * 1e3
    );
    println!(
        "char-CNN inference (candle, no dropout): {:.1} samples/s",
        batch as f64 / fwd
    );
    let out = dir.join("../target/bench-results");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("training-throughput.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    Ok(())
}
