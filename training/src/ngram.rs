//! The `ngram-url` architecture: logistic regression over hashed character n-grams plus the URL
//! analysis signals of `lib_ml::analysis` (registrable domain known or not, brand names out of
//! place, lookalikes, IP hosts, punycode, free hosting, ...), calibrated on validation data.
//!
//! Why this shape: on URLs from other collectors and years a hashed n-gram linear model held up
//! better than the char-CNN (see `model/README.md`), it is exact to explain (a URL's score is a
//! sum of per-n-gram and per-signal weights), and in the component it is a gather and a sum.
//!
//! Training: AdaGrad on the log loss with balanced class weights and a little L2, the epoch with
//! the lowest validation loss kept; then Platt scaling (`a * logit + c`) fitted on the validation
//! split and folded into the weights, so the exported graph's output is the calibrated
//! probability. The known-domain list comes from the Tranco file; the brand list is learned from
//! the training split: Tranco names that phishing rows use out of place.

use crate::augment;
use crate::data::Split;
use crate::params::NgramParams;
use crate::train::EpochRecord;
use anyhow::{bail, Context, Result};
use lib_ml::analysis::{Brands, KnownDomains, UrlAnalyzer};
use lib_ml::domain::split_host;
use lib_ml::encoder::{EncoderSpec, UrlEncoder};
use lib_ml::ngrams::NgramSpec;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// Files of a trained n-gram model, beside the weights.
pub mod files {
    /// The encoder spec.
    pub const FEATURES: &str = "features.json";
    /// Known domains (hashed, by tier).
    pub const KNOWN_DOMAINS: &str = "known-domains.bin";
    /// Imitated brands.
    pub const BRANDS: &str = "brands.txt";
    /// Weights (f32 LE, one per id) then the bias.
    pub const WEIGHTS: &str = "ngram-weights.bin";
}

/// Sparse rows.
pub type SparseRow = Vec<(u32, f32)>;

/// How a sparse logistic regression is fitted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FitParams {
    /// Passes at most.
    pub epochs: usize,
    /// AdaGrad's base rate.
    pub learning_rate: f64,
    /// L2 per step.
    pub l2: f64,
    /// Shuffling seed.
    pub seed: u64,
}

/// A fitted sparse logistic regression.
pub struct Fitted {
    /// Weights per id.
    pub weights: Vec<f64>,
    /// Bias.
    pub bias: f64,
    /// Per epoch: (train loss, val loss, val accuracy, seconds).
    pub history: Vec<EpochRecord>,
    /// The kept epoch (1-based).
    pub best_epoch: usize,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn dot(x: &[(u32, f32)], w: &[f64]) -> f64 {
    x.iter().map(|&(j, v)| w[j as usize] * f64::from(v)).sum()
}

fn loss_and_accuracy(xs: &[SparseRow], ys: &[f32], w: &[f64], b: f64) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let (loss, correct) = xs
        .par_iter()
        .zip(ys)
        .map(|(x, &y)| {
            let p = sigmoid(b + dot(x, w)).clamp(1e-7, 1.0 - 1e-7);
            let l = if y >= 0.5 { -p.ln() } else { -(1.0 - p).ln() };
            (l, usize::from((p >= 0.5) == (y >= 0.5)))
        })
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    (loss / xs.len() as f64, correct as f64 / xs.len() as f64)
}

