//! The training loop: shuffled mini-batches, Adam, dropout, early stopping on validation loss with
//! the best weights kept.

use crate::augment;
use crate::data::Split;
use crate::model::{bce_with_logits, sigmoid, Adam, CharCnn};
use crate::params::Params;
use anyhow::Result;
use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use lib_ml::Tokenizer;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What one epoch did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss (with dropout).
    pub train_loss: f64,
    /// Training accuracy (with dropout).
    pub train_accuracy: f64,
    /// Validation loss (no dropout).
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Wall time of the training pass.
    pub train_seconds: f64,
    /// Training throughput.
    pub samples_per_second: f64,
}

/// A trained network and how it got there.
pub struct Trained {
    /// The network with the best epoch's weights.
    pub net: CharCnn,
    /// The tokenizer fitted on the training split.
    pub tokenizer: Tokenizer,
    /// One record per epoch run.
    pub history: Vec<EpochRecord>,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: usize,
    /// Wall time of the whole training, validation included.
    pub seconds: f64,
}

/// Mean loss and accuracy of `net` on a split, dropout off.
pub fn evaluate_loss(net: &CharCnn, tokenizer: &Tokenizer, split: &Split) -> Result<(f64, f64)> {
    let urls = split.urls();
    let targets = split.targets();
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    let mut ids = Vec::new();
    for (chunk, t) in urls.chunks(512).zip(targets.chunks(512)) {
        tokenizer.encode_batch(chunk, &mut ids);
        let x = Tensor::from_slice(&ids, (chunk.len(), tokenizer.max_len()), &Device::Cpu)?;
        let y = Tensor::from_slice(t, (chunk.len(), 1), &Device::Cpu)?;
        let logits = net.forward(&x, None)?;
        loss_sum += bce_with_logits(&logits, &y)?.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        let s = sigmoid(&logits)?.flatten_all()?.to_vec1::<f32>()?;
        correct += s
            .iter()
            .zip(t)
            .filter(|(s, t)| (**s >= 0.5) == (**t >= 0.5))
            .count();
    }
    Ok((
        loss_sum / urls.len() as f64,
        correct as f64 / urls.len() as f64,
    ))
}

/// Trains on `train`, early-stopping on `val`. `log` receives one line per epoch.
pub fn train(
    params: &Params,
    train: &Split,
    val: &Split,
    progress: bool,
    log: &mut dyn FnMut(&str),
) -> Result<Trained> {
    let start = Instant::now();
    let tp = &params.train;
    let tokenizer = Tokenizer::fit_with_max_len(train.urls(), params.model.sequence_length);
    let mut rng = StdRng::seed_from_u64(tp.seed);
    let net = CharCnn::new(tokenizer.vocab_size(), &params.model, &mut rng)?;
    let mut opt = Adam::new(
        net.named_vars()
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect(),
        tp.learning_rate,
    )?;

    // Encode the training split once; batches gather rows from this buffer.
    let len = tokenizer.max_len();
    let mut all_ids = Vec::new();
    tokenizer.encode_batch(&train.urls(), &mut all_ids);
    let targets = train.targets();
    let mut order: Vec<usize> = (0..train.samples.len()).collect();

    let (mut best, mut best_epoch, mut history) = (None::<(f64, Vec<Tensor>)>, 0, Vec::new());
    log(&format!(
        "training on {} URLs (vocabulary {}), validating on {}; batch {}, lr {}, patience {}, seed {}",
        train.samples.len(), tokenizer.vocab_size(), val.samples.len(), tp.batch_size, tp.learning_rate, tp.patience, tp.seed
    ));
    for epoch in 1..=tp.epochs {
        order.shuffle(&mut rng);
        let bar = if progress {
            ProgressBar::new(order.len() as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
            )?
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", tp.epochs));
        let t0 = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let (mut ids, mut ys) = (Vec::new(), Vec::new());
        for batch in order.chunks(tp.batch_size) {
            ids.clear();
            ys.clear();
            for &i in batch {
                match augment::maybe_rewrite(&train.samples[i].url, tp.augment, &mut rng) {
                    Some(url) => {
                        let start = ids.len();
                        ids.resize(start + len, 0);
                        tokenizer.encode_into(&url, &mut ids[start..]);
                    }
                    None => ids.extend_from_slice(&all_ids[i * len..(i + 1) * len]),
                }
                ys.push(targets[i]);
            }
            let x = Tensor::from_slice(&ids, (batch.len(), len), &Device::Cpu)?;
            let y = Tensor::from_slice(&ys, (batch.len(), 1), &Device::Cpu)?;
            let logits = net.forward(&x, Some(&mut rng))?;
            let loss = bce_with_logits(&logits, &y)?;
            opt.backward_step(&loss)?;
            let s = logits.flatten_all()?.to_vec1::<f32>()?;
            correct += s
                .iter()
                .zip(&ys)
                .filter(|(l, t)| (**l >= 0.0) == (**t >= 0.5))
                .count();
            loss_sum += loss.to_scalar::<f32>()? as f64 * batch.len() as f64;
            seen += batch.len();
            bar.inc(batch.len() as u64);
            bar.set_message(format!(
                "loss {:.4} acc {:.4}",
                loss_sum / seen as f64,
                correct as f64 / seen as f64
            ));
        }
        let train_seconds = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let (val_loss, val_accuracy) = evaluate_loss(&net, &tokenizer, val)?;
        let rec = EpochRecord {
            epoch,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            val_loss,
            val_accuracy,
            train_seconds,
            samples_per_second: seen as f64 / train_seconds,
        };
        log(&format!(
            "epoch {epoch:>2}: loss {:.4} acc {:.4} | val_loss {:.4} val_acc {:.4} | {:.0} s, {:.0} samples/s",
            rec.train_loss, rec.train_accuracy, rec.val_loss, rec.val_accuracy, rec.train_seconds, rec.samples_per_second
        ));
        history.push(rec);
        if best.as_ref().is_none_or(|(l, _)| val_loss < *l) {
            best = Some((val_loss, net.snapshot()?));
            best_epoch = epoch;
        } else if epoch - best_epoch >= tp.patience {
            log(&format!(
                "early stop: val_loss has not improved for {} epochs",
                tp.patience
            ));
            break;
        } else if tp.lr_plateau_factor < 1.0 {
            let lr = opt.learning_rate() * tp.lr_plateau_factor;
            opt.set_learning_rate(lr);
            log(&format!(
                "val_loss did not improve: learning rate now {lr:.2e}"
            ));
        }
    }
    if let Some((loss, weights)) = best {
        net.restore(&weights)?;
        log(&format!(
            "keeping the weights of epoch {best_epoch} (val_loss {loss:.4})"
        ));
    }
    Ok(Trained {
        net,
        tokenizer,
        history,
        best_epoch,
        seconds: start.elapsed().as_secs_f64(),
    })
}
