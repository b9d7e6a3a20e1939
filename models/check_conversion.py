#!/usr/bin/env python3
"""Developer check: compare models/convert.py output with reference ONNX conversions.

Runs each converted model and its reference with the Python ``onnxruntime`` (CPU, 1 intra-op
thread) on real photos and reports the maximum absolute difference of the output (person
probability, 0..1) per model. Images are decoded with Pillow, converted to RGB, stretched
(bilinear) to the model's input size and scaled to 0..1, as the plugin does with
``"aspect": "stretch"`` and ``std = 255``.

Exit status 0 when every model stays within ``--tolerance`` (default 1e-4) on every image.

Usage::

    .venv/bin/python models/check_conversion.py \\
        --converted build/models --reference ../shared/testdata/models/reference \\
        --images '../shared/testdata/portraits/images/*.jpg'

Needs ``onnxruntime``, ``pillow`` and ``numpy`` in the environment (a dev tool: the plugin itself
never uses Python).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

MODELS = ["selfie_segmentation.onnx", "selfie_segmentation_landscape.onnx"]


def session(path: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def load_image(path: str, height: int, width: int) -> np.ndarray:
    """[1, H, W, 3] float32 RGB in 0..1, the image stretched to H x W."""
    with Image.open(path) as im:
        rgb = im.convert("RGB").resize((width, height), Image.BILINEAR)
    return (np.asarray(rgb, dtype=np.float32) / 255.0)[None]


def to_reference_layout(output: np.ndarray, shape: list) -> np.ndarray:
    """Our output in the reference's NHWC ``[1, H, W, 1]``: a ``[1, b*b, H/b, W/b]`` output
    (``DepthToSpace`` order, see convert.py) is rearranged; an NHWC one is returned as is."""
    if list(output.shape) == list(shape):
        return output
    n, c, h, w = output.shape
    b = int(round(c ** 0.5))
    return output.reshape(n, b, b, h, w).transpose(0, 3, 1, 4, 2).reshape(n, h * b, w * b, 1)


def check(converted: str, reference: str, images: list[str]) -> tuple[float, float]:
    ours, ref = session(converted), session(reference)
    (inp,), (ref_inp,) = ours.get_inputs(), ref.get_inputs()
    (out,), (ref_out,) = ours.get_outputs(), ref.get_outputs()
    _, h, w, _ = ref_inp.shape
    # ours: the same names; input NCHW [1, 3, H, W]; output [1, 4, H/2, W/2] (see convert.py)
    expect_in, expect_out = [1, 3, h, w], [1, 4, h // 2, w // 2]
    if (inp.name, inp.shape, out.name, out.shape) != (ref_inp.name, expect_in, ref_out.name,
                                                        expect_out):
        raise SystemExit(f"{converted}: interface {inp.name}{inp.shape} -> {out.name}{out.shape}, "
                         f"expected {ref_inp.name}{expect_in} -> {ref_out.name}{expect_out} "
                         f"for reference {ref_inp.name}{ref_inp.shape} -> "
                         f"{ref_out.name}{ref_out.shape}")
    worst, mean_sum = 0.0, 0.0
    for path in images:
        x = load_image(path, h, w)
        a = to_reference_layout(ours.run([out.name], {inp.name: x.transpose(0, 3, 1, 2)})[0],
                                ref_out.shape)
        b = ref.run([ref_out.name], {ref_inp.name: x})[0]
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        worst = max(worst, float(diff.max()))
        mean_sum += float(diff.mean())
    return worst, mean_sum / len(images)


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    testdata = os.path.join(os.path.dirname(root), "shared", "testdata")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--converted", default=os.path.join(root, "build", "models"),
                   help="directory with the models written by convert.py")
    p.add_argument("--reference", default=os.path.join(testdata, "models", "reference"),
                   help="directory with the reference conversions")
    p.add_argument("--images", default=os.path.join(testdata, "portraits", "images", "*.jpg"),
                   help="glob of test images")
    p.add_argument("--tolerance", type=float, default=1e-4)
    args = p.parse_args()

    images = sorted(glob.glob(args.images))
    if not images:
        raise SystemExit(f"no images match {args.images}")
    ok = True
    for name in MODELS:
        worst, mean = check(os.path.join(args.converted, name), os.path.join(args.reference, name),
                            images)
        verdict = "ok" if worst <= args.tolerance else "FAIL"
        ok &= worst <= args.tolerance
        print(f"{name}: {len(images)} images, max abs diff {worst:.3g}, mean abs diff {mean:.3g}"
              f" (tolerance {args.tolerance:g}) {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
