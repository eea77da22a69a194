"""Fault injection (issue 24): readers and re-exports of the same names, all at once, for a bounded time.

``validate``, ``bench``, ``report`` and ``bundle`` run in loops (real subprocesses) while two
exporters keep replacing the same artifact names (TorchScript and ONNX alternating between two
checkpoints whose folders share a name, TFLite from one). Afterwards every record in the folder
must match its file (``edgekit.check.integrity.problems`` is empty), every validated file must
re-validate, every bundle must ship the file its card and record describe, and no command may have
ended in a traceback or with an exit code its situation does not explain.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from edgekit.core.tasks import Task

SECONDS = float(os.environ.get("EDGEKIT_FAULT_SECONDS", "60"))


@pytest.fixture(scope="module")
def two_qa_models(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    a = shutil.copytree(tiny_model("bert", Task.QUESTION_ANSWERING), root / "a" / "tiny")
    b = shutil.copytree(tiny_model("bert", Task.QUESTION_ANSWERING, seed=1), root / "b" / "tiny")
    return a, b


class Loop(threading.Thread):
    """Run ``commands()`` one after another until the deadline; keep every result."""

    def __init__(self, name: str, commands, deadline: float, env: dict[str, str]) -> None:
        super().__init__(name=name, daemon=True)
        self.commands, self.deadline, self.env = commands, deadline, env
        self.results: list[tuple[list[str], int, str]] = []

    def run(self) -> None:
        i = 0
        while time.monotonic() < self.deadline:
            argv = [str(a) for a in self.commands(i)]
            proc = subprocess.run([sys.executable, "-m", "edgekit", *argv], capture_output=True, text=True,
                                  env=self.env, timeout=900)
            self.results.append((argv, proc.returncode, proc.stderr))
            i += 1


@pytest.mark.slow
def test_readers_and_reexports_of_the_same_names_end_consistent(two_qa_models, tmp_path):
    pytest.importorskip("litert_torch")
    from edgekit.check import integrity
    from edgekit.cli import main
    from edgekit.core.record import ArtifactRecord, Status, sha256_of

    a, b = two_qa_models
    out, bundles, systmp = tmp_path / "out", tmp_path / "bundles", tmp_path / "systmp"
    systmp.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(systmp)}
    small = ["--target", "torchscript,onnx", "--seq-len", "32", "--out", out]
    tflite = ["--model", a, "--target", "tflite", "--seq-len", "64", "--out", out]
    for argv in (["export", "--model", a, *small], ["export", *tflite]):
        assert main([str(x) for x in argv]) == 0
    pt, onnx, tfl = (next(out.glob(f"*{s}")) for s in (".pt", ".onnx", ".tflite"))

    deadline = time.monotonic() + SECONDS
    loops = [
        Loop("export", lambda i: ["export", "--model", (b, a)[i % 2], *small], deadline, env),
        Loop("export-tflite", lambda i: ["export", *tflite], deadline, env),
        Loop("validate", lambda i: ["validate", (pt, onnx, tfl)[i % 3]], deadline, env),
        Loop("bench", lambda i: ["bench", pt, onnx, "--runs", "2", "--warmup", "0", "--threads", "1"], deadline, env),
        Loop("report", lambda i: ["report", out, "--format", "json"], deadline, env),
        Loop("bundle", lambda i: ["bundle", "--app", "android", "--model", a, "--artifact", tfl,
                                  "--out", bundles / str(i)], deadline, env),
    ]
    for loop in loops:
        loop.start()
    for loop in loops:
        loop.join(timeout=1800)
        assert not loop.is_alive(), f"{loop.name} did not finish"

    ran = {loop.name: [code for _, code, _ in loop.results] for loop in loops}
    print("exit codes:", json.dumps(ran))
    for loop in loops:
        assert loop.results, f"{loop.name} never ran"
        for argv, code, err in loop.results:
            assert "Traceback" not in err, (argv, err[-3000:])
            # A re-export from the other checkpoint is validated like the first one; a reader
            # never meets a mixed pair, so it never reports one.
            assert code == 0, (loop.name, argv, code, err[-3000:])

    # The folder: every record matches its file, and every validated file validates again.
    assert not (out / ".edgekit").exists(), list((out / ".edgekit").iterdir())
    sidecars = sorted(p for p in out.glob("*.json") if not p.name.startswith("report"))
    assert len(sidecars) == 3
    for sidecar in sidecars:
        path = sidecar.with_name(sidecar.name[: -len(".json")])
        record = ArtifactRecord.load(path)
        assert integrity.problems(path, record) == [], path.name
        if record.status == Status.VALIDATED:
            assert main(["validate", str(path)]) == 0, path.name
    # Every bundle ships the file its card and its export record describe.
    for card_path in bundles.glob("*/model_card.json"):
        card = json.loads(card_path.read_text())
        shipped = card_path.with_name("model.tflite")
        record = json.loads(card_path.with_name("export_record.json").read_text())
        assert card["sha256"] == sha256_of(shipped) == record["sha256"], card_path.parent.name
        assert card["precision"] == record["precision"] == "fp32"
