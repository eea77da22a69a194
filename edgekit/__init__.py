"""edgekit: distil BERT-family models, export them for phones, and prove every file matches PyTorch.

Public API (imported lazily so ``edgekit --help`` stays fast)::

    import edgekit
    record = edgekit.export("path/to/model", target="onnx", precision="int8", out="out/")
    runner = edgekit.load("out/" + record.artifact)        # the file in its own runtime
    edgekit.validate("out/" + record.artifact)              # parity again, against the source model
    print(edgekit.report("out/"))                           # the table of every record in the folder
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": ("edgekit.modeling", "load_model"),
    "load_tokenizer": ("edgekit.modeling", "load_tokenizer"),
    "EdgeModel": ("edgekit.modeling", "EdgeModel"),
    "export": ("edgekit.export", None),  # the module is callable as edgekit.api.export
    "load": ("edgekit.api", "load"),
    "validate": ("edgekit.api", "validate"),
    "report": ("edgekit.report", None),  # the package is callable as report(folder, fmt)
    "export_model": ("edgekit.export", "export_model"),
    "validate_artifact": ("edgekit.export", "validate_artifact"),
    "ExportOptions": ("edgekit.config", "ExportOptions"),
    "SeqLen": ("edgekit.config", "SeqLen"),
    "Precision": ("edgekit.precision", "Precision"),
    "Task": ("edgekit.tasks", "Task"),
    "Tolerance": ("edgekit.converter", "Tolerance"),
    "ArtifactRecord": ("edgekit.record", "ArtifactRecord"),
    "Status": ("edgekit.record", "Status"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
