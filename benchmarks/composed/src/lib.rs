//! An HTTP component that imports the model-service's WIT `classifier` instead of calling its
//! HTTP API: `spin.toml` composes the pre-initialized model-service into it as a Spin component
//! dependency, so `POST /probe` is one instance and a function call. It measures what the app's
//! path would cost without service chaining (run.sh).

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "composed-probe", generate_all });
}
use bindings::phishing::classifier::classifier::{classify, Label};

/// `{"url": "..."}` → `{"label", "score"}`, the URL taken as the first string after `"url"`.
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let body = String::from_utf8_lossy(req.body()).into_owned();
    let url = body
        .split("\"url\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap_or("")
        .to_string();
    let p = classify(&[url]).map_err(anyhow::Error::msg)?;
    let label = match p[0].label {
        Label::Phishing => "phishing",
        Label::Legitimate => "legitimate",
    };
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"label\":\"{label}\",\"score\":{}}}",
            p[0].score
        ))
        .build())
}
