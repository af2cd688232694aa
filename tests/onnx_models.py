"""Small ONNX models with the real DWPose detector's signature, built by the tests.

`gated_detector` answers like YOLOX (`images` 1x3x640x640 -> `output` 1x8400x85) with person
boxes at known places, present only when the picture has a bright pixel (a frame that is black
apart from the letterbox padding has nobody). That makes empty frames and several people
testable, which random weights cannot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ANCHORS_32 = 80 * 80 + 40 * 40  # anchors of strides 8 and 16 come first; stride 32 is a 20x20 grid


def gated_detector(path: Path, boxes_640: list[tuple[float, float, float, float]]) -> Path:
    """Boxes (cx, cy, w, h) in the 640x640 letterbox picture, each on its own stride-32 anchor."""
    base = np.zeros((1, 8400, 85), np.float32)
    objectness = np.zeros((1, 8400, 85), np.float32)
    for number, (cx, cy, w, h) in enumerate(boxes_640):
        row, col = divmod(number * 7 + 3, 20)
        anchor = ANCHORS_32 + row * 20 + col
        base[0, anchor, :4] = [cx / 32 - col, cy / 32 - row, np.log(w / 32), np.log(h / 32)]
        base[0, anchor, 5] = 1.0  # class 0: person
        objectness[0, anchor, 4] = 0.9
    nodes = [
        helper.make_node("ReduceMax", ["images"], ["peak"], keepdims=0),
        helper.make_node("Sub", ["peak", "low"], ["shifted"]),
        helper.make_node("Div", ["shifted", "span"], ["ramp"]),
        helper.make_node("Clip", ["ramp", "zero", "one"], ["gate"]),
        helper.make_node("Mul", ["objectness", "gate"], ["gated"]),
        helper.make_node("Add", ["base", "gated"], ["output"]),
    ]
    constants = {
        "base": base, "objectness": objectness, "low": np.float32(200), "span": np.float32(55),
        "zero": np.float32(0), "one": np.float32(1),
    }  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "gated_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])],
        [numpy_helper.from_array(np.asarray(value), name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def confident_pose_model(source: Path, path: Path, shift: float = 1.0) -> Path:
    """The pose model of `source` with `shift` added to both SimCC outputs: the same argmax, so the
    same keypoints, but every score above DWPose's 0.3 threshold (random weights score most points
    below it, which leaves too few points known to measure a body by)."""
    model = onnx.load(str(source))
    graph = model.graph
    for output in graph.output:
        raw = f"{output.name}_unshifted"
        for node in graph.node:
            node.output[:] = [raw if name == output.name else name for name in node.output]
        constant = numpy_helper.from_array(np.array(shift, np.float32), f"{output.name}_shift")
        graph.initializer.append(constant)
        graph.node.append(helper.make_node("Add", [raw, constant.name], [output.name]))
    onnx.save(model, str(path))
    return path
