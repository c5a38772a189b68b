//! The app's request handling with any method, path, content type, body and model-service answer:
//! never panics, never answers 500, and every error is a JSON `{"error": ...}`.
#![no_main]

use app::api::{self, Call, CallError, Config, Env, Request};
use app::store::{MemStore, Store, StoreError};
use libfuzzer_sys::fuzz_target;

struct Fuzzed<'a> {
    store: MemStore,
    answer: Result<(u16, Vec<u8>), CallError>,
    config: Config,
    _data: &'a [u8],
}

impl Env for Fuzzed<'_> {
    fn store(&self) -> Result<&dyn Store, StoreError> {
        Ok(&self.store)
    }
    fn model_service(&self, _: &str, _: &str, _: Option<&[u8]>) -> Call {
        Call { outcome: self.answer.clone(), seconds: 0.002 }
    }
    fn config(&self) -> &Config {
        &self.config
    }
    fn now_ms(&self) -> u64 {
        0
    }
    fn log(&self, _: &str) {}
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "HEAD", "DELETE"];
const PATHS: [&str; 8] = ["/", "/api/predict", "/api/feedback", "/api/feedback/export", "/api/version", "/metrics", "/health", "/static/app.js"];
const TYPES: [Option<&str>; 4] = [None, Some("application/json"), Some("text/plain"), Some("application/json; charset=utf-8")];

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, body) = data.split_at(4);
    let answer = match head[3] % 5 {
        0 => Err(CallError::Timeout),
        1 => Err(CallError::Unreachable("refused".into())),
        2 => Ok((200, br#"{"label":"phishing","score":0.9,"model_version":"1.0.0"}"#.to_vec())),
        3 => Ok((400 + u16::from(head[3] % 100), body.to_vec())),
        _ => Ok((200, body.to_vec())),
    };
    let env = Fuzzed {
        store: MemStore::default(),
        answer,
        config: Config::from_vars(|n| (n == "feedback_export_token").then(|| "t".into())).unwrap(),
        _data: data,
    };
    let path = PATHS[usize::from(head[1]) % PATHS.len()];
    let auth = (head[2] & 1 == 1).then_some("Bearer t");
    let r = api::handle(
        Request {
            method: METHODS[usize::from(head[0]) % METHODS.len()],
            path,
            content_type: TYPES[usize::from(head[2] >> 1) % TYPES.len()],
            authorization: auth,
            body,
        },
        &env,
    );
    api::record(&env, &r.counts);
    assert_ne!(r.status, 500, "{path}: {:?}", String::from_utf8_lossy(&r.body));
    if r.status >= 400 {
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("errors are JSON");
        assert!(v["error"].is_string(), "{v}");
    }
});
