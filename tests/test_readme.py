"""The README's examples run as written, in order (issue 28, item 9).

Every ``edgekit`` command of the README's ``bash`` blocks is taken in document order. The quick ones
run for real, through a shell (globs and all), in one folder where ``./my-qa-model`` and
``./my-model`` are tiny checkpoints (question answering, embeddings) and ``dev-v1.1.json.xz`` is the
50-question SQuAD slice of ``tests/data``: each must succeed, print no deprecation note, and find the
files earlier examples made. The slow ones (``SLOW``: every target, Core ML, emulation, training,
the shared models) are parsed by ``edgekit``'s own parser and run as ``--help``; the exported files
they name must exist all the same, so an example cannot point at a file no earlier one makes.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SLICE = ROOT / "tests" / "data" / "squad-dev-50.json.xz"

#: Examples run as ``--help`` only, and why (a substring of the command).
SLOW = {
    "--target all": "every target and precision",
    "bench ./my-model --seq-len 128,384 --threads 2": "every target and precision, two lengths",
    "--target coreml": "Core ML conversion and the MIL interpreter",
    "--target tflite --seq-len 128,256,384": "a TFLite file with three signatures",
    "--arch arm64": "QEMU emulation",
    "--eval-data": "a second TFLite export plus the accuracy gate",
    "edgekit finetune": "training",
    "edgekit distill": "training",
    "edgekit bundle": "export and golden files",
    "../shared/": "the shared models and data are not part of a fresh clone",
}
#: The files an exported artifact can be (a token naming one must exist when its example runs).
SUFFIXES = (".tflite", ".onnx", ".ort", ".pte", ".pt", ".ptl", ".mlpackage")
TIMEOUT = 600  # seconds, per command
RETIRED_NOTE = "is deprecated and will be removed; use"  # edgekit.cli.vocabulary: a retired flag spelling


def commands() -> list[str]:
    """The ``edgekit`` commands of the README's bash blocks, in order (continuations joined, comments dropped)."""
    out: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            i += 1
            code = _strip_comment(line).strip()
            code = re.sub(r"^\.venv/bin/edgekit\b", "edgekit", code)
            if code.startswith("edgekit ") or code == "edgekit":
                out.append(code)
    return out


def _strip_comment(line: str) -> str:
    """The line without its trailing ``# ...`` comment."""
    return re.sub(r"(^|\s)#.*$", "", line)


def slow(command: str) -> str | None:
    return next((why for key, why in SLOW.items() if key in command), None)


def _subcommand(argv: list[str]) -> list[str]:
    """``edgekit distill task --task qa …`` -> ``["distill", "task"]``."""
    from edgekit.cli import build_parser

    path: list[str] = []
    parser = build_parser()
    for token in argv:
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs or token not in subs[0].choices:
            break
        path.append(token)
        parser = subs[0].choices[token]
    return path


def test_the_readme_has_examples_of_every_kind():
    cmds = commands()
    assert any(c.startswith("edgekit export") for c in cmds) and any(c.startswith("edgekit eval") for c in cmds)
    quick = [c for c in cmds if not slow(c)]
    assert len(quick) >= 6, quick
    for c in cmds:  # each runs as written: no placeholder the test would have to replace
        assert "./qa-model" not in c, c


def test_examples_parse_with_todays_flags(capsys):
    """Every example, slow or not, is a valid command line today (no retired spelling, no typo)."""
    from edgekit.cli import build_parser

    for c in commands():
        argv = shlex.split(c)[1:]
        try:
            build_parser().parse_args(argv)
        except Exception as e:  # noqa: BLE001 - name the example
            pytest.fail(f"README example does not parse: {c}\n{e}")
        err = capsys.readouterr().err
        assert RETIRED_NOTE not in err, f"{c}: {err}"


@pytest.mark.slow
def test_readme_examples_run_in_order(tmp_path):
    from tiny_models import build_tiny

    build_tiny(tmp_path / "my-qa-model", "bert", "question-answering")
    build_tiny(tmp_path / "my-model", "distilbert", "feature-extraction")
    shutil.copy(SLICE, tmp_path / "dev-v1.1.json.xz")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONUNBUFFERED="1")
    ran, helped, log = [], [], []
    t_all = time.monotonic()
    for c in commands():
        argv = shlex.split(c)
        # Files an example reads must exist already (globs must match): made by an earlier example.
        if "../shared/" not in c:
            for token in argv[1:]:
                if token.endswith(SUFFIXES) or any(ch in token for ch in "*?"):
                    found = list(tmp_path.glob(token)) if any(ch in token for ch in "*?") else \
                        [tmp_path / token] if (tmp_path / token).exists() else []
                    assert found, f"README example reads {token}, which no earlier example made: {c}"
        why = slow(c)
        run = " ".join(["edgekit", *_subcommand(argv[1:]), "--help"]) if why else c
        t0 = time.monotonic()
        done = subprocess.run(["bash", "-c", run], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
        log.append(f"{time.monotonic() - t0:6.1f} s  {run}")
        assert done.returncode == 0, (f"README example failed (exit {done.returncode}): {run}\n"
                                      f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")
        assert RETIRED_NOTE not in done.stderr, f"{run}: {done.stderr}"
        (helped if why else ran).append(c)
    print(f"README examples: {len(ran)} run, {len(helped)} as --help, {time.monotonic() - t_all:.0f} s",
          *log, sep="\n")
    assert ran and helped
    # What the chain promises: the files and reports the examples name.
    assert (tmp_path / "out" / "my-qa-model.question-answering.int8-dynamic.s384.tflite").exists()
    assert (tmp_path / "out" / "report.html").exists() and (tmp_path / "eval.json").exists()
    assert (tmp_path / "report.html").exists()
