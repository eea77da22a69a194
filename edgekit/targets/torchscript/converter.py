"""TorchScript: a traced ``.pt`` for ``torch.jit.load`` (PyTorch Mobile / LibTorch)."""
from __future__ import annotations

import contextlib
import copy
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from edgekit.core.target import ConvertContext, ConvertResult, Converter
from edgekit.core.tolerance import FP32_BOUND, INT8_ACT_BOUND
from edgekit.core.precision import Precision

if TYPE_CHECKING:
    import torch

    from edgekit.core.record import ArtifactRecord

# Phones run quantised kernels from QNNPACK; quantising with it here gives the numerics the phone
# will compute (fbgemm, the x86 default, reduces activation range and would differ).
MOBILE_QENGINE = "qnnpack"

TOLERANCES = {
    Precision.FP32: FP32_BOUND,
    Precision.INT8_DYNAMIC: INT8_ACT_BOUND,
}


@contextlib.contextmanager
def quantized_engine(engine: str) -> Iterator[None]:
    import torch

    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = old


def runner_engine(record: ArtifactRecord) -> contextlib.AbstractContextManager[None]:
    return quantized_engine(MOBILE_QENGINE) if record.precision == Precision.INT8_DYNAMIC.value else contextlib.nullcontext()


def trace(ctx: ConvertContext) -> torch.jit.ScriptModule:
    """Trace (after dynamic int8 quantisation of every Linear when asked)."""
    import torch

    m = copy.deepcopy(ctx.model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation noise; the API still ships and works
        if ctx.options.precision == Precision.INT8_DYNAMIC:
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            # Per-channel weight scales: MiniLM-style models have outlier channels that a single
            # per-tensor scale crushes (embedding cosine 0.88 per-tensor vs 0.986 per-channel).
            m = quantize_dynamic(m, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
        return torch.jit.trace(m, ctx.signature.example_inputs(), strict=False, check_trace=False)


class TorchRunner:
    def __init__(self, module: Any, record: ArtifactRecord, threads: int | None) -> None:
        self.module = module
        self.input_names = tuple(t.name for t in record.inputs)
        self.output_names = tuple(t.name for t in record.outputs)
        self.threads = threads
        self.record = record

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        # The thread count is PyTorch's process-wide setting, set once by the caller (bench).
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n], dtype=np.int32)) for n in self.input_names]
        with runner_engine(self.record), torch.inference_mode():
            out = self.module(*args)
        return {n: t.float().numpy() for n, t in zip(self.output_names, out)}


class TorchScriptConverter(Converter):
    name = "torchscript"
    suffix = ".pt"
    order = 10
    arm64_missing = "the emulated environment has no aarch64 torch (PyTorch Mobile's runtime): not set up"
    extra = "torchscript"
    requires = ()
    precisions = (Precision.FP32, Precision.INT8_DYNAMIC)
    tolerances = TOLERANCES
    seq_kinds = ("fixed", "range")  # the trace reads the length from the input shape
    description = "TorchScript trace for torch.jit.load / LibTorch"

    def convert(self, ctx: ConvertContext, dest: Path) -> ConvertResult:
        import torch

        with quantized_engine(MOBILE_QENGINE):
            trace(ctx).save(str(dest))
        return ConvertResult(versions={"torch": torch.__version__},
                             options={"quantized_engine": MOBILE_QENGINE} if ctx.options.precision.is_int8 else {})

    def load(self, path: Path, record: ArtifactRecord, threads: int | None = None) -> TorchRunner:
        import torch

        # Quantised weights are re-packed at load time for the current engine: load under QNNPACK.
        with runner_engine(record):
            return TorchRunner(torch.jit.load(str(path), map_location="cpu").eval(), record, threads)


CONVERTER = TorchScriptConverter()
