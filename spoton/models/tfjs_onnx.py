"""Convert a TensorFlow.js graph model to ONNX, without TensorFlow.

The NanoDet-m person detector ships on npm as a TF.js graph (``model.json`` plus
float16-quantized weight shards). tf2onnx would need TensorFlow (gigabytes);
this converter covers exactly the ops such exported graphs use, folds
constant subgraphs (shape arithmetic) in numpy, and keeps TF's NHWC layout by
wrapping convolutions and pools in transposes, which ONNX Runtime's transpose
optimizer cancels at load time.

The npm graph was itself exported from NCHW: each convolution reads
``Transpose(Pad(x_nchw))``. That zero Pad becomes the convolution's own ``pads``
and the convolution reads ``x_nchw`` directly: left as a separate node, the Pad
would split ONNX Runtime's blocked-layout (NCHWc) chain of convolutions, costing
a layout reorder before and after each of the 29 pads. Pad and Transpose nodes
are therefore emitted lazily, only if something else reads them.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18
CONVERTER_VERSION = 2  # part of the cached model's file name: a new converter re-converts
SUPPORTED_OPS = frozenset({
    "Const", "Placeholder", "Pad", "PadV2", "Conv2D", "Add", "AddV2", "LeakyRelu", "MaxPool",
    "ConcatV2", "ResizeBilinear", "SplitV", "Sigmoid", "Reshape", "Transpose", "Identity",
    "SparseToDense",
})
_TF_DTYPES = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_INT64": np.int64}
_MANIFEST_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16,
                    "uint8": np.uint8, "uint16": np.uint16}
NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]


class ConversionError(ValueError):
    """The graph uses something this converter does not support."""


def read_weights(manifest: list[dict], folder: Path) -> dict[str, np.ndarray]:
    """Decode the weight shards, dequantizing float16 / affine-uint8 entries to float32."""
    arrays: dict[str, np.ndarray] = {}
    for group in manifest:
        buffer = b"".join((folder / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            shape = [int(d) for d in entry["shape"]]
            quant = entry.get("quantization")
            stored = _MANIFEST_DTYPES[quant["dtype"] if quant else entry["dtype"]]
            count = int(np.prod(shape))
            nbytes = count * np.dtype(stored).itemsize
            raw = np.frombuffer(buffer, dtype=stored, count=count, offset=offset).reshape(shape)
            offset += nbytes
            if quant and quant["dtype"] != "float16":  # affine: value = q * scale + min
                raw = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            arrays[entry["name"]] = raw.astype(_MANIFEST_DTYPES[entry["dtype"]])
    return arrays


def _attr_str(node: dict, key: str, default: str = "") -> str:
    value = node.get("attr", {}).get(key, {}).get("s")
    return base64.b64decode(value).decode() if value else default


def _attr_ints(node: dict, key: str) -> list[int]:
    return [int(v) for v in node.get("attr", {}).get(key, {}).get("list", {}).get("i", [])]


class _GraphBuilder:
    def __init__(self, nodes: list[dict], weights: dict[str, np.ndarray]):
        self.tf_nodes = nodes
        self.weights = weights
        self.consts: dict[str, np.ndarray] = {}
        self.onnx_nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self._initialized: set[str] = set()
        self._counter = 0
        self.pending: dict[str, tuple[Callable, dict, list[str]]] = {}  # lazily emitted nodes

    # -- tensor naming -------------------------------------------------------
    @staticmethod
    def ref(name: str) -> str:
        """TF input reference ("node", "node:0", "node:1") to an ONNX tensor name."""
        return name[:-2] if name.endswith(":0") else name

    def fresh(self, base: str) -> str:
        self._counter += 1
        return f"{base}__{self._counter}"

    def initializer(self, name: str, value: np.ndarray) -> str:
        if name not in self._initialized:
            self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
            self._initialized.add(name)
        return name

    def tensor(self, ref: str) -> str:
        """ONNX name of an input, materializing a folded constant or a pending node."""
        name = self.ref(ref)
        if name in self.consts:
            return self.initializer(name, self.consts[name])
        if name in self.pending:
            handler, node, inputs = self.pending.pop(name)
            handler(self, node, inputs)
        return name

    def emit(self, op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        self.onnx_nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0], **attrs))

    def nchw(self, op: str, node: dict, inputs: list[str], **attrs) -> None:
        """Run an NCHW-only ONNX op on an NHWC tensor."""
        name = node["name"]
        x_nchw, y_nchw = self.fresh(name + "/nchw_in"), self.fresh(name + "/nchw_out")
        self.emit("Transpose", [self.tensor(node["input"][0])], [x_nchw], perm=NHWC_TO_NCHW)
        self.emit(op, [x_nchw, *inputs], [y_nchw], **attrs)
        self.emit("Transpose", [y_nchw], [name], perm=NCHW_TO_NHWC)

    # -- conversion ----------------------------------------------------------
    def convert(self) -> None:
        unsupported = {n["op"] for n in self.tf_nodes} - SUPPORTED_OPS
        if unsupported:
            raise ConversionError(f"unsupported TF.js ops: {sorted(unsupported)}")
        for node in self._topological():
            inputs = [i for i in node.get("input", []) if not i.startswith("^")]
            if node["op"] == "Const":
                self._const(node)
            elif node["op"] != "Placeholder" and all(self.ref(i) in self.consts for i in inputs):
                self.consts[node["name"]] = self._fold(node, [self.consts[self.ref(i)] for i in inputs])
            else:
                self._HANDLERS[node["op"]](self, node, inputs)

    def _topological(self) -> list[dict]:
        by_name = {n["name"]: n for n in self.tf_nodes}
        order, state = [], {}
        for root in self.tf_nodes:
            stack = [(root["name"], False)]
            while stack:
                name, expanded = stack.pop()
                if expanded:
                    state[name] = "done"
                    order.append(by_name[name])
                    continue
                if state.get(name):
                    continue
                state[name] = "visiting"
                stack.append((name, True))
                for dep in by_name[name].get("input", []):
                    dep = dep.lstrip("^").split(":")[0]
                    if not state.get(dep):
                        stack.append((dep, False))
        return order

    def _const(self, node: dict) -> None:
        if node["name"] not in self.weights:
            raise ConversionError(f"constant {node['name']} has no value in the weights manifest")
        dtype = _TF_DTYPES[node["attr"]["dtype"]["type"]]
        self.consts[node["name"]] = self.weights[node["name"]].astype(dtype)

    @staticmethod
    def _fold(node: dict, values: list[np.ndarray]) -> np.ndarray:
        """Evaluate an op whose inputs are all constants (shape arithmetic)."""
        op = node["op"]
        if op in ("Add", "AddV2"):
            return values[0] + values[1]
        if op == "Identity":
            return values[0]
        if op == "SparseToDense":
            indices, shape, sparse_values, default = values
            dense = np.full(shape.astype(np.int64), default, dtype=default.dtype)
            if indices.size:
                dense[tuple(np.atleast_2d(indices.reshape(len(indices), -1)).T)] = sparse_values
            return dense
        if op == "Reshape":
            return values[0].reshape(values[1].astype(np.int64))
        if op == "Transpose":
            return values[0].transpose(values[1])
        if op == "ConcatV2":
            return np.concatenate(values[:-1], axis=int(values[-1]))
        raise ConversionError(f"cannot fold constant {op} node {node['name']}")

    def _const_input(self, node: dict, index: int) -> np.ndarray:
        name = self.ref(node["input"][index])
        if name not in self.consts:
            raise ConversionError(f"{node['op']} {node['name']}: input {index} must be constant")
        return self.consts[name]

    def _placeholder(self, node: dict, inputs: list[str]) -> None:
        dims = node["attr"]["shape"]["shape"].get("dim", [])
        shape = [int(d.get("size", -1)) if int(d.get("size", -1)) >= 0 else None for d in dims]
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(_TF_DTYPES[node["attr"]["dtype"]["type"]]))
        self.inputs.append(helper.make_tensor_value_info(node["name"], elem, shape))

    def _defer(handler: Callable) -> Callable:  # noqa: N805 (table builder)
        def defer(self: "_GraphBuilder", node: dict, inputs: list[str]) -> None:
            self.pending[node["name"]] = (handler, node, inputs)
        return defer

    def _nchw_zero_padded(self, ref: str) -> tuple[str, list[int]] | None:
        """``(x_nchw, Conv pads)`` when ``ref`` is a pending ``Transpose(Pad(x_nchw))`` to NHWC
        whose Pad adds zeros to H and W only."""
        transpose = self.pending.get(self.ref(ref))
        if transpose is None or transpose[1]["op"] != "Transpose":
            return None
        _, node, inputs = transpose
        pad = self.pending.get(self.ref(inputs[0]))
        if list(self._const_input(node, 1)) != NCHW_TO_NHWC or pad is None or pad[1]["op"] not in ("Pad", "PadV2"):
            return None
        _, pad_node, pad_inputs = pad
        paddings = self._const_input(pad_node, 1).astype(np.int64)
        value = float(self._const_input(pad_node, 2)) if pad_node["op"] == "PadV2" else 0.0
        if paddings.shape != (4, 2) or paddings[:2].any() or value != 0.0:
            return None
        (top, bottom), (left, right) = paddings[2], paddings[3]
        return pad_inputs[0], [int(top), int(left), int(bottom), int(right)]

    def _pad(self, node: dict, inputs: list[str]) -> None:
        paddings = self._const_input(node, 1).astype(np.int64)
        pads = self.initializer(node["name"] + "/pads", np.concatenate([paddings[:, 0], paddings[:, 1]]))
        args = [self.tensor(inputs[0]), pads]
        if node["op"] == "PadV2":
            args.append(self.tensor(inputs[2]))
        self.emit("Pad", args, [node["name"]], mode="constant")

    def _window_attrs(self, node: dict) -> dict:
        if _attr_str(node, "data_format", "NHWC") != "NHWC":
            raise ConversionError(f"{node['name']}: only NHWC data_format is supported")
        padding = _attr_str(node, "padding", "VALID")
        if padding not in ("VALID", "SAME"):
            raise ConversionError(f"{node['name']}: padding {padding} is not supported")
        strides = _attr_ints(node, "strides") or [1, 1, 1, 1]
        return {"strides": strides[1:3], "auto_pad": "VALID" if padding == "VALID" else "SAME_UPPER"}

    def _conv2d(self, node: dict, inputs: list[str]) -> None:
        filt = self._const_input(node, 1)  # HWIO
        weight = self.initializer(node["name"] + "/W", filt.transpose(3, 2, 0, 1).astype(np.float32))
        dilations = (_attr_ints(node, "dilations") or [1, 1, 1, 1])[1:3]
        window = self._window_attrs(node)
        padded = self._nchw_zero_padded(node["input"][0]) if window["auto_pad"] == "VALID" else None
        if padded is None:
            self.nchw("Conv", node, [weight], kernel_shape=list(filt.shape[:2]), dilations=dilations, **window)
            return
        x_nchw, pads = padded
        y_nchw = self.fresh(node["name"] + "/nchw_out")
        self.emit("Conv", [self.tensor(x_nchw), weight], [y_nchw], kernel_shape=list(filt.shape[:2]),
                  dilations=dilations, strides=window["strides"], pads=pads)
        self.emit("Transpose", [y_nchw], [node["name"]], perm=NCHW_TO_NHWC)

    def _maxpool(self, node: dict, inputs: list[str]) -> None:
        self.nchw("MaxPool", node, [], kernel_shape=_attr_ints(node, "ksize")[1:3],
                  **self._window_attrs(node))

    def _resize_bilinear(self, node: dict, inputs: list[str]) -> None:
        if node["attr"].get("align_corners", {}).get("b"):
            mode = "align_corners"
        elif node["attr"].get("half_pixel_centers", {}).get("b"):
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        # sizes must name every axis: batch and channels come from the input's runtime shape
        # (ONNX Runtime rejects Resize's `axes` attribute here); static, so folded at load.
        name = node["name"]
        hw = self.initializer(name + "/hw", self._const_input(node, 1).astype(np.int64))
        shape, batch_channels, sizes = (self.fresh(name + s) for s in ("/shape", "/nc", "/sizes"))
        self.emit("Shape", [self.tensor(inputs[0])], [shape])
        self.emit("Gather", [shape, self.initializer(name + "/nc_idx", np.array([0, 3]))],
                  [batch_channels], axis=0)
        self.emit("Concat", [batch_channels, hw], [sizes], axis=0)
        self.nchw("Resize", node, ["", "", sizes], mode="linear",
                  coordinate_transformation_mode=mode)

    def _concat(self, node: dict, inputs: list[str]) -> None:
        axis = int(self._const_input(node, len(inputs) - 1))
        self.emit("Concat", [self.tensor(i) for i in inputs[:-1]], [node["name"]], axis=axis)

    def _splitv(self, node: dict, inputs: list[str]) -> None:
        sizes = self._const_input(node, 1).astype(np.int64)
        axis = int(self._const_input(node, 2))
        outputs = [node["name"]] + [f"{node['name']}:{k}" for k in range(1, len(sizes))]
        split = self.initializer(node["name"] + "/split", sizes)
        self.emit("Split", [self.tensor(inputs[0]), split], outputs, axis=axis)

    def _reshape(self, node: dict, inputs: list[str]) -> None:
        shape = self.initializer(node["name"] + "/shape", self._const_input(node, 1).astype(np.int64))
        self.emit("Reshape", [self.tensor(inputs[0]), shape], [node["name"]])

    def _transpose(self, node: dict, inputs: list[str]) -> None:
        perm = [int(p) for p in self._const_input(node, 1)]
        self.emit("Transpose", [self.tensor(inputs[0])], [node["name"]], perm=perm)

    def _elementwise(onnx_op: str, **attrs) -> Callable:  # noqa: N805 (table builder)
        def handler(self: "_GraphBuilder", node: dict, inputs: list[str]) -> None:
            extra = {k: f(node) for k, f in attrs.items()}
            self.emit(onnx_op, [self.tensor(i) for i in inputs], [node["name"]], **extra)
        return handler

    _HANDLERS: dict[str, Callable] = {
        "Placeholder": _placeholder, "Pad": _defer(_pad), "PadV2": _defer(_pad), "Conv2D": _conv2d,
        "MaxPool": _maxpool, "ResizeBilinear": _resize_bilinear, "ConcatV2": _concat,
        "SplitV": _splitv, "Reshape": _reshape, "Transpose": _defer(_transpose),
        "Add": _elementwise("Add"), "AddV2": _elementwise("Add"),
        "Sigmoid": _elementwise("Sigmoid"), "Identity": _elementwise("Identity"),
        "LeakyRelu": _elementwise("LeakyRelu", alpha=lambda n: float(n["attr"]["alpha"]["f"])),
    }


def convert_tfjs_graph(model_json: Path, output: Path) -> onnx.ModelProto:
    """Convert ``model_json`` (and the weight shards beside it) to an ONNX file at ``output``.

    Graph outputs keep the signature's names without the ``:0`` suffix, in
    signature order, e.g. ``Identity``, ``Identity_1``, ...
    """
    model_json = Path(model_json)
    spec = json.loads(model_json.read_text())
    if spec.get("format") != "graph-model":
        raise ConversionError(f"{model_json} is not a TF.js graph model (format={spec.get('format')})")
    weights = read_weights(spec["weightsManifest"], model_json.parent)
    builder = _GraphBuilder(spec["modelTopology"]["node"], weights)
    builder.convert()
    outputs = []
    signature = spec["signature"]["outputs"]
    for key in sorted(signature, key=lambda k: (len(k), k)):
        dims = signature[key].get("tensorShape", {}).get("dim", [])
        shape = [int(d["size"]) if int(d.get("size", -1)) >= 0 else None for d in dims]
        outputs.append(helper.make_tensor_value_info(builder.tensor(key), TensorProto.FLOAT, shape))
    graph = helper.make_graph(builder.onnx_nodes, model_json.stem, builder.inputs, outputs,
                              builder.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="spoton.tfjs_onnx")
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(output))
    return model