/// Fits weights over `dim` ids with AdaGrad, balanced classes, keeping the epoch with the lowest
/// validation log loss (stopping at the first epoch that does not improve it).
pub fn fit(
    p: &FitParams,
    dim: usize,
    train: &[SparseRow],
    targets: &[f32],
    val: &[SparseRow],
    val_targets: &[f32],
    log: &mut dyn FnMut(&str),
) -> Result<Fitted> {
    if train.is_empty() || train.len() != targets.len() || val.len() != val_targets.len() {
        bail!("no training data or mismatched targets");
    }
    let positives = targets.iter().filter(|&&t| t >= 0.5).count();
    let negatives = targets.len() - positives;
    if positives == 0 || negatives == 0 {
        bail!("the training data has one class only");
    }
    let n = targets.len() as f64;
    let class_weight = [n / (2.0 * negatives as f64), n / (2.0 * positives as f64)];
    let mut w = vec![0f64; dim];
    let mut g2 = vec![1e-8f64; dim];
    let (mut b, mut b_g2) = (0f64, 1e-8f64);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
    let mut best: Option<(f64, Vec<f64>, f64, usize)> = None;
    let mut history = Vec::new();
    for epoch in 1..=p.epochs {
        let t0 = Instant::now();
        order.shuffle(&mut rng);
        let mut train_loss = 0.0;
        let mut correct = 0usize;
        for &i in &order {
            let x = &train[i];
            let y = f64::from(targets[i] >= 0.5);
            let prob = sigmoid(b + dot(x, &w));
            train_loss -= if y > 0.5 {
                prob.max(1e-7).ln()
            } else {
                (1.0 - prob).max(1e-7).ln()
            };
            correct += usize::from((prob >= 0.5) == (y > 0.5));
            let grad = (prob - y) * class_weight[y as usize];
            for &(j, v) in x {
                let j = j as usize;
                let gj = grad * f64::from(v) + p.l2 * w[j];
                g2[j] += gj * gj;
                w[j] -= p.learning_rate * gj / g2[j].sqrt();
            }
            b_g2 += grad * grad;
            b -= p.learning_rate * grad / b_g2.sqrt();
        }
        let train_seconds = t0.elapsed().as_secs_f64();
        let (val_loss, val_accuracy) = loss_and_accuracy(val, val_targets, &w, b);
        let rec = EpochRecord {
            epoch,
            train_loss: train_loss / n,
            train_accuracy: correct as f64 / n,
            val_loss,
            val_accuracy,
            train_seconds,
            samples_per_second: n / train_seconds.max(1e-9),
        };
        log(&format!(
            "epoch {epoch:>2}: loss {:.4} acc {:.4} | val_loss {:.4} val_acc {:.4} | {:.1} s",
            rec.train_loss, rec.train_accuracy, rec.val_loss, rec.val_accuracy, rec.train_seconds
        ));
        history.push(rec);
        if best.as_ref().is_none_or(|(l, ..)| val_loss < *l) {
            best = Some((val_loss, w.clone(), b, epoch));
        } else {
            // AdaGrad's steps only shrink: an epoch that did not help is followed by more of it.
            break;
        }
    }
    let (_, weights, bias, best_epoch) = best.expect("at least one epoch");
    Ok(Fitted {
        weights,
        bias,
        history,
        best_epoch,
    })
}

/// Platt scaling: `(a, c)` minimizing the log loss of `sigmoid(a * logit + c)` (Newton's method).
pub fn platt(logits: &[f64], targets: &[f32]) -> (f64, f64) {
    let (mut a, mut c) = (1.0f64, 0.0f64);
    for _ in 0..100 {
        let (mut ga, mut gc, mut haa, mut hac, mut hcc) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&z, &t) in logits.iter().zip(targets) {
            let p = sigmoid(a * z + c);
            let d = p - f64::from(t >= 0.5);
            let s = p * (1.0 - p);
            ga += d * z;
            gc += d;
            haa += s * z * z;
            hac += s * z;
            hcc += s;
        }
        let det = haa * hcc - hac * hac;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hcc * ga - hac * gc) / det;
        let dc = (haa * gc - hac * ga) / det;
        a -= da;
        c -= dc;
        if da.abs() < 1e-10 && dc.abs() < 1e-10 {
            break;
        }
    }
    (a, c)
}

/// A trained n-gram model: the encoder and one weight per id.
pub struct NgramModel {
    /// Turns URLs into ids and values.
    pub encoder: UrlEncoder,
    /// One weight per id (the pad's is 0).
    pub weights: Vec<f32>,
    /// The bias.
    pub bias: f32,
    /// `Some(levels)` when the weights are stored as one byte each: every weight is one of these
    /// 256 values (see [`quantize`](Self::quantize)).
    pub codebook: Option<Vec<f32>>,
}

