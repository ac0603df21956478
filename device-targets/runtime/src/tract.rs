//! tract-onnx: pure Rust, always available, today's behaviour.

use std::collections::{BTreeSet, HashMap};

use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::{GenericFactoid, InferenceFact};
use tract_onnx::tract_hir::ops::unimpl::UnimplementedOp;

use crate::model::{
    Dim, LoadOptions, LoadedModel, ModelInfo, RuntimeError, TensorInfo, check_declared_fits,
    check_window, graph_ops, load_err, qualified_op, select_input, select_output, shape_string,
};
use crate::{Runtime, RuntimeInfo, TRACT};

/// The tract-onnx runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct TractRuntime;

pub struct TractModel {
    info: ModelInfo,
    window_shape: Vec<usize>,
    state: TypedSimpleState,
}

/// `{:#}` keeps tract's whole context chain, which is where the useful detail lives.
fn tract_load_err(context: &str, e: TractError) -> RuntimeError {
    RuntimeError::Load {
        reason: format!("{context}: {e:#}"),
    }
}

/// Element type as the model file declares it: tract drops the declared type of some outputs
/// (e.g. an int64 `label`), so the proto is asked first.
fn declared_dtype(graph: &pb::GraphProto, name: &str, fact: &InferenceFact) -> Option<String> {
    let from_proto = graph
        .input
        .iter()
        .chain(&graph.output)
        .find(|v| v.name == name)
        .and_then(|v| {
            let pb::type_proto::Value::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
            let dt = pb::tensor_proto::DataType::try_from(t.elem_type).ok()?;
            DatumType::try_from(dt).ok()
        });
    from_proto
        .or_else(|| fact.datum_type.concretize())
        .map(|dt| format!("{dt:?}").to_lowercase())
}

fn tensor_info(name: String, fact: &InferenceFact, graph: &pb::GraphProto) -> TensorInfo {
    let shape = (!fact.shape.is_open()).then(|| {
        fact.shape
            .dims()
            .map(|d| match d {
                GenericFactoid::Only(d) => match d.to_i64() {
                    Ok(n) if n >= 0 => Dim::Fixed(n as usize),
                    _ => Dim::Symbol(d.to_string()),
                },
                GenericFactoid::Any => Dim::Unknown,
            })
            .collect()
    });
    let dtype = declared_dtype(graph, &name, fact);
    TensorInfo { name, shape, dtype }
}

/// tract registers ONNX operators by type alone and turns every unknown one into an
/// `UnimplementedOp` node at parse time, so finding those nodes is exactly "what tract cannot run";
/// the proto supplies the domain, which tract drops.
fn find_unsupported(model: &InferenceModel, proto: &pb::GraphProto) -> Option<RuntimeError> {
    // tract names a node after its proto name, or its first output when the name is empty.
    let by_name: HashMap<&str, &pb::NodeProto> = proto
        .node
        .iter()
        .map(|n| {
            (
                if n.name.is_empty() {
                    n.output.first().map_or("", |s| s.as_str())
                } else {
                    n.name.as_str()
                },
                n,
            )
        })
        .collect();
    let mut found = model
        .nodes()
        .iter()
        .filter(|n| n.op_is::<UnimplementedOp>())
        .map(|n| match by_name.get(n.name.as_str()) {
            Some(pb) => (
                pb.op_type.clone(),
                (!pb.domain.is_empty() && pb.domain != "ai.onnx").then(|| pb.domain.clone()),
                n.name.clone(),
            ),
            None => (n.op.name().to_string(), None, n.name.clone()),
        });
    let (op, domain, node) = found.next()?;
    let first = qualified_op(domain.as_deref(), &op);
    let others: BTreeSet<String> = found
        .map(|(op, d, _)| qualified_op(d.as_deref(), &op))
        .filter(|q| *q != first)
        .collect();
    Some(RuntimeError::UnsupportedOperator {
        op,
        domain,
        node,
        others: others.into_iter().collect(),
    })
}

