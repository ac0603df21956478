//! A deterministic test double for the layers above the runtime (transport, protocol handling)
//! that must not depend on a real model.

use std::time::{Duration, Instant};

use crate::model::{
    Dim, LoadOptions, LoadedModel, ModelInfo, RuntimeError, TensorInfo, check_window, load_err,
    select_input, select_output,
};
use crate::{Runtime, RuntimeInfo};

/// The scripted double's runtime name.
pub const SCRIPTED: &str = "scripted";

/// A test double that needs no model file: any bytes load, and each window yields `classes`
/// scores where score `k` is the sum of the window values at indices `i` with `i % classes == k`,
/// so callers can predict outputs exactly from inputs.
#[derive(Debug, Clone)]
pub struct ScriptedRuntime {
    pub classes: usize,
    /// Simulated inference time, spent busy-waiting so it shows up like real compute.
    pub compute: Duration,
    /// When set, `load` fails with this unsupported operator (as tract would for e.g. QGemm).
    pub unsupported_op: Option<String>,
    /// The runtime name it answers to ([`SCRIPTED`] unless it stands in for a real one, so a
    /// host asking for `tract` gets it).
    pub name: &'static str,
}

impl ScriptedRuntime {
    pub fn new(classes: usize) -> ScriptedRuntime {
        ScriptedRuntime {
            classes,
            compute: Duration::ZERO,
            unsupported_op: None,
            name: SCRIPTED,
        }
    }

    /// The double answering to the runtime name `name`.
    pub fn standing_in_for(self, name: &'static str) -> ScriptedRuntime {
        ScriptedRuntime { name, ..self }
    }

    /// The scores [`FakeModel`] returns for `window`.
    pub fn expected_scores(&self, window: &[f32]) -> Vec<f32> {
        let mut scores = vec![0.0; self.classes];
        for (i, v) in window.iter().enumerate() {
            scores[i % self.classes] += v;
        }
        scores
    }
}

#[derive(Debug, Clone)]
pub struct FakeModel {
    script: ScriptedRuntime,
    info: ModelInfo,
    window_shape: Vec<usize>,
}

impl Runtime for ScriptedRuntime {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self) -> Result<RuntimeInfo, RuntimeError> {
        Ok(RuntimeInfo {
            name: self.name.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            providers: vec!["cpu".into()],
            library: None,
            library_sha256: None,
        })
    }

    fn load(&self, _onnx: &[u8], opts: &LoadOptions) -> Result<Box<dyn LoadedModel>, RuntimeError> {
        if let Some(op) = &self.unsupported_op {
            return Err(RuntimeError::UnsupportedOperator {
                op: op.clone(),
                domain: Some("com.microsoft".into()),
                node: format!("{op}_0"),
                others: vec![],
            });
        }
        if self.classes == 0 {
            return Err(load_err("scripted runtime needs at least one class"));
        }
        let outputs = vec![TensorInfo {
            name: "scores".into(),
            shape: Some(vec![Dim::Symbol("B".into()), Dim::Fixed(self.classes)]),
            dtype: Some("f32".into()),
        }];
        let inputs = vec![TensorInfo {
            name: "input".into(),
            shape: Some(
                std::iter::once(Dim::Symbol("B".into()))
                    .chain(opts.window_shape.iter().skip(1).map(|&d| Dim::Fixed(d)))
                    .collect(),
            ),
            dtype: Some("f32".into()),
        }];
        let selected_input = select_input(&inputs, opts.input_name.as_deref())?;
        let selected_output = select_output(&outputs, &opts.output)?;
        Ok(Box::new(FakeModel {
            script: self.clone(),
            info: ModelInfo {
                inputs,
                outputs,
                selected_input,
                selected_output,
                output_len: self.classes,
                ops: vec!["Scripted".into()],
            },
            window_shape: opts.window_shape.clone(),
        }))
    }
}

impl LoadedModel for FakeModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn run(&mut self, window: &[f32], out: &mut Vec<f32>) -> Result<(), RuntimeError> {
        check_window(window, &self.window_shape)?;
        let start = Instant::now();
        out.clear();
        out.extend(self.script.expected_scores(window));
        while start.elapsed() < self.script.compute {
            std::hint::spin_loop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cwru_opts(window_shape: &[usize]) -> LoadOptions {
        LoadOptions {
            window_shape: window_shape.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn fake_model_scores_are_per_class_sums() {
        let runtime = ScriptedRuntime::new(3);
        let mut model = runtime.load(&[], &cwru_opts(&[1, 6])).unwrap();
        let mut out = vec![99.0; 7];
        model
            .run(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut out)
            .unwrap();
        assert_eq!(out, vec![5.0, 7.0, 9.0]);
        assert_eq!(
            out,
            runtime.expected_scores(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        );
        assert!(matches!(
            model.run(&[1.0], &mut out),
            Err(RuntimeError::WindowLength {
                expected: 6,
                got: 1,
                ..
            })
        ));
    }

    #[test]
    fn fake_runtime_can_refuse_an_operator() {
        let runtime = ScriptedRuntime {
            unsupported_op: Some("QGemm".into()),
            ..ScriptedRuntime::new(2)
        };
        let err = runtime.load(&[], &cwru_opts(&[1, 4])).err().unwrap();
        assert!(err.to_string().contains("com.microsoft.QGemm"), "{err}");
    }
}
