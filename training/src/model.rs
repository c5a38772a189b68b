//! The char-CNN in candle: definition, Keras-style initialisation, forward pass, Adam, persistence.

use crate::kernels::{ConvTanh, EmbedConvTanh, MaxPool3};
use crate::params::ModelParams;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use lib_ml::Tokenizer;
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::HashMap;
use std::path::Path;

/// One convolution block of the original network: kernel size, 'same' padding, max-pool after it.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    /// Kernel width.
    pub kernel: usize,
    /// Zero padding on each side (0 = Keras 'valid', (k-1)/2 = 'same').
    pub padding: usize,
    /// Whether MaxPool1D(3) follows.
    pub pool: bool,
}

/// The original REMLA architecture: Conv1D 128 x {3,7,5,3,5,3,3}, tanh, MaxPool(3) after the 1st,
/// 4th, 6th and 7th. The first convolution is 'valid', the others 'same'.
pub const ORIGINAL: [ConvSpec; 7] = [
    ConvSpec {
        kernel: 3,
        padding: 0,
        pool: true,
    },
    ConvSpec {
        kernel: 7,
        padding: 3,
        pool: false,
    },
    ConvSpec {
        kernel: 5,
        padding: 2,
        pool: false,
    },
    ConvSpec {
        kernel: 3,
        padding: 1,
        pool: true,
    },
    ConvSpec {
        kernel: 5,
        padding: 2,
        pool: false,
    },
    ConvSpec {
        kernel: 3,
        padding: 1,
        pool: true,
    },
    ConvSpec {
        kernel: 3,
        padding: 1,
        pool: true,
    },
];

/// The sequence length left after the convolutions and pools.
pub fn output_length(sequence_length: usize) -> usize {
    ORIGINAL.iter().fold(sequence_length, |len, c| {
        let len = len + 2 * c.padding + 1 - c.kernel;
        if c.pool {
            len / 3
        } else {
            len
        }
    })
}

/// The network's parameters.
pub struct CharCnn {
    /// `[vocab, embedding_dim]`
    pub embedding: Var,
    /// Per block: weight `[filters, in, kernel]` and bias `[filters]`.
    pub convs: Vec<(Var, Var)>,
    /// `[1, filters * output_length]`
    pub dense_w: Var,
    /// `[1]`
    pub dense_b: Var,
    /// Dropout rate in training.
    pub dropout: f32,
}

fn uniform(rng: &mut StdRng, shape: &[usize], limit: f32) -> Result<Var> {
    let n = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.gen_range(-limit..limit)).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(
        data,
        shape,
        &Device::Cpu,
    )?)?)
}

impl CharCnn {
    /// A freshly initialised network, as Keras would: embedding U(-0.05, 0.05), Glorot-uniform
    /// kernels, zero biases.
    pub fn new(vocab_size: usize, p: &ModelParams, rng: &mut StdRng) -> Result<CharCnn> {
        let embedding = uniform(rng, &[vocab_size, p.embedding_dim], 0.05)?;
        let mut convs = Vec::new();
        let mut c_in = p.embedding_dim;
        for spec in ORIGINAL {
            let limit = (6.0 / ((c_in + p.filters) * spec.kernel) as f32).sqrt();
            convs.push((
                uniform(rng, &[p.filters, c_in, spec.kernel], limit)?,
                Var::zeros(p.filters, DType::F32, &Device::Cpu)?,
            ));
            c_in = p.filters;
        }
        let flat = p.filters * output_length(p.sequence_length);
        Ok(CharCnn {
            embedding,
            dense_w: uniform(rng, &[1, flat], (6.0 / (flat + 1) as f32).sqrt())?,
            dense_b: Var::zeros(1, DType::F32, &Device::Cpu)?,
            convs,
            dropout: p.dropout,
        })
    }

    /// All parameters with stable names (the safetensors keys).
    pub fn named_vars(&self) -> Vec<(String, &Var)> {
        let mut v = vec![("embedding".to_string(), &self.embedding)];
        for (i, (w, b)) in self.convs.iter().enumerate() {
            v.push((format!("conv{i}.weight"), w));
            v.push((format!("conv{i}.bias"), b));
        }
        v.push(("dense.weight".into(), &self.dense_w));
        v.push(("dense.bias".into(), &self.dense_b));
        v
    }

