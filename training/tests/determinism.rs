//! Non-determinism: trainings with different seeds on the same small slice must land close
//! together, and the same seed must reproduce the same result.

use model_training::{data, params::Params, train};
use std::path::PathBuf;

fn run(seed: u64) -> anyhow::Result<(f64, f64)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut p = Params::load(&dir.join("params-tiny.toml"))?;
    let Some(data_dir) = test_support::shared_path("PHISHING_DATA_DIR", "data/phishing") else {
        return Ok((f64::NAN, f64::NAN));
    };
    p.data.limit = 1200;
    p.train.epochs = 2;
    p.train.seed = seed;
    let [tr, val, _] = data::load_all(&data_dir, 0, p.data.limit)?;
    let t = train::train(&p, &tr, &val, false, &mut |_| {})?;
    let (val_loss, val_acc) = train::evaluate_loss(&t.net, &t.tokenizer, &val)?;
    Ok((val_loss, val_acc))
}

#[test]
fn different_seeds_land_within_a_stated_bound_and_same_seed_repeats() -> anyhow::Result<()> {
    let (l1, a1) = run(1)?;
    if l1.is_nan() {
        return Ok(()); // data absent, skipped with a message
    }
    let (l2, a2) = run(2)?;
    let (l1b, a1b) = run(1)?;
    eprintln!("seed 1: val_loss {l1:.4} acc {a1:.4}; seed 2: val_loss {l2:.4} acc {a2:.4}; seed 1 again: {l1b:.4} {a1b:.4}");
    // Two epochs on 1200 URLs: seeds may move validation accuracy, but by no more than 0.08.
    assert!(
        (a1 - a2).abs() <= 0.08,
        "seeds differ too much: {a1:.4} vs {a2:.4}"
    );
    assert!(
        (l1 - l1b).abs() < 1e-4,
        "same seed, different result: {l1} vs {l1b}"
    );
    Ok(())
}
