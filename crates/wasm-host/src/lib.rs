//! A small wasmtime host that runs this project's Spin components the way Spin's HTTP trigger
//! does, for tests, benchmarks and machines without Spin. Where Spin is installed, use `spin up`.
//!
//! It reads `spin.toml`, compiles each component once (`InstancePre`), and gives every request a
//! fresh instance; it matches routes as Spin does (`/...` wildcards), resolves variables, chains
//! requests to `http://<component>.spin.internal` in-process, enforces
//! `allowed_outbound_hosts`, and provides Spin's key-value store and variables ([`kv`]).
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! let host = wasm_host::Host::load("spin.toml".as_ref(), Default::default())?;
//! let resp = host.request("POST", "/predict", &[("content-type", "application/json")], r#"{"url":"http://a.tk"}"#).await?;
//! assert_eq!(resp.status, 200);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod chaining;
pub mod dispatch;
pub mod engine;
pub mod host;
pub mod kv;
pub mod manifest;
pub mod outbound;
pub mod prewarm;
pub mod routes;
pub mod serve;
pub mod state;

pub use host::{Host, HostOptions, TestResponse};
