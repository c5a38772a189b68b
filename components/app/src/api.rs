//! The app's HTTP API as plain functions: a request and an [`Env`] in, a response out.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the UI page (counts a page view) and its assets under `/static/` |
//! | `POST /api/predict` | `{"url"}` → the model-service's verdict `{"url","label","score","model_version"}` |
//! | `POST /api/feedback` | `{"url","label","agree"}` → 201 `{"id","message"}` |
//! | `GET /api/feedback/export` | the feedback as a `label<TAB>url` dataset (bearer token) |
//! | `GET /api/version` | app, lib-version and model versions |
//! | `GET /metrics` | Prometheus text exposition 0.0.4 |
//! | `GET /health` | liveness of the app itself |

use crate::metrics::{self, BuildInfo, Counter, ErrorKind};
use crate::store::{Store, StoreError};
use crate::{feedback, metrics::LABELS};
use serde_json::{json, Value};

/// Largest accepted JSON request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest accepted URL, in characters (the rule both components share).
pub use api_policy::MAX_URL_CHARS;
/// Default for the `model_service_timeout_ms` variable.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;

/// The UI page and its assets (plain files, no build step).
pub const INDEX_HTML: &str = include_str!("../static/index.html");
/// The UI's stylesheet.
pub const APP_CSS: &str = include_str!("../static/app.css");
/// The UI's script.
pub const APP_JS: &str = include_str!("../static/app.js");
/// The icon.
pub const FAVICON_SVG: &str = include_str!("../static/favicon.svg");

/// Content-Security-Policy of the UI: everything from this origin, no inline script or style.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A request as the handler sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, without query string.
    pub path: &'a str,
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// A response: status, headers (including `content-type`), body, and what to count once it has
/// left.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The metrics this request adds, one store write each, made by [`record`] after the response
    /// has been handed over so that the store's commit never delays the client.
    pub counts: Vec<Counter>,
}

impl Response {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("x-content-type-options".into(), "nosniff".into()),
                ("referrer-policy".into(), "no-referrer".into()),
            ],
            body: body.into(),
            counts: Vec::new(),
        }
    }

    /// A JSON response (never cached).
    pub fn json(status: u16, body: &Value) -> Response {
        Response::new(status, "application/json", body.to_string())
            .header("cache-control", "no-store")
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response::json(status, &json!({ "error": message.into() }))
    }

    fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn counting(mut self, counter: Counter) -> Response {
        self.counts.push(counter);
        self
    }

    /// A header's value.
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (tests).
    pub fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Why a model-service call produced no response.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// Could not reach it (connection refused, no such host, not allowed, ...).
    Unreachable(String),
    /// No response within the timeout.
    Timeout,
}

/// The result of one model-service call and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Status and body, or why there is none.
    pub outcome: Result<(u16, Vec<u8>), CallError>,
    /// Round-trip seconds.
    pub seconds: f64,
}

/// The app's settings (Spin variables).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Base URL of the model-service (`model_service_url`).
    pub model_service_url: String,
    /// Timeout of a model-service call in ms (`model_service_timeout_ms`).
    pub timeout_ms: u64,
    /// Bearer token for the feedback export (`feedback_export_token`); `None` = export disabled.
    pub export_token: Option<String>,
    /// Which deployment this is (`deployment_version`: `v1`, `v2` in the cluster, `local` under
    /// `spin up`); metrics carry it as the `version` label.
    pub deployment_version: String,
}

impl Config {
    /// Reads the settings through `get` (a variable lookup). Missing ones take their defaults.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let model_service_url = get("model_service_url")
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "http://model-service.spin.internal".into());
        let url = model_service_url.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "variable `model_service_url` must be an http:// or https:// URL, found `{model_service_url}`"
            ));
        }
        let timeout_ms = match get("model_service_timeout_ms") {
            None => DEFAULT_TIMEOUT_MS,
            Some(t) if t.trim().is_empty() => DEFAULT_TIMEOUT_MS,
            Some(t) => t
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=60_000).contains(ms))
                .ok_or_else(|| {
                    format!("variable `model_service_timeout_ms` must be 1 to 60000 (milliseconds), found `{t}`")
                })?,
        };
        let export_token = get("feedback_export_token").filter(|t| !t.is_empty());
        let deployment_version = get("deployment_version")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "local".into());
        if !metrics::valid_version(&deployment_version) {
            return Err(format!(
                "variable `deployment_version` must be 1 to 32 of a-z, 0-9, `.`, `_`, `-`, found `{deployment_version}`"
            ));
        }
        Ok(Config {
            model_service_url: url,
            timeout_ms,
            export_token,
            deployment_version,
        })
    }
}

