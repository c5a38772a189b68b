//! The HTTP API as plain functions: a request in, a response out. The Spin handler only converts
//! types; everything here runs in native tests too.

use crate::model::{self, MAX_BATCH};
use lib_ml::analysis::Analysis;
use lib_ml::explain::Explanation;
use lib_ml::Label;
use serde_json::{json, Value};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The model name in the Open Inference Protocol routes.
pub const OIP_MODEL: &str = "phishing";
/// The OpenAPI document of this API (`openapi.json` without the whitespace between tokens; see
/// `build.rs`).
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// A request as the handler sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, without query string.
    pub path: &'a str,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// A response: status, extra headers, JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers besides `Content-Type: application/json`.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
}

impl Response {
    fn ok(body: Value) -> Response {
        Response {
            status: 200,
            headers: vec![],
            body,
        }
    }
    fn error(status: u16, message: impl Into<String>) -> Response {
        Response {
            status,
            headers: vec![],
            body: json!({ "error": message.into() }),
        }
    }
}

/// A failed request: status and message.
type Fail = (u16, String);

/// Every route: path, allowed methods. Unknown paths are 404, known paths with another method 405
/// (`api_policy::route`, the rule both components share).
pub const ROUTES: api_policy::Routes = &[
    ("/predict", &["POST"]),
    ("/predict/batch", &["POST"]),
    ("/model", &["GET"]),
    ("/health", &["GET"]),
    ("/openapi.json", &["GET"]),
    ("/v2/health/live", &["GET"]),
    ("/v2/health/ready", &["GET"]),
    ("/v2/models/phishing", &["GET"]),
    ("/v2/models/phishing/infer", &["POST"]),
];

/// Routes and answers one request. Never panics on client input.
pub fn handle(req: Request<'_>) -> Response {
    let path = match api_policy::route(ROUTES, req.method, req.path, "; see GET /openapi.json") {
        Ok(path) => path,
        Err(e) => {
            let mut r = Response::error(e.status, e.message);
            r.headers.extend(e.allow.map(|a| ("allow".to_string(), a)));
            return r;
        }
    };
    let result = match path {
        "/predict" => json_body(&req).and_then(|v| predict(&v)),
        "/predict/batch" => json_body(&req).and_then(|v| predict_batch(&v)),
        "/model" => serde_json::from_str(model::MODEL_CARD_JSON)
            .map_err(|e| (500, format!("model card: {e}"))),
        "/health" => health(),
        "/openapi.json" => {
            serde_json::from_str(OPENAPI_JSON).map_err(|e| (500, format!("openapi: {e}")))
        }
        "/v2/health/live" => Ok(json!({ "live": true })),
        "/v2/health/ready" => model::classifier()
            .map(|_| json!({ "ready": true }))
            .map_err(internal),
        "/v2/models/phishing" => oip_metadata(),
        "/v2/models/phishing/infer" => json_body(&req).and_then(|v| oip_infer(&v)),
        _ => unreachable!("every route in ROUTES is handled"),
    };
    match result {
        Ok(body) => Response::ok(body),
        Err((status, message)) => Response::error(status, message),
    }
}

fn internal(e: anyhow::Error) -> Fail {
    (500, format!("model unavailable: {e:#}"))
}

/// The body as JSON, by the rules both components share (`api_policy`).
fn json_body(req: &Request<'_>) -> Result<Value, Fail> {
    api_policy::json_body(
        req.body,
        req.content_type,
        MAX_BODY_BYTES,
        "{\"url\": \"https://example.com\"}",
    )
    .map_err(|p| (p.status, p.message))
}

use api_policy::describe;

/// The URL in `v` (the value of `field`), trimmed, by the rules both components share
/// (`api_policy::url_value`): 400 for what is not a non-empty string or holds control characters,
/// 422 for an over-long URL or text that is not a web address.
fn url_from<'v>(v: &'v Value, field: &str) -> Result<&'v str, Fail> {
    api_policy::url_value(v, field).map_err(|p| (p.status, p.message))
}

