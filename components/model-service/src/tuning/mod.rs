//! The model-service's wasm tuning: what makes a fresh instance cheap and the component small,
//! apart from what the service does. Compiled with the `tuning` cargo feature (on by default,
//! so `spin build` has it); `--no-default-features` builds the plain service, and the
//! inference benchmark measures both (`benchmarks/README.md`, "the tuning, on and off").
//!
//! - [`reader`]: tract's NNEF reader limited to the released model's operators, so the others'
//!   code stays out of the component.
//! - [`built_in`]: the built-in model file in writable memory, zeroed once the model is read, so
//!   the snapshot does not store it beside the loaded model.
//! - [`arena`]: the component's allocator: the model's small objects packed into the released
//!   file's memory while the snapshot is taken ([`arena::BlockHeap`]), then a request's scratch
//!   bump-allocated in the memory Spin keeps resident ([`arena::Arena`]); freed memory scrubbed
//!   while the model loads so the snapshot keeps none of it.
//! - in the component (wasm only): the global allocator, the snapshot hook's order of steps, and
//!   the stack's dead frames zeroed before the snapshot.

pub mod arena;
pub mod built_in;
pub mod reader;

/// Native only: drives the allocator through random sequences for the property test and the
/// `allocator` fuzz target.
#[cfg(not(target_arch = "wasm32"))]
pub mod alloc_check;

#[cfg(target_arch = "wasm32")]
pub(crate) mod wasm;
