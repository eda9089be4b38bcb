"""Classical image features as an ONNX graph, so a trained model is one ONNX file (image in,
class scores out) that any ONNX runtime runs with nothing but its card.

From the image (NCHW, RGB scaled to 0–1, :data:`SIZE`), the graph computes:

- the image shrunk to a 16 × 12 grid of mean colours (where things are: fill, label);
- edge strength (Sobel on grey) per cell, mean and max, and its 16 strongest cells;
- dark and bright fine detail (grey minus a 5 × 5 blur: scratches, creases) and dark blobs
  (a 17 × 17 blur minus grey: spots) per cell, their 16 strongest cells and the share of pixels
  over two thresholds (where the defect is does not matter, how much of it there is does);
- a soft colour histogram, 8 bins per channel.

Training (:mod:`microfab.vision.train`) runs this same graph to compute the features it learns
from, so the features at training and at inspection are the same numbers by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

SIZE = (192, 256)
"""[height, width] the image is resized to (4:3, as a 640 × 480 camera)."""
CELL = 16
"""Pixels per cell of the feature grid (12 × 16 cells)."""
TOP_K = 16
OPSET = 17
IR_VERSION = 9
INPUT = "image"
BASE = "base"
OUTPUT = "features"
CELLS = (SIZE[0] // CELL) * (SIZE[1] // CELL)
CELL_MAPS = (
    ("colour", 3),
    ("edge_mean", 1),
    ("edge_max", 1),
    ("dark", 1),
    ("bright", 1),
    ("blob", 1),
    ("solid", 1),
)
"""The per-cell maps at the start of the base features: name, channels (× :data:`CELLS`)."""
DEVIATION_TOP = 8


def base_graph() -> onnx.ModelProto:
    """The base feature extractor: ``image`` float[1, 3, 192, 256] → ``base`` float[1, F]."""
    h, w = SIZE
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    parts: list[str] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def cells(x: str, name: str, op: str = "AveragePool") -> str:
        return node(op, [x], name, kernel_shape=[CELL, CELL], strides=[CELL, CELL])

    def flat(x: str, name: str) -> str:
        out = node("Flatten", [x], name, axis=1)
        parts.append(out)
        return out

    def top(x: str, name: str) -> None:
        parts.append(
            node("TopK", [x, const(f"{name}_k", np.array([TOP_K], np.int64))], name, axis=1)
        )
        nodes[-1].output.append(f"{name}_idx")

    def share(x: str, threshold: float, name: str) -> None:
        over = node("Sub", [x, const(f"{name}_t", np.array(threshold, np.float32))], f"{name}_d")
        sign = node("Relu", [node("Sign", [over], f"{name}_s")], f"{name}_r")
        parts.append(node("ReduceMean", [sign], name, axes=[1, 2, 3], keepdims=0))
        nodes.append(
            helper.make_node(
                "Unsqueeze", [name, const(f"{name}_ax", np.array([1], np.int64))], [f"{name}_u"]
            )
        )
        parts[-1] = f"{name}_u"

    grey_w = np.array([0.299, 0.587, 0.114], np.float32).reshape(1, 3, 1, 1)
    grey = node("Conv", [INPUT, const("grey_w", grey_w)], "grey")
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32) / 4
    gx = node(
        "Conv", ["grey", const("sobel_x", sobel.reshape(1, 1, 3, 3))], "gx", pads=[1, 1, 1, 1]
    )
    gy = node(
        "Conv",
        ["grey", const("sobel_y", sobel.T.copy().reshape(1, 1, 3, 3))],
        "gy",
        pads=[1, 1, 1, 1],
    )
    edge = node("Add", [node("Abs", [gx], "agx"), node("Abs", [gy], "agy")], "edge")
    blur5 = node(
        "AveragePool", [grey], "blur5", kernel_shape=[5, 5], pads=[2, 2, 2, 2], count_include_pad=0
    )
    blur17 = node(
        "AveragePool",
        [grey],
        "blur17",
        kernel_shape=[17, 17],
        pads=[8, 8, 8, 8],
        count_include_pad=0,
    )
    fine = node("Sub", [grey, blur5], "fine")
    dark = node("Relu", [node("Neg", [fine], "fine_n")], "dark")
    bright = node("Relu", [fine], "bright")
    blob = node("Relu", [node("Sub", [blur17, grey], "blob_d")], "blob")

    # a 3 × 3 grey maximum wipes out dark lines thinner than 3 px (print, scratches): what is
    # dark after it is a blob
    opened = node("MaxPool", [grey], "opened", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    blur17o = node(
        "AveragePool",
        [opened],
        "blur17o",
        kernel_shape=[17, 17],
        pads=[8, 8, 8, 8],
        count_include_pad=0,
    )
    solid = node("Relu", [node("Sub", [blur17o, opened], "solid_d")], "solid")

    # the cell maps, in the order of CELL_MAPS
    flat(cells(INPUT, "colour_cells"), "f_colour")
    edge_mean = flat(cells(edge, "edge_cells"), "f_edge_mean")
    edge_max = flat(cells(edge, "edge_max_cells", "MaxPool"), "f_edge_max")
    dark_max = flat(cells(dark, "dark_cells", "MaxPool"), "f_dark")
    bright_max = flat(cells(bright, "bright_cells", "MaxPool"), "f_bright")
    blob_mean = flat(cells(blob, "blob_cells"), "f_blob")
    flat(cells(solid, "solid_cells", "MaxPool"), "f_solid")
    for source, name in (
        (edge_mean, "t_edge"),
        (edge_max, "t_edge_max"),
        (dark_max, "t_dark"),
        (bright_max, "t_bright"),
        (blob_mean, "t_blob"),
    ):
        top(source, name)
    share(dark, 0.06, "s_dark")
    share(bright, 0.06, "s_bright")
    share(blob, 0.12, "s_blob")
    share(blob, 0.25, "s_blob2")
    share(solid, 0.15, "s_solid")

    small = node("AveragePool", [INPUT], "small", kernel_shape=[4, 4], strides=[4, 4])
    expanded = node("Unsqueeze", [small, const("hist_ax", np.array([2], np.int64))], "small5")
    centres = np.linspace(0.0, 1.0, 8, dtype=np.float32).reshape(1, 1, 8, 1, 1)
    dist = node("Abs", [node("Sub", [expanded, const("centres", centres)], "hist_d")], "hist_a")
    tri = node(
        "Relu",
        [
            node(
                "Sub",
                [
                    const("one", np.array(1.0, np.float32)),
                    node("Mul", [dist, const("bins", np.array(7.0, np.float32))], "hist_m"),
                ],
                "hist_s",
            )
        ],
        "hist_t",
    )
    hist = node("ReduceMean", [tri], "hist", axes=[3, 4], keepdims=0)
    flat(hist, "f_hist")

    nodes.append(helper.make_node("Concat", parts, [BASE], axis=1))
    graph = helper.make_graph(
        nodes,
        "microfab_features",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info(BASE, TensorProto.FLOAT, [1, None])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _map_slices() -> list[tuple[int, int]]:
    out, start = [], 0
    for _, channels in CELL_MAPS:
        out.append((start, start + channels * CELLS))
        start += channels * CELLS
    return out


def deviation_features(
    base: NDArray[np.float32], mean: NDArray[np.float32], std: NDArray[np.float32]
) -> NDArray[np.float32]:
    """numpy twin of :func:`deviation_graph`: ``base`` rows, then per cell map the
    :data:`DEVIATION_TOP` largest |z| of its cells against the good images (``mean``, ``std``)
    — how unusual the most unusual places are, wherever they are."""
    z = np.abs((base - mean) / std)
    tops = [-np.sort(-z[:, a:b], axis=1)[:, :DEVIATION_TOP] for a, b in _map_slices()]
    return np.concatenate([base, *tops], axis=1).astype(np.float32)


def deviation_graph(mean: NDArray[np.float32], std: NDArray[np.float32]) -> onnx.ModelProto:
    """``base`` float[1, F] → ``features``: :func:`deviation_features` as an ONNX graph."""
    n = int(mean.shape[0])
    nodes = [
        helper.make_node("Sub", [BASE, "d_mean"], ["d_diff"]),
        helper.make_node("Div", ["d_diff", "d_std"], ["d_z"]),
        helper.make_node("Abs", ["d_z"], ["d_abs"]),
    ]
    inits = [
        numpy_helper.from_array(mean.astype(np.float32), "d_mean"),
        numpy_helper.from_array(std.astype(np.float32), "d_std"),
        numpy_helper.from_array(np.array([DEVIATION_TOP], np.int64), "d_k"),
        numpy_helper.from_array(np.array([1], np.int64), "d_axis"),
    ]
    parts = [BASE]
    for i, (a, b) in enumerate(_map_slices()):
        inits.append(numpy_helper.from_array(np.array([a], np.int64), f"d_a{i}"))
        inits.append(numpy_helper.from_array(np.array([b], np.int64), f"d_b{i}"))
        nodes.append(
            helper.make_node("Slice", ["d_abs", f"d_a{i}", f"d_b{i}", "d_axis"], [f"d_s{i}"])
        )
        nodes.append(helper.make_node("TopK", [f"d_s{i}", "d_k"], [f"d_t{i}", f"d_i{i}"], axis=1))
        parts.append(f"d_t{i}")
    nodes.append(helper.make_node("Concat", parts, [OUTPUT], axis=1))
    graph = helper.make_graph(
        nodes,
        "microfab_deviation",
        [helper.make_tensor_value_info(BASE, TensorProto.FLOAT, [1, n])],
        [
            helper.make_tensor_value_info(
                OUTPUT, TensorProto.FLOAT, [1, n + DEVIATION_TOP * len(CELL_MAPS)]
            )
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def good_statistics(base: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Mean and spread of the good images' base features (the spread never below a floor, so a
    feature constant in good images does not divide by zero)."""
    mean = base.mean(axis=0)
    std = base.std(axis=0) + np.float32(1e-3) + np.float32(0.05) * np.abs(mean)
    return mean.astype(np.float32), std.astype(np.float32)