    /// Logits `[batch, 1]` for ids `[batch, sequence_length]` (u32). With `rng`, dropout is on.
    pub fn forward(&self, ids: &Tensor, mut rng: Option<&mut StdRng>) -> Result<Tensor> {
        let (batch, len) = ids.dims2()?;
        let mut ids = ids.flatten_all()?.to_vec1::<u32>()?;
        // Activations are channels last, [B, L, C], the layout the kernels work in. The first
        // block takes the embedding lookup with it (see `EmbedConvTanh`).
        let mut h: Option<Tensor> = None;
        for ((w, b), spec) in self.convs.iter().zip(ORIGINAL) {
            let (w, b, padding) = (w.as_tensor(), b.as_tensor(), spec.padding);
            let mut out = match h {
                None => {
                    // Only the first block reads the ids: hand them over, no copy.
                    let op = EmbedConvTanh {
                        ids: std::mem::take(&mut ids),
                        batch,
                        len,
                        padding,
                    };
                    self.embedding.as_tensor().apply_op3(w, b, op)?
                }
                Some(x) => x.apply_op3(w, b, ConvTanh { padding })?,
            };
            if spec.pool {
                out = out.apply_op1(MaxPool3)?;
            }
            if let Some(rng) = rng.as_deref_mut() {
                out = dropout(&out, self.dropout, rng)?;
            }
            h = Some(out);
        }
        let h = h.context("the network has no convolution blocks")?;
        // Flatten channel-major ([B, C*L], as the exported graph and the saved dense weight
        // expect), then the dense layer.
        let flat = h.transpose(1, 2)?.flatten_from(1)?;
        Ok(flat
            .matmul(&self.dense_w.as_tensor().t()?)?
            .broadcast_add(self.dense_b.as_tensor())?)
    }

