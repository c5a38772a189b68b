//! Link settings for the component, and the OpenAPI document it serves, without its indentation.

use std::path::PathBuf;

fn main() {
    // A 256 KiB stack instead of Rust's 1 MiB default for wasm. The stack comes first in linear
    // memory, right below the constants and the built-in model file, whose memory serves a
    // request's allocations once the snapshot is taken (src/tuning/arena.rs); Spin keeps the first
    // 2 MiB of memory resident between instances, so each KiB the stack does not reserve is a
    // KiB of request memory that is not faulted in again per request. Inference, JSON and
    // the HTTP glue keep their large data on the heap; a stack overflow traps (the stack
    // grows down towards address 0), it cannot corrupt memory.
    // Part of the wasm tuning (the `tuning` feature, see src/tuning).
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32")
        && std::env::var_os("CARGO_FEATURE_TUNING").is_some()
    {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=262144");
    }

    // `GET /openapi.json` answers with compact JSON anyway; built in as written, the document's
    // indentation would be bytes of the component for nothing.
    println!("cargo:rerun-if-changed=openapi.json");
    println!("cargo:rerun-if-changed=build.rs");
    let doc = std::fs::read_to_string("openapi.json").expect("openapi.json is readable");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("openapi.json"), without_whitespace(&doc))
        .expect("OUT_DIR is writable");
}

/// `json` without the whitespace between its tokens (strings are kept as they are).
fn without_whitespace(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}
