#!/usr/bin/env python3
"""Writes a genuinely slower copy of the CWRU CNN for the head-to-head champion test.

The copy computes convolution blocks (Conv, bias Add, Relu) a second time, each with the block's
weights shuffled across output channels (so no runtime can merge the two as one: tract does merge an
exact twin), and adds that branch to the block's output scaled by 2^-100. Its values (at most 76 on
the held-out windows) move the block's output by under 1e-28, far below one float32 ulp of any logit
the model produces, so the labels, and in practice the logits, are the fp32 model's; a runtime cannot
prove the branch useless and must compute it. Nothing is faked: the extra time is real arithmetic
inside the model, as a careless change to a model would add. Head to head on tract (40 windows, 30
replays in fresh agents, load 4–5) block 2 alone measured 1.13–1.14× and block 3 1.09× (block 1
alone, 30 replays in one agent, 1.18×); the default `--layers 1 3` measured 1.31–1.35× (interval lower bounds ≥ 1.285), so a gate
with a 10 % band fails it with room to spare. An exact twin of the weights measured 1.0×: tract
merged it.

    python3 harness/gauntlet/tests/models/make_slower.py [--layers 1 3]

writes `cwru_cnn_fp32_slower.onnx` beside this script from `scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx`.
Needs the `onnx` Python package (pip install onnx); the output is deterministic.
"""

import argparse
from pathlib import Path

import onnx
from onnx import helper, numpy_helper
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
SOURCE = ROOT / "scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx"


def double_block(graph: onnx.GraphProto, layer: int) -> None:
    """Computes conv block `layer` (1-based) a second time, as described above."""
    nodes = list(graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    at = convs[layer - 1]
    conv, add, relu = nodes[at], nodes[at + 1], nodes[at + 2]
    assert (add.op_type, relu.op_type) == ("Add", "Relu"), "a conv block is Conv, Add, Relu"
    weights = {t.name: t for t in graph.initializer}
    p = f"slower{layer}"

    # The weights with their output channels shuffled (fixed seed): the same arithmetic, a different tensor.
    w = numpy_helper.to_array(weights[conv.input[1]])
    order = np.random.default_rng(19).permutation(w.shape[0])
    copy = numpy_helper.from_array(w[order].copy(), f"{p}_w")
    tiny = numpy_helper.from_array(np.array(2.0**-100, dtype=np.float32), f"{p}_tiny")
    twin = [
        helper.make_node("Conv", [conv.input[0], f"{p}_w"], [f"{p}_conv"], name=f"{p}_conv",
                         **{a.name: helper.get_attribute_value(a) for a in conv.attribute}),
        helper.make_node("Add", [f"{p}_conv", add.input[1]], [f"{p}_add"], name=f"{p}_add"),
        helper.make_node("Relu", [f"{p}_add"], [f"{p}_relu"], name=f"{p}_relu"),
        helper.make_node("Mul", [f"{p}_relu", f"{p}_tiny"], [f"{p}_scaled"], name=f"{p}_scaled"),
        helper.make_node("Add", [relu.output[0], f"{p}_scaled"], [f"{p}_out"], name=f"{p}_out"),
    ]
    # Every later reader of the block's output reads the sum instead.
    for n in nodes[at + 3:]:
        for k, name in enumerate(n.input):
            if name == relu.output[0]:
                n.input[k] = f"{p}_out"
    rebuilt = nodes[: at + 3] + twin + nodes[at + 3:]
    del graph.node[:]
    graph.node.extend(rebuilt)
    graph.initializer.extend([copy, tiny])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 3],
                        help="which of the 3 conv blocks to compute twice")
    parser.add_argument("--out", default=str(HERE / "cwru_cnn_fp32_slower.onnx"))
    args = parser.parse_args()

    model = onnx.load(str(SOURCE))
    for layer in sorted(set(args.layers)):
        double_block(model.graph, layer)
    blocks = ", ".join(str(layer) for layer in sorted(set(args.layers)))
    model.doc_string = f"cwru_cnn_fp32 with conv blocks {blocks} computed a second time (make_slower.py)"
    onnx.checker.check_model(model)
    onnx.save(model, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
