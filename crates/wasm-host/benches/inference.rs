//! Inference benchmark on the released model, all in one run so the ratios are fair:
//! native tract vs tract inside wasm (through the WIT `classifier` interface), one URL and a batch
//! of 32; per-request cost the way Spin runs it (fresh instance + HTTP handling) vs a warm instance;
//! model load; component size and compile time.
//!
//! `cargo bench -p wasm-host --bench inference` (after building the components) prints the figures
//! and writes `target/bench-results/inference.json`. Nothing here asserts on time.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use std::time::Instant;
use wasm_host::dispatch::incoming_request;
use wasm_host::engine::{engine_with, linker, Allocation, WasmtimeContext};
use wasm_host::state::{bare_store, State};
use wasm_host::{Host, HostOptions};
use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "model-service",
    exports: { default: async },
});

const URL: &str = "http://paypal.com.verify-account.tk/webscr.php?cmd=_login-run&dispatch=5885d80a13c0db1f8e263663d3faee8d";

/// Median seconds of each measurement, taken in alternation: after `warm` unmeasured rounds,
/// every round runs each function [`BLOCK`] times in a row. A machine that slows down mid-run
/// (these are noisy) slows all of them alike, so their ratios stay fair; the blocks keep each
/// measurement's caches as warm as they would be on its own.
fn interleaved<const N: usize>(
    warm: usize,
    rounds: usize,
    mut fs: [&mut dyn FnMut() -> Result<()>; N],
) -> Result<[f64; N]> {
    for _ in 0..warm {
        for f in fs.iter_mut() {
            f()?;
        }
    }
    let mut times = vec![Vec::with_capacity(rounds * BLOCK); N];
    for _ in 0..rounds {
        for (f, t) in fs.iter_mut().zip(&mut times) {
            for _ in 0..BLOCK {
                let s = Instant::now();
                f()?;
                t.push(s.elapsed().as_secs_f64());
            }
        }
    }
    Ok(std::array::from_fn(|i| {
        let t = &mut times[i];
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    }))
}

/// Consecutive runs of one measurement within a round of [`interleaved`].
const BLOCK: usize = 5;

/// Median seconds of `f` over `n` runs, after `warm` unmeasured runs.
fn median<F: FnMut() -> Result<()>>(warm: usize, n: usize, mut f: F) -> Result<f64> {
    let [m] = interleaved(warm, n.div_ceil(BLOCK), [&mut f])?;
    Ok(m)
}

/// Minor page faults of this process so far (`None` where /proc is not there).
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses); minflt is the 8th of them.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(7)?.parse().ok()
}

