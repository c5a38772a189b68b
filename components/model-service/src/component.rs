//! The wasm glue: Spin's HTTP trigger, the WIT `classifier` export, the snapshot hook.

use crate::arena::{Arena, BlockHeap, Layered};
use crate::{api, model};
use spin_sdk::http::{Request, ResponseOutparam};
use spin_sdk::http_component;
use std::alloc::System;
use std::sync::atomic::{AtomicBool, Ordering};

/// Converts Spin's request to the plain API and back. Nothing else happens here.
#[http_component]
fn handle(req: Request, out: ResponseOutparam) {
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
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    headers.extend(resp.headers.iter().cloned());
    let body = resp.body.to_string();
    api_policy::spin::respond(
        out,
        resp.status,
        &headers,
        body.as_bytes(),
        method == "HEAD",
    );
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
            sequence_length: c.encoder.width() as u32,
            preinitialized: model::preinitialized(),
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
            unsafe { ALLOCATOR.enable_heap(start, len, MODEL_HEAP_MAX) }
        })
        .expect("the built-in model loads");
        SCRUB_FREED_MEMORY.store(false, Ordering::SeqCst);
        // The last step, so that the snapshot holds an arena nothing was allocated from: the
        // rest of the model file's memory, after the model's own blocks.
        if let Some((start, len)) = model::released_model_file() {
            // SAFETY: zeroed and never read again but by these two allocators.
            unsafe { ALLOCATOR.hand_over(start, len) };
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

/// Set while the model loads for the snapshot; see [`Layered`].
static SCRUB_FREED_MEMORY: AtomicBool = AtomicBool::new(false);

/// The component's allocator: [`ARENA`] first (which serves nothing until the snapshot is
/// taken), then [`MODEL_HEAP`] (which serves only while pre-initialization builds the model),
/// then the system allocator. While pre-initialization loads the model it also zeroes memory
/// as it is freed: the snapshot stores every non-zero byte of memory, freed or not, and without
/// this it carried the raw weights tract reads from the NNEF file and drops once they are
/// packed (2.4 MB). Serving never sets that flag, so a request pays one relaxed load per free.
/// Its safety argument, and the property test that checks it natively, are in [`crate::arena`].
#[global_allocator]
static ALLOCATOR: Layered<'static, System> = Layered {
    arena: &ARENA,
    heap: &MODEL_HEAP,
    fallback: System,
    scrub_freed_memory: &SCRUB_FREED_MEMORY,
};

bindings::export!(Component with_types_in bindings);
