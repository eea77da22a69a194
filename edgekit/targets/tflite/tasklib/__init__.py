"""The TFLite Task Library as a second, independent client of exported .tflite files.

Android apps that use the Task Library (``BertQuestionAnswerer``, ``BertNLClassifier``) tokenise
from metadata packed in the model file and run their own native pre/post-processing. Its Python
wheel, tflite-support 0.4.4, needs protobuf < 4, which clashes with the rest of edgekit's stack,
so it lives in its own virtual environment and is driven through ``worker.py`` in a subprocess
(JSON on stdin/stdout). That environment both writes the metadata (tflite-support's metadata
writers) and runs the Task Library on the finished file.

Where the environment lives: ``$EDGEKIT_TASKLIB_ENV`` if set, else ``.venv-tasklib`` beside the
active virtual environment (``<repo>/.venv-tasklib`` for a development checkout). Create it with
``python -m edgekit.targets.tflite.tasklib.env --create`` (``make tasklib-env``; Linux also needs Debian's
``libusb-1.0-0``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgekit.core.errors import EdgekitError, ValidationError

TFLITE_SUPPORT = "tflite-support==0.4.4"
REQUIREMENTS = (TFLITE_SUPPORT, "protobuf<4")
WORKER = Path(__file__).with_name("worker.py")
CREATE_COMMAND = "python -m edgekit.targets.tflite.tasklib.env --create"
TIMEOUT_S = 600


class TaskLibError(EdgekitError):
    """The Task Library environment failed a request (exit 1)."""

    exit_code = 1


def env_dir() -> Path:
    """Where the tflite-support environment is (or would be created)."""
    override = os.environ.get("EDGEKIT_TASKLIB_ENV")
    if override:
        return Path(override).expanduser()
    return Path(sys.prefix).resolve().parent / ".venv-tasklib"


def env_python(env: Path | None = None) -> Path:
    env = env or env_dir()
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@lru_cache(maxsize=8)
def _probe(python: str) -> str | None:
    """None when ``python`` can import the Task Library, else why not."""
    if not Path(python).exists():
        return f"no Task Library environment at {Path(python).parent.parent}"
    try:
        reply = _call_python(python, {"cmd": "ping"}, timeout=120)
    except TaskLibError as e:
        return f"the Task Library environment at {Path(python).parent.parent} is broken: {e}"
    if not str(reply.get("protobuf", "")).startswith("3."):
        return f"the Task Library environment has protobuf {reply.get('protobuf')}, tflite-support needs < 4"
    return None


def unavailable(env: Path | None = None) -> str | None:
    """Why the Task Library cannot be used here (with the command that fixes it), or None."""
    reason = _probe(str(env_python(env)))
    return None if reason is None else f"{reason}; create it with `{CREATE_COMMAND}`"


def available(env: Path | None = None) -> bool:
    return unavailable(env) is None


def _call_python(python: str, request: dict[str, Any], timeout: float = TIMEOUT_S) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        proc = subprocess.run([python, str(WORKER)], input=json.dumps(request), capture_output=True, text=True,
                              timeout=timeout, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TaskLibError(f"the Task Library worker did not run: {e}") from None
    try:
        reply = json.loads(proc.stdout)
    except ValueError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise TaskLibError(f"the Task Library worker crashed (exit {proc.returncode}): {' | '.join(tail)}") from None
    if not reply.get("ok"):
        raise TaskLibError(reply.get("error", "unknown error"))
    return reply


def call(request: dict[str, Any], env: Path | None = None, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Send one request to the worker in the Task Library environment and return its reply."""
    reason = unavailable(env)
    if reason:
        raise ValidationError(reason)
    return _call_python(str(env_python(env)), request, timeout)


def write_metadata(src: Path, dest: Path, *, kind: str, vocab: Path, labels: list[str], inputs: dict[str, str],
                   outputs: dict[str, str], name: str = "", description: str = "",
                   env: Path | None = None) -> dict[str, Any]:
    """Write ``src`` with Task Library metadata to ``dest`` (``kind``: ``qa`` or ``classifier``).

    ``inputs`` maps ``ids``/``mask``/``segment_ids`` and ``outputs`` maps ``start_logits``/``end_logits``
    (or ``probability``) to tensor names in the file. Returns the writer's summary.
    """
    if kind == "classifier" and not labels:
        raise ValidationError("a BertNLClassifier model needs labels: the checkpoint config has no id2label")
    reply = call({"cmd": "metadata", "model": str(src), "out": str(dest), "kind": kind, "vocab": str(vocab),
                  "labels": list(labels), "inputs": inputs, "outputs": outputs, "name": name,
                  "description": description}, env)
    return {"size_bytes": reply["size_bytes"], "tflite_support": TFLITE_SUPPORT.split("==")[1]}


def read_metadata(path: Path, env: Path | None = None) -> dict[str, Any]:
    """The metadata JSON and packed file names of a .tflite file, as tflite-support reads them."""
    reply = call({"cmd": "read_metadata", "model": str(path)}, env)
    return {"metadata": reply["metadata"], "packed_files": reply["packed_files"]}


def answer(path: Path, items: list[tuple[str, str]], env: Path | None = None) -> list[list[dict[str, Any]]]:
    """``BertQuestionAnswerer`` answers for ``(question, context)`` pairs, best first."""
    reply = call({"cmd": "run", "model": str(path), "kind": "qa",
                  "items": [{"question": q, "context": c} for q, c in items]}, env)
    return reply["results"]


def classify(path: Path, texts: list[str], env: Path | None = None) -> list[list[dict[str, Any]]]:
    """``BertNLClassifier`` categories for each text (label, index, score)."""
    reply = call({"cmd": "run", "model": str(path), "kind": "classifier", "items": [{"text": t} for t in texts]}, env)
    return reply["results"]


def create(env: Path | None = None, python: str | None = None, quiet: bool = False) -> Path:
    """Create the Task Library environment (venv + tflite-support 0.4.4 + protobuf < 4)."""
    env = env or env_dir()
    python = python or _base_python()
    out = subprocess.DEVNULL if quiet else None
    if not env_python(env).exists():
        subprocess.run([python, "-m", "venv", str(env)], check=True, stdout=out)
    subprocess.run([str(env_python(env)), "-m", "pip", "install", "--disable-pip-version-check", "-q", *REQUIREMENTS],
                   check=True, stdout=out)
    _probe.cache_clear()
    reason = unavailable(env)
    if reason:
        raise TaskLibError(f"created {env} but it does not work: {reason}. On Debian/Ubuntu: apt-get install libusb-1.0-0")
    return env


def _base_python() -> str:
    """A python outside any venv (venvs nest badly); tflite-support 0.4.4 has wheels for 3.8-3.11."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    return str(base if base.exists() else sys.executable)
