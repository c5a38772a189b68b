//! The released model, built into the component, loaded once per instance — or once at build time
//! when the component is pre-initialized (snapshotted), so requests never pay for it.

use anyhow::{Context, Result};
use lib_ml::Tokenizer;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use tract_nnef::prelude::*;

/// `model/model.nnef.tar` (the released `model.onnx` as tract NNEF, already decluttered), built in.
pub const MODEL_NNEF: &[u8] = include_bytes!("../../../model/model.nnef.tar");
/// `model/tokenizer.json`, built in.
pub const TOKENIZER_JSON: &str = include_str!("../../../model/tokenizer.json");
/// `model/model-card.json`, built in and served at `GET /model`.
pub const MODEL_CARD_JSON: &str = include_str!("../../../model/model-card.json");

/// The most URLs one call may classify.
pub const MAX_BATCH: usize = 256;

type Plan = Arc<TypedRunnableModel>;

/// The model, ready to run.
pub struct Classifier {
    /// Plan for exactly one URL (the common `/predict` case, fully specialised).
    single: Plan,
    /// Plan for any batch size (symbolic batch dimension).
    batched: Plan,
    /// The tokenizer the model was trained with.
    pub tokenizer: Tokenizer,
    /// Model name from the card.
    pub name: String,
    /// Model version from the card.
    pub version: String,
    /// Scores at or above this are phishing.
    pub threshold: f32,
}

static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
static PREINITIALIZED: AtomicBool = AtomicBool::new(false);
static LOADS_AT_REQUEST_TIME: AtomicU32 = AtomicU32::new(0);

#[derive(serde::Deserialize)]
struct CardHead {
    name: String,
    version: String,
    threshold: f32,
}

impl Classifier {
    /// Parses, optimizes and plans the built-in model (the expensive step).
    pub fn load() -> Result<Classifier> {
        Classifier::from_parts(MODEL_NNEF, TOKENIZER_JSON, MODEL_CARD_JSON)
    }

    /// Parses, optimizes and plans a model from its files' contents. A missing or corrupt part is
    /// an error naming it (so a bad model fails the build's snapshot step, never a request).
    pub fn from_parts(nnef: &[u8], tokenizer_json: &str, card_json: &str) -> Result<Classifier> {
        let tokenizer =
            Tokenizer::from_json(tokenizer_json).context("built-in tokenizer is invalid")?;
        let card: CardHead =
            serde_json::from_str(card_json).context("built-in model card is invalid")?;
        // Read the graph once; both plans start from it.
        let model = tract_nnef::nnef()
            .model_for_read(&mut Cursor::new(nnef))
            .context("built-in NNEF model is invalid")?;
        let len = tokenizer.max_len();
        // Fix the input shape to [1, len], optimize, plan.
        let single = model
            .clone()
            .with_input_fact(0, i64::fact([1, len]))?
            .into_optimized()?
            .into_runnable()?;
        // Keep the batch dimension symbolic (the graph declares it as `batch`), optimize, plan.
        let batch = model.sym("batch");
        let batched = model
            .with_input_fact(0, i64::fact(&[batch.to_dim(), len.to_dim()]))?
            .into_optimized()?
            .into_runnable()?;
        Ok(Classifier {
            single,
            batched,
            tokenizer,
            name: card.name,
            version: card.version,
            threshold: card.threshold,
        })
    }

    /// P(phishing) for each URL, in order. `urls` must hold 1..=[`MAX_BATCH`] URLs.
    pub fn scores(&self, urls: &[&str]) -> Result<Vec<f32>> {
        anyhow::ensure!(
            !urls.is_empty() && urls.len() <= MAX_BATCH,
            "expected 1 to {MAX_BATCH} URLs"
        );
        let len = self.tokenizer.max_len();
        let mut ids = Vec::with_capacity(urls.len() * len);
        self.tokenizer.encode_batch(urls, &mut ids);
        let input: Tensor = tract_ndarray::Array2::from_shape_vec(
            (urls.len(), len),
            ids.into_iter().map(i64::from).collect(),
        )?
        .into();
        let plan = if urls.len() == 1 {
            &self.single
        } else {
            &self.batched
        };
        let out = plan.run(tvec!(input.into()))?;
        Ok(out[0]
            .to_plain_array_view::<f32>()?
            .iter()
            .copied()
            .collect())
    }
}

/// Loads the model into this instance's global; called by the build-time snapshot hook.
pub fn preinitialize() -> Result<()> {
    if CLASSIFIER.get().is_none() {
        let c = Classifier::load()?;
        // Run both plans once, so whatever tract sets up on a first run (kernel choices, lazily
        // built tables, a heap grown to the size inference needs) is in the snapshot too, not
        // redone by every fresh instance.
        c.scores(&["http://example.com/"])?;
        c.scores(&["http://example.com/", "https://example.org/a?b=c"])?;
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
    let c = Classifier::load()?;
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

    fn error_of(nnef: &[u8], tokenizer: &str, card: &str) -> String {
        match Classifier::from_parts(nnef, tokenizer, card) {
            Ok(_) => panic!("a broken model must not load"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_corrupt_or_missing_part_is_a_clear_error() {
        let e = error_of(
            &MODEL_NNEF[..MODEL_NNEF.len() / 2],
            TOKENIZER_JSON,
            MODEL_CARD_JSON,
        );
        assert!(e.contains("NNEF model is invalid"), "{e}");
        let e = error_of(b"", TOKENIZER_JSON, MODEL_CARD_JSON);
        assert!(e.contains("NNEF model is invalid"), "{e}");
        let e = error_of(MODEL_NNEF, "{\"format\": \"nope\"}", MODEL_CARD_JSON);
        assert!(e.contains("tokenizer is invalid"), "{e}");
        let e = error_of(MODEL_NNEF, TOKENIZER_JSON, "");
        assert!(e.contains("model card is invalid"), "{e}");
    }
}
