//! The released model, built into the component, loaded once per instance — or once at build time
//! when the component is pre-initialized (snapshotted), so requests never pay for it. What a
//! model is and how it runs is the `inference` crate's.

use anyhow::Result;
pub use inference::{Bands, Classifier, Preprocessing, MAX_BATCH};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;
use tract_nnef::prelude::TypedModel;

/// `model/model.nnef.tar` (the released `model.onnx` as tract NNEF, already decluttered).
pub const MODEL_NNEF: &[u8] = include_bytes!("../../../model/model.nnef.tar");
/// `model/features.json`: how a URL becomes the model's inputs.
pub const FEATURES_JSON: &str = include_str!("../../../model/features.json");
/// `model/known-domains.bin`: widely used registrable domains, hashed, by tier.
pub const KNOWN_DOMAINS: &[u8] = include_bytes!("../../../model/known-domains.bin");
/// `model/brands.txt`: brands phishers imitate.
pub const BRANDS_TXT: &str = include_str!("../../../model/brands.txt");
/// `model/model-card.json`, built in and served at `GET /model`.
pub const MODEL_CARD_JSON: &str = include_str!("../../../model/model-card.json");

/// The built-in preprocessing files.
pub const BUILT_IN_PREPROCESSING: Preprocessing<'static> = Preprocessing {
    features_json: FEATURES_JSON,
    known_domains: KNOWN_DOMAINS,
    brands: BRANDS_TXT,
};

static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
static PREINITIALIZED: AtomicBool = AtomicBool::new(false);
static LOADS_AT_REQUEST_TIME: AtomicU32 = AtomicU32::new(0);

/// The built-in model's graph: with the `tuning` feature through its lean reader over a copy it
/// can release (see [`crate::tuning`]), without through tract's standard reader.
pub fn read_graph() -> Result<TypedModel> {
    #[cfg(feature = "tuning")]
    {
        crate::tuning::built_in::read()
    }
    #[cfg(not(feature = "tuning"))]
    {
        inference::read_nnef(MODEL_NNEF)
    }
}

/// Reads, optimizes and plans the built-in model (the expensive step).
pub fn load() -> Result<Classifier> {
    load_with(read_graph)
}

/// [`load`] with the graph's reading left to `read`, which runs first: what is built after it
/// may be served from the file's memory (see [`crate::tuning`]). A missing or corrupt part is
/// an error naming it, so a bad model fails the build's snapshot step, never a request.
fn load_with(read: impl FnOnce() -> Result<TypedModel>) -> Result<Classifier> {
    let graph = read()?;
    let encoder = BUILT_IN_PREPROCESSING.encoder()?;
    let card = inference::Card::parse(MODEL_CARD_JSON)?;
    Classifier::from_graph(graph, encoder, card)
}

/// Loads the model into this instance's global, reading its graph with `read`; called by the
/// build-time snapshot hook.
#[cfg(target_arch = "wasm32")]
pub(crate) fn preinitialize(read: impl FnOnce() -> Result<TypedModel>) -> Result<()> {
    if CLASSIFIER.get().is_none() {
        let c = load_with(read)?;
        // Run the plan once, so whatever tract sets up on a first run (lazily built tables, a
        // heap grown to the size inference needs) is in the snapshot too, not redone by every
        // fresh instance.
        c.scores(&["http://example.com/"])?;
        let _ = CLASSIFIER.set(c);
    }
    PREINITIALIZED.store(true, Ordering::SeqCst);
    Ok(())
}

/// The instance's classifier, loading it now if the component was not pre-initialized.
pub fn classifier() -> Result<&'static Classifier> {
    if let Some(c) = CLASSIFIER.get() {
        return Ok(c);
    }
    let c = load()?;
    LOADS_AT_REQUEST_TIME.fetch_add(1, Ordering::SeqCst);
    Ok(CLASSIFIER.get_or_init(|| c))
}

/// Whether the model came from the build-time snapshot.
pub fn preinitialized() -> bool {
    PREINITIALIZED.load(Ordering::SeqCst)
}

/// How many times this instance had to load the model while serving (0 when pre-initialized).
pub fn loads_at_request_time() -> u32 {
    LOADS_AT_REQUEST_TIME.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_model_loads_and_scores() {
        let c = load().unwrap();
        let card: serde_json::Value = serde_json::from_str(MODEL_CARD_JSON).unwrap();
        assert_eq!(c.version, card["version"].as_str().unwrap());
        let s = c.scores(&["https://www.wikipedia.org/"]).unwrap()[0];
        assert!((0.0..=1.0).contains(&s), "{s}");
    }
}