/// What storing the weights as one-byte codes changed, for the log and the card.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// Distinct weight values (one byte a weight).
    pub levels: usize,
    /// The largest |weight - stored weight|.
    pub max_weight_change: f32,
    /// The mean |weight - stored weight|.
    pub mean_weight_change: f32,
    /// The largest change of a validation URL's score.
    pub max_val_score_change: f32,
}

/// 256 values for one-byte weights: `±max·(k/127)²` for k in 0..=127 (0 twice), with `max` the
/// largest |weight|. Squared steps keep the many small n-gram weights fine (the first step is
/// `max/16129`) and the few large ones (signals, decisive n-grams) within `max/127` of their
/// value. Chosen over a linear grid (2.7 times the mean score change on validation) and over
/// k-means, which leaves the rare large weights far from any value.
pub fn fit_codebook(weights: &[f32]) -> Vec<f32> {
    let top = weights.iter().fold(0f32, |m, w| m.max(w.abs()));
    let mut out: Vec<f32> = (-127i32..=127)
        .map(|k| {
            let r = k as f32 / 127.0;
            r.signum() * r * r * top
        })
        .collect();
    out.push(0.0);
    out
}

/// The code of the value nearest `w` in a codebook from [`fit_codebook`], whose first 255 values
/// ascend (the 256th is a spare 0): a binary search, ties to the lower value.
fn nearest_code(book: &[f32], w: f32) -> u8 {
    let sorted = &book[..book.len().min(255)];
    let i = sorted.partition_point(|&c| c < w);
    [i.checked_sub(1), (i < sorted.len()).then_some(i)]
        .into_iter()
        .flatten()
        .min_by(|&a, &b| (sorted[a] - w).abs().total_cmp(&(sorted[b] - w).abs()))
        .unwrap_or(0) as u8
}

impl NgramModel {
    /// Replaces every weight by the nearest of 256 values fitted to them ([`fit_codebook`]), so
    /// the weights can be stored as one byte each and the model evaluated, exported and served
    /// as stored. Returns the largest and the mean change of a weight.
    pub fn quantize(&mut self) -> (f32, f32) {
        let codebook = fit_codebook(&self.weights);
        let (mut worst, mut total) = (0f32, 0f64);
        for w in &mut self.weights {
            let stored = codebook[usize::from(nearest_code(&codebook, *w))];
            worst = worst.max((stored - *w).abs());
            total += f64::from((stored - *w).abs());
            *w = stored;
        }
        let mean = (total / self.weights.len().max(1) as f64) as f32;
        self.codebook = Some(codebook);
        (worst, mean)
    }

    /// The weights as one-byte codes into the codebook, when the model is quantized.
    pub fn weight_codes(&self) -> Option<(Vec<u8>, &[f32])> {
        let book = self.codebook.as_deref()?;
        Some((
            self.weights
                .iter()
                .map(|&w| nearest_code(book, w))
                .collect(),
            book,
        ))
    }

    /// P(phishing) of a URL's sparse input (`encoder.features`).
    pub fn probability(&self, features: &[(u32, f32)]) -> f32 {
        let logit = self.bias
            + features
                .iter()
                .map(|&(i, v)| self.weights[i as usize] * v)
                .sum::<f32>();
        1.0 / (1.0 + (-logit).exp())
    }

    /// P(phishing) per URL.
    pub fn scores(&self, urls: &[&str]) -> Vec<f32> {
        urls.par_iter()
            .map(|u| self.probability(&self.encoder.features(u)))
            .collect()
    }