    /// Phishing scores (sigmoid of the logits) for `urls`, in batches, dropout off.
    pub fn predict(&self, tokenizer: &Tokenizer, urls: &[&str], batch: usize) -> Result<Vec<f32>> {
        let mut scores = Vec::with_capacity(urls.len());
        let mut ids = Vec::new();
        for chunk in urls.chunks(batch.max(1)) {
            tokenizer.encode_batch(chunk, &mut ids);
            let x = Tensor::from_slice(&ids, (chunk.len(), tokenizer.max_len()), &Device::Cpu)?;
            let logits = self.forward(&x, None)?;
            scores.extend(sigmoid(&logits)?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(scores)
    }

    /// Saves the parameters as safetensors.
    pub fn save(&self, path: &Path) -> Result<()> {
        let map: HashMap<String, Tensor> = self
            .named_vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        candle_core::safetensors::save(&map, path)
            .with_context(|| format!("failed to write weights `{}`", path.display()))
    }

    /// Loads parameters saved by [`save`](Self::save).
    pub fn load(path: &Path, dropout: f32) -> Result<CharCnn> {
        let mut map = candle_core::safetensors::load(path, &Device::Cpu)
            .with_context(|| format!("failed to read weights `{}`", path.display()))?;
        let mut take = |name: &str| -> Result<Var> {
            let t = map
                .remove(name)
                .with_context(|| format!("weights `{}` lack tensor `{name}`", path.display()))?;
            Ok(Var::from_tensor(&t)?)
        };
        let embedding = take("embedding")?;
        let convs = (0..ORIGINAL.len())
            .map(|i| {
                Ok((
                    take(&format!("conv{i}.weight"))?,
                    take(&format!("conv{i}.bias"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CharCnn {
            embedding,
            convs,
            dense_w: take("dense.weight")?,
            dense_b: take("dense.bias")?,
            dropout,
        })
    }

    /// Copies of the current parameter values (for keeping the best epoch's weights).
    pub fn snapshot(&self) -> Result<Vec<Tensor>> {
        self.named_vars()
            .iter()
            .map(|(_, v)| Ok(v.as_tensor().copy()?))
            .collect()
    }

    /// Restores values taken by [`snapshot`](Self::snapshot).
    pub fn restore(&self, values: &[Tensor]) -> Result<()> {
        for ((_, var), value) in self.named_vars().iter().zip(values) {
            var.set(value)?;
        }
        Ok(())
    }
}

/// Inverted dropout with a seeded mask, so runs are reproducible (candle's CPU RNG cannot be seeded).
/// The mask is drawn in parallel, in fixed chunks with their own generator seeded from `rng`, so
/// it does not depend on the number of threads.
fn dropout(h: &Tensor, rate: f32, rng: &mut StdRng) -> Result<Tensor> {
    use rand::{RngCore, SeedableRng};
    use rayon::prelude::*;
    if rate == 0.0 {
        return Ok(h.clone());
    }
    const CHUNK: usize = 1 << 14;
    let keep = 1.0 / (1.0 - rate);
    // P(u32 < threshold) = rate, to within 2^-32.
    let threshold = (f64::from(rate) * 4_294_967_296.0) as u32;
    let seed: u64 = rng.gen();
    let mut mask = vec![0f32; h.elem_count()];
    mask.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut r =
                StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for m in chunk {
                *m = if r.next_u32() < threshold { 0.0 } else { keep };
            }
        });
    Ok((h * Tensor::from_vec(mask, h.shape(), h.device())?)?)
}

/// Element-wise logistic function.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    Ok((x.neg()?.exp()? + 1.0)?.recip()?)
}

/// Mean binary cross-entropy of `logits` against 0/1 `targets`, computed stably.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    // max(x, 0) - x*y + log(1 + exp(-|x|))
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok((logits.relu()? - (logits * targets)?)?
        .add(&softplus)?
        .mean_all()?)
}

/// Adam (Keras defaults: beta1 0.9, beta2 0.999, epsilon 1e-7).
pub struct Adam {
    lr: f64,
    step: i32,
    state: Vec<(Var, Tensor, Tensor)>,
}

impl Adam {
    /// An optimiser over `vars`.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Adam> {
        let state = vars
            .into_iter()
            .map(|v| {
                let z = v.as_tensor().zeros_like()?;
                Ok((v, z.clone(), z))
            })
            .collect::<Result<_>>()?;
        Ok(Adam { lr, step: 0, state })
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate (for later steps; the moments are kept).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// One step down the gradient of `loss`.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-7f64);
        let grads = loss.backward()?;
        self.step += 1;
        let lr_t = self.lr * (1.0 - b2.powi(self.step)).sqrt() / (1.0 - b1.powi(self.step));
        for (var, m, v) in &mut self.state {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            // Detached, or the moments would chain every step's graph to the next and memory
            // would grow without bound.
            let g = g.detach();
            *m = ((&*m * b1)? + (&g * (1.0 - b1))?)?;
            *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = (&*m / (v.sqrt()? + eps)?)?;
            var.set(&(var.as_tensor() - (update * lr_t)?)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn params() -> ModelParams {
        ModelParams {
            architecture: "original".into(),
            sequence_length: 200,
            embedding_dim: 50,
            filters: 128,
            dropout: 0.2,
            version: "0".into(),
        }
    }

    #[test]
    fn original_architecture_ends_with_two_positions_of_128_filters() {
        assert_eq!(output_length(200), 2);
    }

    #[test]
    fn forward_gives_one_logit_per_url() -> Result<()> {
        let mut rng = StdRng::seed_from_u64(1);
        let net = CharCnn::new(40, &params(), &mut rng)?;
        let ids = Tensor::zeros((3, 200), DType::U32, &Device::Cpu)?;
        assert_eq!(net.forward(&ids, None)?.dims(), &[3, 1]);
        assert_eq!(net.forward(&ids, Some(&mut rng))?.dims(), &[3, 1]);
        Ok(())
    }

    #[test]
    fn same_seed_gives_same_initial_weights() -> Result<()> {
        let a = CharCnn::new(40, &params(), &mut StdRng::seed_from_u64(7))?;
        let b = CharCnn::new(40, &params(), &mut StdRng::seed_from_u64(7))?;
        let diff = (a.dense_w.as_tensor() - b.dense_w.as_tensor())?
            .abs()?
            .sum_all()?
            .to_scalar::<f32>()?;
        assert_eq!(diff, 0.0);
        Ok(())
    }

    #[test]
    fn bce_matches_the_formula() -> Result<()> {
        let x = Tensor::new(&[[2.0f32], [-1.0]], &Device::Cpu)?;
        let y = Tensor::new(&[[1.0f32], [0.0]], &Device::Cpu)?;
        let got = bce_with_logits(&x, &y)?.to_scalar::<f32>()?;
        let s = |z: f32| 1.0 / (1.0 + (-z).exp());
        let want = (-(s(2.0)).ln() - (1.0 - s(-1.0)).ln()) / 2.0;
        assert!((got - want).abs() < 1e-6, "found {got} vs expected {want}");
        Ok(())
    }

    // Guards the hand-written backward passes of `kernels` (candle's own conv1d and max-pool
    // gradients are wrong on CPU): autograd must agree with central finite differences.
    #[test]
    fn gradients_match_finite_differences() -> Result<()> {
        let mut p = params();
        (p.sequence_length, p.embedding_dim, p.filters, p.dropout) = (100, 3, 4, 0.0);
        let mut rng = StdRng::seed_from_u64(1);
        let net = CharCnn::new(10, &p, &mut rng)?;
        let ids: Vec<u32> = (0..2 * 100).map(|_| rng.gen_range(0..10u32)).collect();
        let x = Tensor::from_vec(ids, (2, 100), &Device::Cpu)?;
        let y = Tensor::new(&[[0f32], [1.0]], &Device::Cpu)?;
        let loss = |n: &CharCnn| -> Result<f64> {
            Ok(bce_with_logits(&n.forward(&x, None)?, &y)?.to_scalar::<f32>()? as f64)
        };
        let grads = bce_with_logits(&net.forward(&x, None)?, &y)?.backward()?;
        let mut checked = 0;
        // The embedding is left out: one id feeds many max-pool windows, so a finite step
        // crosses max-pool kinks and the estimate is unreliable.
        for (name, var) in net.named_vars().into_iter().skip(1) {
            let g = grads
                .get(var.as_tensor())
                .expect("every parameter has a gradient")
                .flatten_all()?
                .to_vec1::<f32>()?;
            let orig = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            let shape = var.as_tensor().shape().clone();
            for i in [0, orig.len() / 2, orig.len() - 1] {
                let eps = 5e-4f32;
                let at = |d: f32| -> Result<f64> {
                    let mut v = orig.clone();
                    v[i] += d;
                    var.set(&Tensor::from_vec(v, shape.clone(), &Device::Cpu)?)?;
                    loss(&net)
                };
                let numeric = (at(eps)? - at(-eps)?) / (2.0 * eps as f64);
                var.set(&Tensor::from_vec(
                    orig.clone(),
                    shape.clone(),
                    &Device::Cpu,
                )?)?;
                let diff = (numeric - g[i] as f64).abs();
                assert!(
                    diff <= 1e-3 + 0.02 * numeric.abs(),
                    "{name}[{i}]: found {} vs expected {numeric}",
                    g[i]
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 3 * 16);
        Ok(())
    }

    #[test]
    fn adam_steps_reduce_the_loss_on_a_tiny_batch() -> Result<()> {
        let mut rng = StdRng::seed_from_u64(3);
        let mut p = params();
        p.filters = 8;
        let net = CharCnn::new(10, &p, &mut rng)?;
        let ids: Vec<u32> = (0..4 * 200)
            .map(|i| (i % 7 + (i / 200) * 2) as u32 % 10)
            .collect();
        let x = Tensor::from_vec(ids, (4, 200), &Device::Cpu)?;
        let y = Tensor::new(&[[0f32], [1.0], [0.0], [1.0]], &Device::Cpu)?;
        let mut opt = Adam::new(
            net.named_vars()
                .into_iter()
                .map(|(_, v)| v.clone())
                .collect(),
            1e-2,
        )?;
        let first = bce_with_logits(&net.forward(&x, None)?, &y)?.to_scalar::<f32>()?;
        for _ in 0..20 {
            opt.backward_step(&bce_with_logits(&net.forward(&x, None)?, &y)?)?;
        }
        let last = bce_with_logits(&net.forward(&x, None)?, &y)?.to_scalar::<f32>()?;
        assert!(last < first * 0.5, "loss went from {first} to {last}");
        Ok(())
    }
}
