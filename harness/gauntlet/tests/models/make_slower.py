#!/usr/bin/env python3
"""Writes a genuinely slower copy of the CWRU CNN for the head-to-head champion test.

The copy computes one convolution block (Conv, bias Add, Relu) a second time, with the block's
weights shuffled across output channels (so no runtime can merge the two as one: tract does merge an
exact twin), and adds that branch to the block's output scaled by 2^-100. Its values (at most 76 on
the held-out windows) move the block's output by under 1e-28, far below one float32 ulp of any logit
the model produces, so the labels, and in practice the logits, are the fp32 model's; a runtime cannot prove the branch useless
and must compute it. Nothing is faked: the extra time is real arithmetic inside the model, as a
careless change to a model would add. With the default `--layer 1` (the widest block) gauntlet
measured it 1.18× the fp32 model's p50 head to head on tract (40 windows, 30 block pairs; logits
max |diff| 0); an exact twin of the weights measured 1.0×, tract merged it.

    python3 harness/gauntlet/tests/models/make_slower.py [--layer 1]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", type=int, default=1, help="which of the 3 conv blocks to compute twice")
    parser.add_argument("--out", default=str(HERE / "cwru_cnn_fp32_slower.onnx"))
    args = parser.parse_args()

    model = onnx.load(str(SOURCE))
    graph = model.graph
    nodes = list(graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    at = convs[args.layer - 1]
    conv, add, relu = nodes[at], nodes[at + 1], nodes[at + 2]
    assert (add.op_type, relu.op_type) == ("Add", "Relu"), "a conv block is Conv, Add, Relu"
    weights = {t.name: t for t in graph.initializer}

    # The weights with their output channels shuffled (fixed seed): the same arithmetic, a different tensor.
    w = numpy_helper.to_array(weights[conv.input[1]])
    order = np.random.default_rng(19).permutation(w.shape[0])
    copy = numpy_helper.from_array(w[order].copy(), "slower_w")
    tiny = numpy_helper.from_array(np.array(2.0**-100, dtype=np.float32), "slower_tiny")
    twin = [
        helper.make_node("Conv", [conv.input[0], "slower_w"], ["slower_conv"], name="slower_conv",
                         **{a.name: helper.get_attribute_value(a) for a in conv.attribute}),
        helper.make_node("Add", ["slower_conv", add.input[1]], ["slower_add"], name="slower_add"),
        helper.make_node("Relu", ["slower_add"], ["slower_relu"], name="slower_relu"),
        helper.make_node("Mul", ["slower_relu", "slower_tiny"], ["slower_scaled"], name="slower_scaled"),
        helper.make_node("Add", [relu.output[0], "slower_scaled"], ["slower_out"], name="slower_out"),
    ]
    # Every later reader of the block's output reads the average instead.
    for n in nodes[at + 3:]:
        for k, name in enumerate(n.input):
            if name == relu.output[0]:
                n.input[k] = "slower_out"
    rebuilt = nodes[: at + 3] + twin + nodes[at + 3:]
    del graph.node[:]
    graph.node.extend(rebuilt)
    graph.initializer.extend([copy, tiny])
    model.doc_string = f"cwru_cnn_fp32 with conv block {args.layer} computed a second time (make_slower.py)"
    onnx.checker.check_model(model)
    onnx.save(model, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
