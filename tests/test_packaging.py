"""The distribution ships every subpackage, and ``converters/`` only as ``edgekit.converters``."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {"edgekit." + ".".join(p.parent.relative_to(ROOT / "edgekit").parts)
             for p in (ROOT / "edgekit").rglob("__init__.py") if p.parent != ROOT / "edgekit"}
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"
    assert "converters" not in listed  # an unrelated PyPI package owns the top-level name
    assert cfg["package-dir"]["edgekit.converters"] == "converters"
