"""The file protocol of emulated workers; runs INSIDE the aarch64 python (stdlib + numpy only).

``run_worker`` copies this file into a temporary folder, writes ``jobs.json`` and one ``in-<i>.npz``
per job there, puts the folder on the worker's ``sys.path`` and runs ``python3.11 WORKER IO_DIR
[ARGS...]``. A worker does::

    import worker_io

    def run(job):                     # job.model (path), job.inputs (dict of arrays), job.options (dict)
        return {"y": ...}             # saved as out-<i>.npz

    worker_io.serve(run, {"runtime": "onnxruntime", "version": ort.__version__})

An exception inside a job is written to ``meta.json`` as ``error`` (the file failed, not the
emulator); a worker that dies before ``meta.json`` exists is taken as an emulator failure.
"""
from __future__ import annotations

import json
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

IO_DIR = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
_T0 = time.perf_counter()
_seconds: list[float] = []


class Job:
    def __init__(self, index: int, spec: dict) -> None:
        self.index = index
        self.model = spec.get("model")
        self.options = spec.get("options") or {}
        with np.load(IO_DIR / spec["inputs"], allow_pickle=False) as z:
            self.inputs = {k: z[k] for k in z.files}
        self._out = IO_DIR / spec["outputs"]

    def save(self, outputs: dict) -> None:
        np.savez(self._out, **{k: np.asarray(v) for k, v in outputs.items()})


def serve(run, meta: dict | None = None) -> None:
    """Run ``run(job) -> {name: array}`` on every job in order, save the outputs, write meta.json."""
    specs = json.loads((IO_DIR / "jobs.json").read_text())["jobs"]
    for i, spec in enumerate(specs):
        t0 = time.perf_counter()
        try:
            job = Job(i, spec)
            job.save(run(job))
        except Exception as e:  # noqa: BLE001 - reported to the host as the job's error
            _fail(f"job {i} ({spec.get('model')}): {type(e).__name__}: {e}", meta)
        _seconds.append(time.perf_counter() - t0)
    finish(meta)


def _write(meta: dict) -> None:
    meta.setdefault("machine", platform.machine())
    meta.setdefault("python", platform.python_version())
    meta.setdefault("numpy", np.__version__)
    meta["seconds"] = _seconds
    meta["total_seconds"] = time.perf_counter() - _T0
    (IO_DIR / "meta.json").write_text(json.dumps(meta))


def _fail(message: str, meta: dict | None = None) -> None:
    _write({**(meta or {}), "error": message, "traceback": traceback.format_exc(limit=4)})
    sys.exit(3)


def finish(meta: dict | None = None) -> None:
    _write(dict(meta or {}))