/// What a request may use: the store, the model-service, the settings, the clock, a log.
pub trait Env {
    /// The key-value store (opening it may fail).
    fn store(&self) -> Result<&dyn Store, StoreError>;
    /// Calls the model-service: `method path` relative to `model_service_url`, JSON `body`.
    fn model_service(&self, method: &str, path: &str, body: Option<&[u8]>) -> Call;
    /// The settings.
    fn config(&self) -> &Config;
    /// Wall-clock time, ms since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Writes a line to the component's log (stderr).
    fn log(&self, message: &str);
}

/// The app's build information, for deployment `deployment`.
pub fn build_info(deployment: &str) -> BuildInfo {
    let lib = lib_version::version();
    BuildInfo {
        deployment: deployment.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        commit: lib.git_commit.unwrap_or_default().into(),
        lib_version: lib.version.into(),
    }
}

/// Every route and its methods. Unknown paths are 404, other methods 405 (`api_policy::route`,
/// the rule both components share).
pub const ROUTES: api_policy::Routes = &[
    ("/", &["GET"]),
    ("/index.html", &["GET"]),
    ("/static/app.css", &["GET"]),
    ("/static/app.js", &["GET"]),
    ("/favicon.svg", &["GET"]),
    ("/api/predict", &["POST"]),
    ("/api/feedback", &["POST"]),
    ("/api/feedback/export", &["GET"]),
    ("/api/feedback/export.jsonl", &["GET"]),
    ("/api/version", &["GET"]),
    ("/metrics", &["GET"]),
    ("/health", &["GET"]),
];

/// Routes and answers one request. Never panics on client input.
pub fn handle(req: Request<'_>, env: &dyn Env) -> Response {
    let path = match api_policy::route(ROUTES, req.method, req.path, "") {
        Ok(path) => path,
        Err(e) => {
            let r = Response::error(e.status, e.message);
            return match e.allow {
                Some(allow) => r.header("allow", &allow),
                None => r,
            };
        }
    };
    match path {
        "/" | "/index.html" => {
            let r = page(Response::new(200, "text/html; charset=utf-8", INDEX_HTML));
            if req.method == "GET" {
                r.counting(Counter::PageView)
            } else {
                r
            }
        }
        "/static/app.css" => asset("text/css; charset=utf-8", APP_CSS),
        "/static/app.js" => asset("text/javascript; charset=utf-8", APP_JS),
        "/favicon.svg" => asset("image/svg+xml", FAVICON_SVG),
        "/api/predict" => predict(&req, env),
        "/api/feedback" => give_feedback(&req, env),
        "/api/feedback/export" => export(&req, env, false),
        "/api/feedback/export.jsonl" => export(&req, env, true),
        "/api/version" => version(env),
        "/metrics" => metrics(env),
        "/health" => Response::json(
            200,
            &json!({ "status": "ok", "component": "app", "version": env!("CARGO_PKG_VERSION") }),
        ),
        _ => Response::error(404, format!("no route for `{path}`")),
    }
}

fn page(r: Response) -> Response {
    r.header("content-security-policy", CSP)
        .header("x-frame-options", "DENY")
        .header("cache-control", "no-cache")
}

fn asset(content_type: &str, text: &'static str) -> Response {
    page(Response::new(200, content_type, text))
}

/// Adds a handled request's [`Response::counts`] to the store, one atomic increment each. Called
/// after the response has left; a store failure is logged (the request was already answered).
pub fn record(env: &dyn Env, counts: &[Counter]) {
    if counts.is_empty() {
        return;
    }
    let version = &env.config().deployment_version;
    let result = env.store().and_then(|s| {
        counts
            .iter()
            .try_for_each(|c| s.increment(&c.key(version), 1).map(|_| ()))
    });
    if let Err(e) = result {
        env.log(&format!(
            "metrics not recorded ({counts:?}): key-value store: {e}"
        ));
    }
}

type Fail = Response;

/// The body as JSON, by the rules both components share (`api_policy`).
fn json_body(req: &Request<'_>) -> Result<Value, Fail> {
    api_policy::json_body(
        req.body,
        req.content_type,
        MAX_BODY_BYTES,
        "{\"url\": \"https://example.com\"}",
    )
    .map_err(|p| Response::error(p.status, p.message))
}

use api_policy::describe;

fn object<'v>(body: &'v Value, example: &str) -> Result<&'v serde_json::Map<String, Value>, Fail> {
    body.as_object().ok_or_else(|| {
        Response::error(
            400,
            format!(
                "expected a JSON object such as {example}, found {}",
                describe(body)
            ),
        )
    })
}

/// A URL a person could have pasted, by the rules both components share
/// (`api_policy::url_value`): trimmed, a non-empty string without control characters, at most
/// [`MAX_URL_CHARS`] characters, a web address.
pub fn validate_url(v: Option<&Value>) -> Result<&str, Fail> {
    let Some(v) = v else {
        return Err(Response::error(
            400,
            "missing field `url`; expected {\"url\": \"https://example.com\"}",
        ));
    };
    api_policy::url_value(v, "url").map_err(|p| Response::error(p.status, p.message))
}

