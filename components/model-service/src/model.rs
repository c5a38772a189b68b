//! The released model, built into the component, loaded once per instance — or once at build time
//! when the component is pre-initialized (snapshotted), so requests never pay for it.

use anyhow::{Context, Result};
use lib_ml::analysis::Analysis;
use lib_ml::encoder::UrlEncoder;
use lib_ml::explain::{explain, Explanation};
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use tract_nnef::prelude::*;

/// `model/model.nnef.tar` (the released `model.onnx` as tract NNEF, already decluttered).
pub const MODEL_NNEF: &[u8] = include_bytes!("../../../model/model.nnef.tar");
/// `model/features.json`: how a URL becomes the model's inputs.
pub const FEATURES_JSON: &str = include_str!("../../../model/features.json");
/// `model/known-domains.bin`: widely used registrable domains, hashed, by tier.
pub const KNOWN_DOMAINS: &[u8] = include_bytes!("../../../model/known-domains.bin");
/// `model/brands.txt`: brands phishers imitate.
pub const BRANDS_TXT: &str = include_str!("../../../model/brands.txt");

/// The built-in preprocessing files, as [`Classifier::from_parts`] takes them.
#[derive(Clone, Copy)]
pub struct Preprocessing<'a> {
    /// `features.json`.
    pub features_json: &'a str,
    /// `known-domains.bin`.
    pub known_domains: &'a [u8],
    /// `brands.txt`.
    pub brands: &'a str,
}

/// The built-in preprocessing files.
pub const BUILT_IN_PREPROCESSING: Preprocessing<'static> = Preprocessing {
    features_json: FEATURES_JSON,
    known_domains: KNOWN_DOMAINS,
    brands: BRANDS_TXT,
};
/// `model/model-card.json`, built in and served at `GET /model`.
pub const MODEL_CARD_JSON: &str = include_str!("../../../model/model-card.json");

/// The built-in copy of [`MODEL_NNEF`] the component loads. It lives in writable memory so that
/// pre-initialization can zero it once the model is loaded: the snapshot keeps only non-zero
/// memory, so the 1.8 MB file is not stored in the component next to the loaded model.
struct BuiltInNnef(UnsafeCell<[u8; MODEL_NNEF.len()]>);

// SAFETY: the bytes are only written by `release`, which runs at most once, during
// pre-initialization (single-threaded, before any request), after the last read.
unsafe impl Sync for BuiltInNnef {}

static BUILT_IN_NNEF: BuiltInNnef = BuiltInNnef(UnsafeCell::new(
    *MODEL_NNEF.first_chunk::<{ MODEL_NNEF.len() }>().unwrap(),
));
static NNEF_RELEASED: AtomicBool = AtomicBool::new(false);

impl BuiltInNnef {
    /// The bytes, unless [`release`](Self::release) has zeroed them.
    fn bytes(&self) -> Option<&'static [u8]> {
        if NNEF_RELEASED.load(Ordering::SeqCst) {
            return None;
        }
        // SAFETY: not released, so nothing writes them (see `Sync` above).
        Some(unsafe { &*self.0.get() })
    }

    /// The bytes' memory, zeroed and no longer read, once [`release`](Self::release)d.
    #[cfg(target_arch = "wasm32")]
    fn released(&self) -> Option<(*mut u8, usize)> {
        NNEF_RELEASED
            .load(Ordering::SeqCst)
            .then(|| (self.0.get() as *mut u8, MODEL_NNEF.len()))
    }

    /// Zeroes the bytes; [`bytes`](Self::bytes) returns `None` from now on.
    ///
    /// # Safety
    /// No reference returned by `bytes` may be alive, and no other thread may call `bytes`.
    #[cfg(target_arch = "wasm32")]
    unsafe fn release(&self) {
        NNEF_RELEASED.store(true, Ordering::SeqCst);
        unsafe { (*self.0.get()).fill(0) };
    }
}

/// The most URLs one call may classify.
pub const MAX_BATCH: usize = 256;

/// The model, ready to run.
pub struct Classifier {
    /// The optimized plan for one URL: every shape concrete. A batch runs it once per URL.
    plan: Arc<TypedRunnableModel>,
    /// Turns a URL into the model's inputs (ids and values), as in training.
    pub encoder: UrlEncoder,
    /// Model name from the card.
    pub name: String,
    /// Model version from the card.
    pub version: String,
    /// Scores at or above this are phishing.
    pub threshold: f32,
    /// The verdict bands (the card's; the threshold on both sides when the card has none).
    pub bands: Bands,
}

static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
static PREINITIALIZED: AtomicBool = AtomicBool::new(false);
static LOADS_AT_REQUEST_TIME: AtomicU32 = AtomicU32::new(0);

#[derive(serde::Deserialize)]
struct CardHead {
    name: String,
    version: String,
    threshold: f32,
    #[serde(default)]
    bands: Option<Bands>,
}

