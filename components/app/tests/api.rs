//! The app's API natively, against a scripted model-service: the answers the real model-service
//! cannot be made to give (4xx, 5xx, garbage), configuration, and the export's token check.

use app::api::{self, Call, CallError, Config, Env, Request, Response};
use app::metrics::{self, ErrorKind, Totals};
use app::store::{MemStore, Store, StoreError};
use serde_json::{json, Value};
use std::cell::RefCell;

/// A recorded model-service call: method, path, body.
type Recorded = (String, String, Option<Vec<u8>>);

struct Fake {
    store: MemStore,
    answer: Result<(u16, Vec<u8>), CallError>,
    config: Config,
    calls: RefCell<Vec<Recorded>>,
    logs: RefCell<Vec<String>>,
}

impl Fake {
    fn answering(status: u16, body: &str) -> Fake {
        Fake::with(Ok((status, body.as_bytes().to_vec())))
    }

    fn with(answer: Result<(u16, Vec<u8>), CallError>) -> Fake {
        Fake {
            store: MemStore::default(),
            answer,
            config: Config::from_vars(|_| None).unwrap(),
            calls: RefCell::default(),
            logs: RefCell::default(),
        }
    }
}

impl Env for Fake {
    fn store(&self) -> Result<&dyn Store, StoreError> {
        Ok(&self.store)
    }
    fn model_service(&self, method: &str, path: &str, body: Option<&[u8]>) -> Call {
        self.calls
            .borrow_mut()
            .push((method.into(), path.into(), body.map(<[u8]>::to_vec)));
        Call {
            outcome: self.answer.clone(),
            seconds: 0.004,
        }
    }
    fn config(&self) -> &Config {
        &self.config
    }
    fn now_ms(&self) -> u64 {
        1_700_000_000_000
    }
    fn log(&self, message: &str) {
        self.logs.borrow_mut().push(message.into());
    }
}

/// Handles a request as the component does: answer, then record its counts.
fn serve(env: &Fake, req: Request<'_>) -> Response {
    let r = api::handle(req, env);
    api::record(env, &r.counts);
    r
}

fn predict(env: &Fake, url: &str) -> Response {
    let body = json!({ "url": url }).to_string();
    serve(
        env,
        Request {
            method: "POST",
            path: "/api/predict",
            content_type: Some("application/json; charset=utf-8"),
            authorization: None,
            body: body.as_bytes(),
        },
    )
}

/// The totals `/metrics` would show for this deployment.
fn totals(env: &Fake) -> Totals {
    let all = metrics::read_all(&env.store, "local").unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].1.clone()
}

fn reason(code: &str) -> usize {
    metrics::REASON_CODES
        .iter()
        .position(|c| *c == code)
        .unwrap()
}

fn error_kind(kind: ErrorKind) -> usize {
    ErrorKind::ALL.iter().position(|k| *k == kind).unwrap()
}

#[test]
fn forwards_the_url_and_returns_the_verdict() {
    let env = Fake::answering(
        200,
        r#"{"url":"http://a.tk","label":"phishing","score":0.93,"model_version":"1.0.0"}"#,
    );
    let r = predict(&env, "  http://a.tk  ");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json_body(),
        json!({"url": "http://a.tk", "label": "phishing", "score": 0.93, "model_version": "1.0.0"})
    );
    let calls = env.calls.borrow();
    assert_eq!(calls[0].0, "POST");
    assert_eq!(calls[0].1, "/predict");
    let sent: Value = serde_json::from_slice(calls[0].2.as_ref().unwrap()).unwrap();
    assert_eq!(sent, json!({"url": "http://a.tk"}));
    let t = totals(&env);
    assert_eq!(t.predictions, [0, 1]);
    assert_eq!(t.latency[1], 0);
    assert_eq!(t.latency[2], 1, "4 ms falls in le=0.005");
    assert_eq!(
        env.store.keys().unwrap().len(),
        1,
        "one store write per prediction"
    );
}

