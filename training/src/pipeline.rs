//! The stages as the CLI runs them, each reading and writing files in one output directory:
//! `check` → `train` → `evaluate` → `export`.

use crate::card::{DataFile, ModelCard, Parity, TensorSpec, TrainingFacts, UrlSignalsFacts};
use crate::data::{self, Split};
use crate::metrics::{self, Metrics};
use crate::model::CharCnn;
use crate::ngram::{self, NgramModel};
use crate::onnx::{self, TractModel};
use crate::params::Params;
use crate::train::{self, EpochRecord};
use crate::{baseline, holdout, plots, CANDLE_VERSION, TRACT_VERSION};
use anyhow::{bail, Context, Result};
use lib_ml::Tokenizer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Files in the output directory.
pub mod files {
    /// Data summary from `check`.
    pub const DATA_REPORT: &str = "data-report.json";
    /// Trained weights.
    pub const WEIGHTS: &str = "weights.safetensors";
    /// Tokenizer fitted on the training split.
    pub const TOKENIZER: &str = "tokenizer.json";
    /// Per-epoch history and training facts.
    pub const TRAINING: &str = "training.json";
    /// Human-readable log of every stage.
    pub const LOG: &str = "training.log";
    /// Metrics per split.
    pub const METRICS: &str = "metrics.json";
    /// The exported model.
    pub const ONNX: &str = "model.onnx";
    /// The exported model as tract NNEF (what the model-service builds in).
    pub const NNEF: &str = "model.nnef.tar";
    /// The model card.
    pub const CARD: &str = "model-card.json";
    /// The evaluation protocol's figures: the model and the n-gram baseline on the test split
    /// and the held-out sources.
    pub const HOLDOUT: &str = "holdout.json";
}

/// A run: params, output directory, log sink.
pub struct Run {
    /// The params in force.
    pub params: Params,
    /// Where every artifact goes.
    pub out: PathBuf,
    /// Show progress bars.
    pub progress: bool,
    log: std::fs::File,
}

/// A trained model of either architecture.
pub enum Trained {
    /// The char-CNN and its tokenizer.
    Cnn(Box<CharCnn>, Box<Tokenizer>),
    /// The n-gram model.
    Ngram(NgramModel),
}

impl Trained {
    /// P(phishing) per URL.
    pub fn predict(&self, urls: &[&str]) -> Result<Vec<f32>> {
        match self {
            Trained::Cnn(net, tokenizer) => net.predict(tokenizer, urls, 512),
            Trained::Ngram(m) => Ok(m.scores(urls)),
        }
    }
}

/// `training.json`
#[derive(Debug, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// Epoch history.
    pub history: Vec<EpochRecord>,
    /// Training facts for the card.
    pub facts: TrainingFacts,
}

impl Run {
    /// Prepares the output directory (created if needed; must be writable). With `fresh_log`
    /// (a run that trains new weights) the log starts over, so that it tells the story of the
    /// model beside it; otherwise (evaluating, the protocol) it is appended to.
    pub fn new(params: Params, out: &Path, progress: bool, fresh_log: bool) -> Result<Run> {
        std::fs::create_dir_all(out.join("plots"))
            .with_context(|| format!("cannot create output directory `{}`", out.display()))?;
        let log_path = out.join(files::LOG);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(!fresh_log)
            .truncate(fresh_log)
            .open(&log_path)
            .with_context(|| format!("output directory `{}` is not writable", out.display()))?;
        Ok(Run {
            params,
            out: out.to_path_buf(),
            progress,
            log,
        })
    }

    /// Prints a line and appends it to the log.
    pub fn log(&mut self, line: &str) {
        eprintln!("{line}");
        let _ = writeln!(self.log, "{line}");
    }

    fn path(&self, file: &str) -> PathBuf {
        self.out.join(file)
    }

