"""The distribution ships every subpackage (no folder of code without an ``__init__``) and its data."""
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_folder_of_code_is_a_package_the_build_finds():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = cfg["packages"]["find"]["include"]
    found = set(find_packages(str(ROOT), include=include))
    code_dirs = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "edgekit").rglob("*.py")
                 if "__pycache__" not in p.parts}
    assert code_dirs <= found, f"folders of code the build would leave out (add an __init__.py): {sorted(code_dirs - found)}"
    assert not any(p.split(".")[0] != "edgekit" for p in found)  # nothing outside the edgekit namespace


def test_package_data_covers_the_shipped_data_files():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for data in (ROOT / "edgekit").rglob("data/*"):
        if data.suffix not in (".xz", ".md"):
            continue
        pkg = ".".join(data.parent.parent.relative_to(ROOT).parts)
        patterns = cfg.get(pkg, [])
        assert any(data.relative_to(data.parent.parent).match(p) for p in patterns), f"{data} is not package data"
