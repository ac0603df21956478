//! The engine validates a blob once and then never panics: checked here on real compiled models
//! with random corruption, which reaches far deeper into op decoding than random bytes do.

use std::path::Path;
use std::sync::OnceLock;

use gauntlet_compile::{CompileOptions, OutputSelector, compile_onnx};
use gauntlet_tinyml::Model;
use proptest::prelude::*;

fn blob(variant: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../scenarios/models/skab_mlp/skab_mlp_{variant}.onnx"
    ));
    let opts = CompileOptions {
        input_shape: vec![1, 128],
        output: OutputSelector::Index(1),
    };
    compile_onnx(&std::fs::read(path).unwrap(), &opts)
        .unwrap()
        .bytes
}

fn blobs() -> &'static [Vec<u8>; 2] {
    static BLOBS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    BLOBS.get_or_init(|| [blob("fp32"), blob("int8_qdq")])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn corrupted_compiled_models_never_panic(which in 0usize..2, edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<bool>()) {
        let mut b = blobs()[which].clone();
        // Most edits land in weights, so aim half of them at the header and op records.
        let ops_end = 16 + 36 + 24 + u32::from_le_bytes([b[36], b[37], b[38], b[39]]) as usize;
        let len = b.len();
        for (i, (at, v)) in edits.into_iter().enumerate() {
            let at = if i % 2 == 0 { at % ops_end.min(len) } else { at % len };
            b[at] = v;
        }
        if cut {
            b.truncate(len / 2);
        }
        if let Ok(m) = Model::parse(&b) {
            let input = vec![0.5; m.input_len().min(1 << 16)];
            let mut out = vec![0.0; m.output_len().min(1 << 16)];
            let mut arena = vec![0u8; m.arena_len().min(1 << 22)];
            let _ = m.run(&input, &mut out, &mut arena);
        }
    }
}
