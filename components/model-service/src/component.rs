//! The wasm glue: Spin's HTTP trigger, the WIT `classifier` export, the snapshot hook.

use crate::arena::Arena;
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
        }
    }
}

impl bindings::Guest for Component {
    fn wizer_initialize() {
        SCRUB_FREED_MEMORY.store(true, Ordering::SeqCst);
        model::preinitialize().expect("the built-in model loads");
        SCRUB_FREED_MEMORY.store(false, Ordering::SeqCst);
        // The last step, so that the snapshot holds an arena nothing was allocated from.
        if let Some((start, len)) = model::released_model_file() {
            // SAFETY: the file's memory is zeroed and never read again (see `model`).
            unsafe { ARENA.enable(start, len) };
        }
    }
}

/// Request-time allocations, once the snapshot has released the model file's memory.
static ARENA: Arena = Arena::new();

/// Set while the model loads for the snapshot; see [`ComponentAllocator`].
static SCRUB_FREED_MEMORY: AtomicBool = AtomicBool::new(false);

/// The component's allocator: [`ARENA`] first (which serves nothing until pre-initialization
/// has released the model file's memory), then the system allocator. While pre-initialization
/// loads the model it also zeroes memory as it is freed: the snapshot stores every non-zero
/// byte of memory, freed or not, and without this it carried the raw weights tract reads from
/// the NNEF file and drops once they are packed (2.4 MB). Serving never sets that flag, so a
/// request pays one relaxed load per free.
struct ComponentAllocator;

// SAFETY: every block comes either from the arena, which hands out disjoint, aligned ranges of
// memory only it uses, or from `System` with the layout it was given; each is given back to
// whichever handed it out. The only addition is zeroing a block the caller has just given up.
unsafe impl GlobalAlloc for ComponentAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match ARENA.alloc(layout) {
            Some(ptr) => ptr,
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match ARENA.alloc_zeroed(layout) {
            Some(ptr) => ptr,
            None => unsafe { System.alloc_zeroed(layout) },
        }
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
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let in_arena = ARENA.owns(ptr);
        if in_arena && ARENA.realloc_in_place(ptr, layout, new_size).is_some() {
            return ptr;
        }
        if !in_arena && !SCRUB_FREED_MEMORY.load(Ordering::Relaxed) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Moved by hand: out of the arena, or (while scrubbing) because `System.realloc` would
        // free the old block itself, unscrubbed.
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