/// One answer: the verdict, the real site, the reasons and which parts of the URL moved the
/// score (`contribution` in logit units, positive toward phishing).
fn prediction(
    c: &model::Classifier,
    url: &str,
    score: f32,
    analysis: &Analysis,
    explanation: &Explanation,
) -> Value {
    json!({
        "url": url,
        "label": Label::from_score(score, c.threshold).as_str(),
        "score": score,
        "verdict": c.bands.of(score),
        "registrable_domain": analysis.registrable_domain,
        "leads_to": explanation.leads_to,
        "reasons": explanation.reasons.iter().map(|r| json!({
            "code": r.code,
            "message": r.message,
            "weight": r.weight,
        })).collect::<Vec<_>>(),
        "attribution": explanation.parts.iter().map(|p| json!({
            "part": p.kind,
            "text": p.text,
            "contribution": p.contribution,
        })).collect::<Vec<_>>(),
        "model_version": c.version,
    })
}

/// `POST /predict`: `{"url": ...}` (or the original field name `{"input": ...}`).
fn predict(body: &Value) -> Result<Value, Fail> {
    let Value::Object(obj) = body else {
        return Err((
            400,
            format!(
                "expected a JSON object such as {{\"url\": \"...\"}}, found {}",
                describe(body)
            ),
        ));
    };
    let (field, value) = match (obj.get("url"), obj.get("input")) {
        (Some(v), _) => ("url", v),
        (None, Some(v)) => ("input", v),
        (None, None) => {
            return Err((
                400,
                "missing field `url`; expected {\"url\": \"https://example.com\"}".into(),
            ))
        }
    };
    let url = url_from(value, field)?;
    let c = model::classifier().map_err(internal)?;
    let (score, analysis, explanation) = c.explain(&[url]).map_err(internal)?.remove(0);
    Ok(prediction(c, url, score, &analysis, &explanation))
}