    /// Writes the model's files into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let spec = serde_json::to_string_pretty(self.encoder.spec())? + "\n";
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).with_context(|| format!("failed to write `{}`", p.display()))
        };
        write(files::FEATURES, spec.as_bytes())?;
        write(
            files::KNOWN_DOMAINS,
            &self.encoder.analyzer().known.to_bytes(),
        )?;
        write(
            files::BRANDS,
            self.encoder.analyzer().brands.to_text().as_bytes(),
        )?;
        // f32: every weight, then the bias (4 bytes each); one-byte codes: a code a weight, then
        // the 256 codebook values and the bias as f32.
        let w: Vec<u8> = match self.weight_codes() {
            Some((codes, book)) => codes
                .into_iter()
                .chain(book.iter().flat_map(|c| c.to_le_bytes()))
                .chain(self.bias.to_le_bytes())
                .collect(),
            None => self
                .weights
                .iter()
                .chain([&self.bias])
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        };
        write(files::WEIGHTS, &w)
    }

    /// Reads what [`save`](Self::save) wrote.
    pub fn load(dir: &Path) -> Result<NgramModel> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).with_context(|| {
                format!("`{}` is missing: run the `train` stage first", p.display())
            })
        };
        let encoder = UrlEncoder::from_parts(
            &String::from_utf8(read(files::FEATURES)?)?,
            &read(files::KNOWN_DOMAINS)?,
            &String::from_utf8(read(files::BRANDS)?)?,
        )?;
        let raw = read(files::WEIGHTS)?;
        let n = encoder.vocab_size();
        let f32_at = |at: usize| f32::from_le_bytes(raw[at..at + 4].try_into().unwrap());
        if raw.len() == n + 4 * 257 {
            let book: Vec<f32> = (0..256).map(|k| f32_at(n + 4 * k)).collect();
            return Ok(NgramModel {
                weights: raw[..n].iter().map(|&c| book[usize::from(c)]).collect(),
                bias: f32_at(n + 4 * 256),
                codebook: Some(book),
                encoder,
            });
        }
        if raw.len() != 4 * (n + 1) {
            bail!(
                "`{}` has {} bytes, expected {} (f32 weights and bias) or {} (one-byte codes, 256 values, bias) for {n} ids",
                files::WEIGHTS,
                raw.len(),
                4 * (n + 1),
                n + 4 * 257
            );
        }
        Ok(NgramModel {
            weights: (0..n).map(|i| f32_at(4 * i)).collect(),
            bias: f32_at(4 * n),
            codebook: None,
            encoder,
        })
    }
}

/// Reads a ranked domain list (one domain a line, most popular first).
pub fn read_domains(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read domain list `{}`", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_ascii_lowercase)
        .collect())
}

/// Words of the web itself, never brands even when a popular domain is named after one
/// (`index.hr`, `static.microsoft`, `example.com`): as brands they would fire on `/index.php`.
pub const GENERIC_WORDS: &[&str] = &[
    "account",
    "action",
    "admin",
    "auto",
    "bank",
    "bookmark",
    "cloud",
    "customer",
    "example",
    "express",
    "force",
    "forms",
    "handle",
    "help",
    "home",
    "index",
    "king",
    "legacy",
    "login",
    "mail",
    "match",
    "media",
    "mobile",
    "monday",
    "navy",
    "news",
    "next",
    "note",
    "online",
    "page",
    "rand",
    "realestate",
    "script",
    "secure",
    "service",
    "share",
    "shop",
    "signin",
    "site",
    "sitemaps",
    "static",
    "support",
    "test",
    "tiny",
    "update",
    "verify",
    "safety",
    "live",
    "store",
    "blog",
];

