"""ONNX Runtime on the phone's CPU architecture, under the ARM64 emulator (``edgekit.emulation``).

:func:`run` runs an .onnx file in ONNX Runtime for aarch64 (the same version as on x86) under
``qemu-aarch64`` with a chosen CPU model; :func:`self_test_cases` are the tiny graphs that prove the
emulator computes ONNX Runtime's kernels right (fp32 MatMul; dynamic-int8 MatMul as
``quantize_dynamic`` writes it: DynamicQuantizeLinear + MatMulInteger, which ORT fuses).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ...emulation import DEFAULT_CPU, Job, SelfTestSpec, WorkerRun, run_worker
from ...emulation.selftest import U, grid_activations

WORKER = Path(__file__).with_name("arm64_worker.py")
RUNTIME = "onnxruntime"


def run(model: Path | str, feeds: Sequence[Mapping[str, np.ndarray]], *, cpu: str = DEFAULT_CPU, threads: int = 1,
        optimization: str = "all", timeout: float = 900) -> WorkerRun:
    """Run ``model`` on each feed dict in ONE emulated process; ``WorkerRun.outputs[i]`` maps output
    names to arrays for ``feeds[i]``. Raises ``EmulatorError`` / ``WorkerError``."""
    options = {"threads": threads, "optimization": optimization}
    return run_worker(WORKER, [Job(model, dict(f), options) for f in feeds], cpu=cpu, timeout=timeout)


def run_file(path: Path | str, record: object, feeds: Sequence[Mapping[str, np.ndarray]], *, cpu: str = DEFAULT_CPU,
             timeout: float = 3600) -> WorkerRun:
    """An exported .onnx/.ort file on the parity feeds, fed as the x86 runner feeds it (the file's
    own inputs, int32), with ONNX Runtime's full graph optimisation as on x86."""
    return run(path, [{k: np.ascontiguousarray(v, dtype=np.int32) for k, v in f.items()} for f in feeds],
               cpu=cpu, threads=1, optimization="all", timeout=timeout)



def _save(graph, path: Path) -> None:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgekit-selftest")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def case_matmul_fp32(folder: Path) -> SelfTestSpec:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    m, k, n = 4, 64, 48
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) / 8).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul_fp32",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(w, "w")])
    path = folder / "matmul_fp32.onnx"
    _save(graph, path)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    # Any summation order in float32 (FMA or not): |err| <= k*u/(1-k*u) * sum|x||w|.
    gamma = k * U / (1 - k * U)
    bound = float(gamma * np.max(np.abs(x64) @ np.abs(w64)))
    return SelfTestSpec("onnx MatMul fp32", WORKER, Job(path, {"x": x}, {"threads": 1}), {"y": x64 @ w64}, bound)


def case_matmul_dynamic_int8(folder: Path) -> SelfTestSpec:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    m, k, n = 4, 64, 48
    x = grid_activations(rng, m, k)
    wq = rng.integers(-127, 128, size=(k, n)).astype(np.int8)
    w_scale = np.float32(0.0123)
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "x_scale", "x_zero"]),
        helper.make_node("MatMulInteger", ["xq", "wq", "x_zero", "w_zero"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["acc_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x_scale", "w_scale"], ["scale"]),
        helper.make_node("Mul", ["acc_f", "scale"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "matmul_dynamic_int8",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(wq, "wq"), numpy_helper.from_array(np.array(0, np.int8), "w_zero"),
         numpy_helper.from_array(np.array(w_scale, np.float32), "w_scale")])
    path = folder / "matmul_dynamic_int8.onnx"
    _save(graph, path)
    acc = np.rint(x.astype(np.float64) * 32) @ wq.astype(np.float64)  # exact integers
    ref = acc * (1 / 32) * float(w_scale)
    # Exact integer products; only the scale product, the int->float and the final multiply round.
    bound = float(8 * U * np.max(np.abs(ref)))
    return SelfTestSpec("onnx MatMul dynamic-int8", WORKER, Job(path, {"x": x}, {"threads": 1}), {"y": ref}, bound,
                        note="activations on a 1/32 grid: any 8-bit activation scheme quantizes them exactly")


def self_test_cases() -> list:
    """The ONNX Runtime self-test cases (need the ``onnx`` package on x86 to build the graphs)."""
    import onnx  # noqa: F401 - ImportError: the provider is reported as not loaded

    return [case_matmul_fp32, case_matmul_dynamic_int8]
