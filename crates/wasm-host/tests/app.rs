//! The built app component with the built model-service, run through the host the way Spin runs
//! them: app → model-service chaining in-process, every route and error, the model-service down
//! (502, and back to 200 when it returns) or slow (504), metrics totals under concurrency and across "pods" sharing one store,
//! feedback export with and without its token, and a failing key-value store.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasm_host::kv::KeyValue;
use wasm_host::{Host, HostOptions, TestResponse};

const PHISHING: &str = "http://paypal.com.verify-account.tk/signin/webscr.php?cmd=_login";
const LEGIT: &str = "https://www.wikipedia.org/";

fn manifest() -> PathBuf {
    test_support::workspace_root().join("spin.toml")
}

fn load(options: HostOptions) -> Host {
    Host::load(&manifest(), options).expect(
        "components must be built first: `cargo run -p wasm-host -- build` (scripts/test.sh does)",
    )
}

/// Both components, a fresh store, the given variables.
fn app_with(vars: &[(&str, &str)]) -> Host {
    load(HostOptions {
        variables: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn send(
    host: &Host,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> TestResponse {
    rt().block_on(host.request(method, path, headers, body.to_string()))
        .unwrap()
}

fn post(host: &Host, path: &str, body: &Value) -> TestResponse {
    send(
        host,
        "POST",
        path,
        &[("content-type", "application/json")],
        &body.to_string(),
    )
}

fn get(host: &Host, path: &str) -> TestResponse {
    send(host, "GET", path, &[], "")
}

/// The samples of a Prometheus exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("sample line");
            let v = if v == "+Inf" {
                f64::INFINITY
            } else {
                v.parse().expect("number")
            };
            (k.to_string(), v)
        })
        .collect()
}

fn metrics(host: &Host) -> BTreeMap<String, f64> {
    let r = get(host, "/metrics");
    assert_eq!(r.status, 200, "{:?}", r.body);
    samples(std::str::from_utf8(&r.body).unwrap())
}

/// How many keys of the `default` store start with `prefix`.
fn stored_keys(host: &Host, prefix: &str) -> usize {
    host.key_value()
        .keys("default")
        .iter()
        .filter(|k| k.starts_with(prefix))
        .count()
}

fn m(s: &BTreeMap<String, f64>, key: &str) -> f64 {
    *s.get(key)
        .unwrap_or_else(|| panic!("no sample `{key}` in {s:#?}"))
}

#[test]
fn ui_page_and_assets_are_served_with_security_headers() {
    let host = app_with(&[]);
    let page = get(&host, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = std::str::from_utf8(&page.body).unwrap();
    assert!(
        html.contains("<label for=\"url\">"),
        "the URL field has a label"
    );
    assert!(html.contains("aria-live=\"polite\""));
    let csp = page.header("content-security-policy").unwrap();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    for (path, ct) in [
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let r = get(&host, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ct), "{path}");
    }
    assert!(
        !html.contains("<script>") && !html.contains("style=\""),
        "no inline script or style (the CSP forbids them)"
    );
    assert_eq!(
        m(
            &metrics(&host),
            "phishing_app_page_views_total{version=\"local\"}"
        ),
        1.0
    );
}

#[test]
fn predict_chains_to_the_model_service() {
    let host = app_with(&[]);
    for (url, label) in [(PHISHING, "phishing"), (LEGIT, "legitimate")] {
        let r = post(&host, "/api/predict", &json!({ "url": url }));
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let v = r.json().unwrap();
        assert_eq!(v["label"], label, "{url}: {v}");
        assert_eq!(v["url"], url);
        assert_eq!(v["model_version"], released_model_version());
        let score = v["score"].as_f64().unwrap();
        assert_eq!(score >= released_model_threshold(), label == "phishing");
    }
    let s = metrics(&host);
    assert_eq!(
        m(
            &s,
            "phishing_app_predictions_total{version=\"local\",label=\"phishing\"}"
        ),
        1.0
    );
    assert_eq!(
        m(
            &s,
            "phishing_app_predictions_total{version=\"local\",label=\"legitimate\"}"
        ),
        1.0
    );
    assert_eq!(
        m(
            &s,
            "phishing_app_model_service_request_duration_seconds_count{version=\"local\"}"
        ),
        2.0
    );
    // One store write per prediction: the histograms carry no `_sum` (see the app README).
    assert!(!s.keys().any(|k| k.contains("_sum{")), "{s:?}");
    let writes = stored_keys(&host, "metrics:");
    assert!(writes <= 2, "two predictions, {writes} keys");
}

#[test]
fn bad_requests_get_json_errors_quoting_the_problem() {
    let host = app_with(&[]);
    let long = format!("http://a.tk/{}", "x".repeat(5000));
    // method, path, content type, body, expected status, what the message must mention
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/api/predict",
            Some("application/json"),
            "{".into(),
            400,
            "malformed JSON",
        ),
        (
            "POST",
            "/api/predict",
            Some("text/plain"),
            "{}".into(),
            415,
            "text/plain",
        ),
        // No content type at all: read as JSON, as the model-service does (api-policy).
        (
            "POST",
            "/api/predict",
            None,
            "{}".into(),
            400,
            "missing field `url`",
        ),
        (
            "POST",
            "/api/predict",
            Some("application/json"),
            "".into(),
            400,
            "empty",
        ),
        (
            "POST",
            "/api/predict",
            Some("application/json"),
            "{}".into(),
            400,
            "missing field `url`",
        ),
        (
            "POST",
            "/api/predict",
            Some("application/json"),
            r#"{"url": 5}"#.into(),
            400,
            "number `5`",
        ),
        (
            "POST",
            "/api/predict",
            Some("application/json"),
            r#"{"url": "  "}"#.into(),
            400,
            "`url` is empty",
        ),
        (
            "POST",
            "/api/predict",
            Some("application/json"),
            r#"["x"]"#.into(),
            400,
            "array",
        ),
        (
            "POST",
            "/api/predict",
            Some("application/json"),
            json!({"url": long}).to_string(),
            422,
            "limit is 4096",
        ),
        (
            "POST",
            "/api/predict",
            Some("application/json"),
            r#"{"url": "http://a\u0000b"}"#.into(),
            400,
            "U+0000",
        ),
        (
            "POST",
            "/api/predict",
            Some("application/json"),
            "x".repeat(20_000),
            413,
            "20000 bytes",
        ),
        ("GET", "/api/predict", None, "".into(), 405, "allowed: POST"),
        ("DELETE", "/metrics", None, "".into(), 405, "allowed: GET"),
        ("GET", "/api/nope", None, "".into(), 404, "/api/nope"),
        (
            "POST",
            "/api/feedback",
            Some("application/json"),
            r#"{"url": "http://a.tk", "label": "spam", "agree": true}"#.into(),
            400,
            "string `\"spam\"`",
        ),
        (
            "POST",
            "/api/feedback",
            Some("application/json"),
            r#"{"url": "http://a.tk", "label": "phishing", "agree": "yes"}"#.into(),
            400,
            "`agree` must be true or false",
        ),
        (
            "POST",
            "/api/feedback",
            Some("application/json"),
            r#"{"url": "http://a.tk", "label": "phishing"}"#.into(),
            400,
            "missing field `agree`",
        ),
    ];
    for (method, path, ct, body, status, needle) in cases {
        let headers: Vec<(&str, &str)> = ct.map(|c| vec![("content-type", c)]).unwrap_or_default();
        let r = send(&host, method, path, &headers, &body);
        assert_eq!(r.status, status, "{method} {path} {body:.60}: {:?}", r.body);
        let v = r.json().unwrap();
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {v}"));
        assert!(
            msg.contains(needle),
            "{method} {path}: `{msg}` should mention `{needle}`"
        );
        if status == 405 {
            assert!(r.header("allow").is_some());
        }
    }
    // Nothing was counted as a prediction or a model-service error.
    let s = metrics(&host);
    assert_eq!(
        m(
            &s,
            "phishing_app_predictions_total{version=\"local\",label=\"phishing\"}"
        ),
        0.0
    );
    assert_eq!(
        m(
            &s,
            "phishing_app_model_service_request_duration_seconds_count{version=\"local\"}"
        ),
        0.0
    );
}

