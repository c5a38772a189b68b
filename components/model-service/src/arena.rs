//! Request-time memory that a fresh instance does not have to fault in.
//!
//! Spin runs every request in a fresh instance whose linear memory the pooling allocator resets
//! from the snapshot: it copies back the first pages it keeps resident (2 MiB by default) and
//! drops the rest, so each page a request touches beyond them is a page fault, and a write to
//! a page that is zero in the snapshot (freed memory, which is where the general allocator
//! serves inference's scratch from) is a fault that also zero-fills it. The built-in model file
//! lives low in memory, right after the stack and the constants, and is zeroed once the
//! snapshot has loaded the model. From then on this arena hands that memory out, bump-pointer
//! style, so a request's scratch sits mostly in pages the pool keeps resident.
//!
//! The arena serves allocations in order and takes back the last one when it is freed; when
//! nothing it handed out is alive any more (the end of a request in a warm instance) it starts
//! over. What does not fit goes to the general allocator, counted, so a test can tell.

use std::alloc::Layout;
use std::cell::Cell;

/// A bump allocator over one region of memory. Disabled (serving nothing) until
/// [`enable`](Arena::enable)d.
pub struct Arena {
    start: Cell<usize>,
    end: Cell<usize>,
    /// Where the next allocation starts.
    next: Cell<usize>,
    /// Allocations handed out and not freed yet.
    live: Cell<usize>,
    /// Everything from here to `end` is still zero (never handed out since `enable`).
    clean: Cell<usize>,
    served: Cell<u64>,
    overflow: Cell<u64>,
}

// SAFETY: the component's instance runs one thread; natively, tests use arenas they own.
unsafe impl Sync for Arena {}

/// How much an [`Arena`] served since it was enabled, and how much it could not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated from the arena.
    pub served: u64,
    /// Bytes of allocations the arena had no room for (served by the general allocator).
    pub overflow: u64,
}

impl Arena {
    /// A disabled arena.
    pub const fn new() -> Arena {
        Arena {
            start: Cell::new(0),
            end: Cell::new(0),
            next: Cell::new(0),
            live: Cell::new(0),
            clean: Cell::new(0),
            served: Cell::new(0),
            overflow: Cell::new(0),
        }
    }

    /// Serves allocations from `len` bytes at `start` from now on.
    ///
    /// # Safety
    /// The region must be valid, zero-filled, and used by nothing else for the rest of the
    /// program.
    pub unsafe fn enable(&self, start: *mut u8, len: usize) {
        let start = start as usize;
        self.start.set(start);
        self.end.set(start + len);
        self.next.set(start);
        self.clean.set(start);
        self.live.set(0);
    }

    /// Whether `ptr` was handed out by this arena.
    pub fn owns(&self, ptr: *mut u8) -> bool {
        (self.start.get()..self.end.get()).contains(&(ptr as usize))
    }

    /// Memory for `layout`, or `None` when the arena is disabled or full.
    pub fn alloc(&self, layout: Layout) -> Option<*mut u8> {
        if self.end.get() == 0 {
            return None;
        }
        let at = self.next.get().next_multiple_of(layout.align());
        match at.checked_add(layout.size()) {
            Some(stop) if stop <= self.end.get() => {
                self.next.set(stop);
                self.clean.set(self.clean.get().max(stop));
                self.live.set(self.live.get() + 1);
                self.served.set(self.served.get() + layout.size() as u64);
                Some(at as *mut u8)
            }
            _ => {
                self.overflow
                    .set(self.overflow.get() + layout.size() as u64);
                None
            }
        }
    }

    /// Zeroed memory for `layout`, or `None`. Memory never handed out is zero already, so
    /// only the part below the high-water mark is written.
    pub fn alloc_zeroed(&self, layout: Layout) -> Option<*mut u8> {
        let clean = self.clean.get();
        let ptr = self.alloc(layout)?;
        let dirty = clean.saturating_sub(ptr as usize).min(layout.size());
        // SAFETY: `ptr..ptr + size` was just handed out, so it is ours to write.
        unsafe { ptr.write_bytes(0, dirty) };
        Some(ptr)
    }