    fn write(&self, file: &str, contents: &str) -> Result<()> {
        let p = self.path(file);
        std::fs::write(&p, contents).with_context(|| format!("failed to write `{}`", p.display()))
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, file: &str, stage: &str) -> Result<T> {
        let p = self.path(file);
        let text = std::fs::read_to_string(&p).with_context(|| {
            format!(
                "`{}` is missing: run the `{stage}` stage first",
                p.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("invalid `{}`", p.display()))
    }

    fn splits(&self) -> Result<([Split; 3], Vec<data::SourceReport>)> {
        let d = &self.params.data;
        let mut splits = data::load_all(&d.dir, d.max_bad_rows, d.limit)?;
        let sources = data::add_sources(&mut splits, &d.sources, d.max_bad_rows)?;
        Ok((splits, sources))
    }

    fn is_ngram(&self) -> bool {
        self.params.model.architecture == "ngram-url"
    }

    fn load_model(&self) -> Result<Trained> {
        if self.is_ngram() {
            return Ok(Trained::Ngram(NgramModel::load(&self.out)?));
        }
        let w = self.path(files::WEIGHTS);
        if !w.exists() {
            bail!("`{}` is missing: run the `train` stage first", w.display());
        }
        Ok(Trained::Cnn(
            Box::new(CharCnn::load(&w, self.params.model.dropout)?),
            Box::new(Tokenizer::load(self.path(files::TOKENIZER))?),
        ))
    }

    /// The model's name in the card and the reports.
    pub fn model_name(&self) -> &'static str {
        if self.is_ngram() {
            "phishing-url-ngram"
        } else {
            "phishing-char-cnn"
        }
    }

    /// Stage 1: load and check the splits; write the data report.
    pub fn check(&mut self) -> Result<[Split; 3]> {
        let (splits, sources) = self.splits()?;
        let mut report = data::check(&splits)?;
        for s in &sources {
            self.log(&format!(
                "source {}: train +{} legitimate +{} phishing, val +{} legitimate +{} phishing, {} dropped (in val/test), {} left out (hosted), {} skipped",
                s.file, s.train[0], s.train[1], s.val[0], s.val[1], s.dropped_in_val_or_test, s.hosted_left_out, s.skipped
            ));
        }
        report.sources = sources;
        for s in &report.splits {
            self.log(&format!(
                "{:<5} {:>6} rows: {:>6} legitimate, {:>6} phishing ({:.1}% phishing), {} skipped",
                s.name,
                s.rows,
                s.legitimate,
                s.phishing,
                s.phishing_share * 100.0,
                s.skipped.len()
            ));
            for bad in &s.skipped {
                self.log(&format!("      skipped {bad}"));
            }
        }
        self.write(files::DATA_REPORT, &serde_json::to_string_pretty(&report)?)?;
        Ok(splits)
    }

    /// Stage 2: train; write weights, tokenizer, history and its plot.
    pub fn train(&mut self, splits: &[Split; 3]) -> Result<()> {
        let params = self.params.clone();
        let progress = self.progress;
        let mut lines = Vec::new();
        let mut log = |l: &str| {
            eprintln!("{l}");
            lines.push(l.to_string());
        };
        let (history, best_epoch, seconds, calibration, quantization) =
            if let Some(np) = params.ngram.as_ref().filter(|_| self.is_ngram()) {
                let t = ngram::train(np, params.train.seed, &splits[0], &splits[1], &mut log)?;
                t.model.save(&self.out)?;
                (
                    t.history,
                    t.best_epoch,
                    t.seconds,
                    Some(t.calibration),
                    t.quantization,
                )
            } else {
                let t = train::train(&params, &splits[0], &splits[1], progress, &mut log)?;
                t.net.save(&self.path(files::WEIGHTS))?;
                t.tokenizer.save(self.path(files::TOKENIZER))?;
                (t.history, t.best_epoch, t.seconds, None, None)
            };
        for l in lines {
            let _ = writeln!(self.log, "{l}");
        }
        let n = splits[0].samples.len() * history.len();
        let train_secs: f64 = history.iter().map(|r| r.train_seconds).sum();
        let record = TrainingRecord {
            facts: TrainingFacts {
                epochs_run: history.len(),
                best_epoch,
                seconds,
                samples_per_second: n as f64 / train_secs.max(1e-9),
                peak_memory_bytes: crate::peak_memory_bytes(),
                calibration,
                quantization,
            },
            history,
        };
        self.write(files::TRAINING, &serde_json::to_string_pretty(&record)?)?;
        self.write("plots/history.svg", &plots::history(&record.history))?;
        let f = &record.facts;
        self.log(&format!(
            "trained {} epochs in {:.0} s ({:.0} samples/s, peak memory {} MiB); best epoch {}",
            f.epochs_run,
            f.seconds,
            f.samples_per_second,
            f.peak_memory_bytes
                .map_or("?".into(), |b| (b >> 20).to_string()),
            f.best_epoch
        ));
        Ok(())
    }

    /// Stage 3: score every split; write metrics, ROC and confusion-matrix plots, print a table.
    pub fn evaluate(&mut self, splits: &[Split; 3]) -> Result<BTreeMap<String, Metrics>> {
        let model = self.load_model()?;
        let threshold = self.params.train.threshold;
        let mut all = BTreeMap::new();
        for split in splits {
            let scores = model.predict(&split.urls())?;
            let targets = split.targets();
            let m = metrics::compute(&scores, &targets, threshold);
            if split.name == "test" {
                self.write(
                    "plots/roc.svg",
                    &plots::roc(&metrics::roc_curve(&scores, &targets), m.roc_auc, "test"),
                )?;
                self.write(
                    "plots/confusion-matrix.svg",
                    &plots::confusion(m.confusion_matrix, "test"),
                )?;
            }
            all.insert(split.name.to_string(), m);
        }
        self.log(&format!(
            "{:<6} {:>7} {:>9} {:>10} {:>7} {:>7} {:>8}",
            "split", "rows", "accuracy", "precision", "recall", "f1", "roc_auc"
        ));
        for (name, m) in &all {
            self.log(&format!(
                "{:<6} {:>7} {:>9.4} {:>10.4} {:>7.4} {:>7.4} {:>8.4}",
                name, m.count, m.accuracy, m.precision, m.recall, m.f1, m.roc_auc
            ));
        }
        self.write(files::METRICS, &serde_json::to_string_pretty(&all)?)?;
        Ok(all)
    }

    /// Stage 4: export ONNX, check it with tract against candle on test URLs, write its NNEF form
    /// and the model card.
    pub fn export(&mut self, splits: &[Split; 3]) -> Result<ModelCard> {
        let model = self.load_model()?;
        let p = self.params.clone();
        let onnx_path = self.path(files::ONNX);
        let nnef_path = self.path(files::NNEF);
        // Parity: the exported graph must score like the model it came from.
        let urls: Vec<&str> = splits[2].urls().into_iter().take(2000).collect();
        let ours = model.predict(&urls)?;
        let (bytes, theirs, inputs, preprocessing) = match &model {
            Trained::Cnn(net, tokenizer) => {
                let bytes =
                    onnx::export(net, p.model.sequence_length, &p.model.version, &onnx_path)?;
                let theirs = TractModel::load(&onnx_path, 500, p.model.sequence_length)?
                    .scores(tokenizer, &urls)?;
                let input = TensorSpec {
                    name: onnx::INPUT_NAME.into(),
                    dtype: "int64".into(),
                    shape: vec!["batch".into(), p.model.sequence_length.into()],
                };
                (
                    bytes,
                    theirs,
                    vec![input],
                    vec![files::TOKENIZER.to_string()],
                )
            }
            Trained::Ngram(m) => {
                let bytes = onnx::export_ngram(m, &p.model.version, &onnx_path)?;
                let theirs = onnx::tract_ngram_scores(&onnx_path, false, &m.encoder, &urls)?;
                let width = m.encoder.width();
                let inputs = onnx::NGRAM_INPUTS
                    .iter()
                    .zip(["int64", "float32"])
                    .map(|(name, dtype)| TensorSpec {
                        name: name.to_string(),
                        dtype: dtype.into(),
                        shape: vec!["batch".into(), width.into()],
                    })
                    .collect();
                let files = [
                    ngram::files::FEATURES,
                    ngram::files::KNOWN_DOMAINS,
                    ngram::files::BRANDS,
                ];
                (bytes, theirs, inputs, files.map(str::to_string).to_vec())
            }
        };
        let max_abs_diff = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs() as f64)
            .fold(0.0, f64::max);
        self.log(&format!(
            "exported `{}` ({} KiB); tract vs the trained model on {} test URLs: max |diff| = {max_abs_diff:.2e}",
            onnx_path.display(), bytes / 1024, urls.len()
        ));
        if max_abs_diff > 1e-4 {
            bail!("exported model disagrees with the trained one: max |diff| {max_abs_diff:.2e} > 1e-4");
        }
        let nnef_bytes = onnx::export_nnef(&onnx_path, &nnef_path)?;
        if let Trained::Ngram(m) = &model {
            let nnef_scores = onnx::tract_ngram_scores(&nnef_path, true, &m.encoder, &urls)?;
            let d = ours
                .iter()
                .zip(&nnef_scores)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            if d > 1e-4 {
                bail!(
                    "the NNEF export disagrees with the trained model: max |diff| {d:.2e} > 1e-4"
                );
            }
        }
        self.log(&format!(
            "exported `{}` ({} KiB): the same graph, decluttered, for the model-service",
            nnef_path.display(),
            nnef_bytes / 1024
        ));
        let training: TrainingRecord = self.read_json(files::TRAINING, "train")?;
        let card = ModelCard {
            name: self.model_name().into(),
            version: p.model.version.clone(),
            created: now_rfc3339(),
            description: if self.is_ngram() {
                "Calibrated probability that a URL is a phishing link, from its character n-grams and what its host really is (registrable domain, known sites, brands out of place, lookalikes)".into()
            } else {
                "Character-level CNN scoring how likely a URL is a phishing link".into()
            },
            inputs,
            output: TensorSpec {
                name: onnx::OUTPUT_NAME.into(),
                dtype: "float32".into(),
                shape: vec!["batch".into(), 1.into()],
            },
            labels: lib_ml::Label::ALL
                .iter()
                .map(|l| (l.index().to_string(), l.to_string()))
                .collect(),
            threshold: p.train.threshold,
            preprocessing,
            url_signals: match &model {
                Trained::Ngram(m) if m.encoder.spec().signals => Some(UrlSignalsFacts {
                    public_suffix_list: lib_ml::domain::PSL_VERSION.into(),
                    known_domains: m.encoder.analyzer().known.len(),
                    known_domains_bytes: m.encoder.analyzer().known.to_bytes().len(),
                    known_domain_tiers: m.encoder.analyzer().known.bounds(),
                    brands: m.encoder.analyzer().brands.len(),
                    signals: lib_ml::analysis::Signal::ALL
                        .iter()
                        .map(|s| s.code().to_string())
                        .collect(),
                }),
                _ => None,
            },
            data: splits
                .iter()
                .map(|s| {
                    let file = DataFile {
                        path: s
                            .path
                            .file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into(),
                        sha256: s.sha256.clone(),
                        rows: s.samples.len(),
                    };
                    (s.name.to_string(), file)
                })
                .collect(),
            metrics: self.read_json(files::METRICS, "evaluate")?,
            training: training.facts,
            frameworks: [
                ("candle-core".to_string(), CANDLE_VERSION.to_string()),
                ("lib-ml".to_string(), env!("CARGO_PKG_VERSION").to_string()),
                ("tract-onnx".to_string(), TRACT_VERSION.to_string()),
                ("onnx-opset".to_string(), onnx::OPSET.to_string()),
            ]
            .into(),
            export_parity: Parity {
                urls: urls.len(),
                max_abs_diff,
            },
            bands: Some(crate::card::Bands::from_validation(
                &model.predict(&splits[1].urls())?,
                &splits[1].targets(),
                0.99,
            )),
            params: {
                let mut shown = p.clone();
                shown.data.dir = PathBuf::from(shown.data.dir.file_name().unwrap_or_default());
                shown
            },
        };
        self.write(files::CARD, &(serde_json::to_string_pretty(&card)? + "\n"))?;
        Ok(card)
    }
}

