//! Runs a sequence of allocations against the component's allocator
//! ([`Layered`](crate::tuning::arena::Layered): arena, block heap, system) over a region of its own, the
//! way the component uses it: the heap serves while the model is built, then
//! [`hand_over`](crate::tuning::arena::Layered::hand_over) seals it and starts the arena. After
//! every step it checks what a caller relies on: live blocks are aligned, never overlap, and keep
//! their contents; zeroed blocks are zero; a moved block keeps its prefix.
//!
//! The property test in `arena`'s tests and the `allocator` fuzz target both drive it. Native
//! only: the component never runs it (built in, its code and messages would cost bytes).

use crate::tuning::arena::{Arena, BlockHeap, Layered};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::AtomicBool;

/// One step of a sequence.
#[derive(Clone, Debug)]
pub enum Op {
    /// A new block of `size` bytes aligned to 2^`align_log2` (zeroed when `zeroed`).
    Alloc {
        /// Bytes requested (0 is raised to 1: `GlobalAlloc` forbids zero sizes).
        size: usize,
        /// log2 of the alignment, taken modulo 7 (1 to 64 bytes).
        align_log2: u8,
        /// `alloc_zeroed` instead of `alloc`.
        zeroed: bool,
    },
    /// Resize the live block picked by `pick` (modulo the number of live blocks).
    Realloc {
        /// Which live block.
        pick: usize,
        /// Its new size (0 is raised to 1).
        new_size: usize,
    },
    /// Free the live block picked by `pick`.
    Dealloc {
        /// Which live block.
        pick: usize,
    },
}

/// Sizes of the simulated region: the same shape as the component's, scaled down.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    /// The model file's memory the two allocators share.
    pub len: usize,
    /// How much of it the block heap may take (`MODEL_HEAP_MAX` in the component).
    pub heap_max: usize,
}

impl Default for Region {
    fn default() -> Self {
        Region {
            len: 64 << 10,
            heap_max: 16 << 10,
        }
    }
}

struct Block {
    ptr: *mut u8,
    layout: Layout,
    fill: u8,
}

/// Runs `build` (pre-initialization: the heap serves, freed memory is scrubbed), hands over,
/// then runs `serve` (requests: the arena serves). Returns the first broken promise.
pub fn run(region: Region, build: &[Op], serve: &[Op]) -> Result<(), String> {
    let region_layout = Layout::from_size_align(region.len, 4096).map_err(|e| e.to_string())?;
    // SAFETY: a non-zero size.
    let start = unsafe { std::alloc::alloc_zeroed(region_layout) };
    if start.is_null() {
        return Err("no memory for the region".into());
    }
    let arena = Arena::new();
    let heap = BlockHeap::new();
    let scrub = AtomicBool::new(true);
    let alloc = Layered {
        arena: &arena,
        heap: &heap,
        fallback: System,
        scrub_freed_memory: &scrub,
    };
    let mut live: Vec<Block> = Vec::new();
    let mut fills = 0u8;
    // SAFETY: a zeroed region only these allocators use, freed after every block is.
    unsafe { alloc.enable_heap(start, region.len, region.heap_max) };
    let mut result = steps(&alloc, build, &mut live, &mut fills);
    if result.is_ok() {
        scrub.store(false, std::sync::atomic::Ordering::SeqCst);
        // SAFETY: as above; what the heap does not hold is zero (scrubbed or never used).
        unsafe { alloc.hand_over(start, region.len) };
        result = steps(&alloc, serve, &mut live, &mut fills);
    }
    for b in live.drain(..) {
        // SAFETY: live blocks of this allocator, each with its layout.
        unsafe { alloc.dealloc(b.ptr, b.layout) };
    }
    // SAFETY: allocated above with this layout; no block of it is live.
    unsafe { std::alloc::dealloc(start, region_layout) };
    result
}

