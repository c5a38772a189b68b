//! The model-training pipeline: check data → train the char-CNN (candle) → evaluate → export ONNX
//! and a model card. The `model-training` binary drives these stages; tests call them directly.
//!
//! ```no_run
//! use model_training::{data, params::Params, train};
//! let params = Params::load("training/params-tiny.toml".as_ref())?;
//! let [tr, val, _test] = data::load_all(&params.data.dir, params.data.max_bad_rows, params.data.limit)?;
//! let trained = train::train(&params, &tr, &val, false, &mut |line| eprintln!("{line}"))?;
//! println!("best epoch {}", trained.best_epoch);
//! # Ok::<(), anyhow::Error>(())
//! ```
#![deny(missing_docs)]

pub mod card;
pub mod data;
pub mod metrics;
pub mod model;
pub mod onnx;
pub mod params;
pub mod pipeline;
pub mod plots;
pub mod train;

/// Versions of the frameworks this binary was built with.
pub const CANDLE_VERSION: &str = env!("CANDLE_VERSION");
/// The tract-onnx version used for the export check.
pub const TRACT_VERSION: &str = env!("TRACT_VERSION");

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
