"""The package's shape: no import cycles between modules, and no stage imports a later stage.

Every ``import`` counts, at module level or inside a function (a lazy import is still a
dependency): DESIGN.md "The house" says which stage may import which.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "edgekit"

#: The stages in pipeline order. A module may import its own stage and any earlier one; ``targets``
#: are reached from later stages through the registry (a plug-in look-up), never by name.
STAGES = ["core", "model", "emulation", "check", "quality", "targets", "build", "measure", "apps", "distill", "<entry>"]
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
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` imports are annotations, not dependencies
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            typing_only |= {id(n) for s in node.body for n in ast.walk(s)}
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
            if t and t != name and t.startswith("edgekit"):
                out.add(t)
    return out


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