#[test]
fn the_explanation_is_passed_on_as_the_model_service_gave_it() {
    let env = Fake::answering(
        200,
        r#"{"url":"http://a.b.tk","label":"phishing","score":0.93,"model_version":"2.0.0",
            "verdict":"likely_phishing","registrable_domain":"b.tk","leads_to":"c.top",
            "reasons":[{"code":"many_subdomains","message":"m.","weight":1.5}],
            "attribution":[{"part":"scheme","text":"http://","contribution":0.1}],
            "internal":"not passed on"}"#,
    );
    let body = predict(&env, "http://a.b.tk").json_body();
    assert_eq!(body["verdict"], "likely_phishing");
    assert_eq!(body["registrable_domain"], "b.tk");
    assert_eq!(body["leads_to"], "c.top");
    assert_eq!(body["reasons"][0]["code"], "many_subdomains");
    assert_eq!(body["attribution"][0]["text"], "http://");
    assert!(body.get("internal").is_none(), "{body}");
    // Counted for monitoring: the score in its bucket (0.93 <= 0.95, bucket 10) and the reason
    // shown.
    let t = totals(&env);
    assert_eq!(t.scores[1][10], 1);
    assert_eq!(t.reasons[reason("many_subdomains")], 1);
    assert_eq!(t.reasons.iter().sum::<i64>(), 1);
}

