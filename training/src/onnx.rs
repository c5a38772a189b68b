//! ONNX export of the trained network, written directly as ONNX protobuf (opset 13), and a tract
//! runner for checking the export.

use crate::model::{CharCnn, ORIGINAL};
use anyhow::{Context, Result};
use lib_ml::Tokenizer;
use prost::Message;
use std::path::Path;
use tract_onnx::pb::{
    self, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    type_proto,
};
use tract_onnx::prelude::*;

/// The graph's input: token ids `[batch, sequence_length]`, int64.
pub const INPUT_NAME: &str = "input_ids";
/// The graph's output: phishing scores `[batch, 1]`, float32 in [0, 1].
pub const OUTPUT_NAME: &str = "score";
/// The ONNX opset the export targets.
pub const OPSET: i64 = 13;

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn initializer(name: &str, t: &candle_core::Tensor) -> Result<pb::TensorProto> {
    Ok(pb::TensorProto {
        name: name.into(),
        dims: t.dims().iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: t
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect(),
        ..Default::default()
    })
}

fn value_info(name: &str, elem: DataType, dims: &[Result<i64, &str>]) -> pb::ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| pb::tensor_shape_proto::Dimension {
            value: Some(match d {
                Ok(v) => dimension::Value::DimValue(*v),
                Err(p) => dimension::Value::DimParam(p.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds the ONNX model of `net` for sequences of `sequence_length` ids.
pub fn to_onnx(
    net: &CharCnn,
    sequence_length: usize,
    model_version: &str,
) -> Result<pb::ModelProto> {
    let mut nodes = Vec::new();
    let mut inits = vec![initializer("embedding", net.embedding.as_tensor())?];
    // Embedding lookup [N, L] -> [N, L, E], then channels first [N, E, L] as the convolutions expect.
    nodes.push(node(
        "Gather",
        "embedding_lookup",
        &["embedding", INPUT_NAME],
        "embedded",
        vec![attr_int("axis", 0)],
    ));
    nodes.push(node(
        "Transpose",
        "channels_first",
        &["embedded"],
        "x0",
        vec![attr_ints("perm", &[0, 2, 1])],
    ));
    let mut x = "x0".to_string();
    for (i, ((w, b), spec)) in net.convs.iter().zip(ORIGINAL).enumerate() {
        let (wn, bn) = (format!("conv{i}.weight"), format!("conv{i}.bias"));
        inits.push(initializer(&wn, w.as_tensor())?);
        inits.push(initializer(&bn, b.as_tensor())?);
        let p = spec.padding as i64;
        let conv = format!("conv{i}");
        nodes.push(node(
            "Conv",
            &conv,
            &[&x, &wn, &bn],
            &conv,
            vec![
                attr_ints("kernel_shape", &[spec.kernel as i64]),
                attr_ints("pads", &[p, p]),
            ],
        ));
        let act = format!("tanh{i}");
        nodes.push(node("Tanh", &act, &[&conv], &act, vec![]));
        x = act;
        if spec.pool {
            let pool = format!("pool{i}");
            nodes.push(node(
                "MaxPool",
                &pool,
                &[&x],
                &pool,
                vec![attr_ints("kernel_shape", &[3]), attr_ints("strides", &[3])],
            ));
            x = pool;
        }
    }
    nodes.push(node(
        "Flatten",
        "flatten",
        &[&x],
        "flat",
        vec![attr_int("axis", 1)],
    ));
    inits.push(initializer("dense.weight", net.dense_w.as_tensor())?);
    inits.push(initializer("dense.bias", net.dense_b.as_tensor())?);
    nodes.push(node(
        "Gemm",
        "dense",
        &["flat", "dense.weight", "dense.bias"],
        "logit",
        vec![attr_int("transB", 1)],
    ));
    nodes.push(node("Sigmoid", "sigmoid", &["logit"], OUTPUT_NAME, vec![]));

    let graph = pb::GraphProto {
        name: "phishing-char-cnn".into(),
        node: nodes,
        initializer: inits,
        input: vec![value_info(INPUT_NAME, DataType::Int64, &[Err("batch"), Ok(sequence_length as i64)])],
        output: vec![value_info(OUTPUT_NAME, DataType::Float, &[Err("batch"), Ok(1)])],
        doc_string: "Character-level CNN scoring URLs: input token ids (lib-ml tokenizer), output P(phishing)".into(),
        ..Default::default()
    };
    let doc = format!("phishing-char-cnn {model_version}");
    Ok(model_proto(graph, model_version, doc))
}

/// `graph` as an ONNX model of opset [`OPSET`] with its version in the metadata.
fn model_proto(graph: pb::GraphProto, model_version: &str, doc_string: String) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "model-training".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string,
        graph: Some(graph),
        metadata_props: vec![pb::StringStringEntryProto {
            key: "model_version".into(),
            value: model_version.into(),
        }],
        ..Default::default()
    }
}

/// Writes `net` as an ONNX file.
pub fn export(
    net: &CharCnn,
    sequence_length: usize,
    model_version: &str,
    path: &Path,
) -> Result<usize> {
    let bytes = to_onnx(net, sequence_length, model_version)?.encode_to_vec();
    std::fs::write(path, &bytes)
        .with_context(|| format!("failed to write ONNX model `{}`", path.display()))?;
    Ok(bytes.len())
}

/// The exported ONNX model as tract's NNEF (a tar of `graph.nnef` and weights): the ONNX graph
/// read, typed and decluttered (dropout gone, layers as tract's own ops), batch dimension left
/// symbolic, written deterministically (same ONNX in, same bytes out). The model-service builds
/// this in, so it needs only tract's NNEF reader, not the ONNX one.
pub fn to_nnef(onnx: &[u8]) -> Result<Vec<u8>> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(onnx))
        .context("tract failed to read the ONNX model")?
        .into_typed()?
        .into_decluttered()?;
    tract_nnef::nnef()
        .write_to_tar_with_config(&model, Vec::new(), false, true)
        .context("tract failed to write the model as NNEF")
}

