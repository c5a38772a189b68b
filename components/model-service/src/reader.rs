//! tract's NNEF reader, limited to the operators the released model is made of.
//!
//! `tract_nnef::nnef()` registers every operator tract knows (FFTs, recurrent cells, einsum,
//! quantized convolutions, ...), and registering one links its code into the component whether
//! a model uses it or not. The char-CNN needs a dozen; registering only those, and reading the
//! archive here rather than with `Nnef::model_for_read` (which builds the full reader for any
//! sub-model it meets), leaves the rest out of the component (see `benchmarks/README.md` for
//! what it saved).
//!
//! A model that uses another operator fails to load with tract's error naming the operator
//! (a test checks this). The component loads its model while being pre-initialized, so such a
//! model fails `spin build`, never a request: add the operator to [`nnef`] when the architecture
//! changes.

use std::path::Path;
use tract_nnef::ast::parse::parse_document;
use tract_nnef::internal::*;
use tract_nnef::ops::nnef::deser;
use tract_nnef::tract_core::ops::{array::Gather, cast::Cast, math, nn};
use tract_nnef::ProtoModel;

/// A reader for the operators in `model/model.nnef.tar`: NNEF's `external`, `variable`,
/// `reshape`, `transpose`, `squeeze`, `unsqueeze`, `conv`, `max_pool` (a fragment over
/// `max_pool_with_index`), `matmul`, `add`, `tanh`, `sigmoid`, and tract's `tract_core_external`,
/// `tract_core_gather` and `tract_core_cast` (the last one in the graph's properties).
pub fn nnef() -> Nnef {
    let mut stdlib = tract_nnef::framework::stdlib();
    // Registered as tract's own registry does it: a primitive takes its declaration (parameters,
    // defaults, results) from NNEF's standard library; every other fragment with a body stays
    // available (`max_pool` is one, written in terms of `max_pool_with_index`).
    let mut standard = Registry::new("tract_nnef");
    let primitives: [(&str, ToTract); 9] = [
        ("external", deser::external),
        ("variable", deser::variable),
        ("reshape", deser::reshape),
        ("transpose", deser::transpose),
        ("squeeze", deser::squeeze),
        ("unsqueeze", deser::unsqueeze),
        ("conv", deser::conv),
        ("max_pool_with_index", deser::max_pool_with_index),
        ("matmul", deser::matmul),
    ];
    for (id, to_tract) in primitives {
        let at = stdlib
            .iter()
            .position(|f| f.decl.id.0 == id)
            .expect("NNEF's standard library declares every primitive registered here");
        let decl = stdlib.remove(at).decl;
        standard.register_primitive(id, &decl.parameters, &decl.results, to_tract);
    }
    standard.register_binary("add", &math::Add {});
    standard.register_unit_element_wise("tanh", &math::Tanh {});
    standard.register_unit_element_wise("sigmoid", &nn::Sigmoid {});
    for fragment in stdlib {
        if fragment.body.is_some() {
            standard.register_fragment(fragment);
        }
    }

    let mut core = Registry::new("tract_core");
    core.register_primitive(
        "tract_core_external",
        &[
            TypeName::String.named("datum_type"),
            TypeName::Integer.array().named("shape"),
        ],
        &[("output", TypeName::Scalar.tensor())],
        external,
    );
    core.register_primitive(
        "tract_core_gather",
        &[
            TypeName::Scalar.tensor().named("input"),
            TypeName::Scalar.tensor().named("indices"),
            TypeName::Integer.named("axis"),
        ],
        &[("output", TypeName::Scalar.tensor())],
        gather,
    );
    core.register_primitive(
        "tract_core_cast",
        &[
            TypeName::Scalar.tensor().named("input"),
            TypeName::String.named("to"),
        ],
        &[("output", TypeName::Scalar.tensor())],
        cast,
    );

    Nnef {
        stdlib: tract_nnef::framework::stdlib(),
        registries: vec![standard, core],
        resource_loaders: vec![GraphNnefLoader.into_boxed(), DatLoader.into_boxed()],
        allow_extended_identifier_syntax: false,
        extern_all_constants: false,
    }
}

