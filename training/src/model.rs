//! The char-CNN in candle: definition, Keras-style initialisation, forward pass, Adam, persistence.

use crate::params::ModelParams;
use anyhow::{Context, Result};
use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Storage, Tensor, Var};
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
        // Embedding lookup -> [B, L, E] -> channels first [B, E, L] for conv1d.
        let emb = self.embedding.as_tensor();
        let mut h = emb
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((batch, len, emb.dim(1)?))?
            .transpose(1, 2)?
            .contiguous()?;
        for ((w, b), spec) in self.convs.iter().zip(ORIGINAL) {
            // Pad explicitly: the convolution's backward pass then takes candle's fast col2im
            // path (a padded transposed convolution runs a direct loop several times slower).
            if spec.padding > 0 {
                h = h.pad_with_zeros(2, spec.padding, spec.padding)?;
            }
            h = h
                .apply_op2(w.as_tensor(), Conv1dValid)?
                .broadcast_add(&b.as_tensor().reshape((1, (), 1))?)?
                .tanh()?;
            if spec.pool {
                h = max_pool3(&h)?;
            }
            if let Some(rng) = rng.as_deref_mut() {
                h = dropout(&h, self.dropout, rng)?;
            }
        }
        // Flatten channel-major ([B, C*L]), then the dense layer.
        let flat = h.flatten_from(1)?;
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

/// A stride-1, unpadded `conv1d` whose backward pass is computed here.
///
/// candle's own conv1d backward is wrong on CPU (0.8 to 0.11): the kernel gradient runs a
/// convolution with a transposed (non-contiguous) kernel, and candle's im2col path then multiplies
/// by the original strides instead of the contiguous copy it made; the input gradient of an
/// unpadded convolution goes through a col2im path that is wrong as well. Here both are computed
/// with candle's forward convolution on contiguous operands, which is right. The
/// finite-difference test (`gradients_match_finite_differences`) guards this.
struct Conv1dValid;

fn cpu_tensor(s: &CpuStorage, l: &Layout) -> candle_core::Result<Tensor> {
    let data = s.as_slice::<f32>()?;
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("conv1d expects contiguous inputs".into()))?;
    Tensor::from_slice(&data[start..end], l.shape(), &Device::Cpu)
}

impl CustomOp2 for Conv1dValid {
    fn name(&self) -> &'static str {
        "conv1d-valid"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        // The forward pass of candle's conv1d is right when the kernel is contiguous.
        into_storage(cpu_tensor(s1, l1)?.conv1d(&cpu_tensor(s2, l2)?, 0, 1, 1, 1)?)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (x, w, grad) = (x.detach(), w.detach(), grad.detach().contiguous()?);
        // dL/dx: the "full" convolution of the output gradient with the flipped, transposed kernel.
        // (candle's conv_transpose1d is wrong on this unpadded path too, so it is not used.)
        let k = w.dim(2)?;
        let reversed = Tensor::from_vec((0..k as u32).rev().collect::<Vec<_>>(), k, w.device())?;
        let w_flipped = w
            .index_select(&reversed, 2)?
            .transpose(0, 1)?
            .contiguous()?;
        let grad_x = grad
            .pad_with_zeros(2, k - 1, k - 1)?
            .conv1d(&w_flipped, 0, 1, 1, 1)?;
        // dL/dw[o, i, k] = sum_b sum_t grad[b, o, t] * x[b, i, t + k]: a convolution over the batch
        // axis, with both operands made contiguous first.
        let grad_w = x
            .transpose(0, 1)?
            .contiguous()?
            .conv1d(&grad.transpose(0, 1)?.contiguous()?, 0, 1, 1, 1)?
            .transpose(0, 1)?
            .contiguous()?;
        Ok((Some(grad_x), Some(grad_w)))
    }
}

/// MaxPool1D(3) with Keras' 'valid' padding on `[B, C, L]`: a trailing remainder is dropped.
///
/// A custom op because the gradient must go to one maximum per window, as in Keras. Reductions in
/// candle send it to every tied maximum, and ties are everywhere in the zero-padded part of a
/// URL's sequence; candle's `max_pool2d` backward is wrong here besides.
struct MaxPool3;

fn pool_windows(x: &Tensor) -> candle_core::Result<(Tensor, usize)> {
    let (b, c, l) = x.dims3()?;
    let lo = l / 3;
    Ok((
        x.narrow(2, 0, lo * 3)?
            .contiguous()?
            .reshape((b, c, lo, 3))?,
        l - lo * 3,
    ))
}

impl candle_core::CustomOp1 for MaxPool3 {
    fn name(&self) -> &'static str {
        "max-pool-3"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = pool_windows(&cpu_tensor(s, l)?)?.0.max(3)?;
        into_storage(y)
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (windows, remainder) = pool_windows(&x.detach())?;
        let (b, c, lo, _) = windows.dims4()?;
        // One-hot of the first maximum in each window, times the window's output gradient.
        let first_max = windows.argmax_keepdim(3)?;
        let positions = Tensor::arange(0u32, 3, x.device())?.reshape((1, 1, 1, 3))?;
        let mask = first_max.broadcast_eq(&positions)?.to_dtype(DType::F32)?;
        let g = mask
            .broadcast_mul(&grad.detach().unsqueeze(3)?)?
            .reshape((b, c, lo * 3))?;
        Ok(Some(g.pad_with_zeros(2, 0, remainder)?))
    }
}

fn into_storage(y: Tensor) -> candle_core::Result<(CpuStorage, Shape)> {
    let y = y.contiguous()?;
    let shape = y.shape().clone();
    let (storage, layout) = y.storage_and_layout();
    match &*storage {
        Storage::Cpu(c) if layout.start_offset() == 0 && layout.is_contiguous() => {
            Ok((c.clone(), shape))
        }
        _ => Err(candle_core::Error::Msg("unexpected tensor layout".into())),
    }
}

fn max_pool3(h: &Tensor) -> Result<Tensor> {
    Ok(h.contiguous()?.apply_op1(MaxPool3)?)
}

/// Inverted dropout with a seeded mask, so runs are reproducible (candle's CPU RNG cannot be seeded).
fn dropout(h: &Tensor, rate: f32, rng: &mut StdRng) -> Result<Tensor> {
    if rate == 0.0 {
        return Ok(h.clone());
    }
    let keep = 1.0 / (1.0 - rate);
    let mask: Vec<f32> = (0..h.elem_count())
        .map(|_| if rng.gen::<f32>() < rate { 0.0 } else { keep })
        .collect();
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

    // Guards the hand-written backward passes (candle's own conv1d and max-pool gradients are
    // wrong on CPU): autograd must agree with central finite differences.
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