#[test]
fn app_recovers_when_the_model_service_comes_back() {
    // Two "pods" over TCP: the model-service served on a loopback port, the app pointed at it.
    let rt = rt();
    let model_service = load(HostOptions {
        components: Some(vec!["model-service".into()]),
        ..Default::default()
    });
    let any_port = "127.0.0.1:0".parse().unwrap();
    let (addr, serve) = rt
        .block_on(wasm_host::serve::bind(model_service.clone(), any_port))
        .unwrap();
    let server = rt.spawn(serve);
    let app = load(HostOptions {
        components: Some(vec!["app".into()]),
        variables: [("model_service_url".to_string(), format!("http://{addr}"))].into(),
        ..Default::default()
    });
    let predict = || {
        rt.block_on(app.request(
            "POST",
            "/api/predict",
            &[("content-type", "application/json")],
            json!({ "url": PHISHING }).to_string(),
        ))
        .unwrap()
    };
    let r = predict();
    assert_eq!(r.status, 200, "model-service up: {:?}", r.body);

    // Outage: the model-service stops listening.
    server.abort();
    assert!(rt.block_on(server).unwrap_err().is_cancelled());
    for _ in 0..3 {
        let t = Instant::now();
        let r = predict();
        assert_eq!(r.status, 502, "model-service down: {:?}", r.body);
        assert_eq!(r.json().unwrap()["kind"], "unreachable");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "fails fast: {:?}",
            t.elapsed()
        );
    }

    // Back on the same address: the very next request is served again, nothing to restart.
    let (again, serve) = rt
        .block_on(wasm_host::serve::bind(model_service, addr))
        .unwrap();
    assert_eq!(again, addr);
    rt.spawn(serve);
    let r = predict();
    assert_eq!(r.status, 200, "model-service back: {:?}", r.body);
    assert_eq!(r.json().unwrap()["label"], "phishing");

    let s = metrics(&app);
    let errors = "phishing_app_model_service_errors_total{version=\"local\",kind=\"unreachable\"}";
    assert_eq!(m(&s, errors), 3.0);
    let served = s
        .iter()
        .filter(|(k, _)| k.starts_with("phishing_app_predictions_total{"))
        .map(|(_, v)| v)
        .sum::<f64>();
    assert_eq!(served, 2.0, "{s:?}");
}

