"""The emulator's self-test: does this QEMU with this CPU model compute a tiny model right?

A self-test *case* is a callable ``case(folder) -> SelfTestSpec`` that builds a tiny model file in
``folder`` on x86 and returns the worker that runs it, the feeds, a float64 numpy reference and a
bound on ``max |emulated - reference|``. The bound covers what the runtime may legitimately do
(float32 rounding, 8-bit quantization of activations), never an emulator bug: QEMU 7.2's ``max``
CPU (SME) gives int8 kernels results far outside it.
"""
from __future__ import annotations

import importlib
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import (
    SELF_TEST_PROVIDERS,
    VERIFY_CPUS,
    EmulatorError,
    EmulatorMiscomputesError,
    ValidationError,
)
from .runner import Job, run_worker


U = 2.0 ** -24  # float32 unit roundoff: the bound every self-test case scales


def grid_activations(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    """Multiples of 1/32 in [-4, 127/32] with both ends in every row: every 8-bit activation scheme
    (uint8 per tensor, zero point 128; int8 per row, zero point 0 — what ONNX Runtime, LiteRT and
    XNNPACK do to a dynamic-range layer's inputs) has scale exactly 1/32 and quantizes them exactly,
    so an int8 result is exact integer arithmetic times two scales."""
    q = rng.integers(-128, 128, size=(rows, k))
    q[:, 0] = -128
    q[:, 1] = 127
    for r in range(rows):
        rng.shuffle(q[r])
    return (q / 32.0).astype(np.float32)


@dataclass
class SelfTestSpec:
    name: str
    worker: Path
    job: Job
    reference: dict[str, np.ndarray]
    bound: float
    note: str = ""


SelfTestCase = Callable[[Path], SelfTestSpec]


@dataclass
class SelfTestResult:
    case: str
    cpu: str
    qemu_version: str
    max_abs_error: float
    bound: float
    seconds: float
    runtime: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and math.isfinite(self.max_abs_error) and self.max_abs_error <= self.bound

    def summary(self) -> str:
        verdict = "ok" if self.ok else "WRONG"
        return (f"{self.case} on {self.cpu}: max|err| {self.max_abs_error:.3g} (bound {self.bound:.3g}) {verdict}"
                + (f" [{'; '.join(self.problems)}]" if self.problems else ""))


def load_cases(providers: Sequence[str] = tuple(SELF_TEST_PROVIDERS.values())) -> tuple[list[SelfTestCase], dict[str, str]]:
    """The self-test cases of every target that has them, and why a provider could not be loaded."""
    cases: list[SelfTestCase] = []
    missing: dict[str, str] = {}
    for ref in providers:
        module, _, attr = ref.partition(":")
        try:
            cases.extend(getattr(importlib.import_module(module), attr)())
        except ImportError as e:
            missing[ref] = f"{type(e).__name__}: {e}"
    return cases, missing


def compare(spec: SelfTestSpec, outputs: dict[str, np.ndarray]) -> tuple[float, list[str]]:
    """``max |output - reference|`` over the reference's outputs, and what did not even match up."""
    worst = 0.0
    problems = []
    for name, ref in spec.reference.items():
        if name not in outputs:
            problems.append(f"no output {name!r} (got {sorted(outputs)})")
            continue
        got = np.asarray(outputs[name], dtype=np.float64)
        if got.shape != ref.shape:
            problems.append(f"{name}: shape {got.shape}, reference {ref.shape}")
            continue
        err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        worst = max(worst, err) if math.isfinite(err) else math.inf
    return worst, problems


def self_test(cases: Iterable[SelfTestCase], cpus: Sequence[str] = VERIFY_CPUS, *, env: Path | None = None,
              timeout: float = 900, raise_on_failure: bool = True,
              log: Callable[[str], None] | None = None) -> list[SelfTestResult]:
    """Run every case under every CPU model (one emulated process per worker script and CPU model).

    Raises :class:`EmulatorMiscomputesError` (naming the QEMU version, CPU model and case) for the
    first result outside its bound when ``raise_on_failure``; otherwise returns all results.
    An emulated process that dies raises :class:`EmulatorError` either way.
    """
    results: list[SelfTestResult] = []
    with tempfile.TemporaryDirectory(prefix="edgekit-selftest-") as tmp:
        specs = []
        for i, case in enumerate(cases):
            folder = Path(tmp) / f"case-{i}"
            folder.mkdir()
            specs.append(case(folder))
        if not specs:
            raise EmulatorError("no self-test cases to run (no target provides one)")
        by_worker: dict[Path, list[SelfTestSpec]] = {}
        for spec in specs:
            by_worker.setdefault(Path(spec.worker), []).append(spec)
        for cpu in cpus:
            for worker, group in by_worker.items():
                t0 = time.perf_counter()
                try:
                    run = run_worker(worker, [s.job for s in group], cpu=cpu, timeout=timeout, env=env, check_env=False)
                except EmulatorError:
                    raise
                except ValidationError as e:  # the runtime rejected a self-test model: the environment is wrong
                    raise EmulatorError(f"self-test worker {worker.name} failed under CPU model {cpu}: {e}") from None
                seconds = time.perf_counter() - t0
                runtime = f"{run.meta.get('runtime', '?')} {run.meta.get('version', '')}".strip()
                for spec, outputs in zip(group, run.outputs):
                    err, problems = compare(spec, outputs)
                    result = SelfTestResult(spec.name, cpu, run.qemu_version, err, spec.bound, seconds / len(group),
                                            runtime, problems)
                    results.append(result)
                    if log:
                        log(result.summary())
                    if raise_on_failure and not result.ok:
                        raise EmulatorMiscomputesError(
                            f"QEMU {run.qemu_version} with CPU model {cpu} computes {spec.name} ({runtime}) wrongly: "
                            f"max|err| {err:.3g} > bound {spec.bound:.3g}"
                            + (f" ({'; '.join(problems)})" if problems else "")
                            + ". Results under this emulator would blame the file for the emulator's bug: use "
                              "another CPU model (QEMU_CPU) or QEMU >= 10.",
                            qemu_version=run.qemu_version, cpu=cpu, case=spec.name, error=err, bound=spec.bound)
    return results