/// Reads `onnx_path` and writes [`to_nnef`] of it to `nnef_path`. Returns the NNEF size in bytes.
pub fn export_nnef(onnx_path: &Path, nnef_path: &Path) -> Result<usize> {
    let onnx = std::fs::read(onnx_path)
        .with_context(|| format!("failed to read ONNX model `{}`", onnx_path.display()))?;
    let nnef = to_nnef(&onnx)?;
    std::fs::write(nnef_path, &nnef)
        .with_context(|| format!("failed to write NNEF model `{}`", nnef_path.display()))?;
    Ok(nnef.len())
}

/// An exported model loaded and optimised by tract for a fixed batch size.
pub struct TractModel {
    plan: std::sync::Arc<TypedRunnableModel>,
    batch: usize,
    len: usize,
}

impl TractModel {
    /// Loads `path` for batches of exactly `batch` rows of `len` ids.
    pub fn load(path: &Path, batch: usize, len: usize) -> Result<TractModel> {
        let plan = tract_onnx::onnx()
            .model_for_path(path)
            .with_context(|| format!("tract failed to read `{}`", path.display()))?
            .with_input_fact(0, i64::fact([batch, len]).into())?
            .into_optimized()?
            .into_runnable()?;
        Ok(TractModel { plan, batch, len })
    }

    /// Loads the NNEF form of the model ([`to_nnef`]) the same way.
    pub fn load_nnef(path: &Path, batch: usize, len: usize) -> Result<TractModel> {
        let plan = tract_nnef::nnef()
            .model_for_path(path)
            .with_context(|| format!("tract failed to read `{}`", path.display()))?
            .with_input_fact(0, i64::fact([batch, len]))?
            .into_optimized()?
            .into_runnable()?;
        Ok(TractModel { plan, batch, len })
    }

    /// Scores `urls` (any count; padded to full batches internally).
    pub fn scores(&self, tokenizer: &Tokenizer, urls: &[&str]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(urls.len());
        let mut ids = Vec::new();
        for chunk in urls.chunks(self.batch) {
            tokenizer.encode_batch(chunk, &mut ids);
            ids.resize(self.batch * self.len, 0);
            let input: Tensor = tract_ndarray::Array2::from_shape_vec(
                (self.batch, self.len),
                ids.iter().map(|&i| i as i64).collect(),
            )?
            .into();
            let result = self.plan.run(tvec!(input.into()))?;
            let scores = result[0].to_plain_array_view::<f32>()?;
            out.extend(scores.iter().take(chunk.len()));
        }
        Ok(out)
    }
}

/// The n-gram model's inputs: ids `[batch, width]` (int64) and their values `[batch, width]`
/// (float32), as `lib_ml::encoder::UrlEncoder::encode_into` writes them.
pub const NGRAM_INPUTS: [&str; 2] = ["feature_ids", "feature_values"];

/// How an n-gram model's weight table is stored in the graph.
#[derive(Debug, Clone, Copy)]
pub enum WeightTable<'a> {
    /// One float32 a weight.
    F32(&'a [f32]),
    /// One byte a weight: an index into 256 float32 values.
    Codes(&'a [u8], &'a [f32]),
}

