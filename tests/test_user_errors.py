"""A user's or the environment's mistake is one line and exit 2, never a traceback (issue 24).

Each case runs through ``edgekit.cli.main`` (or a subprocess where the case needs a real read-only or
full file system) and checks the exit code, that the last line on stderr is the one
``edgekit: error: …`` line, and that no traceback was printed. What must not have happened (a file
installed, a lock left, a pickle's payload run) is checked too.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.core.tasks import Task

SQUAD = Path(__file__).parent / "data" / "squad-dev-50.json.xz"


def _one_error_line(err: str) -> str:
    """The single ``edgekit: error:`` line, which must end stderr; no traceback anywhere."""
    assert "Traceback" not in err, err[-3000:]
    errors = [ln for ln in err.splitlines() if ln.startswith("edgekit: error:")]
    assert len(errors) == 1, err[-3000:]
    assert err.rstrip().splitlines()[-1] == errors[0], err[-3000:]
    return errors[0]


def _run(capsys, *argv: str | Path) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, _one_error_line(capsys.readouterr().err) if code else ""


def _artifacts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith((".", "report.", "edgekit.log"))) \
        if folder.is_dir() else []


@pytest.fixture(scope="module")
def qa_model(tiny_model):
    return tiny_model("bert", Task.QUESTION_ANSWERING)


@pytest.fixture(scope="module")
def exported(qa_model, tmp_path_factory):
    """A validated TorchScript pair of the tiny QA model (copied by each test that changes it)."""
    out = tmp_path_factory.mktemp("exported")
    assert main(["export", "--model", str(qa_model), "--target", "torchscript", "--seq-len", "32",
                 "--out", str(out)]) == 0
    return out


def _copy_of(exported: Path, dest: Path) -> Path:
    shutil.copytree(exported, dest)
    return next(dest.glob("*.pt"))


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` read-only for this process: a read-only bind mount as root (root writes through
    permissions), its mode bits otherwise."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if not _mount("--bind", str(folder), str(folder)):
        pytest.skip("root, but cannot bind-mount here (no read-only folder to test in)")
    try:
        if not _mount("-o", "remount,bind,ro", str(folder)):
            pytest.skip("cannot remount read-only here")
        yield
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


@contextlib.contextmanager
def full_disk(folder: Path):
    """``folder`` on a tiny tmpfs filled to the last byte (root only)."""
    if os.geteuid() != 0:
        pytest.skip("a full file system needs a tmpfs mount (root)")
    folder.mkdir(parents=True, exist_ok=True)
    if not _mount("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)):
        pytest.skip("cannot mount a tmpfs here")
    try:
        with open(folder / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
        yield
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


# ---- defects 7 and 11: what export is given is checked before anything is exported ----------------

def test_malformed_eval_data_is_a_usage_error_before_anything_is_exported(qa_model, tmp_path, capsys):
    """Defect 7: a bad --eval-data file is read up front: exit 2 and no file in --out."""
    bad = tmp_path / "squad80.json"
    bad.write_text('{"data": [{"paragraphs": [{"context": "x", "qas": [')
    out = tmp_path / "out"
    code, line = _run(capsys, "export", "--model", qa_model, "--target", "torchscript", "--seq-len", "32",
                      "--out", out, "--eval-data", bad, "--eval-n", "5")
    assert code == 2 and "squad80.json" in line
    assert _artifacts(out) == []


@pytest.mark.parametrize("flags", [["--min-cosine", "1.5"], ["--max-abs", "-1"], ["--min-psnr", "-3"],
                                   ["--min-agreement", "2"], ["--min-cosine", "1.5", "--max-abs", "-1"]])
def test_impossible_tolerances_on_export_are_usage_errors(qa_model, tmp_path, capsys, flags):
    """Defect 11b: export refuses bounds no file can meet, as bundle does (exit 2, nothing exported)."""
    out = tmp_path / "out"
    code, line = _run(capsys, "export", "--model", qa_model, "--target", "torchscript", "--seq-len", "32",
                      "--out", out, *flags)
    assert code == 2 and "impossible" in line
    assert _artifacts(out) == []


def test_calibration_folder_is_named_a_folder(qa_model, tmp_path, capsys):
    """Defect 11c: --calibration DIR says it is a folder, not that it does not exist."""
    code, line = _run(capsys, "export", "--model", qa_model, "--target", "onnx", "--precision", "int8-static",
                      "--calibration", tmp_path, "--seq-len", "32", "--out", tmp_path / "out")
    assert code == 2 and "is a folder" in line and "does not exist" not in line


# ---- defect 8: read-only folders, full disks -----------------------------------------------------

def test_validate_in_a_read_only_folder(exported, tmp_path, capsys):
    art = _copy_of(exported, tmp_path / "ro")
    before = art.with_name(art.name + ".json").read_text()
    with read_only(art.parent):
        code, line = _run(capsys, "validate", art)
    assert code == 2 and "writable" in line
    assert art.with_name(art.name + ".json").read_text() == before


def test_bench_in_a_read_only_folder(exported, tmp_path, capsys):
    art = _copy_of(exported, tmp_path / "ro")
    with read_only(art.parent):
        code, line = _run(capsys, "bench", art, "--runs", "1", "--warmup", "0")
    assert code == 2 and "not writable" in line


def test_report_output_on_a_read_only_path(exported, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        code, line = _run(capsys, "report", exported, "--output", ro / "report.md")
    assert code == 2 and ("read-only" in line or "permission denied" in line)
    assert not (ro / "report.md").exists()


def _enospc(path: Path | str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_disk_full_while_writing_the_record(exported, qa_model, tmp_path, capsys, monkeypatch):
    """The record cannot be written (ENOSPC): exit 2 with one line; the previous pair stays, no lock is left."""
    import edgekit.core.record as record_mod

    art = _copy_of(exported, tmp_path / "out")
    pair = (art.read_bytes(), art.with_name(art.name + ".json").read_text())
    real = record_mod.atomic_write_text

    def full(path, text, durable=False):
        if Path(path).name.endswith(".pt.json"):
            raise _enospc(path)
        return real(path, text, durable)

    monkeypatch.setattr(record_mod, "atomic_write_text", full)
    code, line = _run(capsys, "export", "--model", qa_model, "--target", "torchscript", "--seq-len", "32",
                      "--out", art.parent)
    assert code == 2 and "disk full" in line
    assert (art.read_bytes(), art.with_name(art.name + ".json").read_text()) == pair
    assert not (art.parent / ".edgekit").exists()


def test_disk_full_while_writing_the_journal(exported, qa_model, tmp_path, capsys, monkeypatch):
    from edgekit.build import install

    art = _copy_of(exported, tmp_path / "out")
    pair = (art.read_bytes(), art.with_name(art.name + ".json").read_text())

    def full(path, text):
        raise _enospc(path)

    monkeypatch.setattr(install, "_write_durable", full)
    code, line = _run(capsys, "export", "--model", qa_model, "--target", "torchscript", "--seq-len", "32",
                      "--out", art.parent)
    assert code == 2 and "disk full" in line and ".install" in line
    assert (art.read_bytes(), art.with_name(art.name + ".json").read_text()) == pair
    assert not (art.parent / ".edgekit").exists()


@pytest.mark.slow
def test_export_onto_a_full_disk_is_one_line_and_leaves_no_lock(qa_model, tmp_path):
    """A real full file system (0 bytes free): no logging tracebacks, exit 2, and no stale
    ``.edgekit/NAME.lock`` (defect 9)."""
    out = tmp_path / "full"
    with full_disk(out):
        proc = subprocess.run([sys.executable, "-m", "edgekit", "export", "--model", str(qa_model), "--target",
                               "torchscript", "--seq-len", "32", "--out", str(out / "o")],
                              capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert proc.returncode == 2, proc.stderr[-3000:]
        line = _one_error_line(proc.stderr)
        assert "No space left" in line or "disk full" in line
        assert not (out / "o" / ".edgekit").exists(), list((out / "o" / ".edgekit").iterdir())


# ---- defect 8: task data and weights -------------------------------------------------------------

@pytest.mark.parametrize("what,content", [
    ("malformed JSON lines", b'{"question": "a", "context": "b"}\n{"question": "c", \n'),
    ("malformed JSON list", b'[{"question": "a", "context": "b"},'),
    ("a binary file", bytes(range(256)) * 4),
    ("not SQuAD inside", json.dumps({"data": [{"paragraphs": [{"qas": [{"id": "1", "question": "q"}]}]}]}).encode()),
])
def test_finetune_with_bad_data(qa_model, tmp_path, capsys, what, content):
    data = tmp_path / "train.json"
    data.write_bytes(content)
    code, line = _run(capsys, "finetune", "--task", "qa", "--model", qa_model, "--data", data,
                      "--out", tmp_path / "ft", "--steps", "1")
    assert code == 2 and "train.json" in line, what


@pytest.fixture
def pickled_model(qa_model, tmp_path):
    """The tiny QA model whose weights file is a pickle that would run a command when unpickled."""
    import torch

    folder = tmp_path / "pickled"
    folder.mkdir()
    for f in qa_model.iterdir():
        if f.name != "model.safetensors":
            shutil.copy(f, folder / f.name)
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"bert.embeddings.word_embeddings.weight": Payload()}, folder / "pytorch_model.bin")
    return folder, marker


@pytest.mark.parametrize("argv", [
    lambda m, out: ["finetune", "--task", "qa", "--model", m, "--data", SQUAD, "--out", out, "--steps", "1"],
    lambda m, out: ["distill", "init", "--teacher", m, "--out", out],
], ids=["finetune", "distill-init"])
def test_code_carrying_pickle_is_refused_in_one_line(pickled_model, tmp_path, capsys, argv):
    folder, marker = pickled_model
    code, line = _run(capsys, *argv(folder, tmp_path / "out"))
    assert code == 2 and "pytorch_model.bin" in line and "more than tensors" in line
    assert not marker.exists(), "the pickle's payload ran"
