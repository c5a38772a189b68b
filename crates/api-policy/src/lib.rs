//! The HTTP rules both components apply, written once (see the README).
//!
//! ```
//! use api_policy::{json_body, url_value};
//! let v = json_body(br#"{"url": "  paypal.com/signin "}"#, Some("application/json"), 1024, "{}").unwrap();
//! assert_eq!(url_value(&v["url"], "url").unwrap(), "paypal.com/signin");
//! let e = url_value(&serde_json::json!("hello"), "url").unwrap_err();
//! assert_eq!(e.status, 422);
//! ```
#![deny(missing_docs)]

use serde_json::Value;

#[cfg(target_arch = "wasm32")]
pub mod spin;

/// The longest URL either component accepts, in characters.
pub const MAX_URL_CHARS: usize = 4096;

/// A request that breaks a rule: the status to answer and a message quoting what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 400, 413, 415 or 422.
    pub status: u16,
    /// A sentence naming the problem.
    pub message: String,
}

fn problem(status: u16, message: impl Into<String>) -> Problem {
    Problem {
        status,
        message: message.into(),
    }
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    let short: String = text.chars().take(max).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// A JSON value for messages: its type and (shortened) text, e.g. ``number `42` ``.
pub fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    format!("{kind} `{}`", shorten(&v.to_string(), 80))
}

/// The body as JSON: at most `max_bytes`, `application/json` or a `+json` type (or no content
/// type), not empty, well-formed. `example` is quoted when the body is empty.
pub fn json_body(
    body: &[u8],
    content_type: Option<&str>,
    max_bytes: usize,
    example: &str,
) -> Result<Value, Problem> {
    if body.len() > max_bytes {
        return Err(problem(
            413,
            format!(
                "request body is {} bytes; the limit is {max_bytes}",
                body.len()
            ),
        ));
    }
    if let Some(ct) = content_type {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(problem(
                415,
                format!(
                    "content type `{}` is not supported; send JSON with `Content-Type: application/json`",
                    shorten(ct, 100)
                ),
            ));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(problem(
            400,
            format!("request body is empty; expected JSON such as {example}"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| problem(400, format!("malformed JSON: {e}")))
}

/// The URL in `v` (the value of `field`), trimmed: a string, not empty, at most
/// [`MAX_URL_CHARS`] characters, without control characters (400 or 422), and a web address
/// (422, see `lib_ml::analysis::web_address`).
pub fn url_value<'v>(v: &'v Value, field: &str) -> Result<&'v str, Problem> {
    let Value::String(s) = v else {
        return Err(problem(
            400,
            format!("`{field}` must be a string, found {}", describe(v)),
        ));
    };
    let url = s.trim();
    if url.is_empty() {
        return Err(problem(
            400,
            format!("`{field}` is empty; expected a URL such as https://example.com"),
        ));
    }
    let chars = url.chars().count();
    if chars > MAX_URL_CHARS {
        return Err(problem(
            422,
            format!(
                "`{field}` is {chars} characters long (`{}`); the limit is {MAX_URL_CHARS}",
                shorten(url, 40)
            ),
        ));
    }
    if let Some((i, c)) = url.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(problem(
            400,
            format!(
                "`{field}` contains the control character U+{:04X} at position {i}; URLs cannot contain it",
                c as u32
            ),
        ));
    }
    lib_ml::analysis::web_address(url).map_err(|e| problem(422, format!("`{field}`: {e}")))?;
    Ok(url)
}

/// A component's routes: each path and the methods it allows.
pub type Routes<'r> = &'r [(&'r str, &'r [&'r str])];

/// A request no route takes: 404 (unknown path) or 405 (known path, other method; `allow` lists
/// the methods for the `Allow` header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrouted {
    /// 404 or 405.
    pub status: u16,
    /// A sentence quoting the path or the method.
    pub message: String,
    /// For a 405: the allowed methods, comma-separated.
    pub allow: Option<String>,
}

/// The route `path` takes (one trailing slash ignored) if it allows `method` (`HEAD` counts as
/// `GET`). `hint` ends the 404 message (e.g. where the routes are listed).
pub fn route<'r>(
    routes: Routes<'r>,
    method: &str,
    path: &str,
    hint: &str,
) -> Result<&'r str, Unrouted> {
    let wanted = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let Some((found, methods)) = routes.iter().find(|(p, _)| *p == wanted) else {
        return Err(Unrouted {
            status: 404,
            message: format!("no route for `{}`{hint}", shorten(path, 200)),
            allow: None,
        });
    };
    let as_get = if method == "HEAD" { "GET" } else { method };
    if !methods.contains(&as_get) {
        let allow = methods.join(", ");
        return Err(Unrouted {
            status: 405,
            message: format!(
                "method `{}` is not allowed on `{found}`; allowed: {allow}",
                shorten(method, 20)
            ),
            allow: Some(allow),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routing() {
        let routes: Routes = &[("/", &["GET"]), ("/predict", &["POST"])];
        assert_eq!(route(routes, "POST", "/predict/", ""), Ok("/predict"));
        assert_eq!(route(routes, "HEAD", "/", ""), Ok("/"));
        let e = route(routes, "GET", "/predict", "").unwrap_err();
        assert_eq!((e.status, e.allow.as_deref()), (405, Some("POST")));
        assert!(
            e.message
                .contains("method `GET` is not allowed on `/predict`"),
            "{}",
            e.message
        );
        let long = format!("/{}", "x".repeat(500));
        let e = route(routes, "GET", &long, "; see GET /openapi.json").unwrap_err();
        assert_eq!((e.status, e.allow), (404, None));
        assert!(
            e.message.ends_with("…`; see GET /openapi.json"),
            "{}",
            e.message
        );
        assert!(e.message.len() < 300);
    }

    #[test]
    fn bodies() {
        let ok = |ct| json_body(b"{}", ct, 10, "{}").map(|_| ());
        assert_eq!(ok(Some("application/json; charset=utf-8")), Ok(()));
        assert_eq!(ok(Some("application/vnd.api+json")), Ok(()));
        assert_eq!(ok(None), Ok(()));
        assert_eq!(ok(Some("text/plain")).unwrap_err().status, 415);
        assert_eq!(
            json_body(&[b' '; 11], None, 10, "{}").unwrap_err().status,
            413
        );
        assert!(json_body(b"  ", None, 10, "{\"url\": \"x\"}")
            .unwrap_err()
            .message
            .contains("{\"url\": \"x\"}"));
        assert_eq!(json_body(b"{", None, 10, "{}").unwrap_err().status, 400);
    }

    #[test]
    fn urls() {
        assert_eq!(
            url_value(&json!("  http://a.com  "), "url"),
            Ok("http://a.com")
        );
        for (v, status, says) in [
            (json!(42), 400, "must be a string, found number `42`"),
            (json!("  "), 400, "`url` is empty"),
            (json!("http://a.tk/\u{7}"), 400, "U+0007"),
            (
                json!(format!("http://a.com/{}", "a".repeat(5000))),
                422,
                "5013 characters long",
            ),
            (json!("hello"), 422, "single word"),
        ] {
            let e = url_value(&v, "url").unwrap_err();
            assert_eq!(e.status, status, "{v}");
            assert!(e.message.contains(says), "{}", e.message);
        }
    }
}
