"""Shared by the tests of the benchmark scripts (``benchmarks/*.py`` are scripts, not a package)."""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture
def benchmark_script() -> Callable[[str], ModuleType]:
    """``benchmark_script("cross_format")``: ``benchmarks/cross_format.py`` loaded as a module."""

    def load(name: str) -> ModuleType:
        path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
