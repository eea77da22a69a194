"""ONNX Runtime worker for the ARM64 emulator: runs INSIDE the aarch64 python (numpy + onnxruntime
only; never import edgekit or torch here). Protocol: ``edgekit.emulation.worker_io``.

Job options: ``threads`` (intra-op threads, default 1), ``optimization`` (``all``/``extended``/
``basic``/``disable``, default ``all``: what an app gets), ``outputs`` (names, default all).
"""
import worker_io  # first: its clock includes the runtime import

import onnxruntime as ort

LEVELS = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def run(job):
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(job.options.get("threads", 1))
    so.inter_op_num_threads = 1
    so.graph_optimization_level = LEVELS[job.options.get("optimization", "all")]
    sess = ort.InferenceSession(job.model, so, providers=["CPUExecutionProvider"])
    names = job.options.get("outputs") or [o.name for o in sess.get_outputs()]
    values = sess.run(names, dict(job.inputs))
    return dict(zip(names, values))


worker_io.serve(run, {"runtime": "onnxruntime", "version": ort.__version__})
