//! The built model-service component, run through the host the way Spin runs it: every endpoint,
//! every error case, parity with native inference, and the pre-initialized model.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::OnceLock;
use wasm_host::{Host, HostOptions, TestResponse};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "model-service",
    exports: { default: async },
});

fn manifest() -> PathBuf {
    test_support::workspace_root().join("spin.toml")
}

/// The host, loaded once per test binary (compiling the component takes seconds).
fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let options = HostOptions { components: Some(vec!["model-service".into()]), ..Default::default() };
        Host::load(&manifest(), options)
            .expect("model-service must be built first: `cargo run -p wasm-host -- build` (scripts/test.sh does)")
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn call(method: &str, path: &str, content_type: Option<&str>, body: &str) -> TestResponse {
    let headers: Vec<(&str, &str)> = content_type
        .map(|c| vec![("content-type", c)])
        .unwrap_or_default();
    rt().block_on(host().request(method, path, &headers, body.to_string()))
        .unwrap()
}

fn post(path: &str, body: &str) -> TestResponse {
    call("POST", path, Some("application/json"), body)
}

#[test]
fn predict_returns_label_score_and_model_version() -> anyhow::Result<()> {
    let r = post(
        "/predict",
        r#"{"url": "http://paypal.com.verify-account.tk/signin/webscr.php"}"#,
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json()?;
    assert_eq!(
        v["url"],
        "http://paypal.com.verify-account.tk/signin/webscr.php"
    );
    let score = v["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    let label = if score >= model_card()["threshold"].as_f64().unwrap() {
        "phishing"
    } else {
        "legitimate"
    };
    assert_eq!(v["label"], label);
    assert_eq!(v["model_version"], model_card()["version"]);
    Ok(())
}

#[test]
fn original_input_field_name_is_accepted() -> anyhow::Result<()> {
    let a = post("/predict", r#"{"input": "https://www.wikipedia.org/"}"#).json()?;
    let b = post("/predict", r#"{"url": "https://www.wikipedia.org/"}"#).json()?;
    assert_eq!(a, b);
    Ok(())
}

#[test]
fn batch_answers_in_order() -> anyhow::Result<()> {
    let urls = [
        "https://www.wikipedia.org/",
        "http://login-verify.tk/account",
        "http://192.168.2.1/bank/",
    ];
    let v = post("/predict/batch", &json!({ "urls": urls }).to_string()).json()?;
    let preds = v["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    for (p, u) in preds.iter().zip(urls) {
        assert_eq!(p["url"], u);
        let single = post("/predict", &json!({ "url": u }).to_string()).json()?;
        let (a, b) = (
            p["score"].as_f64().unwrap(),
            single["score"].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() < 1e-5,
            "batch and single disagree for {u}: {a} vs {b}"
        );
    }
    Ok(())
}

fn model_card() -> Value {
    let text =
        std::fs::read_to_string(test_support::workspace_root().join("model/model-card.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn model_route_serves_the_model_card() -> anyhow::Result<()> {
    let r = call("GET", "/model", None, "");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()?, model_card());
    Ok(())
}

#[test]
fn preinitialized_component_answers_without_loading_the_model() -> anyhow::Result<()> {
    // /health is routed to the app under `spin up`; chained requests reach it. Here the host
    // serves the component through its v2 routes and we read /health via a direct dispatch.
    let v = call("GET", "/v2/health/ready", None, "").json()?;
    assert_eq!(v, json!({ "ready": true }));
    let h = health("model_service.prewarmed.wasm")?;
    assert_eq!(h["status"], "ok");
    assert_eq!(
        h["preinitialized"], true,
        "the built component must carry the model snapshot: {h}"
    );
    assert_eq!(
        h["loads_at_request_time"], 0,
        "a fresh instance loaded the model: {h}"
    );
    // The marker can tell: the component before the snapshot loads the model in the request.
    let raw = health("model_service.wasm")?;
    assert_eq!(
        (
            raw["preinitialized"].clone(),
            raw["loads_at_request_time"].clone()
        ),
        (json!(false), json!(1))
    );
    Ok(())
}

#[test]
fn snapshot_leaves_out_the_model_file_and_keeps_one_copy_of_the_weights() -> anyhow::Result<()> {
    // Once the model is loaded, the NNEF file is dead weight: pre-initialization zeroes it (and
    // every block freed while loading), so the snapshot (which stores non-zero memory) holds the
    // loaded weights once, not the file's copy beside them. Probe the initial memory of both
    // builds for 4 KiB of the graph's text and of the weight tensor: the component before the
    // snapshot carries each once (its copy of the file); after it, the graph text is gone and
    // the weights are there once (the loaded tensor).
    let dir = test_support::workspace_root().join("target/wasm32-wasip2/component");
    let nnef = model_service::model::MODEL_NNEF;
    let graph = tar_entries(nnef)
        .into_iter()
        .find(|(name, _)| *name == "graph.nnef")
        .map(|(_, data)| data)
        .expect("the archive holds graph.nnef");
    let weights = tar_entries(nnef)
        .into_iter()
        .filter(|(name, data)| name.ends_with(".dat") && data.len() > 64 * 1024)
        .map(|(_, data)| data)
        .next()
        .expect("the archive holds the weight tensor");
    let middle = weights.len() / 2;
    let probes = [
        ("graph.nnef", &graph[..graph.len().min(512)]),
        ("weights", &weights[middle..middle + 4096]),
    ];
    let count = |wasm: &str| -> anyhow::Result<Vec<(&str, usize)>> {
        let memory = initial_memory(&std::fs::read(dir.join(wasm))?)?;
        Ok(probes
            .iter()
            .map(|(name, probe)| {
                let n = memory.windows(probe.len()).filter(|w| w == probe).count();
                (*name, n)
            })
            .collect())
    };
    assert_eq!(
        count("model_service.wasm")?,
        [("graph.nnef", 1), ("weights", 1)],
        "the component before the snapshot carries the model file once"
    );
    assert_eq!(
        count("model_service.prewarmed.wasm")?,
        [("graph.nnef", 0), ("weights", 1)],
        "the pre-initialized component must hold the loaded weights once and no model file"
    );
    Ok(())
}

/// A fresh instance of a built model-service component (a file under the component
/// directory), called through the WIT `classifier` interface.
fn fresh_classifier(
    rt: &tokio::runtime::Runtime,
    wasm: &str,
) -> anyhow::Result<(
    wasmtime::Store<wasm_host::state::State>,
    exports::phishing::classifier::classifier::Guest,
)> {
    let path = test_support::workspace_root()
        .join("target/wasm32-wasip2/component")
        .join(wasm);
    let component = wasmtime::component::Component::from_file(host().engine(), &path)?;
    let pre = ModelServicePre::new(host().linker().instantiate_pre(&component)?)?;
    let mut store = host().new_store("model-service");
    let instance = rt.block_on(pre.instantiate_async(&mut store))?;
    Ok((store, instance.phishing_classifier_classifier().clone()))
}

#[test]
fn a_request_allocates_only_from_memory_spin_keeps_resident() -> anyhow::Result<()> {
    // Once the snapshot is taken, a request's allocations come from the arena in the model
    // file's old memory (components/model-service/src/tuning/arena.rs), low in memory where Spin's
    // pooling allocator keeps pages resident between instances. A fresh instance's inference
    // must fit in it; a batch of 256 may overflow into the general allocator, counted.
    let rt = rt();
    let (mut store, classifier) = fresh_classifier(&rt, "model_service.prewarmed.wasm")?;
    let url = vec!["http://paypal.com.verify-account.tk/webscr.php?cmd=_login".to_string()];
    rt.block_on(classifier.call_classify(&mut store, &url))?
        .map_err(anyhow::Error::msg)?;
    let used = rt.block_on(classifier.call_allocations(&mut store))?;
    assert!(used.arena_bytes > 0, "{used:?}");
    assert_eq!(
        used.overflow_bytes, 0,
        "one URL overflowed the arena: {used:?}"
    );
    // Everything the request allocated and the model's own small blocks (which requests read
    // and write: graph nodes, operators, reference counts) lie in that resident memory.
    let wasm_host::engine::Allocation::Pooling { keep_resident } =
        wasm_host::engine::Allocation::SPIN_DEFAULT
    else {
        unreachable!("Spin pools instances")
    };
    let resident = keep_resident as u64;
    assert!(
        used.arena_end > 0 && used.arena_end <= resident,
        "the arena ends at {} (past the {resident} bytes kept resident): {used:?}",
        used.arena_end
    );
    assert!(used.model_heap_bytes > 0, "{used:?}");
    // A warm instance starts the arena over once a request has freed everything. A batch does
    // not fit: the arena takes back only the last block freed, and inference frees out of order
    // while the call's own allocations stay alive (two URLs overflow it, into the general
    // allocator, counted).
    rt.block_on(classifier.call_classify(&mut store, &url))?
        .map_err(anyhow::Error::msg)?;
    let again = rt.block_on(classifier.call_allocations(&mut store))?;
    assert_eq!(
        again.overflow_bytes, 0,
        "the second request overflowed: {again:?}"
    );
    // Without the snapshot the model file is still needed: no arena.
    let (mut store, classifier) = fresh_classifier(&rt, "model_service.wasm")?;
    rt.block_on(classifier.call_classify(&mut store, &url))?
        .map_err(anyhow::Error::msg)?;
    let raw = rt.block_on(classifier.call_allocations(&mut store))?;
    assert_eq!(raw.arena_bytes, 0, "{raw:?}");
    assert_eq!(raw.model_heap_bytes, 0, "{raw:?}");
    Ok(())
}

#[test]
fn calling_the_snapshot_hook_again_changes_nothing() -> anyhow::Result<()> {
    // The snapshot keeps the `wizer-initialize` export (the component is not valid without
    // it), so a host can call it on a pre-initialized instance: that must leave the model, its
    // scores and where a request's memory comes from as they were (the model file is gone, so
    // loading it again would trap).
    let rt = rt();
    let path = test_support::workspace_root()
        .join("target/wasm32-wasip2/component/model_service.prewarmed.wasm");
    let component = wasmtime::component::Component::from_file(host().engine(), &path)?;
    let pre = ModelServicePre::new(host().linker().instantiate_pre(&component)?)?;
    let mut store = host().new_store("model-service");
    let instance = rt.block_on(pre.instantiate_async(&mut store))?;
    let classifier = instance.phishing_classifier_classifier();
    // One URL a call: a batch overflows the arena (see the allocation test above).
    let urls = vec!["http://paypal.com.verify-account.tk/webscr.php?cmd=_login".to_string()];
    let scores =
        |store: &mut wasmtime::Store<wasm_host::state::State>| -> anyhow::Result<Vec<f32>> {
            let predictions = rt
                .block_on(classifier.call_classify(&mut *store, &urls))?
                .map_err(anyhow::Error::msg)?;
            Ok(predictions.iter().map(|p| p.score).collect())
        };
    let before = scores(&mut store)?;
    let used = rt.block_on(classifier.call_allocations(&mut store))?;
    rt.block_on(instance.call_wizer_initialize(&mut store))?;
    for _ in 0..3 {
        assert_eq!(scores(&mut store)?, before);
    }
    let again = rt.block_on(classifier.call_allocations(&mut store))?;
    assert_eq!(again.model_heap_bytes, used.model_heap_bytes);
    assert_eq!(again.arena_end, used.arena_end);
    assert_eq!(again.overflow_bytes, 0, "{again:?}");
    assert!(
        rt.block_on(classifier.call_info(&mut store))?
            .preinitialized
    );
    Ok(())
}

#[test]
fn component_links_only_the_nnef_operators_the_model_uses() -> anyhow::Result<()> {
    // tract's full NNEF reader registers every operator it knows, and registering one links its
    // code; the component reads the model with its own reader (reader.rs), and a link-time
    // constructor in tract-nnef must not pull the full one back in. Operator names are string
    // constants of their registrations: the reader's are in the component, the full reader's
    // others are not.
    let dir = test_support::workspace_root().join("target/wasm32-wasip2/component");
    let wasm = std::fs::read(dir.join("model_service.wasm"))?;
    let contains = |s: &str| wasm.windows(s.len()).any(|w| w == s.as_bytes());
    for used in ["tract_core_gather", "tract_core_cast", "sum_reduce"] {
        assert!(
            contains(used),
            "the component's reader should register {used}"
        );
    }
    let full_only: Vec<&str> = [
        "tract_core_einsum",
        "tract_core_stft",
        "tract_core_fft",
        "tract_core_scan",
        "tract_core_topk",
    ]
    .into_iter()
    .filter(|s| contains(s))
    .collect();
    assert!(
        full_only.is_empty(),
        "the component links tract's full NNEF reader (found {full_only:?})"
    );
    Ok(())
}

/// The (name, contents) of each file in a tar archive.
fn tar_entries(tar: &[u8]) -> Vec<(&str, &[u8])> {
    fn field(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes)
            .unwrap()
            .trim_matches(['\0', ' '])
    }
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at] != 0 {
        let name = field(&tar[at..at + 100]);
        let size = usize::from_str_radix(field(&tar[at + 124..at + 136]), 8).unwrap();
        entries.push((name, &tar[at + 512..at + 512 + size]));
        at += 512 + size.div_ceil(512) * 512;
    }
    entries
}

/// The initial linear memory of a component's first core module (the program; the others are
/// adapter shims), as its active data segments lay it out. The snapshot splits memory into
/// segments at runs of zeros; this puts it back together.
fn initial_memory(component: &[u8]) -> anyhow::Result<Vec<u8>> {
    use wasmparser::{DataKind, Operator, Parser, Payload};
    let mut memory = Vec::new();
    let mut modules = 0;
    for payload in Parser::new(0).parse_all(component) {
        match payload? {
            Payload::ModuleSection { .. } => modules += 1,
            Payload::DataSection(data) if modules == 1 => {
                for segment in data {
                    let segment = segment?;
                    // Passive segments are not part of the initial memory (the snapshot keeps
                    // the original ones, emptied, so that segment indices stay valid).
                    if let DataKind::Passive = segment.kind {
                        continue;
                    }
                    let DataKind::Active {
                        memory_index: 0,
                        offset_expr,
                    } = segment.kind
                    else {
                        anyhow::bail!("unexpected data segment kind {:?}", segment.kind);
                    };
                    let Operator::I32Const { value } = offset_expr.get_operators_reader().read()?
                    else {
                        anyhow::bail!("a data segment's offset is not a constant");
                    };
                    let start = value as u32 as usize;
                    let end = start + segment.data.len();
                    if memory.len() < end {
                        memory.resize(end, 0);
                    }
                    memory[start..end].copy_from_slice(segment.data);
                }
            }
            _ => {}
        }
    }
    anyhow::ensure!(
        !memory.is_empty(),
        "no data segments in the component's first module"
    );
    Ok(memory)
}

/// `GET /health` of a built component (as a chained request or a lone pod would reach it).
fn health(wasm: &str) -> anyhow::Result<Value> {
    let host = Host::load(&health_manifest(wasm)?, HostOptions::default())?;
    rt().block_on(host.request("GET", "/health", &[], ""))?
        .json()
}

/// A manifest routing `/...` to a built component, as a SpinApp retaining it alone might.
fn health_manifest(wasm: &str) -> anyhow::Result<PathBuf> {
    let root = test_support::workspace_root();
    let dir = std::env::temp_dir().join(format!("ms-health-{}-{wasm}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let source = root.join("target/wasm32-wasip2/component").join(wasm);
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"ms\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"model-service\"\n[component.model-service]\nsource = \"{}\"\nallowed_outbound_hosts = []\n",
        source.display()
    );
    std::fs::write(dir.join("spin.toml"), text)?;
    Ok(dir.join("spin.toml"))
}

#[test]
fn open_inference_protocol_routes() -> anyhow::Result<()> {
    assert_eq!(
        call("GET", "/v2/health/live", None, "").json()?,
        json!({ "live": true })
    );
    let meta = call("GET", "/v2/models/phishing", None, "").json()?;
    assert_eq!(meta["name"], "phishing");
    assert_eq!(meta["inputs"][0]["datatype"], "BYTES");
    let body = json!({
        "id": "req-1",
        "inputs": [{ "name": "url", "shape": [2], "datatype": "BYTES", "data": ["https://www.wikipedia.org/", "http://login-verify.tk/account"] }]
    });
    let r = post("/v2/models/phishing/infer", &body.to_string());
    assert_eq!(r.status, 200, "{:?}", r.body);
    let v = r.json()?;
    assert_eq!(v["id"], "req-1");
    assert_eq!(v["model_name"], "phishing");
    assert_eq!(v["outputs"][0]["name"], "score");
    assert_eq!(v["outputs"][0]["datatype"], "FP32");
    assert_eq!(v["outputs"][0]["shape"], json!([2]));
    assert_eq!(v["outputs"][0]["data"].as_array().unwrap().len(), 2);
    Ok(())
}

#[test]
fn openapi_document_lists_exactly_the_served_routes() -> anyhow::Result<()> {
    let doc = call("GET", "/openapi.json", None, "").json()?;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (p.clone(), m.to_uppercase()))
        })
        .collect();
    let mut served: Vec<(String, String)> = model_service::api::ROUTES
        .iter()
        .flat_map(|(p, ms)| ms.iter().map(move |m| (p.to_string(), m.to_string())))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
    // Every documented status of every route is one the API can produce, and every GET route
    // answers 200 through the component.
    for (path, method) in &served {
        if method == "GET" && !path.ends_with("/health") {
            assert_eq!(call("GET", path, None, "").status, 200, "GET {path}");
        }
    }
    Ok(())
}

