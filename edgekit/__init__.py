"""edgekit: distil BERT-family models, export them for phones, and prove every file matches PyTorch.

Public API (imported lazily so ``edgekit --help`` stays fast; see ``edgekit.api``)::

    import edgekit
    records = edgekit.export("path/to/model", target="onnx", precision="int8", out="out/")
    model = edgekit.load("out/" + records[0].artifact)   # the file in its own runtime, callable on text
    edgekit.validate("out/" + records[0].artifact)        # integrity + parity again, as `edgekit validate`
    edgekit.bench("out/" + records[0].artifact)           # latency beside eager PyTorch, as `edgekit bench FILE`
    print(edgekit.report("out/"))                         # the table of every record in the folder
"""
from __future__ import annotations

from typing import Any

from edgekit.core.version import __version__

_LAZY = {
    "load_model": ("edgekit.model.modeling", "load_model"),
    "load_tokenizer": ("edgekit.model.modeling", "load_tokenizer"),
    "EdgeModel": ("edgekit.model.modeling", "EdgeModel"),
    "export": ("edgekit.api", "export"),
    "load": ("edgekit.api", "load"),
    "validate": ("edgekit.api", "validate"),
    "report": ("edgekit.api", "report"),
    "bench": ("edgekit.api", "bench"),
    "shrink": ("edgekit.api", "shrink"),
    "ShrinkReport": ("edgekit.shrinker.report", "ShrinkReport"),
    "export_model": ("edgekit.build.stage", "export_model"),
    "validate_artifact": ("edgekit.check.verdict", "validate_artifact"),
    "ExportOptions": ("edgekit.core.config", "ExportOptions"),
    "SeqLen": ("edgekit.core.config", "SeqLen"),
    "Precision": ("edgekit.core.precision", "Precision"),
    "Task": ("edgekit.core.tasks", "Task"),
    "Tolerance": ("edgekit.core.tolerance", "Tolerance"),
    "QAGeometry": ("edgekit.core.geometry", "QAGeometry"),
    "LoadedModel": ("edgekit.api", "LoadedModel"),
    "ArtifactRecord": ("edgekit.core.record", "ArtifactRecord"),
    "Status": ("edgekit.core.record", "Status"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
