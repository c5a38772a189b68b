//! The wasm glue: Spin's HTTP trigger, the WIT `classifier` export, the snapshot hook (whose
//! tuned steps are in [`crate::tuning`]).

use crate::{api, model};
use spin_sdk::http::{Request, ResponseOutparam};
use spin_sdk::http_component;

/// Converts Spin's request to the plain API and back. Nothing else happens here.
#[http_component]
fn handle(req: Request, out: ResponseOutparam) {
    let method = req.method().to_string();
    let path = req.path().split('?').next().unwrap_or("/").to_string();
    let content_type = req
        .header("content-type")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let resp = api::handle(api::Request {
        method: &method,
        path: &path,
        content_type: content_type.as_deref(),
        body: req.body(),
    });
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    headers.extend(resp.headers.iter().cloned());
    let body = resp.body.to_string();
    api_policy::spin::respond(
        out,
        resp.status,
        &headers,
        body.as_bytes(),
        method == "HEAD",
    );
}

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "model-service",
        generate_all,
    });
}

use bindings::exports::phishing::classifier::classifier::{
    AllocationStats, Guest as ClassifierGuest, Label, ModelInfo, Prediction,
};

struct Component;

impl ClassifierGuest for Component {
    fn classify(urls: Vec<String>) -> Result<Vec<Prediction>, String> {
        if urls.is_empty() || urls.len() > model::MAX_BATCH {
            return Err(format!(
                "expected 1 to {} URLs, got {}",
                model::MAX_BATCH,
                urls.len()
            ));
        }
        if let Some(i) = urls.iter().position(|u| u.trim().is_empty()) {
            return Err(format!("URL {i} is empty"));
        }
        let c = model::classifier().map_err(|e| format!("{e:#}"))?;
        let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
        let scores = c.scores(&refs).map_err(|e| format!("{e:#}"))?;
        Ok(urls
            .into_iter()
            .zip(scores)
            .map(|(url, score)| Prediction {
                url,
                label: if score >= c.threshold {
                    Label::Phishing
                } else {
                    Label::Legitimate
                },
                score,
            })
            .collect())
    }

    fn info() -> ModelInfo {
        let c = model::classifier().expect("the built-in model loads");
        ModelInfo {
            name: c.name.clone(),
            version: c.version.clone(),
            threshold: c.threshold,
            sequence_length: c.encoder.width() as u32,
            preinitialized: model::preinitialized(),
        }
    }

    /// Where allocations went (the tuning's arena and model heap; all zero without it).
    fn allocations() -> AllocationStats {
        #[cfg(feature = "tuning")]
        {
            let (usage, model_heap) = crate::tuning::wasm::usage();
            AllocationStats {
                arena_bytes: usage.served,
                overflow_bytes: usage.overflow,
                arena_end: usage.end as u64,
                model_heap_bytes: model_heap as u64,
            }
        }
        #[cfg(not(feature = "tuning"))]
        AllocationStats {
            arena_bytes: 0,
            overflow_bytes: 0,
            arena_end: 0,
            model_heap_bytes: 0,
        }
    }
}

impl bindings::Guest for Component {
    fn wizer_initialize() {
        // The export stays in the snapshot; called again, it must not load twice (with the
        // tuning: hand the arena's memory out a second time).
        if model::preinitialized() {
            return;
        }
        #[cfg(feature = "tuning")]
        crate::tuning::wasm::preinitialize();
        #[cfg(not(feature = "tuning"))]
        model::preinitialize(model::read_graph).expect("the built-in model loads");
    }
}

bindings::export!(Component with_types_in bindings);