/// Matches the declared input shape against the window shape, returning the values its symbols
/// must take. A concrete input fact alone does not unify with a graph built around a symbolic
/// batch, so symbols are bound on the typed model instead.
fn bind_input(
    input: &str,
    declared: &[TDim],
    window: &[usize],
) -> Result<HashMap<Symbol, TDim>, RuntimeError> {
    let mismatch = || RuntimeError::ShapeMismatch {
        input: input.to_string(),
        expected: shape_string(declared),
        got: window.to_vec(),
    };
    if declared.len() != window.len() {
        return Err(mismatch());
    }
    let mut subs = HashMap::new();
    for (d, &w) in declared.iter().zip(window) {
        match d {
            TDim::Val(v) if *v == w as i64 => {}
            TDim::Sym(s) => match subs.insert(s.clone(), TDim::Val(w as i64)) {
                Some(TDim::Val(prev)) if prev != w as i64 => return Err(mismatch()),
                _ => {}
            },
            _ => return Err(mismatch()),
        }
    }
    Ok(subs)
}

impl Runtime for TractRuntime {
    fn name(&self) -> &'static str {
        TRACT
    }

    fn check(&self) -> Result<RuntimeInfo, RuntimeError> {
        Ok(RuntimeInfo {
            name: TRACT.into(),
            version: TRACT_VERSION.into(),
            // tract runs on the CPU, single-threaded.
            providers: vec!["cpu".into()],
            library: None,
            library_sha256: None,
        })
    }

    fn load(&self, onnx: &[u8], opts: &LoadOptions) -> Result<Box<dyn LoadedModel>, RuntimeError> {
        Ok(Box::new(self.load_tract(onnx, opts)?))
    }
}

/// tract-onnx's version from the workspace's Cargo.lock (see build.rs).
pub const TRACT_VERSION: &str = env!("GAUNTLET_TRACT_VERSION");

/// tract runs on the CPU on the calling thread; a setting it cannot honour is refused rather than
/// silently measured as something else.
fn check_settings(opts: &LoadOptions) -> Result<(), RuntimeError> {
    if opts.runtime.threads != 1 {
        return Err(load_err(format!(
            "tract runs inferences on one thread; `threads = {}` needs onnxruntime",
            opts.runtime.threads
        )));
    }
    match opts.runtime.providers.iter().find(|p| *p != "cpu") {
        Some(p) => Err(RuntimeError::ProviderUnavailable {
            runtime: TRACT.into(),
            provider: p.clone(),
            available: vec!["cpu".into()],
        }),
        None => Ok(()),
    }
}

impl TractRuntime {
    fn load_tract(&self, onnx: &[u8], opts: &LoadOptions) -> Result<TractModel, RuntimeError> {
        check_settings(opts)?;
        let framework = tract_onnx::onnx();
        let proto = framework
            .proto_model_for_read(&mut &onnx[..])
            .map_err(|e| tract_load_err("parse onnx protobuf", e))?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| load_err("model file contains no graph"))?;
        let mut model = framework
            .model_for_proto_model(&proto)
            .map_err(|e| tract_load_err("translate onnx graph", e))?;
        if let Some(e) = find_unsupported(&model, graph) {
            return Err(e);
        }

        let fact_info = |outlet: OutletId| -> Result<TensorInfo, RuntimeError> {
            let name = model
                .outlet_label(outlet)
                .map_or_else(|| model.node(outlet.node).name.clone(), str::to_string);
            Ok(tensor_info(
                name,
                model
                    .outlet_fact(outlet)
                    .map_err(|e| tract_load_err("read model facts", e))?,
                graph,
            ))
        };
        let inputs = model
            .input_outlets()
            .map_err(|e| tract_load_err("list inputs", e))?
            .iter()
            .map(|o| fact_info(*o))
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = model
            .output_outlets()
            .map_err(|e| tract_load_err("list outputs", e))?
            .iter()
            .map(|o| fact_info(*o))
            .collect::<Result<Vec<_>, _>>()?;
        let selected_input = select_input(&inputs, opts.input_name.as_deref())?;
        let selected_output = select_output(&outputs, &opts.output)?;

        // Undeclared dimensions (e.g. skl2onnx's nameless batch) have no symbol to bind later, so
        // the window's shape becomes the input fact; declared fixed dimensions must still agree.
        let declared = &inputs[selected_input];
        if declared
            .shape
            .as_ref()
            .is_none_or(|s| s.contains(&Dim::Unknown))
        {
            check_declared_fits(declared, &opts.window_shape)?;
            model
                .set_input_fact(selected_input, f32::fact(&opts.window_shape).into())
                .map_err(|e| tract_load_err("set input shape", e))?;
        }
        // Only the selected output is computed (e.g. SKAB's probabilities without its argmax label).
        let output_outlet = model
            .output_outlets()
            .map_err(|e| tract_load_err("list outputs", e))?[selected_output];
        model
            .select_output_outlets(&[output_outlet])
            .map_err(|e| tract_load_err("select output", e))?;

