//! The released model as a classifier: what the model-service runs for every request, and what
//! the training CLI and the benchmarks check it against natively.
//!
//! A model is its tract NNEF graph (`model/model.nnef.tar`), its preprocessing (`features.json`,
//! `known-domains.bin`, `brands.txt`, read by `lib-ml`) and its card (`model-card.json`: name,
//! version, threshold, verdict bands). [`Classifier::from_graph`] plans the graph for one URL
//! (load → optimize → plan, the expensive step); [`Classifier::scores`] and
//! [`Classifier::explain`] run it. Plain safe Rust; the same code natively and in wasm.
#![deny(missing_docs)]

use anyhow::{Context, Result};
use lib_ml::analysis::Analysis;
use lib_ml::encoder::UrlEncoder;
use lib_ml::explain::{explain, Explanation};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tract_nnef::prelude::*;

/// The most URLs one call may classify.
pub const MAX_BATCH: usize = 256;

/// The preprocessing files' contents, as [`Preprocessing::encoder`] reads them.
#[derive(Clone, Copy)]
pub struct Preprocessing<'a> {
    /// `features.json`.
    pub features_json: &'a str,
    /// `known-domains.bin`.
    pub known_domains: &'a [u8],
    /// `brands.txt`.
    pub brands: &'a str,
}

impl Preprocessing<'_> {
    /// The encoder these files describe; a corrupt file is an error naming them.
    pub fn encoder(&self) -> Result<UrlEncoder> {
        UrlEncoder::from_parts(self.features_json, self.known_domains, self.brands).context(
            "built-in preprocessing (features.json, known-domains.bin, brands.txt) is invalid",
        )
    }
}

/// What [`Classifier`] needs of the model card.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Card {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// Scores at or above this are phishing.
    pub threshold: f32,
    /// The verdict bands; the threshold on both sides when the card has none.
    #[serde(default)]
    pub bands: Option<Bands>,
}

impl Card {
    /// Parses the fields above out of `model-card.json`.
    pub fn parse(json: &str) -> Result<Card> {
        serde_json::from_str(json).context("built-in model card is invalid")
    }
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

/// Reads an NNEF archive with tract's standard reader (every operator tract knows). The
/// model-service reads its built-in archive with a reader limited to the model's operators
/// instead, to keep the others out of the component (its `tuning` module).
pub fn read_nnef(nnef: &[u8]) -> Result<TypedModel> {
    tract_nnef::nnef()
        .model_for_read(&mut std::io::Cursor::new(nnef))
        .context("NNEF model is invalid")
}

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

impl Classifier {
    /// Reads and plans a model from its files' contents. A missing or corrupt part is an error
    /// naming it.
    pub fn from_parts(
        nnef: &[u8],
        preprocessing: Preprocessing<'_>,
        card_json: &str,
    ) -> Result<Classifier> {
        let graph = read_nnef(nnef)?;
        Classifier::from_graph(graph, preprocessing.encoder()?, Card::parse(card_json)?)
    }

    /// Reads and plans the model in a directory laid out like `model/`.
    pub fn from_dir(dir: &Path) -> Result<Classifier> {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .with_context(|| format!("cannot read `{}`", dir.join(name).display()))
        };
        let text = |name: &str| {
            read(name).and_then(|b| {
                String::from_utf8(b).with_context(|| format!("`{name}` is not UTF-8"))
            })
        };
        let (features_json, brands) = (text("features.json")?, text("brands.txt")?);
        Classifier::from_parts(
            &read("model.nnef.tar")?,
            Preprocessing {
                features_json: &features_json,
                known_domains: &read("known-domains.bin")?,
                brands: &brands,
            },
            &text("model-card.json")?,
        )
    }

    /// Optimizes and plans `graph` for one URL at a time (the expensive step).
    pub fn from_graph(
        mut graph: TypedModel,
        encoder: UrlEncoder,
        card: Card,
    ) -> Result<Classifier> {
        let width = encoder.width();
        // The per-id terms (`weights[ids] * values`, the node the export names `scale`) are a
        // second output: the logit is their sum, so they explain the score exactly.
        let terms = graph
            .node_id_by_name("scale")
            .context("the model has no `scale` node (its per-id terms)")?;
        let score = graph.output_outlets()?[0];
        graph.select_output_outlets(&[score, OutletId::new(terms, 0)])?;
        // The graph declares its inputs as [batch, width]: fix `batch` to 1 everywhere (setting
        // only the inputs' shapes would leave every other shape symbolic), then optimize and plan.
        let batch = graph.sym("batch");
        let plan = graph
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