#[test]
fn text_that_is_not_a_web_address_is_422_without_calling_the_model() {
    let env = Fake::answering(200, r#"{"label":"phishing","score":0.9}"#);
    for (text, want) in [
        (
            "not a url at all",
            "`not a url at all` does not look like a web address",
        ),
        ("hello", "`hello` is a single word"),
    ] {
        let r = predict(&env, text);
        assert_eq!(r.status, 422, "{text}");
        let e = r.json_body()["error"].as_str().unwrap().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
    assert!(
        env.calls.borrow().is_empty(),
        "the model-service must not be asked"
    );
}

fn feedback(env: &Fake, body: &Value) -> Response {
    let body = body.to_string();
    serve(
        env,
        Request {
            method: "POST",
            path: "/api/feedback",
            content_type: Some("application/json"),
            authorization: None,
            body: body.as_bytes(),
        },
    )
}

#[test]
fn feedback_keeps_the_score_and_reasons_shown_and_checks_them() {
    let env = Fake::answering(200, "{}");
    let ok = json!({"url": "http://a.b.tk/", "label": "phishing", "agree": false,
                    "score": 0.97, "reasons": ["domain_mismatch", "plain_http"]});
    assert_eq!(feedback(&env, &ok).status, 201);
    let rows = app::feedback::rows(&env.store).unwrap();
    assert_eq!(rows[0].score, Some(0.97));
    assert_eq!(rows[0].reasons, ["domain_mismatch", "plain_http"]);
    // Without them (older clients) the row is stored as before.
    let plain = json!({"url": "http://a.b.tk/", "label": "phishing", "agree": true});
    assert_eq!(feedback(&env, &plain).status, 201);
    for (bad, want) in [
        (
            json!({"score": 1.5}),
            "`score` must be a number from 0 to 1, found number `1.5`",
        ),
        (
            json!({"reasons": ["made_up"]}),
            "`reasons` holds string `\"made_up\"`, which is not a reason code",
        ),
        (
            json!({"reasons": "domain_mismatch"}),
            "`reasons` must be an array",
        ),
    ] {
        let mut body = plain.clone();
        for (k, v) in bad.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = feedback(&env, &body);
        assert_eq!(r.status, 400, "{body}");
        let e = r.json_body()["error"].as_str().unwrap().to_string();
        assert!(e.contains(want), "{e}");
    }
    assert_eq!(
        app::feedback::rows(&env.store).unwrap().len(),
        2,
        "nothing half-stored"
    );
}

#[test]
fn model_service_rejection_passes_through_with_its_message() {
    let env = Fake::answering(400, r#"{"error":"`url` is empty; expected a URL"}"#);
    let r = predict(&env, "http://a.tk");
    assert_eq!(r.status, 400);
    assert_eq!(r.json_body()["error"], "`url` is empty; expected a URL");
    assert_eq!(r.json_body()["kind"], "rejected");
    assert_eq!(totals(&env).errors[error_kind(ErrorKind::Rejected)], 1);
}

#[test]
fn model_service_failure_is_a_502() {
    let env = Fake::answering(500, r#"{"error":"model unavailable: boom"}"#);
    let r = predict(&env, "http://a.tk");
    assert_eq!(r.status, 502);
    let msg = r.json_body()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("status 500") && msg.contains("boom"), "{msg}");
    assert_eq!(totals(&env).errors[error_kind(ErrorKind::ServerError)], 1);
    assert!(env.logs.borrow().iter().any(|l| l.contains("boom")));
}

#[test]
fn unreadable_prediction_is_a_502() {
    for body in [
        "<html>gateway</html>",
        r#"{"label":"maybe","score":0.5}"#,
        r#"{"label":"phishing","score":7}"#,
        r#"{"label":"phishing"}"#,
    ] {
        let env = Fake::answering(200, body);
        let r = predict(&env, "http://a.tk");
        assert_eq!(r.status, 502, "{body}");
        assert_eq!(r.json_body()["kind"], "bad_response", "{body}");
    }
}

#[test]
fn timeout_and_unreachable_map_to_504_and_502() {
    let env = Fake::with(Err(CallError::Timeout));
    assert_eq!(predict(&env, "http://a.tk").status, 504);
    assert_eq!(totals(&env).errors[error_kind(ErrorKind::Timeout)], 1);
    let env = Fake::with(Err(CallError::Unreachable("connection refused".into())));
    let r = predict(&env, "http://a.tk");
    assert_eq!(r.status, 502);
    assert!(r.json_body()["error"]
        .as_str()
        .unwrap()
        .contains("connection refused"));
}

#[test]
fn config_reads_variables_with_defaults_and_checks_them() {
    let c = Config::from_vars(|_| None).unwrap();
    assert_eq!(c.model_service_url, "http://model-service.spin.internal");
    assert_eq!(c.timeout_ms, api::DEFAULT_TIMEOUT_MS);
    assert_eq!(c.export_token, None);
    assert_eq!(c.deployment_version, "local");
    let c = Config::from_vars(|n| match n {
        "model_service_url" => Some("http://model-service.default.svc.cluster.local/".into()),
        "model_service_timeout_ms" => Some("750".into()),
        "feedback_export_token" => Some("t".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        c.model_service_url,
        "http://model-service.default.svc.cluster.local"
    );
    assert_eq!(c.timeout_ms, 750);
    assert_eq!(c.export_token.as_deref(), Some("t"));
    let e = Config::from_vars(|n| (n == "model_service_timeout_ms").then(|| "soon".into()))
        .unwrap_err();
    assert!(e.contains("`soon`"), "{e}");
    let e =
        Config::from_vars(|n| (n == "model_service_url").then(|| "ftp://x".into())).unwrap_err();
    assert!(e.contains("`ftp://x`"), "{e}");
}

#[test]
fn token_comparison_is_exact() {
    assert!(api::constant_time_eq(b"abc", b"abc"));
    assert!(!api::constant_time_eq(b"abc", b"abd"));
    assert!(!api::constant_time_eq(b"abc", b"abcd"));
    assert!(!api::constant_time_eq(b"", b"a"));
    assert!(api::constant_time_eq(b"", b""));
}

#[test]
fn head_is_get_without_counting_a_page_view() {
    let env = Fake::answering(200, "{}");
    let page = |method| {
        serve(
            &env,
            Request {
                method,
                path: "/",
                content_type: None,
                authorization: None,
                body: b"",
            },
        )
    };
    assert_eq!(page("HEAD").status, 200);
    assert_eq!(totals(&env).page_views, 0);
    assert_eq!(page("GET").status, 200);
    assert_eq!(totals(&env).page_views, 1);
}
