"""edgekit: distil BERT-family models, export them for phones, and prove every file matches PyTorch.

Public API (imported lazily so ``edgekit --help`` stays fast)::

    import edgekit
    model = edgekit.load_model("path/or/hf-id", "question-answering")
    record = edgekit.export(model, edgekit.ExportOptions(target="tflite", task=model.task), "out/")
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": ("edgekit.modeling", "load_model"),
    "load_tokenizer": ("edgekit.modeling", "load_tokenizer"),
    "EdgeModel": ("edgekit.modeling", "EdgeModel"),
    "export": ("edgekit.export", "export_model"),
    "validate": ("edgekit.export", "validate_artifact"),
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
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
