//! The wasmtime engine as Spin configures it, the compile cache and the linker.

use crate::state::State;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// `with_context` for wasmtime's own error type, which anyhow's `Context` does not accept.
pub trait WasmtimeContext<T> {
    /// Converts to an anyhow error with `f()` as context.
    fn ctx<C: std::fmt::Display + Send + Sync + 'static>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> WasmtimeContext<T> for wasmtime::Result<T> {
    fn ctx<C: std::fmt::Display + Send + Sync + 'static>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(anyhow::Error::from).with_context(f)
    }
}

/// How instances get their memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Spin's pooling allocator, keeping the first `keep_resident` bytes of each linear memory
    /// resident between instances (reset in place instead of returned to the kernel).
    Pooling {
        /// Bytes kept resident (Spin's default: 2 MiB).
        keep_resident: usize,
    },
    /// A fresh memory mapping per instance (wasmtime's default).
    OnDemand,
}

impl Allocation {
    /// Spin's default: pooling, 2 MiB resident.
    pub const SPIN_DEFAULT: Allocation = Allocation::Pooling {
        keep_resident: 2 << 20,
    };

    /// What Spin would use under this process's environment: `SPIN_WASMTIME_POOLING=0` turns
    /// pooling off, `SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT` (bytes) sizes the resident part.
    pub fn from_env() -> Result<Allocation> {
        Allocation::from_vars(
            std::env::var("SPIN_WASMTIME_POOLING").ok().as_deref(),
            std::env::var("SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT")
                .ok()
                .as_deref(),
        )
    }

    /// [`Allocation::from_env`] from the two variables' values.
    pub fn from_vars(pooling: Option<&str>, keep_resident: Option<&str>) -> Result<Allocation> {
        match pooling {
            None | Some("1") => {}
            Some("0") => return Ok(Allocation::OnDemand),
            Some(other) => bail!("SPIN_WASMTIME_POOLING={other:?}: only 1 or 0 are supported"),
        }
        match keep_resident {
            Some(v) => Ok(Allocation::Pooling {
                keep_resident: v.parse().map_err(|e| {
                    anyhow!(
                        "SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT={v:?} is not a byte count: {e}"
                    )
                })?,
            }),
            None => Ok(Allocation::SPIN_DEFAULT),
        }
    }
}

/// The wasmtime engine every component shares: Cranelift, SIMD, async, and instance allocation
/// as Spin configures it under this process's environment ([`Allocation::from_env`]). One per
/// process, so compiled components can be reused by every [`crate::Host`] loaded in it.
pub fn engine() -> Result<Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e.clone());
    }
    let engine = engine_with(Allocation::from_env()?)?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}

/// A new engine like [`engine`]'s with the given allocation (benchmarks compare them). If the
/// machine cannot reserve the pool's address space, it falls back to on-demand allocation.
pub fn engine_with(allocation: Allocation) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true).wasm_simd(true);
    match allocation {
        Allocation::Pooling { keep_resident } => {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
                keep_resident,
            )));
            Ok(Engine::new(&config).or_else(|_| {
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                Engine::new(&config)
            })?)
        }
        Allocation::OnDemand => Ok(Engine::new(&config)?),
    }
}

/// Spin's pooling defaults (spin-core), sized for this host: at most [`MAX_INSTANCES`] live
/// instances; memories may grow to 4 GiB.
fn pooling_config(keep_resident: usize) -> PoolingAllocationConfig {
    const MIB: usize = 1 << 20;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_memories(MAX_INSTANCES)
        .total_tables(2 * MAX_INSTANCES)
        .total_stacks(MAX_INSTANCES)
        .total_core_instances(4 * MAX_INSTANCES)
        .table_elements(100_000)
        .max_component_instance_size(10 * MIB)
        .max_core_instance_size(10 * MIB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(MIB / 2);
    pool
}

/// The most component instances alive at once (requests in flight across all components).
pub const MAX_INSTANCES: u32 = 1_000;

/// Compiles `bytes` read from `path`, reusing an earlier compilation of the same file (same
/// path, size and modification time) in this process. Returns the component and compile seconds.
pub(crate) fn compile(engine: &Engine, path: &Path, bytes: &[u8]) -> Result<(Component, f64)> {
    type Key = (std::path::PathBuf, u64, Option<std::time::SystemTime>);
    static CACHE: OnceLock<Mutex<HashMap<Key, (Component, f64)>>> = OnceLock::new();
    let key = (
        path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
        bytes.len() as u64,
        std::fs::metadata(path).and_then(|m| m.modified()).ok(),
    );
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(hit.clone());
    }
    let t = Instant::now();
    let component = Component::new(engine, bytes).ctx(|| "compilation failed")?;
    let compiled = (component, t.elapsed().as_secs_f64());
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, compiled.clone());
    Ok(compiled)
}

/// A linker with the WASI and WASI-HTTP interfaces Spin components import.
pub fn linker(engine: &Engine) -> Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::kv::add_to_linker(&mut linker)?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::Allocation;

    #[test]
    fn allocation_follows_spins_environment_knobs() {
        let a = |p, k| Allocation::from_vars(p, k);
        assert_eq!(a(None, None).unwrap(), Allocation::SPIN_DEFAULT);
        assert_eq!(a(Some("1"), None).unwrap(), Allocation::SPIN_DEFAULT);
        assert_eq!(a(Some("0"), Some("99")).unwrap(), Allocation::OnDemand);
        assert_eq!(
            a(None, Some("33554432")).unwrap(),
            Allocation::Pooling {
                keep_resident: 32 << 20
            }
        );
        let e = a(Some("yes"), None).unwrap_err().to_string();
        assert!(e.contains("SPIN_WASMTIME_POOLING=\"yes\""), "{e}");
        let e = a(None, Some("32M")).unwrap_err().to_string();
        assert!(e.contains("\"32M\" is not a byte count"), "{e}");
    }
}