/// Brands learned from the training split: names of the `pool` most popular domains that
/// phishing rows use out of place (as a token anywhere but in the registrable domain's own
/// name) in at least `min_rows` rows, at least twice as often (per row) as legitimate rows do.
pub fn learn_brands(domains: &[String], pool: usize, min_rows: usize, train: &Split) -> Brands {
    let mut candidates: HashMap<String, String> = HashMap::new();
    let mut order = Vec::new();
    for d in domains.iter().take(pool) {
        let parts = split_host(d);
        let (Some(reg), Some(name)) = (parts.registrable, parts.name()) else {
            continue;
        };
        if name.len() >= 4
            && !GENERIC_WORDS.contains(&name)
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && !candidates.contains_key(name)
        {
            candidates.insert(name.to_string(), reg.to_string());
            order.push(name.to_string());
        }
    }
    let counts: Vec<HashMap<&str, [usize; 2]>> = train
        .samples
        .par_chunks(4096)
        .map(|chunk| {
            let mut local: HashMap<&str, [usize; 2]> = HashMap::new();
            for s in chunk {
                let url = s.url.to_ascii_lowercase();
                let own = lib_ml::analysis::split_url(&url)
                    .and_then(|p| split_host(&p.host).name().map(str::to_string))
                    .unwrap_or_default();
                let mut seen = std::collections::HashSet::new();
                for t in url
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|t| t.len() >= 4 && *t != own)
                {
                    if let Some((k, _)) = candidates.get_key_value(t) {
                        if seen.insert(k.as_str()) {
                            local.entry(k.as_str()).or_default()[s.label.index() as usize] += 1;
                        }
                    }
                }
            }
            local
        })
        .collect();
    let mut total: HashMap<&str, [usize; 2]> = HashMap::new();
    for c in counts {
        for (k, v) in c {
            let e = total.entry(k).or_default();
            e[0] += v[0];
            e[1] += v[1];
        }
    }
    let [legit_rows, phish_rows] = train.class_counts();
    let (legit_rows, phish_rows) = (legit_rows.max(1) as f64, phish_rows.max(1) as f64);
    Brands::from_pairs(order.into_iter().filter_map(|name| {
        let [l, p] = total.get(name.as_str()).copied().unwrap_or_default();
        (p >= min_rows && p as f64 / phish_rows >= 2.0 * l as f64 / legit_rows)
            .then(|| (name.clone(), candidates[&name].clone()))
    }))
}

/// What training produced.
pub struct TrainedNgram {
    /// The calibrated model.
    pub model: NgramModel,
    /// Per epoch.
    pub history: Vec<EpochRecord>,
    /// The kept epoch.
    pub best_epoch: usize,
    /// Platt's (a, c), folded into the weights.
    pub calibration: (f64, f64),
    /// What storing the weights as one-byte codes changed (`weights = "codebook8"`).
    pub quantization: Option<Quantization>,
    /// Wall time.
    pub seconds: f64,
}

/// The encoder for `p`: its lists built from the domain file and the training split.
pub fn encoder_for(
    p: &NgramParams,
    train: &Split,
    log: &mut dyn FnMut(&str),
) -> Result<UrlEncoder> {
    let spec = EncoderSpec {
        ngrams: NgramSpec {
            bits: p.bits,
            min_n: p.min_n,
            max_n: p.max_n,
            max_chars: p.max_chars,
        },
        signals: p.signals,
        known_namespace: p.known_namespace,
        read_onward: p.read_onward,
        shape: p.shape,
        ..EncoderSpec::default()
    };
    let analyzer = if p.signals {
        let domains = read_domains(&p.known_domains)?;
        let known = KnownDomains::from_ranked(domains.iter().map(String::as_str), &p.known_tiers);
        let brands = learn_brands(&domains, p.brand_pool, p.brand_min_rows, train);
        log(&format!(
            "url signals: {} known domains in tiers {:?} ({} KiB), {} brands learned from the training split (of the top {}), Public Suffix List {}",
            known.len(),
            known.bounds(),
            known.to_bytes().len() / 1024,
            brands.len(),
            p.brand_pool,
            lib_ml::domain::PSL_VERSION
        ));
        UrlAnalyzer::new(known, brands)
    } else {
        UrlAnalyzer::default()
    };
    Ok(UrlEncoder::new(spec, analyzer)?)
}

