"""The package's shape: no import cycles between modules, and no stage imports a later stage.

Every ``import`` counts, at module level or inside a function (a lazy import is still a
dependency): DESIGN.md "The house" says which stage may import which. Two kinds do not: imports
under ``if TYPE_CHECKING:`` (annotations) and a ``if __name__ == "__main__":`` block handing over to
``edgekit.cli`` (``python -m edgekit.distill.train`` runs the command line's parser; nothing that
imports the module depends on it). And argparse lives in ``edgekit.cli`` only.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "edgekit"

#: The stages in pipeline order. A module may import its own stage and any earlier one; ``targets``
#: are reached from later stages through the registry (a plug-in look-up), never by name.
STAGES = ["core", "model", "emulation", "check", "quality", "targets", "build", "measure", "apps", "distill", "shrinker",
          "<entry>"]
#: The registry finds the target packages by walking the ``edgekit.targets`` namespace: the one import
#: of a later stage that is a plug-in look-up, not a dependency on any target.
PLUGIN_LOOKUPS = {("edgekit.core.registry", "edgekit.targets")}
ENTRY = {"edgekit", "edgekit.api", "edgekit.__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The edgekit modules ``path`` imports (absolute or relative, anywhere in the file)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    typing_only = set()
    main_block = set()
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` imports are annotations, not dependencies
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            typing_only |= {id(n) for s in node.body for n in ast.walk(s)}
        elif isinstance(node, ast.If) and _is_main_guard(node.test):
            main_block |= {id(n) for s in node.body for n in ast.walk(s)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if id(node) in main_block and t.startswith("edgekit.cli"):
                continue  # `python -m edgekit.x.y` handing over to the command line: an entry point, not a dependency
            if t and t != name and t.startswith("edgekit"):
                out.add(t)
    return out


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"``."""
    return (isinstance(test, ast.Compare) and getattr(test.left, "id", None) == "__name__"
            and len(test.comparators) == 1 and getattr(test.comparators[0], "value", None) == "__main__")


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    # importing a package's submodule runs the package's __init__ too, but that is not an edge
    # we count: a module depends on what it names.
    return {name: imports_of(path, name, known) for name, path in mods.items()}


def stage_of(module: str) -> str:
    if module in ENTRY or module == "edgekit.cli" or module.startswith("edgekit.cli."):
        return "<entry>"
    return module.split(".")[1]


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if m == n.rpartition(".")[0] or n.startswith(m + "."):
                continue  # a package's own __init__ re-exporting its submodule is not a cycle
            if color.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if color.get(m) is None:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = 2
        return None

    for n in sorted(g):
        if color.get(n) is None:
            found = visit(n)
            if found:
                return found
    return None


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_stage_imports_a_later_stage():
    bad = []
    for mod, deps in graph().items():
        s = stage_of(mod)
        assert s in STAGES, f"{mod}: stage {s!r} is not in STAGES (add it to DESIGN.md's picture and here)"
        for d in deps:
            ds = stage_of(d)
            if (mod, d) in PLUGIN_LOOKUPS:
                continue
            if STAGES.index(ds) > STAGES.index(s):
                bad.append(f"{mod} ({s}) imports {d} ({ds})")
    assert not bad, "imports from a later stage:\n  " + "\n  ".join(sorted(bad))


def test_core_names_no_target():
    """Core code never lists targets: target names appear only in their own packages."""
    import re

    from edgekit.core import registry

    names = [c.name for c in registry.converters().values()]
    offenders = []
    for mod, path in modules().items():
        if stage_of(mod) not in ("core", "build", "check"):
            continue
        text = path.read_text()
        for n in names:
            if re.search(rf"[\"']{re.escape(n)}[\"']", text):
                offenders.append(f"{mod} names {n!r}")
    assert not offenders, "\n".join(offenders)


def test_root_holds_only_entry_points():
    loose = sorted(p.name for p in PKG.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "api.py"], loose
    assert (PKG / "cli" / "__init__.py").is_file()  # the command line: a package of thin layers


@pytest.mark.parametrize("fake", ["edgekit.cli", "edgekit.api"])
def test_the_walker_sees_cycles(fake):
    """The check can fail: a made-up edge back from core to an entry point is a cycle and an upward import."""
    g = graph()
    g["edgekit.core.errors"] = set(g["edgekit.core.errors"]) | {fake}
    g.setdefault(fake, set()).add("edgekit.core.errors")
    assert find_cycle(g) is not None


#: Modules outside ``edgekit.cli`` that build an argparse parser, and why: stand-alone ``python -m``
#: tools (generators, environment builders) whose ``main`` parses; no library function takes a
#: Namespace. The list only shrinks: a module that no longer imports argparse fails
#: ``test_argparse_lives_in_cli`` until it is taken off.
ARGPARSE_NOT_YET_MOVED = {
    "edgekit.apps.golden": "`python -m edgekit.apps.golden` (regenerate the apps' golden files)",
    "edgekit.apps.unicode_tables": "`python -m edgekit.apps.unicode_tables` (regenerate the apps' character tables)",
    "edgekit.emulation.env": "`python -m edgekit.emulation.env` (`make arm64-env`)",
    "edgekit.targets.tflite.tasklib.env": "`python -m edgekit.targets.tflite.tasklib.env` (the Task Library venv)",
}


def _imports_argparse(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "argparse":
            return True
    return False


def test_argparse_lives_in_cli():
    """One front door: flags are parsed in ``edgekit.cli``; library code takes typed options, never a Namespace."""
    users = {mod for mod, path in modules().items() if _imports_argparse(path)}
    bad = sorted(m for m in users if stage_of(m) != "<entry>" and m not in ARGPARSE_NOT_YET_MOVED)
    assert not bad, "argparse outside edgekit/cli/ (move the parser to edgekit/cli/, pass typed options): " + ", ".join(bad)
    stale = sorted(set(ARGPARSE_NOT_YET_MOVED) - users)
    assert not stale, f"no longer imports argparse: take it off ARGPARSE_NOT_YET_MOVED: {', '.join(stale)}"
    entry = sorted(m for m in users if stage_of(m) == "<entry>" and not m.startswith("edgekit.cli"))
    assert not entry, f"argparse in an entry point outside edgekit/cli/: {', '.join(entry)}"


def test_the_argparse_check_can_fail(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    from argparse import Namespace\n")
    assert _imports_argparse(tmp_path / "m.py")
    (tmp_path / "m.py").write_text("import argparse_extra_not_it as a\nimport json\n")
    assert not _imports_argparse(tmp_path / "m.py")
