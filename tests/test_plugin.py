"""Adding a target is one new package in ``edgekit/targets/``: nothing else names it.

The test writes a package ``dummy`` (a TorchScript trace under another name and suffix) into a
folder it adds to the ``edgekit.targets`` namespace, and the target appears in ``targets``, in
``export --help`` (its own flag), in ``export``, ``validate`` (its reader claims the file) and
``report``, with no line of core code changed.
"""
from __future__ import annotations

import json
import textwrap

import pytest

import edgekit.targets
from edgekit.cli import main
from edgekit.core import registry
from edgekit.core.tasks import Task

PACKAGE = '''
"""A dummy target: TorchScript under another name (the plug-in test)."""
from pathlib import Path

from edgekit.core.target import Contents, Flag
from edgekit.targets.torchscript.converter import TorchScriptConverter


class DummyConverter(TorchScriptConverter):
    name = "dummy"
    suffix = ".dummy"
    order = 999
    flags = (Flag("dummy_level", "dummy: how hard to try", default=1, type=int),)
    description = "a TorchScript trace under another name"

    def claims(self, path, head):
        return Path(path).name.endswith(self.suffix) and head[:4] == b"PK\\x03\\x04"

    def inspect(self, path):
        c = super().inspect(path)
        return Contents("dummy", c.precisions, c.evidence)

    @property
    def family(self):
        return "dummy"


CONVERTER = DummyConverter()
'''


@pytest.fixture
def dummy_package(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    (folder / "dummy").mkdir(parents=True)
    (folder / "dummy" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    monkeypatch.setattr(edgekit.targets, "__path__", [*edgekit.targets.__path__, str(folder)])
    registry.converters.cache_clear()
    yield
    registry.converters.cache_clear()


@pytest.mark.slow
def test_a_new_target_package_is_seen_by_every_command(dummy_package, tiny_model, tmp_path, capsys):
    assert "dummy" in registry.converters() and list(registry.converters())[-1] == "dummy"  # its own order
    assert main(["targets"]) == 0
    assert "| dummy | .dummy |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "--dummy-level" in capsys.readouterr().out
    model = tiny_model("distilbert", Task.FEATURE_EXTRACTION)
    out = tmp_path / "out"
    assert main(["export", "--model", str(model), "--target", "dummy", "--dummy-level", "3", "--seq-len", "16",
                 "--out", str(out)]) == 0
    (path,) = out.glob("*.dummy")
    record = json.loads((out / (path.name + ".json")).read_text())
    assert record["status"] == "validated" and record["options"]["dummy_level"] == 3
    assert main(["validate", str(path)]) == 0  # its reader claims the bytes; integrity agrees
    assert main(["report", str(out)]) == 0
    assert "| dummy |" in capsys.readouterr().out