fn urls(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "http://login-{i}.secure-update.example.tk/account/verify.php?id={}",
                i * 7919
            )
        })
        .collect()
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let batch = urls(32);
    let batch_refs: Vec<&str> = batch.iter().map(String::as_str).collect();

    // Native tract, same code as the component.
    let t = Instant::now();
    let native = model_service::model::load()?;
    let native_load = t.elapsed().as_secs_f64();

    // The pre-initialized component through the WIT interface, one warm instance.
    let host = Host::load(
        &root.join("spin.toml"),
        HostOptions {
            components: Some(vec!["model-service".into()]),
            ..Default::default()
        },
    )?;
    let loaded = host
        .component("model-service")
        .context("model-service not loaded")?;
    let pre = ModelServicePre::new(host.linker().instantiate_pre(&loaded.component)?)?;
    let mut store = host.new_store("model-service");
    let instance = rt.block_on(pre.instantiate_async(&mut store))?;
    let classifier = instance.phishing_classifier_classifier();
    let one = vec![URL.to_string()];
    let body = json!({ "url": URL }).to_string();
    // One WIT `classify` call on an instance that already exists (a warm one).
    let classify = |store: &mut wasmtime::Store<State>,
                    c: &exports::phishing::classifier::classifier::Guest,
                    urls: &[String]|
     -> Result<()> {
        rt.block_on(c.call_classify(store, urls))?
            .map_err(anyhow::Error::msg)?;
        Ok(())
    };

    // `/predict` through the component's HTTP handler, called in this thread (no dispatch task):
    // on one warm instance (Spin never reuses an instance; this isolates what HTTP handling
    // costs), and on a fresh instance per request (what the fresh instance costs, without the
    // host's own request dispatch).
    let proxy_pre = ProxyPre::new(host.linker().instantiate_pre(&loaded.component)?)?;
    let http_predict = |store: &mut wasmtime::Store<State>,
                        proxy: &wasmtime_wasi_http::p2::bindings::Proxy|
     -> Result<()> {
        let req = hyper::Request::builder()
            .method("POST")
            .uri("http://localhost/predict")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.clone())).map_err(
                |never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} },
            ))?;
        let (req, out, receiver) = incoming_request(store, req)?;
        rt.block_on(
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, req, out),
        )?;
        let resp = rt
            .block_on(receiver)?
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        anyhow::ensure!(resp.status() == 200, "status {}", resp.status());
        rt.block_on(resp.into_body().collect())
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(())
    };
    let mut http_store = host.new_store("model-service");
    let proxy = rt.block_on(proxy_pre.instantiate_async(&mut http_store))?;
    let mut warm_http = || http_predict(&mut http_store, &proxy);
    let mut fresh_http = || -> Result<()> {
        let mut store = host.new_store("model-service");
        let proxy = rt.block_on(proxy_pre.instantiate_async(&mut store))?;
        http_predict(&mut store, &proxy)
    };

    // The same component under an engine that keeps 32 MiB of each memory resident between
    // instances (Spin's SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT; the default is 2 MiB).
    const RESIDENT: usize = 32 << 20;
    let tuned = engine_with(Allocation::Pooling {
        keep_resident: RESIDENT,
    })?;
    let prewarmed = root.join("target/wasm32-wasip2/component/model_service.prewarmed.wasm");
    let tuned_component =
        Component::from_file(&tuned, &prewarmed).ctx(|| prewarmed.display().to_string())?;
    let tuned_pre = ModelServicePre::new(linker(&tuned)?.instantiate_pre(&tuned_component)?)?;
    let fresh_call = |engine: &wasmtime::Engine, pre: &ModelServicePre<State>| -> Result<()> {
        let mut store = bare_store(engine);
        let inst = rt.block_on(pre.instantiate_async(&mut store))?;
        rt.block_on(
            inst.phishing_classifier_classifier()
                .call_classify(&mut store, &one),
        )?
        .map_err(anyhow::Error::msg)?;
        Ok(())
    };

    // One URL, eight ways, in alternation: native; warm wasm (WIT); per request as Spin runs it
    // (the host's dispatch: a fresh instance from the InstancePre in a spawned task + HTTP
    // handling); the HTTP handler on a warm instance and on a fresh one, called directly; and
    // where a fresh request's time goes: instantiation alone, instantiation + one WIT call, the
    // same with 32 MiB resident.
    let [native_one, wasm_one, per_request, warm_request, fresh_request, instantiate_only, fresh_wit, fresh_wit_resident] =
        interleaved(
            5,
            40,
            [
                &mut || native.scores(&[URL]).map(drop),
                &mut || classify(&mut store, classifier, &one),
                &mut || {
                    let r = rt.block_on(host.request(
                        "POST",
                        "/predict",
                        &[("content-type", "application/json")],
                        body.clone(),
                    ))?;
                    anyhow::ensure!(r.status == 200, "status {}", r.status);
                    Ok(())
                },
                &mut warm_http,
                &mut fresh_http,
                &mut || {
                    let mut store = host.new_store("model-service");
                    rt.block_on(pre.instantiate_async(&mut store))?;
                    Ok(())
                },
                &mut || fresh_call(host.engine(), &pre),
                &mut || fresh_call(&tuned, &tuned_pre),
            ],
        )?;
    // Page faults per fresh-instance request (Linux: minor faults from /proc/self/stat): with
    // Spin's 2 MiB kept resident, the pages a request touches beyond that are faulted in again
    // by the next instance; with 32 MiB none are, and what remains is resetting them.
    let faults_per_fresh_call = |engine: &wasmtime::Engine, pre: &ModelServicePre<State>| {
        let before = minor_faults();
        for _ in 0..50 {
            fresh_call(engine, pre)?;
        }
        Ok::<_, anyhow::Error>(
            minor_faults()
                .zip(before)
                .map(|(a, b)| (a - b) as f64 / 50.0),
        )
    };
    let faults_spin_default = faults_per_fresh_call(host.engine(), &pre)?;
    let faults_resident = faults_per_fresh_call(&tuned, &tuned_pre)?;
    // What the pool keeps resident in a freed slot when 32 MiB are allowed: the slot's memory up
    // to that limit, which wasmtime resets by copying the snapshot back over it per instance.
    let resident_bytes = tuned
        .pooling_allocator_metrics()
        .map(|m| m.unused_memory_bytes_resident());
    // Where one request's allocations went: the arena in memory Spin keeps resident, or the
    // general allocator (see components/model-service/src/tuning/arena.rs).
    let allocations = {
        let mut store = bare_store(host.engine());
        let inst = rt.block_on(pre.instantiate_async(&mut store))?;
        let c = inst.phishing_classifier_classifier();
        rt.block_on(c.call_classify(&mut store, &one))?
            .map_err(anyhow::Error::msg)?;
        rt.block_on(c.call_allocations(&mut store))?
    };

    // A batch of 32: native vs warm wasm, in alternation.
    let [native_32, wasm_32] = interleaved(
        2,
        6,
        [&mut || native.scores(&batch_refs).map(drop), &mut || {
            classify(&mut store, classifier, &batch)
        }],
    )?;

    // Without the snapshot: a fresh instance must load the model first.
    let raw_path = root.join("target/wasm32-wasip2/component/model_service.wasm");
    let raw =
        Component::from_file(host.engine(), &raw_path).ctx(|| raw_path.display().to_string())?;
    let raw_pre = ModelServicePre::new(host.linker().instantiate_pre(&raw)?)?;
    let cold_unsnapshotted = median(1, 10, || {
        let mut store = host.new_store("model-service");
        let inst = rt.block_on(raw_pre.instantiate_async(&mut store))?;
        rt.block_on(
            inst.phishing_classifier_classifier()
                .call_classify(&mut store, &one),
        )?
        .map_err(anyhow::Error::msg)?;
        Ok(())
    })?;

    // The same service built without its wasm tuning (`--no-default-features`, see
    // components/model-service/src/tuning), when `benchmarks/tuning.sh` has built it: warm and
    // fresh-instance calls in alternation with the tuned component, page faults, size.
    let untuned_path =
        root.join("target/wasm32-wasip2/component/model_service.untuned.prewarmed.wasm");
    let tuning = if untuned_path.exists() {
        let t = Instant::now();
        let untuned = Component::from_file(host.engine(), &untuned_path)
            .ctx(|| untuned_path.display().to_string())?;
        let untuned_compile = t.elapsed().as_secs_f64();
        let untuned_pre = ModelServicePre::new(host.linker().instantiate_pre(&untuned)?)?;
        let mut untuned_store = host.new_store("model-service");
        let untuned_instance = rt.block_on(untuned_pre.instantiate_async(&mut untuned_store))?;
        let untuned_classifier = untuned_instance.phishing_classifier_classifier();
        let [on_warm, off_warm, on_fresh, off_fresh] = interleaved(
            5,
            40,
            [
                &mut || classify(&mut store, classifier, &one),
                &mut || classify(&mut untuned_store, untuned_classifier, &one),
                &mut || fresh_call(host.engine(), &pre),
                &mut || fresh_call(host.engine(), &untuned_pre),
            ],
        )?;
        let off_faults = faults_per_fresh_call(host.engine(), &untuned_pre)?;
        let off_bytes = std::fs::metadata(&untuned_path)?.len();
        println!(
            "tuning on / off: warm one URL {:.3} / {:.3} ms; fresh instance + WIT call {:.3} / {:.3} ms; \
             page faults per fresh call {:?} / {:?}; component {} / {} bytes; compiled in {:.2} / {:.2} s",
            on_warm * 1e3,
            off_warm * 1e3,
            on_fresh * 1e3,
            off_fresh * 1e3,
            faults_spin_default,
            off_faults,
            loaded.size_bytes,
            off_bytes,
            loaded.compile_seconds,
            untuned_compile
        );
        json!({
            "on": { "warm_one_url_ms": on_warm * 1e3, "fresh_instance_wit_one_url_ms": on_fresh * 1e3,
                    "page_faults_per_fresh_call": faults_spin_default, "component_bytes": loaded.size_bytes },
            "off": { "warm_one_url_ms": off_warm * 1e3, "fresh_instance_wit_one_url_ms": off_fresh * 1e3,
                     "page_faults_per_fresh_call": off_faults, "component_bytes": off_bytes,
                     "compile_s": untuned_compile },
        })
    } else {
        println!(
            "tuning on / off: not measured (`{}` is not built; benchmarks/tuning.sh builds it)",
            untuned_path.display()
        );
        serde_json::Value::Null
    };

    let r = json!({
        "tuning": tuning,
        "native": { "model_load_ms": native_load * 1e3, "one_url_ms": native_one * 1e3, "batch32_ms": native_32 * 1e3 },
        "wasm_wit_warm": { "one_url_ms": wasm_one * 1e3, "batch32_ms": wasm_32 * 1e3 },
        "ratio_wasm_vs_native": { "one_url": wasm_one / native_one, "batch32": wasm_32 / native_32 },
        "per_request_fresh_instance_http_ms": per_request * 1e3,
        "ratio_fresh_request_vs_warm_inference": per_request / wasm_one,
        "warm_instance_http_ms": warm_request * 1e3,
        "fresh_instance_http_direct_ms": fresh_request * 1e3,
        "ratio_fresh_request_direct_vs_warm_request": fresh_request / warm_request,
        "ratio_fresh_request_direct_vs_warm_inference": fresh_request / wasm_one,
        "ratio_fresh_wit_vs_warm_inference": fresh_wit / wasm_one,
        "fresh_instance_only_ms": instantiate_only * 1e3,
        "fresh_instance_wit_one_url_ms": fresh_wit * 1e3,
        "fresh_instance_wit_one_url_32mib_resident_ms": fresh_wit_resident * 1e3,
        "ratio_fresh_wit_32mib_resident_vs_warm_inference": fresh_wit_resident / wasm_one,
        "page_faults_per_fresh_call": faults_spin_default,
        "page_faults_per_fresh_call_32mib_resident": faults_resident,
        "memory_bytes_resident_per_slot_32mib": resident_bytes,
        "request_allocations": {
            "arena_bytes": allocations.arena_bytes,
            "overflow_bytes": allocations.overflow_bytes,
            "arena_end": allocations.arena_end,
            "model_heap_bytes": allocations.model_heap_bytes,
        },
        "allocation": format!("{:?}", Allocation::from_env()?),
        "fresh_instance_without_snapshot_ms": cold_unsnapshotted * 1e3,
        "component_bytes": loaded.size_bytes,
        "component_compile_s": loaded.compile_seconds,
    });
    println!(
        "native tract:     one URL {:.2} ms, batch of 32 {:.2} ms (model load {:.1} ms)",
        native_one * 1e3,
        native_32 * 1e3,
        native_load * 1e3
    );
    println!(
        "wasm (WIT, warm): one URL {:.2} ms, batch of 32 {:.2} ms",
        wasm_one * 1e3,
        wasm_32 * 1e3
    );
    println!(
        "wasm / native:    one URL {:.2}x, batch of 32 {:.2}x",
        wasm_one / native_one,
        wasm_32 / native_32
    );
    println!(
        "per request like Spin (fresh instance + HTTP): {:.2} ms = {:.2}x warm inference",
        per_request * 1e3,
        per_request / wasm_one
    );
    println!(
        "  HTTP handler called directly: warm instance {:.2} ms, fresh instance {:.2} ms = {:.2}x warm request, {:.2}x warm inference",
        warm_request * 1e3,
        fresh_request * 1e3,
        fresh_request / warm_request,
        fresh_request / wasm_one
    );
    println!(
        "  instantiation {:.2} ms; fresh instance + WIT call (no HTTP) {:.2} ms = {:.2}x warm inference",
        instantiate_only * 1e3,
        fresh_wit * 1e3,
        fresh_wit / wasm_one
    );
    println!(
        "fresh instance + WIT call with 32 MiB kept resident: {:.2} ms = {:.2}x warm inference",
        fresh_wit_resident * 1e3,
        fresh_wit_resident / wasm_one
    );
    if let (Some(a), Some(b)) = (faults_spin_default, faults_resident) {
        println!("page faults per fresh-instance call: {a:.0} (2 MiB resident), {b:.0} (32 MiB)");
    }
    if let Some(d) = resident_bytes {
        println!("memory the pool keeps resident per slot with 32 MiB allowed: {d} bytes");
    }
    println!(
        "one request's allocations: {} bytes from the resident arena (ending at {}), {} bytes \
         overflowed; the model's own blocks before it: {} bytes",
        allocations.arena_bytes,
        allocations.arena_end,
        allocations.overflow_bytes,
        allocations.model_heap_bytes
    );
    println!(
        "fresh instance without the snapshot (load + infer): {:.2} ms",
        cold_unsnapshotted * 1e3
    );
    println!(
        "component: {} bytes, compiled in {:.2} s",
        loaded.size_bytes, loaded.compile_seconds
    );
    let out = root.join("target/bench-results");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("inference.json"),
        serde_json::to_string_pretty(&r)?,
    )?;
    Ok(())
}
