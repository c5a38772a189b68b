//! The bad-input matrix (`common/bad_input.rs`) against the built components in the host (both,
//! from `spin.toml`). To run the same table against a running application (`spin up`, or
//! `wasm-host serve`), set `BAD_INPUT_BASE_URL=http://127.0.0.1:3000`; `tests/spin_up.rs` runs it
//! against the real `spin up` in every test run.

#[path = "common/bad_input.rs"]
mod bad_input;

use bad_input::{check_all, send_tcp, table};
use std::time::Duration;
use wasm_host::{Host, HostOptions};

#[test]
fn every_bad_request_gets_a_json_4xx_naming_the_problem() {
    let base = std::env::var("BAD_INPUT_BASE_URL").ok();
    let host = base.is_none().then(|| {
        Host::load(
            &test_support::workspace_root().join("spin.toml"),
            HostOptions::default(),
        )
        .expect("components must be built first: `cargo run -p wasm-host -- build`")
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = table();
    let failures = check_all(&rows, |row| match (&base, &host) {
        (Some(base), _) => Some(send_tcp(base, row)),
        (None, Some(host)) => {
            let headers: Vec<(&str, &str)> =
                row.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let call = host.request(row.method, row.path, &headers, row.body.clone());
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), call).await })
                .ok()
                .map(|r| {
                    let r = r.expect("host");
                    let ct = r.header("content-type").map(str::to_string);
                    (r.status, ct, r.body.to_vec())
                })
        }
        (None, None) => unreachable!(),
    });
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    eprintln!("bad-input matrix: {} rows passed", rows.len());
}