/// The verdict bands of the model card: below `likely_safe_below` "likely safe", from
/// `likely_phishing_from` "likely phishing", between them "suspicious".
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
pub struct Bands {
    /// See the type.
    pub likely_safe_below: f32,
    /// See the type.
    pub likely_phishing_from: f32,
}

impl Bands {
    /// The band of `score`: `likely_safe`, `suspicious` or `likely_phishing`.
    pub fn of(&self, score: f32) -> &'static str {
        if score >= self.likely_phishing_from {
            "likely_phishing"
        } else if score < self.likely_safe_below {
            "likely_safe"
        } else {
            "suspicious"
        }
    }
}

impl Classifier {
    /// Parses, optimizes and plans the built-in model (the expensive step).
    pub fn load() -> Result<Classifier> {
        Classifier::build(read_built_in, BUILT_IN_PREPROCESSING, MODEL_CARD_JSON)
    }

    /// Parses, optimizes and plans a model from its files' contents. A missing or corrupt part is
    /// an error naming it (so a bad model fails the build's snapshot step, never a request).
    pub fn from_parts(
        nnef: &[u8],
        preprocessing: Preprocessing<'_>,
        card_json: &str,
    ) -> Result<Classifier> {
        Classifier::build(|| read_nnef(nnef), preprocessing, card_json)
    }

    /// [`from_parts`](Self::from_parts) with the NNEF file's reading left to `read`, which
    /// runs first.
    fn build(
        read: impl FnOnce() -> Result<TypedModel>,
        preprocessing: Preprocessing<'_>,
        card_json: &str,
    ) -> Result<Classifier> {
        // The file first: what is built after `read` may be served from the file's memory
        // (see `preinitialize`), and the encoder and the card are read by every request too.
        let model = read()?;
        let encoder = UrlEncoder::from_parts(
            preprocessing.features_json,
            preprocessing.known_domains,
            preprocessing.brands,
        )
        .context(
            "built-in preprocessing (features.json, known-domains.bin, brands.txt) is invalid",
        )?;
        let card: CardHead =
            serde_json::from_str(card_json).context("built-in model card is invalid")?;
        let width = encoder.width();
        // The per-id terms (`weights[ids] * values`, the node the export names `scale`) are a
        // second output: the logit is their sum, so they explain the score exactly.
        let mut model = model;
        let terms = model
            .node_id_by_name("scale")
            .context("the model has no `scale` node (its per-id terms)")?;
        let score = model.output_outlets()?[0];
        model.select_output_outlets(&[score, OutletId::new(terms, 0)])?;
        // The graph declares its inputs as [batch, width]: fix `batch` to 1 everywhere (setting
        // only the inputs' shapes would leave every other shape symbolic), then optimize and plan.
        let batch = model.sym("batch");
        let plan = model
            .set_symbols(&HashMap::from([(batch, 1.to_dim())]))?
            .with_input_fact(0, i64::fact([1, width]))?
            .with_input_fact(1, f32::fact([1, width]))?
            .into_optimized()?
            .into_runnable()?;
        Ok(Classifier {
            plan,
            encoder,
            name: card.name,
            version: card.version,
            threshold: card.threshold,
            bands: card.bands.unwrap_or(Bands {
                likely_safe_below: card.threshold,
                likely_phishing_from: card.threshold,
            }),
        })
    }

