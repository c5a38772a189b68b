//! The model-service Spin component: phishing-URL inference with tract, inside wasm.
//!
//! `api` holds the whole HTTP API as plain functions, `model` the built-in model. The Spin handler,
//! the `phishing:classifier` WIT export and the `wizer-initialize` hook (build-time snapshot of the
//! loaded model) live in `component`, compiled only for wasm.
#![deny(missing_docs)]

#[cfg(not(target_arch = "wasm32"))]
pub mod alloc_check;
pub mod api;
pub mod arena;
pub mod model;
mod reader;

#[cfg(target_arch = "wasm32")]
mod component;