/// Every client error: status, and a JSON `error` quoting what was wrong.
#[test]
fn client_errors_are_json_with_the_right_status() {
    let big = format!(r#"{{"url": "http://a.com/{}"}}"#, "a".repeat(70_000));
    let too_many = json!({ "urls": vec!["http://a.com"; 257] }).to_string();
    // method, path, content type, body, expected status, expected text in the error
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("POST", "/predict", Some("application/json"), "{not json".into(), 400, "malformed JSON"),
        ("POST", "/predict", Some("application/json"), "".into(), 400, "body is empty"),
        ("POST", "/predict", Some("application/json"), r#"{"link": "x"}"#.into(), 400, "missing field `url`"),
        ("POST", "/predict", Some("application/json"), r#"{"url": ""}"#.into(), 400, "`url` is empty"),
        ("POST", "/predict", Some("application/json"), r#"{"url": 42}"#.into(), 400, "found number `42`"),
        ("POST", "/predict", Some("application/json"), r#"["http://a.com"]"#.into(), 400, "expected a JSON object"),
        ("POST", "/predict", Some("application/json"), big, 413, "limit is 65536"),
        ("POST", "/predict", Some("text/plain"), r#"{"url": "http://a.com"}"#.into(), 415, "`text/plain`"),
        ("POST", "/predict/batch", Some("application/json"), r#"{"urls": []}"#.into(), 422, "holds 0 URLs"),
        ("POST", "/predict/batch", Some("application/json"), too_many, 422, "holds 257 URLs"),
        ("POST", "/predict/batch", Some("application/json"), r#"{"urls": ["http://a.com", null]}"#.into(), 400, "`urls[1]` must be a string, found null"),
        ("POST", "/predict/batch", Some("application/json"), r#"{"urls": "http://a.com"}"#.into(), 400, "must be an array"),
        ("POST", "/v2/models/phishing/infer", Some("application/json"), r#"{"inputs": [{"name": "url", "datatype": "FP32", "shape": [1], "data": [1.0]}]}"#.into(), 400, "datatype must be \"BYTES\""),
        ("POST", "/v2/models/phishing/infer", Some("application/json"), r#"{"inputs": [{"name": "url", "datatype": "BYTES", "shape": [3], "data": ["http://a.com"]}]}"#.into(), 400, "does not match 1 data elements"),
        ("GET", "/v2/models/unknown", None, String::new(), 404, "no route for `/v2/models/unknown`"),
        ("GET", "/predict", None, String::new(), 405, "method `GET` is not allowed on `/predict`"),
        ("DELETE", "/model", None, String::new(), 405, "allowed: GET"),
    ];
    let mut failures = Vec::new();
    for (method, path, ct, body, status, needle) in cases {
        let r = call(method, path, ct, &body);
        let msg = r
            .json()
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_default();
        if r.status != status || !msg.contains(needle) {
            failures.push(format!(
                "{method} {path} {}: got {} {msg:?}, want {status} containing {needle:?}",
                &body.chars().take(40).collect::<String>(),
                r.status
            ));
        }
        if status == 405 && r.header("allow").is_none() {
            failures.push(format!("{method} {path}: 405 without Allow"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