/// The URLs of a batch: 1 to [`MAX_BATCH`] non-empty strings.
fn batch_urls<'v>(v: &'v Value, field: &str) -> Result<Vec<&'v str>, Fail> {
    let Value::Array(items) = v else {
        return Err((
            400,
            format!("`{field}` must be an array of URLs, found {}", describe(v)),
        ));
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err((
            422,
            format!(
                "`{field}` holds {} URLs; send 1 to {MAX_BATCH}",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, u)| url_from(u, &format!("{field}[{i}]")))
        .collect()
}

/// `POST /predict/batch`: `{"urls": [...]}`.
fn predict_batch(body: &Value) -> Result<Value, Fail> {
    let urls = match body.get("urls") {
        Some(v) => batch_urls(v, "urls")?,
        None => {
            return Err((
                400,
                "missing field `urls`; expected {\"urls\": [\"https://example.com\"]}".into(),
            ))
        }
    };
    let c = model::classifier().map_err(internal)?;
    let predictions: Vec<Value> = urls
        .iter()
        .zip(c.explain(&urls).map_err(internal)?)
        .map(|(u, (s, a, e))| prediction(c, u, s, &a, &e))
        .collect();
    Ok(json!({ "predictions": predictions }))
}

fn health() -> Result<Value, Fail> {
    let c = model::classifier().map_err(internal)?;
    Ok(json!({
        "status": "ok",
        "model": c.name,
        "model_version": c.version,
        "preinitialized": model::preinitialized(),
        "loads_at_request_time": model::loads_at_request_time(),
    }))
}

/// `GET /v2/models/phishing`: Open Inference Protocol model metadata.
fn oip_metadata() -> Result<Value, Fail> {
    let c = model::classifier().map_err(internal)?;
    Ok(json!({
        "name": OIP_MODEL,
        "versions": [c.version],
        "platform": "tract_nnef_wasm",
        "inputs": [{ "name": "url", "datatype": "BYTES", "shape": [-1] }],
        "outputs": [
            { "name": "score", "datatype": "FP32", "shape": [-1] },
            { "name": "label", "datatype": "BYTES", "shape": [-1] },
        ],
    }))
}

/// `POST /v2/models/phishing/infer`: one BYTES input of URLs → FP32 scores (and labels).
fn oip_infer(body: &Value) -> Result<Value, Fail> {
    let inputs = match body.get("inputs") {
        Some(Value::Array(a)) if a.len() == 1 => &a[0],
        Some(Value::Array(a)) => {
            return Err((
                400,
                format!("expected exactly one input tensor, found {}", a.len()),
            ))
        }
        Some(other) => {
            return Err((
                400,
                format!("`inputs` must be an array, found {}", describe(other)),
            ))
        }
        None => return Err((400, "missing field `inputs`".into())),
    };
    match inputs.get("datatype") {
        Some(Value::String(d)) if d == "BYTES" => {}
        Some(other) => {
            return Err((
                400,
                format!(
                    "input datatype must be \"BYTES\", found {}",
                    describe(other)
                ),
            ))
        }
        None => return Err((400, "input is missing `datatype`".into())),
    }
    let data = inputs
        .get("data")
        .ok_or((400, "input is missing `data`".to_string()))?;
    let urls = batch_urls(data, "inputs[0].data")?;
    if let Some(shape) = inputs.get("shape") {
        let n = shape
            .as_array()
            .filter(|s| s.len() == 1)
            .and_then(|s| s[0].as_u64());
        if n != Some(urls.len() as u64) {
            return Err((
                400,
                format!(
                    "input shape {} does not match {} data elements; expected [{}]",
                    shape,
                    urls.len(),
                    urls.len()
                ),
            ));
        }
    }
    let c = model::classifier().map_err(internal)?;
    let scores = c.scores(&urls).map_err(internal)?;
    let labels: Vec<&str> = scores
        .iter()
        .map(|&s| Label::from_score(s, c.threshold).as_str())
        .collect();
    let mut out = json!({
        "model_name": OIP_MODEL,
        "model_version": c.version,
        "outputs": [
            { "name": "score", "datatype": "FP32", "shape": [scores.len()], "data": scores },
            { "name": "label", "datatype": "BYTES", "shape": [labels.len()], "data": labels },
        ],
    });
    if let Some(id) = body.get("id") {
        out["id"] = id.clone();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(method: &'a str, path: &'a str, ct: Option<&'a str>, body: &'a [u8]) -> Request<'a> {
        Request {
            method,
            path,
            content_type: ct,
            body,
        }
    }

    #[test]
    fn the_built_in_openapi_document_is_the_file_without_its_whitespace() {
        let file = include_str!("../openapi.json");
        let file: Value = serde_json::from_str(file).unwrap();
        let built_in: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(built_in, file);
        assert!(!OPENAPI_JSON.contains('\n'));
        assert!(OPENAPI_JSON.len() < include_str!("../openapi.json").len() * 2 / 3);
    }

    #[test]
    fn answers_carry_the_real_site_the_verdict_band_and_documented_reasons() {
        let doc: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        let codes = &doc["components"]["schemas"]["Reason"]["properties"]["code"]["enum"];
        assert_eq!(
            codes,
            &json!(lib_ml::explain::REASON_CODES),
            "OpenAPI and lib-ml list the same codes"
        );
        let tricks = include_str!("../../../model/checks/tricks.txt");
        let logins = include_str!("../../../model/checks/login-pages.txt");
        for url in tricks
            .lines()
            .chain(logins.lines())
            .filter(|l| l.starts_with("http"))
        {
            let body = json!({ "url": url }).to_string();
            let r = handle(req(
                "POST",
                "/predict",
                Some("application/json"),
                body.as_bytes(),
            ));
            assert_eq!(r.status, 200, "{url}: {}", r.body);
            for reason in r.body["reasons"].as_array().unwrap() {
                assert!(
                    codes.as_array().unwrap().contains(&reason["code"]),
                    "{url}: undocumented reason {reason}"
                );
                assert!(reason["message"].as_str().is_some_and(|m| m.ends_with('.')));
            }
            let joined: String = r.body["attribution"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["text"].as_str().unwrap())
                .collect();
            assert_eq!(joined, url.to_lowercase(), "{url}");
        }
        let body = br#"{"url": "https://appleid.apple.com.secure-id-check.com/"}"#;
        let r = handle(req("POST", "/predict", Some("application/json"), body));
        assert_eq!(r.body["registrable_domain"], "secure-id-check.com");
        assert_eq!(r.body["leads_to"], Value::Null);
        assert_eq!(r.body["verdict"], "likely_phishing");
        let codes: Vec<&str> = r.body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&"domain_mismatch"), "{}", r.body);
        let body = br#"{"url": "paypal.com/signin"}"#;
        let r = handle(req("POST", "/predict", Some("application/json"), body));
        assert_eq!(
            (r.status, &r.body["verdict"]),
            (200, &json!("likely_safe")),
            "{}",
            r.body
        );
        // Without a scheme it is read as https://, as a browser opens a typed address.
        assert_eq!(r.body["attribution"][0]["text"], "https://");
    }

    #[test]
    fn text_that_is_not_a_web_address_is_422_quoting_it() {
        for (body, want) in [
            (
                r#"{"url": "not a url at all"}"#,
                "`not a url at all` does not look like a web address",
            ),
            (r#"{"url": "hello"}"#, "`hello` is a single word"),
            (r#"{"url": "ftp://files.example.com/x"}"#, "`ftp:` address"),
            (
                r#"{"urls": ["https://a.com/", "word"]}"#,
                "`urls[1]`: `word`",
            ),
        ] {
            let path = if body.contains("urls") {
                "/predict/batch"
            } else {
                "/predict"
            };
            let r = handle(req("POST", path, Some("application/json"), body.as_bytes()));
            assert_eq!(r.status, 422, "{body}: {}", r.body);
            let e = r.body["error"].as_str().unwrap();
            assert!(e.contains(want), "{body}: {e}");
        }
    }

    #[test]
    fn routes_are_unique_and_documented() {
        let doc: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        for (i, (path, methods)) in ROUTES.iter().enumerate() {
            assert!(
                ROUTES[i + 1..].iter().all(|(p, _)| p != path),
                "{path} twice"
            );
            for m in *methods {
                assert!(
                    doc["paths"][path][m.to_lowercase()].is_object(),
                    "{m} {path} missing from openapi.json"
                );
            }
        }
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = Value::String("x".repeat(500));
        let d = describe(&long);
        assert!(
            d.starts_with("string `\"xxx") && d.ends_with("…`") && d.len() < 100,
            "{d}"
        );
        assert_eq!(describe(&json!(42)), "number `42`");
    }

    #[test]
    fn trailing_slash_reaches_the_same_route_and_head_is_get() {
        assert_eq!(
            handle(req("GET", "/v2/health/live/", None, b"")).status,
            200
        );
        assert_eq!(
            handle(req("HEAD", "/v2/health/live", None, b"")).status,
            200
        );
    }

    #[test]
    fn content_type_with_charset_is_json() {
        let r = handle(req(
            "POST",
            "/predict",
            Some("application/json; charset=utf-8"),
            b"{}",
        ));
        assert_eq!(r.status, 400); // reached validation: missing `url`
        assert!(r.body["error"]
            .as_str()
            .unwrap()
            .contains("missing field `url`"));
    }

    #[test]
    fn missing_content_type_is_accepted_as_json() {
        let r = handle(req("POST", "/predict", None, br#"{"url": 1}"#));
        assert_eq!(r.status, 400);
        assert!(r.body["error"]
            .as_str()
            .unwrap()
            .contains("must be a string"));
    }
}
