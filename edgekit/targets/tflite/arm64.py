"""LiteRT on the phone's CPU architecture, under the ARM64 emulator (``edgekit.emulation``).

:func:`run` runs a .tflite file in LiteRT for aarch64 (the same ai-edge-litert version as on x86)
under ``qemu-aarch64`` with a chosen CPU model, XNNPACK on by default as in an app;
:func:`self_test_cases` are tiny FULLY_CONNECTED models (fp32; dynamic-range int8 with per-channel
weights; full int8) written directly as TFLite flatbuffers, that prove the emulator computes
XNNPACK's kernels right.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ...emulation import DEFAULT_CPU, Job, SelfTestSpec, WorkerRun, run_worker
from ...emulation.selftest import U, grid_activations

WORKER = Path(__file__).with_name("arm64_worker.py")
RUNTIME = "ai-edge-litert"


def run(model: Path | str, feeds: Sequence[Mapping[str, np.ndarray]], *, cpu: str = DEFAULT_CPU, threads: int = 1,
        xnnpack: bool = True, signature: str | None = None, dequantize: bool = False,
        timeout: float = 900) -> WorkerRun:
    """Run ``model`` on each feed dict in ONE emulated process; ``WorkerRun.outputs[i]`` maps output
    names to arrays for ``feeds[i]`` (signature output names when ``signature`` is given, else the
    subgraph's tensor names). Raises ``EmulatorError`` / ``WorkerError``."""
    options = {"threads": threads, "xnnpack": xnnpack, "signature": signature, "dequantize": dequantize}
    return run_worker(WORKER, [Job(model, dict(f), options) for f in feeds], cpu=cpu, timeout=timeout)


def run_file(path: Path | str, record: object, feeds: Sequence[Mapping[str, np.ndarray]], *, cpu: str = DEFAULT_CPU,
             timeout: float = 3600) -> WorkerRun:
    """An exported .tflite file on the parity feeds, fed as the x86 runner (``LiteRTRunner``) feeds
    it: each feed through the signature of its length, token types under the file's own name."""
    from edgekit.targets.tflite.runner import SEGMENT, LiteRTRunner

    x86 = LiteRTRunner(Path(path))  # reads the signatures only; nothing runs on x86 here
    by_length = {}
    for name in x86.interpreter.get_signature_list():
        length = int(x86.interpreter.get_signature_runner(name).get_input_details()["input_ids"]["shape"][-1])
        by_length.setdefault(length, name)
    jobs = []
    for feed in feeds:
        ids = np.asarray(feed["input_ids"], dtype=np.int32)
        args = {"input_ids": ids, "attention_mask": np.asarray(feed["attention_mask"], dtype=np.int32)}
        if SEGMENT in x86.file_inputs:
            types = feed.get("token_type_ids", feed.get(SEGMENT))
            args[SEGMENT] = np.zeros_like(ids) if types is None else np.asarray(types, dtype=np.int32)
        signature = by_length.get(ids.shape[-1])
        if signature is None:
            raise ValueError(f"{Path(path).name} has no signature for length {ids.shape[-1]}")
        jobs.append(Job(Path(path), args, {"threads": 1, "xnnpack": True, "signature": signature}))
    return run_worker(WORKER, jobs, cpu=cpu, timeout=timeout)


# ---- a minimal flatbuffer writer: one FULLY_CONNECTED ----------------------------------------------

def _fc_model(path: Path, *, x: tuple[list[int], int, tuple | None], w: tuple[np.ndarray, int, tuple | None],
              b: tuple[np.ndarray, int, tuple | None], y: tuple[list[int], int, tuple | None],
              asymmetric_inputs: bool = False) -> None:
    """Write a model ``y = FULLY_CONNECTED(x, w, b)``; each tensor is (shape or data, TensorType,
    (scales, zero_points, quantized_dimension) or None)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    model = s.ModelT()
    model.version = 3
    model.description = "edgekit ARM64 emulator self-test"
    model.buffers = [s.BufferT()]

    def tensor(name: str, shape, ttype: int, quant, data: np.ndarray | None = None) -> s.TensorT:
        t = s.TensorT()
        t.name = name
        t.shape = list(shape)
        t.type = ttype
        t.buffer = 0
        if data is not None:
            buf = s.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            model.buffers.append(buf)
            t.buffer = len(model.buffers) - 1
        if quant is not None:
            q = s.QuantizationParametersT()
            q.scale = [float(v) for v in np.atleast_1d(quant[0])]
            q.zeroPoint = [int(v) for v in np.atleast_1d(quant[1])]
            q.quantizedDimension = int(quant[2])
            t.quantization = q
        return t

    graph = s.SubGraphT()
    graph.name = "main"
    graph.tensors = [tensor("x", x[0], x[1], x[2]), tensor("w", w[0].shape, w[1], w[2], w[0]),
                     tensor("b", b[0].shape, b[1], b[2], b[0]), tensor("y", y[0], y[1], y[2])]
    graph.inputs, graph.outputs = [0], [3]
    code = s.OperatorCodeT()
    code.builtinCode = s.BuiltinOperator.FULLY_CONNECTED
    code.deprecatedBuiltinCode = s.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    model.operatorCodes = [code]
    op = s.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = [0, 1, 2], [3]
    op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
    options = s.FullyConnectedOptionsT()
    options.fusedActivationFunction = s.ActivationFunctionType.NONE
    options.asymmetricQuantizeInputs = asymmetric_inputs
    op.builtinOptions = options
    graph.operators = [op]
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))



M, K, N = 4, 64, 48


def case_fc_fp32(folder: Path) -> SelfTestSpec:
    from ai_edge_litert.schema_py_generated import TensorType as T

    rng = np.random.default_rng(11)
    x = rng.standard_normal((M, K)).astype(np.float32)
    w = (rng.standard_normal((N, K)) / 8).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    path = folder / "fc_fp32.tflite"
    _fc_model(path, x=([M, K], T.FLOAT32, None), w=(w, T.FLOAT32, None), b=(b, T.FLOAT32, None), y=([M, N], T.FLOAT32, None))
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    gamma = (K + 1) * U / (1 - (K + 1) * U)
    bound = float(gamma * np.max(np.abs(x64) @ np.abs(w64).T + np.abs(b64)))
    return SelfTestSpec("tflite FC fp32 (XNNPACK)", WORKER, Job(path, {"x": x}, {"threads": 1}), {"y": x64 @ w64.T + b64},
                        bound)


def case_fc_dynamic_int8(folder: Path) -> SelfTestSpec:
    from ai_edge_litert.schema_py_generated import TensorType as T

    rng = np.random.default_rng(12)
    x = grid_activations(rng, M, K)
    wq = rng.integers(-127, 128, size=(N, K)).astype(np.int8)
    w_scale = (0.005 + 0.01 * rng.random(N)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    path = folder / "fc_dynamic_int8.tflite"
    _fc_model(path, x=([M, K], T.FLOAT32, None), w=(wq, T.INT8, (w_scale, np.zeros(N, np.int64), 0)),
              b=(b, T.FLOAT32, None), y=([M, N], T.FLOAT32, None), asymmetric_inputs=True)
    acc = np.rint(x.astype(np.float64) * 32) @ wq.astype(np.float64).T  # exact integers
    core = acc * (1 / 32) * w_scale.astype(np.float64)
    ref = core + b.astype(np.float64)
    bound = float(8 * U * np.max(np.abs(core) + np.abs(b)))
    return SelfTestSpec("tflite FC dynamic-int8 per-channel (XNNPACK)", WORKER, Job(path, {"x": x}, {"threads": 1}),
                        {"y": ref}, bound, note="activations on a 1/32 grid: quantized exactly")


def case_fc_int8(folder: Path) -> SelfTestSpec:
    from ai_edge_litert.schema_py_generated import TensorType as T

    rng = np.random.default_rng(13)
    xq = rng.integers(-128, 128, size=(M, K)).astype(np.int8)
    x_scale = 1 / 32
    wq = rng.integers(-127, 128, size=(N, K)).astype(np.int8)
    w_scale = (0.005 + 0.01 * rng.random(N)).astype(np.float32)
    bias_scale = (np.float32(x_scale) * w_scale).astype(np.float64)
    bq = rng.integers(-2000, 2000, size=N).astype(np.int32)
    real = (xq.astype(np.float64) @ wq.astype(np.float64).T + bq) * bias_scale  # exact accumulator, real value
    y_scale = float(np.max(np.abs(real)) / 120)
    path = folder / "fc_int8.tflite"
    _fc_model(path, x=([M, K], T.INT8, (x_scale, 0, 0)), w=(wq, T.INT8, (w_scale, np.zeros(N, np.int64), 0)),
              b=(bq, T.INT32, (bias_scale, np.zeros(N, np.int64), 0)), y=([M, N], T.INT8, (y_scale, 0, 0)))
    # Requantization rounds to the nearest output step; its fixed-point multiplier adds far less than 1e-3 of one.
    bound = 0.5 * y_scale * (1 + 1e-3)
    return SelfTestSpec("tflite FC int8 (XNNPACK)", WORKER, Job(path, {"x": xq}, {"threads": 1, "dequantize": True}),
                        {"y": real}, bound, note="compared after dequantizing the int8 output")


def self_test_cases() -> list:
    """The LiteRT self-test cases (need ai-edge-litert's flatbuffer schema on x86 to write the models)."""
    from ai_edge_litert import schema_py_generated  # noqa: F401 - ImportError: provider not loaded

    return [case_fc_fp32, case_fc_dynamic_int8, case_fc_int8]
