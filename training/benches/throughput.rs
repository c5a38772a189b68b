//! Training throughput of the full architecture on this machine, in samples per second.
//! `cargo bench -p model-training --bench throughput` prints the figures and writes
//! `target/bench-results/training-throughput.json`. Not a test: nothing here asserts on time.

use candle_core::{Device, Tensor};
use model_training::model::{bce_with_logits, Adam, CharCnn};
use model_training::params::Params;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    model_training::tune_allocator();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let params = Params::load(&dir.join("params.toml"))?;
    let (batch, len, steps) = (params.train.batch_size, params.model.sequence_length, 24);
    let mut rng = StdRng::seed_from_u64(0);
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
        "batch_size": batch,
        "train_step_median_seconds": median,
        "train_samples_per_second": batch as f64 / median,
        "inference_samples_per_second": batch as f64 / fwd,
        "threads": std::thread::available_parallelism().map_or(0, |n| n.get()),
    });
    println!(
        "training: {:.1} samples/s (median step {:.0} ms for batch {batch})",
        batch as f64 / median,
        median * 1e3
    );
    println!(
        "inference (candle, no dropout): {:.1} samples/s",
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