        let typed = model
            .into_typed()
            .map_err(|e| tract_load_err("analyse model types", e))?;
        let input_fact = typed
            .input_fact(selected_input)
            .map_err(|e| tract_load_err("read input fact", e))?
            .clone();
        if input_fact.datum_type != f32::datum_type() {
            return Err(load_err(format!(
                "input '{}' has element type {:?}; only f32 inputs are supported",
                inputs[selected_input].name, input_fact.datum_type
            )));
        }
        let subs = bind_input(
            &inputs[selected_input].name,
            input_fact.shape.dims(),
            &opts.window_shape,
        )?;
        let typed = if subs.is_empty() {
            typed
        } else {
            typed
                .set_symbols(&subs)
                .map_err(|e| tract_load_err("bind symbolic dimensions", e))?
        };
        let optimized = typed
            .into_optimized()
            .map_err(|e| tract_load_err("optimise model", e))?;
        let out_fact = optimized
            .output_fact(0)
            .map_err(|e| tract_load_err("read output fact", e))?;
        let output_len = out_fact
            .shape
            .as_concrete()
            .map(|s| s.iter().product())
            .ok_or_else(|| {
                load_err(format!(
                    "output '{}' has no concrete shape after binding the input: {:?}",
                    outputs[selected_output].name, out_fact.shape
                ))
            })?;
        let plan = optimized
            .into_runnable()
            .map_err(|e| tract_load_err("plan model", e))?;
        let state =
            TypedSimpleState::new(&plan).map_err(|e| tract_load_err("allocate model state", e))?;
        Ok(TractModel {
            info: ModelInfo {
                inputs,
                outputs,
                selected_input,
                selected_output,
                output_len,
                ops: graph_ops(graph),
            },
            window_shape: opts.window_shape.clone(),
            state,
        })
    }
}

