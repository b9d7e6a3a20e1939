#!/usr/bin/env python3
"""Convert MediaPipe selfie segmentation TFLite models to ONNX, without TensorFlow.

The default models of obs-backdrop are MediaPipe selfie segmentation, general (256x256) and
landscape (144x256), Apache-2.0, shipped as TFLite flatbuffers in the npm package
``@mediapipe/selfie_segmentation@0.1.1675465747`` (``package/selfie_segmentation.tflite`` and
``package/selfie_segmentation_landscape.tflite``). This script reads the flatbuffer with the PyPI
package ``tflite`` (a generated flatbuffer reader, no TensorFlow) and writes an ONNX graph with the
PyPI package ``onnx`` (opset 17, IR version 8), using ``numpy`` for the weights.

Graph interface (the tensor names of the TFLite graph and of the reference tf2onnx conversions,
in the layouts that are cheapest for ONNX Runtime's CPU kernels):

* input: the TFLite input tensor name (``input_1``), float32 NCHW ``[1, 3, H, W]``, RGB in 0..1
  (the TFLite graph and tf2onnx's conversion take NHWC ``[1, H, W, 3]``: the plugin packs the
  planes itself, so no ``Transpose`` runs on the image);
* output: the TFLite output tensor name (``activation_10`` for general, ``segment_back`` for
  landscape), person probability 0..1 (sigmoid already applied), float32 ``[1, 4, H/2, W/2]``
  in ONNX ``DepthToSpace`` order with block size 2: channel ``dy * 2 + dx`` holds mask pixel
  ``(2 y + dy, 2 x + dx)``. The models end in a 2x2 stride-2 transposed convolution to one
  channel, which is exactly a 1x1 convolution to 4 channels followed by that rearrangement; the
  plugin does the rearrangement while it reads the output (manifest ``"block": 2``). This keeps
  ONNX Runtime's blocked-layout convolutions to the end and drops its slow ``ConvTranspose`` and
  the output ``Transpose``. Any other 4-D output stays NHWC ``[1, H, W, C]``.

Inside, the graph is NCHW.
Supported TFLite operators: ADD, AVERAGE_POOL_2D, CONV_2D, DEPTHWISE_CONV_2D, DEQUANTIZE (float16
or int8/uint8 constant weights, folded into float32 initializers), HARD_SWISH, LOGISTIC, MEAN, MUL,
RELU, RELU6, RESIZE_BILINEAR, and MediaPipe's custom op ``Convolution2DTransposeBias`` (ONNX
``ConvTranspose`` with bias). Fused activations (RELU, RELU6, RELU_N1_TO_1, TANH) and TFLite
SAME/VALID padding (explicit, possibly asymmetric ONNX pads) are handled. Any other operator is a
hard error naming the operator: the converter never guesses.

Usage::

    python models/convert.py --tflite selfie_segmentation.tflite --output selfie_segmentation.onnx
    python models/convert.py --package mediapipe-selfie_segmentation-0.1.1675465747.tgz \\
        --output-dir build/models

The second form converts both models straight from the npm tarball (``npm pack`` output) into
``selfie_segmentation.onnx`` and ``selfie_segmentation_landscape.onnx``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tarfile

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # readable by every ONNX Runtime since 1.10

# Members of the npm tarball -> ONNX file names written by --package.
PACKAGE_MODELS = {
    "package/selfie_segmentation.tflite": "selfie_segmentation.onnx",
    "package/selfie_segmentation_landscape.tflite": "selfie_segmentation_landscape.onnx",
}

_BUILTIN_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

_TFLITE_DTYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT8: np.int8,
}

# MediaPipe's TfLiteTransposeConvParams stores TfLitePadding (C enum), not the schema's Padding.
_TFLITE_C_PADDING = {1: "SAME", 2: "VALID"}

NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]
# Axis i of an NHWC tensor is axis _AXIS_NHWC_TO_NCHW[i] of the NCHW tensor.
_AXIS_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


class ConversionError(Exception):
    """The TFLite graph uses something this converter does not support."""


def _same_pads(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite/TensorFlow SAME padding for one spatial axis: (before, after), before <= after."""
    eff_k = (kernel - 1) * dilation + 1
    out = -(-in_size // stride)
    total = max((out - 1) * stride + eff_k - in_size, 0)
    return total // 2, total - total // 2


class Converter:
    """Converts subgraph 0 of one TFLite model into an ONNX ModelProto."""

    def __init__(self, data: bytes, source: str = ""):
        self.data = data
        self.source = source
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise ConversionError(f"expected 1 subgraph, found {self.model.SubgraphsLength()}")
        self.graph = self.model.Subgraphs(0)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.consts: dict[int, np.ndarray] = {}  # tensor index -> value (TFLite layout)
        self.values: dict[int, str] = {}  # tensor index -> ONNX name of the (NCHW if 4-D) value
        self.used_names: set[str] = set()
        self.tensor_names = self._unique_tensor_names()
        self._counter = 0

    # ---- names and helpers -------------------------------------------------------------
    def _unique_tensor_names(self) -> list[str]:
        names = []
        seen: set[str] = set()
        for i in range(self.graph.TensorsLength()):
            raw = self.graph.Tensors(i).Name()
            name = raw.decode("utf-8") if raw else f"tensor_{i}"
            if name in seen:
                name = f"{name}__{i}"
            seen.add(name)
            names.append(name)
        self.used_names.update(names)
        return names

    def fresh(self, base: str) -> str:
        while True:
            self._counter += 1
            name = f"{base}__{self._counter}"
            if name not in self.used_names:
                self.used_names.add(name)
                return name

    def add_node(self, op_type: str, inputs: list[str], outputs: list[str], name: str | None = None,
                 **attrs) -> None:
        self.nodes.append(helper.make_node(op_type, inputs, outputs,
                                           name=name or self.fresh(op_type), **attrs))

    def add_init(self, base: str, array: np.ndarray) -> str:
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def tensor(self, idx: int):
        return self.graph.Tensors(idx)

    def shape(self, idx: int) -> list[int]:
        t = self.tensor(idx)
        return [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []

    # ---- constants ---------------------------------------------------------------------
    def buffer_value(self, idx: int) -> np.ndarray | None:
        """Raw constant stored in the flatbuffer for tensor idx, or None for activations."""
        t = self.tensor(idx)
        buf = self.model.Buffers(t.Buffer())
        if buf is None:
            return None
        if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
            raw = np.frombuffer(self.data, np.uint8, int(buf.Size()), int(buf.Offset()))
        elif buf.DataLength() > 0:
            raw = buf.DataAsNumpy()
        else:
            return None
        dtype = _TFLITE_DTYPES.get(t.Type())
        if dtype is None:
            raise ConversionError(f"tensor {self.tensor_names[idx]}: unsupported type {t.Type()}")
        return np.frombuffer(raw.tobytes(), dtype=np.dtype(dtype).newbyteorder("<")).astype(
            dtype).reshape(self.shape(idx))

    def const(self, idx: int) -> np.ndarray | None:
        if idx in self.consts:
            return self.consts[idx]
        value = self.buffer_value(idx)
        if value is not None:
            self.consts[idx] = value
        return value

    def require_const(self, idx: int, what: str) -> np.ndarray:
        value = self.const(idx)
        if value is None:
            raise ConversionError(f"{what} ({self.tensor_names[idx]}) must be a constant")
        return value

    def value(self, idx: int, out_rank: int = 4) -> str:
        """ONNX name of tensor idx as an operand; constants become initializers in NCHW layout
        (rank < 4 constants are left-padded to rank 4 the NHWC way first, as numpy broadcasts)."""
        if idx in self.values:
            return self.values[idx]
        value = self.const(idx)
        if value is None:
            raise ConversionError(f"tensor {self.tensor_names[idx]} is used before it is produced")
        if value.dtype == np.float16:
            value = value.astype(np.float32)
        if out_rank == 4 and value.ndim <= 4 and value.size > 1:
            value = value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(NHWC_TO_NCHW)
        name = self.add_init(self.tensor_names[idx], value)
        self.values[idx] = name
        return name

    def set_output(self, idx: int, name: str | None = None) -> str:
        """Register the ONNX name that carries tensor idx and return it."""
        name = name or self.tensor_names[idx]
        self.values[idx] = name
        return name

    # ---- fused activations ---------------------------------------------------------------
    def fused(self, opts, out_idx: int, op_type: str, inputs: list[str], **attrs) -> None:
        act = opts.FusedActivationFunction() if opts is not None else 0
        out = self.tensor_names[out_idx]
        if act == tflite.ActivationFunctionType.NONE:
            self.add_node(op_type, inputs, [out], **attrs)
        else:
            pre = self.fresh(out + "_preact")
            self.add_node(op_type, inputs, [pre], **attrs)
            self.activation(act, pre, out)
        self.set_output(out_idx)

    def activation(self, act: int, src: str, dst: str) -> None:
        A = tflite.ActivationFunctionType
        if act == A.RELU:
            self.add_node("Relu", [src], [dst])
        elif act in (A.RELU6, A.RELU_N1_TO_1):
            lo, hi = (0.0, 6.0) if act == A.RELU6 else (-1.0, 1.0)
            self.add_node("Clip", [src, self.add_init("clip_min", np.array(lo, np.float32)),
                                   self.add_init("clip_max", np.array(hi, np.float32))], [dst])
        elif act == A.TANH:
            self.add_node("Tanh", [src], [dst])
        else:
            raise ConversionError(f"unsupported fused activation {act}")

    # ---- operators -----------------------------------------------------------------------
    def op_dequantize(self, op, opts) -> None:
        src, dst = op.Inputs(0), op.Outputs(0)
        value = self.const(src)
        if value is None:
            raise ConversionError("DEQUANTIZE of a non-constant tensor is not supported")
        if value.dtype == np.float16:
            out = value.astype(np.float32)
        else:
            q = self.tensor(src).Quantization()
            if q is None or q.ScaleLength() == 0:
                raise ConversionError(f"DEQUANTIZE of {value.dtype} without quantization params")
            scale = q.ScaleAsNumpy().astype(np.float32)
            zero = q.ZeroPointAsNumpy().astype(np.float32) if q.ZeroPointLength() else 0.0
            if scale.size > 1:
                bshape = [1] * value.ndim
                bshape[q.QuantizedDimension()] = -1
                scale, zero = scale.reshape(bshape), np.reshape(zero, bshape)
            out = ((value.astype(np.float32) - zero) * scale).astype(np.float32)
        self.consts[dst] = out

    def _conv_pads(self, padding: int, in_hw, k_hw, strides, dilations) -> list[int]:
        if padding == tflite.Padding.VALID:
            return [0, 0, 0, 0]
        (t, b), (l, r) = (_same_pads(in_hw[i], k_hw[i], strides[i], dilations[i]) for i in (0, 1))
        return [t, l, b, r]

    def op_conv_2d(self, op, opts, depthwise: bool = False) -> None:
        x, w_idx = op.Inputs(0), op.Inputs(1)
        w = self.require_const(w_idx, "convolution kernel").astype(np.float32)
        in_shape = self.shape(x)  # NHWC
        strides = [opts.StrideH(), opts.StrideW()]
        dilations = [opts.DilationHFactor(), opts.DilationWFactor()]
        if depthwise:  # [1, kh, kw, C*M] -> [C*M, 1, kh, kw], group = C
            w_onnx = w.transpose(3, 0, 1, 2)
            group = in_shape[3]
            if w_onnx.shape[0] % group:
                raise ConversionError("depthwise kernel channels are not a multiple of input channels")
        else:  # [O, kh, kw, I] -> [O, I, kh, kw]
            w_onnx = w.transpose(0, 3, 1, 2)
            group = in_shape[3] // w.shape[3]
        k_hw = list(w_onnx.shape[2:])
        inputs = [self.value(x), self.add_init(self.tensor_names[w_idx], w_onnx)]
        if op.InputsLength() > 2 and op.Inputs(2) >= 0:
            bias = self.require_const(op.Inputs(2), "convolution bias").astype(np.float32)
            inputs.append(self.add_init(self.tensor_names[op.Inputs(2)], bias))
        pads = self._conv_pads(opts.Padding(), in_shape[1:3], k_hw, strides, dilations)
        self.fused(opts, op.Outputs(0), "Conv", inputs, kernel_shape=k_hw, strides=strides,
                   dilations=dilations, pads=pads, group=group)

    def op_depthwise_conv_2d(self, op, opts) -> None:
        self.op_conv_2d(op, opts, depthwise=True)

    def op_average_pool_2d(self, op, opts) -> None:
        x = op.Inputs(0)
        k_hw = [opts.FilterHeight(), opts.FilterWidth()]
        strides = [opts.StrideH(), opts.StrideW()]
        pads = self._conv_pads(opts.Padding(), self.shape(x)[1:3], k_hw, strides, [1, 1])
        # TFLite averages over valid pixels only: count_include_pad = 0.
        self.fused(opts, op.Outputs(0), "AveragePool", [self.value(x)], kernel_shape=k_hw,
                   strides=strides, pads=pads, count_include_pad=0)

    def _binary(self, op, opts, op_type: str) -> None:
        rank = len(self.shape(op.Outputs(0)))
        if rank != 4:
            raise ConversionError(f"{op_type} on rank-{rank} tensors is not supported")
        a, b = op.Inputs(0), op.Inputs(1)
        self.fused(opts, op.Outputs(0), op_type,
                   [self._broadcast_channels(a, b), self._broadcast_channels(b, a)])

    def _broadcast_channels(self, idx: int, other: int) -> str:
        """Operand idx of a binary op; a per-channel activation ``[1, 1, 1, C]`` (the scale of a
        squeeze-and-excitation block) against a ``[1, H, W, C]`` one is first repeated to H x W
        with a nearest-neighbour ``Resize`` by whole-number scales.

        The numbers do not change (nearest repeats values exactly). Why: ONNX Runtime's CPU
        layout optimiser (the NCHWc transformer, graph optimisation level "all") keeps only
        same-shape element-wise ops in its blocked layout, and turns an integer-scale nearest
        ``Resize`` into its blocked ``Upsample``. With the broadcasting ``Mul`` every SE block
        converted both operands back to NCHW and the product back to NCHWc: 24 ``ReorderOutput``
        and 10 ``ReorderInput`` nodes per inference, 14 % of the run. Measured with ONNX
        Runtime 1.31.1, 1 thread, on this project's 2-core machine: general model 3.65 -> 3.07 ms
        CPU per inference, landscape 1.96 -> 1.62 ms; max abs difference of the outputs 1.1e-5
        (float32 summation order of the fused convolutions).
        """
        name = self.value(idx)
        shape, other_shape = self.shape(idx), self.shape(other)
        if (self.const(idx) is not None or self.const(other) is not None
                or len(shape) != 4 or len(other_shape) != 4
                or shape[1:3] != [1, 1] or other_shape[1:3] == [1, 1]
                or shape[3] != other_shape[3]):
            return name
        scales = self.add_init(self.tensor_names[idx] + "_repeat",
                               np.array([1, 1, other_shape[1], other_shape[2]], np.float32))
        repeated = self.fresh(self.tensor_names[idx] + "_repeated")
        self.add_node("Resize", [name, "", scales], [repeated], mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return repeated

    def op_add(self, op, opts) -> None:
        self._binary(op, opts, "Add")

    def op_mul(self, op, opts) -> None:
        self._binary(op, opts, "Mul")

    def _unary(self, op, op_type: str) -> None:
        self.add_node(op_type, [self.value(op.Inputs(0))], [self.tensor_names[op.Outputs(0)]])
        self.set_output(op.Outputs(0))

    def op_relu(self, op, opts) -> None:
        self._unary(op, "Relu")

    def op_relu6(self, op, opts) -> None:
        self.activation(tflite.ActivationFunctionType.RELU6, self.value(op.Inputs(0)),
                        self.tensor_names[op.Outputs(0)])
        self.set_output(op.Outputs(0))

    def op_logistic(self, op, opts) -> None:
        self._unary(op, "Sigmoid")

    def op_hard_swish(self, op, opts) -> None:
        self._unary(op, "HardSwish")

    def op_mean(self, op, opts) -> None:
        x, out = op.Inputs(0), op.Outputs(0)
        axes = [int(a) % 4 for a in np.atleast_1d(self.require_const(op.Inputs(1), "MEAN axes"))]
        if len(self.shape(x)) != 4 or not opts.KeepDims():
            raise ConversionError("MEAN is supported on 4-D tensors with keep_dims only")
        if sorted(axes) == [1, 2]:
            # Global average over H, W (squeeze-and-excitation blocks of the landscape model).
            # GlobalAveragePool and ReduceMean round differently in float32 and this model
            # amplifies that: on the 96 test portraits, against the reference conversion,
            # GlobalAveragePool gives max abs diff 2.6e-5 and ReduceMean 1.0e-4; against a float64
            # evaluation of the same graph 7.6e-5 and 5.6e-5, the reference itself 8.3e-5.
            self.add_node("GlobalAveragePool", [self.value(x)], [self.tensor_names[out]])
        else:
            self.add_node("ReduceMean", [self.value(x)], [self.tensor_names[out]],
                          axes=sorted(_AXIS_NHWC_TO_NCHW[a] for a in axes), keepdims=1)
        self.set_output(out)

    def op_resize_bilinear(self, op, opts) -> None:
        x, out = op.Inputs(0), op.Outputs(0)
        size = self.require_const(op.Inputs(1), "RESIZE_BILINEAR size").astype(np.int64)
        n, _, _, c = self.shape(x)
        if opts is not None and opts.AlignCorners():
            mode = "align_corners"
        elif opts is not None and opts.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"  # TF's legacy resize: in = out * in_size / out_size
        sizes = self.add_init(self.tensor_names[op.Inputs(1)] + "_nchw",
                              np.array([n, c, size[0], size[1]], np.int64))
        self.add_node("Resize", [self.value(x), "", "", sizes], [self.tensor_names[out]],
                      mode="linear", coordinate_transformation_mode=mode)
        self.set_output(out)

    def op_custom_convolution2dtransposebias(self, op, opts) -> None:
        """MediaPipe's transposed convolution with bias (mediapipe/util/tflite/operations/
        transpose_conv_bias.cc). Custom options are TfLiteTransposeConvParams: int32 padding
        (TfLitePadding: 1 SAME, 2 VALID), int32 stride_width, int32 stride_height."""
        raw = op.CustomOptionsAsNumpy()
        if raw is None or len(raw) < 12:
            raise ConversionError("Convolution2DTransposeBias: expected 12 bytes of custom options")
        padding_c, stride_w, stride_h = (int(v) for v in np.frombuffer(raw.tobytes()[:12], "<i4"))
        padding = _TFLITE_C_PADDING.get(padding_c)
        if padding is None:
            raise ConversionError(f"Convolution2DTransposeBias: unknown padding {padding_c}")
        x, w_idx, b_idx, out = op.Inputs(0), op.Inputs(1), op.Inputs(2), op.Outputs(0)
        w = self.require_const(w_idx, "transposed convolution kernel").astype(np.float32)
        bias = self.require_const(b_idx, "transposed convolution bias").astype(np.float32)
        w_onnx = w.transpose(3, 0, 1, 2)  # [O, kh, kw, I] -> [I, O, kh, kw]
        k_hw = list(w_onnx.shape[2:])
        strides = [stride_h, stride_w]
        in_hw = self.shape(x)[1:3]
        pads = [0, 0, 0, 0]
        if padding == "SAME":  # output = input * stride; crop the excess like TF does
            crop = [max(k_hw[i] - strides[i], 0) for i in (0, 1)]
            pads = [crop[0] // 2, crop[1] // 2, crop[0] - crop[0] // 2, crop[1] - crop[1] // 2]
        out_hw = self.shape(out)[1:3]
        expect = [(in_hw[i] - 1) * strides[i] + k_hw[i] - pads[i] - pads[i + 2] for i in (0, 1)]
        if expect != out_hw:
            raise ConversionError(f"Convolution2DTransposeBias: output {out_hw}, computed {expect}")
        self.add_node("ConvTranspose",
                      [self.value(x), self.add_init(self.tensor_names[w_idx], w_onnx),
                       self.add_init(self.tensor_names[b_idx], bias)],
                      [self.tensor_names[out]], kernel_shape=k_hw, strides=strides, pads=pads)
        self.set_output(out)

    def _depth_packed_output(self, idx: int, public: str) -> list[int] | None:
        """Rewrites a graph output made by ``Sigmoid(ConvTranspose(x))`` with a ``b`` x ``b``
        kernel, stride ``b``, no padding and one output channel into ``Sigmoid(Conv1x1(x))`` with
        ``b * b`` channels, named ``public``: the same values in ONNX ``DepthToSpace`` order
        (channel ``dy * b + dx`` holds pixel ``(b y + dy, b x + dx)``; with one output channel
        DCR and CRD order agree). Returns the new output shape ``[1, b * b, H / b, W / b]``, or
        None (graph unchanged) when the output is not made that way."""
        producers = {o: n for n in self.nodes for o in n.output}
        act = producers.get(self.value(idx))
        if act is None or act.op_type != "Sigmoid":
            return None
        if any(i == act.output[0] for n in self.nodes for i in n.input):
            return None  # the output is also used inside the graph
        conv = producers.get(act.input[0])
        if conv is None or conv.op_type != "ConvTranspose" or len(conv.input) != 3:
            return None
        if sum(i == conv.output[0] for n in self.nodes for i in n.input) != 1:
            return None  # the transposed convolution's output is used elsewhere too
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        kernel, strides = list(attrs["kernel_shape"]), list(attrs.get("strides", [1, 1]))
        if (kernel != strides or kernel[0] != kernel[1] or any(attrs.get("pads", []))
                or set(attrs) - {"kernel_shape", "strides", "pads"}):
            return None
        inits = {t.name: t for t in self.initializers}
        if conv.input[1] not in inits or conv.input[2] not in inits:
            return None
        w = numpy_helper.to_array(inits[conv.input[1]])  # [I, O, b, b]
        bias = numpy_helper.to_array(inits[conv.input[2]])
        if w.shape[1] != 1:
            return None
        b, channels = kernel[0], w.shape[0]
        w_1x1 = w[:, 0].reshape(channels, b * b).T.reshape(b * b, channels, 1, 1)
        bias_1x1 = np.repeat(bias, b * b)
        for name in conv.input[1:]:
            self.initializers.remove(inits[name])
        conv_1x1 = helper.make_node(
            "Conv",
            [conv.input[0], self.add_init(conv.input[1] + "_1x1", w_1x1),
             self.add_init(conv.input[2] + "_1x1", bias_1x1)],
            list(conv.output), name=self.fresh("Conv"), kernel_shape=[1, 1])
        self.nodes[self.nodes.index(conv)] = conv_1x1
        act.output[0] = public
        _, h, w_px, _ = self.shape(idx)
        return [1, b * b, h // b, w_px // b]

    # ---- driver --------------------------------------------------------------------------
    def _options(self, op, name: str):
        table = op.BuiltinOptions()
        if table is None:
            return None
        cls = {
            "CONV_2D": tflite.Conv2DOptions,
            "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
            "AVERAGE_POOL_2D": tflite.Pool2DOptions,
            "ADD": tflite.AddOptions,
            "MUL": tflite.MulOptions,
            "MEAN": tflite.ReducerOptions,
            "RESIZE_BILINEAR": tflite.ResizeBilinearOptions,
        }.get(name)
        if cls is None:
            return None
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def _op_name(self, op) -> str:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == tflite.BuiltinOperator.CUSTOM:
            return "CUSTOM_" + code.CustomCode().decode("utf-8")
        return _BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}")

    def convert(self) -> onnx.ModelProto:
        g = self.graph
        graph_inputs, graph_outputs = [], []
        for i in range(g.InputsLength()):
            idx = g.Inputs(i)
            name, shape = self.tensor_names[idx], self.shape(idx)
            if self.tensor(idx).Type() != tflite.TensorType.FLOAT32:
                raise ConversionError(f"input {name} is not float32")
            if len(shape) == 4:
                shape = [shape[i] for i in NHWC_TO_NCHW]  # the graph input is NCHW
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
            self.set_output(idx, name)

        out_idx = [g.Outputs(i) for i in range(g.OutputsLength())]
        # The graph outputs keep their TFLite names in NHWC; their NCHW producers get new names.
        public_names = {idx: self.tensor_names[idx] for idx in out_idx}
        for idx in out_idx:
            if len(self.shape(idx)) == 4:
                self.tensor_names[idx] = self.fresh(public_names[idx] + "_nchw")

        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            name = self._op_name(op)
            handler = getattr(self, "op_" + name.lower(), None)
            if handler is None:
                raise ConversionError(f"operator {name} (op #{i}) is not supported")
            handler(op, self._options(op, name))

        for idx in out_idx:
            shape = self.shape(idx)
            packed = self._depth_packed_output(idx, public_names[idx]) if len(shape) == 4 else None
            if packed is not None:
                public, shape = public_names[idx], packed
            elif len(shape) == 4:
                public = public_names[idx]
                self.add_node("Transpose", [self.value(idx)], [public], perm=NCHW_TO_NHWC)
            else:
                public = self.value(idx)
            graph_outputs.append(helper.make_tensor_value_info(public, TensorProto.FLOAT, shape))

        desc = self.model.Description()
        graph = helper.make_graph(self.nodes, (desc or b"tflite").decode("utf-8", "replace"),
                                  graph_inputs, graph_outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="obs-backdrop models/convert.py",
                                  producer_version="1")
        model.ir_version = IR_VERSION
        model.doc_string = f"Converted from TFLite {self.source}".strip()
        helper.set_model_props(model, {
            "source": self.source,
            "source_sha256": hashlib.sha256(self.data).hexdigest(),
        })
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
        return model


def convert_bytes(data: bytes, source: str = "") -> onnx.ModelProto:
    """Convert the bytes of a .tflite file into a checked ONNX model."""
    return Converter(data, source).convert()


def _write(model: onnx.ModelProto, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, path)  # never leave a half-written model behind


def _describe(model: onnx.ModelProto) -> str:
    def io(v):
        dims = [d.dim_value for d in v.type.tensor_type.shape.dim]
        return f"{v.name}{dims}"
    return (f"{len(model.graph.node)} nodes, in {', '.join(io(v) for v in model.graph.input)}, "
            f"out {', '.join(io(v) for v in model.graph.output)}")


# --- Server-side variants (KServe v2 / Triton) ---------------------------------------------------

def server_variant(model: onnx.ModelProto, manifest: dict, dynamic_batch: bool = False) -> onnx.ModelProto:
    """A copy of ``model`` that takes what obs-backdrop sends to an inference server.

    The input keeps the manifest's name but becomes UINT8 NHWC ``[1, H, W, 3]``: the pixels in
    the manifest's channel order, 0..255, a quarter of the bytes of the float32 tensor. In front
    of the original graph the variant casts to float32, transposes to the manifest's layout and
    applies the manifest's ``(x - mean) / std``, so the server computes exactly what the plugin's
    own packer feeds the local model. A probability output keeps its name and shape but becomes
    UINT16 ``round(p * 65535)``: half the bytes, within 7.7e-6 of the float. With ``dynamic_batch`` the first
    dimension of the input and output is the symbolic ``batch`` (Triton's dynamic batching,
    ``max_batch_size`` > 0 in ``config.pbtxt``).
    """
    spec = manifest["input"]
    name = spec["name"]
    layout = spec["layout"].upper()
    shape = list(spec["shape"])
    h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inner = name + "_normalized"
    for node in graph.node:
        node.input[:] = [inner if i == name else i for i in node.input]
    old = [i for i in graph.input if i.name == name]
    if len(old) != 1:
        raise ConversionError(f"model has no input named {name!r}")
    if old[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ConversionError(f"input {name!r} is not float32")
    graph.input.remove(old[0])
    batch = "batch" if dynamic_batch else 1
    graph.input.insert(0, helper.make_tensor_value_info(name, TensorProto.UINT8, [batch, h, w, 3]))
    channel_shape = [1, 3, 1, 1] if layout == "NCHW" else [1, 1, 1, 3]
    mean = numpy_helper.from_array(np.asarray(spec["mean"], np.float32).reshape(channel_shape),
                                   name + "_mean")
    std = numpy_helper.from_array(np.asarray(spec["std"], np.float32).reshape(channel_shape),
                                  name + "_std")
    graph.initializer.extend([mean, std])
    nodes = [helper.make_node("Cast", [name], [name + "_float"], to=TensorProto.FLOAT)]
    x = name + "_float"
    if layout == "NCHW":
        nodes.append(helper.make_node("Transpose", [x], [name + "_nchw"], perm=NHWC_TO_NCHW))
        x = name + "_nchw"
    nodes.append(helper.make_node("Sub", [x, mean.name], [name + "_centred"]))
    nodes.append(helper.make_node("Div", [name + "_centred", std.name], [inner]))
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
    # The answer: the probability as UINT16 (p * 65535, rounded), half the bytes of FP32 and
    # within 7.7e-6 of it (the plugin divides by 65535).
    out_spec = manifest["output"]
    if out_spec.get("kind", "probability") == "probability":
        outs = [o for o in graph.output if o.name == out_spec["name"]]
        if len(outs) != 1:
            raise ConversionError(f"model has no output named {out_spec['name']!r}")
        prob = out_spec["name"] + "_probability"
        for node in graph.node:
            node.output[:] = [prob if o == out_spec["name"] else o for o in node.output]
            node.input[:] = [prob if i == out_spec["name"] else i for i in node.input]
        scale = numpy_helper.from_array(np.asarray(65535.0, np.float32), prob + "_scale")
        half = numpy_helper.from_array(np.asarray(0.5, np.float32), prob + "_half")
        lo = numpy_helper.from_array(np.asarray(0.0, np.float32), prob + "_lo")
        graph.initializer.extend([scale, half, lo])
        graph.node.extend([
            helper.make_node("Mul", [prob, scale.name], [prob + "_scaled"]),
            helper.make_node("Add", [prob + "_scaled", half.name], [prob + "_rounded"]),
            helper.make_node("Clip", [prob + "_rounded", lo.name, scale.name], [prob + "_clipped"]),
            helper.make_node("Cast", [prob + "_clipped"], [out_spec["name"]], to=TensorProto.UINT16),
        ])
        outs[0].type.tensor_type.elem_type = TensorProto.UINT16
    if dynamic_batch:
        _batch_free_resizes(graph)
        for v in graph.output:
            v.type.tensor_type.shape.dim[0].dim_param = "batch"
        del graph.value_info[:]  # re-inferred below with the symbolic batch
    out = onnx.shape_inference.infer_shapes(out, check_type=True, strict_mode=True)
    onnx.checker.check_model(out, full_check=True)
    return out


def _batch_free_resizes(graph: onnx.GraphProto) -> None:
    """Makes every ``Resize`` whose output ``sizes`` is a constant ``[1, C, H, W]`` take its
    batch and channels from its input instead (``Shape`` -> ``Slice`` -> ``Concat``), so the
    graph runs on any batch (the bilinear resizes of the MediaPipe models are written with
    fixed sizes)."""
    consts = {t.name: t for t in graph.initializer}
    new_nodes = []
    for node in graph.node:
        if node.op_type == "Resize" and len(node.input) == 4 and node.input[3] in consts:
            sizes = numpy_helper.to_array(consts[node.input[3]])
            base = node.name or node.output[0]
            hw = numpy_helper.from_array(sizes[2:].astype(np.int64), base + "_hw")
            start = numpy_helper.from_array(np.array([0], np.int64), base + "_nc_start")
            end = numpy_helper.from_array(np.array([2], np.int64), base + "_nc_end")
            graph.initializer.extend([hw, start, end])
            new_nodes += [
                helper.make_node("Shape", [node.input[0]], [base + "_shape"]),
                helper.make_node("Slice", [base + "_shape", start.name, end.name], [base + "_nc"]),
                helper.make_node("Concat", [base + "_nc", hw.name], [base + "_sizes"], axis=0),
            ]
            node.input[3] = base + "_sizes"
        new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    used = {i for n in graph.node for i in n.input}
    unused = [t for t in graph.initializer if t.name not in used]
    for t in unused:
        graph.initializer.remove(t)


def server_config(model: onnx.ModelProto, manifest: dict, max_batch_size: int = 0,
                  instances: int = 1, name: str | None = None) -> str:
    """Triton's ``config.pbtxt`` for ``model`` (a :func:`server_variant`, or the plain model for
    an FP32 payload) served by ``models/triton/model.py`` (Triton's python backend, ONNX Runtime
    on the CPU). With ``max_batch_size`` > 0 the dims leave out the batch dimension and dynamic
    batching is on."""
    def dims(v):
        d = [x.dim_value for x in v.type.tensor_type.shape.dim]
        return d[1:] if max_batch_size > 0 else d
    def tensor(v, dtype):
        return f'  {{ name: "{v.name}" data_type: {dtype} dims: {dims(v)} }}'.replace("[", "[ ").replace("]", " ]")
    inp = next(i for i in model.graph.input if i.name == manifest["input"]["name"])
    outp = next(o for o in model.graph.output if o.name == manifest["output"]["name"])
    uint8 = inp.type.tensor_type.elem_type == TensorProto.UINT8
    what = ("UINT8 NHWC pixels in the manifest\'s channel order" if uint8
            else "FP32, the manifest\'s own tensor")
    out_type = {TensorProto.UINT16: "TYPE_UINT16", TensorProto.FLOAT: "TYPE_FP32"}[
        outp.type.tensor_type.elem_type]
    answer = "UINT16 round(p * 65535)" if out_type == "TYPE_UINT16" else "the model's own"
    lines = [
        f'# Made by models/convert.py --triton-repository for {manifest["id"]} (KServe v2 input:',
        f'# {what}; output: {answer}).',
        f'name: "{name or manifest["id"]}"',
        'backend: "python"',
        f'max_batch_size: {max_batch_size}',
        'input [', tensor(inp, "TYPE_UINT8" if uint8 else "TYPE_FP32"), ']',
        'output [', tensor(outp, out_type), ']',
        f'instance_group [ {{ kind: KIND_CPU count: {instances} }} ]',
    ]
    if max_batch_size > 0:
        lines.append('dynamic_batching { max_queue_delay_microseconds: 2000 }')
    return "\n".join(lines) + "\n"


def write_triton_repository(repository: str, models_dir: str, manifests: list[str],
                            max_batch_size: int = 0, instances: int = 1,
                            with_fp32: bool = False) -> list[str]:
    """Writes a Triton model repository: per manifest ``NAME/config.pbtxt``,
    ``NAME/1/model.onnx`` (the :func:`server_variant` of the converted model in ``models_dir``)
    and ``NAME/1/model.py`` (``models/triton/model.py``); NAME is the manifest's id. With
    ``with_fp32`` also ``NAME_fp32``: the plain model, FP32 input (the payload comparison of
    ``backdrop-bench remote``). Returns the model names."""
    import json
    import shutil
    here = os.path.dirname(os.path.abspath(__file__))
    names = []
    for path in manifests:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        model = onnx.load(os.path.join(models_dir, manifest["file"]))
        served = [(manifest["id"], server_variant(model, manifest, max_batch_size > 0))]
        if with_fp32:
            if max_batch_size > 0:
                raise ConversionError("--with-fp32 has no dynamic-batch variant")
            served.append((manifest["id"] + "_fp32", model))
        for name, variant in served:
            version = os.path.join(repository, name, "1")
            os.makedirs(version, exist_ok=True)
            _write(variant, os.path.join(version, "model.onnx"))
            shutil.copyfile(os.path.join(here, "triton", "model.py"),
                            os.path.join(version, "model.py"))
            config = server_config(variant, manifest, max_batch_size, instances, name)
            with open(os.path.join(repository, name, "config.pbtxt"), "w", encoding="utf-8") as f:
                f.write(config)
            names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tflite", help="one .tflite file to convert (with --output)")
    p.add_argument("--output", help="the .onnx file to write (with --tflite)")
    p.add_argument("--package", help="npm tarball of @mediapipe/selfie_segmentation (with --output-dir)")
    p.add_argument("--output-dir", help="directory for both converted models (with --package)")
    p.add_argument("--triton-repository",
                   help="write a Triton model repository of the server variants (UINT8 input) of the "
                        "models in --models-dir, one per --manifest")
    p.add_argument("--models-dir", help="the converted .onnx files (with --triton-repository)")
    p.add_argument("--manifest", action="append", default=[],
                   help="a model manifest (with --triton-repository; repeatable)")
    p.add_argument("--max-batch-size", type=int, default=0,
                   help="> 0: a dynamic-batch variant and dynamic batching in config.pbtxt")
    p.add_argument("--instances", type=int, default=1,
                   help="model instances Triton runs (instance_group count)")
    p.add_argument("--with-fp32", action="store_true",
                   help="also serve each plain model (FP32 input) as NAME_fp32")
    args = p.parse_args(argv)

    if args.triton_repository:
        if not (args.models_dir and args.manifest):
            p.error("--triton-repository needs --models-dir and --manifest")
        try:
            names = write_triton_repository(args.triton_repository, args.models_dir, args.manifest,
                                            args.max_batch_size, args.instances,
                                            args.with_fp32)
        except ConversionError as e:
            print(f"convert.py: {e}", file=sys.stderr)
            return 1
        print(f"Triton repository {args.triton_repository}: {', '.join(names)}")
        return 0

    jobs: list[tuple[bytes, str, str]] = []
    if args.tflite or args.output:
        if not (args.tflite and args.output):
            p.error("--tflite and --output go together")
        with open(args.tflite, "rb") as f:
            jobs.append((f.read(), os.path.basename(args.tflite), args.output))
    if args.package or args.output_dir:
        if not (args.package and args.output_dir):
            p.error("--package and --output-dir go together")
        with tarfile.open(args.package, "r:gz") as tar:
            for member, onnx_name in PACKAGE_MODELS.items():
                f = tar.extractfile(member)
                if f is None:
                    p.error(f"{args.package} has no {member}")
                jobs.append((f.read(), os.path.basename(member),
                             os.path.join(args.output_dir, onnx_name)))
    if not jobs:
        p.error("nothing to do: give --tflite/--output or --package/--output-dir")

    for data, source, out in jobs:
        try:
            model = convert_bytes(data, source)
        except ConversionError as e:
            print(f"convert.py: {source}: {e}", file=sys.stderr)
            return 1
        _write(model, out)
        print(f"{source} -> {out} ({_describe(model)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
