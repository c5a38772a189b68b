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

pub mod augment;
pub mod baseline;
pub mod card;
pub mod data;
pub mod holdout;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod ngram;
pub mod onnx;
pub mod params;
pub mod pipeline;
pub mod plots;
pub mod train;

/// Versions of the frameworks this binary was built with.
pub const CANDLE_VERSION: &str = env!("CANDLE_VERSION");
/// The tract-onnx version used for the export check.
pub const TRACT_VERSION: &str = env!("TRACT_VERSION");

/// Keeps freed training buffers in the process instead of returning them to the kernel.
///
/// A training step allocates and frees tens of megabytes in buffers of 1 to 15 MB; glibc serves
/// those with fresh `mmap`s by default, so every step paid for page faults and for the kernel
/// zeroing pages (14% of a step, measured with perf). With the thresholds raised they are reused
/// from the heap. Call once, before training. No effect on other platforms.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any threads start.
    unsafe {
        // 32 MiB is glibc's upper limit for the mmap threshold on 64-bit systems.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
