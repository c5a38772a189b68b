//! The model-service Spin component: phishing-URL inference with tract, inside wasm.
//!
//! Read it as: Spin's HTTP trigger (`component`, wasm only) → `api` (the whole HTTP API as plain
//! functions) → `model` (the built-in model, an `inference::Classifier`) → JSON. The wasm tuning
//! that makes fresh instances cheap and the component small is apart, in `tuning`, behind the
//! `tuning` cargo feature (on by default, so `spin build` has it).
#![deny(missing_docs)]

pub mod api;
pub mod model;
#[cfg(feature = "tuning")]
pub mod tuning;

#[cfg(target_arch = "wasm32")]
mod component;
