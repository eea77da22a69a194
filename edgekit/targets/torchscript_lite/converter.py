"""TorchScript for the PyTorch Mobile lite interpreter: ``.ptl``.

``optimize_for_mobile`` is not applied: it asserts on CPU wheels built without XNNPACK (such as
the one CI uses), and the lite interpreter runs the plain trace.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.core.target import ConvertContext, ConvertResult, Converter

if TYPE_CHECKING:
    from edgekit.core.record import ArtifactRecord

from edgekit.targets.torchscript.converter import MOBILE_QENGINE, TOLERANCES, TorchRunner, quantized_engine, runner_engine, trace


class TorchScriptLiteConverter(Converter):
    name = "torchscript-lite"
    suffix = ".ptl"
    order = 20
    arm64_missing = "the emulated environment has no aarch64 torch (PyTorch Mobile's runtime): not set up"
    extra = "torchscript"
    requires = ()
    precisions = tuple(TOLERANCES)
    tolerances = TOLERANCES
    seq_kinds = ("fixed", "range")
    description = "TorchScript for the PyTorch Mobile lite interpreter"

    # The Lite flavour's reader is TorchScript's (one zip reader tells both apart by bytecode.pkl);
    # the torchscript package claims the bytes, this one only shares the family.
    @property
    def family(self) -> str:
        return "torchscript"

    def convert(self, ctx: ConvertContext, dest: Path) -> ConvertResult:
        import torch

        with quantized_engine(MOBILE_QENGINE), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "Lite Interpreter is deprecated"
            trace(ctx)._save_for_lite_interpreter(str(dest))
        return ConvertResult(versions={"torch": torch.__version__},
                             options={"quantized_engine": MOBILE_QENGINE} if ctx.options.precision.is_int8 else {})

    def load(self, path: Path, record: ArtifactRecord, threads: int | None = None) -> TorchRunner:
        from torch.jit.mobile import _load_for_lite_interpreter

        with runner_engine(record):
            return TorchRunner(_load_for_lite_interpreter(str(path)), record, threads)


CONVERTER = TorchScriptLiteConverter()
