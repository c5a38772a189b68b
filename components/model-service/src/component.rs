//! The wasm glue: Spin's HTTP trigger, the WIT `classifier` export, the snapshot hook.

use crate::{api, model};
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

/// Converts Spin's request to the plain API and back. Nothing else happens here.
#[http_component]
fn handle(req: Request) -> Response {
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
    let mut builder = Response::builder();
    builder
        .status(resp.status)
        .header("content-type", "application/json");
    for (k, v) in &resp.headers {
        builder.header(k.as_str(), v.as_str());
    }
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        resp.body.to_string().into_bytes()
    };
    builder.body(body).build()
}

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "model-service",
        generate_all,
    });
}

use bindings::exports::phishing::classifier::classifier::{
    Guest as ClassifierGuest, Label, ModelInfo, Prediction,
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
            sequence_length: c.tokenizer.max_len() as u32,
            preinitialized: model::preinitialized(),
        }
    }
}

impl bindings::Guest for Component {
    fn wizer_initialize() {
        model::preinitialize().expect("the built-in model loads");
    }
}

bindings::export!(Component with_types_in bindings);