fn model_error(
    env: &dyn Env,
    kind: ErrorKind,
    seconds: f64,
    status: u16,
    message: String,
) -> Response {
    env.log(&format!("model-service {}: {message}", kind.as_str()));
    Response::json(status, &json!({ "error": message, "kind": kind.as_str() })).counting(
        Counter::Failed {
            kind,
            latency: metrics::bucket_of(seconds),
        },
    )
}

/// The `error` field of an upstream JSON error, or a short excerpt of the body.
fn upstream_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

/// `POST /api/predict`.
fn predict(req: &Request<'_>, env: &dyn Env) -> Response {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let url = match object(&body, "{\"url\": \"https://example.com\"}")
        .and_then(|o| validate_url(o.get("url")))
    {
        Ok(u) => u,
        Err(r) => return r,
    };
    let call = env.model_service(
        "POST",
        "/predict",
        Some(json!({ "url": url }).to_string().as_bytes()),
    );
    let seconds = call.seconds;
    let timeout_ms = env.config().timeout_ms;
    let (status, bytes) = match call.outcome {
        Err(CallError::Unreachable(why)) => {
            return model_error(
                env,
                ErrorKind::Unreachable,
                seconds,
                502,
                format!("the model-service is unreachable: {why}"),
            )
        }
        Err(CallError::Timeout) => {
            return model_error(
                env,
                ErrorKind::Timeout,
                seconds,
                504,
                format!("the model-service did not answer within {timeout_ms} ms"),
            )
        }
        Ok(r) => r,
    };
    match status {
        200 => match read_prediction(&bytes) {
            Some((label, score, model_version)) => {
                let i = LABELS.iter().position(|l| *l == label).unwrap_or(0);
                let mut answer = json!({ "url": url, "label": label, "score": score, "model_version": model_version });
                // The explanation, as the model-service gave it (see its OpenAPI document).
                if let Ok(Value::Object(upstream)) = serde_json::from_slice::<Value>(&bytes) {
                    for field in [
                        "verdict",
                        "registrable_domain",
                        "leads_to",
                        "reasons",
                        "attribution",
                    ] {
                        if let Some(v) = upstream.get(field) {
                            answer[field] = v.clone();
                        }
                    }
                }
                // The reasons the UI shows (its first four).
                let shown: Vec<&str> = answer["reasons"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .take(4)
                            .filter_map(|x| x["code"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                Response::json(200, &answer).counting(metrics::served(i, score, seconds, &shown))
            }
            None => model_error(
                env,
                ErrorKind::BadResponse,
                seconds,
                502,
                format!(
                    "the model-service answered with an unreadable prediction: {}",
                    upstream_message(&bytes)
                ),
            ),
        },
        400..=499 => model_error(
            env,
            ErrorKind::Rejected,
            seconds,
            status,
            upstream_message(&bytes),
        ),
        _ => model_error(
            env,
            ErrorKind::ServerError,
            seconds,
            502,
            format!(
                "the model-service failed with status {status}: {}",
                upstream_message(&bytes)
            ),
        ),
    }
}

/// `(label, score, model_version)` of a model-service `/predict` answer, if well-formed.
fn read_prediction(bytes: &[u8]) -> Option<(String, f64, String)> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let label = v.get("label")?.as_str()?;
    let score = v.get("score")?.as_f64()?;
    if !LABELS.contains(&label) || !(0.0..=1.0).contains(&score) {
        return None;
    }
    let version = v
        .get("model_version")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    Some((label.to_string(), score, version.to_string()))
}

/// `POST /api/feedback`.
fn give_feedback(req: &Request<'_>, env: &dyn Env) -> Response {
    let example = "{\"url\": \"https://example.com\", \"label\": \"legitimate\", \"agree\": true}";
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let obj = match object(&body, example) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let url = match validate_url(obj.get("url")) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let label = match obj.get("label") {
        Some(Value::String(l)) if LABELS.contains(&l.as_str()) => l.as_str(),
        Some(other) => {
            return Response::error(
                400,
                format!(
                    "`label` must be \"phishing\" or \"legitimate\", found {}",
                    describe(other)
                ),
            )
        }
        None => return Response::error(400, format!("missing field `label`; expected {example}")),
    };
    let agree = match obj.get("agree") {
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Response::error(
                400,
                format!("`agree` must be true or false, found {}", describe(other)),
            )
        }
        None => return Response::error(400, format!("missing field `agree`; expected {example}")),
    };
    // What the user was shown, if the client says (the UI does): optional, checked.
    let score = match obj.get("score") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)) => {
            n.as_f64()
        }
        Some(other) => {
            return Response::error(
                400,
                format!(
                    "`score` must be a number from 0 to 1, found {}",
                    describe(other)
                ),
            )
        }
    };
    let reasons = match obj.get("reasons") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() <= metrics::REASON_CODES.len() => {
            let mut codes = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str().filter(|c| metrics::REASON_CODES.contains(c)) {
                    Some(c) => codes.push(c.to_string()),
                    None => {
                        return Response::error(
                            400,
                            format!(
                                "`reasons` holds {}, which is not a reason code (see the model-service's OpenAPI document)",
                                describe(item)
                            ),
                        )
                    }
                }
            }
            codes
        }
        Some(other) => {
            return Response::error(
                400,
                format!(
                    "`reasons` must be an array of at most {} reason codes, found {}",
                    metrics::REASON_CODES.len(),
                    describe(other)
                ),
            )
        }
    };
    let shown = feedback::Shown { score, reasons };
    let stored = env.store().and_then(|s| {
        feedback::store(
            s,
            url,
            label,
            agree,
            env.now_ms(),
            &env.config().deployment_version,
            shown,
        )
    });
    match stored {
        Ok(id) => Response::json(
            201,
            &json!({ "id": id, "message": "Thank you: your feedback helps improve the model." }),
        )
        .counting(Counter::Feedback(agree)),
        Err(e) => {
            env.log(&format!("feedback not stored: key-value store: {e}"));
            Response::error(
                503,
                format!("feedback could not be stored right now (key-value store: {e}); please try again"),
            )
        }
    }
}