/// Trains on `train`, early-stopping and calibrating on `val`.
pub fn train(
    p: &NgramParams,
    seed: u64,
    train: &Split,
    val: &Split,
    log: &mut dyn FnMut(&str),
) -> Result<TrainedNgram> {
    let start = Instant::now();
    let encoder = encoder_for(p, train, log)?;
    let encode = |s: &Split| -> Vec<SparseRow> {
        s.samples
            .par_iter()
            .map(|x| encoder.features(&x.url))
            .collect()
    };
    let (mut xs, vs) = (encode(train), encode(val));
    let (mut ts, vts) = (train.targets(), val.targets());
    if p.wrap > 0.0 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x7772_6170);
        // Only URLs on unknown sites, each with probability `wrap`: the wrapper is then read as
        // the page it leads to (with `read_onward`), and the copies, in the labels' mix of those
        // rows, teach that a known site passing you on says nothing by itself about the page.
        // A known site's URL inside a wrapper is read whole, and its phishing copies would teach
        // that a known site's text (`/login` on it) is phishing.
        let unknown = |url: &str| {
            let a = encoder.analyzer().analyze(url);
            a.host.is_some() && a.known_tier.is_none()
        };
        let mut picked: Vec<(String, f32)> = Vec::new();
        for (x, &t) in train.samples.iter().zip(&ts) {
            if unknown(&x.url) && rng.gen_bool(p.wrap) {
                let which = rng.gen_range(0..augment::WRAPPERS.len());
                picked.push((augment::wrap(&x.url, which), t));
            }
        }
        let phishing = picked.iter().filter(|(_, t)| *t > 0.5).count();
        log(&format!(
            "wrap: {} training URLs added inside one of {} link wrappers ({} phishing, {} legitimate)",
            picked.len(),
            augment::WRAPPERS.len(),
            phishing,
            picked.len() - phishing
        ));
        xs.extend(
            picked
                .par_iter()
                .map(|(u, _)| encoder.features(u))
                .collect::<Vec<_>>(),
        );
        ts.extend(picked.iter().map(|(_, t)| *t));
    }
    log(&format!(
        "training on {} URLs, validating on {}; {} ids, width {}, lr {}, l2 {:e}, seed {seed}",
        xs.len(),
        vs.len(),
        encoder.vocab_size(),
        encoder.width(),
        p.learning_rate,
        p.l2
    ));
    let fp = FitParams {
        epochs: p.epochs,
        learning_rate: p.learning_rate,
        l2: p.l2,
        seed,
    };
    let fitted = fit(&fp, encoder.vocab_size(), &xs, &ts, &vs, &vts, log)?;
    log(&format!(
        "keeping the weights of epoch {}",
        fitted.best_epoch
    ));
    let logits: Vec<f64> = vs
        .par_iter()
        .map(|x| fitted.bias + dot(x, &fitted.weights))
        .collect();
    let (a, c) = if p.calibrate {
        platt(&logits, &vts)
    } else {
        (1.0, 0.0)
    };
    log(&format!(
        "calibration (Platt, on validation): score = sigmoid({a:.4} * logit + {c:.4})"
    ));
    let mut weights: Vec<f32> = fitted.weights.iter().map(|&w| (a * w) as f32).collect();
    let pad = encoder.pad_id();
    weights[pad] = 0.0;
    let mut model = NgramModel {
        encoder,
        weights,
        bias: (a * fitted.bias + c) as f32,
        codebook: None,
    };
    let quantization = (p.weights == "codebook8").then(|| {
        let before: Vec<f32> = vs.par_iter().map(|x| model.probability(x)).collect();
        let (max_weight_change, mean_weight_change) = model.quantize();
        let max_val_score_change = vs
            .par_iter()
            .zip(&before)
            .map(|(x, b)| (model.probability(x) - b).abs())
            .reduce(|| 0.0, f32::max);
        let q = Quantization {
            levels: 256,
            max_weight_change,
            mean_weight_change,
            max_val_score_change,
        };
        log(&format!(
            "weights stored as one-byte codes into 256 values: weight change mean {mean_weight_change:.2e}, largest {max_weight_change:.2e}; largest validation score change {max_val_score_change:.2e}"
        ));
        q
    });
    Ok(TrainedNgram {
        model,
        history: fitted.history,
        best_epoch: fitted.best_epoch,
        calibration: (a, c),
        quantization,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_ml::analysis::Signal;

    fn model_with(weights: Vec<f32>, bits: u32) -> NgramModel {
        let encoder = UrlEncoder::new(
            EncoderSpec {
                ngrams: NgramSpec {
                    bits,
                    min_n: 1,
                    max_n: 3,
                    max_chars: 100,
                },
                ..EncoderSpec::default()
            },
            UrlAnalyzer::default(),
        )
        .unwrap();
        assert_eq!(weights.len(), encoder.vocab_size());
        NgramModel {
            encoder,
            weights,
            bias: -0.25,
            codebook: None,
        }
    }

    #[test]
    fn one_byte_weights_stay_close_and_survive_a_round_trip() -> Result<()> {
        // Weights like a trained model's: many small, a few large, both signs, some exactly 0.
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let n = (1 << 10) + Signal::ALL.len() + 1;
        let mut w: Vec<f32> = (0..n)
            .map(|i| match i % 7 {
                0 => 0.0,
                1 => rand::Rng::gen_range(&mut rng, -12.0..12.0),
                _ => rand::Rng::gen_range(&mut rng, -0.3..0.3),
            })
            .collect();
        w[5] = -16.0;
        let before = w.clone();
        let mut m = model_with(w, 10);
        let (worst, mean) = m.quantize();
        let book = m.codebook.clone().unwrap();
        assert_eq!(book.len(), 256);
        assert!(book.contains(&0.0) && book.contains(&-16.0) && book.contains(&16.0));
        // Every weight is a codebook value, within half the top step of what it was.
        for (a, b) in before.iter().zip(&m.weights) {
            assert!(book.contains(b), "{b} is not in the codebook");
            assert!((a - b).abs() <= 16.0 / 127.0, "{a} -> {b}");
            // Near 0 the steps are finer: below 0.3 (of 16) they are at most 0.035 apart.
            if a.abs() < 0.3 {
                assert!((a - b).abs() <= 0.018, "a small weight moved: {a} -> {b}");
            }
        }
        assert!(worst <= 16.0 / 127.0 && mean < worst);
        assert_eq!(before[0], 0.0);
        assert_eq!(m.weights[0], 0.0, "a weight of 0 stays 0");

        // Saved as codes and read back: the same weights, bit for bit.
        let dir = std::env::temp_dir().join(format!("ngram-codes-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        m.save(&dir)?;
        assert_eq!(
            std::fs::metadata(dir.join(files::WEIGHTS))?.len() as usize,
            n + 4 * 257
        );
        let back = NgramModel::load(&dir)?;
        assert_eq!(back.weights, m.weights);
        assert_eq!(back.bias, m.bias);
        assert_eq!(back.codebook.as_deref(), Some(&book[..]));

        // f32 weights round-trip too, and a file of the wrong size is refused with the sizes.
        let plain = model_with(before.clone(), 10);
        plain.save(&dir)?;
        let back = NgramModel::load(&dir)?;
        assert!(back.codebook.is_none() && back.weights == before);
        std::fs::write(dir.join(files::WEIGHTS), [0u8; 10])?;
        let err = NgramModel::load(&dir).err().unwrap().to_string();
        assert!(err.contains("has 10 bytes"), "{err}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn platt_recovers_a_known_scaling() {
        // Targets drawn from sigmoid(2z - 1): Platt should find about (2, -1).
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut zs, mut ts) = (Vec::new(), Vec::new());
        for i in 0..20_000 {
            let z = (i as f64 / 20_000.0) * 8.0 - 4.0;
            let p = sigmoid(2.0 * z - 1.0);
            zs.push(z);
            ts.push(f32::from(rand::Rng::gen_bool(&mut rng, p)));
        }
        let (a, c) = platt(&zs, &ts);
        assert!(
            (a - 2.0).abs() < 0.15 && (c + 1.0).abs() < 0.15,
            "a {a}, c {c}"
        );
    }
}