/// One set of `holdout.json`.
#[derive(Debug, Serialize)]
pub struct HoldoutSet {
    /// Its name.
    pub name: String,
    /// What it stands for.
    pub note: String,
    /// Its file (or folder) name.
    pub source: String,
    /// Rows.
    pub rows: usize,
    /// Phishing rows.
    pub phishing: usize,
}

/// `holdout.json`
#[derive(Debug, Serialize)]
pub struct HoldoutReport {
    /// How the figures were made.
    pub protocol: String,
    /// The sets, in order.
    pub sets: Vec<HoldoutSet>,
    /// Per model, per set.
    pub models: BTreeMap<String, BTreeMap<String, holdout::SetMetrics>>,
    /// Per model, its operating threshold and the threshold giving 1% false positives on test.
    pub thresholds: BTreeMap<String, [f32; 2]>,
    /// How the baseline was trained.
    pub baseline: baseline::BaselineParams,
    /// Seconds the baseline took to train.
    pub baseline_seconds: f64,
}

impl Run {
    /// Stage `holdout`: the evaluation protocol. Scores the test split and the held-out sources
    /// (read from `extra_dir`, never used for training or selection) with the trained model and
    /// with the n-gram baseline trained here on the same training split (validation for its
    /// early stopping); writes `holdout.json` and a reliability plot per set with both labels.
    pub fn holdout(&mut self, splits: &[Split; 3], extra_dir: &Path) -> Result<HoldoutReport> {
        let model = self.load_model()?;
        let mut sets = vec![holdout::EvalSet {
            name: "test".into(),
            path: splits[2].path.clone(),
            note: "in-distribution test split (Ebbu2017, 2017)",
            samples: splits[2].samples.clone(),
        }];
        sets.extend(holdout::load_held_out(&self.params.data.dir, extra_dir)?);
        let started = std::time::Instant::now();
        let base = baseline::NgramBaseline::train(
            baseline::BaselineParams::default(),
            &splits[0].urls(),
            &splits[0].targets(),
            &splits[1].urls(),
            &splits[1].targets(),
        )?;
        let baseline_seconds = started.elapsed().as_secs_f64();
        self.log(&format!(
            "n-gram baseline: {} epochs, best {}, {baseline_seconds:.0} s",
            base.epochs_run, base.best_epoch
        ));
        let model_name = format!(
            "{} {}",
            self.model_name().trim_start_matches("phishing-"),
            self.params.model.version
        );
        let base_name = "ngram-baseline".to_string();
        // The ablation: the same architecture, data and settings without the URL signals.
        let ablation = match (&model, &self.params.ngram) {
            (Trained::Ngram(_), Some(np)) if np.signals => {
                let np = crate::params::NgramParams {
                    signals: false,
                    ..np.clone()
                };
                let mut quiet = |_: &str| {};
                let t = ngram::train(
                    &np,
                    self.params.train.seed,
                    &splits[0],
                    &splits[1],
                    &mut quiet,
                )?;
                Some(t.model)
            }
            _ => None,
        };
        let ablation_name = format!("{model_name} without url signals");
        let mut names = vec![model_name.clone(), base_name.clone()];
        if ablation.is_some() {
            names.push(ablation_name.clone());
        }
        let mut models = BTreeMap::new();
        let mut thresholds = BTreeMap::new();
        let mut curves: BTreeMap<String, Vec<plots::Curve>> = BTreeMap::new();
        for name in &names {
            let score = |urls: &[&str]| -> Result<Vec<f32>> {
                if *name == base_name {
                    Ok(base.scores(urls))
                } else if *name == ablation_name {
                    Ok(ablation
                        .as_ref()
                        .map(|m| m.scores(urls))
                        .unwrap_or_default())
                } else {
                    model.predict(urls)
                }
            };
            let threshold = self.params.train.threshold;
            // Every set scored once; the first is the test split, whose legitimate rows set the
            // threshold that gives 1% false positives.
            let mut scored = Vec::with_capacity(sets.len());
            for set in &sets {
                let urls: Vec<&str> = set.samples.iter().map(|s| s.url.as_str()).collect();
                let targets: Vec<f32> =
                    set.samples.iter().map(|s| s.label.index() as f32).collect();
                scored.push((score(&urls)?, targets));
            }
            let (test_scores, test_targets) = &scored[0];
            let legit: Vec<f32> = test_scores
                .iter()
                .zip(test_targets)
                .filter(|(_, t)| **t < 0.5)
                .map(|(s, _)| *s)
                .collect();
            let at_fpr = holdout::threshold_at_fpr(&legit, 0.01);
            thresholds.insert(name.clone(), [threshold, at_fpr]);
            let mut per_set = BTreeMap::new();
            for (set, (scores, targets)) in sets.iter().zip(&scored) {
                let m = holdout::evaluate(scores, targets, threshold, at_fpr);
                if !m.reliability.is_empty() {
                    curves.entry(set.name.clone()).or_default().push((
                        name.clone(),
                        m.reliability
                            .iter()
                            .map(|b| (b.mean_score, b.phishing_share))
                            .collect(),
                    ));
                }
                per_set.insert(set.name.clone(), m);
            }
            models.insert(name.clone(), per_set);
        }
        for (set, c) in &curves {
            self.write(
                &format!("plots/reliability-{set}.svg"),
                &plots::reliability(set, c),
            )?;
        }
        let fmt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.4}"));
        self.log(&format!(
            "{:<20} {:<40} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "set",
            "model",
            "rows",
            "accuracy",
            "roc_auc",
            "pr_auc",
            "fpr",
            "detect",
            "det@1%",
            "ece"
        ));
        for set in &sets {
            for (model, per_set) in &models {
                let m = &per_set[&set.name];
                self.log(&format!(
                    "{:<20} {:<40} {:>6} {:>8.4} {:>8} {:>8} {:>8} {:>8.4} {:>8.4} {:>8}",
                    set.name,
                    model,
                    m.count,
                    m.accuracy,
                    fmt(m.roc_auc),
                    fmt(m.pr_auc),
                    fmt(m.false_positive_rate),
                    m.detection_rate,
                    m.detection_rate_at_test_fpr_1pct,
                    fmt(m.ece)
                ));
            }
        }
        let report = HoldoutReport {
            protocol: "holdout.rs: every model trained on the same training split (the params' sources \
                       included; validation for early stopping and calibration); held-out sources never used \
                       for training or selection; detection at the operating threshold and at the threshold \
                       giving 1% false positives on the test split; ECE over 15 bins of the scores as served \
                       (the baseline's are uncalibrated)"
                .into(),
            sets: sets
                .iter()
                .map(|s| HoldoutSet {
                    name: s.name.clone(),
                    note: s.note.into(),
                    source: s.path.file_name().unwrap_or_default().to_string_lossy().into(),
                    rows: s.samples.len(),
                    phishing: lib_ml::class_counts(&s.samples)[1],
                })
                .collect(),
            models,
            thresholds,
            baseline: base.params().clone(),
            baseline_seconds,
        };
        self.write(
            files::HOLDOUT,
            &(serde_json::to_string_pretty(&report)? + "\n"),
        )?;
        Ok(report)
    }
}

/// The current UTC time as RFC 3339 (seconds precision).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