/// Compares in time independent of where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// `GET /api/feedback/export`.
fn export(req: &Request<'_>, env: &dyn Env, jsonl: bool) -> Response {
    let Some(token) = env.config().export_token.as_deref() else {
        return Response::error(
            404,
            "feedback export is not enabled: set the Spin variable `feedback_export_token`",
        );
    };
    let given = req
        .authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim);
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        let why = if given.is_none() {
            "the feedback export needs `Authorization: Bearer <token>`"
        } else {
            "the bearer token is not valid"
        };
        return Response::error(401, why)
            .header("www-authenticate", "Bearer realm=\"feedback-export\"");
    }
    match env.store().and_then(feedback::rows) {
        Ok(rows) => {
            let (content_type, body, file) = if jsonl {
                (
                    "application/jsonl; charset=utf-8",
                    feedback::export_jsonl(&rows),
                    "feedback.jsonl",
                )
            } else {
                (
                    "text/tab-separated-values; charset=utf-8",
                    feedback::export(&rows),
                    "feedback.tsv",
                )
            };
            Response::new(200, content_type, body)
                .header("cache-control", "no-store")
                .header(
                    "content-disposition",
                    &format!("attachment; filename=\"{file}\""),
                )
                .header("x-feedback-rows", &rows.len().to_string())
        }
        Err(e) => Response::error(
            503,
            format!("feedback could not be read (key-value store: {e})"),
        ),
    }
}

/// `GET /api/version`.
fn version(env: &dyn Env) -> Response {
    let lib = lib_version::version();
    let model = match env.model_service("GET", "/model", None).outcome {
        Ok((200, bytes)) => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|card| {
                card.get("version")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .map_or_else(
                || json!({ "version": null, "error": "the model card has no version" }),
                |v| json!({ "version": v }),
            ),
        Ok((status, bytes)) => {
            json!({ "version": null, "error": format!("model-service answered {status}: {}", upstream_message(&bytes)) })
        }
        Err(CallError::Timeout) => json!({ "version": null, "error": "model-service timed out" }),
        Err(CallError::Unreachable(why)) => {
            json!({ "version": null, "error": format!("model-service unreachable: {why}") })
        }
    };
    Response::json(
        200,
        &json!({
            "app": {
                "version": env!("CARGO_PKG_VERSION"),
                "commit": lib.short_commit(),
                "dirty": lib.git_dirty,
                "deployment": env.config().deployment_version,
            },
            "lib_version": lib,
            "model": model,
        }),
    )
}

/// `GET /metrics`.
fn metrics(env: &dyn Env) -> Response {
    let version = &env.config().deployment_version;
    let read = env.store().and_then(|s| {
        let values = metrics::read_all(s, version)?;
        let rows = s.increment(feedback::SEQ_KEY, 0)?;
        Ok((values, rows))
    });
    match read {
        Ok((values, rows)) => Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::render(&values, &build_info(version), rows),
        )
        .header("cache-control", "no-store"),
        Err(e) => {
            env.log(&format!("metrics unavailable: key-value store: {e}"));
            Response::error(
                503,
                format!("metrics are unavailable (key-value store: {e})"),
            )
        }
    }
}