/// Builds the ONNX model of an n-gram model: `sigmoid(bias + sum(weights[ids] * values))`, a
/// Gather, a Mul (`scale`: the per-id terms the explanations read), a ReduceSum, an Add and a
/// Sigmoid. A table of one-byte codes is gathered as codes, widened by a Cast and looked up in
/// the 256 values by a second Gather before the terms.
pub fn ngram_to_onnx(
    table: WeightTable,
    bias: f32,
    width: usize,
    model_version: &str,
) -> pb::ModelProto {
    let tensor = |name: &str, dims: Vec<i64>, data: &[f32]| pb::TensorProto {
        name: name.into(),
        dims,
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|f| f.to_le_bytes()).collect(),
        ..Default::default()
    };
    let axes = pb::TensorProto {
        name: "sum_axes".into(),
        dims: vec![1],
        data_type: DataType::Int64 as i32,
        raw_data: 1i64.to_le_bytes().to_vec(),
        ..Default::default()
    };
    let mut inits = vec![tensor("bias", vec![1], &[bias]), axes];
    let mut nodes = Vec::new();
    match table {
        WeightTable::F32(weights) => {
            inits.push(tensor("weights", vec![weights.len() as i64], weights));
            nodes.push(node(
                "Gather",
                "weight_lookup",
                &["weights", NGRAM_INPUTS[0]],
                "picked",
                vec![attr_int("axis", 0)],
            ));
        }
        WeightTable::Codes(codes, book) => {
            inits.push(pb::TensorProto {
                name: "weight_codes".into(),
                dims: vec![codes.len() as i64],
                data_type: DataType::Uint8 as i32,
                raw_data: codes.to_vec(),
                ..Default::default()
            });
            inits.push(tensor("codebook", vec![book.len() as i64], book));
            nodes.extend([
                node(
                    "Gather",
                    "code_lookup",
                    &["weight_codes", NGRAM_INPUTS[0]],
                    "picked_codes",
                    vec![attr_int("axis", 0)],
                ),
                node(
                    "Cast",
                    "widen",
                    &["picked_codes"],
                    "picked_levels",
                    vec![attr_int("to", DataType::Int64 as i64)],
                ),
                node(
                    "Gather",
                    "weight_lookup",
                    &["codebook", "picked_levels"],
                    "picked",
                    vec![attr_int("axis", 0)],
                ),
            ]);
        }
    }
    nodes.extend([
        node(
            "Mul",
            "scale",
            &["picked", NGRAM_INPUTS[1]],
            "terms",
            vec![],
        ),
        node(
            "ReduceSum",
            "sum",
            &["terms", "sum_axes"],
            "dot",
            vec![attr_int("keepdims", 1)],
        ),
        node("Add", "add_bias", &["dot", "bias"], "logit", vec![]),
        node("Sigmoid", "probability", &["logit"], OUTPUT_NAME, vec![]),
    ]);
    let w = width as i64;
    let graph = pb::GraphProto {
        name: "phishing-url-ngram".into(),
        node: nodes,
        initializer: inits,
        input: vec![
            value_info(NGRAM_INPUTS[0], DataType::Int64, &[Err("batch"), Ok(w)]),
            value_info(NGRAM_INPUTS[1], DataType::Float, &[Err("batch"), Ok(w)]),
        ],
        output: vec![value_info(
            OUTPUT_NAME,
            DataType::Float,
            &[Err("batch"), Ok(1)],
        )],
        ..Default::default()
    };
    model_proto(graph, model_version, String::new())
}

/// Writes an n-gram model as an ONNX file (one-byte codes when the model is quantized); returns
/// its size.
pub fn export_ngram(model: &crate::ngram::NgramModel, version: &str, path: &Path) -> Result<usize> {
    let codes = model.weight_codes();
    let table = match &codes {
        Some((c, book)) => WeightTable::Codes(c, book),
        None => WeightTable::F32(&model.weights),
    };
    let bytes = ngram_to_onnx(table, model.bias, model.encoder.width(), version).encode_to_vec();
    std::fs::write(path, &bytes)
        .with_context(|| format!("failed to write ONNX model `{}`", path.display()))?;
    Ok(bytes.len())
}

/// Scores `urls` with an exported n-gram model through tract, one URL a run: an NNEF file with
/// the model-service's own inference code (`inference::Classifier`, what every request runs), an
/// ONNX file with tract's ONNX reader.
pub fn tract_ngram_scores(
    path: &Path,
    nnef: bool,
    encoder: &lib_ml::encoder::UrlEncoder,
    urls: &[&str],
) -> Result<Vec<f32>> {
    if nnef {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let card = inference::Card {
            name: "export check".into(),
            version: String::new(),
            threshold: 0.5,
            bands: None,
        };
        let c = inference::Classifier::from_graph(
            inference::read_nnef(&bytes)?,
            encoder.clone(),
            card,
        )?;
        let mut out = Vec::with_capacity(urls.len());
        for chunk in urls.chunks(inference::MAX_BATCH) {
            out.extend(c.scores(chunk)?);
        }
        return Ok(out);
    }
    let w = encoder.width();
    let model = tract_onnx::onnx().model_for_path(path)?.into_typed()?;
    let batch = model.sym("batch");
    let plan = model
        .set_symbols(&std::collections::HashMap::from([(batch, 1.to_dim())]))?
        .into_optimized()?
        .into_runnable()?;
    let (mut ids, mut values) = (vec![0i64; w], vec![0f32; w]);
    let mut out = Vec::with_capacity(urls.len());
    for url in urls {
        encoder.encode_into(url, &mut ids, &mut values);
        let a: Tensor = tract_ndarray::Array2::from_shape_vec((1, w), ids.clone())?.into();
        let b: Tensor = tract_ndarray::Array2::from_shape_vec((1, w), values.clone())?.into();
        let r = plan.run(tvec!(a.into(), b.into()))?;
        out.push(
            *r[0]
                .to_plain_array_view::<f32>()?
                .iter()
                .next()
                .context("no score")?,
        );
    }
    Ok(out)
}
