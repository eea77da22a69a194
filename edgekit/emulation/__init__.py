"""ARM64 under emulation: run exported files on the phone's CPU architecture on an x86 machine.

An aarch64 CPython 3.11 (Debian bookworm's arm64 packages, unpacked, not installed), the aarch64
wheels of numpy and the runtimes (ONNX Runtime, LiteRT) and a static ``qemu-aarch64`` (Debian
trixie's QEMU 10) live in one ignored folder: ``$EDGEKIT_ARM64_ENV`` if set, else ``.arm64`` beside
the active virtual environment (``<repo>/.arm64`` for a development checkout). Build it with
``python -m edgekit.emulation.env --create`` (``make arm64-env``).

This package is target-agnostic:

- :func:`available` says whether the environment is there (None) or why not;
- :func:`run_worker` runs a worker script inside the emulated python with a chosen CPU model
  (``QEMU_CPU``), passing feeds and outputs as ``.npz`` files in a temporary folder;
- :func:`self_test` runs self-test cases (tiny models built on x86 with a float64 reference and a
  bound) under each CPU model and raises :class:`EmulatorMiscomputesError` when the emulator
  computes wrongly (QEMU 7.2's ``max`` CPU, which has SME, does for int8 kernels).

Workers run in a python that has only numpy and the runtime: they must not import edgekit or
torch. They use :mod:`worker_io` (copied next to them) for the file protocol. The per-target
workers and self-test cases live in the target packages (``edgekit.targets.onnx.arm64``,
``edgekit.targets.tflite.arm64``).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from edgekit.core.errors import EnvironmentProblem, ValidationError  # noqa: F401 - ValidationError re-exported

CREATE_COMMAND = "make arm64-env (python -m edgekit.emulation.env --create)"
MANIFEST = "manifest.json"
UNAVAILABLE = "UNAVAILABLE.txt"
#: The CPU model workers run on unless told otherwise: an ARMv8.2 core with dot-product
#: instructions, like most phones' big cores since 2019 (Cortex-A76 class).
DEFAULT_CPU = "neoverse-n1"
#: CPU models ``--create`` verifies with the self-tests: the default and QEMU's ``max`` (every
#: feature QEMU emulates, SVE2 and SME included: the kernels a 2024+ phone may take).
VERIFY_CPUS = ("neoverse-n1", "max")
#: Where the per-target self-test cases are (runtime distribution -> module:function), imported lazily.
SELF_TEST_PROVIDERS = {
    "onnxruntime": "edgekit.targets.onnx.arm64:self_test_cases",
    "ai-edge-litert": "edgekit.targets.tflite.arm64:self_test_cases",
}


class EmulatorError(EnvironmentProblem):
    """The ARM64 emulation environment is missing, broken or cannot be trusted (exit 2, an
    environment error, never the file's parity failure): nothing run in it validates a file. The
    message names the QEMU version and CPU model when known."""


class EmulatorMiscomputesError(EmulatorError):
    """The emulator computed a self-test case outside its bound: results under this QEMU version
    and CPU model would blame the file for the emulator's bug."""

    def __init__(self, message: str, *, qemu_version: str, cpu: str, case: str, error: float, bound: float) -> None:
        super().__init__(message)
        self.qemu_version = qemu_version
        self.cpu = cpu
        self.case = case
        self.error = error
        self.bound = bound


def env_dir() -> Path:
    """Where the emulated environment is (or would be built)."""
    override = os.environ.get("EDGEKIT_ARM64_ENV")
    if override:
        return Path(override).expanduser()
    return Path(sys.prefix).resolve().parent / ".arm64"


def manifest(env: Path | None = None) -> dict[str, Any] | None:
    """The environment's manifest (what was built and verified), or None when there is none."""
    path = (env or env_dir()) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def qemu_path(env: Path | None = None) -> Path:
    return (env or env_dir()) / "qemu" / "qemu-aarch64"


def root_path(env: Path | None = None) -> Path:
    return (env or env_dir()) / "root"


def python_path(env: Path | None = None) -> Path:
    return root_path(env) / "usr" / "bin" / "python3.11"


def site_path(env: Path | None = None) -> Path:
    return (env or env_dir()) / "site"


def available(runtime: str | None = None, cpu: str | None = None, env: Path | None = None) -> str | None:
    """None when the emulated environment is usable, else why not (with the command that builds it).

    ``runtime`` (``onnxruntime``, ``ai-edge-litert``) also asks for that runtime's wheels; ``cpu``
    for a CPU model the build verified (default: :data:`DEFAULT_CPU`). Reads files only (fast).
    """
    env = env or env_dir()
    note = env / UNAVAILABLE
    if note.exists():
        return f"ARM64 emulation environment unavailable: {note.read_text().strip()}"
    info = manifest(env)
    if info is None:
        return f"no ARM64 emulation environment at {env}; build it with `{CREATE_COMMAND}`"
    for what, path in (("qemu-aarch64", qemu_path(env)), ("aarch64 python3.11", python_path(env))):
        if not path.exists():
            return f"the ARM64 emulation environment at {env} has no {what} ({path}); rebuild it with `{CREATE_COMMAND}`"
    if runtime is not None and runtime not in info.get("runtimes", {}):
        why = info.get("runtimes_missing", {}).get(runtime, "not installed")
        return f"the ARM64 emulation environment has no {runtime} ({why})"
    cpu = cpu or DEFAULT_CPU
    verified = info.get("cpu_models_verified", {})
    if cpu not in verified:
        failed = info.get("cpu_models_failed", {}).get(cpu)
        if failed:
            return f"QEMU {info.get('qemu', {}).get('version')} with CPU model {cpu} failed the self-test: {failed}"
        return f"CPU model {cpu} was not verified by the self-test (verified: {', '.join(verified) or 'none'})"
    return None


from .runner import Job, WorkerRun, run_worker
from .selftest import SelfTestResult, SelfTestSpec, load_cases, self_test

__all__ = [
    "CREATE_COMMAND", "DEFAULT_CPU", "VERIFY_CPUS", "EmulatorError", "EmulatorMiscomputesError", "Job", "SelfTestResult",
    "SelfTestSpec", "WorkerRun", "available", "env_dir", "load_cases", "manifest", "run_worker", "self_test",
]