    /// P(phishing) for each URL, in order. `urls` must hold 1..=[`MAX_BATCH`] URLs.
    pub fn scores(&self, urls: &[&str]) -> Result<Vec<f32>> {
        anyhow::ensure!(
            !urls.is_empty() && urls.len() <= MAX_BATCH,
            "expected 1 to {MAX_BATCH} URLs"
        );
        Ok(self
            .scores_with_analysis(urls)?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    /// P(phishing) for each URL with the URL analysis its inputs came from, in order.
    pub fn scores_with_analysis(&self, urls: &[&str]) -> Result<Vec<(f32, Analysis)>> {
        self.run(urls, false, |_, _, _| ())
            .map(|v| v.into_iter().map(|(s, a, ())| (s, a)).collect())
    }

    /// P(phishing), the analysis and the explanation (reasons, attribution) of each URL.
    pub fn explain(&self, urls: &[&str]) -> Result<Vec<(f32, Analysis, Explanation)>> {
        self.run(urls, true, |url, analysis, terms| {
            explain(&self.encoder, url, analysis, terms)
        })
    }

    /// Runs the plan once per URL; `then` sees each URL's analysis and, with `terms`, its
    /// (id, term) pairs (empty without: building them costs a third of an inference).
    fn run<T>(
        &self,
        urls: &[&str],
        terms: bool,
        mut then: impl FnMut(&str, &Analysis, &[(u32, f32)]) -> T,
    ) -> Result<Vec<(f32, Analysis, T)>> {
        anyhow::ensure!(
            !urls.is_empty() && urls.len() <= MAX_BATCH,
            "expected 1 to {MAX_BATCH} URLs"
        );
        let width = self.encoder.width();
        let pad = self.encoder.pad_id() as i64;
        let mut state = self.plan.spawn()?;
        let mut out = Vec::with_capacity(urls.len());
        let mut ids_seen = Vec::with_capacity(width);
        let mut values_seen = Vec::with_capacity(width);
        for url in urls {
            let mut ids = Tensor::zero::<i64>(&[1, width])?;
            let mut values = Tensor::zero::<f32>(&[1, width])?;
            let analysis = self.encoder.encode_into_with_analysis(
                url,
                ids.try_as_plain_ram_mut()?.as_slice_mut::<i64>()?,
                values.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?,
            );
            ids_seen.clear();
            values_seen.clear();
            if terms {
                ids_seen.extend(ids.try_as_plain_ram()?.as_slice::<i64>()?.iter().copied());
                values_seen.extend(
                    values
                        .try_as_plain_ram()?
                        .as_slice::<f32>()?
                        .iter()
                        .copied(),
                );
            }
            let result = state.run(tvec!(ids.into(), values.into()))?;
            let score = *result[0]
                .to_plain_array_view::<f32>()?
                .iter()
                .next()
                .context("the model returned no score")?;
            let id_terms: Vec<(u32, f32)> = ids_seen
                .iter()
                .zip(&values_seen)
                .zip(result[1].to_plain_array_view::<f32>()?.iter())
                .filter(|((id, _), _)| **id != pad)
                .map(|((&id, &v), &w)| (id as u32, w * v))
                .collect();
            let extra = then(url, &analysis, &id_terms);
            out.push((score, analysis, extra));
        }
        Ok(out)
    }
}

/// The model graph in an NNEF file.
fn read_nnef(nnef: &[u8]) -> Result<TypedModel> {
    crate::reader::read(nnef).context("built-in NNEF model is invalid")
}

/// The model graph in the built-in model file, unless pre-initialization has released it.
fn read_built_in() -> Result<TypedModel> {
    read_nnef(BUILT_IN_NNEF.bytes().context(
        "the built-in model file was released after pre-initialization loaded the model",
    )?)
}

/// Loads the model into this instance's global; called by the build-time snapshot hook.
///
/// Inside the component this also zeroes the built-in model file as soon as it has been read,
/// so the snapshot (which stores only non-zero memory) leaves it out, and hands its memory to
/// `build_in`, which may serve the allocations that optimizing and planning the model make
/// from it (see [`crate::arena::BlockHeap`]).
#[cfg(target_arch = "wasm32")]
pub(crate) fn preinitialize(build_in: impl FnOnce(*mut u8, usize)) -> Result<()> {
    if CLASSIFIER.get().is_none() {
        let read = || {
            let model = read_built_in()?;
            // SAFETY: the only reader, `read_built_in`, has returned, and a wasm instance runs
            // one thread.
            unsafe { BUILT_IN_NNEF.release() };
            if let Some((start, len)) = BUILT_IN_NNEF.released() {
                build_in(start, len);
            }
            Ok(model)
        };
        let c = Classifier::build(read, BUILT_IN_PREPROCESSING, MODEL_CARD_JSON)?;
        // Run the plan once, so whatever tract sets up on a first run (kernel choices, lazily
        // built tables, a heap grown to the size inference needs) is in the snapshot too, not
        // redone by every fresh instance.
        c.scores(&["http://example.com/"])?;
        let _ = CLASSIFIER.set(c);
    }
    PREINITIALIZED.store(true, Ordering::SeqCst);
    Ok(())
}

/// The memory the built-in model file occupied, once pre-initialization has read the model
/// and zeroed the file.
#[cfg(target_arch = "wasm32")]
pub(crate) fn released_model_file() -> Option<(*mut u8, usize)> {
    BUILT_IN_NNEF.released()
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

    fn error_of(nnef: &[u8], pre: Preprocessing<'_>, card: &str) -> String {
        match Classifier::from_parts(nnef, pre, card) {
            Ok(_) => panic!("a broken model must not load"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_corrupt_or_missing_part_is_a_clear_error() {
        let pre = BUILT_IN_PREPROCESSING;
        let e = error_of(&MODEL_NNEF[..MODEL_NNEF.len() / 2], pre, MODEL_CARD_JSON);
        assert!(e.contains("NNEF model is invalid"), "{e}");
        let e = error_of(b"", pre, MODEL_CARD_JSON);
        assert!(e.contains("NNEF model is invalid"), "{e}");
        let bad = Preprocessing {
            features_json: "{\"format\": \"nope\"}",
            ..pre
        };
        let e = error_of(MODEL_NNEF, bad, MODEL_CARD_JSON);
        assert!(
            e.contains("preprocessing") && e.contains("features spec"),
            "{e}"
        );
        let bad = Preprocessing {
            known_domains: &KNOWN_DOMAINS[..KNOWN_DOMAINS.len() - 2],
            ..pre
        };
        let e = error_of(MODEL_NNEF, bad, MODEL_CARD_JSON);
        assert!(e.contains("known-domains"), "{e}");
        let e = error_of(MODEL_NNEF, pre, "");
        assert!(e.contains("model card is invalid"), "{e}");
    }
}
