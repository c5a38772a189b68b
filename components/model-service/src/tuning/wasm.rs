//! The tuning inside the component: its global allocator and the snapshot hook's steps.

use super::arena::{Arena, BlockHeap, Layered, Usage};
use super::built_in;
use crate::model;
use std::alloc::System;
use std::sync::atomic::{AtomicBool, Ordering};

/// Loads the model for the build-time snapshot, with the tuning: the built-in file read and
/// zeroed, its memory serving the model's small objects, freed memory scrubbed meanwhile, then
/// the rest handed to the request arena and the stack's dead frames zeroed.
pub(crate) fn preinitialize() {
    SCRUB_FREED_MEMORY.store(true, Ordering::SeqCst);
    model::preinitialize(|| {
        let graph = built_in::read()?;
        // SAFETY: `read` has returned, so nothing borrows the file, and a wasm instance runs
        // one thread.
        unsafe { built_in::release() };
        if let Some((start, len)) = built_in::released() {
            // SAFETY: the file's memory is zeroed and never read again (see `built_in`).
            unsafe { ALLOCATOR.enable_heap(start, len, MODEL_HEAP_MAX) }
        }
        Ok(graph)
    })
    .expect("the built-in model loads");
    SCRUB_FREED_MEMORY.store(false, Ordering::SeqCst);
    // The last step, so that the snapshot holds an arena nothing was allocated from: the rest
    // of the model file's memory, after the model's own blocks.
    if let Some((start, len)) = built_in::released() {
        // SAFETY: zeroed and never read again but by these two allocators.
        unsafe { ALLOCATOR.hand_over(start, len) };
    }
    zero_stack_below_here();
}

/// Where the allocations went so far: the request arena's usage and the model heap's bytes.
pub(crate) fn usage() -> (Usage, usize) {
    (ARENA.usage(), MODEL_HEAP.used())
}

/// Zeroes the stack below the caller's frame: loading the model left dead frames there
/// (non-zero bytes), which the snapshot would store (it keeps every non-zero byte of memory).
#[inline(never)]
fn zero_stack_below_here() {
    unsafe extern "C" {
        /// The stack's lowest address, defined by the linker (`wasm-ld`).
        static __stack_low: u8;
    }
    let here = 0u8;
    let frame = std::hint::black_box(&raw const here).addr();
    let low = (&raw const __stack_low).addr();
    // This frame, and the slack under it, stay as they are.
    let end = frame.saturating_sub(256);
    if low < end {
        let dead = std::ptr::with_exposed_provenance_mut::<u8>(low);
        // SAFETY: the stack grows down; nothing lives below the current frame, and this
        // function calls nothing but `memset`, which keeps its state in wasm locals.
        unsafe { dead.write_bytes(0, end - low) };
    }
}

/// Request-time allocations, once the snapshot has released the model file's memory.
static ARENA: Arena = Arena::new();

/// The model's small allocations while pre-initialization optimizes and plans it, in the
/// first part of the model file's memory (see [`BlockHeap`]).
static MODEL_HEAP: BlockHeap = BlockHeap::new();

/// How much of the model file's memory [`MODEL_HEAP`] may take; the arena gets the rest, and a
/// request's allocations must still end inside the 2 MiB Spin keeps resident (a test checks it
/// through the WIT `allocations()`).
const MODEL_HEAP_MAX: usize = 640 << 10;

/// Set while the model loads for the snapshot; see [`Layered`].
static SCRUB_FREED_MEMORY: AtomicBool = AtomicBool::new(false);

/// The component's allocator: [`ARENA`] first (which serves nothing until the snapshot is
/// taken), then [`MODEL_HEAP`] (which serves only while pre-initialization builds the model),
/// then the system allocator. While pre-initialization loads the model it also zeroes memory
/// as it is freed: the snapshot stores every non-zero byte of memory, freed or not, and without
/// this it carried the raw weights tract reads from the NNEF file and drops once they are
/// packed. Serving never sets that flag, so a request pays one relaxed load per free.
/// Its safety argument, and the property test that checks it natively, are in [`super::arena`].
#[global_allocator]
static ALLOCATOR: Layered<'static, System> = Layered {
    arena: &ARENA,
    heap: &MODEL_HEAP,
    fallback: System,
    scrub_freed_memory: &SCRUB_FREED_MEMORY,
};