    /// Takes back `ptr` (which [`owns`](Arena::owns) must be true of).
    pub fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let live = self.live.get() - 1;
        self.live.set(live);
        if live == 0 {
            self.next.set(self.start.get());
        } else if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    /// Resizes `ptr` in place when it is the last allocation and the arena has room; `None`
    /// otherwise (the caller moves it).
    pub fn realloc_in_place(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> Option<()> {
        let at = ptr as usize;
        if at + layout.size() != self.next.get() {
            return None;
        }
        let stop = at.checked_add(new_size)?;
        if stop > self.end.get() {
            return None;
        }
        self.next.set(stop);
        self.clean.set(self.clean.get().max(stop));
        if new_size > layout.size() {
            self.served
                .set(self.served.get() + (new_size - layout.size()) as u64);
        }
        Some(())
    }

    /// What the arena served and could not serve so far.
    pub fn usage(&self) -> Usage {
        Usage {
            served: self.served.get(),
            overflow: self.overflow.get(),
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena(buffer: &mut [u8]) -> Arena {
        let a = Arena::new();
        unsafe { a.enable(buffer.as_mut_ptr(), buffer.len()) };
        a
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn a_disabled_arena_serves_nothing() {
        let a = Arena::new();
        assert_eq!(a.alloc(layout(8, 8)), None);
        assert!(!a.owns(8 as *mut u8));
        assert_eq!(
            a.usage(),
            Usage {
                served: 0,
                overflow: 0
            }
        );
    }

    #[test]
    fn allocations_are_aligned_disjoint_and_inside_the_region() {
        let mut buffer = vec![0u8; 4096];
        let a = arena(&mut buffer);
        let mut blocks = Vec::new();
        for (size, align) in [(3, 1), (8, 8), (1, 16), (100, 4), (7, 64)] {
            let p = a.alloc(layout(size, align)).unwrap();
            assert_eq!(p as usize % align, 0);
            assert!(a.owns(p));
            blocks.push((p as usize, size));
        }
        blocks.sort();
        for w in blocks.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{blocks:?} overlap");
        }
    }

    #[test]
    fn the_last_block_freed_is_reused_and_an_empty_arena_starts_over() {
        let mut buffer = vec![0u8; 4096];
        let a = arena(&mut buffer);
        let first = a.alloc(layout(100, 8)).unwrap();
        let second = a.alloc(layout(100, 8)).unwrap();
        a.dealloc(second, layout(100, 8));
        assert_eq!(a.alloc(layout(100, 8)).unwrap(), second);
        a.dealloc(first, layout(100, 8));
        a.dealloc(second, layout(100, 8));
        assert_eq!(a.alloc(layout(10, 1)).unwrap(), first);
    }

    #[test]
    fn what_does_not_fit_is_refused_and_counted() {
        let mut buffer = vec![0u8; 256];
        let a = arena(&mut buffer);
        assert!(a.alloc(layout(200, 8)).is_some());
        assert_eq!(a.alloc(layout(100, 8)), None);
        assert_eq!(
            a.usage(),
            Usage {
                served: 200,
                overflow: 100
            }
        );
    }

    #[test]
    fn zeroed_allocations_are_zero_after_reuse() {
        let mut buffer = vec![0u8; 1024];
        let a = arena(&mut buffer);
        let p = a.alloc(layout(64, 8)).unwrap();
        unsafe { p.write_bytes(0xAB, 64) };
        a.dealloc(p, layout(64, 8));
        let q = a.alloc_zeroed(layout(128, 8)).unwrap();
        assert_eq!(p, q);
        let bytes = unsafe { std::slice::from_raw_parts(q, 128) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn the_last_block_grows_in_place_others_do_not() {
        let mut buffer = vec![0u8; 1024];
        let a = arena(&mut buffer);
        let p = a.alloc(layout(16, 8)).unwrap();
        assert_eq!(a.realloc_in_place(p, layout(16, 8), 64), Some(()));
        let q = a.alloc(layout(16, 8)).unwrap();
        assert!(q as usize >= p as usize + 64);
        assert_eq!(a.realloc_in_place(p, layout(64, 8), 128), None);
        assert_eq!(a.realloc_in_place(q, layout(16, 8), 4096), None);
    }
}
