//! tract's NNEF reader, limited to the operators the released model is made of.
//!
//! `tract_nnef::nnef()` registers every operator tract knows (FFTs, recurrent cells, einsum,
//! quantized convolutions, ...), and registering one links its code into the component whether
//! a model uses it or not. The n-gram model needs a handful; registering only those, and reading the
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

/// A reader for the operators in `model/model.nnef.tar`: NNEF's `external`, `variable`, `mul`,
/// `sum_reduce`, `add`, `sigmoid`, and tract's `tract_core_external`, `tract_core_gather` and
/// `tract_core_cast` (the last one in the graph's properties).
pub fn nnef() -> Nnef {
    let mut stdlib = tract_nnef::framework::stdlib();
    // Registered as tract's own registry does it: a primitive takes its declaration (parameters,
    // defaults, results) from NNEF's standard library; every other fragment with a body stays
    // available (`max_pool` is one, written in terms of `max_pool_with_index`).
    let mut standard = Registry::new("tract_nnef");
    let primitives: [(&str, ToTract); 3] = [
        ("external", deser::external),
        ("variable", deser::variable),
        ("sum_reduce", deser::reduce),
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
    standard.register_binary("mul", &math::Mul {});
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

/// `tract_core_gather(input, indices, axis)`: the weight lookup.
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

    /// Scores rows of (ids, values) one at a time.
    fn scores(model: TypedModel, rows: &[(Vec<i64>, Vec<f32>)]) -> TractResult<Vec<f32>> {
        let batch = model.sym("batch");
        let plan = model
            .set_symbols(&HashMap::from([(batch, 1.to_dim())]))?
            .into_optimized()?
            .into_runnable()?;
        let mut out = Vec::new();
        for (ids, values) in rows {
            let a = Tensor::from_shape(&[1, ids.len()], ids)?;
            let b = Tensor::from_shape(&[1, values.len()], values)?;
            let result = plan.run(tvec!(a.into(), b.into()))?;
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
        let c = crate::model::load().unwrap();
        let w = c.encoder.width();
        let rows: Vec<(Vec<i64>, Vec<f32>)> = [
            "http://a.com/",
            "https://appleid.apple.com.secure-id-check.com/",
            "paypal.com/signin",
        ]
        .iter()
        .map(|u| {
            let (mut ids, mut values) = (vec![0i64; w], vec![0f32; w]);
            c.encoder.encode_into(u, &mut ids, &mut values);
            (ids, values)
        })
        .collect();
        let ours = scores(read(MODEL_NNEF).unwrap(), &rows).unwrap();
        let full = tract_nnef::nnef()
            .model_for_read(&mut Cursor::new(MODEL_NNEF))
            .unwrap();
        let full = scores(full, &rows).unwrap();
        assert_eq!(ours, full);
    }

    #[test]
    fn a_model_with_another_operator_is_refused_naming_it() {
        // The same model with its `sigmoid` swapped for `sinh` plus two blanks (same length, so
        // the tar stays valid): tract's full reader loads it, ours must refuse it and say why.
        let text = "= sigmoid(add_bias);";
        let at = MODEL_NNEF
            .windows(text.len())
            .position(|w| w == text.as_bytes())
            .expect("the released graph ends in sigmoid(add_bias)");
        let mut model = MODEL_NNEF.to_vec();
        model[at..at + text.len()].copy_from_slice(b"=    sinh(add_bias);");
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
