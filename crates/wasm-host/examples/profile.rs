//! Where inference time goes inside wasm: runs `classify` on one warm instance in a loop with
//! wasmtime's perf map on, so `perf` can name the guest's functions.
//!
//! ```sh
//! # a component that keeps its function names (the `component` profile strips them)
//! CARGO_PROFILE_COMPONENT_STRIP=false CARGO_TARGET_DIR=target/profile \
//!     cargo build --target wasm32-wasip2 --profile component --locked -p model-service
//! cargo run --release -p wasm-host -- prewarm \
//!     target/profile/wasm32-wasip2/component/model_service.wasm /tmp/model_service.wasm
//! cargo build --release --locked --example profile -p wasm-host
//! perf record -g target/release/examples/profile /tmp/model_service.wasm 4000 1
//! perf report --no-children --sort dso,symbol
//! ```
//!
//! Arguments: the component, the number of calls, URLs per call. Compilation comes first and
//! shows in the profile too; the guest's functions are in the `[JIT]` object.

use anyhow::{Context, Result};
use wasm_host::engine::linker;
use wasm_host::state::bare_store;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, ProfilingStrategy};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "model-service",
    exports: { default: async },
});

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: profile <component.wasm> <calls> <urls per call>";
    let path = args.next().context(usage)?;
    let calls: usize = args.next().context(usage)?.parse()?;
    let per_call: usize = args.next().context(usage)?.parse()?;

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .wasm_simd(true)
        .profiler(ProfilingStrategy::PerfMap);
    let engine = Engine::new(&config)?;
    let component = Component::from_file(&engine, &path)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pre = ModelServicePre::new(linker(&engine)?.instantiate_pre(&component)?)?;
    let mut store = bare_store(&engine);
    let instance = rt.block_on(pre.instantiate_async(&mut store))?;
    let classifier = instance.phishing_classifier_classifier();
    let urls: Vec<String> = (0..per_call)
        .map(|i| format!("http://login-{i}.secure-update.example.tk/verify.php?id={i}"))
        .collect();
    let start = std::time::Instant::now();
    for _ in 0..calls {
        rt.block_on(classifier.call_classify(&mut store, &urls))?
            .map_err(anyhow::Error::msg)?;
    }
    println!(
        "{:.3} ms per call",
        start.elapsed().as_secs_f64() * 1e3 / calls as f64
    );
    Ok(())
}
