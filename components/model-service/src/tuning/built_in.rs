//! The built-in model file in writable memory, so that pre-initialization can zero it once the
//! model is loaded: the snapshot keeps only non-zero memory, so the file is not stored in the
//! component next to the loaded model, and its memory can serve the allocators in [`super::arena`].

use crate::model::MODEL_NNEF;
use anyhow::{Context, Result};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};
use tract_nnef::prelude::TypedModel;

struct BuiltInNnef(UnsafeCell<[u8; MODEL_NNEF.len()]>);

// SAFETY: the bytes are only written by `release`, which runs at most once, during
// pre-initialization (single-threaded, before any request), after the last read.
unsafe impl Sync for BuiltInNnef {}

static BUILT_IN_NNEF: BuiltInNnef = BuiltInNnef(UnsafeCell::new(
    *MODEL_NNEF.first_chunk::<{ MODEL_NNEF.len() }>().unwrap(),
));
static NNEF_RELEASED: AtomicBool = AtomicBool::new(false);

/// The bytes, unless [`release`] has zeroed them.
fn bytes() -> Option<&'static [u8]> {
    if NNEF_RELEASED.load(Ordering::SeqCst) {
        return None;
    }
    // SAFETY: not released, so nothing writes them (see `Sync` above).
    Some(unsafe { &*BUILT_IN_NNEF.0.get() })
}

/// The model graph in the built-in file, read with [`super::reader`].
pub fn read() -> Result<TypedModel> {
    let nnef = bytes().context(
        "the built-in model file was released after pre-initialization loaded the model",
    )?;
    super::reader::read(nnef).context("built-in NNEF model is invalid")
}

/// The file's memory, zeroed and no longer read, once [`release`]d.
#[cfg(target_arch = "wasm32")]
pub fn released() -> Option<(*mut u8, usize)> {
    NNEF_RELEASED
        .load(Ordering::SeqCst)
        .then(|| (BUILT_IN_NNEF.0.get() as *mut u8, MODEL_NNEF.len()))
}

/// Zeroes the file; [`read`] fails from now on.
///
/// # Safety
/// No reference returned by `bytes` may be alive (true once [`read`] has returned), and no other
/// thread may call [`read`].
#[cfg(target_arch = "wasm32")]
pub unsafe fn release() {
    NNEF_RELEASED.store(true, Ordering::SeqCst);
    unsafe { (*BUILT_IN_NNEF.0.get()).fill(0) };
}
