//! Build-time pre-initialization: run the component's `wizer-initialize` export once and snapshot
//! the initialized memory into a new component, so every instance starts with the model loaded.

use crate::engine::{engine, linker, WasmtimeContext};
use anyhow::{Context, Result};
use std::path::Path;

/// Snapshots `input` (a component exporting `wizer-initialize`) into `output`.
pub async fn prewarm(input: &Path, output: &Path) -> Result<()> {
    let wasm =
        std::fs::read(input).with_context(|| format!("failed to read `{}`", input.display()))?;
    let engine = engine()?;
    let linker = linker(&engine)?;
    let mut store = crate::state::bare_store(&engine);
    let mut wizer = wasmtime_wizer::Wizer::new();
    // Keep the export: without it the snapshot is not a valid component any more.
    wizer.keep_init_func(true);
    let (snapshot, _) = wizer
        .run_component(&mut store, &wasm, async |store, component| {
            linker.instantiate_async(store, component).await
        })
        .await
        .ctx(|| format!("failed to pre-initialize `{}`", input.display()))?;
    std::fs::write(output, &snapshot)
        .with_context(|| format!("failed to write `{}`", output.display()))?;
    eprintln!(
        "pre-initialized `{}` ({} bytes) -> `{}` ({} bytes)",
        input.display(),
        wasm.len(),
        output.display(),
        snapshot.len()
    );
    Ok(())
}