fn steps(
    alloc: &Layered<'_, System>,
    ops: &[Op],
    live: &mut Vec<Block>,
    fills: &mut u8,
) -> Result<(), String> {
    for (i, op) in ops.iter().enumerate() {
        step(alloc, op, live, fills).map_err(|e| format!("step {i} ({op:?}): {e}"))?;
        check(live).map_err(|e| format!("after step {i} ({op:?}): {e}"))?;
    }
    Ok(())
}

fn next_fill(fills: &mut u8) -> u8 {
    *fills = fills.wrapping_add(1).max(1);
    *fills
}

fn step(
    alloc: &Layered<'_, System>,
    op: &Op,
    live: &mut Vec<Block>,
    fills: &mut u8,
) -> Result<(), String> {
    match *op {
        Op::Alloc {
            size,
            align_log2,
            zeroed,
        } => {
            let layout = Layout::from_size_align(size.max(1), 1 << (align_log2 % 7))
                .map_err(|e| e.to_string())?;
            // SAFETY: a non-zero size.
            let ptr = unsafe {
                if zeroed {
                    alloc.alloc_zeroed(layout)
                } else {
                    alloc.alloc(layout)
                }
            };
            if ptr.is_null() {
                return Err("null".into());
            }
            if !(ptr as usize).is_multiple_of(layout.align()) {
                return Err(format!("{ptr:?} is not aligned to {}", layout.align()));
            }
            // SAFETY: just handed out, `layout.size()` bytes.
            let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, layout.size()) };
            if zeroed && bytes.iter().any(|&b| b != 0) {
                return Err(format!("alloc_zeroed gave non-zero memory at {ptr:?}"));
            }
            let fill = next_fill(fills);
            bytes.fill(fill);
            live.push(Block { ptr, layout, fill });
        }
        Op::Realloc { pick, new_size } => {
            if live.is_empty() {
                return Ok(());
            }
            let i = pick % live.len();
            let Block { ptr, layout, fill } = live[i];
            let new_size = new_size.max(1);
            // SAFETY: a live block with its layout; a non-zero size that fits isize.
            let new = unsafe { alloc.realloc(ptr, layout, new_size) };
            if new.is_null() {
                return Err("null".into());
            }
            let kept = layout.size().min(new_size);
            // SAFETY: the block now holds `new_size` bytes.
            let bytes = unsafe { std::slice::from_raw_parts_mut(new, new_size) };
            if let Some(at) = bytes[..kept].iter().position(|&b| b != fill) {
                return Err(format!(
                    "realloc {ptr:?} -> {new:?} lost byte {at} of {kept}: found {} vs expected {fill}",
                    bytes[at]
                ));
            }
            let fill = next_fill(fills);
            bytes.fill(fill);
            live[i] = Block {
                ptr: new,
                layout: Layout::from_size_align(new_size, layout.align())
                    .map_err(|e| e.to_string())?,
                fill,
            };
        }
        Op::Dealloc { pick } => {
            if live.is_empty() {
                return Ok(());
            }
            let b = live.swap_remove(pick % live.len());
            // SAFETY: a live block with its layout.
            unsafe { alloc.dealloc(b.ptr, b.layout) };
        }
    }
    Ok(())
}

fn check(live: &[Block]) -> Result<(), String> {
    let mut spans: Vec<(usize, usize)> = live
        .iter()
        .map(|b| (b.ptr as usize, b.ptr as usize + b.layout.size()))
        .collect();
    spans.sort_unstable();
    if let Some(w) = spans.windows(2).find(|w| w[0].1 > w[1].0) {
        return Err(format!(
            "live blocks overlap: {:#x}..{:#x} and {:#x}..{:#x}",
            w[0].0, w[0].1, w[1].0, w[1].1
        ));
    }
    for b in live {
        // SAFETY: a live block, `size` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(b.ptr, b.layout.size()) };
        if let Some(at) = bytes.iter().position(|&x| x != b.fill) {
            return Err(format!(
                "block {:?} ({} bytes) changed at byte {at}: found {} vs expected {}",
                b.ptr,
                b.layout.size(),
                bytes[at],
                b.fill
            ));
        }
    }
    Ok(())
}
