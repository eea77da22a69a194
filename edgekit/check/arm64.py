"""Parity on the phone's CPU: the same parity inputs and bounds as on x86, run by the target's
aarch64 runtime under QEMU, once per CPU model.

Every "validated" used to mean "validated on x86"; phones run ARM64, where the runtimes take other
kernels (XNNPACK NEON/dot-product/SVE/SME paths, ONNX Runtime's ARM int8 GEMMs). For each CPU model
the emulator first proves itself on tiny self-test models against a float64 reference (a wrong
emulator is an environment error, exit 2, never the file's failure); then the file runs on the
parity feeds and ``check.parity.compare`` judges the outputs against PyTorch with the file's own
tolerance. The verdicts go into ``record.arm64`` (bound to the file like the rest); a failure on
any CPU model makes the file parity-failed. A target whose runtime has no aarch64 build here says
"arm64: not checked (why)" — never a pass. Emulated time says nothing about phone latency.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.check.parity import compare
from edgekit.core import registry
from edgekit.core.console import console
from edgekit.core.record import ArtifactRecord, Status
from edgekit.core.tolerance import Tolerance

#: The CPU models a check runs on when none are named: a NEON/dot-product phone core, and QEMU's
#: ``max`` (SVE2 and SME: the kernels a 2024+ phone may take).
DEFAULT_CPUS = ("neoverse-n1", "max")

_VERIFIED: set[tuple[str, str]] = set()  # (runtime, cpu) pairs whose self-test passed in this process


def _key(feed: dict[str, np.ndarray]) -> bytes:
    return b"|".join(np.ascontiguousarray(feed[k]).tobytes() + str(np.shape(feed[k])).encode() for k in sorted(feed))


class _Replay:
    """A runner that answers with the outputs the emulated runtime computed for the same feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]], outputs: list[dict[str, np.ndarray]],
                 input_names: tuple[str, ...]) -> None:
        self._by = {_key(f): o for f, o in zip(feeds, outputs)}
        self.input_names = input_names
        self.output_names = tuple(outputs[0]) if outputs else ()

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self._by[_key(feed)].items()}


def unavailable(target: str) -> str | None:
    """Why ``target``'s files cannot be checked on arm64 here, or None."""
    conv = registry.get(target)
    mod = conv.arm64()
    if mod is None:
        return f"{target}: {conv.arm64_missing}"
    from edgekit import emulation

    return emulation.available(runtime=mod.RUNTIME)


def self_test(runtime: str, cpus: tuple[str, ...]) -> tuple[str, ...]:
    """The emulator proves itself on ``runtime``'s kernels for each CPU model before a verdict counts
    (raises ``EmulatorMiscomputesError``, exit 2, naming the QEMU version and CPU model). Returns the
    CPU models tested now; those that passed earlier in this process are not tested again."""
    from edgekit import emulation
    from edgekit.emulation.selftest import load_cases

    todo = tuple(c for c in cpus if (runtime, c) not in _VERIFIED)
    if not todo:
        return ()
    cases, _ = load_cases((emulation.SELF_TEST_PROVIDERS[runtime],))
    emulation.self_test(cases, todo)
    _VERIFIED.update((runtime, c) for c in todo)
    return todo


def check(path: Path, record: ArtifactRecord, model: Any, feeds: list[dict[str, np.ndarray]], real: list[bool],
          tolerance: Tolerance, cpus: tuple[str, ...] = DEFAULT_CPUS, index: Any = None,
          verbose: bool = True) -> None:
    """Fill ``record.arm64`` with a parity verdict per CPU model; a failure makes it parity-failed."""
    reason = unavailable(record.target)
    if reason:
        record.arm64 = {"checked": False, "reason": reason}
        if verbose:
            console.print(f"    [yellow]- arm64: not checked[/] ({reason})")
        return
    mod = registry.get(record.target).arm64()
    self_test(mod.RUNTIME, tuple(cpus))
    results: dict[str, Any] = {}
    failed: list[str] = []
    for cpu in cpus:
        run = mod.run_file(path, record, feeds, cpu=cpu)
        replay = _Replay(feeds, run.outputs, tuple(model.input_names))
        rep = compare(model, lambda: replay, feeds, record.task, tolerance, verbose=False, real=real, index=index)
        worst = {o.name: {"max_abs": o.max_abs, "cosine": o.cosine, "psnr": o.psnr} for o in rep.outputs}
        bad = rep.failures or [f"{s.name}: {s.detail}" for s in rep.steps if not s.ok]
        results[cpu] = {"passed": rep.passed, "qemu": run.qemu_version,
                        "runtime": f"{run.meta.get('runtime', mod.RUNTIME)} {run.meta.get('version', '')}".strip(),
                        "samples": rep.samples, "outputs": worst, "agreement": rep.agreement,
                        "failures": bad, "seconds": round(run.wall_seconds, 1)}
        if verbose:
            mark = "[green]✓[/]" if rep.passed else "[red]✗[/]"
            cos = min((o.cosine for o in rep.outputs), default=float("nan"))
            console.print(f"    {mark} arm64 {cpu} (QEMU {run.qemu_version}): worst cosine {cos:.6f}"
                          + (f"; {'; '.join(bad)}" if bad else ""))
        if not rep.passed:
            failed.append(f"arm64 {cpu}: {'; '.join(bad)}")
    record.arm64 = {"checked": True, "cpus": results, "bound": tolerance.to_dict()}
    if failed and record.status == Status.VALIDATED:
        record.status, record.reason = Status.PARITY_FAILED, "; ".join(failed)
