//! The model-service's request handling (validation and, for valid requests, inference with the
//! built-in model) with any method, path, content type and body: never panics, never answers
//! 500, and every error is a JSON `{"error": ...}`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_service::api::{self, Request};

const METHODS: [&str; 4] = ["GET", "POST", "HEAD", "PUT"];
const PATHS: [&str; 7] = ["/predict", "/predict/batch", "/v2/models/phishing/infer", "/model", "/health", "/v2/health/ready", "/nope"];
const TYPES: [Option<&str>; 4] = [None, Some("application/json"), Some("text/plain"), Some("application/vnd.api+json")];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (head, body) = data.split_at(3);
    let path = PATHS[usize::from(head[1]) % PATHS.len()];
    let r = api::handle(Request {
        method: METHODS[usize::from(head[0]) % METHODS.len()],
        path,
        content_type: TYPES[usize::from(head[2]) % TYPES.len()],
        body,
    });
    assert_ne!(r.status, 500, "{path}: {}", r.body);
    if r.status >= 400 {
        assert!(r.body["error"].is_string(), "{}", r.body);
    }
});
