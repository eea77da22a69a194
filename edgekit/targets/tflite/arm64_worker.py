"""LiteRT worker for the ARM64 emulator: runs INSIDE the aarch64 python (numpy + ai-edge-litert only;
never import edgekit or torch here). Protocol: ``edgekit.emulation.worker_io``.

Job options: ``threads`` (default 1), ``xnnpack`` (default True: the default delegate, as an app
gets it; False: the builtin kernels), ``signature`` (run that signature; else the subgraph's
input/output tensors by name), ``dequantize`` (int outputs with a scale -> float64, default False).
"""
import worker_io  # first: its clock includes the runtime import

from importlib import metadata

import numpy as np
from ai_edge_litert import interpreter as litert


def _dequantize(value, detail):
    scale, zero = detail.get("quantization", (0.0, 0))
    if np.issubdtype(value.dtype, np.integer) and scale:
        return (value.astype(np.float64) - zero) * scale
    return value


def run(job):
    opts = job.options
    kwargs = {"model_path": job.model, "num_threads": int(opts.get("threads", 1))}
    if not opts.get("xnnpack", True):
        kwargs["experimental_op_resolver_type"] = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = litert.Interpreter(**kwargs)
    signature = opts.get("signature")
    if signature:
        runner = it.get_signature_runner(signature)
        outputs = runner(**job.inputs)
        details = runner.get_output_details()
    else:
        inputs = it.get_input_details()
        for d in inputs:
            if d["name"] not in job.inputs:
                raise KeyError(f"no feed for input {d['name']!r} (feeds: {sorted(job.inputs)})")
            if tuple(job.inputs[d["name"]].shape) != tuple(d["shape"]):
                it.resize_tensor_input(d["index"], job.inputs[d["name"]].shape)
        it.allocate_tensors()
        for d in inputs:
            it.set_tensor(d["index"], job.inputs[d["name"]])
        it.invoke()
        details = {d["name"]: d for d in it.get_output_details()}
        outputs = {name: it.get_tensor(d["index"]) for name, d in details.items()}
    if opts.get("dequantize"):
        outputs = {k: _dequantize(np.asarray(v), details[k]) for k, v in outputs.items()}
    return outputs


worker_io.serve(run, {"runtime": "ai-edge-litert", "version": metadata.version("ai-edge-litert")})
