//! The model-service's allocator (arena + model heap + system, as the component layers them) under
//! any sequence of alloc / alloc_zeroed / realloc / dealloc, before and after the heap hands over
//! to the arena: live blocks never overlap and keep their contents (`model_service::tuning::alloc_check`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_service::tuning::alloc_check::{run, Op, Region};

/// Four bytes an op: kind, two bytes of size (or pick), one of alignment / size.
fn ops(data: &[u8]) -> Vec<Op> {
    data.chunks_exact(4)
        .map(|c| {
            let n = usize::from(u16::from_le_bytes([c[1], c[2]]));
            match c[0] % 4 {
                0 => Op::Alloc {
                    size: n % 4096,
                    align_log2: c[3],
                    zeroed: false,
                },
                1 => Op::Alloc {
                    size: n,
                    align_log2: c[3],
                    zeroed: true,
                },
                2 => Op::Realloc {
                    pick: usize::from(c[3]),
                    new_size: n % 8192,
                },
                _ => Op::Dealloc { pick: n },
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let ops = ops(rest);
    let (build, serve) = ops.split_at(usize::from(split).min(ops.len()));
    if let Err(e) = run(Region::default(), build, serve) {
        panic!("{e}");
    }
});
