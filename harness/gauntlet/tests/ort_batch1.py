"""onnxruntime's batch-1 scores on this machine, through its Python wheel, as an oracle that shares
nothing with Gauntlet but the library: tests/runtimes.rs compares the agent's scores with these.

usage: python3 ort_batch1.py MODEL_DIR OUT_DIR [INPUT_F32]
Writes OUT_DIR/ort_b1_<variant>.f32 for every variant in MODEL_DIR/testdata/meta.json, each window
of MODEL_DIR/testdata/input.f32 (or INPUT_F32: skab_ae takes skab_mlp's windows) run on its own on
one thread, as the reference pipeline made its ort_b1 files.
"""

import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort

model_dir, out_dir = map(pathlib.Path, sys.argv[1:3])
inputs = pathlib.Path(sys.argv[3]) if len(sys.argv) > 3 else model_dir / "testdata" / "input.f32"
meta = json.loads((model_dir / "testdata" / "meta.json").read_text())
windows = np.fromfile(inputs, dtype="<f4").reshape(meta["input_shape"])
for variant, about in meta["variants"].items():
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(model_dir / about["file"]), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    # The scored output: an index (classifiers), a name (the autoencoder), or the one in `output`.
    scored = meta.get("score_output", meta.get("output"))
    output = session.get_outputs()[scored].name if isinstance(scored, int) else scored
    scores = [
        session.run([output], {name: windows[i : i + 1]})[0].astype("<f4").ravel()
        for i in range(len(windows))
    ]
    np.concatenate(scores).tofile(out_dir / f"ort_b1_{variant}.f32")
