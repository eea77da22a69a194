"""Run a worker script in the emulated aarch64 python: ``run_worker``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import (
    DEFAULT_CPU,
    EmulatorError,
    ValidationError,
    available,
    env_dir,
    manifest,
    python_path,
    qemu_path,
    root_path,
    site_path,
)

WORKER_IO = Path(__file__).with_name("worker_io.py")
#: Emulation is 400-600x slower than native and a runtime import alone takes ~5 s: generous.
TIMEOUT_S = 900


class WorkerError(ValidationError):
    """A worker ran under the emulator but its runtime rejected the job (model or feeds) (exit 1)."""


@dataclass
class Job:
    """One model run: the file (a host path; QEMU's file system is the host's), the feeds by name,
    and worker-specific options (JSON-serialisable, e.g. ``{"threads": 1}``)."""

    model: Path | str | None
    inputs: Mapping[str, np.ndarray]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkerRun:
    """What one emulated worker process gave back: one output dict per job, in order."""

    outputs: list[dict[str, np.ndarray]]
    meta: dict[str, Any]
    cpu: str
    qemu_version: str
    wall_seconds: float


def _environment(cpu: str, io_dir: Path, env: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME")
    out = {k: os.environ[k] for k in keep if k in os.environ}
    out.update({
        "QEMU_CPU": cpu,
        "PYTHONPATH": f"{io_dir}:{site_path(env)}",
        "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    })
    return out


def command(script: Path | str, args: Sequence[str] = (), env: Path | None = None) -> list[str]:
    """The argv that runs ``script`` in the emulated python (for a worker that takes no jobs)."""
    env = Path(env or env_dir()).resolve()
    return [str(qemu_path(env)), "-L", str(root_path(env)), str(python_path(env)), str(script), *map(str, args)]


def run_worker(script: Path | str, jobs: Sequence[Job], args: Sequence[str] = (), *, cpu: str = DEFAULT_CPU,
               timeout: float = TIMEOUT_S, env: Path | None = None, check_env: bool = True) -> WorkerRun:
    """Run ``script`` under ``qemu-aarch64`` with ``QEMU_CPU=cpu`` on ``jobs``; return their outputs.

    The worker is started as ``python3.11 SCRIPT IO_DIR ARGS...`` with a temporary ``IO_DIR`` that
    holds ``jobs.json``, ``in-<i>.npz`` and :mod:`worker_io`. Raises :class:`EmulatorError` when the
    environment is missing or the emulated process dies (crash, time-out, no output), and
    :class:`WorkerError` when the worker reports that its runtime rejected a job.
    ``check_env=False`` skips the "verified CPU model" check (the self-test itself uses it).
    """
    env = Path(env or env_dir()).resolve()
    reason = available(cpu=cpu if check_env else None, env=env) if check_env else _files_missing(env)
    if reason:
        raise EmulatorError(reason)
    qemu = (manifest(env) or {}).get("qemu", {}).get("version", "?")
    where = f"QEMU {qemu}, CPU model {cpu}"
    with tempfile.TemporaryDirectory(prefix="edgekit-arm64-") as tmp:
        io_dir = Path(tmp)
        shutil.copy(WORKER_IO, io_dir / "worker_io.py")
        specs = []
        for i, job in enumerate(jobs):
            np.savez(io_dir / f"in-{i}.npz", **{k: np.asarray(v) for k, v in job.inputs.items()})
            specs.append({"model": None if job.model is None else str(Path(job.model).resolve()),
                          "inputs": f"in-{i}.npz", "outputs": f"out-{i}.npz", "options": job.options})
        (io_dir / "jobs.json").write_text(json.dumps({"jobs": specs}))
        argv = command(Path(script).resolve(), [str(io_dir), *args], env)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  env=_environment(cpu, io_dir, env), cwd=io_dir, check=False)
        except subprocess.TimeoutExpired:
            raise EmulatorError(f"{Path(script).name} under {where} did not finish in {timeout:.0f} s") from None
        except OSError as e:
            raise EmulatorError(f"could not start qemu-aarch64 ({where}): {e}") from None
        wall = time.perf_counter() - t0
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        meta_file = io_dir / "meta.json"
        if not meta_file.exists():
            raise EmulatorError(f"{Path(script).name} died under {where} (exit {proc.returncode}) before "
                                f"reporting: {tail or 'no output'}")
        meta = json.loads(meta_file.read_text())
        if meta.get("error"):
            raise WorkerError(f"{Path(script).name} under {where}: {meta['error']}")
        if proc.returncode != 0:
            raise EmulatorError(f"{Path(script).name} exited {proc.returncode} under {where}: {tail}")
        outputs = []
        for spec in specs:
            with np.load(io_dir / spec["outputs"], allow_pickle=False) as z:
                outputs.append({k: z[k] for k in z.files})
    return WorkerRun(outputs=outputs, meta=meta, cpu=cpu, qemu_version=qemu, wall_seconds=wall)


def _files_missing(env: Path) -> str | None:
    for what, path in (("qemu-aarch64", qemu_path(env)), ("aarch64 python3.11", python_path(env))):
        if not path.exists():
            return f"no {what} at {path}: build the environment with `make arm64-env`"
    return None