/// Reads an NNEF archive (an uncompressed tar of `graph.nnef` and `.dat` tensors, as tract
/// writes it) into a model with [`nnef`]'s operators.
pub fn read(archive: &[u8]) -> TractResult<TypedModel> {
    let mut graph = None;
    let mut tensors = HashMap::new();
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let path = path.strip_prefix("./").unwrap_or(&path);
        if path == Path::new("graph.nnef") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text)?;
            graph = Some(text);
        } else if path.extension().is_some_and(|e| e == "dat") {
            let tensor = tract_nnef::tensors::read_tensor(&mut entry)
                .with_context(|| format!("Error while reading tensor {path:?}"))?;
            let id = tract_nnef::resource::resource_path_to_id(path)?;
            tensors.insert(Identifier::from(&*id), Arc::new(tensor));
        } else if entry.header().entry_type().is_file() {
            bail!("Unsupported file {path:?} in the model archive (expected graph.nnef and .dat tensors)");
        }
    }
    let graph = graph.context("The model archive has no graph.nnef")?;
    let proto = ProtoModel {
        doc: parse_document(&graph)?,
        tensors,
        quantization: None,
        resources: HashMap::new(),
    };
    nnef().model_for_proto_model(&proto)
}

// tract keeps its `tract_core_*` readers private to the registry that holds all of them; these
// three do what tract's do for a float model (no quantization file).

/// `tract_core_external(datum_type, shape)`: a model input.
fn external(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let shape: TVec<TDim> =
        builder.allowing_new_symbols(|builder| invocation.named_arg_as(builder, "shape"))?;
    let dt: DatumType = invocation
        .named_arg_as::<String>(builder, "datum_type")?
        .parse()?;
    Ok(Value::Wire(builder.model.add_source("", dt.fact(&*shape))?))
}

/// `tract_core_gather(input, indices, axis)`: the embedding lookup.
fn gather(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let input = invocation.named_arg_as(builder, "input")?;
    let indices = invocation.named_arg_as(builder, "indices")?;
    let indices = builder.wire_as_outlets(
        Cast {
            to: i64::datum_type(),
        },
        &[indices],
    )?[0];
    let axis = invocation.named_arg_as(builder, "axis")?;
    builder.wire(Gather::new(axis), &[input, indices])
}

/// `tract_core_cast(input, to)`.
fn cast(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let input = invocation.named_arg_as(builder, "input")?;
    let to: DatumType = invocation.named_arg_as::<String>(builder, "to")?.parse()?;
    builder.wire(Cast { to }, &[input])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MODEL_NNEF;
    use std::io::Cursor;

    fn scores(model: TypedModel, ids: &[Vec<i64>]) -> TractResult<Vec<f32>> {
        let plan = model.into_optimized()?.into_runnable()?;
        let mut out = Vec::new();
        for row in ids {
            let input = Tensor::from_shape(&[1, row.len()], row)?;
            let result = plan.run(tvec!(input.into()))?;
            out.push(
                *result[0]
                    .to_plain_array_view::<f32>()?
                    .iter()
                    .next()
                    .unwrap(),
            );
        }
        Ok(out)
    }

    #[test]
    fn reads_the_released_model_as_the_full_reader_does() {
        let len = 200;
        let ids: Vec<Vec<i64>> = (0..4)
            .map(|k| (0..len).map(|i| ((i * 7 + k * 13) % 71) as i64).collect())
            .collect();
        let ours = scores(read(MODEL_NNEF).unwrap(), &ids).unwrap();
        let full = tract_nnef::nnef()
            .model_for_read(&mut Cursor::new(MODEL_NNEF))
            .unwrap();
        let full = scores(full, &ids).unwrap();
        assert_eq!(ours, full);
    }

    #[test]
    fn a_model_with_another_operator_is_refused_naming_it() {
        // The same model with its first `tanh` swapped for `sinh` (same length, so the tar stays
        // valid): tract's full reader loads it, ours must refuse it and say why.
        let text = "tanh0 = tanh(conv0);";
        let at = MODEL_NNEF
            .windows(text.len())
            .position(|w| w == text.as_bytes())
            .expect("the released graph applies tanh to conv0");
        let mut model = MODEL_NNEF.to_vec();
        model[at..at + text.len()].copy_from_slice(b"tanh0 = sinh(conv0);");
        assert!(tract_nnef::nnef()
            .model_for_read(&mut Cursor::new(&model))
            .is_ok());
        let e = match read(&model) {
            Ok(_) => panic!("an operator outside the reader must not load"),
            Err(e) => format!("{e:#}"),
        };
        assert!(e.contains("sinh"), "{e}");
    }
}
