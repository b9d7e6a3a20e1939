"""Triton python-backend model of obs-backdrop's server variants (models/convert.py
--triton-repository): runs ``model.onnx`` next to this file with ONNX Runtime on the CPU.

Triton hands ``execute`` every request of a (dynamic) batch at once; their inputs are
concatenated along the first axis, run once and split again, so ``dynamic_batching`` in
``config.pbtxt`` batches across streams. Parameters (``parameters`` in ``config.pbtxt``):
``intra_op_threads`` (default 1).
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "1"))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = config["input"][0]["name"]
        self.outputs = [o["name"] for o in config["output"]]

    def execute(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input).as_numpy() for r in requests]
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
        results = self.session.run(self.outputs, {self.input: batch})
        responses, start = [], 0
        for a in arrays:
            n = a.shape[0]
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(r[start:start + n]))
                       for name, r in zip(self.outputs, results)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += n
        return responses
