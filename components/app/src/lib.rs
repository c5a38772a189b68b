//! The app Spin component: the browser UI, its JSON API, feedback and Prometheus metrics.
//!
//! `api` routes and answers requests against an [`api::Env`] (the key-value store, the
//! model-service, configuration), `metrics` names and renders the metrics, `feedback` stores and
//! exports feedback rows. All of it is plain Rust tested natively; `component` (wasm only) provides
//! the real `Env`: `wasi:keyvalue`, outbound `wasi:http` with a deadline, Spin variables.
#![deny(missing_docs)]

pub mod api;
pub mod feedback;
pub mod metrics;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod component;