#[test]
fn slow_model_service_is_a_504_within_the_timeout() {
    let host = load(HostOptions {
        variables: [("model_service_timeout_ms".to_string(), "200".to_string())].into(),
        delays: [("model-service".to_string(), Duration::from_millis(1500))].into(),
        ..Default::default()
    });
    let t = Instant::now();
    let r = post(&host, "/api/predict", &json!({ "url": LEGIT }));
    let took = t.elapsed();
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert!(
        took < Duration::from_millis(1400),
        "answered after {took:?}"
    );
    let v = r.json().unwrap();
    assert!(v["error"].as_str().unwrap().contains("200 ms"), "{v}");
    assert_eq!(
        m(
            &metrics(&host),
            "phishing_app_model_service_errors_total{version=\"local\",kind=\"timeout\"}"
        ),
        1.0
    );
}

#[test]
fn version_reports_app_lib_and_model() {
    let host = app_with(&[]);
    let v = get(&host, "/api/version").json().unwrap();
    assert_eq!(v["app"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["lib_version"]["version"], lib_version_version());
    assert_eq!(v["model"]["version"], released_model_version());
    let h = get(&host, "/health").json().unwrap();
    assert_eq!(h["status"], "ok");
}

/// The version in `model/model-card.json`: the model the model-service builds in.
fn released_model_version() -> String {
    let card = std::fs::read_to_string(manifest().with_file_name("model/model-card.json")).unwrap();
    let card: Value = serde_json::from_str(&card).unwrap();
    card["version"].as_str().unwrap().to_string()
}

/// The operating threshold in `model/model-card.json`.
fn released_model_threshold() -> f64 {
    let card = std::fs::read_to_string(manifest().with_file_name("model/model-card.json")).unwrap();
    let card: Value = serde_json::from_str(&card).unwrap();
    card["threshold"].as_f64().unwrap()
}

fn lib_version_version() -> String {
    let toml = std::fs::read_to_string(
        test_support::workspace_root().join("crates/lib-version/Cargo.toml"),
    )
    .unwrap();
    if toml.contains("version.workspace = true") {
        env!("CARGO_PKG_VERSION").to_string()
    } else {
        toml.lines()
            .find_map(|l| l.strip_prefix("version = \""))
            .unwrap()
            .trim_end_matches('"')
            .to_string()
    }
}

#[test]
fn concurrent_requests_are_all_counted_exactly() {
    let host = app_with(&[]);
    let (n_predict, n_feedback) = (48, 40);
    let rt = rt();
    let statuses = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..n_predict {
            let h = host.clone();
            let url = if i % 2 == 0 { PHISHING } else { LEGIT };
            tasks.push(tokio::spawn(async move {
                let body = json!({ "url": url }).to_string();
                h.request("POST", "/api/predict", &[("content-type", "application/json")], body)
                    .await
                    .unwrap()
                    .status
            }));
        }
        for i in 0..n_feedback {
            let h = host.clone();
            tasks.push(tokio::spawn(async move {
                let body = json!({ "url": format!("http://site{i}.example/"), "label": "legitimate", "agree": i % 4 != 0 }).to_string();
                h.request("POST", "/api/feedback", &[("content-type", "application/json")], body)
                    .await
                    .unwrap()
                    .status
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert!(
        statuses[..n_predict].iter().all(|s| *s == 200),
        "{statuses:?}"
    );
    assert!(
        statuses[n_predict..].iter().all(|s| *s == 201),
        "{statuses:?}"
    );
    let s = metrics(&host);
    let phishing = m(
        &s,
        "phishing_app_predictions_total{version=\"local\",label=\"phishing\"}",
    );
    let legit = m(
        &s,
        "phishing_app_predictions_total{version=\"local\",label=\"legitimate\"}",
    );
    assert_eq!(phishing + legit, n_predict as f64);
    assert_eq!(phishing, (n_predict / 2) as f64);
    assert_eq!(
        m(
            &s,
            "phishing_app_feedback_total{version=\"local\",verdict=\"agree\"}"
        ),
        30.0
    );
    assert_eq!(
        m(
            &s,
            "phishing_app_feedback_total{version=\"local\",verdict=\"disagree\"}"
        ),
        10.0
    );
    assert_eq!(m(&s, "phishing_app_feedback_rows"), n_feedback as f64);
    assert_eq!(
        m(
            &s,
            "phishing_app_feedback_disagreement_ratio{version=\"local\"}"
        ),
        0.25
    );
    assert_eq!(
        m(
            &s,
            "phishing_app_model_service_request_duration_seconds_count{version=\"local\"}"
        ),
        n_predict as f64
    );
    // Every feedback row is stored under its own key: none lost to a concurrent write.
    assert_eq!(stored_keys(&host, "feedback:row:"), n_feedback);
}

#[test]
fn pods_sharing_one_store_report_the_same_totals() {
    // Two hosts = two app pods (v1 and v2 of a canary, each with its model-service), one shared
    // store (Redis in the cluster). Either pod reports the application's totals, per version.
    let kv = Arc::new(KeyValue::new());
    let pod = |version: &str| {
        load(HostOptions {
            key_value: Some(kv.clone()),
            variables: [("deployment_version".to_string(), version.to_string())].into(),
            ..Default::default()
        })
    };
    let (a, b) = (pod("v1"), pod("v2"));
    for _ in 0..3 {
        assert_eq!(
            post(&a, "/api/predict", &json!({ "url": LEGIT })).status,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            post(&b, "/api/predict", &json!({ "url": LEGIT })).status,
            200
        );
    }
    let without_build_info = |mut s: BTreeMap<String, f64>| {
        s.retain(|k, _| !k.starts_with("phishing_app_build_info"));
        s
    };
    let (ma, mb) = (
        without_build_info(metrics(&a)),
        without_build_info(metrics(&b)),
    );
    assert_eq!(ma, mb, "both pods expose the same values");
    let legit =
        |v: &str| format!("phishing_app_predictions_total{{version=\"{v}\",label=\"legitimate\"}}");
    assert_eq!(m(&ma, &legit("v1")), 3.0);
    assert_eq!(m(&ma, &legit("v2")), 2.0);
    assert!(metrics(&b)
        .keys()
        .any(|k| k.starts_with("phishing_app_build_info{version=\"v2\"")));
}

#[test]
fn feedback_export_needs_its_token() {
    // No token configured: the export does not exist.
    let host = app_with(&[]);
    let r = get(&host, "/api/feedback/export");
    assert_eq!(r.status, 404);
    assert!(r.json().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("feedback_export_token"));

    let host = app_with(&[("feedback_export_token", "s3cret-token")]);
    for (url, label, agree) in [
        ("http://secure-login.tk/paypal", "phishing", true),
        ("https://www.github.com/", "phishing", false),
        ("http://bank-verify.ml/", "legitimate", false),
    ] {
        let r = post(
            &host,
            "/api/feedback",
            &json!({ "url": url, "label": label, "agree": agree }),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert!(r.json().unwrap()["id"].as_i64().unwrap() >= 1);
    }
    let r = get(&host, "/api/feedback/export");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let r = send(
        &host,
        "GET",
        "/api/feedback/export",
        &[("authorization", "Bearer wrong")],
        "",
    );
    assert_eq!(r.status, 401);
    let r = send(
        &host,
        "GET",
        "/api/feedback/export",
        &[("authorization", "Bearer s3cret-token")],
        "",
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/tab-separated-values"));
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        "phishing\thttp://secure-login.tk/paypal\nlegitimate\thttps://www.github.com/\nphishing\thttp://bank-verify.ml/\n"
    );
    // The JSON-lines export: same token, every field, the score and reasons shown included.
    let r = post(
        &host,
        "/api/feedback",
        &json!({ "url": "http://a.b.tk/", "label": "phishing", "agree": false,
                 "score": 0.9, "reasons": ["many_subdomains"] }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(get(&host, "/api/feedback/export.jsonl").status, 401);
    let r = send(
        &host,
        "GET",
        "/api/feedback/export.jsonl",
        &[("authorization", "Bearer s3cret-token")],
        "",
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let lines: Vec<Value> = std::str::from_utf8(&r.body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["reasons"], json!(["many_subdomains"]));
    assert_eq!(lines[3]["score"], 0.9);
}

#[test]
fn failing_store_still_serves_predictions() {
    let host = app_with(&[]);
    host.key_value().set_failing(true);
    let r = post(&host, "/api/predict", &json!({ "url": PHISHING }));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json().unwrap()["label"], "phishing");
    let r = post(
        &host,
        "/api/feedback",
        &json!({ "url": PHISHING, "label": "phishing", "agree": true }),
    );
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert!(r.json().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("store unavailable"));
    assert_eq!(get(&host, "/metrics").status, 503);
    host.key_value().set_failing(false);
    // Nothing was half-written: no row, no sequence number.
    assert_eq!(stored_keys(&host, "feedback"), 0);
    // The prediction made while the store failed is not counted (its loss is in the app's log).
    let s = metrics(&host);
    let served: f64 = s
        .iter()
        .filter(|(k, _)| k.starts_with("phishing_app_predictions_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(served, 0.0, "{s:?}");
}

#[test]
fn metrics_parse_with_promtool() {
    let host = app_with(&[]);
    post(&host, "/api/predict", &json!({ "url": PHISHING }));
    post(
        &host,
        "/api/feedback",
        &json!({ "url": PHISHING, "label": "phishing", "agree": false }),
    );
    let r = get(&host, "/metrics");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = std::str::from_utf8(&r.body).unwrap();
    for family in [
        "# TYPE phishing_app_predictions_total counter",
        "# TYPE phishing_app_feedback_total counter",
        "# TYPE phishing_app_page_views_total counter",
        "# TYPE phishing_app_model_service_errors_total counter",
        "# TYPE phishing_app_model_service_request_duration_seconds histogram",
        "# TYPE phishing_app_feedback_disagreement_ratio gauge",
        "# TYPE phishing_app_build_info gauge",
    ] {
        assert!(text.contains(family), "missing `{family}`");
    }
    let out = std::env::var_os("TEST_OUTPUT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| test_support::workspace_root().join("target/test-output"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("app-metrics.txt"), text).unwrap();
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match promtool {
        Ok(c) => c,
        Err(e) => {
            let msg = format!(
                "promtool not runnable ({e}); install it with `apt-get install prometheus`"
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg} (required under CI)");
            }
            eprintln!("SKIPPED promtool check: {msg}");
            return;
        }
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let result = child.wait_with_output().unwrap();
    assert!(
        result.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
}
