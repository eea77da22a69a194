"""Finds the export targets: every package in ``edgekit.targets`` that defines ``CONVERTER``.

Adding a target is one new package there; nothing in core code names it."""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from edgekit.core.target import Converter
from edgekit.core.errors import unknown_choice


@lru_cache(maxsize=1)
def converters() -> dict[str, Converter]:
    """All targets by name, in a stable order (the order of the format table)."""
    from edgekit import targets as pkg

    found: dict[str, Converter] = {}
    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{mod.name}")
        conv = getattr(module, "CONVERTER", None)
        if isinstance(conv, Converter):
            found[conv.name] = conv
    # The order is each plug-in's own (``Converter.order``): no list of targets in core code.
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


def get(name: str) -> Converter:
    table = converters()
    if name not in table:
        raise unknown_choice("target", name, list(table) + ["all"])
    return table[name]


def by_suffix(path_name: str) -> Converter | None:
    for conv in converters().values():
        if path_name.endswith(conv.suffix):
            return conv
    return None
