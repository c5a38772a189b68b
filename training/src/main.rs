//! `model-training`: check data → train → evaluate → export, one stage at a time or all at once.

use anyhow::Result;
use clap::{Parser, Subcommand};
use model_training::params::Params;
use model_training::pipeline::{files, Run};
use std::path::PathBuf;
use std::process::ExitCode;

/// Train, evaluate and export the phishing-URL char-CNN.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Params file (TOML) driving the run.
    #[arg(long, default_value = "training/params.toml", global = true)]
    params: PathBuf,
    /// Data directory with train.txt, val.txt, test.txt (overrides the params file).
    #[arg(long, env = "PHISHING_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Directory of the held-out sources for `holdout` (default: `phishing-extra` beside the data
    /// directory).
    #[arg(long, env = "PHISHING_EXTRA_DIR", global = true)]
    extra_dir: Option<PathBuf>,
    /// Output directory for every artifact (`model` to release).
    #[arg(long, default_value = "training/out", global = true)]
    out: PathBuf,
    /// No progress bars (logs only).
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    stage: Stage,
}

#[derive(Subcommand, Clone, Copy, PartialEq)]
enum Stage {
    /// Load and check the data: counts, class balance, malformed rows, train/test overlap.
    Check,
    /// Train the network (early stopping on validation loss).
    Train,
    /// Score every split: metrics.json, ROC and confusion-matrix plots.
    Evaluate,
    /// Export ONNX, check it with tract, write its NNEF form and the model card.
    Export,
    /// The evaluation protocol: the trained model and the n-gram baseline on the test split and
    /// the held-out sources (holdout.json, reliability plots).
    Holdout,
    /// Score URLs (one a line on stdin) with the trained n-gram model in the output directory:
    /// score, registrable domain and signals, tab-separated (no data needed).
    Score,
    /// Only rewrite `model.nnef.tar` from the `model.onnx` in the output directory (no data needed).
    Nnef,
    /// Every stage in order.
    All,
}

fn run(cli: Cli) -> Result<()> {
    if cli.stage == Stage::Nnef {
        let onnx = cli.out.join(files::ONNX);
        let nnef = cli.out.join(files::NNEF);
        let bytes = model_training::onnx::export_nnef(&onnx, &nnef)?;
        println!("wrote {} ({bytes} bytes)", nnef.display());
        return Ok(());
    }
    if cli.stage == Stage::Score {
        use std::io::Write;
        let model = model_training::ngram::NgramModel::load(&cli.out)?;
        let mut out = std::io::stdout().lock();
        for line in std::io::stdin().lines() {
            let url = line?;
            let (features, a) = model.encoder.features_with_analysis(&url);
            let signals: Vec<&str> = a.signals().iter().map(|s| s.code()).collect();
            let written = writeln!(
                out,
                "{:.4}\t{}\t{}\t{}",
                model.probability(&features),
                a.registrable_domain.as_deref().unwrap_or("-"),
                signals.join(","),
                url
            );
            // A reader that stops early (`| head`) ends the run, not a panic.
            if written.is_err() {
                break;
            }
        }
        return Ok(());
    }
    let mut params = Params::load(&cli.params)?;
    if let Some(dir) = cli.data_dir {
        params.data.dir = dir;
    }
    let extra_dir = cli.extra_dir.unwrap_or_else(|| {
        params
            .data
            .dir
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("phishing-extra")
    });
    let fresh_log = matches!(cli.stage, Stage::Train | Stage::All);
    let mut run = Run::new(params, &cli.out, !cli.quiet, fresh_log)?;
    let splits = run.check()?;
    if cli.stage == Stage::Holdout {
        run.holdout(&splits, &extra_dir)?;
        return Ok(());
    }
    if matches!(cli.stage, Stage::Train | Stage::All) {
        run.train(&splits)?;
    }
    if matches!(cli.stage, Stage::Evaluate | Stage::All) {
        run.evaluate(&splits)?;
    }
    if matches!(cli.stage, Stage::Export | Stage::All) {
        let card = run.export(&splits)?;
        let t = &card.metrics["test"];
        run.log(&format!(
            "released {} {}: test accuracy {:.4}, ROC-AUC {:.4} -> {}",
            card.name,
            card.version,
            t.accuracy,
            t.roc_auc,
            cli.out.display()
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    model_training::tune_allocator();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
