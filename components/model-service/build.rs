//! Link settings for the component.

fn main() {
    // A 256 KiB stack instead of Rust's 1 MiB default for wasm. The stack comes first in linear
    // memory, right below the constants and the built-in model file, whose memory serves a
    // request's allocations once the snapshot is taken (src/arena.rs); Spin keeps the first
    // 2 MiB of memory resident between instances, so each KiB the stack does not reserve is a
    // KiB of request memory that is not faulted in again per request. Inference, JSON and
    // the HTTP glue keep their large data on the heap; a stack overflow traps (the stack
    // grows down towards address 0), it cannot corrupt memory.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=262144");
    }
}
