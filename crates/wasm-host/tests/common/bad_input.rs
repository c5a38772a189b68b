//! The bad-input matrix: every row is one hostile or broken request to either component, and the
//! answer it must get — a JSON 4xx whose message names the problem; never a 5xx, a panic or a
//! hang. The table is the test; read it top to bottom. `tests/spin_up.rs` runs it against the
//! real `spin up`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// One row: what is sent and what must come back.
pub struct Row {
    pub what: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Expected status.
    pub status: u16,
    /// Text the JSON `error` must contain (empty: any error; unused for 2xx).
    pub says: &'static str,
}

pub const JSON: &str = "application/json";

fn json_row(
    what: &'static str,
    path: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    says: &'static str,
) -> Row {
    Row {
        what,
        method: "POST",
        path,
        headers: vec![("content-type", JSON.into())],
        body: body.into(),
        status,
        says,
    }
}

fn nested(depth: usize) -> String {
    format!(
        "{{\"url\": {}\"x\"{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

pub fn table() -> Vec<Row> {
    let long_url = format!("{{\"url\": \"http://a.tk/{}\"}}", "a".repeat(100 * 1024));
    let many = format!("{{\"urls\": [{}]}}", vec!["\"a\""; 10_000].join(","));
    let many_oip = format!(
        "{{\"inputs\": [{{\"name\": \"url\", \"datatype\": \"BYTES\", \"shape\": [10000], \"data\": [{}]}}]}}",
        vec!["\"a\""; 10_000].join(",")
    );
    let mut rows = Vec::new();
    // Both components' JSON endpoints get the same treatment.
    for path in ["/predict", "/api/predict"] {
        rows.extend([
            json_row("malformed JSON", path, "{\"url\": ", 400, "malformed JSON"),
            json_row("JSON that is not an object", path, "[1, 2]", 400, "array"),
            json_row("missing url", path, "{}", 400, "missing field `url`"),
            json_row("empty url", path, "{\"url\": \"\"}", 400, "empty"),
            json_row(
                "whitespace url",
                path,
                "{\"url\": \"  \\t \"}",
                400,
                "empty",
            ),
            json_row("url is a number", path, "{\"url\": 42}", 400, "number `42`"),
            json_row("url is null", path, "{\"url\": null}", 400, "null"),
            json_row(
                "url is an object",
                path,
                "{\"url\": {\"href\": \"x\"}}",
                400,
                "object",
            ),
            json_row("100 KB url", path, long_url.clone(), 413, "bytes"),
            json_row(
                "5,000-character url",
                path,
                format!("{{\"url\": \"http://a.tk/{}\"}}", "a".repeat(4990)),
                422,
                "5002 characters long",
            ),
            json_row(
                "a single word",
                path,
                "{\"url\": \"hello\"}",
                422,
                "single word",
            ),
            json_row(
                "not a web address",
                path,
                "{\"url\": \"not a url at all\"}",
                422,
                "does not look like a web address",
            ),
            json_row(
                "an ftp address",
                path,
                "{\"url\": \"ftp://files.example.com/x\"}",
                422,
                "`ftp:` address",
            ),
            json_row(
                "non-UTF-8 bytes",
                path,
                b"{\"url\": \"http://a.tk/\xff\xfe\"}".to_vec(),
                400,
                "malformed JSON",
            ),
            json_row(
                "control character",
                path,
                "{\"url\": \"http://a.tk/\\u0007x\"}",
                400,
                "U+0007",
            ),
            json_row(
                "newline in url",
                path,
                "{\"url\": \"http://a.tk/\\nx\"}",
                400,
                "U+000A",
            ),
            json_row(
                "deeply nested JSON",
                path,
                nested(5_000),
                400,
                "recursion limit",
            ),
            json_row("empty body", path, "", 400, "empty"),
            Row {
                what: "wrong content type",
                method: "POST",
                path,
                headers: vec![("content-type", "text/plain".into())],
                body: b"{\"url\": \"http://a.tk\"}".to_vec(),
                status: 415,
                says: "text/plain",
            },
            Row {
                what: "form-encoded body",
                method: "POST",
                path,
                headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
                body: b"url=http%3A%2F%2Fa.tk".to_vec(),
                status: 415,
                says: "x-www-form-urlencoded",
            },
            Row {
                what: "oversized content-type header",
                method: "POST",
                path,
                headers: vec![("content-type", format!("text/{}", "x".repeat(16 * 1024)))],
                body: b"{\"url\": \"http://a.tk\"}".to_vec(),
                status: 415,
                says: "…",
            },
            Row {
                what: "wrong method",
                method: "GET",
                path,
                headers: vec![],
                body: vec![],
                status: 405,
                says: "allowed: POST",
            },
            Row {
                what: "PUT",
                method: "PUT",
                path,
                headers: vec![("content-type", JSON.into())],
                body: b"{\"url\": \"http://a.tk\"}".to_vec(),
                status: 405,
                says: "allowed: POST",
            },
        ]);
    }
    rows.extend([
        json_row("10,000-element batch", "/predict/batch", many, 422, "10000"),
        json_row("batch is not a list", "/predict/batch", "{\"urls\": \"http://a.tk\"}", 400, "array"),
        json_row("empty batch", "/predict/batch", "{\"urls\": []}", 422, "holds 0"),
        json_row("batch with a non-string", "/predict/batch", "{\"urls\": [\"http://a.tk\", 7]}", 400, "urls[1]"),
        json_row("OIP: 10,000 inputs", "/v2/models/phishing/infer", many_oip, 422, "10000"),
        json_row("OIP: wrong datatype", "/v2/models/phishing/infer",
            "{\"inputs\": [{\"name\": \"url\", \"datatype\": \"FP32\", \"shape\": [1], \"data\": [1.0]}]}", 400, "BYTES"),
        json_row("OIP: shape mismatch", "/v2/models/phishing/infer",
            "{\"inputs\": [{\"name\": \"url\", \"datatype\": \"BYTES\", \"shape\": [3], \"data\": [\"http://a.tk\"]}]}", 400, "shape"),
        json_row("feedback: label not a verdict", "/api/feedback",
            "{\"url\": \"http://a.tk\", \"label\": \"spam\", \"agree\": true}", 400, "\"spam\""),
        json_row("feedback: agree not a boolean", "/api/feedback",
            "{\"url\": \"http://a.tk\", \"label\": \"phishing\", \"agree\": 1}", 400, "`agree`"),
        json_row("feedback: control character", "/api/feedback",
            "{\"url\": \"http://a.tk/\\u0000\", \"label\": \"phishing\", \"agree\": true}", 400, "U+0000"),
        Row {
            what: "export with a junk token",
            method: "GET",
            path: "/api/feedback/export",
            headers: vec![("authorization", "Basic Zm9vOmJhcg==".into())],
            body: vec![],
            status: 404,
            says: "not enabled",
        },
        Row {
            what: "unknown route",
            method: "GET",
            path: "/wp-admin/install.php",
            headers: vec![],
            body: vec![],
            status: 404,
            says: "/wp-admin/install.php",
        },
        Row {
            what: "unknown API route",
            method: "POST",
            path: "/api/predict/../../etc/passwd",
            headers: vec![("content-type", JSON.into())],
            body: b"{}".to_vec(),
            status: 404,
            says: "no route",
        },
        Row {
            what: "query-string junk on an unknown route",
            method: "GET",
            path: "/nope?%zz&&==&a=%ff%fe",
            headers: vec![],
            body: vec![],
            status: 404,
            says: "/nope",
        },
        Row {
            what: "DELETE on the model card",
            method: "DELETE",
            path: "/model",
            headers: vec![],
            body: vec![],
            status: 405,
            says: "allowed: GET",
        },
        // Not errors: junk the components rightly ignore.
        Row {
            what: "query-string junk on a valid request (ignored)",
            method: "POST",
            path: "/predict?%zz&&==&url=ignored",
            headers: vec![("content-type", JSON.into())],
            body: b"{\"url\": \"https://www.wikipedia.org/\"}".to_vec(),
            status: 200,
            says: "",
        },
        Row {
            what: "unknown JSON fields (ignored)",
            method: "POST",
            path: "/api/predict",
            headers: vec![("content-type", "application/json; charset=utf-8".into())],
            body: b"{\"url\": \"https://www.wikipedia.org/\", \"extra\": [1, {}]}".to_vec(),
            status: 200,
            says: "",
        },
    ]);
    rows
}

/// Status, content type and body of a response.
pub type Answer = (u16, Option<String>, Vec<u8>);

/// Sends over TCP to a running application (HTTP/1.1, `Connection: close`).
pub fn send_tcp(base: &str, row: &Row) -> Answer {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!(
        "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        row.method,
        row.path,
        row.body.len()
    );
    for (k, v) in &row.headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    stream.write_all(&row.body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    (status, header("content-type"), body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// Sends every row with `send` (`None`: no answer in time) and checks each answer; returns the
/// failures, one line each.
pub fn check_all(rows: &[Row], mut send: impl FnMut(&Row) -> Option<Answer>) -> Vec<String> {
    let mut failures = Vec::new();
    for row in rows {
        let started = Instant::now();
        let Some((status, content_type, body)) = send(row) else {
            failures.push(format!("{}: no answer within 30 s (hang)", row.what));
            continue;
        };
        let took = started.elapsed();
        let text = String::from_utf8_lossy(&body);
        let shown: String = text.chars().take(160).collect();
        let mut fail = |why: String| {
            failures.push(format!(
                "{} ({} {}): {why}; got {status} `{shown}`",
                row.what,
                row.method,
                row.path.chars().take(60).collect::<String>()
            ))
        };
        if status != row.status {
            fail(format!("expected status {}", row.status));
            continue;
        }
        if status >= 400 {
            if !content_type.as_deref().is_some_and(|c| c.starts_with(JSON)) {
                fail(format!("content type {content_type:?} is not JSON"));
                continue;
            }
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string));
            match message {
                None => fail("no JSON `error` field".into()),
                Some(m) if !m.contains(row.says) => {
                    fail(format!("message should mention `{}`", row.says))
                }
                Some(m) if m.len() > 1000 => fail(format!(
                    "message is {} bytes long (echoes the input?)",
                    m.len()
                )),
                Some(_) => {}
            }
        }
        if took > Duration::from_secs(10) {
            fail(format!("took {took:?}"));
        }
    }
    failures
}