impl LoadedModel for TractModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn run(&mut self, window: &[f32], out: &mut Vec<f32>) -> Result<(), RuntimeError> {
        check_window(window, &self.window_shape)?;
        let run_err = |e: TractError| RuntimeError::Run {
            reason: format!("{e:#}"),
        };
        let input = Tensor::from_shape(&self.window_shape, window).map_err(run_err)?;
        let outputs = self.state.run(tvec![input.into()]).map_err(run_err)?;
        let scores = outputs[0].cast_to::<f32>().map_err(run_err)?;
        out.clear();
        out.extend_from_slice(
            scores
                .try_as_plain_ram()
                .and_then(|v| v.as_slice::<f32>())
                .map_err(run_err)?,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OutputSelector;
    use std::path::Path;

    fn model_bytes(rel: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scenarios/models")
            .join(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    fn cwru_opts(window_shape: &[usize]) -> LoadOptions {
        LoadOptions {
            input_name: None,
            window_shape: window_shape.to_vec(),
            output: OutputSelector::Index(0),
            ..Default::default()
        }
    }

    #[test]
    fn cwru_binds_symbolic_batch_and_reports_declared_shapes() {
        let model = TractRuntime
            .load(
                &model_bytes("cwru_cnn/cwru_cnn_fp32.onnx"),
                &cwru_opts(&[1, 1, 1024]),
            )
            .unwrap();
        let info = model.info();
        assert_eq!(info.inputs.len(), 1);
        assert_eq!(info.inputs[0].name, "vibration");
        assert_eq!(
            info.inputs[0].shape,
            Some(vec![
                Dim::Symbol("B".into()),
                Dim::Fixed(1),
                Dim::Fixed(1024)
            ])
        );
        assert_eq!(info.inputs[0].dtype.as_deref(), Some("f32"));
        assert_eq!(info.output_len, 10);
        assert!(info.ops.iter().any(|op| op == "Conv"), "{:?}", info.ops);
    }

    #[test]
    fn skab_selects_output_by_name() {
        let bytes = model_bytes("skab_mlp/skab_mlp_fp32.onnx");
        let opts = |name: &str| LoadOptions {
            input_name: None,
            window_shape: vec![1, 128],
            output: OutputSelector::Name(name.into()),
            ..Default::default()
        };
        let mut probs = TractRuntime.load(&bytes, &opts("probabilities")).unwrap();
        assert_eq!(
            (probs.info().selected_output, probs.info().output_len),
            (1, 2)
        );
        let mut label = TractRuntime.load(&bytes, &opts("label")).unwrap();
        assert_eq!(label.info().output_len, 1);
        assert_eq!(label.info().outputs[0].dtype.as_deref(), Some("i64"));

        // The int64 label output comes back as f32 and matches the probabilities' argmax.
        let window: Vec<f32> = (0..128).map(|i| (i % 8) as f32 * 10.0).collect();
        let (mut p, mut l) = (Vec::new(), Vec::new());
        probs.run(&window, &mut p).unwrap();
        label.run(&window, &mut l).unwrap();
        let argmax = if p[1] > p[0] { 1.0 } else { 0.0 };
        assert_eq!(l, vec![argmax]);
    }

    #[test]
    fn unknown_output_lists_available_ones() {
        let bytes = model_bytes("skab_mlp/skab_mlp_fp32.onnx");
        let opts = LoadOptions {
            input_name: None,
            window_shape: vec![1, 128],
            output: OutputSelector::Index(5),
            ..Default::default()
        };
        let err = TractRuntime.load(&bytes, &opts).err().unwrap();
        assert!(
            matches!(&err, RuntimeError::UnknownOutput { available, .. } if available == &["label", "probabilities"]),
            "{err}"
        );
    }

    #[test]
    fn unknown_input_name_is_rejected() {
        let mut opts = cwru_opts(&[1, 1, 1024]);
        opts.input_name = Some("audio".into());
        let err = TractRuntime
            .load(&model_bytes("cwru_cnn/cwru_cnn_fp32.onnx"), &opts)
            .err()
            .unwrap();
        assert!(
            matches!(&err, RuntimeError::UnknownInput { name, .. } if name == "audio"),
            "{err}"
        );
    }

    #[test]
    fn window_shape_that_does_not_fit_names_both_shapes() {
        let err = TractRuntime
            .load(
                &model_bytes("cwru_cnn/cwru_cnn_fp32.onnx"),
                &cwru_opts(&[1, 1, 512]),
            )
            .err()
            .unwrap();
        assert!(
            matches!(&err, RuntimeError::ShapeMismatch { got, .. } if got == &[1, 1, 512]),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("[B,1,1024]") && msg.contains("[1, 1, 512]") && msg.contains("vibration"),
            "{msg}"
        );
    }

    #[test]
    fn undeclared_batch_still_checks_declared_dims() {
        let bytes = model_bytes("skab_mlp/skab_mlp_fp32.onnx");
        let opts = LoadOptions {
            input_name: None,
            window_shape: vec![1, 64],
            output: OutputSelector::Index(1),
            ..Default::default()
        };
        let err = TractRuntime.load(&bytes, &opts).err().unwrap();
        assert!(err.to_string().contains("[?,128]"), "{err}");
    }

    #[test]
    fn wrong_window_length_at_run_is_typed() {
        let mut model = TractRuntime
            .load(
                &model_bytes("cwru_cnn/cwru_cnn_fp32.onnx"),
                &cwru_opts(&[1, 1, 1024]),
            )
            .unwrap();
        let err = model.run(&[0.0; 1000], &mut Vec::new()).unwrap_err();
        assert!(
            matches!(
                err,
                RuntimeError::WindowLength {
                    expected: 1024,
                    got: 1000,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn garbage_bytes_are_a_load_error() {
        let err = TractRuntime
            .load(b"definitely not onnx", &cwru_opts(&[1, 1, 1024]))
            .err()
            .unwrap();
        assert!(matches!(err, RuntimeError::Load { .. }), "{err}");
    }

    #[test]
    fn bind_input_binds_symbols_and_rejects_conflicts() {
        let scope = SymbolScope::default();
        let b = scope.sym("B");
        let declared = [TDim::Sym(b.clone()), TDim::Val(1), TDim::Sym(b.clone())];
        let subs = bind_input("x", &declared, &[3, 1, 3]).unwrap();
        assert_eq!(subs.get(&b), Some(&TDim::Val(3)));
        assert!(bind_input("x", &declared, &[3, 1, 4]).is_err());
        assert!(bind_input("x", &declared, &[3, 2, 3]).is_err());
        assert!(bind_input("x", &declared, &[3, 1]).is_err());
    }
}
