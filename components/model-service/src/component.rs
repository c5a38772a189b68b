//! The wasm glue: Spin's HTTP trigger, the WIT `classifier` export, the snapshot hook.

use crate::arena::{Arena, BlockHeap};
use crate::{api, model};
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// Converts Spin's request to the plain API and back. Nothing else happens here.
#[http_component]
fn handle(req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.path().split('?').next().unwrap_or("/").to_string();
    let content_type = req
        .header("content-type")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let resp = api::handle(api::Request {
        method: &method,
        path: &path,
        content_type: content_type.as_deref(),
        body: req.body(),
    });
    let mut builder = Response::builder();
    builder
        .status(resp.status)
        .header("content-type", "application/json");
    for (k, v) in &resp.headers {
        builder.header(k.as_str(), v.as_str());
    }
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        resp.body.to_string().into_bytes()
    };
    builder.body(body).build()
}

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "model-service",
        generate_all,
    });
}

use bindings::exports::phishing::classifier::classifier::{
    AllocationStats, Guest as ClassifierGuest, Label, ModelInfo, Prediction,
};

struct Component;

impl ClassifierGuest for Component {
    fn classify(urls: Vec<String>) -> Result<Vec<Prediction>, String> {
        if urls.is_empty() || urls.len() > model::MAX_BATCH {
            return Err(format!(
                "expected 1 to {} URLs, got {}",
                model::MAX_BATCH,
                urls.len()
            ));
        }
        if let Some(i) = urls.iter().position(|u| u.trim().is_empty()) {
            return Err(format!("URL {i} is empty"));
        }
        let c = model::classifier().map_err(|e| format!("{e:#}"))?;
        let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
        let scores = c.scores(&refs).map_err(|e| format!("{e:#}"))?;
        Ok(urls
            .into_iter()
            .zip(scores)
            .map(|(url, score)| Prediction {
                url,
                label: if score >= c.threshold {
                    Label::Phishing
                } else {
                    Label::Legitimate
                },
                score,
            })
            .collect())
    }

    fn info() -> ModelInfo {
        let c = model::classifier().expect("the built-in model loads");
        ModelInfo {
            name: c.name.clone(),
            version: c.version.clone(),
            threshold: c.threshold,
            sequence_length: c.tokenizer.max_len() as u32,
            preinitialized: model::preinitialized(),
            matmul_kernels: c.matmul_kernels.clone(),
        }
    }

    fn allocations() -> AllocationStats {
        let usage = ARENA.usage();
        AllocationStats {
            arena_bytes: usage.served,
            overflow_bytes: usage.overflow,
            arena_end: usage.end as u64,
            model_heap_bytes: MODEL_HEAP.used() as u64,
        }
    }
}

impl bindings::Guest for Component {
    fn wizer_initialize() {
        // The export stays in the snapshot; called again, it must not hand the arena's memory
        // out a second time.
        if model::preinitialized() {
            return;
        }
        SCRUB_FREED_MEMORY.store(true, Ordering::SeqCst);
        model::preinitialize(|start, len| {
            // SAFETY: the file's memory is zeroed and never read again (see `model`).
            unsafe { MODEL_HEAP.enable(start, len.min(MODEL_HEAP_MAX)) }
        })
        .expect("the built-in model loads");
        SCRUB_FREED_MEMORY.store(false, Ordering::SeqCst);
        // The last step, so that the snapshot holds an arena nothing was allocated from: the
        // rest of the model file's memory, after the model's own blocks.
        if let Some((start, len)) = model::released_model_file() {
            MODEL_HEAP.seal();
            let used = MODEL_HEAP.used();
            // SAFETY: zeroed, never read again, and no block of the model heap lies beyond `used`.
            unsafe { ARENA.enable(start.add(used), len - used) };
        }
        zero_stack_below_here();
    }
}

/// Zeroes the stack below the caller's frame: loading the model left dead frames there (15 KB
/// of non-zero bytes), which the snapshot would store (it keeps every non-zero byte of memory).
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
/// request's allocations (1.0 MB for one URL) must still end inside the 2 MiB Spin keeps
/// resident.
const MODEL_HEAP_MAX: usize = 640 << 10;

/// Set while the model loads for the snapshot; see [`ComponentAllocator`].
static SCRUB_FREED_MEMORY: AtomicBool = AtomicBool::new(false);

/// The component's allocator: [`ARENA`] first (which serves nothing until the snapshot is
/// taken), then [`MODEL_HEAP`] (which serves only while pre-initialization builds the model),
/// then the system allocator. While pre-initialization loads the model it also zeroes memory
/// as it is freed: the snapshot stores every non-zero byte of memory, freed or not, and without
/// this it carried the raw weights tract reads from the NNEF file and drops once they are
/// packed (2.4 MB). Serving never sets that flag, so a request pays one relaxed load per free.
struct ComponentAllocator;

// SAFETY: every block comes from the arena or the model heap, which hand out disjoint, aligned
// ranges of memory only they use, or from `System` with the layout it was given; each is given
// back to whichever handed it out. The only addition is zeroing a block the caller has just
// given up.
unsafe impl GlobalAlloc for ComponentAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match ARENA.alloc(layout).or_else(|| MODEL_HEAP.alloc(layout)) {
            Some(ptr) => ptr,
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if let Some(ptr) = ARENA.alloc_zeroed(layout) {
            return ptr;
        }
        if let Some(ptr) = MODEL_HEAP.alloc(layout) {
            // SAFETY: just handed out; a reused block is not zero.
            unsafe { ptr.write_bytes(0, layout.size()) };
            return ptr;
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARENA.owns(ptr) {
            return ARENA.dealloc(ptr, layout);
        }
        if SCRUB_FREED_MEMORY.load(Ordering::Relaxed) {
            unsafe { ptr.write_bytes(0, layout.size()) };
            // Stores right before a free are dead to the optimizer, which would drop the zeroing
            // without this (as it did: the snapshot kept the weights).
            std::hint::black_box(ptr);
        }
        if MODEL_HEAP.owns(ptr) {
            return MODEL_HEAP.dealloc(ptr, layout);
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let in_arena = ARENA.owns(ptr);
        if in_arena && ARENA.realloc_in_place(ptr, layout, new_size).is_some() {
            return ptr;
        }
        let in_model_heap = MODEL_HEAP.owns(ptr);
        if in_model_heap && MODEL_HEAP.fits_in_place(layout, new_size) {
            return ptr;
        }
        if !in_arena && !in_model_heap && !SCRUB_FREED_MEMORY.load(Ordering::Relaxed) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Moved by hand: out of the arena or the model heap, or (while scrubbing) because
        // `System.realloc` would free the old block itself, unscrubbed.
        // SAFETY: the caller guarantees `new_size`, rounded up to `layout.align()`, fits `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: ComponentAllocator = ComponentAllocator;

bindings::export!(Component with_types_in bindings);
